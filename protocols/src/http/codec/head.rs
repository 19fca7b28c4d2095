//! The request head: httparse reads the request line and header lines, then the framing
//! headers are checked and the `http` types built.

use std::mem::MaybeUninit;

use bytes::Bytes;
use http::header::{self, HeaderName, HeaderValue};
use http::{HeaderMap, Method, Uri, Version};

use super::scan::SectionScan;
use super::{HttpError, Limits};

/// Up to this many header slots live on the stack while parsing; a larger
/// [`Limits::max_headers`] allocates them per head.
const STACK_HEADERS: usize = 100;

/// The `http` crate refuses longer URIs.
const HTTP_CRATE_MAX_URI: usize = u16::MAX as usize - 1;

/// How a message's body is framed (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BodyKind {
    /// Exactly this many bytes (`Content-Length`; `Length(0)` is no body).
    Length(u64),
    /// `Transfer-Encoding: chunked`: a stream of unknown length.
    Chunked,
}

/// A request's line and headers, with what the framing headers mean for the connection.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RequestHead {
    /// The method.
    pub method: Method,
    /// The request target as sent (origin-form `/path?query`, absolute-form, authority-form
    /// for `CONNECT`, or `*`).
    pub uri: Uri,
    /// `HTTP_10` or `HTTP_11`.
    pub version: Version,
    /// Every header line, in order, names lowercased. Framing headers (`Content-Length`,
    /// `Transfer-Encoding`, `Connection`) are kept too.
    pub headers: HeaderMap,
    /// How the body is framed; [`Data`](super::RequestEvent::Data) events carry it.
    pub body: BodyKind,
    /// Whether the connection persists after this request (RFC 9112 §9.3): HTTP/1.1 unless
    /// `Connection: close`, HTTP/1.0 only with `Connection: keep-alive` (and no `close`). When
    /// false, the decoder reads nothing after this request's end.
    pub keep_alive: bool,
    /// `Expect: 100-continue` on an HTTP/1.1 request with a body (RFC 9110 §10.1.1; ignored in
    /// HTTP/1.0 and for a request without a body): answer
    /// [`write_continue`](super::write_continue) before reading the body, or a final status
    /// instead (then close, or read and discard the body, to keep the connection).
    pub expect_continue: bool,
}

/// Parses a complete head at the start of `buf`, or says more bytes are needed (`Ok(None)`).
pub(super) fn parse(
    buf: &[u8],
    limits: &Limits,
) -> Result<Option<(RequestHead, usize)>, HttpError> {
    let mut stack = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; STACK_HEADERS];
    let mut heap = Vec::new();
    let slots = if limits.max_headers <= STACK_HEADERS {
        &mut stack[..limits.max_headers]
    } else {
        heap.resize_with(limits.max_headers, MaybeUninit::uninit);
        &mut heap[..]
    };
    check_request_line(buf, limits)?;
    let mut request = httparse::Request::new(&mut []);
    // The default configuration is httparse's strict one: no leniency is enabled.
    let parsed = httparse::ParserConfig::default().parse_request_with_uninit_headers(
        &mut request,
        buf,
        slots,
    );
    let len = match parsed {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(error) => return Err(head_error(error, buf, limits)),
    };
    if len > limits.max_head_len {
        return Err(HttpError::HeadTooLarge {
            max: limits.max_head_len,
        });
    }
    let (Some(method), Some(path), Some(minor)) = (request.method, request.path, request.version)
    else {
        return Err(HttpError::MalformedHead("incomplete request line"));
    };
    if path.len() > limits.max_target_len.min(HTTP_CRATE_MAX_URI) {
        return Err(HttpError::TargetTooLong {
            max: limits.max_target_len,
        });
    }
    // One copy of the head, shared by the URI and every header value (each a slice of it).
    let shared = Bytes::copy_from_slice(&buf[..len]);
    let slice = |part: &[u8]| shared.slice(offset(buf, part)..offset(buf, part) + part.len());
    let head = build(
        method,
        slice(path.as_bytes()),
        minor,
        request.headers,
        &slice,
        limits,
    )?;
    Ok(Some((head, len)))
}

