//! Passing descriptors over UNIX stream sockets (`SCM_RIGHTS`), over real sockets: both ways
//! and in order with the bytes queued around them, a read the kernel cuts after descriptors,
//! what is refused, and the bound on descriptors held for a protocol.

mod common;

use std::io::ErrorKind;

use common::unix::*;
use common::*;
use torsion::{
    Address, ClientFactory, ConnectOptions, Context, Protocol, Reactor, UnixAddress,
    UnixListenOptions,
};

/// What arrived at one end: the bytes, what each descriptor held, and how many bytes had
/// arrived when each descriptor did.
#[derive(Default)]
struct Arrived {
    received: Vec<u8>,
    fds_text: Vec<String>,
    fd_arrivals: Vec<usize>,
}

/// Both ends of the descriptor tests: sends `before` bytes, then a pipe holding `text` with
/// one byte, then one more byte; records the bytes and descriptors that arrive.
struct Passer {
    log: Shared<Arrived>,
    text: &'static str,
    before: usize,
}

impl Passer {
    fn send(&self, cx: &mut Context<'_>) {
        if self.before > 0 {
            cx.write_bytes(vec![b'a'; self.before].into());
        }
        cx.write_with_fds(b"b", vec![pipe_holding(self.text)])
            .expect("fds queued");
        cx.write(b"c");
    }
}

impl Protocol for Passer {
    fn connection_made(&mut self, cx: &mut Context<'_>) {
        self.send(cx);
    }

    fn data_received(&mut self, cx: &mut Context<'_>, data: &[u8]) {
        let mut log = self.log.borrow_mut();
        log.received.extend_from_slice(data);
        for fd in cx.take_received_fds() {
            let arrived_with = log.received.len();
            log.fd_arrivals.push(arrived_with);
            log.fds_text.push(read_all(fd));
        }
    }
}

impl ClientFactory for Passer {
    type Protocol = Passer;

    fn build_protocol(&mut self, _peer: Address) -> Passer {
        Passer {
            log: self.log.clone(),
            ..*self
        }
    }
}

#[test]
fn descriptors_pass_both_ways_with_their_bytes_in_order() {
    init_logging();
    let dir = TempDir::new("fds");
    let path = dir.path("fds.sock");
    let mut reactor = Reactor::new().unwrap();
    // More than the socket buffers hold before the descriptor, so the writes are cut where
    // it goes and resumed on writable events.
    let before = 4 << 20;
    let server = shared(Arrived::default());
    let s = server.clone();
    reactor
        .listen_unix(
            UnixAddress::path(&path),
            UnixListenOptions::new(),
            move || Passer {
                log: s.clone(),
                text: "from the server",
                before,
            },
        )
        .unwrap();
    let client = shared(Arrived::default());
    let passer = Passer {
        log: client.clone(),
        text: "from the client",
        before: 0,
    };
    reactor.connect(UnixAddress::path(&path), passer, ConnectOptions::new());
    run_until(&mut reactor, "both descriptors and all bytes", || {
        client.borrow().received.len() == before + 2 && server.borrow().fds_text.len() == 1
    });

    assert_eq!(server.borrow().fds_text, ["from the client"]);
    assert_eq!(client.borrow().fds_text, ["from the server"]);
    // The descriptor came with the byte it was sent with: never before the bytes queued
    // ahead of it.
    let arrived_with = client.borrow().fd_arrivals[0];
    assert!(arrived_with > before, "arrived after {arrived_with} bytes");
    assert_eq!(&client.borrow().received[before..], b"bc");
    assert_eq!(server.borrow().received, b"bc");
}

/// Tries the ways `write_with_fds` refuses, then records what it heard.
struct Refusals(Shared<Vec<ErrorKind>>);

impl Protocol for Refusals {
    fn connection_made(&mut self, cx: &mut Context<'_>) {
        let mut kinds = self.0.borrow_mut();
        let empty = cx.write_with_fds(b"", vec![pipe_holding("x")]);
        kinds.push(empty.unwrap_err().kind());
        let many = (0..=torsion::MAX_FDS_PER_MESSAGE)
            .map(|_| pipe_holding("x"))
            .collect();
        kinds.push(cx.write_with_fds(b"x", many).unwrap_err().kind());
        cx.lose_connection();
    }

