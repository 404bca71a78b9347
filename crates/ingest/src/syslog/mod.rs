//! The syslog transport: nginx (`access_log syslog:server=...`), HAProxy (`log ...`),
//! rsyslog and syslog-ng send each access-log line as one syslog message, over UDP
//! datagrams or a TCP stream, and [`run_syslog`] counts them like `POST /logs` does.
//!
//! | step | module | what it does |
//! |---|---|---|
//! | transport | `udp.rs`, `tcp.rs` | one task per UDP socket (the binary binds one `SO_REUSEPORT` socket per worker); per TCP listener an accept loop with a connection cap and one task per connection, with an idle timeout |
//! | TCP framing | [`stream`] | octet counting or newline framing (RFC 6587), decided per connection |
//! | header | [`header`] | RFC 3164 or RFC 5424, returns the MSG |
//! | the log | `record_line` here | a JSON object goes through [`framing::object::record_object`](crate::framing::object::record_object): the same fields stage and `record_log` as HTTP |
//!
//! Every message is counted in [`SyslogMetrics`] as received, and accepted or invalid (bad
//! header, over the size limit, not a log the fields stage accepts). Nothing on the receive
//! path allocates or locks beyond what the HTTP path does: each task owns one buffer of the
//! message limit.
//!
//! On shutdown the UDP tasks read what the kernel still holds for them, and each TCP
//! connection reads what has already arrived, counts every complete message and closes; a
//! message cut in half by the shutdown is counted invalid.
//!
//! There is no token on syslog (the protocol has no place for one): bind the listeners to a
//! private address. UDP can drop under overload (the kernel drops datagrams when the receive
//! buffer is full; [`SyslogMetrics::udp_drops`] reports it); TCP back-pressures the sender.

pub mod header;
pub mod metrics;
pub mod stream;
mod tcp;
mod udp;

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::watch;
use tokio::task::JoinSet;
use uniqd_core::Views;

pub use self::header::{message, HeaderError};
pub use self::metrics::{SyslogMetrics, Transport, TransportCounts};
use crate::framing::object::record_object;

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
}

impl Default for SyslogConfig {
    fn default() -> Self {
        Self {
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            max_connections: 10_000,
            idle_timeout: Duration::from_secs(30),
            drain_timeout: Duration::from_secs(10),
        }
    }
}

impl SyslogConfig {
    /// Checks the values [`run_syslog`] would otherwise reject.
    ///
    /// # Errors
    ///
    /// A human-readable description of the first invalid setting.
    pub fn validate(&self) -> Result<(), String> {
        if self.max_message_bytes == 0 {
            return Err("--syslog-max-message-size must be greater than zero".to_owned());
        }
        if self.max_connections == 0 {
            return Err("--max-connections must be greater than zero".to_owned());
        }
        if self.idle_timeout.is_zero() {
            return Err("--idle-timeout must be greater than zero".to_owned());
        }
        Ok(())
    }
}

/// The bound sockets the syslog transport receives on.
#[derive(Debug, Default)]
pub struct SyslogListeners {
    /// UDP sockets, each served by its own task (several with `SO_REUSEPORT` on one address
    /// spread the datagrams over the workers).
    pub udp: Vec<UdpSocket>,
    /// TCP listeners.
    pub tcp: Vec<TcpListener>,
}

impl SyslogListeners {
    /// Whether there is no socket at all.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.udp.is_empty() && self.tcp.is_empty()
    }
}

