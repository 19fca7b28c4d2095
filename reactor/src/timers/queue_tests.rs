//! The timer queue's rules, one test each, and a randomized comparison with a sorted list.

use std::time::{Duration, Instant};

use super::queue::{TimerKey, TimerQueue};

/// `n` milliseconds.
fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// One pass at `now`: everything due and scheduled before the pass, in firing order.
fn drain(q: &mut TimerQueue<u32>, now: Instant) -> Vec<u32> {
    let mark = q.mark();
    std::iter::from_fn(|| q.pop_due(now, mark).map(|(_, p)| p)).collect()
}

/// Timers fire in deadline order; equal deadlines in the order they were scheduled.
#[test]
fn fires_in_deadline_order_with_ties_in_scheduling_order() {
    let t0 = Instant::now();
    let mut q = TimerQueue::default();
    q.schedule(t0 + ms(20), 1);
    q.schedule(t0 + ms(10), 2);
    q.schedule(t0 + ms(10), 3);
    assert_eq!(drain(&mut q, t0), Vec::<u32>::new());
    assert_eq!(drain(&mut q, t0 + ms(30)), [2, 3, 1]);
    assert_eq!(q.len(), 0);
}

/// Deadlines a nanosecond apart, within one tick of the wheel, fire in their exact order,
/// and none before its instant.
#[test]
fn deadlines_within_one_tick_fire_exactly_in_order_and_never_early() {
    let t0 = Instant::now() + ms(50);
    let mut q = TimerQueue::default();
    let ns = Duration::from_nanos;
    for (i, d) in [7u64, 3, 5, 3, 0, 999_999].into_iter().enumerate() {
        q.schedule(t0 + ns(d), i as u32);
    }
    assert_eq!(drain(&mut q, t0 - ns(1)), Vec::<u32>::new());
    assert_eq!(drain(&mut q, t0), [4]);
    assert_eq!(q.next_deadline(), Some(t0 + ns(3)));
    assert_eq!(drain(&mut q, t0 + ns(4)), [1, 3]);
    assert_eq!(drain(&mut q, t0 + ns(6)), [2]);
    assert_eq!(drain(&mut q, t0 + ns(999_998)), [0]);
    assert_eq!(q.next_deadline(), Some(t0 + ns(999_999)));
    assert_eq!(drain(&mut q, t0 + ns(999_999)), [5]);
    assert_eq!(q.next_deadline(), None);
}

/// A cancelled timer never fires; its key, and a fired timer's, go stale even when its slab
/// entry is reused.
#[test]
fn cancelled_timers_never_fire_and_their_keys_go_stale() {
    let t0 = Instant::now();
    let mut q = TimerQueue::default();
    let a = q.schedule(t0, 1);
    let b = q.schedule(t0, 2);
    assert_eq!(q.cancel(a), Some(1));
    assert_eq!(q.cancel(a), None);
    assert_eq!(q.deadline(a), None);
    assert!(!q.reschedule(a, t0));
    assert_eq!(drain(&mut q, t0), [2]);
    assert_eq!(q.cancel(b), None, "a fired timer cannot be cancelled");
    assert!(!q.reschedule(b, t0), "nor rescheduled");
    assert_eq!(q.deadline(b), None);
    // The slot is reused by a new timer; the old keys must not reach it.
    let c = q.schedule(t0 + ms(5), 3);
    let d = q.schedule(t0 + ms(5), 4);
    assert!([c.index, d.index].contains(&a.index));
    assert!([c.index, d.index].contains(&b.index));
    assert_eq!(q.cancel(a), None);
    assert_eq!(q.cancel(b), None);
    assert!(!q.reschedule(a, t0));
    assert_eq!(q.deadline(c), Some(t0 + ms(5)));
    assert_eq!(q.deadline(d), Some(t0 + ms(5)));
    assert_eq!(drain(&mut q, t0 + ms(5)), [3, 4]);
}

