//! The name a TLS `connect` verifies the server's certificate for: the host name of a host
//! target, else the IP address connected to (each address of several in its turn), unless
//! `ConnectOptions::server_name` names another; and a host name that cannot be a server name.

mod common;

use std::net::SocketAddr;

use torsion::tls::{self, ClientAuth, TlsError};
use torsion::{ConnectOptions, Reactor, Target};

use common::certs::TestCa;
use common::tls::*;
use common::*;

/// A TLS echo server presenting a certificate from `ca` for `names`, recording every
/// connection it accepts.
fn server_for(
    reactor: &mut Reactor,
    ca: &TestCa,
    names: &[&str],
) -> (SocketAddr, Shared<Vec<Shared<Seen>>>) {
    let identity = ca.issue(names).identity();
    echo_server(
        reactor,
        tls::server_config(identity, ClientAuth::None).unwrap(),
    )
}

/// Connects a recording client that says "hi" to `target`, and runs until the echo came back
/// or the attempt failed.
fn connect(reactor: &mut Reactor, target: impl Into<Target>, options: ConnectOptions) -> Seen {
    let seen = shared(Seen::default());
    reactor.connect(target, client(&seen, b"hi"), options);
    assert!(seen.borrow().failed.is_none(), "never from inside connect");
    run_until(reactor, "the echo or the failure", || {
        let s = seen.borrow();
        s.failed.is_some() || s.received.len() >= 2
    });
    seen.take()
}

#[test]
fn a_host_target_verifies_its_host_name_unless_a_server_name_is_given() {
    init_logging();
    let ca = TestCa::new("test CA");
    let mut reactor = Reactor::new().unwrap();
    let (addr, servers) = server_for(&mut reactor, &ca, &["svc.test"]);
    let localhost = ("localhost", addr.port());

    // The certificate is not for "localhost", the name the target gives...
    let seen = connect(
        &mut reactor,
        localhost,
        ConnectOptions::new().tls(trusting(&ca)),
    );
    assert_eq!(
        seen.failed_tls,
        Some(TlsErrorKind::NotValidForName),
        "{seen:?}"
    );

    // ...but it is for the name given instead, which is also the SNI name sent.
    let options = ConnectOptions::new()
        .tls(trusting(&ca))
        .server_name("svc.test");
    let seen = connect(&mut reactor, localhost, options);
    assert_eq!(seen.received, b"hi", "{seen:?}");
    let server = servers.borrow().last().unwrap().clone();
    assert_eq!(server.borrow().sni.as_deref(), Some("svc.test"));
}

#[test]
fn a_host_target_sends_its_host_name_as_sni() {
    init_logging();
    let ca = TestCa::new("test CA");
    let mut reactor = Reactor::new().unwrap();
    let (addr, servers) = server_for(&mut reactor, &ca, &["localhost"]);
    let options = ConnectOptions::new().tls(trusting(&ca));
    let seen = connect(&mut reactor, ("localhost", addr.port()), options);
    assert_eq!(seen.received, b"hi", "{seen:?}");
    let server = servers.borrow().last().unwrap().clone();
    assert_eq!(server.borrow().sni.as_deref(), Some("localhost"));
}

#[test]
fn an_address_target_verifies_the_ip_address_connected_to() {
    init_logging();
    let ca = TestCa::new("test CA");
    let mut reactor = Reactor::new().unwrap();

    let (addr, servers) = server_for(&mut reactor, &ca, &["127.0.0.1"]);
    let seen = connect(&mut reactor, addr, ConnectOptions::new().tls(trusting(&ca)));
    assert_eq!(seen.received, b"hi", "{seen:?}");
    let server = servers.borrow().last().unwrap().clone();
    assert_eq!(server.borrow().sni, None, "no SNI for an IP address");

    // A certificate for a name only does not cover the address.
    let (addr, _) = server_for(&mut reactor, &ca, &["localhost"]);
    let seen = connect(&mut reactor, addr, ConnectOptions::new().tls(trusting(&ca)));
    assert_eq!(
        seen.failed_tls,
        Some(TlsErrorKind::NotValidForName),
        "{seen:?}"
    );
}

#[test]
fn addresses_verify_the_ip_address_of_the_one_that_answered() {
    init_logging();
    let ca = TestCa::new("test CA");
    let mut reactor = Reactor::new().unwrap();
    let (addr, _) = server_for(&mut reactor, &ca, &["127.0.0.1"]);
    // Nothing listens on 127.0.0.2 (all of 127/8 is loopback): refused, then the next.
    let refusing = SocketAddr::from(([127, 0, 0, 2], addr.port()));
    let target = vec![refusing, addr];
    let seen = connect(
        &mut reactor,
        target,
        ConnectOptions::new().tls(trusting(&ca)),
    );
    assert_eq!(seen.received, b"hi", "{seen:?}");
}

#[test]
fn a_host_name_that_cannot_be_a_server_name_fails_before_it_is_resolved() {
    init_logging();
    let ca = TestCa::new("test CA");
    let mut reactor = Reactor::new().unwrap();
    let options = ConnectOptions::new().tls(trusting(&ca));
    let seen = connect(&mut reactor, ("not a name!", 443), options);
    assert_eq!(
        seen.failed_tls,
        Some(TlsErrorKind::Other(
            TlsError::InvalidServerName("not a name!".into()).to_string()
        )),
        "{seen:?}"
    );
}
