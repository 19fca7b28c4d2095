//! Outgoing connections: a successful connect reaches the protocol and the client factory
//! hears the loss; a refused or unanswered connect reaches `client_connection_failed` with the
//! real error.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::*;
use torsion::{
    ClientFactory, ConnectError, ConnectOptions, Context, DisconnectReason, Protocol, Reactor,
};

/// What a client factory heard.
#[derive(Debug, Default)]
struct Heard {
    made: bool,
    data: Vec<u8>,
    failed: Option<ConnectError>,
    lost: Option<Reason>,
}

/// Says hello on connecting and records everything into `Heard`.
struct Client(Shared<Heard>);

impl Protocol for Client {
    fn connection_made(&mut self, cx: &mut Context<'_>) {
        self.0.borrow_mut().made = true;
        cx.write(b"hello");
    }

    fn data_received(&mut self, cx: &mut Context<'_>, data: &[u8]) {
        self.0.borrow_mut().data.extend_from_slice(data);
        cx.lose_connection();
    }
}

impl ClientFactory for Client {
    type Protocol = Client;

    fn build_protocol(&mut self, _peer: SocketAddr) -> Client {
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
