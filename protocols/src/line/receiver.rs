//! The line protocol adapter: a [`LineReceiver`] handler (Twisted's `LineReceiver` methods)
//! driven by a [`LineProtocol`], which implements [`Protocol`] over a [`LineFramer`].

use std::borrow::Cow;

use log::warn;
use torsion_reactor::DisconnectReason;
#[cfg(doc)]
use torsion_reactor::{Context, Protocol};

use super::framer::{Delimiter, LineError, LineFrame, LineFramer, LineFrames};
use crate::framed::{Event, FramedContext, FramedProtocol, Framing, Handler};

/// What a line-based protocol does, in Twisted's words. Put it in a [`LineProtocol`] to run it
/// on a connection.
///
/// Calls come in the order of [`Protocol`]'s: `connection_made`, then lines (or raw data)
/// in the order the peer sent them, at most one `eof_received`, and finally `connection_lost`.
///
/// ```
/// use torsion_protocols::line::{LineContext, LineProtocol, LineReceiver};
///
/// /// Answers each line with its length; `quit` hangs up.
/// struct Lengths;
///
/// impl LineReceiver for Lengths {
///     fn line_received(&mut self, cx: &mut LineContext<'_, '_>, line: &[u8]) {
///         if line == b"quit" {
///             cx.send_line(b"bye");
///             cx.lose_connection();
///         } else {
///             cx.send_line(line.len().to_string().as_bytes());
///         }
///     }
/// }
///
/// # fn main() -> std::io::Result<()> {
/// let mut reactor = torsion_reactor::Reactor::new()?;
/// reactor.listen_tcp("127.0.0.1:0".parse().unwrap(), || LineProtocol::new(Lengths))?;
/// # Ok(())
/// # }
/// ```
pub trait LineReceiver: 'static {
    /// The connection is established. A greeting can be sent from here.
    fn connection_made(&mut self, cx: &mut LineContext<'_, '_>) {
        let _ = cx;
    }

    /// A line arrived, without its delimiter (it may be empty). `line` is only valid during
    /// the call. Switching to raw mode here makes the bytes right after this line raw.
    fn line_received(&mut self, cx: &mut LineContext<'_, '_>, line: &[u8]);

    /// Bytes arrived in raw mode, in the order sent, split wherever reads split them. The
    /// default drops them.
    fn raw_data_received(&mut self, cx: &mut LineContext<'_, '_>, data: &[u8]) {
        let _ = (cx, data);
    }

    /// The peer sent a line longer than the maximum; `buffered` is its first
    /// `max_line_length + 1` bytes. The rest of that line is skipped, and lines after it are
    /// delivered if the connection stays open. The default logs a warning and closes the
    /// connection (Twisted's default too).
    fn line_length_exceeded(&mut self, cx: &mut LineContext<'_, '_>, buffered: &[u8]) {
        warn!(
            "connection {}: line longer than {} bytes, closing",
            cx.transport().id(),
            buffered.len().saturating_sub(1)
        );
        cx.lose_connection();
    }

    /// The peer will send nothing more (after any lines it sent before, even ones held back
    /// by [`pause_producing`](LineContext::pause_producing)). A partial last line is dropped.
    /// The default closes the connection.
    fn eof_received(&mut self, cx: &mut LineContext<'_, '_>) {
        cx.lose_connection();
    }

    /// The connection is gone, for `reason`; writes are ignored from here.
    fn connection_lost(&mut self, cx: &mut LineContext<'_, '_>, reason: &DisconnectReason) {
        let _ = (cx, reason);
    }

    /// The connection's write queue is over its high watermark: stop sending until
    /// [`resume_writing`](LineReceiver::resume_writing). See [`Protocol::pause_writing`].
    fn pause_writing(&mut self, cx: &mut LineContext<'_, '_>) {
        let _ = cx;
    }

    /// The write queue drained after a [`pause_writing`](LineReceiver::pause_writing).
    fn resume_writing(&mut self, cx: &mut LineContext<'_, '_>) {
        let _ = cx;
    }
}

/// What a [`LineReceiver`] callback can do: send lines, switch between line and raw mode,
/// pause delivery, close, and reach the connection's whole [`Context`] through
/// [`transport`](FramedContext::transport).
///
/// Mode switches and pauses take effect when the callback returns, before the next line is
/// delivered, so no byte is lost or reordered by a switch.
pub type LineContext<'a, 'cx> = FramedContext<'a, 'cx, LineFramer>;

impl LineContext<'_, '_> {
    /// Sends `line` followed by the line ending (`\r\n` unless the protocol was built with
    /// another, see [`LineProtocol::with_line_ending`]).
    pub fn send_line(&mut self, line: &[u8]) {
        self.cx.write(line);
        self.cx.write(&self.encoder.bytes);
    }

    /// Sends `data` as it is.
    pub fn write(&mut self, data: &[u8]) {
        self.cx.write(data);
    }

    /// Hands the bytes after the current line (or raw data) to
    /// [`raw_data_received`](LineReceiver::raw_data_received) (Twisted's `setRawMode`).
    pub fn set_raw_mode(&mut self) {
        self.request = Some(Switch::Raw);
    }

