//! Lingering close: how a connection that may still have unread input closes without a reset.
//!
//! A socket closed while the kernel still holds bytes it received (or receives some after)
//! answers with a TCP reset, and a reset makes the peer's kernel throw away what it had not
//! yet handed to the client: the tail of the responses, often the whole error response that
//! explained why the connection closes. So instead of closing at once, the connection
//! half-closes once its last response is out (the client reads everything, then EOF), goes
//! on reading and discarding what the client still sends, and closes at the client's EOF,
//! after [`ServerConfig::lingering_timeout`](super::ServerConfig::lingering_timeout) with
//! nothing arriving, or after
//! [`ServerConfig::lingering_time`](super::ServerConfig::lingering_time) in all (nginx's
//! `lingering_close`, Go's `closeWriteAndWait`).
//!
//! This file holds the bookkeeping (pure: time is passed in); the connection does the I/O.

use std::time::{Duration, Instant};

/// Where a connection stands on its way out.
pub(super) enum Closing {
    /// Not closing: requests are read.
    No,
    /// The write side shuts once the responses queued before it are out; input is read and
    /// discarded meanwhile (a client blocked sending would never read them). Lingering
    /// starts when they are out.
    Sending,
    /// Half-closed: input is discarded until the client's EOF or a limit.
    Lingering(Linger),
    /// Closing for good (`lose_connection` asked): nothing is read any more.
    Closed,
}

impl Closing {
    /// Whether the connection is on its way out: no request is read or dispatched any more,
    /// and input is discarded.
    pub(super) fn has_begun(&self) -> bool {
        !matches!(self, Closing::No)
    }
}

/// Why a lingering close ended on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Expired {
    /// Nothing arrived for the lingering timeout.
    Quiet,
    /// The lingering time ran out, however much the client still sends.
    Total,
}

/// The limits of one lingering close, and what it has seen.
pub(super) struct Linger {
    /// When the write side shut and lingering began.
    started: Instant,
    /// When input last arrived (or lingering began).
    last_input: Instant,
    /// The whole time it may last.
    time: Duration,
    /// How long it may go without input.
    timeout: Duration,
    /// Bytes read and thrown away meanwhile (for the log).
    discarded: u64,
}

impl Linger {
    /// Lingering that begins at `now`, for at most `time` in all and `timeout` without input.
    pub(super) fn new(now: Instant, time: Duration, timeout: Duration) -> Self {
        Linger {
            started: now,
            last_input: now,
            time,
            timeout,
            discarded: 0,
        }
    }

    /// `len` bytes arrived at `now` (and were thrown away): the quiet period starts again.
    /// The connection's timer is left alone: when it fires, it finds the later deadline and
    /// is armed again (one timer per lingering connection, not one per read).
    pub(super) fn input(&mut self, now: Instant, len: usize) {
        self.last_input = now;
        self.discarded += len as u64;
    }

    /// Bytes thrown away so far.
    pub(super) fn discarded(&self) -> u64 {
        self.discarded
    }

    /// When lingering ends if no input comes: the end of the quiet period or of the whole
    /// time, whichever is first.
    pub(super) fn deadline(&self) -> Instant {
        (self.last_input + self.timeout).min(self.started + self.time)
    }

    /// Whether lingering is over at `now`, and why.
    pub(super) fn expired(&self, now: Instant) -> Option<Expired> {
        if now >= self.started + self.time {
            Some(Expired::Total)
        } else if now >= self.last_input + self.timeout {
            Some(Expired::Quiet)
        } else {
            None
        }
    }

    /// How long it has lasted at `now`.
    pub(super) fn lasted(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.started)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn quiet_for_the_timeout_ends_it() {
        let start = Instant::now();
        let linger = Linger::new(start, 30 * SECOND, 5 * SECOND);
        assert_eq!(linger.deadline(), start + 5 * SECOND);
        assert_eq!(linger.expired(start + 4 * SECOND), None);
        assert_eq!(linger.expired(start + 5 * SECOND), Some(Expired::Quiet));
    }

    #[test]
    fn input_moves_the_quiet_deadline_but_not_the_total_one() {
        let start = Instant::now();
        let mut linger = Linger::new(start, 30 * SECOND, 5 * SECOND);
        for second in (4..=28).step_by(4) {
            linger.input(start + second * SECOND, 10);
            assert_eq!(linger.expired(start + (second + 1) * SECOND), None);
        }
        assert_eq!(
            linger.deadline(),
            start + 30 * SECOND,
            "capped by the total"
        );
        assert_eq!(linger.expired(start + 30 * SECOND), Some(Expired::Total));
        assert_eq!(linger.lasted(start + 30 * SECOND), 30 * SECOND);
        assert_eq!(linger.discarded(), 70);
    }

    #[test]
    fn a_total_shorter_than_the_timeout_wins() {
        let start = Instant::now();
        let linger = Linger::new(start, 2 * SECOND, 5 * SECOND);
        assert_eq!(linger.deadline(), start + 2 * SECOND);
        assert_eq!(linger.expired(start + 2 * SECOND), Some(Expired::Total));
    }
}
