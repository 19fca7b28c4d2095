//! [`LoopingCall`]: a function run every interval, Twisted's `task.LoopingCall`.

use std::time::{Duration, Instant};

use slab::Slab;

use super::TimerKey;
use crate::Reactor;

/// The function of a looping call: gets the reactor and how many intervals passed since its
/// previous run (1 on time; more when the reactor fell behind and runs were skipped).
pub(crate) type LoopFn = Box<dyn FnMut(&mut Reactor, u64)>;

/// Names a looping call's state in the reactor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct LoopKey {
    index: u32,
    generation: u32,
}

struct LoopState {
    generation: u32,
    interval: Duration,
    started: Instant,
    /// Index of the interval of the previous run (`None` before the first).
    last_interval: Option<u64>,
    /// The pending timer for the next run.
    timer: Option<TimerKey>,
    /// `None` while the function is running.
    f: Option<LoopFn>,
}

/// The reactor's looping calls.
#[derive(Default)]
pub(crate) struct Loops {
    slab: Slab<LoopState>,
    next_generation: u32,
}

/// A function called every `interval` (Twisted's `LoopingCall`), made by
/// [`Reactor::start_looping_call`]. A small `Copy` handle; stop it with
/// [`stop`](LoopingCall::stop).
///
/// Runs are aligned to the start time: run *n* is due at `start + n × interval`. When the
/// reactor falls behind (a long callback, a blocked thread), the missed runs are not made up
/// in a burst: the next run happens once, and its count argument says how many intervals
/// passed since the previous one, as Twisted's `withCount`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LoopingCall(pub(crate) LoopKey);

impl LoopingCall {
    /// Stops the loop: no further runs. False if it was already stopped. Callable from
    /// inside the loop's own function.
    pub fn stop(self, reactor: &mut Reactor) -> bool {
        let timers = reactor.timers();
        let Some(timer) = timers.loops.remove(self.0) else {
            return false;
        };
        if let Some(timer) = timer {
            timers.cancel(timer);
        }
        true
    }

    /// Whether the loop is still running (not stopped).
    pub fn is_running(self, reactor: &Reactor) -> bool {
        reactor
            .timers_ref()
            .loops
            .slab
            .get(self.0.index as usize)
            .is_some_and(|s| s.generation == self.0.generation)
    }
}

impl Loops {
    fn get(&mut self, key: LoopKey) -> Option<&mut LoopState> {
        self.slab
            .get_mut(key.index as usize)
            .filter(|s| s.generation == key.generation)
    }

    /// Removes a loop, returning its pending timer; `None` if it was stopped already.
    pub(crate) fn remove(&mut self, key: LoopKey) -> Option<Option<TimerKey>> {
        let timer = self.get(key)?.timer.take();
        self.slab.remove(key.index as usize);
        Some(timer)
    }

    /// Adds a loop started at `started`; its first run is then, or one interval later.
    pub(crate) fn insert(
        &mut self,
        interval: Duration,
        started: Instant,
        now: bool,
        f: LoopFn,
    ) -> LoopKey {
        let generation = self.next_generation;
        self.next_generation = generation.wrapping_add(1);
        let index = self.slab.insert(LoopState {
            generation,
            interval,
            started,
            // Started now: the first run is interval 0 and counts 1. Otherwise the count of
            // the first run is measured from the start, as Twisted's `withCount`.
            last_interval: if now { None } else { Some(0) },
            timer: None,
            f: Some(f),
        });
        LoopKey {
            index: u32::try_from(index).unwrap_or(u32::MAX),
            generation,
        }
    }

    /// Notes the timer of a loop's next run.
    pub(crate) fn set_timer(&mut self, key: LoopKey, timer: TimerKey) {
        if let Some(state) = self.get(key) {
            state.timer = Some(timer);
        }
    }

    /// A loop's timer fired at `now`: its function (out of its place until `put_back`) and
    /// the count of intervals since its previous run.
    pub(crate) fn take_due(&mut self, key: LoopKey, now: Instant) -> Option<(LoopFn, u64)> {
        let state = self.get(key)?;
        state.timer = None;
        let index = interval_index(state.started, state.interval, now);
        let count = match state.last_interval {
            None => 1,
            Some(last) => index.saturating_sub(last).max(1),
        };
        state.last_interval = Some(index);
        Some((state.f.take()?, count))
    }

    /// Puts a loop's function back after its run, returning when the next run is due
    /// (`None` if the function stopped its own loop).
    pub(crate) fn put_back(&mut self, key: LoopKey, f: LoopFn, now: Instant) -> Option<Instant> {
        let state = self.get(key)?;
        state.f = Some(f);
        Some(next_boundary(state.started, state.interval, now))
    }
}

/// Which interval `now` falls in, counting from `started`.
fn interval_index(started: Instant, interval: Duration, now: Instant) -> u64 {
    if interval.is_zero() {
        return 0;
    }
    let elapsed = now.saturating_duration_since(started).as_nanos();
    u64::try_from(elapsed / interval.as_nanos()).unwrap_or(u64::MAX)
}

/// The first interval boundary strictly after `now` (now itself for a zero interval).
fn next_boundary(started: Instant, interval: Duration, now: Instant) -> Instant {
    if interval.is_zero() {
        return now;
    }
    let next = interval_index(started, interval, now).saturating_add(1);
    let offset = interval.as_nanos().saturating_mul(u128::from(next));
    started + Duration::from_nanos(u64::try_from(offset).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundaries_are_aligned_to_the_start() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        assert_eq!(interval_index(t0, s, t0), 0);
        assert_eq!(interval_index(t0, s, t0 + Duration::from_millis(3500)), 3);
        assert_eq!(
            next_boundary(t0, s, t0 + Duration::from_millis(3500)),
            t0 + 4 * s
        );
        assert_eq!(next_boundary(t0, s, t0 + s), t0 + 2 * s);
        assert_eq!(next_boundary(t0, Duration::ZERO, t0 + s), t0 + s);
    }
}
