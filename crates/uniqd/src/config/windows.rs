//! Settings of the time windows view (unique counts per minute and hour,
//! see `uniqd_core::window`): the exported windows and the timestamp skew.
//! Built by [`build::window_ring`](crate::build::window_ring).

use std::time::Duration;

use uniqd_core::window::MAX_SKEW_MS;
use uniqd_core::Span;

/// Unique counts over time windows (see `uniqd_core::window`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowsConfig {
    /// Windows exported as `unique_ip_addresses_window{window}`.
    pub gauges: Vec<Span>,
    /// How far before arrival a log's timestamp is still used.
    pub skew: Duration,
}

impl Default for WindowsConfig {
    fn default() -> Self {
        Self {
            // 5m, 1h, 24h (`Span::minutes` is `None` only for zero).
            gauges: [5, 60, 24 * 60]
                .into_iter()
                .filter_map(Span::minutes)
                .collect(),
            skew: Duration::from_secs(5 * 60),
        }
    }
}

impl WindowsConfig {
    /// Checks the windows and the skew.
    ///
    /// # Errors
    ///
    /// A description of the first invalid setting.
    pub fn validate(&self) -> Result<(), String> {
        for span in &self.gauges {
            check_window(*span)?;
        }
        if self.skew > Duration::from_millis(MAX_SKEW_MS) {
            return Err(format!(
                "--window-skew (UNIQD_WINDOW_SKEW) must be at most 59m (the minute slots kept), \
                 not {:?}",
                self.skew
            ));
        }
        Ok(())
    }
}

/// Checks that `span` is a window the ring can answer (see
/// `uniqd_core::Span::check_window`).
///
/// # Errors
///
/// What is wrong with it.
pub fn check_window(span: Span) -> Result<(), String> {
    span.check_window()
        .map_err(|e| format!("--windows (UNIQD_WINDOWS): {e}"))
}
