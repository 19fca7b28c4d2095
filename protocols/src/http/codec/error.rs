//! [`HttpError`]: everything the codec refuses, each with the status to answer.

use std::error::Error;
use std::fmt;

use http::StatusCode;

/// What the codec refuses. The request decoder and the response decoder share it: for a
/// response, [`status`](HttpError::status) means nothing (a client answers no status) and
/// [`reason`](HttpError::reason) says what the server got wrong. A peer's fault
/// ([`is_peer_fault`](HttpError::is_peer_fault)) from the request decoder is answered with
/// [`status`](HttpError::status) (if no response has started) and the connection closed,
/// since the decoder reads nothing more after it. A local fault comes from a
/// [`BodyEncoder`](super::BodyEncoder) misused by its caller: nothing wrong was written, and
/// the message cannot be finished as asked.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HttpError {
    /// The request line, status line or a header line is malformed (httparse's verdict: a bad token,
    /// whitespace before a colon, obs-fold, a bare CR, NUL or another control byte...). 400.
    MalformedHead(&'static str),
    /// Not HTTP/1.0 or HTTP/1.1 (HTTP/0.9, HTTP/1.2, HTTP/2.0...). 505.
    UnsupportedVersion,
    /// The request target is longer than [`Limits::max_target_len`](super::Limits). 414.
    TargetTooLong {
        /// The limit.
        max: usize,
    },
    /// The request target is not a valid URI, or not in a form its method allows (RFC 9112
    /// §3.2): origin-form (`/path?query`), absolute-form with `http` or `https` and a host,
    /// authority-form (`host:port`) for `CONNECT` only, which takes no other, `*` for
    /// `OPTIONS` only. 400.
    InvalidTarget,
    /// The request line and headers are longer than
    /// [`Limits::max_head_len`](super::Limits). 431.
    HeadTooLarge {
        /// The limit.
        max: usize,
    },
    /// More header lines than [`Limits::max_headers`](super::Limits). 431.
    TooManyHeaders {
        /// The limit.
        max: usize,
    },
    /// An HTTP/1.1 request without `Host` (RFC 9112 §3.2). 400.
    MissingHost,
    /// More than one `Host` line (RFC 9112 §3.2). 400.
    RepeatedHost,
    /// A `Host` that is not a valid authority. 400.
    InvalidHost,
    /// `Content-Length` and `Transfer-Encoding` both present (RFC 9112 §6.1: a smuggling
    /// attempt). 400.
    ContentLengthWithTransferEncoding,
    /// A `Content-Length` that is not digits, overflows, or disagrees with another one. 400.
    InvalidContentLength,
    /// `Transfer-Encoding` in an HTTP/1.0 message (RFC 9112 §6.1: the framing is faulty). 400.
    TransferEncodingInHttp10 {
        /// Which message carried it: `"request"` or `"response"`.
        what: &'static str,
    },
    /// `Transfer-Encoding` whose last coding is not `chunked`, or `chunked` twice, or an empty
    /// or malformed list (RFC 9112 §6.3: the body length cannot be determined). 400.
    ChunkedNotLast,
    /// A transfer coding other than `chunked` (before a final `chunked`): this codec decodes
    /// only `chunked` (RFC 9112 §6.1). 501.
    UnsupportedTransferCoding,
    /// A chunk size that is not hex digits, has more than 16 digits, or a bad byte in its line
    /// (RFC 9112 §7.1). 400.
    InvalidChunkSize,
    /// A chunk's data not followed by CRLF, or a chunk line not ended by CRLF. 400.
    BadChunkTerminator,
    /// The body's chunk extensions together are longer than
    /// [`Limits::max_chunk_extensions_len`](super::Limits). 400.
    ChunkExtensionsTooLong {
        /// The limit.
        max: usize,
    },
    /// The trailer section is malformed. 400.
    MalformedTrailers(&'static str),
    /// The trailer section is longer than [`Limits::max_head_len`](super::Limits) or has more
    /// than [`Limits::max_headers`](super::Limits) lines. 431.
    TrailersTooLarge,
    /// The body is longer than [`Limits::max_body_len`](super::Limits): a `Content-Length`
    /// over it is refused before any of the body is read, a chunked body once a chunk size
    /// takes it over. 413.
    BodyTooLarge {
        /// The limit.
        max: u64,
    },
    /// The peer took too long to send `what` (a request head: slowloris; or a body). Raised
    /// by the server's timers, not by the decoder, which never reads a clock. 408.
    Timeout {
        /// What was late.
        what: &'static str,
    },
    /// Interim (1xx) responses before the final one longer than
    /// [`Limits::max_head_len`](super::Limits) in all: a server that sends them without end
    /// would keep the client waiting for ever.
    InterimResponsesTooLarge {
        /// The limit.
        max: usize,
    },
    /// A response with `101 Switching Protocols` to a request that asked for no upgrade
    /// (RFC 9110 §15.2.2): what follows is not HTTP, so the client stops there.
    UnexpectedSwitchingProtocols,
    /// The connection closed before the end of `what` (a response head, a response body of a
    /// `Content-Length` or chunked framing): the message is truncated.
    Incomplete {
        /// What was cut short.
        what: &'static str,
    },
    /// Local: body bytes past the `Content-Length` the message announced, or fewer than it
    /// when finishing.
    BodyLengthMismatch {
        /// The length announced.
        declared: u64,
        /// The bytes given (so far, or in all).
        written: u64,
    },
}

impl HttpError {
    /// The status to answer the peer with (for a local fault: 500).
    pub fn status(&self) -> StatusCode {
        use HttpError::*;
        match self {
            UnsupportedVersion => StatusCode::HTTP_VERSION_NOT_SUPPORTED,
            TargetTooLong { .. } => StatusCode::URI_TOO_LONG,
            HeadTooLarge { .. } | TooManyHeaders { .. } | TrailersTooLarge => {
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
            }
            UnsupportedTransferCoding => StatusCode::NOT_IMPLEMENTED,
            BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Timeout { .. } => StatusCode::REQUEST_TIMEOUT,
            BodyLengthMismatch { .. } => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    /// Whether the peer sent something refused (true) or the local side misused the codec.
    pub fn is_peer_fault(&self) -> bool {
        !matches!(self, HttpError::BodyLengthMismatch { .. })
    }

    /// What went wrong, without the status [`Display`](fmt::Display) puts first: the words a
    /// client uses for a response it refuses.
    pub fn reason(&self) -> impl fmt::Display + '_ {
        Reason(self)
    }

    fn write_reason(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use HttpError::*;
        match self {
            MalformedHead(what) => write!(f, "malformed head: {what}"),
            UnsupportedVersion => f.write_str("HTTP version not supported"),
            TargetTooLong { max } => write!(f, "request target longer than {max} bytes"),
            InvalidTarget => f.write_str("invalid request target"),
            HeadTooLarge { max } => write!(f, "head longer than {max} bytes"),
            TooManyHeaders { max } => write!(f, "more than {max} header lines"),
            MissingHost => f.write_str("HTTP/1.1 request without Host"),
            RepeatedHost => f.write_str("more than one Host header"),
            InvalidHost => f.write_str("invalid Host header"),
            ContentLengthWithTransferEncoding => {
                f.write_str("both Content-Length and Transfer-Encoding")
            }
            InvalidContentLength => f.write_str("invalid or conflicting Content-Length"),
            TransferEncodingInHttp10 { what } => {
                write!(f, "Transfer-Encoding in an HTTP/1.0 {what}")
            }
            ChunkedNotLast => f.write_str("Transfer-Encoding does not end with one chunked"),
            UnsupportedTransferCoding => f.write_str("unsupported transfer coding"),
            InvalidChunkSize => f.write_str("invalid chunk size line"),
            BadChunkTerminator => f.write_str("chunk not terminated by CRLF"),
            ChunkExtensionsTooLong { max } => {
                write!(f, "chunk extensions longer than {max} bytes in all")
            }
            MalformedTrailers(what) => write!(f, "malformed trailers: {what}"),
            TrailersTooLarge => f.write_str("trailer section too large"),
            BodyTooLarge { max } => write!(f, "body longer than {max} bytes"),
            InterimResponsesTooLarge { max } => {
                write!(f, "interim (1xx) responses longer than {max} bytes in all")
            }
            UnexpectedSwitchingProtocols => f.write_str("unexpected 101 Switching Protocols"),
            Incomplete { what } => write!(f, "connection closed before the end of the {what}"),
            Timeout { what } => write!(f, "{what} not received in time"),
            BodyLengthMismatch { declared, written } => write!(
                f,
                "body of {written} bytes does not match its Content-Length {declared}"
            ),
        }
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let status = self.status();
        if self.is_peer_fault() {
            write!(f, "{status}: ")?;
        } else {
            f.write_str("local error: ")?;
        }
        self.write_reason(f)
    }
}

/// [`HttpError::reason`].
struct Reason<'a>(&'a HttpError);

impl fmt::Display for Reason<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.write_reason(f)
    }
}

impl Error for HttpError {}
