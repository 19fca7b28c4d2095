//! A global allocator that counts the bytes live on each thread and their peak, so a target
//! can check that a decoder holds no more than its limits allow, whatever the input.
//!
//! Counting is per thread: tests running in parallel (and the driver's watchdog) do not
//! disturb one another's figures. Memory freed on another thread than the one that allocated
//! it would skew both threads' counts; the decoders measured here never do that.
#![allow(
    unsafe_code,
    reason = "a GlobalAlloc is an unsafe trait; this one forwards every call to System"
)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// Forwards to [`System`], counting as it goes.
struct Counting;

#[global_allocator]
static ALLOCATOR: Counting = Counting;

thread_local! {
    /// Bytes allocated and not yet freed by this thread (wrapping: frees of memory allocated
    /// before counting mattered can take it "below zero" for a while).
    static LIVE: Cell<usize> = const { Cell::new(0) };
    /// The highest `LIVE` since the last [`measure`] began.
    static PEAK: Cell<usize> = const { Cell::new(0) };
}

fn grew(bytes: usize) {
    // `try_with`: a thread being torn down may still allocate; it is simply not counted.
    let _ = LIVE.try_with(|live| {
        let now = live.get().wrapping_add(bytes);
        live.set(now);
        let _ = PEAK.try_with(|peak| {
            if (now as isize) > (peak.get() as isize) {
                peak.set(now);
            }
        });
    });
}

fn shrank(bytes: usize) {
    let _ = LIVE.try_with(|live| live.set(live.get().wrapping_sub(bytes)));
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged, so
// `System`'s guarantees hold; the counting touches only const-initialised thread-locals
// without destructors, which never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds `alloc`'s contract, which is `System.alloc`'s.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            grew(layout.size());
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            grew(layout.size());
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller passes memory this allocator (so `System`) gave with `layout`.
        unsafe { System.dealloc(ptr, layout) };
        shrank(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as for `dealloc`, and `new_size` is the caller's, checked by its contract.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            // Both blocks are live for a moment inside realloc; count the larger, as a peak.
            grew(new_size);
            shrank(layout.size());
        }
        new
    }
}

/// Runs `f` and returns its result with the peak of this thread's live heap bytes during it,
/// above what was live when it began.
pub fn measure<R>(f: impl FnOnce() -> R) -> (R, usize) {
    let start = LIVE.with(Cell::get);
    PEAK.with(|peak| peak.set(start));
    let result = f();
    let peak = PEAK.with(Cell::get).wrapping_sub(start);
    (result, peak)
}

#[cfg(test)]
mod tests {
    use super::measure;

    #[test]
    fn a_vector_held_during_the_measure_is_its_peak() {
        let ((), peak) = measure(|| {
            let v = vec![0u8; 10_000];
            drop(std::hint::black_box(v));
        });
        assert!((10_000..10_100).contains(&peak), "peak {peak}");
    }

    #[test]
    fn nothing_allocated_is_a_zero_peak() {
        let keep = std::hint::black_box(vec![1u8; 100]);
        let (sum, peak) = measure(|| keep.iter().map(|&b| u32::from(b)).sum::<u32>());
        assert_eq!((sum, peak), (100, 0));
    }
}
