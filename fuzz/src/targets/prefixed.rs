//! The length-prefixed framer, with each prefix size.

use torsion_protocols::prefixed::{Prefix, PrefixedFramer};

use super::{check_stream, events_whole, Target};
use crate::chunking::{feed_all, Plan};
use crate::trace::Trace;

/// The length-prefixed framer.
pub const TARGET: Target = Target {
    name: "prefixed",
    about: "PrefixedFramer with 1-, 2- and 4-byte prefixes, frames of at most 64 bytes",
    run,
    events: |input| {
        let mut out = String::new();
        for prefix in PREFIXES {
            out += &format!("-- {prefix:?}\n");
            out += &events_whole(|plan, trace| decode(input, prefix, plan, trace, None));
        }
        out
    },
    dictionary: &[
        b"\x00",
        b"\xff",
        b"\x00\x00",
        b"\x00\x40",
        b"\x00\x41",
        b"\x00\x00\x00\x05",
    ],
};

const PREFIXES: [Prefix; 3] = [Prefix::U8, Prefix::U16, Prefix::U32];
const MAX: usize = 64;

/// What the framer may keep pending: a frame being assembled (its prefix and the limit) and
/// the rest of a read a consumer stopped early in; four times that for the consumed bytes its
/// buffer keeps and a vector's doubling (see the line target's bound).
fn bound(piece: usize) -> usize {
    4 * (MAX + 4 + piece) + 64
}

fn run(input: &[u8]) {
    for prefix in PREFIXES {
        check_stream(
            input,
            |plan| bound(plan.max_piece(input)),
            |plan, trace| decode(input, prefix, plan, trace, None),
        );
        let mut frames = Vec::new();
        decode(
            input,
            prefix,
            Plan::Whole,
            &mut Trace::hashed(),
            Some(&mut frames),
        );
        let mut wire = Vec::new();
        for frame in &frames {
            prefix
                .encode(frame, &mut wire)
                .expect("a frame within the limit");
        }
        let mut again = Vec::new();
        decode(
            &wire,
            prefix,
            Plan::Whole,
            &mut Trace::hashed(),
            Some(&mut again),
        );
        assert_eq!(
            again,
            frames,
            "re-encoded as \"{}\" with {prefix:?}",
            wire.escape_ascii()
        );
    }
}

/// Decodes `input` into `trace`; into `collected` if given, also collects the frames.
fn decode(
    input: &[u8],
    prefix: Prefix,
    plan: Plan,
    trace: &mut Trace,
    mut frames: Option<&mut Vec<Vec<u8>>>,
) {
    let mut framer = PrefixedFramer::new(prefix).with_max_frame_length(MAX);
    feed_all(input, plan, |bytes, stop| {
        let mut cursor = framer.feed(bytes);
        while let Some(frame) = cursor.next() {
            match frame {
                Ok(frame) => {
                    assert!(frame.len() <= MAX, "a frame over the limit");
                    trace.event(format_args!("frame {}", frame.escape_ascii()));
                    if let Some(frames) = frames.as_deref_mut() {
                        frames.push(frame.to_vec());
                    }
                }
                Err(error) => {
                    trace.event(format_args!("error {error:?}: {error}"));
                    assert!(cursor.next().is_none(), "a frame after an error");
                }
            }
            if stop() {
                return true;
            }
        }
        false
    });
    trace.event(format_args!("failed={}", framer.has_failed()));
}
