//! The traffic of the groups that have no slot: a Count-Min sketch (Cormode and
//! Muthukrishnan, 2005) of `DEPTH` rows of relaxed `AtomicU64` counters, so that recording an
//! untracked group's line is four `fetch_add`s and no lock, no allocation and no name stored.
//!
//! An estimate is never below the group's true number of untracked lines, and exceeds it by at
//! most `e·N/width` with probability `1 − e^−DEPTH` (N: untracked lines in all). It only
//! decides *which* group deserves a slot, never a count that is exported.

use std::sync::atomic::{AtomicU64, Ordering};

/// Rows: four independent estimates, the smallest wins.
const DEPTH: usize = 4;

/// Lines of untracked groups, by the hash of their name.
#[derive(Debug)]
pub(super) struct Sketch {
    cells: Box<[AtomicU64]>,
    mask: usize,
}

impl Sketch {
    /// A sketch of `DEPTH` rows of `width` counters (a power of two, at least 1,024, 16 per
    /// tracked group).
    pub(super) fn new(max_groups: usize) -> Self {
        let width = (max_groups * 16).next_power_of_two().max(1024);
        Self {
            cells: (0..width * DEPTH).map(|_| AtomicU64::new(0)).collect(),
            mask: width - 1,
        }
    }

    /// Adds one line of the group hashed `hash` and returns its estimate, this line included.
    #[inline]
    pub(super) fn add(&self, hash: u64) -> u64 {
        let width = self.mask + 1;
        let mut estimate = u64::MAX;
        for row in 0..DEPTH {
            let cell = &self.cells[row * width + self.column(hash, row)];
            // Relaxed: each cell is an independent monotone counter; nothing is published
            // through it, and a slightly stale sum only delays a promotion by a line.
            estimate = estimate.min(cell.fetch_add(1, Ordering::Relaxed) + 1);
        }
        estimate
    }

    /// The column of `hash` in `row`: double hashing on the two halves of the 64-bit hash
    /// (Kirsch and Mitzenmacher), independent enough for a Count-Min sketch.
    #[inline]
    fn column(&self, hash: u64, row: usize) -> usize {
        let (h1, h2) = (hash as u32 as usize, ((hash >> 32) as usize) | 1);
        h1.wrapping_add(row.wrapping_mul(h2)) & self.mask
    }

    /// Heap bytes held (fixed at creation).
    pub(super) fn heap_bytes(&self) -> usize {
        self.cells.len() * std::mem::size_of::<AtomicU64>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_underestimates_and_is_exact_when_alone() {
        let sketch = Sketch::new(100);
        assert_eq!(sketch.heap_bytes(), 4 * 2048 * 8);
        for i in 1..=10 {
            assert_eq!(sketch.add(42), i);
        }
        let mut truth = std::collections::HashMap::new();
        for i in 0..50_000u64 {
            let h = crate::murmur::hash_element(&(i % 997).to_le_bytes());
            *truth.entry(h).or_insert(0u64) += 1;
            let estimate = sketch.add(h);
            assert!(estimate >= truth[&h]);
        }
    }
}
