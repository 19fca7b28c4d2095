//! The hierarchical timing wheel under [`TimerQueue`](super::TimerQueue): exact deadline
//! stamps, the coarse ticks that place them, and the levels of slots that hold them.
//!
//! The wheel only sorts items into buckets. It never decides the order in which timers fire:
//! the queue sorts each bucket by exact stamp when it comes due, so the tick size below is a
//! performance parameter, not a resolution. Items are plain values (stamp, scheduling number,
//! slab index): filing, cascading and draining a slot copy them through vectors without
//! touching the timers' slab entries, which is what makes the wheel cheaper than a heap whose
//! every pop sifts through memory far larger than the caches.

use std::cmp::Ordering;
use std::time::Instant;

/// Added to the signed whole seconds from the epoch so that stamps before it stay unsigned and
/// keep their order: every offset within ±2^63 s (far beyond what an `Instant` can reach from
/// a running program) maps exactly.
const SECS_BIAS: u64 = 1 << 63;

/// Nanoseconds per tick as a power of two: 2^20 ns, about 1.05 ms. A tick is the width of a
/// level-0 slot: the timers due within one tick are sorted together when it comes due. Finer
/// ticks mean smaller sorts but more levels to cascade through; a millisecond puts deadlines
/// seconds away one cascade from firing.
const TICK_SHIFT: u32 = 20;

/// Bits of the tick number taken by the sub-second part: nanoseconds are below 2^30, so
/// `nanos >> TICK_SHIFT` fits in this many bits. The tick is `seconds << this | nanos >> shift`,
/// monotonic in the stamp (a second's last tick is shorter, and some tick numbers are never
/// used: the wheel needs order, not uniform ticks).
const SUBSEC_TICK_BITS: u32 = 30 - TICK_SHIFT;

/// Whole seconds that the tick number can tell apart; stamps further from the epoch than half
/// of this (2^53 s, 285 million years) share the first or last tick, and are still ordered
/// exactly by their stamps when that tick comes due.
const TICK_SECS_SPAN: u64 = 1 << (64 - SUBSEC_TICK_BITS);

/// Bits of the tick number per level: 64 slots, one `u64` of occupancy bits.
const LEVEL_BITS: u32 = 6;

/// Slots per level.
const SLOTS: usize = 1 << LEVEL_BITS;

/// Levels needed to cover a 64-bit tick number (the last one uses its 4 remaining bits).
const LEVELS: usize = 64_usize.div_ceil(LEVEL_BITS as usize);

/// A deadline as exact whole seconds (biased by [`SECS_BIAS`]) and nanoseconds from the
/// queue's epoch: ordered exactly as the `Instant`s are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Stamp {
    /// Whole seconds since the epoch plus [`SECS_BIAS`] (floored for instants before it).
    secs: u64,
    /// Nanoseconds past `secs`, below 10^9.
    nanos: u32,
}

impl Stamp {
    /// The stamp of `t` measured from `epoch`.
    pub(super) fn new(epoch: Instant, t: Instant) -> Stamp {
        match t.checked_duration_since(epoch) {
            Some(ahead) => Stamp {
                secs: SECS_BIAS.saturating_add(ahead.as_secs()),
                nanos: ahead.subsec_nanos(),
            },
            None => {
                // Before the epoch: floor to the whole second below, nanoseconds counted up
                // from it, so that the pair still orders like the instant.
                let behind = epoch.duration_since(t);
                let (secs, nanos) = match behind.subsec_nanos() {
                    0 => (behind.as_secs(), 0),
                    n => (behind.as_secs().saturating_add(1), 1_000_000_000 - n),
                };
                Stamp {
                    secs: SECS_BIAS.saturating_sub(secs),
                    nanos,
                }
            }
        }
    }

    /// The wheel tick this stamp falls in: non-decreasing in the stamp.
    pub(super) fn tick(self) -> u64 {
        let low = SECS_BIAS - TICK_SECS_SPAN / 2;
        match self.secs.checked_sub(low) {
            None => 0,
            Some(secs) if secs >= TICK_SECS_SPAN => u64::MAX,
            Some(secs) => (secs << SUBSEC_TICK_BITS) | u64::from(self.nanos >> TICK_SHIFT),
        }
    }
}

/// One scheduling of a timer: what the wheel files and the queue sorts. 24 bytes.
#[derive(Clone, Copy, Debug)]
pub(super) struct Item {
    /// Whole seconds of the deadline's [`Stamp`].
    secs: u64,
    /// Unique and increasing: orders equal deadlines by scheduling time, and tells this
    /// scheduling from a later one of the same slab entry (which makes this one stale).
    pub(super) seq: u64,
    /// Nanoseconds of the deadline's [`Stamp`].
    nanos: u32,
    /// The timer's slab index.
    pub(super) index: u32,
}

