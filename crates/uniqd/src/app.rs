//! Wiring: one counter and the time window ring (both loaded from the state
//! file, if configured), the top pages summary (one shard per worker
//! thread), the ingest server, the metrics server, the state saver and (with
//! `--redis-url`) the Redis sync task, started together and shut down in
//! order.
//!
//! Shutdown sequence once the `shutdown` future resolves:
//! 1. `/readyz` turns 503 (`draining`) so load balancers stop routing here;
//! 2. the ingest server stops accepting and drains in-flight requests (up to
//!    its drain timeout);
//! 3. the count is now final: the state file is written a last time (so
//!    every request answered 202 is in it) and the Redis sync task merges
//!    what the last interval counted (bounded by `--redis-timeout`) and stops;
//! 4. only then does the metrics server stop, so the final counts stay
//!    scrapable while ingest drains (its own drain is quick: scrapers hold
//!    idle keep-alive connections, which close at once).

use std::future::Future;
use std::io;
use std::sync::Arc;

use tokio::net::TcpListener;
use uniqd_core::Views;
use uniqd_exporter::{BuildInfo, Exported, MetricOptions, Readiness, ReadyState};
use uniqd_ingest::IngestMetrics;

use crate::build;
use crate::cli::Cli;
use crate::config::AppConfig;
use crate::persistence;
use crate::redis_sync::metrics::RedisCollector;
use crate::redis_sync::RedisSync;

