//! The scrape-time [`Collector`] that turns the counter and the ingest
//! metrics into OpenMetrics families.
//!
//! Nothing is cached: every scrape reads `UniqueCounter::estimate` (≈10 µs)
//! and the ingest atomics directly, so `/metrics` is always current and the
//! hot path never does extra work for monitoring. Metric names are a fixed
//! contract with dashboards and alerts; change them only together.
//!
//! With a [`SharedCount`] (replicas sharing one count, e.g. through Redis),
//! `unique_ip_addresses` is the shared count and this replica's own count moves
//! to `uniqd_local_unique_ip_addresses`.
//!
//! With [`TopPages`] ([`UniqdCollector::with_top_pages`]), the `K` most
//! requested pages are exported as `uniqd_top_page_requests{path="..."}`:
//! at most `K` series per scrape (default 20), but *which* paths they are
//! changes with the traffic, so over a retention period Prometheus stores
//! one series per path that was ever in the top `K` (bounded by the distinct
//! paths that reached it, not by `K`). Keep `K` small; `/stats` lists more.
//!
//! With a [`WindowRing`] ([`UniqdCollector::with_windows`]), each configured
//! window is exported as `unique_ip_addresses_window{window="5m"}`: the
//! ring merges the window's slots at scrape time, from a per-interval cache
//! of the closed ones (tens of microseconds per window once warm).

use std::fmt;
use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Unit;
use uniqd_core::{Phase, Span, TopPages, UniqueCounter, WindowRing};
use uniqd_ingest::metrics::{LineOutcome, RequestOutcome};
use uniqd_ingest::IngestMetrics;

use crate::shared_count::SharedCount;

/// `unique_ip_addresses` (gauge, no unit suffix by contract).
pub const UNIQUE_IP_ADDRESSES: &str = "unique_ip_addresses";
/// `uniqd_local_unique_ip_addresses` (gauge): this replica's own count, exported only when a
/// [`SharedCount`] answers `unique_ip_addresses`.
pub const LOCAL_UNIQUE_IP_ADDRESSES: &str = "uniqd_local_unique_ip_addresses";
/// `uniqd_counter_phase{phase="exact"|"sketch"}` (gauge, 1 for the current).
pub const COUNTER_PHASE: &str = "uniqd_counter_phase";
/// `uniqd_counter_relative_standard_error` (gauge).
pub const COUNTER_RELATIVE_STANDARD_ERROR: &str = "uniqd_counter_relative_standard_error";
/// `uniqd_counter_threshold` (gauge).
pub const COUNTER_THRESHOLD: &str = "uniqd_counter_threshold";
/// Family `uniqd_ingest_requests`, samples `uniqd_ingest_requests_total{outcome}`.
pub const INGEST_REQUESTS: &str = "uniqd_ingest_requests";
/// Family `uniqd_ingest_lines`, samples `uniqd_ingest_lines_total{outcome}`.
pub const INGEST_LINES: &str = "uniqd_ingest_lines";
/// `uniqd_ingest_request_duration_seconds` histogram (name without the unit).
pub const INGEST_REQUEST_DURATION: &str = "uniqd_ingest_request_duration";
/// `uniqd_build_info{version}` (gauge, always 1).
pub const BUILD_INFO: &str = "uniqd_build_info";
/// `uniqd_top_page_requests{path}` (gauge): requests of the top pages.
pub const TOP_PAGE_REQUESTS: &str = "uniqd_top_page_requests";
/// `unique_ip_addresses_window{window}` (gauge): distinct addresses in a time window.
pub const UNIQUE_IP_ADDRESSES_WINDOW: &str = "unique_ip_addresses_window";

/// The window ring and the windows exported from it, each with its label.
#[derive(Debug)]
struct WindowGauges {
    ring: Arc<WindowRing>,
    windows: Vec<(Span, String)>,
}

/// Static facts about the running build, exposed as `uniqd_build_info`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildInfo {
    /// The `version` label, e.g. `env!("CARGO_PKG_VERSION")`.
    pub version: String,
}

