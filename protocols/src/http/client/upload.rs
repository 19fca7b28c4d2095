//! Request bodies: bytes (sent at once, and again on a retry or a 307/308 redirect) or a
//! [`BodySource`] the connection pulls from while its write queue has room, framed with the
//! source's length or chunked.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderValue};
use torsion_reactor::{ConnectionId, Context, Reactor};

use super::connection::ClientConnection;
use super::exchange::Exchange;
use crate::http::codec::{
    write_chunk_start, write_request_head, BodyKind, HttpError, CHUNK_END, LAST_CHUNK,
};

/// Above this many queued bytes the connection stops pulling from a [`BodySource`]; the
/// reactor then calls `pause_writing`, and `resume_writing` once the queue drains to
/// [`LOW_WATER`]. Set on every client connection.
pub(super) const HIGH_WATER: usize = 64 * 1024;
/// See [`HIGH_WATER`].
pub(super) const LOW_WATER: usize = 16 * 1024;

/// What a [`BodySource`] gives when pulled.
#[derive(Debug)]
pub enum Pull {
    /// The next piece of the body (an empty one is skipped).
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
pub(super) struct Upload {
    source: Box<dyn BodySource>,
    framing: BodyKind,
    sent: u64,
    /// The source answered `Wait` and has not woken the connection since.
    pub(super) waiting: bool,
}

/// What a round of pulling ended with.
pub(super) enum Pumped {
    /// The queue is full or the source waits: more later.
    Later,
    /// The whole body is queued.
    Done,
    /// The source broke its promised length.
    Failed(HttpError),
}

impl Upload {
    pub(super) fn new(source: Box<dyn BodySource>, framing: BodyKind) -> Self {
        Upload {
            source,
            framing,
            sent: 0,
            waiting: false,
        }
    }

    /// Pulls and queues until the queue passes [`HIGH_WATER`] (which makes the reactor call
    /// `pause_writing`), the source waits, or the body ends.
    pub(super) fn pump(&mut self, cx: &mut Context<'_>) -> Pumped {
        let waker = BodyWaker { conn: cx.id() };
        while !self.waiting && cx.queued_bytes() <= HIGH_WATER {
            match self.source.pull(cx.reactor(), waker) {
                Pull::Data(data) if data.is_empty() => {}
                Pull::Data(data) => {
                    if let Err(error) = self.send(cx, data) {
                        return Pumped::Failed(error);
                    }
                }
                Pull::Wait => self.waiting = true,
                Pull::End => return self.end(cx),
            }
        }
        Pumped::Later
    }

    fn send(&mut self, cx: &mut Context<'_>, data: Bytes) -> Result<(), HttpError> {
        self.sent += data.len() as u64;
        match self.framing {
            BodyKind::Length(declared) if self.sent > declared => {
                Err(HttpError::BodyLengthMismatch {
                    declared,
                    written: self.sent,
                })
            }
            BodyKind::Length(_) => {
                cx.write_bytes(data);
                Ok(())
            }
            BodyKind::Chunked => {
                let mut start = BytesMut::with_capacity(18);
                write_chunk_start(data.len(), &mut start);
                cx.write_bytes(start.freeze());
                cx.write_bytes(data);
                cx.write(CHUNK_END);
                Ok(())
            }
        }
    }

    fn end(&mut self, cx: &mut Context<'_>) -> Pumped {
        match self.framing {
            BodyKind::Length(declared) if self.sent != declared => {
                Pumped::Failed(HttpError::BodyLengthMismatch {
                    declared,
                    written: self.sent,
                })
            }
            BodyKind::Length(_) => Pumped::Done,
            BodyKind::Chunked => {
                cx.write(LAST_CHUNK);
                Pumped::Done
            }
        }
    }
}

/// Writes the request head (with `Host` from the URL unless given) and a bytes body; a
/// streamed body is taken out of the exchange and returned, to be pumped.
pub(super) fn send_request(cx: &mut Context<'_>, exchange: &mut Exchange) -> Option<Upload> {
    let mut out = BytesMut::with_capacity(256);
    let framing = exchange.body.kind();
    let (method, target) = (&exchange.method, &exchange.target);
    if exchange.headers.contains_key(header::HOST) {
        write_request_head(method, &target.path, &exchange.headers, framing, &mut out);
    } else {
        let host = HeaderValue::from_str(&target.authority)
            .unwrap_or_else(|_| HeaderValue::from_static(""));
        let headers = std::iter::once((&header::HOST, &host)).chain(exchange.headers.iter());
        write_request_head(method, &target.path, headers, framing, &mut out);
    }
    cx.write_bytes(out.freeze());
    match &mut exchange.body {
        RequestBody::Bytes(bytes) => {
            cx.write_bytes(bytes.clone());
            None
        }
        RequestBody::Stream(source) => source.take().map(|s| Upload::new(s, framing)),
    }
}
