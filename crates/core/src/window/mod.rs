//! Unique counts over time windows ("distinct addresses in the last 5 minutes, hour, day") and
//! time series of them: a lock-free ring of per-interval sketches whose merges answer any
//! window up to seven days.
//!
//! # Design
//!
//! HyperLogLog sketches merge (register-wise maximum) but do not subtract, so a window is the
//! merge of the intervals it spans. Two tiers keep the memory bounded whatever the traffic:
//!
//! | tier | slots | answers | worst-case memory |
//! |------|-------|---------|-------------------|
//! | minutes | [`MINUTE_SLOTS`] = 60 | windows of 1 to 60 minutes, minute steps | 60 × 19.2 KiB ≈ 1.1 MiB |
//! | hours | [`HOUR_SLOTS`] = 168 | windows of 2 h to 7 d (whole hours), hour steps | 168 × 19.2 KiB ≈ 3.2 MiB |
//!
//! Every accepted address goes into both tiers (one epoch pin, two slot inserts). A slot is
//! allocated when its interval sees its first address (a quiet interval costs its 8-byte
//! pointer); it counts exactly up to [`SLOT_EXACT_THRESHOLD`] = 256 addresses (a 2.7 KiB
//! lock-free set) and then allocates 16 KiB of registers in the layout of
//! [`crate::UniqueCounter`] (same hash, index and rank; 0.81 % standard error), packed eight to
//! an atomic word so that a scrape reads a slot with 2,048 loads instead of 16,384.
//! [`WindowRing::memory_bytes`] measures what is allocated, [`WindowRing::max_memory_bytes`] is
//! the bound (4,379,552 bytes ≈ 4.2 MiB): a per-minute ring for seven days would need 10,080
//! slots, up to 190 MiB, which is why the older part is hourly.
//!
//! A window merged from exact slots whose union has at most [`WINDOW_EXACT_THRESHOLD`]
//! (4,096) addresses is exact; otherwise it is the HyperLogLog estimate of the merge, never
//! below the largest exact count that went into it.
//!
//! # Time
//!
//! Intervals are aligned to the wall clock (UTC): minute `i` holds the events whose time `t`
//! (Unix milliseconds) has `t / 60,000 = i`, hour `j` those with `t / 3,600,000 = j`. A window
//! of `w` intervals is the current, partial interval and the `w − 1` whole ones before it: `5m`
//! covers between 4 and 5 minutes, `24h` between 23 and 24 hours. An event counts at the log
//! line's own timestamp when that is at most the configured skew before arrival; a timestamp
//! further back, any timestamp in the future and a missing one count at arrival
//! ([`WindowRing::effective_time`]).
//!
//! # Reads within the scrape budget
//!
//! Merging a slot costs about 2 µs and an estimate about 10 µs, so a 7-day window read from
//! scratch costs a few hundred microseconds. [`WindowRing::count`] therefore caches, per
//! window and current interval, the merge of the slots that can no longer change (older than
//! the skew plus one interval); a scrape then merges that cached result with the few live
//! slots (about 15 µs per window once warm, measured by `benches/examples/window_cost.rs`).
//! The ingest path never touches the cache.
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//! use uniqd_core::{hash_ip_str, ManualClock, Span, WindowRing};
//!
//! let clock = Arc::new(ManualClock::new(1_800_000_000_000));
//! let ring = WindowRing::new(5 * 60_000, clock.clone());
//! ring.insert_hash(hash_ip_str("10.0.0.1").unwrap(), None);
//! clock.advance(10 * 60_000); // ten minutes later
//! ring.insert_hash(hash_ip_str("10.0.0.2").unwrap(), None);
//!
//! let five_minutes = Span::parse("5m").unwrap();
//! assert_eq!(ring.count(five_minutes).unwrap().estimate, 1);
//! assert_eq!(ring.count(Span::parse("1h").unwrap()).unwrap().estimate, 2);
//! // One point per 5-minute step, oldest first: 1, 0, 1.
//! let series = ring.series(Span::parse("15m").unwrap(), five_minutes).unwrap();
//! let counts: Vec<u64> = series.iter().map(|p| p.count.estimate).collect();
//! assert_eq!(counts, [1, 0, 1]);
//! ```

