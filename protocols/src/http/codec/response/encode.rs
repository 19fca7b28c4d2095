//! [`ResponseEncoder`]: the status line and headers with the framing the body needs, written
//! into a buffer the caller owns (the body's pieces then go through the [`BodyEncoder`] it
//! returns); and [`write_continue`], the interim 100 Continue. Nothing here allocates.

use bytes::BufMut;
use http::header::{self, HeaderName, HeaderValue};
use http::{Method, StatusCode, Version};

use super::super::body::{BodyEncoder, Framing};
use super::super::headers::{put_content_length, put_field, put_fields, CHUNKED};
use super::super::{BodyKind, HttpDate, RequestHead};

/// Writes the interim `100 Continue` response (RFC 9110 §15.2.1), to send before reading the
/// body of a request whose head has [`expect_continue`](RequestHead::expect_continue).
pub fn write_continue<B: BufMut>(out: &mut B) {
    out.put_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
}

/// A response's status and framing, and what of the request it answers matters to them. Build
/// it, then [`write`](ResponseEncoder::write) it with the headers.
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
///   to the [`BodyEncoder`]; the headers of a `HEAD` response are those of a `GET` one, and a
///   304 keeps a `Content-Length` (the length a 200 would have had); 1xx and 204 have neither
///   framing header.
/// - `Connection: close` when the connection will not persist (the request asked so, the
///   server decided so with [`close`](ResponseEncoder::close), or the body is delimited by the
///   close); `Connection: keep-alive` to an HTTP/1.0 request that persists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseEncoder<'a> {
    status: StatusCode,
    body: BodyKind,
    date: Option<&'a HttpDate>,
    answers_head: bool,
    version: Version,
    keep_alive: bool,
}

impl<'a> ResponseEncoder<'a> {
    /// A response with this status and body, answering an HTTP/1.1 `GET` that keeps the
    /// connection alive (see [`answering`](ResponseEncoder::answering)).
    pub fn new(status: StatusCode, body: BodyKind) -> Self {
        ResponseEncoder {
            status,
            body,
            date: None,
            answers_head: false,
            version: Version::HTTP_11,
            keep_alive: true,
        }
    }

    /// Answers `request`: its method (`HEAD` has no body), version and keep-alive.
    pub fn answering(self, request: &RequestHead) -> Self {
        self.answering_parts(&request.method, request.version, request.keep_alive)
    }

    /// Answers a request with this method (`HEAD` has no body), version and keep-alive: what
    /// [`answering`](Self::answering) takes from a head, for a caller that kept only these.
    pub fn answering_parts(mut self, method: &Method, version: Version, keep_alive: bool) -> Self {
        self.answers_head = method == Method::HEAD;
        self.version = version;
        self.keep_alive &= keep_alive;
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
    pub fn write<'h, B, H>(&self, headers: H, out: &mut B) -> BodyEncoder
    where
        B: BufMut,
        H: IntoIterator<Item = (&'h HeaderName, &'h HeaderValue)>,
    {
        self.write_status_line(out);
        let date_given = self.date.is_some();
        put_fields(headers, |name| skipped(name, date_given), out);
        if let Some(date) = self.date {
            put_field(b"date", date.as_bytes(), out);
        }
        let framing = self.write_framing(out);
        let keep_alive = self.keep_alive && framing != Framing::UntilClose;
        if !keep_alive {
            out.put_slice(b"connection: close\r\n");
        } else if self.version == Version::HTTP_10 {
            out.put_slice(b"connection: keep-alive\r\n");
        }
        out.put_slice(b"\r\n");
        let framing = if self.has_body() {
            framing
        } else {
            Framing::Suppressed
        };
        BodyEncoder::new(framing, keep_alive)
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
                put_content_length(length, out);
                Framing::Length {
                    declared: length,
                    written: 0,
                }
            }
            BodyKind::Chunked if self.status == StatusCode::NOT_MODIFIED => Framing::Suppressed,
            BodyKind::Chunked if self.version == Version::HTTP_10 => Framing::UntilClose,
            BodyKind::Chunked => {
                out.put_slice(CHUNKED);
                Framing::Chunked
            }
        }
    }
}

/// Headers the encoder writes itself.
fn skipped(name: &HeaderName, date_given: bool) -> bool {
    name == header::CONTENT_LENGTH
        || name == header::TRANSFER_ENCODING
        || name == header::CONNECTION
        || (date_given && name == header::DATE)
}
