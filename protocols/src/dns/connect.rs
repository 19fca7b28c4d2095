//! Connecting to a host name resolved by the [`Resolver`] rather than the thread pool's
//! getaddrinfo: the lookup, then [`Reactor::connect`] to the addresses found.

use std::net::SocketAddr;

use torsion_reactor::{ClientFactory, ConnectError, ConnectOptions, Reactor, Target};

use super::Resolver;

impl Resolver {
    /// Resolves `host` with this resolver, instead of the thread pool's getaddrinfo that a
    /// [`Target::Host`] given to [`Reactor::connect`] goes through, then connects `factory`
    /// to `port` on its addresses in turn until one answers ([`Target::Addresses`]), with
    /// `options` (timeouts, TLS, local address) as for [`Reactor::connect`]. With TLS and no
    /// [`server_name`](ConnectOptions::server_name), the server's certificate is verified for
    /// `host`, not for the address connected to.
    ///
    /// A host that does not resolve fails the factory with [`ConnectError::Resolve`], whose
    /// `io::Error` carries the [`ResolveError`](super::ResolveError); otherwise the error of
    /// the last address tried reaches `client_connection_failed`. Either way, never from
    /// inside this call.
    pub fn connect<F: ClientFactory>(
        &self,
        reactor: &mut Reactor,
        host: &str,
        port: u16,
        factory: F,
        mut options: ConnectOptions,
    ) {
        if options.server_name.is_none() {
            options.server_name = Some(host.to_string());
        }
        self.lookup(reactor, host, move |reactor, result| match result {
            Ok(addresses) => {
                let addrs = addresses.into_iter().map(|ip| SocketAddr::new(ip, port));
                reactor.connect(Target::Addresses(addrs.collect()), factory, options);
            }
            Err(e) => {
                let mut factory = factory;
                factory.client_connection_failed(reactor, ConnectError::Resolve(e.into()));
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::rc::Rc;
    use std::time::{Duration, Instant};

    use torsion_reactor::{Context, Protocol};

    use super::*;
    use crate::dns::{Hosts, ResolverConfig};

    struct Idle;

    impl Protocol for Idle {
        fn data_received(&mut self, _cx: &mut Context<'_>, _data: &[u8]) {}
    }

    type Outcome = Rc<RefCell<Vec<Result<SocketAddr, String>>>>;

    /// Notes every connection made and every failure.
    struct Note(Outcome);

    impl ClientFactory for Note {
        type Protocol = Idle;
        fn build_protocol(&mut self, peer: torsion_reactor::Address) -> Idle {
            let peer = peer.as_tcp().expect("a TCP peer");
            self.0.borrow_mut().push(Ok(peer));
            Idle
        }
        fn client_connection_failed(&mut self, _reactor: &mut Reactor, error: ConnectError) {
            self.0.borrow_mut().push(Err(error.to_string()));
        }
    }

    /// A port free on 127.0.0.1: bound to learn it, then released.
    fn free_port() -> u16 {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    }

    /// A resolver that finds `svc.test` at `addresses`, in that order, in its hosts file (its
    /// nameserver is never asked).
    fn resolver_finding(addresses: &[&str]) -> Rc<Resolver> {
        let hosts: String = addresses
            .iter()
            .map(|a| format!("{a} svc.test\n"))
            .collect();
        let never_asked = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let config = ResolverConfig::new(vec![never_asked]).with_hosts(Hosts::parse(&hosts));
        Resolver::new(config)
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
        // Nothing listens on 127.0.0.2 (all of 127/8 is loopback): refused.
        let resolver = resolver_finding(&["127.0.0.2", "127.0.0.1"]);
        let outcome = Outcome::default();
        let options = ConnectOptions::default();
        let note = Note(outcome.clone());
        resolver.connect(&mut reactor, "svc.test", open.port(), note, options);
        run_until(&mut reactor, &outcome);
        assert_eq!(*outcome.borrow(), [Ok(open)]);
    }

    #[test]
    fn the_last_address_failing_reaches_the_factory_once() {
        let mut reactor = Reactor::new().unwrap();
        let resolver = resolver_finding(&["127.0.0.2", "127.0.0.3"]);
        let outcome = Outcome::default();
        let options = ConnectOptions::default();
        let note = Note(outcome.clone());
        resolver.connect(&mut reactor, "svc.test", free_port(), note, options);
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
