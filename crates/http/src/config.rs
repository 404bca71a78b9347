//! [`ServerConfig`]: the connection handling settings of [`serve`](crate::serve),
//! checked in one place ([`ServerConfig::validate`]).

use std::time::Duration;

use hyper::server::conn::http1;
use tokio::sync::Semaphore;

/// hyper's lower bound for `max_buf_size` (it panics below this).
pub const MIN_BUF_SIZE: usize = 8192;

/// Connection handling settings for [`serve`](crate::serve). Validation messages name the
/// uniqd flag (and environment variable) of each setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// Maximum simultaneously open connections; more wait in the backlog.
    pub max_connections: usize,
    /// How long shutdown waits for in-flight requests before dropping
    /// the remaining connections.
    pub drain_timeout: Duration,
    /// Deadline for receiving a complete request head, counted from when the
    /// connection starts waiting for one (so it also bounds idle keep-alive).
    pub header_read_timeout: Duration,
    /// Close a connection with no request in flight after this long without
    /// any bytes read or written.
    pub idle_timeout: Duration,
    /// Longest wait for each next chunk of a request body (408 after).
    pub body_read_timeout: Duration,
    /// hyper's per-connection read buffer limit; a request head larger than
    /// this is answered with 431. At least [`MIN_BUF_SIZE`].
    pub max_buf_size: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            max_connections: 10_000,
            drain_timeout: Duration::from_secs(10),
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
            body_read_timeout: Duration::from_secs(30),
            max_buf_size: 64 * 1024,
        }
    }
}

impl ServerConfig {
    /// Checks the values [`serve`](crate::serve) would otherwise reject.
    ///
    /// # Errors
    ///
    /// A human-readable description of the first invalid setting.
    pub fn validate(&self) -> Result<(), String> {
        if self.max_connections == 0 || self.max_connections > Semaphore::MAX_PERMITS {
            return Err(format!(
                "--max-connections (UNIQD_MAX_CONNECTIONS) must be between 1 and {}",
                Semaphore::MAX_PERMITS
            ));
        }
        if self.max_buf_size < MIN_BUF_SIZE {
            return Err(format!(
                "--max-header-size (UNIQD_MAX_HEADER_SIZE) must be at least {MIN_BUF_SIZE} bytes \
                 (8KiB), not {}",
                self.max_buf_size
            ));
        }
        for (name, value) in [
            (
                "--header-read-timeout (UNIQD_HEADER_READ_TIMEOUT)",
                self.header_read_timeout,
            ),
            ("--idle-timeout (UNIQD_IDLE_TIMEOUT)", self.idle_timeout),
            (
                "--body-read-timeout (UNIQD_BODY_READ_TIMEOUT)",
                self.body_read_timeout,
            ),
        ] {
            if value.is_zero() {
                return Err(format!("{name} must be greater than zero"));
            }
        }
        Ok(())
    }

    pub(crate) fn http1_builder(&self) -> http1::Builder {
        let mut builder = http1::Builder::new();
        builder
            // The connection watchdog keeps the header-read timeout instead.
            .header_read_timeout(None)
            .keep_alive(true)
            // A client that sends its request and then shuts down its write
            // side (`shutdown(SHUT_WR)`, common in scripts and simple
            // shippers) still gets its answer: without this hyper treats the
            // read EOF as an abort while the request is being handled and
            // drops the response.
            .half_close(true)
            // `max_buf_size` alone only stops a head that is still incomplete
            // when the buffer fills, and a single read can bring in more
            // than that; `max_header_size` also rejects complete heads that
            // are too large.
            .max_header_size(self.max_buf_size)
            .max_buf_size(self.max_buf_size);
        builder
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_validation() {
        assert_eq!(ServerConfig::default().validate(), Ok(()));
        let bad = [
            ServerConfig {
                max_connections: 0,
                ..ServerConfig::default()
            },
            ServerConfig {
                max_buf_size: 100,
                ..ServerConfig::default()
            },
            ServerConfig {
                body_read_timeout: Duration::ZERO,
                ..ServerConfig::default()
            },
        ];
        for config in bad {
            assert!(config.validate().is_err(), "{config:?}");
        }
    }
}