/// A rescheduled timer fires after the timers already scheduled for its new instant, and
/// its old deadline no longer counts.
#[test]
fn rescheduling_moves_a_timer_behind_ties() {
    let t0 = Instant::now();
    let mut q = TimerQueue::default();
    let a = q.schedule(t0 + ms(5), 1);
    q.schedule(t0 + ms(10), 2);
    assert!(q.reschedule(a, t0 + ms(10)));
    assert_eq!(q.deadline(a), Some(t0 + ms(10)));
    assert_eq!(q.next_deadline(), Some(t0 + ms(10)));
    assert_eq!(drain(&mut q, t0 + ms(7)), Vec::<u32>::new());
    assert_eq!(drain(&mut q, t0 + ms(10)), [2, 1]);
}

/// Rescheduling earlier, later, to the same instant, and again, leaves one firing at the
/// last deadline given.
#[test]
fn a_timer_rescheduled_many_times_fires_once_at_its_last_deadline() {
    let t0 = Instant::now();
    let mut q = TimerQueue::default();
    let a = q.schedule(t0 + ms(100), 1);
    let b = q.schedule(t0 + ms(3), 2);
    for d in [ms(1), ms(5000), ms(3), ms(3), ms(2)] {
        assert!(q.reschedule(a, t0 + d));
    }
    assert!(q.reschedule(b, t0 + ms(2)));
    assert_eq!(q.next_deadline(), Some(t0 + ms(2)));
    assert_eq!(drain(&mut q, t0 + ms(10_000)), [1, 2]);
    assert_eq!(q.len(), 0);
}

/// Timers scheduled after the mark are not popped in that pass, even when due.
#[test]
fn timers_scheduled_after_the_mark_wait_for_the_next_pass() {
    let t0 = Instant::now();
    let mut q = TimerQueue::default();
    q.schedule(t0, 1);
    let mark = q.mark();
    q.schedule(t0, 2);
    assert_eq!(q.pop_due(t0, mark).map(|(_, p)| p), Some(1));
    assert_eq!(q.pop_due(t0, mark).map(|(_, p)| p), None);
    assert_eq!(drain(&mut q, t0), [2]);
}

/// A timer rescheduled after the mark counts as scheduled after it, and holds back the
/// timers after it in that pass (the pass stops at the first timer it may not run).
#[test]
fn timers_rescheduled_after_the_mark_wait_for_the_next_pass() {
    let t0 = Instant::now();
    let mut q = TimerQueue::default();
    let a = q.schedule(t0 + ms(1), 1);
    q.schedule(t0 + ms(2), 2);
    let mark = q.mark();
    assert!(q.reschedule(a, t0));
    assert_eq!(q.pop_due(t0 + ms(5), mark).map(|(_, p)| p), None);
    assert_eq!(drain(&mut q, t0 + ms(5)), [1, 2]);
}

/// A timer scheduled during a pass for an instant among the timers being fired (the wheel
/// has reached its tick) takes its exact place among them.
#[test]
fn a_timer_scheduled_mid_pass_takes_its_place_among_the_due_ones() {
    let t0 = Instant::now() + ms(10);
    let mut q = TimerQueue::default();
    let ns = Duration::from_nanos;
    q.schedule(t0, 1);
    q.schedule(t0 + ns(200), 3);
    q.schedule(t0 + ns(400), 5);
    let now = t0 + ns(500);
    assert_eq!(q.pop_due(now, q.mark()).map(|(_, p)| p), Some(1));
    q.schedule(t0 + ns(100), 2);
    q.schedule(t0 + ns(300), 4);
    q.schedule(t0 - ms(1000), 0);
    assert_eq!(q.next_deadline(), Some(t0 - ms(1000)));
    assert_eq!(drain(&mut q, now), [0, 2, 3, 4, 5]);
}

/// Deadlines in the past, even before the queue existed, are due at once and fire in their
/// exact order.
#[test]
fn past_deadlines_fire_at_once_in_order() {
    let t0 = Instant::now();
    let mut q = TimerQueue::default();
    let day = Duration::from_secs(86_400);
    q.schedule(t0 - ms(1), 1);
    q.schedule(t0 - 3 * day, 2);
    q.schedule(t0 - 3 * day - Duration::from_nanos(1), 3);
    q.schedule(t0, 4);
    assert_eq!(
        q.next_deadline(),
        Some(t0 - 3 * day - Duration::from_nanos(1))
    );
    assert_eq!(drain(&mut q, t0), [3, 2, 1, 4]);
}

