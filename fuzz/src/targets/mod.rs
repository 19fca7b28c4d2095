//! The fuzz targets: one per sans-I/O parser, each a `fn(&[u8])` that panics when an invariant
//! breaks. They use only the parsers' public API, and each names the types it uses once, in
//! its `use` lines, so a renamed type is a one-line change.

use crate::alloc;
use crate::chunking::Plan;
use crate::trace::{first_difference, Trace};

mod dns;
mod form;
mod http;
mod line;
mod netstring;
mod prefixed;
mod websocket;

/// A parser to fuzz.
#[derive(Debug)]
pub struct Target {
    /// Its name on the command line, and its corpus folder's.
    pub name: &'static str,
    /// What it decodes.
    pub about: &'static str,
    /// Runs one input; panics if an invariant breaks.
    pub run: fn(&[u8]),
    /// The events of one input decoded whole, as text (for `replay --events`).
    pub events: fn(&[u8]) -> String,
    /// Tokens the mutator inserts.
    pub dictionary: &'static [&'static [u8]],
}

/// Every target, in the order `run` takes them.
pub const TARGETS: &[Target] = &[
    http::REQUEST,
    http::RESPONSE,
    http::CHUNKED,
    line::TARGET,
    netstring::TARGET,
    prefixed::TARGET,
    dns::TARGET,
    form::TARGET,
    websocket::TARGET,
];

/// The target called `name`.
pub fn find(name: &str) -> Option<&'static Target> {
    TARGETS.iter().find(|t| t.name == name)
}

/// The invariants of a stream decoder: `decode(plan, trace)` decodes `input` cut by `plan`
/// into `trace`. Every plan must give the same trace, and no run may hold more heap than
/// `bound(plan)` bytes at its peak.
pub fn check_stream(
    input: &[u8],
    bound: impl Fn(Plan) -> usize,
    decode: impl Fn(Plan, &mut Trace),
) {
    let mut first: Option<(Plan, u64)> = None;
    for plan in Plan::all(input) {
        let mut trace = Trace::hashed();
        let ((), peak) = alloc::measure(|| decode(plan, &mut trace));
        let bound = bound(plan);
        assert!(
            peak <= bound,
            "decoding {} bytes in {plan:?} reads held {peak} heap bytes at the peak, over the \
             bound of {bound} the limits allow",
            input.len()
        );
        let hash = trace.hash();
        match first {
            None => first = Some((plan, hash)),
            Some((first_plan, first_hash)) if first_hash != hash => {
                let (mut a, mut b) = (Trace::text(), Trace::text());
                decode(first_plan, &mut a);
                decode(plan, &mut b);
                panic!(
                    "the events differ between {first_plan:?} and {plan:?} reads, {}",
                    first_difference(&a.into_text(), &b.into_text())
                );
            }
            Some(_) => {}
        }
    }
}

/// The events of an input decoded whole by `decode`, as text.
pub fn events_whole(decode: impl Fn(Plan, &mut Trace)) -> String {
    let mut trace = Trace::text();
    decode(Plan::Whole, &mut trace);
    trace.into_text()
}

/// Cuts `bytes` into pieces of random sizes chosen from their own hash (to encode a body in
/// several chunks or data calls).
pub fn pieces(bytes: &[u8]) -> Vec<&[u8]> {
    let mut rng = crate::rng::Rng::new(crate::rng::fnv1a(bytes) ^ 0x5eed);
    let mut out = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let (piece, after) = rest.split_at(rng.range(1, rest.len()));
        out.push(piece);
        rest = after;
    }
    out
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::TARGETS;

    /// Every committed seed (and every input saved after a fix) passes every invariant.
    #[test]
    fn every_corpus_file_passes() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
        for target in TARGETS {
            let dir = root.join(target.name);
            let files =
                std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
            let mut count = 0;
            for file in files {
                let path = file.unwrap().path();
                let input = std::fs::read(&path).unwrap();
                let outcome = std::panic::catch_unwind(|| (target.run)(&input));
                assert!(
                    outcome.is_ok(),
                    "{} fails on {}",
                    target.name,
                    path.display()
                );
                count += 1;
            }
            assert!(count > 0, "no seed in {}", dir.display());
        }
    }
}
