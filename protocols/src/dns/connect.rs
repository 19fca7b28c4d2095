//! Connecting to a host name resolved by the [`Resolver`] rather than the thread pool's
//! getaddrinfo: the lookup, then the addresses tried in turn.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::rc::Rc;

use log::debug;
use torsion_reactor::{ClientFactory, ConnectError, ConnectOptions, DisconnectReason, Reactor};

use super::Resolver;

impl Resolver {
    /// Resolves `host` with this resolver, then connects to `port` on its addresses in turn
    /// with the default options; see [`connect_tcp_with`](Resolver::connect_tcp_with).
    pub fn connect_tcp<F: ClientFactory>(
        &self,
        reactor: &mut Reactor,
        host: &str,
        port: u16,
        factory: F,
    ) {
        self.connect_tcp_with(reactor, host, port, factory, ConnectOptions::default())
    }

    /// Resolves `host` with this resolver instead of the thread pool's getaddrinfo
    /// ([`Reactor::connect_tcp_host_with`]), then connects to `port` on its addresses in
    /// turn until one answers. A host that does not resolve fails the factory with
    /// [`ConnectError::Resolve`], whose `io::Error` carries the [`ResolveError`](super::ResolveError); otherwise
    /// the error of the last address tried reaches `client_connection_failed`.
    pub fn connect_tcp_with<F: ClientFactory>(
        &self,
        reactor: &mut Reactor,
        host: &str,
        port: u16,
        factory: F,
        options: ConnectOptions,
    ) {
        self.lookup(reactor, host, move |reactor, result| match result {
            Ok(addresses) => {
                let mut addrs: VecDeque<SocketAddr> = addresses
                    .into_iter()
                    .map(|ip| SocketAddr::new(ip, port))
                    .collect();
                if let Some(first) = addrs.pop_front() {
                    let factory = InTurn {
                        factory: Rc::new(RefCell::new(factory)),
                        rest: addrs,
                        options,
                    };
                    reactor.connect_tcp_with(first, factory, options);
                }
            }
            Err(e) => {
                let mut factory = factory;
                factory.client_connection_failed(reactor, ConnectError::Resolve(e.into()));
            }
        });
    }
}

/// Connects a user's factory to one address after another until one answers.
struct InTurn<F> {
    factory: Rc<RefCell<F>>,
    rest: VecDeque<SocketAddr>,
    options: ConnectOptions,
}

impl<F: ClientFactory> ClientFactory for InTurn<F> {
    type Protocol = F::Protocol;

    fn build_protocol(&mut self, peer: SocketAddr) -> F::Protocol {
        self.factory.borrow_mut().build_protocol(peer)
    }

    fn client_connection_failed(&mut self, reactor: &mut Reactor, error: ConnectError) {
        match self.rest.pop_front() {
            Some(next) if !matches!(error, ConnectError::Cancelled) => {
                debug!("connect: {error}; trying {next}");
                let factory = InTurn {
                    factory: self.factory.clone(),
                    rest: std::mem::take(&mut self.rest),
                    options: self.options,
                };
                reactor.connect_tcp_with(next, factory, self.options);
            }
            _ => self
                .factory
                .borrow_mut()
                .client_connection_failed(reactor, error),
        }
    }

    fn client_connection_lost(&mut self, reactor: &mut Reactor, reason: &DisconnectReason) {
        self.factory
            .borrow_mut()
            .client_connection_lost(reactor, reason)
    }
}
