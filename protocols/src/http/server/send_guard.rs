//! The send timeout's bookkeeping (nginx's `send_timeout`): whether the connection's bytes
//! are being followed out, when the client last took some, and the timer that judges it.
//!
//! While bytes wait, the connection watches its writes (`Context::watch_writes`): the reactor
//! reports each flush that sends some (`Protocol::write_progress`), in the turn it happens,
//! and says when everything is gone. Writes that refill the queue between two flushes cannot
//! hide progress, since it is what the transport took that is reported.

use std::time::{Duration, Instant};

use torsion_reactor::{DelayedCall, Reactor};

/// Where the send timeout stands on one connection.
pub(super) struct SendGuard {
    /// Bytes are queued: their flushes are reported and the timer is armed.
    following: bool,
    /// When the client last took bytes (or the following started).
    last_progress: Instant,
    /// The timer that judges the connection, while following.
    timer: Option<DelayedCall>,
}

impl SendGuard {
    /// A guard not following anything yet.
    pub(super) fn new(now: Instant) -> Self {
        SendGuard {
            following: false,
            last_progress: now,
            timer: None,
        }
    }

    /// Whether bytes are being followed out of the queue.
    pub(super) fn is_following(&self) -> bool {
        self.following
    }

    /// Notes that the client took bytes at `now`.
    pub(super) fn progressed(&mut self, now: Instant) {
        self.last_progress = now;
    }

    /// Starts following a queue that holds bytes, judged by `timer`.
    pub(super) fn start(&mut self, now: Instant, timer: Option<DelayedCall>) {
        self.following = true;
        self.last_progress = now;
        self.timer = timer;
    }

    /// The timer fired: it is no longer armed.
    pub(super) fn fired(&mut self) {
        self.timer = None;
    }

    /// Re-arms the judging timer.
    pub(super) fn rearm(&mut self, timer: Option<DelayedCall>) {
        self.timer = timer;
    }

    /// How long the kernel has taken nothing, as of `now`.
    pub(super) fn silent_for(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.last_progress)
    }

    /// Stops following (the queue is empty, or the connection is gone).
    pub(super) fn stop(&mut self, reactor: &mut Reactor) {
        self.following = false;
        if let Some(timer) = self.timer.take() {
            timer.cancel(reactor);
        }
    }
}
