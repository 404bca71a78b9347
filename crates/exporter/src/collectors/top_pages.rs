//! The top pages: the `K` most requested pages as `uniqd_top_page_requests{path="..."}`.
//!
//! At most `K` series per scrape (default 20), but *which* paths they are changes with the
//! traffic, so over a retention period Prometheus stores one series per path that was ever in
//! the top `K` (bounded by the distinct paths that reached it, not by `K`). Keep `K` small;
//! `/stats` lists more.

use std::fmt;
use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::metrics::MetricType;
use uniqd_core::TopPages;

use crate::shared_views::{pick_top_pages, SharedViews};

/// `uniqd_top_page_requests{path}` (gauge): requests of the top pages.
pub const TOP_PAGE_REQUESTS: &str = "uniqd_top_page_requests";

/// Merges the top pages' shards on every scrape and exports the first `pages`.
#[derive(Debug)]
pub struct TopPagesCollector {
    top: Arc<TopPages>,
    pages: usize,
    /// Views shared between replicas: their merged pages answer while current.
    shared: Option<Arc<dyn SharedViews>>,
}

impl TopPagesCollector {
    /// Exports the `pages` most requested pages of `top` (the family with no sample when
    /// `pages` is 0; [`registry`](crate::registry) then leaves the collector out).
    #[must_use]
    pub fn new(top: Arc<TopPages>, pages: usize) -> Self {
        Self {
            top,
            pages,
            shared: None,
        }
    }

    /// Exports the merged pages of every replica while `shared` has them.
    #[must_use]
    pub fn with_shared(mut self, shared: Option<Arc<dyn SharedViews>>) -> Self {
        self.shared = shared;
        self
    }
}

impl Collector for TopPagesCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> fmt::Result {
        let (snapshot, _) = pick_top_pages(&self.top, self.shared.as_ref(), self.pages);
        let mut family = encoder.encode_descriptor(
            TOP_PAGE_REQUESTS,
            "Requests for the most requested page paths (url without query and fragment), \
             highest first: upper bounds, each at most the error_bound of /stats above the \
             true count.",
            None,
            MetricType::Gauge,
        )?;
        for page in &snapshot.pages {
            family
                .encode_family(&[("path", page.path.as_str())])?
                .encode_gauge(&page.count)?;
        }
        Ok(())
    }
}
