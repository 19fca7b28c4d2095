//! [`ClientConnection`]: the protocol of one pooled connection, running one request at a
//! time over the sans-I/O [`ResponseDecoder`], and [`ConnectFactory`], which opens it for a
//! first request.

use std::io;
use std::time::Duration;

use http::header;
use http::HeaderMap;
use log::{debug, warn};
use torsion_reactor::{
    Address, ClientFactory, ConnectError, Context, DelayedCall, DisconnectReason, Protocol,
    Reactor, WriteProgress,
};

use super::exchange::Exchange;
use super::response::ResponseFlow;
use super::target::HostKey;
use super::upload::{Sending, Sent};
use super::{redirect, ClientError, HttpClient, TimeoutKind};
use crate::http::codec::{HttpError, ResponseDecoder, ResponseEvent, ResponseHead};

/// The request a connection is running.
struct Running {
    exchange: Exchange,
    decoder: ResponseDecoder,
    head_timer: Option<DelayedCall>,
    /// The response's verdict on persistence (known from its head).
    keep_alive: bool,
    /// The redirect to follow once this response's body is read.
    redirect: Option<Exchange>,
    /// The handler paused the body.
    paused: bool,
    url: String,
    /// The request, until the kernel has taken all of it.
    sending: Option<Sending>,
    head_arrived: bool,
    /// The request lets the connection persist (RFC 9112 §9.6: after a request that said
    /// `close`, the connection carries no other, whatever the response says).
    request_keeps_alive: bool,
}

/// What one pass over the decoder's events ended with.
enum Outcome {
    /// The input ran dry.
    Continue,
    /// The handler paused the body.
    Paused,
    /// The handler gave up on the response.
    Aborted,
    /// The response is complete.
    End(HeaderMap),
    /// The request failed.
    Failed(ClientError),
}

/// The protocol of one client connection; built by the client, never by applications
/// ([`Resumer`](super::Resumer) names it to reach a paused response).
pub struct ClientConnection {
    client: HttpClient,
    key: HostKey,
    /// The request the connection was opened for, until `connection_made`.
    first: Option<Exchange>,
    running: Option<Running>,
    /// Whether the connection was taken from the pool (so a close before any byte of the
    /// response may be the server's idle close racing our request).
    reused: bool,
    /// The server's EOF arrived while the body was paused.
    eof_pending: bool,
    /// The server's EOF arrived: the connection carries no new request (the server will read
    /// none), even if it is still open for the rest of a response.
    at_eof: bool,
}

impl ClientConnection {
    pub(super) fn new(client: HttpClient, key: HostKey, first: Option<Exchange>) -> Self {
        ClientConnection {
            client,
            key,
            first,
            running: None,
            reused: false,
            eof_pending: false,
            at_eof: false,
        }
    }

    /// Takes the request the pool handed this idle connection, unless the connection turned
    /// out to be closing (the server's EOF came meanwhile): then the request, not sent, goes
    /// to another connection.
    pub(super) fn take_handoff(&mut self, cx: &mut Context<'_>) {
        self.reused = true;
        let Some(exchange) = self.client.take_handoff(cx.id()) else {
            return;
        };
        if self.at_eof || cx.is_closing() {
            debug!(
                "connection {}: closing, its request goes elsewhere",
                cx.id()
            );
            return self.client.dispatch(cx.reactor(), exchange);
        }
        self.start(cx, exchange);
    }

    /// Writes `exchange`'s request and waits for its response.
    fn start(&mut self, cx: &mut Context<'_>, exchange: Exchange) {
        if exchange.slot.is_finished() {
            // Timed out or cancelled while waiting: nothing was written, so the connection
            // is as good as new.
            let id = cx.id();
            return self.client.release(cx.reactor(), &self.key, id);
        }
        exchange.slot.conn.set(Some(cx.id()));
        let mut exchange = exchange;
        let sending = Sending::start(cx, &mut exchange, self.client.inner.config.send_timeout);
        let limits = self
            .client
            .inner
            .config
            .limits
            .clone()
            .with_max_body_len(exchange.slot.max_body_len());
        debug!(
            "connection {}: {} {}",
            cx.id(),
            exchange.method,
            exchange.target.url()
        );
        self.running = Some(Running {
            request_keeps_alive: sending.keep_alive,
            decoder: ResponseDecoder::with_limits(&exchange.method, limits),
            url: exchange.target.url(),
            exchange,
            head_timer: None, // started once the request is written
            keep_alive: false,
            redirect: None,
            paused: false,
            sending: Some(sending),
            head_arrived: false,
        });
        self.advance_send(cx);
    }

