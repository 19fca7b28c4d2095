//! Backpressure: `pause_writing`/`resume_writing` fire at the watermarks, and an echo server
//! that stops reading while paused holds bounded memory under a peer that never reads,
//! without slowing its other connections.

mod common;

use std::io::Write;
use std::net::Shutdown;
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use torsion::{Bytes, Context, Protocol, Reactor};

/// What the server saw on one connection.
#[derive(Default, Debug)]
struct ConnStats {
    received: usize,
    max_queued: usize,
    pauses: usize,
    reading_paused: bool,
}

/// An echo server protocol (pausing reading while writing is paused, like
/// `examples/echo_server.rs`) that measures its write queue from inside its callbacks.
struct MeasuredEcho {
    index: usize,
    stats: Shared<Vec<ConnStats>>,
}

impl MeasuredEcho {
    fn note_queue(&self, cx: &Context<'_>) {
        let mut stats = self.stats.borrow_mut();
        let conn = &mut stats[self.index];
        conn.max_queued = conn.max_queued.max(cx.queued_bytes());
    }
}

impl Protocol for MeasuredEcho {
    fn connection_made(&mut self, _cx: &mut Context<'_>) {
        let mut stats = self.stats.borrow_mut();
        self.index = stats.len();
        stats.push(ConnStats::default());
    }

    fn data_received(&mut self, cx: &mut Context<'_>, data: &[u8]) {
        cx.write(data);
        self.stats.borrow_mut()[self.index].received += data.len();
        self.note_queue(cx);
    }

    fn pause_writing(&mut self, cx: &mut Context<'_>) {
        cx.pause_reading();
        let mut stats = self.stats.borrow_mut();
        stats[self.index].pauses += 1;
        stats[self.index].reading_paused = true;
        drop(stats);
        self.note_queue(cx);
    }

    fn resume_writing(&mut self, cx: &mut Context<'_>) {
        cx.resume_reading();
        self.stats.borrow_mut()[self.index].reading_paused = false;
    }
}

/// The theoretical worst case is the 64 KiB high watermark plus one turn's 256 KiB read
/// budget, all read and echoed before the end-of-turn flush; allow some slack above it.
const QUEUE_BOUND: usize = 512 * 1024;

/// What the server sends a peer that never reads.
const STUCK_SENDS: usize = 32 * 1024 * 1024;

/// How the server fared with one peer stuck and others busy.
struct StuckPeer {
    /// Bytes the stuck peer managed to send before the test shut its socket.
    sent: usize,
    /// The server's view of the stuck connection.
    stuck: ConnStats,
    /// The slowest echo any other client waited for.
    slowest: Duration,
    connections: usize,
}

/// One client sends without ever reading until the server pauses it; then ten clients do 50
/// echoes of 1 KiB each, timed, while the stuck peer keeps pushing.
fn serve_beside_a_stuck_peer() -> StuckPeer {
    const CLIENTS: usize = 10;
    const ROUND_TRIPS: usize = 50;
    init_logging();
    let mut reactor = Reactor::new().unwrap();
    let stats = shared(Vec::new());
    let s = stats.clone();
    let port = reactor
        .listen_tcp(any_loopback_port(), move || MeasuredEcho {
            index: 0,
            stats: s.clone(),
        })
        .unwrap();
    let addr = port.local_addr();

    let mut stuck = connect(addr);
    let stuck_handle = stuck.try_clone().unwrap();
    let stuck_writer = thread::spawn(move || {
        let chunk = vec![b's'; 64 * 1024];
        let mut sent = 0;
        // Blocks once every buffer on the way is full; ends when the test shuts the socket.
        while sent < STUCK_SENDS {
            match stuck.write(&chunk) {
                Ok(n) => sent += n,
                Err(_) => break,
            }
        }
        sent
    });
    run_until(&mut reactor, "the stuck connection to pause", || {
        stats.borrow().first().is_some_and(|c| c.reading_paused)
    });

    let clients = (0..CLIENTS)
        .map(|i| {
            thread::spawn(move || {
                let mut stream = connect(addr);
                let message = vec![i as u8; 1024];
                let mut slowest = Duration::ZERO;
                for _ in 0..ROUND_TRIPS {
                    let started = Instant::now();
                    assert_eq!(round_trip(&mut stream, &message), message);
                    slowest = slowest.max(started.elapsed());
                }
                slowest
            })
        })
        .collect();
    let slowest = run_until_joined(&mut reactor, clients);

    stuck_handle.shutdown(Shutdown::Both).unwrap();
    let sent = run_until_joined(&mut reactor, vec![stuck_writer]).remove(0);
    let mut stats = stats.take();
    let outcome = StuckPeer {
        sent,
        connections: stats.len(),
        stuck: stats.swap_remove(0),
        slowest: slowest.into_iter().max().unwrap(),
    };
    eprintln!(
        "stuck peer sent {} bytes; server read {}, queued at most {}, paused {} times; \
         slowest echo of the others: {:?}",
        outcome.sent,
        outcome.stuck.received,
        outcome.stuck.max_queued,
        outcome.stuck.pauses,
        outcome.slowest
    );
    outcome
}

