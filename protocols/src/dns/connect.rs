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
    /// [`ConnectError::Resolve`], whose `io::Error` carries the
    /// [`ResolveError`](super::ResolveError); otherwise the error of the last address tried
    /// reaches `client_connection_failed`.
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
                let addrs = addresses.into_iter().map(|ip| SocketAddr::new(ip, port));
                connect_in_turn(reactor, addrs.collect(), factory, options);
            }
            Err(e) => {
                let mut factory = factory;
                factory.client_connection_failed(reactor, ConnectError::Resolve(e.into()));
            }
        });
    }
}

/// Connects `factory` to the first of `addrs`, then, each time an attempt fails, to the next
/// (a lookup never succeeds with no address, so `addrs` is never empty).
fn connect_in_turn<F: ClientFactory>(
    reactor: &mut Reactor,
    mut addrs: VecDeque<SocketAddr>,
    factory: F,
    options: ConnectOptions,
) {
    if let Some(first) = addrs.pop_front() {
        let factory = InTurn {
            factory: Rc::new(RefCell::new(factory)),
            rest: addrs,
            options: options.clone(),
        };
        reactor.connect_tcp_with(first, factory, options);
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
                    options: self.options.clone(),
                };
                reactor.connect_tcp_with(next, factory, self.options.clone());
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

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use torsion_reactor::{Context, Protocol};

    use super::*;

    struct Idle;

    impl Protocol for Idle {
        fn data_received(&mut self, _cx: &mut Context<'_>, _data: &[u8]) {}
    }

    type Outcome = Rc<RefCell<Vec<Result<SocketAddr, String>>>>;

    /// Notes every connection made and every failure.
    struct Note(Outcome);

    impl ClientFactory for Note {
        type Protocol = Idle;
        fn build_protocol(&mut self, peer: SocketAddr) -> Idle {
            self.0.borrow_mut().push(Ok(peer));
            Idle
        }
        fn client_connection_failed(&mut self, _reactor: &mut Reactor, error: ConnectError) {
            self.0.borrow_mut().push(Err(error.to_string()));
        }
    }

    fn closed_port() -> SocketAddr {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    }

    fn run_until(reactor: &mut Reactor, outcome: &Outcome) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while outcome.borrow().is_empty() {
            assert!(Instant::now() < deadline, "no outcome");
            reactor.iterate(Duration::from_millis(5)).unwrap();
        }
    }

    #[test]
    fn a_refused_address_is_passed_over_for_the_next() {
        let mut reactor = Reactor::new().unwrap();
        let open = reactor
            .listen_tcp("127.0.0.1:0".parse().unwrap(), || Idle)
            .unwrap()
            .local_addr();
        let outcome = Outcome::default();
        let addrs = VecDeque::from([closed_port(), open]);
        connect_in_turn(
            &mut reactor,
            addrs,
            Note(outcome.clone()),
            ConnectOptions::default(),
        );
        run_until(&mut reactor, &outcome);
        assert_eq!(*outcome.borrow(), [Ok(open)]);
    }

    #[test]
    fn the_last_address_failing_reaches_the_factory_once() {
        let mut reactor = Reactor::new().unwrap();
        let outcome = Outcome::default();
        let addrs = VecDeque::from([closed_port(), closed_port()]);
        connect_in_turn(
            &mut reactor,
            addrs,
            Note(outcome.clone()),
            ConnectOptions::default(),
        );
        run_until(&mut reactor, &outcome);
        for _ in 0..10 {
            reactor.iterate(Duration::from_millis(2)).unwrap();
        }
        let outcome = outcome.borrow();
        assert_eq!(outcome.len(), 1);
        assert!(
            outcome[0].as_ref().unwrap_err().contains("refused"),
            "{outcome:?}"
        );
    }
}
