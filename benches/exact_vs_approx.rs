//! Exact against approximate: time to insert n distinct addresses (1 and 2 threads) and to read
//! the count, for uniqd-core, hyperloglogplus behind a Mutex, a HashSet behind a Mutex and a
//! sharded exact set, at n = 10³ … 10⁷. Memory and error: the `memory_error` example.
//! Run: `cargo bench -p uniqd-benches --bench exact_vs_approx`.
//! Under `cargo test --benches` (no `--bench` flag) only the small cardinalities run.

use std::hint::black_box;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use uniqd_benches::{Distinct, ExactSet, HllPlus, ShardedSet, TextStream};
use uniqd_core::UniqueCounter;

fn cardinalities() -> Vec<usize> {
    if std::env::args().any(|a| a == "--bench") {
        vec![1_000, 10_000, 100_000, 1_000_000, 10_000_000]
    } else {
        vec![1_000, 10_000]
    }
}

/// Wall time to insert the first `n` texts into a fresh `D`, split over `threads` threads.
fn fill<D: Distinct + 'static>(stream: &Arc<TextStream>, n: usize, threads: usize) -> Duration {
    let set = Arc::new(D::new());
    let start = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            let (set, stream) = (Arc::clone(&set), Arc::clone(stream));
            thread::spawn(move || {
                for text in stream.iter(t * n / threads..(t + 1) * n / threads) {
                    set.insert(black_box(text));
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().expect("bench thread panicked");
    }
    let elapsed = start.elapsed();
    black_box(set.count());
    elapsed
}

fn insert_group<D: Distinct + 'static>(
    c: &mut Criterion,
    stream: &Arc<TextStream>,
    threads: usize,
) {
    let mut group = c.benchmark_group(format!("insert_{threads}_thread/{}", D::NAME));
    group.sample_size(10);
    for n in cardinalities() {
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, &n| {
            b.iter_custom(|iters| (0..iters).map(|_| fill::<D>(stream, n, threads)).sum())
        });
    }
    group.finish();
}

fn count_group<D: Distinct>(c: &mut Criterion, stream: &TextStream) {
    let mut group = c.benchmark_group(format!("count/{}", D::NAME));
    for n in cardinalities().into_iter().filter(|&n| n <= 1_000_000) {
        let set = D::new();
        for text in stream.iter(0..n) {
            set.insert(text);
        }
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter(|| black_box(&set).count())
        });
    }
    group.finish();
}

fn compare(c: &mut Criterion) {
    let max = cardinalities().into_iter().max().unwrap_or(0);
    let stream = Arc::new(TextStream::new(1, max));
    for threads in [1, 2] {
        insert_group::<UniqueCounter>(c, &stream, threads);
        insert_group::<HllPlus>(c, &stream, threads);
        insert_group::<ExactSet>(c, &stream, threads);
        insert_group::<ShardedSet>(c, &stream, threads);
    }
    count_group::<UniqueCounter>(c, &stream);
    count_group::<HllPlus>(c, &stream);
    count_group::<ExactSet>(c, &stream);
    count_group::<ShardedSet>(c, &stream);
}

criterion_group!(benches, compare);
criterion_main!(benches);
