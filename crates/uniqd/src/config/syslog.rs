//! The syslog listeners' settings (`--syslog-listen` and friends): where to listen, the
//! receive buffer of the UDP sockets, and the limits `uniqd_ingest::syslog` applies.

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;

use uniqd_ingest::syslog::SyslogConfig;

/// One `--syslog-listen` value: `udp://ADDR:PORT` or `tcp://ADDR:PORT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyslogListen {
    /// Datagrams on this address (one `SO_REUSEPORT` socket per worker).
    Udp(SocketAddr),
    /// A TCP listener on this address.
    Tcp(SocketAddr),
}

impl FromStr for SyslogListen {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let (scheme, addr) = text
            .split_once("://")
            .ok_or_else(|| format!("{text:?}: expected udp://ADDR:PORT or tcp://ADDR:PORT"))?;
        let addr: SocketAddr = addr
            .parse()
            .map_err(|e| format!("{text:?}: {e} (expected an IP address and a port)"))?;
        match scheme {
            "udp" => Ok(Self::Udp(addr)),
            "tcp" => Ok(Self::Tcp(addr)),
            _ => Err(format!("{text:?}: the scheme must be udp:// or tcp://")),
        }
    }
}

impl fmt::Display for SyslogListen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Udp(addr) => write!(f, "udp://{addr}"),
            Self::Tcp(addr) => write!(f, "tcp://{addr}"),
        }
    }
}

/// The UDP receive buffer asked for when `--syslog-receive-buffer` is not given. A big buffer
/// absorbs bursts, and keeps the kernel fast under load: once a socket's queue is more than
/// half full, every sender takes a lock to enqueue (`busylock` in `__udp_enqueue_schedule_skb`).
/// With the kernel's 208 KiB uniqd received 0.24 M messages/s and a third was dropped; with
/// this, 0.32 M, all that was sent (docs/benchmarks.md). Memory is used only while datagrams
/// wait.
pub const DEFAULT_RECEIVE_BUFFER: usize = 8 << 20;

/// The syslog transport's settings; present only with at least one `--syslog-listen`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyslogSettings {
    /// The addresses to listen on.
    pub listen: Vec<SyslogListen>,
    /// `SO_RCVBUF` of each UDP socket in bytes as set by the user; `None`:
    /// [`DEFAULT_RECEIVE_BUFFER`].
    pub receive_buffer: Option<usize>,
    /// Message size limit, TCP connection cap, idle and drain timeouts.
    pub limits: SyslogConfig,
}

impl SyslogSettings {
    /// Checks the settings.
    ///
    /// # Errors
    ///
    /// A human-readable description of the first invalid setting.
    pub fn validate(&self) -> Result<(), String> {
        if self.listen.is_empty() {
            return Err("syslog is on without a --syslog-listen address".to_owned());
        }
        if self.receive_buffer == Some(0) {
            return Err(
                "--syslog-receive-buffer (UNIQD_SYSLOG_RECEIVE_BUFFER) must be greater than zero"
                    .to_owned(),
            );
        }
        self.limits.validate()
    }
}

#[cfg(test)]
mod tests {
    use super::SyslogListen;

    #[test]
    fn parses_listen_addresses() {
        assert_eq!(
            "udp://127.0.0.1:514".parse(),
            Ok(SyslogListen::Udp(([127, 0, 0, 1], 514).into()))
        );
        let tcp: SyslogListen = " tcp://[::1]:6514".parse().expect("valid");
        assert_eq!(tcp.to_string(), "tcp://[::1]:6514");
        for bad in [
            "127.0.0.1:514",
            "tls://127.0.0.1:514",
            "udp://localhost:514",
            "udp://1.2.3.4",
        ] {
            assert!(bad.parse::<SyslogListen>().is_err(), "{bad}");
        }
    }
}
