//! Helpers shared by the integration tests: driving a reactor until a condition holds (with a
//! deadline that fails the test instead of hanging it), blocking std clients with timeouts, an
//! echo protocol with flow control, a checkable byte pattern, and a comparable summary of
//! `DisconnectReason`; `machine` says what a test does when a peer program or a loopback
//! capability is missing (skip, or fail under `CI=true`).
//!
//! The reactor is not `Send`, so every test runs it on the test's own thread and puts its
//! blocking std clients on spawned threads; state a protocol shares with the test lives in an
//! `Rc<Cell<_>>` or `Rc<RefCell<_>>`.

// Each test file is its own crate and uses a different subset of these helpers; the rest would
// warn as dead code in every file that does not use them.
#![allow(dead_code)]

use std::cell::RefCell;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::rc::Rc;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use socket2::{Domain, Socket, Type};

pub mod certs;
pub mod examples;
pub mod machine;
pub mod tls;
pub mod unix;
use torsion::{DisconnectReason, Reactor};

pub mod scripted;
pub mod servers;

/// How long any test may wait for the reactor to reach a condition before it fails.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// Read and write timeout of the std client sockets: a reactor bug fails a read, never hangs it.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);

/// State a protocol shares with its test (the reactor is single-threaded).
pub type Shared<T> = Rc<RefCell<T>>;

/// Shared state with a starting value.
pub fn shared<T>(value: T) -> Shared<T> {
    Rc::new(RefCell::new(value))
}

/// Installs the test logger once per process (`RUST_LOG=debug cargo test` shows the reactor's logs).
pub fn init_logging() {
    let _ = env_logger::builder().is_test(true).try_init();
}

/// 127.0.0.1 with port 0: the kernel picks a free port.
pub fn any_loopback_port() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// A loopback address nothing listens on: bound to learn a free port, then released.
pub fn closed_loopback_port() -> SocketAddr {
    let listener = std::net::TcpListener::bind(any_loopback_port()).expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local_addr")
}

/// Turns the reactor (10 ms at most per turn) until `done` holds; panics naming `what` if it
/// does not within [`DEADLINE`].
pub fn run_until(reactor: &mut Reactor, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !done() {
        assert!(
            Instant::now() < deadline,
            "timed out after {DEADLINE:?} waiting for {what}"
        );
        reactor
            .iterate(Duration::from_millis(10))
            .expect("reactor turn");
    }
}

/// Turns the reactor until every client thread has finished, then joins them, re-raising a
/// client's panic as the test's failure.
pub fn run_until_joined<T>(reactor: &mut Reactor, clients: Vec<thread::JoinHandle<T>>) -> Vec<T> {
    run_until(reactor, "the client threads to finish", || {
        clients.iter().all(|c| c.is_finished())
    });
    clients
        .into_iter()
        .map(|c| match c.join() {
            Ok(value) => value,
            Err(panic) => std::panic::resume_unwind(panic),
        })
        .collect()
}

/// A blocking client connected to `addr`, with read and write timeouts.
pub fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).expect("client connects");
    stream.set_read_timeout(Some(CLIENT_TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(CLIENT_TIMEOUT)).unwrap();
    stream.set_nodelay(true).unwrap();
    stream
}

/// Reads exactly `len` bytes.
pub fn read_exact(stream: &mut TcpStream, len: usize) -> Vec<u8> {
    let mut buf = vec![0; len];
    stream.read_exact(&mut buf).expect("client reads");
    buf
}

/// Reads until EOF (or an error such as a reset), returning what arrived and how it ended.
pub fn read_to_end(stream: &mut TcpStream) -> (Vec<u8>, io::Result<()>) {
    let mut received = Vec::new();
    let mut buf = [0; 16 * 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return (received, Ok(())),
            Ok(n) => received.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return (received, Err(e)),
        }
    }
}

/// Sends `message` and reads its echo back.
pub fn round_trip(stream: &mut TcpStream, message: &[u8]) -> Vec<u8> {
    stream.write_all(message).expect("client writes");
    read_exact(stream, message.len())
}

/// The flow-controlled echo protocol the servers in these tests run.
#[allow(unused_imports)] // not every test file runs an echo server
pub use torsion::protocols::wire::Echo;

/// [`DisconnectReason`] reduced to something a test can store and compare.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// `Closed`.
    Closed,
    /// `Reset(_)`.
    Reset,
    /// `TimedOut(_)`.
    TimedOut,
    /// `Aborted`.
    Aborted,
    /// `Truncated`: a TLS peer closed TCP without close_notify.
    Truncated,
    /// `Tls(_)`, as the error's text.
    Tls(String),
    /// Anything else, as its `Debug` text.
    Other(String),
}

