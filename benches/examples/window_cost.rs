//! What the time windows cost (issue 9): the heap of a full window ring (every slot of both
//! tiers past its exact set, the worst case), `WindowRing::count` for the default gauges
//! (5m, 1h, 24h) warm (the closed intervals cached) and cold (the first read in a new minute
//! and hour), a series, and a whole `/metrics` encode of the service's default collector
//! (counter in the sketch phase, top pages full, the three window gauges), warm and cold.
//! Prints Markdown tables (medians and maxima over the runs).
//!
//! Run: `cargo run --release -p uniqd-benches --example window_cost`.
#![allow(clippy::print_stdout)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use uniqd_benches::counting_alloc::{collect_garbage, live_bytes, CountingAlloc};
use uniqd_core::window::{HOUR_MS, HOUR_SLOTS, MINUTE_MS, MINUTE_SLOTS};
use uniqd_core::{
    hash_element, ManualClock, PathOptions, Span, TopPages, UniqueCounter, Views, WindowRing,
};
use uniqd_exporter::{BuildInfo, Exported, MetricOptions};
use uniqd_ingest::IngestMetrics;

#[global_allocator]
static ALLOCATOR: CountingAlloc = CountingAlloc;

/// 30 seconds before a whole hour: one minute later is a new minute and a new hour, so
/// alternating between the two makes every read cold in both tiers.
const NOW: u64 = 1_800_000_000_000 - 1_800_000_000_000 % HOUR_MS + HOUR_MS - 30_000;
/// Distinct addresses per slot: far past the 256 of the exact set.
const PER_SLOT: u64 = 5_000;
const RUNS: usize = 200;

fn span(text: &str) -> Span {
    Span::parse(text).expect("a valid span")
}

/// Every slot of both tiers holds registers: 168 hours and then 60 minutes of traffic.
fn fill(ring: &WindowRing) {
    let mut next = 0u64;
    let mut insert_at = |t: u64| {
        for _ in 0..PER_SLOT {
            ring.insert_hash_at(hash_element(&next.to_le_bytes()), None, t);
            next += 1;
        }
    };
    for back in (0..HOUR_SLOTS as u64).rev() {
        insert_at(NOW - back * HOUR_MS);
    }
    for back in (0..MINUTE_SLOTS as u64).rev() {
        insert_at(NOW - back * MINUTE_MS);
    }
}