    /// Follows the request out of the queue: pulls more of a streamed body if there is room,
    /// and once the kernel has taken the last byte, starts the head timeout.
    fn advance_send(&mut self, cx: &mut Context<'_>) {
        let Some(running) = self.running.as_mut() else {
            return;
        };
        let Some(sending) = running.sending.as_mut() else {
            return;
        };
        match sending.advance(cx) {
            Sent::Later => {}
            Sent::Written => {
                if let Some(sending) = running.sending.take() {
                    sending.finish(cx.reactor());
                }
                debug!("connection {}: request written", cx.id());
                if !running.head_arrived {
                    running.head_timer = head_timer(self.client.inner.config.head_timeout, cx);
                }
            }
            Sent::Failed(error) => self.fail(cx, ClientError::from_http(error)),
        }
    }

    /// A [`BodyWaker`](super::BodyWaker) says the source has more.
    pub(super) fn wake_upload(&mut self, cx: &mut Context<'_>) {
        if let Some(sending) = self.running.as_mut().and_then(|r| r.sending.as_mut()) {
            sending.wake();
        }
        self.advance_send(cx);
    }

    /// The send guard's timer: fails the request if sending it made no progress for
    /// [`send_timeout`](super::ClientConfig::send_timeout).
    pub(super) fn send_guard_fired(&mut self, cx: &mut Context<'_>) {
        let Some(after) = self.client.inner.config.send_timeout else {
            return;
        };
        let Some(sending) = self.running.as_mut().and_then(|r| r.sending.as_mut()) else {
            return;
        };
        if sending.stalled(cx, after) {
            warn!(
                "connection {}: sending the request made no progress for {after:?}",
                cx.id()
            );
            let which = TimeoutKind::Send;
            self.fail(cx, ClientError::Timeout { which, after });
        }
    }

    fn head_timed_out(&mut self, cx: &mut Context<'_>, after: Duration) {
        let which = TimeoutKind::Head;
        self.fail(cx, ClientError::Timeout { which, after });
    }

    /// Fails the running request with `error` and aborts the connection.
    fn fail(&mut self, cx: &mut Context<'_>, error: ClientError) {
        if let Some(mut running) = self.running.take() {
            running.stop_timers(cx.reactor());
            running.exchange.slot.fail(cx.reactor(), error);
        }
        cx.abort_connection();
    }

    /// Resumes a paused body ([`Resumer::resume`](super::Resumer::resume)).
    pub(super) fn resume(&mut self, cx: &mut Context<'_>) {
        let Some(running) = self.running.as_mut().filter(|r| r.paused) else {
            return;
        };
        running.paused = false;
        cx.resume_reading();
        self.process(cx, &[], false);
        if self.eof_pending && self.running.as_ref().is_some_and(|r| !r.paused) {
            self.eof_pending = false;
            self.eof_received(cx);
        }
    }

    /// Decodes `data` (or the EOF) and hands the events to the handler until the input runs
    /// dry, the handler pauses, or the response ends.
    fn process(&mut self, cx: &mut Context<'_>, data: &[u8], eof: bool) {
        let Some(running) = self.running.as_mut() else {
            return;
        };
        let outcome = running.events(cx, data, eof, &self.client);
        match outcome {
            Outcome::Continue => {}
            Outcome::Paused => cx.pause_reading(),
            Outcome::Aborted => {
                if let Some(mut running) = self.running.take() {
                    running.stop_timers(cx.reactor());
                    running.exchange.slot.cancel(cx.reactor());
                }
                cx.abort_connection();
            }
            Outcome::End(trailers) => self.complete(cx, trailers),
            Outcome::Failed(error) => {
                warn!("connection {}: response refused: {error}", cx.id());
                self.fail(cx, error);
            }
        }
    }

