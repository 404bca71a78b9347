//! Wiring, in two steps:
//!
//! * [`build`] (`parts.rs`): the [`Parts`] a configuration describes, without
//!   sockets or tasks: the [`Views`](uniqd_core::Views) built once (counter,
//!   time window ring and groups loaded from the state file, if configured; the top pages
//!   with one shard per worker thread), the ingest metrics, `/metrics`'s
//!   registry with its collectors, the readiness, the optional Redis sync and
//!   state saver;
//! * [`run`] (`run.rs`): the parts served on two [`Listeners`] until the
//!   shutdown future resolves, then stopped stage by stage: ingest drains,
//!   then the saver's final save and the Redis sync's last merge, then the
//!   exporter. Each later stage waits on an explicit [`Stop`].
//!
//! [`serve`] is the two together, what tests call; [`serve_cli`] is the
//! binary's body (bind the flags' addresses, the syslog sockets in `bind.rs`,
//! install signal handlers, serve).

mod bind;
mod parts;
mod run;

#[cfg(test)]
mod tests;

use std::future::Future;
use std::io;

use tokio::net::TcpListener;
use uniqd_ingest::syslog::SyslogListeners;

pub use self::parts::{build, Parts, VERSION};
pub use self::run::{run, Listeners, Stop, Stopped};
use crate::cli::Cli;
use crate::config::AppConfig;

/// Runs the whole service on already-bound listeners until `shutdown`
/// resolves, then drains both servers and returns: [`build`], then [`run`].
///
/// This is what the binary runs; tests call it directly with listeners on
/// `127.0.0.1:0`. It logs one info line, `uniqd listening`, with the fields
/// `ingest_addr` and `metrics_addr`.
///
/// # Errors
///
/// `InvalidInput` for an invalid `config`; a state file that cannot be
/// loaded (see [`persistence::load`](crate::persistence::load)), before
/// anything is served; I/O errors reading the listeners' local addresses; a
/// failed final save of the state file, after everything stopped.
pub async fn serve(
    config: AppConfig,
    ingest_listener: TcpListener,
    metrics_listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let parts = build(config).await?;
    let listeners = Listeners {
        ingest: ingest_listener,
        metrics: metrics_listener,
        syslog: SyslogListeners::default(),
    };
    run(parts, listeners, shutdown).await
}

/// The binary's body: bind the flags' addresses, install signal handlers,
/// and [`serve`] until SIGTERM/SIGINT.
///
/// # Errors
///
/// Invalid configuration, an address that cannot be bound, or signal
/// handlers that cannot be installed.
pub async fn serve_cli(cli: Cli) -> io::Result<()> {
    let config = cli.app_config().map_err(parts::invalid_input)?;
    // Checked before binding, so a bad flag never holds a port.
    config.validate().map_err(parts::invalid_input)?;
    let ingest_listener = bind(cli.listen).await?;
    let metrics_listener = bind(cli.metrics_listen).await?;
    let syslog = match &config.syslog {
        // One UDP socket per thread that ingests: the runtime's workers.
        Some(settings) => {
            let workers = tokio::runtime::Handle::current().metrics().num_workers();
            bind::bind_syslog(settings, workers).await?
        }
        None => SyslogListeners::default(),
    };
    let shutdown = crate::signal::shutdown_signal()?;
    let parts = build(config).await?;
    let listeners = Listeners {
        ingest: ingest_listener,
        metrics: metrics_listener,
        syslog,
    };
    run(parts, listeners, shutdown).await
}

async fn bind(addr: std::net::SocketAddr) -> io::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))
}
