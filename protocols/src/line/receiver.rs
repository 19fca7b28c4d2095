//! The line protocol adapter: a [`LineReceiver`] handler (Twisted's `LineReceiver` methods)
//! driven by a [`LineProtocol`], which implements [`Protocol`] over a [`LineFramer`].

use std::borrow::Cow;
use std::time::Duration;

use log::warn;
use torsion_reactor::{Context, DelayedCall, DisconnectReason, Protocol};

use super::framer::{Delimiter, LineError, LineFrame, LineFramer};
use crate::flow::Flow;

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

/// A mode change a handler asked for, applied when its callback returns.
#[derive(Debug, Clone, Copy)]
enum Switch {
    Raw,
    Line { extra: usize },
}

/// What a [`LineReceiver`] callback can do: send lines, switch between line and raw mode,
/// pause delivery, close, and reach the connection's whole [`Context`] through
/// [`transport`](LineContext::transport).
///
/// Mode switches and pauses take effect when the callback returns, before the next line is
/// delivered, so no byte is lost or reordered by a switch.
pub struct LineContext<'a, 'cx> {
    cx: &'a mut Context<'cx>,
    flow: &'a mut Flow,
    line_ending: &'a [u8],
    switch: Option<Switch>,
}

impl<'a, 'cx> LineContext<'a, 'cx> {
    fn new(cx: &'a mut Context<'cx>, flow: &'a mut Flow, line_ending: &'a [u8]) -> Self {
        LineContext {
            cx,
            flow,
            line_ending,
            switch: None,
        }
    }

    /// Sends `line` followed by the line ending (`\r\n` unless the protocol was built with
    /// another, see [`LineProtocol::with_line_ending`]).
    pub fn send_line(&mut self, line: &[u8]) {
        self.cx.write(line);
        self.cx.write(self.line_ending);
    }

    /// Sends `data` as it is.
    pub fn write(&mut self, data: &[u8]) {
        self.cx.write(data);
    }

    /// Hands the bytes after the current line (or raw data) to
    /// [`raw_data_received`](LineReceiver::raw_data_received) (Twisted's `setRawMode`).
    pub fn set_raw_mode(&mut self) {
        self.switch = Some(Switch::Raw);
    }

    /// Frames the bytes after the current raw data as lines again (Twisted's `setLineMode`).
    pub fn set_line_mode(&mut self) {
        self.switch = Some(Switch::Line { extra: 0 });
    }

    /// Frames lines again, starting with the last `extra` bytes of the raw data being
    /// received, which this handler did not use (Twisted's `setLineMode(extra)`): e.g. a body
    /// of known length ended inside the read. Outside `raw_data_received` this is
    /// [`set_line_mode`](LineContext::set_line_mode).
    pub fn set_line_mode_with_extra(&mut self, extra: usize) {
        self.switch = Some(Switch::Line { extra });
    }

    /// Stops delivering lines, even ones already received, and stops reading, until
    /// [`resume_producing`](LineContext::resume_producing) (Twisted's `pauseProducing`).
    /// The peer is slowed down by TCP flow control.
    pub fn pause_producing(&mut self) {
        self.flow.pause(self.cx);
    }

    /// Resumes after [`pause_producing`](LineContext::pause_producing): lines received
    /// meanwhile are delivered as soon as this callback returns, then reading resumes. Call
    /// it from a timer ([`call_later`](LineContext::call_later)) or any later callback.
    pub fn resume_producing(&mut self) {
        self.flow.resume(self.cx);
    }

    /// Whether delivery is paused.
    pub fn is_paused(&self) -> bool {
        self.flow.is_paused()
    }

    /// Closes the connection once what was sent is written (Twisted's `loseConnection`).
    /// No more lines are delivered, not even ones already received.
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

    /// Runs `f` on this connection's handler after `delay`, with a line context, as
    /// [`Context::call_later`] does for protocols. `H` is this connection's handler type
    /// (write the closure as `|this: &mut Self, cx| ...`).
    ///
    /// The connection's protocol must be this [`LineProtocol<H>`] itself (not wrapped in
    /// another protocol type), or the reactor drops the call with an error log when it is due.
    pub fn call_later<H: LineReceiver>(
        &mut self,
        delay: Duration,
        f: impl FnOnce(&mut H, &mut LineContext<'_, '_>) + 'static,
    ) -> Option<DelayedCall> {
        self.cx
            .call_later(delay, move |protocol: &mut LineProtocol<H>, cx| {
                protocol.with_handler(cx, f)
            })
    }
}

