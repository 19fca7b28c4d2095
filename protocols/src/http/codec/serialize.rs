//! The response side: the status line and headers with the framing the body needs
//! ([`ResponseHead`]), the body's framing ([`ResponseBody`]), the interim 100 Continue
//! ([`write_continue`]) and the `Date` value ([`HttpDate`]). Everything is written into a
//! buffer the caller owns; nothing here allocates.

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::BufMut;
use http::header::{self, HeaderName, HeaderValue};
use http::{StatusCode, Version};

use super::{BodyKind, HttpError, RequestHead};

/// Writes the interim `100 Continue` response (RFC 9110 §15.2.1), to send before reading the
/// body of a request whose head has [`expect_continue`](RequestHead::expect_continue).
pub fn write_continue<B: BufMut>(out: &mut B) {
    out.put_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
}

/// A response's status and framing, and what of the request it answers matters to them. Build
/// it, then [`write`](ResponseHead::write) it with the headers.
///
/// What it writes (RFC 9112 §6, RFC 9110 §6.4.1, §8.6):
/// - `HTTP/1.1` whatever the request's version (a server sends its own version).
/// - The caller's headers, except `Content-Length`, `Transfer-Encoding` and `Connection`
///   (framing and persistence are decided here) and, when a date is given, `Date`.
/// - `Date` if given.
/// - For [`BodyKind::Length`]: `Content-Length`. For [`BodyKind::Chunked`]:
///   `Transfer-Encoding: chunked` to an HTTP/1.1 request, and to HTTP/1.0 (which has no
///   chunked coding) no framing header at all: the body ends when the connection closes.
/// - No body for 1xx, 204 and 304 responses and for responses to `HEAD`, whatever is written
///   to the [`ResponseBody`]; the headers of a `HEAD` response are those of a `GET` one, and a
///   304 keeps a `Content-Length` (the length a 200 would have had); 1xx and 204 have neither
///   framing header.
/// - `Connection: close` when the connection will not persist (the request asked so, the
///   server decided so with [`close`](ResponseHead::close), or the body is delimited by the
///   close); `Connection: keep-alive` to an HTTP/1.0 request that persists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseHead<'a> {
    status: StatusCode,
    body: BodyKind,
    date: Option<&'a HttpDate>,
    answers_head: bool,
    version: Version,
    keep_alive: bool,
}

impl<'a> ResponseHead<'a> {
    /// A response with this status and body, answering an HTTP/1.1 `GET` that keeps the
    /// connection alive (see [`answering`](ResponseHead::answering)).
    pub fn new(status: StatusCode, body: BodyKind) -> Self {
        ResponseHead {
            status,
            body,
            date: None,
            answers_head: false,
            version: Version::HTTP_11,
            keep_alive: true,
        }
    }

    /// Answers `request`: its method (`HEAD` has no body), version and keep-alive.
    pub fn answering(mut self, request: &RequestHead) -> Self {
        self.answers_head = request.method == http::Method::HEAD;
        self.version = request.version;
        self.keep_alive &= request.keep_alive;
        self
    }

    /// Sends `date` as the `Date` header (computed by the caller, at most once a second: time
    /// is an input).
    pub fn date(mut self, date: &'a HttpDate) -> Self {
        self.date = Some(date);
        self
    }

    /// Closes the connection after this response when `close` is true (the server's decision:
    /// an error, a shutdown); it never reopens one the request closes.
    pub fn close(mut self, close: bool) -> Self {
        self.keep_alive &= !close;
        self
    }

    /// Whether the body is sent (not for `HEAD`, 1xx, 204, 304).
    fn has_body(&self) -> bool {
        !(self.answers_head
            || self.status.is_informational()
            || self.status == StatusCode::NO_CONTENT
            || self.status == StatusCode::NOT_MODIFIED)
    }