/// Deadlines far ahead (a year) wait until their instant, and order with near ones.
#[test]
fn far_deadlines_wait_for_their_instant() {
    let t0 = Instant::now();
    let mut q = TimerQueue::default();
    let year = Duration::from_secs(365 * 86_400);
    let far = q.schedule(t0 + year, 1);
    q.schedule(t0 + year - Duration::from_nanos(1), 2);
    q.schedule(t0 + ms(1), 3);
    assert_eq!(q.next_deadline(), Some(t0 + ms(1)));
    assert_eq!(drain(&mut q, t0 + ms(1)), [3]);
    assert_eq!(q.next_deadline(), Some(t0 + year - Duration::from_nanos(1)));
    assert_eq!(drain(&mut q, t0 + year / 2), Vec::<u32>::new());
    assert_eq!(drain(&mut q, t0 + year - ms(1)), Vec::<u32>::new());
    // A timer scheduled meanwhile for just before them fires first.
    let near = t0 + year - Duration::from_micros(500);
    q.schedule(near, 4);
    q.schedule(t0 + year + ms(1), 5);
    assert_eq!(q.next_deadline(), Some(near));
    assert_eq!(drain(&mut q, t0 + year), [4, 2, 1]);
    assert_eq!(q.cancel(far), None);
    assert_eq!(q.next_deadline(), Some(t0 + year + ms(1)));
    assert_eq!(drain(&mut q, t0 + 2 * year), [5]);
}

/// `next_deadline` is exact at every level of the wheel and follows cancels and reschedules
/// of the earliest timer.
#[test]
fn next_deadline_is_exact_and_follows_changes() {
    let t0 = Instant::now();
    let mut q = TimerQueue::default();
    assert_eq!(q.next_deadline(), None);
    let ns = Duration::from_nanos;
    let offsets = [
        ns(3),
        ms(1) + ns(7),
        ms(70) + ns(1),
        ms(4_500) + ns(11),
        Duration::from_secs(300) + ns(13),
        Duration::from_secs(100_000) + ns(17),
    ];
    let keys: Vec<TimerKey> = offsets
        .iter()
        .enumerate()
        .map(|(i, &d)| q.schedule(t0 + d, i as u32))
        .collect();
    // Cancel the earliest one after another: each time the next is reported exactly.
    for (i, &d) in offsets.iter().enumerate() {
        assert_eq!(q.next_deadline(), Some(t0 + d), "timer {i}");
        assert_eq!(q.next_deadline(), Some(t0 + d), "timer {i}, asked again");
        assert_eq!(q.cancel(keys[i]), Some(i as u32));
    }
    assert_eq!(q.next_deadline(), None);

    // The same after the wheel has moved, with earlier timers arriving and the earliest
    // rescheduled later.
    let now = t0 + ms(2_000);
    assert_eq!(drain(&mut q, now), Vec::<u32>::new());
    let a = q.schedule(now + ms(5_000), 1);
    assert_eq!(q.next_deadline(), Some(now + ms(5_000)));
    let b = q.schedule(now + ms(4_000) + ns(1), 2);
    assert_eq!(q.next_deadline(), Some(now + ms(4_000) + ns(1)));
    assert!(q.reschedule(b, now + ms(6_000)));
    assert_eq!(q.next_deadline(), Some(now + ms(5_000)));
    assert!(q.reschedule(a, now + ms(1)));
    assert_eq!(q.next_deadline(), Some(now + ms(1)));
    assert_eq!(drain(&mut q, now + ms(1)), [1]);
    assert_eq!(q.next_deadline(), Some(now + ms(6_000)));
}

