//! The netstring framer.

use torsion_protocols::netstring::{self, NetstringFramer};

use super::{check_stream, events_whole, Target};
use crate::chunking::{feed_all, Plan};
use crate::trace::Trace;

/// The netstring framer.
pub const TARGET: Target = Target {
    name: "netstring",
    about: "NetstringFramer, strings of at most 64 bytes",
    run,
    events: |input| events_whole(|plan, trace| decode(input, plan, trace, None)),
    dictionary: &[b":", b",", b"0:,", b"64:", b"65:", b"99999", b"00"],
};

const MAX: usize = 64;

/// What the framer may keep pending: a string being assembled (the limit and its comma) and
/// the rest of a read a consumer stopped early in; four times that for the consumed bytes its
/// buffer keeps and a vector's doubling (see the line target's bound).
fn bound(piece: usize) -> usize {
    4 * (MAX + 1 + piece) + 64
}

fn run(input: &[u8]) {
    check_stream(
        input,
        |plan| bound(plan.max_piece(input)),
        |plan, trace| decode(input, plan, trace, None),
    );
    let mut strings = Vec::new();
    decode(input, Plan::Whole, &mut Trace::hashed(), Some(&mut strings));
    let mut wire = Vec::new();
    for string in &strings {
        netstring::encode(string, &mut wire);
    }
    let mut again = Vec::new();
    decode(&wire, Plan::Whole, &mut Trace::hashed(), Some(&mut again));
    assert_eq!(again, strings, "re-encoded as \"{}\"", wire.escape_ascii());
}

/// Decodes `input` into `trace`; into `collected` if given, also collects the strings.
fn decode(input: &[u8], plan: Plan, trace: &mut Trace, mut strings: Option<&mut Vec<Vec<u8>>>) {
    let mut framer = NetstringFramer::new().with_max_length(MAX);
    feed_all(input, plan, |bytes, stop| {
        let mut frames = framer.feed(bytes);
        while let Some(frame) = frames.next() {
            match frame {
                Ok(string) => {
                    assert!(string.len() <= MAX, "a string over the limit");
                    trace.event(format_args!("string {}", string.escape_ascii()));
                    if let Some(strings) = strings.as_deref_mut() {
                        strings.push(string.to_vec());
                    }
                }
                Err(error) => {
                    trace.event(format_args!("error {error:?}: {error}"));
                    assert!(frames.next().is_none(), "a string after an error");
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
