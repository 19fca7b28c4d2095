//! The client's connection in memory (`torsion_reactor::testing`) on a manual clock: every
//! response framing fed in every chunk size through the connection, the request's exact
//! bytes, the head and idle timeouts, a paused body, bytes on an idle connection.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use http::{HeaderMap, Method, StatusCode};
use torsion_reactor::testing::{TestConnection, TestReactor};
use torsion_reactor::Reactor;

use super::connection::ClientConnection;
use super::exchange::{Exchange, Slot};
use super::response::Collect;
use super::target::Target;
use super::*;
use crate::http::codec::ResponseHead;

type Answer = Rc<RefCell<Option<Result<Response, ClientError>>>>;

/// Opens an in-memory connection for `request` on `client`'s pool with `handler`.
fn open_with(
    test: &mut TestReactor,
    client: &HttpClient,
    request: Request,
    handler: Box<dyn ResponseHandler>,
) -> TestConnection {
    let (method, url, headers, body) = request.into_parts();
    let target = Target::parse(&url).unwrap();
    let exchange = Exchange {
        method,
        headers,
        body,
        slot: Slot::new(handler),
        redirects: 0,
        retried: false,
        target: target.clone(),
    };
    test.connect(ClientConnection::new(
        client.clone(),
        target.key(),
        Some(exchange),
    ))
}

/// Opens a connection for `request` whose answer lands in the returned cell.
fn open(test: &mut TestReactor, client: &HttpClient, request: Request) -> (TestConnection, Answer) {
    let answer: Answer = Rc::default();
    let slot = answer.clone();
    let collect = Collect::new(
        move |result, _: &mut Reactor| *slot.borrow_mut() = Some(result),
        client.config().max_body_len,
    );
    let conn = open_with(test, client, request, Box::new(collect));
    (conn, answer)
}

fn taken(answer: &Answer) -> Option<Result<Response, ClientError>> {
    answer.borrow_mut().take()
}

#[test]
fn every_framing_in_every_chunk_size() {
    let cases: [(&[u8], bool, &str); 4] = [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\nhello world", false, "hello world"),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n6\r\n world\r\n0\r\nT: 1\r\n\r\n",
            false,
            "hello world",
        ),
        (b"HTTP/1.0 200 OK\r\n\r\nhello world", true, "hello world"),
        (
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
            false,
            "ok",
        ),
    ];
    for (wire, close, body) in cases {
        for size in 1..=wire.len() {
            let mut test = TestReactor::new();
            let client = HttpClient::new();
            let (conn, answer) = open(&mut test, &client, Request::get("http://a/"));
            for chunk in wire.chunks(size) {
                assert!(taken(&answer).is_none(), "answered before the end");
                test.feed(&conn, chunk);
            }
            if close {
                test.feed_eof(&conn);
            }
            let response = taken(&answer).expect("an answer").unwrap();
            assert_eq!(response.body, body, "chunk size {size}");
            assert_eq!(client.idle_connections(), usize::from(!close));
        }
    }
}

#[test]
fn the_request_carries_host_and_its_length() {
    let mut test = TestReactor::new();
    let client = HttpClient::new();
    let request = Request::post("http://example.org:8080/a?b=c", "body")
        .header(http::header::ACCEPT, http::HeaderValue::from_static("*/*"))
        .header(
            http::header::CONTENT_LENGTH,
            http::HeaderValue::from_static("99"),
        );
    let (conn, _) = open(&mut test, &client, request);
    assert_eq!(
        conn.take_text(),
        "POST /a?b=c HTTP/1.1\r\nhost: example.org:8080\r\naccept: */*\r\ncontent-length: 4\r\n\r\nbody"
    );
}

