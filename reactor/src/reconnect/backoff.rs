//! The reconnect policy: exponential backoff with jitter, a cap, a retry limit. Pure: no
//! reactor, no clock; the randomness comes from a seeded generator, so a test can fix it.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Twisted's `initialDelay`: the first retry waits about a second.
pub const DEFAULT_INITIAL_DELAY: Duration = Duration::from_secs(1);

/// Twisted's `maxDelay`: however long the peer stays away, try at least once an hour.
pub const DEFAULT_MAX_DELAY: Duration = Duration::from_secs(3600);

/// Twisted's `factor`, *e*: each retry waits about 2.7 times as long as the one before.
pub const DEFAULT_FACTOR: f64 = std::f64::consts::E;

/// Twisted's `jitter` (a physical constant, chosen only for being about 12%): each delay is
/// moved at random by up to this fraction of itself.
pub const DEFAULT_JITTER: f64 = 0.119_626_565_582;

/// How long to wait before each retry of a failed connection: a delay that starts at
/// `initial_delay`, grows by `factor` per consecutive failure up to `max_delay`, randomised by
/// `jitter`, for at most `max_retries` retries (Twisted's `ReconnectingClientFactory`
/// parameters, with its defaults).
///
/// Retry `n` (1 for the first retry after a failure) waits
/// `min(initial_delay × factor^(n-1), max_delay)`, then multiplied by a factor drawn
/// uniformly from `[1 - jitter, 1 + jitter)` and capped at `max_delay` again, so no delay
/// ever exceeds `max_delay`. Two departures from Twisted, both deliberate: the first retry
/// waits `initial_delay` (Twisted's waits `initial_delay × factor`), and the jitter is
/// uniform and applied to the computed delay each time (Twisted draws from a normal
/// distribution and keeps the jittered value, so its delays drift and are unbounded).
///
/// ```
/// use std::time::Duration;
/// use torsion_reactor::Backoff;
///
/// let backoff = Backoff::default()
///     .with_initial_delay(Duration::from_millis(100))
///     .with_factor(2.0)
///     .with_max_delay(Duration::from_secs(1))
///     .with_max_retries(Some(10));
/// assert_eq!(backoff.delay(1), Duration::from_millis(100));
/// assert_eq!(backoff.delay(3), Duration::from_millis(400));
/// assert_eq!(backoff.delay(5), Duration::from_secs(1)); // capped: 1.6 s > max
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    initial_delay: Duration,
    factor: f64,
    max_delay: Duration,
    jitter: f64,
    max_retries: Option<u32>,
}

impl Default for Backoff {
    /// Twisted's defaults: 1 s, times *e* per failure, at most an hour, ±12% jitter,
    /// retrying forever.
    fn default() -> Self {
        Backoff {
            initial_delay: DEFAULT_INITIAL_DELAY,
            factor: DEFAULT_FACTOR,
            max_delay: DEFAULT_MAX_DELAY,
            jitter: DEFAULT_JITTER,
            max_retries: None,
        }
    }
}

impl Backoff {
    /// The delay before the first retry after a failure (before jitter).
    pub fn with_initial_delay(mut self, delay: Duration) -> Self {
        self.initial_delay = delay;
        self
    }

    /// How much each consecutive failure multiplies the delay by. Values below 1 (and NaN)
    /// count as 1: a delay never shrinks while failures go on.
    pub fn with_factor(mut self, factor: f64) -> Self {
        self.factor = if factor >= 1.0 { factor } else { 1.0 };
        self
    }

    /// The longest any delay can be, jitter included.
    pub fn with_max_delay(mut self, delay: Duration) -> Self {
        self.max_delay = delay;
        self
    }

    /// The fraction by which each delay is randomised, so that many clients that lost the
    /// same server do not all come back at the same instant. Clamped to `0.0..=1.0` (NaN
    /// counts as 0); 0 makes the delays exact.
    pub fn with_jitter(mut self, jitter: f64) -> Self {
        self.jitter = if jitter > 0.0 { jitter.min(1.0) } else { 0.0 };
        self
    }

