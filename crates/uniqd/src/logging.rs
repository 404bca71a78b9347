//! Tracing subscriber setup: text (default) or JSON lines on stderr.
//!
//! The filter comes from `--log-level`/`UNIQD_LOG_LEVEL`, else `RUST_LOG`,
//! else `info`. Nothing in the request path logs at info or above, so `info`
//! shows only lifecycle events (listening, shutting down, drained).

use std::io::IsTerminal as _;

use tracing_subscriber::EnvFilter;

use crate::cli::LogFormat;

/// Installs the global subscriber.
///
/// # Errors
///
/// The filter does not parse, or a global subscriber is already installed.
pub fn init(format: LogFormat, level: Option<&str>) -> Result<(), String> {
    let filter = match level {
        Some(level) => {
            EnvFilter::try_new(level).map_err(|e| format!("invalid log level {level:?}: {e}"))?
        }
        None => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let result = match format {
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
    };
    result.map_err(|e| format!("cannot install the log subscriber: {e}"))
}
