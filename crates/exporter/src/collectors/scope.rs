//! Which replicas the shared views cover right now: `uniqd_views_scope{view="windows"}` and
//! `{view="top_pages"}` and `{view="groups"}`, 1 while the view answers for every replica (the Redis sync's
//! merged copy is current), 0 while it answers with this replica's own data (Redis
//! unreachable). A separate family, so that the value series of the views keep the same
//! labels whatever the scope.

use std::fmt;
use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::metrics::MetricType;

use crate::shared_views::SharedViews;

/// `uniqd_views_scope{view}` (gauge): 1 global, 0 local.
pub const VIEWS_SCOPE: &str = "uniqd_views_scope";

/// Encodes the scope of each shared view that is on.
#[derive(Debug)]
pub struct ScopeCollector {
    shared: Arc<dyn SharedViews>,
    windows: bool,
    top_pages: bool,
    groups: bool,
}

impl ScopeCollector {
    /// The scope of the windows (if on) and of the top pages (if on), as `shared` answers.
    #[must_use]
    pub fn new(shared: Arc<dyn SharedViews>, windows: bool, top_pages: bool) -> Self {
        Self {
            shared,
            windows,
            top_pages,
            groups: false,
        }
    }

    /// Also the scope of the per-group counts (when on).
    #[must_use]
    pub fn with_groups(mut self, groups: bool) -> Self {
        self.groups = groups;
        self
    }
}

impl Collector for ScopeCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> fmt::Result {
        let mut family = encoder.encode_descriptor(
            VIEWS_SCOPE,
            "1 while the view (windows, top_pages, groups) counts every replica sharing the Redis \
             store, 0 while it counts only this replica (Redis unreachable).",
            None,
            MetricType::Gauge,
        )?;
        if self.windows {
            let global = i64::from(self.shared.windows().is_some());
            family
                .encode_family(&[("view", "windows")])?
                .encode_gauge(&global)?;
        }
        if self.top_pages {
            let global = i64::from(self.shared.top_pages(0).is_some());
            family
                .encode_family(&[("view", "top_pages")])?
                .encode_gauge(&global)?;
        }
        if self.groups {
            let global = i64::from(self.shared.groups().is_some());
            family
                .encode_family(&[("view", "groups")])?
                .encode_gauge(&global)?;
        }
        Ok(())
    }
}