/// Minimum, median and maximum of `RUNS` timings of `f`; `before` runs untimed before each.
/// On a busy machine the minimum is the closest to the cost of the work itself.
fn time(mut before: impl FnMut(usize), mut f: impl FnMut()) -> [Duration; 3] {
    let mut times: Vec<Duration> = (0..RUNS)
        .map(|i| {
            before(i);
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .collect();
    times.sort_unstable();
    [times[0], times[RUNS / 2], times[RUNS - 1]]
}

/// `min / median / max` in microseconds.
fn us([min, median, max]: [Duration; 3]) -> String {
    let f = |d: Duration| d.as_secs_f64() * 1e6;
    format!("{:.0} / {:.0} / {:.0}", f(min), f(median), f(max))
}

fn main() {
    let clock = Arc::new(ManualClock::new(NOW));
    collect_garbage();
    let before = live_bytes();
    let ring = Arc::new(WindowRing::new(5 * MINUTE_MS, clock.clone()));
    let empty = live_bytes() - before;
    fill(&ring);
    collect_garbage();
    let full = live_bytes() - before;
    println!("| ring | heap bytes (counting allocator) | `memory_bytes()` |");
    println!("|---|---:|---:|");
    println!("| empty | {empty} | - |");
    println!(
        "| full: {} minute and {} hour slots with registers | {full} | {} |",
        MINUTE_SLOTS,
        HOUR_SLOTS,
        ring.memory_bytes()
    );
    println!(
        "| bound, `max_memory_bytes()` | - | {} |",
        ring.max_memory_bytes()
    );
    println!();

    // The ingest side: what a line adds (the ring's part; hashing is shared with the counter).
    let per_insert = |ring: &WindowRing, hashes: &[u64]| {
        let start = Instant::now();
        for &hash in hashes {
            ring.insert_hash_at(hash, None, NOW);
        }
        start.elapsed().as_secs_f64() * 1e9 / hashes.len() as f64
    };
    let fresh: Vec<u64> = (0..1_000_000u64)
        .map(|i| hash_element(&((i + 1) << 40).to_le_bytes()))
        .collect();
    let repeated: Vec<u64> = (0..1_000_000u64)
        .map(|i| hash_element(&(i % 200).to_le_bytes()))
        .collect();
    let exact_ring = WindowRing::new(5 * MINUTE_MS, clock.clone());
    println!("| `insert_hash_at` (one epoch pin, a minute and an hour slot) | ns per line |");
    println!("|---|---:|");
    println!(
        "| slots with registers, 1,000,000 new addresses | {:.1} |",
        per_insert(&ring, &fresh)
    );
    println!(
        "| slots with registers, addresses already seen | {:.1} |",
        per_insert(&ring, &fresh)
    );
    println!(
        "| exact slots (200 addresses, repeated) | {:.1} |",
        per_insert(&exact_ring, &repeated)
    );
    let stamps: Vec<String> = (0..1_000u64)
        .map(|i| format!("2027-01-15T08:00:{:02}.{:06}Z", i / 100, i % 100 * 9_999))
        .collect();
    let start = Instant::now();
    for _ in 0..1_000 {
        for stamp in &stamps {
            std::hint::black_box(uniqd_ingest::fields::timestamp::parse_rfc3339_ms(
                std::hint::black_box(stamp),
            ));
        }
    }
    println!(
        "| `parse_rfc3339_ms` of the log timestamp | {:.1} |",
        start.elapsed().as_secs_f64() * 1e9 / 1e6
    );
    let mut parser = uniqd_ingest::fields::timestamp::TimestampParser::default();
    let start = Instant::now();
    for _ in 0..1_000 {
        for stamp in &stamps {
            std::hint::black_box(parser.parse_ms(std::hint::black_box(stamp)));
        }
    }
    println!(
        "| `TimestampParser::parse_ms` (what a line pays; 100 lines per second here) | {:.1} |",
        start.elapsed().as_secs_f64() * 1e9 / 1e6
    );
    println!();

    // Alternate between NOW and a minute later (a new minute and a new hour): always cold.
    let flip = |i: usize| clock.set(NOW + (i as u64 % 2) * MINUTE_MS);
    println!("| read (full ring, skew 5m), µs min / median / max | warm | cold |");
    println!("|---|---:|---:|");
    for window in ["5m", "1h", "24h", "7d"] {
        let w = span(window);
        clock.set(NOW);
        let warm = time(
            |_| {},
            || {
                std::hint::black_box(ring.count(w).expect("a window"));
            },
        );
        let cold = time(&flip, || {
            std::hint::black_box(ring.count(w).expect("a window"));
        });
        println!("| `count({window})` | {} | {} |", us(warm), us(cold));
    }
    for (lookback, step) in [("1h", "1m"), ("24h", "1h"), ("7d", "1h")] {
        clock.set(NOW);
        let cost = time(
            |_| {},
            || {
                std::hint::black_box(ring.series(span(lookback), span(step)).expect("valid"));
            },
        );
        println!(
            "| `series({lookback}, {step})` (never cached) | {} | same |",
            us(cost)
        );
    }
    println!();

    // The service's default collector, every part full.
    let counter = Arc::new(UniqueCounter::new());
    for i in 0..100_000u64 {
        counter.insert_element(&i.to_le_bytes());
    }
    let top = Arc::new(TopPages::new(1024, 2, PathOptions::default()).expect("valid size"));
    for i in 0..20_000u32 {
        top.record_url(&format!("/page/{}", i % 3_000));
    }
    let gauges = [span("5m"), span("1h"), span("24h")];
    let encode = |views: Views, windows: &[Span]| {
        let exported = Exported::new(
            views,
            Arc::new(IngestMetrics::new()),
            BuildInfo {
                version: "bench".to_owned(),
            },
        );
        let options = MetricOptions {
            top_pages: 20,
            windows: windows.to_vec(),
        };
        let registry = uniqd_exporter::registry(&exported, &options);
        move || {
            let mut text = String::with_capacity(8 * 1024);
            prometheus_client::encoding::text::encode(&mut text, &registry).expect("encodes");
            std::hint::black_box(text);
        }
    };
    let views = Views::new(Arc::clone(&counter)).with_top_pages(Arc::clone(&top));
    let mut without = encode(views.clone(), &[]);
    let mut with = encode(views.with_windows(Arc::clone(&ring)), &gauges);
    clock.set(NOW);
    let base = time(|_| {}, &mut without);
    let warm = time(|_| {}, &mut with);
    let cold = time(&flip, &mut with);
    println!("| `/metrics` encode (counter sketch, top pages full), µs | min / median / max |");
    println!("|---|---:|");
    println!("| without windows | {} |", us(base));
    println!("| with 5m, 1h, 24h, warm | {} |", us(warm));
    println!(
        "| with 5m, 1h, 24h, cold (new minute and hour) | {} |",
        us(cold)
    );
}
