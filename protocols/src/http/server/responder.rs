//! [`Responder`]: the answer to one request, at once or later; [`BodyWriter`]: a body of
//! unknown length, streamed with backpressure.

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode, Version};
use torsion_reactor::{ConnectionId, FileSegment, Protocol, Reactor};

use super::pipeline::{pump, SharedPipeline, Slot};
use crate::http::codec::{BodyEncoder, BodyKind, RequestHead, ResponseEncoder};

/// What of the request decides how its response is framed.
#[derive(Debug, Clone, Copy)]
pub(super) struct Answering {
    head: bool,
    version: Version,
    keep_alive: bool,
    /// The server closes after this response (a request body it did not read).
    close: bool,
}

impl Answering {
    pub(super) fn new(request: &RequestHead) -> Self {
        Answering {
            head: request.method == Method::HEAD,
            version: request.version,
            keep_alive: request.keep_alive,
            close: false,
        }
    }

    /// A refused request, whose head is unknown: HTTP/1.1, closing.
    pub(super) fn refusal() -> Self {
        Answering {
            head: false,
            version: Version::HTTP_11,
            keep_alive: false,
            close: true,
        }
    }

    /// The method answered, as far as the encoder cares: `HEAD` or not.
    fn method(&self) -> &'static Method {
        if self.head {
            &Method::HEAD
        } else {
            &Method::GET
        }
    }
}

/// The right to answer one request. Answer at once from the handler, or keep it and answer
/// later from any callback that has the reactor (a timer, another connection's
/// `data_received`: long polling). Responses leave in request order whatever order they are
/// made in: a response made early for a later pipelined request waits (in memory) for the
/// earlier ones.
///
/// Dropping a responder without answering answers `500 Internal Server Error` and closes the
/// connection (written once the connection is woken for it, since a drop has no reactor).
#[must_use = "a request must be answered"]
pub struct Responder {
    pipeline: SharedPipeline,
    seq: u64,
    answering: Answering,
    answered: bool,
    /// Middleware's hooks ([`Responder::on_response`]), in the order they were added.
    hooks: Vec<ResponseHook>,
}

/// A hook that sees a response's status and may change its headers just before its head is
/// written: see [`Responder::on_response`].
pub type ResponseHook = Box<dyn FnOnce(&mut Reactor, StatusCode, &mut HeaderMap)>;

impl Responder {
    pub(super) fn new(pipeline: SharedPipeline, seq: u64, answering: Answering) -> Self {
        Responder {
            pipeline,
            seq,
            answering,
            answered: false,
            hooks: Vec::new(),
        }
    }

    /// Runs `hook` with the status and headers of the response when it is made (by any of
    /// the answering methods), before its head is written: it may add or change headers.
    /// This is how a [middleware](super::middleware) sees what the handler it wraps answered.
    /// Hooks run in the reverse order of their adding (the last added, the outermost
    /// middleware's, runs last), also when the connection is gone. A responder dropped
    /// unanswered drops its hooks without running them (the closure's captures are dropped:
    /// an RAII guard inside one is released either way).
    pub fn on_response(
        &mut self,
        hook: impl FnOnce(&mut Reactor, StatusCode, &mut HeaderMap) + 'static,
    ) {
        self.hooks.push(Box::new(hook));
    }

