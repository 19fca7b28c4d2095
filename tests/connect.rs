//! Outgoing connections: a successful connect reaches the protocol and the client factory
//! hears the loss; a refused or unanswered connect reaches `client_connection_failed` with the
//! real error; several addresses are tried in turn; a local address is bound before
//! connecting; and every kind of target converts into a `Target`.

mod common;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use common::*;
use torsion::{
    Address, ClientFactory, ConnectError, ConnectOptions, ConnectionId, Context, DisconnectReason,
    Factory, Protocol, Reactor, Target,
};

/// What a client factory heard.
#[derive(Debug, Default)]
struct Heard {
    made: bool,
    /// The connection's id, as its protocol saw it.
    id: Option<ConnectionId>,
    /// The peer the factory built the protocol for.
    peer: Option<SocketAddr>,
    data: Vec<u8>,
    failed: Option<ConnectError>,
    lost: Option<Reason>,
}

/// Says hello on connecting and records everything into `Heard`.
struct Client(Shared<Heard>);

impl Protocol for Client {
    fn connection_made(&mut self, cx: &mut Context<'_>) {
        self.0.borrow_mut().made = true;
        self.0.borrow_mut().id = Some(cx.id());
        cx.write(b"hello");
    }

    fn data_received(&mut self, cx: &mut Context<'_>, data: &[u8]) {
        self.0.borrow_mut().data.extend_from_slice(data);
        cx.lose_connection();
    }
}

impl ClientFactory for Client {
    type Protocol = Client;

    fn build_protocol(&mut self, peer: Address) -> Client {
        self.0.borrow_mut().peer = peer.as_tcp();
        Client(self.0.clone())
    }

    fn client_connection_failed(&mut self, _reactor: &mut Reactor, error: ConnectError) {
        self.0.borrow_mut().failed = Some(error);
    }

    fn client_connection_lost(&mut self, _reactor: &mut Reactor, reason: &DisconnectReason) {
        self.0.borrow_mut().lost = Some(reason.into());
    }
}

#[test]
fn connect_reaches_the_server_and_the_factory_hears_the_clean_loss() {
    init_logging();
    let mut reactor = Reactor::new().unwrap();
    let port = reactor.listen_tcp(any_loopback_port(), || Echo).unwrap();
    let heard = shared(Heard::default());
    let connector = reactor.connect(
        port.local_addr(),
        Client(heard.clone()),
        ConnectOptions::new(),
    );

    run_until(&mut reactor, "the client connection to be lost", || {
        heard.borrow().lost.is_some()
    });
    let heard = heard.borrow();
    assert!(heard.made, "connection_made ran");
    assert_eq!(heard.data, b"hello", "the echo reached the client protocol");
    assert!(heard.failed.is_none(), "{:?}", heard.failed);
    assert_eq!(heard.lost, Some(Reason::Closed));
    assert!(!reactor.is_connected(connector.id()), "its id is now stale");
}

#[test]
fn connect_to_a_port_nobody_listens_on_fails_as_refused() {
    init_logging();
    let mut reactor = Reactor::new().unwrap();
    let heard = shared(Heard::default());
    reactor.connect(
        closed_loopback_port(),
        Client(heard.clone()),
        ConnectOptions::new(),
    );
    assert!(
        heard.borrow().failed.is_none(),
        "failure is reported on a later turn, never from inside connect"
    );

    run_until(&mut reactor, "the connect to fail", || {
        heard.borrow().failed.is_some()
    });
    let heard = heard.borrow();
    assert!(
        matches!(heard.failed, Some(ConnectError::Refused(_))),
        "{:?}",
        heard.failed
    );
    assert!(!heard.made && heard.lost.is_none());
}

#[test]
fn connect_to_a_listener_with_a_full_backlog_times_out() {
    init_logging();
    let listener = SilentListener::new();
    let mut reactor = Reactor::new().unwrap();
    let heard = shared(Heard::default());
    let timeout = Duration::from_millis(300);
    let started = Instant::now();
    reactor.connect(
        listener.addr(),
        Client(heard.clone()),
        ConnectOptions::with_timeout(timeout),
    );

    run_until(&mut reactor, "the connect to time out", || {
        heard.borrow().failed.is_some()
    });
    let elapsed = started.elapsed();
    let heard = heard.borrow();
    assert!(
        matches!(heard.failed, Some(ConnectError::TimedOut(_))),
        "{:?}",
        heard.failed
    );
    assert!(
        elapsed >= timeout,
        "failed after {elapsed:?}, before the timeout"
    );
    assert!(elapsed < timeout * 5, "failed only after {elapsed:?}");
    assert!(!heard.made);
    eprintln!(
        "accept queue held {} connections; timed out after {elapsed:?}",
        listener.queued.len()
    );
}

