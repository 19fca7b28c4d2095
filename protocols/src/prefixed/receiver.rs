//! The length-prefixed protocol adapter: a [`FrameReceiver`] handler (Twisted's
//! `IntNStringReceiver` methods) driven by a [`FrameProtocol`].

use std::time::Duration;

use log::warn;
use torsion_reactor::{Context, DelayedCall, DisconnectReason, Protocol};

use super::{FrameError, Prefix, PrefixedFramer};
use crate::flow::Flow;

/// What a length-prefixed protocol does. Put it in a [`FrameProtocol`] to run it on a
/// connection. Calls come in [`Protocol`]'s order.
///
/// ```
/// use torsion_protocols::prefixed::{FrameContext, FrameProtocol, FrameReceiver, Prefix};
///
/// /// Answers each frame with its length, as a frame.
/// struct Sizes;
///
/// impl FrameReceiver for Sizes {
///     fn frame_received(&mut self, cx: &mut FrameContext<'_, '_>, frame: &[u8]) {
///         let answer = frame.len().to_string();
///         cx.send_frame(answer.as_bytes()).expect("a short answer fits any prefix");
///     }
/// }
///
/// let protocol = FrameProtocol::new(Sizes, Prefix::U32).with_max_frame_length(1 << 20);
/// # let _ = protocol;
/// ```
pub trait FrameReceiver: 'static {
    /// The connection is established.
    fn connection_made(&mut self, cx: &mut FrameContext<'_, '_>) {
        let _ = cx;
    }

    /// A frame arrived (without its prefix; it may be empty). `frame` is only valid during
    /// the call.
    fn frame_received(&mut self, cx: &mut FrameContext<'_, '_>, frame: &[u8]);

    /// The peer announced a frame of `length` bytes, over the maximum (Twisted's
    /// `lengthLimitExceeded`). None of it was buffered, and nothing more is read from this
    /// connection. The default logs a warning and closes it.
    fn frame_length_exceeded(&mut self, cx: &mut FrameContext<'_, '_>, length: usize) {
        warn!(
            "connection {}: peer announced a frame of {length} bytes, over the maximum; closing",
            cx.transport().id()
        );
        cx.lose_connection();
    }

    /// The peer will send nothing more (after frames held back by a pause). A partial frame
    /// is dropped. The default closes the connection.
    fn eof_received(&mut self, cx: &mut FrameContext<'_, '_>) {
        cx.lose_connection();
    }

    /// The connection is gone, for `reason`.
    fn connection_lost(&mut self, cx: &mut FrameContext<'_, '_>, reason: &DisconnectReason) {
        let _ = (cx, reason);
    }

    /// The write queue is over its high watermark; see [`Protocol::pause_writing`].
    fn pause_writing(&mut self, cx: &mut FrameContext<'_, '_>) {
        let _ = cx;
    }

    /// The write queue drained after a pause.
    fn resume_writing(&mut self, cx: &mut FrameContext<'_, '_>) {
        let _ = cx;
    }
}

/// What a [`FrameReceiver`] callback can do: send frames, pause delivery, close, and reach the
/// connection's whole [`Context`] through [`transport`](FrameContext::transport).
pub struct FrameContext<'a, 'cx> {
    cx: &'a mut Context<'cx>,
    flow: &'a mut Flow,
    prefix: Prefix,
}

impl<'a, 'cx> FrameContext<'a, 'cx> {
    /// Sends `frame` after its length prefix, or, if the prefix cannot announce that length
    /// ([`FrameError::Unencodable`], e.g. 256 bytes after a one-byte prefix), sends nothing.
    pub fn send_frame(&mut self, frame: &[u8]) -> Result<(), FrameError> {
        let header = self.prefix.header(frame.len())?;
        self.cx.write(&header[header.len() - self.prefix.size()..]);
        self.cx.write(frame);
        Ok(())
    }

    /// Stops delivering frames, even ones already received, and stops reading, until
    /// [`resume_producing`](FrameContext::resume_producing).
    pub fn pause_producing(&mut self) {
        self.flow.pause(self.cx);
    }

    /// Resumes after a pause: frames received meanwhile are delivered when this callback
    /// returns, then reading resumes.
    pub fn resume_producing(&mut self) {
        self.flow.resume(self.cx);
    }

    /// Whether delivery is paused.
    pub fn is_paused(&self) -> bool {
        self.flow.is_paused()
    }

