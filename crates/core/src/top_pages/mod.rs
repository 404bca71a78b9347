//! [`TopPages`]: requests per page path in fixed memory, the heavy hitters of the `url` field.
//!
//! # Why Space-Saving
//!
//! An exact map from path to count grows with the number of distinct URLs, which crawlers and
//! cache-busting paths make unbounded. A heavy-hitters summary keeps a fixed number of counters
//! instead. Two classic choices:
//!
//! * **Count-Min sketch + top-k heap**: counts are overestimates by at most εN only *with
//!   probability* 1 − δ, the heap can miss a heavy path whose estimate grew while it was not in
//!   it, and the sketch's `d × w` counters come on top of the heap's paths.
//! * **Space-Saving** (Metwally, Agrawal, El Abbadi, ICDT 2005), chosen here: `k` counters,
//!   each holding a path, its count and an error. A monitored path's counter goes up by one; an
//!   unmonitored path replaces the minimum counter, inheriting its count `m` as `error`. The
//!   guarantee is **deterministic**: with stream length N, every counter overestimates its
//!   path by at most its `error` ≤ N/k, and every path whose true count exceeds the last
//!   evicted count (≤ N/k) is monitored. The paths are the only storage, so memory is exactly
//!   `k` × (path buffer + bookkeeping), and the top list comes for free.
//!
//! # Sharding without a global lock
//!
//! A Space-Saving summary is not a lock-free structure (an increment moves an entry in a
//! min-heap), so it is **sharded by thread**, not by path: thread `t` writes to shard
//! `t mod S` first, with `Mutex::try_lock`; if that shard is busy (another thread mapped to it,
//! or a reader copying it), the next shard is tried, and only if all `S` are busy does it wait.
//! Any path may land in any shard, which is allowed because shards are merged at query time
//! (below), and it means a hot page does *not* make a hot lock (sharding by path would send
//! every request for `/` to one shard). With `S` ≥ the ingest threads, each thread mostly has a
//! shard of its own: the lock is one uncontended compare-and-swap plus a release store, the
//! price of a lock-free CAS, and the critical section is a probe, a few heap steps and on a miss
//! one copy of at most 256 bytes (`benches/top_pages.rs` measures the whole `record_url`).
//! Shards are padded to 128 bytes so that two threads' lock words never share a cache line. A
//! reader locks one shard at a time, only to copy its counters.
//!
//! # Merging: the bound is kept
//!
//! Space-Saving summaries are *mergeable* (Agarwal, Cormode, Huang, Phillips, Wei, Yi,
//! "Mergeable summaries", PODS 2012). For shards `s` of stream lengths `N_s` (Σ N_s = N),
//! each with `k` counters:
//!
//! * `m_s` = the count of the last counter evicted in shard `s` (0 if none was). Evicted counts
//!   never decrease (the minimum only grows), so every path *not* monitored in `s` occurred at
//!   most `m_s` times there, every `error` in `s` is ≤ `m_s`, every count in `s` is ≥ `m_s`,
//!   and `m_s` ≤ `N_s / k` (it was the smallest of `k` counters summing to at most `N_s`).
//! * For each path in any shard, `count` = Σ_s (its counter in `s`, or `m_s` if absent) and
//!   `error` = Σ_s (its `error` in `s`, or `m_s` if absent). Hence the true count lies in
//!   **`[count − error, count]`**, and `error` ≤ M := Σ_s m_s ≤ Σ_s N_s/k = **N/k**.
//! * A path in no shard occurred at most M times. So **every path whose true count exceeds M
//!   is listed**, with M ≤ N/k whatever the number of shards and however the stream was split
//!   between them.
//!
//! [`TopPagesSnapshot::error_bound`] reports M; with one shard this is plain Space-Saving.
//! Snapshots of several replicas merge the same way ([`TopPagesSnapshot::merge_replicas`]),
//! each replica's M replaced by its [`unlisted_bound`](TopPagesSnapshot::unlisted_bound),
//! which also covers a snapshot cut to its first pages.
//! While no shard has evicted anything (fewer distinct paths than `k`), M = 0 and every count
//! is exact. `tests/top_pages.rs` checks all of it on a Zipf stream of a million requests over
//! a million paths.
//!
//! # Memory
//!
//! Allocated once by [`TopPages::new`] and never grown, whatever the traffic
//! ([`TopPages::memory_bytes`]; `tests/top_pages.rs` asserts every row of this table and that
//! the figure does not move during a stream of a million distinct-heavy requests):
//!
//! | capacity k | shards S | bytes | bytes per counter (k × S) |
//! |---:|---:|---:|---:|
//! | 1,024 | 1 | 307,368 | 300.2 |
//! | 1,024 | 2 | 614,696 | 300.1 |
//! | 1,024 | 8 | 2,458,664 | 300.1 |
//! | 4,096 | 2 | 2,457,896 | 300.0 |
//! | 65,536 | 1 | 19,660,968 | 300.0 |
//!
//! Per counter and shard: the path buffer of [`MAX_PATH_BYTES`] (256), the entry (32), the heap
//! slot (4) and two index slots (2 × 4); per shard 128 bytes of lock and header (one padded
//! pair of cache lines), and 40 bytes for the handle: `40 + S × (300 k + 128)` for a power of
//! two `k`. Paths longer than 256 bytes are counted under their first 256 bytes. The only allocation after `new` is
//! in [`TopPages::snapshot`], which copies the counters out (about `k × S` × the path length).
//!
//! ```
//! use uniqd_core::{PathOptions, TopPages};
//!
//! let top = TopPages::new(100, 2, PathOptions::default())?;
//! for url in ["/a?x=1", "/b", "/a#top", "/a"] {
//!     top.record_url(url);
//! }
//! let snapshot = top.snapshot(10);
//! assert_eq!(snapshot.total_requests, 4);
//! assert_eq!((snapshot.pages[0].path.as_str(), snapshot.pages[0].count), ("/a", 3));
//! assert_eq!(snapshot.pages[0].error, 0); // exact below capacity
//! assert_eq!(snapshot.error_bound, 0);
//! # Ok::<(), uniqd_core::TopPagesError>(())
//! ```

