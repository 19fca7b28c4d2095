//! TLS over loopback: echo of 16 MiB each way, close_notify told from an abrupt close,
//! plaintext sent to a TLS port, certificates the client refuses (unknown CA, wrong name,
//! expired), mutual TLS with and without a client certificate, SNI and ALPN, STARTTLS with
//! the ClientHello in the same segment as the command, handshake timeouts, and OpenSSL's
//! `s_client` as a real peer. Certificates are made by rcgen in each test.

mod common;

use std::cell::RefCell;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::rc::Rc;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use common::certs::TestCa;
use common::*;
use torsion::rustls::pki_types::CertificateDer;
use torsion::tls::{self, ClientAuth, TlsError, TlsOptions};
use torsion::{
    ClientFactory, ConnectError, Context, DisconnectReason, ManualClock, Protocol, Reactor,
};

/// What a test protocol saw on one connection.
#[derive(Default, Debug)]
struct Seen {
    made: bool,
    received: Vec<u8>,
    eof: bool,
    lost: Option<Reason>,
    failed: Option<String>,
    failed_tls: Option<TlsErrorKind>,
    peer_certificate: Option<CertificateDer<'static>>,
    sni: Option<String>,
    alpn: Option<Vec<u8>>,
    handshake_completed: bool,
    handed_back: usize,
}

/// `TlsError` reduced to something comparable.
#[derive(Debug, Clone, PartialEq, Eq)]
enum TlsErrorKind {
    UnknownIssuer,
    NotValidForName,
    Expired,
    PeerRejected,
    HandshakeTimeout,
    Other(String),
}

fn kind(e: &TlsError) -> TlsErrorKind {
    match e {
        TlsError::UnknownIssuer => TlsErrorKind::UnknownIssuer,
        TlsError::NotValidForName => TlsErrorKind::NotValidForName,
        TlsError::Expired => TlsErrorKind::Expired,
        TlsError::PeerRejected(_) => TlsErrorKind::PeerRejected,
        TlsError::HandshakeTimeout(_) => TlsErrorKind::HandshakeTimeout,
        other => TlsErrorKind::Other(other.to_string()),
    }
}