    /// Closes the connection once what was sent is written; no more frames are delivered.
    pub fn lose_connection(&mut self) {
        self.flow.lose_connection(self.cx);
    }

    /// The connection's transport and the rest of the reactor.
    ///
    /// Pause through this context rather than the transport's own `pause_reading`: only then
    /// are frames already received held back too. A close stops delivery either way.
    pub fn transport(&mut self) -> &mut Context<'cx> {
        self.cx
    }

    /// Runs `f` on this connection's handler (of type `H`) after `delay`; see
    /// [`LineContext::call_later`](crate::line::LineContext::call_later).
    ///
    /// The connection's protocol must be this [`FrameProtocol<H>`] itself (not wrapped in
    /// another protocol type), or the reactor drops the call with an error log when it is due.
    pub fn call_later<H: FrameReceiver>(
        &mut self,
        delay: Duration,
        f: impl FnOnce(&mut H, &mut FrameContext<'_, '_>) + 'static,
    ) -> Option<DelayedCall> {
        self.cx
            .call_later(delay, move |protocol: &mut FrameProtocol<H>, cx| {
                protocol.with_handler(cx, f)
            })
    }
}

/// Runs a [`FrameReceiver`] on a connection: implements [`Protocol`] by decoding the bytes
/// received with a [`PrefixedFramer`].
pub struct FrameProtocol<H> {
    handler: H,
    framer: PrefixedFramer,
    flow: Flow,
}

impl<H: FrameReceiver> FrameProtocol<H> {
    /// Runs `handler` on frames after a `prefix`, of up to
    /// [`DEFAULT_MAX_FRAME_LENGTH`](super::DEFAULT_MAX_FRAME_LENGTH) bytes.
    pub fn new(handler: H, prefix: Prefix) -> Self {
        FrameProtocol {
            handler,
            framer: PrefixedFramer::new(prefix),
            flow: Flow::default(),
        }
    }

    /// Accepts frames of at most `max` bytes instead.
    pub fn with_max_frame_length(mut self, max: usize) -> Self {
        self.framer = self.framer.with_max_frame_length(max);
        self
    }

    /// The handler.
    pub fn handler(&self) -> &H {
        &self.handler
    }

    /// The handler, mutably.
    pub fn handler_mut(&mut self) -> &mut H {
        &mut self.handler
    }

    /// Calls `f` with the handler and a context from outside a handler callback, then, unless
    /// paused, delivers the frames buffered meanwhile; see
    /// [`LineProtocol::with_handler`](crate::line::LineProtocol::with_handler).
    pub fn with_handler<R>(
        &mut self,
        cx: &mut Context<'_>,
        f: impl FnOnce(&mut H, &mut FrameContext<'_, '_>) -> R,
    ) -> R {
        let prefix = self.framer.prefix();
        let result = f(&mut self.handler, &mut context(cx, &mut self.flow, prefix));
        self.deliver(cx, &[]);
        result
    }

    fn deliver(&mut self, cx: &mut Context<'_>, data: &[u8]) {
        let prefix = self.framer.prefix();
        let mut frames = self.framer.feed(data);
        while self.flow.may_deliver() && !cx.is_closing() {
            let Some(frame) = frames.next() else { break };
            let mut fcx = context(cx, &mut self.flow, prefix);
            match frame {
                Ok(frame) => self.handler.frame_received(&mut fcx, frame),
                Err(FrameError::TooLong { length, .. }) => {
                    self.handler.frame_length_exceeded(&mut fcx, length)
                }
                // The decoder reports only the peer's errors.
                Err(FrameError::Unencodable { .. }) => fcx.lose_connection(),
            }
        }
        drop(frames);
        if self.flow.take_pending_eof() {
            self.with_handler(cx, |handler, fcx| handler.eof_received(fcx));
        }
    }
}

fn context<'a, 'cx>(
    cx: &'a mut Context<'cx>,
    flow: &'a mut Flow,
    prefix: Prefix,
) -> FrameContext<'a, 'cx> {
    FrameContext { cx, flow, prefix }
}

impl<H: FrameReceiver> Protocol for FrameProtocol<H> {
    fn connection_made(&mut self, cx: &mut Context<'_>) {
        self.with_handler(cx, |handler, fcx| handler.connection_made(fcx));
    }

