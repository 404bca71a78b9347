//! Configuration of the metrics server.

use uniqd_http::{BearerTokens, ServerConfig};

/// Default metrics port.
pub const DEFAULT_METRICS_PORT: u16 = 9102;

/// Settings for [`run`](crate::run).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExporterConfig {
    /// Connection handling (same loop as the ingest server).
    pub server: ServerConfig,
    /// Bearer tokens every path of the metrics port requires but
    /// [`OPEN_PATHS`](crate::OPEN_PATHS) (`/healthz`, `/readyz`, the status
    /// page's HTML `/`); `None`, the default: all open.
    pub metrics_auth: Option<BearerTokens>,
}
