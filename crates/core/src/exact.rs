//! The exact phase: a fixed-size, insert-only, lock-free hash set of 64-bit element hashes.
//!
//! Open addressing with linear probing over `AtomicU64` slots; 0 marks an empty slot (the one
//! element whose hash is 0 has a flag of its own). A slot is claimed with one compare-and-swap,
//! so concurrent inserters never block each other and never lose an element. The set never
//! grows: it is sized for the threshold plus a third, so probe runs stay short (load ≤ 0.75
//! until the counter leaves the exact phase) and late inserts racing with the swap still fit.
//!
//! Storing the 64-bit hash rather than the address keeps every slot one machine word (IPv6
//! addresses are 128 bits) and makes the exact set a lossless source of the sketch registers.
//! Two distinct addresses collide only with probability n²/2⁶⁵ (below 10⁻¹¹ at n = 4,096),
//! far below any error a caller could observe.

#![forbid(unsafe_code)]

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

/// Default exact threshold: up to this many distinct addresses the count is exact.
///
/// 4,096 keeps the whole counter within 64 KiB in the exact phase (43 KiB set + 16 KiB
/// registers); see the crate docs for the measurements behind it.
pub const DEFAULT_THRESHOLD: usize = 4096;

/// Outcome of [`ExactSet::insert`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Inserted {
    /// The hash was new; the set now holds `len` hashes.
    New {
        /// Number of hashes after this insert.
        len: usize,
    },
    /// The hash was already present.
    Present,
    /// No free slot was left (only possible well past the threshold, during a swap).
    Full,
}

/// Insert-only lock-free set of `u64` hashes.
pub(crate) struct ExactSet {
    slots: Box<[AtomicU64]>,
    has_zero: AtomicBool,
    len: AtomicUsize,
}

impl ExactSet {
    /// A set with room for `threshold + 1` hashes at load ≤ 0.75, rounded to a cache line.
    pub(crate) fn for_threshold(threshold: usize) -> Self {
        let wanted = (threshold + 1).saturating_mul(4).div_ceil(3);
        let capacity = wanted.div_ceil(8).max(1) * 8;
        Self {
            slots: (0..capacity).map(|_| AtomicU64::new(0)).collect(),
            has_zero: AtomicBool::new(false),
            len: AtomicUsize::new(0),
        }
    }

    /// Number of slots.
    #[cfg(test)]
    pub(crate) fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Heap bytes held by the slots.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.slots.len() * std::mem::size_of::<AtomicU64>()
    }

    /// Number of distinct hashes inserted.
    pub(crate) fn len(&self) -> usize {
        // Relaxed: the count is a lone value; each increment is atomic at any ordering.
        self.len.load(Ordering::Relaxed)
    }

    /// Inserts `hash`.
    #[inline]
    pub(crate) fn insert(&self, hash: u64) -> Inserted {
        if hash == 0 {
            // AcqRel on the flag: Release as for a slot in the loop below; the count is a lone
            // value (Relaxed).
            return if self.has_zero.swap(true, Ordering::AcqRel) {
                Inserted::Present
            } else {
                Inserted::New {
                    len: self.len.fetch_add(1, Ordering::Relaxed) + 1,
                }
            };
        }
        let capacity = self.slots.len();
        // Multiply-shift maps the hash onto [0, capacity) without a power-of-two size.
        let mut index = ((u128::from(hash) * capacity as u128) >> 64) as usize;
        for _ in 0..capacity {
            let slot = &self.slots[index];
            // Relaxed loads: a slot's value *is* the data, and a compare-and-swap on one
            // location is atomic at any ordering, so two inserters can never both claim a slot
            // or drop a hash. The successful CAS is Release so that a reader who Acquire-loads
            // the hash (`for_each`, used by snapshots) also sees the register update the
            // inserter made before it: a saved state never holds a hash without its register.
            let current = slot.load(Ordering::Relaxed);
            if current == hash {
                return Inserted::Present;
            }
            if current == 0 {
                match slot.compare_exchange(0, hash, Ordering::Release, Ordering::Relaxed) {
                    Ok(_) => {
                        return Inserted::New {
                            len: self.len.fetch_add(1, Ordering::Relaxed) + 1,
                        };
                    }
                    Err(winner) if winner == hash => return Inserted::Present,
                    Err(_) => {} // Another hash took the slot; probe on.
                }
            }
            index += 1;
            if index == capacity {
                index = 0;
            }
        }
        Inserted::Full
    }

    /// Calls `f` with every hash in the set.
    pub(crate) fn for_each(&self, mut f: impl FnMut(u64)) {
        // Acquire: pairs with the Release in `insert` (and on `has_zero`), see there.
        if self.has_zero.load(Ordering::Acquire) {
            f(0);
        }
        for slot in self.slots.iter() {
            let hash = slot.load(Ordering::Acquire);
            if hash != 0 {
                f(hash);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_distinct_hashes_including_zero() {
        let set = ExactSet::for_threshold(100);
        assert_eq!(set.insert(0), Inserted::New { len: 1 });
        assert_eq!(set.insert(0), Inserted::Present);
        for h in 1..=100u64 {
            assert_eq!(
                set.insert(h.wrapping_mul(0x9e37_79b9_7f4a_7c15)),
                Inserted::New {
                    len: h as usize + 1
                }
            );
        }
        assert_eq!(set.insert(0x9e37_79b9_7f4a_7c15), Inserted::Present);
        assert_eq!(set.len(), 101);
        let mut seen = Vec::new();
        set.for_each(|h| seen.push(h));
        assert_eq!(seen.len(), 101);
    }

    #[test]
    fn sized_for_load_three_quarters() {
        let set = ExactSet::for_threshold(4096);
        assert!(set.capacity() * 3 >= 4097 * 4);
        assert_eq!(set.capacity() % 8, 0);
    }

    #[test]
    fn reports_full_instead_of_looping() {
        let set = ExactSet::for_threshold(0);
        let mut outcomes = Vec::new();
        for h in 1..=20u64 {
            outcomes.push(set.insert(h << 40));
        }
        assert_eq!(set.len(), set.capacity());
        assert_eq!(outcomes.last(), Some(&Inserted::Full));
    }
}
