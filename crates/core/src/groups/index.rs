//! Which slot holds the group of a given name hash: an immutable open-addressing table
//! (linear probing, load ≤ ½), rebuilt whole on every change of the tracked set and published
//! by one atomic pointer swap. Readers never see it change under them, so a lookup needs no
//! lock and no retry; a change costs one small allocation (`2 × max_groups` rounded up to a
//! power of two, 16 bytes a slot), which happens only at a promotion.

/// Hash of the name and slot number + 1 (0: empty).
#[derive(Debug, Clone, Copy, Default)]
struct Entry {
    hash: u64,
    slot: u64,
}

/// An immutable map from a name hash to the slot that may hold that name.
#[derive(Debug)]
pub(super) struct Index {
    entries: Box<[Entry]>,
    mask: usize,
}

impl Index {
    /// An index of `pairs` (name hash, slot) for a table of at most `max_groups` groups.
    pub(super) fn new(max_groups: usize, pairs: impl IntoIterator<Item = (u64, usize)>) -> Self {
        let len = (max_groups * 2).next_power_of_two().max(2);
        let mut entries = vec![Entry::default(); len].into_boxed_slice();
        let mask = len - 1;
        for (hash, slot) in pairs {
            let mut at = (hash as usize) & mask;
            while entries[at].slot != 0 {
                at = (at + 1) & mask;
            }
            entries[at] = Entry {
                hash,
                slot: slot as u64 + 1,
            };
        }
        Self { entries, mask }
    }

    /// The slots whose group's name hashes to `hash` (usually one; two only on a 64-bit
    /// collision, which the caller settles by comparing names).
    #[inline]
    pub(super) fn find(&self, hash: u64) -> impl Iterator<Item = usize> + '_ {
        let start = (hash as usize) & self.mask;
        (0..self.entries.len())
            .map(move |i| self.entries[(start + i) & self.mask])
            .take_while(|e| e.slot != 0)
            .filter(move |e| e.hash == hash)
            .map(|e| (e.slot - 1) as usize)
    }

    /// Heap bytes held.
    pub(super) fn heap_bytes(&self) -> usize {
        self.entries.len() * std::mem::size_of::<Entry>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_every_pair_and_nothing_else() {
        let index = Index::new(4, [(7, 0), (15, 1), (7, 3), (1, 2)]);
        assert_eq!(index.find(7).collect::<Vec<_>>(), [0, 3]);
        assert_eq!(index.find(15).collect::<Vec<_>>(), [1]);
        assert_eq!(index.find(1).collect::<Vec<_>>(), [2]);
        assert_eq!(index.find(2).count(), 0);
        assert_eq!(Index::new(4, []).find(0).count(), 0);
        assert_eq!(index.heap_bytes(), 8 * 16);
    }
}
