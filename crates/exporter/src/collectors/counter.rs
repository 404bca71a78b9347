//! The unique counter: `unique_ip_addresses`, its phase, error and threshold.
//!
//! With a [`SharedCount`] (replicas sharing one count, e.g. through Redis),
//! `unique_ip_addresses` is the shared count and this replica's own count moves to
//! `uniqd_local_unique_ip_addresses`. `UniqueCounter::estimate` costs about 10 µs per scrape.

use std::fmt;
use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::metrics::MetricType;
use uniqd_core::{Phase, UniqueCounter};

use crate::shared_count::SharedCount;

/// `unique_ip_addresses` (gauge, no unit suffix by contract).
pub const UNIQUE_IP_ADDRESSES: &str = "unique_ip_addresses";
/// `uniqd_local_unique_ip_addresses` (gauge): this replica's own count, exported only when a
/// [`SharedCount`] answers `unique_ip_addresses`.
pub const LOCAL_UNIQUE_IP_ADDRESSES: &str = "uniqd_local_unique_ip_addresses";
/// `uniqd_estimator_phase{phase="exact"|"sketch"}` (gauge, 1 for the current).
pub const ESTIMATOR_PHASE: &str = "uniqd_estimator_phase";
/// `uniqd_estimator_relative_standard_error` (gauge).
pub const ESTIMATOR_RELATIVE_STANDARD_ERROR: &str = "uniqd_estimator_relative_standard_error";
/// `uniqd_exact_threshold` (gauge).
pub const EXACT_THRESHOLD: &str = "uniqd_exact_threshold";

/// Reads the counter (and the shared count, if any) on every scrape.
#[derive(Debug)]
pub struct CounterCollector {
    counter: Arc<UniqueCounter>,
    shared: Option<Arc<dyn SharedCount>>,
}

impl CounterCollector {
    /// Exports `counter`; with `shared`, that answers `unique_ip_addresses` and `counter`
    /// becomes `uniqd_local_unique_ip_addresses`.
    #[must_use]
    pub fn new(counter: Arc<UniqueCounter>, shared: Option<Arc<dyn SharedCount>>) -> Self {
        Self { counter, shared }
    }
}

impl Collector for CounterCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> fmt::Result {
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
        ESTIMATOR_PHASE,
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
                ESTIMATOR_RELATIVE_STANDARD_ERROR,
                "Relative standard error of unique_ip_addresses (0 while exact).",
                None,
                MetricType::Gauge,
            )?
            .encode_gauge(&self.counter.relative_standard_error())?;

        encoder
            .encode_descriptor(
                EXACT_THRESHOLD,
                "Distinct addresses counted exactly before switching to the sketch.",
                None,
                MetricType::Gauge,
            )?
            .encode_gauge(&u64::try_from(self.counter.threshold()).unwrap_or(u64::MAX))
    }
}