/// Cancelled timers leave no lasting trace: memory follows the pending timers, not the
/// timers ever scheduled.
#[test]
fn memory_stays_proportional_to_live_timers() {
    let t0 = Instant::now();
    let mut q = TimerQueue::default();
    let keep = q.schedule(t0 + ms(1), 0);
    for i in 0..100_000 {
        let k = q.schedule(t0 + ms(i), 1);
        q.cancel(k);
    }
    assert!(
        q.items_held() < 4096,
        "{} items held for 1 live timer",
        q.items_held()
    );
    // Rescheduling leaves items behind too.
    for i in 0..100_000 {
        q.reschedule(keep, t0 + ms(i % 7_000) + ms(1));
    }
    assert!(q.items_held() < 4096, "{} items held", q.items_held());
    assert_eq!(q.cancel(keep), Some(0));
    // And firing most of many timers, while others are cancelled.
    let keys: Vec<TimerKey> = (0..100_000).map(|i| q.schedule(t0 + ms(i), 2)).collect();
    for k in keys.iter().skip(1).step_by(2) {
        q.cancel(*k);
    }
    let mark = q.mark();
    for _ in 0..49_000 {
        assert!(q.pop_due(t0 + ms(200_000), mark).is_some());
    }
    assert!(
        q.items_held() <= 3 * q.len() + 1025,
        "{} items held for {} timers",
        q.items_held(),
        q.len()
    );
    assert_eq!(drain(&mut q, t0 + ms(200_000)).len(), 1000);
    assert_eq!(q.next_deadline(), None);
    assert_eq!(q.len(), 0);
}

/// A small deterministic generator (SplitMix64), so failures reproduce.
struct Rng(u64);

impl Rng {
    /// The next 64 random bits.
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number below `n`.
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// A duration from zero to about a year, log-uniform, often a round or repeated one so
    /// that ties and tick, level and second boundaries come up.
    fn duration(&mut self) -> Duration {
        const ROUND: [u64; 8] = [
            0,
            1,
            1_000_000,
            1 << 20,
            (1 << 20) * 64,
            1_000_000_000,
            (1 << 20) * 4096,
            365 * 86_400 * 1_000_000_000,
        ];
        if self.below(4) == 0 {
            return Duration::from_nanos(ROUND[self.below(8) as usize]);
        }
        let bits = self.below(56);
        Duration::from_nanos(self.below(1 << bits))
    }
}

/// A key from `keys`: half the time one of the 16 newest (most likely still pending), else
/// any (most likely stale).
fn pick(rng: &mut Rng, keys: &[(TimerKey, u32)]) -> (TimerKey, u32) {
    let n = keys.len() as u64;
    let back = if rng.below(2) == 0 {
        rng.below(n.min(16))
    } else {
        rng.below(n)
    };
    keys[(n - 1 - back) as usize]
}

/// What the queue should do, the obvious way: every pending timer in a list, searched for
/// the earliest.
#[derive(Default)]
struct Model {
    /// Pending timers: (deadline, scheduling number, payload).
    pending: Vec<(Instant, u64, u32)>,
    /// The next scheduling number, counted as the queue counts them.
    next_seq: u64,
}

impl Model {
    /// The earliest pending timer's position.
    fn earliest(&self) -> Option<usize> {
        (0..self.pending.len()).min_by_key(|&i| (self.pending[i].0, self.pending[i].1))
    }

    /// The pending timer with this payload.
    fn find(&self, payload: u32) -> Option<usize> {
        self.pending.iter().position(|p| p.2 == payload)
    }

    /// What `pop_due(now, mark)` returns.
    fn pop_due(&mut self, now: Instant, mark: u64) -> Option<u32> {
        let i = self.earliest()?;
        let (deadline, seq, payload) = self.pending[i];
        if deadline > now || seq >= mark {
            return None;
        }
        self.pending.swap_remove(i);
        Some(payload)
    }
}

