//! Command-line flags (each also settable as a `UNIQD_*` environment
//! variable) and the resolved [`AppConfig`] they produce.

use std::fmt;
use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use uniqd_core::window::MAX_SKEW_MS;
use uniqd_core::{
    PathOptions, Span, SystemClock, TopPages, WindowRing, DEFAULT_TOP_PAGES_CAPACITY,
    MAX_TOP_PAGES_CAPACITY,
};
use uniqd_exporter::ExporterConfig;
use uniqd_ingest::{BearerTokens, IngestConfig, ServerConfig};

use crate::persistence::StateConfig;
use crate::units::{parse_byte_size, parse_duration};

/// Largest accepted `--exact-threshold`: bounds the exact set's memory.
pub const MAX_EXACT_THRESHOLD: usize = 1 << 24;

/// Default `--redis-key`.
pub const DEFAULT_REDIS_KEY: &str = "uniqd:unique_ip_addresses";

/// Default `--top-pages-metric-limit`: pages exported as `uniqd_top_page_requests`.
pub const DEFAULT_TOP_PAGES_METRIC_LIMIT: usize = 20;

/// Largest accepted `--top-pages-metric-limit`: every path that is ever among them becomes a
/// Prometheus series.
pub const MAX_TOP_PAGES_METRIC_LIMIT: usize = 100;

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, fields at the top level.
    Json,
}

/// How the service uses its worker threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RuntimeMode {
    /// One multi-thread tokio runtime of `--workers` threads runs
    /// everything; connections move between threads with the load.
    MultiThread,
    /// `--workers` ingest threads, each a single-threaded runtime accepting
    /// from the one listener; a connection stays on the thread that
    /// accepted it (no cross-thread wake-ups). The metrics server and the
    /// background tasks share one more thread.
    PerCore,
}

/// uniqd counts distinct client IP addresses posted as JSON logs and
/// exports the count to Prometheus.
///
/// Logs are POSTed to /logs on --listen (one JSON object, or NDJSON with
/// Content-Type: application/x-ndjson); the count is served as
/// `unique_ip_addresses` on --metrics-listen at /metrics, next to /healthz,
/// /readyz and a status page for people at /. SIGTERM or SIGINT stops
/// accepting, drains in-flight requests and exits 0.
#[derive(Debug, Clone, Parser)]
#[command(name = "uniqd", version, about, long_about)]
pub struct Cli {
    /// Without a command, uniqd runs the service.
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Address for the ingest server (POST /logs).
    #[arg(long, env = "UNIQD_LISTEN", default_value = "0.0.0.0:5000")]
    pub listen: SocketAddr,

    /// Address for the metrics server (/metrics, /stats, /healthz, /readyz,
    /// and the status page / with /status.json).
    #[arg(long, env = "UNIQD_METRICS_LISTEN", default_value = "0.0.0.0:9102")]
    pub metrics_listen: SocketAddr,