mod path;
mod replicas;
mod summary;

use std::cmp::Ordering as CmpOrdering;
use std::collections::HashMap;
use std::fmt;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError, TryLockError};

pub use self::path::{normalize_path, PathOptions, MAX_PATH_BYTES};
use self::summary::Summary;

/// Default number of counters per shard.
pub const DEFAULT_TOP_PAGES_CAPACITY: usize = 1024;

/// Largest accepted capacity: 65,536 counters ≈ 19.7 MB per shard.
pub const MAX_TOP_PAGES_CAPACITY: usize = 1 << 16;

/// Largest accepted number of shards.
pub const MAX_TOP_PAGES_SHARDS: usize = 256;

/// Why [`TopPages::new`] refused its arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopPagesError {
    /// Capacity 0 or above [`MAX_TOP_PAGES_CAPACITY`].
    Capacity(usize),
    /// Shards 0 or above [`MAX_TOP_PAGES_SHARDS`].
    Shards(usize),
}

impl fmt::Display for TopPagesError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Capacity(n) => write!(
                f,
                "top pages capacity must be 1 ..= {MAX_TOP_PAGES_CAPACITY}, not {n}"
            ),
            Self::Shards(n) => write!(
                f,
                "top pages shards must be 1 ..= {MAX_TOP_PAGES_SHARDS}, not {n}"
            ),
        }
    }
}

impl std::error::Error for TopPagesError {}

/// One page of a [`TopPagesSnapshot`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageCount {
    /// The normalised path (see [`normalize_path`]).
    pub path: String,
    /// Requests counted for it: never below the true number.
    pub count: u64,
    /// At most this much of `count` may belong to other paths: the true number is in
    /// `[count − error, count]`.
    pub error: u64,
}

/// The merged summary at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopPagesSnapshot {
    /// Requests recorded (those with a non-empty path).
    pub total_requests: u64,
    /// Counters per shard.
    pub capacity: usize,
    /// Number of shards.
    pub shards: usize,
    /// Distinct paths in the merged summary (at most `capacity × shards`); `pages` lists the
    /// first of them.
    pub tracked: usize,
    /// Every path with more true requests than this is tracked, and every `error` is at most
    /// this; never above `total_requests / capacity`. 0 while every count is exact.
    pub error_bound: u64,
    /// The tracked pages with the highest counts, by count (descending), ties by path
    /// (ascending, byte order): deterministic for equal counts.
    pub pages: Vec<PageCount>,
}

