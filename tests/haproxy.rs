//! The PROXY protocol on a `haproxy:` endpoint: the protocol (and its factory) see the client
//! the header names, bytes after the header reach the protocol, a connection without a valid
//! header or too slow to send one is closed before any protocol exists; then `http_server`
//! behind a real HAProxy (`send-proxy` and `send-proxy-v2`) answers `GET /ip` with the
//! client's address. HAProxy missing: skipped outside CI, failed under `CI=true`.

mod common;

use std::cell::RefCell;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::rc::Rc;
use std::thread;
use std::time::{Duration, Instant};

use common::examples::Running;
use common::machine::require_tool;
use common::servers::start_server;
use common::{connect, run_until_joined, DEADLINE};
use torsion::proxy::ProxiedFactory;
use torsion::{Address, Context, Factory, Protocol, Reactor};

/// What the server saw: the peer each protocol was built for, and what each connection said
/// (its peer address as `Context::peer_address` reports it, and its data).
#[derive(Default)]
struct Seen {
    built: Vec<Address>,
    said: Vec<(String, Vec<u8>)>,
}

struct Recorder(Rc<RefCell<Seen>>);

impl Factory for Recorder {
    type Protocol = Answer;

    fn build_protocol(&mut self, peer: Address) -> Option<Answer> {
        self.0.borrow_mut().built.push(peer);
        Some(Answer(Rc::clone(&self.0)))
    }
}

/// Answers each chunk with the peer address it sees, and records the chunk.
struct Answer(Rc<RefCell<Seen>>);

impl Protocol for Answer {
    fn data_received(&mut self, cx: &mut Context<'_>, data: &[u8]) {
        let peer = cx.peer_address().expect("peer address").to_string();
        cx.write(format!("{peer}\n").as_bytes());
        self.0.borrow_mut().said.push((peer, data.to_vec()));
    }
}

fn listen(reactor: &mut Reactor, seen: &Rc<RefCell<Seen>>) -> SocketAddr {
    let port = reactor
        .listen(
            "haproxy:tcp:0:interface=127.0.0.1",
            Recorder(Rc::clone(seen)),
        )
        .expect("listen");
    port.local_addr()
}

/// Sends `pieces` one write at a time, then reads one line.
fn send_and_read_line(addr: SocketAddr, pieces: Vec<Vec<u8>>) -> String {
    let mut stream = connect(addr);
    for piece in pieces {
        stream.write_all(&piece).unwrap();
        stream.flush().unwrap();
        thread::sleep(Duration::from_millis(5)); // separate reads, not synchronisation
    }
    let mut line = Vec::new();
    let mut byte = [0];
    while stream.read(&mut byte).unwrap() == 1 && byte[0] != b'\n' {
        line.push(byte[0]);
    }
    String::from_utf8(line).unwrap()
}

#[test]
fn a_v1_header_names_the_peer_and_the_bytes_after_it_reach_the_protocol() {
    let mut reactor = Reactor::new().unwrap();
    let seen = Rc::new(RefCell::new(Seen::default()));
    let addr = listen(&mut reactor, &seen);
    let header = b"PROXY TCP4 192.0.2.7 127.0.0.1 40001 80\r\nhello".to_vec();
    let client = thread::spawn(move || send_and_read_line(addr, vec![header]));
    let answers = run_until_joined(&mut reactor, vec![client]);
    assert_eq!(answers, ["192.0.2.7:40001"]);
    let seen = seen.borrow();
    assert_eq!(
        seen.built,
        [Address::Tcp("192.0.2.7:40001".parse().unwrap())]
    );
    assert_eq!(
        seen.said,
        [("192.0.2.7:40001".to_string(), b"hello".to_vec())]
    );
}

#[test]
fn a_v2_header_in_pieces_names_an_ipv6_peer() {
    let mut reactor = Reactor::new().unwrap();
    let seen = Rc::new(RefCell::new(Seen::default()));
    let addr = listen(&mut reactor, &seen);
    let mut header = b"\r\n\r\n\0\r\nQUIT\n\x21\x21\x00\x24".to_vec();
    header.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9]);
    header.extend_from_slice(&[0; 15]);
    header.extend_from_slice(&[1, 0x1f, 0x90, 0x00, 0x50]);
    let pieces = vec![
        header[..5].to_vec(),
        header[5..20].to_vec(),
        header[20..].to_vec(),
    ];
    let client = thread::spawn(move || {
        let mut pieces = pieces;
        pieces.push(b"after".to_vec());
        send_and_read_line(addr, pieces)
    });
    let answers = run_until_joined(&mut reactor, vec![client]);
    assert_eq!(answers, ["[2001:db8::9]:8080"]);
    assert_eq!(seen.borrow().said[0].1, b"after");
}

/// Connects, sends `data`, and returns what came back before the server closed.
fn refused(addr: SocketAddr, data: &'static [u8]) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut stream = connect(addr);
        stream.write_all(data).unwrap();
        let mut back = Vec::new();
        // A reset (the server aborts) ends the read as well as a clean close.
        let _ = stream.read_to_end(&mut back);
        back
    })
}