    /// Distinct addresses counted exactly before switching to the
    /// HyperLogLog sketch (0 = sketch from the start; at most 16777216).
    #[arg(long, env = "UNIQD_EXACT_THRESHOLD", default_value_t = uniqd_core::DEFAULT_THRESHOLD,
          value_parser = parse_threshold)]
    pub exact_threshold: usize,

    /// Largest single-object request body, which is also the longest
    /// accepted NDJSON line (e.g. 1MiB, 512KiB, 1048576).
    #[arg(long, env = "UNIQD_MAX_OBJECT_SIZE", default_value = "1MiB", value_parser = parse_byte_size)]
    pub max_object_size: usize,

    /// Largest NDJSON batch request body (e.g. 64MiB).
    #[arg(long, env = "UNIQD_MAX_BATCH_SIZE", default_value = "64MiB", value_parser = parse_byte_size)]
    pub max_batch_size: usize,

    /// Largest request head (request line + headers); larger heads get 431.
    /// At least 8KiB.
    #[arg(long, env = "UNIQD_MAX_HEADER_SIZE", default_value = "64KiB", value_parser = parse_byte_size)]
    pub max_header_size: usize,

    /// Deadline for a complete request head, counted from when a connection
    /// starts waiting for one (also bounds idle keep-alive connections).
    #[arg(long, env = "UNIQD_HEADER_READ_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub header_read_timeout: Duration,

    /// Longest wait for each next chunk of a request body (then 408).
    #[arg(long, env = "UNIQD_BODY_READ_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub body_read_timeout: Duration,

    /// Close connections with no request in flight and no traffic for this
    /// long.
    #[arg(long, env = "UNIQD_IDLE_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub idle_timeout: Duration,

    /// On shutdown, how long to let in-flight requests finish before
    /// dropping the remaining connections.
    #[arg(long, env = "UNIQD_DRAIN_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub drain_timeout: Duration,

    /// Maximum open connections per server; further clients wait in the
    /// kernel's listen backlog.
    #[arg(long, env = "UNIQD_MAX_CONNECTIONS", default_value_t = 10_000)]
    pub max_connections: usize,

    /// Tokio worker threads [default: available parallelism].
    #[arg(long, env = "UNIQD_WORKERS")]
    pub workers: Option<NonZeroUsize>,

    /// Threading model: `multi-thread` (one work-stealing runtime) or
    /// `per-core` (one single-threaded runtime per ingest worker; more
    /// requests per second from many connections, but a connection never
    /// moves to an idle core).
    #[arg(long, env = "UNIQD_RUNTIME", value_enum, default_value_t = RuntimeMode::MultiThread)]
    pub runtime: RuntimeMode,

    /// Log format.
    #[arg(long, env = "UNIQD_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Log filter, e.g. `info` or `uniqd=debug,info` [default: RUST_LOG,
    /// else info].
    #[arg(long, env = "UNIQD_LOG_LEVEL")]
    pub log_level: Option<String>,

    /// Share one global count between replicas through this Redis or Valkey
    /// server: redis://[user:password@]host:port[/db] (off when unset). With
    /// it, `unique_ip_addresses` is the count of all replicas together (the
    /// same on each) and `uniqd_local_unique_ip_addresses` this replica's own;
    /// ingest never waits on Redis.
    #[arg(long, env = "UNIQD_REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,

    /// Redis key of the shared HyperLogLog (replicas with the same key share
    /// a count).
    #[arg(long, env = "UNIQD_REDIS_KEY", default_value = DEFAULT_REDIS_KEY)]
    pub redis_key: String,

    /// How often each replica merges its registers into the shared key (only
    /// when they changed) and reads the global count.
    #[arg(long, env = "UNIQD_REDIS_SYNC_INTERVAL", default_value = "1s", value_parser = parse_duration)]
    pub redis_sync_interval: Duration,

    /// Deadline for one sync with Redis (connecting included); a slower
    /// Redis counts as unavailable.
    #[arg(long, env = "UNIQD_REDIS_TIMEOUT", default_value = "2s", value_parser = parse_duration)]
    pub redis_timeout: Duration,

    /// Save the counter to this file every --state-interval and on
    /// shutdown (atomically: temporary file, fsync, rename), and continue
    /// from it at start. A missing file is a fresh start; an unreadable,
    /// corrupt or other-version file stops the start (see
    /// --state-reset-on-error). [default: off]
    #[arg(long, env = "UNIQD_STATE_FILE")]
    pub state_file: Option<PathBuf>,

    /// How often to save the state file (only when the count changed).
    #[arg(long, env = "UNIQD_STATE_INTERVAL", default_value = "10s", value_parser = parse_duration)]
    pub state_interval: Duration,

    /// Start empty when the state file cannot be loaded (corrupt,
    /// truncated, other version) instead of refusing to start; the bad file
    /// is kept beside it as <file>.corrupt-<unix time> and an error is
    /// logged.
    #[arg(long, env = "UNIQD_STATE_RESET_ON_ERROR")]
    pub state_reset_on_error: bool,

    /// With --windows off, write the state file without the time window
    /// history it holds (format version 1, which builds without time
    /// windows read: for rolling back to one) instead of keeping it for when
    /// windows are on again. Refused with time windows on.
    #[arg(long, env = "UNIQD_STATE_DROP_WINDOWS")]
    pub state_drop_windows: bool,

    /// Require `Authorization: Bearer <token>` on POST /logs. Several
    /// tokens may be given, comma-separated or by repeating the flag.
    /// [default: off]
    #[arg(
        long,
        env = "UNIQD_INGEST_TOKEN",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub ingest_token: Vec<Secret>,

    /// Read ingest tokens from this file: one per line; blank lines and
    /// lines starting with # are ignored. Adds to --ingest-token.
    #[arg(long, env = "UNIQD_INGEST_TOKEN_FILE")]
    pub ingest_token_file: Option<PathBuf>,

    /// Require `Authorization: Bearer <token>` on /metrics (comma-separated
    /// or repeated); /healthz and /readyz stay open. [default: off]
    #[arg(
        long,
        env = "UNIQD_METRICS_TOKEN",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub metrics_token: Vec<Secret>,

    /// Read metrics tokens from this file (same format as
    /// --ingest-token-file). Adds to --metrics-token.
    #[arg(long, env = "UNIQD_METRICS_TOKEN_FILE")]
    pub metrics_token_file: Option<PathBuf>,

    /// Counters of the top pages summary (requests per `url` path, at
    /// /stats and as uniqd_top_page_requests) per worker thread, about 300
    /// bytes each: every page with more than requests/capacity requests is
    /// reported. 0 turns top pages off; at most 65536.
    #[arg(long, env = "UNIQD_TOP_PAGES_CAPACITY", default_value_t = DEFAULT_TOP_PAGES_CAPACITY,
          value_parser = parse_top_pages_capacity)]
    pub top_pages_capacity: usize,

    /// Most requested pages exported as uniqd_top_page_requests{path} (0 =
    /// none; at most 100). Every path that is ever among them becomes a
    /// Prometheus series, so keep it small; /stats lists more.
    #[arg(long, env = "UNIQD_TOP_PAGES_METRIC_LIMIT", default_value_t = DEFAULT_TOP_PAGES_METRIC_LIMIT,
          value_parser = parse_top_pages_metric_limit)]
    pub top_pages_metric_limit: usize,

    /// Count a page path with trailing slashes as the path without them
    /// (`/a/` as `/a`; `/` stays `/`).
    #[arg(long, env = "UNIQD_TOP_PAGES_STRIP_TRAILING_SLASH")]
    pub top_pages_strip_trailing_slash: bool,

    /// Lower-case the scheme and host of absolute URLs before counting
    /// (`HTTP://Example.COM/A` as `http://example.com/A`; the path keeps its
    /// case).
    #[arg(long, env = "UNIQD_TOP_PAGES_LOWERCASE_HOST")]
    pub top_pages_lowercase_host: bool,

    /// Time windows exported as unique_ip_addresses_window{window}, comma
    /// separated: 1m to 60m, or whole hours up to 7d (e.g. 5m,1h,24h,7d);
    /// any window is also served by /api/v1/unique. `off`: no time windows
    /// (no gauges, no /api/v1/unique, no per-minute counting).
    #[arg(long, env = "UNIQD_WINDOWS", default_value = "5m,1h,24h",
          value_parser = parse_windows)]
    pub windows: WindowList,

    /// A log's `timestamp` counts in the time windows when it is at most
    /// this long before arrival; an older, future, missing or unparsable one
    /// counts at arrival. At most 59m.
    #[arg(long, env = "UNIQD_WINDOW_SKEW", default_value = "5m",
          value_parser = parse_duration)]
    pub window_skew: Duration,
}

