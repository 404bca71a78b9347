//! [`Views`]: everything an accepted log is counted into, as one value built once at start,
//! recorded into by ingest and read by the exporter.
//!
//! A *view* is one way of looking at the stream of accepted logs: the [`UniqueCounter`]
//! (always on), the [`TopPages`] summary of their `url`s, the [`WindowRing`] of distinct
//! addresses per minute and hour and the per-group counters [`Groups`] (each optional; a
//! log with a group is recorded by [`Views::record_grouped`]). [`Views::record`] is the one step that
//! updates every view that is on for one log, so adding a view means adding its field, its
//! builder method and its line in `record` here, and nowhere else in this crate.
//!
//! The hot path stays what it was before the views were bundled: the address is hashed once
//! by the caller (for the counter and the ring alike), the arrival time is read once per
//! request or chunk ([`Views::arrival`], and only when a view needs it), and the log's own
//! event time is parsed only when a view uses it (the closure given to `record`). No lock
//! beyond the top pages' own uncontended shard lock, no allocation, no virtual call.
//!
//! ```
//! use std::sync::Arc;
//! use uniqd_core::{hash_ip_str, PathOptions, TopPages, UniqueCounter, Views};
//!
//! let top = TopPages::new(16, 1, PathOptions::default()).unwrap();
//! let views = Views::new(Arc::new(UniqueCounter::new())).with_top_pages(Arc::new(top));
//! let arrival = views.arrival(); // once per request
//! let hash = hash_ip_str("10.0.0.1").unwrap();
//! views.record(hash, Some("/a?x=1"), || None, arrival);
//! assert_eq!(views.counter().estimate(), 1);
//! assert_eq!(views.top_pages().unwrap().snapshot(1).pages[0].path, "/a");
//! ```

use std::sync::Arc;

use crossbeam_epoch as epoch;

use crate::counter::UniqueCounter;
use crate::groups::Groups;
use crate::top_pages::TopPages;
use crate::window::WindowRing;

/// The views accepted logs are counted into: the counter, and the top pages and time windows
/// when on. Cloning shares them (each view is behind an [`Arc`]).
#[derive(Debug, Clone)]
pub struct Views {
    counter: Arc<UniqueCounter>,
    top_pages: Option<Arc<TopPages>>,
    windows: Option<Arc<WindowRing>>,
    groups: Option<Arc<Groups>>,
}

/// When the logs of one request (or chunk) arrived, read once for all of them by
/// [`Views::arrival`]: Unix milliseconds from the window ring's clock, or 0 when no view
/// needs the time (the clock is then not read).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Arrival {
    now_ms: u64,
}

impl Arrival {
    /// An arrival at `now_ms` (Unix milliseconds), for callers with their own clock reading.
    #[must_use]
    pub fn at(now_ms: u64) -> Self {
        Self { now_ms }
    }

    /// The arrival time in Unix milliseconds (0 when no view asked for it).
    #[must_use]
    pub fn now_ms(self) -> u64 {
        self.now_ms
    }
}

impl Views {
    /// Only the counter.
    #[must_use]
    pub fn new(counter: Arc<UniqueCounter>) -> Self {
        Self {
            counter,
            top_pages: None,
            windows: None,
            groups: None,
        }
    }

    /// Also records the `url` of every accepted log in `top_pages`.
    #[must_use]
    pub fn with_top_pages(mut self, top_pages: Arc<TopPages>) -> Self {
        self.top_pages = Some(top_pages);
        self
    }

    /// Also counts the address of every accepted log in `windows`, at the log's event time
    /// when plausible, else at its arrival.
    #[must_use]
    pub fn with_windows(mut self, windows: Arc<WindowRing>) -> Self {
        self.windows = Some(windows);
        self
    }

    /// Also counts the address of every accepted log that has a group in `groups`
    /// ([`record_grouped`](Self::record_grouped)).
    #[must_use]
    pub fn with_groups(mut self, groups: Arc<Groups>) -> Self {
        self.groups = Some(groups);
        self
    }

    /// The per-group counters, if on.
    #[must_use]
    pub fn groups(&self) -> Option<&Arc<Groups>> {
        self.groups.as_ref()
    }