    /// Writes the status line and header section to `out`, and returns what frames the body.
    /// `headers` is any sequence of header pairs: `&HeaderMap` (reused from response to response,
    /// nothing is allocated) or pairs from a slice.
    pub fn write<'h, B, H>(&self, headers: H, out: &mut B) -> ResponseBody
    where
        B: BufMut,
        H: IntoIterator<Item = (&'h HeaderName, &'h HeaderValue)>,
    {
        self.write_status_line(out);
        for (name, value) in headers {
            if skipped(name, self.date.is_some()) {
                continue;
            }
            out.put_slice(name.as_str().as_bytes());
            out.put_slice(b": ");
            out.put_slice(value.as_bytes());
            out.put_slice(b"\r\n");
        }
        if let Some(date) = self.date {
            out.put_slice(b"Date: ");
            out.put_slice(date.as_bytes());
            out.put_slice(b"\r\n");
        }
        let framing = self.write_framing(out);
        let keep_alive = self.keep_alive && framing != Framing::UntilClose;
        if !keep_alive {
            out.put_slice(b"Connection: close\r\n");
        } else if self.version == Version::HTTP_10 {
            out.put_slice(b"Connection: keep-alive\r\n");
        }
        out.put_slice(b"\r\n");
        let framing = if self.has_body() {
            framing
        } else {
            Framing::Suppressed
        };
        ResponseBody {
            framing,
            keep_alive,
        }
    }

    fn write_status_line<B: BufMut>(&self, out: &mut B) {
        out.put_slice(b"HTTP/1.1 ");
        out.put_slice(self.status.as_str().as_bytes());
        out.put_u8(b' ');
        let reason = self.status.canonical_reason().unwrap_or("");
        out.put_slice(reason.as_bytes());
        out.put_slice(b"\r\n");
    }

    /// The framing header, and how the body is framed.
    fn write_framing<B: BufMut>(&self, out: &mut B) -> Framing {
        let bodiless = self.status.is_informational() || self.status == StatusCode::NO_CONTENT;
        match self.body {
            _ if bodiless => Framing::Suppressed,
            BodyKind::Length(length) => {
                out.put_slice(b"Content-Length: ");
                put_decimal(length, out);
                out.put_slice(b"\r\n");
                Framing::Length {
                    declared: length,
                    written: 0,
                }
            }
            BodyKind::Chunked if self.status == StatusCode::NOT_MODIFIED => Framing::Suppressed,
            BodyKind::Chunked if self.version == Version::HTTP_10 => Framing::UntilClose,
            BodyKind::Chunked => {
                out.put_slice(b"Transfer-Encoding: chunked\r\n");
                Framing::Chunked
            }
        }
    }
}

/// Headers the serializer writes itself.
fn skipped(name: &HeaderName, date_given: bool) -> bool {
    name == header::CONTENT_LENGTH
        || name == header::TRANSFER_ENCODING
        || name == header::CONNECTION
        || (date_given && name == header::DATE)
}

/// How the body goes on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// Nothing is sent (HEAD, 1xx, 204, 304).
    Suppressed,
    /// Exactly `declared` bytes.
    Length { declared: u64, written: u64 },
    /// Chunks, then the last chunk.
    Chunked,
    /// Raw bytes until the connection closes (a streamed body to HTTP/1.0).
    UntilClose,
}

/// Frames one response's body: [`data`](ResponseBody::data) for each piece, then
/// [`finish`](ResponseBody::finish). For a body the response has none of (`HEAD`, 204, 304)
/// both write nothing, so a handler can produce the body of a `GET` for a `HEAD` unchanged.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use = "a response body must be finished"]
pub struct ResponseBody {
    framing: Framing,
    keep_alive: bool,
}

impl ResponseBody {
    /// Whether the connection persists after this response. When false the server closes it
    /// once the response is sent (and reads no further request).
    pub fn keep_alive(&self) -> bool {
        self.keep_alive
    }

    /// Whether body bytes go on the wire (false for `HEAD`, 1xx, 204 and 304).
    pub fn sends_body(&self) -> bool {
        self.framing != Framing::Suppressed
    }

    /// Writes `data` as the next piece of the body (a chunk of its own when chunked; an empty
    /// piece writes nothing, as an empty chunk would end the body). Fails, writing nothing, if
    /// it would go past the `Content-Length` announced.
    pub fn data<B: BufMut>(&mut self, data: &[u8], out: &mut B) -> Result<(), HttpError> {
        if self.start_data(data.len(), out)? {
            out.put_slice(data);
            self.end_data(out);
        }
        Ok(())
    }

