//! Happy Eyeballs (RFC 8305) over loopback, on a manual clock so that the connection attempt
//! delay passes only when a test says so: IPv6 goes first; a refused address hands over to
//! the next at once; an address that never answers (a listener whose accept queue is full,
//! where Linux drops SYNs) gets company after the delay, and the first to connect wins with
//! the id reserved at connect time; the connect timeout still bounds the whole race.
//!
//! These tests need IPv6 loopback: without it they skip, except under `CI=true`.

mod common;

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener};
use std::time::Duration;

use common::machine::require_ipv6_loopback;
use common::*;
use torsion::{
    Address, ClientFactory, ConnectError, ConnectOptions, ConnectionId, Context, ManualClock,
    Protocol, Reactor, Target,
};

/// What the client heard.
#[derive(Debug, Default)]
struct Heard {
    made: Option<(ConnectionId, SocketAddr)>,
    failed: Option<ConnectError>,
    failures: usize,
}

/// Records the connection's id and peer once made.
struct Client(Shared<Heard>, Option<SocketAddr>);

impl Protocol for Client {
    fn connection_made(&mut self, cx: &mut Context<'_>) {
        let peer = self.1.expect("built for a peer");
        self.0.borrow_mut().made = Some((cx.id(), peer));
    }

    fn data_received(&mut self, _cx: &mut Context<'_>, _data: &[u8]) {}
}

impl ClientFactory for Client {
    type Protocol = Client;

    fn build_protocol(&mut self, peer: Address) -> Client {
        Client(self.0.clone(), peer.as_tcp())
    }

