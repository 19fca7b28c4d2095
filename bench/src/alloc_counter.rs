//! A counting global allocator: `std::alloc::System` plus two counters (live bytes, live
//! blocks), so the idle-connection benchmark can read the heap held by the server.
//!
//! Counting is off until [`enable`] is called (the timer benchmark turns it on only around its
//! untimed memory samples, then off again with [`disable`]): the echo benchmark never turns it on, so its
//! allocations pay one relaxed load of a flag and no shared atomic writes (which would tax
//! servers that allocate per message more than those that do not).
//!
//! Apart from those counters, every thread counts the allocations it makes (a thread-local
//! number, no shared write): [`thread_allocations`], read by `CpuTimes::now` so that a
//! benchmark can report a server thread's allocations per unit of work (the TLS benchmark's
//! allocations per MiB echoed).

// Why unsafe is allowed here, and only here: a global allocator must implement the `unsafe`
// trait `GlobalAlloc`. Every method forwards to `System` with the caller's own arguments, so
// the caller's contract is passed through unchanged; the only addition is counting.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicIsize, Ordering};

/// The system allocator, counting live bytes and blocks while enabled.
pub struct CountingAlloc;

/// Whether allocations are counted.
static ENABLED: AtomicBool = AtomicBool::new(false);
/// Bytes requested and not yet freed, counted since [`enable`] (frees of blocks allocated
/// before that make it dip; only differences are meaningful).
static LIVE_BYTES: AtomicIsize = AtomicIsize::new(0);
/// Blocks allocated and not yet freed, counted like [`LIVE_BYTES`].
static LIVE_BLOCKS: AtomicIsize = AtomicIsize::new(0);

thread_local! {
    /// Allocations (and reallocations) made by this thread so far. A `const` thread-local
    /// without a destructor: reading it never allocates, so the allocator may touch it.
    static THREAD_ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
    /// Bytes this thread allocated and freed itself, the difference (what it holds, if
    /// nothing it allocated is freed elsewhere and it frees nothing from elsewhere).
    static THREAD_HEAP: Cell<i64> = const { Cell::new(0) };
}

/// The calling thread's heap: bytes it allocated minus bytes it freed, since it started.
pub fn thread_heap() -> i64 {
    THREAD_HEAP.try_with(Cell::get).unwrap_or(0)
}

/// Counts `bytes` more (or fewer) on the calling thread's heap.
fn count_thread_heap(bytes: isize) {
    let _ = THREAD_HEAP.try_with(|n| n.set(n.get() + bytes as i64));
}

/// Allocations and reallocations the calling thread has made since it started, whether or
/// not counting is [`enable`]d.
pub fn thread_allocations() -> u64 {
    THREAD_ALLOCATIONS.try_with(Cell::get).unwrap_or(0)
}

/// Counts one allocation on the calling thread.
fn count_thread_allocation() {
    let _ = THREAD_ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
}

/// Starts counting. Call it once, before the allocations to be measured.
pub fn enable() {
    ENABLED.store(true, Ordering::SeqCst);
}

/// Stops counting (the counters keep their values; a later [`enable`] goes on from them).
pub fn disable() {
    ENABLED.store(false, Ordering::SeqCst);
}

/// Bytes allocated and not freed since [`enable`] (as requested, without the allocator's own
/// per-block overhead).
pub fn live_bytes() -> isize {
    LIVE_BYTES.load(Ordering::SeqCst)
}

/// Blocks allocated and not freed since [`enable`].
pub fn live_blocks() -> isize {
    LIVE_BLOCKS.load(Ordering::SeqCst)
}

/// Records `bytes` more (or, negative, fewer) in `blocks` more (or fewer) blocks.
fn record(bytes: isize, blocks: isize) {
    if ENABLED.load(Ordering::Relaxed) {
        LIVE_BYTES.fetch_add(bytes, Ordering::Relaxed);
        LIVE_BLOCKS.fetch_add(blocks, Ordering::Relaxed);
    }
}

/// Converts a layout size to the signed counter type (sizes never exceed `isize::MAX`).
fn signed(size: usize) -> isize {
    isize::try_from(size).unwrap_or(isize::MAX)
}

// SAFETY: every method forwards to `System`, which upholds `GlobalAlloc`'s contract, with the
// exact arguments it was given; the counters do not touch the memory.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract for `alloc` is passed through unchanged.
        let p = unsafe { System.alloc(layout) };
        count_thread_allocation();
        count_thread_heap(signed(layout.size()));
        if !p.is_null() {
            record(signed(layout.size()), 1);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract for `alloc_zeroed` is passed through unchanged.
        let p = unsafe { System.alloc_zeroed(layout) };
        count_thread_allocation();
        count_thread_heap(signed(layout.size()));
        if !p.is_null() {
            record(signed(layout.size()), 1);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract for `dealloc` is passed through unchanged.
        unsafe { System.dealloc(ptr, layout) };
        count_thread_heap(-signed(layout.size()));
        record(-signed(layout.size()), -1);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller's contract for `realloc` is passed through unchanged.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        count_thread_allocation();
        if !p.is_null() {
            count_thread_heap(signed(new_size) - signed(layout.size()));
        }
        if !p.is_null() {
            record(signed(new_size) - signed(layout.size()), 0);
        }
        p
    }
}