/// Reads the counter and the ingest metrics on every scrape.
pub struct UniqdCollector {
    counter: Arc<UniqueCounter>,
    ingest: Arc<IngestMetrics>,
    build: BuildInfo,
    shared: Option<Arc<dyn SharedCount>>,
    /// The summary and how many of its pages to export.
    top_pages: Option<(Arc<TopPages>, usize)>,
    /// The ring and the windows to export.
    windows: Option<WindowGauges>,
}

impl UniqdCollector {
    /// A collector over the shared counter and ingest metrics.
    #[must_use]
    pub fn new(counter: Arc<UniqueCounter>, ingest: Arc<IngestMetrics>, build: BuildInfo) -> Self {
        Self {
            counter,
            ingest,
            build,
            shared: None,
            top_pages: None,
            windows: None,
        }
    }

    /// Exports `shared` as `unique_ip_addresses` and the local counter as
    /// `uniqd_local_unique_ip_addresses`.
    #[must_use]
    pub fn with_shared_count(mut self, shared: Arc<dyn SharedCount>) -> Self {
        self.shared = Some(shared);
        self
    }

    /// Exports the `pages` most requested pages of `top` as
    /// `uniqd_top_page_requests{path}` (nothing when `pages` is 0).
    #[must_use]
    pub fn with_top_pages(mut self, top: Arc<TopPages>, pages: usize) -> Self {
        self.top_pages = (pages > 0).then_some((top, pages));
        self
    }

    /// Exports `unique_ip_addresses_window{window}` for each of `windows`
    /// (labelled as [`Span`] prints them: `5m`, `1h`, `24h`, `7d`).
    #[must_use]
    pub fn with_windows(mut self, ring: Arc<WindowRing>, windows: &[Span]) -> Self {
        self.windows = Some(WindowGauges {
            ring,
            windows: windows.iter().map(|w| (*w, w.to_string())).collect(),
        });
        self
    }

    fn encode_windows(&self, encoder: &mut DescriptorEncoder<'_>) -> fmt::Result {
        let Some(WindowGauges { ring, windows }) = &self.windows else {
            return Ok(());
        };
        let mut family = encoder.encode_descriptor(
            UNIQUE_IP_ADDRESSES_WINDOW,
            "Distinct client IP addresses in the window ending now (the current partial minute, \
             or hour beyond 60m, and the whole ones before it): exact while small, else a \
             HyperLogLog estimate.",
            None,
            MetricType::Gauge,
        )?;
        for (span, label) in windows {
            // Configured windows were validated at start; one that is not is skipped.
            if let Ok(count) = ring.count(*span) {
                family
                    .encode_family(&[("window", label.as_str())])?
                    .encode_gauge(&count.estimate)?;
            }
        }
        Ok(())
    }

    fn encode_top_pages(&self, encoder: &mut DescriptorEncoder<'_>) -> fmt::Result {
        let Some((top, pages)) = &self.top_pages else {
            return Ok(());
        };
        let snapshot = top.snapshot(*pages);
        let mut family = encoder.encode_descriptor(
            TOP_PAGE_REQUESTS,
            "Requests for the most requested page paths (url without query and fragment), \
             highest first: upper bounds, each at most the error_bound of /stats above the \
             true count.",
            None,
            MetricType::Gauge,
        )?;
        for page in &snapshot.pages {
            family
                .encode_family(&[("path", page.path.as_str())])?
                .encode_gauge(&page.count)?;
        }
        Ok(())
    }