#[test]
fn a_connection_without_a_valid_header_is_closed_before_any_protocol_exists() {
    let mut reactor = Reactor::new().unwrap();
    let seen = Rc::new(RefCell::new(Seen::default()));
    let addr = listen(&mut reactor, &seen);
    let clients = vec![
        refused(addr, b"GET /ip HTTP/1.1\r\nHost: x\r\n\r\n"),
        refused(addr, b"PROXY TCP4 1.2.3.4 5.6.7.8 1 99999\r\nhello"),
        refused(addr, b"\r\n\r\n\0\r\nQUIT\n\x22\x11\x00\x0c"),
    ];
    for back in run_until_joined(&mut reactor, clients) {
        assert_eq!(back, b"", "nothing is answered without a header");
    }
    assert!(seen.borrow().built.is_empty());
}

#[test]
fn a_header_that_does_not_come_in_time_closes_the_connection() {
    let mut reactor = Reactor::new().unwrap();
    let seen = Rc::new(RefCell::new(Seen::default()));
    let factory =
        ProxiedFactory::new(Recorder(Rc::clone(&seen))).header_timeout(Duration::from_millis(100));
    let addr = reactor
        .listen("tcp:0:interface=127.0.0.1", factory)
        .unwrap()
        .local_addr();
    let started = Instant::now();
    // Half a header, then silence: the timeout closes it.
    let client = refused(addr, b"PROXY TCP4 1.2.3.4");
    let backs = run_until_joined(&mut reactor, vec![client]);
    assert_eq!(backs, [b""]);
    assert!(started.elapsed() >= Duration::from_millis(100));
    assert!(seen.borrow().built.is_empty());
}

/// A HAProxy in TCP mode on `front`, relaying to `back` with `send_proxy`
/// (`send-proxy` or `send-proxy-v2`); killed when dropped.
struct Haproxy {
    _running: Running,
    config: PathBuf,
}

impl Haproxy {
    fn start(front: SocketAddr, back: SocketAddr, send_proxy: &str) -> Haproxy {
        let config = std::env::temp_dir().join(format!(
            "torsion-haproxy-{}-{}.cfg",
            std::process::id(),
            front.port()
        ));
        let text = format!(
            "global\n  maxconn 100\n\
             defaults\n  mode tcp\n  timeout connect 5s\n  timeout client 10s\n  timeout server 10s\n\
             frontend front\n  bind {front}\n  default_backend back\n\
             backend back\n  server torsion {back} {send_proxy}\n"
        );
        std::fs::write(&config, text).unwrap();
        let child = Command::new("haproxy")
            .arg("-db")
            .arg("-f")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn haproxy");
        let running = Running(child);
        // HAProxy prints nothing when ready: wait until its port accepts.
        let deadline = Instant::now() + DEADLINE;
        while TcpStream::connect(front).is_err() {
            assert!(
                Instant::now() < deadline,
                "haproxy never listened on {front}"
            );
            thread::sleep(Duration::from_millis(20));
        }
        Haproxy {
            _running: running,
            config,
        }
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.config);
    }
}

/// `GET /ip` through HAProxy sending `send_proxy`: the body is the client's own address.
fn http_server_behind_haproxy_sees_the_client(send_proxy: &str) {
    if require_tool("haproxy", "-v").is_none() {
        return;
    }
    let args = ["haproxy:tcp:0:interface=127.0.0.1", "."];
    let Some((_server, printed)) = start_server("http_server", &args, None) else {
        return;
    };
    let back: SocketAddr = printed.parse().expect("an address");
    let front = common::closed_loopback_port();
    let _haproxy = Haproxy::start(front, back, send_proxy);
    let mut client = connect(front);
    let me = client.local_addr().unwrap();
    client
        .write_all(b"GET /ip HTTP/1.1\r\nHost: torsion\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut response = String::new();
    client.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("text/plain"), "{response}");
    let body = response.split("\r\n\r\n").nth(1).unwrap();
    assert_eq!(body, me.to_string(), "{response}");
}

#[test]
fn http_server_behind_haproxy_send_proxy_answers_the_clients_address() {
    http_server_behind_haproxy_sees_the_client("send-proxy");
}

#[test]
fn http_server_behind_haproxy_send_proxy_v2_answers_the_clients_address() {
    http_server_behind_haproxy_sees_the_client("send-proxy-v2");
}

#[test]
fn an_unknown_header_keeps_the_sockets_own_peer() {
    let mut reactor = Reactor::new().unwrap();
    let seen = Rc::new(RefCell::new(Seen::default()));
    let addr = listen(&mut reactor, &seen);
    // UNKNOWN (a proxy's own health check, say) names no client.
    let header = b"PROXY UNKNOWN\r\nx".to_vec();
    let client = thread::spawn(move || send_and_read_line(addr, vec![header]));
    let answers = run_until_joined(&mut reactor, vec![client]);
    assert!(answers[0].starts_with("127.0.0.1:"), "{answers:?}");
}
