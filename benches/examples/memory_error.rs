//! Memory (heap bytes, measured by a counting global allocator) and relative error of the four
//! distinct counters after n distinct addresses, n = 10² … 10⁷. Prints a Markdown table and,
//! with `--csv PATH`, writes the rows for `benches/plot.py`.
//! Run: `cargo run --release -p uniqd-benches --example memory_error -- --csv target/memory_error.csv`.
#![allow(clippy::print_stdout)]

use std::fmt::Write as _;

use uniqd_benches::counting_alloc::{collect_garbage, live_bytes, CountingAlloc};
use uniqd_benches::{Distinct, ExactSet, HllPlus, ShardedSet, TextStream};
use uniqd_core::UniqueCounter;

#[global_allocator]
static ALLOCATOR: CountingAlloc = CountingAlloc;

/// Heap bytes held by a `D` after `n` distinct inserts, and its relative error.
fn measure<D: Distinct>(stream: &TextStream, n: usize) -> (usize, f64) {
    // Free what earlier rounds deferred, and register this thread with crossbeam-epoch, before
    // the window opens: neither belongs to the structure being measured.
    collect_garbage();
    let before = live_bytes();
    let set = D::new();
    for text in stream.iter(0..n) {
        set.insert(text);
    }
    collect_garbage();
    let count = set.count();
    let bytes = live_bytes().saturating_sub(before);
    drop(set);
    (bytes, (count as f64 - n as f64).abs() / n as f64)
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
