//! Lock-free request metrics for the ingest endpoint.
//!
//! Everything here is a plain `AtomicU64` updated with `fetch_add`:
//! prometheus-client's `Family` takes a lock per lookup and its `Histogram`
//! locks on observe, which would serialise every request on one mutex. The
//! exporter reads these counters at scrape time through the read API
//! ([`IngestMetrics::requests`], [`IngestMetrics::lines`],
//! [`IngestMetrics::request_duration`]) and encodes them itself.
//!
//! # Orderings
//!
//! All accesses use `Ordering::Relaxed`. Each counter is an independent,
//! monotonically increasing number: Relaxed `fetch_add` is still atomic (no
//! lost updates), and no other memory is published through these counters,
//! so there is nothing to synchronise with. A scrape may therefore see, for
//! example, a request counted in `requests` but its duration not yet in the
//! histogram; such skew is one request wide and harmless for monitoring.
//! Within the histogram snapshot, `count` is computed from the bucket values
//! that were read, so `+Inf` bucket == count always holds in the output.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use uniqd_http::BufferBudget;

/// How a request to the ingest server ended (the `outcome` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RequestOutcome {
    /// 202: logs accepted.
    Accepted,
    /// 400: invalid JSON, missing/invalid `ip`, empty or unreadable body.
    BadRequest,
    /// 413: body over the configured limit.
    PayloadTooLarge,
    /// 415: unsupported `Content-Type` or `Content-Encoding`.
    UnsupportedMediaType,
    /// 404: unknown path.
    NotFound,
    /// 405: wrong method on `/logs`.
    MethodNotAllowed,
    /// 408: the client stopped sending the body.
    RequestTimeout,
    /// 401: bearer token missing or wrong (only with authentication on).
    Unauthorized,
    /// 501: a `Transfer-Encoding` other than `chunked`.
    NotImplemented,
    /// 503: the budget for buffered request bytes was spent.
    ServiceUnavailable,
}

impl RequestOutcome {
    /// Every outcome, in exposition order.
    pub const ALL: [Self; 10] = [
        Self::Accepted,
        Self::BadRequest,
        Self::PayloadTooLarge,
        Self::UnsupportedMediaType,
        Self::NotFound,
        Self::MethodNotAllowed,
        Self::RequestTimeout,
        Self::Unauthorized,
        Self::NotImplemented,
        Self::ServiceUnavailable,
    ];

    /// The label value.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::BadRequest => "bad_request",
            Self::PayloadTooLarge => "payload_too_large",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::NotFound => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::RequestTimeout => "request_timeout",
            Self::Unauthorized => "unauthorized",
            Self::NotImplemented => "not_implemented",
            Self::ServiceUnavailable => "service_unavailable",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// What happened to one log line (the `outcome` label of the lines counter).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LineOutcome {
    /// Parsed and counted.
    Accepted,
    /// Rejected (bad JSON, no/invalid `ip`, too long).
    Invalid,
}

impl LineOutcome {
    /// Every outcome, in exposition order.
    pub const ALL: [Self; 2] = [Self::Accepted, Self::Invalid];

    /// The label value.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::Invalid => "invalid",
        }
    }
}

/// Upper bounds (seconds) of the request-duration histogram buckets; a final
/// `+Inf` bucket is implied.
pub const DURATION_BUCKETS: [f64; 14] = [
    0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// [`DURATION_BUCKETS`] in nanoseconds, for integer comparison on the hot path.
const DURATION_BUCKETS_NANOS: [u64; DURATION_BUCKETS.len()] = [
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    5_000_000_000,
];

/// Number of histogram buckets including `+Inf`.
const BUCKETS: usize = DURATION_BUCKETS.len() + 1;

/// A consistent-enough copy of the duration histogram, ready to encode.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramSnapshot {
    /// `(upper_bound_seconds, count)` per bucket, **not** cumulative; the last
    /// bound is `f64::INFINITY`.
    pub buckets: [(f64, u64); BUCKETS],
    /// Sum of all observations in seconds.
    pub sum_seconds: f64,
    /// Number of observations (= sum of the bucket counts).
    pub count: u64,
}

/// Request and line counters plus the request-duration histogram.
///
/// Share via `Arc`; all methods take `&self` and never block.
#[derive(Debug, Default)]
pub struct IngestMetrics {
    requests: [AtomicU64; RequestOutcome::ALL.len()],
    lines_accepted: AtomicU64,
    lines_invalid: AtomicU64,
    duration_buckets: [AtomicU64; BUCKETS],
    duration_sum_nanos: AtomicU64,
    /// Request bytes held in the server's buffers now (`--max-buffered-bytes`).
    buffers: BufferBudget,
}

