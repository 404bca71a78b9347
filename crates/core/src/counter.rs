//! [`UniqueCounter`]: the exact phase, the sketch phase, and the swap between them.
//!
//! Every insert first raises its HyperLogLog register, in every phase; while the counter is
//! exact it then also adds the element's hash to the exact set. The registers therefore always
//! describe every element ever inserted, and the swap has nothing to rebuild: it unlinks the
//! exact set with one atomic pointer swap (crossbeam-epoch frees it once no reader holds it).
//! An insert racing with the swap has already reached the registers before it looks at the
//! set, so none can be lost, whichever side of the swap it lands on.

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crossbeam_epoch::{self as epoch, Atomic, Guard, Shared};

use crate::element::{hash_ip, hash_ip_str, InvalidAddress};
use crate::estimator;
pub use crate::exact::DEFAULT_THRESHOLD;
use crate::exact::{ExactSet, Inserted};
use crate::redis_format::{self, RedisHllError};
use crate::registers::{Registers, M};
use crate::state::{self, StateError, StateSections};
use crate::window::WindowRing;

/// Relative standard error of the sketch: 1.04/√m with m = 16,384 registers.
pub const SKETCH_RELATIVE_STANDARD_ERROR: f64 = 1.04 / 128.0;

/// Which representation answers [`UniqueCounter::estimate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Phase {
    /// At most `threshold` distinct elements, counted exactly.
    Exact,
    /// More than `threshold`: the HyperLogLog estimate.
    Sketch,
}

impl Phase {
    /// Lower-case name, as exported in metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Exact => "exact",
            Self::Sketch => "sketch",
        }
    }
}

/// A lock-free distinct counter of IP addresses, shared by `&self` between any number of
/// threads.
pub struct UniqueCounter {
    registers: Registers,
    /// The exact set while in the exact phase; null after the swap.
    exact: Atomic<ExactSet>,
    /// Set once the exact set is unlinked; lets the sketch-phase insert skip the epoch pin.
    sketch: AtomicBool,
    /// Lower bound for the estimate: the exact count at the swap (or merged in), so the
    /// reported count never drops when the sketch takes over.
    floor: AtomicU64,
    threshold: usize,
}

impl Default for UniqueCounter {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for UniqueCounter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UniqueCounter")
            .field("phase", &self.phase())
            .field("estimate", &self.estimate())
            .field("threshold", &self.threshold)
            .finish()
    }
}

impl UniqueCounter {
    /// An empty counter with [`DEFAULT_THRESHOLD`].
    pub fn new() -> Self {
        Self::with_threshold(DEFAULT_THRESHOLD)
    }

    /// An empty counter that stays exact up to `threshold` distinct elements
    /// (0: a sketch from the start).
    pub fn with_threshold(threshold: usize) -> Self {
        let (exact, sketch) = if threshold == 0 {
            (Atomic::null(), true)
        } else {
            (Atomic::new(ExactSet::for_threshold(threshold)), false)
        };
        Self {
            registers: Registers::new(),
            exact,
            sketch: AtomicBool::new(sketch),
            floor: AtomicU64::new(0),
            threshold,
        }
    }

    /// A sketch-phase counter holding `registers` (one byte per register, values ≤ 51).
    pub fn from_registers(registers: &[u8; M]) -> Self {
        let counter = Self::with_threshold(0);
        counter.registers.merge_from(registers);
        counter
    }

    /// The exact threshold this counter was built with.
    pub fn threshold(&self) -> usize {
        self.threshold
    }

    /// Parses `addr` as an IPv4 or IPv6 address and counts it.
    ///
    /// IPv4 text is hashed as received (it is canonical whenever it parses); IPv6 text is
    /// canonicalised in a stack buffer first. Nothing is counted when parsing fails.
    #[inline]
    pub fn insert_str(&self, addr: &str) -> Result<(), InvalidAddress> {
        self.insert_hash(hash_ip_str(addr)?);
        Ok(())
    }

    /// Counts `ip`.
    pub fn insert_ip(&self, ip: IpAddr) {
        self.insert_hash(hash_ip(ip));
    }

    /// Counts an arbitrary element given as bytes, as `PFADD key <bytes>` would.
    pub fn insert_element(&self, element: &[u8]) {
        self.insert_hash(crate::murmur::hash_element(element));
    }

    /// Counts an element by its MurmurHash64A hash (seed `0xadc83b19`).
    #[inline]
    pub fn insert_hash(&self, hash: u64) {
        self.registers.insert_hash(hash);
        // Relaxed: the flag only lets us skip the pin; if it is stale we pin and find the
        // set pointer null (or still valid), which is handled below.
        if self.sketch.load(Ordering::Relaxed) {
            return;
        }
        let guard = epoch::pin();
        self.insert_exact(hash, &guard);
    }

