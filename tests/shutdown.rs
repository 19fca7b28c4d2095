//! Graceful shutdown without signals: triggers run in phase order around the closing of every
//! connection; queued writes are flushed before a clean close; listeners stop and pending
//! connects are cancelled; a peer that does not drain is aborted at the shutdown timeout.

mod common;

use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::rc::Rc;
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use torsion::{
    Address, ClientFactory, ConnectError, ConnectOptions, ConnectionId, Context, DisconnectReason,
    Phase, Protocol, Reactor,
};

type Log = Rc<RefCell<Vec<String>>>;

/// Queues `size` bytes of the test pattern as soon as the connection is made, and logs how
/// it ends.
struct Blaster {
    size: usize,
    log: Log,
    id: Rc<Cell<Option<ConnectionId>>>,
}

impl Protocol for Blaster {
    fn connection_made(&mut self, cx: &mut Context<'_>) {
        let block = pattern_block();
        let mut left = self.size;
        while left > 0 {
            let n = left.min(block.len());
            cx.write(&block[..n]);
            left -= n;
        }
        self.log.borrow_mut().push("made".into());
        self.id.set(Some(cx.id()));
    }

    fn data_received(&mut self, _cx: &mut Context<'_>, _data: &[u8]) {}

    fn connection_lost(&mut self, _cx: &mut Context<'_>, reason: &DisconnectReason) {
        self.log
            .borrow_mut()
            .push(format!("lost {:?}", Reason::from(reason)));
    }
}

/// A server whose connections each get `size` bytes; returns its address and the id of its
/// latest connection.
fn blaster_server(
    reactor: &mut Reactor,
    size: usize,
    log: &Log,
) -> (SocketAddr, Rc<Cell<Option<ConnectionId>>>) {
    let log = log.clone();
    let id = Rc::new(Cell::new(None));
    let latest = id.clone();
    let port = reactor
        .listen_tcp(any_loopback_port(), move || Blaster {
            size,
            log: log.clone(),
            id: latest.clone(),
        })
        .unwrap();
    (port.local_addr(), id)
}

fn add_triggers(reactor: &mut Reactor, log: &Log) {
    for (phase, name) in [
        (Phase::After, "after"),
        (Phase::During, "during"),
        (Phase::Before, "before"),
    ] {
        let log = log.clone();
        reactor.add_shutdown_trigger(phase, move |_| log.borrow_mut().push(name.into()));
    }
}

#[test]
fn shutdown_flushes_every_queued_byte_then_closes_cleanly_and_runs_triggers_in_order() {
    // More than the kernel's socket buffers can hold, so that most of it is still queued in
    // the reactor when the shutdown starts: the client reads only once told to.
    const SIZE: usize = 32 << 20;
    let mut reactor = Reactor::new().unwrap();
    let log = Log::default();
    let (addr, id) = blaster_server(&mut reactor, SIZE, &log);
    add_triggers(&mut reactor, &log);
    let (go, start_reading) = std::sync::mpsc::channel::<()>();
    let client = thread::spawn(move || {
        let mut stream = connect(addr);
        start_reading.recv().unwrap();
        let (data, end) = read_to_end(&mut stream);
        (data, end.map_err(|e| e.kind()))
    });
    run_until(&mut reactor, "the connection", || !log.borrow().is_empty());
    let id = id.get().unwrap();
    assert!(
        reactor.queued_bytes(id) > 0,
        "the test needs bytes still queued at shutdown"
    );
    reactor.shutdown();
    go.send(()).unwrap();
    let _watchdog = Watchdog::arm(Duration::from_secs(20), "the graceful shutdown");
    reactor.run().unwrap();
    let (data, end) = client.join().unwrap();
    assert_eq!(end, Ok(()), "the client saw a clean EOF, not a reset");
    assert_eq!(data.len(), SIZE);
    let block = pattern_block();
    assert_eq!(check_pattern(&block, 0, &data), Ok(()));
    assert_eq!(
        *log.borrow(),
        ["made", "before", "during", "lost Closed", "after"]
    );
}

#[test]
fn a_peer_that_does_not_drain_is_aborted_at_the_shutdown_timeout() {
    let mut reactor = Reactor::new().unwrap();
    let log = Log::default();
    let (addr, _) = blaster_server(&mut reactor, 32 << 20, &log);
    reactor.set_shutdown_timeout(Duration::from_millis(200));
    let stuck = connect(addr); // never reads
    run_until(&mut reactor, "the connection", || !log.borrow().is_empty());
    let started = Instant::now();
    reactor.shutdown();
    let _watchdog = Watchdog::arm(Duration::from_secs(20), "the shutdown timeout");
    reactor.run().unwrap();
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert_eq!(*log.borrow(), ["made", "lost Aborted"]);
    drop(stuck);
}

#[test]
fn a_second_shutdown_forces_it() {
    let mut reactor = Reactor::new().unwrap();
    let log = Log::default();
    let (addr, _) = blaster_server(&mut reactor, 32 << 20, &log);
    let stuck = connect(addr);
    run_until(&mut reactor, "the connection", || !log.borrow().is_empty());
    reactor.shutdown();
    reactor.iterate(Duration::ZERO).unwrap();
    assert_eq!(
        *log.borrow(),
        ["made"],
        "the first shutdown waits for the flush"
    );
    reactor.shutdown();
    reactor.iterate(Duration::ZERO).unwrap();
    assert_eq!(*log.borrow(), ["made", "lost Aborted"]);
    assert!(reactor.stop_requested());
    drop(stuck);
}

/// Records how a connection attempt ended.
struct Attempt(Rc<RefCell<Option<String>>>);

impl Protocol for Attempt {
    fn data_received(&mut self, _cx: &mut Context<'_>, _data: &[u8]) {}
}

impl ClientFactory for Attempt {
    type Protocol = Attempt;
    fn build_protocol(&mut self, _peer: Address) -> Attempt {
        Attempt(self.0.clone())
    }
    fn client_connection_failed(&mut self, _reactor: &mut Reactor, error: ConnectError) {
        *self.0.borrow_mut() = Some(format!("{error:?}"));
    }
}

#[test]
fn shutdown_stops_listening_and_cancels_pending_connects() {
    let mut reactor = Reactor::new().unwrap();
    let log = Log::default();
    let (addr, _) = blaster_server(&mut reactor, 0, &log);
    // A listener that never accepts, with a full queue: the connect to it hangs.
    let silent = SilentListener::new();
    let attempt = Rc::new(RefCell::new(None));
    reactor.connect(
        silent.addr(),
        Attempt(attempt.clone()),
        ConnectOptions::new(),
    );
    reactor.iterate(Duration::ZERO).unwrap();
    reactor.shutdown();
    assert_eq!(attempt.borrow().as_deref(), Some("Cancelled"));
    reactor.run().unwrap();
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "the port no longer listens"
    );
}

/// Forces the shutdown from inside its own callback: shutdown, then shutdown again.
struct Forcer(Log);

impl Protocol for Forcer {
    fn data_received(&mut self, cx: &mut Context<'_>, _data: &[u8]) {
        cx.reactor().shutdown();
        cx.reactor().shutdown();
    }

