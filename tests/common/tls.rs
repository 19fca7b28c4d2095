//! A recording protocol, client factory and server factory (which records failed
//! handshakes) for the TLS tests, a blocking TLS client that keeps its connection open, and
//! the usual server and client configurations made from a test CA.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::{mpsc, Arc};
use std::thread;

use torsion::rustls::pki_types::CertificateDer;
use torsion::tls::{self, ClientAuth, TlsError};
use torsion::{
    Address, ClientFactory, ConnectError, ConnectOptions, Context, DisconnectReason, Factory,
    Protocol, Reactor, TlsOptions,
};

use super::certs::TestCa;
use super::{any_loopback_port, connect, run_until, shared, Reason, Shared};

/// What a test protocol saw on one connection.
#[derive(Default, Debug)]
pub struct Seen {
    pub made: bool,
    pub received: Vec<u8>,
    pub eof: bool,
    pub lost: Option<Reason>,
    pub failed: Option<String>,
    pub failed_tls: Option<TlsErrorKind>,
    pub peer_certificate: Option<CertificateDer<'static>>,
    pub sni: Option<String>,
    pub alpn: Option<Vec<u8>>,
    pub handshake_completed: bool,
    pub handed_back: usize,
}

/// `TlsError` reduced to something comparable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsErrorKind {
    UnknownIssuer,
    NotValidForName,
    Expired,
    PeerRejected,
    HandshakeTimeout,
    CertificateRequired,
    NotTls,
    ProtocolVersion,
    Io(std::io::ErrorKind),
    Other(String),
}

