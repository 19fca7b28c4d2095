//! The server through the in-memory harness: every test feeds bytes as a client would and
//! reads what went out.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use http::{HeaderMap, StatusCode};
use torsion_reactor::testing::TestReactor;
use torsion_reactor::{testing::TestConnection, Reactor};

use super::*;

fn ok(res: Responder, reactor: &mut Reactor, body: &'static str) {
    res.respond(reactor, StatusCode::OK, &HeaderMap::new(), body);
}

fn router() -> Router {
    Router::new()
        .get(
            "/plaintext",
            |_: Request, res: Responder, r: &mut Reactor| ok(res, r, "Hello, World!"),
        )
        .get("/later", |_: Request, res: Responder, r: &mut Reactor| {
            r.call_later(Duration::from_secs(1), move |r| ok(res, r, "late"));
        })
        .post("/echo", |req: Request, res: Responder, r: &mut Reactor| {
            res.respond(r, StatusCode::OK, &HeaderMap::new(), req.body)
        })
}

/// A test reactor with one client connected to `server`.
pub(super) fn connect(server: &mut HttpServer<Router>) -> (TestReactor, TestConnection) {
    let mut test = TestReactor::new();
    let client = test.connect_from(server).unwrap();
    (test, client)
}

/// The bodies of the `Content-Length` responses in `text`, in order.
fn bodies(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(end) = rest.find("\r\n\r\n") {
        let head = &rest[..end];
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length: "))
            .map_or(0, |n| n.parse().unwrap());
        let len = if head.starts_with("HTTP/1.1 100") {
            0
        } else {
            len
        };
        out.push(rest[end + 4..end + 4 + len].to_string());
        rest = &rest[end + 4 + len..];
    }
    out
}

/// The server closed after its answer while the client may still be sending: half-closed,
/// lingering (input read and discarded) until the client's EOF, which closes it.
fn assert_closes(test: &mut TestReactor, client: &TestConnection) {
    assert!(client.is_write_shut(), "half-closed after the answer");
    assert!(!client.is_closed(), "lingering");
    test.feed_eof(client);
    assert!(client.is_closed());
    assert!(client.close_reason().unwrap().is_clean());
}

#[test]
fn keep_alive_answers_two_requests_on_one_connection() {
    let mut server = HttpServer::new(router());
    let (mut test, client) = connect(&mut server);
    test.feed(&client, b"GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n");
    let first = client.take_text();
    assert!(first.starts_with("HTTP/1.1 200 OK\r\n"), "{first}");
    assert!(first.contains("\r\ndate: ") && first.contains("content-length: 13\r\n"));
    assert!(first.ends_with("\r\n\r\nHello, World!"));
    test.feed(&client, b"GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n");
    assert!(client.take_text().ends_with("Hello, World!"));
    assert!(!client.is_closed());
}

#[test]
fn pipelined_responses_keep_request_order_when_the_first_comes_later() {
    let mut server = HttpServer::new(router());
    let (mut test, client) = connect(&mut server);
    let wire = b"GET /later HTTP/1.1\r\nHost: a\r\n\r\nGET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n\
                 POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc";
    test.feed(&client, wire);
    assert_eq!(client.take_text(), "", "the later ones wait for the first");
    test.advance(Duration::from_secs(1));
    assert_eq!(
        bodies(&client.take_text()),
        ["late", "Hello, World!", "abc"]
    );
    assert!(!client.is_closed());
}

#[test]
fn pipelined_requests_fed_in_every_chunk_size_are_answered_in_order() {
    let wire = b"GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\nPOST /echo HTTP/1.1\r\nHost: a\r\n\
                 Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n\
                 GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n";
    for size in 1..=wire.len() {
        let mut server = HttpServer::new(router());
        let (mut test, client) = connect(&mut server);
        for piece in wire.chunks(size) {
            test.feed(&client, piece);
        }
        let text = client.take_text();
        assert_eq!(
            bodies(&text),
            ["Hello, World!", "abcde", "Hello, World!"],
            "size {size}"
        );
        assert_eq!(text.matches("HTTP/1.1 200 OK").count(), 3);
    }
}

#[test]
fn reading_stops_while_too_many_responses_are_pending() {
    let mut server = HttpServer::new(router()).with_max_pipelined(2);
    let (mut test, client) = connect(&mut server);
    let one = b"GET /later HTTP/1.1\r\nHost: a\r\n\r\n";
    test.feed(&client, &one.repeat(5));
    let pending = test
        .protocol::<HttpConnection<Router>>(&client)
        .unwrap()
        .pending_responses();
    assert_eq!(pending, 2);
    for _ in 0..5 {
        test.advance(Duration::from_secs(1));
    }
    assert_eq!(bodies(&client.take_text()), ["late"; 5]);
}

