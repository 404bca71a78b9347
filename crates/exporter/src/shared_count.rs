//! Hooks for a count shared between replicas (for example through a Redis key): the
//! [`SharedCount`] that then answers `unique_ip_addresses`, and the [`ReadyDetail`] that shows
//! the state of what carries it in `/readyz`.
//!
//! The exporter knows nothing about how the count is shared; the application implements
//! these traits over whatever its sync task maintains. Both are read at scrape or probe time
//! and must not block: implementations read atomics.

use std::fmt;

/// The distinct count across every replica that shares it.
pub trait SharedCount: Send + Sync + fmt::Debug {
    /// Distinct addresses of the union of all replicas, as last known (never below this
    /// replica's own count).
    fn global_estimate(&self) -> u64;
}

/// The state of a dependency, reported in the `/readyz` body under [`key`](Self::key)
/// without deciding readiness (the service ingests whether or not the dependency is up).
pub trait ReadyDetail: Send + Sync + fmt::Debug {
    /// Field name in the `/readyz` JSON object, e.g. `redis`.
    fn key(&self) -> &str;
    /// The field's value: valid JSON (typically an object).
    fn to_json(&self) -> String;
}
