//! One Space-Saving summary (Metwally, Agrawal, El Abbadi, ICDT 2005) of fixed capacity: the
//! single-threaded building block of [`TopPages`](super::TopPages), which keeps one per shard.
//!
//! Layout, all allocated once in [`Summary::new`] and never resized:
//!
//! * `entries`: `k` small records (hash, count, error, heap position, path length);
//! * `paths`: `k` fixed buffers of [`MAX_PATH_BYTES`] bytes, the monitored paths;
//! * `heap`: a binary min-heap of entry indices ordered by count, so the entry to evict (the
//!   minimum) is at the root and an increment moves its entry at most `log₂ k` levels down;
//! * `index`: a linear-probing hash table (load ≤ ½) from the path's 64-bit hash to its entry,
//!   with backward-shift deletion, so no tombstones accumulate however many evictions happen.
//!
//! An insert is therefore one probe sequence plus `O(log k)` heap steps and, on a miss, one copy
//! of the path into its buffer: no allocation ever. Paths are compared byte for byte on a hash
//! match, so two paths never share a counter even if their hashes collide.

use super::path::MAX_PATH_BYTES;

/// Per-entry bookkeeping; the path bytes live in [`Summary::paths`] at the same index.
#[derive(Debug, Clone, Copy)]
pub(super) struct Entry {
    hash: u64,
    /// Space-Saving count: an upper bound of the path's true count in this summary.
    pub(super) count: u64,
    /// How much of `count` may not be the path's own: the count it inherited on insertion.
    pub(super) error: u64,
    heap_pos: u32,
    len: u16,
}

/// A Space-Saving summary of `capacity` counters.
#[derive(Debug)]
pub(super) struct Summary {
    entries: Vec<Entry>,
    paths: Box<[[u8; MAX_PATH_BYTES]]>,
    heap: Vec<u32>,
    /// 0 = empty, otherwise entry index + 1.
    index: Box<[u32]>,
    mask: usize,
    capacity: usize,
    /// Items recorded (the stream length N of this summary).
    total: u64,
    /// Count of the most recently evicted entry (0 before the first eviction). Evicted counts
    /// never decrease, so this bounds the true count of every path not monitored here.
    evicted: u64,
}

impl Summary {
    /// An empty summary of `capacity` counters (1 ..= `MAX_TOP_PAGES_CAPACITY`, checked by the
    /// caller).
    pub(super) fn new(capacity: usize) -> Self {
        let slots = (capacity * 2).next_power_of_two();
        Self {
            entries: Vec::with_capacity(capacity),
            paths: vec![[0; MAX_PATH_BYTES]; capacity].into_boxed_slice(),
            heap: Vec::with_capacity(capacity),
            index: vec![0; slots].into_boxed_slice(),
            mask: slots - 1,
            capacity,
            total: 0,
            evicted: 0,
        }
    }

    /// Heap bytes held (everything is allocated up front, so this never changes).
    pub(super) fn heap_bytes(&self) -> usize {
        self.entries.capacity() * std::mem::size_of::<Entry>()
            + self.paths.len() * MAX_PATH_BYTES
            + self.heap.capacity() * std::mem::size_of::<u32>()
            + self.index.len() * std::mem::size_of::<u32>()
    }

    /// Items recorded (the stream length of this summary).
    pub(super) fn total(&self) -> u64 {
        self.total
    }

    /// Monitored entries (at most the capacity).
    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Total length of the monitored paths, to size a copy of them.
    pub(super) fn path_bytes(&self) -> usize {
        self.entries.iter().map(|e| usize::from(e.len)).sum()
    }

    /// Bound on the count of any path not monitored here (0 while nothing was evicted).
    pub(super) fn unmonitored_bound(&self) -> u64 {
        self.evicted
    }

    /// The monitored entries with their paths, in no particular order.
    pub(super) fn entries(&self) -> impl Iterator<Item = (&Entry, &[u8])> {
        self.entries
            .iter()
            .zip(self.paths.iter())
            .map(|(e, p)| (e, &p[..usize::from(e.len)]))
    }

