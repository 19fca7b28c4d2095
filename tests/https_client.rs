//! The HTTP client over TLS: `https://` URLs against torsion's own server on `listen_tls`,
//! with certificates made by the test CA; the server's certificate and name are verified.

mod common;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;

use common::certs::TestCa;
use common::*;
use torsion::protocols::http::client::{ClientConfig, ClientError, HttpClient, Request, Response};
use torsion::protocols::http::server::{HttpServer, Request as Incoming, Responder, Router};
use torsion::protocols::http::{HeaderMap, StatusCode};
use torsion::tls::{self, ClientAuth, TlsError};
use torsion::Reactor;

/// An HTTPS server on loopback presenting a certificate from `ca` for `names`; returns its
/// port and a count of the TCP connections it accepted.
fn https_server(reactor: &mut Reactor, ca: &TestCa, names: &[&str]) -> (u16, Rc<Cell<usize>>) {
    let router = Router::new().get("/hello", |_: Incoming, res: Responder, r: &mut Reactor| {
        res.respond(r, StatusCode::OK, &HeaderMap::new(), "hello over TLS")
    });
    let server = HttpServer::new(router);
    let config = tls::server_config(ca.issue(names).identity(), ClientAuth::None).unwrap();
    let accepted = Rc::new(Cell::new(0));
    let count = accepted.clone();
    let port = reactor
        .listen_tls(any_loopback_port(), config, move || {
            count.set(count.get() + 1);
            server.connection()
        })
        .unwrap();
    (port.local_addr().port(), accepted)
}

/// Sends `request` and turns the reactor until the answer.
fn fetch(reactor: &mut Reactor, client: &HttpClient, url: &str) -> Result<Response, ClientError> {
    let result = Rc::new(RefCell::new(None));
    let slot = result.clone();
    client.send(reactor, Request::get(url), move |r, _| {
        *slot.borrow_mut() = Some(r)
    });
    run_until(reactor, "the response", || result.borrow().is_some());
    let answer = result.borrow_mut().take();
    answer.expect("an answer")
}

/// A client trusting `ca` alone.
fn client_trusting(ca: &TestCa) -> HttpClient {
    let config = tls::client_config(ca.roots()).unwrap();
    HttpClient::with_config(ClientConfig::default().with_tls(Arc::new(config)))
}

/// The reactor's TLS reason inside a client error.
fn tls_reason(error: &ClientError) -> Option<&TlsError> {
    match error {
        ClientError::Tls(source) => source.downcast_ref::<TlsError>(),
        _ => None,
    }
}

#[test]
fn https_requests_verify_the_server_and_share_one_connection() {
    init_logging();
    let mut reactor = Reactor::new().unwrap();
    let ca = TestCa::new("https test CA");
    let (port, accepted) = https_server(&mut reactor, &ca, &["localhost"]);
    let client = client_trusting(&ca);
    for _ in 0..3 {
        let url = format!("https://localhost:{port}/hello");
        let response = fetch(&mut reactor, &client, &url).unwrap();
        assert_eq!(response.status, StatusCode::OK);
        assert_eq!(&response.body[..], b"hello over TLS");
    }
    assert_eq!(
        accepted.get(),
        1,
        "sequential https requests reuse one connection"
    );
    assert_eq!(client.idle_connections(), 1);
}

#[test]
fn an_ip_address_in_the_url_is_the_name_verified() {
    init_logging();
    let mut reactor = Reactor::new().unwrap();
    let ca = TestCa::new("https test CA");
    let (port, _) = https_server(&mut reactor, &ca, &["127.0.0.1"]);
    let url = format!("https://127.0.0.1:{port}/hello");
    let response = fetch(&mut reactor, &client_trusting(&ca), &url).unwrap();
    assert_eq!(&response.body[..], b"hello over TLS");
}

#[test]
fn a_server_certificate_from_another_ca_is_refused() {
    init_logging();
    let mut reactor = Reactor::new().unwrap();
    let (port, _) = https_server(
        &mut reactor,
        &TestCa::new("the server's CA"),
        &["localhost"],
    );
    let client = client_trusting(&TestCa::new("another CA"));
    let url = format!("https://localhost:{port}/hello");
    let error = fetch(&mut reactor, &client, &url).unwrap_err();
    assert!(
        matches!(tls_reason(&error), Some(TlsError::UnknownIssuer)),
        "{error:?}"
    );
    assert!(error.to_string().starts_with("TLS error: "), "{error}");
}

#[test]
fn a_certificate_for_another_name_is_refused() {
    init_logging();
    let mut reactor = Reactor::new().unwrap();
    let ca = TestCa::new("https test CA");
    let (port, _) = https_server(&mut reactor, &ca, &["example.test"]);
    let url = format!("https://localhost:{port}/hello");
    let error = fetch(&mut reactor, &client_trusting(&ca), &url).unwrap_err();
    assert!(
        matches!(tls_reason(&error), Some(TlsError::NotValidForName)),
        "{error:?}"
    );
}

#[test]
fn the_default_configuration_verifies_against_the_system_roots() {
    init_logging();
    let mut reactor = Reactor::new().unwrap();
    let (port, _) = https_server(&mut reactor, &TestCa::new("private CA"), &["localhost"]);
    let url = format!("https://localhost:{port}/hello");
    let error = fetch(&mut reactor, &HttpClient::new(), &url).unwrap_err();
    // No system root trusts the test CA; a machine without system roots fails earlier, with
    // that reason. Either way, no response from an unverified server.
    let ClientError::Tls(source) = &error else {
        panic!("{error:?}");
    };
    if let Some(reason) = source.downcast_ref::<TlsError>() {
        assert!(matches!(reason, TlsError::UnknownIssuer), "{error:?}");
    } else {
        println!("no system roots here: {error}");
    }
}
