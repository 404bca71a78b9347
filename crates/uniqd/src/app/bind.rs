//! Binding the syslog sockets `--syslog-listen` names: a TCP listener per `tcp://` address,
//! and per `udp://` address one socket for each worker thread, all bound with `SO_REUSEPORT`
//! so the kernel spreads the datagrams over them (by source address and port) and every
//! worker receives in parallel; `--syslog-receive-buffer` sets each one's `SO_RCVBUF`.

use std::io;
use std::net::SocketAddr;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::{TcpListener, UdpSocket};
use uniqd_ingest::syslog::SyslogListeners;

use crate::config::{SyslogListen, SyslogSettings};

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
            }
        }
    }
    Ok(listeners)
}

/// One non-blocking UDP socket on `addr` with `SO_REUSEPORT` (and `SO_RCVBUF`).
fn udp_socket(addr: SocketAddr, receive_buffer: Option<usize>) -> io::Result<UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_reuse_port(true)?;
    if let Some(size) = receive_buffer {
        socket.set_recv_buffer_size(size)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    UdpSocket::from_std(socket.into())
}