/// Where `part`, a slice of `buf`, starts in it.
fn offset(buf: &[u8], part: &[u8]) -> usize {
    (part.as_ptr() as usize).saturating_sub(buf.as_ptr() as usize)
}

fn build(
    method: &str,
    target: Bytes,
    minor: u8,
    lines: &[httparse::Header<'_>],
    slice: &dyn Fn(&[u8]) -> Bytes,
    limits: &Limits,
) -> Result<RequestHead, HttpError> {
    let method = Method::from_bytes(method.as_bytes())
        .map_err(|_| HttpError::MalformedHead("invalid method"))?;
    let uri = Uri::from_maybe_shared(target).map_err(|_| HttpError::InvalidTarget)?;
    let version = if minor == 0 {
        Version::HTTP_10
    } else {
        Version::HTTP_11
    };
    let mut headers = HeaderMap::with_capacity(lines.len());
    let mut framing = Framing::default();
    for line in lines {
        let name = HeaderName::from_bytes(line.name.as_bytes())
            .map_err(|_| HttpError::MalformedHead("invalid header name"))?;
        let value = if line.value.is_empty() {
            HeaderValue::from_static("")
        } else {
            HeaderValue::from_maybe_shared(slice(line.value))
                .map_err(|_| HttpError::MalformedHead("invalid header value"))?
        };
        framing.note(&name, value.as_bytes())?;
        headers.append(name, value);
    }
    let body = framing.body(version, limits)?;
    let keep_alive = !framing.close && (version == Version::HTTP_11 || framing.keep_alive);
    Ok(RequestHead {
        method,
        uri,
        version,
        headers,
        body,
        keep_alive,
        expect_continue: framing.expect_continue
            && version == Version::HTTP_11
            && body != BodyKind::Length(0),
    })
}

/// What the framing headers said, gathered line by line.
#[derive(Debug, Default)]
pub(super) struct Framing {
    pub(super) content_length: Option<u64>,
    pub(super) transfer_encoding: bool,
    /// Codings seen so far, in order: how many were `chunked`, whether the last one was, and
    /// whether any other coding came.
    chunked: u32,
    last_chunked: bool,
    other_coding: bool,
    hosts: u32,
    pub(super) close: bool,
    pub(super) keep_alive: bool,
    expect_continue: bool,
}

impl Framing {
    fn note(&mut self, name: &HeaderName, value: &[u8]) -> Result<(), HttpError> {
        if name == header::CONTENT_LENGTH {
            self.content_length(value)
        } else if name == header::TRANSFER_ENCODING {
            self.transfer_encoding(value)
        } else if name == header::HOST {
            self.hosts += 1;
            if !valid_host(value) {
                return Err(HttpError::InvalidHost);
            }
            Ok(())
        } else if name == header::CONNECTION {
            self.connection(value);
            Ok(())
        } else {
            if name == header::EXPECT {
                self.expect_continue |= trim(value).eq_ignore_ascii_case(b"100-continue");
            }
            Ok(())
        }
    }

    /// `Connection` options (RFC 9112 §9.3).
    pub(super) fn connection(&mut self, value: &[u8]) {
        for option in list(value) {
            self.close |= option.eq_ignore_ascii_case(b"close");
            self.keep_alive |= option.eq_ignore_ascii_case(b"keep-alive");
        }
    }

    /// The transfer codings, once all are seen: chunked (`Ok(true)`), none (`Ok(false)`),
    /// or refused (RFC 9112 §6.3: 400 for an unclear end, 501 for a coding not decoded).
    pub(super) fn chunked(&self) -> Result<bool, HttpError> {
        if !self.transfer_encoding {
            return Ok(false);
        }
        if !self.last_chunked || self.chunked != 1 {
            return Err(HttpError::ChunkedNotLast);
        }
        if self.other_coding {
            return Err(HttpError::UnsupportedTransferCoding);
        }
        Ok(true)
    }

    /// RFC 9110 §8.6: a list of identical valid values is accepted as one, anything else is
    /// refused (differing values, empty elements, signs, non-digits, overflow).
    pub(super) fn content_length(&mut self, value: &[u8]) -> Result<(), HttpError> {
        for element in value.split(|&b| b == b',') {
            let length = parse_decimal(trim(element)).ok_or(HttpError::InvalidContentLength)?;
            match self.content_length {
                Some(seen) if seen != length => return Err(HttpError::InvalidContentLength),
                _ => self.content_length = Some(length),
            }
        }
        Ok(())
    }

    /// RFC 9112 §6.1 and §7: transfer codings in order, across every line; empty list
    /// elements are ignored (RFC 9110 §5.6.1). A coding's parameters are allowed but
    /// `chunked` has none.
    pub(super) fn transfer_encoding(&mut self, value: &[u8]) -> Result<(), HttpError> {
        self.transfer_encoding = true;
        for element in list(value) {
            let (name, params) = match element.iter().position(|&b| b == b';') {
                Some(at) => (trim(&element[..at]), true),
                None => (element, false),
            };
            if name.is_empty() || !name.iter().all(|&b| is_tchar(b)) {
                return Err(HttpError::ChunkedNotLast);
            }
            self.last_chunked = name.eq_ignore_ascii_case(b"chunked");
            if self.last_chunked {
                if params {
                    return Err(HttpError::ChunkedNotLast);
                }
                self.chunked += 1;
            } else {
                self.other_coding = true;
            }
        }
        Ok(())
    }

    /// RFC 9112 §6.3, in the order that refuses ambiguity first: 400 for any doubt about where
    /// the body ends, then 501 for a coding this codec cannot decode, then 413.
    fn body(&self, version: Version, limits: &Limits) -> Result<BodyKind, HttpError> {
        match version {
            Version::HTTP_11 if self.hosts == 0 => return Err(HttpError::MissingHost),
            _ if self.hosts > 1 => return Err(HttpError::RepeatedHost),
            _ => {}
        }
        if self.transfer_encoding {
            if self.content_length.is_some() {
                return Err(HttpError::ContentLengthWithTransferEncoding);
            }
            if version == Version::HTTP_10 {
                return Err(HttpError::TransferEncodingInHttp10);
            }
            self.chunked()?;
            return Ok(BodyKind::Chunked);
        }
        let length = self.content_length.unwrap_or(0);
        if length > limits.max_body_len {
            return Err(HttpError::BodyTooLarge {
                max: limits.max_body_len,
            });
        }
        Ok(BodyKind::Length(length))
    }
}

/// The non-empty elements of a comma-separated list, trimmed of optional whitespace.
pub(super) fn list(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(trim)
        .filter(|e| !e.is_empty())
}

/// `value` without leading and trailing spaces and tabs (OWS).
pub(super) fn trim(value: &[u8]) -> &[u8] {
    let ows = |b: &u8| *b == b' ' || *b == b'\t';
    let start = value.iter().position(|b| !ows(b)).unwrap_or(value.len());
    let end = value.iter().rposition(|b| !ows(b)).map_or(start, |i| i + 1);
    &value[start..end]
}

/// `1*DIGIT` as a `u64`, or `None` if empty, not all digits, or too large.
pub(super) fn parse_decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &b| {
        let digit = b.checked_sub(b'0').filter(|d| *d < 10)?;
        n.checked_mul(10)?.checked_add(u64::from(digit))
    })
}

