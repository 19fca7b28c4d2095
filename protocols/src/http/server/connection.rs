//! [`HttpConnection`]: the protocol of one HTTP connection, a thin shell over the codec's
//! [`RequestDecoder`] and the connection's response [`Pipeline`].

mod closing;

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use http::HeaderMap;
use log::{debug, warn};
use torsion_reactor::{Context, DelayedCall, DisconnectReason, Protocol, WriteProgress};

use super::date::DateCache;
use super::handler::{BodyMode, BodySink, Handler, Request};
use super::linger::Closing;
use super::params::Params;
use super::pipeline::{pump, Pipeline, SharedPipeline};
use super::responder::{Answering, Responder};
use super::send_guard::SendGuard;
use super::ServerConfig;
use crate::http::codec::{
    write_continue, BodyKind, HttpError, RequestDecoder, RequestEvent, RequestHead,
};

/// The request whose body is being read.
enum Current {
    /// Between requests.
    Idle,
    /// Gathering a body for [`BodyMode::Whole`].
    Whole(Box<WholeBody>),
    /// Handing the body to a sink ([`BodyMode::Stream`]).
    Stream(Box<dyn BodySink>),
    /// Discarding the body ([`BodyMode::Ignore`]).
    Ignore,
}

/// A request whose body is gathered before its handler runs.
struct WholeBody {
    head: RequestHead,
    body: BytesMut,
    responder: Responder,
}

/// The protocol of one HTTP/1.1 connection, built by [`HttpServer`](super::HttpServer).
///
/// Requests are decoded as they arrive and handed to the handler in order; their responses
/// leave in the same order. Reading stops while [`ServerConfig::max_pipelined`] responses are
/// pending and resumes as they complete.
pub struct HttpConnection<H: Handler> {
    handler: Rc<H>,
    config: Rc<ServerConfig>,
    date: Rc<RefCell<DateCache>>,
    decoder: RequestDecoder,
    /// Set in `connection_made` (it needs the connection's id).
    pipeline: Option<SharedPipeline>,
    current: Current,
    /// The read timeout running.
    deadline: ReadTimer,
    /// The send timeout: follows bytes waiting in the queue.
    send: Option<SendGuard>,
    /// Reading is paused because the write queue passed its high watermark: a client that
    /// pipelines requests without reading the responses must not make the queue grow
    /// without bound. Reading resumes once the queue drains to the low watermark.
    backed_up: bool,
    /// Reading is paused because the pipeline is full: it resumes when the pipeline wakes
    /// the connection (a response completed).
    stalled: bool,
    /// Whether the connection is on its way out, and how (see [`Closing`]).
    closing: Closing,
    /// The client's EOF arrived: nothing more can be unread.
    read_ended: bool,
    /// Where a graceful shutdown has got to on this connection.
    draining: Draining,
    /// The protocol the connection switched to after a `101 Switching Protocols`
    /// ([`Responder::switch_protocols`]): it gets every callback from then on.
    upgraded: Option<Box<dyn Protocol>>,
}

/// A graceful shutdown's progress on one connection. A request the client has begun (or, on
/// a connection that has had none yet, the first one, which the client connected to send)
/// is read and answered, with `Connection: close`; nothing after it is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Draining {
    /// No shutdown.
    No,
    /// The next request head to arrive is the last one read.
    ForLast,
    /// The last request's head came: reading stops once its body is in.
    Taken,
}

/// The read timeout running: which one, its call, and the later instant bytes have moved it
/// to since it was armed. A read that restarts the timeout only moves `until`; the call, when
/// it fires, arms itself again for the rest. So a request costs no timer cancelled and
/// scheduled, only a look at the clock.
#[derive(Debug, Clone, Copy)]
pub(super) struct ReadTimer {
    which: Deadline,
    call: Option<DelayedCall>,
    until: Option<Instant>,
}

impl ReadTimer {
    const NONE: ReadTimer = ReadTimer {
        which: Deadline::None,
        call: None,
        until: None,
    };

    /// Cancels the call, if one runs; the timer is then `NONE`.
    pub(super) fn cancel(&mut self, cx: &mut Context<'_>) {
        if let Some(call) = std::mem::replace(self, ReadTimer::NONE).call {
            call.cancel(cx.reactor());
        }
    }
}

/// Which read timeout applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Deadline {
    /// None running.
    None,
    /// A body is being read: the body timeout, restarted by each read that brings bytes.
    Body,
    /// Between requests: the idle timeout.
    Idle,
    /// Part of a head has arrived: the header timeout, from its first byte.
    Header,
}

