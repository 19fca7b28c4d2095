//! Middleware: wrappers around a [`Handler`] that see each request before it and each
//! response after it, composed in order with [`HandlerExt::wrap`].
//!
//! `handler.wrap(a).wrap(b)` builds `b(a(handler))`: the **last** wrap is the outermost. A
//! request meets `b` first, then `a`, then the handler; the response's hooks
//! ([`Responder::on_response`]) run the other way, `a`'s then `b`'s, so an outer middleware
//! sees the headers the inner ones added. A middleware that answers by itself (a refused
//! login, a full server) never calls the inner ones.
//!
//! Ready-made: [`Logging`] (method, path, status and duration, through `log`),
//! [`ResponseHeaders`] (headers added to every response), [`Timing`] (a `Server-Timing`
//! header), [`ConcurrencyLimit`] (503 past a number of requests in progress) and
//! [`BasicAuth`] (HTTP Basic authentication, RFC 7617).
//!
//! ```
//! use torsion_protocols::http::server::middleware::{HandlerExt, Logging, ResponseHeaders, Timing};
//! use torsion_protocols::http::server::{HttpServer, Request, Responder, Router};
//! use torsion_protocols::http::{header, HeaderMap, HeaderValue, StatusCode};
//! use torsion_reactor::testing::TestReactor;
//! use torsion_reactor::Reactor;
//!
//! let mut extra = HeaderMap::new();
//! extra.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
//! let app = Router::new()
//!     .get("/", |_: Request, res: Responder, r: &mut Reactor| {
//!         res.respond(r, StatusCode::OK, &HeaderMap::new(), "hi")
//!     })
//!     .wrap(ResponseHeaders::new(extra))
//!     .wrap(Timing::new())
//!     .wrap(Logging);
//! let mut server = HttpServer::new(app);
//! let mut test = TestReactor::new();
//! let client = test.connect_from(&mut server).unwrap();
//! test.feed(&client, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
//! let response = client.take_text();
//! assert!(response.contains("cache-control: no-store\r\n"));
//! assert!(response.contains("server-timing: app;dur="));
//! ```

use std::cell::Cell;
use std::rc::Rc;
use std::time::Instant;

use http::{header, HeaderMap, HeaderValue, StatusCode};
use torsion_reactor::Reactor;

use super::{BodyMode, Handler, Request, Responder};
use crate::http::codec::RequestHead;

pub use super::basic_auth::BasicAuth;

/// Wraps a handler: sees the request first, and decides whether and how `next` (the handler
/// it wraps, itself perhaps wrapped) answers it. To see the response, register a hook on the
/// responder ([`Responder::on_response`]) before passing it on.
pub trait Middleware: 'static {
    /// Handles `request`, usually by calling `next.handle(request, responder, reactor)`.
    fn handle(
        &self,
        request: Request,
        responder: Responder,
        reactor: &mut Reactor,
        next: &dyn Handler,
    );
}

/// A handler wrapped in a middleware ([`HandlerExt::wrap`]); itself a [`Handler`], so it can
/// be wrapped again or routed to. The body is taken as the inner handler asks.
pub struct Wrapped<H, M> {
    inner: H,
    middleware: M,
}

impl<H: Handler, M: Middleware> Handler for Wrapped<H, M> {
    fn body_mode(&self, head: &RequestHead) -> BodyMode {
        self.inner.body_mode(head)
    }

    fn handle(&self, request: Request, responder: Responder, reactor: &mut Reactor) {
        self.middleware
            .handle(request, responder, reactor, &self.inner)
    }
}

/// Adds [`wrap`](HandlerExt::wrap) to every handler.
pub trait HandlerExt: Handler + Sized {
    /// This handler inside `middleware`: the last wrap is the outermost (see the
    /// [module](self) docs).
    fn wrap<M: Middleware>(self, middleware: M) -> Wrapped<Self, M> {
        Wrapped {
            inner: self,
            middleware,
        }
    }
}

impl<H: Handler> HandlerExt for H {}

/// Logs every request at `info` level once it is answered: method, path, status and the time
/// from the request to its response head, on the reactor's clock (target
/// `torsion_protocols::http::server::middleware`).
pub struct Logging;

impl Middleware for Logging {
    fn handle(
        &self,
        request: Request,
        mut responder: Responder,
        reactor: &mut Reactor,
        next: &dyn Handler,
    ) {
        let started = reactor.now();
        let (method, path) = (request.method().clone(), request.path().to_owned());
        responder.on_response(move |reactor, status, _| {
            let took = reactor.now().saturating_duration_since(started);
            log::info!("{method} {path} {} {took:?}", status.as_u16());
        });
        next.handle(request, responder, reactor)
    }
}

