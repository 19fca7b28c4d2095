//! Endpoint strings (Twisted's `serverFromString` and `clientFromString`): one command-line
//! argument names where a server listens or what a client connects to, TCP, TLS or UNIX.
//!
//! Parsing is pure (no I/O: files named in the string are read only when listening or
//! connecting), through [`FromStr`](std::str::FromStr):
//!
//! ```
//! use torsion_reactor::{ClientEndpoint, ServerEndpoint};
//!
//! let server: ServerEndpoint = "tcp:8000:interface=127.0.0.1".parse()?;
//! let plain: ServerEndpoint = "127.0.0.1:8000".parse()?; // the same
//! assert_eq!(server, plain);
//! let client: ClientEndpoint = "tcp:host=localhost:port=8000:timeout=5".parse()?;
//! # let _ = client;
//! # Ok::<(), torsion_reactor::ParseEndpointError>(())
//! ```
//!
//! The syntax is Twisted's: `:` separates the parts, the first names the kind of endpoint,
//! then come positional arguments and `key=value` options; a backslash makes the next
//! character literal (`\:` in an IPv6 address or a path, `\=` in a path, `\\`).

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::connect::Target;
use crate::UnixAddress;

mod error;
mod parse;
#[cfg(test)]
mod tests;

pub use error::{EndpointError, ParseEndpointError};

/// Where a server listens, parsed from an endpoint string by [`str::parse`]; listened on
/// with [`Reactor::listen`](crate::Reactor::listen).
///
/// | String | Endpoint |
/// |---|---|
/// | `tcp:PORT[:interface=ADDR][:backlog=N][:reuseport=yes]` | TCP on `ADDR` (default `0.0.0.0`, every IPv4 interface) |
/// | `tcp6:PORT[:interface=ADDR][:backlog=N][:reuseport=yes]` | TCP on an IPv6 `ADDR` (default `::`) |
/// | `tls:PORT:privateKey=PEM[:certKey=PEM][:interface=ADDR][:backlog=N]` | TLS over TCP (`ssl:` too) |
/// | `unix:PATH[:mode=0660]` | a UNIX socket at `PATH`, its file's permissions `mode` (octal) |
/// | `unix:@NAME` | a UNIX socket in Linux's abstract namespace |
/// | `HOST:PORT` | TCP on an IP address: `127.0.0.1:8000`, `[::1]:8000` |
/// | `systemd:domain=INET:index=N` | the Nth socket systemd passed (`domain=INET6`, `UNIX`; `name=NAME` instead of `index`) |
/// | `haproxy:ENDPOINT` | `ENDPOINT` (`tcp:`, `tcp6:` or `unix:`) behind a proxy sending the PROXY protocol |
///
/// `certKey` is the certificate chain (end entity first); it defaults to the `privateKey`
/// file, which may then hold both (as Twisted's). An IPv6 interface is written
/// `interface=\:\:1` or `interface=[::1]`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ServerEndpoint {
    /// TCP on `addr`.
    Tcp {
        /// The address and port to bind (port 0 picks a free port).
        addr: SocketAddr,
        /// The accept queue's length; `None`: the reactor's default.
        backlog: Option<u32>,
        /// `reuseport=yes`: `SO_REUSEPORT`, so that another process (a new version of the
        /// server, during a restart) can listen on the same port at the same time.
        reuse_port: bool,
    },
    /// TLS over TCP on `addr`.
    Tls {
        /// The address and port to bind.
        addr: SocketAddr,
        /// The accept queue's length; `None`: the reactor's default.
        backlog: Option<u32>,
        /// The PEM file with the certificate chain, end entity first.
        cert_chain: PathBuf,
        /// The PEM file with the private key.
        private_key: PathBuf,
    },
    /// A UNIX stream socket.
    Unix {
        /// Where it listens.
        name: UnixAddress,
        /// The permissions of the socket's file (a path only), e.g. `0o660`.
        mode: Option<u32>,
    },
    /// A listening socket passed by systemd (socket activation): the one at `socket`
    /// among those `LISTEN_FDS` counts, checked to be for this process (`LISTEN_PID`) and a
    /// stream socket of `domain`.
    Systemd {
        /// The socket's family.
        domain: SystemdDomain,
        /// Which of the passed sockets.
        socket: SystemdSocket,
    },
    /// The endpoint inside, behind a proxy speaking the PROXY protocol: each connection
    /// must open with a PROXY header (version 1 or 2), and the protocol sees the client's
    /// address it names (see [`ProxiedFactory`](crate::proxy::ProxiedFactory)).
    Haproxy(Box<ServerEndpoint>),
}