impl<H: Handler> HttpConnection<H> {
    pub(super) fn new(
        handler: Rc<H>,
        config: Rc<ServerConfig>,
        date: Rc<RefCell<DateCache>>,
    ) -> Self {
        HttpConnection {
            decoder: RequestDecoder::with_limits(config.limits.clone()),
            handler,
            config,
            date,
            pipeline: None,
            current: Current::Idle,
            deadline: ReadTimer::NONE,
            send: None,
            backed_up: false,
            stalled: false,
            closing: Closing::No,
            read_ended: false,
            draining: Draining::No,
            upgraded: None,
        }
    }

    /// Responses accepted and not yet fully handed to the connection.
    pub fn pending_responses(&self) -> usize {
        self.pipeline.as_ref().map_or(0, |p| p.borrow().len())
    }

    /// Whether the send timeout is following bytes in the queue (its timer armed).
    #[cfg(test)]
    pub(super) fn is_following_send(&self) -> bool {
        self.send.as_ref().is_some_and(SendGuard::is_following)
    }

    /// Input kept by the connection: bytes the decoder holds, and a request body being
    /// gathered.
    #[cfg(test)]
    pub(super) fn held_input(&self) -> usize {
        let body = match &self.current {
            Current::Whole(whole) => whole.body.len(),
            _ => 0,
        };
        self.decoder.buffered_len() + body
    }

    /// While lingering, the bytes read and thrown away so far.
    #[cfg(test)]
    pub(super) fn lingering_discarded(&self) -> Option<u64> {
        match &self.closing {
            Closing::Lingering(linger) => Some(linger.discarded()),
            _ => None,
        }
    }

    /// Decodes `data` (after what is buffered) and dispatches the events, until the input
    /// runs dry, the pipeline is full, or the connection is closing.
    fn process(&mut self, cx: &mut Context<'_>, data: &[u8]) {
        let Some(pipeline) = self.pipeline.clone() else {
            return;
        };
        if self.closing.has_begun() {
            return;
        }
        let mut dispatch = Dispatch {
            handler: &*self.handler,
            pipeline: &pipeline,
            current: &mut self.current,
            draining: &mut self.draining,
        };
        let max = self.config.max_pipelined;
        let high_water = self.config.write_buffer_limits.0;
        let (mut stalled, mut backed_up, mut last_in) = (false, false, false);
        let mut switching = false;
        let mut events = self.decoder.feed(data);
        loop {
            let between = matches!(dispatch.current, Current::Idle);
            let closing = cx.is_closing() || pipeline.borrow().is_closing();
            if between && *dispatch.draining == Draining::Taken {
                last_in = !closing;
                break;
            }
            if between && (closing || pipeline.borrow().len() >= max) {
                stalled = !closing;
                break;
            }
            if between && cx.queued_bytes() > high_water {
                backed_up = true;
                break;
            }
            match events.next() {
                None => break,
                Some(Ok(event)) => {
                    dispatch.event(cx, event);
                    // Nothing after a `101` is HTTP: the rest goes to the new protocol.
                    if pipeline.borrow().upgrade.is_some() {
                        switching = true;
                        break;
                    }
                }
                Some(Err(error)) => {
                    dispatch.refuse(cx, &error);
                    break;
                }
            }
        }
        drop(events);
        if switching {
            self.switch_protocols(cx);
            return;
        }
        if pipeline.borrow().needs_pump {
            pump(&pipeline, cx.reactor());
        }
        if pipeline.borrow().is_closing() {
            return self.begin_close(cx);
        }
        if last_in {
            // A shutdown's last request is in: nothing more is read.
            cx.pause_reading();
        }
        if stalled {
            self.stall(cx, &pipeline);
        }
        if backed_up {
            self.backed_up = true;
            cx.pause_reading();
        }
        self.arm_deadline(cx, !data.is_empty());
    }

