//! The send timeout through the in-memory harness, on its manual clock: a client that takes
//! nothing is aborted exactly one timeout after the last byte it took, one that takes a
//! little before each timeout runs out gets everything (a streamed body's backpressure
//! unchanged), the idle timeout neither closes a connection whose response is being sent nor
//! misses one stuck under the high watermark, and a response flushed at once arms no timer.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use http::{HeaderMap, StatusCode};
use torsion_reactor::testing::{TestConnection, TestReactor};
use torsion_reactor::{DisconnectReason, Reactor};

use super::*;

const SEND: Duration = Duration::from_secs(1);
const BIG: usize = 256 * 1024;
const STREAMED: usize = 1 << 20;

/// `/plaintext`, `/big` (one 256 KiB body) and `/stream` (1 MiB in 8 KiB pieces, pausing
/// when told).
fn router() -> Router {
    Router::new()
        .get(
            "/plaintext",
            |_: Request, res: Responder, r: &mut Reactor| {
                res.respond(r, StatusCode::OK, &HeaderMap::new(), "Hello, World!")
            },
        )
        .get("/big", |_: Request, res: Responder, r: &mut Reactor| {
            res.respond(r, StatusCode::OK, &HeaderMap::new(), vec![b'b'; BIG])
        })
        .get("/stream", |_: Request, res: Responder, r: &mut Reactor| {
            let writer = res.stream(r, StatusCode::OK, &HeaderMap::new());
            let producer = Rc::new(RefCell::new((Some(writer), STREAMED)));
            produce(&producer, r);
        })
}

type Producer = Rc<RefCell<(Option<BodyWriter>, usize)>>;

fn produce(producer: &Producer, reactor: &mut Reactor) {
    let mut guard = producer.borrow_mut();
    let (writer, left) = &mut *guard;
    while *left > 0 {
        let n = (*left).min(8192);
        *left -= n;
        let Some(w) = writer.as_mut() else { return };
        if !w.write(reactor, vec![b's'; n]) {
            let again = producer.clone();
            w.on_resume(move |reactor| produce(&again, reactor));
            return;
        }
    }
    if let Some(writer) = writer.take() {
        writer.finish(reactor);
    }
}

fn server(idle: Duration) -> HttpServer<Router> {
    let config = ServerConfig {
        idle_timeout: Some(idle),
        send_timeout: Some(SEND),
        ..ServerConfig::default()
    };
    HttpServer::new(router()).with_config(config)
}

fn get(test: &mut TestReactor, client: &TestConnection, path: &str) {
    test.feed(
        client,
        format!("GET {path} HTTP/1.1\r\nHost: a\r\n\r\n").as_bytes(),
    );
}

fn assert_aborted(client: &TestConnection) {
    assert!(client.is_closed(), "the connection is closed");
    let reason = client.close_reason();
    assert!(
        matches!(reason.as_deref(), Some(DisconnectReason::Aborted)),
        "closed by an abort"
    );
}

#[test]
fn a_client_that_takes_nothing_more_is_aborted_one_send_timeout_after_its_last_byte() {
    for path in ["/big", "/stream"] {
        let mut server = server(Duration::from_secs(60));
        let mut test = TestReactor::new();
        let client = test.connect_from(&mut server).unwrap();
        client.set_write_room(Some(1000));
        get(&mut test, &client, path);
        test.advance(SEND / 2);
        client.set_write_room(Some(10)); // the last bytes it takes
        test.run_pending();
        let queued = test.reactor().queued_bytes(client.id());
        assert!(
            queued > 0 && queued <= BIG + 1024,
            "{path}: {queued} queued"
        );
        test.advance(SEND - Duration::from_millis(1));
        assert!(
            !client.is_closed(),
            "{path}: closed before the send timeout"
        );
        test.advance(Duration::from_millis(1));
        assert_aborted(&client);
        assert_eq!(client.take_written().len(), 1010);
    }
}

