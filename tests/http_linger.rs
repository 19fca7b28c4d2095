//! Lingering close over real loopback sockets: a server that closes while the client is still
//! sending (a body over the limit, requests after a malformed one or after
//! `Connection: close`) must not reset the connection under responses the client has not
//! read yet. Real clients (Python's `http.client`, curl) and raw sockets with a small receive
//! buffer talk to an in-process `HttpServer`; the reactor turns on the test thread until they
//! finish.

mod common;

use std::io::{self, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Output};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use common::*;
use socket2::{Domain, Socket, Type};
use torsion::protocols::http::server::{HttpServer, Request, Responder, Router};
use torsion::protocols::http::{HeaderMap, Limits, StatusCode};
use torsion::{Phase, Reactor};

/// The body limit, as the example server's.
const LIMIT: u64 = 1 << 20;
/// What the clients upload: five times the limit.
const UPLOAD: usize = 5 << 20;
/// The body of `GET /big`.
const BIG: usize = 200_000;

fn router() -> Router {
    Router::new()
        .post("/echo", |req: Request, res: Responder, r: &mut Reactor| {
            res.respond(r, StatusCode::OK, &HeaderMap::new(), req.body)
        })
        .get("/big", |_: Request, res: Responder, r: &mut Reactor| {
            res.respond(r, StatusCode::OK, &HeaderMap::new(), vec![b'#'; BIG])
        })
        // Starts a graceful shutdown (from a timer: a shutdown asked inside a connection's own
        // callback cannot tell that connection), then answers with a large body.
        .get(
            "/shutdown",
            |_: Request, res: Responder, r: &mut Reactor| {
                r.call_later(Duration::ZERO, Reactor::shutdown);
                r.call_later(Duration::from_millis(100), move |r| {
                    res.respond(r, StatusCode::OK, &HeaderMap::new(), vec![b'#'; BIG])
                });
            },
        )
}

/// Runs a server with the 1 MiB body limit until the client threads `start` spawns have
/// finished; returns what they returned.
fn with_server<T>(start: impl FnOnce(SocketAddr) -> Vec<JoinHandle<T>>) -> Vec<T> {
    init_logging();
    let mut reactor = Reactor::new().unwrap();
    let server = HttpServer::new(router()).with_limits(Limits::default().with_max_body_len(LIMIT));
    let port = reactor.listen_tcp(any_loopback_port(), server).unwrap();
    let clients = start(port.local_addr());
    run_until_joined(&mut reactor, clients)
}

/// Whether `program` runs. Under `CI=true` a missing one fails the test; elsewhere the test
/// is skipped, saying why.
fn have(program: &str) -> bool {
    if Command::new(program).arg("--version").output().is_ok() {
        return true;
    }
    assert_ne!(
        std::env::var("CI").as_deref(),
        Ok("true"),
        "{program} is not installed, and CI needs this test to run"
    );
    println!("skipped: {program} is not installed");
    false
}

