//! The HTTP client over real loopback sockets, part two: the keep-alive pool (reuse,
//! the per-host limit, the idle timeout, a server that closes idle connections, the retry of
//! a request that met such a close), redirects, streaming a body with backpressure, and
//! cancelling.

mod common;

use std::cell::{Cell, RefCell};
use std::io::Write;
use std::rc::Rc;
use std::time::Duration;

use common::scripted::{read_request, Scripted};
use common::*;
use torsion::protocols::http::client::{
    ClientConfig, ClientError, HttpClient, Request, Response, ResponseFlow, ResponseHandler,
};
use torsion::protocols::http::server::{
    HttpConnection, HttpServer, Request as ServerRequest, Responder, Router,
};
use torsion::protocols::http::{header, HeaderMap, HeaderValue, Method, ResponseHead, StatusCode};
use torsion::{Address, Factory, Reactor};

type Answer = Rc<RefCell<Option<Result<Response, ClientError>>>>;

/// Sends `request`; the answer lands in the returned cell.
fn send(reactor: &mut Reactor, client: &HttpClient, request: Request) -> Answer {
    let answer: Answer = Rc::default();
    let slot = answer.clone();
    client.send(reactor, request, move |r, _| *slot.borrow_mut() = Some(r));
    answer
}

fn wait(reactor: &mut Reactor, answer: &Answer) -> Result<Response, ClientError> {
    run_until(reactor, "the response", || answer.borrow().is_some());
    let taken = answer.borrow_mut().take();
    taken.unwrap()
}

fn fetch(
    reactor: &mut Reactor,
    client: &HttpClient,
    request: Request,
) -> Result<Response, ClientError> {
    let answer = send(reactor, client, request);
    wait(reactor, &answer)
}

/// An `HttpServer` that counts the connections it accepts.
struct Counting {
    server: HttpServer<Router>,
    accepted: Rc<Cell<usize>>,
}

impl Factory for Counting {
    type Protocol = HttpConnection<Router>;

    fn build_protocol(&mut self, peer: Address) -> Option<Self::Protocol> {
        self.accepted.set(self.accepted.get() + 1);
        self.server.build_protocol(peer)
    }
}

/// Routes: `/plaintext`; `/method` answers `METHOD body`; `/rNNN` redirects with status NNN
/// to `method` (relative); `/loop` redirects to itself; `/slow` answers after 50 ms.
fn router() -> Router {
    let mut router = Router::new()
        .get(
            "/plaintext",
            |_: ServerRequest, res: Responder, r: &mut Reactor| {
                res.respond(r, StatusCode::OK, &HeaderMap::new(), "Hello, World!")
            },
        )
        .get(
            "/loop",
            |_: ServerRequest, res: Responder, r: &mut Reactor| {
                res.respond(r, StatusCode::FOUND, &location("/loop"), "")
            },
        )
        .get(
            "/slow",
            |_: ServerRequest, res: Responder, r: &mut Reactor| {
                r.call_later(Duration::from_millis(50), move |r| {
                    res.respond(r, StatusCode::OK, &HeaderMap::new(), "slow")
                });
            },
        );
    for method in [Method::GET, Method::POST, Method::HEAD, Method::PUT] {
        router = router.route(
            method,
            "/method",
            |req: ServerRequest, res: Responder, r: &mut Reactor| {
                let body = format!("{} {}", req.method(), String::from_utf8_lossy(&req.body));
                let mut headers = HeaderMap::new();
                if let Some(kind) = req.head.headers.get(header::CONTENT_TYPE) {
                    headers.insert("x-had-content-type", kind.clone());
                }
                res.respond(r, StatusCode::OK, &headers, body)
            },
        );
    }
    for status in [301u16, 302, 303, 307, 308] {
        let redirect = move |_: ServerRequest, res: Responder, r: &mut Reactor| {
            let status = StatusCode::from_u16(status).unwrap();
            res.respond(r, status, &location("method"), "moved")
        };
        router = router
            .route(Method::GET, &format!("/r{status}"), redirect)
            .route(Method::POST, &format!("/r{status}"), redirect)
            .route(Method::HEAD, &format!("/r{status}"), redirect);
    }
    router
}

fn location(to: &'static str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(header::LOCATION, HeaderValue::from_static(to));
    headers
}

/// A reactor with the counting server listening; its base URL and accept count.
fn serve() -> (Reactor, String, Rc<Cell<usize>>) {
    init_logging();
    let mut reactor = Reactor::new().unwrap();
    let accepted = Rc::new(Cell::new(0));
    let factory = Counting {
        server: HttpServer::new(router()),
        accepted: accepted.clone(),
    };
    let port = reactor.listen_tcp(any_loopback_port(), factory).unwrap();
    (reactor, format!("http://{}", port.local_addr()), accepted)
}

