//! No insert is lost across the exact→sketch swap, the exact phase stays exact under
//! concurrent inserts, and the reported count never goes down while threads insert.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;

use uniqd_core::{hash_element, index_and_rank, Phase, UniqueCounter};

const THREADS: u64 = 4;

/// The element bytes of item `i` of thread `t`: disjoint between threads.
fn element(t: u64, i: u64) -> [u8; 8] {
    ((t << 48) | i).to_le_bytes()
}

/// Runs `per_thread` inserts on each of `THREADS` threads released together by a barrier.
fn insert_concurrently(counter: &Arc<UniqueCounter>, per_thread: u64) {
    let barrier = Arc::new(Barrier::new(THREADS as usize));
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let (counter, barrier) = (Arc::clone(counter), Arc::clone(&barrier));
            thread::spawn(move || {
                barrier.wait();
                for i in 0..per_thread {
                    counter.insert_element(&element(t, i));
                }
            })
        })
        .collect();
    for handle in handles {
        handle.join().expect("inserter thread panicked");
    }
}

#[test]
fn every_element_reaches_the_registers_across_the_swap() {
    // Small thresholds make the swap happen while all threads are mid-stream; repeat to hit
    // many interleavings.
    for (round, threshold) in [16usize, 64, 500, 4096]
        .into_iter()
        .cycle()
        .take(40)
        .enumerate()
    {
        let counter = Arc::new(UniqueCounter::with_threshold(threshold));
        let per_thread = (threshold as u64 / THREADS) * 3 + 7;
        insert_concurrently(&counter, per_thread);

        assert_eq!(counter.phase(), Phase::Sketch, "round {round}");
        let registers = counter.registers();
        for t in 0..THREADS {
            for i in 0..per_thread {
                let (index, rank) = index_and_rank(hash_element(&element(t, i)));
                assert!(
                    registers[index] >= rank,
                    "round {round}: element ({t}, {i}) lost: register {index} = {} < {rank}",
                    registers[index]
                );
            }
        }
        // Never below the exact count at the swap.
        assert!(counter.estimate() > threshold as u64, "round {round}");
    }
}

#[test]
fn exact_phase_is_exact_under_concurrent_duplicates() {
    // Every thread inserts the same 1,024 elements: the exact count is 1,024, not more.
    for _ in 0..20 {
        let counter = Arc::new(UniqueCounter::with_threshold(4096));
        let barrier = Arc::new(Barrier::new(THREADS as usize));
        let handles: Vec<_> = (0..THREADS)
            .map(|_| {
                let (counter, barrier) = (Arc::clone(&counter), Arc::clone(&barrier));
                thread::spawn(move || {
                    barrier.wait();
                    for i in 0..1024 {
                        counter.insert_element(&element(99, i));
                    }
                })
            })
            .collect();
        for handle in handles {
            handle.join().expect("inserter thread panicked");
        }
        assert_eq!(counter.phase(), Phase::Exact);
        assert_eq!(counter.estimate(), 1024);
    }
}

#[test]
fn threshold_is_inclusive_and_swap_keeps_the_floor() {
    let threshold = 4096;
    let counter = Arc::new(UniqueCounter::with_threshold(threshold));
    insert_concurrently(&counter, threshold as u64 / THREADS);
    assert_eq!(counter.phase(), Phase::Exact);
    assert_eq!(counter.estimate(), threshold as u64);
    counter.insert_element(b"one more");
    assert_eq!(counter.phase(), Phase::Sketch);
    assert!(counter.estimate() > threshold as u64);
}

#[test]
fn count_never_decreases_while_threads_insert() {
    let counter = Arc::new(UniqueCounter::with_threshold(2048));
    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let (counter, done) = (Arc::clone(&counter), Arc::clone(&done));
        thread::spawn(move || {
            let mut last = 0;
            let mut reads = 0u64;
            // Relaxed: the flag only ends the loop; no data is published through it.
            while !done.load(Ordering::Relaxed) {
                let now = counter.estimate();
                assert!(now >= last, "count went down from {last} to {now}");
                last = now;
                reads += 1;
            }
            reads
        })
    };
    insert_concurrently(&counter, 20_000);
    done.store(true, Ordering::Relaxed);
    let reads = reader.join().expect("reader saw the count go down");
    assert!(reads > 0);
}

#[test]
fn memory_stays_within_64_kib_in_every_phase() {
    let counter = UniqueCounter::new();
    let exact = counter.memory_bytes();
    assert!(exact <= 64 * 1024, "exact phase holds {exact} bytes");
    for i in 0..100_000u64 {
        counter.insert_element(&i.to_le_bytes());
    }
    let sketch = counter.memory_bytes();
    assert!(sketch <= 17 * 1024, "sketch phase holds {sketch} bytes");
    assert!(sketch < exact);
}
