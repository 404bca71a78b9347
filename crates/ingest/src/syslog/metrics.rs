//! The syslog listeners' counters, by transport: messages received, accepted and invalid
//! (lock-free, `Relaxed` adds on the receive path), TCP connections, and the kernel's drop
//! counter of the UDP sockets, read from `/proc/net/udp` and `/proc/net/udp6` when scraped.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// The transports a syslog message arrives on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// One message per datagram.
    Udp,
    /// A stream of framed messages.
    Tcp,
}

impl Transport {
    /// Both, in the order the metrics list them.
    pub const ALL: [Self; 2] = [Self::Udp, Self::Tcp];

    /// The label value: `udp` or `tcp`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Udp => "udp",
            Self::Tcp => "tcp",
        }
    }
}

/// What became of the messages of one transport.
#[derive(Debug, Default)]
struct Counts {
    received: AtomicU64,
    accepted: AtomicU64,
    invalid: AtomicU64,
}

/// The syslog counters (one value for all listeners; see the module docs).
#[derive(Debug, Default)]
pub struct SyslogMetrics {
    udp: Counts,
    tcp: Counts,
    connections: AtomicU64,
    /// Inodes of the UDP sockets, to find their lines in `/proc/net/udp*`.
    udp_inodes: Mutex<Vec<u64>>,
}

/// One transport's counts at a moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TransportCounts {
    /// Messages (datagrams, or framed messages on a stream) received.
    pub received: u64,
    /// Messages counted into the views.
    pub accepted: u64,
    /// Messages refused: bad header, too large, not a log.
    pub invalid: u64,
}

impl SyslogMetrics {
    /// All zero.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn counts(&self, transport: Transport) -> &Counts {
        match transport {
            Transport::Udp => &self.udp,
            Transport::Tcp => &self.tcp,
        }
    }

    /// One message received and counted (`accepted`) or refused.
    pub(crate) fn record(&self, transport: Transport, accepted: bool) {
        let counts = self.counts(transport);
        // Relaxed: independent monotone counters, read only for export.
        counts.received.fetch_add(1, Ordering::Relaxed);
        let outcome = if accepted {
            &counts.accepted
        } else {
            &counts.invalid
        };
        // Relaxed: as above.
        outcome.fetch_add(1, Ordering::Relaxed);
    }

    /// A TCP connection accepted.
    pub(crate) fn connection(&self) {
        // Relaxed: an independent monotone counter.
        self.connections.fetch_add(1, Ordering::Relaxed);
    }

    /// The counts of `transport` now.
    #[must_use]
    pub fn get(&self, transport: Transport) -> TransportCounts {
        let counts = self.counts(transport);
        // Relaxed: each value is read on its own; a scrape may see one message counted as
        // received and not yet accepted.
        TransportCounts {
            received: counts.received.load(Ordering::Relaxed),
            accepted: counts.accepted.load(Ordering::Relaxed),
            invalid: counts.invalid.load(Ordering::Relaxed),
        }
    }

    /// TCP connections accepted so far.
    #[must_use]
    pub fn tcp_connections(&self) -> u64 {
        // Relaxed: an independent monotone counter.
        self.connections.load(Ordering::Relaxed)
    }

    /// Remembers a UDP socket (by its inode) whose kernel drops [`udp_drops`](Self::udp_drops)
    /// reports.
    pub(crate) fn watch_udp_inode(&self, inode: u64) {
        self.udp_inodes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(inode);
    }

    /// Datagrams the kernel dropped on the UDP sockets (full receive buffer), summed from the
    /// `drops` column of `/proc/net/udp` and `/proc/net/udp6`; `None` when no socket is
    /// watched or the files cannot be read (not Linux).
    #[must_use]
    pub fn udp_drops(&self) -> Option<u64> {
        let inodes = self
            .udp_inodes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        if inodes.is_empty() {
            return None;
        }
        let mut found = false;
        let mut drops = 0;
        for path in ["/proc/net/udp", "/proc/net/udp6"] {
            let Ok(text) = std::fs::read_to_string(path) else {
                continue;
            };
            for (inode, d) in text.lines().skip(1).filter_map(parse_udp_line) {
                if inodes.contains(&inode) {
                    found = true;
                    drops += d;
                }
            }
        }
        found.then_some(drops)
    }
}

/// `(inode, drops)` of one line of `/proc/net/udp`: the inode is the 10th column, the drops
/// the last (13th).
fn parse_udp_line(line: &str) -> Option<(u64, u64)> {
    let columns: Vec<&str> = line.split_whitespace().collect();
    if columns.len() < 13 {
        return None;
    }
    let inode = columns[9].parse().ok()?;
    let drops = columns[columns.len() - 1].parse().ok()?;
    Some((inode, drops))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_proc_net_udp_line() {
        let line = "  871: 0100007F:A0B2 00000000:0000 07 00000000:00000000 00:00000000 00000000  1000        0 123456 2 0000000000000000 42";
        assert_eq!(parse_udp_line(line), Some((123_456, 42)));
        assert_eq!(parse_udp_line("  sl  local_address rem_address"), None);
    }

    #[test]
    fn counts_by_transport() {
        let m = SyslogMetrics::new();
        m.record(Transport::Udp, true);
        m.record(Transport::Udp, false);
        m.record(Transport::Tcp, true);
        assert_eq!(
            m.get(Transport::Udp),
            TransportCounts {
                received: 2,
                accepted: 1,
                invalid: 1
            }
        );
        assert_eq!(m.get(Transport::Tcp).accepted, 1);
        assert_eq!(m.udp_drops(), None);
    }
}