/// The `--windows` list; `None`: time windows off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowList(pub Option<Vec<Span>>);

fn parse_windows(text: &str) -> Result<WindowList, String> {
    if text.trim() == "off" {
        return Ok(WindowList(None));
    }
    let mut spans = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let span = Span::parse(part).map_err(|e| e.to_string())?;
        span.check_window().map_err(|e| e.to_string())?;
        // `60m` and `1h` are one window: one gauge.
        if !spans.contains(&span) {
            spans.push(span);
        }
    }
    if spans.is_empty() {
        return Err("no window given: list some (e.g. 5m,1h,24h) or say off".to_owned());
    }
    Ok(WindowList(Some(spans)))
}

/// A secret flag value (a bearer token): `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The secret itself, for the one place that needs it.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl FromStr for Secret {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.trim().to_owned()))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Auxiliary commands.
#[derive(Debug, Clone, PartialEq, Subcommand)]
pub enum Command {
    /// GET a URL and exit 0 on a 2xx answer, 1 otherwise: the container
    /// health check (the runtime image has no shell or curl).
    Healthcheck {
        /// URL to probe (http:// only).
        #[arg(long, default_value = "http://127.0.0.1:9102/healthz")]
        url: String,
        /// Give up after this long.
        #[arg(long, default_value = "2s", value_parser = parse_duration)]
        timeout: Duration,
    },
    /// Send N distinct addresses to a uniqd deployment (single logs or
    /// NDJSON batches, flat out or at a rate), then read its
    /// `unique_ip_addresses` and print the estimate, relative error,
    /// throughput and latency percentiles.
    Loadgen(crate::loadgen::LoadgenArgs),
}

fn parse_threshold(text: &str) -> Result<usize, String> {
    let value: usize = text
        .trim()
        .parse()
        .map_err(|_| format!("invalid threshold {text:?}: expected a whole number"))?;
    if value > MAX_EXACT_THRESHOLD {
        return Err(format!("threshold must be at most {MAX_EXACT_THRESHOLD}"));
    }
    Ok(value)
}

