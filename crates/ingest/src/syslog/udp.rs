//! The UDP side of the syslog transport: one message per datagram, one task per socket.

use std::sync::Arc;

use tokio::net::UdpSocket;
use tokio::sync::watch;

use super::metrics::{SyslogMetrics, Transport};
use super::receive::{read_now, record_message, until_stopped, Sink};

/// Most datagrams read per wake-up of the task.
const BURST: usize = 64;

/// The socket's inode, which names it in `/proc/net/udp*` (Linux; `None` elsewhere).
pub(super) fn inode(socket: &UdpSocket) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    use std::os::unix::io::AsRawFd;
    let path = format!("/proc/self/fd/{}", socket.as_raw_fd());
    std::fs::metadata(path).ok().map(|m| m.ino())
}

/// Receives datagrams on `socket` until `stopped`, then counts the ones the kernel still
/// holds and returns.
pub(super) async fn serve(
    socket: UdpSocket,
    sink: Sink,
    metrics: Arc<SyslogMetrics>,
    max_message_bytes: usize,
    mut stopped: watch::Receiver<bool>,
) {
    // One byte more than the limit: a datagram that fills it is too large (the kernel
    // truncates it silently).
    let mut buf = vec![0u8; max_message_bytes.saturating_add(1).min(65_536)];
    let limit = max_message_bytes;
    let handle = |n: usize, buf: &[u8]| {
        let accepted = n <= limit && record_message(&buf[..n], &sink);
        metrics.record(Transport::Udp, accepted);
    };
    loop {
        tokio::select! {
            biased;
            () = until_stopped(&mut stopped) => break,
            received = socket.recv(&mut buf) => match received {
                Ok(n) => {
                    handle(n, &buf);
                    // More are usually queued behind it: read them with plain non-blocking
                    // `recv` calls, without a trip through the runtime each, up to a budget
                    // so the other tasks of this worker still run under a flood.
                    for _ in 1..BURST {
                        match read_now((&socket).into(), &mut buf) {
                            Ok(n) => handle(n, &buf),
                            Err(_) => break,
                        }
                    }
                }
                Err(error) => tracing::warn!(%error, "syslog udp receive failed"),
            },
        }
    }
    // What arrived before the stop.
    while let Ok(n) = read_now((&socket).into(), &mut buf) {
        handle(n, &buf);
    }
}
