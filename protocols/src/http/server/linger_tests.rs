//! Lingering close through the in-memory harness, on the manual clock: when the connection
//! half-closes, what it does with input meanwhile, and each way it ends.

use std::time::Duration;

use http::{HeaderMap, StatusCode};
use torsion_reactor::testing::{TestConnection, TestReactor};
use torsion_reactor::{DisconnectReason, Reactor};

use super::tests::connect;
use super::*;

const SECOND: Duration = Duration::from_secs(1);

/// A malformed request (a space before the colon), then the start of another.
const MALFORMED: &[u8] = b"GET / HTTP/1.1\r\nHost : a\r\n\r\nGET /plaintext HTTP/1.1\r\n";

fn router() -> Router {
    Router::new()
        .get(
            "/plaintext",
            |_: Request, res: Responder, r: &mut Reactor| {
                res.respond(r, StatusCode::OK, &HeaderMap::new(), "Hello, World!")
            },
        )
        .get("/big", |_: Request, res: Responder, r: &mut Reactor| {
            res.respond(r, StatusCode::OK, &HeaderMap::new(), vec![b'#'; 200_000])
        })
        .get("/later", |_: Request, res: Responder, r: &mut Reactor| {
            r.call_later(SECOND, move |r| {
                res.respond(r, StatusCode::OK, &HeaderMap::new(), "late")
            });
        })
        .post("/echo", |req: Request, res: Responder, r: &mut Reactor| {
            res.respond(r, StatusCode::OK, &HeaderMap::new(), req.body)
        })
}

fn connection<'t>(test: &'t TestReactor, client: &TestConnection) -> &'t HttpConnection<Router> {
    test.protocol::<HttpConnection<Router>>(client).unwrap()
}

/// The connection is lingering: half-closed, open for reading, holding no request.
fn assert_lingering(test: &TestReactor, client: &TestConnection) {
    assert!(client.is_write_shut(), "half-closed");
    assert!(!client.is_closed(), "still reading");
    let conn = connection(test, client);
    assert!(conn.lingering_discarded().is_some(), "lingering");
    assert_eq!(conn.pending_responses(), 0, "no live request");
    assert_eq!(conn.held_input(), 0, "nothing kept");
}

fn assert_closed_cleanly(client: &TestConnection) {
    assert!(client.is_closed());
    assert!(client.close_reason().unwrap().is_clean());
}