#[test]
fn the_head_timeout_runs_from_the_request() {
    let mut test = TestReactor::new();
    let config = ClientConfig::default().with_head_timeout(Some(Duration::from_secs(5)));
    let client = HttpClient::with_config(config);
    let (conn, answer) = open(&mut test, &client, Request::get("http://a/"));
    test.advance(Duration::from_millis(4999));
    assert!(taken(&answer).is_none());
    test.feed(&conn, b"HTTP/1.1 200 OK\r\n");
    test.advance(Duration::from_millis(1));
    let result = taken(&answer).expect("timed out");
    assert!(matches!(
        result,
        Err(ClientError::Timeout {
            which: TimeoutKind::Head,
            ..
        })
    ));
    assert!(conn.is_closed());
}

#[test]
fn an_idle_connection_closes_after_the_idle_timeout() {
    let mut test = TestReactor::new();
    let config = ClientConfig::default().with_idle_timeout(Duration::from_secs(10));
    let client = HttpClient::with_config(config);
    let (conn, answer) = open(&mut test, &client, Request::get("http://a/"));
    test.feed(&conn, b"HTTP/1.1 204 No Content\r\n\r\n");
    assert_eq!(
        taken(&answer).unwrap().unwrap().status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(client.idle_connections(), 1);
    test.advance(Duration::from_secs(9));
    assert!(!conn.is_closed());
    test.advance(Duration::from_secs(1));
    assert!(conn.is_closed());
    assert_eq!(client.idle_connections(), 0);
}

#[test]
fn a_request_that_asked_to_close_does_not_return_its_connection_to_the_pool() {
    let mut test = TestReactor::new();
    let client = HttpClient::new();
    for value in ["close", "Keep-Alive, CLOSE"] {
        let request = Request::get("http://a/").header(
            http::header::CONNECTION,
            http::HeaderValue::from_static(value),
        );
        let (conn, answer) = open(&mut test, &client, request);
        test.feed(&conn, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
        assert_eq!(taken(&answer).unwrap().unwrap().status, StatusCode::OK);
        test.run_pending();
        assert_eq!(client.idle_connections(), 0, "Connection: {value}");
        assert!(conn.is_closed(), "Connection: {value}");
    }
}

#[test]
fn bytes_on_an_idle_connection_close_it() {
    let mut test = TestReactor::new();
    let client = HttpClient::new();
    let (conn, answer) = open(&mut test, &client, Request::get("http://a/"));
    test.feed(&conn, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    assert!(taken(&answer).unwrap().is_ok());
    test.feed(&conn, b"HTTP/1.1 200 OK\r\n");
    assert!(conn.is_closed());
    assert_eq!(client.idle_connections(), 0);
}

/// Pauses at every piece; the test resumes it.
struct Pausing {
    pieces: Rc<RefCell<Vec<Vec<u8>>>>,
    resumer: Rc<RefCell<Option<Resumer>>>,
    ended: Rc<RefCell<bool>>,
}

impl ResponseHandler for Pausing {
    fn head(&mut self, _: &mut Reactor, _: ResponseHead, _: &mut ResponseFlow<'_>) {}

    fn data(&mut self, _: &mut Reactor, data: &[u8], flow: &mut ResponseFlow<'_>) {
        self.pieces.borrow_mut().push(data.to_vec());
        *self.resumer.borrow_mut() = Some(flow.pause());
    }

    fn end(&mut self, _: &mut Reactor, _: HeaderMap) {
        *self.ended.borrow_mut() = true;
    }

    fn error(&mut self, _: &mut Reactor, error: ClientError) {
        panic!("{error}");
    }
}

#[test]
fn a_paused_body_waits_for_its_resume_and_so_does_the_eof() {
    let mut test = TestReactor::new();
    let client = HttpClient::new();
    let handler = Pausing {
        pieces: Rc::default(),
        resumer: Rc::default(),
        ended: Rc::default(),
    };
    let (pieces, resumer, ended) = (
        handler.pieces.clone(),
        handler.resumer.clone(),
        handler.ended.clone(),
    );
    let conn = open_with(
        &mut test,
        &client,
        Request::get("http://a/"),
        Box::new(handler),
    );
    test.feed(&conn, b"HTTP/1.1 200 OK\r\n\r\nfirst");
    test.feed(&conn, b"second");
    assert_eq!(*pieces.borrow(), [b"first".to_vec()], "held while paused");
    let resume = |test: &mut TestReactor| {
        let resumer = resumer.borrow_mut().take().expect("paused");
        resumer.resume(test.reactor());
        test.run_pending();
    };
    resume(&mut test);
    assert_eq!(pieces.borrow().concat(), b"firstsecond");
    // (The in-memory peer's EOF is fed on its own: after a short read the harness, unlike a
    // socket's RDHUP, brings no new readiness for an EOF fed with the data.)
    test.feed_eof(&conn);
    assert!(!*ended.borrow(), "the EOF waits behind the pause too");
    resume(&mut test);
    assert!(*ended.borrow(), "the EOF ended the body after the resume");
    assert!(conn.is_closed());
}

#[test]
fn a_streamed_request_body_is_pulled_under_the_high_watermark() {
    /// An endless source that waits once at the start, counting what it gave.
    struct Endless(Rc<RefCell<usize>>, Rc<RefCell<Option<BodyWaker>>>, bool);
    impl BodySource for Endless {
        fn pull(&mut self, _: &mut Reactor, waker: BodyWaker) -> Pull {
            if !self.2 {
                self.2 = true;
                *self.1.borrow_mut() = Some(waker);
                return Pull::Wait;
            }
            *self.0.borrow_mut() += 1000;
            Pull::Data(bytes::Bytes::from(vec![b'x'; 1000]))
        }
    }
    let mut test = TestReactor::new();
    let client = HttpClient::new();
    let produced = Rc::new(RefCell::new(0));
    let waker = Rc::new(RefCell::new(None));
    let source = Endless(produced.clone(), waker.clone(), false);
    let request = Request::new(Method::PUT, "http://a/").body_stream(source);
    let (conn, _) = open(&mut test, &client, request);
    conn.set_write_room(Some(0)); // the peer reads nothing from now on
    let wake: BodyWaker = waker.borrow_mut().take().expect("the source waited");
    wake.wake(test.reactor());
    test.run_pending();
    let first = *produced.borrow();
    test.advance(Duration::from_secs(1));
    // Pulled only while the queue had room: one high watermark and a piece, then it waits
    // for resume_writing, which a peer that reads nothing never brings.
    assert!(
        first > 0 && first <= upload::HIGH_WATER + 1000,
        "{first} bytes pulled"
    );
    assert_eq!(*produced.borrow(), first);
    // Once the peer reads, resume_writing pulls again.
    conn.set_write_room(Some(200_000));
    test.run_pending();
    assert!(*produced.borrow() > first);
}

#[test]
fn an_empty_piece_from_the_source_waits_for_its_wake() {
    /// Gives an empty piece first (keeping the waker), then "ok" once woken, then the end.
    struct Hesitant(Rc<RefCell<Option<BodyWaker>>>, u32);
    impl BodySource for Hesitant {
        fn pull(&mut self, _: &mut Reactor, waker: BodyWaker) -> Pull {
            self.1 += 1;
            match self.1 {
                1 => {
                    *self.0.borrow_mut() = Some(waker);
                    Pull::Data(bytes::Bytes::new())
                }
                2 => Pull::Data(bytes::Bytes::from_static(b"ok")),
                _ => Pull::End,
            }
        }
    }
    let mut test = TestReactor::new();
    let client = HttpClient::new();
    let waker = Rc::new(RefCell::new(None));
    let request = Request::new(Method::PUT, "http://a/").body_stream(Hesitant(waker.clone(), 0));
    // Pulled again at once after the empty piece, this would never return.
    let (conn, _) = open(&mut test, &client, request);
    test.run_pending();
    let head = conn.take_written();
    assert!(head.ends_with(b"\r\n\r\n"), "only the head so far");
    let wake: BodyWaker = waker
        .borrow_mut()
        .take()
        .expect("the source kept its waker");
    wake.wake(test.reactor());
    test.run_pending();
    assert_eq!(conn.take_written(), b"2\r\nok\r\n0\r\n\r\n");
}

/// An endless source that waits once at the start (so the test can close the peer's window
/// before the body flows), then gives kilobytes.
struct Endless(Rc<RefCell<Option<BodyWaker>>>, bool);

impl BodySource for Endless {
    fn pull(&mut self, _: &mut Reactor, waker: BodyWaker) -> Pull {
        if !self.1 {
            self.1 = true;
            *self.0.borrow_mut() = Some(waker);
            return Pull::Wait;
        }
        Pull::Data(bytes::Bytes::from_static(&[b'x'; 1000]))
    }
}

/// Opens an endless upload with `config` to a peer that takes no byte of its body.
fn stalled_upload(test: &mut TestReactor, config: ClientConfig) -> (TestConnection, Answer) {
    let client = HttpClient::with_config(config);
    let waker = Rc::new(RefCell::new(None));
    let request = Request::new(Method::PUT, "http://a/").body_stream(Endless(waker.clone(), false));
    let (conn, answer) = open(test, &client, request);
    conn.set_write_room(Some(0));
    let wake: BodyWaker = waker.borrow_mut().take().expect("the source waited");
    wake.wake(test.reactor());
    test.run_pending();
    (conn, answer)
}

fn assert_timeout(answer: &Answer, kind: TimeoutKind, after: Duration) {
    match taken(answer) {
        Some(Err(ClientError::Timeout { which, after: a })) if which == kind && a == after => {}
        other => panic!("expected a {kind:?} timeout after {after:?}, got {other:?}"),
    }
}

#[test]
fn a_request_the_peer_stops_taking_fails_after_the_send_timeout() {
    let mut test = TestReactor::new();
    let timeout = Duration::from_secs(30);
    let config = ClientConfig::default().with_send_timeout(Some(timeout));
    let (conn, answer) = stalled_upload(&mut test, config);
    test.advance(timeout - Duration::from_millis(1));
    assert!(taken(&answer).is_none(), "failed early");
    test.advance(Duration::from_millis(1));
    assert_timeout(&answer, TimeoutKind::Send, timeout);
    assert!(conn.is_closed());
}

#[test]
fn the_send_timeout_counts_from_the_last_progress() {
    let mut test = TestReactor::new();
    let timeout = Duration::from_secs(30);
    let config = ClientConfig::default().with_send_timeout(Some(timeout));
    let (conn, answer) = stalled_upload(&mut test, config);
    // Every 20 s the peer takes 1000 bytes: the guard, first due at 30 s, waits on.
    for _ in 0..5 {
        test.advance(Duration::from_secs(20));
        conn.set_write_room(Some(1000));
        test.run_pending();
        assert!(taken(&answer).is_none(), "failed while the peer read");
    }
    // The last progress was at 100 s: the request fails at 130 s, not before.
    test.advance(timeout - Duration::from_millis(1));
    assert!(taken(&answer).is_none(), "failed early");
    test.advance(Duration::from_millis(1));
    assert_timeout(&answer, TimeoutKind::Send, timeout);
}

#[test]
fn no_send_timeout_waits_for_ever() {
    let mut test = TestReactor::new();
    let config = ClientConfig::default().with_send_timeout(None);
    let (conn, answer) = stalled_upload(&mut test, config);
    test.advance(Duration::from_secs(3600));
    assert!(taken(&answer).is_none());
    assert!(!conn.is_closed());
}

#[test]
fn the_head_timeout_starts_when_the_request_is_written() {
    let mut test = TestReactor::new();
    let head = Duration::from_secs(5);
    let config = ClientConfig::default().with_head_timeout(Some(head));
    let client = HttpClient::with_config(config);
    // A first request leaves the connection idle in the pool; the next one reuses it.
    let (conn, answer) = open(&mut test, &client, Request::get("http://a/"));
    test.feed(&conn, b"HTTP/1.1 204 No Content\r\n\r\n");
    assert!(taken(&answer).unwrap().is_ok());
    conn.set_write_room(Some(0));
    let answer: Answer = Rc::default();
    let slot = answer.clone();
    let body = vec![b'x'; 300_000];
    client.send(
        test.reactor(),
        Request::post("http://a/", body),
        move |r, _| *slot.borrow_mut() = Some(r),
    );
    test.run_pending();
    // Queued 10 s without being taken (under the send timeout): no head timeout yet.
    test.advance(Duration::from_secs(10));
    assert!(
        taken(&answer).is_none(),
        "timed out while the request was queued"
    );
    conn.set_write_room(None);
    test.run_pending();
    assert!(conn.take_text().ends_with(&"x".repeat(1000)));
    test.advance(head - Duration::from_millis(1));
    assert!(
        taken(&answer).is_none(),
        "the head timeout ran from the queueing"
    );
    test.advance(Duration::from_millis(1));
    assert_timeout(&answer, TimeoutKind::Head, head);
}

/// A loopback URL where nothing listens (a port bound, then released).
fn closed_port_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("http://127.0.0.1:{port}/")
}

/// A connection left idle in `client`'s pool after one answered GET to `url`, and the
/// answer cell of a `POST` then sent on it.
fn post_on_a_reused_connection(
    test: &mut TestReactor,
    client: &HttpClient,
    url: &str,
) -> (TestConnection, Answer) {
    let (conn, answer) = open(test, client, Request::get(url));
    test.feed(&conn, b"HTTP/1.1 204 No Content\r\n\r\n");
    assert!(taken(&answer).unwrap().is_ok());
    assert_eq!(client.idle_connections(), 1);
    let answer: Answer = Rc::default();
    let slot = answer.clone();
    client.send(test.reactor(), Request::post(url, "once"), move |r, _| {
        *slot.borrow_mut() = Some(r)
    });
    (conn, answer)
}

#[test]
fn a_post_not_sent_at_all_before_the_connection_broke_is_retried_once() {
    let mut test = TestReactor::new();
    let client = HttpClient::new();
    let url = closed_port_url();
    let (conn, answer) = post_on_a_reused_connection(&mut test, &client, &url);
    conn.set_write_room(Some(0)); // the POST is queued, not one byte of it leaves
    test.run_pending();
    assert_eq!(client.idle_connections(), 0, "the POST took the connection");
    test.reset(&conn);
    assert!(conn.is_closed());
    // The server cannot have seen it: it goes again, on a new connection, which (nothing
    // listening there) is refused: a connect error, not the reset.
    for _ in 0..100 {
        if answer.borrow().is_some() {
            break;
        }
        test.reactor().iterate(Duration::from_millis(100)).unwrap();
    }
    match taken(&answer) {
        Some(Err(ClientError::Connect(_))) => {}
        other => panic!("expected the retry's connect to be refused, got {other:?}"),
    }
}

#[test]
fn a_post_sent_before_the_connection_broke_is_not_retried() {
    let mut test = TestReactor::new();
    let client = HttpClient::new();
    let (conn, answer) = post_on_a_reused_connection(&mut test, &client, &closed_port_url());
    test.run_pending();
    assert!(conn.take_text().ends_with("\r\n\r\nonce"), "the POST left");
    test.reset(&conn);
    match taken(&answer) {
        Some(Err(ClientError::ConnectionClosed(Some(_)))) => {}
        other => panic!("expected the POST to fail unanswered, got {other:?}"),
    }
}
