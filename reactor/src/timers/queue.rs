//! [`TimerQueue`]: pending timers in [`Slots`], ordered by a hierarchical timing wheel whose
//! buckets are sorted exactly when they come due.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

use super::slots::Slots;
use super::wheel::{Item, Stamp, Wheel};

/// Below this many stale items the queue never compacts: a compaction walks every slot, and
/// a few thousand leftover items of 24 bytes cost less than walking often. The unit tests use
/// a lower one, so that their random runs compact often.
const COMPACT_MIN: usize = if cfg!(test) { 64 } else { 1024 };

/// Names one scheduled timer; stale (every operation a no-op) once it fired or was cancelled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct TimerKey {
    /// The timer's index in the queue's entries.
    pub(super) index: u32,
    /// Tells this timer from later ones that reuse its entry.
    generation: u32,
}

/// A pending timer.
struct Entry<T> {
    /// Matches the [`TimerKey`] that names this timer.
    generation: u32,
    /// The scheduling number of the item that is this entry's live one; older items of the
    /// same entry (left by [`TimerQueue::reschedule`]) are stale.
    seq: u64,
    /// When it is due, exactly as given.
    deadline: Instant,
    /// What the caller gets back when it fires or is cancelled.
    payload: T,
}

/// Pending timers carrying a `T` each, earliest first, ties in scheduling order.
///
/// Each pending timer has one live *item* (its exact deadline stamp, scheduling number and
/// entry index), in one of three places. The [`Wheel`] holds the items due after its current
/// tick, in coarse buckets. The *run* holds the items of the tick the wheel last reached,
/// sorted exactly; the *late* heap holds items filed for a tick the wheel had already
/// reached (deadlines in the past, within the tick being fired, or before the tick that
/// `next_deadline` brought in). Everything in the run and
/// the late heap is due before anything in the wheel, so the earliest timer is the smaller of
/// the run's last item and the heap's top, and the wheel is consulted only when both are
/// empty.
///
/// Cancelling or rescheduling touches only the timer's entry (O(1)): the item left behind is
/// recognised as stale by its scheduling number when it is reached, or dropped by a
/// compaction once stale items are more than twice the pending timers, which keeps memory
/// proportional to them.
///
/// The resolution is that of `Instant` (a nanosecond): [`pop_due`](TimerQueue::pop_due)
/// compares the exact deadlines, and [`next_deadline`](TimerQueue::next_deadline) returns the
/// exact earliest one, so the reactor neither fires early nor sleeps past a deadline. The
/// wheel's ticks (2^20 ns, about a millisecond) only decide which timers get sorted together.
pub(crate) struct TimerQueue<T> {
    /// The pending timers.
    entries: Slots<Entry<T>>,
    /// The instant stamps are measured from: the queue's creation.
    epoch: Instant,
    /// Items due after the current tick.
    wheel: Wheel,
    /// Items due by the current tick, sorted latest first (so the earliest pops off the end).
    run: Vec<Item>,
    /// Items filed after their tick had been reached, earliest on top.
    late: BinaryHeap<Reverse<Item>>,
    /// The earliest live item in the wheel when it was last worked out, if that is still
    /// known to be the earliest (a cancelled or rescheduled one is detected as stale).
    wheel_min: Option<Item>,
    /// Items held (in the run, the late heap or the wheel) whose timer was cancelled or
    /// rescheduled since.
    stale: usize,
    /// The next scheduling number.
    next_seq: u64,
    /// The generation of the next key.
    next_generation: u32,
    /// Compactions so far, for the tests to check that they ran.
    #[cfg(test)]
    pub(super) compactions: usize,
}

impl<T> Default for TimerQueue<T> {
    /// An empty queue whose epoch is now.
    fn default() -> Self {
        let epoch = Instant::now();
        TimerQueue {
            entries: Slots::default(),
            epoch,
            wheel: Wheel::new(Stamp::new(epoch, epoch).tick()),
            run: Vec::new(),
            late: BinaryHeap::new(),
            wheel_min: None,
            stale: 0,
            next_seq: 0,
            next_generation: 0,
            #[cfg(test)]
            compactions: 0,
        }
    }
}

impl<T> TimerQueue<T> {
    /// Schedules `payload` for `deadline`.
    pub(crate) fn schedule(&mut self, deadline: Instant, payload: T) -> TimerKey {
        let seq = self.take_seq();
        let generation = self.next_generation;
        self.next_generation = self.next_generation.wrapping_add(1);
        let index = self.entries.insert(Entry {
            generation,
            seq,
            deadline,
            payload,
        });
        // More than 4 billion pending timers would not fit in memory anyway.
        let index = u32::try_from(index).unwrap_or(u32::MAX);
        self.file(Item::new(Stamp::new(self.epoch, deadline), seq, index));
        TimerKey { index, generation }
    }