/// The crate version, exported as `uniqd_build_info{version}`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Runs the whole service on already-bound listeners until `shutdown`
/// resolves, then drains both servers and returns.
///
/// This is what the binary runs; tests call it directly with listeners on
/// `127.0.0.1:0`. It logs one info line, `uniqd listening`, with the fields
/// `ingest_addr` and `metrics_addr`.
///
/// # Errors
///
/// `InvalidInput` for an invalid `config`; I/O errors reading the
/// listeners' local addresses; a state file that cannot be loaded (see
/// [`persistence::load`]), before anything is served; a failed final save
/// of the state file, after everything stopped.
pub async fn serve(
    config: AppConfig,
    ingest_listener: TcpListener,
    metrics_listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    config
        .validate()
        .map_err(|msg| io::Error::new(io::ErrorKind::InvalidInput, msg))?;
    let ingest_addr = ingest_listener.local_addr()?;
    let metrics_addr = metrics_listener.local_addr()?;

    let windows = config
        .windows
        .as_ref()
        .map(|w| Arc::new(build::window_ring(w)));
    let (counter, saver) = persistence::open(
        config.state.as_ref(),
        config.exact_threshold,
        windows.as_ref(),
    )
    .await?;
    let state_file = config.state.as_ref().map(|s| s.path.display().to_string());
    let ingest_auth = config.ingest.auth.is_some();
    let metrics_auth = config.exporter.metrics_auth.is_some();
    let ingest_metrics = Arc::new(IngestMetrics::new());
    let redis_sync = config
        .redis
        .as_ref()
        .map(|redis| RedisSync::new(redis, Arc::clone(&counter)))
        .transpose()
        .map_err(|msg| io::Error::new(io::ErrorKind::InvalidInput, msg))?;
    let build = BuildInfo {
        version: VERSION.to_owned(),
    };
    // One shard per thread that ingests: the runtime's workers.
    let workers = tokio::runtime::Handle::current().metrics().num_workers();
    let top_pages = build::top_pages(&config.top_pages, workers)
        .map_err(|msg| io::Error::new(io::ErrorKind::InvalidInput, msg))?
        .map(Arc::new);
    // The views, built once: ingest records into them, the exporter reads them.
    let mut views = Views::new(counter);
    if let Some(top) = top_pages {
        views = views.with_top_pages(top);
    }
    if let Some(ring) = windows {
        views = views.with_windows(ring);
    }
    let metric_options = MetricOptions {
        top_pages: config.top_pages.metric_limit,
        windows: config
            .windows
            .as_ref()
            .map(|w| w.gauges.clone())
            .unwrap_or_default(),
    };
    let mut readiness = Readiness::new();
    let mut exported = Exported::new(views.clone(), Arc::clone(&ingest_metrics), build);
    let mut redis_collector = None;
    if let Some(sync) = &redis_sync {
        let sync_status = sync.status();
        readiness = readiness.with_detail(sync_status.clone());
        exported = exported.with_shared_count(sync_status.clone());
        redis_collector = Some(RedisCollector(sync_status));
    }
    let readiness = Arc::new(readiness);
    let mut registry = uniqd_exporter::registry(&exported, &metric_options);
    if let Some(redis_collector) = redis_collector {
        registry.register_collector(Box::new(redis_collector));
    }
    // uniqd_state_* (save failures, last good save): only with --state-file.
    if let Some(saver) = &saver {
        registry.register_collector(Box::new(persistence::StateCollector(saver.status())));
    }
    let registry = Arc::new(registry);

    let (stop_exporter, exporter_stop) = tokio::sync::oneshot::channel::<()>();
    let (stop_saver, saver_stop) = tokio::sync::oneshot::channel::<()>();
    let (stop_sync, sync_stop) = tokio::sync::oneshot::channel::<()>();
    let ingest_shutdown = {
        let readiness = Arc::clone(&readiness);
        async move {
            shutdown.await;
            readiness.set(ReadyState::Draining);
        }
    };
    let ingest = async move {
        let result = uniqd_ingest::run(
            ingest_listener,
            views,
            ingest_metrics,
            config.ingest,
            ingest_shutdown,
        )
        .await;
        // Ingest has drained (or failed): the count is final. The state file
        // is written a last time and the sync task makes its last merge. Send
        // errors only mean the receiver is not running.
        let _ = stop_saver.send(());
        let _ = stop_sync.send(());
        result
    };
    let sync = async move {
        if let Some(sync) = redis_sync {
            let stopped = async move {
                // Resolves on send or when the sender is dropped; both mean stop.
                let _ = sync_stop.await;
            };
            if let Err(error) = sync.run(stopped).await {
                tracing::error!(%error, "the redis sync task could not start");
            }
        }
    };
    let ingest_and_sync = async move {
        let (result, ()) = tokio::join!(ingest, sync);
        // Now stop the metrics server. A send error only means the exporter
        // already stopped.
        let _ = stop_exporter.send(());
        result
    };
    let saver = async move {
        match saver {
            // Resolves on send or when the sender is dropped; both mean stop.
            Some(saver) => {
                saver
                    .run(async move {
                        let _ = saver_stop.await;
                    })
                    .await
            }
            None => Ok(()),
        }
    };
    let exporter = uniqd_exporter::run(
        metrics_listener,
        registry,
        exported,
        Arc::clone(&readiness),
        config.exporter,
        async move {
            // Resolves on send or when the sender is dropped; both mean stop.
            let _ = exporter_stop.await;
        },
    );

    readiness.set(ReadyState::Ready);
    tracing::info!(
        %ingest_addr,
        %metrics_addr,
        exact_threshold = config.exact_threshold,
        top_pages_capacity = config.top_pages.capacity,
        state_file = state_file.as_deref().unwrap_or("off"),
        ingest_auth,
        metrics_auth,
        version = VERSION,
        "uniqd listening"
    );
    let (ingest_result, exporter_result, saver_result) =
        tokio::join!(ingest_and_sync, exporter, saver);
    ingest_result?;
    exporter_result?;
    saver_result?;
    tracing::info!("shutdown complete");
    Ok(())
}

/// The binary's body: bind the flags' addresses, install signal handlers,
/// and [`serve`] until SIGTERM/SIGINT.
///
/// # Errors
///
/// Invalid configuration, an address that cannot be bound, or signal
/// handlers that cannot be installed.
pub async fn run(cli: Cli) -> io::Result<()> {
    let config = cli
        .app_config()
        .map_err(|msg| io::Error::new(io::ErrorKind::InvalidInput, msg))?;
    config
        .validate()
        .map_err(|msg| io::Error::new(io::ErrorKind::InvalidInput, msg))?;
    let ingest_listener = bind(cli.listen).await?;
    let metrics_listener = bind(cli.metrics_listen).await?;
    let shutdown = crate::signal::shutdown_signal()?;
    serve(config, ingest_listener, metrics_listener, shutdown).await
}

async fn bind(addr: std::net::SocketAddr) -> io::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))
}
