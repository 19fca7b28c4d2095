//! [`ResponseHead`], and how one is parsed: httparse reads the status line and header lines
//! (strict: no obs-fold, no leniency), then the shared header reader's framing rules, the
//! request side's, decide where the body ends (RFC 9112 §6.3).

use bytes::Bytes;
use http::{HeaderMap, StatusCode, Version};

use super::super::headers::{read_fields, Delimited, Message};
use super::super::read::HeadParser;
use super::super::scan::SectionScan;
use super::super::{HttpError, Limits};

/// Up to this many header slots live on the stack while parsing.
const STACK_HEADERS: usize = 100;

/// How a response's body is framed (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResponseFraming {
    /// Exactly this many bytes: `Content-Length`, or `Length(0)` for a response that has no
    /// body whatever its headers say (to `HEAD`; 1xx, 204, 304).
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Neither header: the body ends when the server closes the connection (so the connection
    /// is not reused).
    UntilClose,
}

/// A response's status line and headers, with what the framing headers mean.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ResponseHead {
    /// The status code.
    pub status: StatusCode,
    /// `HTTP_10` or `HTTP_11`.
    pub version: Version,
    /// Every header line, in order, names lowercased (framing headers included).
    pub headers: HeaderMap,
    /// How the body is framed.
    pub framing: ResponseFraming,
    /// Whether the connection may carry another request after this response (RFC 9112 §9.3):
    /// HTTP/1.1 unless `Connection: close`, HTTP/1.0 only with `Connection: keep-alive`, and
    /// never after a body delimited by the close.
    pub keep_alive: bool,
}

/// Parses response heads; `head_request` says the request was `HEAD` (no body follows).
#[derive(Debug, Clone, Copy)]
pub(super) struct ResponseParser {
    pub(super) head_request: bool,
}

impl HeadParser for ResponseParser {
    type Head = ResponseHead;

    fn parse(
        &mut self,
        buf: &[u8],
        limits: &Limits,
    ) -> Result<Option<(ResponseHead, usize)>, HttpError> {
        let mut slots = [httparse::EMPTY_HEADER; STACK_HEADERS];
        let mut heap = Vec::new();
        let slots = if limits.max_headers <= STACK_HEADERS {
            &mut slots[..limits.max_headers]
        } else {
            heap.resize(limits.max_headers, httparse::EMPTY_HEADER);
            &mut heap[..]
        };
        let mut response = httparse::Response::new(slots);
        let len = match httparse::ParserConfig::default().parse_response(&mut response, buf) {
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(error) => return Err(status_error(error, buf, limits)),
        };
        if len > limits.max_head_len {
            return Err(HttpError::HeadTooLarge {
                max: limits.max_head_len,
            });
        }
        let (Some(minor), Some(code)) = (response.version, response.code) else {
            return Err(HttpError::MalformedHead("incomplete status line"));
        };
        let status = StatusCode::from_u16(code)
            .map_err(|_| HttpError::MalformedHead("invalid status code"))?;
        let version = if minor == 0 {
            Version::HTTP_10
        } else {
            Version::HTTP_11
        };
        let shared = Bytes::copy_from_slice(&buf[..len]);
        let (headers, framing) = read_fields(response.headers, buf, &shared, Message::Response)?;
        // A response to HEAD, and 1xx, 204 and 304 responses, have no body whatever their
        // headers say; the codings are then not judged (a HEAD response may name the
        // `gzip, chunked` its GET would use, RFC 9112 §6.1).
        let bodiless = self.head_request
            || status.is_informational()
            || status == StatusCode::NO_CONTENT
            || status == StatusCode::NOT_MODIFIED;
        let framing_kind = match framing.body(version, bodiless, limits.max_body_len)? {
            Delimited::Length(length) => ResponseFraming::Length(length),
            Delimited::Chunked => ResponseFraming::Chunked,
            // RFC 9112 §6.3 item 8.
            Delimited::Unframed => ResponseFraming::UntilClose,
        };
        let head = ResponseHead {
            status,
            version,
            headers,
            framing: framing_kind,
            keep_alive: framing.persistent(version) && framing_kind != ResponseFraming::UntilClose,
        };
        Ok(Some((head, len)))
    }

    fn check_partial(
        &self,
        pending: &[u8],
        _: &SectionScan,
        limits: &Limits,
    ) -> Result<(), HttpError> {
        if pending.len() > limits.max_head_len {
            return Err(HttpError::HeadTooLarge {
                max: limits.max_head_len,
            });
        }
        Ok(())
    }
}

/// 505-like for another HTTP version (`HTTP/2 200`), a malformed head for the rest.
fn status_error(error: httparse::Error, buf: &[u8], limits: &Limits) -> HttpError {
    let other_version = buf
        .strip_prefix(b"HTTP/")
        .is_some_and(|v| v.first().is_some_and(u8::is_ascii_digit));
    match error {
        httparse::Error::TooManyHeaders => HttpError::TooManyHeaders {
            max: limits.max_headers,
        },
        httparse::Error::Version if other_version => HttpError::UnsupportedVersion,
        httparse::Error::Status => HttpError::MalformedHead("invalid status line"),
        httparse::Error::HeaderName => HttpError::MalformedHead(
            "invalid header name (whitespace before the colon, obs-fold or a bad byte)",
        ),
        httparse::Error::HeaderValue => {
            HttpError::MalformedHead("invalid header value (a bare CR, NUL or control byte)")
        }
        httparse::Error::NewLine => HttpError::MalformedHead("invalid line ending"),
        _ => HttpError::MalformedHead("invalid status line"),
    }
}
