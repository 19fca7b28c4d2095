//! The server side in memory: the upgrade on an HTTP connection, the bytes after it, and
//! backpressure from a peer that reads slowly.

use std::time::Duration;

use torsion_reactor::testing::{TestConnection, TestReactor};
use torsion_reactor::Reactor;

use std::cell::RefCell;
use std::rc::Rc;

use super::{
    accept, CloseCode, Message, Sender, WebSocketHandle, WebSocketHandler, CLOSE_TIMEOUT,
    KEEPALIVE_INTERVAL,
};
use crate::http::server::{HttpServer, Request, Responder, Router};

/// Echoes, and closes with 1000 when asked to.
struct Echo;

impl WebSocketHandler for Echo {
    fn on_message(&mut self, ws: &mut Sender<'_, '_>, message: Message) {
        if message == Message::Text("close".into()) {
            ws.close(CloseCode::NORMAL, "").unwrap();
        } else {
            let _ = ws.send(&message);
        }
    }
}

const UPGRADE: &[u8] = b"GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\
    Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
    Sec-WebSocket-Version: 13\r\n\r\n";

fn upgraded(test: &mut TestReactor) -> TestConnection {
    let router = Router::new().get("/ws", |req: Request, res: Responder, r: &mut Reactor| {
        accept(&req, res, r, Echo, 1 << 20);
    });
    let mut server = HttpServer::new(router);
    let client = test.connect_from(&mut server).unwrap();
    test.feed(&client, UPGRADE);
    let head = client.take_text();
    assert!(
        head.starts_with("HTTP/1.1 101 Switching Protocols\r\n"),
        "{head}"
    );
    client
}

/// A masked binary frame of `len` bytes (mask key zero: the payload as is).
fn binary_frame(len: usize) -> Vec<u8> {
    let mut frame = vec![0x82, 0x80 | 126, (len >> 8) as u8, len as u8, 0, 0, 0, 0];
    frame.resize(frame.len() + len, 0x42);
    frame
}

#[test]
fn a_slow_reader_pauses_reading_until_its_queue_drains_and_loses_nothing() {
    let mut test = TestReactor::new();
    let client = upgraded(&mut test);
    client.set_write_room(Some(0));
    let frame = binary_frame(1000);
    let count = 1000;
    let input: Vec<u8> = (0..count).flat_map(|_| frame.clone()).collect();
    test.feed(&client, &input);
    test.run_pending();
    let queued = test.reactor().queued_bytes(client.id());
    // Reading stopped once the echoes passed the high watermark (64 KiB), a read's worth
    // later at most: the megabyte fed waits with the peer, not in the server's memory.
    assert!(queued > 64 * 1024 && queued < 256 * 1024, "queued {queued}");
    client.set_write_room(None);
    test.run_pending();
    let echoed = client.take_written();
    // Each echo: a 4-byte header (unmasked) and the payload.
    assert_eq!(echoed.len(), count * (4 + 1000));
    assert!(!client.is_closed());
}

#[test]
fn an_eof_without_a_close_frame_closes_the_connection() {
    let mut test = TestReactor::new();
    let client = upgraded(&mut test);
    test.feed_eof(&client);
    assert!(client.is_closed());
}

#[test]
fn a_close_the_peer_never_answers_aborts_the_connection_after_the_close_timeout() {
    let mut test = TestReactor::new();
    let client = upgraded(&mut test);
    // A masked text "close" (mask key zero).
    test.feed(&client, b"\x81\x85\0\0\0\0close");
    assert_eq!(client.take_written(), b"\x88\x02\x03\xe8");
    test.advance(CLOSE_TIMEOUT - Duration::from_millis(1));
    assert!(!client.is_closed());
    test.advance(Duration::from_millis(1));
    assert!(client.is_closed());
}

#[test]
fn a_close_the_peer_answers_closes_the_connection_at_once() {
    let mut test = TestReactor::new();
    let client = upgraded(&mut test);
    test.feed(&client, b"\x81\x85\0\0\0\0close");
    test.feed(&client, b"\x88\x82\0\0\0\0\x03\xe8");
    assert!(client.is_closed());
    assert_eq!(client.take_written(), b"\x88\x02\x03\xe8");
}

/// Keeps its connection's handle where the test finds it.
struct Kept(Rc<RefCell<Option<WebSocketHandle>>>);

impl WebSocketHandler for Kept {
    fn on_open(&mut self, ws: &mut Sender<'_, '_>) {
        *self.0.borrow_mut() = Some(ws.handle());
    }

    fn on_message(&mut self, _: &mut Sender<'_, '_>, _: Message) {}
}

#[test]
fn a_handle_sends_from_outside_the_callbacks_until_the_connection_is_gone() {
    let kept = Rc::new(RefCell::new(None));
    let shared = kept.clone();
    let router = Router::new().get(
        "/ws",
        move |req: Request, res: Responder, r: &mut Reactor| {
            accept(&req, res, r, Kept(shared.clone()), 1024);
        },
    );
    let mut test = TestReactor::new();
    let client = test.connect_from(&mut HttpServer::new(router)).unwrap();
    test.feed(&client, UPGRADE);
    client.take_written();
    let handle = kept.borrow_mut().take().expect("on_open ran");
    assert!(handle.send(test.reactor(), Message::Text("pushed".into())));
    assert!(handle.close(test.reactor(), CloseCode::GOING_AWAY, ""));
    test.run_pending();
    assert_eq!(client.take_written(), b"\x81\x06pushed\x88\x02\x03\xe9");
    test.feed(&client, b"\x88\x82\0\0\0\0\x03\xe9");
    assert!(client.is_closed());
    assert!(handle.is_gone());
    assert!(!handle.send(test.reactor(), Message::Text("late".into())));
}

#[test]
fn a_silent_peer_is_pinged_and_then_aborted_and_a_peer_that_answers_stays() {
    let mut test = TestReactor::new();
    let silent = upgraded(&mut test);
    let answering = upgraded(&mut test);
    test.advance(KEEPALIVE_INTERVAL);
    // Both were silent for an interval: each gets an empty ping.
    assert_eq!(silent.take_written(), b"\x89\x00");
    assert_eq!(answering.take_written(), b"\x89\x00");
    // The answering one pongs (masked, key zero); the silent one says nothing.
    test.feed(&answering, b"\x8a\x80\0\0\0\0");
    test.advance(KEEPALIVE_INTERVAL - Duration::from_millis(1));
    assert!(!silent.is_closed());
    test.advance(Duration::from_millis(1));
    assert!(
        silent.is_closed(),
        "silent through a whole interval after its ping"
    );
    assert!(!answering.is_closed());
    // Traffic counts as life: no ping while the peer talks.
    test.feed(&answering, b"\x81\x82\0\0\0\0hi");
    assert_eq!(answering.take_written(), b"\x81\x02hi");
    test.advance(KEEPALIVE_INTERVAL);
    assert_eq!(
        answering.take_written(),
        b"",
        "heard from within the interval"
    );
}
