//! The built `uniqd` binary as a black box: flags and their environment
//! variables (help, bad values, unbindable addresses), the structured startup
//! log line, serving, and a clean exit 0 on SIGTERM or SIGINT after draining.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;

use common::process::{Process, BIN};
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_counts_and_exits_zero_on_sigterm() {
    let process = Process::spawn(&["--exact-threshold", "1000"]);

    for i in 0..30 {
        let ip = format!("192.0.2.{}", i % 10);
        let r = post_json(process.ingest, &log_line(&ip)).await;
        assert_eq!(r.status, 202, "{}", r.text());
    }
    let body: String = ["::1", "0:0:0:0:0:0:0:1", "::ffff:192.0.2.1"]
        .iter()
        .map(|ip| log_line(ip) + "\n")
        .collect();
    assert_eq!(post_ndjson(process.ingest, &body).await.status, 202);
    post(
        process.ingest,
        "/logs",
        Some("application/x-www-form-urlencoded"),
        b"ip=1.2.3.4",
    )
    .await
    .expect_error(415, "unsupported_media_type");

    let r = get_openmetrics(process.metrics).await;
    assert_eq!(r.status, 200);
    let text = r.text();
    assert_valid_openmetrics(&text);
    assert_eq!(
        sample_value(&text, "unique_ip_addresses"),
        Some(11.0),
        "{text}"
    );
    assert_eq!(sample_value(&text, "uniqd_exact_threshold"), Some(1000.0));
    assert_eq!(get(process.metrics, "/healthz").await.status, 200);

    // The container health check, as the Dockerfile runs it.
    let healthcheck = |path: &str| {
        Command::new(BIN)
            .args([
                "healthcheck",
                "--url",
                &format!("http://{}{path}", process.metrics),
            ])
            .output()
            .unwrap()
    };
    let healthy = healthcheck("/healthz");
    assert!(healthy.status.success(), "{healthy:?}");
    let missing = healthcheck("/nope");
    assert_eq!(missing.status.code(), Some(1), "{missing:?}");
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("404"),
        "{missing:?}"
    );
    // The same from UNIQD_HEALTHCHECK_URL / UNIQD_HEALTHCHECK_TIMEOUT (no flags).
    let from_env = |path: &str| {
        Command::new(BIN)
            .arg("healthcheck")
            .env(
                "UNIQD_HEALTHCHECK_URL",
                format!("http://{}{path}", process.metrics),
            )
            .env("UNIQD_HEALTHCHECK_TIMEOUT", "5s")
            .output()
            .unwrap()
    };
    let healthy = from_env("/healthz");
    assert!(healthy.status.success(), "{healthy:?}");
    let missing = from_env("/nope");
    assert_eq!(missing.status.code(), Some(1), "{missing:?}");
    let bad_timeout = Command::new(BIN)
        .arg("healthcheck")
        .env("UNIQD_HEALTHCHECK_TIMEOUT", "soon")
        .output()
        .unwrap();
    assert_eq!(bad_timeout.status.code(), Some(2), "{bad_timeout:?}");

    process.signal("TERM");
    let (status, log) = process.wait();
    assert!(status.success(), "exit status {status:?}; log: {log:#?}");
    assert!(
        log.iter()
            .any(|l| l.contains("shutdown signal received") && l.contains("SIGTERM")),
        "{log:#?}"
    );
    // No per-request logging at info level: 34 requests, yet only the
    // lifecycle lines (signal, two servers stopping, shutdown complete).
    let info_lines = log
        .iter()
        .filter(|l| l.contains("\"level\":\"INFO\""))
        .count();
    assert!(info_lines <= 5, "{log:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_also_drains_and_exits_zero() {
    let process = Process::spawn(&[]);
    assert_eq!(
        post_json(process.ingest, &log_line("1.2.3.4")).await.status,
        202
    );
    process.signal("INT");
    let (status, log) = process.wait();
    assert!(status.success(), "exit status {status:?}; log: {log:#?}");
}

#[test]
fn help_documents_every_flag_with_its_env_var() {
    let output = Command::new(BIN).arg("--help").output().unwrap();
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for (flag, env) in [
        ("--listen", "UNIQD_LISTEN"),
        ("--metrics-listen", "UNIQD_METRICS_LISTEN"),
        ("--exact-threshold", "UNIQD_EXACT_THRESHOLD"),
        ("--max-object-size", "UNIQD_MAX_OBJECT_SIZE"),
        ("--max-batch-size", "UNIQD_MAX_BATCH_SIZE"),
        ("--max-header-size", "UNIQD_MAX_HEADER_SIZE"),
        ("--header-read-timeout", "UNIQD_HEADER_READ_TIMEOUT"),
        ("--body-read-timeout", "UNIQD_BODY_READ_TIMEOUT"),
        ("--idle-timeout", "UNIQD_IDLE_TIMEOUT"),
        ("--drain-timeout", "UNIQD_DRAIN_TIMEOUT"),
        ("--max-connections", "UNIQD_MAX_CONNECTIONS"),
        ("--workers", "UNIQD_WORKERS"),
        ("--log-format", "UNIQD_LOG_FORMAT"),
        ("--log-level", "UNIQD_LOG_LEVEL"),
        ("--state-file", "UNIQD_STATE_FILE"),
        ("--state-interval", "UNIQD_STATE_INTERVAL"),
        ("--state-reset-on-error", "UNIQD_STATE_RESET_ON_ERROR"),
        ("--ingest-token", "UNIQD_INGEST_TOKEN"),
        ("--ingest-token-file", "UNIQD_INGEST_TOKEN_FILE"),
        ("--metrics-token", "UNIQD_METRICS_TOKEN"),
        ("--metrics-token-file", "UNIQD_METRICS_TOKEN_FILE"),
    ] {
        assert!(help.contains(flag), "{flag} missing from --help:\n{help}");
        assert!(help.contains(env), "{env} missing from --help:\n{help}");
    }
}

#[test]
fn bad_flags_and_unbindable_addresses_fail() {
    let output = Command::new(BIN)
        .args(["--listen", "not-an-address"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{output:?}");

    // An address already in use: exit 1 with a message naming it.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let output = Command::new(BIN)
        .args(["--listen", &addr, "--metrics-listen", "127.0.0.1:0"])
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(&addr), "{stderr}");
}

#[test]
fn env_vars_configure_the_service() {
    let output = Command::new(BIN)
        .arg("--help")
        .env("UNIQD_EXACT_THRESHOLD", "77")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(help.contains("UNIQD_EXACT_THRESHOLD=77"), "{help}");
    let output = Command::new(BIN)
        .env("UNIQD_EXACT_THRESHOLD", "not-a-number")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{output:?}");
}
