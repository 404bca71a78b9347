//! One tier of the window ring: a fixed ring of lock-free slots, one per interval (a minute or
//! an hour), each an exact set that turns into HyperLogLog registers when it overflows.
//!
//! # Lock-free rotation
//!
//! Each cell is a crossbeam-epoch [`Atomic`] pointer to a [`Slot`] whose `index` (the
//! interval number since the Unix epoch) is fixed at creation. An insert for interval `i`
//! loads cell `i % len`:
//! * the slot's index is `i`: insert into it;
//! * the cell is empty or holds an older interval (stale by at least one full ring): build a
//!   fresh slot for `i` and compare-and-swap it in; the winner defers freeing the old slot
//!   until no pinned thread can still read it; a loser drops its fresh slot and retries, and
//!   finds the winner's slot for `i` (or a newer one);
//! * the slot's index is newer than `i`: `i` is older than the ring holds; the insert is
//!   dropped (reported as `false`).
//!
//! So two slots for the same interval are never both live, and an insert into a slot that is
//! then replaced was for an interval at least a full ring older than the replacement: it has
//! left every window.
//!
//! Inside a slot, the exact set turns into registers without a lock: an insert first checks
//! for registers (and raises them if present); otherwise it adds its hash to the exact set,
//! and the insert that overflows it installs the registers (one CAS) and copies every hash of
//! the set into them. An insert that added a new hash to the set re-checks for registers after
//! a `SeqCst` fence, and the migrating thread scans the set after a `SeqCst` fence following
//! the install: by the fences' total order, either the scan sees the hash or the inserter sees
//! the registers (and raises them itself), so no hash is lost in the hand-over.

use std::sync::atomic::{fence, Ordering};

use crossbeam_epoch::{self as epoch, Atomic, Guard, Owned, Shared};

use super::merge::Merge;
use super::packed::PackedRegisters;
use crate::exact::{ExactSet, Inserted};
use crate::registers::M;

/// Distinct addresses a slot counts exactly before it allocates registers.
pub const SLOT_EXACT_THRESHOLD: usize = 256;

/// One interval's addresses: an exact set, then registers once it overflows.
pub(crate) struct Slot {
    index: u64,
    exact: ExactSet,
    /// Null while the slot is exact; never unlinked once set (freed with the slot).
    registers: Atomic<PackedRegisters>,
}

/// What a slot holds, for saving it.
pub(crate) enum SlotContents {
    /// Every hash (the slot never overflowed).
    Exact(Vec<u64>),
    /// The registers, and the exact count at the overflow.
    Registers(Box<[u8; M]>),
}

impl Slot {
    fn new(index: u64) -> Self {
        Self {
            index,
            exact: ExactSet::for_threshold(SLOT_EXACT_THRESHOLD),
            registers: Atomic::null(),
        }
    }

