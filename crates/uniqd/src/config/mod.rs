//! The resolved service configuration, [`AppConfig`], and the one place it
//! is checked ([`AppConfig::validate`]). Where the flags come from is
//! [`crate::cli`]; runtime objects are built from it by [`crate::build`].
//!
//! Each sub-config sits beside what uses it: the top pages and time windows
//! settings in [`top_pages`], [`windows`] and [`groups`], the syslog listeners' in [`syslog`], [`RedisConfig`] in
//! `redis_sync/config.rs`, `StateConfig` in `persistence/mod.rs`, the servers'
//! settings in their crates (`IngestConfig`, `ExporterConfig`, and
//! `ServerConfig` in `uniqd-http`). Every bound is checked by one function:
//! the sub-config's `validate` or a `check_*` it calls, which the flag
//! parsers call too.

pub mod groups;
pub mod syslog;
pub mod top_pages;
pub mod windows;

use uniqd_exporter::ExporterConfig;
use uniqd_ingest::IngestConfig;

pub use self::groups::GroupsConfig;
pub use self::syslog::{SyslogListen, SyslogSettings, DEFAULT_RECEIVE_BUFFER};
pub use self::top_pages::TopPagesConfig;
pub use self::windows::WindowsConfig;
use crate::persistence::StateConfig;
use crate::redis_sync::config::RedisConfig;

/// Largest accepted `--exact-threshold`: bounds the exact set's memory.
pub const MAX_EXACT_THRESHOLD: usize = 1 << 24;

/// Checks an exact threshold against [`MAX_EXACT_THRESHOLD`].
///
/// # Errors
///
/// The bound, when `threshold` is over it.
pub fn check_exact_threshold(threshold: usize) -> Result<(), String> {
    if threshold > MAX_EXACT_THRESHOLD {
        return Err(format!(
            "--exact-threshold (UNIQD_EXACT_THRESHOLD) must be at most {MAX_EXACT_THRESHOLD}"
        ));
    }
    Ok(())
}

/// Everything [`serve`](crate::serve) needs besides listeners and a
/// shutdown signal. `Default` gives the documented defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppConfig {
    /// Distinct addresses counted exactly before the sketch takes over.
    pub exact_threshold: usize,
    /// Ingest server settings.
    pub ingest: IngestConfig,
    /// Metrics server settings.
    pub exporter: ExporterConfig,
    /// Scale-out through Redis; `None` (the default): a standalone count.
    pub redis: Option<RedisConfig>,
    /// Where and how often to save the counter (`None`: not saved).
    pub state: Option<StateConfig>,
    /// Requests per page (`/stats`, `uniqd_top_page_requests`).
    pub top_pages: TopPagesConfig,
    /// Unique counts over time windows; `None`: off.
    pub windows: Option<WindowsConfig>,
    /// The syslog listeners; `None` (the default): off.
    pub syslog: Option<SyslogSettings>,
    /// Distinct addresses per group (`--group-by`); `None` (the default): off.
    pub groups: Option<GroupsConfig>,
}

impl Default for AppConfig {
    fn default() -> Self {
        Self {
            exact_threshold: uniqd_core::DEFAULT_THRESHOLD,
            ingest: IngestConfig::default(),
            exporter: ExporterConfig::default(),
            redis: None,
            state: None,
            top_pages: TopPagesConfig::default(),
            windows: Some(WindowsConfig::default()),
            syslog: None,
            groups: None,
        }
    }
}

impl AppConfig {
    /// Checks every setting before anything starts.
    ///
    /// # Errors
    ///
    /// A human-readable description of the first invalid setting.
    pub fn validate(&self) -> Result<(), String> {
        check_exact_threshold(self.exact_threshold)?;
        self.ingest.validate()?;
        self.top_pages.validate()?;
        if let Some(windows) = &self.windows {
            windows.validate()?;
        }
        if let Some(redis) = &self.redis {
            redis.validate()?;
        }
        self.exporter.server.validate()?;
        if let Some(syslog) = &self.syslog {
            syslog.validate()?;
        }
        if let Some(groups) = &self.groups {
            groups.validate()?;
        }
        match &self.state {
            Some(state) if state.interval.is_zero() => {
                Err("--state-interval (UNIQD_STATE_INTERVAL) must be greater than zero".to_owned())
            }
            _ => Ok(()),
        }
    }
}
