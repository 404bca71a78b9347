//! `TopPages` against its guarantees: exact while the distinct paths fit, the Space-Saving bound
//! on a Zipf stream of a million requests over a million paths (every path above the bound is
//! reported, every count within its error, memory fixed), no request lost across threads, and
//! the memory table of the module docs.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Arc, Barrier};
use std::thread;

use uniqd_core::{PageCount, PathOptions, TopPages, TopPagesSnapshot};

/// SplitMix64 (Steele, Lea, Flood 2014): a tiny seeded generator, enough for test streams.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Zipf's law over ranks `0..n`: P(rank r) ∝ 1 / (r + 1)^s, sampled by inverting the CDF.
struct Zipf {
    cdf: Vec<f64>,
}

impl Zipf {
    fn new(n: usize, s: f64) -> Self {
        let mut sum = 0.0;
        let cdf = (1..=n)
            .map(|r| {
                sum += (r as f64).powf(-s);
                sum
            })
            .collect();
        Self { cdf }
    }

    fn sample(&self, rng: &mut SplitMix64) -> usize {
        let total = self.cdf[self.cdf.len() - 1];
        let u = rng.next_f64() * total;
        self.cdf.partition_point(|&c| c < u).min(self.cdf.len() - 1)
    }
}

fn page_path(rank: usize) -> String {
    format!("/page/{rank}")
}

/// Pages by path, checking that no path is listed twice.
fn by_path(snapshot: &TopPagesSnapshot) -> HashMap<&str, &PageCount> {
    let map: HashMap<&str, &PageCount> = snapshot
        .pages
        .iter()
        .map(|p| (p.path.as_str(), p))
        .collect();
    assert_eq!(map.len(), snapshot.pages.len(), "a path is listed twice");
    map
}

/// The documented order: count descending, ties by path ascending.
fn assert_sorted(pages: &[PageCount]) {
    for pair in pages.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        assert!(
            a.count > b.count || (a.count == b.count && a.path < b.path),
            "out of order: {a:?} before {b:?}"
        );
    }
}

#[test]
fn exact_while_distinct_paths_fit() {
    const PATHS: usize = 200;
    for (shards, threads) in [(1, 1), (3, 3), (2, 4)] {
        let top = Arc::new(TopPages::new(256, shards, PathOptions::default()).expect("valid"));
        // Path i gets i + 1 requests, spread round-robin over the threads, each request with a
        // different query string or fragment (cut off before counting).
        let barrier = Arc::new(Barrier::new(threads));
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (top, barrier) = (Arc::clone(&top), Arc::clone(&barrier));
                thread::spawn(move || {
                    barrier.wait();
                    let mut n = 0usize;
                    for i in 0..PATHS {
                        for j in 0..=i {
                            if n % threads == t {
                                let suffix = if j % 2 == 0 { "?q=" } else { "#frag" };
                                top.record_url(&format!("/p/{i}{suffix}{j}"));
                            }
                            n += 1;
                        }
                    }
                })
            })
            .collect();
        for handle in handles {
            handle.join().expect("recording thread panicked");
        }

        let snapshot = top.snapshot(usize::MAX);
        let total = (PATHS * (PATHS + 1) / 2) as u64;
        assert_eq!(snapshot.total_requests, total, "shards {shards}");
        assert_eq!(snapshot.tracked, PATHS);
        assert_eq!(snapshot.error_bound, 0, "nothing evicted: exact");
        assert_sorted(&snapshot.pages);
        let pages = by_path(&snapshot);
        for i in 0..PATHS {
            let page = pages[format!("/p/{i}").as_str()];
            assert_eq!((page.count, page.error), (i as u64 + 1, 0), "{page:?}");
        }
        // The most requested first, and `limit` cuts the same list.
        assert_eq!(snapshot.pages[0].path, format!("/p/{}", PATHS - 1));
        assert_eq!(top.snapshot(3).pages[..], snapshot.pages[..3]);
    }
}

