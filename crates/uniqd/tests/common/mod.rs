//! Helpers of the `uniqd` integration tests that need the `uniqd` crate: the whole
//! service in-process on `127.0.0.1:0` ([`TestService`]), log lines, the strict
//! OpenMetrics check through Python's `prometheus_client`, and reading the repository's
//! YAML files (docs, deploy). [`process`] runs the built binary instead.
//!
//! The generic helpers are re-exported from `uniqd-testkit` (the raw HTTP client,
//! [`TempDir`], [`poll_until`], [`DEADLINE`]) and the Prometheus sample parser from
//! `uniqd::loadgen::exposition`, so that a test file needs only `use common::*;`.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

pub mod codec;
pub mod process;
pub mod system;

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use uniqd::AppConfig;

// Each test file uses a part of these.
#[allow(unused_imports)]
pub use uniqd::loadgen::exposition::sample_value;
#[allow(unused_imports)]
pub use uniqd_testkit::http::*;
#[allow(unused_imports)]
pub use uniqd_testkit::{poll_every, poll_until, TempDir, DEADLINE};

/// The whole service running in this process.
pub struct TestService {
    pub ingest: SocketAddr,
    pub metrics: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<io::Result<()>>>,
}

impl TestService {
    /// Starts with the default configuration.
    pub async fn start() -> Self {
        Self::start_with(AppConfig::default()).await
    }

