//! Insert and estimate costs of `uniqd_core::UniqueCounter`: exact phase, sketch phase, one and
//! two threads. Run: `cargo bench -p uniqd-benches --bench counter`.

use std::hint::black_box;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use uniqd_benches::ipv4_texts;
use uniqd_core::{UniqueCounter, DEFAULT_THRESHOLD};

/// A counter already in its sketch phase with a million addresses in it.
fn full_sketch() -> UniqueCounter {
    let counter = UniqueCounter::new();
    for i in 0..1_000_000u64 {
        counter.insert_element(&i.to_le_bytes());
    }
    counter
}

fn insert(c: &mut Criterion) {
    let mut group = c.benchmark_group("insert");
    let texts = ipv4_texts(7, 1 << 16);

    // Exact phase: a fresh counter takes DEFAULT_THRESHOLD distinct addresses.
    group.throughput(Throughput::Elements(DEFAULT_THRESHOLD as u64));
    group.bench_function("exact_phase/parse+hash+insert/1_thread", |b| {
        b.iter_batched(
            UniqueCounter::new,
            |counter| {
                for text in &texts[..DEFAULT_THRESHOLD] {
                    counter.insert_str(text).expect("valid address");
                }
                counter
            },
            BatchSize::SmallInput,
        )
    });

    let counter = full_sketch();
    group.throughput(Throughput::Elements(texts.len() as u64));
    group.bench_function("sketch_phase/parse+hash+insert/1_thread", |b| {
        b.iter(|| {
            for text in &texts {
                counter.insert_str(black_box(text)).expect("valid address");
            }
        })
    });
    group.bench_function("sketch_phase/hash+insert/1_thread", |b| {
        b.iter(|| {
            for text in &texts {
                counter.insert_element(black_box(text.as_bytes()));
            }
        })
    });

    // Two threads on one shared counter, each inserting the whole stream.
    let shared = Arc::new(full_sketch());
    let texts = Arc::new(texts);
    group.throughput(Throughput::Elements(2 * texts.len() as u64));
    group.bench_function("sketch_phase/parse+hash+insert/2_threads", |b| {
        b.iter_custom(|iters| two_threads(&shared, &texts, iters))
    });
    group.finish();
}

/// Wall time for two threads to each insert `texts` `iters` times into `counter`.
fn two_threads(counter: &Arc<UniqueCounter>, texts: &Arc<Vec<String>>, iters: u64) -> Duration {
    let barrier = Arc::new(Barrier::new(3));
    let workers: Vec<_> = (0..2)
        .map(|_| {
            let (counter, texts, barrier) =
                (Arc::clone(counter), Arc::clone(texts), Arc::clone(&barrier));
            thread::spawn(move || {
                barrier.wait();
                for _ in 0..iters {
                    for text in texts.iter() {
                        counter.insert_str(black_box(text)).expect("valid address");
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

fn estimate(c: &mut Criterion) {
    let mut group = c.benchmark_group("estimate");
    let counter = full_sketch();
    group.bench_function("sketch_phase", |b| {
        b.iter(|| black_box(&counter).estimate())
    });
    let exact = UniqueCounter::new();
    for text in ipv4_texts(0, 4000) {
        exact.insert_str(&text).expect("valid address");
    }
    group.bench_function("exact_phase", |b| b.iter(|| black_box(&exact).estimate()));
    group.finish();
}

criterion_group!(benches, insert, estimate);
criterion_main!(benches);
