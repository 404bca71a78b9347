//! uniqd scraped by a real Prometheus (Debian's `prometheus`, which `.ci/test`
//! installs): the count arrives, the target is healthy, the shipped rule
//! files load and evaluate, and every PromQL expression of the Grafana
//! dashboard and the alert rules, as `deploy/extract_promql.py` lists them,
//! parses and returns what it should under a known mix of traffic.
//!
//! Prometheus runs on a free loopback port with a generated config (scrape
//! and rule evaluation every second, the rule files of the shipped
//! `deploy/prometheus/prometheus.yml`) and its own storage directory; it is
//! killed and its directory removed when the test ends, passing or not.
//! Every wait polls Prometheus' HTTP API until a deadline.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fs::File;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value as Json;
use tokio::net::TcpStream;

/// Pause between two polls of Prometheus (every wait also has a deadline).
const POLL: Duration = Duration::from_millis(100);

/// The body-read timeout of the service under test, short so that a
/// stalled request (outcome `request_timeout`) is quick to produce.
const BODY_READ_TIMEOUT: Duration = Duration::from_millis(200);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_prometheus_scrapes_uniqd_and_evaluates_the_dashboard_and_rules() {
    let mut config = uniqd::AppConfig::default();
    config.ingest.server.body_read_timeout = BODY_READ_TIMEOUT;
    let threshold = config.exact_threshold;
    let service = TestService::start_with(config).await;
    let prometheus = Prometheus::start(service.metrics).await;

    // A sample from before any traffic: every counter's first value in the
    // rate() windows is then 0, which makes the rates' ratios exact.
    prometheus
        .poll("a first scrape", "unique_ip_addresses", |r| {
            one_value(r).filter(|&v| v == 0.0).map(drop)
        })
        .await;

    let sent = send_traffic(&service).await;
    assert!(
        sent.distinct < sent.lines_accepted,
        "the traffic must repeat addresses: {sent:?}"
    );
    let distinct = sent.distinct as f64;
    let total = "sum(uniqd_ingest_requests_total{job=\"uniqd\"})";
    prometheus
        .poll("every request counted", total, |r| {
            one_value(r)
                .filter(|&v| v == sent.requests as f64)
                .map(drop)
        })
        .await;
    prometheus
        .poll(
            "unique_ip_addresses equal to the distinct addresses sent",
            "unique_ip_addresses",
            |r| one_value(r).filter(|&v| v == distinct).map(drop),
        )
        .await;

    prometheus.assert_target_healthy(service.metrics).await;

    let quota = shipped_visitor_quota();
    let error_ratio = sent.errors as f64 / sent.requests as f64;
    assert!(
        error_ratio > 0.05,
        "the traffic is meant to trip UniqdIngestErrorRatioHigh: {sent:?}"
    );
    let expectations = expectations(&Expected {
        distinct,
        quota,
        threshold: threshold as f64,
        error_ratio,
    });
    let extracted = extracted_promql();
    let documented: BTreeSet<&str> = expectations.keys().map(String::as_str).collect();
    let listed: BTreeSet<&str> = extracted.iter().map(String::as_str).collect();
    assert_eq!(
        listed, documented,
        "deploy/extract_promql.py and this test's expectations list different expressions: \
         give every new dashboard or rule expression an expectation below"
    );

    // Expressions that must return data first (rules and rates may need
    // another evaluation), then those that must return nothing: by then all
    // the data they look at is there, so their emptiness means something.
    let (empty, with_data): (Vec<_>, Vec<_>) = extracted
        .iter()
        .partition(|expr| matches!(expectations[*expr], Expect::Empty));
    for expr in with_data.into_iter().chain(empty) {
        let expect = &expectations[expr];
        prometheus
            .poll(&format!("{expr} -> {expect:?}"), expr, |r| expect.check(r))
            .await;
    }

    prometheus.assert_rules_healthy().await;
    // The only alert condition this traffic meets; its `for: 5m` keeps it
    // pending for the length of the test.
    prometheus
        .poll_alerts(&[("UniqdIngestErrorRatioHigh", "pending")])
        .await;

    drop(prometheus);
    service.stop().await;
}