impl Item {
    /// The item for scheduling `seq` of slab entry `index`, due at `stamp`.
    pub(super) fn new(stamp: Stamp, seq: u64, index: u32) -> Item {
        Item {
            secs: stamp.secs,
            seq,
            nanos: stamp.nanos,
            index,
        }
    }

    /// The deadline's stamp.
    pub(super) fn stamp(&self) -> Stamp {
        Stamp {
            secs: self.secs,
            nanos: self.nanos,
        }
    }
}

impl PartialEq for Item {
    /// Equal when [`Ord`] says so (the same deadline and scheduling number).
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Item {}

impl PartialOrd for Item {
    /// As [`Ord`]: a total order.
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Item {
    /// Earliest deadline first, then first scheduled: the order timers fire in.
    fn cmp(&self, other: &Self) -> Ordering {
        (self.secs, self.nanos, self.seq).cmp(&(other.secs, other.nanos, other.seq))
    }
}

/// Levels of 64 slots. Level `l` slot `s` holds items whose tick agrees with the wheel's
/// current tick above digit `l` (a digit is 6 bits) and has digit `s` at `l`, strictly greater
/// than the current tick's: so every item is later than the current tick, the lowest occupied
/// level holds the earliest items, and within a level the lowest occupied slot does (no slot
/// ever wraps around behind the current one).
pub(super) struct Wheel {
    /// The current tick: every item in the wheel is due at a later tick. Never decreases.
    cur: u64,
    /// Per level, bit `s` set when slot `s` holds items.
    occupied: [u64; LEVELS],
    /// `LEVELS * SLOTS` slots, level-major.
    slots: Box<[Vec<Item>]>,
}

impl Wheel {
    /// An empty wheel standing at tick `cur`.
    pub(super) fn new(cur: u64) -> Wheel {
        Wheel {
            cur,
            occupied: [0; LEVELS],
            slots: std::iter::repeat_with(Vec::new)
                .take(LEVELS * SLOTS)
                .collect(),
        }
    }

    /// The current tick.
    pub(super) fn cur(&self) -> u64 {
        self.cur
    }

    /// Files `item`, due at `tick`, which must be after the current tick.
    pub(super) fn insert(&mut self, tick: u64, item: Item) {
        debug_assert!(tick > self.cur);
        let level = level_for(self.cur, tick);
        let slot = digit(tick, level);
        self.slots[level * SLOTS + slot].push(item);
        self.occupied[level] |= 1 << slot;
    }

    /// The slot holding the earliest items: `(level, slot)`.
    pub(super) fn first(&self) -> Option<(usize, usize)> {
        let level = self.occupied.iter().position(|&bits| bits != 0)?;
        Some((level, self.occupied[level].trailing_zeros() as usize))
    }

    /// The first tick that slot `slot` of level `level` covers.
    pub(super) fn slot_start(&self, level: usize, slot: usize) -> u64 {
        let shift = level as u32 * LEVEL_BITS;
        let above = self
            .cur
            .checked_shr(shift + LEVEL_BITS)
            .and_then(|high| high.checked_shl(shift + LEVEL_BITS))
            .unwrap_or(0);
        above | ((slot as u64) << shift)
    }

    /// Moves the current tick forward to `tick` without taking anything out: only allowed
    /// while no item is due at or before `tick` (then every item keeps the placement rule).
    pub(super) fn skip_to(&mut self, tick: u64) {
        debug_assert!(self
            .first()
            .is_none_or(|(level, slot)| self.slot_start(level, slot) > tick));
        self.cur = self.cur.max(tick);
    }

    /// Empties slot `slot` of level `level`, which must be [`first`](Wheel::first), and moves
    /// the current tick to its start. Items due later than that are filed again (at lower
    /// levels); those due at the new current tick are returned, in no particular order.
    pub(super) fn take(&mut self, level: usize, slot: usize) -> Vec<Item> {
        debug_assert_eq!(self.first(), Some((level, slot)));
        self.cur = self.slot_start(level, slot);
        self.occupied[level] &= !(1 << slot);
        let mut items = std::mem::take(&mut self.slots[level * SLOTS + slot]);
        if level > 0 {
            // Cascading copies items without looking at their timers: a cancelled timer's
            // stale item goes down with the rest and is dropped at the last level.
            items.retain(|item| {
                let tick = item.stamp().tick();
                if tick == self.cur {
                    return true;
                }
                let level = level_for(self.cur, tick);
                let slot = digit(tick, level);
                self.slots[level * SLOTS + slot].push(*item);
                self.occupied[level] |= 1 << slot;
                false
            });
        }
        items
    }

    /// The items of slot `slot` at level `level`, to drop stale ones in place. Call
    /// [`settle`](Wheel::settle) after changing them.
    pub(super) fn slot_mut(&mut self, level: usize, slot: usize) -> &mut Vec<Item> {
        &mut self.slots[level * SLOTS + slot]
    }

