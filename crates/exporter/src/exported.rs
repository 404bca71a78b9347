//! [`Exported`]: the one value the metrics port reads, at scrape or request time: the
//! [`Views`], the ingest metrics, the build, and the count shared between replicas if any.
//!
//! `/metrics` gets one collector per view that is on from it ([`crate::registry`]); the JSON
//! APIs read it directly: `/status.json` the counter and the ingest metrics
//! ([`crate::status::status_json`]), `/stats` the top pages, `/api/v1/unique` and
//! `/api/v1/unique/series` the window ring. Nothing is cached or updated on the ingest path.

use std::sync::Arc;

use uniqd_core::{Span, Views};
use uniqd_ingest::IngestMetrics;

use crate::shared_count::SharedCount;
use crate::shared_views::SharedViews;

/// Static facts about the running build, exposed as `uniqd_build_info`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildInfo {
    /// The `version` label, e.g. `env!("CARGO_PKG_VERSION")`.
    pub version: String,
}

/// What `/metrics` and the JSON APIs read: the views (the same value ingest records into),
/// the ingest metrics, the build, and a [`SharedCount`] if replicas share one. Cloning shares
/// them.
#[derive(Debug, Clone)]
pub struct Exported {
    views: Views,
    ingest: Arc<IngestMetrics>,
    build: BuildInfo,
    shared: Option<Arc<dyn SharedCount>>,
    shared_views: Option<Arc<dyn SharedViews>>,
    /// The configured time windows, listed by `/status.json` for the status page.
    windows: Vec<Span>,
}

impl Exported {
    /// Reads `views` and `ingest` (the ones the ingest server records into).
    #[must_use]
    pub fn new(views: Views, ingest: Arc<IngestMetrics>, build: BuildInfo) -> Self {
        Self {
            views,
            ingest,
            build,
            shared: None,
            shared_views: None,
            windows: Vec::new(),
        }
    }

    /// Lists `windows` (the configured ones, as `/metrics` exports them) in `/status.json`,
    /// so the status page knows which windows to ask `/api/v1/unique` for. Ignored without a
    /// window ring in the views.
    #[must_use]
    pub fn with_windows(mut self, windows: Vec<Span>) -> Self {
        self.windows = windows;
        self
    }

    /// The windows given to [`with_windows`](Self::with_windows) when the views have a window
    /// ring; empty otherwise.
    #[must_use]
    pub fn windows(&self) -> &[Span] {
        if self.views.windows().is_some() {
            &self.windows
        } else {
            &[]
        }
    }

    /// Reports `shared` as `unique_ip_addresses` (in `/metrics` and `/status.json`) and the
    /// local counter as `uniqd_local_unique_ip_addresses` / `local_unique_ip_addresses`.
    #[must_use]
    pub fn with_shared_count(mut self, shared: Arc<dyn SharedCount>) -> Self {
        self.shared = Some(shared);
        self
    }

    /// Answers the windows and the top pages for every replica while `shared` has a current
    /// answer (see [`crate::shared_views`]).
    #[must_use]
    pub fn with_shared_views(mut self, shared: Arc<dyn SharedViews>) -> Self {
        self.shared_views = Some(shared);
        self
    }

    /// The views shared between replicas, if any.
    #[must_use]
    pub fn shared_views(&self) -> Option<&Arc<dyn SharedViews>> {
        self.shared_views.as_ref()
    }

    /// The views: the counter, and the top pages and window ring when on (without them,
    /// `/stats` and `/api/v1/unique...` answer 404).
    #[must_use]
    pub fn views(&self) -> &Views {
        &self.views
    }

    /// The ingest request and line metrics.
    #[must_use]
    pub fn ingest(&self) -> &Arc<IngestMetrics> {
        &self.ingest
    }

    /// The build.
    #[must_use]
    pub fn build(&self) -> &BuildInfo {
        &self.build
    }

    /// The count shared between replicas, if any.
    #[must_use]
    pub fn shared_count(&self) -> Option<&Arc<dyn SharedCount>> {
        self.shared.as_ref()
    }
}