/// What the test sent to `/logs`.
#[derive(Debug)]
struct Sent {
    /// All requests (every outcome).
    requests: u64,
    /// Requests not answered 202.
    errors: u64,
    /// Log lines counted (accepted lines, duplicates included).
    lines_accepted: u64,
    /// Distinct addresses among the accepted lines, by `std`'s parser.
    distinct: u64,
}

/// Sends a known set of logs (single objects and NDJSON batches, with
/// repeated addresses and different spellings of the same address) and one
/// request of every error outcome, asserting each answer.
async fn send_traffic(service: &TestService) -> Sent {
    let mut addresses: Vec<String> = (0..100).map(distinct_ip).collect();
    addresses.extend(
        [
            "::1",
            "0:0:0:0:0:0:0:1",
            "::ffff:10.0.0.5",
            "2001:db8::1",
            "2001:db8:0:0:0:0:0:1",
        ]
        .map(str::to_owned),
    );
    let mut accepted_addresses = addresses.clone();
    let mut requests = 0;
    let mut errors = 0;
    let mut lines_accepted = 0;

    for ip in &addresses[..20] {
        let r = post_json(service.ingest, &log_line(ip)).await;
        assert_eq!(r.status, 202, "{}", r.text());
        requests += 1;
        lines_accepted += 1;
    }
    // The rest in batches of 25, then everything once more as one batch.
    let batches = addresses[20..].chunks(25).chain([&addresses[..]]);
    for batch in batches {
        let body: String = batch.iter().map(|ip| log_line(ip) + "\n").collect();
        let r = post_ndjson(service.ingest, &body).await;
        assert_eq!(r.status, 202, "{}", r.text());
        assert_eq!(r.json()["accepted"], batch.len());
        requests += 1;
        lines_accepted += batch.len() as u64;
    }

    // One request of each error outcome.
    let bad_batch_ip = "10.200.0.1";
    accepted_addresses.push(bad_batch_ip.to_owned());
    lines_accepted += 1;
    let stalled = request_bytes(
        "POST",
        "/logs",
        &[
            ("Content-Type", "application/json"),
            ("Content-Length", "100"),
        ],
        br#"{"ip":"#,
    );
    let too_large = request_bytes(
        "POST",
        "/logs",
        &[
            ("Content-Type", "application/json"),
            ("Content-Length", "1073741824"),
        ],
        b"",
    );
    let failures = [
        (
            post_json(service.ingest, r#"{"ip":"not an address"}"#).await,
            400,
            "invalid_ip",
        ),
        (
            post_ndjson(
                service.ingest,
                &format!("{}\nnope\n", log_line(bad_batch_ip)),
            )
            .await,
            400,
            "invalid_lines",
        ),
        (
            send_raw(service.ingest, too_large).await,
            413,
            "payload_too_large",
        ),
        (
            post(service.ingest, "/logs", Some("text/plain"), b"x").await,
            415,
            "unsupported_media_type",
        ),
        (get(service.ingest, "/nope").await, 404, "not_found"),
        (
            get(service.ingest, "/logs").await,
            405,
            "method_not_allowed",
        ),
        (send_raw(service.ingest, stalled).await, 408, "body_timeout"),
    ];
    for (response, status, code) in &failures {
        response.expect_error(*status, code);
        requests += 1;
        errors += 1;
    }

    let distinct: HashSet<IpAddr> = accepted_addresses
        .iter()
        .map(|ip| ip.parse::<IpAddr>().unwrap().to_canonical())
        .collect();
    Sent {
        requests,
        errors,
        lines_accepted,
        distinct: distinct.len() as u64,
    }
}

/// The numbers the expressions are checked against.
struct Expected {
    distinct: f64,
    quota: f64,
    threshold: f64,
    error_ratio: f64,
}

/// A value a series must have.
#[derive(Debug, Clone, Copy)]
enum Want {
    /// This value (to 1e-9, relative).
    Eq(f64),
    /// Any finite value above zero.
    Positive,
}

impl Want {
    fn check(self, value: f64) -> Option<()> {
        let ok = match self {
            Self::Eq(want) => (value - want).abs() <= 1e-9 * want.abs().max(1.0),
            Self::Positive => value.is_finite() && value > 0.0,
        };
        ok.then_some(())
    }
}

/// What one expression must return.
#[derive(Debug, Clone)]
enum Expect {
    /// Nothing: an alert condition that does not hold, or an `absent()`
    /// guard whose series exists.
    Empty,
    /// Exactly one series, with this value.
    One(Want),
    /// One series per listed value of the label, and no other.
    By(&'static str, Vec<(String, Want)>),
}

impl Expect {
    fn check(&self, result: &[Sample]) -> Option<()> {
        match self {
            Self::Empty => result.is_empty().then_some(()),
            Self::One(want) => want.check(one_value(result)?),
            Self::By(label, wanted) => {
                let got: BTreeMap<&str, f64> = result
                    .iter()
                    .map(|s| Some((s.labels.get(*label)?.as_str()?, s.value)))
                    .collect::<Option<_>>()?;
                (got.len() == result.len() && got.len() == wanted.len()).then_some(())?;
                wanted
                    .iter()
                    .try_for_each(|(value, want)| want.check(*got.get(value.as_str())?))
            }
        }
    }
}

/// Every expression of the dashboard (`$job` = `uniqd`) and the rules, and
/// what it returns after [`send_traffic`]: one entry per line of
/// `deploy/extract_promql.py`.
fn expectations(x: &Expected) -> BTreeMap<String, Expect> {
    use Expect::{By, Empty, One};
    use Want::{Eq, Positive};
    let each = |label, values: &[&str], want| {
        By(
            label,
            values.iter().map(|v| (v.to_string(), want)).collect(),
        )
    };
    let outcomes = [
        "accepted",
        "bad_request",
        "payload_too_large",
        "unsupported_media_type",
        "not_found",
        "method_not_allowed",
        "request_timeout",
    ];
    let latency = |q| {
        format!("histogram_quantile({q}, sum by (le) (rate(uniqd_ingest_request_duration_seconds_bucket{{job=~\"uniqd\"}}[1m])))")
    };
    [
        // Dashboard: every panel has data, with the values the traffic implies.
        ("max(unique_ip_addresses{job=~\"uniqd\"})".to_owned(), One(Eq(x.distinct))),
        (
            "max by (phase) (uniqd_counter_phase{job=~\"uniqd\"}) == 1".to_owned(),
            each("phase", &["exact"], Eq(1.0)),
        ),
        (
            "max by (phase) (uniqd_counter_phase{job=~\"uniqd\"})".to_owned(),
            By("phase", vec![("exact".to_owned(), Eq(1.0)), ("sketch".to_owned(), Eq(0.0))]),
        ),
        ("max(uniqd_counter_relative_standard_error{job=~\"uniqd\"})".to_owned(), One(Eq(0.0))),
        ("uniqd:visitor_quota:ratio{job=~\"uniqd\"}".to_owned(), One(Eq(x.distinct / x.quota))),
        ("sum(up{job=~\"uniqd\"})".to_owned(), One(Eq(1.0))),
        ("count(up{job=~\"uniqd\"})".to_owned(), One(Eq(1.0))),
        (
            "count by (version) (uniqd_build_info{job=~\"uniqd\"})".to_owned(),
            each("version", &[uniqd::VERSION], Eq(1.0)),
        ),
        ("max(uniqd_counter_threshold{job=~\"uniqd\"})".to_owned(), One(Eq(x.threshold))),
        ("uniqd:visitor_quota".to_owned(), One(Eq(x.quota))),
        (
            "sum by (outcome) (rate(uniqd_ingest_requests_total{job=~\"uniqd\"}[1m]))".to_owned(),
            each("outcome", &outcomes, Positive),
        ),
        (
            "sum by (outcome) (rate(uniqd_ingest_lines_total{job=~\"uniqd\"}[1m]))".to_owned(),
            each("outcome", &["accepted", "invalid"], Positive),
        ),
        (
            "(sum(rate(uniqd_ingest_requests_total{job=~\"uniqd\",outcome!=\"accepted\"}[5m])) or vector(0)) / (sum(rate(uniqd_ingest_requests_total{job=~\"uniqd\"}[5m])) > 0)".to_owned(),
            One(Eq(x.error_ratio)),
        ),
        (latency("0.5"), One(Positive)),
        (latency("0.9"), One(Positive)),
        (latency("0.99"), One(Positive)),
        (
            "sum(rate(uniqd_ingest_request_duration_seconds_sum{job=~\"uniqd\"}[1m])) / (sum(rate(uniqd_ingest_request_duration_seconds_count{job=~\"uniqd\"}[1m])) > 0)".to_owned(),
            One(Positive),
        ),
        // Availability alerts: a healthy, present, fast target.
        ("up{job=\"uniqd\"} == 0".to_owned(), Empty),
        ("absent(up{job=\"uniqd\"})".to_owned(), Empty),
        ("scrape_duration_seconds{job=\"uniqd\"} > 0.5".to_owned(), Empty),
        // Ingest errors: the recording rule, and its alert, which holds (the
        // traffic has more than 5 % errors).
        (
            "sum by (job) (rate(uniqd_ingest_requests_total{job=\"uniqd\", outcome!=\"accepted\"}[5m])) / (sum by (job) (rate(uniqd_ingest_requests_total{job=\"uniqd\"}[5m])) > 0)".to_owned(),
            One(Eq(x.error_ratio)),
        ),
        ("uniqd:ingest_error_ratio:rate5m > 0.05".to_owned(), One(Eq(x.error_ratio))),
        // Visitor quota: recorded, far from every level, configured.
        ("max by (job) (unique_ip_addresses{job=\"uniqd\"})".to_owned(), One(Eq(x.distinct))),
        (
            "uniqd:unique_ip_addresses:max / on() group_left() uniqd:visitor_quota".to_owned(),
            One(Eq(x.distinct / x.quota)),
        ),
        ("uniqd:visitor_quota:ratio >= 0.8".to_owned(), Empty),
        ("uniqd:visitor_quota:ratio >= 0.9".to_owned(), Empty),
        ("uniqd:visitor_quota:ratio >= 1".to_owned(), Empty),
        ("absent(uniqd:visitor_quota)".to_owned(), Empty),
        (format!("vector({})", x.quota), One(Eq(x.quota))),
    ]
    .into_iter()
    .collect()
}

/// The expressions `deploy/extract_promql.py` prints, one per line.
fn extracted_promql() -> Vec<String> {
    let output = Command::new("python3")
        .arg(repo_path("deploy/extract_promql.py"))
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .unwrap_or_else(|e| panic!("cannot run python3 deploy/extract_promql.py: {e}"));
    assert!(
        output.status.success(),
        "deploy/extract_promql.py failed (it needs PyYAML): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).unwrap();
    let exprs: Vec<String> = text.lines().map(str::to_owned).collect();
    assert!(exprs.len() >= 10, "too few expressions: {text}");
    exprs
}

/// The visitor quota of `deploy/prometheus/quota.yml`
/// (`record: uniqd:visitor_quota`, `expr: vector(N)`).
fn shipped_visitor_quota() -> f64 {
    let quota = read_yaml("deploy/prometheus/quota.yml");
    let expr = rules(&quota)
        .find(|rule| rule["record"] == "uniqd:visitor_quota")
        .and_then(|rule| rule["expr"].as_str().map(str::to_owned))
        .expect("quota.yml records uniqd:visitor_quota");
    expr.trim()
        .strip_prefix("vector(")
        .and_then(|rest| rest.strip_suffix(')'))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("expected vector(N) for the quota, found {expr:?}"))
}

/// Every rule of a parsed rule file.
fn rules(file: &Json) -> impl Iterator<Item = &Json> {
    file["groups"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|group| group["rules"].as_array().into_iter().flatten())
}

/// The rule files the shipped `deploy/prometheus/prometheus.yml` loads, as
/// absolute paths.
fn shipped_rule_files() -> Vec<PathBuf> {
    let config = read_yaml("deploy/prometheus/prometheus.yml");
    let files: Vec<PathBuf> = config["rule_files"]
        .as_array()
        .expect("prometheus.yml has rule_files")
        .iter()
        .map(|f| {
            let path = repo_path("deploy/prometheus").join(f.as_str().expect("a path"));
            path.canonicalize()
                .unwrap_or_else(|e| panic!("rule file {}: {e}", path.display()))
        })
        .collect();
    assert!(!files.is_empty());
    files
}

/// One series of a query result.
#[derive(Debug)]
struct Sample {
    labels: serde_json::Map<String, Json>,
    value: f64,
}

/// The value of the only series, if there is exactly one.
fn one_value(result: &[Sample]) -> Option<f64> {
    match result {
        [only] => Some(only.value),
        _ => None,
    }
}

/// A directory under Cargo's temporary directory for integration tests,
/// removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(prefix: &str) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let path = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("{prefix}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A Prometheus server started by the test; killed on drop.
struct Prometheus {
    child: Child,
    addr: SocketAddr,
    dir: TempDir,
}

impl Prometheus {
    /// Starts Prometheus scraping `target` every second with the shipped
    /// rule files, and waits until it is ready. A port taken between
    /// choosing and binding it is retried with another.
    async fn start(target: SocketAddr) -> Self {
        let rule_files: Vec<String> = shipped_rule_files()
            .iter()
            .map(|p| {
                format!(
                    "  - {}\n",
                    serde_json::to_string(&p.to_string_lossy()).unwrap()
                )
            })
            .collect();
        let config = format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
             rule_files:\n{}\
             scrape_configs:\n  - job_name: uniqd\n    static_configs:\n      - targets: [\"{target}\"]\n",
            rule_files.concat()
        );
        let mut last_log = String::new();
        for _attempt in 0..3 {
            let dir = TempDir::new("prometheus");
            let config_file = dir.0.join("prometheus.yml");
            std::fs::write(&config_file, &config).unwrap();
            let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
            let log = File::create(dir.0.join("prometheus.log")).unwrap();
            let child = Command::new("prometheus")
                .arg(format!("--config.file={}", config_file.display()))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.0.join("data").display()
                ))
                .arg(format!("--web.listen-address={addr}"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .unwrap_or_else(|e| {
                    panic!(
                        "cannot run prometheus ({e}): install Debian's `prometheus` package \
                         (.ci/test does)"
                    )
                });
            let mut prometheus = Self { child, addr, dir };
            if prometheus.wait_ready().await {
                return prometheus;
            }
            last_log = prometheus.log();
            if !last_log.contains("address already in use") {
                break;
            }
        }
        panic!("Prometheus did not become ready; its log:\n{last_log}");
    }

    /// Polls `/-/ready` until 200; `false` if Prometheus exits first.
    async fn wait_ready(&mut self) -> bool {
        let deadline = Instant::now() + DEADLINE;
        while Instant::now() < deadline {
            if self.child.try_wait().unwrap().is_some() {
                return false;
            }
            if try_get(self.addr, "/-/ready")
                .await
                .is_some_and(|r| r.status == 200)
            {
                return true;
            }
            tokio::time::sleep(POLL).await;
        }
        panic!(
            "Prometheus not ready after {DEADLINE:?}; its log:\n{}",
            self.log()
        );
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.0.join("prometheus.log")).unwrap_or_default()
    }

    /// `GET path` on the API; returns `data` of a `"status": "success"`
    /// answer, or the error Prometheus reported.
    async fn api(&self, path: &str) -> Result<Json, String> {
        let response = try_get(self.addr, path)
            .await
            .ok_or_else(|| format!("Prometheus did not answer GET {path}"))?;
        let body: Json = serde_json::from_slice(&response.body)
            .map_err(|e| format!("GET {path}: {e}: {}", response.text()))?;
        if body["status"] == "success" {
            Ok(body["data"].clone())
        } else {
            Err(format!("GET {path}: {} {body}", response.status))
        }
    }

    /// Evaluates `expr` now (instant query).
    async fn query(&self, expr: &str) -> Result<Vec<Sample>, String> {
        let data = self
            .api(&format!("/api/v1/query?query={}", query_encode(expr)))
            .await?;
        let sample = |labels: &Json, value: &Json| -> Result<Sample, String> {
            let text = value[1].as_str().ok_or("no value")?;
            Ok(Sample {
                labels: labels.as_object().cloned().unwrap_or_default(),
                value: text.parse().map_err(|_| format!("bad value {text:?}"))?,
            })
        };
        match data["resultType"].as_str() {
            Some("vector") => data["result"]
                .as_array()
                .ok_or("no result")?
                .iter()
                .map(|s| sample(&s["metric"], &s["value"]))
                .collect(),
            Some("scalar") => Ok(vec![sample(&Json::Null, &data["result"])?]),
            other => Err(format!("unexpected result type {other:?}: {data}")),
        }
    }

    /// Re-evaluates `expr` until `check` accepts its result; fails at once
    /// if Prometheus rejects the expression, and after [`DEADLINE`]
    /// otherwise, showing the last result.
    async fn poll(&self, what: &str, expr: &str, check: impl Fn(&[Sample]) -> Option<()>) {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let result = self
                .query(expr)
                .await
                .unwrap_or_else(|e| panic!("{what}: Prometheus rejected {expr}: {e}"));
            if check(&result).is_some() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: still {result:?} after {DEADLINE:?}; Prometheus log:\n{}",
                self.log()
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// The only active target is `target`, job `uniqd`, scraped without error.
    async fn assert_target_healthy(&self, target: SocketAddr) {
        let data = self.api("/api/v1/targets?state=active").await.unwrap();
        let targets = data["activeTargets"].as_array().unwrap();
        assert_eq!(targets.len(), 1, "{data}");
        let t = &targets[0];
        assert_eq!(t["labels"]["job"], "uniqd", "{t}");
        assert_eq!(t["scrapeUrl"], format!("http://{target}/metrics"), "{t}");
        assert_eq!(t["health"], "up", "{t}");
        assert_eq!(t["lastError"], "", "{t}");
    }

    /// Every rule of the shipped files is loaded and has evaluated without
    /// error (polled: a rule is `unknown` until its first evaluation).
    async fn assert_rules_healthy(&self) {
        let mut shipped = BTreeSet::new();
        for file in shipped_rule_files() {
            let text = std::fs::read_to_string(&file).unwrap();
            let parsed: Json = serde_norway::from_str(&text).unwrap();
            for rule in rules(&parsed) {
                let name = rule.get("alert").or_else(|| rule.get("record")).unwrap();
                shipped.insert(name.as_str().unwrap().to_owned());
            }
        }
        let deadline = Instant::now() + DEADLINE;
        loop {
            let data = self.api("/api/v1/rules").await.unwrap();
            let mut loaded = BTreeSet::new();
            let mut unhealthy = Vec::new();
            for rule in data["groups"]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|g| g["rules"].as_array().unwrap())
            {
                loaded.insert(rule["name"].as_str().unwrap().to_owned());
                if rule["health"] != "ok" {
                    unhealthy.push(rule.clone());
                }
            }
            assert_eq!(
                loaded, shipped,
                "loaded rules differ from the shipped files"
            );
            if unhealthy.is_empty() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "rules not healthy after {DEADLINE:?}: {unhealthy:?}"
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits until the active alerts are exactly `expected` (name, state).
    async fn poll_alerts(&self, expected: &[(&str, &str)]) {
        let expected: BTreeSet<(String, String)> = expected
            .iter()
            .map(|(n, s)| ((*n).to_owned(), (*s).to_owned()))
            .collect();
        let deadline = Instant::now() + DEADLINE;
        loop {
            let data = self.api("/api/v1/alerts").await.unwrap();
            let active: BTreeSet<(String, String)> = data["alerts"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| {
                    let name = a["labels"]["alertname"].as_str().unwrap_or_default();
                    let state = a["state"].as_str().unwrap_or_default();
                    (name.to_owned(), state.to_owned())
                })
                .collect();
            if active == expected {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "active alerts {active:?}, expected {expected:?}"
            );
            tokio::time::sleep(POLL).await;
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback port that was free a moment ago.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port()
}

/// `GET path`, or `None` if nothing listens or no complete answer arrives
/// in time.
async fn try_get(addr: SocketAddr, path: &str) -> Option<HttpResponse> {
    let exchange = async {
        let stream = TcpStream::connect(addr).await.ok()?;
        let (mut reader, mut writer) = stream.into_split();
        tokio::io::AsyncWriteExt::write_all(&mut writer, &request_bytes("GET", path, &[], b""))
            .await
            .ok()?;
        read_response(&mut reader).await.ok()
    };
    tokio::time::timeout(DEADLINE, exchange)
        .await
        .ok()
        .flatten()
}