/// A whole number from 0 to `max`.
fn parse_at_most(text: &str, max: usize, what: &str) -> Result<usize, String> {
    let value: usize = text
        .trim()
        .parse()
        .map_err(|_| format!("invalid {what} {text:?}: expected a whole number"))?;
    if value > max {
        return Err(format!("{what} must be at most {max}"));
    }
    Ok(value)
}

fn parse_top_pages_capacity(text: &str) -> Result<usize, String> {
    parse_at_most(text, MAX_TOP_PAGES_CAPACITY, "top pages capacity")
}

fn parse_top_pages_metric_limit(text: &str) -> Result<usize, String> {
    parse_at_most(text, MAX_TOP_PAGES_METRIC_LIMIT, "top pages metric limit")
}

impl Cli {
    /// Worker threads to start: `--workers`, else the available parallelism.
    #[must_use]
    pub fn worker_threads(&self) -> usize {
        self.workers
            .or_else(|| std::thread::available_parallelism().ok())
            .map_or(1, NonZeroUsize::get)
    }

    /// The service configuration these flags describe (reading the token
    /// files, if any).
    ///
    /// # Errors
    ///
    /// A token file that cannot be read or holds no token, or an invalid
    /// token (the message never contains a token).
    pub fn app_config(&self) -> Result<AppConfig, String> {
        let server = ServerConfig {
            max_connections: self.max_connections,
            drain_timeout: self.drain_timeout,
            header_read_timeout: self.header_read_timeout,
            idle_timeout: self.idle_timeout,
            body_read_timeout: self.body_read_timeout,
            max_buf_size: self.max_header_size,
        };
        Ok(AppConfig {
            exact_threshold: self.exact_threshold,
            ingest: IngestConfig {
                server: server.clone(),
                max_object_bytes: self.max_object_size,
                max_batch_bytes: self.max_batch_size,
                auth: tokens(
                    "--ingest-token",
                    &self.ingest_token,
                    self.ingest_token_file.as_deref(),
                )?,
                per_core_threads: match self.runtime {
                    RuntimeMode::MultiThread => None,
                    RuntimeMode::PerCore => NonZeroUsize::new(self.worker_threads()),
                },
            },
            exporter: ExporterConfig {
                server,
                metrics_auth: tokens(
                    "--metrics-token",
                    &self.metrics_token,
                    self.metrics_token_file.as_deref(),
                )?,
            },
            redis: self.redis_url.as_ref().map(|url| RedisConfig {
                url: url.clone(),
                key: self.redis_key.clone(),
                sync_interval: self.redis_sync_interval,
                timeout: self.redis_timeout,
            }),
            state: self.state_file.clone().map(|path| StateConfig {
                path,
                interval: self.state_interval,
                reset_on_error: self.state_reset_on_error,
                drop_windows: self.state_drop_windows,
            }),
            windows: self.windows.0.clone().map(|gauges| WindowsConfig {
                gauges,
                skew: self.window_skew,
            }),
            top_pages: TopPagesConfig {
                capacity: self.top_pages_capacity,
                metric_limit: self.top_pages_metric_limit,
                path: PathOptions {
                    strip_trailing_slash: self.top_pages_strip_trailing_slash,
                    lowercase_host: self.top_pages_lowercase_host,
                },
            },
        })
    }
}

/// The tokens of `--<flag>` and `--<flag>-file` together; `None` if neither
/// is given.
fn tokens(
    flag: &str,
    inline: &[Secret],
    file: Option<&std::path::Path>,
) -> Result<Option<BearerTokens>, String> {
    let mut all: Vec<String> = inline
        .iter()
        .map(|s| s.expose().to_owned())
        .filter(|s| !s.is_empty())
        .collect();
    if let Some(path) = file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {flag}-file {}: {e}", path.display()))?;
        let before = all.len();
        all.extend(
            text.lines()
                .map(str::trim)
                .filter(|line| !line.is_empty() && !line.starts_with('#'))
                .map(str::to_owned),
        );
        if all.len() == before {
            return Err(format!("{flag}-file {} holds no token", path.display()));
        }
    }
    if all.is_empty() {
        // `--flag ""` (e.g. an empty environment variable) is no token.
        return Ok(None);
    }
    BearerTokens::new(&all)
        .map(Some)
        .map_err(|e| format!("{flag}: {e}"))
}