/// RFC 9110 §5.6.2 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// `Host = uri-host [ ":" port ]` (RFC 9110 §7.2), checked by its alphabet: reg-name, IPv4 and
/// IP-literal characters, never userinfo (`@`) or a path. Empty is allowed (a target with no
/// authority).
fn valid_host(value: &[u8]) -> bool {
    value
        .iter()
        .all(|&b| b.is_ascii_alphanumeric() || b"-._~%!$&'()*+,;=:[]".contains(&b))
}

/// 505 for a request line that names another HTTP version (or none: HTTP/0.9), 431 for too
/// many headers, 400 for the rest.
fn head_error(error: httparse::Error, buf: &[u8], limits: &Limits) -> HttpError {
    match error {
        httparse::Error::TooManyHeaders => HttpError::TooManyHeaders {
            max: limits.max_headers,
        },
        _ if other_version(error, buf) => HttpError::UnsupportedVersion,
        error => HttpError::MalformedHead(describe(error)),
    }
}

fn describe(error: httparse::Error) -> &'static str {
    match error {
        httparse::Error::HeaderName => {
            "invalid header name (whitespace before the colon, obs-fold or a bad byte)"
        }
        httparse::Error::HeaderValue => "invalid header value (a bare CR, NUL or control byte)",
        httparse::Error::NewLine => "invalid line ending",
        httparse::Error::Token => "invalid request line",
        httparse::Error::Version => "invalid HTTP version",
        _ => "invalid request head",
    }
}