/// Records what a server that speaks first sent.
struct Listener(Shared<Heard>);

impl Protocol for Listener {
    fn connection_made(&mut self, _cx: &mut Context<'_>) {
        self.0.borrow_mut().made = true;
    }

    fn data_received(&mut self, _cx: &mut Context<'_>, data: &[u8]) {
        self.0.borrow_mut().data.extend_from_slice(data);
    }
}

#[test]
fn a_greeting_that_arrives_with_the_connect_completion_is_received() {
    init_logging();
    let server = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = server.local_addr().unwrap();
    let mut reactor = Reactor::new().unwrap();
    let heard = shared(Heard::default());
    let factory_heard = heard.clone();
    reactor.connect(
        addr,
        move || Listener(factory_heard.clone()),
        ConnectOptions::new(),
    );
    // The server accepts and speaks before the client's reactor polls even once, so the one
    // edge the client sees says both "connected" and "readable".
    let (mut accepted, _) = server.accept().unwrap();
    std::io::Write::write_all(&mut accepted, b"220 hello\r\n").unwrap();
    run_until(&mut reactor, "the greeting", || {
        heard.borrow().data == b"220 hello\r\n"
    });
    assert!(heard.borrow().made);
}

#[test]
fn addresses_fall_through_a_refused_address_to_a_listening_one() {
    init_logging();
    let mut reactor = Reactor::new().unwrap();
    let port = reactor.listen_tcp(any_loopback_port(), || Echo).unwrap();
    let heard = shared(Heard::default());
    let target = Target::Addresses(vec![closed_loopback_port(), port.local_addr()]);
    reactor.connect(target, Client(heard.clone()), ConnectOptions::new());

    run_until(&mut reactor, "the client connection to be lost", || {
        heard.borrow().lost.is_some()
    });
    let heard = heard.borrow();
    assert!(heard.failed.is_none(), "{:?}", heard.failed);
    assert_eq!(
        heard.peer,
        Some(port.local_addr()),
        "the second address answered"
    );
    assert_eq!(heard.data, b"hello");
    assert_eq!(heard.lost, Some(Reason::Closed));
}

#[test]
fn the_connector_names_the_connection_through_every_address_tried() {
    init_logging();
    let mut reactor = Reactor::new().unwrap();
    let port = reactor.listen_tcp(any_loopback_port(), || Echo).unwrap();
    let heard = shared(Heard::default());
    let target = vec![closed_loopback_port(), port.local_addr()];
    let connector = reactor.connect(target, Client(heard.clone()), ConnectOptions::new());
    assert!(!reactor.is_connected(connector.id()));

    run_until(&mut reactor, "the client connection to be made", || {
        heard.borrow().made
    });
    assert_eq!(heard.borrow().id, Some(connector.id()));
    assert!(reactor.is_connected(connector.id()));
}

#[test]
fn a_host_target_keeps_its_id_and_can_be_abandoned_while_it_resolves() {
    init_logging();
    let mut reactor = Reactor::new().unwrap();
    let port = reactor.listen_tcp(any_loopback_port(), || Echo).unwrap();
    let target = ("localhost", port.local_addr().port());

    let heard = shared(Heard::default());
    let connector = reactor.connect(target, Client(heard.clone()), ConnectOptions::new());
    run_until(&mut reactor, "the client connection to be made", || {
        heard.borrow().made
    });
    assert_eq!(heard.borrow().id, Some(connector.id()));

    let abandoned = shared(Heard::default());
    let connector = reactor.connect(target, Client(abandoned.clone()), ConnectOptions::new());
    assert!(connector.stop_connecting(&mut reactor), "still resolving");
    assert!(
        matches!(abandoned.borrow().failed, Some(ConnectError::Cancelled)),
        "{:?}",
        abandoned.borrow().failed
    );
    assert!(!connector.stop_connecting(&mut reactor), "already ended");
}