    /// How many consecutive retries to make before giving up (`None`: never give up). With
    /// `Some(0)` the first failure is final; with `Some(3)`, four attempts in a row fail
    /// before giving up. A success starts the count again.
    pub fn with_max_retries(mut self, max_retries: Option<u32>) -> Self {
        self.max_retries = max_retries;
        self
    }

    /// The delay before the first retry, before jitter.
    pub fn initial_delay(&self) -> Duration {
        self.initial_delay
    }

    /// The growth factor per consecutive failure (at least 1).
    pub fn factor(&self) -> f64 {
        self.factor
    }

    /// The cap on every delay.
    pub fn max_delay(&self) -> Duration {
        self.max_delay
    }

    /// The jitter fraction, in `0.0..=1.0`.
    pub fn jitter(&self) -> f64 {
        self.jitter
    }

    /// The retry limit, if any.
    pub fn max_retries(&self) -> Option<u32> {
        self.max_retries
    }

    /// The delay before retry number `retry` (1 is the first retry after a failure), before
    /// jitter: `min(initial_delay × factor^(retry-1), max_delay)`. Retry 0 is the first
    /// attempt, which does not wait.
    pub fn delay(&self, retry: u32) -> Duration {
        if retry == 0 {
            return Duration::ZERO;
        }
        let exponent = i32::try_from(retry - 1).unwrap_or(i32::MAX);
        let secs = self.initial_delay.as_secs_f64() * self.factor.powi(exponent);
        self.capped(secs)
    }

    /// `delay` randomised by the jitter: multiplied by `1 + jitter × (2·unit − 1)`, where
    /// `unit` is a number in `[0, 1)` (drawn at random by [`BackoffState`]), then capped at
    /// `max_delay`.
    pub fn jittered(&self, delay: Duration, unit: f64) -> Duration {
        let unit = if unit.is_nan() {
            0.5
        } else {
            unit.clamp(0.0, 1.0)
        };
        let spread = self.jitter * (2.0 * unit - 1.0);
        self.capped(delay.as_secs_f64() * (1.0 + spread))
    }

    /// Whether retry number `retry` is past the limit.
    pub fn gives_up_at(&self, retry: u32) -> bool {
        self.max_retries.is_some_and(|max| retry > max)
    }

    /// `secs` as a duration, at most `max_delay`: a factor that overflows to infinity (after
    /// a few hundred retries) is simply the cap.
    fn capped(&self, secs: f64) -> Duration {
        if secs < self.max_delay.as_secs_f64() {
            Duration::try_from_secs_f64(secs).unwrap_or(Duration::ZERO)
        } else {
            self.max_delay
        }
    }
}

/// A [`Backoff`] in use: the count of consecutive retries and the random generator for the
/// jitter. [`next_delay`](BackoffState::next_delay) after each failure,
/// [`reset`](BackoffState::reset) after a success. Usable on its own, for anything retried.
///
/// The jitter comes from a small xorshift generator (no cryptographic quality needed, and no
/// dependency): seeded at random by [`new`](BackoffState::new) (std's per-process random
/// hash keys mixed with the time), or fixed by [`with_seed`](BackoffState::with_seed) for a
/// reproducible sequence in tests.
///
/// ```
/// use std::time::Duration;
/// use torsion_reactor::{Backoff, BackoffState};
///
/// let policy = Backoff::default().with_jitter(0.0).with_factor(2.0).with_max_retries(Some(2));
/// let mut state = BackoffState::new(policy);
/// assert_eq!(state.next_delay(), Some(Duration::from_secs(1)));
/// assert_eq!(state.next_delay(), Some(Duration::from_secs(2)));
/// assert_eq!(state.next_delay(), None); // a third retry would pass the limit: give up
/// state.reset(); // connected: start over
/// assert_eq!(state.next_delay(), Some(Duration::from_secs(1)));
/// ```
#[derive(Debug, Clone)]
pub struct BackoffState {
    policy: Backoff,
    retries: u32,
    last_delay: Option<Duration>,
    rng: XorShift,
}

