//! Cost of `uniqd_core::TopPages::record_url` per call on a Zipf-distributed URL stream, one
//! and two threads, and of the `snapshot` that `/stats` and a scrape take.
//! Run: `cargo bench -p uniqd-benches --bench top_pages`.

use std::hint::black_box;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use uniqd_core::{PathOptions, TopPages, DEFAULT_TOP_PAGES_CAPACITY};

/// Distinct paths the stream draws from (far more than the capacity: evictions happen).
const PATHS: usize = 100_000;
/// URLs per benchmark iteration.
const STREAM: usize = 1 << 16;

/// `n` URLs drawn from Zipf's law (s = 1) over [`PATHS`] paths with a seeded SplitMix64; one
/// in four carries a query string, as ingress logs do.
fn zipf_urls(seed: u64, n: usize) -> Vec<String> {
    let mut sum = 0.0;
    let cdf: Vec<f64> = (1..=PATHS)
        .map(|r| {
            sum += 1.0 / r as f64;
            sum
        })
        .collect();
    let mut state = seed;
    let mut next = move || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    (0..n)
        .map(|i| {
            let u = (next() >> 11) as f64 / (1u64 << 53) as f64 * sum;
            let rank = cdf.partition_point(|&c| c < u).min(PATHS - 1);
            if i % 4 == 0 {
                format!("/products/{rank}/details?ref=campaign-{i}")
            } else {
                format!("/products/{rank}/details")
            }
        })
        .collect()
}

/// A summary that has already seen the stream (steady state: full, evicting).
fn warm(shards: usize, urls: &[String]) -> TopPages {
    let top = TopPages::new(DEFAULT_TOP_PAGES_CAPACITY, shards, PathOptions::default())
        .expect("valid size");
    for url in urls {
        top.record_url(url);
    }
    top
}

fn record_url(c: &mut Criterion) {
    let mut group = c.benchmark_group("top_pages_record_url");
    let urls = zipf_urls(7, STREAM);

    let top = warm(1, &urls);
    group.throughput(Throughput::Elements(urls.len() as u64));
    group.bench_function("zipf/1_thread", |b| {
        b.iter(|| {
            for url in &urls {
                top.record_url(black_box(url));
            }
        })
    });

    // A small hot set that fits the summary (no evictions): the load script's 100 pages,
    // padded to its 100-byte lines.
    let hot: Vec<String> = (0..STREAM)
        .map(|i| format!("/page/{}{}", i % 100, "x".repeat(40)))
        .collect();
    let top_hot = warm(1, &hot);
    group.bench_function("hot_100/1_thread", |b| {
        b.iter(|| {
            for url in &hot {
                top_hot.record_url(black_box(url));
            }
        })
    });

    // Two threads on one summary with a shard each (as two ingest workers).
    let top = Arc::new(warm(2, &urls));
    let urls = Arc::new(urls);
    group.throughput(Throughput::Elements(2 * urls.len() as u64));
    group.bench_function("zipf/2_threads", |b| {
        b.iter_custom(|iters| two_threads(&top, &urls, iters))
    });
    group.finish();
}

/// Wall time for two threads to each record `urls` `iters` times into `top`.
fn two_threads(top: &Arc<TopPages>, urls: &Arc<Vec<String>>, iters: u64) -> Duration {
    let barrier = Arc::new(Barrier::new(3));
    let workers: Vec<_> = (0..2)
        .map(|_| {
            let (top, urls, barrier) = (Arc::clone(top), Arc::clone(urls), Arc::clone(&barrier));
            thread::spawn(move || {
                barrier.wait();
                for _ in 0..iters {
                    for url in urls.iter() {
                        top.record_url(black_box(url));
                    }
                }
            })
        })
        .collect();
    barrier.wait();
    let start = Instant::now();
    for worker in workers {
        worker.join().expect("bench thread panicked");
    }
    start.elapsed()
}

fn snapshot(c: &mut Criterion) {
    let mut group = c.benchmark_group("top_pages_snapshot");
    let urls = zipf_urls(11, STREAM);
    let top = warm(2, &urls);
    // What a scrape (top 20) and a default `/stats` (top 100) cost on a full summary.
    for limit in [20, 100] {
        group.bench_function(format!("2_shards_full/limit_{limit}"), |b| {
            b.iter(|| black_box(&top).snapshot(limit))
        });
    }
    group.finish();
}

criterion_group!(benches, record_url, snapshot);
criterion_main!(benches);