/// The family of a socket passed by systemd (`domain=` in a `systemd:` endpoint).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SystemdDomain {
    /// `INET`: TCP over IPv4.
    Inet,
    /// `INET6`: TCP over IPv6.
    Inet6,
    /// `UNIX`: a UNIX stream socket.
    Unix,
}

impl fmt::Display for SystemdDomain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SystemdDomain::Inet => "INET",
            SystemdDomain::Inet6 => "INET6",
            SystemdDomain::Unix => "UNIX",
        })
    }
}

/// Which socket passed by systemd a `systemd:` endpoint takes.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SystemdSocket {
    /// `index=N`: the Nth (from 0), descriptor `3 + N`.
    Index(usize),
    /// `name=NAME`: the one `LISTEN_FDNAMES` names so (`FileDescriptorName=` in the unit).
    Name(String),
}

/// What a client connects to, parsed from an endpoint string by [`str::parse`]; connected
/// with [`Reactor::connect_endpoint`](crate::Reactor::connect_endpoint).
///
/// | String | Endpoint |
/// |---|---|
/// | `tcp:host=HOST:port=PORT[:timeout=SECONDS]` (or `tcp:HOST:PORT`) | TCP |
/// | `tls:host=HOST:port=PORT[:timeout=SECONDS][:trustRoots=PEM]` (or `tls:HOST:PORT`) | TLS over TCP |
/// | `unix:path=PATH[:timeout=SECONDS]` (or `unix:PATH`; `@NAME`: abstract) | a UNIX socket |
/// | `HOST:PORT` | TCP: `127.0.0.1:8000`, `[::1]:8000`, `localhost:8000` |
///
/// A host name is resolved when connecting, and when it has IPv6 and IPv4 addresses they
/// are raced as the reactor's `connect` does (Happy Eyeballs). TLS verifies the server's
/// certificate for `HOST` against the system's roots, or the CA certificates in the
/// `trustRoots` PEM file.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientEndpoint {
    /// TCP to `target`.
    Tcp {
        /// An address, or a host name and port.
        target: Target,
        /// The connect timeout; `None`: the reactor's default.
        timeout: Option<Duration>,
    },
    /// TLS over TCP to `target`.
    Tls {
        /// An address, or a host name and port.
        target: Target,
        /// The connect timeout; `None`: the reactor's default.
        timeout: Option<Duration>,
        /// A PEM file of CA certificates to trust instead of the system's roots.
        trust_roots: Option<PathBuf>,
    },
    /// A UNIX stream socket.
    Unix {
        /// Where it connects.
        name: UnixAddress,
        /// The connect timeout; `None`: the reactor's default.
        timeout: Option<Duration>,
    },
}

impl ClientEndpoint {
    /// The connect timeout the string asked for, if any.
    pub fn timeout(&self) -> Option<Duration> {
        match self {
            ClientEndpoint::Tcp { timeout, .. }
            | ClientEndpoint::Tls { timeout, .. }
            | ClientEndpoint::Unix { timeout, .. } => *timeout,
        }
    }
}

impl fmt::Display for ClientEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientEndpoint::Tcp { target, .. } => write!(f, "tcp {target}"),
            ClientEndpoint::Tls { target, .. } => write!(f, "tls {target}"),
            ClientEndpoint::Unix { name, .. } => write!(f, "unix {name}"),
        }
    }
}

impl fmt::Display for ServerEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServerEndpoint::Tcp { addr, .. } => write!(f, "tcp {addr}"),
            ServerEndpoint::Tls { addr, .. } => write!(f, "tls {addr}"),
            ServerEndpoint::Unix { name, .. } => write!(f, "unix {name}"),
            ServerEndpoint::Systemd { domain, socket } => match socket {
                SystemdSocket::Index(index) => write!(f, "systemd {domain} index {index}"),
                SystemdSocket::Name(name) => write!(f, "systemd {domain} name {name}"),
            },
            ServerEndpoint::Haproxy(inner) => write!(f, "haproxy {inner}"),
        }
    }
}