    fn encode_counter_state(&self, encoder: &mut DescriptorEncoder<'_>) -> fmt::Result {
        let local = self.counter.estimate();
        if let Some(shared) = &self.shared {
            encoder
                .encode_descriptor(
                    UNIQUE_IP_ADDRESSES,
                    "Distinct client IP addresses seen by all replicas sharing the count \
                     (the same value on every replica: aggregate with max, not sum).",
                    None,
                    MetricType::Gauge,
                )?
                .encode_gauge(&shared.global_estimate())?;
            encoder
                .encode_descriptor(
                    LOCAL_UNIQUE_IP_ADDRESSES,
                    "Distinct client IP addresses seen by this replica since start.",
                    None,
                    MetricType::Gauge,
                )?
                .encode_gauge(&local)?;
        } else {
            encoder
                .encode_descriptor(
                    UNIQUE_IP_ADDRESSES,
                    "Distinct client IP addresses seen since start: exact below the threshold, \
                     a HyperLogLog estimate above it.",
                    None,
                    MetricType::Gauge,
                )?
                .encode_gauge(&local)?;
        }

        let phase = self.counter.phase();
        let mut family = encoder.encode_descriptor(
            COUNTER_PHASE,
            "Counting phase: 1 for the current phase (exact set or HyperLogLog sketch), 0 otherwise.",
            None,
            MetricType::Gauge,
        )?;
        for (label, this) in [("exact", Phase::Exact), ("sketch", Phase::Sketch)] {
            family
                .encode_family(&[("phase", label)])?
                .encode_gauge(&i64::from(phase == this))?;
        }

        encoder
            .encode_descriptor(
                COUNTER_RELATIVE_STANDARD_ERROR,
                "Relative standard error of unique_ip_addresses (0 while exact).",
                None,
                MetricType::Gauge,
            )?
            .encode_gauge(&self.counter.relative_standard_error())?;

        encoder
            .encode_descriptor(
                COUNTER_THRESHOLD,
                "Distinct addresses counted exactly before switching to the sketch.",
                None,
                MetricType::Gauge,
            )?
            .encode_gauge(&u64::try_from(self.counter.threshold()).unwrap_or(u64::MAX))
    }

    fn encode_ingest(&self, encoder: &mut DescriptorEncoder<'_>) -> fmt::Result {
        let mut family = encoder.encode_descriptor(
            INGEST_REQUESTS,
            "Ingest HTTP requests by outcome.",
            None,
            MetricType::Counter,
        )?;
        for outcome in RequestOutcome::ALL {
            family
                .encode_family(&[("outcome", outcome.as_str())])?
                .encode_counter::<NoLabelSet, _, u64>(&self.ingest.requests(outcome), None)?;
        }

        let mut family = encoder.encode_descriptor(
            INGEST_LINES,
            "Log objects (NDJSON lines or single bodies) by outcome.",
            None,
            MetricType::Counter,
        )?;
        for outcome in LineOutcome::ALL {
            family
                .encode_family(&[("outcome", outcome.as_str())])?
                .encode_counter::<NoLabelSet, _, u64>(&self.ingest.lines(outcome), None)?;
        }

        let histogram = self.ingest.request_duration();
        encoder
            .encode_descriptor(
                INGEST_REQUEST_DURATION,
                "Time from request head to response, per ingest request.",
                Some(&Unit::Seconds),
                MetricType::Histogram,
            )?
            .encode_histogram::<NoLabelSet>(
                histogram.sum_seconds,
                histogram.count,
                &histogram.buckets,
                None,
            )
    }

    fn encode_build_info(&self, encoder: &mut DescriptorEncoder<'_>) -> fmt::Result {
        encoder
            .encode_descriptor(
                BUILD_INFO,
                "Build information; always 1.",
                None,
                MetricType::Gauge,
            )?
            .encode_family(&[("version", self.build.version.as_str())])?
            .encode_gauge(&1_i64)
    }
}

impl fmt::Debug for UniqdCollector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UniqdCollector")
            .field("ingest", &self.ingest)
            .field("build", &self.build)
            .field("shared", &self.shared)
            .field("top_pages", &self.top_pages)
            .finish_non_exhaustive()
    }
}

impl Collector for UniqdCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), fmt::Error> {
        self.encode_counter_state(&mut encoder)?;
        self.encode_ingest(&mut encoder)?;
        self.encode_top_pages(&mut encoder)?;
        self.encode_windows(&mut encoder)?;
        self.encode_build_info(&mut encoder)
    }
}
