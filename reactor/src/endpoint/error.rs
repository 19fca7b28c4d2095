//! Why an endpoint string is refused, and why listening or connecting on an endpoint failed.

use std::convert::Infallible;
use std::fmt;
use std::io;

use crate::tls::TlsConfigError;

/// Why an endpoint string could not be parsed. Its message names the bad part: which kind of
/// endpoint, which argument or option, the value given and what was expected.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParseEndpointError {
    /// The string is empty.
    Empty,
    /// The first part names no kind of endpoint this side knows.
    UnknownKind {
        /// The first part, as written.
        kind: String,
        /// The kinds known (and the plain forms).
        expected: &'static str,
    },
    /// A required argument is missing.
    Missing {
        /// The kind of endpoint (`tcp`, `tls`...).
        kind: &'static str,
        /// What is missing, and how to write it.
        what: &'static str,
    },
    /// A `key=value` option this kind of endpoint does not have.
    UnknownOption {
        /// The kind of endpoint.
        kind: &'static str,
        /// The option's name, as written.
        key: String,
        /// The options it has.
        expected: &'static str,
    },
    /// An option given twice.
    RepeatedOption {
        /// The kind of endpoint.
        kind: &'static str,
        /// The option's name.
        key: String,
    },
    /// A value that does not parse.
    BadValue {
        /// The kind of endpoint.
        kind: &'static str,
        /// Which argument or option (`port`, `interface`...).
        what: &'static str,
        /// The value, as written.
        value: String,
        /// What was expected.
        expected: &'static str,
    },
    /// A positional argument past the last one this kind of endpoint takes.
    UnexpectedArgument {
        /// The kind of endpoint.
        kind: &'static str,
        /// The argument, as written.
        argument: String,
    },
    /// Options that do not go together (or an option that does not apply).
    Conflict {
        /// The kind of endpoint.
        kind: &'static str,
        /// What is wrong.
        why: &'static str,
    },
    /// The string ends with a backslash, which escapes nothing.
    TrailingBackslash,
}

impl fmt::Display for ParseEndpointError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use ParseEndpointError::*;
        match self {
            Empty => f.write_str("empty endpoint"),
            UnknownKind { kind, expected } => {
                write!(f, "unknown endpoint type {kind:?} (expected {expected})")
            }
            Missing { kind, what } => write!(f, "{kind}: missing {what}"),
            UnknownOption {
                kind,
                key,
                expected,
            } => write!(f, "{kind}: unknown option {key:?} (expected {expected})"),
            RepeatedOption { kind, key } => write!(f, "{kind}: option {key:?} given twice"),
            BadValue {
                kind,
                what,
                value,
                expected,
            } => write!(f, "{kind}: bad {what} {value:?}: expected {expected}"),
            UnexpectedArgument { kind, argument } => {
                write!(f, "{kind}: unexpected argument {argument:?}")
            }
            Conflict { kind, why } => write!(f, "{kind}: {why}"),
            TrailingBackslash => f.write_str("endpoint ends with a backslash that escapes nothing"),
        }
    }
}

impl std::error::Error for ParseEndpointError {}

/// Why [`Reactor::listen`](crate::Reactor::listen) or
/// [`Reactor::connect_endpoint`](crate::Reactor::connect_endpoint) failed before any
/// connection: a bad endpoint string, a socket that could not listen, TLS files that could
/// not be loaded. (A connection attempt that fails later is reported to the client factory,
/// as with [`Reactor::connect`](crate::Reactor::connect).)
#[derive(Debug)]
#[non_exhaustive]
pub enum EndpointError {
    /// The endpoint string does not parse.
    Parse(ParseEndpointError),
    /// Listening failed (the address is in use, not this machine's, or the kind of socket
    /// is unsupported here).
    Io {
        /// The endpoint, as [`Display`](fmt::Display)ed.
        endpoint: String,
        /// Why.
        error: io::Error,
    },
    /// The TLS certificate, key or trusted roots could not be loaded.
    Tls {
        /// The endpoint, as [`Display`](fmt::Display)ed.
        endpoint: String,
        /// Why.
        error: TlsConfigError,
    },
}

impl fmt::Display for EndpointError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EndpointError::Parse(e) => e.fmt(f),
            EndpointError::Io { endpoint, error } => write!(f, "{endpoint}: {error}"),
            EndpointError::Tls { endpoint, error } => write!(f, "{endpoint}: {error}"),
        }
    }
}

impl std::error::Error for EndpointError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            EndpointError::Parse(e) => Some(e),
            EndpointError::Io { error, .. } => Some(error),
            EndpointError::Tls { error, .. } => Some(error),
        }
    }
}

impl From<ParseEndpointError> for EndpointError {
    fn from(e: ParseEndpointError) -> Self {
        EndpointError::Parse(e)
    }
}

/// An endpoint that is already parsed cannot fail to convert.
impl From<Infallible> for EndpointError {
    fn from(never: Infallible) -> Self {
        match never {}
    }
}
