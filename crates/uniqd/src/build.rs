//! The runtime objects the configuration describes, built by plain
//! functions so that the config modules only hold and check values: the
//! time window ring, the top pages summary and the Redis client.

use std::sync::Arc;

use uniqd_core::window::MAX_SKEW_MS;
use uniqd_core::{SystemClock, TopPages, WindowRing};

use crate::config::{TopPagesConfig, WindowsConfig};
use crate::redis_sync::config::RedisConfig;

/// The time window ring `config` describes, on the system clock.
#[must_use]
pub fn window_ring(config: &WindowsConfig) -> WindowRing {
    // At most 59 minutes once validated, so the milliseconds fit; the ring
    // clamps a longer skew anyway.
    let skew_ms = u64::try_from(config.skew.as_millis()).unwrap_or(MAX_SKEW_MS);
    WindowRing::new(skew_ms, Arc::new(SystemClock))
}

/// The top pages summary for `threads` recording threads (one shard each,
/// at most `uniqd_core::MAX_TOP_PAGES_SHARDS`); `None` when off.
///
/// # Errors
///
/// An invalid `config` (see [`TopPagesConfig::validate`]).
pub fn top_pages(config: &TopPagesConfig, threads: usize) -> Result<Option<TopPages>, String> {
    config.validate()?;
    if config.capacity == 0 {
        return Ok(None);
    }
    let shards = threads.clamp(1, uniqd_core::MAX_TOP_PAGES_SHARDS);
    TopPages::new(config.capacity, shards, config.path)
        .map(Some)
        .map_err(|e| e.to_string())
}

/// The Redis client for `config`'s URL (no connection is made).
///
/// # Errors
///
/// A URL the client cannot use (see [`RedisConfig::connection_info`]).
pub fn redis_client(config: &RedisConfig) -> Result<redis::Client, String> {
    // Opening a client from a parsed `ConnectionInfo` only stores it.
    redis::Client::open(config.connection_info()?).map_err(|e| e.to_string())
}
