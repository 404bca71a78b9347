//! Hook for views shared between replicas (for example through Redis): the time windows,
//! the top pages and the per-group counts of every replica together. With a [`SharedViews`]
//! that has a current answer, `unique_ip_addresses_window`, `/api/v1/unique`,
//! `/api/v1/unique/series`, `uniqd_top_page_requests`, `/stats`,
//! `unique_ip_addresses_by_group`, `/api/v1/groups` and `/api/v1/unique?group=` answer for all
//! replicas and say `"scope":"global"`;
//! otherwise (no sharing, or the shared store unreachable) this replica's own views answer
//! and say `"scope":"local"`. `/metrics` tells which in `uniqd_views_scope{view}` (1 global,
//! 0 local), so the value series keep their labels whatever the scope.
//!
//! The exporter knows nothing about how the views are shared; implementations keep what
//! their sync task last read in memory and must not block (no network I/O at read time).

use std::fmt;
use std::sync::Arc;

use uniqd_core::{GroupCount, Groups, GroupsSnapshot, TopPages, TopPagesSnapshot, WindowRing};

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
    /// The counts of every replica's groups (at most `max_groups` of them, largest first,
    /// and `__other__`), while current (`None`: answer locally). Not shared by default.
    fn groups(&self) -> Option<GroupsSnapshot> {
        None
    }
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

/// The group counts to answer with: the shared ones when current, else `local`'s.
///
/// A shared count is never below this replica's own count of the same group (the union holds
/// this replica's addresses; the local count is newer by up to one sync interval): the larger
/// of the two answers, with its phase and error.
#[must_use]
pub fn pick_groups(
    local: &Groups,
    shared: Option<&Arc<dyn SharedViews>>,
) -> (GroupsSnapshot, Scope) {
    let Some(mut global) = shared.and_then(|s| s.groups()) else {
        return (local.snapshot(), Scope::Local);
    };
    let at_least_local = |count: &mut GroupCount| {
        if let Some(own) = local.count(&count.name) {
            if own.estimate >= count.estimate {
                *count = own;
            }
        }
    };
    global.groups.iter_mut().for_each(at_least_local);
    at_least_local(&mut global.other);
    global
        .groups
        .sort_by(|a, b| b.estimate.cmp(&a.estimate).then(a.name.cmp(&b.name)));
    (global, Scope::Global)
}