/// Everything [`serve`](crate::serve) needs besides listeners and a
/// shutdown signal. `Default` gives the documented defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppConfig {
    /// Distinct addresses counted exactly before the sketch takes over.
    pub exact_threshold: usize,
    /// Ingest server settings.
    pub ingest: IngestConfig,
    /// Metrics server settings.
    pub exporter: ExporterConfig,
    /// Scale-out through Redis; `None` (the default): a standalone count.
    pub redis: Option<RedisConfig>,
    /// Where and how often to save the counter (`None`: not saved).
    pub state: Option<StateConfig>,
    /// Requests per page (`/stats`, `uniqd_top_page_requests`).
    pub top_pages: TopPagesConfig,
    /// Unique counts over time windows; `None`: off.
    pub windows: Option<WindowsConfig>,
}

/// Unique counts over time windows (see `uniqd_core::window`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowsConfig {
    /// Windows exported as `unique_ip_addresses_window{window}`.
    pub gauges: Vec<Span>,
    /// How far before arrival a log's timestamp is still used.
    pub skew: Duration,
}

impl Default for WindowsConfig {
    fn default() -> Self {
        Self {
            // 5m, 1h, 24h (`Span::minutes` is `None` only for zero).
            gauges: [5, 60, 24 * 60]
                .into_iter()
                .filter_map(Span::minutes)
                .collect(),
            skew: Duration::from_secs(5 * 60),
        }
    }
}

impl WindowsConfig {
    /// Checks the windows and the skew.
    ///
    /// # Errors
    ///
    /// A description of the first invalid setting.
    pub fn validate(&self) -> Result<(), String> {
        for span in &self.gauges {
            span.check_window().map_err(|e| e.to_string())?;
        }
        if self.skew > Duration::from_millis(MAX_SKEW_MS) {
            return Err(format!(
                "window skew must be at most 59m (the minute slots kept), not {:?}",
                self.skew
            ));
        }
        Ok(())
    }

    /// The ring, on the system clock.
    pub fn ring(&self) -> WindowRing {
        // At most 59 minutes (validated), so the milliseconds fit.
        let skew_ms = u64::try_from(self.skew.as_millis()).unwrap_or(MAX_SKEW_MS);
        WindowRing::new(skew_ms, Arc::new(SystemClock))
    }
}

/// The top pages summary: its size, what is exported, how a `url` becomes a
/// path (see `uniqd_core::top_pages`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopPagesConfig {
    /// Counters per shard (one shard per worker thread); 0 turns top pages
    /// off.
    pub capacity: usize,
    /// Pages exported as `uniqd_top_page_requests` (0: none).
    pub metric_limit: usize,
    /// Normalisation of the path.
    pub path: PathOptions,
}

impl Default for TopPagesConfig {
    fn default() -> Self {
        Self {
            capacity: DEFAULT_TOP_PAGES_CAPACITY,
            metric_limit: DEFAULT_TOP_PAGES_METRIC_LIMIT,
            path: PathOptions::default(),
        }
    }
}

impl TopPagesConfig {
    /// Checks the sizes.
    ///
    /// # Errors
    ///
    /// A description of the first invalid setting.
    pub fn validate(&self) -> Result<(), String> {
        if self.capacity > MAX_TOP_PAGES_CAPACITY {
            return Err(format!(
                "top pages capacity must be at most {MAX_TOP_PAGES_CAPACITY}"
            ));
        }
        if self.metric_limit > MAX_TOP_PAGES_METRIC_LIMIT {
            return Err(format!(
                "top pages metric limit must be at most {MAX_TOP_PAGES_METRIC_LIMIT}"
            ));
        }
        Ok(())
    }

    /// The summary for `threads` recording threads (one shard each, at most
    /// `uniqd_core::MAX_TOP_PAGES_SHARDS`); `None` when off.
    ///
    /// # Errors
    ///
    /// As [`validate`](Self::validate).
    pub fn summary(&self, threads: usize) -> Result<Option<TopPages>, String> {
        self.validate()?;
        if self.capacity == 0 {
            return Ok(None);
        }
        let shards = threads.clamp(1, uniqd_core::MAX_TOP_PAGES_SHARDS);
        TopPages::new(self.capacity, shards, self.path)
            .map(Some)
            .map_err(|e| e.to_string())
    }
}

/// Where and how often a replica shares its count (see [`crate::redis_sync`]).
#[derive(Clone, PartialEq, Eq)]
pub struct RedisConfig {
    /// `redis://` URL, credentials included (never logged).
    pub url: String,
    /// The shared HyperLogLog key.
    pub key: String,
    /// Time between two syncs.
    pub sync_interval: Duration,
    /// Deadline for one sync.
    pub timeout: Duration,
}

