//! The `uniqd_state_*` metric families: how the state file's saves go, so that monitoring
//! sees saves failing (disk full, directory gone) while the service goes on counting.
//! Registered only when `--state-file` is set.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Unit;

/// Family `uniqd_state_save_failures`, sample `uniqd_state_save_failures_total` (counter).
pub const STATE_SAVE_FAILURES: &str = "uniqd_state_save_failures";
/// `uniqd_state_last_save_timestamp_seconds` (gauge; name without the unit).
pub const STATE_LAST_SAVE: &str = "uniqd_state_last_save_timestamp";

/// What the saver reports and the collector reads.
#[derive(Debug, Default)]
pub struct SaveStatus {
    failures: AtomicU64,
    /// Unix milliseconds of the last save that left the file holding the count; 0: never.
    last_ok_ms: AtomicU64,
}

impl SaveStatus {
    /// A save failed.
    pub fn failed(&self) {
        // Relaxed: a monotonic count read on its own; no other memory depends on it.
        self.failures.fetch_add(1, Ordering::Relaxed);
    }

    /// A save wrote the file, or found it already holding the count.
    pub fn saved(&self) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        // Relaxed: a timestamp read on its own; fetch_max keeps it from going back.
        self.last_ok_ms.fetch_max(now, Ordering::Relaxed);
    }

    /// Failed saves since start.
    pub fn failures(&self) -> u64 {
        // Relaxed: see `failed`.
        self.failures.load(Ordering::Relaxed)
    }

    /// Unix time of the last good save, in seconds (0: never).
    pub fn last_save_unix_seconds(&self) -> f64 {
        // Relaxed: see `saved`.
        self.last_ok_ms.load(Ordering::Relaxed) as f64 / 1000.0
    }
}

/// Encodes the state file's save status.
#[derive(Debug)]
pub struct StateCollector(pub Arc<SaveStatus>);

impl Collector for StateCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> fmt::Result {
        let status = &self.0;
        encoder
            .encode_descriptor(
                STATE_SAVE_FAILURES,
                "Failed writes of the state file (--state-file); the previous file stays and \
                 the write is retried every --state-interval.",
                None,
                MetricType::Counter,
            )?
            .encode_counter::<NoLabelSet, _, u64>(&status.failures(), None)?;
        encoder
            .encode_descriptor(
                STATE_LAST_SAVE,
                "Unix time of the last save after which the state file held the count (a write, \
                 or a check that found nothing new to write); 0: never.",
                Some(&Unit::Seconds),
                MetricType::Gauge,
            )?
            .encode_gauge(&status.last_save_unix_seconds())
    }
}

#[cfg(test)]
mod tests {
    use prometheus_client::registry::Registry;

    use super::*;

    #[test]
    fn encodes_the_two_families() {
        let status = Arc::new(SaveStatus::default());
        let mut registry = Registry::default();
        registry.register_collector(Box::new(StateCollector(Arc::clone(&status))));
        let scrape = |registry: &Registry| {
            let mut text = String::new();
            prometheus_client::encoding::text::encode(&mut text, registry).expect("encodes");
            text
        };
        let text = scrape(&registry);
        for expected in [
            "# TYPE uniqd_state_save_failures counter\n",
            "uniqd_state_save_failures_total 0\n",
            "# UNIT uniqd_state_last_save_timestamp_seconds seconds\n",
            "uniqd_state_last_save_timestamp_seconds 0.0\n",
        ] {
            assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
        }
        status.failed();
        status.saved();
        let text = scrape(&registry);
        assert!(
            text.contains("uniqd_state_save_failures_total 1\n"),
            "{text}"
        );
        assert!(
            !text.contains("uniqd_state_last_save_timestamp_seconds 0.0\n"),
            "{text}"
        );
    }
}
