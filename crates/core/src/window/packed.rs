//! The HyperLogLog registers of one window slot: the counter's layout (16,384 one-byte
//! registers, same index and rank) packed eight to an `AtomicU64`, so that a scrape reads a
//! slot with 2,048 word loads instead of 16,384 byte loads.
//!
//! A scrape merges tens of slots (the 1h window: up to 60), so reading them is the cost that
//! matters; an insert still costs one relaxed load when its register has settled (the usual
//! case), and a compare-and-swap of the word when it grows.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::registers::{index_and_rank, M};

/// Registers per word.
const LANES: usize = 8;

/// 16,384 one-byte registers in 2,048 atomic words; register `i` is byte `i % 8` (little
/// endian) of word `i / 8`.
pub(crate) struct PackedRegisters {
    words: Box<[AtomicU64]>,
}

impl PackedRegisters {
    /// Heap bytes held.
    pub(crate) const HEAP_BYTES: usize = M;

    /// All registers zero.
    pub(crate) fn new() -> Self {
        Self {
            words: (0..M / LANES).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// Applies one hashed element.
    #[inline]
    pub(crate) fn insert_hash(&self, hash: u64) {
        let (index, rank) = index_and_rank(hash);
        self.raise(index, rank);
    }

    /// Raises register `index` to at least `rank`.
    #[inline]
    pub(crate) fn raise(&self, index: usize, rank: u8) {
        let word = &self.words[index / LANES];
        let shift = (index % LANES) * 8;
        // Relaxed, load and compare-and-swap: a register is a lone monotone value through
        // which nothing else is published (as in `crate::registers`); the compare-and-swap is
        // an atomic read-modify-write of the whole word, so it never loses a neighbour's
        // update, and a failed one retries with the word it found.
        let mut current = word.load(Ordering::Relaxed);
        loop {
            if (current >> shift) as u8 >= rank {
                return;
            }
            let raised = current & !(0xff << shift) | u64::from(rank) << shift;
            match word.compare_exchange_weak(current, raised, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return,
                Err(found) => current = found,
            }
        }
    }

    /// Raises every register of `out` to at least this set's value.
    pub(crate) fn max_into(&self, out: &mut [u8; M]) {
        for (dst, word) in out.chunks_exact_mut(LANES).zip(self.words.iter()) {
            // Relaxed: see `raise`; a read during inserts sees each register before or after
            // an update, which is all an estimate needs.
            let bytes = word.load(Ordering::Relaxed).to_le_bytes();
            for (d, b) in dst.iter_mut().zip(bytes) {
                *d = (*d).max(b);
            }
        }
    }

    /// Copies all registers out.
    pub(crate) fn snapshot(&self) -> Box<[u8; M]> {
        let mut out = Box::new([0u8; M]);
        self.max_into(&mut out);
        out
    }

    /// Register-wise maximum with `other`.
    pub(crate) fn merge_from(&self, other: &[u8; M]) {
        for (index, &rank) in other.iter().enumerate() {
            if rank > 0 {
                self.raise(index, rank);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::registers::Registers;

    #[test]
    fn same_registers_as_the_counter() {
        let packed = PackedRegisters::new();
        let plain = Registers::new();
        for i in 0..50_000u64 {
            let hash = crate::hash_element(&i.to_le_bytes());
            packed.insert_hash(hash);
            plain.insert_hash(hash);
        }
        assert_eq!(packed.snapshot(), plain.snapshot());
        let mut out = Box::new([3u8; M]);
        packed.max_into(&mut out);
        assert!((0..M).all(|i| out[i] == plain.get(i).max(3)));
    }

    #[test]
    fn neighbours_in_a_word_never_lose_an_update() {
        // Eight threads, each raising its own byte of every word, through 1..=40.
        let packed = Arc::new(PackedRegisters::new());
        let handles: Vec<_> = (0..LANES)
            .map(|lane| {
                let packed = Arc::clone(&packed);
                std::thread::spawn(move || {
                    for rank in 1..=40u8 {
                        for word in 0..M / LANES {
                            packed.raise(word * LANES + lane, rank);
                        }
                    }
                })
            })
            .collect();
        for handle in handles {
            handle.join().expect("raiser panicked");
        }
        assert!(packed.snapshot().iter().all(|&r| r == 40));
        let mut other = Box::new([0u8; M]);
        other[5] = 50;
        packed.merge_from(&other);
        packed.raise(6, 2); // lower: no change
        let snapshot = packed.snapshot();
        assert_eq!((snapshot[5], snapshot[6], snapshot[7]), (50, 40, 40));
    }
}
