//! The header section, in both directions and for both messages, written once.
//!
//! Reading: httparse's lines become a `HeaderMap` whose values are slices of one shared copy
//! of the head, and the headers that say where a message ends or whether the connection
//! persists are noted as they pass ([`Framing`]). The checks on those headers are what keeps
//! two parsers from disagreeing on where a message ends (request and response smuggling), so
//! the request decoder and the response decoder both go through [`read_fields`], and decide
//! the framing with [`Framing::body`].
//!
//! Writing: [`put_fields`] writes the caller's header lines, leaving out the ones the encoder
//! writes itself, and [`put_field`] one line. Every name goes on the wire lower-case: the
//! `http` crate's `HeaderName` is lower-case, and the encoders' own names are written the same
//! way, so a message never mixes `Content-Length` and `content-type` (field names are
//! case-insensitive, RFC 9110 §5.1; HTTP/2 and HTTP/3 require lower case).

use bytes::{BufMut, Bytes};
use http::header::{self, HeaderName, HeaderValue};
use http::{HeaderMap, Version};

use super::HttpError;

/// Which message a header section heads: the rules differ a little (`Host` and `Expect`
/// are a request's; the framing without a framing header is not the same).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Message {
    Request,
    Response,
}

impl Message {
    /// The message's name, for errors.
    pub(super) fn name(self) -> &'static str {
        match self {
            Message::Request => "request",
            Message::Response => "response",
        }
    }
}

