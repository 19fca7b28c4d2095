//! Sending a request: its head and body, bytes (sent at once, and again on a retry or a
//! 307/308 redirect) or a [`BodySource`] the connection pulls from while its write queue has
//! room, framed with the source's length or chunked; and [`Sending`], which follows the
//! request out of the queue, for the send guard and the start of the head timeout.

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderValue};
use torsion_reactor::{ConnectionId, Context, DelayedCall, Reactor, WriteProgress};

use super::connection::ClientConnection;
use super::exchange::Exchange;
use crate::http::codec::{BodyEncoder, BodyKind, HttpError, RequestEncoder};

/// Above this many queued bytes the connection stops pulling from a [`BodySource`], until
/// the queue drains to [`LOW_WATER`].
pub(super) const HIGH_WATER: usize = 64 * 1024;
/// See [`HIGH_WATER`].
pub(super) const LOW_WATER: usize = 16 * 1024;

/// What a [`BodySource`] gives when pulled.
#[derive(Debug)]
pub enum Pull {
    /// The next piece of the body. An empty one counts as [`Wait`](Pull::Wait): pulling
    /// again at once could spin for ever, so the source must then call
    /// [`BodyWaker::wake`] when it has more.
    Data(Bytes),
    /// Nothing now: the source calls [`BodyWaker::wake`] when it has more.
    Wait,
    /// The body is complete.
    End,
}

/// A request body produced as the connection can take it
/// ([`Request::body_stream`](super::Request::body_stream)): pulled while the connection's
/// write queue is under its high watermark, so a fast source never fills memory. It cannot be
/// sent twice, so a request with it is never retried, and a 307/308 redirect is returned as
/// the response instead of followed.
pub trait BodySource: 'static {
    /// The body's exact length if known (sent as `Content-Length`; producing another length
    /// fails the request), else `None` (sent chunked, the default).
    fn length(&self) -> Option<u64> {
        None
    }

    /// The connection can take more. `waker` wakes the connection after a [`Pull::Wait`].
    fn pull(&mut self, reactor: &mut Reactor, waker: BodyWaker) -> Pull;
}

/// Resumes pulling from a [`BodySource`] that answered [`Pull::Wait`].
#[derive(Debug, Clone, Copy)]
pub struct BodyWaker {
    conn: ConnectionId,
}

impl BodyWaker {
    /// The source has more: the connection pulls again (on this or the next turn). A no-op
    /// once the request ended.
    pub fn wake(self, reactor: &mut Reactor) {
        reactor.call_later_on(self.conn, Duration::ZERO, |c: &mut ClientConnection, cx| {
            c.wake_upload(cx)
        });
    }
}

/// A request's body.
pub(super) enum RequestBody {
    Bytes(Bytes),
    /// `None` once the source was taken by a connection.
    Stream(Option<Box<dyn BodySource>>),
}

impl RequestBody {
    /// Whether the body can be sent again (a retry, a 307/308 redirect).
    pub(super) fn is_replayable(&self) -> bool {
        matches!(self, RequestBody::Bytes(_))
    }

    pub(super) fn kind(&self) -> BodyKind {
        match self {
            RequestBody::Bytes(bytes) => BodyKind::Length(bytes.len() as u64),
            RequestBody::Stream(source) => match source.as_ref().and_then(|s| s.length()) {
                Some(len) => BodyKind::Length(len),
                None => BodyKind::Chunked,
            },
        }
    }
}

/// A streamed body being sent.
struct Upload {
    source: Box<dyn BodySource>,
    body: BodyEncoder,
    /// Where chunk framing is written before it is queued (one allocation reused).
    framing: BytesMut,
    /// Body bytes the source gave so far.
    sent: u64,
    /// The source answered `Wait` and has not woken the connection since.
    waiting: bool,
}

/// What a round of pulling ended with.
enum Pumped {
    /// The queue is full or the source waits: more later.
    Later,
    /// The source says the body is complete.
    End,
    /// The source broke its promised length.
    Failed(HttpError),
}

impl Upload {
    fn new(source: Box<dyn BodySource>, body: BodyEncoder) -> Self {
        Upload {
            source,
            body,
            framing: BytesMut::new(),
            sent: 0,
            waiting: false,
        }
    }