    fn registers<'g>(&self, ordering: Ordering, guard: &'g Guard) -> Option<&'g PackedRegisters> {
        let shared = self.registers.load(ordering, guard);
        #[allow(unsafe_code)]
        // SAFETY: a non-null `registers` pointer is installed once and only freed by `Drop`
        // of the slot, which runs after the slot itself was unlinked and every guard pinned
        // at that time is gone; the caller's guard keeps the slot, hence the registers, alive.
        unsafe {
            shared.as_ref()
        }
    }

    fn insert(&self, hash: u64, guard: &Guard) {
        // Acquire: pairs with the AcqRel install in `overflow`, so the registers' contents
        // (zeroed, then migrated hashes) are visible before we raise them.
        if let Some(regs) = self.registers(Ordering::Acquire, guard) {
            regs.insert_hash(hash);
            return;
        }
        match self.exact.insert(hash) {
            Inserted::Present => {}
            Inserted::New { len } if len <= SLOT_EXACT_THRESHOLD => {
                // SeqCst fence: orders our set insert before the re-check against the
                // migrator's install-then-fence-then-scan (see the module docs).
                fence(Ordering::SeqCst);
                if let Some(regs) = self.registers(Ordering::Acquire, guard) {
                    regs.insert_hash(hash);
                }
            }
            Inserted::New { .. } | Inserted::Full => {
                self.overflow(guard).insert_hash(hash);
            }
        }
    }

    /// Installs the registers (if no one has yet) and copies the exact set into them.
    fn overflow<'g>(&self, guard: &'g Guard) -> &'g PackedRegisters {
        let regs = match self.registers.compare_exchange(
            Shared::null(),
            Owned::new(PackedRegisters::new()),
            // AcqRel: Release publishes the zeroed registers to Acquire readers; Acquire on
            // failure sees the winner's.
            Ordering::AcqRel,
            Ordering::Acquire,
            guard,
        ) {
            Ok(installed) => installed,
            // The loser's fresh registers come back in `new` and are dropped here.
            Err(lost) => lost.current,
        };
        #[allow(unsafe_code)]
        // SAFETY: `regs` is non-null (either just installed or the winner's) and lives as long
        // as the slot, which `guard` keeps alive (see `Slot::registers`).
        let regs = unsafe { regs.deref() };
        // SeqCst fence: pairs with the fence in `insert` (see the module docs).
        fence(Ordering::SeqCst);
        self.exact.for_each(|h| {
            regs.insert_hash(h);
        });
        regs
    }

    /// Adds this slot to a merge.
    fn merge_into(&self, merge: &mut Merge, guard: &Guard) {
        // Acquire: see `insert`.
        match self.registers(Ordering::Acquire, guard) {
            Some(regs) => merge.add_registers(regs, self.exact.len() as u64),
            None => self.exact.for_each(|h| merge.add_hash(h)),
        }
    }

    fn contents(&self, guard: &Guard) -> SlotContents {
        // Acquire: see `insert`.
        match self.registers(Ordering::Acquire, guard) {
            Some(regs) => SlotContents::Registers(regs.snapshot()),
            None => {
                let mut hashes = Vec::with_capacity(self.exact.len());
                self.exact.for_each(|h| hashes.push(h));
                SlotContents::Exact(hashes)
            }
        }
    }

    fn heap_bytes(&self, guard: &Guard) -> usize {
        let regs = if self.registers(Ordering::Acquire, guard).is_some() {
            PackedRegisters::HEAP_BYTES + std::mem::size_of::<PackedRegisters>()
        } else {
            0
        };
        std::mem::size_of::<Self>() + self.exact.heap_bytes() + regs
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        // `&mut self`: no other thread can reach the slot any more.
        let guard = epoch::pin();
        let regs = self
            .registers
            .swap(Shared::null(), Ordering::Relaxed, &guard);
        if !regs.is_null() {
            #[allow(unsafe_code)]
            // SAFETY: the slot is being dropped, so no thread holds a reference to it or to
            // its registers (slots are freed only through `defer_destroy` after every guard
            // that could see them is gone); we own the pointer exclusively.
            unsafe {
                drop(regs.into_owned());
            }
        }
    }
}

/// A ring of `len` slots for intervals of `interval_ms`; see the module docs.
pub(crate) struct Tier {
    cells: Box<[Atomic<Slot>]>,
    interval_ms: u64,
}

impl Tier {
    pub(crate) fn new(len: usize, interval_ms: u64) -> Self {
        Self {
            cells: (0..len.max(1)).map(|_| Atomic::null()).collect(),
            interval_ms,
        }
    }

    /// Number of slots.
    pub(crate) fn len(&self) -> u64 {
        self.cells.len() as u64
    }

    /// Length of one interval, milliseconds.
    pub(crate) fn interval_ms(&self) -> u64 {
        self.interval_ms
    }

    fn cell(&self, index: u64) -> &Atomic<Slot> {
        // The remainder is below `cells.len()`, a `usize`.
        &self.cells[(index % self.len()) as usize]
    }

