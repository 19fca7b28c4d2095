//! Delivery control shared by the Protocol adapters: a handler can pause the delivery of
//! frames (and reading), resume it, or close, and an EOF waits behind frames still buffered.

use torsion_reactor::Context;

/// Whether an adapter may hand its handler the next frame.
#[derive(Debug, Default)]
pub(crate) struct Flow {
    /// The handler paused delivery (and reading): frames wait in the framer.
    paused: bool,
    /// The handler closed the connection: no frame is delivered any more (Twisted stops
    /// delivering lines once `transport.disconnecting` is set).
    closing: bool,
    /// The peer's EOF arrived while frames were held back; it is delivered after them.
    eof_pending: bool,
}

impl Flow {
    pub(crate) fn may_deliver(&self) -> bool {
        !self.paused && !self.closing
    }

    pub(crate) fn is_paused(&self) -> bool {
        self.paused
    }

    pub(crate) fn pause(&mut self, cx: &mut Context<'_>) {
        if !self.paused {
            self.paused = true;
            cx.pause_reading();
        }
    }

    pub(crate) fn resume(&mut self, cx: &mut Context<'_>) {
        if self.paused {
            self.paused = false;
            cx.resume_reading();
        }
    }

    pub(crate) fn lose_connection(&mut self, cx: &mut Context<'_>) {
        self.closing = true;
        cx.lose_connection();
    }

    /// The connection is gone: nothing more is delivered.
    pub(crate) fn lost(&mut self) {
        self.closing = true;
    }

    /// The peer's EOF arrived. True if the handler hears it now; false if it waits behind
    /// held-back frames (then [`take_pending_eof`](Flow::take_pending_eof) says when).
    pub(crate) fn eof_arrived(&mut self) -> bool {
        if self.closing {
            return false;
        }
        self.eof_pending = self.paused;
        !self.paused
    }

    /// Whether a held-back EOF is due now: once every buffered frame has been delivered.
    pub(crate) fn take_pending_eof(&mut self) -> bool {
        let due = self.eof_pending && self.may_deliver();
        if due {
            self.eof_pending = false;
        }
        due
    }
}
