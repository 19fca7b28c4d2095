//! The HTTP server's send timeout over real loopback sockets: a client that asks for a large
//! streamed body and stops reading is aborted once it has taken nothing for the timeout,
//! while the server goes on serving others; a client reading slowly but steadily gets the
//! whole body however long it takes; a pipelining client that reads normally never meets it.

mod common;

use std::cell::RefCell;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::rc::Rc;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use socket2::{Domain, Socket, Type};
use torsion::protocols::http::server::{BodyWriter, HttpServer, Request, Responder, Router};
use torsion::protocols::http::{HeaderMap, StatusCode};
use torsion::{ConnectionId, Reactor};

const SEND_TIMEOUT: Duration = Duration::from_millis(200);

/// `/plaintext`; `/stream?<MiB>`: that many MiB in 64 KiB pieces, with backpressure;
/// `/bulk?<MiB>`: that many MiB in one body, queued at once. Every `/stream` and `/bulk`
/// request's connection id goes to `streams`.
fn router(streams: Rc<RefCell<Vec<ConnectionId>>>) -> Router {
    Router::new()
        .get(
            "/plaintext",
            |_: Request, res: Responder, r: &mut Reactor| {
                res.respond(r, StatusCode::OK, &HeaderMap::new(), "Hello, World!")
            },
        )
        .get("/bulk", {
            let streams = streams.clone();
            move |req: Request, res: Responder, r: &mut Reactor| {
                streams.borrow_mut().push(res.connection_id());
                let body = vec![b's'; mib(&req) << 20];
                res.respond(r, StatusCode::OK, &HeaderMap::new(), body)
            }
        })
        .get(
            "/stream",
            move |req: Request, res: Responder, r: &mut Reactor| {
                streams.borrow_mut().push(res.connection_id());
                let mib = mib(&req);
                let writer = res.stream_with_length(
                    r,
                    StatusCode::OK,
                    &HeaderMap::new(),
                    (mib << 20) as u64,
                );
                let producer = Rc::new(RefCell::new((Some(writer), mib << 20)));
                produce(&producer, r);
            },
        )
}

/// The MiB a request asks for in its query.
fn mib(req: &Request) -> usize {
    req.head
        .uri
        .query()
        .and_then(|q| q.parse().ok())
        .unwrap_or(1)
}

type Producer = Rc<RefCell<(Option<BodyWriter>, usize)>>;

fn produce(producer: &Producer, reactor: &mut Reactor) {
    static PIECE: [u8; 64 * 1024] = [b's'; 64 * 1024];
    let mut guard = producer.borrow_mut();
    let (writer, left) = &mut *guard;
    while *left > 0 {
        let n = (*left).min(PIECE.len());
        *left -= n;
        let Some(w) = writer.as_mut() else { return };
        if !w.write(reactor, &PIECE[..n]) {
            let again = producer.clone();
            w.on_resume(move |reactor| produce(&again, reactor));
            return;
        }
    }
    if let Some(writer) = writer.take() {
        writer.finish(reactor);
    }
}

/// A reactor serving [`router`] with the send timeout; the `/stream` connections' ids.
fn serve() -> (Reactor, SocketAddr, Rc<RefCell<Vec<ConnectionId>>>) {
    init_logging();
    let streams = Rc::new(RefCell::new(Vec::new()));
    let server = HttpServer::new(router(streams.clone())).with_send_timeout(Some(SEND_TIMEOUT));
    let mut reactor = Reactor::new().unwrap();
    let port = reactor.listen_tcp(any_loopback_port(), server).unwrap();
    (reactor, port.local_addr(), streams)
}

/// Reads a response head; returns it.
fn read_head(reader: &mut impl BufRead) -> String {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        reader
            .read_line(&mut line)
            .expect("client reads a head line");
        assert!(!line.is_empty(), "EOF in a response head: {head:?}");
        if line == "\r\n" {
            return head;
        }
        head.push_str(&line);
    }
}

