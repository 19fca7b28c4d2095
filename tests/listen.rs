//! Listening ports: port 0 reports the port really bound, a factory may refuse a connection,
//! and the factory's start/stop hooks run once each.

mod common;

use std::cell::Cell;
use std::io::ErrorKind;
use std::net::{SocketAddr, TcpStream};
use std::rc::Rc;
use std::thread;

use common::*;
use torsion::{Address, Context, Factory, Protocol, Reactor};

/// Records both ends' addresses as the connection sees them.
struct Addresses(Shared<Option<(SocketAddr, SocketAddr)>>);

impl Protocol for Addresses {
    fn connection_made(&mut self, cx: &mut Context<'_>) {
        *self.0.borrow_mut() = Some((cx.local_addr().unwrap(), cx.peer_addr().unwrap()));
    }

    fn data_received(&mut self, _cx: &mut Context<'_>, _data: &[u8]) {}
}

#[test]
fn listening_on_port_zero_reports_the_real_port() {
    init_logging();
    let mut reactor = Reactor::new().unwrap();
    let seen = shared(None);
    let s = seen.clone();
    let port = reactor
        .listen_tcp(any_loopback_port(), move || Addresses(s.clone()))
        .unwrap();
    let addr = port.local_addr();
    assert_ne!(addr.port(), 0);
    assert_eq!(addr.ip(), any_loopback_port().ip());

    let client = connect(addr);
    run_until(&mut reactor, "the connection", || seen.borrow().is_some());
    let (local, peer) = seen.borrow().unwrap();
    assert_eq!(local, addr);
    assert_eq!(peer, client.local_addr().unwrap());
}

/// Refuses the first connection, echoes the rest; counts its calls.
struct RefuseFirst {
    builds: Rc<Cell<usize>>,
}

impl Factory for RefuseFirst {
    type Protocol = Echo;

    fn build_protocol(&mut self, _peer: Address) -> Option<Echo> {
        self.builds.set(self.builds.get() + 1);
        (self.builds.get() > 1).then_some(Echo)
    }
}

#[test]
fn a_refused_connection_is_closed_and_the_server_goes_on() {
    init_logging();
    let mut reactor = Reactor::new().unwrap();
    let builds = Rc::new(Cell::new(0));
    let port = reactor
        .listen_tcp(
            any_loopback_port(),
            RefuseFirst {
                builds: builds.clone(),
            },
        )
        .unwrap();
    let addr = port.local_addr();

    let refused = thread::spawn(move || read_to_end(&mut connect(addr)));
    let (received, end) = run_until_joined(&mut reactor, vec![refused]).remove(0);
    assert!(received.is_empty());
    end.expect("the refused client reads a clean EOF");

    let served = thread::spawn(move || round_trip(&mut connect(addr), b"and now?"));
    let echo = run_until_joined(&mut reactor, vec![served]).remove(0);
    assert_eq!(echo, b"and now?");
    assert_eq!(builds.get(), 2);
}

/// Counts its start and stop hooks and the protocols it builds.
struct Hooked {
    starts: Rc<Cell<usize>>,
    stops: Rc<Cell<usize>>,
    builds: Rc<Cell<usize>>,
}

impl Factory for Hooked {
    type Protocol = Echo;

    fn build_protocol(&mut self, _peer: Address) -> Option<Echo> {
        self.builds.set(self.builds.get() + 1);
        Some(Echo)
    }

    fn start_factory(&mut self) {
        self.starts.set(self.starts.get() + 1);
    }

    fn stop_factory(&mut self) {
        self.stops.set(self.stops.get() + 1);
    }
}

#[test]
fn start_and_stop_hooks_run_once_each_and_accepted_connections_outlive_the_port() {
    init_logging();
    let mut reactor = Reactor::new().unwrap();
    let (starts, stops, builds) = (Rc::default(), Rc::default(), Rc::default());
    let factory = Hooked {
        starts: Rc::clone(&starts),
        stops: Rc::clone(&stops),
        builds: Rc::clone(&builds),
    };
    let port = reactor.listen_tcp(any_loopback_port(), factory).unwrap();
    let addr = port.local_addr();
    assert_eq!((starts.get(), stops.get()), (1, 0));

    let mut accepted = connect(addr);
    run_until(&mut reactor, "the connection", || builds.get() == 1);
    assert!(port.stop_listening(&mut reactor));
    assert!(!port.stop_listening(&mut reactor), "already stopped");
    assert_eq!((starts.get(), stops.get()), (1, 1));

    let refused = TcpStream::connect(addr).map(|_| ());
    assert_eq!(
        refused.map_err(|e| e.kind()),
        Err(ErrorKind::ConnectionRefused)
    );
    let still = thread::spawn(move || round_trip(&mut accepted, b"still served"));
    let echo = run_until_joined(&mut reactor, vec![still]).remove(0);
    assert_eq!(echo, b"still served");
}
