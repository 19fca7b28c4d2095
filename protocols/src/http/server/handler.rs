//! What applications write: a [`Handler`] per route, the [`Request`] it gets, and the
//! [`Router`] that picks a handler by method and path.

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
    // Sorted by (length, bytes) and binary-searched: a lookup compares lengths (integers)
    // and compares bytes only with paths as long as the one requested, with no hashing of
    // the path on every request. The search runs once per request on the hot path.
    routes: Vec<PathRoutes>,
    fallback: Option<Box<dyn Handler>>,
}

/// One method's handler on a path.
type Route = (Method, Box<dyn Handler>);

/// The routes of one path.
struct PathRoutes {
    path: Box<str>,
    methods: Vec<Route>,
}

/// Up to this many paths, a lookup scans them instead of searching.
const LINEAR_ROUTES: usize = 8;

/// The order `Router::routes` is sorted in: by length, then by bytes.
fn route_order(path: &str) -> (usize, &[u8]) {
    (path.len(), path.as_bytes())
}

impl Router {
    /// A router with no routes (everything is 404).
    pub fn new() -> Self {
        Router::default()
    }

    /// Routes `method` on `path` to `handler` (a later route for the same pair wins).
    pub fn route(mut self, method: Method, path: &str, handler: impl Handler) -> Self {
        let at = match self
            .routes
            .binary_search_by(|r| route_order(&r.path).cmp(&route_order(path)))
        {
            Ok(at) => at,
            Err(at) => {
                let path = PathRoutes {
                    path: path.into(),
                    methods: Vec::new(),
                };
                self.routes.insert(at, path);
                at
            }
        };
        let routes = &mut self.routes[at].methods;
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
        let Some(routes) = self.methods(head.uri.path()) else {
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

    /// The routes of `path`, if it has any.
    fn methods(&self, path: &str) -> Option<&[Route]> {
        // A few routes: a scan comparing lengths is cheaper than the search's branches.
        if self.routes.len() <= LINEAR_ROUTES {
            let routes = self.routes.iter();
            let mut same_length = routes.filter(|r| r.path.len() == path.len());
            return same_length
                .find(|r| *r.path == *path)
                .map(|r| &r.methods[..]);
        }
        let at = self
            .routes
            .binary_search_by(|r| route_order(&r.path).cmp(&route_order(path)))
            .ok()?;
        Some(&self.routes[at].methods)
    }

    /// The `Allow` header for `path`.
    fn allow(&self, path: &str) -> Option<HeaderValue> {
        let routes = self.methods(path)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn noop(_: Request, _: Responder, _: &mut Reactor) {}

    #[test]
    fn every_path_is_found_among_paths_of_equal_and_other_lengths() {
        let few = [
            "/b",
            "/a",
            "/json",
            "/echo",
            "/",
            "/plaintext",
            "/c",
            "/echo/x",
        ];
        let extra: Vec<String> = (0..40).map(|i| format!("/r{}", i * 7)).collect();
        let many: Vec<&str> = few
            .iter()
            .copied()
            .chain(extra.iter().map(String::as_str))
            .collect();
        // A scan for the few, a search for the many.
        for paths in [&few[..], &many[..]] {
            let router = paths.iter().fold(Router::new(), |r, p| r.get(p, noop));
            for path in paths {
                let routes = router.methods(path).expect(path);
                assert_eq!(routes.len(), 1, "{path}");
                assert_eq!(routes[0].0, Method::GET);
            }
            for missing in [
                "",
                "/d",
                "/jsoN",
                "/plaintex",
                "/plaintext/",
                "/echo/y",
                "/r1",
            ] {
                assert!(router.methods(missing).is_none(), "{missing:?}");
            }
            assert_eq!(router.routes.len(), paths.len());
        }
    }

    #[test]
    fn a_later_route_for_the_same_method_and_path_replaces_the_earlier() {
        let router = Router::new()
            .get("/a", noop)
            .post("/a", noop)
            .get("/a", noop);
        let methods: Vec<&Method> = router.methods("/a").unwrap().iter().map(|r| &r.0).collect();
        assert_eq!(methods, [&Method::POST, &Method::GET]);
        assert_eq!(router.allow("/a").unwrap(), "POST, GET, HEAD");
    }
}
