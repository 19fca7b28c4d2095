//! The request side of the serializer: a request head with the framing its body needs, and
//! the chunked coding of a body streamed without a known length.

use bytes::BufMut;
use http::header::{self, HeaderName, HeaderValue};
use http::Method;

use super::serialize::{put_decimal, put_hex};
use super::BodyKind;

/// Writes a request head: `METHOD target HTTP/1.1`, the caller's headers (which must include
/// `Host`, RFC 9112 §3.2) except `Content-Length` and `Transfer-Encoding`, then the framing
/// header for `body`: `Content-Length` (also `Content-Length: 0` for an empty body of a method
/// that usually has one: `POST`, `PUT`, `PATCH`; RFC 9110 §8.6), or
/// `Transfer-Encoding: chunked`. `target` is the origin form (`/path?query`); the `http`
/// crate's types have already refused CR, LF and other bytes that could split the head.
pub fn write_request_head<'h, B, H>(
    method: &Method,
    target: &str,
    headers: H,
    body: BodyKind,
    out: &mut B,
) where
    B: BufMut,
    H: IntoIterator<Item = (&'h HeaderName, &'h HeaderValue)>,
{
    out.put_slice(method.as_str().as_bytes());
    out.put_u8(b' ');
    out.put_slice(target.as_bytes());
    out.put_slice(b" HTTP/1.1\r\n");
    for (name, value) in headers {
        if name == header::CONTENT_LENGTH || name == header::TRANSFER_ENCODING {
            continue;
        }
        out.put_slice(name.as_str().as_bytes());
        out.put_slice(b": ");
        out.put_slice(value.as_bytes());
        out.put_slice(b"\r\n");
    }
    let expects_body = matches!(*method, Method::POST | Method::PUT | Method::PATCH);
    match body {
        BodyKind::Length(0) if !expects_body => {}
        BodyKind::Length(length) => {
            out.put_slice(b"Content-Length: ");
            put_decimal(length, out);
            out.put_slice(b"\r\n");
        }
        BodyKind::Chunked => out.put_slice(b"Transfer-Encoding: chunked\r\n"),
    }
    out.put_slice(b"\r\n");
}

/// Writes the framing before a chunk of `len` bytes (nothing for 0: an empty chunk would end
/// the body). After the bytes, write [`CHUNK_END`].
pub fn write_chunk_start<B: BufMut>(len: usize, out: &mut B) {
    if len > 0 {
        put_hex(len as u64, out);
        out.put_slice(b"\r\n");
    }
}

/// What follows each chunk's bytes.
pub const CHUNK_END: &[u8] = b"\r\n";

/// The last chunk and an empty trailer section: the end of a chunked body.
pub const LAST_CHUNK: &[u8] = b"0\r\n\r\n";