    fn connection_lost(&mut self, _cx: &mut Context<'_>, reason: &DisconnectReason) {
        self.0
            .borrow_mut()
            .push(format!("lost {:?}", Reason::from(reason)));
    }
}

#[test]
fn a_shutdown_forced_from_inside_a_callback_still_tells_every_protocol() {
    let mut reactor = Reactor::new().unwrap();
    let log = Log::default();
    let l = log.clone();
    let port = reactor
        .listen_tcp(any_loopback_port(), move || Forcer(l.clone()))
        .unwrap();
    // Both connections wait in the backlog; the first turn of `run` accepts them before it
    // reads the forcer's bytes.
    let mut bystander = connect(port.local_addr());
    let mut forcer = connect(port.local_addr());
    std::io::Write::write_all(&mut forcer, b"go").unwrap();
    let _watchdog = Watchdog::arm(Duration::from_secs(20), "the forced shutdown");
    reactor.run().unwrap();
    assert_eq!(*log.borrow(), ["lost Aborted", "lost Aborted"]);
    let (_, end) = read_to_end(&mut bystander);
    let _ = end; // closed, by FIN or reset: either way the bystander is not left hanging
}

/// Counts the connections made; when asked to shut down, says so and closes.
struct Farewell(Rc<Cell<usize>>);

impl Protocol for Farewell {
    fn connection_made(&mut self, _cx: &mut Context<'_>) {
        self.0.set(self.0.get() + 1);
    }