pub fn kind(e: &TlsError) -> TlsErrorKind {
    match e {
        TlsError::CertificateRequired => TlsErrorKind::CertificateRequired,
        TlsError::NotTls => TlsErrorKind::NotTls,
        TlsError::ProtocolVersion => TlsErrorKind::ProtocolVersion,
        TlsError::Io(e) => TlsErrorKind::Io(e.kind()),
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
pub struct Recorder {
    pub seen: Shared<Seen>,
    pub greeting: Vec<u8>,
    pub on_data: fn(&mut Context<'_>, &[u8]),
}

pub fn echo(cx: &mut Context<'_>, data: &[u8]) {
    cx.write(data);
}

pub fn ignore(_: &mut Context<'_>, _: &[u8]) {}

impl Recorder {
    pub fn new(seen: &Shared<Seen>) -> Recorder {
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
pub struct RecorderFactory(pub Option<Recorder>, pub Shared<Seen>);

pub fn client(seen: &Shared<Seen>, greeting: &[u8]) -> RecorderFactory {
    let mut recorder = Recorder::new(seen);
    recorder.greeting = greeting.to_vec();
    recorder.on_data = ignore;
    RecorderFactory(Some(recorder), seen.clone())
}

impl ClientFactory for RecorderFactory {
    type Protocol = Recorder;

    fn build_protocol(&mut self, _peer: Address) -> Recorder {
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
pub fn echo_server(
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

/// What a TLS port's factory heard through `handshake_failed`: the peer, the reason.
pub type Failures = Shared<Vec<(SocketAddr, TlsErrorKind)>>;

/// A server factory building a [`Recorder`] per connection (as [`echo_server`]'s closure)
/// and recording every failed handshake.
pub struct RecordingFactory {
    pub servers: Shared<Vec<Shared<Seen>>>,
    pub failures: Failures,
}

impl Factory for RecordingFactory {
    type Protocol = Recorder;

    fn build_protocol(&mut self, _peer: Address) -> Option<Recorder> {
        let seen = shared(Seen::default());
        self.servers.borrow_mut().push(seen.clone());
        Some(Recorder::new(&seen))
    }

    fn handshake_failed(&mut self, peer: Address, error: &TlsError) {
        let peer = peer.as_tcp().expect("a TLS port's peer is a TCP address");
        self.failures.borrow_mut().push((peer, kind(error)));
    }
}

/// A TLS echo server whose factory records failed handshakes.
pub struct RecordingServer {
    pub port: torsion::ListeningPort,
    pub servers: Shared<Vec<Shared<Seen>>>,
    pub failures: Failures,
}

impl RecordingServer {
    pub fn start(
        reactor: &mut Reactor,
        config: torsion::rustls::ServerConfig,
        options: TlsOptions,
    ) -> RecordingServer {
        let (servers, failures) = (shared(Vec::new()), shared(Vec::new()));
        let factory = RecordingFactory {
            servers: servers.clone(),
            failures: failures.clone(),
        };
        let port = reactor
            .listen_tls_with(any_loopback_port(), config, factory, options)
            .unwrap();
        RecordingServer {
            port,
            servers,
            failures,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.port.local_addr()
    }

    /// Turns the reactor until the factory has heard of one failed handshake, and returns it.
    pub fn one_failure(&self, reactor: &mut Reactor) -> (SocketAddr, TlsErrorKind) {
        run_until(
            reactor,
            "the factory to hear of the failed handshake",
            || !self.failures.borrow().is_empty(),
        );
        let failures = self.failures.borrow();
        assert_eq!(failures.len(), 1, "{failures:?}");
        failures[0].clone()
    }
}

pub fn localhost_server(ca: &TestCa) -> torsion::rustls::ServerConfig {
    let identity = ca.issue(&["localhost"]).identity();
    tls::server_config(identity, ClientAuth::None).unwrap()
}

pub fn trusting(ca: &TestCa) -> Arc<torsion::rustls::ClientConfig> {
    Arc::new(tls::client_config(ca.roots()).unwrap())
}

/// Options for a TLS client trusting `ca` that verifies the server's certificate for `name`.
pub fn tls_to(name: &str, ca: &TestCa) -> ConnectOptions {
    ConnectOptions::new().tls(trusting(ca)).server_name(name)
}

/// Connects a recording client with `config` to `addr` as `name`, and runs until it is made
/// and has received `expect` bytes, or has failed or been lost.
pub fn run_client(
    reactor: &mut Reactor,
    addr: SocketAddr,
    name: &str,
    config: Arc<torsion::rustls::ClientConfig>,
    greeting: &[u8],
    expect: usize,
) -> Shared<Seen> {
    let seen = shared(Seen::default());
    let options = ConnectOptions::new().tls(config).server_name(name);
    reactor.connect(addr, client(&seen, greeting), options);
    run_until(reactor, "the client to finish", || {
        let s = seen.borrow();
        s.failed.is_some() || s.lost.is_some() || s.made && s.received.len() >= expect
    });
    seen
}

/// A blocking TLS client on a thread that echoes "first", then waits for `go`, echoes
/// "again" on the same connection and closes it with close_notify; it says on `ready` when
/// the first echo is back.
pub fn patient_tls_client(
    addr: SocketAddr,
    config: Arc<torsion::rustls::ClientConfig>,
    ready: mpsc::Sender<()>,
    go: mpsc::Receiver<()>,
) -> thread::JoinHandle<(Vec<u8>, Vec<u8>)> {
    thread::spawn(move || {
        let mut tcp = connect(addr);
        let name = "localhost".try_into().unwrap();
        let mut conn = torsion::rustls::ClientConnection::new(config, name).unwrap();
        let mut tls = torsion::rustls::Stream::new(&mut conn, &mut tcp);
        let mut echo = |message: &[u8]| {
            tls.write_all(message).unwrap();
            let mut back = vec![0; message.len()];
            tls.read_exact(&mut back).unwrap();
            back
        };
        let first = echo(b"first");
        ready.send(()).unwrap();
        go.recv().unwrap();
        let again = echo(b"again");
        conn.send_close_notify();
        conn.write_tls(&mut tcp).unwrap();
        (first, again)
    })
}
