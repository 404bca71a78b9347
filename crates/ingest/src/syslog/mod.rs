//! The syslog transport: nginx (`access_log syslog:server=...`), HAProxy (`log ...`),
//! rsyslog and syslog-ng send each access-log line as one syslog message, over UDP
//! datagrams or a TCP stream, and [`run_syslog`] counts them like `POST /logs` does.
//!
//! | step | module | what it does |
//! |---|---|---|
//! | transport | `udp.rs`, `tcp.rs` | one task per UDP socket (the binary binds one `SO_REUSEPORT` socket per worker); per TCP listener an accept loop with a connection cap and one task per connection, with an idle timeout |
//! | TCP framing | [`stream`] | octet counting or newline framing (RFC 6587), decided per connection |
//! | header | [`header`] | RFC 3164 or RFC 5424, returns the MSG |
//! | the log | `record_line` in `receive.rs` | a JSON object goes through [`framing::object::record_object`](crate::framing::object::record_object): the same fields stage and `record_log` as HTTP |
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

mod config;
pub mod header;
pub mod metrics;
mod receive;
pub mod stream;
mod tcp;
mod udp;

use std::future::Future;
use std::io;
use std::sync::Arc;

use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::watch;
use tokio::task::JoinSet;
use uniqd_core::Views;

use self::receive::Sink;

pub use self::config::{SyslogConfig, DEFAULT_MAX_MESSAGE_BYTES};
pub use self::header::{message, HeaderError};
pub use self::metrics::{SyslogMetrics, Transport, TransportCounts};

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
    let sink = Sink {
        views,
        fields: Arc::new(config.fields.clone()),
    };
    let mut tasks = JoinSet::new();
    for socket in listeners.udp {
        if let Some(inode) = udp::inode(&socket) {
            metrics.watch_udp_inode(inode);
        }
        tasks.spawn(udp::serve(
            socket,
            sink.clone(),
            Arc::clone(&metrics),
            config.max_message_bytes,
            stopped.clone(),
        ));
    }
    for listener in listeners.tcp {
        tasks.spawn(tcp::serve(
            listener,
            sink.clone(),
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
