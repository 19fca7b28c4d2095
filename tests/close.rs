//! How connections end: half-closes in both directions, a peer that resets mid-write, and a
//! local abort, each with the `DisconnectReason` the protocol is told.

mod common;

use std::io::{ErrorKind, Write};
use std::net::Shutdown;
use std::rc::Rc;
use std::thread;
use std::time::Duration;

use common::*;
use socket2::SockRef;
use torsion::{Bytes, Context, DisconnectReason, Protocol, Reactor};

/// Gathers what the client sends and answers only once the client half-closed.
struct ReplyAfterEof {
    received: Vec<u8>,
    lost: Shared<Option<Reason>>,
}

impl Protocol for ReplyAfterEof {
    fn data_received(&mut self, _cx: &mut Context<'_>, data: &[u8]) {
        self.received.extend_from_slice(data);
    }

    fn eof_received(&mut self, cx: &mut Context<'_>) {
        cx.write(b"you sent: ");
        cx.write(&self.received);
        cx.lose_connection();
    }

    fn connection_lost(&mut self, _cx: &mut Context<'_>, reason: &DisconnectReason) {
        *self.lost.borrow_mut() = Some(reason.into());
    }
}

#[test]
fn after_the_client_half_closes_the_server_can_still_reply_then_close() {
    init_logging();
    let mut reactor = Reactor::new().unwrap();
    let lost = shared(None);
    let l = lost.clone();
    let port = reactor
        .listen_tcp(any_loopback_port(), move || ReplyAfterEof {
            received: Vec::new(),
            lost: l.clone(),
        })
        .unwrap();
    let addr = port.local_addr();

    let client = thread::spawn(move || {
        let mut stream = connect(addr);
        stream.write_all(b"ping").unwrap();
        stream.shutdown(Shutdown::Write).unwrap();
        read_to_end(&mut stream)
    });
    let (reply, end) = run_until_joined(&mut reactor, vec![client]).remove(0);

    assert_eq!(reply, b"you sent: ping");
    end.expect("the reply is followed by a clean EOF");
    run_until(&mut reactor, "connection_lost", || lost.borrow().is_some());
    assert_eq!(*lost.borrow(), Some(Reason::Closed));
}

/// What the half-closing server saw.
#[derive(Default)]
struct HalfClosed {
    received: Vec<u8>,
    eof: bool,
    late_write_accepted: Option<bool>,
    lost: Option<Reason>,
}

/// Greets, shuts its write side at once, and goes on reading. It does not close on EOF: the
/// reactor closes the connection once both directions are shut.
struct GreetAndShutdown(Shared<HalfClosed>);

impl Protocol for GreetAndShutdown {
    fn connection_made(&mut self, cx: &mut Context<'_>) {
        cx.write(b"greeting");
        cx.shutdown_write();
    }

    fn data_received(&mut self, cx: &mut Context<'_>, data: &[u8]) {
        let id = cx.id();
        let mut state = self.0.borrow_mut();
        state.received.extend_from_slice(data);
        state.late_write_accepted = Some(cx.reactor().write_to(id, b"late"));
    }

    fn eof_received(&mut self, _cx: &mut Context<'_>) {
        self.0.borrow_mut().eof = true;
    }

    fn connection_lost(&mut self, _cx: &mut Context<'_>, reason: &DisconnectReason) {
        self.0.borrow_mut().lost = Some(reason.into());
    }
}

#[test]
fn after_the_server_shuts_its_write_side_it_still_reads_until_the_client_is_done() {
    init_logging();
    let mut reactor = Reactor::new().unwrap();
    let state = shared(HalfClosed::default());
    let s = state.clone();
    let port = reactor
        .listen_tcp(any_loopback_port(), move || GreetAndShutdown(s.clone()))
        .unwrap();
    let addr = port.local_addr();

    let client = thread::spawn(move || {
        let mut stream = connect(addr);
        let (greeting, end) = read_to_end(&mut stream);
        end.expect("the server's half-close reads as EOF");
        // Only now, with the server's side shut, does the client speak.
        stream.write_all(b"still listening?").unwrap();
        stream.shutdown(Shutdown::Write).unwrap();
        let (after, end) = read_to_end(&mut stream);
        end.expect("the server then closes cleanly");
        (greeting, after)
    });
    let (greeting, after) = run_until_joined(&mut reactor, vec![client]).remove(0);
    run_until(&mut reactor, "connection_lost", || {
        state.borrow().lost.is_some()
    });

    assert_eq!(greeting, b"greeting");
    assert!(
        after.is_empty(),
        "nothing written after the shutdown arrived"
    );
    let state = state.borrow();
    assert_eq!(state.received, b"still listening?");
    assert_eq!(state.late_write_accepted, Some(false));
    assert!(state.eof, "eof_received ran");
    assert_eq!(state.lost, Some(Reason::Closed));
}