/// Adds these headers to every response, unless the handler set a header of that name.
pub struct ResponseHeaders(HeaderMap);

impl ResponseHeaders {
    /// Adds `headers` (every value of each name) to responses that lack them.
    pub fn new(headers: HeaderMap) -> Self {
        ResponseHeaders(headers)
    }
}

impl Middleware for ResponseHeaders {
    fn handle(
        &self,
        request: Request,
        mut responder: Responder,
        reactor: &mut Reactor,
        next: &dyn Handler,
    ) {
        let extra = self.0.clone();
        responder.on_response(move |_, _, headers| {
            for name in extra.keys() {
                if !headers.contains_key(name) {
                    for value in extra.get_all(name) {
                        headers.append(name.clone(), value.clone());
                    }
                }
            }
        });
        next.handle(request, responder, reactor)
    }
}

/// Adds `Server-Timing: app;dur=MS` (milliseconds, microsecond precision; W3C Server Timing)
/// to every response: the time from the request to its response head on the reactor's
/// clock, which browsers' developer tools show.
#[derive(Default)]
pub struct Timing {
    _private: (),
}

impl Timing {
    /// The timing middleware.
    pub fn new() -> Self {
        Timing::default()
    }
}

impl Middleware for Timing {
    fn handle(
        &self,
        request: Request,
        mut responder: Responder,
        reactor: &mut Reactor,
        next: &dyn Handler,
    ) {
        let started: Instant = reactor.now();
        responder.on_response(move |reactor, _, headers| {
            let took = reactor.now().saturating_duration_since(started);
            let value = format!("app;dur={:.3}", took.as_secs_f64() * 1000.0);
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.append(header::HeaderName::from_static("server-timing"), value);
            }
        });
        next.handle(request, responder, reactor)
    }
}

/// Answers `503 Service Unavailable` (with `Retry-After: 1`) to a request arriving while
/// `max` requests are in progress on this server (this reactor: the count is not shared
/// between threads). A request is in progress until its response head is made, or its
/// responder is dropped.
pub struct ConcurrencyLimit {
    max: usize,
    in_progress: Rc<Cell<usize>>,
}

impl ConcurrencyLimit {
    /// At most `max` requests in progress at once.
    pub fn new(max: usize) -> Self {
        ConcurrencyLimit {
            max,
            in_progress: Rc::default(),
        }
    }

    /// Requests in progress now.
    pub fn in_progress(&self) -> usize {
        self.in_progress.get()
    }
}

/// One request counted in progress; released when dropped (the hook that holds it ran, or
/// was dropped with an unanswered responder).
struct InProgress(Rc<Cell<usize>>);

impl Drop for InProgress {
    fn drop(&mut self) {
        self.0.set(self.0.get() - 1);
    }
}

impl Middleware for ConcurrencyLimit {
    fn handle(
        &self,
        request: Request,
        mut responder: Responder,
        reactor: &mut Reactor,
        next: &dyn Handler,
    ) {
        if self.in_progress.get() >= self.max {
            log::warn!("{} requests in progress: 503", self.max);
            let mut headers = HeaderMap::new();
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            );
            let status = StatusCode::SERVICE_UNAVAILABLE;
            return responder.respond(reactor, status, &headers, "Service Unavailable\n");
        }
        self.in_progress.set(self.in_progress.get() + 1);
        let guard = InProgress(self.in_progress.clone());
        responder.on_response(move |_, _, _| drop(guard));
        next.handle(request, responder, reactor)
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::time::Duration;

    use torsion_reactor::testing::{TestConnection, TestReactor};

    use super::*;
    use crate::http::server::{HttpServer, Router};

    /// Records its name when it sees the request, and appends it to `x-order` on the way out.
    struct Mark(&'static str, Rc<RefCell<Vec<&'static str>>>);

    impl Middleware for Mark {
        fn handle(
            &self,
            request: Request,
            mut responder: Responder,
            reactor: &mut Reactor,
            next: &dyn Handler,
        ) {
            self.1.borrow_mut().push(self.0);
            let name = self.0;
            responder.on_response(move |_, _, headers| {
                headers.append("x-order", HeaderValue::from_static(name));
            });
            next.handle(request, responder, reactor)
        }
    }

