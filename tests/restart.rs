//! Restarting a server under load without failing a client: `http_server` on a `reuseport=yes`
//! endpoint, a new process started on the same port, the old one sent SIGTERM (it stops
//! listening, answers what it has accepted, and exits), three times over, while client
//! threads keep requesting. Every request must succeed: no refused connection, no reset,
//! no truncated response.
//!
//! Linux resets a connection that completes its handshake on a `SO_REUSEPORT` socket in the
//! instant that socket closes, unless `net.ipv4.tcp_migrate_req` is 1 (it then moves such
//! connections to another socket of the port): without it the test skips (fails under
//! `CI=true`; `.ci/run` sets it as root).
//!
//! Clients of two kinds run: a connection per request (`Connection: close`), and keep-alive
//! connections that, as HTTP clients do (RFC 9112, section 9.3.1), send a request again on a
//! new connection when the server closed an idle one before any byte of the response came
//! (the server closes idle keep-alive connections when it shuts down; a request crossing
//! that close is unanswered and safe to repeat). Anything else is a failure.

mod common;

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::examples::Running;
use common::machine::skip_or_fail;
use common::servers::start_server;
use common::{CLIENT_TIMEOUT, DEADLINE};

const REQUEST_CLOSE: &[u8] =
    b"GET /plaintext HTTP/1.1\r\nHost: restart.test\r\nConnection: close\r\n\r\n";
const REQUEST_KEEP_ALIVE: &[u8] = b"GET /plaintext HTTP/1.1\r\nHost: restart.test\r\n\r\n";
const BODY: &str = "Hello, World!";

/// What the client threads did.
#[derive(Default)]
struct Load {
    answered: AtomicU64,
    /// Keep-alive requests sent again after the server closed the idle connection first.
    repeated: AtomicU64,
    failures: Mutex<Vec<String>>,
    stop: AtomicBool,
}

impl Load {
    fn fail(&self, what: String) {
        self.failures.lock().unwrap().push(what);
    }

    /// Waits until `more` requests past now were answered.
    fn wait_for_answers(&self, more: u64) {
        let target = self.answered.load(Ordering::Relaxed) + more;
        let deadline = Instant::now() + DEADLINE;
        while self.answered.load(Ordering::Relaxed) < target {
            assert!(
                Instant::now() < deadline,
                "the load stalled at {} answers; failures: {:?}",
                self.answered.load(Ordering::Relaxed),
                self.failures.lock().unwrap()
            );
            thread::sleep(Duration::from_millis(5));
        }
    }
}

fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
    let stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(CLIENT_TIMEOUT))?;
    stream.set_write_timeout(Some(CLIENT_TIMEOUT))?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// One request on its own connection: connect, ask, read to the server's close.
fn request_on_new_connection(addr: SocketAddr) -> Result<(), String> {
    let mut stream = connect(addr).map_err(|e| format!("connect: {e}"))?;
    stream
        .write_all(REQUEST_CLOSE)
        .map_err(|e| format!("send: {e}"))?;
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .map_err(|e| format!("read after {} bytes: {e}", response.len()))?;
    if response.starts_with("HTTP/1.1 200 OK\r\n") && response.ends_with(BODY) {
        Ok(())
    } else {
        Err(format!("bad response {response:?}"))
    }
}

/// How a keep-alive request ended.
enum KeptAlive {
    /// Answered; the connection stays open, or the server said it closes.
    Answered { open: bool },
    /// Closed (EOF or reset) before any byte of the response: safe to send again.
    ClosedFirst,
}

/// One request on a kept-alive connection.
fn request_kept_alive(stream: &mut BufReader<TcpStream>) -> Result<KeptAlive, String> {
    if stream.get_mut().write_all(REQUEST_KEEP_ALIVE).is_err() {
        return Ok(KeptAlive::ClosedFirst);
    }
    let mut status = String::new();
    match stream.read_line(&mut status) {
        Ok(0) => return Ok(KeptAlive::ClosedFirst),
        Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return Ok(KeptAlive::ClosedFirst),
        Err(e) => return Err(format!("read the status line: {e}")),
        Ok(_) if status != "HTTP/1.1 200 OK\r\n" => return Err(format!("status {status:?}")),
        Ok(_) => {}
    }
    let (mut length, mut open) = (None, true);
    loop {
        let mut line = String::new();
        match stream.read_line(&mut line) {
            Ok(0) => return Err("closed inside the response head".into()),
            Err(e) => return Err(format!("read the response head: {e}")),
            Ok(_) => {}
        }
        let line = line.trim_end().to_ascii_lowercase();
        if line.is_empty() {
            break;
        }
        if let Some(value) = line.strip_prefix("content-length:") {
            length = value.trim().parse::<usize>().ok();
        }
        if line == "connection: close" {
            open = false;
        }
    }
    let mut body = vec![0; length.ok_or("no content-length")?];
    stream
        .read_exact(&mut body)
        .map_err(|e| format!("read the body: {e}"))?;
    if body != BODY.as_bytes() {
        return Err(format!("body {:?}", String::from_utf8_lossy(&body)));
    }
    Ok(KeptAlive::Answered { open })
}

