//! Settings of the top pages view (requests per page path, see
//! `uniqd_core::top_pages`): the summary's size, how many pages are
//! exported, how a `url` becomes a path. Built by
//! [`build::top_pages`](crate::build::top_pages).

use uniqd_core::{PathOptions, DEFAULT_TOP_PAGES_CAPACITY, MAX_TOP_PAGES_CAPACITY};

/// Default `--top-pages-metric-limit`: pages exported as `uniqd_top_page_requests`.
pub const DEFAULT_TOP_PAGES_METRIC_LIMIT: usize = 20;

/// Largest accepted `--top-pages-metric-limit`: every path that is ever among them becomes a
/// Prometheus series.
pub const MAX_TOP_PAGES_METRIC_LIMIT: usize = 100;

/// The top pages summary: its size, what is exported, how a `url` becomes a
/// path (see `uniqd_core::top_pages`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopPagesConfig {
    /// Counters per shard (one shard per worker thread); 0 turns top pages
    /// off.
    pub capacity: usize,
    /// Pages exported as `uniqd_top_page_requests` (0: none).
    pub metric_limit: usize,
    /// Normalisation of the path.
    pub path: PathOptions,
}

impl Default for TopPagesConfig {
    fn default() -> Self {
        Self {
            capacity: DEFAULT_TOP_PAGES_CAPACITY,
            metric_limit: DEFAULT_TOP_PAGES_METRIC_LIMIT,
            path: PathOptions::default(),
        }
    }
}

impl TopPagesConfig {
    /// Checks the sizes.
    ///
    /// # Errors
    ///
    /// A description of the first invalid setting.
    pub fn validate(&self) -> Result<(), String> {
        check_capacity(self.capacity)?;
        check_metric_limit(self.metric_limit)
    }
}

/// Checks a summary size against `uniqd_core::MAX_TOP_PAGES_CAPACITY`.
///
/// # Errors
///
/// The bound, when `capacity` is over it.
pub fn check_capacity(capacity: usize) -> Result<(), String> {
    if capacity > MAX_TOP_PAGES_CAPACITY {
        return Err(format!(
            "--top-pages-capacity (UNIQD_TOP_PAGES_CAPACITY) must be at most {MAX_TOP_PAGES_CAPACITY}"
        ));
    }
    Ok(())
}

/// Checks the number of exported pages against [`MAX_TOP_PAGES_METRIC_LIMIT`].
///
/// # Errors
///
/// The bound, when `limit` is over it.
pub fn check_metric_limit(limit: usize) -> Result<(), String> {
    if limit > MAX_TOP_PAGES_METRIC_LIMIT {
        return Err(format!(
            "--top-pages-metric-limit (UNIQD_TOP_PAGES_METRIC_LIMIT) must be at most {MAX_TOP_PAGES_METRIC_LIMIT}"
        ));
    }
    Ok(())
}