/// A file of `len` bytes in the temporary directory, removed on drop.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str, len: usize) -> TempFile {
        let path =
            std::env::temp_dir().join(format!("torsion-linger-{}-{name}", std::process::id()));
        std::fs::write(&path, vec![b'u'; len]).unwrap();
        TempFile(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn stdout_of(output: Output) -> String {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// Posts a body five times over the limit with `http.client` (which sends the whole body
/// before it reads the answer), ten times; prints how many runs saw the 413.
const PYTHON_POSTS: &str = r#"
import http.client, sys
port, runs = int(sys.argv[1]), 10
body = b"u" * (5 << 20)
seen = 0
for run in range(runs):
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("POST", "/echo", body=body)
        response = conn.getresponse()
        response.read()
        seen += response.status == 413
        conn.close()
    except OSError as e:
        print("run", run, type(e).__name__, e, file=sys.stderr)
print(seen)
"#;

#[test]
fn python_posting_a_body_over_the_limit_gets_the_413_every_time() {
    if !have("python3") {
        return;
    }
    let seen = with_server(|addr| {
        vec![thread::spawn(move || {
            let output = Command::new("python3")
                .args(["-c", PYTHON_POSTS, &addr.port().to_string()])
                .output()
                .unwrap();
            stdout_of(output)
        })]
    });
    assert_eq!(seen, ["10"], "runs of 10 that saw the 413");
}

#[test]
fn curl_uploading_a_chunked_body_over_the_limit_gets_the_status_every_time() {
    if !have("curl") {
        return;
    }
    let file = TempFile::new("upload", UPLOAD);
    let upload = format!("@{}", file.0.display());
    let statuses = with_server(|addr| {
        vec![thread::spawn(move || {
            // A reset here is a race (curl may read the status before the reset reaches
            // it), so try often enough for a server that resets to lose it.
            (0..20)
                .map(|_| {
                    let output = Command::new("curl")
                        .args(["-sS", "--max-time", "10", "-o", "/dev/null"])
                        .args(["-w", "%{http_code}"])
                        .args(["-H", "Expect:", "-H", "Transfer-Encoding: chunked"])
                        .args(["--data-binary", &upload])
                        .arg(format!("http://{addr}/echo"))
                        .output()
                        .unwrap();
                    stdout_of(output)
                })
                .collect::<Vec<_>>()
        })]
    });
    assert_eq!(statuses[0], ["413"; 20]);
}

/// A client whose receive buffer is 8 KiB: it sends `wire` (from a thread of its own, so a
/// server that stops reading cannot block it) while it reads to the end.
fn small_buffer_client(addr: SocketAddr, wire: Vec<u8>) -> (Vec<u8>, io::Result<()>) {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    // Before connecting, so the window it advertises is small from the start.
    socket.set_recv_buffer_size(8192).unwrap();
    socket.connect(&addr.into()).unwrap();
    let mut stream: TcpStream = socket.into();
    stream.set_read_timeout(Some(CLIENT_TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(CLIENT_TIMEOUT)).unwrap();
    let mut writer = stream.try_clone().unwrap();
    // A write the server's close cuts short shows in how the reading ends.
    let sender = thread::spawn(move || {
        let _ = writer.write_all(&wire);
    });
    let end = read_to_end(&mut stream);
    sender.join().unwrap();
    end
}

/// The responses in `received`, as (status line, body length), and what follows the last.
fn responses(mut received: &[u8]) -> Vec<(String, usize)> {
    let mut out = Vec::new();
    while let Some(end) = received.windows(4).position(|w| w == b"\r\n\r\n") {
        let head = String::from_utf8_lossy(&received[..end]).to_string();
        let len: usize = head
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-length: ")
                    .map(str::to_string)
            })
            .map_or(0, |n| n.trim().parse().unwrap());
        let status = head.lines().next().unwrap_or_default().to_string();
        let body_end = (end + 4 + len).min(received.len());
        out.push((status, body_end - end - 4));
        received = &received[body_end..];
    }
    assert!(
        received.is_empty(),
        "{} bytes after the last response",
        received.len()
    );
    out
}

const GET_BIG: &[u8] = b"GET /big HTTP/1.1\r\nHost: t\r\n\r\n";

/// Three pipelined `GET /big`, then `last`, then requests the client pipelines on before it
/// learns the connection closes: more than the server reads at once (64 KiB), so some are
/// still in its kernel, or on their way, when it answers `last`. The client reads slowly
/// (8 KiB receive buffer) meanwhile.
fn three_big_then(last: &[u8]) -> (Vec<(String, usize)>, io::Result<()>) {
    let mut wire = GET_BIG.repeat(3);
    wire.extend_from_slice(last);
    wire.extend_from_slice(&GET_BIG.repeat(10_000));
    let mut ends = with_server(|addr| vec![thread::spawn(move || small_buffer_client(addr, wire))]);
    let (received, end) = ends.remove(0);
    (responses(&received), end)
}

#[test]
fn a_slow_reader_gets_every_response_before_a_malformed_request_s_400_then_eof() {
    let (responses, end) = three_big_then(b"GET /big HTTP/1.1\r\nHost : t\r\n\r\n");
    end.expect("a clean EOF, not a reset");
    let ok = ("HTTP/1.1 200 OK".to_string(), BIG);
    assert_eq!(responses[..3], [ok.clone(), ok.clone(), ok]);
    assert_eq!(responses.len(), 4);
    assert_eq!(responses[3].0, "HTTP/1.1 400 Bad Request");
}

#[test]
fn a_slow_reader_gets_every_response_up_to_connection_close_then_eof() {
    let (responses, end) =
        three_big_then(b"GET /big HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    end.expect("a clean EOF, not a reset");
    assert_eq!(responses, vec![("HTTP/1.1 200 OK".to_string(), BIG); 4]);
}

#[test]
fn a_graceful_shutdown_with_requests_unread_answers_those_in_flight_then_eof() {
    init_logging();
    let mut reactor = Reactor::new().unwrap();
    let port = reactor
        .listen_tcp(any_loopback_port(), HttpServer::new(router()))
        .unwrap();
    let done = std::rc::Rc::new(std::cell::Cell::new(false));
    let flag = done.clone();
    reactor.add_shutdown_trigger(Phase::After, move |_| flag.set(true));
    let addr = port.local_addr();
    // Most of the requests arrive once the shutdown began: never read as requests.
    let mut wire = b"GET /shutdown HTTP/1.1\r\nHost: t\r\n\r\n".to_vec();
    wire.extend_from_slice(&GET_BIG.repeat(10_000));
    let client = thread::spawn(move || small_buffer_client(addr, wire));
    run_until(&mut reactor, "the shutdown to complete", || done.get());
    let (received, end) = client.join().unwrap();
    end.expect("a clean EOF, not a reset");
    // The requests read before the shutdown are answered (up to the 16 pending a connection
    // may have, and one more whose bytes the server already held), each whole; the
    // thousands after them are not.
    let responses = responses(&received);
    assert!((1..=17).contains(&responses.len()), "{}", responses.len());
    assert!(responses
        .iter()
        .all(|r| *r == ("HTTP/1.1 200 OK".to_string(), BIG)));
}