/// Whether httparse refused the request line for its version: `HTTP/` and a digit that is not
/// 1.0 or 1.1 (it stops at the first wrong byte, so the rest need not have arrived), or no
/// version at all after a valid target (`GET /` then the line's end: HTTP/0.9).
fn other_version(error: httparse::Error, buf: &[u8]) -> bool {
    let start = buf
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .unwrap_or(buf.len());
    let line = &buf[start..];
    let Some(space) = line.iter().position(|&b| b == b' ') else {
        return false;
    };
    if space == 0 || !line[..space].iter().all(|&b| is_tchar(b)) {
        return false;
    }
    let after = &line[space + 1..];
    let Some(end) = after
        .iter()
        .position(|&b| matches!(b, b' ' | b'\r' | b'\n'))
    else {
        return false;
    };
    match (error, after[end]) {
        (httparse::Error::Token, b'\r' | b'\n') => end > 0,
        (httparse::Error::Version, b' ') => after[end + 1..]
            .strip_prefix(b"HTTP/")
            .is_some_and(|v| v.first().is_some_and(u8::is_ascii_digit)),
        _ => false,
    }
}

/// The verdict on a partial head that has grown past the limits: 414 if its request line is
/// unfinished and its target over [`Limits::max_target_len`], 400 for another over-long
/// request line, 431 for too many header bytes. `Ok` while within them.
pub(super) fn check_partial(
    pending: &[u8],
    first_line_done: bool,
    limits: &Limits,
) -> Result<(), HttpError> {
    if !first_line_done && pending.len() > max_request_line(limits) {
        return Err(request_line_too_long(pending, limits));
    }
    if pending.len() > limits.max_head_len {
        return Err(HttpError::HeadTooLarge {
            max: limits.max_head_len,
        });
    }
    Ok(())
}

/// The bytes within which the request line must end (leading empty lines included): room for
/// a method, two spaces and `HTTP/1.1\r\n` around a target of the maximum length.
fn max_request_line(limits: &Limits) -> usize {
    const LINE_SLACK: usize = 64;
    limits.max_target_len.saturating_add(LINE_SLACK)
}

/// Refuses a head whose request line does not end within [`max_request_line`] bytes, as
/// [`check_partial`] does for one still arriving, so a request line is refused the same
/// whether it came in pieces or whole.
fn check_request_line(buf: &[u8], limits: &Limits) -> Result<(), HttpError> {
    let max = max_request_line(limits);
    let window = &buf[..buf.len().min(max.saturating_add(1))];
    if buf.len() <= max || SectionScan::default().scan(window, false).is_some() {
        return Ok(());
    }
    Err(request_line_too_long(buf, limits))
}

/// 414 or 400 for a request line not ended within [`max_request_line`] bytes, judged on those
/// bytes and the next only (however many more have arrived).
fn request_line_too_long(pending: &[u8], limits: &Limits) -> HttpError {
    let window = &pending[..pending
        .len()
        .min(max_request_line(limits).saturating_add(1))];
    let target = window
        .trim_ascii_start()
        .split(|&b| b == b' ')
        .nth(1)
        .unwrap_or(&[]);
    if target.len() > limits.max_target_len {
        return HttpError::TargetTooLong {
            max: limits.max_target_len,
        };
    }
    HttpError::MalformedHead("request line too long")
}
