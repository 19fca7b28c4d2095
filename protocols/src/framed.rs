//! The one [`Protocol`] adapter behind the three framings: [`LineProtocol`],
//! [`NetstringProtocol`] and [`FrameProtocol`] are [`FramedProtocol`] over their framer, and
//! their handlers' contexts ([`LineContext`], ...) are [`FramedContext`] over the same framer.
//! You use them through those names; this module is where their shared methods are documented:
//! [`handler`](FramedProtocol::handler), [`with_handler`](FramedProtocol::with_handler),
//! [`pause_producing`](FramedContext::pause_producing),
//! [`call_later`](FramedContext::call_later), ...
//!
//! Written once here: delivery control (pause, resume, close, an EOF held back behind frames
//! still buffered), the delivery loop over the framer's cursor, and the forwarding of
//! [`Protocol`]'s calls. What each framing has of its own stays beside its framer: its
//! receiver trait with Twisted's callback names ([`LineReceiver`]: `line_received`, ...), its
//! send method (`send_line`, `send_string`, `send_frame`), and its builders.
//!
//! [`LineProtocol`]: crate::line::LineProtocol
//! [`NetstringProtocol`]: crate::netstring::NetstringProtocol
//! [`FrameProtocol`]: crate::prefixed::FrameProtocol
//! [`LineContext`]: crate::line::LineContext
//! [`LineReceiver`]: crate::line::LineReceiver

use std::time::Duration;

use torsion_reactor::{Context, DelayedCall, DisconnectReason, Protocol};

use crate::flow::Flow;
use crate::framer::Framer;

/// A framer a [`FramedProtocol`] can run: [`LineFramer`](crate::line::LineFramer),
/// [`NetstringFramer`](crate::netstring::NetstringFramer) and
/// [`PrefixedFramer`](crate::prefixed::PrefixedFramer). Sealed: only this crate's framers
/// implement it. Its items are the adapter's plumbing, hidden from the docs so that each
/// framer's page keeps to the framer.
pub trait Framing: Framer + 'static {
    /// What sending needs besides the bytes: the line ending, the length prefix.
    #[doc(hidden)]
    type Encoder: 'static;
    /// What a callback may ask of the framer, carried out when it returns (a line protocol's
    /// switch between line and raw mode).
    #[doc(hidden)]
    type Request: Copy + Default;

    /// Carries out `request` on the cursor, between two frames of one read.
    #[doc(hidden)]
    fn request_frames(frames: &mut Self::Frames<'_>, request: Self::Request) {
        let _ = (frames, request);
    }

    /// Carries out `request` on the framer, outside delivery (after
    /// [`FramedProtocol::with_handler`]).
    #[doc(hidden)]
    fn request(&mut self, request: Self::Request) {
        let _ = request;
    }
}

/// A handler a [`FramedProtocol`] over `K` can run: every [`LineReceiver`] for a
/// [`LineFramer`], every [`NetstringReceiver`] for a [`NetstringFramer`], every
/// [`FrameReceiver`] for a [`PrefixedFramer`]. Sealed: implement the receiver trait instead.
///
/// [`LineReceiver`]: crate::line::LineReceiver
/// [`LineFramer`]: crate::line::LineFramer
/// [`NetstringReceiver`]: crate::netstring::NetstringReceiver
/// [`NetstringFramer`]: crate::netstring::NetstringFramer
/// [`FrameReceiver`]: crate::prefixed::FrameReceiver
/// [`PrefixedFramer`]: crate::prefixed::PrefixedFramer
pub trait Handler<K: Framing>: 'static {
    /// Hands `event` to the receiver's callback for it.
    #[doc(hidden)]
    fn handle(&mut self, cx: &mut FramedContext<'_, '_, K>, event: Event<'_, K::Frame<'_>>);
}

/// In a private module, so that nothing outside this crate can name an [`Event`], and so
/// implement [`Handler`].
mod event {
    use torsion_reactor::DisconnectReason;

    /// What an adapter tells its handler: [`Protocol`](torsion_reactor::Protocol)'s calls,
    /// with a frame for each frame received.
    pub enum Event<'e, F> {
        /// `connection_made`.
        ConnectionMade,
        /// A frame (or bad framing) out of the framer.
        Frame(F),
        /// `eof_received`, after every frame received before it.
        EofReceived,
        /// `connection_lost`.
        ConnectionLost(&'e DisconnectReason),
        /// `pause_writing`.
        PauseWriting,
        /// `resume_writing`.
        ResumeWriting,
    }
}

pub(crate) use event::Event;

/// What a handler's callback can do: send in the protocol's framing (`send_line`,
/// `send_string`, `send_frame`), pause delivery, close, and reach the connection's whole
/// [`Context`] through [`transport`](FramedContext::transport).
///
/// What it asks (a pause, a mode switch) takes effect when the callback returns, before the
/// next frame is delivered, so no byte is lost or reordered.
pub struct FramedContext<'a, 'cx, K: Framing> {
    pub(crate) cx: &'a mut Context<'cx>,
    flow: &'a mut Flow,
    pub(crate) encoder: &'a K::Encoder,
    pub(crate) request: K::Request,
}

impl<'a, 'cx, K: Framing> FramedContext<'a, 'cx, K> {
    fn new(cx: &'a mut Context<'cx>, flow: &'a mut Flow, encoder: &'a K::Encoder) -> Self {
        FramedContext {
            cx,
            flow,
            encoder,
            request: K::Request::default(),
        }
    }

    /// Stops delivering frames (lines, strings), even ones already received, and stops reading,
    /// until [`resume_producing`](FramedContext::resume_producing) (Twisted's
    /// `pauseProducing`). The peer is slowed down by TCP flow control.
    pub fn pause_producing(&mut self) {
        self.flow.pause(self.cx);
    }