#[test]
fn a_peer_that_never_reads_does_not_slow_the_other_connections() {
    let outcome = serve_beside_a_stuck_peer();
    assert_eq!(outcome.connections, 11);
    assert!(
        outcome.slowest < Duration::from_secs(1),
        "an echo took {:?} while a peer was stuck",
        outcome.slowest
    );
    assert!(outcome.stuck.pauses >= 1);
    assert!(
        outcome.stuck.received < STUCK_SENDS && outcome.sent < STUCK_SENDS,
        "the server stopped reading, so the peer could not send it all"
    );
}

#[test]
fn a_peer_that_never_reads_leaves_the_server_queue_bounded() {
    let outcome = serve_beside_a_stuck_peer();
    assert!(
        outcome.stuck.max_queued < QUEUE_BOUND,
        "the stuck connection's queue reached {} bytes (theory: at most 64 KiB + 256 KiB)",
        outcome.stuck.max_queued
    );
}

/// More than the kernel's socket buffers can take while the peer does not read (here
/// `tcp_wmem` allows a 4 MiB send buffer), so the queue must pass the high watermark.
const BIG_REPLY: usize = 16 * 1024 * 1024;

/// Queues a large reply at once and records the watermark callbacks with the queue size then.
struct BigReply {
    events: Shared<Vec<(&'static str, usize)>>,
}

impl Protocol for BigReply {
    fn connection_made(&mut self, cx: &mut Context<'_>) {
        cx.write_bytes(Bytes::from(vec![b'r'; BIG_REPLY]));
    }

    fn data_received(&mut self, _cx: &mut Context<'_>, _data: &[u8]) {}

    fn pause_writing(&mut self, cx: &mut Context<'_>) {
        self.events.borrow_mut().push(("pause", cx.queued_bytes()));
    }

    fn resume_writing(&mut self, cx: &mut Context<'_>) {
        self.events.borrow_mut().push(("resume", cx.queued_bytes()));
    }
}

#[test]
fn pause_and_resume_writing_fire_as_the_queue_crosses_the_watermarks() {
    init_logging();
    let mut reactor = Reactor::new().unwrap();
    let events = shared(Vec::new());
    let e = events.clone();
    let port = reactor
        .listen_tcp(any_loopback_port(), move || BigReply { events: e.clone() })
        .unwrap();

    // The client reads only once the server has paused: a client draining the socket as fast
    // as the server fills it could let the whole reply through without the queue ever growing.
    let mut client = connect(port.local_addr());
    run_until(&mut reactor, "pause_writing", || {
        !events.borrow().is_empty()
    });
    let reader = thread::spawn(move || read_exact(&mut client, BIG_REPLY).len());
    let received = run_until_joined(&mut reactor, vec![reader]).remove(0);
    run_until(&mut reactor, "resume_writing", || {
        events.borrow().len() == 2
    });

    assert_eq!(received, BIG_REPLY);
    let events = events.borrow();
    let [("pause", at_pause), ("resume", at_resume)] = events[..] else {
        panic!("expected one pause then one resume, got {events:?}");
    };
    assert!(
        at_pause > 64 * 1024,
        "paused with only {at_pause} bytes queued"
    );
    assert!(
        at_resume <= 16 * 1024,
        "resumed with {at_resume} bytes queued"
    );
}