    fn data_received(&mut self, _cx: &mut Context<'_>, _data: &[u8]) {}

    fn shutdown_requested(&mut self, cx: &mut Context<'_>) {
        cx.write(b"bye\n");
        cx.lose_connection();
    }
}

/// Turns `reactor` until its shutdown has completed.
fn run_shutdown(reactor: &mut Reactor) {
    let done = Rc::new(Cell::new(false));
    let flag = done.clone();
    reactor.add_shutdown_trigger(Phase::After, move |_| flag.set(true));
    reactor.shutdown();
    run_until(reactor, "the shutdown to complete", || done.get());
}

#[test]
fn connections_waiting_in_the_accept_queue_at_shutdown_are_accepted_and_told_not_reset() {
    let mut reactor = Reactor::new().unwrap();
    let made = Rc::new(Cell::new(0));
    let m = made.clone();
    let port = reactor
        .listen_tcp(any_loopback_port(), move || Farewell(m.clone()))
        .unwrap();
    // The reactor has not turned: the kernel completes these handshakes and queues them.
    // Closing the socket with them queued would reset them.
    let mut clients: Vec<_> = (0..5).map(|_| connect(port.local_addr())).collect();
    run_shutdown(&mut reactor);
    assert_eq!(made.get(), 5, "every queued connection was accepted");
    for client in &mut clients {
        let (received, end) = read_to_end(client);
        assert_eq!(received, b"bye\n");
        end.expect("a clean EOF, not a reset");
    }
}

#[test]
fn a_tls_handshake_under_way_at_shutdown_completes_and_the_connection_is_then_told() {
    let ca = common::certs::TestCa::new("shutdown test CA");
    let mut reactor = Reactor::new().unwrap();
    let (made, accepted) = (Rc::new(Cell::new(0)), Rc::new(Cell::new(0)));
    let (m, a) = (made.clone(), accepted.clone());
    let port = reactor
        .listen_tls(
            any_loopback_port(),
            common::tls::localhost_server(&ca),
            move || {
                a.set(a.get() + 1);
                Farewell(m.clone())
            },
        )
        .unwrap();
    // Accepted, its handshake waiting for the client's hello, when the shutdown begins.
    let mut tcp = connect(port.local_addr());
    run_until(&mut reactor, "the connection to be accepted", || {
        accepted.get() == 1
    });
    let config = common::tls::trusting(&ca);
    let client = thread::spawn(move || {
        let name = "localhost".try_into().unwrap();
        let mut conn = torsion::rustls::ClientConnection::new(config, name).unwrap();
        let mut tls = torsion::rustls::Stream::new(&mut conn, &mut tcp);
        let mut received = Vec::new();
        let end = std::io::Read::read_to_end(&mut tls, &mut received);
        (received, end)
    });
    run_shutdown(&mut reactor);
    let (received, end) = client.join().unwrap();
    assert_eq!(made.get(), 1, "the handshake completed");
    assert_eq!(received, b"bye\n");
    end.expect("the server's close_notify and EOF");
}