    fn client_connection_failed(&mut self, _reactor: &mut Reactor, error: ConnectError) {
        let mut heard = self.0.borrow_mut();
        heard.failures += 1;
        heard.failed = Some(error);
    }
}

const DELAY: Duration = Duration::from_millis(250);

fn manual_reactor() -> (Reactor, ManualClock) {
    init_logging();
    let clock = ManualClock::new();
    (Reactor::with_clock(clock.clone()).unwrap(), clock)
}

/// A listening std socket on `ip` that tells whether a connection reached it.
fn listener(ip: IpAddr) -> TcpListener {
    let listener = TcpListener::bind((ip, 0)).unwrap();
    listener.set_nonblocking(true).unwrap();
    listener
}

fn reached(listener: &TcpListener) -> bool {
    match listener.accept() {
        Ok(_) => true,
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => false,
        Err(e) => panic!("accept: {e}"),
    }
}

/// An address on `ip` where nothing listens.
fn closed(ip: IpAddr) -> SocketAddr {
    TcpListener::bind((ip, 0)).unwrap().local_addr().unwrap()
}

const V6: IpAddr = IpAddr::V6(Ipv6Addr::LOCALHOST);
const V4: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

fn connect(
    reactor: &mut Reactor,
    addrs: Vec<SocketAddr>,
    options: ConnectOptions,
) -> (Shared<Heard>, ConnectionId) {
    let heard = shared(Heard::default());
    let factory = Client(heard.clone(), None);
    let connector = reactor.connect(Target::Addresses(addrs), factory, options);
    (heard, connector.id())
}

/// A few turns in which nothing is due: what the sockets bring, without time passing.
fn turn_a_few_times(reactor: &mut Reactor) {
    for _ in 0..5 {
        reactor.iterate(Duration::from_millis(10)).unwrap();
    }
}

#[test]
fn ipv6_goes_first_and_wins_when_it_answers() {
    if !require_ipv6_loopback() {
        return;
    }
    let (mut reactor, _clock) = manual_reactor();
    let (v4, v6) = (listener(V4), listener(V6));
    let addrs = vec![v4.local_addr().unwrap(), v6.local_addr().unwrap()];
    let (heard, id) = connect(&mut reactor, addrs, ConnectOptions::new());
    run_until(&mut reactor, "the connection", || {
        heard.borrow().made.is_some()
    });
    assert_eq!(heard.borrow().made, Some((id, v6.local_addr().unwrap())));
    assert!(reached(&v6));
    assert!(
        !reached(&v4),
        "IPv4 was not tried: IPv6 answered within the delay"
    );
}

#[test]
fn a_refused_address_hands_over_to_the_next_at_once() {
    if !require_ipv6_loopback() {
        return;
    }
    let (mut reactor, _clock) = manual_reactor();
    let v4 = listener(V4);
    let addrs = vec![v4.local_addr().unwrap(), closed(V6)];
    let (heard, id) = connect(&mut reactor, addrs, ConnectOptions::new());
    // The clock never moves: the delay never passes, so only the refusal started IPv4.
    run_until(&mut reactor, "the connection", || {
        heard.borrow().made.is_some()
    });
    assert_eq!(heard.borrow().made, Some((id, v4.local_addr().unwrap())));
}

#[test]
fn an_unanswered_address_gets_company_after_the_delay_and_the_first_to_connect_wins() {
    if !require_ipv6_loopback() {
        return;
    }
    let (mut reactor, clock) = manual_reactor();
    let black_hole = SilentListener::on(V6);
    let v4 = listener(V4);
    let addrs = vec![black_hole.addr(), v4.local_addr().unwrap()];
    let (heard, id) = connect(&mut reactor, addrs, ConnectOptions::new());

    turn_a_few_times(&mut reactor);
    clock.advance(DELAY - Duration::from_millis(1));
    turn_a_few_times(&mut reactor);
    assert!(heard.borrow().made.is_none() && heard.borrow().failed.is_none());
    assert!(!reached(&v4), "IPv4 started before the delay passed");

    clock.advance(Duration::from_millis(1));
    run_until(&mut reactor, "the connection", || {
        heard.borrow().made.is_some()
    });
    assert_eq!(
        heard.borrow().made,
        Some((id, v4.local_addr().unwrap())),
        "IPv4 won, on the id reserved at connect time"
    );
    assert!(reached(&v4));
}

#[test]
fn the_attempt_delay_is_configurable() {
    if !require_ipv6_loopback() {
        return;
    }
    let (mut reactor, clock) = manual_reactor();
    let black_hole = SilentListener::on(V6);
    let v4 = listener(V4);
    let addrs = vec![black_hole.addr(), v4.local_addr().unwrap()];
    let options = ConnectOptions::new().attempt_delay(Duration::from_secs(2));
    let (heard, _) = connect(&mut reactor, addrs, options);

    clock.advance(Duration::from_millis(1999));
    turn_a_few_times(&mut reactor);
    assert!(!reached(&v4), "IPv4 started before the 2 s delay passed");
    clock.advance(Duration::from_millis(1));
    run_until(&mut reactor, "the connection", || {
        heard.borrow().made.is_some()
    });
}

#[test]
fn the_connect_timeout_still_bounds_the_race() {
    if !require_ipv6_loopback() {
        return;
    }
    let (mut reactor, clock) = manual_reactor();
    let (v6_hole, v4_hole) = (SilentListener::on(V6), SilentListener::on(V4));
    let addrs = vec![v6_hole.addr(), v4_hole.addr()];
    let options = ConnectOptions::new().timeout(Duration::from_secs(1));
    let (heard, _) = connect(&mut reactor, addrs, options);

    clock.advance(DELAY); // IPv4 starts now, and has the full timeout.
    turn_a_few_times(&mut reactor);
    clock.advance(Duration::from_millis(999));
    turn_a_few_times(&mut reactor);
    assert!(heard.borrow().failed.is_none(), "failed before the timeout");

    clock.advance(Duration::from_millis(1));
    run_until(&mut reactor, "the failure", || {
        heard.borrow().failed.is_some()
    });
    let heard = heard.borrow();
    assert!(
        matches!(heard.failed, Some(ConnectError::TimedOut(_))),
        "{:?}",
        heard.failed
    );
    assert_eq!(heard.failures, 1);
    assert!(heard.made.is_none());
}

#[test]
fn when_every_address_fails_the_factory_hears_once() {
    if !require_ipv6_loopback() {
        return;
    }
    let (mut reactor, _clock) = manual_reactor();
    let addrs = vec![closed(V4), closed(V6), closed(V4), closed(V6)];
    let (heard, _) = connect(&mut reactor, addrs, ConnectOptions::new());
    run_until(&mut reactor, "the failure", || {
        heard.borrow().failed.is_some()
    });
    turn_a_few_times(&mut reactor);
    let heard = heard.borrow();
    assert!(
        matches!(heard.failed, Some(ConnectError::Refused(_))),
        "{:?}",
        heard.failed
    );
    assert_eq!(heard.failures, 1);
}

#[test]
fn a_refusal_while_another_races_starts_the_next_at_once() {
    if !require_ipv6_loopback() {
        return;
    }
    let (mut reactor, clock) = manual_reactor();
    // IPv6 black hole, IPv4 refused, then IPv6 listening: after the delay IPv4 starts and
    // is refused, and the third address starts without another delay.
    let black_hole = SilentListener::on(V6);
    let v6 = listener(V6);
    let addrs = vec![black_hole.addr(), closed(V4), v6.local_addr().unwrap()];
    let (heard, id) = connect(&mut reactor, addrs, ConnectOptions::new());
    turn_a_few_times(&mut reactor);
    clock.advance(DELAY);
    run_until(&mut reactor, "the connection", || {
        heard.borrow().made.is_some()
    });
    assert_eq!(heard.borrow().made, Some((id, v6.local_addr().unwrap())));
}

#[test]
fn a_failure_of_the_first_connect_while_another_races_starts_the_next_at_once() {
    if !require_ipv6_loopback() {
        return;
    }
    let (mut reactor, clock) = manual_reactor();
    // IPv6 black hole (the connection's own socket), IPv4 black hole (racing after the
    // delay), then IPv6 listening.
    let first = SilentListener::on(V6);
    let second = SilentListener::on(V4);
    let v6 = listener(V6);
    let addrs = vec![first.addr(), second.addr(), v6.local_addr().unwrap()];
    let (heard, id) = connect(&mut reactor, addrs, ConnectOptions::new());
    turn_a_few_times(&mut reactor);
    clock.advance(DELAY);
    turn_a_few_times(&mut reactor);
    assert!(!reached(&v6), "the third address started before its turn");

    // The first listener goes: the kernel answers the first connect's next SYN retransmit
    // with a reset, so it fails (about a second later), and the third address starts at
    // once. The clock stays put: no delay passes meanwhile.
    drop(first);
    run_until(&mut reactor, "the connection", || {
        heard.borrow().made.is_some()
    });
    assert_eq!(heard.borrow().made, Some((id, v6.local_addr().unwrap())));
}
