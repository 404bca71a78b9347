//! [`RedisStatus`]: what the sync task last learned, in atomics that the exporter reads at
//! scrape and probe time (the global count for `unique_ip_addresses`, the state for
//! `/readyz` and the `uniqd_redis_*` metrics).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use uniqd_core::UniqueCounter;
use uniqd_exporter::{ReadyDetail, SharedCount};
use uniqd_http::JsonObject;

use crate::units::millis;

/// State of the Redis sync, shared between the sync task (writer) and the exporter (readers).
///
/// Every field is an independent value (no reader needs two of them to agree), so all
/// accesses are `Relaxed`: a scrape may see the new count with the old timestamp for an
/// instant, which no consumer can tell from a scrape a microsecond earlier.
#[derive(Debug)]
pub struct RedisStatus {
    counter: Arc<UniqueCounter>,
    key: String,
    replica: String,
    up: AtomicBool,
    global: AtomicU64,
    sync_errors: AtomicU64,
    /// Milliseconds since the Unix epoch of the last successful sync; 0 before the first.
    last_sync_millis: AtomicU64,
}

impl RedisStatus {
    /// Down and never synced, for replica `replica` sharing `key`.
    pub fn new(counter: Arc<UniqueCounter>, key: String, replica: String) -> Self {
        Self {
            counter,
            key,
            replica,
            up: AtomicBool::new(false),
            global: AtomicU64::new(0),
            sync_errors: AtomicU64::new(0),
            last_sync_millis: AtomicU64::new(0),
        }
    }

    /// Records a successful sync that read `global` from `PFCOUNT`.
    pub fn synced(&self, global: u64) {
        // Relaxed: independent values, see the type docs.
        self.global.store(global, Ordering::Relaxed);
        self.last_sync_millis
            .store(millis(since_epoch()), Ordering::Relaxed);
        self.up.store(true, Ordering::Relaxed);
    }

    /// Records a failed sync attempt.
    pub fn failed(&self) {
        // Relaxed: independent values, see the type docs.
        self.up.store(false, Ordering::Relaxed);
        self.sync_errors.fetch_add(1, Ordering::Relaxed);
    }

    /// Whether the last sync attempt succeeded.
    pub fn is_up(&self) -> bool {
        // Relaxed: see the type docs.
        self.up.load(Ordering::Relaxed)
    }

    /// Failed sync attempts since start.
    pub fn sync_errors(&self) -> u64 {
        // Relaxed: see the type docs.
        self.sync_errors.load(Ordering::Relaxed)
    }

    /// Unix time of the last successful sync, in seconds (0 before the first).
    pub fn last_sync_unix_seconds(&self) -> f64 {
        // Relaxed: see the type docs.
        Duration::from_millis(self.last_sync_millis.load(Ordering::Relaxed)).as_secs_f64()
    }

    /// This replica's id, which names its helper keys.
    pub fn replica(&self) -> &str {
        &self.replica
    }
}

/// Time since the Unix epoch (0 if the clock is set before it).
fn since_epoch() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

impl SharedCount for RedisStatus {
    /// `PFCOUNT` of the shared key at the last sync, but never below the local count: the
    /// union holds this replica's addresses, so its count is at least ours, and the local
    /// count keeps the value current while Redis is unreachable or before the first sync.
    fn global_estimate(&self) -> u64 {
        // Relaxed: see the type docs.
        let global = self.global.load(Ordering::Relaxed);
        global.max(self.counter.estimate())
    }
}

impl ReadyDetail for RedisStatus {
    fn key(&self) -> &str {
        "redis"
    }

    fn to_json(&self) -> String {
        let object = JsonObject::new()
            .raw("up", if self.is_up() { "true" } else { "false" })
            .str("key", &self.key)
            .str("replica", &self.replica)
            .u64("sync_errors_total", self.sync_errors());
        // Relaxed: see the type docs.
        let last = self.last_sync_millis.load(Ordering::Relaxed);
        let object = if last == 0 {
            object.raw("last_sync_age_seconds", "null")
        } else {
            let age = millis(since_epoch()).saturating_sub(last) / 1000;
            object.u64("last_sync_age_seconds", age)
        };
        object
            .str(
                "note",
                "readiness does not depend on Redis: ingest counts locally and merges when it returns",
            )
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status() -> RedisStatus {
        RedisStatus::new(
            Arc::new(UniqueCounter::new()),
            "k".to_owned(),
            "r1".to_owned(),
        )
    }

    #[test]
    fn global_count_is_never_below_the_local_one() {
        let status = status();
        for ip in ["10.0.0.1", "10.0.0.2", "10.0.0.3"] {
            status.counter.insert_str(ip).expect("valid");
        }
        assert_eq!(
            status.global_estimate(),
            3,
            "before any sync: the local count"
        );
        status.synced(100);
        assert_eq!(status.global_estimate(), 100);
        status.synced(2);
        assert_eq!(status.global_estimate(), 3);
    }

    #[test]
    fn state_transitions_and_readyz_json() {
        let status = status();
        assert!(!status.is_up());
        let json: serde_json::Value = serde_json::from_str(&status.to_json()).expect("JSON");
        assert_eq!(json["up"], false);
        assert!(json["last_sync_age_seconds"].is_null());
        assert_eq!(json["replica"], "r1");

        status.synced(5);
        assert!(status.is_up());
        assert!(status.last_sync_unix_seconds() > 1.6e9);
        status.failed();
        status.failed();
        assert!(!status.is_up());
        assert_eq!(status.sync_errors(), 2);
        let json: serde_json::Value = serde_json::from_str(&status.to_json()).expect("JSON");
        assert_eq!(json["up"], false);
        assert_eq!(json["sync_errors_total"], 2);
        assert_eq!(json["key"], "k");
        assert!(json["last_sync_age_seconds"]
            .as_u64()
            .is_some_and(|age| age <= 1));
    }
}