#[test]
fn reading_stops_while_responses_back_up_behind_a_client_that_does_not_read() {
    let mut server = HttpServer::new(router());
    let (mut test, client) = connect(&mut server);
    client.set_write_room(Some(0)); // the client reads nothing
    let request = "GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n";
    let high_water = server.config().write_buffer_limits.0;
    let sent = 10_000;
    for _ in 0..sent / 100 {
        test.feed(&client, request.repeat(100).as_bytes());
    }
    let queued = test.reactor().queued_bytes(client.id());
    let response_len = 100; // a /plaintext response with its headers, generously
    assert!(
        queued <= high_water + response_len,
        "{queued} bytes queued for a client that reads nothing"
    );
    // Once the client reads, every request is answered, in order.
    client.set_write_room(None);
    test.run_pending();
    let text = client.take_text();
    assert_eq!(text.matches("Hello, World!").count(), sent);
}

#[test]
fn head_gets_the_get_headers_without_the_body() {
    let mut server = HttpServer::new(router());
    let (mut test, client) = connect(&mut server);
    test.feed(&client, b"HEAD /plaintext HTTP/1.1\r\nHost: a\r\n\r\n");
    let text = client.take_text();
    assert!(text.contains("content-length: 13\r\n"), "{text}");
    assert!(text.ends_with("\r\n\r\n"));
    test.feed(&client, b"GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n");
    assert!(client.take_text().ends_with("Hello, World!"));
}

#[test]
fn expect_continue_sends_100_before_the_body_is_read() {
    let mut server = HttpServer::new(router());
    let (mut test, client) = connect(&mut server);
    test.feed(
        &client,
        b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n",
    );
    assert_eq!(client.take_text(), "HTTP/1.1 100 Continue\r\n\r\n");
    test.feed(&client, b"hello");
    let text = client.take_text();
    assert!(
        text.starts_with("HTTP/1.1 200 OK\r\n") && text.ends_with("hello"),
        "{text}"
    );
}

#[test]
fn expect_continue_to_an_unknown_path_gets_404_without_100_and_a_close() {
    let mut server = HttpServer::new(router());
    let (mut test, client) = connect(&mut server);
    test.feed(
        &client,
        b"POST /nope HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n",
    );
    let text = client.take_text();
    assert!(text.starts_with("HTTP/1.1 404 Not Found\r\n"), "{text}");
    assert!(text.contains("connection: close\r\n"));
    assert_closes(&mut test, &client);
}

#[test]
fn unknown_paths_get_404_and_other_methods_405_with_allow() {
    let mut server = HttpServer::new(router());
    let (mut test, client) = connect(&mut server);
    test.feed(&client, b"GET /nope HTTP/1.1\r\nHost: a\r\n\r\n");
    assert!(client.take_text().starts_with("HTTP/1.1 404 Not Found\r\n"));
    test.feed(&client, b"DELETE /echo HTTP/1.1\r\nHost: a\r\n\r\n");
    let text = client.take_text();
    assert!(
        text.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"),
        "{text}"
    );
    assert!(text.contains("allow: POST\r\n"), "{text}");
    assert!(!client.is_closed());
}