#[test]
fn sequential_requests_share_one_connection() {
    let (mut reactor, base, accepted) = serve();
    let client = HttpClient::new();
    for _ in 0..10 {
        let response = fetch(
            &mut reactor,
            &client,
            Request::get(format!("{base}/plaintext")),
        );
        assert_eq!(response.unwrap().body, "Hello, World!");
    }
    assert_eq!(accepted.get(), 1);
    assert_eq!(client.idle_connections(), 1);
}

#[test]
fn requests_past_the_per_host_limit_wait_for_a_connection() {
    let (mut reactor, base, accepted) = serve();
    let client = HttpClient::with_config(ClientConfig::default().with_max_per_host(2));
    let answers: Vec<Answer> = (0..6)
        .map(|_| send(&mut reactor, &client, Request::get(format!("{base}/slow"))))
        .collect();
    for answer in &answers {
        assert_eq!(wait(&mut reactor, answer).unwrap().body, "slow");
        assert!(client.open_connections() <= 2);
    }
    assert_eq!(accepted.get(), 2);
}

#[test]
fn idle_connections_close_after_the_idle_timeout() {
    let (mut reactor, base, _) = serve();
    let config = ClientConfig::default().with_idle_timeout(Duration::from_millis(100));
    let client = HttpClient::with_config(config);
    fetch(
        &mut reactor,
        &client,
        Request::get(format!("{base}/plaintext")),
    )
    .unwrap();
    assert_eq!(client.idle_connections(), 1);
    run_until(&mut reactor, "the idle connection to close", || {
        client.open_connections() == 0
    });
    assert_eq!(client.idle_connections(), 0);
}

#[test]
fn a_connection_the_server_closes_while_idle_leaves_the_pool() {
    init_logging();
    let server = Scripted::start(|accept| {
        for _ in 0..2 {
            let mut stream = accept();
            read_request(&mut stream);
            stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                .unwrap();
            // Closes while the client holds the connection idle.
        }
    });
    let mut reactor = Reactor::new().unwrap();
    let client = HttpClient::new();
    fetch(&mut reactor, &client, Request::get(server.url("/"))).unwrap();
    run_until(&mut reactor, "the pool to notice the close", || {
        client.open_connections() == 0
    });
    let second = fetch(&mut reactor, &client, Request::get(server.url("/"))).unwrap();
    assert_eq!(second.body, "ok");
    let accepted = server.accepted();
    server.thread.join().unwrap();
    assert_eq!(accepted, 2);
}

/// A server whose first connection answers one request, then reads the next and closes
/// without a byte of answer (the race of an idle close with a new request); later
/// connections answer every request.
fn racing_server() -> Scripted {
    Scripted::start(|accept| {
        let mut first = accept();
        read_request(&mut first);
        first
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirst")
            .unwrap();
        read_request(&mut first);
        drop(first);
        let mut second = accept();
        while read_request(&mut second).is_some() {
            second
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nretry")
                .unwrap();
        }
    })
}

#[test]
fn an_idempotent_request_meeting_an_idle_close_is_retried_once() {
    init_logging();
    let server = racing_server();
    let mut reactor = Reactor::new().unwrap();
    let client = HttpClient::new();
    let first = fetch(&mut reactor, &client, Request::get(server.url("/")));
    assert_eq!(first.unwrap().body, "first");
    let second = fetch(&mut reactor, &client, Request::get(server.url("/")));
    assert_eq!(second.unwrap().body, "retry");
    assert_eq!(server.accepted(), 2);
    client.close_idle(&mut reactor);
    run_until(&mut reactor, "the pool to close", || {
        client.open_connections() == 0
    });
    server.thread.join().unwrap();
}

#[test]
fn a_post_meeting_an_idle_close_is_not_retried() {
    init_logging();
    let server = racing_server();
    let mut reactor = Reactor::new().unwrap();
    let client = HttpClient::new();
    fetch(&mut reactor, &client, Request::get(server.url("/"))).unwrap();
    let post = fetch(
        &mut reactor,
        &client,
        Request::post(server.url("/"), "once"),
    );
    assert!(
        matches!(post, Err(ClientError::ConnectionClosed(_))),
        "{post:?}"
    );
    // A new request still works, on a new connection.
    let after = fetch(&mut reactor, &client, Request::get(server.url("/"))).unwrap();
    assert_eq!(after.body, "retry");
    client.close_idle(&mut reactor);
    run_until(&mut reactor, "the pool to close", || {
        client.open_connections() == 0
    });
    server.thread.join().unwrap();
}