impl BackoffState {
    /// A fresh state (no retries yet) with a random seed.
    pub fn new(policy: Backoff) -> Self {
        BackoffState::with_seed(policy, random_seed())
    }

    /// A fresh state whose jitter sequence is fixed by `seed`.
    pub fn with_seed(policy: Backoff, seed: u64) -> Self {
        BackoffState {
            policy,
            retries: 0,
            last_delay: None,
            rng: XorShift::new(seed),
        }
    }

    /// Counts a failure and returns how long to wait before retrying, or `None` once the
    /// retries passed `max_retries` (and on every call after that, until a reset).
    pub fn next_delay(&mut self) -> Option<Duration> {
        self.retries = self.retries.saturating_add(1);
        if self.policy.gives_up_at(self.retries) {
            self.last_delay = None;
            return None;
        }
        let delay = self.policy.delay(self.retries);
        let delay = self.policy.jittered(delay, self.rng.next_unit());
        self.last_delay = Some(delay);
        Some(delay)
    }

    /// A success: the next failure waits `initial_delay` again and the retry count restarts.
    pub fn reset(&mut self) {
        self.retries = 0;
        self.last_delay = None;
    }

    /// Consecutive failures counted since the last reset.
    pub fn retries(&self) -> u32 {
        self.retries
    }

    /// The delay the last [`next_delay`](BackoffState::next_delay) returned; `None` before
    /// any, after a reset, or once it gave up.
    pub fn last_delay(&self) -> Option<Duration> {
        self.last_delay
    }

    /// The policy.
    pub fn policy(&self) -> &Backoff {
        &self.policy
    }
}

/// Marsaglia's xorshift64* generator: plenty for spreading delays.
#[derive(Debug, Clone)]
struct XorShift(u64);

impl XorShift {
    fn new(seed: u64) -> Self {
        // SplitMix64's finaliser spreads nearby seeds apart; xorshift must not start at 0.
        let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        XorShift(if z == 0 { 0x2545_f491_4f6c_dd1d } else { z })
    }

    fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `[0, 1)`, from the top 53 bits (an f64's precision).
    fn next_unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// A seed that differs between processes and between calls: std seeds each `RandomState`
/// from the operating system's randomness (then steps it per call), and the time adds more.
fn random_seed() -> u64 {
    let mut hasher = RandomState::new().build_hasher();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    hasher.write_u128(now);
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(n: f64) -> Duration {
        Duration::from_secs_f64(n)
    }

    fn exact(factor: f64) -> Backoff {
        Backoff::default().with_jitter(0.0).with_factor(factor)
    }

    #[test]
    fn defaults_are_twisteds() {
        let b = Backoff::default();
        assert_eq!(b.initial_delay(), secs(1.0));
        assert_eq!(b.factor(), std::f64::consts::E);
        assert_eq!(b.max_delay(), secs(3600.0));
        assert!((b.jitter() - 0.1196).abs() < 1e-4);
        assert_eq!(b.max_retries(), None);
    }

    #[test]
    fn delays_grow_by_the_factor_from_the_initial_delay() {
        let mut state = BackoffState::with_seed(exact(2.0), 1);
        let delays: Vec<_> = (0..5).map(|_| state.next_delay().unwrap()).collect();
        let expected: Vec<_> = [1.0, 2.0, 4.0, 8.0, 16.0].map(secs).into();
        assert_eq!(delays, expected);
        assert_eq!(state.retries(), 5);
        assert_eq!(state.last_delay(), Some(secs(16.0)));
    }

    #[test]
    fn delays_stop_growing_at_the_max_delay_even_when_the_factor_overflows() {
        let policy = exact(10.0).with_max_delay(secs(30.0));
        assert_eq!(policy.delay(2), secs(10.0));
        assert_eq!(policy.delay(3), secs(30.0));
        assert_eq!(policy.delay(1000), secs(30.0), "10^999 is infinite in f64");
        assert_eq!(policy.delay(u32::MAX), secs(30.0));
        let huge = exact(1e300).with_max_delay(secs(5.0));
        assert_eq!(huge.delay(3), secs(5.0));
    }

    #[test]
    fn an_initial_delay_above_the_max_is_capped() {
        let policy = exact(2.0)
            .with_initial_delay(secs(10.0))
            .with_max_delay(secs(3.0));
        assert_eq!(policy.delay(1), secs(3.0));
    }

    #[test]
    fn jitter_stays_within_its_fraction_and_under_the_cap() {
        let policy = Backoff::default()
            .with_factor(2.0)
            .with_jitter(0.25)
            .with_max_delay(secs(100.0));
        let mut state = BackoffState::with_seed(policy, 42);
        let mut spread = (f64::MAX, f64::MIN);
        for _ in 0..1000 {
            state.reset();
            let first = state.next_delay().unwrap().as_secs_f64();
            assert!((0.75..1.25).contains(&first), "{first}");
            spread = (spread.0.min(first), spread.1.max(first));
        }
        assert!(
            spread.0 < 0.8 && spread.1 > 1.2,
            "the jitter is used: {spread:?}"
        );
        for _ in 0..20 {
            let d = state.next_delay().unwrap();
            assert!(d <= secs(100.0), "{d:?} above the cap");
        }
        assert!(
            state.last_delay().unwrap() >= secs(75.0),
            "at the cap: 75..100 s"
        );
    }

    #[test]
    fn the_same_seed_gives_the_same_delays_and_different_seeds_differ() {
        let run = |seed| {
            let mut state = BackoffState::with_seed(Backoff::default(), seed);
            (0..5)
                .map(|_| state.next_delay().unwrap())
                .collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
        let mut a = BackoffState::new(Backoff::default());
        let mut b = BackoffState::new(Backoff::default());
        assert_ne!(a.next_delay(), b.next_delay(), "random seeds differ");
    }

    #[test]
    fn a_reset_starts_again_from_the_initial_delay() {
        let mut state = BackoffState::with_seed(exact(3.0), 1);
        state.next_delay();
        state.next_delay();
        assert_eq!(state.retries(), 2);
        state.reset();
        assert_eq!(state.retries(), 0);
        assert_eq!(state.last_delay(), None);
        assert_eq!(state.next_delay(), Some(secs(1.0)));
    }

    #[test]
    fn max_retries_gives_up_after_that_many_retries_until_reset() {
        let mut state = BackoffState::with_seed(exact(2.0).with_max_retries(Some(3)), 1);
        assert!(state.next_delay().is_some());
        assert!(state.next_delay().is_some());
        assert!(state.next_delay().is_some());
        assert_eq!(state.next_delay(), None);
        assert_eq!(state.next_delay(), None);
        assert_eq!(state.last_delay(), None);
        state.reset();
        assert_eq!(state.next_delay(), Some(secs(1.0)));

        let mut never = BackoffState::with_seed(exact(2.0).with_max_retries(Some(0)), 1);
        assert_eq!(
            never.next_delay(),
            None,
            "Some(0): the first failure is final"
        );
    }

    #[test]
    fn out_of_range_settings_are_clamped() {
        let b = Backoff::default().with_factor(0.5).with_jitter(f64::NAN);
        assert_eq!((b.factor(), b.jitter()), (1.0, 0.0));
        assert_eq!(b.with_factor(f64::NAN).factor(), 1.0);
        assert_eq!(b.with_jitter(7.0).jitter(), 1.0);
        assert_eq!(b.with_jitter(-1.0).jitter(), 0.0);
        // Full jitter may reach zero but never goes negative.
        let full = b.with_jitter(1.0);
        assert_eq!(full.jittered(secs(2.0), 0.0), Duration::ZERO);
        assert_eq!(full.jittered(secs(2.0), 0.5), secs(2.0));
        assert_eq!(b.delay(0), Duration::ZERO);
    }
}