#[test]
fn a_malformed_request_gets_400_and_a_close() {
    let mut server = HttpServer::new(router());
    let (mut test, client) = connect(&mut server);
    test.feed(
        &client,
        b"GET / HTTP/1.1\r\nHost : a\r\n\r\nGET /plaintext HTTP/1.1\r\n",
    );
    let text = client.take_text();
    assert!(text.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{text}");
    assert!(text.contains("connection: close\r\n") && text.ends_with("Bad Request\n"));
    assert_closes(&mut test, &client);
}

#[test]
fn a_body_over_the_limit_gets_413_and_a_close() {
    let limits = crate::http::Limits::default().with_max_body_len(4);
    let mut server = HttpServer::new(router()).with_limits(limits);
    let (mut test, client) = connect(&mut server);
    test.feed(&client, b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n3\r\ndef\r\n");
    let text = client.take_text();
    assert!(
        text.starts_with("HTTP/1.1 413 Payload Too Large\r\n"),
        "{text}"
    );
    assert_closes(&mut test, &client);
}

#[test]
fn connection_close_is_honoured_after_the_response() {
    let mut server = HttpServer::new(router());
    let (mut test, client) = connect(&mut server);
    test.feed(
        &client,
        b"GET /later HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\nGET /plaintext HTTP/1.1\r\n\r\n",
    );
    assert!(!client.is_closed(), "waits for its answer");
    test.advance(Duration::from_secs(1));
    let text = client.take_text();
    assert!(
        text.contains("connection: close\r\n") && text.ends_with("late"),
        "{text}"
    );
    assert_closes(&mut test, &client);
}

#[test]
fn http10_without_keep_alive_closes_after_the_response() {
    let mut server = HttpServer::new(router());
    let (mut test, client) = connect(&mut server);
    test.feed(&client, b"GET /plaintext HTTP/1.0\r\n\r\n");
    assert!(client.take_text().ends_with("Hello, World!"));
    // Nothing followed the request that ends the connection: nothing to linger for.
    assert!(client.is_closed());
    assert!(client.close_reason().unwrap().is_clean());
}

#[test]
fn bytes_after_a_request_that_ends_the_connection_make_the_close_linger() {
    let mut server = HttpServer::new(router());
    let (mut test, client) = connect(&mut server);
    test.feed(
        &client,
        b"GET /plaintext HTTP/1.0\r\n\r\nGET /plaintext HTTP/1.0\r\n\r\n",
    );
    assert_eq!(bodies(&client.take_text()), ["Hello, World!"]);
    assert_closes(&mut test, &client);
}

#[test]
fn a_half_close_after_the_last_request_closes_once_it_is_answered() {
    let mut server = HttpServer::new(router());
    let (mut test, client) = connect(&mut server);
    test.feed(&client, b"GET /later HTTP/1.1\r\nHost: a\r\n\r\n");
    test.feed_eof(&client);
    assert!(!client.is_closed());
    test.advance(Duration::from_secs(1));
    assert!(client.take_text().ends_with("late"));
    assert!(client.is_closed());
}

#[test]
fn the_date_is_formatted_once_a_second_from_the_reactor_clock() {
    let mut server = HttpServer::new(router());
    let (mut test, client) = connect(&mut server);
    let date = |text: &str| {
        let at = text.find("date: ").unwrap();
        text[at..at + 35].to_string()
    };
    test.feed(&client, b"GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n");
    let first = date(&client.take_text());
    test.feed(&client, b"GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(date(&client.take_text()), first);
    test.advance(Duration::from_secs(2));
    test.feed(&client, b"GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_ne!(date(&client.take_text()), first);
}

/// Writes `left` bytes in 8 KiB pieces, as fast as the connection lets it.
struct Producer {
    writer: Option<BodyWriter>,
    left: usize,
    pauses: Rc<Cell<usize>>,
}

fn produce(producer: &Rc<RefCell<Producer>>, reactor: &mut Reactor) {
    let mut guard = producer.borrow_mut();
    let p = &mut *guard;
    while p.left > 0 {
        let n = p.left.min(8192);
        p.left -= n;
        let writer = p.writer.as_mut().unwrap();
        if !writer.write(reactor, vec![b'x'; n]) {
            p.pauses.set(p.pauses.get() + 1);
            let again = producer.clone();
            writer.on_resume(move |reactor| produce(&again, reactor));
            return;
        }
    }
    if let Some(writer) = p.writer.take() {
        writer.finish(reactor);
    }
}

/// The body of a chunked response.
fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line = body.windows(2).position(|w| w == b"\r\n").unwrap();
        let size = usize::from_str_radix(std::str::from_utf8(&body[..line]).unwrap(), 16).unwrap();
        body = &body[line + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&body[..size]);
        body = &body[size + 2..];
    }
}

#[test]
fn a_streamed_body_pauses_for_a_slow_client_and_memory_stays_bounded() {
    const TOTAL: usize = 2 << 20;
    let pauses = Rc::new(Cell::new(0));
    let seen = pauses.clone();
    let router = Router::new().get(
        "/stream",
        move |_: Request, res: Responder, r: &mut Reactor| {
            let writer = res.stream(r, StatusCode::OK, &HeaderMap::new());
            let producer = Rc::new(RefCell::new(Producer {
                writer: Some(writer),
                left: TOTAL,
                pauses: seen.clone(),
            }));
            produce(&producer, r);
        },
    );
    let mut server = HttpServer::new(router);
    let (mut test, client) = connect(&mut server);
    client.set_write_room(Some(1000));
    test.feed(&client, b"GET /stream HTTP/1.1\r\nHost: a\r\n\r\n");
    let mut wire = Vec::new();
    for _ in 0..50 {
        let queued = test.reactor().queued_bytes(client.id());
        assert!(queued <= 64 * 1024 + 8192 + 64, "queued {queued}");
        wire.extend(client.take_written());
        client.set_write_room(Some(20_000));
        test.run_pending();
    }
    assert!(pauses.get() >= 1, "the producer was told to pause");
    client.set_write_room(None);
    test.run_pending();
    wire.extend(client.take_written());
    let at = wire.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&wire[..at]);
    assert!(head.contains("transfer-encoding: chunked"), "{head}");
    assert_eq!(dechunk(&wire[at + 4..]).len(), TOTAL);
    assert!(!client.is_closed());
}

#[test]
fn a_dropped_responder_answers_500_and_closes() {
    let router = Router::new().get("/drop", |_: Request, res: Responder, _: &mut Reactor| {
        drop(res)
    });
    let mut server = HttpServer::new(router);
    let (mut test, client) = connect(&mut server);
    test.feed(&client, b"GET /drop HTTP/1.1\r\nHost: a\r\n\r\n");
    assert!(client
        .take_text()
        .starts_with("HTTP/1.1 500 Internal Server Error\r\n"));
    assert!(client.is_closed());
}

#[test]
fn a_responder_dropped_by_a_timer_answers_500_and_closes_within_that_advance() {
    let router = Router::new().get("/drop", |_: Request, res: Responder, r: &mut Reactor| {
        // A timer has the reactor, but a drop does not: the pipeline wakes the connection.
        r.call_later(Duration::from_secs(1), move |_| drop(res));
    });
    let mut server = HttpServer::new(router);
    let (mut test, client) = connect(&mut server);
    test.feed(&client, b"GET /drop HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(client.take_text(), "");
    test.advance(Duration::from_secs(1));
    let text = client.take_text();
    assert!(
        text.starts_with("HTTP/1.1 500 Internal Server Error\r\n"),
        "{text:?}"
    );
    assert!(client.is_closed());
}

#[test]
fn a_head_not_complete_within_the_header_timeout_gets_408_and_a_close() {
    let mut server = HttpServer::new(router());
    let (mut test, client) = connect(&mut server);
    test.feed(&client, b"GET /plaintext HTTP/1.1\r\n");
    // Slowloris: a byte now and then does not extend the deadline.
    for _ in 0..29 {
        test.advance(Duration::from_secs(1));
        test.feed(&client, b"X");
    }
    assert!(!client.is_closed());
    test.advance(Duration::from_secs(1));
    let text = client.take_text();
    assert!(
        text.starts_with("HTTP/1.1 408 Request Timeout\r\n"),
        "{text}"
    );
    assert_closes(&mut test, &client);
}

#[test]
fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
    let mut server = HttpServer::new(router());
    let (mut test, client) = connect(&mut server);
    test.advance(Duration::from_secs(50));
    test.feed(&client, b"GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n");
    assert!(client.take_text().ends_with("Hello, World!"));
    test.advance(Duration::from_secs(59));
    assert!(
        !client.is_closed(),
        "the request restarted the idle timeout"
    );
    test.advance(Duration::from_secs(1));
    assert!(client.is_closed());
    assert_eq!(client.take_text(), "", "closed without a word");
}

#[test]
fn each_request_restarts_the_idle_timeout_from_its_own_arrival() {
    // Requests 50 s apart: each lands before the timeout armed by the one before ends, and
    // long after the first timer was due; the close comes 60 s after the last, to the second.
    let mut server = HttpServer::new(router());
    let (mut test, client) = connect(&mut server);
    for _ in 0..4 {
        test.advance(Duration::from_secs(50));
        test.feed(&client, b"GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n");
        assert!(client.take_text().ends_with("Hello, World!"));
        assert!(!client.is_closed());
    }
    test.advance(Duration::from_secs(59));
    assert!(!client.is_closed(), "59 s after the last request");
    test.advance(Duration::from_secs(1));
    assert!(client.is_closed(), "60 s after the last request");
}

#[test]
fn a_connection_waiting_for_its_answer_is_not_idle() {
    let router = router().get("/poll", |_: Request, res: Responder, r: &mut Reactor| {
        r.call_later(Duration::from_secs(90), move |r| ok(res, r, "news"));
    });
    let mut server = HttpServer::new(router);
    let (mut test, client) = connect(&mut server);
    test.feed(&client, b"GET /poll HTTP/1.1\r\nHost: a\r\n\r\n");
    test.advance(Duration::from_secs(90));
    assert!(client.take_text().ends_with("news"));
    assert!(!client.is_closed());
}

#[test]
fn a_graceful_shutdown_answers_requests_in_flight_then_closes() {
    let mut server = HttpServer::new(router());
    let (mut test, client) = connect(&mut server);
    let idle = test.connect_from(&mut server).unwrap();
    test.feed(&idle, b"GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n");
    idle.take_written();
    test.feed(&client, b"GET /later HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(client.take_text(), "", "answered in a second");
    test.reactor().shutdown();
    test.run_pending();
    assert!(
        idle.is_closed(),
        "a connection idle between requests closes at once"
    );
    assert!(!client.is_closed(), "the one waiting for its answer stays");
    // A request arriving after the shutdown started is not read.
    test.feed(&client, b"GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n");
    test.advance(Duration::from_secs(1));
    let text = client.take_text();
    assert_eq!(bodies(&text), ["late"], "{text}");
    // The request sent after the shutdown began was not read: the close lingers.
    assert_closes(&mut test, &client);
}

/// The response in `text` says the connection closes after it.
fn says_close(text: &str) -> bool {
    text.to_ascii_lowercase()
        .contains("\r\nconnection: close\r\n")
}

#[test]
fn a_graceful_shutdown_answers_a_new_connection_s_first_request_then_closes() {
    // The client connected to send a request: closing before it comes would fail it.
    let mut server = HttpServer::new(router());
    let (mut test, client) = connect(&mut server);
    test.reactor().shutdown();
    test.run_pending();
    assert!(!client.is_closed(), "waits for the first request");
    test.feed(
        &client,
        b"GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\nGET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n",
    );
    let text = client.take_text();
    assert_eq!(bodies(&text), ["Hello, World!"], "only the first: {text}");
    assert!(says_close(&text), "{text}");
    assert_closes(&mut test, &client);
}

#[test]
fn a_graceful_shutdown_reads_and_answers_a_request_half_arrived() {
    let mut server = HttpServer::new(router());
    let (mut test, client) = connect(&mut server);
    test.feed(&client, b"GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n");
    client.take_written();
    test.feed(&client, b"POST /echo HTTP/1.1\r\nHo");
    test.reactor().shutdown();
    test.run_pending();
    assert!(!client.is_closed());
    test.feed(&client, b"st: a\r\nContent-Length: 4\r\n\r\nab");
    test.feed(&client, b"cd");
    let text = client.take_text();
    assert_eq!(bodies(&text), ["abcd"], "{text}");
    assert!(says_close(&text), "{text}");
}

#[test]
fn a_graceful_shutdown_answers_a_request_whose_body_is_arriving() {
    let mut server = HttpServer::new(router());
    let (mut test, client) = connect(&mut server);
    test.feed(
        &client,
        b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\n\r\nab",
    );
    test.reactor().shutdown();
    test.run_pending();
    test.feed(&client, b"cdefGET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n");
    let text = client.take_text();
    assert_eq!(
        bodies(&text),
        ["abcdef"],
        "not the request after it: {text}"
    );
    assert_closes(&mut test, &client);
}

#[test]
fn a_new_connection_that_sends_nothing_is_closed_by_the_shutdown_deadline() {
    let mut server = HttpServer::new(router());
    let (mut test, client) = connect(&mut server);
    test.reactor().set_shutdown_timeout(Duration::from_secs(5));
    test.reactor().shutdown();
    test.advance(Duration::from_millis(4_999));
    assert!(!client.is_closed());
    test.advance(Duration::from_millis(1));
    assert!(client.is_closed(), "the shutdown's deadline");
}

#[test]
fn a_body_that_stops_arriving_gets_408_and_a_close() {
    let mut server = HttpServer::new(router());
    let (mut test, client) = connect(&mut server);
    test.feed(
        &client,
        b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc",
    );
    // Each byte that arrives restarts the body timeout (30 s): a slow upload is fine...
    for _ in 0..3 {
        test.advance(Duration::from_secs(29));
        test.feed(&client, b"d");
    }
    assert!(!client.is_closed());
    assert_eq!(client.take_text(), "");
    // ...a stalled one is not.
    test.advance(Duration::from_secs(30));
    let text = client.take_text();
    assert!(
        text.starts_with("HTTP/1.1 408 Request Timeout\r\n"),
        "{text}"
    );
    assert_closes(&mut test, &client);
}
