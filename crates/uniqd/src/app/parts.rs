//! [`build`]: everything the service runs, made from an [`AppConfig`] without
//! touching a socket or starting a task, so it can be tested on its own.
//!
//! The one I/O `build` does is the state file's (`--state-file`): locking it,
//! loading it and writing it once ([`persistence::open`]). It stays here rather
//! than in a separate step because the counter the views are built on *is* the
//! loaded one, and a file that cannot be loaded or written must stop the start
//! before anything is served. Redis is not contacted (its client connects
//! lazily, in [`run`](super::run)).

use std::io;
use std::sync::Arc;

use prometheus_client::registry::Registry;
use uniqd_core::{Groups, Views};
use uniqd_exporter::collectors::SyslogCollector;
use uniqd_exporter::{BuildInfo, Exported, MetricOptions, Readiness};
use uniqd_ingest::fields::FieldMap;
use uniqd_ingest::syslog::SyslogMetrics;
use uniqd_ingest::IngestMetrics;

use crate::config::AppConfig;
use crate::persistence::{self, Saver};
use crate::redis_sync::metrics::RedisCollector;
use crate::redis_sync::RedisSync;

/// The crate version, exported as `uniqd_build_info{version}`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The parts of the service, built and not yet running: what [`run`](super::run)
/// starts on two listeners.
///
/// The one [`Views`] value is shared: ingest records into [`views`](Self::views), the
/// exporter reads the same views through [`exported`](Self::exported) and the
/// [`registry`](Self::registry)'s collectors.
#[derive(Debug)]
pub struct Parts {
    pub(super) config: AppConfig,
    pub(super) views: Views,
    pub(super) ingest_metrics: Arc<IngestMetrics>,
    /// The syslog listeners' counters (exported only with `--syslog-listen`).
    pub(super) syslog_metrics: Arc<SyslogMetrics>,
    pub(super) exported: Exported,
    pub(super) registry: Arc<Registry>,
    /// Starting until `run` serves; ingest's shutdown turns it to draining.
    pub(super) readiness: Arc<Readiness>,
    /// With `--redis-url`.
    pub(super) redis_sync: Option<RedisSync>,
    /// With `--state-file`; holds the file's lock.
    pub(super) saver: Option<Saver>,
}

impl Parts {
    /// The configuration the parts were built from.
    #[must_use]
    pub fn config(&self) -> &AppConfig {
        &self.config
    }

    /// The views ingest records into.
    #[must_use]
    pub fn views(&self) -> &Views {
        &self.views
    }

    /// What the exporter's JSON APIs read (the same views, the ingest metrics, the build, the
    /// shared count with Redis).
    #[must_use]
    pub fn exported(&self) -> &Exported {
        &self.exported
    }

    /// The `/metrics` registry: one collector per view that is on, ingest, build, and the
    /// Redis and state file collectors when those are on.
    #[must_use]
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// `/readyz`'s state ([`ReadyState::Starting`](uniqd_exporter::ReadyState) until run).
    #[must_use]
    pub fn readiness(&self) -> &Readiness {
        &self.readiness
    }

    /// Whether a state saver runs (`--state-file`).
    #[must_use]
    pub fn saves_state(&self) -> bool {
        self.saver.is_some()
    }

    /// Whether the Redis sync task runs (`--redis-url`).
    #[must_use]
    pub fn syncs_redis(&self) -> bool {
        self.redis_sync.is_some()
    }
}