    /// Starts the read timeout the connection's state calls for, keeping one already running
    /// for the same state (a head's timeout runs from its first byte) unless `activity` says
    /// bytes arrived (which restarts the idle timeout).
    fn arm_deadline(&mut self, cx: &mut Context<'_>, activity: bool) {
        let want = if !matches!(self.current, Current::Idle) {
            Deadline::Body
        } else if self.decoder.is_idle() {
            Deadline::Idle
        } else {
            Deadline::Header
        };
        let delay = match want {
            Deadline::None => None,
            Deadline::Idle => self.config.idle_timeout,
            Deadline::Header => self.config.header_timeout,
            Deadline::Body => self.config.body_timeout,
        };
        if want == self.deadline.which && self.deadline.call.is_some() {
            let restarts = activity && matches!(want, Deadline::Idle | Deadline::Body);
            if let (true, Some(delay)) = (restarts, delay) {
                self.deadline.until = Some(cx.reactor().now() + delay);
            }
            return;
        }
        self.deadline.cancel(cx);
        self.deadline = ReadTimer {
            which: want,
            call: delay.and_then(|delay| self.call_timed_out(cx, want, delay)),
            until: None,
        };
    }

    /// Schedules the `which` timeout's end `delay` from now.
    fn call_timed_out(
        &mut self,
        cx: &mut Context<'_>,
        which: Deadline,
        delay: Duration,
    ) -> Option<DelayedCall> {
        cx.call_later(delay, move |this: &mut Self, cx| this.timed_out(which, cx))
    }

    /// The read timeout `which` ran out.
    fn timed_out(&mut self, which: Deadline, cx: &mut Context<'_>) {
        if let Some(until) = self.deadline.until.take() {
            // Bytes came since the timer was armed: it runs on to the instant they set.
            let now = cx.reactor().now();
            if until > now {
                self.deadline.call = self.call_timed_out(cx, which, until - now);
                return;
            }
        }
        self.deadline = ReadTimer::NONE;
        match which {
            Deadline::Idle if self.pending_responses() > 0 || self.is_sending(cx) => {
                // Waiting for the application (a long poll), or for the client to take a
                // response (the send timeout's business), is not idleness.
                self.arm_deadline(cx, true);
            }
            Deadline::Idle => {
                debug!("connection {}: idle timeout", cx.id());
                cx.lose_connection();
            }
            Deadline::Header | Deadline::Body => {
                let what = match which {
                    Deadline::Header => "request head",
                    _ => "request body",
                };
                let Some(pipeline) = self.pipeline.clone() else {
                    return;
                };
                cx.pause_reading();
                self.backed_up = false; // reading stops for good
                self.stalled = false;
                let mut dispatch = Dispatch {
                    handler: &*self.handler,
                    pipeline: &pipeline,
                    current: &mut self.current,
                    draining: &mut self.draining,
                };
                dispatch.refuse(cx, &HttpError::Timeout { what });
                // The 408 must leave too: a client that does not take it is the send
                // timeout's (no other timer runs now).
                self.watch_send(cx);
                self.close_if_done(cx);
            }
            Deadline::None => {}
        }
    }

    /// Whether bytes wait for the client (with a send timeout configured): if so, they are
    /// being followed from now on, if they were not.
    fn is_sending(&mut self, cx: &mut Context<'_>) -> bool {
        if self.config.send_timeout.is_none() || cx.queued_bytes() == 0 {
            return false;
        }
        self.watch_send(cx);
        true
    }

    /// The send timeout's look at the queue (see [`SendGuard`]): starts following a queue
    /// that holds bytes (arming the timer, and asking the reactor to report each flush that
    /// sends some); stops following an empty one (and the idle timeout restarts: the
    /// response is out).
    fn watch_send(&mut self, cx: &mut Context<'_>) {
        let (Some(after), Some(_)) = (self.config.send_timeout, &self.pipeline) else {
            return;
        };
        let now = cx.reactor().now();
        let guard = self.send.get_or_insert_with(|| SendGuard::new(now));
        if cx.queued_bytes() == 0 {
            if guard.is_following() {
                self.stop_following(cx);
            }
            return;
        }
        if !guard.is_following() {
            let timer = cx.call_later(after, |this: &mut Self, cx| this.send_timer_fired(cx));
            guard.start(now, timer);
            cx.watch_writes(true);
        }
    }

    /// Everything queued has left: the send timeout stops following, and the idle timeout
    /// restarts.
    fn stop_following(&mut self, cx: &mut Context<'_>) {
        if let Some(guard) = self.send.as_mut() {
            guard.stop(cx.reactor());
        }
        // A close that lingers once the responses are out waits for the same report.
        cx.watch_writes(matches!(self.closing, Closing::Sending));
        if self.deadline.which == Deadline::Idle {
            self.arm_deadline(cx, true);
        }
    }

