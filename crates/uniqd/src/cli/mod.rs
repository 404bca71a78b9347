//! Command-line flags, each also settable as a `UNIQD_*` environment
//! variable: the clap [`Cli`] struct and its value parsers. Turning the
//! flags into an [`AppConfig`](crate::AppConfig) is `to_config.rs`
//! ([`Cli::app_config`]).
//!
//! A value parser checks the syntax of a flag, and a bound only by calling
//! the check that the sub-config's `validate` also uses, so a bound is
//! written once and a bad flag is still a usage error (exit 2).

// The flags' doc comments are clap's `--help` text, written for a terminal: `[user:password@]`
// and `<file>` there are not intra-doc links or HTML.
#![allow(rustdoc::broken_intra_doc_links, rustdoc::invalid_html_tags)]

mod to_config;

use std::fmt;
use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use uniqd_core::{Span, DEFAULT_TOP_PAGES_CAPACITY};
use uniqd_ingest::fields::names::{check_name, MAX_CANDIDATES};
use uniqd_ingest::fields::TrustedProxies;

use crate::config::groups::check_max_groups;
use crate::config::top_pages::{
    check_capacity, check_metric_limit, DEFAULT_TOP_PAGES_METRIC_LIMIT,
};
use crate::config::windows::check_window;
use crate::config::{check_exact_threshold, SyslogListen};
use crate::redis_sync::config::DEFAULT_REDIS_KEY;
use crate::units::{parse_byte_size, parse_duration};

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, fields at the top level.
    Json,
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
    /// accepted NDJSON line and JSON array element (e.g. 1MiB, 512KiB, 1048576).
    #[arg(long, env = "UNIQD_MAX_OBJECT_SIZE", default_value = "1MiB", value_parser = parse_byte_size)]
    pub max_object_size: usize,

    /// Largest batch request body: NDJSON, a JSON array or stream; on the
    /// wire and decoded from gzip, deflate or zstd (e.g. 64MiB).
    #[arg(long, env = "UNIQD_MAX_BATCH_SIZE", default_value = "64MiB", value_parser = parse_byte_size)]
    pub max_batch_size: usize,

    /// Most request bytes all ingest connections together may hold in
    /// uniqd's buffers (lines and array elements split between chunks,
    /// decoder buffers); past it a request gets 503 with Retry-After.
    #[arg(long, env = "UNIQD_MAX_BUFFERED_BYTES", default_value = "64MiB", value_parser = parse_byte_size)]
    pub max_buffered_bytes: usize,

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

    /// Save the counter (and the time windows and the --group-by groups,
    /// when on) to this file every --state-interval and on shutdown
    /// (atomically: temporary file, fsync, rename), and continue from it at
    /// start. A missing file is a fresh start; an unreadable,
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
    /// windows are on again; with --group-by off, without its groups too.
    /// Refused with time windows on.
    #[arg(long, env = "UNIQD_STATE_DROP_WINDOWS")]
    pub state_drop_windows: bool,

    /// Require `Authorization: Bearer <token>` on POST /logs. Several
    /// tokens may be given, comma-separated or by repeating the flag. An
    /// empty or blank value (or list member) refuses the start. [default:
    /// off]
    #[arg(
        long,
        env = "UNIQD_INGEST_TOKEN",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub ingest_token: Vec<Secret>,

    /// Read ingest tokens from this file: one per line; blank lines and
    /// lines starting with # are ignored; a file with no token refuses the
    /// start. Adds to --ingest-token.
    #[arg(long, env = "UNIQD_INGEST_TOKEN_FILE")]
    pub ingest_token_file: Option<PathBuf>,

    /// Require `Authorization: Bearer <token>` on every path of the
    /// metrics port (/metrics, /status.json, /stats, /api/v1/unique,
    /// /api/v1/unique/series, any other) except the open ones: /healthz,
    /// /readyz and the status page's HTML /, which holds no data and asks
    /// for the token (comma-separated or repeated; empty refuses the start).
    /// [default: off]
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

    /// Also receive access logs as syslog messages (RFC 3164 or 5424, each
    /// carrying one JSON log) on udp://ADDR:PORT or tcp://ADDR:PORT
    /// (comma-separated or repeated). There is no token on syslog: bind to
    /// a private address. [default: off]
    #[arg(long, env = "UNIQD_SYSLOG_LISTEN", value_delimiter = ',')]
    pub syslog_listen: Vec<SyslogListen>,

    /// Largest syslog message (UDP datagram or framed TCP message); larger
    /// ones are counted invalid and skipped.
    #[arg(long, env = "UNIQD_SYSLOG_MAX_MESSAGE_SIZE", default_value = "64KiB",
          value_parser = parse_byte_size)]
    pub syslog_max_message_size: usize,

    /// Receive buffer (SO_RCVBUF) of each syslog UDP socket: what absorbs a
    /// burst, and what keeps the kernel's receive path fast under load
    /// (docs/syslog.md). The kernel caps it at net.core.rmem_max.
    /// [default: 8MiB]
    #[arg(long, env = "UNIQD_SYSLOG_RECEIVE_BUFFER", value_parser = parse_byte_size)]
    pub syslog_receive_buffer: Option<usize>,

    /// Where a log's client address is: member names or dotted paths into
    /// nested objects, comma separated; the first one present counts. The
    /// default covers uniqd's own `ip`, Kong and APISIX, nginx and
    /// ingress-nginx, Traefik, Envoy and the Elastic Common Schema (see
    /// docs/shippers.md). A value may carry a port or be a forwarded list.
    #[arg(long, env = "UNIQD_IP_FIELD", value_parser = parse_field_list,
          default_value = "ip,client_ip,remote_addr,ClientHost,ClientAddr,downstream_remote_address,remote,client.ip")]
    pub ip_field: FieldList,

    /// Where a log's URL (for the top pages) is: names or dotted paths,
    /// first present wins.
    #[arg(long, env = "UNIQD_URL_FIELD", value_parser = parse_field_list,
          default_value = "url,request_uri,RequestPath,path,uri,request.uri,request.url")]
    pub url_field: FieldList,

    /// Where a log's time (for the time windows) is: names or dotted paths,
    /// first present wins. RFC 3339, epoch seconds/ms/µs/ns (number or
    /// string, by magnitude) or CLF time.
    #[arg(long, env = "UNIQD_TIMESTAMP_FIELD", value_parser = parse_field_list,
          default_value = "timestamp,@timestamp,time,time_iso8601,time_local,StartUTC,start_time,started_at,date")]
    pub timestamp_field: FieldList,

    /// Also count distinct addresses per group: the member name or dotted
    /// path of a JSON log whose string value names its group (site, tenant,
    /// service), e.g. host, vhost or kubernetes.namespace. Exported as
    /// unique_ip_addresses_by_group{group}, at /api/v1/groups and
    /// /api/v1/unique?group=NAME. Logs without it count toward the total
    /// only. [default: off]
    #[arg(long, env = "UNIQD_GROUP_BY", value_parser = parse_group_by)]
    pub group_by: Option<String>,

    /// Groups tracked at most with --group-by (1 to 10000), chosen by
    /// traffic; the others count together as group="__other__". Each takes
    /// at most about 60 KB.
    #[arg(long, env = "UNIQD_MAX_GROUPS", default_value_t = uniqd_core::DEFAULT_MAX_GROUPS,
          value_parser = parse_max_groups)]
    pub max_groups: usize,

    /// Your proxies' networks (CIDR, comma separated, e.g.
    /// 10.0.0.0/8,fd00::/8): of a forwarded address list ("client, proxy1,
    /// proxy2"), count the rightmost address not in them, as nginx's
    /// real-IP module does. Unset, the leftmost counts, which a client can
    /// forge. [default: none]
    #[arg(long, env = "UNIQD_TRUSTED_PROXIES", value_parser = TrustedProxies::parse)]
    pub trusted_proxies: Option<TrustedProxies>,
}

