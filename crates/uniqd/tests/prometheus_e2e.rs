//! uniqd scraped by a real Prometheus (Debian's `prometheus`, which `.ci/test`
//! installs): the count arrives, the target is healthy, the shipped rule
//! files load and evaluate, and every PromQL expression of the Grafana
//! dashboard and the alert rules, as `deploy/extract_promql.py` lists them,
//! parses and returns what it should under a known mix of traffic.
//!
//! uniqd shares its count through a real `redis-server` (`--redis-url`), so
//! the dashboard's scale-out panels have data too; with one replica the
//! global count is the local one. It saves a state file too, so that the
//! `uniqd_state_*` series the state file alert reads exist.
//!
//! Prometheus runs on a free loopback port with a generated config (scrape
//! and rule evaluation every second, the rule files of the shipped
//! `deploy/prometheus/prometheus.yml`) and its own storage directory; it is
//! killed and its directory removed when the test ends, passing or not.
//! Every wait polls Prometheus' HTTP API until a deadline.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "prometheus_e2e/expectations.rs"]
mod expectations;
#[path = "prometheus_e2e/server.rs"]
mod server;

use std::collections::{BTreeSet, HashSet};
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use common::*;
use expectations::{expectations, Expect, Expected};
use serde_json::Value as Json;
use server::{one_value, Prometheus};
use uniqd::RedisConfig;
use uniqd_testkit::redis::RedisServer;

/// The body-read timeout of the service under test, short so that a
/// stalled request (outcome `request_timeout`) is quick to produce.
const BODY_READ_TIMEOUT: Duration = Duration::from_millis(200);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_prometheus_scrapes_uniqd_and_evaluates_the_dashboard_and_rules() {
    let redis = RedisServer::start();
    // With a state file, so that the uniqd_state_* series the alerts use exist.
    let state_dir = TempDir::new("prometheus-e2e");
    let mut config = uniqd::AppConfig {
        redis: Some(RedisConfig::new(redis.url())),
        state: Some(uniqd::persistence::StateConfig {
            path: state_dir.join("uniqd.state"),
            interval: Duration::from_secs(1),
            reset_on_error: false,
            drop_windows: false,
        }),
        // Per-group counts on, grouped by the one url the traffic uses, so that the groups
        // table and the example group quota alert have data.
        groups: Some(uniqd::GroupsConfig::by("url")),
        ..uniqd::AppConfig::default()
    };
    config.ingest.server.body_read_timeout = BODY_READ_TIMEOUT;
    let threshold = config.exact_threshold;
    let service = TestService::start_with(config).await;
    let rule_files = shipped_rule_files();
    let prometheus = Prometheus::start(service.metrics, &rule_files).await;

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
        // Every accepted line carries `"url":"/a?b=c"`, counted as path `/a`.
        page_requests: sent.lines_accepted as f64,
    });
    let extracted = extracted_promql();
    let documented: BTreeSet<&str> = expectations.keys().map(String::as_str).collect();
    let listed: BTreeSet<&str> = extracted.iter().map(String::as_str).collect();
    assert_eq!(
        listed, documented,
        "deploy/extract_promql.py and this test's expectations list different expressions: \
         give every new dashboard or rule expression an expectation in prometheus_e2e/expectations.rs"
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

    // The series UniqdStateSaveFailing reads exist under the names the rule uses (an
    // empty alert expression alone would not tell a typo from a healthy replica).
    prometheus
        .poll(
            "no failed state file save",
            "uniqd_state_save_failures_total{job=\"uniqd\"}",
            |r| one_value(r).filter(|&v| v == 0.0).map(drop),
        )
        .await;
    prometheus
        .poll(
            "a recent good state file save",
            "time() - uniqd_state_last_save_timestamp_seconds{job=\"uniqd\"}",
            |r| {
                one_value(r)
                    .filter(|&v| (-5.0..60.0).contains(&v))
                    .map(drop)
            },
        )
        .await;

    prometheus
        .assert_rules_healthy(&rule_names(&rule_files))
        .await;
    // The only alert condition this traffic meets; its `for: 5m` keeps it
    // pending for the length of the test.
    prometheus
        .poll_alerts(&[("UniqdIngestErrorRatioHigh", "pending")])
        .await;

    drop(prometheus);
    service.stop().await;
    drop(redis);
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
            post(service.ingest, "/logs", Some("text/csv"), b"x").await,
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

/// The alert and record names of the rule files.
fn rule_names(files: &[PathBuf]) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for file in files {
        for rule in rules(&read_yaml(file)) {
            let name = rule.get("alert").or_else(|| rule.get("record"));
            names.insert(name.and_then(Json::as_str).unwrap().to_owned());
        }
    }
    names
}