    /// Pulls and queues until the queue passes [`HIGH_WATER`], the source waits, or the
    /// body ends.
    fn pump(&mut self, cx: &mut Context<'_>) -> Pumped {
        let waker = BodyWaker { conn: cx.id() };
        while !self.waiting && cx.queued_bytes() <= HIGH_WATER {
            match self.source.pull(cx.reactor(), waker) {
                Pull::Data(data) if data.is_empty() => self.waiting = true,
                Pull::Data(data) => {
                    if let Err(error) = self.send(cx, data) {
                        return Pumped::Failed(error);
                    }
                }
                Pull::Wait => self.waiting = true,
                Pull::End => return Pumped::End,
            }
        }
        Pumped::Later
    }

    /// Queues `data` as the next piece, framed (a chunk of its own when chunked); fails,
    /// queueing nothing, if it would go past the length announced.
    fn send(&mut self, cx: &mut Context<'_>, data: Bytes) -> Result<(), HttpError> {
        self.sent += data.len() as u64;
        self.framing.reserve(CHUNK_FRAMING);
        if self.body.start_data(data.len(), &mut self.framing)? {
            self.queue_framing(cx);
            cx.write_bytes(data);
            self.body.end_data(&mut self.framing);
            self.queue_framing(cx);
        }
        Ok(())
    }

    /// Ends the body (the last chunk when chunked); fails if it is short of the length
    /// announced.
    fn end(self, cx: &mut Context<'_>) -> Result<(), HttpError> {
        let Upload {
            body, mut framing, ..
        } = self;
        body.finish(&mut framing)?;
        if !framing.is_empty() {
            cx.write_bytes(framing.freeze());
        }
        Ok(())
    }

    fn queue_framing(&mut self, cx: &mut Context<'_>) {
        if !self.framing.is_empty() {
            cx.write_bytes(self.framing.split().freeze());
        }
    }
}

/// Room for a chunk's framing: up to 16 hex digits and two CRLFs.
const CHUNK_FRAMING: usize = 20;

/// A request being written, from its first byte queued until the transport has taken its
/// last (for TLS: until its last record has left).
///
/// While a request is being sent the connection watches its writes
/// (`Context::watch_writes`): the reactor reports each flush that sends some of it, in the
/// turn it happens, and the one after which nothing is left tells exactly when the request
/// is written. Pulling from a [`BodySource`] keeps a hysteresis between [`HIGH_WATER`] and
/// [`LOW_WATER`].
pub(super) struct Sending {
    /// The streamed body still to pull; `None` once the whole request is queued.
    upload: Option<Upload>,
    /// Everything queued so far has left.
    drained: bool,
    /// When the transport last took bytes or the source last gave data.
    last_progress: Instant,
    /// The send guard's timer, while one is armed.
    guard: Option<DelayedCall>,
    /// The queue passed [`HIGH_WATER`]: no pulling until it drains to [`LOW_WATER`].
    full: bool,
    /// The request lets the connection persist (it did not ask `Connection: close`).
    pub(super) keep_alive: bool,
    /// The transport took some of the request (after which it cannot be taken back).
    sent_any: bool,
}

/// Where a request being sent stands after a look.
pub(super) enum Sent {
    /// Bytes are still to leave, or the source is still to be pulled.
    Later,
    /// The transport has taken the whole request.
    Written,
    /// The source broke its promised length.
    Failed(HttpError),
}

impl Sending {
    /// Queues `exchange`'s request (a streamed body is pulled in [`advance`](Self::advance)),
    /// starts watching it leave, and arms the send guard, `guard` without progress failing
    /// the request.
    pub(super) fn start(
        cx: &mut Context<'_>,
        exchange: &mut Exchange,
        guard: Option<Duration>,
    ) -> Self {
        let (upload, keep_alive) = send_request(cx, exchange);
        cx.watch_writes(true);
        Sending {
            upload,
            drained: false,
            last_progress: cx.reactor().now(),
            guard: guard.and_then(|after| arm_guard(cx, after)),
            full: false,
            keep_alive,
            sent_any: false,
        }
    }

    /// A flush sent some of the request: notes the progress (and whether all of it left).
    pub(super) fn progressed(&mut self, cx: &mut Context<'_>, progress: WriteProgress) {
        self.last_progress = cx.reactor().now();
        self.drained = progress.drained;
        self.sent_any |= progress.sent > 0;
    }