    /// Records one occurrence of `path` (at most [`MAX_PATH_BYTES`] long) whose hash is `hash`.
    pub(super) fn insert(&mut self, path: &[u8], hash: u64) {
        debug_assert!(path.len() <= MAX_PATH_BYTES);
        self.total += 1;
        let mut slot = self.home(hash);
        loop {
            match self.index[slot] {
                0 => break,
                stored => {
                    let e = stored as usize - 1;
                    if self.entries[e].hash == hash && self.path(e) == path {
                        self.entries[e].count += 1;
                        self.sift_down(self.entries[e].heap_pos as usize);
                        return;
                    }
                }
            }
            slot = (slot + 1) & self.mask;
        }
        // A miss; `slot` is the empty slot that ends the probe sequence.
        let len = path.len().min(MAX_PATH_BYTES);
        let len16 = u16::try_from(len).unwrap_or(u16::MAX);
        if self.entries.len() < self.capacity {
            let e = self.entries.len();
            self.entries.push(Entry {
                hash,
                count: 1,
                error: 0,
                heap_pos: to_u32(self.heap.len()),
                len: len16,
            });
            self.paths[e][..len].copy_from_slice(&path[..len]);
            self.index[slot] = to_u32(e + 1);
            self.heap.push(to_u32(e));
            self.sift_up(self.heap.len() - 1);
        } else {
            // Evict the minimum: the new path inherits its count as the error bound.
            let e = self.heap[0] as usize;
            let old = self.entries[e];
            self.remove_from_index(old.hash, e);
            self.evicted = old.count;
            self.entries[e] = Entry {
                hash,
                count: old.count + 1,
                error: old.count,
                heap_pos: 0,
                len: len16,
            };
            self.paths[e][..len].copy_from_slice(&path[..len]);
            // The deletion may have shifted slots, so probe again for a free one.
            let mut slot = self.home(hash);
            while self.index[slot] != 0 {
                slot = (slot + 1) & self.mask;
            }
            self.index[slot] = to_u32(e + 1);
            self.sift_down(0);
        }
    }

    fn home(&self, hash: u64) -> usize {
        // Truncation intended: the low bits pick the slot.
        (hash as usize) & self.mask
    }

    fn path(&self, e: usize) -> &[u8] {
        &self.paths[e][..usize::from(self.entries[e].len)]
    }

    /// Removes entry `e` (whose hash is `hash`) from the index, shifting later members of its
    /// cluster back so that every probe sequence stays unbroken.
    fn remove_from_index(&mut self, hash: u64, e: usize) {
        let mut hole = self.home(hash);
        while self.index[hole] as usize != e + 1 {
            hole = (hole + 1) & self.mask;
        }
        let mut next = hole;
        loop {
            self.index[hole] = 0;
            loop {
                next = (next + 1) & self.mask;
                let stored = self.index[next];
                if stored == 0 {
                    return;
                }
                let ideal = self.home(self.entries[stored as usize - 1].hash);
                // The member at `next` may move into `hole` unless its home lies cyclically
                // in (hole, next].
                let stays = if hole <= next {
                    hole < ideal && ideal <= next
                } else {
                    hole < ideal || ideal <= next
                };
                if !stays {
                    self.index[hole] = stored;
                    hole = next;
                    break;
                }
            }
        }
    }

    fn count_at(&self, pos: usize) -> u64 {
        self.entries[self.heap[pos] as usize].count
    }

    fn swap(&mut self, a: usize, b: usize) {
        self.heap.swap(a, b);
        self.entries[self.heap[a] as usize].heap_pos = to_u32(a);
        self.entries[self.heap[b] as usize].heap_pos = to_u32(b);
    }

    fn sift_up(&mut self, mut pos: usize) {
        while pos > 0 {
            let parent = (pos - 1) / 2;
            if self.count_at(pos) >= self.count_at(parent) {
                break;
            }
            self.swap(pos, parent);
            pos = parent;
        }
    }

    fn sift_down(&mut self, mut pos: usize) {
        let n = self.heap.len();
        loop {
            let left = 2 * pos + 1;
            if left >= n {
                return;
            }
            let right = left + 1;
            let child = if right < n && self.count_at(right) < self.count_at(left) {
                right
            } else {
                left
            };
            if self.count_at(pos) <= self.count_at(child) {
                return;
            }
            self.swap(pos, child);
            pos = child;
        }
    }