    /// Writes the framing before `len` body bytes that the caller sends itself (a buffer
    /// queued as is, to avoid copying it here), then says whether to send them (false when the
    /// body is suppressed or `len` is 0). After sending them, call
    /// [`end_data`](ResponseBody::end_data).
    pub fn start_data<B: BufMut>(&mut self, len: usize, out: &mut B) -> Result<bool, HttpError> {
        let len64 = len as u64;
        match &mut self.framing {
            _ if len == 0 => return Ok(false),
            Framing::Suppressed => return Ok(false),
            Framing::Length { declared, written } => {
                let total = written.saturating_add(len64);
                if total > *declared {
                    return Err(HttpError::BodyLengthMismatch {
                        declared: *declared,
                        written: total,
                    });
                }
                *written = total;
            }
            Framing::Chunked => {
                put_hex(len64, out);
                out.put_slice(b"\r\n");
            }
            Framing::UntilClose => {}
        }
        Ok(true)
    }

    /// Writes what follows the body bytes announced by [`start_data`](ResponseBody::start_data)
    /// when it returned true (a chunk's CRLF).
    pub fn end_data<B: BufMut>(&mut self, out: &mut B) {
        if self.framing == Framing::Chunked {
            out.put_slice(b"\r\n");
        }
    }

    /// Ends the body: the last chunk when chunked. Fails if fewer bytes than the
    /// `Content-Length` were written (the connection must then close: the peer waits for the
    /// rest).
    pub fn finish<B: BufMut>(self, out: &mut B) -> Result<(), HttpError> {
        self.finish_with_trailers(std::iter::empty(), out)
    }

    /// [`finish`](ResponseBody::finish) with trailer fields after the last chunk (dropped
    /// unless chunked: RFC 9110 §6.5 lets a sender discard them).
    pub fn finish_with_trailers<'h, B, H>(self, trailers: H, out: &mut B) -> Result<(), HttpError>
    where
        B: BufMut,
        H: IntoIterator<Item = (&'h HeaderName, &'h HeaderValue)>,
    {
        match self.framing {
            Framing::Length { declared, written } if written != declared => {
                Err(HttpError::BodyLengthMismatch { declared, written })
            }
            Framing::Chunked => {
                out.put_slice(b"0\r\n");
                for (name, value) in trailers {
                    out.put_slice(name.as_str().as_bytes());
                    out.put_slice(b": ");
                    out.put_slice(value.as_bytes());
                    out.put_slice(b"\r\n");
                }
                out.put_slice(b"\r\n");
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

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

pub(super) fn put_hex<B: BufMut>(mut n: u64, out: &mut B) {
    let mut digits = [0u8; 16];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b"0123456789abcdef"[(n & 15) as usize];
        n >>= 4;
        if n == 0 {
            break;
        }
    }
    out.put_slice(&digits[at..]);
}

/// A `Date` value in IMF-fixdate form (`Sun, 06 Nov 1994 08:49:37 GMT`, RFC 9110 §5.6.7),
/// formatted from a time the caller passes in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HttpDate([u8; 29]);

impl HttpDate {
    /// The date of `time` (times before 1970 give 1970-01-01).
    pub fn from_system_time(time: SystemTime) -> Self {
        let secs = time
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_secs());
        Self::from_unix_secs(secs)
    }

    /// The date `secs` seconds after 1970-01-01T00:00:00Z.
    pub fn from_unix_secs(secs: u64) -> Self {
        const DAYS: [&[u8; 3]; 7] = [b"Thu", b"Fri", b"Sat", b"Sun", b"Mon", b"Tue", b"Wed"];
        const MONTHS: [&[u8; 3]; 12] = [
            b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
            b"Dec",
        ];
        let days = secs / 86_400;
        let (year, month, day) = civil_from_days(days);
        let rem = secs % 86_400;
        let mut out = *b"Thu, 01 Jan 1970 00:00:00 GMT";
        out[..3].copy_from_slice(DAYS[(days % 7) as usize]);
        put_two(&mut out[5..7], day);
        out[8..11].copy_from_slice(MONTHS[(month - 1) as usize]);
        let year = year.min(9999);
        put_two(&mut out[12..14], year / 100);
        put_two(&mut out[14..16], year % 100);
        put_two(&mut out[17..19], rem / 3600);
        put_two(&mut out[20..22], rem / 60 % 60);
        put_two(&mut out[23..25], rem % 60);
        HttpDate(out)
    }

    /// The 29 bytes of the value.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

fn put_two(out: &mut [u8], n: u64) {
    out[0] = b'0' + (n / 10 % 10) as u8;
    out[1] = b'0' + (n % 10) as u8;
}

/// (year, month 1-12, day 1-31) of a day count since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`, for non-negative days).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}
