//! What applications write: a [`Handler`] per route and the [`Request`] it gets (the
//! [`Router`](super::Router) picks a handler by method and path).

use std::borrow::Cow;

use bytes::Bytes;
use http::{HeaderMap, Method};
use torsion_reactor::Reactor;

use super::{Params, Responder};
use crate::http::codec::{HttpError, RequestHead};
use crate::http::form::{is_form_content_type, Form, FormError};

/// A request as a handler gets it: the head, and the body when it was read whole.
#[derive(Debug)]
pub struct Request {
    /// Method, target, version and headers.
    pub head: RequestHead,
    /// The whole body ([`BodyMode::Whole`]); empty when it is streamed or ignored.
    pub body: Bytes,
    /// A chunked body's trailer fields ([`BodyMode::Whole`] only).
    pub trailers: HeaderMap,
    /// The path parameters the [`Router`](super::Router)'s pattern took (read them with
    /// [`param`](Request::param)); empty otherwise.
    pub params: Params,
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

    /// The path parameter `name` of the route pattern that matched (`{name}`, or `*` for
    /// the rest of the path after a trailing `*`), percent-decoded; `None` if the pattern has
    /// no such parameter. The [`Router`](super::Router) answers 400 before the handler runs
    /// when a value does not decode to UTF-8.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.get(self.path(), name)
    }

    /// Every path parameter as (name, value), in the pattern's order.
    pub fn params(&self) -> impl Iterator<Item = (&str, &str)> {
        self.params.iter(self.path())
    }

    /// The raw query string (`x=1` of `/a?x=1`), if the target has one.
    pub fn query_str(&self) -> Option<&str> {
        self.head.uri.query()
    }

    /// The query string decoded as a form ([`Form`]: `+` as a space, `%XX`, UTF-8); empty
    /// when there is none.
    pub fn query(&self) -> Result<Form<'_>, FormError> {
        Form::parse(self.query_str().unwrap_or_default().as_bytes())
    }

    /// The first value of `name` in the query string, decoded; `Ok(None)` when it is absent,
    /// an error when the query string is malformed.
    pub fn query_param(&self, name: &str) -> Result<Option<Cow<'_, str>>, FormError> {
        let mut pairs = self.query()?.into_iter();
        Ok(pairs.find(|(n, _)| n == name).map(|(_, value)| value))
    }

    /// The body decoded as an `application/x-www-form-urlencoded` form, when its
    /// `Content-Type` says it is one ([`FormError::NotForm`] otherwise). The body is read
    /// whole ([`BodyMode::Whole`], the default), so it is within
    /// [`Limits::max_body_len`](crate::http::Limits::max_body_len).
    pub fn form(&self) -> Result<Form<'_>, FormError> {
        let content_type = self.head.headers.get(http::header::CONTENT_TYPE);
        if !content_type.is_some_and(|v| is_form_content_type(v.as_bytes())) {
            return Err(FormError::NotForm);
        }
        Form::parse(&self.body)
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
