//! The send timeout's bookkeeping (nginx's `send_timeout`): how far the kernel has taken the
//! connection's bytes, when it last took some, and the timer that judges it.
//!
//! The reactor reports a queue shrinking only through `resume_writing`, so while bytes wait
//! the connection's write-buffer limits follow the queue (the technique of the client's
//! `Sending`): both marks one byte under what is queued after each look. The next flush then
//! sees the queue over the high mark (`pause_writing`, before it writes), and any byte the
//! kernel takes brings it to the low mark or under (`resume_writing`, after it writes): each
//! flush that makes progress is reported in the turn it happens. The configured watermarks,
//! which pause and resume streaming producers, are then judged by the connection itself from
//! the queue's length in those callbacks; they are the reactor's marks again once the queue
//! is empty. Progress is measured as bytes the kernel took (bytes handed to the queue minus
//! bytes still in it), so writes that refill the queue between two looks cannot hide it.

use std::time::{Duration, Instant};

use torsion_reactor::{DelayedCall, Reactor};

/// Where the send timeout stands on one connection.
pub(super) struct SendGuard {
    /// Bytes are queued: the marks follow the queue and the timer is armed.
    following: bool,
    /// Bytes the kernel had taken at the last look.
    taken: u64,
    /// When the kernel last took bytes (or the following started).
    last_progress: Instant,
    /// The timer that judges the connection, while following.
    timer: Option<DelayedCall>,
}

impl SendGuard {
    /// A guard not following anything yet.
    pub(super) fn new(now: Instant) -> Self {
        SendGuard {
            following: false,
            taken: 0,
            last_progress: now,
            timer: None,
        }
    }

    /// Whether bytes are being followed out of the queue.
    pub(super) fn is_following(&self) -> bool {
        self.following
    }

    /// Notes that the kernel has taken `taken` bytes in all by `now`.
    pub(super) fn note(&mut self, taken: u64, now: Instant) {
        if taken > self.taken {
            self.taken = taken;
            self.last_progress = now;
        }
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