    fn ok(_: Request, res: Responder, r: &mut Reactor) {
        res.respond(r, StatusCode::OK, &HeaderMap::new(), "ok")
    }

    fn get(test: &mut TestReactor, client: &TestConnection, path: &str) -> String {
        let request = format!("GET {path} HTTP/1.1\r\nHost: a\r\n\r\n");
        test.feed(client, request.as_bytes());
        client.take_text()
    }

    #[test]
    fn the_last_wrap_sees_the_request_first_and_the_response_last() {
        let seen = Rc::new(RefCell::new(Vec::new()));
        let app = Router::new()
            .get("/", ok)
            .wrap(Mark("inner", seen.clone()))
            .wrap(Mark("outer", seen.clone()));
        let mut server = HttpServer::new(app);
        let mut test = TestReactor::new();
        let client = test.connect_from(&mut server).unwrap();
        let response = get(&mut test, &client, "/");
        assert_eq!(*seen.borrow(), ["outer", "inner"]);
        let inner = response.find("x-order: inner").expect(&response);
        let outer = response.find("x-order: outer").expect(&response);
        assert!(inner < outer, "{response}");
    }

    #[test]
    fn response_headers_are_added_unless_the_handler_set_them() {
        let mut extra = HeaderMap::new();
        extra.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        extra.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        let app = Router::new()
            .get("/", ok)
            .get("/html", |_: Request, res: Responder, r: &mut Reactor| {
                let mut headers = HeaderMap::new();
                headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html"));
                res.respond(r, StatusCode::OK, &headers, "<p>")
            })
            .wrap(ResponseHeaders::new(extra));
        let mut server = HttpServer::new(app);
        let mut test = TestReactor::new();
        let client = test.connect_from(&mut server).unwrap();
        let plain = get(&mut test, &client, "/");
        assert!(plain.contains("cache-control: no-store\r\n"), "{plain}");
        assert!(plain.contains("content-type: text/plain\r\n"), "{plain}");
        let html = get(&mut test, &client, "/html");
        assert!(html.contains("content-type: text/html\r\n"), "{html}");
        assert!(!html.contains("text/plain"), "{html}");
        // The router's own 404 passes through the middleware too.
        let missing = get(&mut test, &client, "/missing");
        assert!(missing.starts_with("HTTP/1.1 404 "), "{missing}");
        assert!(missing.contains("cache-control: no-store\r\n"), "{missing}");
    }

    #[test]
    fn timing_reports_the_time_to_the_response_on_the_reactor_clock() {
        let app = Router::new()
            .get("/slow", |_: Request, res: Responder, r: &mut Reactor| {
                r.call_later(Duration::from_millis(250), move |r| {
                    res.respond(r, StatusCode::OK, &HeaderMap::new(), "done")
                });
            })
            .wrap(Timing::new())
            .wrap(Logging);
        let mut server = HttpServer::new(app);
        let mut test = TestReactor::new();
        let client = test.connect_from(&mut server).unwrap();
        test.feed(&client, b"GET /slow HTTP/1.1\r\nHost: a\r\n\r\n");
        test.advance(Duration::from_millis(250));
        let response = client.take_text();
        assert!(
            response.contains("server-timing: app;dur=250.000\r\n"),
            "{response}"
        );
    }