fn parse_group_by(text: &str) -> Result<String, String> {
    let name = text.trim();
    check_name(name)?;
    Ok(name.to_owned())
}

fn parse_max_groups(text: &str) -> Result<usize, String> {
    let n = text.trim().parse().map_err(|e| format!("{e}"))?;
    check_max_groups(n)?;
    Ok(n)
}

/// A `--*-field` list: names or dotted paths, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldList(pub Vec<String>);

fn parse_field_list(text: &str) -> Result<FieldList, String> {
    let names: Vec<String> = text
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_owned)
        .collect();
    if names.is_empty() {
        return Err("no field name given".to_owned());
    }
    if names.len() > MAX_CANDIDATES {
        return Err(format!("at most {MAX_CANDIDATES} field names"));
    }
    for name in &names {
        check_name(name)?;
    }
    Ok(FieldList(names))
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
        check_window(span)?;
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
        #[arg(
            long,
            env = "UNIQD_HEALTHCHECK_URL",
            default_value = "http://127.0.0.1:9102/healthz"
        )]
        url: String,
        /// Give up after this long.
        #[arg(
            long,
            env = "UNIQD_HEALTHCHECK_TIMEOUT",
            default_value = "2s",
            value_parser = parse_duration
        )]
        timeout: Duration,
    },
    /// Send N distinct addresses to a uniqd deployment (single logs or
    /// NDJSON batches, flat out or at a rate; no page url unless --page-url),
    /// reading its `unique_ip_addresses` before and after, and print this
    /// run's contribution (after - before), its relative error, throughput
    /// and latency percentiles.
    Loadgen(crate::loadgen::LoadgenArgs),
}

