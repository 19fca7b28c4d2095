//! The HTTP client over real loopback sockets, part three: request bodies streamed
//! from a `BodySource` (chunked and with a length, a source that waits and wakes, a source
//! that breaks its length), and what a streamed body means for redirects.

mod common;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use common::*;
use torsion::protocols::http::client::{
    BodySource, BodyWaker, ClientConfig, ClientError, HttpClient, Pull, Request, Response,
};
use torsion::protocols::http::server::{HttpServer, Request as Incoming, Responder, Router};
use torsion::protocols::http::{header, HeaderMap, HeaderValue, Limits, StatusCode};
use torsion::{Bytes, Reactor};

/// Sends `request` and turns the reactor until the answer.
fn fetch(
    reactor: &mut Reactor,
    client: &HttpClient,
    request: Request,
) -> Result<Response, ClientError> {
    let answer = Rc::new(RefCell::new(None));
    let slot = answer.clone();
    client.send(reactor, request, move |r, _| *slot.borrow_mut() = Some(r));
    run_until(reactor, "the response", || answer.borrow().is_some());
    let taken = answer.borrow_mut().take();
    taken.unwrap()
}

/// A server whose `/check` answers the body's length, its framing, and whether it is the
/// test pattern; `/r307` and `/r303` redirect to `/check`.
fn serve() -> (Reactor, String) {
    init_logging();
    let check = |req: Incoming, res: Responder, r: &mut Reactor| {
        let chunked = req.head.headers.contains_key(header::TRANSFER_ENCODING);
        let intact = check_pattern(&pattern_block(), 0, &req.body).is_ok();
        let body = format!("{} {} {chunked} {intact}", req.method(), req.body.len());
        res.respond(r, StatusCode::OK, &HeaderMap::new(), body)
    };
    let redirect = |status: StatusCode| {
        move |_: Incoming, res: Responder, r: &mut Reactor| {
            let mut headers = HeaderMap::new();
            headers.insert(header::LOCATION, HeaderValue::from_static("/check"));
            res.respond(r, status, &headers, "")
        }
    };
    let router = Router::new()
        .post("/check", check)
        .get("/check", check)
        .post("/r307", redirect(StatusCode::TEMPORARY_REDIRECT))
        .post("/r303", redirect(StatusCode::SEE_OTHER));
    let server = HttpServer::new(router).with_limits(Limits::default().with_max_body_len(64 << 20));
    let mut reactor = Reactor::new().unwrap();
    let port = reactor.listen_tcp(any_loopback_port(), server).unwrap();
    (reactor, format!("http://{}", port.local_addr()))
}

/// The test pattern in `piece`-byte pieces, `total` bytes in all; with `waits`, it answers
/// `Wait` before every piece and wakes itself from a timer.
struct Pattern {
    block: Vec<u8>,
    sent: usize,
    total: usize,
    piece: usize,
    announce: Option<u64>,
    waits: bool,
    waiting: bool,
    pulls: Rc<Cell<usize>>,
    /// Set by the timer that wakes the source: a pull while waiting before it is a bug.
    woken: Rc<Cell<bool>>,
}

impl Pattern {
    fn new(total: usize, piece: usize) -> Self {
        Pattern {
            block: pattern_block(),
            sent: 0,
            total,
            piece,
            announce: None,
            waits: false,
            waiting: false,
            pulls: Rc::default(),
            woken: Rc::default(),
        }
    }
}

impl BodySource for Pattern {
    fn length(&self) -> Option<u64> {
        self.announce
    }

    fn pull(&mut self, reactor: &mut Reactor, waker: BodyWaker) -> Pull {
        self.pulls.set(self.pulls.get() + 1);
        if self.sent == self.total {
            return Pull::End;
        }
        if self.waits && !self.waiting {
            self.waiting = true;
            self.woken.set(false);
            let woken = self.woken.clone();
            reactor.call_later(Duration::from_millis(1), move |r| {
                woken.set(true);
                waker.wake(r)
            });
            return Pull::Wait;
        }
        assert!(!self.waits || self.woken.get(), "pulled while waiting");
        self.waiting = false;
        let start = self.sent % PATTERN_PERIOD;
        let len = self
            .piece
            .min(self.total - self.sent)
            .min(PATTERN_PERIOD - start);
        self.sent += len;
        Pull::Data(Bytes::copy_from_slice(&self.block[start..start + len]))
    }
}

#[test]
fn a_streamed_body_goes_chunked_or_with_its_length() {
    let (mut reactor, base) = serve();
    let client = HttpClient::new();
    let total = 8 << 20;
    let chunked =
        Request::post(format!("{base}/check"), "").body_stream(Pattern::new(total, 50_000));
    let response = fetch(&mut reactor, &client, chunked).unwrap();
    assert_eq!(response.body, format!("POST {total} true true"));
    let mut sized = Pattern::new(total, 50_000);
    sized.announce = Some(total as u64);
    let request = Request::post(format!("{base}/check"), "").body_stream(sized);
    let response = fetch(&mut reactor, &client, request).unwrap();
    assert_eq!(response.body, format!("POST {total} false true"));
}

#[test]
fn a_source_that_waits_is_pulled_again_once_it_wakes() {
    let (mut reactor, base) = serve();
    let client = HttpClient::new();
    let mut source = Pattern::new(100_000, 10_000);
    source.waits = true;
    let pulls = source.pulls.clone();
    let request = Request::post(format!("{base}/check"), "").body_stream(source);
    let response = fetch(&mut reactor, &client, request).unwrap();
    assert_eq!(response.body, "POST 100000 true true");
    // Eleven pieces (ten, one split at the pattern's period), each after a wait, then the end.
    assert_eq!(pulls.get(), 23);
}

#[test]
fn a_source_that_breaks_its_length_fails_the_request() {
    let (mut reactor, base) = serve();
    let client = HttpClient::new();
    let mut short = Pattern::new(1000, 100);
    short.announce = Some(2000);
    let request = Request::post(format!("{base}/check"), "").body_stream(short);
    let result = fetch(&mut reactor, &client, request);
    assert!(
        matches!(
            result,
            Err(ClientError::BodyLength {
                declared: 2000,
                produced: 1000
            })
        ),
        "{result:?}"
    );
}

#[test]
fn a_streamed_body_follows_303_but_returns_307() {
    let (mut reactor, base) = serve();
    let client = HttpClient::with_config(ClientConfig::default().with_redirects(5));
    let request = Request::post(format!("{base}/r303"), "").body_stream(Pattern::new(1000, 100));
    let response = fetch(&mut reactor, &client, request).unwrap();
    assert_eq!(response.body, "GET 0 false true");
    let request = Request::post(format!("{base}/r307"), "").body_stream(Pattern::new(1000, 100));
    let response = fetch(&mut reactor, &client, request).unwrap();
    assert_eq!(response.status, StatusCode::TEMPORARY_REDIRECT);
}