    #[test]
    fn past_the_limit_requests_get_503_until_one_is_answered() {
        let parked: Rc<RefCell<Vec<Responder>>> = Rc::default();
        let park = parked.clone();
        let limit = ConcurrencyLimit::new(2);
        let counter = limit.in_progress.clone();
        let app = Router::new()
            .get(
                "/park",
                move |_: Request, res: Responder, _: &mut Reactor| park.borrow_mut().push(res),
            )
            .wrap(limit);
        let mut server = HttpServer::new(app);
        let mut test = TestReactor::new();
        let clients: Vec<_> = (0..3)
            .map(|_| test.connect_from(&mut server).unwrap())
            .collect();
        for client in &clients {
            test.feed(client, b"GET /park HTTP/1.1\r\nHost: a\r\n\r\n");
        }
        assert_eq!(counter.get(), 2);
        let refused = clients[2].take_text();
        assert!(
            refused.starts_with("HTTP/1.1 503 Service Unavailable\r\n"),
            "{refused}"
        );
        assert!(refused.contains("retry-after: 1\r\n"), "{refused}");

        // One answered, one dropped unanswered: both free their place.
        let first = parked.borrow_mut().remove(0);
        first.respond(test.reactor(), StatusCode::OK, &HeaderMap::new(), "ok");
        assert_eq!(counter.get(), 1);
        drop(parked.borrow_mut().remove(0));
        assert_eq!(counter.get(), 0);
        test.feed(&clients[2], b"GET /park HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_eq!(counter.get(), 1);
        assert_eq!(parked.borrow().len(), 1);
    }

    #[test]
    fn basic_auth_refuses_with_a_challenge_and_lets_the_right_user_in() {
        let reached = Rc::new(Cell::new(0));
        let count = reached.clone();
        let app = Router::new()
            .get("/", move |req: Request, res: Responder, r: &mut Reactor| {
                count.set(count.get() + 1);
                ok(req, res, r)
            })
            .wrap(BasicAuth::new("test").user("Aladdin", "open sesame"));
        let mut server = HttpServer::new(app);
        let mut test = TestReactor::new();
        let client = test.connect_from(&mut server).unwrap();
        for authorization in [
            "",
            "Authorization: Basic QWxhZGRpbjpvcGVuIHNlc2FtZA==\r\n", // "open sesamd"
            "Authorization: Basic QWxhZGRpbjpPcGVuIHNlc2FtZQ==\r\n", // "Open sesame"
            "Authorization: Bearer QWxhZGRpbjpvcGVuIHNlc2FtZQ==\r\n",
        ] {
            let request = format!("GET / HTTP/1.1\r\nHost: a\r\n{authorization}\r\n");
            test.feed(&client, request.as_bytes());
            let response = client.take_text();
            assert!(
                response.starts_with("HTTP/1.1 401 Unauthorized\r\n"),
                "{response}"
            );
            let challenge = "www-authenticate: Basic realm=\"test\", charset=\"UTF-8\"\r\n";
            assert!(response.contains(challenge), "{response}");
        }
        assert_eq!(reached.get(), 0);
        let request = "GET / HTTP/1.1\r\nHost: a\r\nAuthorization: basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==\r\n\r\n";
        test.feed(&client, request.as_bytes());
        assert!(client.take_text().starts_with("HTTP/1.1 200 OK\r\n"));
        assert_eq!(reached.get(), 1);
    }

    #[test]
    fn redirects_carry_location_and_a_short_body() {
        let app = Router::new()
            .get("/old", |_: Request, res: Responder, r: &mut Reactor| {
                res.redirect(r, StatusCode::PERMANENT_REDIRECT, "/new")
            })
            .get("/odd", |_: Request, res: Responder, r: &mut Reactor| {
                res.redirect(r, StatusCode::OK, "https://example.com/")
            })
            .get("/bad", |_: Request, res: Responder, r: &mut Reactor| {
                res.redirect(r, StatusCode::SEE_OTHER, "/a\r\nSet-Cookie: x=y")
            });
        let mut server = HttpServer::new(app);
        let mut test = TestReactor::new();
        let client = test.connect_from(&mut server).unwrap();
        let moved = get(&mut test, &client, "/old");
        assert!(
            moved.starts_with("HTTP/1.1 308 Permanent Redirect\r\n"),
            "{moved}"
        );
        assert!(moved.contains("location: /new\r\n"), "{moved}");
        assert!(
            moved.ends_with("\r\n\r\nPermanent Redirect: /new\n"),
            "{moved}"
        );
        let odd = get(&mut test, &client, "/odd");
        assert!(odd.starts_with("HTTP/1.1 302 Found\r\n"), "{odd}");
        assert!(odd.contains("location: https://example.com/\r\n"), "{odd}");
        let bad = get(&mut test, &client, "/bad");
        assert!(bad.starts_with("HTTP/1.1 500 "), "{bad}");
        assert!(!bad.contains("set-cookie"), "{bad}");
    }

    #[test]
    fn hooks_see_streamed_responses_too() {
        let app = Router::new()
            .get("/stream", |_: Request, res: Responder, r: &mut Reactor| {
                let mut writer = res.stream(r, StatusCode::OK, &HeaderMap::new());
                writer.write(r, "piece");
                writer.finish(r)
            })
            .wrap(Timing::new());
        let mut server = HttpServer::new(app);
        let mut test = TestReactor::new();
        let client = test.connect_from(&mut server).unwrap();
        let response = get(&mut test, &client, "/stream");
        assert!(
            response.contains("server-timing: app;dur=0.000\r\n"),
            "{response}"
        );
        assert!(
            response.contains("transfer-encoding: chunked\r\n"),
            "{response}"
        );
    }
}
