//! A TLS port's factory hears why a handshake failed (`Factory::handshake_failed`), with the
//! client's address: mutual TLS without a client certificate or with one from another CA,
//! no protocol version in common, plaintext sent to the port, a client that never finishes
//! its handshake, a client that resets mid-handshake; and not once the port has stopped.

mod common;

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use torsion::rustls::{version, ClientConfig, ClientConnection, ServerConfig};
use torsion::tls::{self, ClientAuth};
use torsion::{ManualClock, Reactor, TlsOptions};

use common::certs::TestCa;
use common::tls::*;
use common::*;

fn mutual_server(ca: &TestCa) -> ServerConfig {
    let identity = ca.issue(&["localhost"]).identity();
    tls::server_config(identity, ClientAuth::Required(ca.roots())).unwrap()
}

/// A blocking rustls client on a thread: handshakes as "localhost" with `config`, sends a
/// few bytes and reads the echo. Returns its own address and how the read ended.
fn tls_client(
    addr: SocketAddr,
    config: Arc<ClientConfig>,
) -> thread::JoinHandle<(SocketAddr, io::Result<usize>)> {
    thread::spawn(move || {
        let mut tcp = connect(addr);
        let local = tcp.local_addr().unwrap();
        let name = "localhost".try_into().unwrap();
        let mut conn = ClientConnection::new(config, name).unwrap();
        let mut tls = torsion::rustls::Stream::new(&mut conn, &mut tcp);
        let outcome = tls.write_all(b"me").and_then(|()| tls.read(&mut [0; 16]));
        (local, outcome)
    })
}

/// Runs `config`'s client against `server` and returns what the client saw and what the
/// server's factory heard; checks that no server protocol was made.
fn refused_client(
    reactor: &mut Reactor,
    server: &RecordingServer,
    config: ClientConfig,
) -> (SocketAddr, io::Result<usize>, TlsErrorKind) {
    let client = tls_client(server.addr(), Arc::new(config));
    let (local, outcome) = run_until_joined(reactor, vec![client]).remove(0);
    let (peer, error) = server.one_failure(reactor);
    assert_eq!(peer, local, "the factory hears the client's address");
    assert!(server.servers.borrow().iter().all(|s| !s.borrow().made));
    (local, outcome, error)
}

#[test]
fn mutual_tls_without_a_client_certificate_reaches_the_factory_as_certificate_required() {
    init_logging();
    let ca = TestCa::new("test CA");
    let mut reactor = Reactor::new().unwrap();
    let server = RecordingServer::start(&mut reactor, mutual_server(&ca), TlsOptions::default());
    let config = tls::client_config(ca.roots()).unwrap();
    let (_, outcome, error) = refused_client(&mut reactor, &server, config);
    assert!(!matches!(outcome, Ok(n) if n > 0), "no echo: {outcome:?}");
    assert_eq!(error, TlsErrorKind::CertificateRequired);
}

#[test]
fn mutual_tls_with_a_certificate_from_another_ca_reaches_the_factory_as_unknown_issuer() {
    init_logging();
    let (ca, other) = (TestCa::new("test CA"), TestCa::new("other CA"));
    let mut reactor = Reactor::new().unwrap();
    let server = RecordingServer::start(&mut reactor, mutual_server(&ca), TlsOptions::default());
    let identity = other.issue(&["client.example"]).identity();
    let config = tls::client_config_with_identity(ca.roots(), identity).unwrap();
    let (_, outcome, error) = refused_client(&mut reactor, &server, config);
    assert!(!matches!(outcome, Ok(n) if n > 0), "no echo: {outcome:?}");
    assert_eq!(error, TlsErrorKind::UnknownIssuer);
}