/// One shard, on cache lines of its own: the lock word and the summary's header are written
/// on every insert by the thread that owns the shard.
#[repr(align(128))]
struct Shard(Mutex<Summary>);

/// Requests per page path, in fixed memory, shared by `&self` between threads.
pub struct TopPages {
    shards: Box<[Shard]>,
    capacity: usize,
    options: PathOptions,
    /// Random keys per instance: paths are client-controlled, so their hashes must not be
    /// predictable (no crafted probe clusters). foldhash rather than std's SipHash: 4 times
    /// faster on a 50-byte path, with the same per-instance random seed.
    hasher: foldhash::fast::RandomState,
}

/// Ordinal of the current thread, handed out on first use: picks its home shard.
fn thread_ordinal() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        // Relaxed: only a distinct number per thread is needed, nothing is published through it.
        static ORDINAL: usize = NEXT.fetch_add(1, Ordering::Relaxed);
    }
    ORDINAL.try_with(|n| *n).unwrap_or(0)
}

/// A panic inside a shard's critical section cannot happen (no allocation, indices in range);
/// should one ever, the summary is still memory-safe to use, so poisoning is ignored rather
/// than turned into a panic on every later request.
fn lock(shard: &Shard) -> MutexGuard<'_, Summary> {
    shard.0.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One shard's counters, copied out under its lock.
struct Copied {
    /// Its `m_s`: the bound for paths it does not monitor.
    evicted: u64,
    /// (count, error, path range in `paths`).
    entries: Vec<(u64, u64, usize, usize)>,
    paths: Vec<u8>,
}

impl TopPages {
    /// `capacity` counters in each of `shards` shards (use about one shard per thread that
    /// records); `options` says how a URL becomes a path.
    ///
    /// # Errors
    ///
    /// [`TopPagesError`] for a capacity or shard count of 0 or above the maximum.
    pub fn new(
        capacity: usize,
        shards: usize,
        options: PathOptions,
    ) -> Result<Self, TopPagesError> {
        if capacity == 0 || capacity > MAX_TOP_PAGES_CAPACITY {
            return Err(TopPagesError::Capacity(capacity));
        }
        if shards == 0 || shards > MAX_TOP_PAGES_SHARDS {
            return Err(TopPagesError::Shards(shards));
        }
        Ok(Self {
            shards: (0..shards)
                .map(|_| Shard(Mutex::new(Summary::new(capacity))))
                .collect(),
            capacity,
            options,
            hasher: foldhash::fast::RandomState::default(),
        })
    }

    /// Counters per shard.
    #[must_use]
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Number of shards.
    #[must_use]
    pub fn shards(&self) -> usize {
        self.shards.len()
    }

    /// How URLs are normalised.
    #[must_use]
    pub fn options(&self) -> PathOptions {
        self.options
    }

    /// Records one request for `url`: its path per [`normalize_path`]. A URL whose path is
    /// empty (`""`, `"?q"`) is not counted. Allocates nothing.
    pub fn record_url(&self, url: &str) {
        if self.options == PathOptions::default() {
            // Nothing to rewrite: count the path in place, without a copy.
            return self.record_bytes(path::plain_path(url).as_bytes());
        }
        let mut buf = [0; MAX_PATH_BYTES];
        let path = normalize_path(url, self.options, &mut buf);
        self.record_bytes(path.as_bytes());
    }

    /// Records one request for `path` as it is (no normalisation), cut to [`MAX_PATH_BYTES`]
    /// on a character boundary. An empty path is not counted.
    pub fn record_path(&self, path: &str) {
        let mut len = path.len().min(MAX_PATH_BYTES);
        while !path.is_char_boundary(len) {
            len -= 1;
        }
        self.record_bytes(&path.as_bytes()[..len]);
    }

