//! The reactor's timer queue: a binary heap of deadlines with lazy cancellation.
//!
//! Timers here are the reactor's own (connect timeouts, accept back-off). Each action names
//! its target by a generation-tagged [`Key`], so a timer that outlives its socket finds a
//! different generation when it fires and does nothing: no cancellation bookkeeping needed.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

use crate::slot::Key;

/// What a due timer does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TimerAction {
    /// Fail the connection attempt at `Key` if it is still connecting, after the given timeout.
    ConnectTimeout(Key),
    /// Try accepting again on the listener at `Key` after a resource error.
    AcceptRetry(Key),
}

struct Entry {
    deadline: Instant,
    /// Scheduling order, so equal deadlines fire first-scheduled first.
    seq: u64,
    action: TimerAction,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Entry {
    /// Reversed, so the std max-heap pops the earliest deadline.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.deadline, other.seq).cmp(&(self.deadline, self.seq))
    }
}

/// Pending timers, earliest first.
#[derive(Default)]
pub(crate) struct TimerQueue {
    heap: BinaryHeap<Entry>,
    next_seq: u64,
}

impl TimerQueue {
    pub(crate) fn schedule(&mut self, deadline: Instant, action: TimerAction) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.heap.push(Entry {
            deadline,
            seq,
            action,
        });
    }

    /// The earliest pending deadline.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.heap.peek().map(|e| e.deadline)
    }

    /// Removes and returns one timer due at `now`, in deadline order.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<TimerAction> {
        if self.heap.peek()?.deadline <= now {
            self.heap.pop().map(|e| e.action)
        } else {
            None
        }
    }

    /// How long a poll may sleep before the next deadline, capped by `limit` (None = forever).
    pub(crate) fn poll_timeout(&self, now: Instant, limit: Option<Duration>) -> Option<Duration> {
        let until_next = self
            .next_deadline()
            .map(|d| d.saturating_duration_since(now));
        match (until_next, limit) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(index: u32) -> Key {
        Key {
            index,
            generation: 0,
        }
    }

    #[test]
    fn fires_in_deadline_order_with_ties_in_scheduling_order() {
        let t0 = Instant::now();
        let mut q = TimerQueue::default();
        q.schedule(
            t0 + Duration::from_millis(20),
            TimerAction::AcceptRetry(key(1)),
        );
        q.schedule(
            t0 + Duration::from_millis(10),
            TimerAction::AcceptRetry(key(2)),
        );
        q.schedule(
            t0 + Duration::from_millis(10),
            TimerAction::AcceptRetry(key(3)),
        );
        assert_eq!(q.pop_due(t0), None);
        let due: Vec<_> =
            std::iter::from_fn(|| q.pop_due(t0 + Duration::from_millis(30))).collect();
        assert_eq!(
            due,
            [2, 3, 1].map(|i| TimerAction::AcceptRetry(key(i))).to_vec()
        );
    }

    #[test]
    fn poll_timeout_is_the_time_to_the_next_deadline() {
        let t0 = Instant::now();
        let mut q = TimerQueue::default();
        assert_eq!(q.poll_timeout(t0, None), None);
        q.schedule(
            t0 + Duration::from_millis(50),
            TimerAction::ConnectTimeout(key(0)),
        );
        assert_eq!(q.poll_timeout(t0, None), Some(Duration::from_millis(50)));
        assert_eq!(
            q.poll_timeout(t0, Some(Duration::from_millis(5))),
            Some(Duration::from_millis(5))
        );
        assert_eq!(
            q.poll_timeout(t0 + Duration::from_secs(1), None),
            Some(Duration::ZERO)
        );
    }
}
