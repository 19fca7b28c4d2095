//! The growing delay after failed logins from one address.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Failed logins per client address, and the delay they earn: none for the first failure,
/// then `base` doubling with each failure up to `max`. A success from the address clears
/// it; so does `forget_after` without a failure. At most `capacity` addresses are tracked
/// (the oldest forgotten first), so a flood of addresses costs bounded memory.
#[derive(Debug, Clone)]
pub struct FailureDelays {
    base: Duration,
    max: Duration,
    forget_after: Duration,
    capacity: usize,
    failures: HashMap<IpAddr, (u32, Instant)>,
}

impl Default for FailureDelays {
    /// 250 ms after the second failure, doubling up to 30 s; forgotten after 15 minutes
    /// without a failure; 10,000 addresses.
    fn default() -> Self {
        FailureDelays::new(
            Duration::from_millis(250),
            Duration::from_secs(30),
            Duration::from_secs(15 * 60),
            10_000,
        )
    }
}

impl FailureDelays {
    /// Delays from `base` doubling up to `max`, counts forgotten after `forget_after`, at
    /// most `capacity` addresses.
    pub fn new(base: Duration, max: Duration, forget_after: Duration, capacity: usize) -> Self {
        FailureDelays {
            base,
            max,
            forget_after,
            capacity: capacity.max(1),
            failures: HashMap::new(),
        }
    }

    /// A failure from `peer` at `now`: the delay to wait before answering it.
    pub fn failed(&mut self, peer: IpAddr, now: Instant) -> Duration {
        let forget_after = self.forget_after;
        let count = match self.failures.get(&peer) {
            Some(&(count, last)) if now.saturating_duration_since(last) < forget_after => count + 1,
            _ => 1,
        };
        if !self.failures.contains_key(&peer) && self.failures.len() >= self.capacity {
            self.forget_oldest();
        }
        self.failures.insert(peer, (count, now));
        self.delay(count)
    }

    /// A success from `peer`: its count starts again.
    pub fn succeeded(&mut self, peer: IpAddr) {
        self.failures.remove(&peer);
    }

    /// Failures counted for `peer` (0 if none, or forgotten).
    pub fn failures(&self, peer: IpAddr) -> u32 {
        self.failures.get(&peer).map_or(0, |&(count, _)| count)
    }

    /// The delay the `count`th failure in a row earns.
    fn delay(&self, count: u32) -> Duration {
        if count <= 1 {
            return Duration::ZERO;
        }
        let doublings = (count - 2).min(30);
        self.base.saturating_mul(1 << doublings).min(self.max)
    }

    fn forget_oldest(&mut self) {
        let oldest = self
            .failures
            .iter()
            .min_by_key(|(_, &(_, last))| last)
            .map(|(peer, _)| *peer);
        if let Some(peer) = oldest {
            self.failures.remove(&peer);
        }
    }
}