    /// The send timeout's timer: aborts the connection if the client took nothing for the
    /// whole timeout, else arms it again for what is left of it since the last progress.
    fn send_timer_fired(&mut self, cx: &mut Context<'_>) {
        let (Some(after), Some(guard)) = (self.config.send_timeout, self.send.as_mut()) else {
            return;
        };
        guard.fired();
        if !guard.is_following() {
            return;
        }
        let silent = guard.silent_for(cx.reactor().now());
        if silent >= after {
            warn!(
                "connection {}: send timeout: the client took none of {} queued bytes for \
                 {after:?}",
                cx.id(),
                cx.queued_bytes()
            );
            cx.abort_connection();
            return;
        }
        let timer = cx.call_later(after - silent, |this: &mut Self, cx| {
            this.send_timer_fired(cx)
        });
        guard.rearm(timer);
    }

    /// The queue is at or under the configured low watermark: a paused streaming producer
    /// may go on (`resume_writing` as the configured marks would have said it).
    fn resume_if_low(&mut self, cx: &mut Context<'_>) {
        if cx.queued_bytes() > self.config.write_buffer_limits.1 {
            return;
        }
        let resume = match &self.pipeline {
            Some(pipeline) => pipeline.borrow_mut().set_paused(false),
            None => None,
        };
        if let Some(resume) = resume {
            resume(cx.reactor());
        }
        if std::mem::take(&mut self.backed_up) {
            // Requests read before the pause wait in the decoder: they go first.
            cx.resume_reading();
            self.process(cx, &[]);
        }
    }

    /// A `101` went out: the HTTP timers stop, and the new protocol takes the connection and
    /// the bytes that followed the request.
    fn switch_protocols(&mut self, cx: &mut Context<'_>) {
        let Some(mut protocol) = self
            .pipeline
            .as_ref()
            .and_then(|p| p.borrow_mut().upgrade.take())
        else {
            return;
        };
        debug!("connection {}: switching protocols", cx.id());
        self.deadline.cancel(cx);
        if let Some(guard) = self.send.as_mut() {
            guard.stop(cx.reactor());
        }
        cx.watch_writes(false);
        if std::mem::take(&mut self.stalled) | std::mem::take(&mut self.backed_up) {
            cx.resume_reading();
        }
        let rest = self.decoder.take_buffered();
        protocol.connection_made(cx);
        if !rest.is_empty() {
            protocol.data_received(cx, &rest);
        }
        self.upgraded = Some(protocol);
    }

    /// The pipeline is full: stop reading until a response completes (the pipeline wakes
    /// the connection then).
    fn stall(&mut self, cx: &mut Context<'_>, pipeline: &SharedPipeline) {
        cx.pause_reading();
        self.stalled = true;
        pipeline.borrow_mut().stalled = true;
    }
}

/// The parts of a connection an event needs, borrowed beside its decoder.
struct Dispatch<'a, H> {
    handler: &'a H,
    pipeline: &'a SharedPipeline,
    current: &'a mut Current,
    draining: &'a mut Draining,
}

