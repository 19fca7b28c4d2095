//! How an input is cut into reads. A stream decoder must give the same events whatever the
//! cuts, so every target decodes each input three ways: whole, a byte at a time, and in random
//! pieces with the consumer sometimes stopping between two events (then resuming with an
//! empty feed). The random cuts come from a hash of the input, so replaying a file cuts it the
//! same way.

use crate::rng::{fnv1a, Rng};

/// One way of cutting an input into reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// One read.
    Whole,
    /// A read per byte.
    ByteByByte,
    /// Pieces of 1 to 64 bytes (sometimes up to 256), the consumer stopping after an event
    /// once in eight.
    Random(u64),
}

impl Plan {
    /// The three plans every stream target runs.
    pub fn all(input: &[u8]) -> [Plan; 3] {
        [Plan::Whole, Plan::ByteByByte, Plan::Random(fnv1a(input))]
    }

    /// The largest read this plan makes of an input (a bound on what a decoder may have to
    /// keep when its consumer stops early).
    pub fn max_piece(self, input: &[u8]) -> usize {
        match self {
            Plan::Whole => input.len(),
            Plan::ByteByByte => 1,
            Plan::Random(_) => 256,
        }
    }
}

/// Cuts an input by a [`Plan`], and says when the consumer stops early.
#[derive(Debug)]
pub struct Chunking {
    plan: Plan,
    rng: Rng,
}

impl Chunking {
    /// A cutter for `plan`.
    pub fn new(plan: Plan) -> Chunking {
        let seed = match plan {
            Plan::Random(seed) => seed,
            _ => 0,
        };
        Chunking {
            plan,
            rng: Rng::new(seed),
        }
    }

    /// The next read off the front of `rest`, or `None` once it is empty.
    pub fn next_piece<'a>(&mut self, rest: &mut &'a [u8]) -> Option<&'a [u8]> {
        if rest.is_empty() {
            return None;
        }
        let len = match self.plan {
            Plan::Whole => rest.len(),
            Plan::ByteByByte => 1,
            Plan::Random(_) if self.rng.one_in(8) => self.rng.range(1, 256),
            Plan::Random(_) => self.rng.range(1, 64),
        };
        let (piece, after) = rest.split_at(len.min(rest.len()));
        *rest = after;
        Some(piece)
    }

    /// Whether the consumer stops after the event it just took (never, but in random plans).
    pub fn stop_early(&mut self) -> bool {
        matches!(self.plan, Plan::Random(_)) && self.rng.one_in(8)
    }
}

/// Feeds `input` cut by `plan`: `drain(bytes, stop)` feeds `bytes` and takes events until the
/// cursor runs dry (returning false) or `stop()` says to stop (returning true), in which case
/// it is called again with no bytes, as a consumer resuming would.
pub fn feed_all(
    input: &[u8],
    plan: Plan,
    mut drain: impl FnMut(&[u8], &mut dyn FnMut() -> bool) -> bool,
) {
    let mut chunking = Chunking::new(plan);
    let mut rest = input;
    while let Some(piece) = chunking.next_piece(&mut rest) {
        let mut bytes = piece;
        while drain(bytes, &mut || chunking.stop_early()) {
            bytes = &[];
        }
    }
}
