//! The shape the three framers share (see the [crate docs](crate)), as a trait, so that code
//! written once drives any of them: the `Protocol` adapter in `framed.rs`, and the tests that
//! feed a framer every input in every chunk size.

/// A sans-I/O framer: [`feed`](Framer::feed) returns a cursor over the frames now complete, and
/// [`next`](Framer::next) hands them out one at a time (a lending iterator: each frame borrows
/// the cursor). Bytes the cursor does not reach stay in the framer for the next `feed`.
///
/// Crate-private in effect (it lives in a private module): it names no promise beyond the
/// framers' own inherent methods, which it only forwards to.
#[cfg_attr(
    not(any(feature = "reactor", test)),
    allow(
        dead_code,
        reason = "without the reactor only the tests drive framers through it"
    )
)]
pub trait Framer {
    /// The cursor over the frames of one `feed`.
    type Frames<'s>
    where
        Self: 's;
    /// One item out of the cursor: a frame, or bad framing.
    type Frame<'x>;

    /// The framer's own `feed`.
    fn feed<'s>(&'s mut self, data: &'s [u8]) -> Self::Frames<'s>;

    /// The cursor's own `next`.
    fn next<'x>(frames: &'x mut Self::Frames<'_>) -> Option<Self::Frame<'x>>;
}

/// Checks shared by the framers whose frames are byte strings (netstring, prefixed): the same
/// frames and the same error at the same place, whatever the chunk size, and whether the
/// consumer takes every frame of a chunk or stops after each one (as a paused protocol does).
#[cfg(test)]
pub(crate) mod tests {
    use std::fmt::Debug;

    use super::Framer;

    /// Frames decoded (owned) and the error that ended the stream, if any.
    pub(crate) type Outcome<E> = (Vec<Vec<u8>>, Option<E>);

    /// Feeds `input` in chunks of `size`, taking at most `budget` frames per `feed`, then feeds
    /// nothing until the framer runs dry. `has_failed` says whether the framer reports an error.
    pub(crate) fn run<F, E>(
        mut framer: F,
        has_failed: fn(&F) -> bool,
        input: &[u8],
        size: usize,
        budget: usize,
    ) -> Outcome<E>
    where
        F: for<'x> Framer<Frame<'x> = Result<&'x [u8], E>>,
    {
        let mut frames = Vec::new();
        let mut error = None;
        let mut take = |framer: &mut F, chunk: &[u8]| {
            let mut cursor = framer.feed(chunk);
            let mut taken = 0;
            while taken < budget {
                match F::next(&mut cursor) {
                    Some(Ok(frame)) => frames.push(frame.to_vec()),
                    Some(Err(e)) => {
                        assert!(error.replace(e).is_none(), "an error is reported once")
                    }
                    None => break,
                }
                taken += 1;
            }
            taken
        };
        for chunk in input.chunks(size) {
            take(&mut framer, chunk);
        }
        while take(&mut framer, &[]) > 0 {}
        assert_eq!(has_failed(&framer), error.is_some());
        (frames, error)
    }

    /// [`run`]s `input` in every chunk size from 1 byte up, with budgets of one frame and of
    /// all of them, and asserts each outcome is `frames` then `error`.
    pub(crate) fn check<F, E>(
        make: impl Fn() -> F,
        has_failed: fn(&F) -> bool,
        input: &[u8],
        frames: &[&[u8]],
        error: Option<E>,
    ) where
        F: for<'x> Framer<Frame<'x> = Result<&'x [u8], E>>,
        E: Clone + Debug + PartialEq,
    {
        let frames: Vec<Vec<u8>> = frames.iter().map(|f| f.to_vec()).collect();
        for size in 1..=input.len().max(1) {
            for budget in [1, usize::MAX] {
                let outcome = run(make(), has_failed, input, size, budget);
                assert_eq!(
                    outcome,
                    (frames.clone(), error.clone()),
                    "chunk size {size}, budget {budget}"
                );
            }
        }
    }
}
