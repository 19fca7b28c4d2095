//! The [`Router`]: picks a [`Handler`] by path and method, among exact paths (a sorted
//! table, searched with no allocation) and patterns with parameters and a trailing `*` (a
//! tree of segments, searched depth-first in precedence order).

use std::sync::Arc;

use http::{HeaderMap, HeaderValue, Method, StatusCode};
use torsion_reactor::Reactor;

use super::params::{Spans, MAX_PARAMS};
use super::{BodyMode, Handler, Params, Request, Responder};
use crate::http::codec::RequestHead;

/// Routes requests to handlers by path and method: `404 Not Found` for an unknown path,
/// `405 Method Not Allowed` (with `Allow`) for a known path and another method. A `GET`
/// route answers `HEAD` too (the server sends the head without the body).
///
/// A path is an exact path (`/users`) or a pattern of `/`-separated segments: a literal
/// (`users`), a parameter (`{id}`: any one non-empty segment), or, as the last segment, `*`
/// (the rest of the path, possibly empty: `/static/*` matches `/static/` and `/static/a/b`,
/// not `/static`). A handler reads them with [`Request::param`]: `param("id")`,
/// `param("*")`, percent-decoded (a value that does not decode to UTF-8 is answered 400).
///
/// When several routes match a path, the most specific wins, segment by segment from the
/// left: a literal segment before a parameter before `*` (`/users/new` before
/// `/users/{id}` before `/users/*`); a pattern that fails further right gives way to the next
/// one (`/users/new/posts` is `/users/{id}/posts` if `/users/new/...` has no `posts`). The
/// path picks the route first, then the method: a path whose best match lacks the method is
/// 405, even if a less specific pattern has it. Literal segments and exact paths compare
/// with the path as it was sent (not decoded), without its query.
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
///     .get("/users/{id}", |req: Request, res: Responder, reactor: &mut Reactor| {
///         let id = req.param("id").unwrap_or_default().to_string();
///         res.respond(reactor, StatusCode::OK, &HeaderMap::new(), id)
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
    // the path on every request. The search runs once per request on the hot path, and is
    // all an exact route costs.
    routes: Vec<PathRoutes>,
    // The patterns, asked only when no exact path matches.
    patterns: Node,
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

/// One segment of a pattern.
#[derive(Debug, PartialEq)]
enum Segment<'p> {
    Literal(&'p str),
    Param(&'p str),
    Rest,
}

/// The segments of `pattern`, or `None` if it is an exact path.
///
/// # Panics
/// If the pattern is malformed (see [`Router::route`]).
fn segments(pattern: &str) -> Option<Vec<Segment<'_>>> {
    let body = pattern.strip_prefix('/').unwrap_or_else(|| {
        panic!("route pattern {pattern:?} does not start with '/'");
    });
    let pieces: Vec<&str> = body.split('/').collect();
    let mut segments = Vec::with_capacity(pieces.len());
    let mut names: Vec<&str> = Vec::new();
    for (i, piece) in pieces.iter().enumerate() {
        let segment = if *piece == "*" {
            assert!(
                i == pieces.len() - 1,
                "route pattern {pattern:?}: '*' must be the last segment"
            );
            names.push("*");
            Segment::Rest
        } else if let Some(name) = piece.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
            let valid = !name.is_empty() && !name.contains(['{', '}', '*']);
            assert!(valid, "route pattern {pattern:?}: bad parameter {piece:?}");
            assert!(
                !names.contains(&name),
                "route pattern {pattern:?}: parameter {name:?} appears twice"
            );
            names.push(name);
            Segment::Param(name)
        } else {
            assert!(
                !piece.contains(['{', '}']),
                "route pattern {pattern:?}: a parameter must be a whole segment, {piece:?} is not"
            );
            Segment::Literal(piece)
        };
        segments.push(segment);
    }
    assert!(
        names.len() <= MAX_PARAMS,
        "route pattern {pattern:?}: more than {MAX_PARAMS} parameters"
    );
    (!names.is_empty()).then_some(segments)
}

/// The routes of one pattern.
struct Pattern {
    /// As it was given, for messages.
    pattern: Box<str>,
    /// Its parameters' names in order, shared with every request it matches.
    names: Arc<[Box<str>]>,
    methods: Vec<Route>,
}