#[test]
fn after_an_error_response_the_connection_half_closes_and_discards_what_follows() {
    let mut server = HttpServer::new(router());
    let (mut test, client) = connect(&mut server);
    test.feed(&client, MALFORMED);
    let text = client.take_text();
    assert!(text.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{text}");
    assert_lingering(&test, &client);
    // Whatever the client still sends is read and thrown away: nothing kept, nothing said.
    for _ in 0..64 {
        test.feed(&client, &[b'y'; 16 * 1024]);
    }
    assert_lingering(&test, &client);
    let discarded = connection(&test, &client).lingering_discarded();
    assert_eq!(discarded, Some(64 * 16 * 1024));
    assert_eq!(client.take_text(), "");
    test.feed_eof(&client);
    assert_closed_cleanly(&client);
}

#[test]
fn a_body_over_the_limit_gets_its_413_and_the_rest_of_the_body_is_discarded() {
    let limits = crate::http::Limits::default().with_max_body_len(1024);
    let mut server = HttpServer::new(router()).with_limits(limits);
    let (mut test, client) = connect(&mut server);
    test.feed(
        &client,
        b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 1000000\r\n\r\n",
    );
    for _ in 0..100 {
        test.feed(&client, &[b'z'; 10_000]);
    }
    let text = client.take_text();
    assert!(
        text.starts_with("HTTP/1.1 413 Payload Too Large\r\n"),
        "{text}"
    );
    assert_lingering(&test, &client);
    test.feed_eof(&client);
    assert_closed_cleanly(&client);
}

#[test]
fn lingering_ends_after_the_lingering_timeout_without_input() {
    let mut server = HttpServer::new(router());
    let (mut test, client) = connect(&mut server);
    test.feed(&client, MALFORMED);
    test.advance(4 * SECOND);
    assert_lingering(&test, &client);
    test.feed(&client, b"more");
    test.advance(4 * SECOND);
    assert_lingering(&test, &client);
    test.advance(SECOND);
    assert!(client.is_closed(), "5 s without input since the last bytes");
    assert!(matches!(
        *client.close_reason().unwrap(),
        DisconnectReason::Closed
    ));
}

#[test]
fn lingering_ends_after_the_lingering_time_however_much_arrives() {
    let mut server = HttpServer::new(router());
    let (mut test, client) = connect(&mut server);
    test.feed(&client, MALFORMED);
    for _ in 0..7 {
        test.advance(4 * SECOND);
        test.feed(&client, b"still sending");
    }
    assert_lingering(&test, &client); // 28 s
    test.advance(SECOND);
    test.feed(&client, b"still sending");
    assert_lingering(&test, &client); // 29 s
    test.advance(SECOND);
    assert!(client.is_closed(), "30 s in all");
}

#[test]
fn the_times_are_configurable() {
    let mut server = HttpServer::new(router()).with_lingering_times(10 * SECOND, 2 * SECOND);
    assert_eq!(server.config().lingering_time, 10 * SECOND);
    assert_eq!(server.config().lingering_timeout, 2 * SECOND);
    let (mut test, client) = connect(&mut server);
    test.feed(&client, MALFORMED);
    test.advance(SECOND);
    assert_lingering(&test, &client);
    test.advance(SECOND);
    assert!(client.is_closed());
}

#[test]
fn the_half_close_waits_until_every_response_is_out_and_lingering_starts_then() {
    let mut server = HttpServer::new(router());
    let (mut test, client) = connect(&mut server);
    client.set_write_room(Some(1000)); // a slow reader
    let get = b"GET /big HTTP/1.1\r\nHost: a\r\n\r\n";
    let mut wire = get.repeat(3);
    wire.extend_from_slice(b"BAD\r\n\r\n");
    test.feed(&client, &wire);
    let mut received = client.take_written();
    // The responses are still leaving, so neither the half-close nor the lingering clock.
    for _ in 0..10 {
        test.advance(SECOND);
        test.feed(&client, b"more input: discarded once it is read");
        assert!(!client.is_write_shut() && !client.is_closed());
        let held = connection(&test, &client).held_input();
        assert!(
            held <= wire.len(),
            "only the requests are kept, not what follows"
        );
        client.set_write_room(Some(1000));
        test.run_pending();
        received.extend(client.take_written());
    }
    client.set_write_room(None);
    test.run_pending();
    received.extend(client.take_written());
    let text = String::from_utf8_lossy(&received);
    assert_eq!(text.matches("HTTP/1.1 200 OK\r\n").count(), 3);
    assert!(text.ends_with("Bad Request\n"), "the 400 last");
    let bodies = received.iter().filter(|&&b| b == b'#').count();
    assert_eq!(bodies, 3 * 200_000, "every byte of the three bodies");
    assert_lingering(&test, &client);
    test.advance(4 * SECOND);
    assert_lingering(&test, &client);
    test.advance(SECOND);
    assert!(client.is_closed());
}

#[test]
fn connection_close_with_requests_after_it_lingers() {
    let mut server = HttpServer::new(router());
    let (mut test, client) = connect(&mut server);
    test.feed(
        &client,
        b"GET /plaintext HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n\
          GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n",
    );
    let text = client.take_text();
    assert_eq!(text.matches("HTTP/1.1 200").count(), 1, "{text}");
    assert!(text.contains("connection: close\r\n"));
    assert_lingering(&test, &client);
    test.feed_eof(&client);
    assert_closed_cleanly(&client);
}

#[test]
fn a_close_after_the_client_s_eof_does_not_linger() {
    let mut server = HttpServer::new(router());
    let (mut test, client) = connect(&mut server);
    test.feed(&client, b"GET /later HTTP/1.1\r\nHost: a\r\n\r\n");
    test.feed_eof(&client);
    test.advance(SECOND);
    assert!(client.take_text().ends_with("late"));
    assert_closed_cleanly(&client);
}

#[test]
fn without_lingering_an_error_closes_at_once() {
    let mut server = HttpServer::new(router()).with_lingering_close(false);
    assert!(!server.config().lingering_close);
    let (mut test, client) = connect(&mut server);
    test.feed(&client, MALFORMED);
    assert!(client
        .take_text()
        .starts_with("HTTP/1.1 400 Bad Request\r\n"));
    assert_closed_cleanly(&client);
}

#[test]
fn the_defaults_are_nginx_s() {
    let config = ServerConfig::default();
    assert!(config.lingering_close);
    assert_eq!(config.lingering_time, 30 * SECOND);
    assert_eq!(config.lingering_timeout, 5 * SECOND);
}

#[test]
fn a_graceful_shutdown_with_input_waiting_lingers_within_the_shutdown_deadline() {
    // Lingering longer than the shutdown allows: the shutdown's deadline bounds it.
    let mut server = HttpServer::new(router()).with_lingering_times(60 * SECOND, 20 * SECOND);
    let (mut test, client) = connect(&mut server);
    test.feed(&client, b"GET /later HTTP/1.1\r\nHost: a\r\n\r\n");
    test.reactor().set_shutdown_timeout(5 * SECOND);
    test.reactor().shutdown();
    test.run_pending();
    // Sent after the shutdown began: not read as a request (reading stopped), so unread.
    test.feed(&client, b"GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n");
    test.advance(SECOND);
    assert!(client.take_text().ends_with("late"));
    assert_lingering(&test, &client);
    let discarded = connection(&test, &client).lingering_discarded();
    assert!(discarded > Some(0), "reading resumed to drain it");
    test.advance(3 * SECOND);
    assert_lingering(&test, &client);
    test.advance(SECOND);
    assert!(client.is_closed(), "the shutdown's deadline");
}

#[test]
fn a_graceful_shutdown_ends_as_soon_as_the_lingering_client_closes() {
    let mut server = HttpServer::new(router());
    let (mut test, client) = connect(&mut server);
    test.feed(&client, b"GET /later HTTP/1.1\r\nHost: a\r\n\r\n");
    test.reactor().shutdown();
    test.run_pending();
    // Sent after the shutdown began: not read as a request.
    test.feed(&client, b"GET /plain");
    test.advance(SECOND);
    assert!(client.take_text().ends_with("late"));
    assert_lingering(&test, &client);
    test.feed_eof(&client);
    assert_closed_cleanly(&client);
}

#[test]
fn a_graceful_shutdown_closes_an_idle_connection_at_once() {
    let mut server = HttpServer::new(router());
    let (mut test, client) = connect(&mut server);
    test.feed(&client, b"GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n");
    client.take_written();
    test.reactor().shutdown();
    test.run_pending();
    assert!(!client.is_write_shut() || client.is_closed());
    assert_closed_cleanly(&client);
}

#[test]
fn a_client_that_never_takes_its_error_response_is_the_send_timeout_s() {
    let mut server = HttpServer::new(router());
    let (mut test, client) = connect(&mut server);
    client.set_write_room(Some(0)); // reads nothing, sends on
    test.feed(&client, MALFORMED);
    for _ in 0..59 {
        test.advance(SECOND);
        test.feed(&client, &[b'y'; 4096]);
        assert!(!client.is_write_shut() && !client.is_closed());
        assert_eq!(connection(&test, &client).held_input(), 0);
    }
    test.advance(SECOND);
    assert!(client.is_closed(), "60 s without taking a byte");
    assert!(matches!(
        *client.close_reason().unwrap(),
        DisconnectReason::Aborted
    ));
}
