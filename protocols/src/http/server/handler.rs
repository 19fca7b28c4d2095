//! What applications write: a [`Handler`] per route, the [`Request`] it gets, and the
//! [`Router`] that picks a handler by method and path.

use std::collections::BTreeMap;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use torsion_reactor::Reactor;

use super::Responder;
use crate::http::codec::{HttpError, RequestHead};

/// A request as a handler gets it: the head, and the body when it was read whole.
#[derive(Debug)]
pub struct Request {
    /// Method, target, version and headers.
    pub head: RequestHead,
    /// The whole body ([`BodyMode::Whole`]); empty when it is streamed or ignored.
    pub body: Bytes,
    /// A chunked body's trailer fields ([`BodyMode::Whole`] only).
    pub trailers: HeaderMap,
}

impl Request {
    /// The method.
    pub fn method(&self) -> &Method {
        &self.head.method
    }

    /// The path of the target (`/a/b` of `/a/b?x=1`).
    pub fn path(&self) -> &str {
        self.head.uri.path()
    }
}

/// How a handler takes a request's body, decided when the head arrives.
pub enum BodyMode {
    /// Read it whole (up to [`Limits::max_body_len`](crate::http::Limits::max_body_len),
    /// else 413), then call [`Handler::handle`] with it.
    Whole,
    /// Call [`Handler::handle`] at once with an empty body, and hand the body to this sink as
    /// it arrives.
    Stream(Box<dyn BodySink>),
    /// Call [`Handler::handle`] at once and discard the body; for `Expect: 100-continue` no
    /// `100` is sent and the connection closes after the response.
    Ignore,
}

/// Receives a streamed request body ([`BodyMode::Stream`]).
pub trait BodySink {
    /// The next piece of the body (chunk framing removed, never empty).
    fn data(&mut self, reactor: &mut Reactor, data: &[u8]);

    /// The body is complete; `trailers` are a chunked body's trailer fields.
    fn end(&mut self, reactor: &mut Reactor, trailers: HeaderMap);

    /// The body was refused midway (`error`: over the size limit, malformed chunks). The
    /// server answers `error.status()` after this request's response and closes; the default
    /// does nothing.
    fn error(&mut self, reactor: &mut Reactor, error: &HttpError) {
        let _ = (reactor, error);
    }
}

/// Answers requests. Any `Fn(Request, Responder, &mut Reactor)` closure is a handler that
/// reads bodies whole.
///
/// The handler is shared by every connection of a server and called with `&self`: keep
/// mutable state in a `Cell`/`RefCell` (the reactor is single-threaded).
pub trait Handler: 'static {
    /// How to take the body of the request with this `head`; the default reads it whole.
    fn body_mode(&self, head: &RequestHead) -> BodyMode {
        let _ = head;
        BodyMode::Whole
    }

    /// Answers `request` through `responder`, now or later. `reactor` schedules timers,
    /// reaches other connections, and is what the responder writes through.
    fn handle(&self, request: Request, responder: Responder, reactor: &mut Reactor);
}

impl<F> Handler for F
where
    F: Fn(Request, Responder, &mut Reactor) + 'static,
{
    fn handle(&self, request: Request, responder: Responder, reactor: &mut Reactor) {
        self(request, responder, reactor)
    }
}

/// Routes requests to handlers by exact path and method: `404 Not Found` for an unknown
/// path, `405 Method Not Allowed` (with `Allow`) for a known path and another method. A `GET`
/// route answers `HEAD` too (the server sends the head without the body).
///
/// ```
/// use torsion_protocols::http::server::{Request, Responder, Router};
/// use torsion_protocols::http::{HeaderMap, StatusCode};
/// use torsion_reactor::Reactor;
///
/// let router = Router::new()
///     .get("/plaintext", |_req: Request, res: Responder, reactor: &mut Reactor| {
///         res.respond(reactor, StatusCode::OK, &HeaderMap::new(), "Hello, World!")
///     })
///     .post("/echo", |req: Request, res: Responder, reactor: &mut Reactor| {
///         res.respond(reactor, StatusCode::OK, &HeaderMap::new(), req.body)
///     });
/// # let _ = router;
/// ```
#[derive(Default)]
pub struct Router {
    // A B-tree, not a hash map: a lookup is a couple of string comparisons for the few routes
    // a server has, with no hashing of the path on every request.
    routes: BTreeMap<String, Vec<Route>>,
    fallback: Option<Box<dyn Handler>>,
}

/// One method's handler on a path.
type Route = (Method, Box<dyn Handler>);

impl Router {
    /// A router with no routes (everything is 404).
    pub fn new() -> Self {
        Router::default()
    }

    /// Routes `method` on `path` to `handler` (a later route for the same pair wins).
    pub fn route(mut self, method: Method, path: &str, handler: impl Handler) -> Self {
        let routes = self.routes.entry(path.to_string()).or_default();
        routes.retain(|(m, _)| *m != method);
        routes.push((method, Box::new(handler)));
        self
    }

    /// Routes `GET` (and so `HEAD`) on `path`.
    pub fn get(self, path: &str, handler: impl Handler) -> Self {
        self.route(Method::GET, path, handler)
    }

    /// Routes `POST` on `path`.
    pub fn post(self, path: &str, handler: impl Handler) -> Self {
        self.route(Method::POST, path, handler)
    }

    /// Hands requests no route matches to `handler` instead of answering 404/405.
    pub fn fallback(mut self, handler: impl Handler) -> Self {
        self.fallback = Some(Box::new(handler));
        self
    }

    /// The handler for `head`, or the status to refuse it with.
    fn find(&self, head: &RequestHead) -> Result<&dyn Handler, StatusCode> {
        let Some(routes) = self.routes.get(head.uri.path()) else {
            return self.fallback.as_deref().ok_or(StatusCode::NOT_FOUND);
        };
        let wanted =
            |m: &Method| *m == head.method || (head.method == Method::HEAD && *m == Method::GET);
        match routes.iter().find(|(m, _)| wanted(m)) {
            Some((_, handler)) => Ok(handler.as_ref()),
            None => self
                .fallback
                .as_deref()
                .ok_or(StatusCode::METHOD_NOT_ALLOWED),
        }
    }

    /// The `Allow` header for `path`.
    fn allow(&self, path: &str) -> Option<HeaderValue> {
        let routes = self.routes.get(path)?;
        let mut methods: Vec<&str> = routes.iter().map(|(m, _)| m.as_str()).collect();
        if methods.contains(&"GET") {
            methods.push("HEAD");
        }
        HeaderValue::from_str(&methods.join(", ")).ok()
    }
}

impl Handler for Router {
    fn body_mode(&self, head: &RequestHead) -> BodyMode {
        match self.find(head) {
            Ok(handler) => handler.body_mode(head),
            Err(_) => BodyMode::Ignore,
        }
    }

    fn handle(&self, request: Request, responder: Responder, reactor: &mut Reactor) {
        match self.find(&request.head) {
            Ok(handler) => handler.handle(request, responder, reactor),
            Err(status) => {
                let mut headers = HeaderMap::new();
                headers.insert(
                    http::header::CONTENT_TYPE,
                    HeaderValue::from_static("text/plain; charset=utf-8"),
                );
                if let Some(allow) = self.allow(request.path()) {
                    headers.insert(http::header::ALLOW, allow);
                }
                let reason = status.canonical_reason().unwrap_or("Error");
                responder.respond(reactor, status, &headers, format!("{reason}\n"));
            }
        }
    }
}