    fn data_received(&mut self, cx: &mut Context<'_>, data: &[u8]) {
        self.deliver(cx, data);
    }

    fn eof_received(&mut self, cx: &mut Context<'_>) {
        if self.flow.eof_arrived() {
            self.with_handler(cx, |handler, fcx| handler.eof_received(fcx));
        }
    }

    fn connection_lost(&mut self, cx: &mut Context<'_>, reason: &DisconnectReason) {
        self.flow.lost();
        let prefix = self.framer.prefix();
        let mut fcx = context(cx, &mut self.flow, prefix);
        self.handler.connection_lost(&mut fcx, reason);
    }

    fn pause_writing(&mut self, cx: &mut Context<'_>) {
        self.with_handler(cx, |handler, fcx| handler.pause_writing(fcx));
    }

    fn resume_writing(&mut self, cx: &mut Context<'_>) {
        self.with_handler(cx, |handler, fcx| handler.resume_writing(fcx));
    }
}

#[cfg(test)]
mod tests {
    use torsion_reactor::testing::Harness;

    use super::*;

    /// Records frames, echoes them, and pauses for 1 s on `pause`.
    #[derive(Default)]
    struct Echo {
        events: Vec<String>,
    }

    impl FrameReceiver for Echo {
        fn frame_received(&mut self, cx: &mut FrameContext<'_, '_>, frame: &[u8]) {
            self.events
                .push(String::from_utf8_lossy(frame).into_owned());
            cx.send_frame(frame).unwrap();
            if frame == b"pause" {
                cx.pause_producing();
                cx.call_later(Duration::from_secs(1), |_: &mut Echo, cx| {
                    cx.resume_producing()
                });
            }
        }
    }

    fn events(h: &Harness<FrameProtocol<Echo>>) -> Vec<String> {
        h.protocol().handler().events.clone()
    }

    fn wire(prefix: Prefix, frames: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for frame in frames {
            prefix.encode(frame, &mut out).unwrap();
        }
        out
    }

    #[test]
    fn frames_are_delivered_and_sent_in_every_chunk_size() {
        for prefix in [Prefix::U8, Prefix::U16, Prefix::U32] {
            let input = wire(prefix, &[b"hello", b"", b"x"]);
            for size in 1..=input.len() {
                let mut h = Harness::new(FrameProtocol::new(Echo::default(), prefix));
                for chunk in input.chunks(size) {
                    h.feed(chunk);
                }
                assert_eq!(events(&h), ["hello", "", "x"], "{prefix:?}, size {size}");
                assert_eq!(h.take_written(), input, "{prefix:?}, size {size}");
            }
        }
    }

    #[test]
    fn a_frame_over_the_maximum_closes_by_default_before_its_body_arrives() {
        let protocol = FrameProtocol::new(Echo::default(), Prefix::U32).with_max_frame_length(4);
        let mut h = Harness::new(protocol);
        h.feed(&wire(Prefix::U32, &[b"ok"]));
        h.feed(b"\0\0\0\x05");
        assert_eq!(events(&h), ["ok"]);
        assert!(h.is_closed());
    }

    #[test]
    fn send_frame_refuses_what_the_prefix_cannot_announce() {
        struct Big(Option<Result<(), FrameError>>);
        impl FrameReceiver for Big {
            fn connection_made(&mut self, cx: &mut FrameContext<'_, '_>) {
                self.0 = Some(cx.send_frame(&[0; 256]));
            }
            fn frame_received(&mut self, _cx: &mut FrameContext<'_, '_>, _frame: &[u8]) {}
        }
        let mut h = Harness::new(FrameProtocol::new(Big(None), Prefix::U8));
        assert!(matches!(
            h.protocol().handler().0,
            Some(Err(FrameError::Unencodable { length: 256, .. }))
        ));
        assert_eq!(h.take_written(), b"");
    }

    #[test]
    fn pause_holds_back_frames_and_eof_until_resumed() {
        let mut h = Harness::new(FrameProtocol::new(Echo::default(), Prefix::U16));
        h.feed(&wire(Prefix::U16, &[b"pause", b"a", b"b"]));
        h.feed_eof();
        assert_eq!(events(&h), ["pause"]);
        assert!(!h.is_closed());
        h.advance(Duration::from_secs(1));
        assert_eq!(events(&h), ["pause", "a", "b"]);
        assert!(h.is_closed());
    }
}