#[test]
fn no_protocol_version_in_common_reaches_the_factory_as_protocol_version() {
    init_logging();
    let ca = TestCa::new("test CA");
    let (chain, key) = ca.issue(&["localhost"]).identity().into_parts();
    let tls13_only = ServerConfig::builder_with_provider(tls::crypto_provider())
        .with_protocol_versions(&[&version::TLS13])
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    let tls12_only = ClientConfig::builder_with_provider(tls::crypto_provider())
        .with_protocol_versions(&[&version::TLS12])
        .unwrap()
        .with_root_certificates(ca.roots())
        .with_no_client_auth();
    let mut reactor = Reactor::new().unwrap();
    let server = RecordingServer::start(&mut reactor, tls13_only, TlsOptions::default());
    let (_, outcome, error) = refused_client(&mut reactor, &server, tls12_only);
    assert!(outcome.is_err(), "the client's handshake fails too");
    assert_eq!(error, TlsErrorKind::ProtocolVersion);
}

#[test]
fn plaintext_sent_to_a_tls_port_reaches_the_factory_as_not_tls() {
    init_logging();
    let ca = TestCa::new("test CA");
    let mut reactor = Reactor::new().unwrap();
    let server = RecordingServer::start(&mut reactor, localhost_server(&ca), TlsOptions::default());
    let addr = server.addr();
    let plaintext = thread::spawn(move || {
        let mut stream = connect(addr);
        stream.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
        let _ = read_to_end(&mut stream); // at most an alert, then the close
        stream.local_addr().unwrap()
    });
    let local = run_until_joined(&mut reactor, vec![plaintext]).remove(0);
    assert_eq!(
        server.one_failure(&mut reactor),
        (local, TlsErrorKind::NotTls)
    );
}

#[test]
fn a_handshake_that_times_out_reaches_the_factory_as_handshake_timeout() {
    init_logging();
    let ca = TestCa::new("test CA");
    let clock = ManualClock::new();
    let mut reactor = Reactor::with_clock(clock.clone()).unwrap();
    let options = TlsOptions::with_handshake_timeout(Duration::from_millis(200));
    let server = RecordingServer::start(&mut reactor, localhost_server(&ca), options);
    let silent = connect(server.addr());
    run_until(&mut reactor, "the connection to be accepted", || {
        server.servers.borrow().len() == 1
    });
    clock.advance(Duration::from_millis(199));
    reactor.iterate(Duration::ZERO).unwrap();
    assert!(
        server.failures.borrow().is_empty(),
        "not before the timeout"
    );
    clock.advance(Duration::from_millis(1));
    let local = silent.local_addr().unwrap();
    assert_eq!(
        server.one_failure(&mut reactor),
        (local, TlsErrorKind::HandshakeTimeout)
    );
}

#[test]
fn a_client_that_resets_during_the_handshake_reaches_the_factory_with_its_address() {
    init_logging();
    let ca = TestCa::new("test CA");
    let mut reactor = Reactor::new().unwrap();
    let server = RecordingServer::start(&mut reactor, localhost_server(&ca), TlsOptions::default());
    let client = connect(server.addr());
    let local = client.local_addr().unwrap();
    run_until(&mut reactor, "the connection to be accepted", || {
        server.servers.borrow().len() == 1
    });
    // SO_LINGER 0: the close sends a reset, and the server's socket no longer knows its
    // peer; the factory still hears the address the connection was accepted from.
    socket2::SockRef::from(&client)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(client);
    assert_eq!(
        server.one_failure(&mut reactor),
        (local, TlsErrorKind::Io(io::ErrorKind::ConnectionReset))
    );
}

#[test]
fn a_handshake_failing_after_the_port_stopped_listening_is_only_logged() {
    init_logging();
    let ca = TestCa::new("test CA");
    let mut reactor = Reactor::new().unwrap();
    let server = RecordingServer::start(&mut reactor, localhost_server(&ca), TlsOptions::default());
    let mut client = connect(server.addr());
    run_until(&mut reactor, "the connection to be accepted", || {
        server.servers.borrow().len() == 1
    });
    assert!(server.port.stop_listening(&mut reactor));
    let plaintext = thread::spawn(move || {
        client.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
        read_to_end(&mut client)
    });
    let (_, end) = run_until_joined(&mut reactor, vec![plaintext]).remove(0);
    assert!(end.is_ok(), "the connection was closed: {end:?}");
    assert!(
        server.failures.borrow().is_empty(),
        "a factory is not called after it stopped: {:?}",
        server.failures.borrow()
    );
}