/// Random schedules, cancels, reschedules (of pending and of stale keys), passes and
/// questions, on the queue and on the model side by side, on a clock that jumps by anything
/// from nothing to a year. Half the seeds mostly reschedule, so that stale items pile up and
/// compactions run in the middle of everything else.
#[test]
fn behaves_like_a_sorted_list_under_random_operations() {
    let mut compactions = 0;
    for seed in 0..12 {
        let mut rng = Rng(seed);
        // How often each operation comes up, in this order: schedule, cancel, reschedule,
        // deadline, next_deadline, advance the clock, pop.
        let weights: [u64; 7] = if seed % 2 == 0 {
            [30, 15, 15, 5, 10, 5, 20]
        } else {
            [5, 5, 70, 3, 4, 2, 11]
        };
        let mut q = TimerQueue::default();
        let mut model = Model::default();
        let start = Instant::now();
        let mut now = start;
        let mut keys: Vec<(TimerKey, u32)> = Vec::new();
        let mut next_payload = 0u32;
        let mut pass: Option<u64> = None;
        for step in 0..15_000 {
            let context = format!("seed {seed}, step {step}");
            let deadline = |rng: &mut Rng, now: Instant| match rng.below(8) {
                0 => start.checked_sub(rng.duration()).unwrap_or(start),
                1 => now.checked_sub(rng.duration()).unwrap_or(now),
                _ => now + rng.duration(),
            };
            let mut roll = rng.below(weights.iter().sum());
            let op = weights
                .iter()
                .position(|&w| {
                    let hit = roll < w;
                    roll = roll.saturating_sub(w);
                    hit
                })
                .unwrap_or(6);
            match op {
                0 => {
                    let d = deadline(&mut rng, now);
                    // Sometimes a deadline already in use, for ties.
                    let d = match model.pending.get(rng.below(64) as usize) {
                        Some(&(same, _, _)) if rng.below(4) == 0 => same,
                        _ => d,
                    };
                    let key = q.schedule(d, next_payload);
                    model.pending.push((d, model.next_seq, next_payload));
                    model.next_seq += 1;
                    keys.push((key, next_payload));
                    next_payload += 1;
                }
                1 if !keys.is_empty() => {
                    let (key, payload) = pick(&mut rng, &keys);
                    let expected = model.find(payload).map(|i| model.pending.swap_remove(i).2);
                    assert_eq!(q.cancel(key), expected, "cancel, {context}");
                }
                2 if !keys.is_empty() => {
                    let (key, payload) = pick(&mut rng, &keys);
                    let d = deadline(&mut rng, now);
                    let expected = match model.find(payload) {
                        Some(i) => {
                            model.pending[i].0 = d;
                            model.pending[i].1 = model.next_seq;
                            model.next_seq += 1;
                            true
                        }
                        None => false,
                    };
                    assert_eq!(q.reschedule(key, d), expected, "reschedule, {context}");
                }
                3 if !keys.is_empty() => {
                    let (key, payload) = pick(&mut rng, &keys);
                    let expected = model.find(payload).map(|i| model.pending[i].0);
                    assert_eq!(q.deadline(key), expected, "deadline, {context}");
                }
                4 => {
                    let expected = model.earliest().map(|i| model.pending[i].0);
                    assert_eq!(q.next_deadline(), expected, "next_deadline, {context}");
                }
                5 => {
                    now += match rng.below(3) {
                        0 => Duration::ZERO,
                        1 => Duration::from_nanos(rng.below(3_000_000)),
                        _ => rng.duration(),
                    };
                    pass = None;
                }
                _ => {
                    // Pop one timer, within a pass (mark) that may span other operations,
                    // as a reactor's callbacks schedule and cancel during its pass.
                    let mark = *pass.get_or_insert_with(|| {
                        assert_eq!(q.mark(), model.next_seq, "mark, {context}");
                        q.mark()
                    });
                    let expected = model.pop_due(now, mark);
                    let popped = q.pop_due(now, mark);
                    assert_eq!(popped.map(|(_, p)| p), expected, "pop_due, {context}");
                    if let Some((key, _)) = popped {
                        assert_eq!(q.deadline(key), None, "fired key, {context}");
                    }
                    if expected.is_none() {
                        pass = None;
                    }
                }
            }
            assert_eq!(q.len(), model.pending.len(), "len, {context}");
            assert!(
                q.items_held() <= 3 * q.len() + 1025,
                "{} items held for {} timers, {context}",
                q.items_held(),
                q.len()
            );
        }
        // Everything left fires, in order, once the clock passes it all.
        let end = now + Duration::from_secs(3 * 365 * 86_400);
        let mark = q.mark();
        let mut expected = Vec::new();
        while let Some(p) = model.pop_due(end, mark) {
            expected.push(p);
        }
        assert_eq!(drain(&mut q, end), expected, "final drain, seed {seed}");
        assert_eq!(q.next_deadline(), None);
        compactions += q.compactions;
    }
    assert!(compactions > 0, "no compaction");
}