mod clock;
mod merge;
mod packed;
mod persist;
mod share;
mod span;
mod tier;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crossbeam_epoch as epoch;

pub use clock::{Clock, ManualClock, SystemClock};
pub use merge::{WindowCount, WINDOW_EXACT_THRESHOLD};
pub use persist::WindowStateError;
pub use share::SharedIntervals;
pub use span::{
    Resolution, Span, SpanError, HOUR_MS, HOUR_SLOTS, MAX_SKEW_MS, MINUTE_MS, MINUTE_SLOTS,
};
pub use tier::SLOT_EXACT_THRESHOLD;

use merge::Merge;
use tier::Tier;

/// Most entries the read cache keeps (configured windows plus ad-hoc API windows; a window
/// that finds the cache full is merged in full, correct but slower). An entry holds at most
/// an exact union of 4,096 hashes (a `HashSet` of about 72 KiB) or 16 KiB of registers, so
/// the cache stays under 1.2 MiB.
const CACHE_ENTRIES: usize = 16;

/// One step of [`WindowRing::series`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeriesPoint {
    /// Start of the step, Unix milliseconds (a multiple of the step length).
    pub start_ms: u64,
    /// Distinct addresses seen in the step.
    pub count: WindowCount,
}

/// Cached merge of a window's closed intervals, valid while `now_index` is current.
struct CacheEntry {
    now_index: u64,
    closed: Merge,
}

/// Two lock-free rings of per-interval sketches; see the module docs.
pub struct WindowRing {
    minutes: Tier,
    hours: Tier,
    clock: Arc<dyn Clock>,
    skew_ms: u64,
    /// Read side only (scrapes and API calls); the ingest path never touches it.
    cache: Mutex<HashMap<(Resolution, u64), CacheEntry>>,
}

impl std::fmt::Debug for WindowRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WindowRing")
            .field("skew_ms", &self.skew_ms)
            .finish_non_exhaustive()
    }
}