#[test]
fn a_client_taking_a_little_within_each_timeout_gets_the_whole_body() {
    for (path, len) in [("/big", BIG), ("/stream", STREAMED)] {
        let mut server = server(Duration::from_secs(2));
        let mut test = TestReactor::new();
        let client = test.connect_from(&mut server).unwrap();
        client.set_write_room(Some(0));
        get(&mut test, &client, path);
        let mut wire = Vec::new();
        // 20 s of a trickle, 20 times the send timeout and 10 times the idle timeout.
        for _ in 0..20 {
            test.advance(SEND - Duration::from_millis(10));
            client.set_write_room(Some(100));
            test.run_pending();
            wire.extend(client.take_written());
            assert!(!client.is_closed(), "{path}: closed while the client reads");
            // A streamed body stays bounded by the high watermark, as without a timeout.
            let queued = test.reactor().queued_bytes(client.id());
            let bound = if path == "/big" {
                BIG
            } else {
                64 * 1024 + 8192
            };
            assert!(queued <= bound + 512, "{path}: {queued} queued");
        }
        client.set_write_room(None);
        test.run_pending();
        wire.extend(client.take_written());
        assert!(wire.len() > len, "{path}: {} bytes arrived", wire.len());
        assert!(!client.is_closed());
        // The response is out: the idle timeout runs again, from then.
        test.advance(Duration::from_secs(2) - Duration::from_millis(1));
        assert!(
            !client.is_closed(),
            "{path}: idle timeout counted from before the end"
        );
        test.advance(Duration::from_millis(1));
        assert!(
            client.is_closed(),
            "{path}: the idle timeout closes it after"
        );
    }
}

#[test]
fn bytes_stuck_under_the_high_watermark_are_followed_from_the_next_request() {
    let mut server = server(Duration::from_secs(60));
    let mut test = TestReactor::new();
    let client = test.connect_from(&mut server).unwrap();
    client.set_write_room(Some(10));
    get(&mut test, &client, "/plaintext");
    assert!(test.reactor().queued_bytes(client.id()) > 0);
    test.advance(Duration::from_secs(5)); // no timer judges them yet
    assert!(!client.is_closed());
    get(&mut test, &client, "/plaintext");
    test.advance(SEND - Duration::from_millis(1));
    assert!(!client.is_closed());
    test.advance(Duration::from_millis(1));
    assert_aborted(&client);
}

#[test]
fn the_idle_timeout_finding_bytes_stuck_hands_them_to_the_send_timeout() {
    let mut server = server(Duration::from_secs(5));
    let mut test = TestReactor::new();
    let client = test.connect_from(&mut server).unwrap();
    client.set_write_room(Some(10));
    get(&mut test, &client, "/plaintext");
    test.advance(Duration::from_secs(5));
    assert!(
        !client.is_closed(),
        "the idle timeout closed a connection with bytes to send"
    );
    test.advance(SEND);
    assert_aborted(&client);
}

#[test]
fn a_response_flushed_at_once_arms_no_send_timer() {
    let mut server = server(Duration::from_secs(60));
    let mut test = TestReactor::new();
    let client = test.connect_from(&mut server).unwrap();
    let pipelined = "GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n".repeat(8);
    test.feed(&client, pipelined.as_bytes());
    assert_eq!(client.take_text().matches("Hello, World!").count(), 8);
    let following = |test: &TestReactor| {
        test.protocol::<HttpConnection<Router>>(&client)
            .unwrap()
            .is_following_send()
    };
    assert!(!following(&test), "the send guard follows an empty queue");
    test.advance(Duration::from_secs(59));
    assert!(!client.is_closed());
    test.advance(Duration::from_secs(1));
    assert!(client.is_closed(), "the idle timeout closes it");
}

#[test]
fn without_a_send_timeout_a_client_that_stops_reading_is_not_aborted() {
    let config = ServerConfig {
        send_timeout: None,
        ..ServerConfig::default()
    };
    let mut server = HttpServer::new(router()).with_config(config);
    assert_eq!(server.config().send_timeout, None);
    let mut test = TestReactor::new();
    let client = test.connect_from(&mut server).unwrap();
    client.set_write_room(Some(0));
    get(&mut test, &client, "/stream");
    test.advance(Duration::from_secs(600));
    assert!(!matches!(
        client.close_reason().as_deref(),
        Some(DisconnectReason::Aborted)
    ));
    client.set_write_room(None);
    test.run_pending();
    assert!(client.take_written().len() > STREAMED);
}

#[test]
fn the_default_send_timeout_is_nginx_s_sixty_seconds_and_the_setter_sets_it() {
    let server = HttpServer::new(router());
    assert_eq!(server.config().send_timeout, Some(Duration::from_secs(60)));
    let server = server.with_send_timeout(Some(SEND));
    assert_eq!(server.config().send_timeout, Some(SEND));
}
