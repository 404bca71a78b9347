//! The time windows: each configured window as `unique_ip_addresses_window{window="5m"}`.
//!
//! The ring merges the window's slots at scrape time, from a per-interval cache of the closed
//! ones (tens of microseconds per window once warm).

use std::fmt;
use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::metrics::MetricType;
use uniqd_core::{Span, WindowRing};

use crate::shared_views::{pick_windows, SharedViews};

/// `unique_ip_addresses_window{window}` (gauge): distinct addresses in a time window.
pub const UNIQUE_IP_ADDRESSES_WINDOW: &str = "unique_ip_addresses_window";

/// Counts the configured windows of the ring on every scrape.
#[derive(Debug)]
pub struct WindowsCollector {
    ring: Arc<WindowRing>,
    /// The windows to export, each with its label.
    windows: Vec<(Span, String)>,
    /// Views shared between replicas: their ring answers while current.
    shared: Option<Arc<dyn SharedViews>>,
}

impl WindowsCollector {
    /// Exports `unique_ip_addresses_window{window}` for each of `windows` (labelled as
    /// [`Span`] prints them: `5m`, `1h`, `24h`, `7d`).
    #[must_use]
    pub fn new(ring: Arc<WindowRing>, windows: &[Span]) -> Self {
        Self {
            ring,
            windows: windows.iter().map(|w| (*w, w.to_string())).collect(),
            shared: None,
        }
    }

    /// Counts the windows of every replica while `shared` has a current ring.
    #[must_use]
    pub fn with_shared(mut self, shared: Option<Arc<dyn SharedViews>>) -> Self {
        self.shared = shared;
        self
    }
}

impl Collector for WindowsCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> fmt::Result {
        let mut family = encoder.encode_descriptor(
            UNIQUE_IP_ADDRESSES_WINDOW,
            "Distinct client IP addresses in the window ending now (the current partial minute, \
             or hour beyond 60m, and the whole ones before it): exact while small, else a \
             HyperLogLog estimate.",
            None,
            MetricType::Gauge,
        )?;
        let (ring, _) = pick_windows(&self.ring, self.shared.as_ref());
        for (span, label) in &self.windows {
            // Configured windows were validated at start; one that is not is skipped.
            if let Ok(count) = ring.count(*span) {
                family
                    .encode_family(&[("window", label.as_str())])?
                    .encode_gauge(&count.estimate)?;
            }
        }
        Ok(())
    }
}
