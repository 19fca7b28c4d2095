//! Why a connection ended and why a connection attempt failed.

use std::fmt;
use std::io;

use crate::tls::TlsError;

/// Why a connection was lost, handed to [`Protocol::connection_lost`](crate::Protocol::connection_lost).
///
/// It tells a clean close from a reset, a timeout and a local abort, so a protocol can log or
/// retry accordingly. Twisted's `ConnectionDone` is [`DisconnectReason::Closed`], its
/// `ConnectionLost` the other variants.
#[derive(Debug)]
#[non_exhaustive]
pub enum DisconnectReason {
    /// The connection closed cleanly: a local [`lose_connection`](crate::Context::lose_connection)
    /// finished flushing, or the peer sent EOF and the protocol closed in turn.
    Closed,
    /// The peer reset the connection (`ECONNRESET`, or `EPIPE` when writing to a socket the
    /// peer has closed). Data queued for it was dropped.
    Reset(io::Error),
    /// The connection timed out in the kernel (`ETIMEDOUT`, e.g. keep-alive probes unanswered).
    TimedOut(io::Error),
    /// This side aborted it with [`abort_connection`](crate::Context::abort_connection): closed
    /// at once, queued data dropped.
    Aborted,
    /// Any other socket error, with its cause.
    Error(io::Error),
    /// A TLS connection's peer closed the TCP connection without sending `close_notify` first,
    /// so what it sent may have been cut short (a truncation attack, or a peer that crashed or
    /// does not bother). A clean TLS close (`close_notify`) is
    /// [`eof_received`](crate::Protocol::eof_received), then [`DisconnectReason::Closed`].
    Truncated,
    /// TLS failed: the peer's certificate was refused, the peer refused ours, a record was
    /// corrupt, ... (the handshake of [`start_tls`](crate::Context::start_tls_server) too).
    Tls(TlsError),
}

impl DisconnectReason {
    /// True for [`DisconnectReason::Closed`]: nothing was lost on the way out.
    pub fn is_clean(&self) -> bool {
        matches!(self, DisconnectReason::Closed)
    }

    /// Classifies a socket error into the reason a connection is closed for it.
    pub(crate) fn from_io(error: io::Error) -> DisconnectReason {
        match error.kind() {
            io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe => DisconnectReason::Reset(error),
            io::ErrorKind::TimedOut => DisconnectReason::TimedOut(error),
            _ => DisconnectReason::Error(error),
        }
    }
}

impl fmt::Display for DisconnectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DisconnectReason::Closed => f.write_str("connection closed cleanly"),
            DisconnectReason::Reset(e) => write!(f, "connection reset by peer: {e}"),
            DisconnectReason::TimedOut(e) => write!(f, "connection timed out: {e}"),
            DisconnectReason::Aborted => f.write_str("connection aborted locally"),
            DisconnectReason::Error(e) => write!(f, "connection lost: {e}"),
            DisconnectReason::Truncated => {
                f.write_str("connection closed by the peer without TLS close_notify (truncated)")
            }
            DisconnectReason::Tls(e) => write!(f, "connection lost: {e}"),
        }
    }
}

impl std::error::Error for DisconnectReason {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            DisconnectReason::Reset(e)
            | DisconnectReason::TimedOut(e)
            | DisconnectReason::Error(e) => Some(e),
            DisconnectReason::Tls(e) => Some(e),
            DisconnectReason::Closed | DisconnectReason::Aborted | DisconnectReason::Truncated => {
                None
            }
        }
    }
}

/// Why [`Reactor::connect`](crate::Reactor::connect) failed, handed to
/// [`ClientFactory::client_connection_failed`](crate::ClientFactory::client_connection_failed).
#[derive(Debug)]
#[non_exhaustive]
pub enum ConnectError {
    /// Nothing listens at the address: the peer answered with a reset (`ECONNREFUSED`).
    Refused(io::Error),
    /// No route to the network or host (`ENETUNREACH`, `EHOSTUNREACH`).
    Unreachable(io::Error),
    /// The peer did not answer within the connect timeout: ours (the error says after how
    /// long) or the kernel's `ETIMEDOUT`.
    TimedOut(io::Error),
    /// The host name could not be resolved to an address.
    Resolve(io::Error),
    /// The attempt was cancelled locally (the reactor shut down).
    Cancelled,
    /// A local failure (no file descriptors, bad address family, ...) or any other error.
    Io(io::Error),
    /// The TCP connection was made but the TLS handshake failed (a `connect` with TLS): a refused
    /// certificate, a name mismatch, no protocol version in common, a handshake timeout, ...
    Tls(TlsError),
}

// Linux errno values for unreachable networks and hosts; `io::ErrorKind` only names them from
// Rust 1.83, above this crate's minimum supported version.
const ENETUNREACH: i32 = 101;
const EHOSTUNREACH: i32 = 113;

impl ConnectError {
    /// Classifies the error a connect attempt ended with.
    pub(crate) fn from_io(error: io::Error) -> ConnectError {
        match (error.kind(), error.raw_os_error()) {
            (io::ErrorKind::ConnectionRefused, _) => ConnectError::Refused(error),
            (_, Some(ENETUNREACH | EHOSTUNREACH)) => ConnectError::Unreachable(error),
            (io::ErrorKind::TimedOut, _) => ConnectError::TimedOut(error),
            _ => ConnectError::Io(error),
        }
    }
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // The OS's own words already say "refused" or "unreachable".
            ConnectError::Refused(e) | ConnectError::Unreachable(e) | ConnectError::Io(e) => {
                write!(f, "{e}")
            }
            ConnectError::Resolve(e) => write!(f, "cannot resolve host name: {e}"),
            ConnectError::TimedOut(e) => write!(f, "connect timed out: {e}"),
            ConnectError::Cancelled => f.write_str("connection attempt cancelled"),
            ConnectError::Tls(e) => write!(f, "TLS handshake failed: {e}"),
        }
    }
}

impl std::error::Error for ConnectError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConnectError::Refused(e)
            | ConnectError::Unreachable(e)
            | ConnectError::Resolve(e)
            | ConnectError::TimedOut(e)
            | ConnectError::Io(e) => Some(e),
            ConnectError::Tls(e) => Some(e),
            ConnectError::Cancelled => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_errors_map_to_the_reason_they_mean() {
        let reset = io::Error::from(io::ErrorKind::ConnectionReset);
        assert!(matches!(
            DisconnectReason::from_io(reset),
            DisconnectReason::Reset(_)
        ));
        let pipe = io::Error::from(io::ErrorKind::BrokenPipe);
        assert!(matches!(
            DisconnectReason::from_io(pipe),
            DisconnectReason::Reset(_)
        ));
        let timed_out = io::Error::from(io::ErrorKind::TimedOut);
        assert!(matches!(
            DisconnectReason::from_io(timed_out),
            DisconnectReason::TimedOut(_)
        ));
        assert!(DisconnectReason::Closed.is_clean());
        assert!(!DisconnectReason::Aborted.is_clean());
    }

    #[test]
    fn connect_errors_keep_the_real_cause() {
        let refused = ConnectError::from_io(io::Error::from_raw_os_error(111));
        assert!(matches!(refused, ConnectError::Refused(_)));
        let unreachable = ConnectError::from_io(io::Error::from_raw_os_error(EHOSTUNREACH));
        assert!(matches!(unreachable, ConnectError::Unreachable(_)));
        assert!(refused.to_string().contains("refused"), "{refused}");
    }
}