impl RedisConfig {
    /// Settings for `url` with the default key, a 1 s interval and a 2 s timeout.
    #[must_use]
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            key: DEFAULT_REDIS_KEY.to_owned(),
            sync_interval: Duration::from_secs(1),
            timeout: Duration::from_secs(2),
        }
    }

    /// The client for [`url`](Self::url) (no connection is made).
    ///
    /// # Errors
    ///
    /// A URL the client cannot use, without repeating it (it may hold a password).
    pub fn client(&self) -> Result<redis::Client, String> {
        let scheme = self.url.split_once("://").map_or("", |(scheme, _)| scheme);
        let tls = ["rediss", "valkeys"]
            .iter()
            .any(|s| s.eq_ignore_ascii_case(scheme));
        if tls && !cfg!(feature = "redis-tls") {
            return Err(format!(
                "--redis-url: {scheme}:// (TLS) needs a build with the `redis-tls` feature \
                 (cargo build --release --features redis-tls); see docs/scale-out.md"
            ));
        }
        redis::Client::open(self.url.as_str()).map_err(|e| {
            format!("invalid --redis-url (expected redis://[user:password@]host:port[/db]): {e}")
        })
    }

    /// Checks the URL, the key and the durations.
    ///
    /// # Errors
    ///
    /// A description of the first invalid setting.
    pub fn validate(&self) -> Result<(), String> {
        self.client()?;
        crate::redis_sync::keys::SyncKeys::new(&self.key, "check")?;
        if self.sync_interval.is_zero() || self.timeout.is_zero() {
            return Err("--redis-sync-interval and --redis-timeout must be positive".to_owned());
        }
        Ok(())
    }
}

impl std::fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisConfig")
            .field("url", &"<redacted>")
            .field("key", &self.key)
            .field("sync_interval", &self.sync_interval)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Default for AppConfig {
    fn default() -> Self {
        Self {
            exact_threshold: uniqd_core::DEFAULT_THRESHOLD,
            ingest: IngestConfig::default(),
            exporter: ExporterConfig::default(),
            redis: None,
            state: None,
            top_pages: TopPagesConfig::default(),
            windows: Some(WindowsConfig::default()),
        }
    }
}