/// Records what happens, writes `greeting` once made, and does what `on_data` says with each
/// chunk (echo by default).
struct Recorder {
    seen: Shared<Seen>,
    greeting: Vec<u8>,
    on_data: fn(&mut Context<'_>, &[u8]),
}

fn echo(cx: &mut Context<'_>, data: &[u8]) {
    cx.write(data);
}

fn ignore(_: &mut Context<'_>, _: &[u8]) {}

impl Recorder {
    fn new(seen: &Shared<Seen>) -> Recorder {
        Recorder {
            seen: seen.clone(),
            greeting: Vec::new(),
            on_data: echo,
        }
    }

    fn note_identity(&self, cx: &Context<'_>) {
        let mut seen = self.seen.borrow_mut();
        seen.peer_certificate = cx.peer_certificates().and_then(|c| c.first().cloned());
        seen.sni = cx.sni_name().map(str::to_string);
        seen.alpn = cx.alpn_protocol().map(<[u8]>::to_vec);
    }
}

impl Protocol for Recorder {
    fn connection_made(&mut self, cx: &mut Context<'_>) {
        assert!(cx.is_tls(), "a TLS connection is made only once it is TLS");
        self.seen.borrow_mut().made = true;
        self.note_identity(cx);
        if !self.greeting.is_empty() {
            cx.write(&self.greeting);
        }
    }

    fn data_received(&mut self, cx: &mut Context<'_>, data: &[u8]) {
        self.seen.borrow_mut().received.extend_from_slice(data);
        (self.on_data)(cx, data);
    }

    fn eof_received(&mut self, cx: &mut Context<'_>) {
        self.seen.borrow_mut().eof = true;
        cx.lose_connection();
    }

    fn connection_lost(&mut self, _cx: &mut Context<'_>, reason: &DisconnectReason) {
        self.seen.borrow_mut().lost = Some(reason.into());
    }

    fn tls_handshake_completed(&mut self, cx: &mut Context<'_>) {
        self.seen.borrow_mut().handshake_completed = true;
        self.note_identity(cx);
    }
}

/// A client factory building one [`Recorder`] and recording a failed attempt.
struct RecorderFactory(Option<Recorder>, Shared<Seen>);

fn client(seen: &Shared<Seen>, greeting: &[u8]) -> RecorderFactory {
    let mut recorder = Recorder::new(seen);
    recorder.greeting = greeting.to_vec();
    recorder.on_data = ignore;
    RecorderFactory(Some(recorder), seen.clone())
}

impl ClientFactory for RecorderFactory {
    type Protocol = Recorder;

    fn build_protocol(&mut self, _peer: SocketAddr) -> Recorder {
        self.0.take().expect("one connection per factory")
    }

    fn client_connection_failed(&mut self, _reactor: &mut Reactor, error: ConnectError) {
        let mut seen = self.1.borrow_mut();
        if let ConnectError::Tls(e) = &error {
            seen.failed_tls = Some(kind(e));
        }
        seen.failed = Some(error.to_string());
    }
}

/// A TLS echo server for "localhost" certified by `ca`, recording every connection.
fn echo_server(
    reactor: &mut Reactor,
    config: torsion::rustls::ServerConfig,
) -> (SocketAddr, Shared<Vec<Shared<Seen>>>) {
    let all = shared(Vec::new());
    let a = all.clone();
    let port = reactor
        .listen_tls(any_loopback_port(), config, move || {
            let seen = shared(Seen::default());
            a.borrow_mut().push(seen.clone());
            Recorder::new(&seen)
        })
        .unwrap();
    (port.local_addr(), all)
}

fn localhost_server(ca: &TestCa) -> torsion::rustls::ServerConfig {
    let identity = ca.issue(&["localhost"]).identity();
    tls::server_config(identity, ClientAuth::None).unwrap()
}

fn trusting(ca: &TestCa) -> Arc<torsion::rustls::ClientConfig> {
    Arc::new(tls::client_config(ca.roots()).unwrap())
}

/// Connects a recording client with `config` to `addr` as `name`, and runs until it is made
/// and has received `expect` bytes, or has failed or been lost.
fn run_client(
    reactor: &mut Reactor,
    addr: SocketAddr,
    name: &str,
    config: Arc<torsion::rustls::ClientConfig>,
    greeting: &[u8],
    expect: usize,
) -> Shared<Seen> {
    let seen = shared(Seen::default());
    reactor.connect_tls(addr, name, config, client(&seen, greeting));
    run_until(reactor, "the client to finish", || {
        let s = seen.borrow();
        s.failed.is_some() || s.lost.is_some() || s.made && s.received.len() >= expect
    });
    seen
}

#[test]
fn a_tls_client_and_server_echo_and_see_each_other() {
    init_logging();
    let ca = TestCa::new("test CA");
    let mut reactor = Reactor::new().unwrap();
    let (addr, servers) = echo_server(&mut reactor, localhost_server(&ca));
    let seen = run_client(&mut reactor, addr, "localhost", trusting(&ca), b"hello", 5);
    let seen = seen.borrow();
    assert_eq!(seen.received, b"hello", "{seen:?}");
    assert!(
        seen.peer_certificate.is_some(),
        "the client sees the server's certificate"
    );
    let servers = servers.borrow();
    let server = servers[0].borrow();
    assert!(server.made);
    assert_eq!(server.sni.as_deref(), Some("localhost"));
    assert_eq!(
        server.peer_certificate, None,
        "no client certificate was asked for"
    );
}

/// Sends `total` bytes of the test pattern under flow control, checks every echoed byte,
/// then closes.
struct PatternPump {
    total: usize,
    sent: usize,
    received: usize,
    block: Vec<u8>,
    paused: bool,
    done: Rc<RefCell<Option<(usize, Reason)>>>,
}

impl PatternPump {
    fn pump(&mut self, cx: &mut Context<'_>) {
        while !self.paused && self.sent < self.total {
            let start = self.sent % PATTERN_PERIOD;
            let len = (PATTERN_PERIOD - start).min(self.total - self.sent);
            cx.write(&self.block[start..start + len]);
            self.sent += len;
            if cx.queued_bytes() > 256 * 1024 {
                break; // the rest on resume_writing, or the next turn's data_received
            }
        }
    }
}

impl Protocol for PatternPump {
    fn connection_made(&mut self, cx: &mut Context<'_>) {
        self.pump(cx);
    }

    fn data_received(&mut self, cx: &mut Context<'_>, data: &[u8]) {
        if let Err(at) = check_pattern(&self.block, self.received, data) {
            panic!("echoed byte {at} differs from the byte sent");
        }
        self.received += data.len();
        if self.received == self.total {
            cx.lose_connection();
        } else {
            self.pump(cx);
        }
    }

    fn pause_writing(&mut self, _cx: &mut Context<'_>) {
        self.paused = true;
    }

    fn resume_writing(&mut self, cx: &mut Context<'_>) {
        self.paused = false;
        self.pump(cx);
    }

    fn connection_lost(&mut self, _cx: &mut Context<'_>, reason: &DisconnectReason) {
        *self.done.borrow_mut() = Some((self.received, reason.into()));
    }
}

#[test]
fn sixteen_mib_each_way_through_a_tls_connection_arrive_intact() {
    const TOTAL: usize = 16 * 1024 * 1024;
    init_logging();
    let ca = TestCa::new("test CA");
    let mut reactor = Reactor::new().unwrap();
    let port = reactor
        .listen_tls(any_loopback_port(), localhost_server(&ca), || Echo)
        .unwrap();
    let done = Rc::new(RefCell::new(None));
    let d = done.clone();
    let started = std::time::Instant::now();
    reactor.connect_tls(port.local_addr(), "localhost", trusting(&ca), move || {
        PatternPump {
            total: TOTAL,
            sent: 0,
            received: 0,
            block: pattern_block(),
            paused: false,
            done: d.clone(),
        }
    });
    run_until(&mut reactor, "the client to finish", || {
        done.borrow().is_some()
    });
    eprintln!("16 MiB each way over TLS took {:?}", started.elapsed());
    let (received, reason) = done.take().unwrap();
    assert_eq!(received, TOTAL, "every byte came back");
    assert_eq!(reason, Reason::Closed);
}

/// Closes when told: "close" with close_notify, "abort" abruptly.
fn close_on_command(cx: &mut Context<'_>, data: &[u8]) {
    match data {
        b"close" => cx.lose_connection(),
        b"abort" => cx.abort_connection(),
        _ => cx.write(data),
    }
}

#[test]
fn close_notify_and_an_abrupt_close_are_told_apart() {
    init_logging();
    let ca = TestCa::new("test CA");
    let mut reactor = Reactor::new().unwrap();
    let all = shared(Vec::new());
    let a = all.clone();
    let port = reactor
        .listen_tls(any_loopback_port(), localhost_server(&ca), move || {
            let seen = shared(Seen::default());
            a.borrow_mut().push(seen.clone());
            let mut recorder = Recorder::new(&seen);
            recorder.on_data = close_on_command;
            recorder
        })
        .unwrap();
    let clean = run_client(
        &mut reactor,
        port.local_addr(),
        "localhost",
        trusting(&ca),
        b"close",
        usize::MAX,
    );
    let abrupt = run_client(
        &mut reactor,
        port.local_addr(),
        "localhost",
        trusting(&ca),
        b"abort",
        usize::MAX,
    );

    let clean = clean.borrow();
    assert!(clean.eof, "close_notify reaches the client as eof_received");
    assert_eq!(clean.lost, Some(Reason::Closed));
    let abrupt = abrupt.borrow();
    assert!(!abrupt.eof, "an abrupt close is no clean EOF");
    assert_eq!(abrupt.lost, Some(Reason::Truncated));
    run_until(&mut reactor, "both server connections to end", || {
        all.borrow().iter().all(|s| s.borrow().lost.is_some())
    });
    let all = all.borrow();
    assert_eq!(all[0].borrow().lost, Some(Reason::Closed));
    assert_eq!(all[1].borrow().lost, Some(Reason::Aborted));
}

#[test]
fn a_client_that_drops_tcp_without_close_notify_is_truncated_on_the_server() {
    init_logging();
    let ca = TestCa::new("test CA");
    let mut reactor = Reactor::new().unwrap();
    let (addr, servers) = echo_server(&mut reactor, localhost_server(&ca));
    let seen = shared(Seen::default());
    let mut factory = client(&seen, b"bye");
    factory.0.as_mut().unwrap().on_data = |cx, _| cx.abort_connection();
    reactor.connect_tls(addr, "localhost", trusting(&ca), factory);
    run_until(&mut reactor, "the server connection to end", || {
        servers
            .borrow()
            .first()
            .is_some_and(|s| s.borrow().lost.is_some())
    });
    let servers = servers.borrow();
    let server = servers[0].borrow();
    assert_eq!(server.lost, Some(Reason::Truncated));
    assert!(!server.eof);
}

#[test]
fn plaintext_sent_to_a_tls_port_closes_that_connection_only() {
    init_logging();
    let ca = TestCa::new("test CA");
    let mut reactor = Reactor::new().unwrap();
    let (addr, servers) = echo_server(&mut reactor, localhost_server(&ca));
    let plaintext = thread::spawn(move || {
        let mut stream = connect(addr);
        stream
            .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .unwrap();
        let (reply, end) = read_to_end(&mut stream);
        (reply, end.is_ok() || end.is_err())
    });
    let (reply, _) = run_until_joined(&mut reactor, vec![plaintext]).remove(0);
    assert!(
        !reply.windows(4).any(|w| w == b"HTTP"),
        "no plaintext answer, at most a TLS alert"
    );
    // The port still serves TLS, and the plaintext peer never reached a protocol.
    let seen = run_client(
        &mut reactor,
        addr,
        "localhost",
        trusting(&ca),
        b"still here",
        10,
    );
    assert_eq!(seen.borrow().received, b"still here");
    let servers = servers.borrow();
    assert_eq!(servers.len(), 2, "a protocol was built for each connection");
    assert!(
        !servers[0].borrow().made,
        "the plaintext peer was never made"
    );
    assert_eq!(
        servers[0].borrow().lost,
        None,
        "nor lost: it was never heard of"
    );
}

/// Connects a client trusting `trusted` to a server presenting `identity`, as `name`; the
/// handshake must fail on the client, and the server's protocol never be made.
fn refused(identity: tls::Identity, trusted: &TestCa, name: &str) -> TlsErrorKind {
    init_logging();
    let mut reactor = Reactor::new().unwrap();
    let config = tls::server_config(identity, ClientAuth::None).unwrap();
    let (addr, servers) = echo_server(&mut reactor, config);
    let seen = run_client(&mut reactor, addr, name, trusting(trusted), b"hello", 5);
    let seen = seen.borrow();
    assert!(!seen.made, "the client protocol is never built: {seen:?}");
    assert!(servers.borrow().iter().all(|s| !s.borrow().made));
    eprintln!("refused: {:?}", seen.failed);
    seen.failed_tls.clone().expect("a TLS failure")
}

#[test]
fn the_client_refuses_a_certificate_from_an_unknown_ca() {
    let (ca, other) = (TestCa::new("real CA"), TestCa::new("other CA"));
    let kind = refused(other.issue(&["localhost"]).identity(), &ca, "localhost");
    assert_eq!(kind, TlsErrorKind::UnknownIssuer);
}

#[test]
fn the_client_refuses_a_certificate_for_another_name() {
    let ca = TestCa::new("test CA");
    let kind = refused(ca.issue(&["example.org"]).identity(), &ca, "localhost");
    assert_eq!(kind, TlsErrorKind::NotValidForName);
}

#[test]
fn the_client_refuses_an_expired_certificate() {
    let ca = TestCa::new("test CA");
    let kind = refused(
        ca.issue_expired(&["localhost"]).identity(),
        &ca,
        "localhost",
    );
    assert_eq!(kind, TlsErrorKind::Expired);
}

#[test]
fn an_ip_address_can_be_the_server_name() {
    init_logging();
    let ca = TestCa::new("test CA");
    let mut reactor = Reactor::new().unwrap();
    let identity = ca.issue(&["127.0.0.1"]).identity();
    let config = tls::server_config(identity, ClientAuth::None).unwrap();
    let (addr, _) = echo_server(&mut reactor, config);
    let seen = run_client(&mut reactor, addr, "127.0.0.1", trusting(&ca), b"ip", 2);
    assert_eq!(seen.borrow().received, b"ip");
}

#[test]
fn an_invalid_server_name_fails_the_attempt_on_the_next_turn() {
    let ca = TestCa::new("test CA");
    let mut reactor = Reactor::new().unwrap();
    let seen = shared(Seen::default());
    let addr = closed_loopback_port();
    reactor.connect_tls(addr, "not a name!", trusting(&ca), client(&seen, b""));
    assert!(
        seen.borrow().failed.is_none(),
        "never from inside connect_tls"
    );
    run_until(&mut reactor, "the failure", || {
        seen.borrow().failed.is_some()
    });
    assert_eq!(
        seen.borrow().failed_tls,
        Some(TlsErrorKind::Other(
            TlsError::InvalidServerName("not a name!".into()).to_string()
        ))
    );
}

fn mutual_server(ca: &TestCa) -> torsion::rustls::ServerConfig {
    let identity = ca.issue(&["localhost"]).identity();
    tls::server_config(identity, ClientAuth::Required(ca.roots())).unwrap()
}

#[test]
fn mutual_tls_the_server_sees_the_client_certificate() {
    init_logging();
    let ca = TestCa::new("test CA");
    let mut reactor = Reactor::new().unwrap();
    let (addr, servers) = echo_server(&mut reactor, mutual_server(&ca));
    let client_cert = ca.issue(&["client.example"]);
    let config = tls::client_config_with_identity(ca.roots(), client_cert.identity()).unwrap();
    let seen = run_client(&mut reactor, addr, "localhost", Arc::new(config), b"me", 2);
    assert_eq!(seen.borrow().received, b"me");
    let servers = servers.borrow();
    let server = servers[0].borrow();
    assert_eq!(
        server.peer_certificate.as_ref(),
        Some(&client_cert.cert),
        "the server sees the very certificate the client presented, in connection_made"
    );
}

#[test]
fn mutual_tls_without_a_client_certificate_is_refused() {
    init_logging();
    let ca = TestCa::new("test CA");
    let mut reactor = Reactor::new().unwrap();
    let (addr, servers) = echo_server(&mut reactor, mutual_server(&ca));
    let seen = run_client(&mut reactor, addr, "localhost", trusting(&ca), b"me", 2);
    let seen = seen.borrow();
    // TLS 1.3: the client finishes its side before the server judges its (missing)
    // certificate, so the refusal may come as a failed connect or as a lost connection.
    let refused = seen.failed_tls == Some(TlsErrorKind::PeerRejected)
        || matches!(&seen.lost, Some(Reason::Tls(e)) if e.contains("CertificateRequired"));
    assert!(refused, "{seen:?}");
    assert!(seen.received.is_empty());
    assert!(servers.borrow().iter().all(|s| !s.borrow().made));
}

#[test]
fn mutual_tls_refuses_a_client_certificate_from_another_ca() {
    init_logging();
    let (ca, other) = (TestCa::new("test CA"), TestCa::new("other CA"));
    let mut reactor = Reactor::new().unwrap();
    let (addr, servers) = echo_server(&mut reactor, mutual_server(&ca));
    let identity = other.issue(&["client.example"]).identity();
    let config = tls::client_config_with_identity(ca.roots(), identity).unwrap();
    let seen = run_client(&mut reactor, addr, "localhost", Arc::new(config), b"me", 2);
    assert!(seen.borrow().received.is_empty(), "{:?}", seen.borrow());
    assert!(servers.borrow().iter().all(|s| !s.borrow().made));
}

#[test]
fn sni_picks_the_certificate_for_the_name_asked() {
    init_logging();
    let ca = TestCa::new("test CA");
    let (alpha, beta) = (ca.issue(&["alpha.test"]), ca.issue(&["beta.test"]));
    let config = tls::server_config_with_sni(
        [
            ("alpha.test", alpha.identity()),
            ("beta.test", beta.identity()),
        ],
        ClientAuth::None,
    )
    .unwrap();
    let mut reactor = Reactor::new().unwrap();
    let (addr, servers) = echo_server(&mut reactor, config);
    let a = run_client(&mut reactor, addr, "alpha.test", trusting(&ca), b"a", 1);
    let b = run_client(&mut reactor, addr, "beta.test", trusting(&ca), b"b", 1);
    assert_eq!(a.borrow().peer_certificate.as_ref(), Some(&alpha.cert));
    assert_eq!(b.borrow().peer_certificate.as_ref(), Some(&beta.cert));
    assert_eq!(
        servers.borrow()[0].borrow().sni.as_deref(),
        Some("alpha.test")
    );
    assert_eq!(
        servers.borrow()[1].borrow().sni.as_deref(),
        Some("beta.test")
    );
    let unknown = run_client(&mut reactor, addr, "gamma.test", trusting(&ca), b"c", 1);
    assert!(
        unknown.borrow().failed.is_some(),
        "no certificate for an unknown name"
    );
}

#[test]
fn alpn_is_agreed_on_both_sides() {
    init_logging();
    let ca = TestCa::new("test CA");
    let mut server = localhost_server(&ca);
    server.alpn_protocols = vec![b"http/1.1".to_vec()];
    let mut reactor = Reactor::new().unwrap();
    let (addr, servers) = echo_server(&mut reactor, server);
    let mut config = tls::client_config(ca.roots()).unwrap();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let seen = run_client(&mut reactor, addr, "localhost", Arc::new(config), b"x", 1);
    assert_eq!(seen.borrow().alpn.as_deref(), Some(&b"http/1.1"[..]));
    assert_eq!(
        servers.borrow()[0].borrow().alpn.as_deref(),
        Some(&b"http/1.1"[..])
    );
}

#[test]
fn a_server_drops_a_client_that_never_completes_its_handshake() {
    init_logging();
    let ca = TestCa::new("test CA");
    let clock = ManualClock::new();
    let mut reactor = Reactor::with_clock(clock.clone()).unwrap();
    let options = TlsOptions::with_handshake_timeout(Duration::from_secs(5));
    let built = shared(0);
    let b = built.clone();
    let port = reactor
        .listen_tls_with(
            any_loopback_port(),
            localhost_server(&ca),
            move || {
                *b.borrow_mut() += 1;
                Echo
            },
            options,
        )
        .unwrap();
    let mut silent = connect(port.local_addr());
    run_until(&mut reactor, "the connection to be accepted", || {
        *built.borrow() == 1
    });
    clock.advance(Duration::from_secs(5));
    reactor.iterate(Duration::ZERO).unwrap();
    let reader = thread::spawn(move || read_to_end(&mut silent));
    let (bytes, end) = run_until_joined(&mut reactor, vec![reader]).remove(0);
    assert!(
        bytes.is_empty() && end.is_ok(),
        "closed without a word: {bytes:?} {end:?}"
    );
}

#[test]
fn a_client_whose_server_never_answers_the_handshake_fails_with_a_timeout() {
    init_logging();
    let ca = TestCa::new("test CA");
    let clock = ManualClock::new();
    let mut reactor = Reactor::with_clock(clock.clone()).unwrap();
    let mute = std::net::TcpListener::bind(any_loopback_port()).unwrap();
    let seen = shared(Seen::default());
    let options = torsion::ConnectOptions::default().handshake_timeout(Duration::from_secs(3));
    let addr = mute.local_addr().unwrap();
    reactor.connect_tls_with(
        addr,
        "localhost",
        trusting(&ca),
        client(&seen, b""),
        options,
    );
    let (_held, _) = mute.accept().unwrap();
    // Let the connect complete and the ClientHello go out before time moves.
    for _ in 0..10 {
        reactor.iterate(Duration::from_millis(10)).unwrap();
    }
    clock.advance(Duration::from_secs(3));
    run_until(&mut reactor, "the failure", || {
        seen.borrow().failed.is_some()
    });
    assert_eq!(
        seen.borrow().failed_tls,
        Some(TlsErrorKind::HandshakeTimeout)
    );
}

/// A plaintext line echo with a STARTTLS command: "STARTTLS\r\n" is answered "OK\r\n" in
/// plaintext, then the connection switches to TLS, handing back whatever followed the
/// command in the same read (the client's ClientHello, if it did not wait for the OK).
struct StartTlsServer {
    config: Arc<torsion::rustls::ServerConfig>,
    buffer: Vec<u8>,
    seen: Shared<Seen>,
}

impl Protocol for StartTlsServer {
    fn data_received(&mut self, cx: &mut Context<'_>, data: &[u8]) {
        if cx.is_tls() {
            self.seen.borrow_mut().received.extend_from_slice(data);
            return cx.write(data);
        }
        self.buffer.extend_from_slice(data);
        while let Some(end) = self.buffer.windows(2).position(|w| w == b"\r\n") {
            let line: Vec<u8> = self.buffer.drain(..end + 2).collect();
            if line == b"STARTTLS\r\n" {
                cx.write(b"OK\r\n");
                let rest = std::mem::take(&mut self.buffer);
                self.seen.borrow_mut().handed_back = rest.len();
                cx.start_tls_server(self.config.clone(), &rest).unwrap();
                return;
            }
            cx.write(&line);
        }
    }

    fn tls_handshake_completed(&mut self, cx: &mut Context<'_>) {
        let mut seen = self.seen.borrow_mut();
        seen.handshake_completed = true;
        seen.sni = cx.sni_name().map(str::to_string);
    }

    fn connection_lost(&mut self, _cx: &mut Context<'_>, reason: &DisconnectReason) {
        self.seen.borrow_mut().lost = Some(reason.into());
    }
}

fn starttls_server(reactor: &mut Reactor, ca: &TestCa) -> (SocketAddr, Shared<Seen>) {
    let config = Arc::new(localhost_server(ca));
    let seen = shared(Seen::default());
    let s = seen.clone();
    let port = reactor
        .listen_tcp(any_loopback_port(), move || StartTlsServer {
            config: config.clone(),
            buffer: Vec::new(),
            seen: s.clone(),
        })
        .unwrap();
    (port.local_addr(), seen)
}

#[test]
fn start_tls_with_the_client_hello_in_the_same_segment_as_the_command() {
    init_logging();
    let ca = TestCa::new("test CA");
    let mut reactor = Reactor::new().unwrap();
    let (addr, server) = starttls_server(&mut reactor, &ca);
    let config = trusting(&ca);
    let client = thread::spawn(move || {
        let mut tcp = connect(addr);
        assert_eq!(round_trip(&mut tcp, b"PLAIN\r\n"), b"PLAIN\r\n");
        let name = "localhost".try_into().unwrap();
        let mut conn = torsion::rustls::ClientConnection::new(config, name).unwrap();
        let mut command = b"STARTTLS\r\n".to_vec();
        conn.write_tls(&mut command).unwrap(); // the ClientHello, right behind the command
        tcp.write_all(&command).unwrap();
        assert_eq!(
            read_exact(&mut tcp, 4),
            b"OK\r\n",
            "the answer is plaintext"
        );
        let mut tls = torsion::rustls::Stream::new(&mut conn, &mut tcp);
        tls.write_all(b"secret").unwrap();
        let mut echo = [0; 6];
        tls.read_exact(&mut echo).unwrap();
        conn.send_close_notify();
        conn.write_tls(&mut tcp).unwrap();
        echo
    });
    let echo = run_until_joined(&mut reactor, vec![client]).remove(0);
    assert_eq!(&echo, b"secret");
    run_until(&mut reactor, "the server connection to close", || {
        server.borrow().lost.is_some()
    });
    let server = server.borrow();
    assert!(server.handshake_completed);
    assert!(
        server.handed_back > 0,
        "the ClientHello came in the command's read"
    );
    assert_eq!(server.sni.as_deref(), Some("localhost"));
    assert_eq!(
        server.lost,
        Some(Reason::Closed),
        "close_notify, then a clean close"
    );
    assert_eq!(
        server.received, b"secret",
        "over TLS the protocol got the secret alone: the ClientHello handed back was not data"
    );
}

/// A plaintext client that asks for STARTTLS, upgrades on "OK", then sends a secret over TLS
/// and closes when it comes back.
struct StartTlsClient {
    config: Arc<torsion::rustls::ClientConfig>,
    received: Vec<u8>,
    seen: Shared<Seen>,
}

impl Protocol for StartTlsClient {
    fn connection_made(&mut self, cx: &mut Context<'_>) {
        cx.write(b"PLAIN\r\n");
    }

    fn data_received(&mut self, cx: &mut Context<'_>, data: &[u8]) {
        self.received.extend_from_slice(data);
        match &self.received[..] {
            b"PLAIN\r\n" => cx.write(b"STARTTLS\r\n"),
            b"PLAIN\r\nOK\r\n" => cx
                .start_tls_client(self.config.clone(), "localhost")
                .unwrap(),
            b"PLAIN\r\nOK\r\nsecret" => cx.lose_connection(),
            _ => {}
        }
    }

    fn tls_handshake_completed(&mut self, cx: &mut Context<'_>) {
        self.seen.borrow_mut().handshake_completed = true;
        self.seen.borrow_mut().peer_certificate =
            cx.peer_certificates().and_then(|c| c.first().cloned());
        cx.write(b"secret");
    }

    fn connection_lost(&mut self, _cx: &mut Context<'_>, reason: &DisconnectReason) {
        let mut seen = self.seen.borrow_mut();
        seen.received = self.received.clone();
        seen.lost = Some(reason.into());
    }
}

#[test]
fn start_tls_client_and_server_after_a_plaintext_exchange() {
    init_logging();
    let ca = TestCa::new("test CA");
    let mut reactor = Reactor::new().unwrap();
    let (addr, server) = starttls_server(&mut reactor, &ca);
    let seen = shared(Seen::default());
    let s = seen.clone();
    let config = trusting(&ca);
    reactor.connect_tcp(addr, move || StartTlsClient {
        config: config.clone(),
        received: Vec::new(),
        seen: s.clone(),
    });
    run_until(&mut reactor, "both ends to close", || {
        seen.borrow().lost.is_some() && server.borrow().lost.is_some()
    });
    let seen = seen.borrow();
    assert_eq!(seen.received, b"PLAIN\r\nOK\r\nsecret");
    assert!(seen.handshake_completed && seen.peer_certificate.is_some());
    assert_eq!(seen.lost, Some(Reason::Closed));
    assert_eq!(server.borrow().lost, Some(Reason::Closed));
    assert!(server.borrow().handshake_completed);
}

#[test]
fn openssl_s_client_talks_to_a_tls_server() {
    if Command::new("openssl").arg("version").output().is_err() {
        eprintln!("skipped: openssl is not installed");
        return;
    }
    init_logging();
    let ca = TestCa::new("test CA");
    let dir = std::env::temp_dir().join(format!("torsion-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, &ca.pem).unwrap();
    let mut reactor = Reactor::new().unwrap();
    let mut config = localhost_server(&ca);
    config.alpn_protocols = vec![b"echo".to_vec()];
    let (addr, servers) = echo_server(&mut reactor, config);
    let _watchdog = Watchdog::arm(Duration::from_secs(30), "openssl s_client");
    let client = thread::spawn(move || {
        let mut child = Command::new("openssl")
            .args([
                "s_client",
                "-connect",
                &addr.to_string(),
                "-servername",
                "localhost",
            ])
            .args([
                "-verify_return_error",
                "-alpn",
                "echo",
                "-quiet",
                "-no_ign_eof",
            ])
            .arg("-CAfile")
            .arg(&ca_file)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("openssl runs");
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"hello from openssl\n").unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let mut echoed = Vec::new();
        let mut buf = [0; 256];
        while !echoed.ends_with(b"\n") {
            match stdout.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => echoed.extend_from_slice(&buf[..n]),
            }
        }
        drop(stdin); // end of input: s_client sends close_notify and exits
        let status = child.wait().unwrap();
        let _ = std::fs::remove_dir_all(ca_file.parent().unwrap());
        (echoed, status.success())
    });
    let (echoed, success) = run_until_joined(&mut reactor, vec![client]).remove(0);
    assert_eq!(echoed, b"hello from openssl\n");
    assert!(
        success,
        "openssl s_client verified the server and exited cleanly"
    );
    run_until(&mut reactor, "the server connection to close", || {
        servers.borrow()[0].borrow().lost.is_some()
    });
    let servers = servers.borrow();
    let server = servers[0].borrow();
    assert_eq!(server.alpn.as_deref(), Some(&b"echo"[..]));
    assert!(
        server.eof,
        "openssl's close_notify reached the protocol as EOF"
    );
    assert_eq!(server.lost, Some(Reason::Closed));
}