    /// [`insert_hash`](Self::insert_hash) under an epoch guard the caller has pinned already:
    /// [`Views`](crate::Views) pins once for the total's and a group's counter (pinning is a
    /// locked instruction; a second pin would cost as much as the rest of a group's insert).
    #[inline]
    pub(crate) fn insert_hash_pinned(&self, hash: u64, guard: &Guard) {
        self.registers.insert_hash(hash);
        // Relaxed: as in `insert_hash`.
        if self.sketch.load(Ordering::Relaxed) {
            return;
        }
        self.insert_exact(hash, guard);
    }

    /// Adds `hash` to the exact set, if there still is one, and swaps when it overflows.
    fn insert_exact(&self, hash: u64, guard: &Guard) {
        let Some(set) = self.exact_set(guard) else {
            return;
        };
        match set.insert(hash) {
            Inserted::New { len } if len > self.threshold => self.retire(len, guard),
            Inserted::Full => self.retire(set.len(), guard),
            Inserted::New { .. } | Inserted::Present => {}
        }
    }

    /// The exact set, while the counter is in its exact phase.
    #[allow(unsafe_code)]
    fn exact_set<'g>(&self, guard: &'g Guard) -> Option<&'g ExactSet> {
        // Acquire pairs with the Release half of the swap in `retire`: seeing null means the
        // floor written before it is visible too.
        let shared = self.exact.load(Ordering::Acquire, guard);
        // SAFETY: a non-null pointer in `exact` points to a live `ExactSet`: it is only freed
        // through `defer_destroy` after being unlinked, which waits until every guard pinned
        // before the unlink is dropped; the returned borrow lives no longer than `guard`.
        unsafe { shared.as_ref() }
    }

    /// Leaves the exact phase: records `exact_len` as the floor, unlinks the set, frees it
    /// once readers are gone.
    fn retire(&self, exact_len: usize, guard: &Guard) {
        // Written before the swap (whose Release orders it) so that any reader that sees the
        // set gone also sees the floor.
        self.floor.fetch_max(exact_len as u64, Ordering::Relaxed);
        let old = self.exact.swap(Shared::null(), Ordering::AcqRel, guard);
        // Release: a reader whose Acquire load sees `true` also sees the floor.
        self.sketch.store(true, Ordering::Release);
        if !old.is_null() {
            #[allow(unsafe_code)]
            // SAFETY: `old` was unlinked by the swap above, which only one thread can win for
            // a given pointer, and no code ever stores a non-null pointer again, so no new
            // reference to it can be created; the epoch defers the drop until every guard
            // that might still hold it is unpinned.
            unsafe {
                guard.defer_destroy(old)
            };
        }
    }

    /// The exact count, if the counter is in the exact phase and at most at its threshold.
    /// Otherwise `Err(floor)` with a lower bound to apply to the sketch estimate.
    fn exact_len(&self) -> Result<u64, u64> {
        // Acquire: pairs with the Release store in `retire`, making the floor visible.
        if !self.sketch.load(Ordering::Acquire) {
            let guard = epoch::pin();
            if let Some(set) = self.exact_set(&guard) {
                let len = set.len();
                return if len <= self.threshold {
                    Ok(len as u64)
                } else {
                    Err(len as u64)
                };
            }
        }
        Err(0)
    }

    /// The count: exact in the exact phase; in the sketch phase the HyperLogLog estimate,
    /// never below the exact count reached at the swap, so it never goes down.
    pub fn estimate(&self) -> u64 {
        match self.exact_len() {
            Ok(exact) => exact,
            Err(lower) => {
                // Relaxed suffices after the Acquire in `exact_len`.
                let floor = self.floor.load(Ordering::Relaxed).max(lower);
                self.raw_estimate().max(floor)
            }
        }
    }

    /// The HyperLogLog estimate of the registers alone, in any phase: what Redis's
    /// `PFCOUNT` answers for the same elements.
    pub fn raw_estimate(&self) -> u64 {
        estimator::estimate(&self.registers.histogram())
    }

    /// The current phase.
    pub fn phase(&self) -> Phase {
        match self.exact_len() {
            Ok(_) => Phase::Exact,
            Err(_) => Phase::Sketch,
        }
    }

    /// Relative standard error of [`estimate`](Self::estimate): 0 while exact, 1.04/√16384
    /// ≈ 0.81% in the sketch phase.
    pub fn relative_standard_error(&self) -> f64 {
        match self.phase() {
            Phase::Exact => 0.0,
            Phase::Sketch => SKETCH_RELATIVE_STANDARD_ERROR,
        }
    }

    /// Adds every element of `other` to `self`: afterwards `self` counts the union.
    ///
    /// Registers merge by maximum; exact hashes are re-inserted while `self` is exact. If
    /// `other` has left its exact phase, so does `self`.
    pub fn merge(&self, other: &UniqueCounter) {
        self.registers.merge_from(&other.registers.snapshot());
        let guard = epoch::pin();
        match other.exact_len() {
            Ok(_) => {
                if let Some(set) = other.exact_set(&guard) {
                    set.for_each(|hash| self.insert_exact(hash, &guard));
                }
            }
            Err(lower) => {
                let floor = other.floor.load(Ordering::Relaxed).max(lower);
                let ours = self.exact_len().unwrap_or_else(|lower| lower);
                self.retire(floor.max(ours) as usize, &guard);
            }
        }
    }

    /// Merges a Redis HLL string (dense or sparse) into `self`; `self` leaves its exact phase
    /// if the string holds any element.
    pub fn merge_redis(&self, bytes: &[u8]) -> Result<(), RedisHllError> {
        let registers = redis_format::decode(bytes)?;
        if registers.iter().any(|&r| r != 0) {
            self.registers.merge_from(&registers);
            let guard = epoch::pin();
            let ours = self.exact_len().unwrap_or_else(|lower| lower);
            self.retire(ours as usize, &guard);
        }
        Ok(())
    }

    /// A sketch-phase counter from a Redis HLL string (dense or sparse).
    pub fn from_redis(bytes: &[u8]) -> Result<Self, RedisHllError> {
        Ok(Self::from_registers(&*redis_format::decode(bytes)?))
    }

    /// The registers as a Redis dense HLL string (`HYLL` header and 12,288 bytes), usable
    /// with `SET key <bytes>` then `PFCOUNT`/`PFMERGE`. Valid in every phase, since the
    /// registers always hold every element.
    pub fn to_redis(&self) -> Vec<u8> {
        redis_format::encode_dense(&self.registers.snapshot())
    }

    /// The counter as a state file (format in the `state` module docs): phase, floor,
    /// registers as a Redis HLL string, and the exact set's hashes while exact (format
    /// version 1, which every build reads).
    pub fn to_state(&self) -> Vec<u8> {
        self.encode_state(state::StateSections::default())
    }

    /// [`to_state`](Self::to_state) with a window ring saved beside the counter (format
    /// version 2), for [`from_state_with_windows`](Self::from_state_with_windows).
    pub fn to_state_with_windows(&self, windows: &WindowRing) -> Vec<u8> {
        let ring = windows.to_state();
        self.encode_state(state::StateSections {
            windows: Some(&ring),
            groups: None,
        })
    }

    /// [`to_state`](Self::to_state) with a window ring section as
    /// [`from_state_keeping_windows`](Self::from_state_keeping_windows) returned it, stored
    /// unchanged (format version 2): how a service with time windows off keeps the saved
    /// window history for when they are on again.
    pub fn to_state_with_window_section(&self, section: &[u8]) -> Vec<u8> {
        self.encode_state(state::StateSections {
            windows: Some(section),
            groups: None,
        })
    }

    /// [`to_state`](Self::to_state) with any of the sections a state file holds besides the
    /// counter, each stored as given: a window ring's encoding
    /// ([`WindowRing::to_state`], or a section kept from a file) and the groups'
    /// (`Groups::to_state`, or kept). Format version 3 with groups, else as
    /// [`to_state_with_window_section`](Self::to_state_with_window_section) or
    /// [`to_state`](Self::to_state).
    pub fn to_state_with_sections(&self, sections: StateSections<'_>) -> Vec<u8> {
        self.encode_state(sections)
    }

    fn encode_state(&self, extras: StateSections<'_>) -> Vec<u8> {
        let guard = epoch::pin();
        let mut hashes = Vec::new();
        let exact = match self.exact_set(&guard) {
            Some(set) => {
                hashes.reserve(set.len() + 8);
                set.for_each(|hash| hashes.push(hash));
                hashes.len() <= self.threshold
            }
            None => false,
        };
        // Registers after the hashes: every hash read above (Acquire) has its register update
        // visible, so the snapshot is consistent even while threads insert.
        let registers = self.registers.snapshot();
        // Relaxed: the floor only grows; any value read is a valid lower bound.
        let floor = self.floor.load(Ordering::Relaxed);
        let threshold = self.threshold as u64;
        if exact {
            state::encode(false, threshold, floor, &registers, &hashes, extras)
        } else {
            let floor = floor.max(hashes.len() as u64);
            state::encode(true, threshold, floor, &registers, &[], extras)
        }
    }

    /// Loads a state written by [`to_state`](Self::to_state) or
    /// [`to_state_with_windows`](Self::to_state_with_windows) (a saved window ring is
    /// checked, then ignored), to go on counting with `threshold` (the configuration wins
    /// over the file: a saved exact set larger than `threshold` continues in the sketch
    /// phase, with its size as the floor).
    pub fn from_state(bytes: &[u8], threshold: usize) -> Result<Self, StateError> {
        Ok(Self::from_decoded(state::decode(bytes)?, threshold))
    }

    /// [`from_state`](Self::from_state), and the window ring saved in the file (if any) merged
    /// into `windows`, keeping the slots that ring still retains now (see
    /// [`WindowRing::restore_state`]). Returns the counter and the number of window slots
    /// restored (0 for a file without windows). Nothing is restored unless the whole file is
    /// valid.
    pub fn from_state_with_windows(
        bytes: &[u8],
        threshold: usize,
        windows: &WindowRing,
    ) -> Result<(Self, usize), StateError> {
        let state = state::decode(bytes)?;
        let restored = match state.windows {
            Some(ring) => windows.restore_state(ring).map_err(StateError::Windows)?,
            None => 0,
        };
        Ok((Self::from_decoded(state, threshold), restored))
    }

    /// [`from_state`](Self::from_state), and the file's window ring section (format version 2)
    /// as stored, checked with [`WindowRing::check_state`] but not loaded into a ring: for a
    /// service with time windows off, which saves it again with
    /// [`to_state_with_window_section`](Self::to_state_with_window_section). `None` for a
    /// version 1 file.
    pub fn from_state_keeping_windows(
        bytes: &[u8],
        threshold: usize,
    ) -> Result<(Self, Option<Vec<u8>>), StateError> {
        let state = state::decode(bytes)?;
        let section = match state.windows {
            Some(ring) => {
                WindowRing::check_state(ring).map_err(StateError::Windows)?;
                Some(ring.to_vec())
            }
            None => None,
        };
        Ok((Self::from_decoded(state, threshold), section))
    }

    /// [`from_state`](Self::from_state), and the file's other sections as stored: the window
    /// ring's, checked with [`WindowRing::check_state`], and the groups' (format version 3),
    /// **not checked here**: check or load it with `Groups::check_state` or
    /// `Groups::restore_state` (mapping their error to [`StateError::Groups`]) before using
    /// anything from the file.
    pub fn from_state_with_sections(
        bytes: &[u8],
        threshold: usize,
    ) -> Result<(Self, StateSections<'_>), StateError> {
        let state = state::decode(bytes)?;
        if let Some(ring) = state.windows {
            WindowRing::check_state(ring).map_err(StateError::Windows)?;
        }
        let sections = StateSections {
            windows: state.windows,
            groups: state.groups,
        };
        Ok((Self::from_decoded(state, threshold), sections))
    }

    fn from_decoded(state: state::State<'_>, threshold: usize) -> Self {
        let counter = Self::with_threshold(threshold);
        counter.registers.merge_from(&state.registers);
        let guard = epoch::pin();
        if state.sketch {
            counter.retire(usize::try_from(state.floor).unwrap_or(usize::MAX), &guard);
        } else {
            for hash in state.hashes {
                counter.insert_exact(hash, &guard);
            }
        }
        counter
    }

    /// A copy of the registers, one byte each.
    pub fn registers(&self) -> Box<[u8; M]> {
        self.registers.snapshot()
    }

    /// Heap and inline bytes held now: registers, exact set while present, the struct itself.
    pub fn memory_bytes(&self) -> usize {
        let guard = epoch::pin();
        let set = self
            .exact_set(&guard)
            .map_or(0, |set| set.heap_bytes() + std::mem::size_of::<ExactSet>());
        std::mem::size_of::<Self>() + Registers::HEAP_BYTES + set
    }
}

impl Drop for UniqueCounter {
    #[allow(unsafe_code)]
    fn drop(&mut self) {
        // SAFETY: `&mut self` means no other thread can hold a reference into the counter, so
        // the unprotected guard is sound and the set (if still linked) is owned by us alone.
        unsafe {
            let shared = self.exact.load(Ordering::Relaxed, epoch::unprotected());
            if !shared.is_null() {
                drop(shared.into_owned());
            }
        }
    }
}