#[test]
fn a_client_that_stops_reading_is_aborted_after_the_send_timeout_while_others_are_served() {
    let (mut reactor, addr, streams) = serve();
    let (closed_tx, closed_rx) = mpsc::channel::<()>();
    let (asked_tx, asked_rx) = mpsc::channel::<()>();
    let stalled = thread::spawn(move || {
        let mut stream = connect(addr);
        stream
            .write_all(b"GET /stream?64 HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        asked_tx.send(()).unwrap();
        // Reads nothing until the server has closed the connection, then what was in flight.
        closed_rx
            .recv_timeout(DEADLINE)
            .expect("the server closes the connection");
        read_to_end(&mut stream).0.len()
    });
    let other = thread::spawn(move || {
        asked_rx.recv_timeout(CLIENT_TIMEOUT).unwrap();
        let mut r = BufReader::new(connect(addr));
        for _ in 0..3 {
            r.get_mut()
                .write_all(b"GET /plaintext HTTP/1.1\r\nHost: t\r\n\r\n")
                .unwrap();
            assert!(read_head(&mut r).starts_with("HTTP/1.1 200 OK\r\n"));
            let mut body = [0; 13];
            r.read_exact(&mut body).unwrap();
        }
        Instant::now()
    });
    run_until(&mut reactor, "the stream request", || {
        !streams.borrow().is_empty()
    });
    let id = streams.borrow()[0];
    let asked = Instant::now();
    // Turns the reactor until the stalled connection is gone, noting when its queue was last
    // seen to change (after the turn that changed it).
    let deadline = asked + DEADLINE;
    let mut last = (usize::MAX, asked);
    loop {
        assert!(
            Instant::now() < deadline,
            "the stalled connection was never closed"
        );
        reactor.iterate(Duration::from_millis(5)).unwrap();
        if !reactor.is_connected(id) {
            break;
        }
        let queued = reactor.queued_bytes(id);
        if queued != last.0 {
            last = (queued, Instant::now());
        }
    }
    let closed = Instant::now();
    closed_tx.send(()).unwrap();
    let results = run_until_joined(&mut reactor, vec![stalled]);
    let served = run_until_joined(&mut reactor, vec![other])[0];
    assert!(
        results[0] < 64 << 20,
        "the body was cut short ({} bytes)",
        results[0]
    );
    assert!(last.0 > 0, "bytes were waiting when the client stopped");
    let silent = closed - last.1;
    assert!(
        closed - asked >= SEND_TIMEOUT,
        "closed after {:?}",
        closed - asked
    );
    // Less the rest of the turn that made the last progress, at most.
    assert!(
        silent >= SEND_TIMEOUT - Duration::from_millis(50),
        "silent for {silent:?}"
    );
    assert!(
        silent < SEND_TIMEOUT + Duration::from_secs(1),
        "silent for {silent:?}"
    );
    assert!(served < closed, "the other client was served meanwhile");
}

/// A client whose receive buffer is small (32 KiB asked), so that what it has not read backs
/// up into the server's queue instead of the kernel's buffers.
fn connect_small(addr: SocketAddr) -> TcpStream {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(32 * 1024).unwrap();
    socket.connect(&addr.into()).expect("client connects");
    let stream = TcpStream::from(socket);
    stream.set_read_timeout(Some(CLIENT_TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(CLIENT_TIMEOUT)).unwrap();
    stream
}

/// Turns the reactor until `client` finishes, sampling the largest queue of the `/bulk`
/// connection; returns the client's result and that largest queue.
fn run_sampling<T>(
    reactor: &mut Reactor,
    streams: &RefCell<Vec<ConnectionId>>,
    client: thread::JoinHandle<T>,
) -> (T, usize) {
    let deadline = Instant::now() + DEADLINE;
    let mut max_queued = 0;
    while !client.is_finished() {
        assert!(Instant::now() < deadline, "timed out");
        reactor.iterate(Duration::from_millis(5)).unwrap();
        if let Some(&id) = streams.borrow().first() {
            max_queued = max_queued.max(reactor.queued_bytes(id));
        }
    }
    match client.join() {
        Ok(value) => (value, max_queued),
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

#[test]
fn a_client_reading_slowly_but_steadily_gets_the_whole_body() {
    const SIZE: usize = 16 << 20;
    let (mut reactor, addr, streams) = serve();
    let client = thread::spawn(move || {
        let started = Instant::now();
        let mut r = BufReader::new(connect_small(addr));
        r.get_mut()
            .write_all(b"GET /bulk?16 HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        let head = read_head(&mut r);
        assert!(
            head.contains(&format!("content-length: {SIZE}\r\n")),
            "{head}"
        );
        // 512 KiB every 20 ms: progress ten times within each send timeout, for 32 steps
        // (more than the kernel's buffers hold, up to 4 MiB for the server's send buffer).
        let mut got = 0;
        let mut buf = vec![0; 512 * 1024];
        while got < SIZE {
            let want = buf.len().min(SIZE - got);
            r.read_exact(&mut buf[..want]).expect("the body goes on");
            assert!(buf[..want].iter().all(|&b| b == b's'));
            got += want;
            thread::sleep(Duration::from_millis(20));
        }
        // The connection is still there for the next request.
        r.get_mut()
            .write_all(b"GET /plaintext HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        assert!(read_head(&mut r).starts_with("HTTP/1.1 200 OK\r\n"));
        started.elapsed()
    });
    let (took, max_queued) = run_sampling(&mut reactor, &streams, client);
    assert!(
        took > 2 * SEND_TIMEOUT,
        "the transfer outlasted the timeout ({took:?})"
    );
    // The body waited in the server's queue the whole time: one stretch of following.
    assert!(max_queued > SIZE / 2, "at most {max_queued} bytes waited");
}

#[test]
fn a_pipelining_client_that_reads_normally_is_unaffected() {
    const REQUESTS: usize = 1000;
    let (mut reactor, addr, _streams) = serve();
    let client = thread::spawn(move || {
        let mut r = BufReader::new(connect(addr));
        let batch = "GET /plaintext HTTP/1.1\r\nHost: t\r\n\r\n".repeat(REQUESTS);
        for round in 0..2 {
            r.get_mut().write_all(batch.as_bytes()).unwrap();
            for _ in 0..REQUESTS {
                assert!(read_head(&mut r).starts_with("HTTP/1.1 200 OK\r\n"));
                let mut body = [0; 13];
                r.read_exact(&mut body).unwrap();
                assert_eq!(&body, b"Hello, World!");
            }
            if round == 0 {
                // Three send timeouts with nothing to send: no timeout of any kind runs out.
                thread::sleep(3 * SEND_TIMEOUT);
            }
        }
    });
    run_until_joined(&mut reactor, vec![client]);
}