    /// Checks every structural invariant (tests only).
    #[cfg(test)]
    pub(super) fn check_invariants(&self) {
        assert_eq!(self.heap.len(), self.entries.len());
        for (pos, &e) in self.heap.iter().enumerate() {
            assert_eq!(self.entries[e as usize].heap_pos as usize, pos);
            if pos > 0 {
                assert!(self.count_at((pos - 1) / 2) <= self.count_at(pos));
            }
        }
        let sum: u64 = self.entries.iter().map(|e| e.count).sum();
        assert_eq!(
            sum, self.total,
            "Space-Saving counts sum to the stream length"
        );
        let used = self.index.iter().filter(|&&s| s != 0).count();
        assert_eq!(used, self.entries.len());
        for e in 0..self.entries.len() {
            let mut slot = self.home(self.entries[e].hash);
            while self.index[slot] as usize != e + 1 {
                assert_ne!(
                    self.index[slot], 0,
                    "entry {e} unreachable from its home slot"
                );
                slot = (slot + 1) & self.mask;
            }
            assert!(self.entries[e].error <= self.evicted);
            assert!(self.entries[e].count >= self.evicted);
        }
    }
}

/// Entry indices and heap positions fit in `u32`: capacity is at most `MAX_TOP_PAGES_CAPACITY`.
fn to_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash(path: &[u8]) -> u64 {
        // A deliberately weak hash so that clusters and collisions occur.
        path.iter()
            .fold(0u64, |h, &b| h.wrapping_mul(31).wrapping_add(u64::from(b)))
            % 7
    }

    #[test]
    fn exact_below_capacity_and_invariants_under_churn() {
        let mut s = Summary::new(8);
        for i in 0..8u8 {
            for _ in 0..=i {
                s.insert(&[b'a' + i], hash(&[b'a' + i]));
                s.check_invariants();
            }
        }
        let mut got: Vec<(u8, u64, u64)> =
            s.entries().map(|(e, p)| (p[0], e.count, e.error)).collect();
        got.sort_unstable();
        let want: Vec<(u8, u64, u64)> = (0..8u8).map(|i| (b'a' + i, u64::from(i) + 1, 0)).collect();
        assert_eq!(got, want);
        assert_eq!(s.unmonitored_bound(), 0);
        // Churn: many distinct paths through colliding hashes.
        for i in 0..2_000u32 {
            let p = format!("/{}", i % 37);
            s.insert(p.as_bytes(), hash(p.as_bytes()));
            s.check_invariants();
        }
        assert_eq!(s.total(), 36 + 2_000);
    }

    #[test]
    fn bounds_hold_against_true_counts_with_colliding_hashes() {
        use std::collections::HashMap;
        // A skewed stream (path i with weight ~ 1/i) through a weak hash, checked after every
        // insert: each monitored count brackets the truth within its error, every unmonitored
        // path occurred at most `evicted` times, and `evicted` is at most N/k.
        let capacity = 16;
        let mut s = Summary::new(capacity);
        let mut truth: HashMap<Vec<u8>, u64> = HashMap::new();
        let mut x: u64 = 12345;
        for n in 1..=5_000u64 {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            let r = (x >> 33) % 1000 + 1;
            let path = format!("/{}", 1000 / r).into_bytes();
            *truth.entry(path.clone()).or_default() += 1;
            s.insert(&path, hash(&path));
            if n % 97 != 0 && n < 4_900 {
                continue;
            }
            s.check_invariants();
            assert!(s.unmonitored_bound() <= n / capacity as u64);
            let monitored: HashMap<&[u8], &Entry> = s.entries().map(|(e, p)| (p, e)).collect();
            for (path, &f) in &truth {
                match monitored.get(path.as_slice()) {
                    Some(e) => assert!(e.count - e.error <= f && f <= e.count),
                    None => assert!(f <= s.unmonitored_bound()),
                }
            }
        }
    }
}
