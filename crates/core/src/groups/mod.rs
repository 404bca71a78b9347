//! [`Groups`]: distinct addresses per group (site, tenant, service: the value of the
//! `--group-by` field), in bounded memory.
//!
//! # What is counted
//!
//! At most `max_groups` groups are *tracked*: each has its own [`UniqueCounter`], the same
//! exact-then-sketch counter as the total (exact up to the same threshold, then a
//! Redis-compatible HyperLogLog). Every other line goes to one more counter, [`OTHER_GROUP`]
//! (`__other__`). The total is still recorded by its own counter, so `unique_ip_addresses`
//! is unchanged; and because an evicted group's counter is merged into `__other__`, the
//! **union property** holds: the union of every tracked group and `__other__` is the total
//! (register for register, `tests/groups.rs`).
//!
//! # Which groups get a slot: heavy hitters by traffic
//!
//! While there are free slots, a new group takes one on its first line. Once full, the lines
//! of untracked groups are counted in a Count-Min sketch (four rows of relaxed atomics; a
//! group name is never stored until it is promoted). Every tracked group has a *score*: the
//! sketch's estimate of its lines when it was promoted plus its lines since, as in
//! Space-Saving. An untracked group whose estimate exceeds the lowest score by a margin
//! (a quarter of it, at least 1) takes that group's slot. The margin bounds the churn: the
//! lowest score never decreases, and within each range `[1.25^k, 1.25^(k+1))` of it every
//! slot changes hands at most once, so N lines cause at most about
//! `max_groups × (log_1.25 N + 5)` promotions (9,800 for 10⁹ lines and 100 groups), however
//! adversarial the stream.
//!
//! # What an eviction does to a count
//!
//! An evicted group's counter is merged into `__other__` (so its addresses stay in the union)
//! and freed; the group's later lines count in `__other__` while it is untracked, and if it is
//! promoted again it **restarts from zero** (its gauge is a new series for Prometheus in
//! effect; `docs/groups.md`). With fewer distinct groups than `max_groups`, nothing is ever
//! evicted and every group's count is exactly the total counter's would be for its lines.
//!
//! # Lock-free on the ingest path
//!
//! A line of a tracked group (the common case) is: hash the name (foldhash, seeded at
//! random per `Groups`), load the index (an immutable table, `Acquire`), load the slot
//! (`Acquire`), compare the name, insert into its counter (the address hash the total
//! computed, under the epoch guard [`Views`](crate::Views) pinned once for both), one
//! relaxed `fetch_add` on its score. A line of an
//! untracked group inserts into `__other__` and adds to the sketch. A promotion (rare, bounded
//! above) is taken by the one thread that wins a compare-and-swap on a flag (others just go
//! on); it allocates the new group's counter, swaps it into the slot, publishes a rebuilt
//! index by an atomic pointer swap and retires the old ones through crossbeam-epoch. A reader
//! holding the old index may miss the new group for that one line (it then counts in
//! `__other__`), never counts into a freed counter. An insert racing with an eviction can land
//! in the evicted counter after its merge: that address is then missing from the union of the
//! groups (never from the total).
//!
//! # Saved in the state file
//!
//! [`Groups::to_state`] and [`Groups::restore_state`] (`persist.rs`): every tracked group's
//! name, score and counter and `__other__`'s, with the `--group-by` field name, as the
//! section of a version 3 state file. Loading keeps the union property whatever the new
//! `max_groups` (the largest saved groups take the slots, the rest go to `__other__`) and
//! loads nothing saved for another field.
//!
//! # Memory
//!
//! Fixed bound: `max_groups + 1` counters of at most 60,168 B each (exact phase, default
//! threshold; 16,424 B once a sketch), names of at most [`MAX_GROUP_NAME_BYTES`] bytes, the
//! Count-Min sketch (`4 × max(1,024, 16·max_groups)` counters of 8 B) and the index. For the
//! default 100 groups: at most 6.2 MB, measured by [`Groups::memory_bytes`] while 100,000
//! distinct group values stream in (`tests/groups.rs`, and the table in `docs/groups.md`).

mod index;
mod persist;
mod sketch;
mod state_error;

use std::hash::BuildHasher;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crossbeam_epoch::{self as epoch, Atomic, Guard, Owned};

use self::index::Index;
use self::sketch::Sketch;
use crate::counter::{Phase, UniqueCounter};

pub use self::persist::{GroupsRestored, MAX_GROUP_FIELD_BYTES};
pub use self::state_error::GroupsStateError;

/// Default number of tracked groups.
pub const DEFAULT_MAX_GROUPS: usize = 100;

/// Largest accepted `max_groups`: the bound on a gauge's label values.
pub const MAX_GROUPS: usize = 10_000;