/// A whole number, then `check` on it.
fn parse_checked(
    text: &str,
    what: &str,
    check: fn(usize) -> Result<(), String>,
) -> Result<usize, String> {
    let value: usize = text
        .trim()
        .parse()
        .map_err(|_| format!("invalid {what} {text:?}: expected a whole number"))?;
    check(value)?;
    Ok(value)
}

fn parse_threshold(text: &str) -> Result<usize, String> {
    parse_checked(text, "threshold", check_exact_threshold)
}

fn parse_top_pages_capacity(text: &str) -> Result<usize, String> {
    parse_checked(text, "top pages capacity", check_capacity)
}

fn parse_top_pages_metric_limit(text: &str) -> Result<usize, String> {
    parse_checked(text, "top pages metric limit", check_metric_limit)
}

impl Cli {
    /// Worker threads to start: `--workers`, else the available parallelism.
    #[must_use]
    pub fn worker_threads(&self) -> usize {
        self.workers
            .or_else(|| std::thread::available_parallelism().ok())
            .map_or(1, NonZeroUsize::get)
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
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
    fn field_defaults_are_the_ingest_defaults() {
        use uniqd_ingest::fields::names::{
            DEFAULT_IP_FIELDS, DEFAULT_TIMESTAMP_FIELDS, DEFAULT_URL_FIELDS,
        };
        let cli = Cli::try_parse_from(["uniqd"]).expect("parses");
        assert_eq!(cli.ip_field.0, DEFAULT_IP_FIELDS);
        assert_eq!(cli.url_field.0, DEFAULT_URL_FIELDS);
        assert_eq!(cli.timestamp_field.0, DEFAULT_TIMESTAMP_FIELDS);
        assert_eq!(cli.trusted_proxies, None);
        let cli = Cli::try_parse_from([
            "uniqd",
            "--ip-field",
            " x_real_ip , client.ip ",
            "--trusted-proxies",
            "10.0.0.0/8",
        ])
        .expect("parses");
        assert_eq!(cli.ip_field.0, ["x_real_ip", "client.ip"]);
        for bad in [
            &["uniqd", "--ip-field", ","][..],
            &["uniqd", "--url-field", "a..b"],
            &["uniqd", "--trusted-proxies", "10.0.0.0/99"],
        ] {
            let error = Cli::try_parse_from(bad).expect_err("refused");
            assert_eq!(
                error.kind(),
                clap::error::ErrorKind::ValueValidation,
                "{bad:?}"
            );
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
}