#[test]
fn zipf_million_requests_over_a_million_paths() {
    const REQUESTS: usize = 1_000_000;
    const PATHS: usize = 1_000_000;
    const CAPACITY: usize = 1024;
    const THREADS: usize = 2;
    let zipf = Arc::new(Zipf::new(PATHS, 1.0));
    let top = Arc::new(TopPages::new(CAPACITY, THREADS, PathOptions::default()).expect("valid"));
    let memory_before = top.memory_bytes();

    // Each thread draws its own seeded stream and keeps the true counts; one request in four
    // carries a query string, which must not make it a different page.
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let (top, zipf) = (Arc::clone(&top), Arc::clone(&zipf));
            thread::spawn(move || {
                let mut rng = SplitMix64(0x5eed_0000 + t as u64);
                let mut truth = vec![0u32; PATHS];
                let mut url = String::with_capacity(32);
                for i in 0..REQUESTS / THREADS {
                    let rank = zipf.sample(&mut rng);
                    truth[rank] += 1;
                    url.clear();
                    // Writing to a String cannot fail.
                    let _ = write!(url, "/page/{rank}");
                    if i % 4 == 0 {
                        let _ = write!(url, "?session={i}");
                    }
                    top.record_url(&url);
                }
                truth
            })
        })
        .collect();
    let mut truth = vec![0u64; PATHS];
    for handle in handles {
        let counts = handle.join().expect("recording thread panicked");
        for (sum, n) in truth.iter_mut().zip(counts) {
            *sum += u64::from(n);
        }
    }

    assert_eq!(top.memory_bytes(), memory_before, "memory must not grow");
    let snapshot = top.snapshot(usize::MAX);
    let n = REQUESTS as u64;
    assert_eq!(snapshot.total_requests, n);
    let guaranteed = n / CAPACITY as u64;
    assert!(
        snapshot.error_bound <= guaranteed,
        "bound {} above N/k = {guaranteed}",
        snapshot.error_bound
    );
    assert!(
        snapshot.error_bound > 0,
        "a million paths must have evicted"
    );
    assert!(snapshot.tracked <= CAPACITY * THREADS);
    assert_sorted(&snapshot.pages);

    // Every reported count brackets the true count within its error, itself within the bound.
    let pages = by_path(&snapshot);
    for page in &snapshot.pages {
        let rank: usize = page.path["/page/".len()..].parse().expect("a page path");
        let f = truth[rank];
        assert!(
            page.count - page.error <= f && f <= page.count,
            "{page:?}: true count {f}"
        );
        assert!(page.error <= snapshot.error_bound, "{page:?}");
    }
    // Every path above the bound is reported (and there are enough of them to mean something).
    let mut heavy = 0;
    for (rank, &f) in truth.iter().enumerate() {
        if f > snapshot.error_bound {
            heavy += 1;
            assert!(
                pages.contains_key(page_path(rank).as_str()),
                "{} (true count {f} > bound {}) is missing",
                page_path(rank),
                snapshot.error_bound
            );
        }
    }
    let above_guarantee = truth.iter().filter(|&&f| f > guaranteed).count();
    assert!(above_guarantee >= 30, "only {above_guarantee} heavy paths");
    assert!(heavy >= above_guarantee);
    assert_eq!(snapshot.pages[0].path, "/page/0");
}

#[test]
fn concurrent_threads_lose_no_request() {
    const THREADS: usize = 4;
    const PER_THREAD: usize = 50_000;
    // Fewer shards than threads: threads collide on their home shards and fall back to others.
    let top = Arc::new(TopPages::new(128, 2, PathOptions::default()).expect("valid"));
    let barrier = Arc::new(Barrier::new(THREADS + 1));
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let (top, barrier) = (Arc::clone(&top), Arc::clone(&barrier));
            thread::spawn(move || {
                barrier.wait();
                // First 50 shared paths (fit: exact), then paths unique to this thread.
                for i in 0..PER_THREAD {
                    if i < PER_THREAD / 2 {
                        top.record_path(&format!("/shared/{}", i % 50));
                    } else {
                        top.record_path(&format!("/t{t}/{i}"));
                    }
                }
            })
        })
        .collect();
    barrier.wait();
    // A reader snapshots while the writers run: it must not block them for good or tear.
    for _ in 0..20 {
        let s = top.snapshot(10);
        assert!(s.pages.len() <= 10);
        assert_sorted(&s.pages);
    }
    for handle in handles {
        handle.join().expect("recording thread panicked");
    }
    let snapshot = top.snapshot(usize::MAX);
    assert_eq!(snapshot.total_requests, (THREADS * PER_THREAD) as u64);
    assert_eq!(top.total(), (THREADS * PER_THREAD) as u64);
    // The shared paths (2,000 requests each) stand far above the bound: all reported, each
    // within its error of the true count.
    let pages = by_path(&snapshot);
    let shared_true = (THREADS * PER_THREAD / 2 / 50) as u64;
    for i in 0..50 {
        let page = pages[format!("/shared/{i}").as_str()];
        assert!(
            page.count - page.error <= shared_true && shared_true <= page.count,
            "{page:?}"
        );
    }
    assert!(snapshot.error_bound <= snapshot.total_requests / 128);
}

#[test]
fn exact_counts_are_exact_under_concurrency() {
    const THREADS: usize = 4;
    let top = Arc::new(TopPages::new(64, 2, PathOptions::default()).expect("valid"));
    let handles: Vec<_> = (0..THREADS)
        .map(|_| {
            let top = Arc::clone(&top);
            thread::spawn(move || {
                for i in 0..40_000usize {
                    top.record_path(&format!("/{}", i % 40));
                }
            })
        })
        .collect();
    for handle in handles {
        handle.join().expect("recording thread panicked");
    }
    let snapshot = top.snapshot(usize::MAX);
    assert_eq!(snapshot.total_requests, 160_000);
    assert_eq!(snapshot.error_bound, 0);
    assert_eq!(snapshot.tracked, 40);
    for page in &snapshot.pages {
        assert_eq!((page.count, page.error), (4_000, 0), "{page:?}");
    }
    // Ties (all 4,000) come in path order.
    assert_eq!(snapshot.pages[0].path, "/0");
    assert_eq!(snapshot.pages[1].path, "/1");
    assert_eq!(snapshot.pages[2].path, "/10");
}

/// The table of the module docs (`crates/core/src/top_pages/mod.rs`), row by row.
#[cfg(target_pointer_width = "64")]
#[test]
fn memory_table_of_the_module_docs() {
    for (capacity, shards, bytes) in [
        (1024, 1, 307_368),
        (1024, 2, 614_696),
        (1024, 8, 2_458_664),
        (4096, 2, 2_457_896),
        (65_536, 1, 19_660_968),
    ] {
        let top = TopPages::new(capacity, shards, PathOptions::default()).expect("valid");
        assert_eq!(
            top.memory_bytes(),
            bytes,
            "capacity {capacity}, shards {shards}"
        );
        // Filling every counter and evicting changes nothing.
        for i in 0..capacity * 2 {
            top.record_path(&format!("/{i}"));
        }
        assert_eq!(top.memory_bytes(), bytes);
    }
}
