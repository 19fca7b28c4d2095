//! Serving one port from several reactors: listening with `SO_REUSEPORT`, or on a socket
//! another reactor shared ([`SharedListener`]); UDP with `SO_REUSEPORT`.

use std::io;
use std::net::SocketAddr;

use super::datagrams::bind_udp_with;
use crate::listeners::{bind_listener_with, ListenOptions, ListenSocket};
use crate::shared_listener::ShareOfAccepts;
use crate::tls::ServerTls;
use crate::udp::{DatagramPort, DatagramProtocol};
use crate::{Factory, ListeningPort, Reactor, SharedListener};

impl Reactor {
    /// Like [`listen_tcp`](Reactor::listen_tcp), with socket options: the backlog, and
    /// `SO_REUSEPORT` so that one reactor per thread can each listen on the same port
    /// (bind port 0 once, then the others to the port it got).
    pub fn listen_tcp_with<F: Factory>(
        &mut self,
        addr: SocketAddr,
        options: ListenOptions,
        factory: F,
    ) -> io::Result<ListeningPort> {
        let socket = bind_listener_with(addr, options)?;
        let addr = socket.local_addr()?;
        let key = self.listen_socket(ListenSocket::Tcp(socket), None, Box::new(factory), None)?;
        Ok(ListeningPort {
            key,
            addr: Some(addr),
        })
    }

    /// Listens on a socket another reactor shared ([`ListeningPort::share`]), building a
    /// protocol with `factory` for each connection this reactor accepts, with the same TLS
    /// configuration as the original port. `shared` can serve any number of reactors.
    ///
    /// Every reactor on the socket is woken by a new connection. Each accepts a few per
    /// turn, and one that has accepted more than its even share leaves the queued
    /// connections to the others for a moment (2 ms) before taking them anyway: a burst of
    /// connects is spread over the reactors rather than drained by the first one awake,
    /// and a stalled reactor delays a connection by that moment at most.
    pub fn listen_shared<F: Factory>(
        &mut self,
        shared: &SharedListener,
        factory: F,
    ) -> io::Result<ListeningPort> {
        let socket = shared.socket.duplicate()?.into_listen_socket();
        let addr = match &socket {
            ListenSocket::Tcp(s) => Some(s.local_addr()?),
            ListenSocket::Unix(_) => None,
        };
        let tls = shared
            .tls
            .as_ref()
            .map(|(config, options)| Box::new(ServerTls::new(config.clone(), *options)));
        let key = self.listen_socket(socket, None, Box::new(factory), tls)?;
        if let Some(listener) = self.listeners_ref().get(key) {
            let _ = listener
                .share
                .set(ShareOfAccepts::join(shared.balance.clone()));
        }
        Ok(ListeningPort { key, addr })
    }

    /// Like [`listen_udp`](Reactor::listen_udp), with `SO_REUSEPORT`: one socket per
    /// reactor thread on the same port, the kernel spreading datagrams among them by a hash
    /// of their source and destination (so one peer's datagrams all reach the same socket).
    pub fn listen_udp_reuse_port<P: DatagramProtocol>(
        &mut self,
        addr: SocketAddr,
        protocol: P,
    ) -> io::Result<DatagramPort> {
        let socket = bind_udp_with(addr, |socket| socket.set_reuse_port(true))?;
        self.open_udp(socket, None, protocol)
    }
}