impl<H: Handler> Dispatch<'_, H> {
    fn event(&mut self, cx: &mut Context<'_>, event: RequestEvent<'_>) {
        match event {
            RequestEvent::Head(head) => self.head(cx, head),
            RequestEvent::Data(data) => match self.current {
                Current::Whole(whole) => whole.body.extend_from_slice(data),
                Current::Stream(sink) => sink.data(cx.reactor(), data),
                Current::Idle | Current::Ignore => {}
            },
            RequestEvent::End { trailers } => {
                match std::mem::replace(self.current, Current::Idle) {
                    Current::Whole(whole) => {
                        let WholeBody {
                            head,
                            body,
                            responder,
                        } = *whole;
                        let request = Request {
                            head,
                            body: body.freeze(),
                            trailers,
                            params: Params::default(),
                        };
                        self.handler.handle(request, responder, cx.reactor());
                    }
                    Current::Stream(mut sink) => sink.end(cx.reactor(), trailers),
                    Current::Idle | Current::Ignore => {}
                }
            }
        }
    }

    /// A new request: its response slot, the handler's choice of body mode, the 100.
    fn head(&mut self, cx: &mut Context<'_>, head: RequestHead) {
        let seq = self.pipeline.borrow_mut().push();
        let mut responder = Responder::new(self.pipeline.clone(), seq, Answering::new(&head));
        if *self.draining == Draining::ForLast {
            // A shutdown waited for this request: it is answered, and the connection closes.
            responder.close_after();
            *self.draining = Draining::Taken;
        }
        let has_body = head.body != BodyKind::Length(0);
        let mode = self.handler.body_mode(&head);
        if head.expect_continue && !matches!(mode, BodyMode::Ignore) {
            // RFC 9110 §10.1.1: the client waits for this before sending the body. It goes in
            // this request's slot: after every earlier response, before this one.
            if let Some(slot) = self.pipeline.borrow_mut().slot(seq) {
                write_continue(slot.staging());
            }
            pump(self.pipeline, cx.reactor());
        }
        let request = |head| Request {
            head,
            body: Bytes::new(),
            trailers: HeaderMap::new(),
            params: Params::default(),
        };
        match mode {
            // No body to gather (most requests): the handler runs now, with no box for the
            // head to wait in; the request's `End`, which follows at once, finds `Ignore`.
            BodyMode::Whole if !has_body => {
                *self.current = Current::Ignore;
                self.handler.handle(request(head), responder, cx.reactor());
            }
            BodyMode::Whole => {
                *self.current = Current::Whole(Box::new(WholeBody {
                    head,
                    body: BytesMut::new(),
                    responder,
                }));
            }
            BodyMode::Stream(sink) => {
                *self.current = Current::Stream(sink);
                self.handler.handle(request(head), responder, cx.reactor());
            }
            BodyMode::Ignore => {
                if has_body && head.expect_continue {
                    // The body was not asked for: the client may or may not send it.
                    responder.close_after();
                }
                *self.current = Current::Ignore;
                self.handler.handle(request(head), responder, cx.reactor());
            }
        }
    }

    /// The decoder refused the input: answer the error's status and close after it.
    fn refuse(&mut self, cx: &mut Context<'_>, error: &HttpError) {
        warn!("connection {}: refused: {error}", cx.id());
        let responder = match std::mem::replace(self.current, Current::Idle) {
            // The request being read gets the error as its answer.
            Current::Whole(whole) => Some(whole.responder),
            Current::Stream(mut sink) => {
                sink.error(cx.reactor(), error);
                None
            }
            Current::Idle | Current::Ignore => None,
        };
        let mut responder = responder.unwrap_or_else(|| {
            let seq = self.pipeline.borrow_mut().push();
            Responder::new(self.pipeline.clone(), seq, Answering::refusal())
        });
        responder.close_after();
        responder.respond_status(cx.reactor(), error.status());
    }
}

impl<H: Handler> Protocol for HttpConnection<H> {
    fn connection_made(&mut self, cx: &mut Context<'_>) {
        let (high, low) = self.config.write_buffer_limits;
        cx.set_write_buffer_limits(high, low);
        let waker = cx.reactor().handle();
        self.pipeline = Some(Pipeline::new(cx.id(), high, self.date.clone(), waker));
        self.arm_deadline(cx, true);
        debug!("connection {}: HTTP", cx.id());
    }

    fn data_received(&mut self, cx: &mut Context<'_>, data: &[u8]) {
        if let Some(upgraded) = &mut self.upgraded {
            return upgraded.data_received(cx, data);
        }
        if self.closing.has_begun() {
            // Closing: nothing more is read as requests, and nothing is kept.
            if let Closing::Lingering(linger) = &mut self.closing {
                linger.input(cx.reactor().now(), data.len());
            }
            return;
        }
        // Bytes still queued when a request arrives: a flush left them (or this turn's
        // callbacks wrote them): follow them, unless already.
        if !self.send.as_ref().is_some_and(SendGuard::is_following) {
            self.is_sending(cx);
        }
        self.process(cx, data);
    }

    fn eof_received(&mut self, cx: &mut Context<'_>) {
        if let Some(upgraded) = &mut self.upgraded {
            return upgraded.eof_received(cx);
        }
        self.read_ended = true;
        if self.closing.has_begun() {
            if let Closing::Lingering(linger) = &self.closing {
                let lasted = linger.lasted(cx.reactor().now());
                debug!(
                    "connection {}: lingering close ends at the client's EOF after {lasted:?}",
                    cx.id()
                );
            }
            self.closing = Closing::Closed;
            cx.lose_connection();
            return;
        }
        let Some(pipeline) = self.pipeline.clone() else {
            cx.lose_connection();
            return;
        };
        if matches!(self.current, Current::Idle) && self.decoder.is_idle() {
            // Answer what was asked, then close (the client may half-close after its last
            // request).
            pipeline.borrow_mut().close_when_done(cx.reactor());
            self.close_if_done(cx);
        } else {
            debug!("connection {}: EOF in the middle of a request", cx.id());
            cx.lose_connection();
        }
    }

