//! Outgoing connections: [`Reactor::connect`], the one call for every kind of target (an
//! address, several, a host name), with or without TLS, and its [`ConnectOptions`].

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use crate::tcp::{stale_connector, Connector};
use crate::tls::io::ClientTls;
use crate::tls::stage::server_name as parse_server_name;
use crate::tls::{TlsError, DEFAULT_HANDSHAKE_TIMEOUT};
use crate::{ClientFactory, ConnectError, Reactor};

/// The default connect timeout, as Twisted's `connectTCP`: how long one address may take to
/// answer before [`Reactor::connect`] gives up on it.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// What [`Reactor::connect`] connects to.
///
/// Most callers never name it: `connect` takes anything that converts into it, such as a
/// `SocketAddr`, an `(IpAddr, u16)` pair, a `("example.com", 443)` pair or a
/// `Vec<SocketAddr>`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Target {
    /// One address.
    Address(SocketAddr),
    /// Addresses tried in turn until one answers (e.g. from a resolver of your own). An
    /// empty list fails the attempt.
    Addresses(Vec<SocketAddr>),
    /// A host name or address literal, resolved on the reactor's thread pool (getaddrinfo),
    /// and a port.
    Host(String, u16),
}

impl From<SocketAddr> for Target {
    fn from(addr: SocketAddr) -> Target {
        Target::Address(addr)
    }
}

impl From<(IpAddr, u16)> for Target {
    fn from((ip, port): (IpAddr, u16)) -> Target {
        Target::Address(SocketAddr::new(ip, port))
    }
}

impl From<(Ipv4Addr, u16)> for Target {
    fn from((ip, port): (Ipv4Addr, u16)) -> Target {
        Target::Address(SocketAddr::from((ip, port)))
    }
}

impl From<(Ipv6Addr, u16)> for Target {
    fn from((ip, port): (Ipv6Addr, u16)) -> Target {
        Target::Address(SocketAddr::from((ip, port)))
    }
}

/// A host name (or an address literal, still resolved on the thread pool) and a port.
impl From<(&str, u16)> for Target {
    fn from((host, port): (&str, u16)) -> Target {
        Target::Host(host.to_string(), port)
    }
}

/// A host name (or an address literal, still resolved on the thread pool) and a port.
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

/// Options for [`Reactor::connect`]: timeouts, TLS, the local address. Start from
/// [`ConnectOptions::new`] (the defaults) and chain the setters:
///
/// ```
/// use std::time::Duration;
/// use torsion_reactor::ConnectOptions;
///
/// let options = ConnectOptions::new().timeout(Duration::from_secs(5));
/// assert_eq!(options.timeout, Duration::from_secs(5));
/// assert!(options.tls.is_none());
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ConnectOptions {
    /// How long each address may take to accept the TCP connection before the attempt on it
    /// fails with [`ConnectError::TimedOut`] (and the next address, if any, is tried).
    /// Default: [`DEFAULT_CONNECT_TIMEOUT`], 30 seconds.
    pub timeout: Duration,
    /// With [`tls`](ConnectOptions::tls): how long the TLS handshake may take once the TCP
    /// connection is made, before failing with
    /// [`TlsError::HandshakeTimeout`](crate::tls::TlsError::HandshakeTimeout). Default:
    /// [`DEFAULT_HANDSHAKE_TIMEOUT`](crate::tls::DEFAULT_HANDSHAKE_TIMEOUT), 10 seconds.
    pub handshake_timeout: Duration,
    /// `Some`: a TLS handshake with this configuration once the TCP connection is made, the
    /// protocol built only once it completes (Twisted's `connectSSL`). Default: `None`, plain
    /// TCP.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// With TLS: the name the server's certificate must be valid for (a DNS name, also sent
    /// as SNI, or an IP address). Default (`None`): the target's host name for
    /// [`Target::Host`], else the IP address being connected to.
    pub server_name: Option<String>,
    /// Binds the socket to this local address before connecting (port 0: any free port), to
    /// choose the interface or source address. Default: `None`, the kernel chooses.
    pub local_addr: Option<SocketAddr>,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            timeout: DEFAULT_CONNECT_TIMEOUT,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            tls: None,
            server_name: None,
            local_addr: None,
        }
    }
}

impl ConnectOptions {
    /// The default options: plain TCP, a 30-second connect timeout, a 10-second handshake
    /// timeout, any local address.
    pub fn new() -> Self {
        ConnectOptions::default()
    }

    /// The default options with the given connect timeout.
    pub fn with_timeout(timeout: Duration) -> Self {
        ConnectOptions::new().timeout(timeout)
    }

    /// These options with the given connect timeout (per address tried).
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

    /// These options with a TLS handshake, with `config`, once the TCP connection is made.
    pub fn tls(self, config: impl Into<Arc<rustls::ClientConfig>>) -> Self {
        ConnectOptions {
            tls: Some(config.into()),
            ..self
        }
    }

