//! [`Slots`]: the timer queue's storage, a slab that always reuses its lowest free index.
//!
//! A slab that hands out the most recently freed index (the `slab` crate's free list) scatters
//! a busy queue: timers fire in deadline order, not in the order they were stored, so after a
//! while consecutive schedules land on entries far apart and every schedule and cancel is a
//! cache miss. Taking the lowest free index instead keeps the pending timers packed at the
//! front, in roughly the order they were scheduled, at the price of a small bitmap walk.

/// Bits per bitmap word.
const WORD: usize = 64;

/// Values at stable indices; inserting takes the lowest free index.
pub(super) struct Slots<E> {
    /// The values; `None` where free.
    entries: Vec<Option<E>>,
    /// A tree of bitmaps over the free indices: in `free[0]` bit `i` is set when index `i` is
    /// free; in `free[k]` bit `w` is set when word `w` of `free[k - 1]` has a bit set. The
    /// last level is one word.
    free: Vec<Vec<u64>>,
    /// Indices in use.
    len: usize,
}

impl<E> Default for Slots<E> {
    /// No values, no free indices.
    fn default() -> Self {
        Slots {
            entries: Vec::new(),
            free: vec![vec![0]],
            len: 0,
        }
    }
}

impl<E> Slots<E> {
    /// Indices in use.
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Stores `value` at the lowest free index, and returns that index.
    pub(super) fn insert(&mut self, value: E) -> usize {
        self.len += 1;
        match self.lowest_free() {
            Some(index) => {
                self.entries[index] = Some(value);
                self.mark(index, false);
                index
            }
            None => {
                self.entries.push(Some(value));
                self.grow_bitmaps();
                self.entries.len() - 1
            }
        }
    }

    /// Takes the value at `index` out, freeing the index. Panics if it is free.
    pub(super) fn remove(&mut self, index: usize) -> E {
        let value = self.entries[index]
            .take()
            .expect("removing a free timer slot");
        self.len -= 1;
        self.mark(index, true);
        value
    }

    /// The value at `index`, if it is in use.
    pub(super) fn get(&self, index: usize) -> Option<&E> {
        self.entries.get(index)?.as_ref()
    }

    /// The value at `index`, if it is in use, to change.
    pub(super) fn get_mut(&mut self, index: usize) -> Option<&mut E> {
        self.entries.get_mut(index)?.as_mut()
    }

    /// The lowest free index below `entries.len()`.
    fn lowest_free(&self) -> Option<usize> {
        let mut word = 0;
        for level in self.free.iter().rev() {
            let bits = level[word];
            if bits == 0 {
                return None; // only the top word can be empty on the way down
            }
            word = word * WORD + bits.trailing_zeros() as usize;
        }
        Some(word)
    }

    /// Records index `index` as free or in use, up the levels as far as a word changes
    /// between empty and not.
    fn mark(&mut self, index: usize, free: bool) {
        let mut index = index;
        for level in &mut self.free {
            let word = &mut level[index / WORD];
            let was_empty = *word == 0;
            let bit = 1 << (index % WORD);
            if free {
                *word |= bit;
            } else {
                *word &= !bit;
            }
            if was_empty == (*word == 0) {
                return;
            }
            index /= WORD;
        }
    }

    /// Extends the bitmaps to cover an index just pushed (in use, so its bit is clear),
    /// adding a level when the top one outgrows a word.
    fn grow_bitmaps(&mut self) {
        let mut covered = self.entries.len();
        for level in 0.. {
            let words = covered.div_ceil(WORD).max(1);
            if level == self.free.len() {
                // A new top level summarises the old top, whose first word may have bits.
                let below = &self.free[level - 1];
                let summary = below
                    .iter()
                    .enumerate()
                    .filter(|(_, &bits)| bits != 0)
                    .fold(0u64, |acc, (w, _)| acc | 1 << w);
                self.free.push(vec![summary]);
            }
            let bits = &mut self.free[level];
            if bits.len() < words {
                bits.resize(words, 0);
            }
            if words == 1 {
                return;
            }
            covered = words;
        }
    }
}

impl<E> std::ops::Index<usize> for Slots<E> {
    type Output = E;

    /// The value at `index`; panics if it is free.
    fn index(&self, index: usize) -> &E {
        self.get(index).expect("a free timer slot")
    }
}

impl<E> std::ops::IndexMut<usize> for Slots<E> {
    /// The value at `index`, to change; panics if it is free.
    fn index_mut(&mut self, index: usize) -> &mut E {
        self.get_mut(index).expect("a free timer slot")
    }
}

/// The lowest-free-index rule.
#[cfg(test)]
mod tests {
    use super::*;

    /// Freed indices are reused lowest first, across every level of the bitmap tree.
    #[test]
    fn the_lowest_free_index_is_reused_first() {
        let mut slots = Slots::default();
        let n = 300_000;
        for i in 0..n {
            assert_eq!(slots.insert(i), i);
        }
        assert_eq!(slots.free.len(), 4);
        for i in [299_999, 70_000, 4_100, 65, 64, 3] {
            assert_eq!(slots.remove(i), i);
            assert_eq!(slots.get(i), None);
        }
        assert_eq!(slots.len(), n - 6);
        for expected in [3, 64, 65, 4_100, 70_000, 299_999, 300_000] {
            assert_eq!(slots.insert(0), expected);
        }
        // Free everything in a scrambled order: refilling goes 0, 1, 2, ...
        for k in 0..=n {
            slots.remove(k * 7_919 % (n + 1));
        }
        assert_eq!(slots.len(), 0);
        for i in 0..1000 {
            assert_eq!(slots.insert(i), i);
        }
        assert_eq!(slots[999], 999);
        slots[999] = 5;
        assert_eq!(slots.get_mut(999), Some(&mut 5));
    }
}
