//! Endpoint strings over real sockets: listening on `tcp:`, `tcp6:`, `tls:` and plain
//! `HOST:PORT` strings (interface and backlog honoured, TLS from PEM files on disk),
//! connecting to `tcp:`, `tls:` and plain strings (timeout honoured), and the errors that
//! name what is wrong.

mod common;

use std::net::{IpAddr, Ipv6Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::certs::TestCa;
use common::machine::require_ipv6_loopback;
use common::*;
use torsion::{
    Address, ClientFactory, ConnectError, Context, DisconnectReason, EndpointError, Protocol,
    Reactor, ServerEndpoint, Target,
};

/// What a client heard.
#[derive(Debug, Default)]
struct Heard {
    peer: Option<SocketAddr>,
    tls: bool,
    echoed: Vec<u8>,
    failed: Option<ConnectError>,
    lost: bool,
}

/// Sends `ping`, waits for its echo, closes.
struct Ping(Shared<Heard>);

impl Protocol for Ping {
    fn connection_made(&mut self, cx: &mut Context<'_>) {
        self.0.borrow_mut().tls = cx.is_tls();
        cx.write(b"ping");
    }

    fn data_received(&mut self, cx: &mut Context<'_>, data: &[u8]) {
        let mut heard = self.0.borrow_mut();
        heard.echoed.extend_from_slice(data);
        if heard.echoed.len() >= 4 {
            cx.lose_connection();
        }
    }
}

impl ClientFactory for Ping {
    type Protocol = Ping;

    fn build_protocol(&mut self, peer: Address) -> Ping {
        self.0.borrow_mut().peer = peer.as_tcp();
        Ping(self.0.clone())
    }

    fn client_connection_failed(&mut self, _reactor: &mut Reactor, error: ConnectError) {
        self.0.borrow_mut().failed = Some(error);
    }

    fn client_connection_lost(&mut self, _reactor: &mut Reactor, _reason: &DisconnectReason) {
        self.0.borrow_mut().lost = true;
    }
}

/// Runs the reactor until the client is done either way; returns what it heard.
fn run_client(reactor: &mut Reactor, heard: &Shared<Heard>) -> Heard {
    run_until(reactor, "the client to finish", || {
        let heard = heard.borrow();
        heard.lost || heard.failed.is_some()
    });
    std::mem::take(&mut *heard.borrow_mut())
}

/// Connects to `endpoint`, pings, and returns what the client heard.
fn ping(reactor: &mut Reactor, endpoint: &str) -> Heard {
    let heard = shared(Heard::default());
    reactor
        .connect_endpoint(endpoint, Ping(heard.clone()))
        .unwrap_or_else(|e| panic!("connect_endpoint({endpoint:?}): {e}"));
    run_client(reactor, &heard)
}

fn assert_echoed(heard: &Heard, peer: SocketAddr) {
    assert!(heard.failed.is_none(), "failed: {:?}", heard.failed);
    assert_eq!(heard.echoed, b"ping");
    assert_eq!(heard.peer, Some(peer));
}

#[test]
fn a_tcp_string_listens_on_its_interface_and_a_tcp_client_string_reaches_it() {
    init_logging();
    let mut reactor = Reactor::new().unwrap();
    let port = reactor
        .listen("tcp:0:interface=127.0.0.1", || Echo)
        .unwrap();
    let addr = port.local_addr();
    assert_eq!(addr.ip(), IpAddr::from([127, 0, 0, 1]));
    assert_ne!(addr.port(), 0);
    let heard = ping(
        &mut reactor,
        &format!("tcp:host=127.0.0.1:port={}:timeout=5", addr.port()),
    );
    assert_echoed(&heard, addr);
    assert!(!heard.tls);
}

#[test]
fn a_plain_address_listens_and_plain_client_strings_connect() {
    init_logging();
    let mut reactor = Reactor::new().unwrap();
    let port = reactor.listen("127.0.0.1:0", || Echo).unwrap();
    let addr = port.local_addr();
    assert_echoed(&ping(&mut reactor, &addr.to_string()), addr);
    assert_echoed(
        &ping(&mut reactor, &format!("tcp:127.0.0.1:{}", addr.port())),
        addr,
    );
}

#[test]
fn localhost_resolves_and_reaches_an_ipv4_server() {
    init_logging();
    let mut reactor = Reactor::new().unwrap();
    let port = reactor.listen("127.0.0.1:0", || Echo).unwrap();
    let addr = port.local_addr();
    // localhost may resolve to ::1 first, where nothing listens: that one is refused and
    // 127.0.0.1 answers.
    assert_echoed(
        &ping(&mut reactor, &format!("localhost:{}", addr.port())),
        addr,
    );
}

#[test]
fn a_parsed_endpoint_listens_too() {
    init_logging();
    let mut reactor = Reactor::new().unwrap();
    let endpoint: ServerEndpoint = "tcp:0:interface=127.0.0.1".parse().unwrap();
    let port = reactor.listen(endpoint, || Echo).unwrap();
    assert_echoed(
        &ping(&mut reactor, &port.local_addr().to_string()),
        port.local_addr(),
    );
}

#[test]
fn a_string_target_connects() {
    init_logging();
    let mut reactor = Reactor::new().unwrap();
    let port = reactor.listen("127.0.0.1:0", || Echo).unwrap();
    let target: Target = port.local_addr().to_string().parse().unwrap();
    let heard = shared(Heard::default());
    reactor.connect(target, Ping(heard.clone()), Default::default());
    assert_echoed(&run_client(&mut reactor, &heard), port.local_addr());
}

/// Connects with std until a connect goes unanswered: how many the accept queue held.
fn fill_accept_queue(addr: SocketAddr) -> Vec<TcpStream> {
    let mut queued = Vec::new();
    while let Ok(stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
        queued.push(stream);
        if queued.len() > 8 {
            break;
        }
    }
    queued
}

#[test]
fn the_backlog_option_sets_the_accept_queue_length() {
    init_logging();
    let mut reactor = Reactor::new().unwrap();
    let port = reactor
        .listen("tcp:0:interface=127.0.0.1:backlog=1", || Echo)
        .unwrap();
    // The reactor does not run, so nothing is accepted: Linux holds backlog + 1 connections
    // in the accept queue and drops further SYNs (the default backlog would hold hundreds).
    let queued = fill_accept_queue(port.local_addr());
    assert!(
        (1..=3).contains(&queued.len()),
        "a backlog of 1 held {} connections",
        queued.len()
    );
}

#[test]
fn a_tcp6_string_listens_on_ipv6() {
    init_logging();
    if !require_ipv6_loopback() {
        return;
    }
    let mut reactor = Reactor::new().unwrap();
    let port = reactor.listen(r"tcp6:0:interface=\:\:1", || Echo).unwrap();
    let addr = port.local_addr();
    assert_eq!(addr.ip(), IpAddr::V6(Ipv6Addr::LOCALHOST));
    let heard = ping(
        &mut reactor,
        &format!("tcp:host=[::1]:port={}", addr.port()),
    );
    assert_echoed(&heard, addr);
    assert_echoed(&ping(&mut reactor, &addr.to_string()), addr);
}

/// A directory of PEM files removed when dropped.
struct PemDir(PathBuf);

impl PemDir {
    /// A test CA's certificate (`ca.pem`), a certificate it issued for `localhost` and
    /// 127.0.0.1 (`cert.pem`), its key (`key.pem`), and both in one file (`both.pem`).
    fn new(name: &str) -> PemDir {
        let dir =
            std::env::temp_dir().join(format!("torsion-endpoints-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ca = TestCa::new("endpoints test CA");
        let issued = ca.issue(&["localhost", "127.0.0.1"]);
        std::fs::write(dir.join("ca.pem"), &ca.pem).unwrap();
        std::fs::write(dir.join("cert.pem"), &issued.cert_pem).unwrap();
        std::fs::write(dir.join("key.pem"), &issued.key_pem).unwrap();
        let both = format!("{}{}", issued.cert_pem, issued.key_pem);
        std::fs::write(dir.join("both.pem"), both).unwrap();
        PemDir(dir)
    }

    fn file(&self, name: &str) -> String {
        path_text(&self.0.join(name))
    }
}

impl Drop for PemDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A path as endpoint-string text: its colons escaped.
fn path_text(path: &Path) -> String {
    path.to_str().unwrap().replace(':', r"\:")
}

#[test]
fn a_tls_string_listens_with_pem_files_and_a_tls_client_string_verifies_it() {
    init_logging();
    let pems = PemDir::new("tls");
    let mut reactor = Reactor::new().unwrap();
    let server = format!(
        "tls:0:interface=127.0.0.1:certKey={}:privateKey={}",
        pems.file("cert.pem"),
        pems.file("key.pem")
    );
    let port = reactor.listen(server.as_str(), || Echo).unwrap();
    let addr = port.local_addr();
    let client = format!(
        "tls:host=127.0.0.1:port={}:trustRoots={}",
        addr.port(),
        pems.file("ca.pem")
    );
    let heard = ping(&mut reactor, &client);
    assert_echoed(&heard, addr);
    assert!(heard.tls, "the client's connection is TLS");
}

#[test]
fn a_tls_key_file_may_hold_the_certificate_too() {
    init_logging();
    let pems = PemDir::new("both");
    let mut reactor = Reactor::new().unwrap();
    let server = format!(
        "ssl:0:interface=127.0.0.1:privateKey={}",
        pems.file("both.pem")
    );
    let port = reactor.listen(server, || Echo).unwrap();
    let client = format!(
        "tls:127.0.0.1:{}:trustRoots={}",
        port.local_addr().port(),
        pems.file("ca.pem")
    );
    assert_echoed(&ping(&mut reactor, &client), port.local_addr());
}

#[test]
fn a_tls_client_string_refuses_a_server_its_roots_do_not_trust() {
    init_logging();
    let pems = PemDir::new("untrusted");
    let other = PemDir::new("other-ca");
    let mut reactor = Reactor::new().unwrap();
    let server = format!(
        "tls:0:interface=127.0.0.1:privateKey={}",
        pems.file("both.pem")
    );
    let port = reactor.listen(server, || Echo).unwrap();
    let client = format!(
        "tls:host=127.0.0.1:port={}:trustRoots={}",
        port.local_addr().port(),
        other.file("ca.pem")
    );
    let heard = ping(&mut reactor, &client);
    assert!(
        matches!(heard.failed, Some(ConnectError::Tls(_))),
        "{:?}",
        heard.failed
    );
}

#[test]
fn a_client_string_timeout_bounds_the_connect() {
    init_logging();
    let silent = SilentListener::new();
    let mut reactor = Reactor::new().unwrap();
    let started = Instant::now();
    let heard = ping(
        &mut reactor,
        &format!(
            "tcp:host=127.0.0.1:port={}:timeout=0.2",
            silent.addr().port()
        ),
    );
    assert!(
        matches!(heard.failed, Some(ConnectError::TimedOut(_))),
        "{:?}",
        heard.failed
    );
    // Far below the 30-second default: the string's timeout applied.
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn bad_strings_fail_listen_and_connect_naming_the_bad_part() {
    init_logging();
    let mut reactor = Reactor::new().unwrap();
    let error = reactor.listen("tcp:80:bakclog=5", || Echo).unwrap_err();
    assert!(matches!(error, EndpointError::Parse(_)), "{error:?}");
    assert_eq!(
        error.to_string(),
        r#"tcp: unknown option "bakclog" (expected interface, backlog, reuseport)"#
    );
    let heard = shared(Heard::default());
    let error = reactor
        .connect_endpoint("tcp:host=localhost", Ping(heard))
        .unwrap_err();
    assert_eq!(error.to_string(), "tcp: missing the port (port=PORT)");
}

#[test]
fn missing_tls_files_fail_listening_naming_the_file() {
    init_logging();
    let mut reactor = Reactor::new().unwrap();
    let error = reactor
        .listen(
            "tls:0:interface=127.0.0.1:privateKey=/nonexistent/key.pem",
            || Echo,
        )
        .unwrap_err();
    assert!(matches!(error, EndpointError::Tls { .. }), "{error:?}");
    assert!(
        error.to_string().contains("/nonexistent/key.pem"),
        "{error}"
    );
}

#[test]
fn an_address_in_use_fails_listening_naming_the_endpoint() {
    init_logging();
    let mut reactor = Reactor::new().unwrap();
    let taken = std::net::TcpListener::bind(any_loopback_port()).unwrap();
    let port = taken.local_addr().unwrap().port();
    let error = reactor
        .listen(format!("tcp:{port}:interface=127.0.0.1"), || Echo)
        .unwrap_err();
    let EndpointError::Io { error: io, .. } = &error else {
        panic!("not an I/O error: {error:?}");
    };
    assert_eq!(io.kind(), std::io::ErrorKind::AddrInUse);
    assert!(
        error
            .to_string()
            .starts_with(&format!("tcp 127.0.0.1:{port}: ")),
        "{error}"
    );
}

#[test]
fn two_reactors_listen_on_one_port_with_reuseport_yes_and_not_without() {
    let mut first = Reactor::new().unwrap();
    let port = first
        .listen("tcp:0:interface=127.0.0.1:reuseport=yes", || ReuseEcho)
        .unwrap()
        .local_addr()
        .port();
    let mut second = Reactor::new().unwrap();
    let shared = format!("tcp:{port}:interface=127.0.0.1:reuseport=yes");
    assert_eq!(
        second
            .listen(shared.as_str(), || ReuseEcho)
            .unwrap()
            .local_addr()
            .port(),
        port
    );
    let alone = format!("tcp:{port}:interface=127.0.0.1");
    let refused = second.listen(alone.as_str(), || ReuseEcho).unwrap_err();
    assert!(refused.to_string().contains("in use"), "{refused}");
}

struct ReuseEcho;

impl torsion::Protocol for ReuseEcho {
    fn data_received(&mut self, cx: &mut torsion::Context<'_>, data: &[u8]) {
        cx.write(data);
    }
}
