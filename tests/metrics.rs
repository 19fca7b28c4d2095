//! Reactor metrics over loopback: one echoed message counted exactly, and the gauges back
//! to zero once the connection is gone.

mod common;

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use common::{any_loopback_port, connect, round_trip, run_until};
use torsion::{Context, DisconnectReason, Metrics, Protocol, Reactor};

struct Echo(Rc<Cell<bool>>);

impl Protocol for Echo {
    fn data_received(&mut self, cx: &mut Context<'_>, data: &[u8]) {
        cx.write(data);
    }
    fn connection_lost(&mut self, _cx: &mut Context<'_>, _reason: &DisconnectReason) {
        self.0.set(true);
    }
}

#[test]
fn one_echoed_message_is_counted_exactly() {
    common::init_logging();
    let mut reactor = Reactor::new().unwrap();
    let lost = Rc::new(Cell::new(false));
    let flag = lost.clone();
    let port = reactor
        .listen_tcp(any_loopback_port(), move || Echo(flag.clone()))
        .unwrap();
    let fired = Rc::new(Cell::new(false));
    let timer = fired.clone();
    reactor.call_later(Duration::ZERO, move |_| timer.set(true));
    assert_eq!(reactor.metrics(), Metrics::default());

    let addr = port.local_addr();
    let client = std::thread::spawn(move || {
        let mut stream = connect(addr);
        round_trip(&mut stream, b"hello")
    });
    let echoed = common::run_until_joined(&mut reactor, vec![client]);
    assert_eq!(echoed[0], b"hello");
    run_until(&mut reactor, "the connection's end", || lost.get());
    run_until(&mut reactor, "the timer", || fired.get());

    let metrics = reactor.metrics();
    assert_eq!(metrics.connections_accepted, 1);
    assert_eq!(metrics.reads, 1);
    assert_eq!(metrics.bytes_received, 5);
    assert_eq!(metrics.writes, 1);
    assert_eq!(metrics.bytes_sent, 5);
    assert_eq!(metrics.timers_fired, 1);
    assert_eq!(metrics.connections_open, 0);
    assert_eq!(metrics.bytes_queued, 0);
    assert!(metrics.turns >= 1 && metrics.events >= 2, "{metrics:?}");
    let text = (metrics + metrics).to_prometheus();
    assert!(text.contains("\ntorsion_bytes_sent_total 10\n"), "{text}");
}

/// Writes a reply to whatever it receives.
struct Reply;

impl Protocol for Reply {
    fn data_received(&mut self, cx: &mut Context<'_>, _data: &[u8]) {
        cx.write(b"reply");
    }
}

#[test]
fn open_connections_and_queued_bytes_are_read_at_the_snapshot() {
    let mut test = torsion::testing::TestReactor::new();
    let stuck = test.connect(Reply);
    let _idle = test.connect(Reply);
    stuck.set_write_room(Some(0)); // the peer reads nothing: the reply stays queued
    test.feed(&stuck, b"ping");
    let metrics = test.reactor().metrics();
    assert_eq!(metrics.connections_open, 2);
    assert_eq!(metrics.bytes_queued, 5);
    assert_eq!(metrics.bytes_received, 4);
    assert_eq!(metrics.bytes_sent, 0);
}

/// Takes a snapshot from inside `data_received` (as `GET /metrics` does), after echoing.
struct SnapshotAfterEcho(Rc<Cell<Option<Metrics>>>);

impl Protocol for SnapshotAfterEcho {
    fn data_received(&mut self, cx: &mut Context<'_>, data: &[u8]) {
        cx.write(data);
        self.0.set(Some(cx.reactor().metrics()));
    }
}

#[test]
fn a_snapshot_inside_a_callback_counts_the_read_in_progress() {
    let mut test = torsion::testing::TestReactor::new();
    let inside = Rc::new(Cell::new(None));
    let conn = test.connect(SnapshotAfterEcho(inside.clone()));
    test.feed(&conn, b"ping");
    let inside = inside.get().expect("data_received ran");
    assert_eq!((inside.reads, inside.bytes_received), (1, 4));
    // The echo is queued, not yet sent: the flush comes after the callbacks of the turn.
    assert_eq!(
        (inside.bytes_queued, inside.writes, inside.bytes_sent),
        (4, 0, 0)
    );
    let after = test.reactor().metrics();
    assert_eq!(
        (after.bytes_queued, after.writes, after.bytes_sent),
        (0, 1, 4)
    );
    assert_eq!(conn.take_written(), b"ping");
}

#[test]
fn turns_count_each_iterate_and_events_only_readiness() {
    let mut reactor = Reactor::new().unwrap();
    for _ in 0..3 {
        reactor.iterate(Duration::ZERO).unwrap();
    }
    let metrics = reactor.metrics();
    assert_eq!((metrics.turns, metrics.events), (3, 0), "{metrics:?}");
}
