//! The clocks the reactor reads time from: the monotonic system clock, or a test's
//! [`ManualClock`].

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// A clock that moves only when told to, for tests of timer-driven logic without sleeping
/// (Twisted's `task.Clock`). Give it to [`Reactor::with_clock`](crate::Reactor::with_clock);
/// then [`advance`](ManualClock::advance) it and call
/// [`iterate`](crate::Reactor::iterate) to fire what became due.
///
/// Clones share one time. While a reactor runs on a manual clock, `iterate` never sleeps
/// waiting for a timer: only `advance` makes timers due.
#[derive(Clone, Debug)]
pub struct ManualClock {
    /// The time, shared by the clones.
    shared: Rc<ManualTime>,
}

/// A manual clock's time: where it started and how far it was advanced.
#[derive(Debug)]
struct ManualTime {
    /// The instant the clock stood at when created.
    origin: Instant,
    /// The sum of every advance.
    elapsed: Cell<Duration>,
}

impl ManualClock {
    /// A clock standing at an arbitrary instant (the real time it was created).
    pub fn new() -> Self {
        ManualClock {
            shared: Rc::new(ManualTime {
                origin: Instant::now(),
                elapsed: Cell::new(Duration::ZERO),
            }),
        }
    }

    /// The clock's current instant.
    pub fn now(&self) -> Instant {
        self.shared.origin + self.shared.elapsed.get()
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        self.shared.elapsed.set(self.shared.elapsed.get() + by);
    }
}

impl Default for ManualClock {
    /// [`ManualClock::new`].
    fn default() -> Self {
        ManualClock::new()
    }
}

/// Where the reactor reads the time: the monotonic system clock, or a test's manual clock.
/// Monotonic either way, so wall-clock jumps never fire or stall timers.
#[derive(Clone, Debug, Default)]
pub(crate) enum Clock {
    /// `Instant::now()`.
    #[default]
    Monotonic,
    /// A test's clock, moved by hand.
    Manual(ManualClock),
}

impl Clock {
    /// The current instant.
    pub(crate) fn now(&self) -> Instant {
        match self {
            Clock::Monotonic => Instant::now(),
            Clock::Manual(clock) => clock.now(),
        }
    }

    /// Whether time moves only when a test advances it.
    pub(crate) fn is_manual(&self) -> bool {
        matches!(self, Clock::Manual(_))
    }
}

/// The manual clock.
#[cfg(test)]
mod clock_tests {
    use super::*;

    /// Clones share one time, which moves only when advanced.
    #[test]
    fn a_manual_clock_moves_only_when_advanced_and_clones_share_it() {
        let clock = ManualClock::new();
        let t0 = clock.now();
        assert_eq!(clock.now(), t0);
        clock.clone().advance(Duration::from_millis(1500));
        assert_eq!(clock.now(), t0 + Duration::from_millis(1500));
    }
}