    /// The unique counter.
    #[must_use]
    pub fn counter(&self) -> &Arc<UniqueCounter> {
        &self.counter
    }

    /// The top pages summary, if on.
    #[must_use]
    pub fn top_pages(&self) -> Option<&Arc<TopPages>> {
        self.top_pages.as_ref()
    }

    /// The window ring, if on.
    #[must_use]
    pub fn windows(&self) -> Option<&Arc<WindowRing>> {
        self.windows.as_ref()
    }

    /// Reads the clock for the logs of one request or chunk, if a view needs the time (the
    /// window ring); otherwise reads nothing.
    #[must_use]
    pub fn arrival(&self) -> Arrival {
        match &self.windows {
            Some(windows) => Arrival::at(windows.now_ms()),
            None => Arrival::default(),
        }
    }

    /// Records one accepted log in every view that is on: `hash` is its address hashed once
    /// ([`hash_ip_str`](crate::hash_ip_str)), `url` its page, `event_ms` parses its own time
    /// (Unix milliseconds), called only when a view uses it, and `arrival` is from
    /// [`arrival`](Self::arrival).
    #[inline]
    pub fn record(
        &self,
        hash: u64,
        url: Option<&str>,
        event_ms: impl FnOnce() -> Option<u64>,
        arrival: Arrival,
    ) {
        self.record_grouped(hash, None, url, event_ms, arrival);
    }

    /// [`record`](Self::record), and with per-group counters on, the log's `group` (if it
    /// has one) in them, counting the same `hash`: one epoch pin for the total's exact set
    /// and the group's lookup and counter.
    #[inline]
    pub fn record_grouped(
        &self,
        hash: u64,
        group: Option<&str>,
        url: Option<&str>,
        event_ms: impl FnOnce() -> Option<u64>,
        arrival: Arrival,
    ) {
        match (&self.groups, group) {
            (Some(groups), Some(group)) => {
                let guard = epoch::pin();
                self.counter.insert_hash_pinned(hash, &guard);
                groups.record_pinned(group, hash, &guard);
            }
            _ => self.counter.insert_hash(hash),
        }
        if let Some(windows) = &self.windows {
            windows.insert_hash_at(hash, event_ms(), arrival.now_ms);
        }
        if let (Some(top), Some(url)) = (&self.top_pages, url) {
            top.record_url(url);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::window::MINUTE_MS;
    use crate::{hash_ip_str, ManualClock, PathOptions, Span};

    #[test]
    fn only_the_counter_reads_no_clock_and_no_event_time() {
        let views = Views::new(Arc::new(UniqueCounter::new()));
        assert_eq!(views.arrival(), Arrival::default());
        let hash = hash_ip_str("1.2.3.4").expect("valid");
        views.record(
            hash,
            Some("/a"),
            || unreachable!("no view uses the event time"),
            views.arrival(),
        );
        assert_eq!(views.counter().estimate(), 1);
        assert!(views.top_pages().is_none() && views.windows().is_none());
    }

    #[test]
    fn every_view_that_is_on_records_the_log() {
        let now = 1_800_000_000_000;
        let ring = Arc::new(WindowRing::new(
            5 * MINUTE_MS,
            Arc::new(ManualClock::new(now)),
        ));
        let top = Arc::new(TopPages::new(8, 1, PathOptions::default()).expect("valid size"));
        let views = Views::new(Arc::new(UniqueCounter::new()))
            .with_top_pages(Arc::clone(&top))
            .with_windows(Arc::clone(&ring));
        let arrival = views.arrival();
        assert_eq!(arrival.now_ms(), now);
        for (ip, url, event) in [
            ("1.2.3.4", Some("/a?q"), Some(now - 3 * MINUTE_MS)),
            ("1.2.3.5", None, None),
        ] {
            let hash = hash_ip_str(ip).expect("valid");
            views.record(hash, url, || event, arrival);
        }
        assert_eq!(views.counter().estimate(), 2);
        assert_eq!(top.snapshot(10).total_requests, 1);
        let count = |w: &str| ring.count(Span::parse(w).expect(w)).expect(w).estimate;
        assert_eq!(count("1m"), 1);
        assert_eq!(count("4m"), 2);
    }
}