/// A client thread: requests until told to stop, counting answers and failures.
fn client(addr: SocketAddr, load: Arc<Load>, keep_alive: bool) {
    let mut kept: Option<BufReader<TcpStream>> = None;
    while !load.stop.load(Ordering::Relaxed) {
        if !keep_alive {
            match request_on_new_connection(addr) {
                Ok(()) => load.answered.fetch_add(1, Ordering::Relaxed),
                Err(e) => {
                    load.fail(e);
                    continue;
                }
            };
            continue;
        }
        let fresh = kept.is_none();
        let stream = match kept.as_mut() {
            Some(stream) => stream,
            None => match connect(addr) {
                Ok(stream) => kept.insert(BufReader::new(stream)),
                Err(e) => {
                    load.fail(format!("keep-alive connect: {e}"));
                    continue;
                }
            },
        };
        match request_kept_alive(stream) {
            Ok(KeptAlive::Answered { open }) => {
                load.answered.fetch_add(1, Ordering::Relaxed);
                if !open {
                    kept = None;
                }
            }
            Ok(KeptAlive::ClosedFirst) if !fresh => {
                load.repeated.fetch_add(1, Ordering::Relaxed);
                kept = None;
            }
            Ok(KeptAlive::ClosedFirst) => {
                load.fail("a new keep-alive connection closed before its first answer".into());
                kept = None;
            }
            Err(e) => {
                load.fail(format!("keep-alive: {e}"));
                kept = None;
            }
        }
    }
}

/// Starts `http_server` on `endpoint` with `extra` arguments.
fn start(endpoint: &str, extra: &[&str]) -> Option<(Running, String)> {
    let mut args = vec![endpoint];
    args.extend_from_slice(extra);
    start_server("http_server", &args, None)
}

/// Whether the kernel hands a closing `SO_REUSEPORT` socket's connections to the others.
fn kernel_migrates_requests() -> bool {
    const SETTING: &str = "/proc/sys/net/ipv4/tcp_migrate_req";
    match std::fs::read_to_string(SETTING) {
        Ok(value) if value.trim() == "1" => true,
        Ok(value) => {
            skip_or_fail(format!(
                "{SETTING} is {} (as root: sysctl -w net.ipv4.tcp_migrate_req=1)",
                value.trim()
            ));
            false
        }
        Err(e) => {
            skip_or_fail(format!(
                "cannot read {SETTING} (Linux 5.14 or later has it): {e}"
            ));
            false
        }
    }
}

#[test]
fn http_server_restarts_under_load_without_failing_a_request() {
    if !kernel_migrates_requests() {
        return;
    }
    let Some((mut old, printed)) = start("tcp:0:interface=127.0.0.1:reuseport=yes", &[]) else {
        return;
    };
    let addr: SocketAddr = printed.parse().expect("the printed address");
    let endpoint = format!("tcp:{}:interface=127.0.0.1:reuseport=yes", addr.port());
    let load = Arc::new(Load::default());
    let clients: Vec<_> = (0..6)
        .map(|i| {
            let load = load.clone();
            thread::spawn(move || client(addr, load, i % 3 == 2))
        })
        .collect();
    load.wait_for_answers(400);
    // The second generation runs two reactors on the port; the others one.
    for threads in ["1", "2", "1"] {
        let (new, said) = start(&endpoint, &["--threads", threads]).expect("built above");
        assert_eq!(said, printed, "the new server took the same port");
        load.wait_for_answers(400);
        let status = old.terminate("the old http_server");
        assert!(status.success(), "the old server's exit: {status}");
        old = new;
        load.wait_for_answers(400);
    }
    load.stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.join().unwrap();
    }
    let failures = load.failures.lock().unwrap();
    println!(
        "{} requests answered through 3 restarts, {} keep-alive requests sent again, {} failed",
        load.answered.load(Ordering::Relaxed),
        load.repeated.load(Ordering::Relaxed),
        failures.len()
    );
    assert!(failures.is_empty(), "failed requests: {failures:?}");
    let status = old.terminate("the last http_server");
    assert!(status.success(), "{status}");
}