/// A node of the pattern tree: what follows one segment.
#[derive(Default)]
struct Node {
    /// Literal next segments.
    literals: Vec<(Box<str>, Node)>,
    /// A parameter as the next segment.
    param: Option<Box<Node>>,
    /// The pattern ending here.
    end: Option<Pattern>,
    /// The pattern ending here with `*`.
    rest: Option<Pattern>,
}

impl Node {
    /// The pattern slot `segments` lead to from here, made if missing.
    fn slot(&mut self, segments: &[Segment<'_>]) -> &mut Option<Pattern> {
        match segments {
            [] => &mut self.end,
            [Segment::Rest] => &mut self.rest,
            [Segment::Rest, ..] => unreachable!("'*' is the last segment"),
            [Segment::Literal(literal), more @ ..] => {
                let at = match self.literals.iter().position(|(l, _)| **l == **literal) {
                    Some(at) => at,
                    None => {
                        self.literals.push(((*literal).into(), Node::default()));
                        self.literals.len() - 1
                    }
                };
                self.literals[at].1.slot(more)
            }
            [Segment::Param(_), more @ ..] => self.param.get_or_insert_default().slot(more),
        }
    }

    /// The best pattern for the segments of `path` from byte `at` on (`None`: no segment
    /// left), recording parameter spans from `spans[n]` on. Tries a literal, then a
    /// parameter, then `*`, going back when the rest of the path does not match.
    fn find<'r>(
        &'r self,
        path: &str,
        at: Option<usize>,
        spans: &mut Spans,
        n: usize,
    ) -> Option<&'r Pattern> {
        let Some(at) = at else {
            return self.end.as_ref();
        };
        let end = path.get(at..)?.find('/').map_or(path.len(), |i| at + i);
        let segment = &path[at..end];
        let next = (end < path.len()).then_some(end + 1);
        let literal = self.literals.iter().find(|(l, _)| **l == *segment);
        if let Some(found) = literal.and_then(|(_, node)| node.find(path, next, spans, n)) {
            return Some(found);
        }
        if let (Some(node), false) = (&self.param, segment.is_empty()) {
            // The caller checked that offsets into the path fit a u32.
            *spans.get_mut(n)? = (at as u32, end as u32);
            if let Some(found) = node.find(path, next, spans, n + 1) {
                return Some(found);
            }
        }
        let rest = self.rest.as_ref()?;
        *spans.get_mut(n)? = (at as u32, path.len() as u32);
        Some(rest)
    }
}