    /// Removes a pending timer, returning its payload; `None` if it already fired or was
    /// cancelled.
    pub(crate) fn cancel(&mut self, key: TimerKey) -> Option<T> {
        self.entry(key)?;
        let entry = self.entries.remove(key.index as usize);
        self.note_stale();
        Some(entry.payload)
    }

    /// Moves a pending timer to `deadline`; it then fires after timers already scheduled for
    /// that same instant. False if the timer is no longer pending.
    pub(crate) fn reschedule(&mut self, key: TimerKey, deadline: Instant) -> bool {
        if self.entry(key).is_none() {
            return false;
        }
        let seq = self.take_seq();
        let entry = &mut self.entries[key.index as usize];
        entry.seq = seq;
        entry.deadline = deadline;
        self.file(Item::new(Stamp::new(self.epoch, deadline), seq, key.index));
        self.note_stale();
        true
    }

    /// The deadline of a pending timer.
    pub(crate) fn deadline(&self, key: TimerKey) -> Option<Instant> {
        self.entry(key).map(|e| e.deadline)
    }

    /// Number of pending timers.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// A mark to pass to [`pop_due`](TimerQueue::pop_due): timers scheduled or rescheduled
    /// after it was taken are not popped, so a callback that schedules a timer due at once
    /// cannot keep one pass over the queue going forever (Twisted's `runUntilCurrent` does
    /// the same).
    pub(crate) fn mark(&self) -> u64 {
        self.next_seq
    }

    /// The earliest pending deadline, exactly.
    ///
    /// Takes `&mut self` to move the wheel's next occupied tick into the run when it is at
    /// the lowest level, that is within the 64 ticks (about 67 ms) from where the clock was
    /// last seen: the wheel never runs further ahead of the clock than that, since this has no
    /// `now`, so new timers keep going into the wheel rather than the late heap. For a later
    /// deadline it finds the earliest live item of the wheel's first slot without moving the
    /// wheel, and remembers it until that timer goes.
    pub(crate) fn next_deadline(&mut self) -> Option<Instant> {
        loop {
            if let Some(item) = self.ready_top() {
                return Some(self.entries[item.index as usize].deadline);
            }
            match self.wheel.first()? {
                (0, slot) => self.bring_due(0, slot),
                _ => {
                    return self
                        .wheel_min()
                        .map(|item| self.entries[item.index as usize].deadline)
                }
            }
        }
    }

    /// Removes and returns the earliest timer due at `now` and scheduled before `mark`.
    pub(crate) fn pop_due(&mut self, now: Instant, mark: u64) -> Option<(TimerKey, T)> {
        loop {
            if let Some(item) = self.ready_top() {
                let entry = &self.entries[item.index as usize];
                if entry.deadline > now || item.seq >= mark {
                    return None;
                }
                self.pop_ready();
                let entry = self.entries.remove(item.index as usize);
                self.compact_if_mostly_stale();
                let key = TimerKey {
                    index: item.index,
                    generation: entry.generation,
                };
                return Some((key, entry.payload));
            }
            let now_tick = Stamp::new(self.epoch, now).tick();
            match self.wheel.first() {
                Some((level, slot)) if self.wheel.slot_start(level, slot) <= now_tick => {
                    self.bring_due(level, slot);
                }
                _ => {
                    // Nothing is due yet: keep the wheel level with the clock, so that new
                    // timers are filed relative to now (low levels, few cascades).
                    self.wheel.skip_to(now_tick);
                    return None;
                }
            }
        }
    }

    /// Items held for pending, cancelled and rescheduled timers: at most three per pending
    /// timer plus [`COMPACT_MIN`] (the memory bound the tests check).
    #[cfg(test)]
    pub(crate) fn items_held(&self) -> usize {
        self.run.len() + self.late.len() + self.wheel.len()
    }

    /// The pending entry that `key` names.
    fn entry(&self, key: TimerKey) -> Option<&Entry<T>> {
        self.entries
            .get(key.index as usize)
            .filter(|e| e.generation == key.generation)
    }