    /// Updates a slot's occupancy after its items were changed through
    /// [`slot_mut`](Wheel::slot_mut), and gives back the memory of a slot emptied or mostly
    /// emptied by dropping stale items.
    pub(super) fn settle(&mut self, level: usize, slot: usize) {
        let items = &mut self.slots[level * SLOTS + slot];
        if items.is_empty() {
            *items = Vec::new();
            self.occupied[level] &= !(1 << slot);
        } else if items.capacity() > 4 * items.len() {
            items.shrink_to_fit();
        }
    }

    /// Every occupied `(level, slot)`.
    pub(super) fn occupied_slots(&self) -> Vec<(usize, usize)> {
        let mut found = Vec::new();
        for (level, &bits) in self.occupied.iter().enumerate() {
            let mut bits = bits;
            while bits != 0 {
                found.push((level, bits.trailing_zeros() as usize));
                bits &= bits - 1;
            }
        }
        found
    }

    /// Items held, live or stale.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.slots.iter().map(Vec::len).sum()
    }
}

/// The level for an item due at `tick` when the wheel stands at `cur` (`tick > cur`): the
/// digit of the highest bit in which they differ.
fn level_for(cur: u64, tick: u64) -> usize {
    let highest = 63 - (cur ^ tick).leading_zeros();
    (highest / LEVEL_BITS) as usize
}

/// Digit `level` of `tick`: its slot at that level.
fn digit(tick: u64, level: usize) -> usize {
    ((tick >> (level as u32 * LEVEL_BITS)) & (SLOTS as u64 - 1)) as usize
}

/// Stamps, ticks and the wheel's placement rule.
#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Stamps order exactly as instants do, around and far from the epoch, and ticks never
    /// go backwards.
    #[test]
    fn stamps_and_ticks_order_like_the_instants() {
        let epoch = Instant::now() + Duration::from_secs(1000);
        let offsets = [
            Duration::ZERO,
            Duration::from_nanos(1),
            Duration::from_nanos(999_999_999),
            Duration::from_secs(1),
            Duration::from_millis(1500),
            Duration::from_secs(365 * 86_400),
        ];
        let mut instants = vec![epoch];
        for d in offsets {
            instants.push(epoch + d);
            instants.push(epoch - d);
        }
        instants.sort();
        for pair in instants.windows(2) {
            let (a, b) = (Stamp::new(epoch, pair[0]), Stamp::new(epoch, pair[1]));
            assert_eq!(a.cmp(&b), pair[0].cmp(&pair[1]), "{pair:?}");
            assert!(a.tick() <= b.tick());
        }
        // Ticks are about a millisecond apart.
        let t = Stamp::new(epoch, epoch).tick();
        assert_eq!(
            Stamp::new(epoch, epoch + Duration::from_millis(2)).tick(),
            t + 1
        );
        assert_eq!(
            Stamp::new(epoch, epoch + Duration::from_secs(1)).tick(),
            t + 1024
        );
    }

    /// Stamps beyond what a tick can tell apart share the first or last tick, and still
    /// order exactly.
    #[test]
    fn extreme_stamps_clamp_their_ticks_but_keep_their_order() {
        let huge = Stamp {
            secs: u64::MAX - 1,
            nanos: 0,
        };
        let tiny = Stamp { secs: 1, nanos: 0 };
        assert_eq!(huge.tick(), u64::MAX);
        assert_eq!(tiny.tick(), 0);
        assert!(tiny < huge);
    }

    /// Items filed at every level come back, slot by slot, in tick order, each when the
    /// wheel stands at its tick.
    #[test]
    fn cascading_returns_items_in_tick_order() {
        let mut wheel = Wheel::new(100);
        let item = |tick: u64, seq| Item {
            secs: SECS_BIAS - TICK_SECS_SPAN / 2 + (tick >> SUBSEC_TICK_BITS),
            seq,
            nanos: ((tick & ((1 << SUBSEC_TICK_BITS) - 1)) << TICK_SHIFT) as u32,
            index: seq as u32,
        };
        let ticks = [101, 163, 164, 5000, 5000, 1 << 40, u64::MAX];
        for (seq, &tick) in ticks.iter().enumerate().rev() {
            assert_eq!(item(tick, seq as u64).stamp().tick(), tick);
            wheel.insert(tick, item(tick, seq as u64));
        }
        let mut seen = Vec::new();
        while let Some((level, slot)) = wheel.first() {
            let start = wheel.slot_start(level, slot);
            assert!(start > 100);
            for item in wheel.take(level, slot) {
                assert_eq!(item.stamp().tick(), wheel.cur());
                seen.push(wheel.cur());
            }
        }
        assert_eq!(seen, ticks);
        assert_eq!(wheel.len(), 0);
    }
}
