//! The built `uniqd` binary as a black box: flags, the structured startup
//! log line, serving, and a clean exit 0 on SIGTERM after draining.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;

use common::*;

const BIN: &str = env!("CARGO_BIN_EXE_uniqd");

/// A running `uniqd` process with its addresses parsed from the startup log.
struct Process {
    child: Child,
    ingest: SocketAddr,
    metrics: SocketAddr,
    /// Every stderr line after startup (collected by a reader thread).
    log: mpsc::Receiver<String>,
}

impl Process {
    fn spawn(extra: &[&str]) -> Self {
        let mut child = Command::new(BIN)
            .args([
                "--listen",
                "127.0.0.1:0",
                "--metrics-listen",
                "127.0.0.1:0",
                "--log-format",
                "json",
                "--workers",
                "2",
            ])
            .args(extra)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn uniqd");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        // Wait for the structured "uniqd listening" line.
        let listening = loop {
            let line = rx
                .recv_timeout(DEADLINE)
                .expect("uniqd exited or did not log its addresses in time");
            let json: serde_json::Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("log line is not JSON ({e}): {line}"));
            if json["message"] == "uniqd listening" {
                break json;
            }
        };
        assert_eq!(listening["level"], "INFO", "{listening}");
        let addr = |field: &str| -> SocketAddr {
            listening[field]
                .as_str()
                .unwrap_or_else(|| panic!("no {field} in {listening}"))
                .parse()
                .unwrap()
        };
        Self {
            ingest: addr("ingest_addr"),
            metrics: addr("metrics_addr"),
            child,
            log: rx,
        }
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([format!("-{name}"), self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success());
    }

    /// Waits for the process to exit (on a helper thread, with a deadline).
    fn wait(self) -> (ExitStatus, Vec<String>) {
        let Self { mut child, log, .. } = self;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(child.wait());
        });
        let status = rx
            .recv_timeout(DEADLINE)
            .expect("uniqd did not exit in time")
            .expect("wait for uniqd");
        // The process is gone, but the reader thread may still be forwarding its last
        // lines: read until it reaches end of file and drops its sender.
        let deadline = std::time::Instant::now() + DEADLINE;
        let mut lines = Vec::new();
        loop {
            match log.recv_timeout(deadline.saturating_duration_since(std::time::Instant::now())) {
                Ok(line) => lines.push(line),
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Err(mpsc::RecvTimeoutError::Timeout) => panic!("stderr still open after exit"),
            }
        }
        (status, lines)
    }
}

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

    let r = get(process.metrics, "/metrics").await;
    assert_eq!(r.status, 200);
    let text = r.text();
    assert_valid_openmetrics(&text);
    assert_eq!(
        sample_value(&text, "unique_ip_addresses"),
        Some(11.0),
        "{text}"
    );
    assert_eq!(sample_value(&text, "uniqd_counter_threshold"), Some(1000.0));
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