    /// The response ended: the connection goes back to the pool if it can carry another
    /// request (before the handler hears the end, so a request it sends can reuse it), then
    /// the redirect is followed or the handler told.
    fn complete(&mut self, cx: &mut Context<'_>, trailers: HeaderMap) {
        let Some(mut running) = self.running.take() else {
            return;
        };
        // A response that came before its request was all sent (an early 413, say) leaves
        // the server expecting the rest: the connection cannot carry another request, and
        // the rest is dropped rather than left to a server that may have stopped reading.
        let written = running.sending.is_none();
        running.stop_timers(cx.reactor());
        running.exchange.slot.conn.set(None);
        let reusable = running.keep_alive
            && written
            && running.decoder.buffered_len() == 0
            && !self.at_eof
            && !cx.is_closing();
        if reusable {
            let id = cx.id();
            self.client.release(cx.reactor(), &self.key, id);
        } else if written {
            cx.lose_connection();
        } else {
            cx.abort_connection();
        }
        match running.redirect {
            Some(next) => self.client.dispatch(cx.reactor(), next),
            None => running.exchange.slot.end(cx.reactor(), trailers),
        }
    }

    /// The connection closed with the request unanswered: retried once, on another
    /// connection, when that may be the server's idle close racing it (a reused connection,
    /// not one byte of response) and sending it again is safe: its method is idempotent, or
    /// not one byte of it left (its body must be bytes, which can be sent again). Else failed.
    fn unanswered(&mut self, cx: &mut Context<'_>, running: Running, reason: &DisconnectReason) {
        let unsent = running.sending.as_ref().is_some_and(|s| !s.sent_any());
        let mut exchange = running.exchange;
        if exchange.slot.is_finished() {
            return;
        }
        exchange.slot.conn.set(None);
        let fresh = running.decoder.is_fresh();
        let safe = exchange.may_retry() || (unsent && exchange.body.is_replayable());
        if fresh && self.reused && safe && !exchange.retried {
            debug!("connection {}: closed unanswered, retrying once", cx.id());
            exchange.retried = true;
            return self.client.dispatch(cx.reactor(), exchange);
        }
        let error = if fresh {
            ClientError::ConnectionClosed(cause(reason))
        } else {
            ClientError::Protocol(HttpError::Incomplete { what: "response" })
        };
        exchange.slot.fail(cx.reactor(), error);
    }
}

impl Running {
    /// Cancels the head timeout and the send guard: the request ended.
    fn stop_timers(&mut self, reactor: &mut Reactor) {
        if let Some(timer) = self.head_timer.take() {
            timer.cancel(reactor);
        }
        if let Some(sending) = self.sending.take() {
            sending.finish(reactor);
        }
    }

    /// One pass over the decoder's events.
    fn events(
        &mut self,
        cx: &mut Context<'_>,
        data: &[u8],
        eof: bool,
        client: &HttpClient,
    ) -> Outcome {
        let mut events = if eof {
            self.decoder.eof()
        } else {
            self.decoder.feed(data)
        };
        while let Some(event) = events.next() {
            let outcome = match event {
                Ok(ResponseEvent::Head(head)) => {
                    if let Some(timer) = self.head_timer.take() {
                        timer.cancel(cx.reactor());
                    }
                    self.keep_alive = head.keep_alive && self.request_keeps_alive;
                    self.head_arrived = true;
                    match follow(client, &self.exchange, &head) {
                        Ok(Some(next)) => {
                            self.redirect = Some(next);
                            Outcome::Continue
                        }
                        Ok(None) => deliver(cx, &self.exchange, &self.url, |h, r, flow| {
                            h.head(r, head, flow)
                        }),
                        Err(error) => Outcome::Failed(error),
                    }
                }
                Ok(ResponseEvent::Data(_)) if self.redirect.is_some() => Outcome::Continue,
                Ok(ResponseEvent::Data(data)) => {
                    deliver(cx, &self.exchange, &self.url, |h, r, flow| {
                        h.data(r, data, flow)
                    })
                }
                Ok(ResponseEvent::End { trailers }) => Outcome::End(trailers),
                Err(error) => Outcome::Failed(ClientError::from_http(error)),
            };
            match outcome {
                Outcome::Continue => {}
                Outcome::Paused => {
                    self.paused = true;
                    return Outcome::Paused;
                }
                other => return other,
            }
        }
        Outcome::Continue
    }
}

