//! How a connection closes: at once, or lingering when the client may still be sending (see
//! [`linger`](super::super::linger) for why and for the bookkeeping).

use std::time::Duration;

use log::{debug, warn};
use torsion_reactor::Context;

use super::{Current, HttpConnection, SendGuard};
use crate::http::codec::RequestDecoder;
use crate::http::server::handler::Handler;
use crate::http::server::linger::{Closing, Expired, Linger};

impl<H: Handler> HttpConnection<H> {
    /// Begins the close if the pipeline asked for it (its last response is handed over).
    pub(super) fn close_if_done(&mut self, cx: &mut Context<'_>) {
        if self
            .pipeline
            .as_ref()
            .is_some_and(|p| p.borrow().is_closing())
        {
            self.begin_close(cx);
        }
    }

    /// The connection closes: no request is read any more and nothing more is written.
    /// When the client may still be sending, it closes lingering (see
    /// [`ServerConfig::lingering_close`](crate::http::server::ServerConfig::lingering_close));
    /// else at once, once what is queued is out.
    pub(super) fn begin_close(&mut self, cx: &mut Context<'_>) {
        if self.closing.has_begun() {
            return;
        }
        let linger = self.config.lingering_close && self.may_have_unread_input(cx);
        if let Some(pipeline) = &self.pipeline {
            pipeline.borrow_mut().abandon();
        }
        self.deadline.cancel(cx);
        // Nothing more is read: the request state goes (a body gathered so far, bytes the
        // decoder holds), so a closing connection holds no more than an idle one.
        self.current = Current::Idle;
        self.decoder = RequestDecoder::with_limits(self.config.limits.clone());
        self.stalled = false;
        self.backed_up = false;
        if !linger {
            self.closing = Closing::Closed;
            cx.lose_connection();
            return;
        }
        debug!("connection {}: lingering close", cx.id());
        cx.shutdown_write();
        cx.resume_reading();
        if cx.queued_bytes() == 0 {
            self.start_lingering(cx);
        } else {
            // Lingering starts once the responses are out (`write_progress` says so). A
            // client that does not take them is the send timeout's, as on any connection.
            self.closing = Closing::Sending;
            cx.watch_writes(true);
            self.watch_send(cx);
        }
    }

    /// Whether bytes the server has not read may be on their way or waiting: a request
    /// refused or half read, bytes after the last request (the decoder holds some, or it
    /// stopped at a `Connection: close` and dropped what followed), or reading paused (the
    /// kernel may hold more). Nothing can be after the client's EOF, nor after a
    /// `Connection: close` request that nothing followed (the client said it sends no more).
    pub(super) fn may_have_unread_input(&self, cx: &Context<'_>) -> bool {
        let decoder_done = self.decoder.is_idle()
            || (self.decoder.is_closed() && !self.decoder.has_dropped_input());
        !self.read_ended
            && (!decoder_done || !matches!(self.current, Current::Idle) || cx.is_reading_paused())
    }

    /// The responses are out and the write side is shutting: lingering begins.
    pub(super) fn start_lingering(&mut self, cx: &mut Context<'_>) {
        let now = cx.reactor().now();
        let linger = Linger::new(
            now,
            self.config.lingering_time,
            self.config.lingering_timeout,
        );
        self.linger_timer(cx, linger.deadline() - now);
        self.closing = Closing::Lingering(linger);
        if !self.send.as_ref().is_some_and(SendGuard::is_following) {
            cx.watch_writes(false); // nothing more is written
        }
        debug!("connection {}: half-closed, lingering", cx.id());
    }

    /// Judges the lingering close after `delay` (a timer the connection owns: it goes when
    /// the connection closes, however it closes).
    fn linger_timer(&mut self, cx: &mut Context<'_>, delay: Duration) {
        cx.call_later(delay, |this: &mut Self, cx| this.linger_timer_fired(cx));
    }

    /// The lingering timer: closes if the client was quiet for the lingering timeout or the
    /// lingering time is up, else waits for the later deadline input has made.
    fn linger_timer_fired(&mut self, cx: &mut Context<'_>) {
        let now = cx.reactor().now();
        let Closing::Lingering(linger) = &self.closing else {
            return;
        };
        let expired = linger.expired(now);
        let (deadline, lasted, discarded) =
            (linger.deadline(), linger.lasted(now), linger.discarded());
        match expired {
            None => self.linger_timer(cx, deadline - now),
            Some(Expired::Quiet) => debug!(
                "connection {}: lingering close ends after {lasted:?}, {discarded} bytes \
                 discarded: no input for the lingering timeout",
                cx.id()
            ),
            // A client still sending this long after it was answered is not listening.
            Some(Expired::Total) => warn!(
                "connection {}: lingering close cut after {lasted:?}: the client still sends \
                 ({discarded} bytes discarded)",
                cx.id()
            ),
        }
        if expired.is_some() {
            self.closing = Closing::Closed;
            cx.lose_connection();
        }
    }
}