/// Runs a [`LineReceiver`] on a connection: implements [`Protocol`] by framing the bytes
/// received with a [`LineFramer`] and calling the handler for each line.
///
/// Defaults: lines end with `\r\n`, at most 16 KiB each; see the `with_` builders.
pub struct LineProtocol<H> {
    handler: H,
    framer: LineFramer,
    flow: Flow,
    line_ending: Cow<'static, [u8]>,
    line_ending_set: bool,
}

impl<H: LineReceiver> LineProtocol<H> {
    /// Runs `handler` with the default framing.
    pub fn new(handler: H) -> Self {
        LineProtocol {
            handler,
            framer: LineFramer::new(),
            flow: Flow::default(),
            line_ending: Cow::Borrowed(b"\r\n"),
            line_ending_set: false,
        }
    }

    /// Splits lines on `delimiter`. Unless [`with_line_ending`](LineProtocol::with_line_ending)
    /// says otherwise, [`send_line`](LineContext::send_line) then ends lines with
    /// [`delimiter.line_ending()`](Delimiter::line_ending).
    ///
    /// # Panics
    /// If `delimiter` is an empty [`Delimiter::Custom`].
    pub fn with_delimiter(mut self, delimiter: Delimiter) -> Self {
        if !self.line_ending_set {
            self.line_ending = match &delimiter {
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
        self.line_ending = Cow::Owned(ending.to_vec());
        self.line_ending_set = true;
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

    /// The framer, e.g. to see what is buffered.
    pub fn framer(&self) -> &LineFramer {
        &self.framer
    }

    /// Calls `f` with the handler and a line context from outside a handler callback (a timer
    /// scheduled on the [`Context`], another part of the program holding this protocol), then
    /// carries out what it asked: a mode switch, and, unless paused, the delivery of lines
    /// buffered meanwhile.
    pub fn with_handler<R>(
        &mut self,
        cx: &mut Context<'_>,
        f: impl FnOnce(&mut H, &mut LineContext<'_, '_>) -> R,
    ) -> R {
        let mut lcx = LineContext::new(cx, &mut self.flow, &self.line_ending);
        let result = f(&mut self.handler, &mut lcx);
        match lcx.switch {
            Some(Switch::Raw) => self.framer.set_raw_mode(),
            Some(Switch::Line { .. }) => self.framer.set_line_mode(),
            None => {}
        }
        self.deliver(cx, &[]);
        result
    }

    /// Frames `data` (after what is buffered) and delivers lines while the handler lets it.
    fn deliver(&mut self, cx: &mut Context<'_>, data: &[u8]) {
        let mut frames = self.framer.feed(data);
        while self.flow.may_deliver() && !cx.is_closing() {
            let Some(frame) = frames.next() else { break };
            let mut lcx = LineContext::new(cx, &mut self.flow, &self.line_ending);
            match frame {
                Ok(LineFrame::Line(line)) => self.handler.line_received(&mut lcx, line),
                Ok(LineFrame::Raw(data)) => self.handler.raw_data_received(&mut lcx, data),
                Err(LineError::TooLong { buffered, .. }) => {
                    self.handler.line_length_exceeded(&mut lcx, buffered)
                }
            }
            match lcx.switch {
                Some(Switch::Raw) => frames.set_raw_mode(),
                Some(Switch::Line { extra }) => frames.set_line_mode_with_extra(extra),
                None => {}
            }
        }
        drop(frames);
        if self.flow.take_pending_eof() {
            self.eof(cx);
        }
    }

    fn eof(&mut self, cx: &mut Context<'_>) {
        self.with_handler(cx, |handler, lcx| handler.eof_received(lcx));
    }
}

impl<H: LineReceiver> Protocol for LineProtocol<H> {
    fn connection_made(&mut self, cx: &mut Context<'_>) {
        self.with_handler(cx, |handler, lcx| handler.connection_made(lcx));
    }

    fn data_received(&mut self, cx: &mut Context<'_>, data: &[u8]) {
        self.deliver(cx, data);
    }

    fn eof_received(&mut self, cx: &mut Context<'_>) {
        if self.flow.eof_arrived() {
            self.eof(cx);
        }
    }

    fn connection_lost(&mut self, cx: &mut Context<'_>, reason: &DisconnectReason) {
        self.flow.lost();
        let mut lcx = LineContext::new(cx, &mut self.flow, &self.line_ending);
        self.handler.connection_lost(&mut lcx, reason);
    }

    fn pause_writing(&mut self, cx: &mut Context<'_>) {
        self.with_handler(cx, |handler, lcx| handler.pause_writing(lcx));
    }

    fn resume_writing(&mut self, cx: &mut Context<'_>) {
        self.with_handler(cx, |handler, lcx| handler.resume_writing(lcx));
    }
}

#[cfg(test)]
mod tests;