#[test]
fn addresses_that_all_refuse_report_the_last_error_once() {
    init_logging();
    let mut reactor = Reactor::new().unwrap();
    let heard = shared(Heard::default());
    let failures = shared(0);
    let f = failures.clone();
    let target = vec![closed_loopback_port(), closed_loopback_port()];
    reactor.connect(
        target,
        CountFailures(Client(heard.clone()), f),
        ConnectOptions::new(),
    );
    assert!(heard.borrow().failed.is_none(), "never from inside connect");

    run_until(&mut reactor, "the connect to fail", || {
        heard.borrow().failed.is_some()
    });
    for _ in 0..5 {
        reactor.iterate(Duration::from_millis(2)).unwrap();
    }
    assert_eq!(
        *failures.borrow(),
        1,
        "the factory hears once, of the last address"
    );
    assert!(
        matches!(heard.borrow().failed, Some(ConnectError::Refused(_))),
        "{:?}",
        heard.borrow().failed
    );
}

/// A [`Client`] factory that also counts the failures it hears.
struct CountFailures(Client, Shared<u32>);

impl ClientFactory for CountFailures {
    type Protocol = Client;

    fn build_protocol(&mut self, peer: Address) -> Client {
        self.0.build_protocol(peer)
    }

    fn client_connection_failed(&mut self, reactor: &mut Reactor, error: ConnectError) {
        *self.1.borrow_mut() += 1;
        self.0.client_connection_failed(reactor, error);
    }
}

