//! The `uniqd_redis_*` metric families, read from [`RedisStatus`] at scrape time
//! (registered only when `--redis-url` is set).

use std::fmt;
use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Unit;

use super::status::RedisStatus;

/// `uniqd_redis_up` (gauge): 1 while the last sync attempt succeeded.
pub const REDIS_UP: &str = "uniqd_redis_up";
/// Family `uniqd_redis_sync_errors`, sample `uniqd_redis_sync_errors_total` (counter).
pub const REDIS_SYNC_ERRORS: &str = "uniqd_redis_sync_errors";
/// `uniqd_redis_last_sync_timestamp_seconds` (gauge; name without the unit).
pub const REDIS_LAST_SYNC: &str = "uniqd_redis_last_sync_timestamp";

/// Encodes the Redis sync state.
#[derive(Debug)]
pub struct RedisCollector(pub Arc<RedisStatus>);

impl Collector for RedisCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> fmt::Result {
        let status = &self.0;
        encoder
            .encode_descriptor(
                REDIS_UP,
                "1 if the last sync with the shared Redis key succeeded, 0 while Redis is \
                 unreachable (the replica then counts locally and merges later).",
                None,
                MetricType::Gauge,
            )?
            .encode_gauge(&i64::from(status.is_up()))?;
        encoder
            .encode_descriptor(
                REDIS_SYNC_ERRORS,
                "Failed attempts to sync with the shared Redis key.",
                None,
                MetricType::Counter,
            )?
            .encode_counter::<NoLabelSet, _, u64>(&status.sync_errors(), None)?;
        encoder
            .encode_descriptor(
                REDIS_LAST_SYNC,
                "Unix time of the last successful sync with the shared Redis key (0: never).",
                Some(&Unit::Seconds),
                MetricType::Gauge,
            )?
            .encode_gauge(&status.last_sync_unix_seconds())
    }
}

#[cfg(test)]
mod tests {
    use prometheus_client::registry::Registry;
    use uniqd_core::UniqueCounter;

    use super::*;

    #[test]
    fn encodes_the_three_families() {
        let status = Arc::new(RedisStatus::new(
            Arc::new(UniqueCounter::new()),
            "k".to_owned(),
            "r".to_owned(),
        ));
        let mut registry = Registry::default();
        registry.register_collector(Box::new(RedisCollector(Arc::clone(&status))));
        let scrape = |registry: &Registry| {
            let mut text = String::new();
            prometheus_client::encoding::text::encode(&mut text, registry).expect("encodes");
            text
        };
        let text = scrape(&registry);
        for expected in [
            "# TYPE uniqd_redis_up gauge\nuniqd_redis_up 0\n",
            "# TYPE uniqd_redis_sync_errors counter\n",
            "uniqd_redis_sync_errors_total 0\n",
            "# UNIT uniqd_redis_last_sync_timestamp_seconds seconds\n",
            "uniqd_redis_last_sync_timestamp_seconds 0.0\n",
        ] {
            assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
        }
        status.failed();
        status.synced(7);
        let text = scrape(&registry);
        assert!(text.contains("uniqd_redis_up 1\n"), "{text}");
        assert!(text.contains("uniqd_redis_sync_errors_total 1\n"), "{text}");
        assert!(
            !text.contains("uniqd_redis_last_sync_timestamp_seconds 0.0\n"),
            "{text}"
        );
    }
}
