//! Settings of the Redis sync task ([`RedisSync`](super::RedisSync)):
//! where the shared key lives and how often to sync. The client itself is
//! built by [`build::redis_client`](crate::build::redis_client).

use std::time::Duration;

use redis::{ConnectionInfo, IntoConnectionInfo as _};

use super::keys::SyncKeys;

/// Default `--redis-key`.
pub const DEFAULT_REDIS_KEY: &str = "uniqd:unique_ip_addresses";

/// Where and how often a replica shares its count (see [`crate::redis_sync`]).
#[derive(Clone, PartialEq, Eq)]
pub struct RedisConfig {
    /// `redis://` URL, credentials included (never logged).
    pub url: String,
    /// The shared HyperLogLog key.
    pub key: String,
    /// Time between two syncs.
    pub sync_interval: Duration,
    /// Deadline for one sync.
    pub timeout: Duration,
}

impl RedisConfig {
    /// Settings for `url` with the default key, a 1 s interval and a 2 s timeout.
    #[must_use]
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            key: DEFAULT_REDIS_KEY.to_owned(),
            sync_interval: Duration::from_secs(1),
            timeout: Duration::from_secs(2),
        }
    }

    /// What [`url`](Self::url) says to connect to (a plain value; no client
    /// is built and no connection is made).
    ///
    /// # Errors
    ///
    /// A URL the client cannot use, without repeating it (it may hold a password).
    pub fn connection_info(&self) -> Result<ConnectionInfo, String> {
        let scheme = self.url.split_once("://").map_or("", |(scheme, _)| scheme);
        let tls = ["rediss", "valkeys"]
            .iter()
            .any(|s| s.eq_ignore_ascii_case(scheme));
        if tls && !cfg!(feature = "redis-tls") {
            return Err(format!(
                "--redis-url: {scheme}:// (TLS) needs a build with the `redis-tls` feature \
                 (cargo build --release --features redis-tls); see docs/scale-out.md"
            ));
        }
        self.url.as_str().into_connection_info().map_err(|e| {
            format!("invalid --redis-url (expected redis://[user:password@]host:port[/db]): {e}")
        })
    }

    /// Checks the URL, the key and the durations.
    ///
    /// # Errors
    ///
    /// A description of the first invalid setting.
    pub fn validate(&self) -> Result<(), String> {
        self.connection_info()?;
        SyncKeys::new(&self.key, "check")?;
        if self.sync_interval.is_zero() || self.timeout.is_zero() {
            return Err("--redis-sync-interval and --redis-timeout must be positive".to_owned());
        }
        Ok(())
    }
}

impl std::fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisConfig")
            .field("url", &"<redacted>")
            .field("key", &self.key)
            .field("sync_interval", &self.sync_interval)
            .field("timeout", &self.timeout)
            .finish()
    }
}
