//! The netstring protocol adapter: a [`NetstringReceiver`] handler (Twisted's
//! `NetstringReceiver` methods) driven by a [`NetstringProtocol`].

use log::warn;
use torsion_reactor::DisconnectReason;
#[cfg(doc)]
use torsion_reactor::{Context, Protocol};

use super::{NetstringError, NetstringFramer};
use crate::framed::{Event, FramedContext, FramedProtocol, Framing, Handler};

/// What a netstring protocol does. Put it in a [`NetstringProtocol`] to run it on a
/// connection. Calls come in [`Protocol`]'s order.
///
/// ```
/// use torsion_protocols::netstring::{NetstringContext, NetstringProtocol, NetstringReceiver};
///
/// /// Sends each string back reversed.
/// struct Reverse;
///
/// impl NetstringReceiver for Reverse {
///     fn string_received(&mut self, cx: &mut NetstringContext<'_, '_>, string: &[u8]) {
///         let reversed: Vec<u8> = string.iter().rev().copied().collect();
///         cx.send_string(&reversed);
///     }
/// }
///
/// let protocol = NetstringProtocol::new(Reverse).with_max_length(1024);
/// # let _ = protocol;
/// ```
pub trait NetstringReceiver: 'static {
    /// The connection is established.
    fn connection_made(&mut self, cx: &mut NetstringContext<'_, '_>) {
        let _ = cx;
    }

    /// A string arrived. `string` is only valid during the call.
    fn string_received(&mut self, cx: &mut NetstringContext<'_, '_>, string: &[u8]);

    /// The peer broke the framing (a bad length, a string over the maximum, a missing comma).
    /// Nothing more is read from this connection. The default logs a warning and closes it.
    fn netstring_error(&mut self, cx: &mut NetstringContext<'_, '_>, error: &NetstringError) {
        warn!("connection {}: {error}, closing", cx.transport().id());
        cx.lose_connection();
    }

    /// The peer will send nothing more (after strings held back by a pause). A partial
    /// string is dropped. The default closes the connection.
    fn eof_received(&mut self, cx: &mut NetstringContext<'_, '_>) {
        cx.lose_connection();
    }

    /// The connection is gone, for `reason`.
    fn connection_lost(&mut self, cx: &mut NetstringContext<'_, '_>, reason: &DisconnectReason) {
        let _ = (cx, reason);
    }

    /// The write queue is over its high watermark; see [`Protocol::pause_writing`].
    fn pause_writing(&mut self, cx: &mut NetstringContext<'_, '_>) {
        let _ = cx;
    }

    /// The write queue drained after a pause.
    fn resume_writing(&mut self, cx: &mut NetstringContext<'_, '_>) {
        let _ = cx;
    }
}

/// What a [`NetstringReceiver`] callback can do: send strings, pause delivery, close, and
/// reach the connection's whole [`Context`] through
/// [`transport`](FramedContext::transport).
pub type NetstringContext<'a, 'cx> = FramedContext<'a, 'cx, NetstringFramer>;

impl NetstringContext<'_, '_> {
    /// Sends `string` as a netstring.
    pub fn send_string(&mut self, string: &[u8]) {
        self.cx.write(format!("{}:", string.len()).as_bytes());
        self.cx.write(string);
        self.cx.write(b",");
    }
}

/// Runs a [`NetstringReceiver`] on a connection: implements [`Protocol`] by decoding the bytes
/// received with a [`NetstringFramer`].
pub type NetstringProtocol<H> = FramedProtocol<NetstringFramer, H>;

impl<H: NetstringReceiver> NetstringProtocol<H> {
    /// Runs `handler`, accepting strings of up to
    /// [`DEFAULT_MAX_LENGTH`](super::DEFAULT_MAX_LENGTH) bytes.
    pub fn new(handler: H) -> Self {
        FramedProtocol::from_parts(handler, NetstringFramer::new(), ())
    }

    /// Accepts strings of at most `max` bytes instead.
    pub fn with_max_length(mut self, max: usize) -> Self {
        self.framer = self.framer.with_max_length(max);
        self
    }
}

// What the generic adapter (`crate::framed`) needs to know of netstrings: which
// `NetstringReceiver` callback each event goes to.

impl Framing for NetstringFramer {
    type Encoder = ();
    type Request = ();
}

impl<H: NetstringReceiver> Handler<NetstringFramer> for H {
    fn handle(
        &mut self,
        cx: &mut NetstringContext<'_, '_>,
        event: Event<'_, Result<&[u8], NetstringError>>,
    ) {
        match event {
            Event::Frame(Ok(string)) => self.string_received(cx, string),
            Event::Frame(Err(error)) => self.netstring_error(cx, &error),
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

    /// Echoes strings; records errors too, and closes on them.
    impl NetstringReceiver for Echo {
        fn string_received(&mut self, cx: &mut NetstringContext<'_, '_>, string: &[u8]) {
            cx.send_string(string);
            self.heard(cx, string);
        }

        fn netstring_error(&mut self, cx: &mut NetstringContext<'_, '_>, error: &NetstringError) {
            self.events.push(error.to_string());
            cx.lose_connection();
        }
    }

    #[test]
    fn strings_are_delivered_and_sent_in_every_chunk_size() {
        let input = b"5:hello,0:,3:a,b,";
        let make = || NetstringProtocol::new(Echo::default());
        echoes_in_every_chunk_size(make, input, &["hello", "", "a,b"], "chunk");
    }

    #[test]
    fn a_bad_netstring_reaches_the_handler_and_nothing_after_it() {
        let mut h = Harness::new(NetstringProtocol::new(Echo::default()).with_max_length(4));
        h.feed(b"2:ok,5:hello,2:no,");
        assert_eq!(
            events(&h),
            [
                "ok",
                "bad netstring: declared length 5 or more is over the maximum 4"
            ]
        );
        assert!(h.is_closed());
    }

    #[test]
    fn the_default_reaction_to_bad_framing_closes() {
        struct Quiet;
        impl NetstringReceiver for Quiet {
            fn string_received(&mut self, _cx: &mut NetstringContext<'_, '_>, _s: &[u8]) {}
        }
        let mut h = Harness::new(NetstringProtocol::new(Quiet));
        h.feed(b"3:abc;");
        assert!(h.is_closed());
    }

    #[test]
    fn pause_holds_back_strings_and_eof_until_resumed() {
        let protocol = NetstringProtocol::new(Echo::default());
        pause_holds_back_frames_and_eof(protocol, b"5:pause,1:a,1:b,");
    }
}