impl IngestMetrics {
    /// All counters at zero.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Records one finished request: its outcome and how long it took.
    pub fn record_request(&self, outcome: RequestOutcome, elapsed: Duration) {
        // Relaxed: independent counters, see the module docs.
        self.requests[outcome.index()].fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        let bucket = DURATION_BUCKETS_NANOS
            .iter()
            .position(|&bound| nanos <= bound)
            .unwrap_or(BUCKETS - 1);
        // Relaxed: as above; the sum and the bucket may be observed one
        // request apart by a concurrent scrape, which is acceptable.
        self.duration_buckets[bucket].fetch_add(1, Ordering::Relaxed);
        self.duration_sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// Adds to the accepted/invalid line counters.
    pub fn record_lines(&self, accepted: u64, invalid: u64) {
        if accepted > 0 {
            // Relaxed: independent counter, see the module docs.
            self.lines_accepted.fetch_add(accepted, Ordering::Relaxed);
        }
        if invalid > 0 {
            // Relaxed: independent counter, see the module docs.
            self.lines_invalid.fetch_add(invalid, Ordering::Relaxed);
        }
    }

    /// Requests that ended with `outcome` since start.
    #[must_use]
    pub fn requests(&self, outcome: RequestOutcome) -> u64 {
        // Relaxed: a monitoring read; any recent value is fine.
        self.requests[outcome.index()].load(Ordering::Relaxed)
    }

    /// Lines that ended with `outcome` since start.
    #[must_use]
    pub fn lines(&self, outcome: LineOutcome) -> u64 {
        let counter = match outcome {
            LineOutcome::Accepted => &self.lines_accepted,
            LineOutcome::Invalid => &self.lines_invalid,
        };
        // Relaxed: a monitoring read; any recent value is fine.
        counter.load(Ordering::Relaxed)
    }

    /// The budget the ingest server reserves buffered request bytes from.
    #[must_use]
    pub fn buffers(&self) -> &BufferBudget {
        &self.buffers
    }

    /// Request bytes held in the server's buffers now.
    #[must_use]
    pub fn buffered_bytes(&self) -> usize {
        self.buffers.in_use()
    }

    /// Snapshot of the request-duration histogram.
    #[must_use]
    pub fn request_duration(&self) -> HistogramSnapshot {
        let mut buckets = [(f64::INFINITY, 0); BUCKETS];
        let mut count = 0;
        for (i, slot) in buckets.iter_mut().enumerate() {
            // Relaxed: a monitoring read; see the module docs on skew.
            let n = self.duration_buckets[i].load(Ordering::Relaxed);
            let bound = DURATION_BUCKETS.get(i).copied().unwrap_or(f64::INFINITY);
            *slot = (bound, n);
            count += n;
        }
        // Relaxed: a monitoring read; see the module docs on skew.
        let sum_nanos = self.duration_sum_nanos.load(Ordering::Relaxed);
        HistogramSnapshot {
            buckets,
            // Precision loss above 2^53 ns (~104 days of summed latency) is
            // irrelevant for a rate() over it.
            #[allow(clippy::cast_precision_loss)]
            sum_seconds: sum_nanos as f64 / 1e9,
            count,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_tables_agree() {
        for (secs, nanos) in DURATION_BUCKETS.iter().zip(DURATION_BUCKETS_NANOS) {
            assert!((secs * 1e9 - nanos as f64).abs() < 1.0, "{secs} vs {nanos}");
        }
        assert!(DURATION_BUCKETS.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn records_requests_lines_and_durations() {
        let m = IngestMetrics::new();
        m.record_request(RequestOutcome::Accepted, Duration::from_micros(50));
        m.record_request(RequestOutcome::Accepted, Duration::from_micros(100));
        m.record_request(RequestOutcome::NotFound, Duration::from_secs(60));
        m.record_lines(5, 2);
        m.record_lines(0, 1);

        assert_eq!(m.requests(RequestOutcome::Accepted), 2);
        assert_eq!(m.requests(RequestOutcome::NotFound), 1);
        assert_eq!(m.requests(RequestOutcome::BadRequest), 0);
        assert_eq!(m.lines(LineOutcome::Accepted), 5);
        assert_eq!(m.lines(LineOutcome::Invalid), 3);

        let h = m.request_duration();
        assert_eq!(h.count, 3);
        assert_eq!(h.buckets[0], (0.000_1, 2)); // 50 µs and exactly 100 µs
        assert_eq!(h.buckets[BUCKETS - 1], (f64::INFINITY, 1));
        assert!((h.sum_seconds - 60.000_15).abs() < 1e-9);
    }

    #[test]
    fn outcome_labels_are_unique_and_indexed_in_order() {
        for (i, o) in RequestOutcome::ALL.iter().enumerate() {
            assert_eq!(o.index(), i);
        }
        let mut labels: Vec<_> = RequestOutcome::ALL.iter().map(|o| o.as_str()).collect();
        labels.sort_unstable();
        labels.dedup();
        assert_eq!(labels.len(), RequestOutcome::ALL.len());
    }
}
