//! TLS authentication over loopback: the client refuses a certificate from an unknown CA,
//! for another name, or expired; mutual TLS with and without a client certificate; the
//! peer's certificate, SNI name and ALPN protocol seen by the protocol; SNI choosing the
//! server's certificate.

mod common;

use std::sync::Arc;

use torsion::tls::{self, ClientAuth, TlsError};
use torsion::{ConnectOptions, Reactor};

use common::certs::TestCa;
use common::tls::*;
use common::*;

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
    let options = ConnectOptions::new()
        .tls(trusting(&ca))
        .server_name("not a name!");
    reactor.connect(addr, client(&seen, b""), options);
    assert!(seen.borrow().failed.is_none(), "never from inside connect");
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
fn no_protocol_version_in_common_is_refused_with_that_reason() {
    use torsion::rustls::{version, ClientConfig, ServerConfig};
    init_logging();
    let ca = TestCa::new("test CA");
    let (chain, key) = ca.issue(&["localhost"]).identity().into_parts();
    let server = ServerConfig::builder_with_provider(tls::crypto_provider())
        .with_protocol_versions(&[&version::TLS13])
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    let client = ClientConfig::builder_with_provider(tls::crypto_provider())
        .with_protocol_versions(&[&version::TLS12])
        .unwrap()
        .with_root_certificates(ca.roots())
        .with_no_client_auth();
    let mut reactor = Reactor::new().unwrap();
    let (addr, servers) = echo_server(&mut reactor, server);
    let seen = run_client(&mut reactor, addr, "localhost", Arc::new(client), b"v", 1);
    let seen = seen.borrow();
    assert_eq!(
        seen.failed_tls,
        Some(TlsErrorKind::ProtocolVersion),
        "{seen:?}"
    );
    assert!(servers.borrow().iter().all(|s| !s.borrow().made));
}