#[test]
fn an_empty_list_of_addresses_fails_on_a_later_turn() {
    init_logging();
    let mut reactor = Reactor::new().unwrap();
    let heard = shared(Heard::default());
    reactor.connect(Vec::new(), Client(heard.clone()), ConnectOptions::new());
    assert!(heard.borrow().failed.is_none(), "never from inside connect");
    run_until(&mut reactor, "the failure", || {
        heard.borrow().failed.is_some()
    });
    assert!(
        matches!(&heard.borrow().failed, Some(ConnectError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound),
        "{:?}",
        heard.borrow().failed
    );
}

/// A server factory noting the peer address of each connection it accepts.
struct NotePeers(Shared<Vec<SocketAddr>>);

impl Factory for NotePeers {
    type Protocol = Echo;

    fn build_protocol(&mut self, peer: Address) -> Option<Echo> {
        self.0.borrow_mut().extend(peer.as_tcp());
        Some(Echo)
    }
}

#[test]
fn local_addr_binds_the_socket_before_it_connects() {
    init_logging();
    let mut reactor = Reactor::new().unwrap();
    let peers = shared(Vec::new());
    let port = reactor
        .listen_tcp(any_loopback_port(), NotePeers(peers.clone()))
        .unwrap();
    // Another loopback address than the server's (all of 127/8 is loopback), and a port
    // that was free a moment ago: the server sees both.
    let local = std::net::TcpListener::bind("127.0.0.2:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let heard = shared(Heard::default());
    let options = ConnectOptions::new().local_addr(local);
    reactor.connect(port.local_addr(), Client(heard.clone()), options);

    run_until(&mut reactor, "the client connection to be lost", || {
        heard.borrow().lost.is_some()
    });
    assert!(
        heard.borrow().failed.is_none(),
        "{:?}",
        heard.borrow().failed
    );
    assert_eq!(*peers.borrow(), [local]);
}

#[test]
fn local_addr_with_port_0_binds_the_address_and_any_port() {
    init_logging();
    let mut reactor = Reactor::new().unwrap();
    let peers = shared(Vec::new());
    let port = reactor
        .listen_tcp(any_loopback_port(), NotePeers(peers.clone()))
        .unwrap();
    let heard = shared(Heard::default());
    let local: SocketAddr = "127.0.0.3:0".parse().unwrap();
    let options = ConnectOptions::new().local_addr(local);
    reactor.connect(port.local_addr(), Client(heard.clone()), options);

    run_until(&mut reactor, "the client connection to be lost", || {
        heard.borrow().lost.is_some()
    });
    let peers = peers.borrow();
    assert_eq!(peers.len(), 1);
    assert_eq!(peers[0].ip(), local.ip());
    assert_ne!(peers[0].port(), 0);
}

#[test]
fn a_fixed_local_addr_is_bound_again_for_the_next_address_of_the_target() {
    init_logging();
    let mut reactor = Reactor::new().unwrap();
    let peers = shared(Vec::new());
    let port = reactor
        .listen_tcp(any_loopback_port(), NotePeers(peers.clone()))
        .unwrap();
    // A fixed port: the socket of the refused first address must be gone before the second
    // address's socket binds the same local address, or that bind fails (EADDRINUSE).
    let local = std::net::TcpListener::bind("127.0.0.2:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let heard = shared(Heard::default());
    let target = vec![closed_loopback_port(), port.local_addr()];
    let options = ConnectOptions::new().local_addr(local);
    reactor.connect(target, Client(heard.clone()), options);

    run_until(&mut reactor, "the attempt to end", || {
        heard.borrow().lost.is_some() || heard.borrow().failed.is_some()
    });
    assert!(
        heard.borrow().failed.is_none(),
        "{:?}",
        heard.borrow().failed
    );
    assert_eq!(*peers.borrow(), [local]);
}

#[test]
fn a_local_addr_that_cannot_be_bound_fails_the_attempt_on_a_later_turn() {
    init_logging();
    let mut reactor = Reactor::new().unwrap();
    let port = reactor.listen_tcp(any_loopback_port(), || Echo).unwrap();
    let heard = shared(Heard::default());
    // 192.0.2.1 (TEST-NET-1) is an address of no interface here: EADDRNOTAVAIL.
    let options = ConnectOptions::new().local_addr("192.0.2.1:0".parse().unwrap());
    reactor.connect(port.local_addr(), Client(heard.clone()), options);
    assert!(heard.borrow().failed.is_none(), "never from inside connect");

    run_until(&mut reactor, "the failure", || {
        heard.borrow().failed.is_some()
    });
    let heard = heard.borrow();
    assert!(
        matches!(&heard.failed, Some(ConnectError::Io(e)) if e.kind() == std::io::ErrorKind::AddrNotAvailable),
        "{:?}",
        heard.failed
    );
    assert!(!heard.made);
}

#[test]
fn every_common_kind_of_target_converts_into_a_target() {
    let v4 = SocketAddr::from(([127, 0, 0, 1], 80));
    let v6 = SocketAddr::from((Ipv6Addr::LOCALHOST, 443));
    assert_eq!(Target::from(v4), Target::Address(v4));
    assert_eq!(
        Target::from((IpAddr::from([127, 0, 0, 1]), 80)),
        Target::Address(v4)
    );
    assert_eq!(Target::from((Ipv4Addr::LOCALHOST, 80)), Target::Address(v4));
    assert_eq!(
        Target::from((Ipv6Addr::LOCALHOST, 443)),
        Target::Address(v6)
    );
    let host = Target::Host("example.com".to_string(), 443);
    assert_eq!(Target::from(("example.com", 443)), host);
    assert_eq!(Target::from(("example.com".to_string(), 443)), host);
    assert_eq!(Target::from(vec![v4, v6]), Target::Addresses(vec![v4, v6]));
    // An address literal as text is still a host to resolve.
    assert_eq!(
        Target::from(("127.0.0.1", 80)),
        Target::Host("127.0.0.1".to_string(), 80)
    );

    // And `connect` takes each of them as is.
    let mut reactor = Reactor::new().unwrap();
    let quiet = || Quiet;
    let options = ConnectOptions::new;
    reactor
        .connect(v4, quiet, options())
        .stop_connecting(&mut reactor);
    reactor
        .connect((Ipv4Addr::LOCALHOST, 80), quiet, options())
        .stop_connecting(&mut reactor);
    reactor
        .connect((Ipv6Addr::LOCALHOST, 80), quiet, options())
        .stop_connecting(&mut reactor);
    reactor
        .connect((IpAddr::from(Ipv4Addr::LOCALHOST), 80), quiet, options())
        .stop_connecting(&mut reactor);
    reactor
        .connect(vec![v4], quiet, options())
        .stop_connecting(&mut reactor);
    let host = String::from("localhost");
    // Host targets are resolved on the pool: their attempts are left to the reactor's drop.
    reactor.connect(("localhost", 80), quiet, options());
    reactor.connect((host, 80), quiet, options());
}

/// A protocol that does nothing.
struct Quiet;

impl Protocol for Quiet {
    fn data_received(&mut self, _cx: &mut Context<'_>, _data: &[u8]) {}
}
