//! A global allocator that counts live heap bytes, for the examples that measure memory
//! (`memory_error`, `window_cost`): declare `#[global_allocator] static A: CountingAlloc =
//! CountingAlloc;` in the binary, then read [`live_bytes`] around what is measured.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Forwards to [`System`] and keeps [`live_bytes`] up to date.
#[derive(Debug, Clone, Copy, Default)]
pub struct CountingAlloc;

static LIVE: AtomicUsize = AtomicUsize::new(0);

/// Heap bytes allocated and not yet freed (through [`CountingAlloc`]).
pub fn live_bytes() -> usize {
    // Relaxed: a statistic; no memory is published through it.
    LIVE.load(Ordering::Relaxed)
}

/// Lets crossbeam-epoch run deferred frees (uniqd-core's retired exact sets and slots), so
/// that [`live_bytes`] only counts what is still reachable.
pub fn collect_garbage() {
    for _ in 0..256 {
        crossbeam_epoch::pin().flush();
    }
}

// SAFETY: every method forwards to `System` unchanged and only adds bookkeeping.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // Relaxed: see `live_bytes`.
        LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract, passed on unchanged.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // Relaxed: see `live_bytes`.
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: as above, for `dealloc`.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // Relaxed: see `live_bytes`.
        LIVE.fetch_add(new_size, Ordering::Relaxed);
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: as above, for `realloc`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}