/// The header map of a head, its values sliced from `shared` (a copy of `buf`'s first
/// bytes, which httparse's `lines` point into), and what its framing headers said.
pub(super) fn read_fields(
    lines: &[httparse::Header<'_>],
    buf: &[u8],
    shared: &Bytes,
    message: Message,
) -> Result<(HeaderMap, Framing), HttpError> {
    let mut headers = HeaderMap::with_capacity(lines.len());
    let mut framing = Framing::new(message);
    for line in lines {
        let (name, value) = field(line, buf, shared).map_err(|bad| {
            HttpError::MalformedHead(match bad {
                Bad::Name => "invalid header name",
                Bad::Value => "invalid header value",
            })
        })?;
        framing.note(&name, value.as_bytes())?;
        headers.append(name, value);
    }
    Ok((headers, framing))
}

/// The fields of a trailer section (RFC 9112 §7.1.2): names and values checked as a head's,
/// no framing meaning.
pub(super) fn read_trailer_fields(
    lines: &[httparse::Header<'_>],
    buf: &[u8],
    shared: &Bytes,
) -> Result<HeaderMap, HttpError> {
    let mut trailers = HeaderMap::with_capacity(lines.len());
    for line in lines {
        let (name, value) = field(line, buf, shared).map_err(|bad| {
            HttpError::MalformedTrailers(match bad {
                Bad::Name => "invalid trailer name",
                Bad::Value => "invalid trailer value",
            })
        })?;
        trailers.append(name, value);
    }
    Ok(trailers)
}

/// Which half of a field line the `http` crate refused.
enum Bad {
    Name,
    Value,
}

fn field(
    line: &httparse::Header<'_>,
    buf: &[u8],
    shared: &Bytes,
) -> Result<(HeaderName, HeaderValue), Bad> {
    let name = HeaderName::from_bytes(line.name.as_bytes()).map_err(|_| Bad::Name)?;
    let value = if line.value.is_empty() {
        HeaderValue::from_static("")
    } else {
        HeaderValue::from_maybe_shared(shared_slice(shared, buf, line.value))
            .map_err(|_| Bad::Value)?
    };
    Ok((name, value))
}

/// `part`, a slice of `buf`, as the same bytes of `shared` (a copy of `buf`'s start).
pub(super) fn shared_slice(shared: &Bytes, buf: &[u8], part: &[u8]) -> Bytes {
    let at = (part.as_ptr() as usize).saturating_sub(buf.as_ptr() as usize);
    shared.slice(at..at + part.len())
}

/// How a message's body is delimited, from its framing headers (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Delimited {
    /// This many bytes: `Content-Length`, or 0 for a message that has no body.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Neither header: a request has no body (§6.3 item 7), a response's runs until the
    /// server closes (item 8).
    Unframed,
}

/// What the framing headers said, gathered line by line.
#[derive(Debug)]
pub(super) struct Framing {
    message: Message,
    content_length: Option<u64>,
    transfer_encoding: bool,
    /// Codings seen so far, in order: how many were `chunked`, whether the last one was, and
    /// whether any other coding came.
    chunked: u32,
    last_chunked: bool,
    other_coding: bool,
    hosts: u32,
    close: bool,
    keep_alive: bool,
    expect_continue: bool,
}

impl Framing {
    fn new(message: Message) -> Self {
        Framing {
            message,
            content_length: None,
            transfer_encoding: false,
            chunked: 0,
            last_chunked: false,
            other_coding: false,
            hosts: 0,
            close: false,
            keep_alive: false,
            expect_continue: false,
        }
    }

    fn note(&mut self, name: &HeaderName, value: &[u8]) -> Result<(), HttpError> {
        let request = self.message == Message::Request;
        if name == header::CONTENT_LENGTH {
            self.content_length(value)
        } else if name == header::TRANSFER_ENCODING {
            self.transfer_encoding(value)
        } else if name == header::CONNECTION {
            self.connection(value);
            Ok(())
        } else if request && name == header::HOST {
            self.hosts += 1;
            if !valid_host(value) {
                return Err(HttpError::InvalidHost);
            }
            Ok(())
        } else {
            if request && name == header::EXPECT {
                self.expect_continue |= trim(value).eq_ignore_ascii_case(b"100-continue");
            }
            Ok(())
        }
    }

    /// `Connection` options (RFC 9112 §9.3).
    fn connection(&mut self, value: &[u8]) {
        self.close |= has_close_option(value);
        self.keep_alive |= list(value).any(|option| option.eq_ignore_ascii_case(b"keep-alive"));
    }

    /// RFC 9110 §8.6: a list of identical valid values is accepted as one, anything else is
    /// refused (differing values, empty elements, signs, non-digits, overflow).
    fn content_length(&mut self, value: &[u8]) -> Result<(), HttpError> {
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
    fn transfer_encoding(&mut self, value: &[u8]) -> Result<(), HttpError> {
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

    /// The transfer codings, once all are seen: chunked (`Ok(true)`), none (`Ok(false)`),
    /// or refused (RFC 9112 §6.3: 400 for an unclear end, 501 for a coding not decoded).
    fn chunked(&self) -> Result<bool, HttpError> {
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

    /// Where the body ends (RFC 9112 §6.3), refusing ambiguity first: `Content-Length` with
    /// `Transfer-Encoding`, and `Transfer-Encoding` in HTTP/1.0, even where no body follows
    /// (two parsers could disagree on where it ends); then, only where a body follows
    /// (`bodiless` false), codings this codec cannot decode (501 after the 400s), and a
    /// `Content-Length` over `max_body_len` (413).
    pub(super) fn body(
        &self,
        version: Version,
        bodiless: bool,
        max_body_len: u64,
    ) -> Result<Delimited, HttpError> {
        if self.transfer_encoding {
            if self.content_length.is_some() {
                return Err(HttpError::ContentLengthWithTransferEncoding);
            }
            if version == Version::HTTP_10 {
                return Err(HttpError::TransferEncodingInHttp10 {
                    what: self.message.name(),
                });
            }
        }
        if bodiless {
            return Ok(Delimited::Length(0));
        }
        if self.chunked()? {
            return Ok(Delimited::Chunked);
        }
        match self.content_length {
            Some(length) if length > max_body_len => {
                Err(HttpError::BodyTooLarge { max: max_body_len })
            }
            Some(length) => Ok(Delimited::Length(length)),
            None => Ok(Delimited::Unframed),
        }
    }

    /// Whether the connection persists after the message as far as its version and
    /// `Connection` say (RFC 9112 §9.3): HTTP/1.1 unless `close`, HTTP/1.0 only with
    /// `keep-alive` (and no `close`).
    pub(super) fn persistent(&self, version: Version) -> bool {
        !self.close && (version == Version::HTTP_11 || self.keep_alive)
    }

    /// A request's `Host` lines (RFC 9112 §3.2): exactly one in HTTP/1.1, at most one in
    /// HTTP/1.0.
    pub(super) fn check_host(&self, version: Version) -> Result<(), HttpError> {
        match version {
            Version::HTTP_11 if self.hosts == 0 => Err(HttpError::MissingHost),
            _ if self.hosts > 1 => Err(HttpError::RepeatedHost),
            _ => Ok(()),
        }
    }

    /// Whether the request said `Expect: 100-continue`.
    pub(super) fn expects_continue(&self) -> bool {
        self.expect_continue
    }
}

/// The non-empty elements of a comma-separated list, trimmed of optional whitespace.
fn list(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(trim)
        .filter(|e| !e.is_empty())
}

/// Whether a `Connection` value carries the `close` option (RFC 9112 §9.6).
pub(super) fn has_close_option(value: &[u8]) -> bool {
    list(value).any(|option| option.eq_ignore_ascii_case(b"close"))
}

/// `value` without leading and trailing spaces and tabs (OWS).
fn trim(value: &[u8]) -> &[u8] {
    let ows = |b: &u8| *b == b' ' || *b == b'\t';
    let start = value.iter().position(|b| !ows(b)).unwrap_or(value.len());
    let end = value.iter().rposition(|b| !ows(b)).map_or(start, |i| i + 1);
    &value[start..end]
}

/// `1*DIGIT` as a `u64`, or `None` if empty, not all digits, or too large.
fn parse_decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &b| {
        let digit = b.checked_sub(b'0').filter(|d| *d < 10)?;
        n.checked_mul(10)?.checked_add(u64::from(digit))
    })
}

/// RFC 9110 §5.6.2 `tchar`.
pub(super) fn is_tchar(b: u8) -> bool {
    TCHAR[usize::from(b)]
}

/// A table per byte, true for letters, digits and `extra`: one load per byte where a search of
/// `extra` would be a call (`memchr`) per byte.
const fn alphabet(extra: &[u8]) -> [bool; 256] {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = (b as u8).is_ascii_alphanumeric();
        b += 1;
    }
    let mut i = 0;
    while i < extra.len() {
        table[extra[i] as usize] = true;
        i += 1;
    }
    table
}

/// The bytes of a `token` (RFC 9110 §5.6.2).
static TCHAR: [bool; 256] = alphabet(b"!#$%&'*+-.^_`|~");

/// The bytes of a `Host` value: see [`valid_host`].
static HOST: [bool; 256] = alphabet(b"-._~%!$&'()*+,;=:[]");

/// `Host = uri-host [ ":" port ]` (RFC 9110 §7.2), checked by its alphabet: reg-name, IPv4 and
/// IP-literal characters, never userinfo (`@`) or a path. Empty is allowed (a target with no
/// authority).
fn valid_host(value: &[u8]) -> bool {
    value.iter().all(|&b| HOST[usize::from(b)])
}

/// Writes the header lines of `headers` except those `skipped` says the encoder writes itself.
pub(super) fn put_fields<'h, B, H>(headers: H, skipped: impl Fn(&HeaderName) -> bool, out: &mut B)
where
    B: BufMut,
    H: IntoIterator<Item = (&'h HeaderName, &'h HeaderValue)>,
{
    for (name, value) in headers {
        if !skipped(name) {
            put_field(name.as_str().as_bytes(), value.as_bytes(), out);
        }
    }
}

/// Writes one field line: `name: value` and CRLF. `name` is lower-case (a `HeaderName`'s, or
/// one of the encoders' own).
pub(super) fn put_field<B: BufMut>(name: &[u8], value: &[u8], out: &mut B) {
    out.put_slice(name);
    out.put_slice(b": ");
    out.put_slice(value);
    out.put_slice(b"\r\n");
}

/// Writes `content-length: n`.
pub(super) fn put_content_length<B: BufMut>(length: u64, out: &mut B) {
    out.put_slice(b"content-length: ");
    put_decimal(length, out);
    out.put_slice(b"\r\n");
}

/// The framing header of a chunked body.
pub(super) const CHUNKED: &[u8] = b"transfer-encoding: chunked\r\n";

pub(super) fn put_decimal<B: BufMut>(mut n: u64, out: &mut B) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.put_slice(&digits[at..]);
}

#[cfg(test)]
mod alphabet_tests {
    use super::*;

    #[test]
    fn the_tables_hold_exactly_the_rfc_alphabets() {
        for b in 0..=255u8 {
            let alnum = b.is_ascii_alphanumeric();
            assert_eq!(is_tchar(b), alnum || b"!#$%&'*+-.^_`|~".contains(&b), "{b}");
            assert_eq!(
                valid_host(&[b]),
                alnum || b"-._~%!$&'()*+,;=:[]".contains(&b),
                "{b}"
            );
        }
        assert!(valid_host(b"") && valid_host(b"[::1]:8080") && !valid_host(b"a@b"));
    }
}