/// Receives syslog messages on `listeners` and records each accepted one in `views` until
/// `shutdown` resolves, then counts what was already received (see the module docs) and
/// returns.
///
/// # Errors
///
/// `InvalidInput` if `config` is invalid.
pub async fn run_syslog(
    listeners: SyslogListeners,
    views: Views,
    metrics: Arc<SyslogMetrics>,
    config: SyslogConfig,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    config
        .validate()
        .map_err(|msg| io::Error::new(io::ErrorKind::InvalidInput, msg))?;
    let (stop, stopped) = watch::channel(false);
    let mut tasks = JoinSet::new();
    for socket in listeners.udp {
        if let Some(inode) = udp::inode(&socket) {
            metrics.watch_udp_inode(inode);
        }
        tasks.spawn(udp::serve(
            socket,
            views.clone(),
            Arc::clone(&metrics),
            config.max_message_bytes,
            stopped.clone(),
        ));
    }
    for listener in listeners.tcp {
        tasks.spawn(tcp::serve(
            listener,
            views.clone(),
            Arc::clone(&metrics),
            config.clone(),
            stopped.clone(),
        ));
    }
    shutdown.await;
    stop.send_replace(true);
    while let Some(result) = tasks.join_next().await {
        if let Err(error) = result {
            tracing::error!(%error, "a syslog listener task failed");
        }
    }
    Ok(())
}

/// Resolves once [`run_syslog`] says stop: the one value it ever sends, seen as a change.
/// (`changed` reads an atomic version, no lock, cheap enough to poll per datagram.) Every
/// receiver is cloned from one that has not seen the change yet, so none misses it.
async fn until_stopped(stopped: &mut watch::Receiver<bool>) {
    // An error means the sender is gone: `run_syslog` returned, so stop too.
    let _ = stopped.changed().await;
}

/// Reads what the kernel already holds for `socket` without waiting: one non-blocking
/// `recv`, straight on the socket. (tokio's `try_recv`/`try_read` answer `WouldBlock` until
/// the runtime has seen the socket readable, which a shutdown right after a burst need not
/// have; the drain on shutdown must not depend on that.)
fn read_now(socket: socket2::SockRef<'_>, buf: &mut [u8]) -> io::Result<usize> {
    use std::io::Read;
    (&*socket).read(buf)
}

/// Records one syslog message (header, then the log it carries); whether it was counted.
fn record_message(bytes: &[u8], views: &Views) -> bool {
    message(bytes).is_ok_and(|line| record_line(line, views))
}

/// Records the one log a syslog message carries: the single place a message's format is
/// chosen. A JSON object goes to the same fields stage as `POST /logs`.
fn record_line(line: &[u8], views: &Views) -> bool {
    let start = line
        .iter()
        .position(|b| !matches!(b, b' ' | b'\t'))
        .unwrap_or(line.len());
    match line.get(start) {
        Some(b'{') => record_object(&line[start..], views).is_ok(),
        // TODO(issue 18, after issue 17's `fields::clf` lands): a combined/common log format
        // line (nginx's default `combined`, HAProxy's HTTP log) goes to `fields::clf` here,
        // then `record_log` like the JSON branch. Until then it is counted invalid.
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uniqd_core::UniqueCounter;

    #[test]
    fn a_message_is_one_json_log() {
        let views = Views::new(Arc::new(UniqueCounter::new()));
        assert!(record_message(
            b"<190>Dec  7 16:37:52 web nginx: {\"ip\":\"1.2.3.4\",\"url\":\"/a\"}",
            &views
        ));
        assert!(record_message(
            b"<165>1 - - - - - -  {\"ip\":\"1.2.3.5\"}\n",
            &views
        ));
        for bad in [
            &b"<190>Dec  7 16:37:52 web nginx: {\"ip\":\"1.2.3.400\"}"[..],
            b"<190>Dec  7 16:37:52 web nginx: {\"ip\":\"1.2.3.6\"",
            b"{\"ip\":\"1.2.3.7\"}",
            b"<190>Dec  7 16:37:52 web nginx: 1.2.3.8 - - [07/Dec/2026:16:37:52 +0000] \"GET / HTTP/1.1\" 200 1 \"-\" \"-\"",
        ] {
            assert!(!record_message(bad, &views));
        }
        assert_eq!(views.counter().estimate(), 2);
    }
}
