//! What every metrics connection shares: the registry, the exported views, readiness, the
//! token check and the scrape size hint. Its own module so that the server (`lib.rs`) and
//! the routes it calls do not import each other.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use prometheus_client::registry::Registry;
use uniqd_http::BearerTokens;

use crate::exported::Exported;
use crate::readiness::Readiness;

/// State shared by all metrics connections.
#[derive(Debug)]
pub(crate) struct ExporterState {
    pub(crate) registry: Arc<Registry>,
    pub(crate) exported: Exported,
    pub(crate) readiness: Arc<Readiness>,
    /// Tokens `/metrics` requires, if any.
    pub(crate) metrics_auth: Option<BearerTokens>,
    pub(crate) started: Instant,
    /// Size of the previous scrape, to allocate the next one in one go.
    pub(crate) last_scrape_len: AtomicUsize,
}

impl ExporterState {
    pub(crate) fn scrape_size_hint(&self) -> usize {
        // Relaxed: only a capacity hint; any recent value will do.
        self.last_scrape_len.load(Ordering::Relaxed).max(4096) + 256
    }

    pub(crate) fn record_scrape_size(&self, len: usize) {
        // Relaxed: only a capacity hint.
        self.last_scrape_len.store(len, Ordering::Relaxed);
    }
}
