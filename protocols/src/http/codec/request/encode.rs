//! [`RequestEncoder`]: a request's head with the framing its body needs, written into a buffer
//! the caller owns; the body's pieces then go through the [`BodyEncoder`] it returns.

use bytes::BufMut;
use http::header::{self, HeaderName, HeaderValue};
use http::Method;

use super::super::body::{BodyEncoder, Framing};
use super::super::headers::{has_close_option, put_content_length, put_field, CHUNKED};
use super::super::BodyKind;

/// A request's line and framing. Build it, then [`write`](RequestEncoder::write) it with the
/// headers.
///
/// What it writes (RFC 9112 §3, §6; RFC 9110 §8.6):
/// - `METHOD target HTTP/1.1`. `target` is the origin form (`/path?query`); the `http`
///   crate's types have already refused CR, LF and other bytes that could split the head.
/// - The caller's headers (which must include `Host`, RFC 9112 §3.2) except
///   `Content-Length` and `Transfer-Encoding`: the framing is the encoder's to write.
/// - For [`BodyKind::Length`]: `content-length` (also `content-length: 0` for an empty body
///   of a method that usually has one: `POST`, `PUT`, `PATCH`; none for an empty body of
///   another method). For [`BodyKind::Chunked`]: `transfer-encoding: chunked`.
///
/// Names go on the wire lower-case, the caller's and the encoder's alike.
///
/// ```
/// use torsion_protocols::http::codec::{BodyKind, RequestEncoder};
/// use http::{header, HeaderMap, HeaderValue, Method};
///
/// let mut headers = HeaderMap::new();
/// headers.insert(header::HOST, HeaderValue::from_static("example.org"));
/// let mut out = Vec::new();
/// let mut body = RequestEncoder::new(&Method::PUT, "/notes/1", BodyKind::Chunked)
///     .write(&headers, &mut out);
/// body.data(b"hello", &mut out).unwrap();
/// body.finish(&mut out).unwrap();
/// assert_eq!(
///     out,
///     b"PUT /notes/1 HTTP/1.1\r\nhost: example.org\r\ntransfer-encoding: chunked\r\n\r\n\
///       5\r\nhello\r\n0\r\n\r\n"
/// );
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestEncoder<'a> {
    method: &'a Method,
    target: &'a str,
    body: BodyKind,
}

impl<'a> RequestEncoder<'a> {
    /// A `method` request for `target` (origin form) with this body.
    pub fn new(method: &'a Method, target: &'a str, body: BodyKind) -> Self {
        RequestEncoder {
            method,
            target,
            body,
        }
    }

    /// Writes the request line and header section to `out`, and returns what frames the body
    /// (its [`keep_alive`](BodyEncoder::keep_alive) is false if the headers asked
    /// `Connection: close`). `headers` is any sequence of header pairs: `&HeaderMap`, or pairs
    /// chained from elsewhere.
    pub fn write<'h, B, H>(&self, headers: H, out: &mut B) -> BodyEncoder
    where
        B: BufMut,
        H: IntoIterator<Item = (&'h HeaderName, &'h HeaderValue)>,
    {
        out.put_slice(self.method.as_str().as_bytes());
        out.put_u8(b' ');
        out.put_slice(self.target.as_bytes());
        out.put_slice(b" HTTP/1.1\r\n");
        let mut keep_alive = true;
        for (name, value) in headers {
            if name == header::CONNECTION && has_close_option(value.as_bytes()) {
                keep_alive = false;
            }
            if name != header::CONTENT_LENGTH && name != header::TRANSFER_ENCODING {
                put_field(name.as_str().as_bytes(), value.as_bytes(), out);
            }
        }
        let expects_body = matches!(*self.method, Method::POST | Method::PUT | Method::PATCH);
        let framing = match self.body {
            BodyKind::Length(0) if !expects_body => Framing::Length {
                declared: 0,
                written: 0,
            },
            BodyKind::Length(length) => {
                put_content_length(length, out);
                Framing::Length {
                    declared: length,
                    written: 0,
                }
            }
            BodyKind::Chunked => {
                out.put_slice(CHUNKED);
                Framing::Chunked
            }
        };
        out.put_slice(b"\r\n");
        BodyEncoder::new(framing, keep_alive)
    }
}