    fn data_received(&mut self, _cx: &mut Context<'_>, _data: &[u8]) {}
}

#[test]
fn descriptors_without_a_byte_too_many_or_over_tcp_are_refused() {
    init_logging();
    let dir = TempDir::new("fd-refusals");
    let path = dir.path("refuse.sock");
    let mut reactor = Reactor::new().unwrap();
    let kinds = shared(Vec::new());
    let k = kinds.clone();
    reactor
        .listen_unix(
            UnixAddress::path(&path),
            UnixListenOptions::new(),
            move || Refusals(k.clone()),
        )
        .unwrap();
    let _client = unix_client(&path);
    run_until(&mut reactor, "the refusals", || kinds.borrow().len() == 2);
    assert_eq!(
        *kinds.borrow(),
        [ErrorKind::InvalidInput, ErrorKind::InvalidInput]
    );

    let over_tcp = shared(None);
    let o = over_tcp.clone();
    let port = reactor
        .listen_tcp(any_loopback_port(), move || TcpFds(o.clone()))
        .unwrap();
    let _tcp = connect(port.local_addr());
    run_until(&mut reactor, "the TCP refusal", || {
        over_tcp.borrow().is_some()
    });
    assert_eq!(*over_tcp.borrow(), Some(ErrorKind::Unsupported));
}

struct TcpFds(Shared<Option<ErrorKind>>);

impl Protocol for TcpFds {
    fn connection_made(&mut self, cx: &mut Context<'_>) {
        let result = cx.write_with_fds(b"x", vec![pipe_holding("x")]);
        *self.0.borrow_mut() = Some(result.unwrap_err().kind());
        assert!(cx.take_received_fds().is_empty());
    }

    fn data_received(&mut self, _cx: &mut Context<'_>, _data: &[u8]) {}
}

/// Sends two descriptors, each with its own byte: two messages, back to back.
struct TwoBatches;

impl Protocol for TwoBatches {
    fn connection_made(&mut self, cx: &mut Context<'_>) {
        cx.write_with_fds(b"b", vec![pipe_holding("first")])
            .unwrap();
        cx.write_with_fds(b"c", vec![pipe_holding("second")])
            .unwrap();
    }

    fn data_received(&mut self, _cx: &mut Context<'_>, _data: &[u8]) {}
}

/// Receives bytes and descriptors, sending nothing.
struct Collector(Shared<Arrived>);

impl Protocol for Collector {
    fn data_received(&mut self, cx: &mut Context<'_>, data: &[u8]) {
        let mut log = self.0.borrow_mut();
        log.received.extend_from_slice(data);
        for fd in cx.take_received_fds() {
            log.fds_text.push(read_all(fd));
        }
    }
}

impl ClientFactory for Collector {
    type Protocol = Collector;

    fn build_protocol(&mut self, _peer: Address) -> Collector {
        Collector(self.0.clone())
    }
}

#[test]
fn a_read_cut_short_by_descriptors_goes_on_to_the_bytes_behind_them() {
    init_logging();
    let dir = TempDir::new("fd-batches");
    let path = dir.path("batches.sock");
    let mut reactor = Reactor::new().unwrap();
    reactor
        .listen_unix(UnixAddress::path(&path), UnixListenOptions::new(), || {
            TwoBatches
        })
        .unwrap();
    let log = shared(Arrived::default());
    reactor.connect(
        UnixAddress::path(&path),
        Collector(log.clone()),
        ConnectOptions::new(),
    );
    // The kernel ends a read after the first message's byte; the second waits behind it
    // with no new readiness edge to announce it.
    run_until(&mut reactor, "both messages", || {
        log.borrow().received == b"bc"
    });
    assert_eq!(log.borrow().fds_text, ["first", "second"]);
}

/// Sends five messages of [`torsion::MAX_FDS_PER_MESSAGE`] descriptors each.
struct Flood;

impl Protocol for Flood {
    fn connection_made(&mut self, cx: &mut Context<'_>) {
        for _ in 0..5 {
            let fds = (0..torsion::MAX_FDS_PER_MESSAGE)
                .map(|_| pipe_holding(""))
                .collect();
            cx.write_with_fds(b"f", fds).unwrap();
        }
    }

    fn data_received(&mut self, _cx: &mut Context<'_>, _data: &[u8]) {}
}

/// Takes no descriptor until all five bytes are in, then counts what is held.
struct TakeLate(Shared<Option<usize>>, usize);

impl Protocol for TakeLate {
    fn data_received(&mut self, cx: &mut Context<'_>, data: &[u8]) {
        self.1 += data.len();
        if self.1 == 5 {
            *self.0.borrow_mut() = Some(cx.take_received_fds().len());
        }
    }
}

impl ClientFactory for TakeLate {
    type Protocol = TakeLate;

    fn build_protocol(&mut self, _peer: Address) -> TakeLate {
        TakeLate(self.0.clone(), 0)
    }
}

#[test]
fn descriptors_not_taken_are_held_up_to_a_bound_and_the_rest_closed() {
    init_logging();
    let dir = TempDir::new("fd-bound");
    let path = dir.path("flood.sock");
    let mut reactor = Reactor::new().unwrap();
    reactor
        .listen_unix(UnixAddress::path(&path), UnixListenOptions::new(), || Flood)
        .unwrap();
    let held = shared(None);
    let client = TakeLate(held.clone(), 0);
    reactor.connect(UnixAddress::path(&path), client, ConnectOptions::new());
    run_until(&mut reactor, "all five messages", || {
        held.borrow().is_some()
    });
    assert_eq!(*held.borrow(), Some(torsion::MAX_HELD_FDS));
}
