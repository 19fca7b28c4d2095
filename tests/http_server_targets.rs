//! Request targets over real loopback sockets (RFC 9112 §3.2): an `HttpServer` answers each
//! target form its method allows through its handler, and refuses every other with 400 and a
//! close, before any handler runs. Also the empty lines a client may send before a request
//! line (§2.2): skipped, but counted against the head limit.

mod common;

use std::cell::Cell;
use std::io::Write;
use std::net::SocketAddr;
use std::rc::Rc;
use std::thread;

use common::*;
use torsion::protocols::http::server::{HttpServer, Request, Responder, Router};
use torsion::protocols::http::{HeaderMap, Limits, Method, StatusCode};
use torsion::Reactor;

/// A server whose one handler answers every request with its method and target (405 for
/// `CONNECT`, which it does not tunnel), counting the requests it saw; the clients `start`
/// spawns talk to it.
fn with_server(
    limits: Limits,
    start: impl FnOnce(SocketAddr) -> Vec<thread::JoinHandle<()>>,
) -> usize {
    init_logging();
    let handled = Rc::new(Cell::new(0));
    let seen = handled.clone();
    let router = Router::new().fallback(move |req: Request, res: Responder, r: &mut Reactor| {
        seen.set(seen.get() + 1);
        let status = if req.method() == Method::CONNECT {
            StatusCode::METHOD_NOT_ALLOWED
        } else {
            StatusCode::OK
        };
        let body = format!("{} {}", req.method(), req.head.uri);
        res.respond(r, status, &HeaderMap::new(), body)
    });
    let mut reactor = Reactor::new().unwrap();
    let port = reactor
        .listen_tcp(
            any_loopback_port(),
            HttpServer::new(router).with_limits(limits),
        )
        .unwrap();
    run_until_joined(&mut reactor, start(port.local_addr()));
    handled.get()
}

/// Sends `wire` on a new connection and reads until the server closes: the status and body.
fn exchange(addr: SocketAddr, wire: &[u8]) -> (u16, String) {
    let mut stream = connect(addr);
    stream.write_all(wire).unwrap();
    let (response, end) = read_to_end(&mut stream);
    end.expect("the server closes cleanly");
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    (status, body)
}

fn request(line: &str) -> Vec<u8> {
    format!("{line} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").into_bytes()
}

#[test]
fn each_target_form_reaches_the_handler_with_its_methods() {
    let cases = [
        ("GET /a?b=c", 200, "GET /a?b=c"),
        ("GET http://t/abs?q", 200, "GET http://t/abs?q"),
        ("POST https://t:8443/x", 200, "POST https://t:8443/x"),
        ("OPTIONS *", 200, "OPTIONS *"),
        ("OPTIONS /x", 200, "OPTIONS /x"),
        ("CONNECT example.org:443", 405, "CONNECT example.org:443"),
    ];
    let handled = with_server(Limits::default(), |addr| {
        vec![thread::spawn(move || {
            for (line, status, body) in cases {
                assert_eq!(
                    exchange(addr, &request(line)),
                    (status, body.to_string()),
                    "{line}"
                );
            }
        })]
    });
    assert_eq!(handled, cases.len());
}

#[test]
fn a_target_in_a_form_its_method_does_not_allow_is_400_and_a_close() {
    let bad = [
        "GET index.txt",
        "GET evil.com:80",
        "GET http:",
        "GET http:///x",
        "GET ftp://t/x",
        "GET http://user@t/x",
        "GET *",
        "CONNECT /x",
        "CONNECT http://t:443/",
        "CONNECT example.org",
    ];
    let handled = with_server(Limits::default(), |addr| {
        vec![thread::spawn(move || {
            for line in bad {
                // A second request after the bad one is never read: the connection closes.
                let mut wire = request(line);
                wire.extend_from_slice(&request("GET /after"));
                let (status, body) = exchange(addr, &wire);
                assert_eq!((status, body.as_str()), (400, "Bad Request\n"), "{line}");
            }
        })]
    });
    assert_eq!(handled, 0, "no handler saw a refused request");
}

#[test]
fn empty_lines_before_a_request_are_skipped_within_the_head_limit() {
    // The empty lines are longer than a request line may be (64 + 64 bytes): they count
    // against the head's limit, not the line's.
    let limits = Limits::default()
        .with_max_head_len(1024)
        .with_max_target_len(64);
    let handled = with_server(limits, |addr| {
        vec![thread::spawn(move || {
            let mut stream = connect(addr);
            stream.write_all(&b"\r\n".repeat(400)).unwrap();
            stream
                .write_all(&request("GET /after-empty-lines"))
                .unwrap();
            let (response, end) = read_to_end(&mut stream);
            end.expect("the server closes cleanly");
            let text = String::from_utf8_lossy(&response);
            assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text:?}");
            assert!(text.ends_with("\r\n\r\nGET /after-empty-lines"), "{text:?}");
            // Empty lines past the head limit: 431, then the close. (One byte over the limit
            // in one write, so the server has read all of it when it closes.)
            let (status, _) = exchange(addr, &b"\n".repeat(1025));
            assert_eq!(status, 431);
        })]
    });
    assert_eq!(handled, 1);
}