impl From<&DisconnectReason> for Reason {
    fn from(reason: &DisconnectReason) -> Reason {
        match reason {
            DisconnectReason::Closed => Reason::Closed,
            DisconnectReason::Reset(_) => Reason::Reset,
            DisconnectReason::TimedOut(_) => Reason::TimedOut,
            DisconnectReason::Aborted => Reason::Aborted,
            DisconnectReason::Truncated => Reason::Truncated,
            DisconnectReason::Tls(e) => Reason::Tls(e.to_string()),
            other => Reason::Other(format!("{other:?}")),
        }
    }
}

/// Length of the repeating test pattern: a prime, so that no read or write size lines up
/// with it and a dropped, repeated or reordered chunk shows as a mismatch.
pub const PATTERN_PERIOD: usize = 65_521;

/// One period of the test pattern (pseudo-random bytes from a fixed seed).
pub fn pattern_block() -> Vec<u8> {
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    (0..PATTERN_PERIOD)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

/// Writes `total` bytes of the pattern, starting at offset 0.
pub fn write_pattern(stream: &mut impl Write, block: &[u8], total: usize) -> io::Result<()> {
    let mut sent = 0;
    while sent < total {
        let start = sent % PATTERN_PERIOD;
        let len = (PATTERN_PERIOD - start).min(total - sent);
        stream.write_all(&block[start..start + len])?;
        sent += len;
    }
    Ok(())
}

/// Checks that `data` is the pattern from stream offset `offset`; returns the offset of the
/// first wrong byte.
pub fn check_pattern(block: &[u8], offset: usize, data: &[u8]) -> Result<(), usize> {
    let mut checked = 0;
    while checked < data.len() {
        let start = (offset + checked) % PATTERN_PERIOD;
        let len = (PATTERN_PERIOD - start).min(data.len() - checked);
        let expected = &block[start..start + len];
        let got = &data[checked..checked + len];
        if got != expected {
            let at = got.iter().zip(expected).position(|(a, b)| a != b);
            return Err(offset + checked + at.unwrap_or(0));
        }
        checked += len;
    }
    Ok(())
}

/// Ends the whole test process if it is still armed after `limit`: for the few tests that
/// must call `Reactor::run`, which has no deadline of its own.
pub struct Watchdog {
    cancel: Option<mpsc::Sender<()>>,
}

impl Watchdog {
    /// Arms a watchdog that exits the process with a message naming `what`.
    pub fn arm(limit: Duration, what: &'static str) -> Watchdog {
        let (cancel, cancelled) = mpsc::channel::<()>();
        thread::spawn(move || {
            if let Err(mpsc::RecvTimeoutError::Timeout) = cancelled.recv_timeout(limit) {
                eprintln!("watchdog: {what} did not happen within {limit:?}; aborting the tests");
                std::process::exit(101);
            }
        });
        Watchdog {
            cancel: Some(cancel),
        }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        if let Some(cancel) = self.cancel.take() {
            let _ = cancel.send(());
        }
    }
}

/// A listener that never accepts, with an accept queue of one, filled: Linux then drops every
/// further SYN (`tcp_conn_request`: accept queue full), so a connect to it gets no answer.
pub struct SilentListener {
    socket: Socket,
    /// The connections sitting in the accept queue.
    pub queued: Vec<TcpStream>,
}

impl SilentListener {
    /// Makes the listener on 127.0.0.1 and fills its accept queue.
    pub fn new() -> SilentListener {
        SilentListener::on(std::net::Ipv4Addr::LOCALHOST.into())
    }

    /// Makes the listener on `ip` (a loopback address) and fills its accept queue.
    pub fn on(ip: std::net::IpAddr) -> SilentListener {
        let addr = SocketAddr::new(ip, 0);
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None).unwrap();
        socket.bind(&addr.into()).unwrap();
        socket.listen(0).unwrap();
        let addr = socket.local_addr().unwrap().as_socket().unwrap();
        // Connects until one goes unanswered. The connects that succeed sit in the accept
        // queue (and one more in SYN-RECV); the probe that times out shows the queue is full.
        let mut queued = Vec::new();
        loop {
            match TcpStream::connect_timeout(&addr, Duration::from_millis(100)) {
                Ok(stream) => queued.push(stream),
                Err(e) if e.kind() == io::ErrorKind::TimedOut => break,
                Err(e) => panic!("probing the full backlog: {e}"),
            }
            assert!(queued.len() < 16, "the kernel never stopped answering SYNs");
        }
        SilentListener { socket, queued }
    }

    /// Its address.
    pub fn addr(&self) -> SocketAddr {
        self.socket.local_addr().unwrap().as_socket().unwrap()
    }
}
