//! Echo over real loopback sockets: many clients at once, and a large transfer through one
//! connection in both directions with every byte checked.

mod common;

use std::cell::Cell;
use std::io::Write;
use std::net::Shutdown;
use std::rc::Rc;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Instant;

use common::*;
use torsion::{Context, DisconnectReason, Protocol, Reactor};

/// Counts live connections and remembers the most seen at once.
struct CountingEcho {
    live: Rc<Cell<usize>>,
    peak: Rc<Cell<usize>>,
}

impl Protocol for CountingEcho {
    fn connection_made(&mut self, _cx: &mut Context<'_>) {
        self.live.set(self.live.get() + 1);
        self.peak.set(self.peak.get().max(self.live.get()));
    }

    fn data_received(&mut self, cx: &mut Context<'_>, data: &[u8]) {
        cx.write(data);
    }

    fn connection_lost(&mut self, _cx: &mut Context<'_>, _reason: &DisconnectReason) {
        self.live.set(self.live.get() - 1);
    }
}

/// A message only client `i` sends, a few KiB long and of a length no other client uses.
fn message_of(i: usize) -> Vec<u8> {
    let mut message = format!("client {i}:").into_bytes();
    message.extend((0..2000 + i * 37).map(|k| (k * 7 + i * 13) as u8));
    message
}

#[test]
fn hundred_concurrent_clients_each_get_exactly_their_own_bytes_back() {
    const CLIENTS: usize = 100;
    init_logging();
    let mut reactor = Reactor::new().unwrap();
    let (live, peak) = (Rc::new(Cell::new(0)), Rc::new(Cell::new(0)));
    let (l, p) = (live.clone(), peak.clone());
    let port = reactor
        .listen_tcp(any_loopback_port(), move || CountingEcho {
            live: l.clone(),
            peak: p.clone(),
        })
        .unwrap();
    let addr = port.local_addr();

    // All clients connect before any sends, and none leaves before all have their echo: the
    // server holds the 100 connections at once.
    let connected = Arc::new(Barrier::new(CLIENTS));
    let echoed = Arc::new(Barrier::new(CLIENTS));
    let clients = (0..CLIENTS)
        .map(|i| {
            let (connected, echoed) = (connected.clone(), echoed.clone());
            thread::spawn(move || {
                let mut stream = connect(addr);
                connected.wait();
                let message = message_of(i);
                let echo = round_trip(&mut stream, &message);
                echoed.wait();
                stream.shutdown(Shutdown::Write).unwrap();
                let (rest, end) = read_to_end(&mut stream);
                end.expect("server closes cleanly after our EOF");
                (echo == message, rest.is_empty())
            })
        })
        .collect();
    let results = run_until_joined(&mut reactor, clients);

    for (i, (own_bytes, nothing_more)) in results.into_iter().enumerate() {
        assert!(own_bytes, "client {i} got bytes other than its own back");
        assert!(nothing_more, "client {i} got bytes after its echo");
    }
    assert_eq!(peak.get(), CLIENTS, "all clients were connected at once");
    run_until(&mut reactor, "the server to close every connection", || {
        live.get() == 0
    });
}

#[test]
fn sixty_four_mib_each_way_through_one_connection_arrive_intact() {
    const TOTAL: usize = 64 * 1024 * 1024;
    init_logging();
    let mut reactor = Reactor::new().unwrap();
    let port = reactor.listen_tcp(any_loopback_port(), || Echo).unwrap();
    let started = Instant::now();

    let mut writer_stream = connect(port.local_addr());
    let mut reader_stream = writer_stream.try_clone().unwrap();
    let writer = thread::spawn(move || {
        let block = pattern_block();
        write_pattern(&mut writer_stream, &block, TOTAL).expect("client writes 64 MiB");
        writer_stream.flush().unwrap();
        writer_stream.shutdown(Shutdown::Write).unwrap();
    });
    let reader = thread::spawn(move || {
        let block = pattern_block();
        let mut received = 0;
        let mut buf = vec![0; 256 * 1024];
        loop {
            let n = std::io::Read::read(&mut reader_stream, &mut buf).expect("client reads");
            if n == 0 {
                return received;
            }
            if let Err(at) = check_pattern(&block, received, &buf[..n]) {
                panic!("echoed byte {at} differs from the byte sent");
            }
            received += n;
        }
    });
    run_until_joined(&mut reactor, vec![writer]);
    let received = run_until_joined(&mut reactor, vec![reader])[0];

    assert_eq!(received, TOTAL, "every byte came back, then EOF");
    eprintln!(
        "64 MiB each way through one connection took {:?}",
        started.elapsed()
    );
}
