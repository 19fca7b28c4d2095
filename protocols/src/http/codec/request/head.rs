//! [`RequestHead`], and how one is parsed: httparse reads the request line and header lines,
//! the shared header reader notes the framing headers, and the `http` types are built.

use std::cell::RefCell;
use std::mem::MaybeUninit;

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, Method, Uri, Version};

use super::super::headers::{is_tchar, read_fields, shared_slice, Delimited, Message};
use super::super::read::HeadParser;
use super::super::scan::SectionScan;
use super::super::{BodyKind, HttpError, Limits};

/// Up to this many header slots live on the stack while parsing; a larger
/// [`Limits::max_headers`] allocates them per head.
const STACK_HEADERS: usize = 100;

/// The `http` crate refuses longer URIs.
const HTTP_CRATE_MAX_URI: usize = u16::MAX as usize - 1;

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
    /// [`write_continue`](super::super::write_continue) before reading the body, or a final
    /// status instead (then close, or read and discard the body, to keep the connection).
    pub expect_continue: bool,
}

/// Parses request heads, copying each into an arena that the heads parsed from one read
/// share.
#[derive(Debug, Default)]
pub(super) struct RequestParser {
    /// Where heads are copied: one allocation for every head of a pipelined read instead of
    /// one each (and one more for the count their slices share). Handed to the thread's
    /// spare blocks by [`release`](Self::release) once the decoder is between requests with
    /// nothing buffered, so an idle connection holds none of it; a head handed out keeps
    /// alive only the block it lies in.
    arena: BytesMut,
    /// `arena` is a block (not the empty `BytesMut::new()`).
    holds_block: bool,
}

/// The smallest block the arena allocates: room for several typical heads.
const ARENA_BLOCK: usize = 4096;

/// How many released arena blocks a thread keeps for the next heads it parses.
const SPARE_BLOCKS: usize = 32;

thread_local! {
    /// Arena blocks that decoders between requests let go of: the next head parsed on this
    /// thread, on any connection, takes one instead of allocating. A block is reused in place
    /// once every head cut from it has been dropped (else `reserve` allocates a fresh one), so
    /// a keep-alive request costs no allocation for its head, and an idle connection still
    /// holds none. At most [`SPARE_BLOCKS`] blocks per thread.
    static SPARE_ARENAS: RefCell<Vec<BytesMut>> = const { RefCell::new(Vec::new()) };
}

impl RequestParser {
    /// Lets go of the arena (the heads handed out keep their block alive), for the thread's
    /// next head to take.
    pub(super) fn release(&mut self) {
        if !std::mem::take(&mut self.holds_block) {
            return;
        }
        let block = std::mem::take(&mut self.arena);
        // A thread being torn down has no spares to keep: the block is just dropped.
        let _ = SPARE_ARENAS.try_with(|spares| {
            let mut spares = spares.borrow_mut();
            if spares.len() < SPARE_BLOCKS {
                spares.push(block);
            }
        });
    }

    /// The arena's spare room.
    #[cfg(test)]
    pub(super) fn room(&self) -> usize {
        self.arena.capacity()
    }

    /// `head`, copied into the arena.
    fn copy(&mut self, head: &[u8]) -> Bytes {
        if self.arena.capacity() < head.len() {
            if !self.holds_block {
                if let Some(spare) = SPARE_ARENAS
                    .try_with(|spares| spares.borrow_mut().pop())
                    .ok()
                    .flatten()
                {
                    self.arena = spare;
                }
                self.holds_block = true;
            }
            // Reclaims the block in place when every head cut from it has been dropped.
            self.arena.reserve(head.len().max(ARENA_BLOCK));
        }
        self.arena.extend_from_slice(head);
        self.arena.split().freeze()
    }
}

impl HeadParser for RequestParser {
    type Head = RequestHead;

    fn parse(
        &mut self,
        buf: &[u8],
        limits: &Limits,
    ) -> Result<Option<(RequestHead, usize)>, HttpError> {
        parse(buf, limits, |head| self.copy(head))
    }

    fn check_partial(
        &self,
        pending: &[u8],
        scan: &SectionScan,
        limits: &Limits,
    ) -> Result<(), HttpError> {
        check_partial(pending, scan, limits)
    }
}