/// Group names are cut to their first this many bytes (at a character boundary).
pub const MAX_GROUP_NAME_BYTES: usize = 128;

/// The name of the counter of every line whose group has no slot.
pub const OTHER_GROUP: &str = "__other__";

/// Why [`Groups::new`] refused its arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupsError(pub usize);

impl std::fmt::Display for GroupsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "max groups must be 1 ..= {MAX_GROUPS}, not {}", self.0)
    }
}

impl std::error::Error for GroupsError {}

/// One tracked group.
struct Group {
    name: Box<str>,
    hash: u64,
    counter: UniqueCounter,
    /// Lines since promotion plus the estimate it was promoted with.
    score: AtomicU64,
}

/// One group's count, as read by [`Groups::snapshot`].
#[derive(Debug, Clone, PartialEq)]
pub struct GroupCount {
    /// The group's name (the field's value, cut to [`MAX_GROUP_NAME_BYTES`]), or
    /// [`OTHER_GROUP`].
    pub name: String,
    /// Distinct addresses, as [`UniqueCounter::estimate`].
    pub estimate: u64,
    /// Exact or sketch.
    pub phase: Phase,
    /// Relative standard error of `estimate` (0 while exact).
    pub relative_standard_error: f64,
}

impl GroupCount {
    fn of(name: &str, counter: &UniqueCounter) -> Self {
        Self {
            name: name.to_owned(),
            estimate: counter.estimate(),
            phase: counter.phase(),
            relative_standard_error: counter.relative_standard_error(),
        }
    }
}

/// Every tracked group and `__other__`, read at one time.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupsSnapshot {
    /// The tracked groups, largest count first (ties by name).
    pub groups: Vec<GroupCount>,
    /// The lines of untracked groups and the history of evicted ones.
    pub other: GroupCount,
    /// The configured bound.
    pub max_groups: usize,
    /// Promotions that took a slot from another group since start.
    pub evictions: u64,
}

/// Distinct addresses per group, at most `max_groups` groups (see the [module docs](self)).
pub struct Groups {
    slots: Box<[Atomic<Group>]>,
    index: Atomic<Index>,
    other: UniqueCounter,
    sketch: Sketch,
    /// An untracked group whose estimate exceeds this takes a slot (0 while one is free).
    promote_above: AtomicU64,
    /// Held by the one thread changing the tracked set.
    changing: AtomicBool,
    evictions: AtomicU64,
    threshold: usize,
    /// Hashes group names: foldhash (a few instructions for a short name, against about 40
    /// for MurmurHash64A), seeded at random so that crafted names cannot aim at one sketch
    /// cell or index run.
    hasher: foldhash::fast::RandomState,
}

impl std::fmt::Debug for Groups {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Groups")
            .field("max_groups", &self.slots.len())
            .field("threshold", &self.threshold)
            .finish_non_exhaustive()
    }
}

/// `name` cut to at most [`MAX_GROUP_NAME_BYTES`] bytes at a character boundary.
#[must_use]
pub fn group_name(name: &str) -> &str {
    if name.len() <= MAX_GROUP_NAME_BYTES {
        return name;
    }
    let mut end = MAX_GROUP_NAME_BYTES;
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    &name[..end]
}

/// The score an untracked group must exceed to take the slot of a group scored `lowest`.
fn promotion_bar(lowest: u64) -> u64 {
    lowest.saturating_add((lowest / 4).max(1))
}

impl Groups {
    /// Up to `max_groups` groups (1 ..= [`MAX_GROUPS`]), each counter exact up to
    /// `threshold` distinct addresses (as [`UniqueCounter::with_threshold`]).
    ///
    /// # Errors
    ///
    /// `max_groups` out of range.
    pub fn new(max_groups: usize, threshold: usize) -> Result<Self, GroupsError> {
        if !(1..=MAX_GROUPS).contains(&max_groups) {
            return Err(GroupsError(max_groups));
        }
        Ok(Self {
            slots: (0..max_groups).map(|_| Atomic::null()).collect(),
            index: Atomic::new(Index::new(max_groups, [])),
            other: UniqueCounter::with_threshold(threshold),
            sketch: Sketch::new(max_groups),
            promote_above: AtomicU64::new(0),
            changing: AtomicBool::new(false),
            evictions: AtomicU64::new(0),
            threshold,
            hasher: foldhash::fast::RandomState::default(),
        })
    }

    /// The bound on tracked groups.
    #[must_use]
    pub fn max_groups(&self) -> usize {
        self.slots.len()
    }