    /// Looks at the request after the reactor reported progress (or the request was queued,
    /// or the source woke): pulls more if there is room, and says whether it is written.
    pub(super) fn advance(&mut self, cx: &mut Context<'_>) -> Sent {
        if cx.queued_bytes() <= LOW_WATER {
            self.full = false;
        }
        let queued_before = cx.queued_bytes();
        if let Err(error) = self.pull(cx) {
            return Sent::Failed(error);
        }
        if cx.queued_bytes() > queued_before {
            self.drained = false;
        }
        match (self.drained, &self.upload) {
            (true, None) => {
                cx.watch_writes(false);
                Sent::Written
            }
            _ => Sent::Later,
        }
    }

    /// Pulls from the source, if there is one and the queue has room.
    fn pull(&mut self, cx: &mut Context<'_>) -> Result<(), HttpError> {
        let Some(upload) = self.upload.as_mut().filter(|_| !self.full) else {
            return Ok(());
        };
        let before = upload.sent;
        let pumped = upload.pump(cx);
        if upload.sent > before {
            self.last_progress = cx.reactor().now();
        }
        match pumped {
            Pumped::Later => self.full = cx.queued_bytes() > HIGH_WATER,
            Pumped::End => {
                if let Some(upload) = self.upload.take() {
                    upload.end(cx)?;
                }
            }
            Pumped::Failed(error) => return Err(error),
        }
        Ok(())
    }

    /// The send guard's timer fired: true if the request made no progress for `after`, else
    /// the guard is armed again for what is left of `after` since the last progress.
    pub(super) fn stalled(&mut self, cx: &mut Context<'_>, after: Duration) -> bool {
        self.guard = None;
        let now = cx.reactor().now();
        // Nothing waiting to leave is the source's delay, not the server's: the guard
        // judges the server.
        if self.drained {
            self.last_progress = now;
        }
        let idle = now.saturating_duration_since(self.last_progress);
        if idle >= after {
            return true;
        }
        self.guard = arm_guard(cx, after - idle);
        false
    }

    /// Whether the transport took any of the request: if not, and the connection closes, the
    /// server cannot have seen it.
    pub(super) fn sent_any(&self) -> bool {
        self.sent_any
    }

    /// Cancels the send guard: the request was written, or ended.
    pub(super) fn finish(self, reactor: &mut Reactor) {
        if let Some(guard) = self.guard {
            guard.cancel(reactor);
        }
    }

    /// The source woke: it may be pulled again.
    pub(super) fn wake(&mut self) {
        if let Some(upload) = self.upload.as_mut() {
            upload.waiting = false;
        }
    }
}

/// Arms the send guard to look at the request in `after`.
fn arm_guard(cx: &mut Context<'_>, after: Duration) -> Option<DelayedCall> {
    cx.call_later(after, |c: &mut ClientConnection, cx| c.send_guard_fired(cx))
}

/// Writes the request head (with `Host` from the URL unless given) and a bytes body; a
/// streamed body is taken out of the exchange and returned, to be pumped. Also says whether
/// the request lets the connection persist (false if it asked `Connection: close`).
fn send_request(cx: &mut Context<'_>, exchange: &mut Exchange) -> (Option<Upload>, bool) {
    let mut out = BytesMut::with_capacity(256);
    let (method, target) = (&exchange.method, &exchange.target);
    let encoder = RequestEncoder::new(method, &target.path, exchange.body.kind());
    let body = if exchange.headers.contains_key(header::HOST) {
        encoder.write(&exchange.headers, &mut out)
    } else {
        let host = HeaderValue::from_str(&target.authority)
            .unwrap_or_else(|_| HeaderValue::from_static(""));
        let headers = std::iter::once((&header::HOST, &host)).chain(exchange.headers.iter());
        encoder.write(headers, &mut out)
    };
    let keep_alive = body.keep_alive();
    cx.write_bytes(out.freeze());
    let upload = match &mut exchange.body {
        RequestBody::Bytes(bytes) => {
            // Its length was announced from the bytes themselves: nothing can mismatch.
            cx.write_bytes(bytes.clone());
            None
        }
        RequestBody::Stream(source) => source.take().map(|s| Upload::new(s, body)),
    };
    (upload, keep_alive)
}