    /// Runs the hooks on `headers`: borrowed as they are when there are none (the common
    /// case, no copy), else a copy the hooks may change.
    fn run_hooks<'h>(
        &mut self,
        reactor: &mut Reactor,
        status: StatusCode,
        headers: &'h HeaderMap,
    ) -> std::borrow::Cow<'h, HeaderMap> {
        if self.hooks.is_empty() {
            return std::borrow::Cow::Borrowed(headers);
        }
        let mut owned = headers.clone();
        while let Some(hook) = self.hooks.pop() {
            hook(reactor, status, &mut owned);
        }
        std::borrow::Cow::Owned(owned)
    }

    /// Answers with a redirect to `location`: `status` is one of 301, 302, 303, 307 or 308
    /// (any other is answered as 302, logged), with a `Location` header and a short
    /// `text/plain` body naming the target. A `location` that is not a valid header value
    /// (a control character) is refused: `500 Internal Server Error`, logged.
    pub fn redirect(self, reactor: &mut Reactor, status: StatusCode, location: &str) {
        let status = if matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308) {
            status
        } else {
            log::warn!("redirect with {status}, not a redirection: 302 instead");
            StatusCode::FOUND
        };
        let Ok(target) = http::HeaderValue::from_str(location) else {
            log::warn!("redirect: {location:?} is not a valid Location");
            return self.respond_status(reactor, StatusCode::INTERNAL_SERVER_ERROR);
        };
        let mut headers = HeaderMap::new();
        headers.insert(http::header::LOCATION, target);
        headers.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        let reason = status.canonical_reason().unwrap_or("Redirect");
        self.respond(reactor, status, &headers, format!("{reason}: {location}\n"));
    }

    /// Makes the connection close after this response (for a request whose body is not read).
    pub(super) fn close_after(&mut self) {
        self.answering.close = true;
    }

    /// The connection the request came on.
    pub fn connection_id(&self) -> ConnectionId {
        self.pipeline.borrow().id()
    }

    /// Whether the response can still reach the client (false once the connection closed).
    pub fn is_connected(&self) -> bool {
        self.pipeline.borrow_mut().slot(self.seq).is_some()
    }

    /// Answers with `status`, `headers` and the whole `body` (`Content-Length` framing; no
    /// body on the wire for `HEAD`, 204 and 304). `Date`, framing and `Connection` headers
    /// are the server's. A no-op if the connection is gone.
    pub fn respond(
        mut self,
        reactor: &mut Reactor,
        status: StatusCode,
        headers: &HeaderMap,
        body: impl Into<Bytes>,
    ) {
        self.answered = true;
        let headers = self.run_hooks(reactor, status, headers);
        let headers = &*headers;
        let body = body.into();
        let date = self.pipeline.borrow().date(reactor);
        {
            let mut pipeline = self.pipeline.borrow_mut();
            let Some(slot) = pipeline.slot(self.seq) else {
                return;
            };
            let head = ResponseEncoder::new(status, BodyKind::Length(body.len() as u64))
                .answering_parts(
                    self.answering.method(),
                    self.answering.version,
                    self.answering.keep_alive,
                )
                .date(&date)
                .close(self.answering.close);
            let mut framing = head.write(headers, slot.staging());
            let keep_alive = framing.keep_alive();
            // The length was declared from the body itself: nothing can mismatch.
            if body.len() <= SMALL_BODY {
                let _ = framing.data(&body, slot.staging());
            } else if let Ok(true) = framing.start_data(body.len(), slot.staging()) {
                slot.put_bytes(body);
            }
            let _ = framing.finish(slot.staging());
            slot.finish(!keep_alive);
        }
        pump(&self.pipeline, reactor);
    }

    /// Starts a body of unknown length (`Transfer-Encoding: chunked`; to HTTP/1.0, delimited
    /// by closing the connection): write it with the returned [`BodyWriter`].
    ///
    /// A 304 streamed this way, and finished at once, carries no framing header at all
    /// (RFC 9110 §8.6: a 304 need not repeat the `Content-Length`).
    pub fn stream(
        self,
        reactor: &mut Reactor,
        status: StatusCode,
        headers: &HeaderMap,
    ) -> BodyWriter {
        self.start_body(reactor, status, headers, BodyKind::Chunked)
    }

    /// Starts a body of `length` bytes, announced in `Content-Length` and written in pieces
    /// with the returned [`BodyWriter`], with the same backpressure as
    /// [`stream`](Responder::stream): a large file, read a chunk at a time. The length is a
    /// promise: a writer that finishes short of it, or is [aborted](BodyWriter::abort),
    /// or writes a piece that would go past it (that piece is not sent) closes the connection
    /// after what was sent, so the client
    /// sees the body cut short rather than misframed. For `HEAD` (and 204, 304) the length is
    /// announced and nothing is sent.
    pub fn stream_with_length(
        self,
        reactor: &mut Reactor,
        status: StatusCode,
        headers: &HeaderMap,
        length: u64,
    ) -> BodyWriter {
        self.start_body(reactor, status, headers, BodyKind::Length(length))
    }

    fn start_body(
        mut self,
        reactor: &mut Reactor,
        status: StatusCode,
        headers: &HeaderMap,
        body: BodyKind,
    ) -> BodyWriter {
        self.answered = true;
        let headers = self.run_hooks(reactor, status, headers);
        let headers = &*headers;
        let date = self.pipeline.borrow().date(reactor);
        let framing = {
            let mut pipeline = self.pipeline.borrow_mut();
            pipeline.slot(self.seq).map(|slot| {
                ResponseEncoder::new(status, body)
                    .answering_parts(
                        self.answering.method(),
                        self.answering.version,
                        self.answering.keep_alive,
                    )
                    .date(&date)
                    .close(self.answering.close)
                    .write(headers, slot.staging())
            })
        };
        pump(&self.pipeline, reactor);
        BodyWriter {
            pipeline: self.pipeline.clone(),
            seq: self.seq,
            framing,
        }
    }

    /// Answers `101 Switching Protocols` with `headers` (and `Date`), then hands the
    /// connection to `protocol`: its `connection_made` runs once the `101` is queued, and it
    /// gets every byte after the request (some may have arrived with it) and every later
    /// callback. `headers` are written as given (`Upgrade`, `Connection: upgrade`...).
    ///
    /// Only a request with no response pending before it can switch: otherwise this answers
    /// `400 Bad Request`, closes the connection, and returns false. Switch from the handler
    /// call (the server reads nothing after the request until then); a switch made later
    /// takes effect when the connection is next woken.
    pub fn switch_protocols(
        mut self,
        reactor: &mut Reactor,
        headers: &HeaderMap,
        protocol: Box<dyn Protocol>,
    ) -> bool {
        let alone = {
            let pipeline = self.pipeline.borrow();
            pipeline.is_front(self.seq) && pipeline.len() == 1
        };
        if !alone {
            self.close_after();
            self.respond_status(reactor, StatusCode::BAD_REQUEST);
            return false;
        }
        self.answered = true;
        let date = self.pipeline.borrow().date(reactor);
        let id = {
            let mut pipeline = self.pipeline.borrow_mut();
            let Some(slot) = pipeline.slot(self.seq) else {
                return false;
            };
            let out = slot.staging();
            out.extend_from_slice(b"HTTP/1.1 101 Switching Protocols\r\n");
            for (name, value) in headers {
                out.extend_from_slice(name.as_str().as_bytes());
                out.extend_from_slice(b": ");
                out.extend_from_slice(value.as_bytes());
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(b"date: ");
            out.extend_from_slice(date.as_bytes());
            out.extend_from_slice(b"\r\n\r\n");
            slot.finish(false);
            pipeline.upgrade = Some(protocol);
            pipeline.id()
        };
        pump(&self.pipeline, reactor);
        // A switch made outside the handler call is taken up when the connection wakes.
        reactor.wake(id);
        true
    }

    /// Answers `status` with its reason phrase as a short `text/plain` body.
    pub fn respond_status(self, reactor: &mut Reactor, status: StatusCode) {
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        let reason = status.canonical_reason().unwrap_or("Error");
        self.respond(reactor, status, &headers, format!("{reason}\n"));
    }
}