impl WindowRing {
    /// A ring reading `clock` that accepts log timestamps up to `skew_ms` (at most
    /// [`MAX_SKEW_MS`]; larger values are clamped) before arrival.
    pub fn new(skew_ms: u64, clock: Arc<dyn Clock>) -> Self {
        Self {
            minutes: Tier::new(MINUTE_SLOTS, MINUTE_MS),
            hours: Tier::new(HOUR_SLOTS, HOUR_MS),
            clock,
            skew_ms: skew_ms.min(MAX_SKEW_MS),
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The configured timestamp skew, milliseconds.
    pub fn skew_ms(&self) -> u64 {
        self.skew_ms
    }

    /// The ring's clock, Unix milliseconds.
    pub fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    /// The time an event counts at: `event_ms` if it is at most the skew before `now_ms`
    /// and not after it, else `now_ms`.
    pub fn effective_time(&self, event_ms: Option<u64>, now_ms: u64) -> u64 {
        match event_ms {
            Some(event) if event <= now_ms && now_ms - event <= self.skew_ms => event,
            _ => now_ms,
        }
    }

    /// Counts `hash` (MurmurHash64A, as [`crate::hash_ip_str`]) at the log line's time
    /// `event_ms` (Unix milliseconds) if plausible, else now.
    #[inline]
    pub fn insert_hash(&self, hash: u64, event_ms: Option<u64>) {
        self.insert_hash_at(hash, event_ms, self.clock.now_ms());
    }

    /// [`Self::insert_hash`] with the arrival time given, so that a batch reads the clock once.
    #[inline]
    pub fn insert_hash_at(&self, hash: u64, event_ms: Option<u64>, now_ms: u64) {
        let t = self.effective_time(event_ms, now_ms);
        let guard = epoch::pin();
        // `false` only when the clock went back by more than a tier's retention: such an
        // event is older than every window.
        self.minutes.insert(hash, t / MINUTE_MS, &guard);
        self.hours.insert(hash, t / HOUR_MS, &guard);
    }

    fn tier(&self, resolution: Resolution) -> &Tier {
        match resolution {
            Resolution::Minute => &self.minutes,
            Resolution::Hour => &self.hours,
        }
    }

    /// Distinct addresses in `window`: the current partial interval and the ones before it
    /// (see the module docs).
    ///
    /// # Errors
    ///
    /// The window is longer than [`Span::MAX_WINDOW`] or over an hour and not whole hours.
    pub fn count(&self, window: Span) -> Result<WindowCount, SpanError> {
        let (resolution, intervals) = window.window_tier()?;
        Ok(self.count_in(resolution, intervals, self.clock.now_ms()))
    }

    fn count_in(&self, resolution: Resolution, intervals: u64, now_ms: u64) -> WindowCount {
        let tier = self.tier(resolution);
        let now_index = now_ms / tier.interval_ms();
        let from = now_index.saturating_sub(intervals - 1);
        // Intervals that may still receive inserts: the current one, those within the skew,
        // and one more for inserts whose arrival time was read just before the interval
        // changed (a batch reads the clock once per chunk), so that no closed interval
        // changes after it was cached.
        let live_from = now_index
            .saturating_sub(self.live_intervals(tier.interval_ms()) - 1)
            .max(from);
        let mut merge = if live_from > from {
            self.closed_merge(resolution, intervals, from, live_from - 1, now_index)
        } else {
            Merge::default()
        };
        tier.merge(live_from, now_index, now_index, &mut merge);
        merge.count()
    }

    /// How many intervals, the current one included, may still receive inserts: the current
    /// one, those within the skew, and one more for inserts whose arrival time was read just
    /// before the interval changed.
    fn live_intervals(&self, interval_ms: u64) -> u64 {
        self.skew_ms.div_ceil(interval_ms) + 2
    }

    /// The cached merge of the closed intervals `from ..= to` of a window.
    fn closed_merge(
        &self,
        resolution: Resolution,
        intervals: u64,
        from: u64,
        to: u64,
        now_index: u64,
    ) -> Merge {
        let key = (resolution, intervals);
        let mut cache = match self.cache.lock() {
            Ok(cache) => cache,
            // A panic while holding the lock leaves at worst a stale entry, which the
            // interval check below discards: recover the map.
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some(entry) = cache.get(&key) {
            if entry.now_index == now_index {
                return entry.closed.clone();
            }
        }
        let mut closed = Merge::default();
        self.tier(resolution)
            .merge(from, to, now_index, &mut closed);
        cache.retain(|&(r, _), e| r != resolution || e.now_index == now_index);
        if cache.len() < CACHE_ENTRIES {
            cache.insert(
                key,
                CacheEntry {
                    now_index,
                    closed: closed.clone(),
                },
            );
        }
        closed
    }

    /// Distinct addresses per `step` over the last `lookback`: steps aligned to multiples of
    /// the step since the Unix epoch (UTC), oldest first, the last being the step that
    /// contains now (partial). Steps under an hour read the minute tier (lookback at most
    /// 60 minutes), whole-hour steps the hour tier (lookback at most 7 days). Intervals older
    /// than the tier keeps count as empty.
    ///
    /// # Errors
    ///
    /// The lookback is too long for the step's tier, the step is over an hour and not whole
    /// hours, or the step is longer than the lookback.
    pub fn series(&self, lookback: Span, step: Span) -> Result<Vec<SeriesPoint>, SpanError> {
        let (resolution, step, lookback) = Span::series_tier(lookback, step)?;
        let tier = self.tier(resolution);
        let now_index = self.clock.now_ms() / tier.interval_ms();
        let last_start = now_index / step * step;
        Ok((0..lookback.div_ceil(step))
            .rev()
            .filter_map(|back| last_start.checked_sub(back * step))
            .map(|start| {
                let mut merge = Merge::default();
                tier.merge(start, start + step - 1, now_index, &mut merge);
                SeriesPoint {
                    start_ms: start * tier.interval_ms(),
                    count: merge.count(),
                }
            })
            .collect())
    }

    /// Bytes held by the slots of both tiers (not the read-side cache).
    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of::<Self>() + self.minutes.memory_bytes() + self.hours.memory_bytes()
    }

    /// The most [`Self::memory_bytes`] can reach: every slot allocated with registers.
    pub fn max_memory_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.minutes.max_memory_bytes()
            + self.hours.max_memory_bytes()
    }
}

#[cfg(test)]
mod tests;