/// Calls the handler with a [`ResponseFlow`] and reads what it asked for.
fn deliver(
    cx: &mut Context<'_>,
    exchange: &Exchange,
    url: &str,
    call: impl FnOnce(&mut dyn super::ResponseHandler, &mut Reactor, &mut ResponseFlow<'_>),
) -> Outcome {
    let mut flow = ResponseFlow::new(cx.id(), url);
    exchange
        .slot
        .with(|handler| call(handler, cx.reactor(), &mut flow));
    if flow.aborted {
        Outcome::Aborted
    } else if flow.paused {
        Outcome::Paused
    } else {
        Outcome::Continue
    }
}

/// The redirect `head` asks for, if the client follows redirects.
fn follow(
    client: &HttpClient,
    exchange: &Exchange,
    head: &ResponseHead,
) -> Result<Option<Exchange>, ClientError> {
    let config = &client.inner.config;
    let location = head.headers.get(header::LOCATION);
    let (true, Some(location)) = (
        config.follow_redirects && redirect::is_followed(exchange, head.status),
        location,
    ) else {
        return Ok(None);
    };
    if exchange.redirects >= config.max_redirects {
        return Err(ClientError::TooManyRedirects {
            max: config.max_redirects,
        });
    }
    redirect::follow(exchange, head.status, location).map(Some)
}

/// Starts the head timeout, if there is one.
fn head_timer(after: Option<Duration>, cx: &mut Context<'_>) -> Option<DelayedCall> {
    let after = after?;
    cx.call_later(after, move |this: &mut ClientConnection, cx| {
        this.head_timed_out(cx, after)
    })
}

/// The I/O error behind a lost connection, if it was not a clean close.
fn cause(reason: &DisconnectReason) -> Option<io::Error> {
    match reason {
        DisconnectReason::Reset(e) | DisconnectReason::TimedOut(e) | DisconnectReason::Error(e) => {
            Some(io::Error::new(e.kind(), e.to_string()))
        }
        _ => None,
    }
}

impl Protocol for ClientConnection {
    fn connection_made(&mut self, cx: &mut Context<'_>) {
        debug!(
            "connection {} to {}:{} made",
            cx.id(),
            self.key.1,
            self.key.2
        );
        match self.first.take() {
            Some(exchange) => self.start(cx, exchange),
            None => {
                let id = cx.id();
                self.client.release(cx.reactor(), &self.key, id)
            }
        }
    }

    /// A flush sent some of the request being written (see `Sending`).
    fn write_progress(&mut self, cx: &mut Context<'_>, progress: WriteProgress) {
        if let Some(sending) = self.running.as_mut().and_then(|r| r.sending.as_mut()) {
            sending.progressed(cx, progress);
        }
        self.advance_send(cx);
    }

    fn data_received(&mut self, cx: &mut Context<'_>, data: &[u8]) {
        if self.running.is_none() {
            warn!(
                "connection {}: bytes while no request was sent, closing",
                cx.id()
            );
            return cx.abort_connection();
        }
        self.process(cx, data, false);
    }

    fn eof_received(&mut self, cx: &mut Context<'_>) {
        self.at_eof = true;
        if self.running.is_none() {
            // Idle, or just handed a request it has not taken yet: out of the pool now, so no
            // request is written to a connection the server has closed.
            let id = cx.id();
            self.client.closing(cx.reactor(), &self.key, id);
        }
        match &self.running {
            Some(running) if running.paused => {
                // Delivered after the buffered body, on resume.
                self.eof_pending = true;
                return;
            }
            Some(running) if !running.decoder.is_fresh() => self.process(cx, &[], true),
            _ => {}
        }
        cx.lose_connection();
    }

    fn connection_lost(&mut self, cx: &mut Context<'_>, reason: &DisconnectReason) {
        debug!("connection {} lost: {reason}", cx.id());
        if let Some(running) = self.running.take() {
            self.unanswered(cx, running, reason);
        }
        let id = cx.id();
        self.client.connection_lost(cx.reactor(), &self.key, id);
    }
}

/// Opens a connection for a first request.
pub(super) struct ConnectFactory {
    client: HttpClient,
    key: HostKey,
    exchange: Option<Exchange>,
}

impl ConnectFactory {
    pub(super) fn new(client: HttpClient, key: HostKey, exchange: Exchange) -> Self {
        ConnectFactory {
            client,
            key,
            exchange: Some(exchange),
        }
    }
}

impl ClientFactory for ConnectFactory {
    type Protocol = ClientConnection;

    fn build_protocol(&mut self, _peer: Address) -> ClientConnection {
        ClientConnection::new(self.client.clone(), self.key.clone(), self.exchange.take())
    }

    fn client_connection_failed(&mut self, reactor: &mut Reactor, error: ConnectError) {
        if let Some(exchange) = self.exchange.take() {
            self.client
                .connect_failed(reactor, &self.key, exchange, Ok(error));
        }
    }
}