/// The first connection gets a flood of data; later ones are echoed. Records every loss.
struct FloodFirst {
    flood: bool,
    lost: Shared<Vec<Reason>>,
}

impl Protocol for FloodFirst {
    fn connection_made(&mut self, cx: &mut Context<'_>) {
        if self.flood {
            cx.write_bytes(Bytes::from(vec![b'x'; 16 * 1024 * 1024]));
        }
    }

    fn data_received(&mut self, cx: &mut Context<'_>, data: &[u8]) {
        cx.write(data);
    }

    fn connection_lost(&mut self, _cx: &mut Context<'_>, reason: &DisconnectReason) {
        self.lost.borrow_mut().push(reason.into());
    }
}

#[test]
fn a_peer_reset_mid_write_is_reported_as_reset_and_the_server_goes_on() {
    init_logging();
    let mut reactor = Reactor::new().unwrap();
    let lost = shared(Vec::new());
    let (l, mut accepted) = (lost.clone(), 0);
    let port = reactor
        .listen_tcp(any_loopback_port(), move || {
            accepted += 1;
            FloodFirst {
                flood: accepted == 1,
                lost: l.clone(),
            }
        })
        .unwrap();
    let addr = port.local_addr();

    let resetter = thread::spawn(move || {
        let mut stream = connect(addr);
        let head = read_exact(&mut stream, 64 * 1024);
        // SO_LINGER 0: close sends RST instead of FIN.
        SockRef::from(&stream)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
        drop(stream);
        head
    });
    let head = run_until_joined(&mut reactor, vec![resetter]).remove(0);
    assert!(head.iter().all(|&b| b == b'x'));
    run_until(&mut reactor, "connection_lost after the reset", || {
        !lost.borrow().is_empty()
    });
    assert_eq!(*lost.borrow(), [Reason::Reset]);

    let next = thread::spawn(move || round_trip(&mut connect(addr), b"still serving"));
    let echo = run_until_joined(&mut reactor, vec![next]).remove(0);
    assert_eq!(echo, b"still serving");
}

/// Greets; on the client's first bytes, queues a large reply and aborts in the same callback.
struct AbortWithQueue {
    lost: Shared<Option<Reason>>,
}

impl Protocol for AbortWithQueue {
    fn connection_made(&mut self, cx: &mut Context<'_>) {
        cx.write(b"first;");
    }

    fn data_received(&mut self, cx: &mut Context<'_>, _data: &[u8]) {
        cx.write_bytes(Bytes::from(vec![b'x'; 1024 * 1024]));
        cx.abort_connection();
    }

    fn connection_lost(&mut self, _cx: &mut Context<'_>, reason: &DisconnectReason) {
        *self.lost.borrow_mut() = Some(reason.into());
    }
}

#[test]
fn abort_connection_drops_the_queue_and_reports_aborted() {
    init_logging();
    let mut reactor = Reactor::new().unwrap();
    let lost = shared(None);
    let l = Rc::clone(&lost);
    let port = reactor
        .listen_tcp(any_loopback_port(), move || AbortWithQueue {
            lost: l.clone(),
        })
        .unwrap();
    let addr = port.local_addr();

    let client = thread::spawn(move || {
        let mut stream = connect(addr);
        let first = read_exact(&mut stream, 6);
        stream.write_all(b"go").unwrap();
        let (rest, end) = read_to_end(&mut stream);
        (first, rest, end)
    });
    let (first, rest, end) = run_until_joined(&mut reactor, vec![client]).remove(0);

    assert_eq!(
        first, b"first;",
        "what was flushed before the abort arrived"
    );
    assert!(
        rest.is_empty(),
        "{} queued bytes leaked past the abort",
        rest.len()
    );
    if let Err(e) = end {
        assert_eq!(
            e.kind(),
            ErrorKind::ConnectionReset,
            "peer sees EOF or reset"
        );
    }
    run_until(&mut reactor, "connection_lost", || lost.borrow().is_some());
    assert_eq!(*lost.borrow(), Some(Reason::Aborted));
}