    /// These options verifying the server's certificate for `name` (and sending it as SNI)
    /// instead of the name taken from the target.
    pub fn server_name(self, name: impl Into<String>) -> Self {
        ConnectOptions {
            server_name: Some(name.into()),
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

impl Reactor {
    /// Connects `factory` to `target` (Twisted's `connectTCP` and `connectSSL` in one), and
    /// returns at once: the outcome arrives from the reactor loop.
    ///
    /// `target` is anything that converts into a [`Target`]:
    /// - **an address** (`SocketAddr`, `(IpAddr, u16)`, ...): a non-blocking connect to it;
    /// - **several addresses** (`Vec<SocketAddr>`): each tried in turn, the next one only once
    ///   the TCP connect to the previous one failed (refused, unreachable, timed out), until
    ///   one accepts the connection; the rest are then dropped, so a TLS handshake that fails
    ///   there ends the attempt;
    /// - **a host name** (`("example.com", 443)`, or an address literal as text): resolved on
    ///   the thread pool (getaddrinfo blocks, so never on the reactor thread), then its
    ///   addresses tried in turn as above.
    ///
    /// Once connected, the factory builds the protocol and `connection_made` runs. With
    /// [`options.tls`](ConnectOptions::tls), a TLS handshake comes first, verifying the
    /// server's certificate for [`options.server_name`](ConnectOptions::server_name) (by
    /// default the host name of a [`Target::Host`], else the IP address connected to), and
    /// the protocol is built, and made, only once it completes. The socket gets
    /// `TCP_NODELAY` before it connects, and is bound to
    /// [`options.local_addr`](ConnectOptions::local_addr) first if that is given.
    ///
    /// Each address has [`options.timeout`](ConnectOptions::timeout) to accept the
    /// connection, and the handshake
    /// [`options.handshake_timeout`](ConnectOptions::handshake_timeout) once it has.
    ///
    /// If the attempt fails, the factory's
    /// [`client_connection_failed`](ClientFactory::client_connection_failed) hears why, once
    /// the current callback has returned, never from inside this call; with several addresses,
    /// only the last one's error reaches it. The errors:
    /// - [`ConnectError::Refused`], [`Unreachable`](ConnectError::Unreachable),
    ///   [`TimedOut`](ConnectError::TimedOut) (ours after `options.timeout`, or the
    ///   kernel's), [`Io`](ConnectError::Io) (a local failure: no descriptors, the local
    ///   address cannot be bound, an empty [`Target::Addresses`], ...);
    /// - [`ConnectError::Resolve`] for a host name that does not resolve, or resolves to no
    ///   address;
    /// - [`ConnectError::Tls`] for a failed or timed-out handshake, and
    ///   [`TlsError::InvalidServerName`] for a server name that is neither a DNS name nor an
    ///   IP address (checked before anything is connected);
    /// - [`ConnectError::Cancelled`] after [`Connector::stop_connecting`] or when the
    ///   reactor shuts down meanwhile.
    ///
    /// Once the protocol was made, the end of the connection reaches
    /// [`client_connection_lost`](ClientFactory::client_connection_lost) instead, after the
    /// protocol's `connection_lost`.
    ///
    /// The [`Connector`] returned can stop the attempt and tells the connection's id ahead
    /// of time, for the first address tried: each further address gets a slot, and an id, of
    /// its own, so once the attempt has gone on to the next address the `Connector` is stale
    /// (its `stop_connecting` returns false and stops nothing, its id names no connection).
    /// For a [`Target::Host`] it is stale from the start, because the connection has no slot
    /// until the name resolves.
    ///
    /// ```no_run
    /// use torsion_reactor::{tls, ConnectOptions, Context, Protocol, Reactor};
    ///
    /// struct Hello;
    ///
    /// impl Protocol for Hello {
    ///     fn connection_made(&mut self, cx: &mut Context<'_>) {
    ///         cx.write(b"hello\n");
    ///     }
    ///     fn data_received(&mut self, _cx: &mut Context<'_>, _data: &[u8]) {}
    /// }
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let mut reactor = Reactor::new()?;
    /// // Plain TCP to one address, the default options.
    /// let addr: std::net::SocketAddr = "127.0.0.1:7000".parse()?;
    /// reactor.connect(addr, || Hello, ConnectOptions::new());
    /// // TLS to a host name, its certificate verified for "example.com".
    /// let config = tls::client_config(tls::system_roots()?)?;
    /// reactor.connect(("example.com", 443), || Hello, ConnectOptions::new().tls(config));
    /// reactor.run()?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn connect<F: ClientFactory>(
        &mut self,
        target: impl Into<Target>,
        factory: F,
        options: ConnectOptions,
    ) -> Connector {
        let target = target.into();
        let factory = Box::new(factory);
        let tls = match client_tls(&target, &options) {
            Ok(tls) => tls,
            Err(e) => return self.fail_later_with(factory, ConnectError::Tls(e)),
        };
        match target {
            Target::Address(addr) => {
                self.connect_boxed(VecDeque::from([addr]), factory, options, tls)
            }
            Target::Addresses(addrs) => self.connect_boxed(addrs.into(), factory, options, tls),
            Target::Host(host, port) => {
                self.connect_host_boxed(&host, port, factory, options, tls);
                stale_connector()
            }
        }
    }
}

/// What the client handshake needs, if the options ask for TLS. The server name is checked
/// now, so that a bad one fails before anything is connected; left `None` when it is to be
/// the address each attempt connects to.
fn client_tls(target: &Target, options: &ConnectOptions) -> Result<Option<ClientTls>, TlsError> {
    let Some(config) = &options.tls else {
        return Ok(None);
    };
    let name = match (&options.server_name, target) {
        (Some(name), _) | (None, Target::Host(name, _)) => Some(parse_server_name(name)?),
        (None, Target::Address(_) | Target::Addresses(_)) => None,
    };
    Ok(Some(ClientTls {
        config: config.clone(),
        name,
        handshake_timeout: options.handshake_timeout,
    }))
}
