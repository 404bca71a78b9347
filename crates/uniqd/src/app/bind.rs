//! Binding the syslog sockets `--syslog-listen` names: a TCP listener per `tcp://` address,
//! and per `udp://` address one socket for each worker thread, all bound with `SO_REUSEPORT`
//! so the kernel spreads the datagrams over them (by source address and port) and every
//! worker receives in parallel; `--syslog-receive-buffer` sets each one's `SO_RCVBUF`, and a
//! warning says when the kernel granted less (`net.core.rmem_max`).

use std::io;
use std::net::SocketAddr;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::{TcpListener, UdpSocket};
use uniqd_ingest::syslog::SyslogListeners;

use crate::config::{SyslogListen, SyslogSettings, DEFAULT_RECEIVE_BUFFER};

/// The sockets of `settings`, `workers` UDP sockets per UDP address.
///
/// # Errors
///
/// An address that cannot be bound (the message names it).
pub(super) async fn bind_syslog(
    settings: &SyslogSettings,
    workers: usize,
) -> io::Result<SyslogListeners> {
    let mut listeners = SyslogListeners::default();
    for listen in &settings.listen {
        let named =
            |e: io::Error| io::Error::new(e.kind(), format!("cannot listen on {listen}: {e}"));
        match *listen {
            SyslogListen::Tcp(addr) => listeners
                .tcp
                .push(TcpListener::bind(addr).await.map_err(named)?),
            SyslogListen::Udp(mut addr) => {
                for _ in 0..workers.max(1) {
                    let socket = udp_socket(addr, settings.receive_buffer).map_err(named)?;
                    // Port 0: the others join the port the kernel gave the first.
                    addr = socket.local_addr()?;
                    listeners.udp.push(socket);
                }
                if let Some(socket) = listeners.udp.last() {
                    report_receive_buffer(addr, settings.receive_buffer, socket);
                }
            }
        }
    }
    Ok(listeners)
}

/// Logs the receive buffer the kernel granted; warns when it is less than the user asked for.
fn report_receive_buffer(addr: SocketAddr, asked: Option<usize>, socket: &UdpSocket) {
    let requested = asked.unwrap_or(DEFAULT_RECEIVE_BUFFER);
    // Linux reports twice what was set (the other half is its bookkeeping), and caps what
    // may be set at `net.core.rmem_max`.
    let granted = socket2::SockRef::from(socket)
        .recv_buffer_size()
        .map_or(0, |bytes| bytes / 2);
    if granted >= requested {
        tracing::debug!(%addr, bytes = granted, "syslog UDP receive buffer");
    } else if asked.is_some() {
        tracing::warn!(
            %addr, requested, granted,
            "the kernel capped --syslog-receive-buffer at net.core.rmem_max: raise the sysctl \
             or ask for less"
        );
    } else {
        tracing::info!(
            %addr, requested, granted,
            "the syslog UDP receive buffer is capped by net.core.rmem_max (see docs/syslog.md)"
        );
    }
}

/// One non-blocking UDP socket on `addr` with `SO_REUSEPORT` (and `SO_RCVBUF`).
fn udp_socket(addr: SocketAddr, receive_buffer: Option<usize>) -> io::Result<UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_reuse_port(true)?;
    socket.set_recv_buffer_size(receive_buffer.unwrap_or(DEFAULT_RECEIVE_BUFFER))?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    UdpSocket::from_std(socket.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use uniqd_ingest::syslog::SyslogConfig;

    /// What the kernel grants for `asked` bytes: at most `net.core.rmem_max`.
    fn expected(asked: usize) -> usize {
        let max = std::fs::read_to_string("/proc/sys/net/core/rmem_max")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(usize::MAX);
        asked.min(max)
    }

    async fn granted(receive_buffer: Option<usize>) -> usize {
        let settings = SyslogSettings {
            listen: vec![SyslogListen::Udp(([127, 0, 0, 1], 0).into())],
            receive_buffer,
            limits: SyslogConfig::default(),
        };
        let listeners = bind_syslog(&settings, 2)
            .await
            .expect("a loopback port binds");
        assert_eq!(listeners.udp.len(), 2, "one socket per worker");
        let sizes: Vec<usize> = listeners
            .udp
            .iter()
            .map(|s| {
                socket2::SockRef::from(s)
                    .recv_buffer_size()
                    .expect("SO_RCVBUF reads")
                    / 2
            })
            .collect();
        assert_eq!(
            sizes[0], sizes[1],
            "every socket of the group gets the same"
        );
        sizes[0]
    }

    #[tokio::test]
    async fn the_receive_buffer_defaults_to_8_mib_within_the_kernels_cap() {
        if cfg!(target_os = "linux") {
            assert_eq!(granted(None).await, expected(DEFAULT_RECEIVE_BUFFER));
            assert_eq!(granted(Some(300_000)).await, expected(300_000));
        }
    }
}