/// Builds the [`Parts`] `config` describes: validates it, loads the state file if any,
/// builds the [`Views`] once (the top pages get one shard per
/// worker of the current tokio runtime, the threads that ingest), the ingest metrics, the
/// readiness, the Redis sync and the registry with its collectors. Binds nothing, spawns
/// nothing.
///
/// The state file's lock, load and first write are the one I/O here: the counter the views
/// are built on *is* the loaded one, and a file that cannot be loaded or written must stop
/// the start before anything is served. Redis is not contacted (its client connects lazily,
/// once [`run`](super::run) runs the sync task).
///
/// # Errors
///
/// `InvalidInput` for an invalid `config`; a state file that cannot be locked, loaded or
/// written (see [`persistence::open`]).
pub async fn build(mut config: AppConfig) -> io::Result<Parts> {
    config.validate().map_err(invalid_input)?;
    // --group-by: both transports read the group field; the views get the counters below.
    let groups = match &config.groups {
        Some(groups) => {
            let by = |fields: &FieldMap| fields.clone().with_group_by(&groups.field);
            config.ingest.fields = by(&config.ingest.fields).map_err(invalid_input)?;
            if let Some(syslog) = &mut config.syslog {
                syslog.limits.fields = by(&syslog.limits.fields).map_err(invalid_input)?;
            }
            let counters = Groups::new(groups.max_groups, config.exact_threshold)
                .map_err(|e| invalid_input(e.to_string()))?;
            Some(Arc::new(counters))
        }
        None => None,
    };
    let windows = config
        .windows
        .as_ref()
        .map(|w| Arc::new(crate::build::window_ring(w)));
    // The groups and the field they count, saved and loaded with the state file.
    let saved_groups = groups
        .as_ref()
        .zip(config.groups.as_ref())
        .map(|(counters, groups)| (counters, groups.field.as_str()));
    let (counter, saver) = persistence::open(
        config.state.as_ref(),
        config.exact_threshold,
        windows.as_ref(),
        saved_groups,
    )
    .await?;
    // One shard per thread that ingests: the runtime's workers.
    let workers = tokio::runtime::Handle::current().metrics().num_workers();
    let top_pages = crate::build::top_pages(&config.top_pages, workers)
        .map_err(invalid_input)?
        .map(Arc::new);
    let mut redis_sync = config
        .redis
        .as_ref()
        .map(|redis| RedisSync::new(redis, Arc::clone(&counter)))
        .transpose()
        .map_err(invalid_input)?;

    // The views, built once: ingest records into them, the exporter reads them.
    let mut views = Views::new(counter);
    if let Some(top) = top_pages {
        views = views.with_top_pages(top);
    }
    if let Some(ring) = windows {
        views = views.with_windows(ring);
    }
    if let Some(groups) = groups {
        views = views.with_groups(groups);
    }

    let ingest_metrics = Arc::new(IngestMetrics::new());
    let syslog_metrics = Arc::new(SyslogMetrics::new());
    let build = BuildInfo {
        version: VERSION.to_owned(),
    };
    let mut exported = Exported::new(views.clone(), Arc::clone(&ingest_metrics), build);
    let mut readiness = Readiness::new();
    if let Some(sync) = &mut redis_sync {
        readiness = readiness.with_detail(sync.status());
        exported = exported.with_shared_count(sync.status());
        // Windows and top pages of every replica (docs/scale-out.md).
        if let Some(global) = sync.share_views(&views) {
            exported = exported.with_shared_views(global);
        }
    }
    let metric_options = MetricOptions {
        top_pages: config.top_pages.metric_limit,
        windows: config
            .windows
            .as_ref()
            .map(|w| w.gauges.clone())
            .unwrap_or_default(),
    };
    // The status page shows the same windows as the gauges.
    exported = exported.with_windows(metric_options.windows.clone());
    let mut registry = uniqd_exporter::registry(&exported, &metric_options);
    // uniqd_redis_*: only with --redis-url.
    if let Some(sync) = &redis_sync {
        registry.register_collector(Box::new(RedisCollector(sync.status())));
    }
    // uniqd_syslog_*: only with --syslog-listen.
    if config.syslog.is_some() {
        registry.register_collector(Box::new(SyslogCollector::new(Arc::clone(&syslog_metrics))));
    }
    // uniqd_state_* (save failures, last good save): only with --state-file.
    if let Some(saver) = &saver {
        registry.register_collector(Box::new(persistence::StateCollector(saver.status())));
    }
    Ok(Parts {
        config,
        views,
        ingest_metrics,
        syslog_metrics,
        exported,
        registry: Arc::new(registry),
        readiness: Arc::new(readiness),
        redis_sync,
        saver,
    })
}

/// A configuration error as the `InvalidInput` I/O error `serve` reports.
pub(super) fn invalid_input(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
}