/// Parses a complete head at the start of `buf`, or says more bytes are needed (`Ok(None)`).
fn parse(
    buf: &[u8],
    limits: &Limits,
    copy: impl FnOnce(&[u8]) -> Bytes,
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
    let shared = copy(&buf[..len]);
    let method = Method::from_bytes(method.as_bytes())
        .map_err(|_| HttpError::MalformedHead("invalid method"))?;
    let uri = Uri::from_maybe_shared(shared_slice(&shared, buf, path.as_bytes()))
        .map_err(|_| HttpError::InvalidTarget)?;
    check_target_form(&method, path.as_bytes(), &uri)?;
    let version = if minor == 0 {
        Version::HTTP_10
    } else {
        Version::HTTP_11
    };
    let (headers, framing) = read_fields(request.headers, buf, &shared, Message::Request)?;
    framing.check_host(version)?;
    let body = match framing.body(version, false, limits.max_body_len)? {
        Delimited::Length(length) => BodyKind::Length(length),
        Delimited::Chunked => BodyKind::Chunked,
        // RFC 9112 §6.3 item 7: a request without framing headers has no body.
        Delimited::Unframed => BodyKind::Length(0),
    };
    let head = RequestHead {
        method,
        uri,
        version,
        headers,
        body,
        keep_alive: framing.persistent(version),
        expect_continue: framing.expects_continue()
            && version == Version::HTTP_11
            && body != BodyKind::Length(0),
    };
    Ok(Some((head, len)))
}

/// RFC 9112 §3.2: the target is in origin-form (`/path?query`) for any method but `CONNECT`,
/// in absolute-form (`http://host/path`, or `https`) for any method but `CONNECT`, in
/// authority-form (`host:port`) for `CONNECT` only, which has no other, and in
/// asterisk-form (`*`) for `OPTIONS` only. Anything else (`index.txt`, `evil.com:80` for a
/// `GET`, `http:`) is refused: what the `http` crate makes of it would not be the resource
/// the client named. Userinfo (`user@`) is refused in both forms with an authority
/// (RFC 9110 §4.2.4).
fn check_target_form(method: &Method, target: &[u8], uri: &Uri) -> Result<(), HttpError> {
    let connect = *method == Method::CONNECT;
    let allowed = match target {
        [b'/', ..] => !connect,
        b"*" => *method == Method::OPTIONS,
        _ if connect => is_authority_form(uri),
        _ => is_absolute_form(uri),
    };
    if allowed {
        Ok(())
    } else {
        Err(HttpError::InvalidTarget)
    }
}

/// `http://host...` or `https://host...`, with a non-empty host and no userinfo.
fn is_absolute_form(uri: &Uri) -> bool {
    let http = uri.scheme().is_some_and(|scheme| {
        *scheme == http::uri::Scheme::HTTP || *scheme == http::uri::Scheme::HTTPS
    });
    http && uri.authority().is_some_and(|a| has_host(a, false))
}

/// `host:port`, and nothing else: no scheme, no path, no userinfo.
fn is_authority_form(uri: &Uri) -> bool {
    uri.scheme().is_none()
        && uri.path_and_query().is_none()
        && uri.authority().is_some_and(|a| has_host(a, true))
}

fn has_host(authority: &http::uri::Authority, needs_port: bool) -> bool {
    !authority.host().is_empty()
        && !authority.as_str().contains('@')
        && (!needs_port || authority.port_u16().is_some())
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
/// request line, 431 for too many header bytes, the empty lines before the request line
/// included (RFC 9112 §2.2 lets them be skipped, not sent without end). `Ok` while within
/// them.
fn check_partial(pending: &[u8], scan: &SectionScan, limits: &Limits) -> Result<(), HttpError> {
    let line = &pending[scan.leading_empty_lines().min(pending.len())..];
    if !scan.first_line_done() && line.len() > max_request_line(limits) {
        return Err(request_line_too_long(line, limits));
    }
    if pending.len() > limits.max_head_len {
        return Err(HttpError::HeadTooLarge {
            max: limits.max_head_len,
        });
    }
    Ok(())
}

/// The bytes within which the request line must end, the empty lines before it aside: room
/// for a method, two spaces and `HTTP/1.1\r\n` around a target of the maximum length.
fn max_request_line(limits: &Limits) -> usize {
    const LINE_SLACK: usize = 64;
    limits.max_target_len.saturating_add(LINE_SLACK)
}

/// Holds a head read whole to the bound [`check_partial`] holds one arriving in pieces to, so
/// a request line is refused the same however it was read.
fn check_request_line(buf: &[u8], limits: &Limits) -> Result<(), HttpError> {
    let max = max_request_line(limits);
    if buf.len() <= max {
        return Ok(());
    }
    let window = &buf[..buf.len().min(limits.max_head_len.saturating_add(1))];
    let mut scan = SectionScan::default();
    let scanned = scan.scan(window, false).map_or(window.len(), |n| n - 1);
    let leading = scan.leading_empty_lines().min(scanned);
    if scanned - leading > max {
        return Err(request_line_too_long(&buf[leading..], limits));
    }
    Ok(())
}

/// 414 or 400 for a request line (`line`, from its first byte) not ended within
/// [`max_request_line`] bytes, judged on those bytes and the next only, however many more have
/// arrived.
fn request_line_too_long(line: &[u8], limits: &Limits) -> HttpError {
    let window = &line[..line.len().min(max_request_line(limits).saturating_add(1))];
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