    fn record_bytes(&self, path: &[u8]) {
        if path.is_empty() {
            return;
        }
        let hash = self.hasher.hash_one(path);
        let n = self.shards.len();
        let home = thread_ordinal() % n;
        // Home first, then the others in turn (no division per step).
        let order = self.shards[home..].iter().chain(&self.shards[..home]);
        for shard in order {
            match shard.0.try_lock() {
                Ok(mut summary) => return summary.insert(path, hash),
                Err(TryLockError::Poisoned(poisoned)) => {
                    return poisoned.into_inner().insert(path, hash)
                }
                Err(TryLockError::WouldBlock) => {}
            }
        }
        // Every shard busy at once: wait for the home shard.
        lock(&self.shards[home]).insert(path, hash);
    }

    /// Requests recorded so far.
    #[must_use]
    pub fn total(&self) -> u64 {
        self.shards.iter().map(|s| lock(s).total()).sum()
    }

    /// Bytes held, all allocated by [`new`](Self::new): this never changes.
    #[must_use]
    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + self
                .shards
                .iter()
                .map(|s| std::mem::size_of::<Shard>() + lock(s).heap_bytes())
                .sum::<usize>()
    }

    /// The merged summary (see the [module docs](self) for the merge and its bound), with
    /// the first `limit` pages. Locks one shard at a time, only to copy its counters; the
    /// merge and sort happen afterwards, outside every lock.
    #[must_use]
    pub fn snapshot(&self, limit: usize) -> TopPagesSnapshot {
        let mut total = 0u64;
        let mut copies = Vec::with_capacity(self.shards.len());
        for shard in self.shards.iter() {
            let summary = lock(shard);
            total += summary.total();
            let mut copy = Copied {
                evicted: summary.unmonitored_bound(),
                entries: Vec::with_capacity(summary.len()),
                paths: Vec::with_capacity(summary.path_bytes()),
            };
            for (entry, path) in summary.entries() {
                let start = copy.paths.len();
                copy.paths.extend_from_slice(path);
                copy.entries
                    .push((entry.count, entry.error, start, copy.paths.len()));
            }
            drop(summary);
            copies.push(copy);
        }
        let bound: u64 = copies.iter().map(|c| c.evicted).sum();

        // Per path: Σ over the shards holding it of (its count − m_s) and of (m_s − its
        // error); adding M = Σ m_s gives count and error as in the module docs (each term is
        // ≥ 0: counts are ≥ m_s and errors ≤ m_s within a shard).
        let mut merged: HashMap<&[u8], (u64, u64)> =
            HashMap::with_capacity(copies.first().map_or(0, |c| c.entries.len()));
        for copy in &copies {
            for &(count, error, start, end) in &copy.entries {
                let acc = merged.entry(&copy.paths[start..end]).or_insert((0, 0));
                acc.0 += count - copy.evicted;
                acc.1 += copy.evicted - error;
            }
        }
        let mut ranked: Vec<(&[u8], u64, u64)> = merged
            .into_iter()
            .map(|(path, (above, saved))| (path, above + bound, bound - saved))
            .collect();
        let tracked = ranked.len();
        let by_rank = |a: &(&[u8], u64, u64), b: &(&[u8], u64, u64)| -> CmpOrdering {
            b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0))
        };
        if limit < ranked.len() {
            // Only the first `limit` need sorting.
            if limit > 0 {
                ranked.select_nth_unstable_by(limit - 1, by_rank);
            }
            ranked.truncate(limit);
        }
        ranked.sort_unstable_by(by_rank);
        let pages = ranked
            .into_iter()
            .map(|(path, count, error)| PageCount {
                // Stored paths are prefixes of `&str`s cut on character boundaries, so this
                // never replaces anything.
                path: String::from_utf8_lossy(path).into_owned(),
                count,
                error,
            })
            .collect();
        TopPagesSnapshot {
            total_requests: total,
            capacity: self.capacity,
            shards: self.shards.len(),
            tracked,
            error_bound: bound,
            pages,
        }
    }
}

