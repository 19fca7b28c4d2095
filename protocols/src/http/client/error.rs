//! [`ClientError`]: why a request got no complete response, in one type.

use std::error::Error;
use std::fmt;
use std::io;
use std::time::Duration;

use torsion_reactor::ConnectError;

use crate::http::codec::HttpError;

/// Which of the client's timeouts ran out ([`ClientConfig`](super::ClientConfig)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TimeoutKind {
    /// Establishing the connection.
    Connect,
    /// Sending the request: the server took none of it for
    /// [`send_timeout`](super::ClientConfig::send_timeout) (it stopped reading).
    Send,
    /// The response head, from when the request was written (its last byte taken by the
    /// kernel).
    Head,
    /// The whole request, from [`send`](super::HttpClient::send) to the body's end,
    /// redirects included.
    Request,
}

/// Why a request got no complete response. Each variant's `Display` is one line, fit for a
/// command-line tool's error message.
#[derive(Debug)]
#[non_exhaustive]
pub enum ClientError {
    /// The URL is not a valid absolute `http://` or `https://` URL.
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The URL's scheme is neither `http` nor `https`.
    UnsupportedScheme(String),
    /// The host name did not resolve.
    Resolve {
        /// The name.
        host: String,
        /// The resolver's error.
        source: io::Error,
    },
    /// The connection could not be established (refused, unreachable...).
    Connect(ConnectError),
    /// An `https` connection failed its TLS handshake (a certificate refused, a name
    /// mismatch, no protocol version in common...; the source is the reactor's `TlsError`),
    /// or the TLS configuration could not be made (no system roots).
    Tls(Box<dyn Error + Send + Sync>),
    /// A timeout ran out.
    Timeout {
        /// Which one.
        which: TimeoutKind,
        /// Its length.
        after: Duration,
    },
    /// The server broke HTTP/1.1: a malformed head, ambiguous framing, a truncated body...
    Protocol(HttpError),
    /// The response body is longer than the limit
    /// ([`ClientConfig::max_body_len`](super::ClientConfig::max_body_len), or the
    /// handler's).
    BodyTooLarge {
        /// The limit.
        max: u64,
    },
    /// More redirects than [`ClientConfig::max_redirects`](super::ClientConfig::max_redirects).
    TooManyRedirects {
        /// The limit.
        max: usize,
    },
    /// The server closed the connection before any byte of the response (after the one
    /// retry a request on a reused connection gets when its method is idempotent or none of
    /// it had left); the cause when it was not a clean close.
    ConnectionClosed(Option<io::Error>),
    /// A streamed request body ([`BodySource`](super::BodySource)) produced another length
    /// than the one it announced.
    BodyLength {
        /// The length announced.
        declared: u64,
        /// The bytes produced (so far).
        produced: u64,
    },
    /// [`PendingRequest::cancel`](super::PendingRequest::cancel) was called (the handler does
    /// not hear this: cancelling ends its calls).
    Cancelled,
}

impl ClientError {
    /// The error for a connect attempt to `host` that failed.
    pub(super) fn from_connect(host: &str, error: ConnectError, timeout: Duration) -> Self {
        match error {
            ConnectError::Resolve(source) => ClientError::Resolve {
                host: host.to_string(),
                source,
            },
            ConnectError::TimedOut(_) => ClientError::Timeout {
                which: TimeoutKind::Connect,
                after: timeout,
            },
            ConnectError::Tls(error) => ClientError::Tls(Box::new(error)),
            error => ClientError::Connect(error),
        }
    }

    /// The error for a response the decoder refused, or a request body the codec refused.
    pub(super) fn from_http(error: HttpError) -> Self {
        match error {
            HttpError::BodyTooLarge { max } => ClientError::BodyTooLarge { max },
            HttpError::BodyLengthMismatch { declared, written } => ClientError::BodyLength {
                declared,
                produced: written,
            },
            error => ClientError::Protocol(error),
        }
    }
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use ClientError::*;
        match self {
            InvalidUrl { url, reason } => write!(f, "invalid URL {url:?}: {reason}"),
            UnsupportedScheme(scheme) => write!(f, "unsupported URL scheme {scheme:?}"),
            Resolve { host, source } => write!(f, "cannot resolve {host:?}: {source}"),
            Connect(error) => write!(f, "cannot connect: {error}"),
            Tls(error) => write!(f, "TLS error: {error}"),
            Timeout { which, after } => {
                let what = match which {
                    TimeoutKind::Connect => "connecting",
                    TimeoutKind::Send => {
                        return write!(
                            f,
                            "timed out: sending the request made no progress for {after:?}"
                        )
                    }
                    TimeoutKind::Head => "waiting for the response head",
                    TimeoutKind::Request => "the request",
                };
                write!(f, "timed out: {what} took longer than {after:?}")
            }
            Protocol(error) => write!(f, "protocol error: {}", error.reason()),
            BodyTooLarge { max } => write!(f, "response body longer than {max} bytes"),
            TooManyRedirects { max } => write!(f, "more than {max} redirects"),
            ConnectionClosed(None) => f.write_str("the server closed the connection unanswered"),
            ConnectionClosed(Some(error)) => {
                write!(f, "the connection was lost before any response: {error}")
            }
            BodyLength { declared, produced } => write!(
                f,
                "the request body source produced {produced} bytes, not the {declared} it announced"
            ),
            Cancelled => f.write_str("request cancelled"),
        }
    }
}

impl Error for ClientError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            ClientError::Resolve { source, .. } => Some(source),
            ClientError::Connect(error) => Some(error),
            ClientError::Tls(error) => Some(error.as_ref()),
            ClientError::Protocol(error) => Some(error),
            ClientError::ConnectionClosed(Some(error)) => Some(error),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_message_is_one_line_and_says_what_failed() {
        let errors = [
            ClientError::InvalidUrl {
                url: "x y".into(),
                reason: "not a valid URL",
            },
            ClientError::UnsupportedScheme("ftp".into()),
            ClientError::Resolve {
                host: "a.invalid".into(),
                source: io::Error::other("no such host"),
            },
            ClientError::Connect(ConnectError::Cancelled),
            ClientError::Tls("bad certificate".into()),
            ClientError::Timeout {
                which: TimeoutKind::Head,
                after: Duration::from_secs(5),
            },
            ClientError::Timeout {
                which: TimeoutKind::Send,
                after: Duration::from_secs(30),
            },
            ClientError::Protocol(HttpError::InvalidContentLength),
            ClientError::BodyTooLarge { max: 10 },
            ClientError::TooManyRedirects { max: 3 },
            ClientError::BodyLength {
                declared: 2,
                produced: 1,
            },
            ClientError::ConnectionClosed(None),
            ClientError::Cancelled,
        ];
        let expected = [
            "invalid URL \"x y\": not a valid URL",
            "unsupported URL scheme \"ftp\"",
            "cannot resolve \"a.invalid\": no such host",
            "cannot connect: connection attempt cancelled",
            "TLS error: bad certificate",
            "timed out: waiting for the response head took longer than 5s",
            "timed out: sending the request made no progress for 30s",
            "protocol error: invalid or conflicting Content-Length",
            "response body longer than 10 bytes",
            "more than 3 redirects",
            "the request body source produced 1 bytes, not the 2 it announced",
            "the server closed the connection unanswered",
            "request cancelled",
        ];
        for (error, expected) in errors.iter().zip(expected) {
            assert_eq!(error.to_string(), expected);
        }
    }
}