#[test]
fn redirects_301_302_303_become_get_and_307_308_keep_method_and_body() {
    let (mut reactor, base, _) = serve();
    let client = HttpClient::with_config(ClientConfig::default().with_redirects(5));
    for status in [301, 302, 303, 307, 308] {
        let post = Request::post(format!("{base}/r{status}"), "data")
            .header(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        let response = fetch(&mut reactor, &client, post).unwrap();
        assert_eq!(response.status, StatusCode::OK, "{status}");
        assert_eq!(response.url, format!("{base}/method"));
        if status < 307 {
            assert_eq!(response.body, "GET ", "{status}");
            assert!(!response.headers.contains_key("x-had-content-type"));
        } else {
            assert_eq!(response.body, "POST data", "{status}");
            assert!(response.headers.contains_key("x-had-content-type"));
        }
    }
    let head = fetch(&mut reactor, &client, Request::head(format!("{base}/r303"))).unwrap();
    assert_eq!((head.status, head.body.len()), (StatusCode::OK, 0));
    assert_eq!(head.headers["content-length"], "5", "HEAD stayed HEAD");
}

#[test]
fn redirects_stop_at_the_maximum_and_are_off_by_default() {
    let (mut reactor, base, _) = serve();
    let client = HttpClient::with_config(ClientConfig::default().with_redirects(3));
    let result = fetch(&mut reactor, &client, Request::get(format!("{base}/loop")));
    assert!(
        matches!(result, Err(ClientError::TooManyRedirects { max: 3 })),
        "{result:?}"
    );
    let plain = HttpClient::new();
    let response = fetch(&mut reactor, &plain, Request::get(format!("{base}/r301"))).unwrap();
    assert_eq!(response.status, StatusCode::MOVED_PERMANENTLY);
    assert_eq!(response.headers[header::LOCATION], "method");
    assert_eq!(response.body, "moved");
}

/// Streams a body, pausing at every piece and resuming from a timer.
struct Paced {
    received: Rc<RefCell<Vec<u8>>>,
    pauses: Rc<Cell<usize>>,
    largest: Rc<Cell<usize>>,
    done: Rc<Cell<bool>>,
}

impl ResponseHandler for Paced {
    fn head(&mut self, _: &mut Reactor, head: ResponseHead, _: &mut ResponseFlow<'_>) {
        assert_eq!(head.status, StatusCode::OK);
    }

    fn data(&mut self, reactor: &mut Reactor, data: &[u8], flow: &mut ResponseFlow<'_>) {
        self.received.borrow_mut().extend_from_slice(data);
        self.largest.set(self.largest.get().max(data.len()));
        self.pauses.set(self.pauses.get() + 1);
        let resumer = flow.pause();
        reactor.call_later(Duration::from_millis(1), move |r| resumer.resume(r));
    }

    fn end(&mut self, _: &mut Reactor, _: HeaderMap) {
        self.done.set(true);
    }

    fn error(&mut self, _: &mut Reactor, error: ClientError) {
        panic!("{error}");
    }
}

#[test]
fn a_streamed_body_is_paced_by_the_handler() {
    init_logging();
    const LEN: usize = 4 * 1024 * 1024;
    let block = pattern_block();
    let server = Scripted::start(move |accept| {
        let mut stream = accept();
        read_request(&mut stream);
        let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {LEN}\r\n\r\n");
        stream.write_all(head.as_bytes()).unwrap();
        write_pattern(&mut stream, &block, LEN).unwrap();
    });
    let mut reactor = Reactor::new().unwrap();
    let client = HttpClient::new();
    let handler = Paced {
        received: Rc::default(),
        pauses: Rc::default(),
        largest: Rc::default(),
        done: Rc::default(),
    };
    let (received, pauses, largest, done) = (
        handler.received.clone(),
        handler.pauses.clone(),
        handler.largest.clone(),
        handler.done.clone(),
    );
    client.send_streaming(&mut reactor, Request::get(server.url("/")), handler);
    run_until(&mut reactor, "the streamed body", || done.get());
    server.thread.join().unwrap();
    assert_eq!(received.borrow().len(), LEN);
    assert_eq!(
        check_pattern(&pattern_block(), 0, &received.borrow()),
        Ok(())
    );
    // Each pause held the delivery: pieces stay at most one read's worth.
    assert!(
        pauses.get() >= LEN / (256 * 1024),
        "{} pauses",
        pauses.get()
    );
    assert!(
        largest.get() <= 256 * 1024,
        "a piece of {} bytes",
        largest.get()
    );
}

#[test]
fn a_cancelled_request_is_never_answered_and_leaves_no_connection_busy() {
    let (mut reactor, base, _) = serve();
    let client = HttpClient::new();
    let called = Rc::new(Cell::new(false));
    let flag = called.clone();
    let pending = client.send(
        &mut reactor,
        Request::get(format!("{base}/slow")),
        move |_, _| flag.set(true),
    );
    run_until(&mut reactor, "the connection", || {
        client.open_connections() == 1
    });
    pending.cancel(&mut reactor);
    assert!(pending.is_finished());
    // Cancelled while connecting, the connection joins the pool (nothing was written);
    // while the request was on it, it is closed.
    run_until(&mut reactor, "no connection busy", || {
        client.open_connections() == client.idle_connections()
    });
    reactor.iterate(Duration::from_millis(100)).unwrap();
    assert!(!called.get());
    let after = fetch(
        &mut reactor,
        &client,
        Request::get(format!("{base}/plaintext")),
    );
    assert_eq!(after.unwrap().body, "Hello, World!");
}