    /// Frames the bytes after the current raw data as lines again (Twisted's `setLineMode`).
    pub fn set_line_mode(&mut self) {
        self.request = Some(Switch::Line { extra: 0 });
    }

    /// Frames lines again, starting with the last `extra` bytes of the raw data being
    /// received, which this handler did not use (Twisted's `setLineMode(extra)`): e.g. a body
    /// of known length ended inside the read. Outside `raw_data_received` this is
    /// [`set_line_mode`](LineContext::set_line_mode).
    pub fn set_line_mode_with_extra(&mut self, extra: usize) {
        self.request = Some(Switch::Line { extra });
    }
}

/// Runs a [`LineReceiver`] on a connection: implements [`Protocol`] by framing the bytes
/// received with a [`LineFramer`] and calling the handler for each line.
///
/// Defaults: lines end with `\r\n`, at most 16 KiB each; see the `with_` builders.
pub type LineProtocol<H> = FramedProtocol<LineFramer, H>;

impl<H: LineReceiver> LineProtocol<H> {
    /// Runs `handler` with the default framing.
    pub fn new(handler: H) -> Self {
        let ending = LineEnding {
            bytes: Cow::Borrowed(b"\r\n"),
            explicit: false,
        };
        FramedProtocol::from_parts(handler, LineFramer::new(), ending)
    }

    /// Splits lines on `delimiter`. Unless [`with_line_ending`](LineProtocol::with_line_ending)
    /// says otherwise, [`send_line`](LineContext::send_line) then ends lines with
    /// [`delimiter.line_ending()`](Delimiter::line_ending).
    ///
    /// # Panics
    /// If `delimiter` is an empty [`Delimiter::Custom`].
    pub fn with_delimiter(mut self, delimiter: Delimiter) -> Self {
        if !self.encoder.explicit {
            self.encoder.bytes = match &delimiter {
                Delimiter::Custom(bytes) => Cow::Owned(bytes.to_vec()),
                Delimiter::CrLf | Delimiter::Newline => Cow::Borrowed(b"\r\n"),
            };
        }
        self.framer = self.framer.with_delimiter(delimiter);
        self
    }

    /// Accepts lines of at most `max` bytes (delimiter excluded); longer ones go to
    /// [`line_length_exceeded`](LineReceiver::line_length_exceeded).
    pub fn with_max_line_length(mut self, max: usize) -> Self {
        self.framer = self.framer.with_max_line_length(max);
        self
    }

    /// Ends the lines [`send_line`](LineContext::send_line) sends with `ending`.
    pub fn with_line_ending(mut self, ending: &[u8]) -> Self {
        self.encoder = LineEnding {
            bytes: Cow::Owned(ending.to_vec()),
            explicit: true,
        };
        self
    }

    /// The framer, e.g. to see what is buffered.
    pub fn framer(&self) -> &LineFramer {
        &self.framer
    }
}

// What the generic adapter (`crate::framed`) needs to know of lines: the line ending, mode
// switches, and which `LineReceiver` callback each event goes to.

/// The bytes [`send_line`](LineContext::send_line) ends lines with.
pub struct LineEnding {
    bytes: Cow<'static, [u8]>,
    /// Given by [`with_line_ending`](LineProtocol::with_line_ending), so a delimiter set
    /// later does not replace it.
    explicit: bool,
}

/// A mode change a handler asked for, applied when its callback returns.
#[derive(Debug, Clone, Copy)]
pub enum Switch {
    /// To raw mode.
    Raw,
    /// To line mode, starting with the last `extra` bytes of the raw data being received.
    Line {
        /// Bytes given back, to be framed as lines.
        extra: usize,
    },
}

impl Framing for LineFramer {
    type Encoder = LineEnding;
    type Request = Option<Switch>;

    fn request_frames(frames: &mut LineFrames<'_, '_>, request: Option<Switch>) {
        match request {
            Some(Switch::Raw) => frames.set_raw_mode(),
            Some(Switch::Line { extra }) => frames.set_line_mode_with_extra(extra),
            None => {}
        }
    }

    fn request(&mut self, request: Option<Switch>) {
        match request {
            Some(Switch::Raw) => self.set_raw_mode(),
            Some(Switch::Line { .. }) => self.set_line_mode(),
            None => {}
        }
    }
}

impl<H: LineReceiver> Handler<LineFramer> for H {
    fn handle(&mut self, cx: &mut LineContext<'_, '_>, event: Event<'_, Line<'_>>) {
        match event {
            Event::Frame(Ok(LineFrame::Line(line))) => self.line_received(cx, line),
            Event::Frame(Ok(LineFrame::Raw(data))) => self.raw_data_received(cx, data),
            Event::Frame(Err(LineError::TooLong { buffered, .. })) => {
                self.line_length_exceeded(cx, buffered)
            }
            Event::ConnectionMade => self.connection_made(cx),
            Event::EofReceived => self.eof_received(cx),
            Event::ConnectionLost(reason) => self.connection_lost(cx, reason),
            Event::PauseWriting => self.pause_writing(cx),
            Event::ResumeWriting => self.resume_writing(cx),
        }
    }
}

/// What the line cursor hands out.
type Line<'x> = Result<LineFrame<'x>, LineError<'x>>;

#[cfg(test)]
mod tests;
