//! Edge coverage on stable Rust, from LLVM's SanitizerCoverage pass.
//!
//! Built with `-C passes=sancov-module -C llvm-args=-sanitizer-coverage-level=3
//! -C llvm-args=-sanitizer-coverage-inline-8bit-counters` (what `fuzz/run` passes), every edge
//! of the instrumented code increments a byte counter, and a constructor hands each module's
//! counter array to [`__sanitizer_cov_8bit_counters_init`] before `main`. The driver zeroes
//! the counters before a run and reads them after, as libFuzzer does. Built without those
//! flags (plain `cargo build`, `cargo test`) no array is registered: there is no coverage and
//! the driver mutates its seeds blindly.
#![allow(
    unsafe_code,
    reason = "the coverage pass calls an unmangled C function, and its counters are raw memory"
)]

use std::sync::Mutex;

/// The counter arrays registered: (start, length) of each, distinct.
static REGIONS: Mutex<Vec<(usize, usize)>> = Mutex::new(Vec::new());

/// Called by the constructor the coverage pass adds to each instrumented module, with the
/// bounds of its counter array (the linker merges them, so most calls repeat one range).
#[unsafe(no_mangle)]
pub extern "C" fn __sanitizer_cov_8bit_counters_init(start: *mut u8, stop: *mut u8) {
    let region = (
        start as usize,
        (stop as usize).saturating_sub(start as usize),
    );
    let mut regions = REGIONS.lock().unwrap_or_else(|e| e.into_inner());
    if region.1 > 0 && !regions.contains(&region) {
        regions.push(region);
    }
}

/// The counters of one run, and every (edge, hit-count bucket) pair seen in earlier runs.
#[derive(Debug)]
pub struct Coverage {
    regions: Vec<(usize, usize)>,
    /// Per counter, one bit per bucket of hit counts already seen (AFL's buckets: 1, 2, 3,
    /// 4-7, 8-15, 16-31, 32-127, 128+).
    seen: Vec<u8>,
}

impl Coverage {
    /// The counters registered at start-up (none in a build without the coverage pass).
    pub fn new() -> Coverage {
        let regions = REGIONS.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let total = regions.iter().map(|r| r.1).sum();
        Coverage {
            regions,
            seen: vec![0; total],
        }
    }

    /// Whether the binary was built with the coverage pass.
    pub fn is_on(&self) -> bool {
        !self.seen.is_empty()
    }

    /// Zeroes the counters, before a run.
    pub fn reset(&self) {
        for &(start, len) in &self.regions {
            // SAFETY: (start, len) is an array of counters the coverage pass placed in the
            // binary's data, alive for the whole program; zeroing bytes cannot break an
            // invariant, since instrumented code only ever increments them.
            unsafe { std::ptr::write_bytes(start as *mut u8, 0, len) };
        }
    }

    /// Records the run's counters; returns how many (edge, bucket) pairs were new.
    pub fn take_new(&mut self) -> usize {
        let mut new = 0;
        let mut at = 0;
        for &(start, len) in &self.regions {
            // SAFETY: as in `reset`. Targets run on this thread, so none of their increments is
            // under way while we read; the watchdog thread's loop bumps its own few counters
            // with single-byte stores, which at worst makes one of them read a step stale.
            let counters = unsafe { std::slice::from_raw_parts(start as *const u8, len) };
            for (seen, &count) in self.seen[at..at + len].iter_mut().zip(counters) {
                if count != 0 {
                    let bit = 1u8 << bucket(count);
                    if *seen & bit == 0 {
                        *seen |= bit;
                        new += 1;
                    }
                }
            }
            at += len;
        }
        new
    }

    /// Edges reached so far.
    pub fn edges(&self) -> usize {
        self.seen.iter().filter(|&&s| s != 0).count()
    }
}

impl Default for Coverage {
    fn default() -> Self {
        Self::new()
    }
}

fn bucket(count: u8) -> u8 {
    match count {
        0 | 1 => 0,
        2 => 1,
        3 => 2,
        4..=7 => 3,
        8..=15 => 4,
        16..=31 => 5,
        32..=127 => 6,
        _ => 7,
    }
}