/// Bodies up to this length are copied next to their head (one buffer, one iovec); longer
/// ones are queued as they are.
const SMALL_BODY: usize = 4096;

impl Drop for Responder {
    fn drop(&mut self) {
        if self.answered {
            return;
        }
        // Borrowed: the pipeline is dropping what it holds (a resume call that owned this
        // responder) because the connection is gone or closing; there is nothing to answer.
        let Ok(mut pipeline) = self.pipeline.try_borrow_mut() else {
            return;
        };
        if let Some(slot) = pipeline.slot(self.seq) {
            log::warn!("a request was dropped unanswered: 500 and close");
            let head = ResponseEncoder::new(StatusCode::INTERNAL_SERVER_ERROR, BodyKind::Length(0))
                .answering_parts(
                    self.answering.method(),
                    self.answering.version,
                    self.answering.keep_alive,
                )
                .close(true);
            let _ = head.write(&HeaderMap::new(), slot.staging());
            slot.finish(true);
            pipeline.pump_later();
        }
    }
}

/// Writes a streamed response body (from [`Responder::stream`]), with backpressure: after
/// [`write`](BodyWriter::write) returns false, stop producing until the call given to
/// [`on_resume`](BodyWriter::on_resume) runs. That keeps the connection's memory bounded
/// however slowly the client reads. [`finish`](BodyWriter::finish) ends the body.
///
/// Dropping it unfinished closes the connection after what was written (the client cannot
/// otherwise tell the body was cut short).
#[must_use = "a streamed body must be finished"]
pub struct BodyWriter {
    pipeline: SharedPipeline,
    seq: u64,
    /// `None` once finished, or if the connection was gone at the start.
    framing: Option<BodyEncoder>,
}

impl BodyWriter {
    /// Writes the next piece of the body (an empty piece writes nothing). Returns whether the
    /// producer may go on: false when the connection's queue is past its high watermark (the
    /// client reads slowly), when earlier pipelined responses are still being sent, or when
    /// the connection is gone. The write itself always happens (if the connection is there).
    pub fn write(&mut self, reactor: &mut Reactor, data: impl Into<Bytes>) -> bool {
        let data = data.into();
        self.put(reactor, data.len(), |slot| slot.put_bytes(data))
    }

