//! A listening socket shared by several reactors: one socket, a duplicate of its descriptor
//! registered in each reactor's poll, so whichever reactor is free accepts the next
//! connection. The other way to serve one port from many reactors, one socket per reactor
//! with `SO_REUSEPORT`, is an option of the listen itself ([`ListenOptions`](crate::ListenOptions)).

use std::io;
use std::os::fd::AsFd;
use std::sync::Arc;

use rustls::ServerConfig;

use crate::listeners::ListenSocket;
use crate::tls::{ServerTls, TlsOptions};
use crate::{ListeningPort, Reactor};

/// A listening port's socket (and its TLS configuration, on a TLS port), duplicated to be
/// listened on by other reactors, on other threads, with
/// [`Reactor::listen_shared`]. `Send`, so it can travel to them.
///
/// Every reactor listening on it is woken by each incoming connection and the first to
/// call `accept` gets it (the others find nothing): the free reactors take the
/// connections, at the cost of a wake-up per reactor per burst of connections.
#[derive(Debug)]
pub struct SharedListener {
    pub(crate) socket: SharedSocket,
    pub(crate) tls: Option<(Arc<ServerConfig>, TlsOptions)>,
}

/// The duplicated descriptor, of either kind.
#[derive(Debug)]
pub(crate) enum SharedSocket {
    Tcp(std::net::TcpListener),
    Unix(std::os::unix::net::UnixListener),
}

impl SharedListener {
    /// The TCP address the socket is bound to; `None` for a UNIX socket.
    pub fn local_addr(&self) -> io::Result<Option<std::net::SocketAddr>> {
        match &self.socket {
            SharedSocket::Tcp(s) => s.local_addr().map(Some),
            SharedSocket::Unix(_) => Ok(None),
        }
    }
}

impl SharedSocket {
    /// Another descriptor for the same socket (`dup`).
    pub(crate) fn duplicate(&self) -> io::Result<SharedSocket> {
        Ok(match self {
            SharedSocket::Tcp(s) => SharedSocket::Tcp(s.try_clone()?),
            SharedSocket::Unix(s) => SharedSocket::Unix(s.try_clone()?),
        })
    }

    /// The duplicate as a socket the reactor can register.
    pub(crate) fn into_listen_socket(self) -> ListenSocket {
        match self {
            SharedSocket::Tcp(s) => ListenSocket::Tcp(mio::net::TcpListener::from_std(s)),
            SharedSocket::Unix(s) => ListenSocket::Unix(mio::net::UnixListener::from_std(s)),
        }
    }
}

impl ListeningPort {
    /// Duplicates this port's socket for other reactors ([`Reactor::listen_shared`]). The
    /// port itself goes on as before; stopping it does not stop the others (each closes
    /// only its own descriptor; the socket closes with the last). A UNIX port's socket file
    /// stays owned by this port: it is removed when this port stops.
    pub fn share(&self, reactor: &Reactor) -> io::Result<SharedListener> {
        let gone = || io::Error::new(io::ErrorKind::NotFound, "the port has stopped listening");
        let listener = reactor.listeners_ref().get(self.key).ok_or_else(gone)?;
        let socket = match &listener.socket {
            ListenSocket::Tcp(s) => SharedSocket::Tcp(s.as_fd().try_clone_to_owned()?.into()),
            ListenSocket::Unix(s) => SharedSocket::Unix(s.as_fd().try_clone_to_owned()?.into()),
        };
        let tls = listener
            .tls
            .as_deref()
            .map(|tls: &ServerTls| (tls.config.clone(), tls.options));
        Ok(SharedListener { socket, tls })
    }
}
