//! A body on its way out: [`BodyKind`] says how it is framed, [`BodyEncoder`] frames its
//! pieces (chunks when chunked) and ends it. Both encoders hand one out after the head.

use bytes::BufMut;
use http::header::{HeaderName, HeaderValue};

use super::headers::put_fields;
use super::HttpError;

/// How a message's body is framed (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BodyKind {
    /// Exactly this many bytes (`Content-Length`; `Length(0)` is no body).
    Length(u64),
    /// `Transfer-Encoding: chunked`: a stream of unknown length.
    Chunked,
}

/// How the body goes on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Framing {
    /// Nothing is sent (a response to HEAD; 1xx, 204, 304).
    Suppressed,
    /// Exactly `declared` bytes.
    Length { declared: u64, written: u64 },
    /// Chunks, then the last chunk.
    Chunked,
    /// Raw bytes until the connection closes (a streamed response body to HTTP/1.0).
    UntilClose,
}

/// Frames one message's body, after its head ([`ResponseEncoder::write`] or
/// [`RequestEncoder::write`]): [`data`](BodyEncoder::data) for each piece, then
/// [`finish`](BodyEncoder::finish). For a body the message has none of (a response to
/// `HEAD`, 204, 304) both write nothing, so a handler can produce the body of a `GET` for a
/// `HEAD` unchanged.
///
/// [`ResponseEncoder::write`]: super::ResponseEncoder::write
/// [`RequestEncoder::write`]: super::RequestEncoder::write
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use = "a body must be finished"]
pub struct BodyEncoder {
    framing: Framing,
    keep_alive: bool,
}

impl BodyEncoder {
    pub(super) fn new(framing: Framing, keep_alive: bool) -> Self {
        BodyEncoder {
            framing,
            keep_alive,
        }
    }

    /// Whether the connection persists after this message, as far as its head said: for a
    /// response, when false the server closes the connection once it is sent (and reads no
    /// further request); for a request, false when it asked `Connection: close`.
    pub fn keep_alive(&self) -> bool {
        self.keep_alive
    }

    /// Whether body bytes go on the wire (false for a response to `HEAD`, and 1xx, 204, 304).
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
    /// [`end_data`](BodyEncoder::end_data).
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

    /// Writes what follows the body bytes announced by [`start_data`](BodyEncoder::start_data)
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

    /// [`finish`](BodyEncoder::finish) with trailer fields after the last chunk (dropped
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
                put_fields(trailers, |_| false, out);
                out.put_slice(b"\r\n");
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

fn put_hex<B: BufMut>(mut n: u64, out: &mut B) {
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
