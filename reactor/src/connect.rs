//! What [`Reactor::connect`](crate::Reactor::connect) takes, a [`Target`] and
//! [`ConnectOptions`], and the [`Connector`] it returns.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use rustls::ClientConfig;

use crate::connections::ConnectionId;
use crate::table::Key;
use crate::{Reactor, UnixAddress};

/// The default connect timeout, as Twisted's `connectTCP`.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// The default "connection attempt delay" of Happy Eyeballs: how long a connect to one
/// address may go unanswered before the next address is tried alongside it (RFC 8305 §5
/// recommends 250 ms).
pub const DEFAULT_ATTEMPT_DELAY: Duration = Duration::from_millis(250);

/// What [`Reactor::connect`](crate::Reactor::connect) connects to.
///
/// Most callers never name it: `connect` takes anything that converts into it, such as a
/// `SocketAddr`, an `(IpAddr, u16)` pair, a `("example.com", 443)` pair or a
/// `Vec<SocketAddr>`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Target {
    /// One address.
    Address(SocketAddr),
    /// Addresses tried in turn until one answers (e.g. from a resolver of your own); raced
    /// with Happy Eyeballs when they are of both families. An empty list fails the attempt.
    Addresses(Vec<SocketAddr>),
    /// A host name or address literal, resolved on the reactor's thread pool (getaddrinfo
    /// blocks, so never on the reactor thread), and a port.
    Host(String, u16),
    /// A UNIX domain socket: a path or an abstract name. [`ConnectOptions::local_addr`]
    /// does not apply; with [`ConnectOptions::tls`], give a
    /// [`server_name`](ConnectOptions::server_name) (without one the attempt fails with
    /// [`TlsError::InvalidServerName`](crate::TlsError::InvalidServerName)).
    Unix(UnixAddress),
}

impl From<UnixAddress> for Target {
    fn from(address: UnixAddress) -> Target {
        Target::Unix(address)
    }
}

impl From<SocketAddr> for Target {
    fn from(addr: SocketAddr) -> Target {
        Target::Address(addr)
    }
}

impl From<(IpAddr, u16)> for Target {
    fn from(addr: (IpAddr, u16)) -> Target {
        Target::Address(addr.into())
    }
}

impl From<(Ipv4Addr, u16)> for Target {
    fn from(addr: (Ipv4Addr, u16)) -> Target {
        Target::Address(addr.into())
    }
}

impl From<(Ipv6Addr, u16)> for Target {
    fn from(addr: (Ipv6Addr, u16)) -> Target {
        Target::Address(addr.into())
    }
}

impl From<(&str, u16)> for Target {
    fn from((host, port): (&str, u16)) -> Target {
        Target::Host(host.to_string(), port)
    }
}

impl From<(String, u16)> for Target {
    fn from((host, port): (String, u16)) -> Target {
        Target::Host(host, port)
    }
}

impl From<Vec<SocketAddr>> for Target {
    fn from(addrs: Vec<SocketAddr>) -> Target {
        Target::Addresses(addrs)
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Address(addr) => write!(f, "{addr}"),
            Target::Addresses(addrs) => match addrs.as_slice() {
                [first, ..] => write!(f, "{first} (and {} more)", addrs.len() - 1),
                [] => f.write_str("no address"),
            },
            Target::Host(host, port) => write!(f, "{host}:{port}"),
            Target::Unix(address) => write!(f, "{address}"),
        }
    }
}

