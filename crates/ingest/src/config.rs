//! Configuration of the ingest server.

use uniqd_http::{BearerTokens, ServerConfig};

use crate::fields::FieldMap;

/// Default size limit for a single-object body, and the longest NDJSON line:
/// 1 MiB.
pub const DEFAULT_MAX_OBJECT_BYTES: usize = 1024 * 1024;

/// Default size limit for a batch body (NDJSON, JSON array or stream): 64 MiB.
pub const DEFAULT_MAX_BATCH_BYTES: usize = 64 * 1024 * 1024;

/// Default budget for request bytes buffered by all connections together: 64 MiB.
pub const DEFAULT_MAX_BUFFERED_BYTES: usize = 64 * 1024 * 1024;

/// Everything [`run`](crate::run) needs to know besides its listener and
/// state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestConfig {
    /// Connection handling: timeouts, connection cap, drain deadline.
    pub server: ServerConfig,
    /// Largest accepted single-object body, and the longest accepted NDJSON
    /// line or JSON array element, in bytes.
    pub max_object_bytes: usize,
    /// Largest accepted batch body (NDJSON, a JSON array or stream), in bytes,
    /// on the wire and decoded.
    pub max_batch_bytes: usize,
    /// The most request bytes all connections together may hold in the
    /// server's own buffers (single objects collected across chunks, NDJSON
    /// lines carried between chunks); a request that would pass it gets 503
    /// with `Retry-After`.
    pub max_buffered_bytes: usize,
    /// Bearer tokens `POST /logs` requires; `None` (the default) leaves it
    /// open.
    pub auth: Option<BearerTokens>,
    /// Which members hold the address, URL and time (`--ip-field`, `--url-field`,
    /// `--timestamp-field`), and the trusted proxies (`--trusted-proxies`).
    pub fields: FieldMap,
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            server: ServerConfig::default(),
            max_object_bytes: DEFAULT_MAX_OBJECT_BYTES,
            max_batch_bytes: DEFAULT_MAX_BATCH_BYTES,
            max_buffered_bytes: DEFAULT_MAX_BUFFERED_BYTES,
            auth: None,
            fields: FieldMap::default(),
        }
    }
}

impl IngestConfig {
    /// Checks the values [`run`](crate::run) would otherwise reject.
    ///
    /// # Errors
    ///
    /// A human-readable description of the first invalid setting.
    pub fn validate(&self) -> Result<(), String> {
        self.server.validate()?;
        if self.max_object_bytes == 0 {
            return Err(
                "--max-object-size (UNIQD_MAX_OBJECT_SIZE) must be greater than zero".to_owned(),
            );
        }
        if self.max_batch_bytes == 0 {
            return Err(
                "--max-batch-size (UNIQD_MAX_BATCH_SIZE) must be greater than zero".to_owned(),
            );
        }
        if self.max_buffered_bytes == 0 {
            return Err("max buffered bytes must be greater than zero".to_owned());
        }
        Ok(())
    }
}
