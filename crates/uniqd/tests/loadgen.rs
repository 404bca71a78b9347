//! `uniqd loadgen` against the real service: what it sends is what uniqd counts, in single
//! and batch mode, and failures are reported rather than hidden.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use clap::Parser as _;
use common::*;
use uniqd::loadgen::{self, LoadgenArgs};
use uniqd::{Cli, Command};

/// The flags as a user would type them after `uniqd loadgen`.
fn args(flags: &[&str]) -> LoadgenArgs {
    let cli = Cli::try_parse_from(["uniqd", "loadgen"].iter().chain(flags)).unwrap();
    match cli.command {
        Some(Command::Loadgen(args)) => args,
        other => panic!("parsed as {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_and_batch_runs_are_counted_exactly_below_the_threshold() {
    let service = TestService::start().await;
    let url = format!("http://{}/logs", service.ingest);
    let metrics_url = format!("http://{}/metrics", service.metrics);

    let single = loadgen::run(&args(&[
        "--url",
        &url,
        "--metrics-url",
        &metrics_url,
        "--addresses",
        "1500",
        "--logs",
        "3000",
        "--concurrency",
        "8",
        "--quiet",
    ]))
    .await
    .unwrap();
    assert_eq!(single.requests_ok, 3000);
    assert_eq!(single.requests_failed, 0);
    assert_eq!(single.logs_accepted, 3000);
    assert_eq!(single.distinct, 1500);
    assert_eq!(single.estimate, Some(1500.0));
    assert_eq!(single.before, Some(0.0));
    assert_eq!(single.contribution(), Some(1500.0));
    assert!(!single.shared_with_other_traffic());
    assert_eq!(single.relative_error(), Some(0.0));
    assert_eq!(single.latency.len(), 3000);

    // Disjoint from the first run through --offset: the count adds up.
    let batch = loadgen::run(&args(&[
        "--url",
        &url,
        "--metrics-url",
        &metrics_url,
        "--addresses",
        "2000",
        "--offset",
        "1500",
        "--mode",
        "batch",
        "--batch-lines",
        "300",
        "--concurrency",
        "3",
        "--quiet",
    ]))
    .await
    .unwrap();
    assert_eq!(batch.requests_ok, 7, "2000 logs in bodies of 300");
    assert_eq!(batch.logs_accepted, 2000);
    assert_eq!(batch.estimate, Some(3500.0));
    // Its own contribution, not the deployment's count, is measured against what it sent.
    assert_eq!(batch.before, Some(1500.0));
    assert_eq!(batch.contribution(), Some(2000.0));
    assert_eq!(batch.relative_error(), Some(0.0));
    assert!(batch.shared_with_other_traffic());
    assert_eq!(service.unique().await, 3500);

    let mut report = Vec::new();
    batch.write_report(&mut report).unwrap();
    let report = String::from_utf8(report).unwrap();
    assert!(
        report.contains("sent distinct addresses  2000\n"),
        "{report}"
    );
    assert!(
        report.contains("reported estimate        3500\n"),
        "{report}"
    );
    assert!(
        report.contains("count before the run     1500\n"),
        "{report}"
    );
    assert!(
        report.contains("this run's contribution  2000\n"),
        "{report}"
    );
    assert!(
        report.contains("relative error           +0.000%\n"),
        "{report}"
    );
    assert!(
        report.contains("note                     the deployment had counted addresses"),
        "{report}"
    );
    // No --page-url: the runs sent no url field, so no page was counted.
    let stats = get(service.metrics, "/stats").await;
    assert_eq!(stats.status, 200, "{}", stats.text());
    assert_eq!(
        stats.json()["pages"],
        serde_json::json!([]),
        "{}",
        stats.text()
    );
    service.stop().await;
}

#[tokio::test]
async fn a_rate_limit_paces_the_requests() {
    let service = TestService::start().await;
    let summary = loadgen::run(&args(&[
        "--url",
        &format!("http://{}/logs", service.ingest),
        "--metrics-url",
        "",
        "--addresses",
        "21",
        "--rate",
        "100",
        "--concurrency",
        "4",
        "--quiet",
    ]))
    .await
    .unwrap();
    // 21 requests at 100/s: the last one is due 200 ms after the start.
    assert!(
        summary.elapsed >= Duration::from_millis(200),
        "{:?}",
        summary.elapsed
    );
    assert_eq!(summary.requests_ok, 21);
    assert_eq!(summary.estimate, None);
    service.stop().await;
}

#[tokio::test]
async fn failures_are_counted_and_named() {
    let service = TestService::start().await;
    // The metrics port has no /logs: 404.
    let summary = loadgen::run(&args(&[
        "--url",
        &format!("http://{}/logs", service.metrics),
        "--metrics-url",
        "",
        "--addresses",
        "5",
        "--concurrency",
        "2",
        "--quiet",
    ]))
    .await
    .unwrap();
    assert_eq!(summary.requests_failed, 5);
    assert_eq!(summary.requests_ok, 0);
    assert_eq!(summary.first_error.as_deref(), Some("HTTP status 404"));
    service.stop().await;

    // Nothing listens any more: connection errors, not a hang.
    let summary = loadgen::run(&args(&[
        "--url",
        &format!("http://{}/logs", service_addr_gone()),
        "--metrics-url",
        "",
        "--addresses",
        "3",
        "--concurrency",
        "1",
        "--timeout",
        "2s",
        "--quiet",
    ]))
    .await
    .unwrap();
    assert_eq!(summary.requests_failed, 3);
    assert!(summary.first_error.is_some());
}

/// A loopback address with nothing listening: bind port 0, then close it.
fn service_addr_gone() -> std::net::SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

#[test]
fn the_compose_traffic_command_parses_with_uniqds_own_flags() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../deploy/compose/docker-compose.yml"
    );
    let compose: serde_norway::Value =
        serde_norway::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let command: Vec<&str> = compose["services"]["traffic"]["command"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(command[0], "loadgen");
    let parsed = args(&command[1..]);
    assert_eq!(parsed.url, "http://uniqd:5000/logs");
    assert_eq!(parsed.metrics_url, "http://uniqd:9102/metrics");
    assert_eq!(parsed.addresses, 1_000_000);
}