    /// Writes the next piece of the body as a range of a file: the kernel sends it from the
    /// page cache (`sendfile(2)`) on plain TCP, and it is read as it is sent on TLS. Its
    /// bytes should already be in the page cache ([`FileSegment::load`], in the thread
    /// pool), since sending reads them on the reactor thread; [`Responder::send_file`] does
    /// all of that. Returns what [`write`](BodyWriter::write) returns.
    pub fn write_file(&mut self, reactor: &mut Reactor, segment: FileSegment) -> bool {
        let len = usize::try_from(segment.len()).unwrap_or(usize::MAX);
        self.put(reactor, len, |slot| slot.put_file(segment))
    }

    /// Frames a piece of `len` bytes around what `put` adds to the slot, then pumps.
    fn put(&mut self, reactor: &mut Reactor, len: usize, put: impl FnOnce(&mut Slot)) -> bool {
        if let Some(framing) = self.framing.as_mut() {
            let mut pipeline = self.pipeline.borrow_mut();
            let mut overrun = false;
            if let Some(slot) = pipeline.slot(self.seq) {
                match framing.start_data(len, slot.staging()) {
                    Ok(true) => {
                        put(slot);
                        framing.end_data(slot.staging());
                    }
                    Ok(false) => {}
                    // Past the `Content-Length` announced: cut the response there.
                    Err(error) => {
                        log::warn!("a streamed body went past its length ({error}): closing");
                        overrun = true;
                    }
                }
            }
            drop(pipeline);
            if overrun {
                self.end(false);
            }
        }
        pump(&self.pipeline, reactor);
        !self.should_pause(reactor)
    }

    /// Whether the producer should hold off now (see [`write`](BodyWriter::write)).
    pub fn should_pause(&self, reactor: &Reactor) -> bool {
        self.pipeline.borrow().should_pause(self.seq, reactor)
    }

    /// Runs `f` once, when the producer may write again after `write` returned false: when
    /// the connection hears `resume_writing`, or when this response reaches the wire after
    /// earlier pipelined ones. Replaces a call registered before. Never runs if the connection
    /// closes first.
    pub fn on_resume(&mut self, f: impl FnOnce(&mut Reactor) + 'static) {
        self.pipeline.borrow_mut().on_resume(self.seq, Box::new(f));
    }

    /// Whether the client can still receive the body.
    pub fn is_connected(&self) -> bool {
        self.pipeline.borrow_mut().slot(self.seq).is_some()
    }

    /// Ends the body (the last chunk) and completes the response. A body given a length
    /// ([`Responder::stream_with_length`]) that is still short of it is cut short instead:
    /// the connection closes after it.
    pub fn finish(mut self, reactor: &mut Reactor) {
        self.end(true);
        pump(&self.pipeline, reactor);
    }

    /// Gives up on the body (its producer failed, e.g. a read error in the middle of a file):
    /// what was written is sent, then the connection closes, since the client can tell a
    /// body cut short only that way.
    pub fn abort(mut self, reactor: &mut Reactor) {
        self.end(false);
        pump(&self.pipeline, reactor);
    }

    /// Completes the response: properly (`clean`), or cut short (then the connection closes).
    fn end(&mut self, clean: bool) {
        let Some(framing) = self.framing.take() else {
            return;
        };
        // Borrowed: the pipeline is dropping what it holds (a resume call that owned this
        // writer) because the connection is gone or closing; there is nothing to end.
        let Ok(mut pipeline) = self.pipeline.try_borrow_mut() else {
            return;
        };
        let Some(slot) = pipeline.slot(self.seq) else {
            return;
        };
        let keep_alive = framing.keep_alive();
        let whole = clean && framing.finish(slot.staging()).is_ok();
        if clean && !whole {
            log::warn!("a streamed body ended short of its length: closing the connection");
        }
        slot.finish(!whole || !keep_alive);
        pipeline.needs_pump = true;
    }
}

impl Drop for BodyWriter {
    fn drop(&mut self) {
        if self.framing.is_some() {
            log::warn!("a streamed body was dropped unfinished: closing the connection");
            self.end(false);
            // No reactor here to send what is left: the connection is woken to.
            if let Ok(mut pipeline) = self.pipeline.try_borrow_mut() {
                if pipeline.needs_pump {
                    pipeline.pump_later();
                }
            }
        }
    }
}
