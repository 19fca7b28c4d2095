//! The PROXY protocol (HAProxy's, versions 1 and 2): a proxy or load balancer in front of a
//! server opens each connection with a header naming the original client, so the server
//! sees the client's address instead of the proxy's.
//!
//! [`header`] is the sans-I/O parser; [`ProxiedFactory`] wraps a [`Factory`](crate::Factory)
//! so that each connection reads the header first (the `haproxy:` endpoint uses it).

pub mod header;
mod wrapper;

pub use header::{ProxyHeader, ProxyHeaderError};
pub use wrapper::{ProxiedFactory, DEFAULT_HEADER_TIMEOUT};