    /// A graceful shutdown: the requests already received are answered, and so is one the
    /// client has begun sending, or, on a connection that has had no request yet, its first
    /// (the client connected to send it: closing first would fail it); the last response
    /// says `Connection: close`, and nothing after it is read. A connection idle between
    /// requests closes at once (a client's request crossing that close was never read, so
    /// it may send it again). The reactor's shutdown timeout aborts what takes too long.
    fn shutdown_requested(&mut self, cx: &mut Context<'_>) {
        if let Some(upgraded) = &mut self.upgraded {
            return upgraded.shutdown_requested(cx);
        }
        if self.closing.has_begun() || self.draining != Draining::No {
            // Already closing; a lingering close is bounded by its own limits and by the
            // shutdown's deadline.
            return;
        }
        let Some(pipeline) = self.pipeline.clone() else {
            cx.lose_connection();
            return;
        };
        let first = pipeline.borrow().requests() == 0;
        if !matches!(self.current, Current::Idle) {
            // A body arriving: its request is the last one read.
            self.draining = Draining::Taken;
            pipeline.borrow_mut().close_when_done(cx.reactor());
            return;
        }
        if (first || !self.decoder.is_idle()) && !self.read_ended {
            // A head arriving, or a new connection's first request to come: read on until
            // it is in. The idle or header timeout still bounds the wait.
            self.draining = Draining::ForLast;
            return;
        }
        self.draining = Draining::Taken;
        if self.pending_responses() == 0 && !self.may_have_unread_input(cx) {
            // Idle between requests, nothing unread: close at once (as a keep-alive timeout).
            self.closing = Closing::Closed;
            cx.lose_connection();
            return;
        }
        cx.pause_reading();
        self.backed_up = false; // no new requests: reading stops for good
        self.stalled = false;
        pipeline.borrow_mut().close_when_done(cx.reactor());
        self.close_if_done(cx);
    }

    fn connection_lost(&mut self, cx: &mut Context<'_>, reason: &DisconnectReason) {
        if let Some(upgraded) = &mut self.upgraded {
            return upgraded.connection_lost(cx, reason);
        }
        debug!("connection lost: {reason}");
        if let Some(guard) = self.send.as_mut() {
            guard.stop(cx.reactor());
        }
        if let Some(pipeline) = &self.pipeline {
            pipeline.borrow_mut().lost();
        }
        self.current = Current::Idle;
    }

    /// The queue passed the configured high watermark before a flush (a large response, a
    /// stream, a file): a streaming producer pauses, and the send timeout follows the bytes.
    fn pause_writing(&mut self, cx: &mut Context<'_>) {
        if let Some(upgraded) = &mut self.upgraded {
            return upgraded.pause_writing(cx);
        }
        if let Some(pipeline) = &self.pipeline {
            pipeline.borrow_mut().set_paused(true);
        }
        self.watch_send(cx);
    }

    /// The queue drained to the configured low watermark: a paused producer goes on.
    fn resume_writing(&mut self, cx: &mut Context<'_>) {
        if let Some(upgraded) = &mut self.upgraded {
            return upgraded.resume_writing(cx);
        }
        self.resume_if_low(cx);
    }

    /// A flush the send timeout follows sent bytes: the client is taking them; once all of
    /// them are gone, following stops.
    fn write_progress(&mut self, cx: &mut Context<'_>, progress: WriteProgress) {
        if let Some(upgraded) = &mut self.upgraded {
            return upgraded.write_progress(cx, progress);
        }
        let now = cx.reactor().now();
        if let Some(guard) = self.send.as_mut() {
            guard.progressed(now);
        }
        if progress.drained {
            self.stop_following(cx);
            if matches!(self.closing, Closing::Sending) {
                self.start_lingering(cx);
            }
        }
    }

    /// Woken: a response completed while reading was stopped for a full pipeline (read the
    /// requests waiting), or a responder went away without a reactor (send what it left).
    fn woken(&mut self, cx: &mut Context<'_>) {
        if let Some(upgraded) = &mut self.upgraded {
            return upgraded.woken(cx);
        }
        if self
            .pipeline
            .as_ref()
            .is_some_and(|p| p.borrow().upgrade.is_some())
        {
            return self.switch_protocols(cx);
        }
        if self.closing.has_begun() {
            return;
        }
        let still_full = self.pipeline.as_ref().is_some_and(|p| p.borrow().stalled);
        if self.stalled && !still_full {
            self.stalled = false;
            cx.resume_reading();
        }
        self.process(cx, &[]);
    }
}