/// How [`Reactor::connect`] connects: timeouts, TLS, the local address.
///
/// ```
/// use std::time::Duration;
/// use torsion_reactor::ConnectOptions;
///
/// let plain = ConnectOptions::new().timeout(Duration::from_secs(5));
/// # let _ = plain;
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ConnectOptions {
    /// How long each address may take to answer before the attempt moves on to the next
    /// (or fails with [`ConnectError::TimedOut`](crate::ConnectError::TimedOut)). Default: [`DEFAULT_CONNECT_TIMEOUT`].
    pub timeout: Duration,
    /// With TLS: how long the handshake may take once TCP is connected, before failing with
    /// [`TlsError::HandshakeTimeout`](crate::TlsError::HandshakeTimeout). Default:
    /// [`DEFAULT_HANDSHAKE_TIMEOUT`](crate::tls::DEFAULT_HANDSHAKE_TIMEOUT).
    pub handshake_timeout: Duration,
    /// `Some`: a TLS handshake with this configuration once TCP is connected, before the
    /// protocol is made.
    pub tls: Option<Arc<ClientConfig>>,
    /// The name the server's certificate is verified for, and sent as SNI. Default: the
    /// target's host name, or the IP address connected to.
    pub server_name: Option<String>,
    /// The local address to bind to before connecting (port 0: any port). Default: the
    /// system's choice.
    pub local_addr: Option<SocketAddr>,
    /// Happy Eyeballs (RFC 8305), when the addresses to try are of both families: how long
    /// a connect may go unanswered before the next address is tried alongside it. Default:
    /// [`DEFAULT_ATTEMPT_DELAY`].
    pub attempt_delay: Duration,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            timeout: DEFAULT_CONNECT_TIMEOUT,
            handshake_timeout: crate::tls::DEFAULT_HANDSHAKE_TIMEOUT,
            tls: None,
            server_name: None,
            local_addr: None,
            attempt_delay: DEFAULT_ATTEMPT_DELAY,
        }
    }
}

impl ConnectOptions {
    /// The default options: plain TCP, a 30-second timeout.
    pub fn new() -> Self {
        ConnectOptions::default()
    }

    /// The default options with the given connect timeout.
    pub fn with_timeout(timeout: Duration) -> Self {
        ConnectOptions::new().timeout(timeout)
    }

    /// These options with the given connect timeout (per address).
    pub fn timeout(self, timeout: Duration) -> Self {
        ConnectOptions { timeout, ..self }
    }

    /// These options with the given TLS handshake timeout.
    pub fn handshake_timeout(self, handshake_timeout: Duration) -> Self {
        ConnectOptions {
            handshake_timeout,
            ..self
        }
    }

    /// These options with TLS: a handshake with `config` once TCP is connected, verifying
    /// the server's certificate for the target's host (or [`server_name`](Self::server_name)).
    pub fn tls(self, config: impl Into<Arc<ClientConfig>>) -> Self {
        ConnectOptions {
            tls: Some(config.into()),
            ..self
        }
    }

    /// These options with the name the server's certificate is verified for (and sent as
    /// SNI), instead of the target's host.
    pub fn server_name(self, name: impl Into<String>) -> Self {
        ConnectOptions {
            server_name: Some(name.into()),
            ..self
        }
    }

    /// These options with the given Happy Eyeballs connection attempt delay (see
    /// [`attempt_delay`](Self::attempt_delay)).
    pub fn attempt_delay(self, attempt_delay: Duration) -> Self {
        ConnectOptions {
            attempt_delay,
            ..self
        }
    }

    /// These options binding the socket to `addr` before connecting.
    pub fn local_addr(self, addr: SocketAddr) -> Self {
        ConnectOptions {
            local_addr: Some(addr),
            ..self
        }
    }
}

/// A connection attempt started by [`Reactor::connect`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Connector {
    pub(crate) id: ConnectionId,
}

impl Connector {
    /// An attempt that failed before it began (its failure is reported on the next turn).
    pub(crate) fn failed() -> Connector {
        Connector {
            id: ConnectionId(Key::STALE),
        }
    }

    /// Abandons the attempt if it is still going (resolving, connecting, or in its TLS
    /// handshake): the factory's `client_connection_failed` gets
    /// [`ConnectError::Cancelled`](crate::ConnectError::Cancelled)
    /// before this returns (Twisted's `stopConnecting`). False if the attempt already ended
    /// either way.
    pub fn stop_connecting(&self, reactor: &mut Reactor) -> bool {
        reactor.stop_connecting(self.id.0)
    }

    /// The id the connection has once established, the same from the start (it can be
    /// stored now, e.g. to write to the connection from elsewhere later). Stale if the
    /// attempt fails.
    pub fn id(&self) -> ConnectionId {
        self.id
    }
}
