//! Connection limits over loopback: a port at its limit leaves clients waiting in the kernel's
//! backlog and accepts the next once a connection closes; a client address over its limit is
//! closed at once while other addresses are served; TLS handshakes in progress are capped.

mod common;

use std::cell::Cell;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::rc::Rc;
use std::time::Duration;

use common::certs::TestCa;
use common::{any_loopback_port, connect, run_until, CLIENT_TIMEOUT};
use socket2::{Domain, Socket, Type};
use torsion::{ConnectionLimits, Context, DisconnectReason, Protocol, Reactor};

/// Counts connections made and lost; echoes.
struct Counted {
    made: Rc<Cell<usize>>,
    lost: Rc<Cell<usize>>,
}

impl Protocol for Counted {
    fn connection_made(&mut self, _cx: &mut Context<'_>) {
        self.made.set(self.made.get() + 1);
    }
    fn data_received(&mut self, cx: &mut Context<'_>, data: &[u8]) {
        cx.write(data);
    }
    fn connection_lost(&mut self, _cx: &mut Context<'_>, _reason: &DisconnectReason) {
        self.lost.set(self.lost.get() + 1);
    }
}

#[derive(Clone, Default)]
struct Counts {
    made: Rc<Cell<usize>>,
    lost: Rc<Cell<usize>>,
}

impl Counts {
    fn factory(&self) -> impl FnMut() -> Counted + 'static {
        let counts = self.clone();
        move || Counted {
            made: counts.made.clone(),
            lost: counts.lost.clone(),
        }
    }
}

/// Turns the reactor `turns` times (10 ms each at most): for checking nothing more happens.
fn turn(reactor: &mut Reactor, turns: usize) {
    for _ in 0..turns {
        reactor.iterate(Duration::from_millis(10)).unwrap();
    }
}

/// A client connected to `to` from the loopback address `from`.
fn connect_from(from: [u8; 4], to: SocketAddr) -> TcpStream {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    socket.bind(&SocketAddr::from((from, 0)).into()).unwrap();
    socket.connect(&to.into()).unwrap();
    let stream = TcpStream::from(socket);
    stream.set_read_timeout(Some(CLIENT_TIMEOUT)).unwrap();
    stream
}

#[test]
fn a_port_at_its_limit_leaves_the_next_client_in_the_backlog_until_one_closes() {
    common::init_logging();
    let mut reactor = Reactor::new().unwrap();
    let counts = Counts::default();
    let port = reactor
        .listen_tcp(any_loopback_port(), counts.factory())
        .unwrap();
    assert!(port.set_limits(&mut reactor, ConnectionLimits::new().max_connections(2)));
    let first = connect(port.local_addr());
    let _second = connect(port.local_addr());
    // The kernel completes the third client's connect: it waits in the backlog.
    let mut third = connect(port.local_addr());
    third.write_all(b"waiting").unwrap();
    run_until(&mut reactor, "two connections", || counts.made.get() == 2);
    turn(&mut reactor, 20);
    assert_eq!(
        counts.made.get(),
        2,
        "the third client was accepted over the limit"
    );

    drop(first);
    run_until(&mut reactor, "the third connection", || {
        counts.made.get() == 3
    });
    assert_eq!(counts.lost.get(), 1);
    let echo = std::thread::spawn(move || {
        let mut buf = [0; 7];
        third.read_exact(&mut buf).unwrap();
        buf
    });
    run_until(&mut reactor, "the echo", || echo.is_finished());
    assert_eq!(&echo.join().unwrap(), b"waiting");
}

#[test]
fn a_client_address_over_its_limit_is_closed_while_others_are_served() {
    common::init_logging();
    let mut reactor = Reactor::new().unwrap();
    let counts = Counts::default();
    let port = reactor
        .listen_tcp(any_loopback_port(), counts.factory())
        .unwrap();
    port.set_limits(&mut reactor, ConnectionLimits::new().max_per_address(1));
    let _first = connect_from([127, 0, 0, 1], port.local_addr());
    run_until(&mut reactor, "the first connection", || {
        counts.made.get() == 1
    });
    let mut refused = connect_from([127, 0, 0, 1], port.local_addr());
    let other = connect_from([127, 0, 0, 2], port.local_addr());
    run_until(&mut reactor, "the other address's connection", || {
        counts.made.get() == 2
    });
    let reader = std::thread::spawn(move || refused.read(&mut [0; 16]).map_err(|e| e.kind()));
    run_until(&mut reactor, "the refused client's end", || {
        reader.is_finished()
    });
    let end = reader.join().unwrap();
    assert!(
        matches!(end, Ok(0) | Err(std::io::ErrorKind::ConnectionReset)),
        "the refused client saw {end:?}"
    );
    assert_eq!(counts.made.get(), 2, "the refused client was never made");
    drop(other);
}

#[test]
fn tls_handshakes_in_progress_are_capped_and_the_next_waits_for_one_to_end() {
    common::init_logging();
    let mut reactor = Reactor::new().unwrap();
    reactor.set_max_tls_handshakes(2);
    let built = Rc::new(Cell::new(0));
    let counter = built.clone();
    let counts = Counts::default();
    let mut factory = counts.factory();
    let ca = TestCa::new("limits test CA");
    let port = reactor
        .listen_tls(
            any_loopback_port(),
            common::tls::localhost_server(&ca),
            move || {
                counter.set(counter.get() + 1);
                factory()
            },
        )
        .unwrap();
    // Clients that connect and never send a ClientHello: stalled handshakes.
    let stalled: Vec<TcpStream> = (0..3).map(|_| connect(port.local_addr())).collect();
    run_until(&mut reactor, "two handshakes", || built.get() == 2);
    turn(&mut reactor, 20);
    assert_eq!(built.get(), 2, "a third handshake started over the cap");
    assert_eq!(reactor.tls_handshakes_in_progress(), 2);

    let mut stalled = stalled.into_iter();
    drop(stalled.next());
    run_until(&mut reactor, "the third handshake", || built.get() == 3);
    assert_eq!(reactor.tls_handshakes_in_progress(), 2);
    assert_eq!(counts.made.get(), 0);
}
