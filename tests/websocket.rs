//! WebSocket over real loopback sockets: torsion's client against torsion's server (the
//! example's `/ws/echo` route), refused handshakes seen by a raw std client, and frames that
//! arrive with the upgrade request.

mod common;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::thread;

use common::*;
use torsion::protocols::http::server::{HttpServer, Request, Responder, Router};
use torsion::protocols::websocket::{
    self, CloseCode, Message, Sender, WebSocketHandler, DEFAULT_MAX_MESSAGE,
};
use torsion::{ConnectOptions, Reactor};

/// The example's `/ws/echo`: every message sent back as it came.
struct Echo;

impl WebSocketHandler for Echo {
    fn on_message(&mut self, ws: &mut Sender<'_, '_>, message: Message) {
        let _ = ws.send(&message);
    }
}

fn router() -> Router {
    Router::new().get(
        "/ws/echo",
        |req: Request, res: Responder, r: &mut Reactor| {
            websocket::accept(&req, res, r, Echo, DEFAULT_MAX_MESSAGE);
        },
    )
}

fn serve(reactor: &mut Reactor) -> SocketAddr {
    init_logging();
    let server = HttpServer::new(router());
    reactor
        .listen_tcp(any_loopback_port(), server)
        .unwrap()
        .local_addr()
}

/// A client that sends `script` once open, records what comes back, and closes with 1000
/// once as many messages came back as it sent.
struct Scripted {
    script: Vec<Message>,
    log: Shared<Vec<String>>,
    received: usize,
}

impl WebSocketHandler for Scripted {
    fn on_open(&mut self, ws: &mut Sender<'_, '_>) {
        for message in &self.script {
            ws.send(message).unwrap();
        }
    }

    fn on_message(&mut self, ws: &mut Sender<'_, '_>, message: Message) {
        self.log.borrow_mut().push(format!("{message:?}"));
        self.received += 1;
        if self.received == self.script.len() {
            ws.close(CloseCode::NORMAL, "done").unwrap();
        }
    }

    fn on_close(&mut self, _: &mut Reactor, code: CloseCode, reason: &str) {
        self.log
            .borrow_mut()
            .push(format!("close {} {reason}", code.0));
    }
}

fn closed(log: &Shared<Vec<String>>) -> bool {
    log.borrow().last().is_some_and(|l| l.starts_with("close"))
}

#[test]
fn torsion_client_and_server_echo_text_and_binary_then_close_with_1000() {
    let mut reactor = Reactor::new().unwrap();
    let addr = serve(&mut reactor);
    let log = shared(Vec::new());
    let big = vec![0xA5; 300_000];
    let script = vec![
        Message::Text("hello \u{e9}t\u{e9}".into()),
        Message::Binary(vec![0, 1, 2, 255].into()),
        Message::Binary(big.clone().into()),
    ];
    let handler = Scripted {
        script,
        log: log.clone(),
        received: 0,
    };
    let options = ConnectOptions::default();
    websocket::connect(
        &mut reactor,
        addr,
        options,
        "localhost",
        "/ws/echo",
        handler,
        1 << 20,
    );
    run_until(&mut reactor, "the close handshake", || closed(&log));
    let log = log.borrow();
    assert_eq!(
        log[0],
        format!("{:?}", Message::Text("hello \u{e9}t\u{e9}".into()))
    );
    assert_eq!(
        log[1],
        format!("{:?}", Message::Binary(vec![0, 1, 2, 255].into()))
    );
    assert_eq!(log[2], format!("{:?}", Message::Binary(big.into())));
    assert_eq!(log[3], "close 1000 ");
}