    /// The live slot for interval `index`, if the cell holds it.
    fn slot<'g>(&self, index: u64, guard: &'g Guard) -> Option<&'g Slot> {
        // Acquire: pairs with the AcqRel CAS in `insert`, so a slot's fields are visible.
        let shared = self.cell(index).load(Ordering::Acquire, guard);
        #[allow(unsafe_code)]
        // SAFETY: slots are only freed through `defer_destroy` after being unlinked by the
        // CAS in `insert`; `guard` was pinned before this load, so the slot outlives it.
        unsafe { shared.as_ref() }.filter(|slot| slot.index == index)
    }

    /// Counts `hash` in interval `index`. Returns `false` if the ring already holds a newer
    /// interval in that cell (the event is older than the ring).
    pub(crate) fn insert(&self, hash: u64, index: u64, guard: &Guard) -> bool {
        let cell = self.cell(index);
        loop {
            // Acquire: see `slot`.
            let current = cell.load(Ordering::Acquire, guard);
            #[allow(unsafe_code)]
            // SAFETY: as in `slot`.
            match unsafe { current.as_ref() } {
                Some(slot) if slot.index == index => {
                    slot.insert(hash, guard);
                    return true;
                }
                Some(slot) if slot.index > index => return false,
                _ => {
                    let fresh = Owned::new(Slot::new(index));
                    // AcqRel on success: Release publishes the fresh slot, Acquire orders the
                    // unlink of the old one. Acquire on failure: we reload anyway.
                    if cell
                        .compare_exchange(
                            current,
                            fresh,
                            Ordering::AcqRel,
                            Ordering::Acquire,
                            guard,
                        )
                        .is_ok()
                        && !current.is_null()
                    {
                        #[allow(unsafe_code)]
                        // SAFETY: our CAS unlinked `current`; only one CAS can unlink a given
                        // pointer, and no code stores it again, so no new reference can be
                        // made; threads still holding it are pinned, and the epoch waits.
                        unsafe {
                            guard.defer_destroy(current);
                        }
                    }
                    // Won or lost, reload: the cell now holds a slot for `index` or newer.
                }
            }
        }
    }

    /// Merges the slots of intervals `from ..= to`, clamped to the `len` intervals ending at
    /// `now_index`.
    pub(crate) fn merge(&self, from: u64, to: u64, now_index: u64, merge: &mut Merge) {
        let from = from.max(now_index.saturating_sub(self.len() - 1));
        let guard = epoch::pin();
        for index in from..=to.min(now_index) {
            if let Some(slot) = self.slot(index, &guard) {
                slot.merge_into(merge, &guard);
            }
        }
    }

    /// The contents of interval `index`'s slot, if the cell holds it.
    pub(crate) fn slot_contents(&self, index: u64) -> Option<SlotContents> {
        let guard = epoch::pin();
        Some(self.slot(index, &guard)?.contents(&guard))
    }

    /// Every retained slot at `now_index`: its interval and contents, oldest first.
    pub(crate) fn contents(&self, now_index: u64) -> Vec<(u64, SlotContents)> {
        let guard = epoch::pin();
        (now_index.saturating_sub(self.len() - 1)..=now_index)
            .filter_map(|index| Some((index, self.slot(index, &guard)?.contents(&guard))))
            .collect()
    }

    /// Raises interval `index`'s slot by saved registers (creating the slot if needed).
    pub(crate) fn restore_registers(&self, index: u64, registers: &[u8; M]) -> bool {
        let guard = epoch::pin();
        // Claims (or finds) the slot with a no-op insert of nothing: `overflow` installs the
        // registers, which then absorb the saved ones.
        if !self.claim(index, &guard) {
            return false;
        }
        match self.slot(index, &guard) {
            Some(slot) => {
                slot.overflow(&guard).merge_from(registers);
                true
            }
            // Replaced by a newer interval between the claim and now: too old to keep.
            None => false,
        }
    }

    /// Makes sure the cell for `index` holds a slot for it (not newer).
    fn claim(&self, index: u64, guard: &Guard) -> bool {
        if self.slot(index, guard).is_some() {
            return true;
        }
        let cell = self.cell(index);
        // Acquire: see `slot`.
        let current = cell.load(Ordering::Acquire, guard);
        #[allow(unsafe_code)]
        // SAFETY: as in `slot`.
        if unsafe { current.as_ref() }.is_some_and(|slot| slot.index > index) {
            return false;
        }
        let fresh = Owned::new(Slot::new(index));
        // AcqRel/Acquire: as in `insert`.
        match cell.compare_exchange(current, fresh, Ordering::AcqRel, Ordering::Acquire, guard) {
            Ok(_) if !current.is_null() => {
                #[allow(unsafe_code)]
                // SAFETY: as in `insert`: our CAS unlinked `current`.
                unsafe {
                    guard.defer_destroy(current);
                }
                true
            }
            Ok(_) => true,
            Err(_) => self.slot(index, guard).is_some(),
        }
    }

    /// Bytes held: cells plus allocated slots.
    pub(crate) fn memory_bytes(&self) -> usize {
        let guard = epoch::pin();
        let slots: usize = self
            .cells
            .iter()
            .map(|cell| {
                // Acquire: see `slot`.
                let shared = cell.load(Ordering::Acquire, &guard);
                #[allow(unsafe_code)]
                // SAFETY: as in `slot`.
                unsafe { shared.as_ref() }.map_or(0, |slot| slot.heap_bytes(&guard))
            })
            .sum();
        self.cells.len() * std::mem::size_of::<Atomic<Slot>>() + slots
    }

    /// Worst-case bytes: every slot allocated with registers.
    pub(crate) fn max_memory_bytes(&self) -> usize {
        let slot = std::mem::size_of::<Slot>()
            + ExactSet::for_threshold(SLOT_EXACT_THRESHOLD).heap_bytes()
            + PackedRegisters::HEAP_BYTES
            + std::mem::size_of::<PackedRegisters>();
        self.cells.len() * (std::mem::size_of::<Atomic<Slot>>() + slot)
    }
}

impl Drop for Tier {
    fn drop(&mut self) {
        let guard = epoch::pin();
        for cell in self.cells.iter() {
            let shared = cell.swap(Shared::null(), Ordering::Relaxed, &guard);
            if !shared.is_null() {
                #[allow(unsafe_code)]
                // SAFETY: `&mut self`: no thread can reach the tier, so nobody else holds
                // this slot except through guards the epoch accounts for.
                unsafe {
                    guard.defer_destroy(shared);
                }
            }
        }
    }
}
