//! [`SyslogConfig`]: the limits of the syslog listeners.

use std::time::Duration;

use crate::fields::FieldMap;

/// Default limit of one syslog message: 64 KiB.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// The limits of the syslog listeners.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyslogConfig {
    /// Largest message (UDP datagram, or framed message on TCP); larger ones are invalid.
    pub max_message_bytes: usize,
    /// Most open TCP connections per listener; more wait in the kernel's backlog.
    pub max_connections: usize,
    /// A TCP connection that sends nothing for this long is closed.
    pub idle_timeout: Duration,
    /// On shutdown, how long TCP connections may take to count what they hold.
    pub drain_timeout: Duration,
    /// Where a message's address, URL and time are (the same `--ip-field` and friends as
    /// `POST /logs`).
    pub fields: FieldMap,
}

impl Default for SyslogConfig {
    fn default() -> Self {
        Self {
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            max_connections: 10_000,
            idle_timeout: Duration::from_secs(30),
            drain_timeout: Duration::from_secs(10),
            fields: FieldMap::standard().clone(),
        }
    }
}

impl SyslogConfig {
    /// Checks the values `run_syslog` would otherwise reject.
    ///
    /// # Errors
    ///
    /// A human-readable description of the first invalid setting.
    pub fn validate(&self) -> Result<(), String> {
        if self.max_message_bytes == 0 {
            return Err("--syslog-max-message-size (UNIQD_SYSLOG_MAX_MESSAGE_SIZE) must be greater than zero".to_owned());
        }
        if self.max_connections == 0 {
            return Err(
                "--max-connections (UNIQD_MAX_CONNECTIONS) must be greater than zero".to_owned(),
            );
        }
        if self.idle_timeout.is_zero() {
            return Err("--idle-timeout (UNIQD_IDLE_TIMEOUT) must be greater than zero".to_owned());
        }
        Ok(())
    }
}
