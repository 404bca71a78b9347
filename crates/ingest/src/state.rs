//! What every ingest connection shares: the views to record into, the metrics and the
//! configuration. Its own module so that the server (`lib.rs`) and the routes it calls do
//! not import each other.

use std::sync::Arc;

use uniqd_core::Views;

use crate::config::IngestConfig;
use crate::metrics::IngestMetrics;

/// State shared by all ingest connections.
pub(crate) struct IngestState {
    pub(crate) views: Views,
    pub(crate) metrics: Arc<IngestMetrics>,
    pub(crate) config: IngestConfig,
}

impl std::fmt::Debug for IngestState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IngestState")
            .field("metrics", &self.metrics)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}
