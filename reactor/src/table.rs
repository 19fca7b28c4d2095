//! Generation-tagged tables: the slab each part of the reactor keeps its entries in
//! (connections, listeners, UDP sockets, watched descriptors), the [`Key`]s that name an entry,
//! and the mio [`Token`]s that carry a key and the entry's [`Kind`] through the poll.
//!
//! Slab reuses a freed index at once, so an index alone could name a newer entry; the
//! generation makes a stale event, timer or id miss instead (mio #172, #219).

use std::io;

use mio::Token;
use slab::Slab;

#[cfg(not(target_pointer_width = "64"))]
compile_error!(
    "torsion packs a kind, an index and a generation into a mio Token: it needs 64-bit usize"
);

/// Bits of a token's low half that hold the index; the three above it hold the kind.
const INDEX_BITS: u32 = 29;
const INDEX_MASK: usize = (1 << INDEX_BITS) - 1;

/// Which table a token's entry lives in.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(crate) enum Kind {
    Connection = 0,
    Listener = 1,
    Udp = 2,
    Reader = 3,
    /// A child process's pidfd.
    Process = 5,
    /// The reactor's own sources (the waker, the signal pipe): never a table entry.
    Internal = 7,
}

impl Kind {
    fn from_bits(bits: usize) -> Kind {
        match bits {
            0 => Kind::Connection,
            1 => Kind::Listener,
            2 => Kind::Udp,
            3 => Kind::Reader,
            5 => Kind::Process,
            _ => Kind::Internal,
        }
    }
}

/// A table index plus the generation of the entry that held it when the key was made.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(crate) struct Key {
    pub(crate) index: u32,
    pub(crate) generation: u32,
}

impl Key {
    /// A key no table entry ever has: what an attempt that failed before it had an entry
    /// is named by.
    pub(crate) const STALE: Key = Key {
        index: u32::MAX,
        generation: u32::MAX,
    };

    /// The poll token of the entry this key names in the table of `kind`.
    pub(crate) fn token(self, kind: Kind) -> Token {
        Token(
            (self.generation as usize) << 32
                | (kind as usize) << INDEX_BITS
                | self.index as usize & INDEX_MASK,
        )
    }

    /// The kind and key a token carries.
    pub(crate) fn from_token(token: Token) -> (Kind, Key) {
        let low = token.0 & 0xffff_ffff;
        let key = Key {
            index: (low & INDEX_MASK) as u32,
            generation: (token.0 >> 32) as u32,
        };
        (Kind::from_bits(low >> INDEX_BITS), key)
    }
}

/// A token of the reactor's own (`n` small): of kind [`Kind::Internal`], never a table's.
pub(crate) const fn internal_token(n: usize) -> Token {
    Token((Kind::Internal as usize) << INDEX_BITS | n)
}

struct Entry<T> {
    generation: u32,
    value: T,
}

/// Entries named by generation-tagged [`Key`]s: a key whose entry is gone (even if its index
/// was reused since) finds nothing.
pub(crate) struct Table<T> {
    slab: Slab<Entry<T>>,
    next_generation: u32,
}

impl<T> Default for Table<T> {
    fn default() -> Self {
        Table {
            slab: Slab::new(),
            next_generation: 0,
        }
    }
}

impl<T> Table<T> {
    /// The key the next [`insert_at`](Table::insert_at) takes, so a socket can be registered
    /// under its token before its entry exists.
    pub(crate) fn next_key(&self) -> io::Result<Key> {
        let index = self.slab.vacant_key();
        if index > INDEX_MASK {
            return Err(io::Error::other("too many sockets"));
        }
        Ok(Key {
            index: index as u32,
            generation: self.next_generation,
        })
    }

    /// Fills the entry `next_key` named (no other insert in between).
    pub(crate) fn insert_at(&mut self, key: Key, value: T) {
        self.next_generation = self.next_generation.wrapping_add(1);
        let index = self.slab.insert(Entry {
            generation: key.generation,
            value,
        });
        debug_assert_eq!(index, key.index as usize, "next_key names the next insert");
    }

    /// The entry `key` names, unless it is gone.
    #[inline]
    pub(crate) fn get(&self, key: Key) -> Option<&T> {
        match self.slab.get(key.index as usize) {
            Some(entry) if entry.generation == key.generation => Some(&entry.value),
            _ => None,
        }
    }

    /// The entry `key` names, mutably, unless it is gone.
    #[inline]
    pub(crate) fn get_mut(&mut self, key: Key) -> Option<&mut T> {
        match self.slab.get_mut(key.index as usize) {
            Some(entry) if entry.generation == key.generation => Some(&mut entry.value),
            _ => None,
        }
    }

    /// Removes the entry `key` names; `None` if it was gone already.
    pub(crate) fn remove(&mut self, key: Key) -> Option<T> {
        self.get(key)?;
        Some(self.slab.remove(key.index as usize).value)
    }

    /// The keys of every entry, with a view of each (to pick some and act on them after).
    pub(crate) fn iter(&self) -> impl Iterator<Item = (Key, &T)> {
        self.slab.iter().map(|(index, entry)| {
            let key = Key {
                index: index as u32,
                generation: entry.generation,
            };
            (key, &entry.value)
        })
    }

    /// Whether the table has no entry.
    pub(crate) fn is_empty(&self) -> bool {
        self.slab.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_kinds_round_trip_through_tokens() {
        let key = Key {
            index: (1 << INDEX_BITS) - 1,
            generation: u32::MAX - 3,
        };
        for kind in [
            Kind::Connection,
            Kind::Listener,
            Kind::Udp,
            Kind::Reader,
            Kind::Process,
        ] {
            assert_eq!(Key::from_token(key.token(kind)), (kind, key));
        }
        assert_eq!(Key::from_token(internal_token(1)).0, Kind::Internal);
    }

    #[test]
    fn a_stale_key_misses_even_when_its_index_is_reused() {
        let mut table = Table::default();
        let a = table.next_key().unwrap();
        table.insert_at(a, "a");
        assert_eq!(table.remove(a), Some("a"));
        let b = table.next_key().unwrap();
        table.insert_at(b, "b");
        assert_eq!(a.index, b.index);
        assert_eq!(table.get(a), None);
        assert_eq!(table.remove(a), None);
        assert_eq!(table.get(b), Some(&"b"));
    }
}
