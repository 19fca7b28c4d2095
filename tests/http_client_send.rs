//! The HTTP client over real loopback sockets, part four: sending the request. A
//! server that stops reading fails it with the send timeout, one that reads steadily meets
//! neither the send nor the head timeout however long the upload takes, and the head timeout
//! runs from the request written.

mod common;

use std::cell::RefCell;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::rc::Rc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::scripted::{read_request, Scripted};
use common::*;
use torsion::protocols::http::client::{
    BodySource, BodyWaker, ClientConfig, ClientError, HttpClient, Pull, Request, Response,
    TimeoutKind,
};
use torsion::{Bytes, Reactor};

/// Sends `request` with a client with `config` on a fresh reactor and turns it until the
/// answer; also returns how long that took.
fn timed_fetch(
    config: ClientConfig,
    request: Request,
) -> (Result<Response, ClientError>, Duration) {
    init_logging();
    let mut reactor = Reactor::new().unwrap();
    let client = HttpClient::with_config(config);
    let answer = Rc::new(RefCell::new(None));
    let slot = answer.clone();
    let started = Instant::now();
    client.send(&mut reactor, request, move |r, _| {
        *slot.borrow_mut() = Some(r)
    });
    run_until(&mut reactor, "the response", || answer.borrow().is_some());
    let elapsed = started.elapsed();
    let taken = answer.borrow_mut().take();
    (taken.unwrap(), elapsed)
}

/// Asserts `result` is the timeout `kind` of length `after`.
fn assert_timeout(result: &Result<Response, ClientError>, kind: TimeoutKind, after: Duration) {
    match result {
        Err(ClientError::Timeout { which, after: a }) if *which == kind && *a == after => {}
        other => panic!("expected a {kind:?} timeout after {after:?}, got {other:?}"),
    }
}

/// A body that never ends, in 64 KiB pieces.
struct Endless;

impl BodySource for Endless {
    fn pull(&mut self, _: &mut Reactor, _: BodyWaker) -> Pull {
        static PIECE: [u8; 64 * 1024] = [b'x'; 64 * 1024];
        Pull::Data(Bytes::from_static(&PIECE))
    }
}

#[test]
fn an_endless_upload_to_a_server_that_never_reads_fails_with_the_send_timeout() {
    let (done, wait) = mpsc::channel::<()>();
    let server = Scripted::start(move |accept| {
        let _connection = accept();
        let _ = wait.recv_timeout(DEADLINE);
    });
    let timeout = Duration::from_millis(200);
    let config = ClientConfig::default().with_send_timeout(Some(timeout));
    let request = Request::post(server.url("/"), "").body_stream(Endless);
    let (result, elapsed) = timed_fetch(config, request);
    done.send(()).unwrap();
    server.thread.join().unwrap();
    assert_timeout(&result, TimeoutKind::Send, timeout);
    let message = result.unwrap_err().to_string();
    assert_eq!(
        message,
        "timed out: sending the request made no progress for 200ms"
    );
    // The kernel takes a few MiB at once; the guard counts from its last taking.
    assert!(elapsed >= timeout, "failed after {elapsed:?}");
    assert!(elapsed < 5 * timeout, "failed after {elapsed:?}");
    println!("an endless upload to a server that never reads failed after {elapsed:?}");
}

/// Reads a request head, then its `Content-Length` body at `rate` bytes per second (in pieces
/// of at most 64 KiB, catching up after a late wake-up rather than drifting) until `tail` bytes
/// are left, and those at once; returns the body's length read.
fn read_steadily(stream: &mut TcpStream, rate: usize, tail: usize) -> usize {
    let head = read_head(stream);
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .and_then(|v| v.trim().parse().ok())
        .expect("a Content-Length");
    let started = Instant::now();
    let mut buf = vec![0; 64 * 1024];
    let mut read = 0;
    while read < length {
        let allowed = (started.elapsed().as_secs_f64() * rate as f64) as usize;
        let room = if read + tail >= length {
            buf.len()
        } else {
            allowed.saturating_sub(read).min(buf.len())
        };
        if room == 0 {
            std::thread::sleep(Duration::from_millis(2));
            continue;
        }
        match stream.read(&mut buf[..room.min(length - read)]) {
            Ok(0) | Err(_) => break,
            Ok(n) => read += n,
        }
    }
    read
}

/// Reads up to the end of a request head, lower-cased.
fn read_head(stream: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).expect("a request head");
        head.push(byte[0]);
    }
    String::from_utf8_lossy(&head).to_lowercase()
}

/// The upload of [`a_large_upload_to_a_server_reading_steadily_meets_neither_timeout`]: 48 MiB,
/// read at 16 MiB/s but for its last 8 MiB, read at once: about 2.5 s, over twice the 1 s send
/// and head timeouts.
///
/// Why not slower: the kernel stands between the client and the server. Linux lets a loopback
/// socket's send buffer grow to 4 MiB and wakes a writer only once a third of it has drained,
/// so the client sees progress in steps of about 1.4 MiB (every 90 ms at this rate, far under
/// the timeout even on a loaded machine or with a larger buffer; at 64 KiB per 50 ms it would
/// be every 1.1 s, and the send timeout would rightly see no progress).
/// Why the fast tail: when the kernel takes the request's last byte the server still has up
/// to a send buffer's worth to read, which the head timeout must not be made to cover.
const STEADY_LEN: usize = 48 << 20;
const STEADY_RATE: usize = 16 << 20;
const STEADY_TAIL: usize = 8 << 20;

#[test]
fn a_large_upload_to_a_server_reading_steadily_meets_neither_timeout() {
    let server = Scripted::start(|accept| {
        let mut stream = accept();
        let read = read_steadily(&mut stream, STEADY_RATE, STEADY_TAIL);
        let body = read.to_string();
        let response = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(response.as_bytes()).unwrap();
    });
    let timeout = Duration::from_secs(1);
    let config = ClientConfig::default()
        .with_send_timeout(Some(timeout))
        .with_head_timeout(Some(timeout));
    let request = Request::post(server.url("/"), vec![b'x'; STEADY_LEN]);
    let (result, elapsed) = timed_fetch(config, request);
    server.thread.join().unwrap();
    let response = result.unwrap();
    assert_eq!(response.body, STEADY_LEN.to_string());
    // Far longer than either timeout: the send guard re-armed on each step, and the head
    // timeout did not run from the queueing.
    assert!(elapsed > 2 * timeout, "the upload took only {elapsed:?}");
    println!("a {STEADY_LEN}-byte upload to a steady reader took {elapsed:?}");
}

#[test]
fn the_head_timeout_runs_from_the_request_written() {
    let (done, wait) = mpsc::channel::<()>();
    let server = Scripted::start(move |accept| {
        let mut stream = accept();
        read_request(&mut stream);
        let _ = wait.recv_timeout(DEADLINE);
    });
    let timeout = Duration::from_millis(300);
    let config = ClientConfig::default().with_head_timeout(Some(timeout));
    let (result, elapsed) = timed_fetch(config, Request::get(server.url("/")));
    done.send(()).unwrap();
    server.thread.join().unwrap();
    assert_timeout(&result, TimeoutKind::Head, timeout);
    // From the request written, at once on a fresh connection: about the timeout, not twice.
    assert!(elapsed >= timeout, "failed after {elapsed:?}");
    assert!(elapsed < timeout * 2, "failed after {elapsed:?}");
}