impl fmt::Debug for TopPages {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TopPages")
            .field("capacity", &self.capacity)
            .field("shards", &self.shards.len())
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(s: &TopPagesSnapshot) -> Vec<(&str, u64, u64)> {
        s.pages
            .iter()
            .map(|p| (p.path.as_str(), p.count, p.error))
            .collect()
    }

    #[test]
    fn rejects_bad_sizes() {
        let o = PathOptions::default();
        assert_eq!(
            TopPages::new(0, 1, o).err(),
            Some(TopPagesError::Capacity(0))
        );
        assert!(TopPages::new(MAX_TOP_PAGES_CAPACITY + 1, 1, o).is_err());
        assert_eq!(TopPages::new(1, 0, o).err(), Some(TopPagesError::Shards(0)));
        assert!(TopPages::new(1, MAX_TOP_PAGES_SHARDS + 1, o).is_err());
        assert!(TopPagesError::Capacity(0).to_string().contains("65536"));
    }

    #[test]
    fn shards_do_not_share_cache_lines() {
        assert_eq!(std::mem::align_of::<Shard>(), 128);
        assert_eq!(std::mem::size_of::<Shard>() % 128, 0);
    }

    #[test]
    fn one_shard_is_plain_space_saving() {
        let top = TopPages::new(2, 1, PathOptions::default()).expect("valid");
        for p in ["/a", "/a", "/b", "/c"] {
            top.record_path(p);
        }
        // /c replaced /b (count 1): count 2, error 1.
        let s = top.snapshot(10);
        assert_eq!(rows(&s), vec![("/a", 2, 0), ("/c", 2, 1)]);
        assert_eq!((s.total_requests, s.error_bound, s.tracked), (4, 1, 2));
        lock(&top.shards[0]).check_invariants();
    }

    #[test]
    fn empty_paths_are_not_counted() {
        let top = TopPages::new(4, 1, PathOptions::default()).expect("valid");
        for url in ["", "?q=1", "#f"] {
            top.record_url(url);
        }
        top.record_path("");
        assert_eq!(top.total(), 0);
        assert_eq!(top.snapshot(10).tracked, 0);
    }

    #[test]
    fn merge_adds_the_other_shards_bound() {
        let top = TopPages::new(2, 2, PathOptions::default()).expect("valid");
        // Fill the shards by hand: shard 0 evicts once (m₀ = 1), shard 1 never does.
        {
            let mut s0 = lock(&top.shards[0]);
            for p in [&b"/a"[..], b"/a", b"/b", b"/c"] {
                s0.insert(p, top.hasher.hash_one(p));
            }
            let mut s1 = lock(&top.shards[1]);
            for p in [&b"/a"[..], b"/d"] {
                s1.insert(p, top.hasher.hash_one(p));
            }
        }
        let s = top.snapshot(10);
        // /a: 2 + 1 = 3, exact; /c: 2 (error 1) + m₁ = 0; /d: 1 + m₀ = 1 → 2, error 1.
        // /b (true count 1) is in no shard: at most M = 1, as promised.
        assert_eq!(rows(&s), vec![("/a", 3, 0), ("/c", 2, 1), ("/d", 2, 1)]);
        assert_eq!((s.total_requests, s.error_bound, s.tracked), (6, 1, 3));
        assert!(s.error_bound <= s.total_requests / 2);
    }

    #[test]
    fn limit_keeps_the_order_of_the_full_list() {
        let top = TopPages::new(64, 1, PathOptions::default()).expect("valid");
        for i in 0..40u64 {
            for _ in 0..(i % 7) + 1 {
                top.record_path(&format!("/p{i}"));
            }
        }
        let full = top.snapshot(usize::MAX);
        assert_eq!(full.tracked, 40);
        assert_eq!(full.pages.len(), 40);
        for n in [0, 1, 5, 6, 39, 40, 41] {
            let cut = top.snapshot(n);
            assert_eq!(cut.pages[..], full.pages[..n.min(40)], "limit {n}");
            assert_eq!(cut.tracked, 40);
        }
        // Ties by path: the count-7 pages in byte order.
        let sevens: Vec<&str> = full.pages[..5].iter().map(|p| p.path.as_str()).collect();
        assert_eq!(sevens, ["/p13", "/p20", "/p27", "/p34", "/p6"]);
    }
}