impl AppConfig {
    /// Checks every setting before anything starts.
    ///
    /// # Errors
    ///
    /// A human-readable description of the first invalid setting.
    pub fn validate(&self) -> Result<(), String> {
        if self.exact_threshold > MAX_EXACT_THRESHOLD {
            return Err(format!(
                "exact threshold must be at most {MAX_EXACT_THRESHOLD}"
            ));
        }
        self.ingest.validate()?;
        self.top_pages.validate()?;
        if let Some(windows) = &self.windows {
            windows.validate()?;
        }
        if let Some(redis) = &self.redis {
            redis.validate()?;
        }
        self.exporter.server.validate()?;
        match &self.state {
            Some(state) if state.interval.is_zero() => {
                Err("state interval must be greater than zero".to_owned())
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn defaults_match_the_library_defaults() {
        let cli = Cli::try_parse_from(["uniqd"]).expect("defaults parse");
        assert_eq!(cli.listen, "0.0.0.0:5000".parse().expect("addr"));
        assert_eq!(cli.metrics_listen, "0.0.0.0:9102".parse().expect("addr"));
        assert_eq!(cli.app_config(), Ok(AppConfig::default()));
        assert_eq!(cli.log_format, LogFormat::Text);
        assert!(cli.worker_threads() >= 1);
        assert_eq!(cli.command, None);
    }

    #[test]
    fn healthcheck_subcommand() {
        let cli = Cli::try_parse_from([
            "uniqd",
            "healthcheck",
            "--url",
            "http://127.0.0.1:1/healthz",
        ])
        .expect("parses");
        assert_eq!(
            cli.command,
            Some(Command::Healthcheck {
                url: "http://127.0.0.1:1/healthz".to_owned(),
                timeout: Duration::from_secs(2),
            })
        );
    }

    #[test]
    fn flags_are_applied() {
        let cli = Cli::try_parse_from([
            "uniqd",
            "--listen",
            "127.0.0.1:0",
            "--exact-threshold",
            "10",
            "--max-object-size",
            "2KiB",
            "--max-batch-size",
            "1MB",
            "--body-read-timeout",
            "500ms",
            "--max-connections",
            "5",
            "--workers",
            "3",
            "--log-format",
            "json",
        ])
        .expect("parses");
        let config = cli.app_config().expect("valid");
        assert_eq!(config.exact_threshold, 10);
        assert_eq!(config.ingest.max_object_bytes, 2048);
        assert_eq!(config.ingest.max_batch_bytes, 1_000_000);
        assert_eq!(
            config.ingest.server.body_read_timeout,
            Duration::from_millis(500)
        );
        assert_eq!(config.exporter.server.max_connections, 5);
        assert_eq!(cli.worker_threads(), 3);
        assert_eq!(cli.log_format, LogFormat::Json);
        assert_eq!(config.redis, None);
        assert_eq!(
            config.ingest.per_core_threads, None,
            "multi-thread by default"
        );
        assert_eq!(config.validate(), Ok(()));
    }

    #[test]
    fn per_core_runtime_runs_one_ingest_thread_per_worker() {
        let cli = Cli::try_parse_from(["uniqd", "--runtime", "per-core", "--workers", "3"])
            .expect("parses");
        assert_eq!(cli.runtime, RuntimeMode::PerCore);
        let config = cli.app_config().expect("valid");
        assert_eq!(config.ingest.per_core_threads, NonZeroUsize::new(3));
    }

    #[test]
    fn redis_flags() {
        let cli = Cli::try_parse_from([
            "uniqd",
            "--redis-url",
            "redis://:secret@10.0.0.5:6380/2",
            "--redis-sync-interval",
            "250ms",
        ])
        .expect("parses");
        let config = cli.app_config().expect("valid");
        let redis = config.redis.clone().expect("redis on");
        assert_eq!(redis.url, "redis://:secret@10.0.0.5:6380/2");
        assert_eq!(redis.key, DEFAULT_REDIS_KEY);
        assert_eq!(redis.sync_interval, Duration::from_millis(250));
        assert_eq!(redis.timeout, Duration::from_secs(2));
        assert_eq!(config.validate(), Ok(()));
        assert!(
            !format!("{config:?}").contains("secret"),
            "the password must not reach logs"
        );

        for (url, key, interval) in [
            ("not a url", DEFAULT_REDIS_KEY, Duration::from_secs(1)),
            (
                "redis://:secret@10.0.0.5:port",
                DEFAULT_REDIS_KEY,
                Duration::from_secs(1),
            ),
            ("http://10.0.0.5", DEFAULT_REDIS_KEY, Duration::from_secs(1)),
            ("redis://10.0.0.5", "a}b", Duration::from_secs(1)),
            ("redis://10.0.0.5", DEFAULT_REDIS_KEY, Duration::ZERO),
        ] {
            let redis = RedisConfig {
                key: key.to_owned(),
                sync_interval: interval,
                ..RedisConfig::new(url)
            };
            let error = redis.validate().expect_err(url);
            assert!(!error.is_empty() && !error.contains("secret"), "{error}");
        }
        let tls = RedisConfig::new("rediss://10.0.0.5:6380").validate();
        if cfg!(feature = "redis-tls") {
            assert_eq!(tls, Ok(()));
        } else {
            assert!(tls.is_err_and(|e| e.contains("redis-tls")));
        }
    }

    #[test]
    fn redis_url_value_is_hidden_from_help() {
        let command = Cli::command();
        let url = command
            .get_arguments()
            .find(|arg| arg.get_id() == "redis_url")
            .expect("--redis-url exists");
        assert_eq!(url.get_env(), Some(std::ffi::OsStr::new("UNIQD_REDIS_URL")));
        assert!(
            url.is_hide_env_values_set(),
            "a password in the URL would show"
        );
    }

    #[test]
    fn bad_values_are_rejected() {
        for args in [
            &["uniqd", "--exact-threshold", "99999999999"][..],
            &["uniqd", "--max-object-size", "lots"],
            &["uniqd", "--drain-timeout", "soon"],
            &["uniqd", "--workers", "0"],
            &["uniqd", "--log-format", "xml"],
        ] {
            assert!(Cli::try_parse_from(args).is_err(), "{args:?}");
        }
        let cli = Cli::try_parse_from(["uniqd", "--max-header-size", "1KiB"]).expect("parses");
        assert!(cli.app_config().expect("reads").validate().is_err());
    }

    #[test]
    fn tokens_are_collected_and_never_printed() {
        let cli = Cli::try_parse_from([
            "uniqd",
            "--ingest-token",
            "tok-AAA,tok-BBB",
            "--ingest-token",
            "tok-CCC",
            "--metrics-token",
            "tok-MMM",
        ])
        .expect("parses");
        let config = cli.app_config().expect("valid");
        assert_eq!(config.ingest.auth.as_ref().map(BearerTokens::len), Some(3));
        assert_eq!(
            config.exporter.metrics_auth.as_ref().map(BearerTokens::len),
            Some(1)
        );
        for text in [format!("{cli:?}"), format!("{config:?}")] {
            assert!(!text.contains("tok-"), "{text}");
            assert!(text.contains("redacted"), "{text}");
        }
        // An empty value (e.g. an empty environment variable) is no token.
        let cli = Cli::try_parse_from(["uniqd", "--ingest-token", ""]).expect("parses");
        assert_eq!(cli.app_config().expect("valid").ingest.auth, None);
    }

    #[test]
    fn top_pages_flags() {
        let cli = Cli::try_parse_from(["uniqd"]).expect("parses");
        assert_eq!(
            cli.app_config().expect("valid").top_pages,
            TopPagesConfig::default()
        );
        let cli = Cli::try_parse_from([
            "uniqd",
            "--top-pages-capacity",
            "64",
            "--top-pages-metric-limit",
            "5",
            "--top-pages-strip-trailing-slash",
            "--top-pages-lowercase-host",
        ])
        .expect("parses");
        let config = cli.app_config().expect("valid").top_pages;
        assert_eq!(
            config,
            TopPagesConfig {
                capacity: 64,
                metric_limit: 5,
                path: PathOptions {
                    strip_trailing_slash: true,
                    lowercase_host: true,
                },
            }
        );
        let top = config.summary(3).expect("valid").expect("on");
        assert_eq!((top.capacity(), top.shards()), (64, 3));
        let off = TopPagesConfig {
            capacity: 0,
            ..config
        };
        assert!(off.summary(3).expect("valid").is_none());
        for args in [
            &["uniqd", "--top-pages-capacity", "65537"][..],
            &["uniqd", "--top-pages-capacity", "-1"],
            &["uniqd", "--top-pages-metric-limit", "101"],
            &["uniqd", "--top-pages-metric-limit", "many"],
        ] {
            assert!(Cli::try_parse_from(args).is_err(), "{args:?}");
        }
        let too_big = TopPagesConfig {
            metric_limit: 1000,
            ..config
        };
        assert!(too_big.validate().is_err());
        assert!(too_big.summary(1).is_err());
    }

    #[test]
    fn state_flags() {
        let cli = Cli::try_parse_from(["uniqd"]).expect("parses");
        assert_eq!(cli.app_config().expect("valid").state, None);
        let cli = Cli::try_parse_from([
            "uniqd",
            "--state-file",
            "/var/lib/uniqd/state",
            "--state-interval",
            "5s",
            "--state-reset-on-error",
        ])
        .expect("parses");
        let config = cli.app_config().expect("valid");
        assert_eq!(
            config.state,
            Some(StateConfig {
                path: PathBuf::from("/var/lib/uniqd/state"),
                interval: Duration::from_secs(5),
                reset_on_error: true,
                drop_windows: false,
            })
        );
        let cli = Cli::try_parse_from(["uniqd", "--state-file", "s", "--state-interval", "0s"])
            .expect("parses");
        assert!(cli.app_config().expect("reads").validate().is_err());
    }

    #[test]
    fn window_flags() {
        let parse = |args: &[&str]| {
            Cli::try_parse_from(["uniqd"].iter().chain(args))
                .map_err(|e| e.to_string())
                .and_then(|cli| cli.app_config())
        };
        let windows = |args: &[&str]| {
            parse(args)
                .expect("valid")
                .windows
                .map(|w| w.gauges.iter().map(Span::to_string).collect::<Vec<_>>())
        };
        assert_eq!(
            windows(&[]),
            Some(vec!["5m".into(), "1h".into(), "24h".into()])
        );
        assert_eq!(windows(&["--windows", "off"]), None);
        // One gauge per window, however it is spelled.
        assert_eq!(
            windows(&["--windows", " 60m, 1h ,7d,1d"]),
            Some(vec!["1h".into(), "7d".into(), "24h".into()])
        );
        for (bad, says) in [
            ("90m", "not whole hours"),
            ("8d", "longer than"),
            ("5s", "not a duration"),
            ("", "no window given"),
            (",", "no window given"),
        ] {
            let e = parse(&["--windows", bad]).expect_err(bad);
            assert!(e.contains(says), "{bad}: {e}");
        }
        let config = parse(&["--window-skew", "90s"]).expect("valid");
        assert_eq!(config.windows.expect("on").skew, Duration::from_secs(90));
        let config = parse(&["--window-skew", "1h"]).expect("parses");
        assert!(config.validate().expect_err("too long").contains("59m"));
    }
}