    /// Counts the address hashed `ip_hash` (as [`UniqueCounter::insert_hash`]) in the group
    /// `name` if tracked, else in `__other__` (and maybe promotes `name`).
    #[inline]
    pub fn record(&self, name: &str, ip_hash: u64) {
        self.record_pinned(name, ip_hash, &epoch::pin());
    }

    /// [`record`](Self::record) under an epoch guard the caller has pinned (once for the
    /// total and the group, [`Views::record_grouped`](crate::Views::record_grouped)).
    #[inline]
    pub(crate) fn record_pinned(&self, name: &str, ip_hash: u64, guard: &Guard) {
        let name = group_name(name);
        let hash = self.hash(name);
        if let Some(group) = self.find(name, hash, guard) {
            group.counter.insert_hash_pinned(ip_hash, guard);
            // Relaxed: a monotone score read only to rank groups; a stale read delays or
            // hastens one promotion by a line at most.
            group.score.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let estimate = self.sketch.add(hash);
        // Relaxed: a hint; `promote` re-checks under the flag.
        if estimate > self.promote_above.load(Ordering::Relaxed)
            && self.promote(name, hash, estimate, ip_hash, guard)
        {
            return;
        }
        self.other.insert_hash_pinned(ip_hash, guard);
    }

    /// The hash of a (cut) group name, for the index and the sketch.
    #[inline]
    fn hash(&self, name: &str) -> u64 {
        self.hasher.hash_one(name)
    }

    #[inline]
    #[allow(unsafe_code)]
    fn find<'g>(&self, name: &str, hash: u64, guard: &'g Guard) -> Option<&'g Group> {
        // Acquire pairs with the Release of the index swap in `promote`: the slots stored
        // before it are visible.
        let index = self.index.load(Ordering::Acquire, guard);
        // SAFETY: the index pointer is never null (set in `new`, only swapped for another)
        // and a swapped-out index is freed through the epoch, after `guard` is unpinned.
        let index = unsafe { index.deref() };
        index.find(hash).find_map(|slot| {
            // Acquire pairs with the Release of the slot swap: the group's fields are
            // initialised.
            let group = self.slots[slot].load(Ordering::Acquire, guard);
            // SAFETY: non-null slots point to live groups, freed only through the epoch.
            unsafe { group.as_ref() }.filter(|g| *g.name == *name)
        })
    }

    /// Gives `name` a slot if one is free or its `estimate` beats the lowest score by the
    /// margin, and counts `ip_hash` in it; does nothing if another thread is changing the set
    /// right now. Whether `ip_hash` was counted in `name`'s group.
    #[cold]
    #[allow(unsafe_code)]
    fn promote(&self, name: &str, hash: u64, estimate: u64, ip_hash: u64, guard: &Guard) -> bool {
        // A group named like the untracked counter is counted in it, never given a slot, so
        // the label values stay unique.
        if name == OTHER_GROUP {
            return false;
        }
        // Acquire: see the slots and index the previous holder published.
        if self
            .changing
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            return false;
        }
        let mut counted = false;
        // Another thread may have promoted this very name since our lookup.
        if let Some(group) = self.find(name, hash, guard) {
            group.counter.insert_hash_pinned(ip_hash, guard);
            counted = true;
        } else {
            let (target, lowest) = self.lowest_slot(guard);
            if lowest.is_none_or(|score| estimate > promotion_bar(score)) {
                let counter = UniqueCounter::with_threshold(self.threshold);
                counter.insert_hash_pinned(ip_hash, guard);
                counted = true;
                let group = Owned::new(Group {
                    name: name.into(),
                    hash,
                    counter,
                    score: AtomicU64::new(estimate),
                });
                // AcqRel: Release publishes the new group's fields to readers' Acquire;
                // Acquire sees the old group's counter fully before merging it.
                let old = self.slots[target].swap(group, Ordering::AcqRel, guard);
                // SAFETY: `old` was unlinked by this swap, made under the flag; readers that
                // still hold it were pinned before, so freeing waits for them.
                if let Some(evicted) = unsafe { old.as_ref() } {
                    self.other.merge(&evicted.counter);
                    // Relaxed: a statistic.
                    self.evictions.fetch_add(1, Ordering::Relaxed);
                    unsafe { guard.defer_destroy(old) };
                }
                self.publish_index(guard);
            }
        }
        let bar = match self.lowest_slot(guard).1 {
            None => 0,
            Some(score) => promotion_bar(score),
        };
        // Relaxed: a hint for the hot path, re-checked here under the flag.
        self.promote_above.store(bar, Ordering::Relaxed);
        // Release: the next holder sees everything changed here.
        self.changing.store(false, Ordering::Release);
        counted
    }

    /// A free slot (`None` score), else the slot of the lowest score.
    #[allow(unsafe_code)]
    fn lowest_slot(&self, guard: &Guard) -> (usize, Option<u64>) {
        let mut lowest = (0, Some(u64::MAX));
        for (i, slot) in self.slots.iter().enumerate() {
            // Acquire: as in `find`.
            // SAFETY: as in `find`.
            match unsafe { slot.load(Ordering::Acquire, guard).as_ref() } {
                None => return (i, None),
                // Relaxed: as in `record`.
                Some(group) => {
                    let score = group.score.load(Ordering::Relaxed);
                    if Some(score) < lowest.1 {
                        lowest = (i, Some(score));
                    }
                }
            }
        }
        lowest
    }

    /// Rebuilds the index from the slots and swaps it in (under the flag).
    #[allow(unsafe_code)]
    fn publish_index(&self, guard: &Guard) {
        let pairs = self.slots.iter().enumerate().filter_map(|(i, slot)| {
            // SAFETY: as in `find`.
            unsafe { slot.load(Ordering::Acquire, guard).as_ref() }.map(|g| (g.hash, i))
        });
        let index = Owned::new(Index::new(self.slots.len(), pairs));
        // AcqRel: Release publishes the index (and the slot swapped before it).
        let old = self.index.swap(index, Ordering::AcqRel, guard);
        // SAFETY: unlinked by this swap under the flag; freed after current readers unpin.
        unsafe { guard.defer_destroy(old) };
    }

    /// Calls `f` with every tracked group's name and counter, in slot order.
    #[allow(unsafe_code)]
    pub fn for_each(&self, mut f: impl FnMut(&str, &UniqueCounter)) {
        let guard = epoch::pin();
        for slot in &*self.slots {
            // SAFETY: as in `find`.
            if let Some(group) = unsafe { slot.load(Ordering::Acquire, &guard).as_ref() } {
                f(&group.name, &group.counter);
            }
        }
    }

    /// The count of one group: a tracked group's, [`OTHER_GROUP`]'s, or `None` for a group
    /// that is not tracked now.
    #[must_use]
    pub fn count(&self, name: &str) -> Option<GroupCount> {
        if name == OTHER_GROUP {
            return Some(GroupCount::of(OTHER_GROUP, &self.other));
        }
        let name = group_name(name);
        let guard = epoch::pin();
        self.find(name, self.hash(name), &guard)
            .map(|g| GroupCount::of(&g.name, &g.counter))
    }

    /// The `__other__` counter.
    #[must_use]
    pub fn other(&self) -> &UniqueCounter {
        &self.other
    }

    /// Every tracked group's count, largest first, and `__other__`'s.
    #[must_use]
    pub fn snapshot(&self) -> GroupsSnapshot {
        let mut groups = Vec::with_capacity(self.slots.len());
        self.for_each(|name, counter| groups.push(GroupCount::of(name, counter)));
        groups.sort_by(|a, b| b.estimate.cmp(&a.estimate).then(a.name.cmp(&b.name)));
        GroupsSnapshot {
            groups,
            other: GroupCount::of(OTHER_GROUP, &self.other),
            max_groups: self.slots.len(),
            // Relaxed: a statistic.
            evictions: self.evictions.load(Ordering::Relaxed),
        }
    }

    /// Bytes held now: every tracked counter and name, `__other__`, the sketch, the index
    /// and the slots. At most the bound of the [module docs](self).
    #[must_use]
    #[allow(unsafe_code)]
    pub fn memory_bytes(&self) -> usize {
        let guard = epoch::pin();
        let mut bytes = std::mem::size_of::<Self>()
            + self.slots.len() * std::mem::size_of::<Atomic<Group>>()
            + self.sketch.heap_bytes()
            + self.other.memory_bytes()
            - std::mem::size_of::<UniqueCounter>();
        // SAFETY: as in `find`.
        let index = unsafe { self.index.load(Ordering::Acquire, &guard).deref() };
        bytes += std::mem::size_of::<Index>() + index.heap_bytes();
        self.for_each(|name, counter| {
            bytes += std::mem::size_of::<Group>() - std::mem::size_of::<UniqueCounter>()
                + counter.memory_bytes()
                + name.len();
        });
        bytes
    }
}

impl Drop for Groups {
    #[allow(unsafe_code)]
    fn drop(&mut self) {
        // SAFETY: `&mut self`: no other thread holds a reference, so the unprotected guard
        // is sound and every linked pointer is owned by us alone.
        unsafe {
            let guard = epoch::unprotected();
            for slot in &*self.slots {
                let group = slot.load(Ordering::Relaxed, guard);
                if !group.is_null() {
                    drop(group.into_owned());
                }
            }
            drop(self.index.load(Ordering::Relaxed, guard).into_owned());
        }
    }
}