/// A path's routes, and the parameters its pattern took if it matched one.
type Matched<'r> = (&'r [Route], Option<(&'r Arc<[Box<str>]>, Spans)>);

impl Router {
    /// A router with no routes (everything is 404).
    pub fn new() -> Self {
        Router::default()
    }

    /// Routes `method` on `path` to `handler` (a later route for the same pair wins).
    /// `path` is an exact path or a pattern (`/users/{id}`, `/static/*`: see [`Router`]).
    ///
    /// # Panics
    /// If `path` is a malformed pattern: not starting with `/`, `*` before the last segment,
    /// braces that are not a whole segment, an empty or repeated parameter name, more than
    /// [`MAX_PARAMS`](super::MAX_PARAMS) parameters, or the same pattern as an earlier route
    /// with other parameter names (`/u/{id}` then `/u/{name}`).
    pub fn route(mut self, method: Method, path: &str, handler: impl Handler) -> Self {
        let routes = match segments(path) {
            None => self.exact_routes(path),
            Some(segments) => {
                let slot = self.patterns.slot(&segments);
                let names: Vec<Box<str>> = segments
                    .iter()
                    .filter_map(|s| match s {
                        Segment::Literal(_) => None,
                        Segment::Param(name) => Some((*name).into()),
                        Segment::Rest => Some("*".into()),
                    })
                    .collect();
                let pattern = slot.get_or_insert_with(|| Pattern {
                    pattern: path.into(),
                    names: names.clone().into(),
                    methods: Vec::new(),
                });
                assert!(
                    *pattern.names == *names,
                    "route pattern {path:?} names its parameters unlike {:?}",
                    pattern.pattern
                );
                &mut pattern.methods
            }
        };
        routes.retain(|(m, _)| *m != method);
        routes.push((method, Box::new(handler)));
        self
    }

    /// The routes of exact path `path`, made if missing.
    fn exact_routes(&mut self, path: &str) -> &mut Vec<Route> {
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
        &mut self.routes[at].methods
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

    /// The handler for `head` and the parameters its pattern took, or the status to refuse
    /// it with.
    #[allow(clippy::type_complexity, reason = "used twice, right here")]
    fn find(
        &self,
        head: &RequestHead,
    ) -> Result<(&dyn Handler, Option<(&Arc<[Box<str>]>, Spans)>), StatusCode> {
        let Some((routes, params)) = self.matched(head.uri.path()) else {
            return match &self.fallback {
                Some(fallback) => Ok((fallback.as_ref(), None)),
                None => Err(StatusCode::NOT_FOUND),
            };
        };
        let wanted =
            |m: &Method| *m == head.method || (head.method == Method::HEAD && *m == Method::GET);
        match routes.iter().find(|(m, _)| wanted(m)) {
            Some((_, handler)) => Ok((handler.as_ref(), params)),
            None => match &self.fallback {
                Some(fallback) => Ok((fallback.as_ref(), None)),
                None => Err(StatusCode::METHOD_NOT_ALLOWED),
            },
        }
    }

    /// The handler of an exact route for `head`'s path and method, if there is one: the
    /// common case, found without building a pattern's match.
    fn exact_handler(&self, head: &RequestHead) -> Option<&dyn Handler> {
        let routes = self.exact(head.uri.path())?;
        let wanted =
            |m: &Method| *m == head.method || (head.method == Method::HEAD && *m == Method::GET);
        routes
            .iter()
            .find(|(m, _)| wanted(m))
            .map(|(_, handler)| handler.as_ref())
    }

    /// The routes `path` matches: its exact path's, else its best pattern's.
    fn matched(&self, path: &str) -> Option<Matched<'_>> {
        if let Some(routes) = self.exact(path) {
            return Some((routes, None));
        }
        // Spans are u32 offsets; no head is anywhere near that long.
        if !path.starts_with('/') || path.len() > u32::MAX as usize {
            return None;
        }
        let mut spans = Spans::default();
        let pattern = self.patterns.find(path, Some(1), &mut spans, 0)?;
        Some((&pattern.methods, Some((&pattern.names, spans))))
    }

    /// The routes of `path` (exact or pattern), if it has any.
    fn methods(&self, path: &str) -> Option<&[Route]> {
        self.matched(path).map(|(routes, _)| routes)
    }

    /// The routes of exact path `path`, if it has any.
    fn exact(&self, path: &str) -> Option<&[Route]> {
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
        if methods.contains(&"GET") && !methods.contains(&"HEAD") {
            methods.push("HEAD");
        }
        HeaderValue::from_str(&methods.join(", ")).ok()
    }
}

/// Answers `status` with a short text body (and `allow`, for a 405).
fn refuse(
    responder: Responder,
    reactor: &mut Reactor,
    status: StatusCode,
    allow: Option<HeaderValue>,
) {
    let mut headers = HeaderMap::new();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    if let Some(allow) = allow {
        headers.insert(http::header::ALLOW, allow);
    }
    let reason = status.canonical_reason().unwrap_or("Error");
    responder.respond(reactor, status, &headers, format!("{reason}\n"));
}

impl Handler for Router {
    fn body_mode(&self, head: &RequestHead) -> BodyMode {
        if let Some(handler) = self.exact_handler(head) {
            return handler.body_mode(head);
        }
        match self.find(head) {
            Ok((handler, None)) => handler.body_mode(head),
            Ok((handler, Some((names, spans)))) => {
                match Params::decode(names, head.uri.path(), spans) {
                    Ok(_) => handler.body_mode(head),
                    Err(_) => BodyMode::Ignore,
                }
            }
            Err(_) => BodyMode::Ignore,
        }
    }

    fn handle(&self, mut request: Request, responder: Responder, reactor: &mut Reactor) {
        if let Some(handler) = self.exact_handler(&request.head) {
            return handler.handle(request, responder, reactor);
        }
        match self.find(&request.head) {
            Ok((handler, None)) => handler.handle(request, responder, reactor),
            Ok((handler, Some((names, spans)))) => {
                match Params::decode(names, request.path(), spans) {
                    Ok(params) => {
                        request.params = params;
                        handler.handle(request, responder, reactor)
                    }
                    Err(_) => refuse(responder, reactor, StatusCode::BAD_REQUEST, None),
                }
            }
            Err(status) => {
                let allow = self.allow(request.path());
                refuse(responder, reactor, status, allow)
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

#[cfg(test)]
mod pattern_tests {
    use super::*;

    fn noop(_: Request, _: Responder, _: &mut Reactor) {}

    /// The pattern `path` matches and its raw parameters, by name.
    fn matched(router: &Router, path: &str) -> Option<(String, Vec<(String, String)>)> {
        if router.exact(path).is_some() {
            return Some((path.to_string(), Vec::new()));
        }
        let mut spans = Spans::default();
        let pattern = router.patterns.find(path, Some(1), &mut spans, 0)?;
        let params = pattern
            .names
            .iter()
            .zip(spans)
            .map(|(n, (s, e))| (n.to_string(), path[s as usize..e as usize].to_string()))
            .collect();
        Some((pattern.pattern.to_string(), params))
    }

    fn router(patterns: &[&str]) -> Router {
        patterns.iter().fold(Router::new(), |r, p| r.get(p, noop))
    }

    fn check(router: &Router, path: &str, pattern: &str, params: &[(&str, &str)]) {
        let (found, got) = matched(router, path).unwrap_or_else(|| panic!("{path}: no match"));
        assert_eq!(found, pattern, "{path}");
        let want: Vec<(String, String)> = params
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        assert_eq!(got, want, "{path}");
    }

    #[test]
    fn literals_win_over_parameters_which_win_over_the_rest() {
        let router = router(&[
            "/users/*",
            "/users/{id}",
            "/users/new",
            "/users/{id}/posts/{post}",
            "/users/new/edit",
            "/*",
        ]);
        check(&router, "/users/new", "/users/new", &[]);
        check(&router, "/users/42", "/users/{id}", &[("id", "42")]);
        check(&router, "/users/", "/users/*", &[("*", "")]);
        check(&router, "/users/42/x", "/users/*", &[("*", "42/x")]);
        check(
            &router,
            "/users/7/posts/9",
            "/users/{id}/posts/{post}",
            &[("id", "7"), ("post", "9")],
        );
        // `new` is a literal, but `/users/new/posts/...` only matches through `{id}`.
        check(
            &router,
            "/users/new/posts/1",
            "/users/{id}/posts/{post}",
            &[("id", "new"), ("post", "1")],
        );
        check(&router, "/users/new/edit", "/users/new/edit", &[]);
        check(
            &router,
            "/users/new/other",
            "/users/*",
            &[("*", "new/other")],
        );
        check(&router, "/users", "/*", &[("*", "users")]);
        check(&router, "/", "/*", &[("*", "")]);
    }

    #[test]
    fn parameters_take_one_non_empty_segment_and_the_rest_needs_its_slash() {
        let router = router(&["/a/{x}", "/a/{x}/", "/static/*"]);
        check(&router, "/a/b", "/a/{x}", &[("x", "b")]);
        check(&router, "/a/b/", "/a/{x}/", &[("x", "b")]);
        for missing in ["/a/", "/a", "/a//", "/a/b/c", "/static", "/staticx/a", ""] {
            assert!(matched(&router, missing).is_none(), "{missing:?}");
        }
        check(&router, "/static/a/b%2Fc", "/static/*", &[("*", "a/b%2Fc")]);
    }

    #[test]
    fn exact_paths_still_come_first_and_patterns_share_their_methods() {
        let router = Router::new()
            .get("/items/{id}", noop)
            .route(Method::DELETE, "/items/{id}", noop)
            .get("/items/all", noop);
        assert_eq!(router.allow("/items/3").unwrap(), "GET, DELETE, HEAD");
        assert_eq!(router.allow("/items/all").unwrap(), "GET, HEAD");
        assert!(router.allow("/items").is_none());
        assert_eq!(router.routes.len(), 1, "/items/all is an exact path");
    }

    #[test]
    fn malformed_patterns_are_refused_when_routed() {
        for bad in [
            "users/{id}",
            "/a/*/b",
            "/a/{}",
            "/a/x{id}",
            "/a/{id}x",
            "/{a}/{a}",
            "/{a}/{b}/{c}/{d}/{e}/{f}/{g}/{h}/{i}",
        ] {
            let refused = std::panic::catch_unwind(|| Router::new().get(bad, noop)).is_err();
            assert!(refused, "{bad:?} was accepted");
        }
        let renamed =
            std::panic::catch_unwind(|| Router::new().get("/u/{id}", noop).post("/u/{name}", noop));
        assert!(renamed.is_err());
    }
}
