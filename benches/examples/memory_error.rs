//! Memory (heap bytes, measured by a counting global allocator) and relative error of the four
//! distinct counters after n distinct addresses, n = 10² … 10⁷. Prints a Markdown table and,
//! with `--csv PATH`, writes the rows for `benches/plot.py`.
//! Run: `cargo run --release -p uniqd-benches --example memory_error -- --csv target/memory_error.csv`.
#![allow(clippy::print_stdout)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};

use uniqd_benches::{Distinct, ExactSet, HllPlus, ShardedSet, TextStream};
use uniqd_core::UniqueCounter;

/// Counts live heap bytes.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every method forwards to `System` unchanged and only adds bookkeeping.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // Relaxed: a statistic; no memory is published through it.
        LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract, passed on unchanged.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: as above, for `dealloc`.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size, Ordering::Relaxed);
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: as above, for `realloc`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Heap bytes held by a `D` after `n` distinct inserts, and its relative error.
fn measure<D: Distinct>(stream: &TextStream, n: usize) -> (usize, f64) {
    // Free what earlier rounds deferred, and register this thread with crossbeam-epoch, before
    // the window opens: neither belongs to the structure being measured.
    collect_garbage();
    let before = LIVE.load(Ordering::Relaxed);
    let set = D::new();
    for text in stream.iter(0..n) {
        set.insert(text);
    }
    collect_garbage();
    let count = set.count();
    let bytes = LIVE.load(Ordering::Relaxed).saturating_sub(before);
    drop(set);
    (bytes, (count as f64 - n as f64).abs() / n as f64)
}

/// Lets crossbeam-epoch run deferred frees (uniqd-core's retired exact set).
fn collect_garbage() {
    for _ in 0..256 {
        crossbeam_epoch::pin().flush();
    }
}

fn main() {
    let csv_path = std::env::args().skip_while(|a| a != "--csv").nth(1);
    let ns = [
        100usize, 1_000, 4_096, 10_000, 100_000, 1_000_000, 10_000_000,
    ];
    let stream = TextStream::new(1, ns[ns.len() - 1]);
    let mut csv = String::from("structure,n,bytes,relative_error\n");
    println!("| structure | n | heap bytes | bytes per address | relative error |");
    println!("|---|---:|---:|---:|---:|");
    for n in ns {
        let rows = [
            (UniqueCounter::NAME, measure::<UniqueCounter>(&stream, n)),
            (HllPlus::NAME, measure::<HllPlus>(&stream, n)),
            (ExactSet::NAME, measure::<ExactSet>(&stream, n)),
            (ShardedSet::NAME, measure::<ShardedSet>(&stream, n)),
        ];
        for (name, (bytes, error)) in rows {
            let per = bytes as f64 / n as f64;
            println!(
                "| {name} | {n} | {bytes} | {per:.2} | {:.3}% |",
                error * 100.0
            );
            let _ = writeln!(csv, "{name},{n},{bytes},{error}");
        }
    }
    if let Some(path) = csv_path {
        std::fs::write(&path, csv).expect("write the CSV");
        println!("\nwrote {path}");
    }
}