    /// A fresh scheduling number.
    fn take_seq(&mut self) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        seq
    }

    /// Files a new item: in the late heap if the wheel already reached its tick, else in the
    /// wheel.
    fn file(&mut self, item: Item) {
        let tick = item.stamp().tick();
        if tick <= self.wheel.cur() {
            self.late.push(Reverse(item));
            return;
        }
        self.wheel.insert(tick, item);
        if self.wheel_min.is_some_and(|min| item < min) {
            self.wheel_min = Some(item);
        }
    }

    /// The earliest live item of the run and the late heap, dropping stale ones found on the
    /// way.
    fn ready_top(&mut self) -> Option<Item> {
        loop {
            let top = match (self.run.last(), self.late.peek()) {
                (Some(&a), Some(&Reverse(b))) => a.min(b),
                (Some(&a), None) => a,
                (None, Some(&Reverse(b))) => b,
                (None, None) => return None,
            };
            if is_live(&self.entries, &top) {
                return Some(top);
            }
            self.pop_ready();
            self.stale -= 1;
        }
    }

    /// Removes the earliest item of the run and the late heap.
    fn pop_ready(&mut self) {
        match (self.run.last(), self.late.peek()) {
            (Some(a), Some(Reverse(b))) if b < a => {
                self.late.pop();
            }
            (Some(_), _) => {
                self.run.pop();
            }
            _ => {
                self.late.pop();
            }
        }
    }

    /// Takes the wheel's earliest slot: cascades it, and if it held items due at its start
    /// (the new current tick), makes them the run, live ones only, sorted. The run and the
    /// late heap must be empty (everything in them is due before the wheel's items).
    fn bring_due(&mut self, level: usize, slot: usize) {
        debug_assert!(self.run.is_empty() && self.late.is_empty());
        self.wheel_min = None;
        // Free the finished run's buffer first: freeing a large block makes glibc consolidate
        // its free lists (the closures freed by the timers just fired), which walks memory
        // that would push out the entries touched below.
        self.run = Vec::new();
        let mut items = self.wheel.take(level, slot);
        let before = items.len();
        // Touching each entry here also brings it into the cache for its pop.
        items.retain(|item| is_live(&self.entries, item));
        self.stale -= before - items.len();
        items.sort_unstable_by(|a, b| b.cmp(a));
        self.run = items;
    }

    /// The earliest live item in the wheel, worked out from its earliest slot (dropping the
    /// stale items there) unless remembered.
    fn wheel_min(&mut self) -> Option<Item> {
        if let Some(min) = self.wheel_min.filter(|min| is_live(&self.entries, min)) {
            return Some(min);
        }
        loop {
            let (level, slot) = self.wheel.first()?;
            let items = self.wheel.slot_mut(level, slot);
            let before = items.len();
            items.retain(|item| is_live(&self.entries, item));
            self.stale -= before - items.len();
            let min = items.iter().min().copied();
            self.wheel.settle(level, slot);
            if min.is_some() {
                self.wheel_min = min;
                return min;
            }
        }
    }

    /// Counts one more stale item (a cancel or a reschedule left one behind).
    fn note_stale(&mut self) {
        self.stale += 1;
        self.compact_if_mostly_stale();
    }

    /// Compacts once stale items are more than twice the pending timers (and more than
    /// [`COMPACT_MIN`]), so the items held stay below three per pending timer. A compaction
    /// costs O(items held), which is O(stale items), and each cancel or reschedule makes only
    /// one: O(1) amortized. Short of that, stale items cost little (24 bytes each, copied
    /// along when their slot cascades, dropped with one look at their entry when it comes
    /// due, the same look a compaction would take), so the bound is about memory only.
    fn compact_if_mostly_stale(&mut self) {
        if self.stale > COMPACT_MIN && self.stale > 2 * self.entries.len() {
            self.compact();
        }
    }

    /// Drops every stale item.
    fn compact(&mut self) {
        #[cfg(test)]
        {
            self.compactions += 1;
        }
        let entries = &self.entries;
        self.run.retain(|item| is_live(entries, item));
        self.late.retain(|Reverse(item)| is_live(entries, item));
        if self.late.capacity() > 4 * self.late.len() {
            self.late.shrink_to_fit();
        }
        for (level, slot) in self.wheel.occupied_slots() {
            self.wheel
                .slot_mut(level, slot)
                .retain(|item| is_live(entries, item));
            self.wheel.settle(level, slot);
        }
        self.stale = 0;
    }
}

/// Whether `item` is its timer's current scheduling.
fn is_live<T>(entries: &Slots<Entry<T>>, item: &Item) -> bool {
    entries
        .get(item.index as usize)
        .is_some_and(|e| e.seq == item.seq)
}
