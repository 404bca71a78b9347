//! Hook for views shared between replicas (for example through Redis): the time windows and
//! the top pages of every replica together. With a [`SharedViews`] that has a current answer,
//! `unique_ip_addresses_window`, `/api/v1/unique`, `/api/v1/unique/series`,
//! `uniqd_top_page_requests` and `/stats` answer for all replicas and say `"scope":"global"`;
//! otherwise (no sharing, or the shared store unreachable) this replica's own views answer
//! and say `"scope":"local"`. `/metrics` tells which in `uniqd_views_scope{view}` (1 global,
//! 0 local), so the value series keep their labels whatever the scope.
//!
//! The exporter knows nothing about how the views are shared; implementations keep what
//! their sync task last read in memory and must not block (no network I/O at read time).

use std::fmt;
use std::sync::Arc;

use uniqd_core::{TopPages, TopPagesSnapshot, WindowRing};

/// Which replicas an answer covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// This replica's own view.
    Local,
    /// Every replica sharing the store.
    Global,
}

impl Scope {
    /// `local` or `global`, as in the JSON field `scope`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Local => "local",
            Self::Global => "global",
        }
    }
}

/// The views of every replica, as last read from the shared store.
pub trait SharedViews: Send + Sync + fmt::Debug {
    /// A ring holding the union of every replica's windows, while current (`None`: answer
    /// locally).
    fn windows(&self) -> Option<Arc<WindowRing>>;
    /// The merged top pages of every replica with their first `limit` pages, while current
    /// (`None`: answer locally).
    fn top_pages(&self, limit: usize) -> Option<TopPagesSnapshot>;
}

/// The ring to answer from: the shared one when current, else `local`.
#[must_use]
pub fn pick_windows(
    local: &Arc<WindowRing>,
    shared: Option<&Arc<dyn SharedViews>>,
) -> (Arc<WindowRing>, Scope) {
    match shared.and_then(|s| s.windows()) {
        Some(ring) => (ring, Scope::Global),
        None => (Arc::clone(local), Scope::Local),
    }
}

/// The top pages to answer with: the shared ones when current, else `local`'s.
#[must_use]
pub fn pick_top_pages(
    local: &TopPages,
    shared: Option<&Arc<dyn SharedViews>>,
    limit: usize,
) -> (TopPagesSnapshot, Scope) {
    match shared.and_then(|s| s.top_pages(limit)) {
        Some(snapshot) => (snapshot, Scope::Global),
        None => (local.snapshot(limit), Scope::Local),
    }
}
