//! The length-prefixed protocol adapter: a [`FrameReceiver`] handler (Twisted's
//! `IntNStringReceiver` methods) driven by a [`FrameProtocol`].

use log::warn;
use torsion_reactor::DisconnectReason;
#[cfg(doc)]
use torsion_reactor::{Context, Protocol};

use super::{FrameError, Prefix, PrefixedFramer};
use crate::framed::{Event, FramedContext, FramedProtocol, Framing, Handler};

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
/// connection's whole [`Context`] through
/// [`transport`](FramedContext::transport).
pub type FrameContext<'a, 'cx> = FramedContext<'a, 'cx, PrefixedFramer>;

impl FrameContext<'_, '_> {
    /// Sends `frame` after its length prefix, or, if the prefix cannot announce that length
    /// ([`FrameError::Unencodable`], e.g. 256 bytes after a one-byte prefix), sends nothing.
    pub fn send_frame(&mut self, frame: &[u8]) -> Result<(), FrameError> {
        let prefix = *self.encoder;
        let header = prefix.header(frame.len())?;
        self.cx.write(&header[header.len() - prefix.size()..]);
        self.cx.write(frame);
        Ok(())
    }
}

/// Runs a [`FrameReceiver`] on a connection: implements [`Protocol`] by decoding the bytes
/// received with a [`PrefixedFramer`].
pub type FrameProtocol<H> = FramedProtocol<PrefixedFramer, H>;

impl<H: FrameReceiver> FrameProtocol<H> {
    /// Runs `handler` on frames after a `prefix`, of up to
    /// [`DEFAULT_MAX_FRAME_LENGTH`](super::DEFAULT_MAX_FRAME_LENGTH) bytes.
    pub fn new(handler: H, prefix: Prefix) -> Self {
        FramedProtocol::from_parts(handler, PrefixedFramer::new(prefix), prefix)
    }

    /// Accepts frames of at most `max` bytes instead.
    pub fn with_max_frame_length(mut self, max: usize) -> Self {
        self.framer = self.framer.with_max_frame_length(max);
        self
    }
}

// What the generic adapter (`crate::framed`) needs to know of prefixed frames: the prefix, and
// which `FrameReceiver` callback each event goes to.

impl Framing for PrefixedFramer {
    type Encoder = Prefix;
    type Request = ();
}

impl<H: FrameReceiver> Handler<PrefixedFramer> for H {
    fn handle(
        &mut self,
        cx: &mut FrameContext<'_, '_>,
        event: Event<'_, Result<&[u8], FrameError>>,
    ) {
        match event {
            Event::Frame(Ok(frame)) => self.frame_received(cx, frame),
            Event::Frame(Err(FrameError::TooLong { length, .. })) => {
                self.frame_length_exceeded(cx, length)
            }
            // The decoder reports only the peer's errors.
            Event::Frame(Err(FrameError::Unencodable { .. })) => cx.lose_connection(),
            Event::ConnectionMade => self.connection_made(cx),
            Event::EofReceived => self.eof_received(cx),
            Event::ConnectionLost(reason) => self.connection_lost(cx, reason),
            Event::PauseWriting => self.pause_writing(cx),
            Event::ResumeWriting => self.resume_writing(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use torsion_reactor::testing::Harness;

    use super::*;
    use crate::framed::tests::{
        echoes_in_every_chunk_size, events, pause_holds_back_frames_and_eof, Echo,
    };
    use crate::prefixed::tests::wire;

    /// Echoes frames.
    impl FrameReceiver for Echo {
        fn frame_received(&mut self, cx: &mut FrameContext<'_, '_>, frame: &[u8]) {
            cx.send_frame(frame).unwrap();
            self.heard(cx, frame);
        }
    }

    #[test]
    fn frames_are_delivered_and_sent_in_every_chunk_size() {
        for prefix in [Prefix::U8, Prefix::U16, Prefix::U32] {
            let input = wire(prefix, &[b"hello", b"", b"x"]);
            let make = || FrameProtocol::new(Echo::default(), prefix);
            let label = format!("{prefix:?},");
            echoes_in_every_chunk_size(make, &input, &["hello", "", "x"], &label);
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
        let protocol = FrameProtocol::new(Echo::default(), Prefix::U16);
        pause_holds_back_frames_and_eof(protocol, &wire(Prefix::U16, &[b"pause", b"a", b"b"]));
    }
}