#[test]
fn a_client_refused_by_the_server_hears_why_in_on_close() {
    let mut reactor = Reactor::new().unwrap();
    let addr = serve(&mut reactor);
    let log = shared(Vec::new());
    let handler = Scripted {
        script: Vec::new(),
        log: log.clone(),
        received: 0,
    };
    let options = ConnectOptions::default();
    websocket::connect(
        &mut reactor,
        addr,
        options,
        "localhost",
        "/nowhere",
        handler,
        1024,
    );
    run_until(&mut reactor, "the refusal", || closed(&log));
    assert_eq!(
        log.borrow()[0],
        "close 1006 handshake failed: the server answered 404, not 101"
    );
}

#[test]
fn a_client_that_cannot_connect_hears_it_in_on_close() {
    let mut reactor = Reactor::new().unwrap();
    let log = shared(Vec::new());
    let handler = Scripted {
        script: Vec::new(),
        log: log.clone(),
        received: 0,
    };
    let addr = closed_loopback_port();
    let options = ConnectOptions::default();
    websocket::connect(
        &mut reactor,
        addr,
        options,
        "localhost",
        "/ws/echo",
        handler,
        1024,
    );
    run_until(&mut reactor, "the failure", || closed(&log));
    assert!(log.borrow()[0].starts_with("close 1006 connect failed"));
}

/// Sends `request` from a raw client and returns everything the server sent until it closed.
fn raw_exchange(request: &'static [u8]) -> Vec<u8> {
    let mut reactor = Reactor::new().unwrap();
    let addr = serve(&mut reactor);
    let client = thread::spawn(move || {
        let mut stream = connect(addr);
        stream.write_all(request).unwrap();
        let mut out = Vec::new();
        let _ = stream.read_to_end(&mut out);
        out
    });
    run_until_joined(&mut reactor, vec![client]).remove(0)
}

const UPGRADE: &str = "GET /ws/echo HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\
    Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";

#[test]
fn an_upgrade_with_another_version_is_refused_with_426_naming_13() {
    let request = format!("{UPGRADE}Sec-WebSocket-Version: 8\r\nConnection: close\r\n\r\n");
    let response = String::from_utf8(raw_exchange(request.leak().as_bytes())).unwrap();
    assert!(
        response.starts_with("HTTP/1.1 426 Upgrade Required\r\n"),
        "{response}"
    );
    assert!(
        response.contains("sec-websocket-version: 13\r\n"),
        "{response}"
    );
}

#[test]
fn an_upgrade_without_a_key_is_refused_with_400_and_the_reason() {
    let request = "GET /ws/echo HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\
        Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\nConnection: close\r\n\r\n";
    let response = String::from_utf8(raw_exchange(request.as_bytes())).unwrap();
    assert!(
        response.starts_with("HTTP/1.1 400 Bad Request\r\n"),
        "{response}"
    );
    assert!(
        response.ends_with("Sec-WebSocket-Key is not 16 bytes in base64\n"),
        "{response}"
    );
}

#[test]
fn frames_sent_with_the_upgrade_request_are_answered_after_the_101() {
    // A masked "Hello" (RFC 6455 §5.7) and a masked close 1000, in the request's packet.
    let request = format!(
        "{UPGRADE}Sec-WebSocket-Version: 13\r\n\r\n\
         \u{81}\u{85}\u{37}\u{fa}\u{21}\u{3d}\u{7f}\u{9f}\u{4d}\u{51}\u{58}"
    );
    let mut bytes: Vec<u8> = request.chars().map(|c| c as u32 as u8).collect();
    bytes.extend_from_slice(&[0x88, 0x82, 0, 0, 0, 0, 0x03, 0xE8]);
    let response = raw_exchange(Box::leak(bytes.into_boxed_slice()));
    let end = response.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let head = String::from_utf8_lossy(&response[..end]);
    assert!(
        head.starts_with("HTTP/1.1 101 Switching Protocols\r\n"),
        "{head}"
    );
    assert!(head.contains("sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
    // The echo, then the answer to the close; then the server closed the connection.
    assert_eq!(&response[end..], b"\x81\x05Hello\x88\x02\x03\xe8");
}