    /// Resumes after [`pause_producing`](FramedContext::pause_producing): frames received
    /// meanwhile are delivered as soon as this callback returns, then reading resumes. Call it
    /// from a timer ([`call_later`](FramedContext::call_later)) or any later callback.
    pub fn resume_producing(&mut self) {
        self.flow.resume(self.cx);
    }

    /// Whether delivery is paused.
    pub fn is_paused(&self) -> bool {
        self.flow.is_paused()
    }

    /// Closes the connection once what was sent is written (Twisted's `loseConnection`).
    /// No more frames are delivered, not even ones already received.
    pub fn lose_connection(&mut self) {
        self.flow.lose_connection(self.cx);
    }

    /// The connection's transport and the rest of the reactor: ids, addresses, writing to
    /// other connections, timers, aborting.
    ///
    /// Pause through this context rather than the transport's own `pause_reading`: only then
    /// are frames already received held back too. A close stops delivery either way.
    pub fn transport(&mut self) -> &mut Context<'cx> {
        self.cx
    }

    /// Runs `f` on this connection's handler after `delay`, with a context like this one, as
    /// [`Context::call_later`] does for protocols. `H` is this connection's handler type
    /// (write the closure as `|this: &mut Self, cx| ...`).
    ///
    /// The connection's protocol must be this [`FramedProtocol<K, H>`] itself (the
    /// `LineProtocol<H>`, ..., not wrapped in another protocol type), or the reactor drops the
    /// call with an error log when it is due.
    pub fn call_later<H: Handler<K>>(
        &mut self,
        delay: Duration,
        f: impl FnOnce(&mut H, &mut FramedContext<'_, '_, K>) + 'static,
    ) -> Option<DelayedCall> {
        self.cx
            .call_later(delay, move |protocol: &mut FramedProtocol<K, H>, cx| {
                protocol.with_handler(cx, f)
            })
    }
}

/// Runs a handler on a connection: implements [`Protocol`] by framing the bytes received with
/// a framer `K` and calling the handler for each frame, while it lets it.
pub struct FramedProtocol<K: Framing, H> {
    handler: H,
    pub(crate) framer: K,
    pub(crate) encoder: K::Encoder,
    flow: Flow,
}

impl<K: Framing, H> FramedProtocol<K, H> {
    /// Runs `handler` over `framer`, sending with `encoder`.
    pub(crate) fn from_parts(handler: H, framer: K, encoder: K::Encoder) -> Self {
        FramedProtocol {
            handler,
            framer,
            encoder,
            flow: Flow::default(),
        }
    }

    /// The handler.
    pub fn handler(&self) -> &H {
        &self.handler
    }

    /// The handler, mutably.
    pub fn handler_mut(&mut self) -> &mut H {
        &mut self.handler
    }
}

impl<K: Framing, H: Handler<K>> FramedProtocol<K, H> {
    /// Calls `f` with the handler and a context from outside a handler callback (a timer
    /// scheduled on the [`Context`], another part of the program holding this protocol), then
    /// carries out what it asked: a mode switch, and, unless paused, the delivery of frames
    /// buffered meanwhile.
    pub fn with_handler<R>(
        &mut self,
        cx: &mut Context<'_>,
        f: impl FnOnce(&mut H, &mut FramedContext<'_, '_, K>) -> R,
    ) -> R {
        let mut fcx = FramedContext::new(cx, &mut self.flow, &self.encoder);
        let result = f(&mut self.handler, &mut fcx);
        let request = fcx.request;
        self.framer.request(request);
        self.deliver(cx, &[]);
        result
    }

    /// Hands `event` to the handler from outside delivery.
    fn tell(&mut self, cx: &mut Context<'_>, event: Event<'_, K::Frame<'_>>) {
        self.with_handler(cx, |handler, fcx| handler.handle(fcx, event));
    }

    /// Frames `data` (after what is buffered) and delivers frames while the handler lets it.
    fn deliver(&mut self, cx: &mut Context<'_>, data: &[u8]) {
        let mut frames = self.framer.feed(data);
        while self.flow.may_deliver() && !cx.is_closing() {
            let Some(frame) = K::next(&mut frames) else {
                break;
            };
            let mut fcx = FramedContext::new(cx, &mut self.flow, &self.encoder);
            self.handler.handle(&mut fcx, Event::Frame(frame));
            let request = fcx.request;
            K::request_frames(&mut frames, request);
        }
        drop(frames);
        if self.flow.take_pending_eof() {
            self.tell(cx, Event::EofReceived);
        }
    }
}

impl<K: Framing, H: Handler<K>> Protocol for FramedProtocol<K, H> {
    fn connection_made(&mut self, cx: &mut Context<'_>) {
        self.tell(cx, Event::ConnectionMade);
    }

    fn data_received(&mut self, cx: &mut Context<'_>, data: &[u8]) {
        self.deliver(cx, data);
    }

    fn eof_received(&mut self, cx: &mut Context<'_>) {
        if self.flow.eof_arrived() {
            self.tell(cx, Event::EofReceived);
        }
    }

    fn connection_lost(&mut self, cx: &mut Context<'_>, reason: &DisconnectReason) {
        self.flow.lost();
        let mut fcx = FramedContext::new(cx, &mut self.flow, &self.encoder);
        self.handler.handle(&mut fcx, Event::ConnectionLost(reason));
    }

    fn pause_writing(&mut self, cx: &mut Context<'_>) {
        self.tell(cx, Event::PauseWriting);
    }

    fn resume_writing(&mut self, cx: &mut Context<'_>) {
        self.tell(cx, Event::ResumeWriting);
    }
}

#[cfg(test)]
pub(crate) mod tests;
