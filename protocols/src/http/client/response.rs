//! What comes back: a [`Response`] read whole, or a [`ResponseHandler`] that gets the body as
//! it arrives and can pause it ([`ResponseFlow`], [`Resumer`]).

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, StatusCode, Version};
use torsion_reactor::{ConnectionId, Reactor};

use super::connection::ClientConnection;
use super::ClientError;
use crate::http::codec::ResponseHead;

/// A complete response, its body read whole.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Response {
    /// The status.
    pub status: StatusCode,
    /// `HTTP_10` or `HTTP_11`.
    pub version: Version,
    /// The headers, in order, names lowercased.
    pub headers: HeaderMap,
    /// The body, decoded from its framing (empty for `HEAD`, 204, 304).
    pub body: Bytes,
    /// A chunked body's trailer fields.
    pub trailers: HeaderMap,
    /// The URL that answered: the request's, or the last redirect's.
    pub url: String,
}

/// Receives a response as it arrives ([`HttpClient::send_streaming`](super::HttpClient::send_streaming)).
///
/// Calls, all on the reactor thread and never from inside `send_streaming` itself: `head`
/// once, `data` any number of times, then exactly one of `end` or `error`, unless the
/// handler aborts ([`ResponseFlow::abort`]) or the request is cancelled, which end the calls
/// silently. An `error` can also come first, with no `head` (nothing arrived) or after some
/// `data` (the body broke off).
pub trait ResponseHandler: 'static {
    /// The longest body this handler takes; a longer one fails the request with
    /// [`ClientError::BodyTooLarge`] (a `Content-Length` over it before any `data`).
    /// Default: no limit.
    fn max_body_len(&self) -> u64 {
        u64::MAX
    }

    /// The final response's status and headers (interim 1xx responses and redirects that
    /// are followed never reach the handler).
    fn head(&mut self, reactor: &mut Reactor, head: ResponseHead, flow: &mut ResponseFlow<'_>);

    /// The next piece of the body (never empty). Call [`ResponseFlow::pause`] to stop the
    /// delivery until you resume it: reading from the server stops too, so memory stays
    /// bounded by what is already buffered.
    fn data(&mut self, reactor: &mut Reactor, data: &[u8], flow: &mut ResponseFlow<'_>);

    /// The body is complete; `trailers` are a chunked body's trailer fields.
    fn end(&mut self, reactor: &mut Reactor, trailers: HeaderMap);

    /// The request failed.
    fn error(&mut self, reactor: &mut Reactor, error: ClientError);
}

/// What a [`ResponseHandler`] can do about the delivery while it is called.
#[derive(Debug)]
pub struct ResponseFlow<'a> {
    conn: ConnectionId,
    url: &'a str,
    pub(super) paused: bool,
    pub(super) aborted: bool,
}

impl<'a> ResponseFlow<'a> {
    pub(super) fn new(conn: ConnectionId, url: &'a str) -> Self {
        ResponseFlow {
            conn,
            url,
            paused: false,
            aborted: false,
        }
    }

    /// Stops delivering the body after this call, and stops reading from the server, until
    /// the returned [`Resumer`] is used.
    pub fn pause(&mut self) -> Resumer {
        self.paused = true;
        Resumer { conn: self.conn }
    }

    /// Gives up on this response: the connection is closed, and the handler hears nothing
    /// more (it is dropped).
    pub fn abort(&mut self) {
        self.aborted = true;
    }

    /// The URL this response answers (the last redirect's, if any were followed).
    pub fn url(&self) -> &str {
        self.url
    }
}

/// Resumes a body paused with [`ResponseFlow::pause`].
#[derive(Debug, Clone, Copy)]
pub struct Resumer {
    conn: ConnectionId,
}

impl Resumer {
    /// Resumes delivery: what is buffered comes first (on this or the next reactor turn),
    /// then reading goes on. A no-op if the response ended meanwhile.
    pub fn resume(self, reactor: &mut Reactor) {
        reactor.call_later_on(self.conn, Duration::ZERO, |c: &mut ClientConnection, cx| {
            c.resume(cx)
        });
    }
}

/// The handler behind [`HttpClient::send`](super::HttpClient::send): gathers the body, then
/// calls the callback once.
pub(super) struct Collect<F> {
    callback: Option<F>,
    max: u64,
    head: Option<(ResponseHead, String)>,
    body: BytesMut,
}

impl<F> Collect<F>
where
    F: FnOnce(Result<Response, ClientError>, &mut Reactor) + 'static,
{
    pub(super) fn new(callback: F, max: u64) -> Self {
        Collect {
            callback: Some(callback),
            max,
            head: None,
            body: BytesMut::new(),
        }
    }

    fn call(&mut self, reactor: &mut Reactor, result: Result<Response, ClientError>) {
        if let Some(callback) = self.callback.take() {
            callback(result, reactor);
        }
    }
}

impl<F> ResponseHandler for Collect<F>
where
    F: FnOnce(Result<Response, ClientError>, &mut Reactor) + 'static,
{
    fn max_body_len(&self) -> u64 {
        self.max
    }

    fn head(&mut self, _: &mut Reactor, head: ResponseHead, flow: &mut ResponseFlow<'_>) {
        self.head = Some((head, flow.url().to_string()));
    }

    fn data(&mut self, _: &mut Reactor, data: &[u8], _: &mut ResponseFlow<'_>) {
        self.body.extend_from_slice(data);
    }

    fn end(&mut self, reactor: &mut Reactor, trailers: HeaderMap) {
        let Some((head, url)) = self.head.take() else {
            return;
        };
        let response = Response {
            status: head.status,
            version: head.version,
            headers: head.headers,
            body: std::mem::take(&mut self.body).freeze(),
            trailers,
            url,
        };
        self.call(reactor, Ok(response));
    }

    fn error(&mut self, reactor: &mut Reactor, error: ClientError) {
        self.call(reactor, Err(error));
    }
}