    /// Starts with `config` on two fresh `127.0.0.1:0` listeners.
    pub async fn start_with(config: AppConfig) -> Self {
        let ingest_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let metrics_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let ingest = ingest_listener.local_addr().unwrap();
        let metrics = metrics_listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(uniqd::serve(
            config,
            ingest_listener,
            metrics_listener,
            async move {
                let _ = stopped.await;
            },
        ));
        Self {
            ingest,
            metrics,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Signals shutdown without waiting.
    pub fn trigger_shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Waits for `serve` to return after [`Self::trigger_shutdown`].
    pub async fn join(&mut self) -> io::Result<()> {
        let task = self.task.take().expect("joined twice");
        tokio::time::timeout(DEADLINE, task)
            .await
            .expect("service did not stop in time")
            .expect("service task panicked")
    }

    /// Graceful shutdown; asserts `serve` returned `Ok`.
    pub async fn stop(mut self) {
        self.trigger_shutdown();
        self.join().await.expect("serve returned an error");
    }

    /// `GET /metrics` body (asserting 200 and the OpenMetrics content type).
    /// `/metrics` as Prometheus asks for it (OpenMetrics; see [`get_openmetrics`]).
    pub async fn scrape(&self) -> String {
        let response = get_openmetrics(self.metrics).await;
        assert_eq!(response.status, 200, "{}", response.text());
        assert_eq!(
            response.header("content-type"),
            Some("application/openmetrics-text; version=1.0.0; charset=utf-8")
        );
        response.text()
    }

    /// Value of one sample, e.g. `unique_ip_addresses` or
    /// `uniqd_ingest_requests_total{outcome="accepted"}`.
    pub async fn metric(&self, sample: &str) -> f64 {
        let text = self.scrape().await;
        sample_value(&text, sample).unwrap_or_else(|| panic!("no sample {sample} in:\n{text}"))
    }

    /// `unique_ip_addresses` as an integer.
    pub async fn unique(&self) -> u64 {
        let value = self.metric("unique_ip_addresses").await;
        assert!(value >= 0.0 && value.fract() == 0.0, "{value}");
        value as u64
    }
}

impl Drop for TestService {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// The bearer token of [`start_with_metrics_token`].
pub const METRICS_TOKEN: &str = "s3cret";

/// A service whose metrics port (and its JSON endpoints) needs [`METRICS_TOKEN`].
pub async fn start_with_metrics_token() -> TestService {
    let mut config = AppConfig::default();
    config.exporter.metrics_auth = Some(uniqd_http::BearerTokens::new([METRICS_TOKEN]).unwrap());
    TestService::start_with(config).await
}

/// Asserts that `GET path` on the metrics port is refused without a token (401 JSON error
/// with the bearer challenge) and answered 200 with [`METRICS_TOKEN`]; returns that answer.
pub async fn assert_needs_metrics_token(service: &TestService, path: &str) -> HttpResponse {
    let response = get(service.metrics, path).await;
    response.expect_error(401, "unauthorized");
    assert_eq!(
        response.header("www-authenticate"),
        Some("Bearer realm=\"uniqd\""),
        "{path}"
    );
    let authorization = format!("Bearer {METRICS_TOKEN}");
    let response = send_raw(
        service.metrics,
        request_bytes("GET", path, &[("Authorization", &authorization)], b""),
    )
    .await;
    assert_eq!(response.status, 200, "{path}: {}", response.text());
    response
}

/// `{"ip": "<ip>"}` plus some other fields, as a log line.
pub fn log_line(ip: &str) -> String {
    format!(
        r#"{{"timestamp":"2020-06-24T15:27:00.123456Z","ip":"{ip}","url":"/a?b=c","ua":{{"n":[1,2]}}}}"#
    )
}

/// The UTC calendar date of `ms` (Unix milliseconds): year, month (1-12), day (1-31), and the
/// milliseconds into that day (Howard Hinnant's `civil_from_days`).
pub fn civil_utc(ms: u64) -> (i64, i64, i64, u64) {
    let (days, rest) = ((ms / 86_400_000) as i64, ms % 86_400_000);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day, rest)
}

/// The wall clock in Unix milliseconds (what the time windows read at arrival).
pub fn now_ms() -> u64 {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("the clock is after 1970");
    u64::try_from(since_epoch.as_millis()).expect("milliseconds fit u64 until the year 584556019")
}

/// The `i`-th address of a large distinct set (10.0.0.0/8).
pub fn distinct_ip(i: u32) -> String {
    format!("10.{}.{}.{}", (i >> 16) & 255, (i >> 8) & 255, i & 255)
}

/// `PFCOUNT` of the [`distinct_ip`]s `indexes` added to the fresh key `key`: what Redis
/// itself counts for those addresses, to compare a replica's answer with.
pub fn union_count(
    conn: &mut uniqd_testkit::redis::Conn,
    key: &str,
    indexes: impl IntoIterator<Item = u32>,
) -> u64 {
    let ips: Vec<String> = indexes.into_iter().map(distinct_ip).collect();
    conn.pfadd_all(key, &ips);
    conn.pfcount(key)
}

/// `GET path` on `service`'s metrics port, asserting 200, as JSON.
pub async fn get_json(service: &TestService, path: &str) -> serde_json::Value {
    let r = get(service.metrics, path).await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

/// `(count, error)` of the page `path` in a `/stats` answer; panics if it is not listed.
pub fn page(stats: &serde_json::Value, path: &str) -> (u64, u64) {
    let pages = stats["pages"].as_array().expect("pages");
    let page = pages
        .iter()
        .find(|p| p["path"] == path)
        .unwrap_or_else(|| panic!("no {path} in {stats}"));
    (
        page["count"].as_u64().unwrap(),
        page["error"].as_u64().unwrap(),
    )
}

/// Asserts the strict OpenMetrics parser of Python's `prometheus_client`
/// accepts `text`. Fails (never skips) when Python or the package is missing.
pub fn assert_valid_openmetrics(text: &str) {
    const SCRIPT: &str = "
import sys
try:
    from prometheus_client.openmetrics.parser import text_string_to_metric_families
except ImportError as e:
    sys.stderr.write('IMPORT-ERROR: %s\\n' % e)
    sys.exit(3)
families = list(text_string_to_metric_families(sys.stdin.read()))
print(len(families))
";
    let child = Command::new("python3")
        .args(["-c", SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(e) => panic!(
            "cannot run python3 ({e}); the OpenMetrics check needs Python 3 with \
             prometheus_client: install python3, then `python3 -m pip install prometheus_client`"
        ),
    };
    {
        use std::io::Write as _;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(text.as_bytes()).unwrap();
    }
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    if output.status.code() == Some(3) && stderr.contains("IMPORT-ERROR") {
        panic!(
            "Python's prometheus_client is not installed ({}); install it with \
             `python3 -m pip install prometheus_client`",
            stderr.trim()
        );
    }
    assert!(
        output.status.success(),
        "prometheus_client rejected the exposition: {stderr}\n--- text ---\n{text}"
    );
}

/// Prometheus's scrape `Accept` header (without protobuf): OpenMetrics preferred.
pub const PROMETHEUS_ACCEPT: &str = "application/openmetrics-text;version=1.0.0;q=0.5,\
    application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2";

/// `GET /metrics` with Prometheus's `Accept` header, so the answer is OpenMetrics (a plain
/// `GET` gets the classic text format).
pub async fn get_openmetrics(metrics: SocketAddr) -> HttpResponse {
    send_raw(
        metrics,
        request_bytes("GET", "/metrics", &[("Accept", PROMETHEUS_ACCEPT)], b""),
    )
    .await
}

/// Runs `promtool check metrics` on a classic text exposition and asserts it has nothing to
/// say: no parse error and no lint complaint.
pub fn assert_promtool_clean(text: &str) {
    let child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(e) => panic!(
            "cannot run promtool ({e}); the classic-format check needs it: install the \
             Debian package `prometheus` (or put Prometheus's promtool on PATH)"
        ),
    };
    {
        use std::io::Write as _;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(text.as_bytes()).unwrap();
    }
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.trim().is_empty() && stderr.trim().is_empty(),
        "promtool check metrics complained ({}):\n{stdout}{stderr}\n--- text ---\n{text}",
        output.status
    );
}

/// A path relative to the repository root (an absolute path stays as it is).
pub fn repo_path(relative: impl AsRef<Path>) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(relative)
}

/// Reads a YAML file of the repository (e.g. `docs/openapi.yaml`) as JSON
/// values. Mapping keys must be strings (quote numeric keys such as `'200'`).
pub fn read_yaml(relative: impl AsRef<Path>) -> serde_json::Value {
    let path = repo_path(relative);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_norway::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not valid YAML: {e}", path.display()))
}

/// Waits for `rounds` rounds of the Redis sync task, calling `each` before each one; rounds are
/// counted through `uniqd_redis_last_sync_timestamp_seconds`, read over HTTP so that counting
/// adds no Redis command (the cost tests count them). Returns how far the sync clock moved: on
/// a loaded machine a poll can miss a round, so a cost test divides by
/// [`rounds_in`] of it, not by `rounds`.
pub async fn wait_sync_rounds(
    service: &TestService,
    rounds: u32,
    mut each: impl AsyncFnMut(),
) -> std::time::Duration {
    let sample = "uniqd_redis_last_sync_timestamp_seconds";
    let first = service.metric(sample).await;
    let mut last = first;
    for _ in 0..rounds {
        each().await;
        last = poll_until("one more round", async || {
            let now = service.metric(sample).await;
            (now > last).then_some(now)
        })
        .await;
    }
    std::time::Duration::from_secs_f64(last - first)
}

/// The sync rounds in `elapsed` of the sync clock at `interval`, and at least `observed`: what
/// a cost per round divides by.
pub fn rounds_in(
    elapsed: std::time::Duration,
    interval: std::time::Duration,
    observed: u32,
) -> u64 {
    let rounds = (elapsed.as_secs_f64() / interval.as_secs_f64()).round() as u64;
    rounds.max(u64::from(observed))
}
