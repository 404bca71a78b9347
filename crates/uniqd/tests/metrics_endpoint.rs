//! The metrics port: OpenMetrics validity (checked by Python's strict
//! parser) in both counter phases, the classic text format without an OpenMetrics
//! `Accept` (checked by `promtool check metrics`, zero complaints), the contracted metric names, scrape time,
//! `/healthz`, `/readyz`, 404 and 405, and the status page (`/`) with its
//! `/status.json`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Instant;

use common::*;

#[tokio::test]
async fn exposition_is_strict_openmetrics_with_the_contracted_names() {
    let service = TestService::start().await;
    // Exercise every family first: accepted, rejected lines, 404, 413.
    post_ndjson(service.ingest, &format!("{}\nnope\n", log_line("9.9.9.9"))).await;
    post_json(service.ingest, &log_line("::1")).await;
    get(service.ingest, "/nope").await;

    let text = service.scrape().await;
    assert_valid_openmetrics(&text);
    assert!(text.ends_with("# EOF\n"), "{text}");
    for expected in [
        "# TYPE unique_ip_addresses gauge\n",
        "\nunique_ip_addresses 2\n",
        "# HELP unique_ip_addresses ",
        "uniqd_estimator_phase{phase=\"exact\"} 1\n",
        "uniqd_estimator_phase{phase=\"sketch\"} 0\n",
        "# TYPE uniqd_estimator_relative_standard_error gauge\n",
        "uniqd_exact_threshold 4096\n",
        "# TYPE uniqd_ingest_requests counter\n",
        "uniqd_ingest_requests_total{outcome=\"accepted\"} 1\n",
        "uniqd_ingest_requests_total{outcome=\"bad_request\"} 1\n",
        "uniqd_ingest_requests_total{outcome=\"not_found\"} 1\n",
        "uniqd_ingest_requests_total{outcome=\"payload_too_large\"} 0\n",
        "uniqd_ingest_requests_total{outcome=\"unsupported_media_type\"} 0\n",
        "uniqd_ingest_requests_total{outcome=\"method_not_allowed\"} 0\n",
        "# TYPE uniqd_ingest_lines counter\n",
        "uniqd_ingest_lines_total{outcome=\"accepted\"} 2\n",
        "uniqd_ingest_lines_total{outcome=\"invalid\"} 1\n",
        "# TYPE uniqd_ingest_request_duration_seconds histogram\n",
        "uniqd_ingest_request_duration_seconds_bucket{le=\"+Inf\"} 3\n",
        "uniqd_ingest_request_duration_seconds_count 3\n",
        "# TYPE uniqd_build_info gauge\n",
        &format!("uniqd_build_info{{version=\"{}\"}} 1\n", uniqd::VERSION),
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
    service.stop().await;
}

#[tokio::test]
async fn sketch_phase_exposition_is_valid_too() {
    let config = uniqd::AppConfig {
        exact_threshold: 10,
        ..uniqd::AppConfig::default()
    };
    let service = TestService::start_with(config).await;
    let body: String = (0..100).map(|i| log_line(&distinct_ip(i)) + "\n").collect();
    assert_eq!(post_ndjson(service.ingest, &body).await.status, 202);
    let text = service.scrape().await;
    assert_valid_openmetrics(&text);
    assert!(
        text.contains("uniqd_estimator_phase{phase=\"sketch\"} 1\n"),
        "{text}"
    );
    assert!(text.contains("uniqd_exact_threshold 10\n"), "{text}");
    let rse = sample_value(&text, "uniqd_estimator_relative_standard_error").unwrap();
    assert!(rse > 0.0 && rse < 0.01, "{rse}");
    service.stop().await;
}

/// Without an OpenMetrics `Accept` (curl, promtool, older agents, Python's classic parser),
/// `/metrics` answers the classic text format 0.0.4, which `promtool check metrics` passes
/// without a single complaint, in both counter phases.
#[tokio::test]
async fn classic_text_format_without_openmetrics_accept_and_promtool_is_silent() {
    let config = uniqd::AppConfig {
        exact_threshold: 10,
        ..uniqd::AppConfig::default()
    };
    let service = TestService::start_with(config).await;
    post_ndjson(service.ingest, &format!("{}\nnope\n", log_line("9.9.9.9"))).await;
    get(service.ingest, "/nope").await;

    for accept in [
        None,
        Some("*/*"),
        Some("text/plain"),
        Some("text/plain;version=0.0.4"),
    ] {
        let headers: Vec<(&str, &str)> = accept.iter().map(|a| ("Accept", *a)).collect();
        let r = send_raw(
            service.metrics,
            request_bytes("GET", "/metrics", &headers, b""),
        )
        .await;
        assert_eq!(r.status, 200, "{accept:?}");
        assert_eq!(
            r.header("content-type"),
            Some("text/plain; version=0.0.4; charset=utf-8"),
            "{accept:?}"
        );
        assert_eq!(r.header("vary"), Some("Accept"));
        let text = r.text();
        assert!(!text.contains("# EOF"), "{text}");
        assert!(!text.contains("# UNIT"), "{text}");
        for expected in [
            "# TYPE unique_ip_addresses gauge\nunique_ip_addresses 1\n",
            "# TYPE uniqd_ingest_requests_total counter\n",
            "uniqd_ingest_requests_total{outcome=\"bad_request\"} 1\n",
            "# HELP uniqd_ingest_lines_total ",
            "# TYPE uniqd_ingest_lines_total counter\n",
            "uniqd_ingest_lines_total{outcome=\"invalid\"} 1\n",
            "# TYPE uniqd_ingest_request_duration_seconds histogram\n",
            "uniqd_estimator_phase{phase=\"exact\"} 1\n",
            "uniqd_exact_threshold 10\n",
            // The process metrics, as the official clients name them (Linux: from /proc).
            "# TYPE process_cpu_seconds_total counter\n",
            "# TYPE process_resident_memory_bytes gauge\n",
            "# TYPE process_virtual_memory_bytes gauge\n",
            "# TYPE process_open_fds gauge\n",
            "# TYPE process_max_fds gauge\n",
            "# TYPE process_start_time_seconds gauge\n",
        ] {
            assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
        }
        assert_promtool_clean(&text);
    }

    // The sketch phase too.
    let body: String = (0..100).map(|i| log_line(&distinct_ip(i)) + "\n").collect();
    assert_eq!(post_ndjson(service.ingest, &body).await.status, 202);
    let text = get(service.metrics, "/metrics").await.text();
    assert!(
        text.contains("uniqd_estimator_phase{phase=\"sketch\"} 1\n"),
        "{text}"
    );
    assert_promtool_clean(&text);

    // Prometheus's own header gets OpenMetrics.
    let r = get_openmetrics(service.metrics).await;
    assert_eq!(
        r.header("content-type"),
        Some("application/openmetrics-text; version=1.0.0; charset=utf-8")
    );
    assert_eq!(r.header("vary"), Some("Accept"));
    assert_valid_openmetrics(&r.text());
    service.stop().await;
}

#[tokio::test]
async fn scrape_is_fast() {
    let service = TestService::start().await;
    // Warm up the connection path, then time the server side of a scrape:
    // the whole round trip over loopback, which bounds it from above.
    service.scrape().await;
    let mut best = std::time::Duration::MAX;
    for _ in 0..20 {
        let started = Instant::now();
        service.scrape().await;
        best = best.min(started.elapsed());
    }
    // Generous for a debug build on a shared machine; release is ~100 µs.
    assert!(best.as_millis() < 50, "fastest scrape took {best:?}");
    service.stop().await;
}

#[tokio::test]
async fn health_readiness_and_unknown_paths() {
    let service = TestService::start().await;
    let r = get(service.metrics, "/healthz").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), serde_json::json!({"status": "ok"}));

    let r = get(service.metrics, "/readyz").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["status"], "ready");

    get(service.metrics, "/nope")
        .await
        .expect_error(404, "not_found");
    let r = send_raw(
        service.metrics,
        request_bytes("POST", "/metrics", &[("Content-Length", "0")], b""),
    )
    .await;
    r.expect_error(405, "method_not_allowed");
    assert_eq!(r.header("allow"), Some("GET, HEAD"));
    service.stop().await;
}

#[tokio::test]
async fn status_page_and_its_json() {
    let service = TestService::start().await;
    let body: String = ["1.2.3.4", "::1", "0:0:0:0:0:0:0:1", "bad"]
        .iter()
        .map(|ip| log_line(ip) + "\n")
        .collect();
    post_ndjson(service.ingest, &body)
        .await
        .expect_error(400, "invalid_lines");
    post_json(service.ingest, &log_line("5.6.7.8")).await;

    let page = get(service.metrics, "/").await;
    assert_eq!(page.status, 200);
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    let csp = page.header("content-security-policy").unwrap();
    assert!(csp.starts_with("default-src 'none';"), "{csp}");
    assert!(page.text().contains("<title>uniqd status</title>"));

    let status = get(service.metrics, "/status.json").await;
    assert_eq!(status.header("cache-control"), Some("no-store"));
    let json = status.json();
    assert_eq!(json["unique_ip_addresses"], 3, "{json}");
    assert_eq!(json["phase"], "exact");
    assert_eq!(json["relative_standard_error"], 0);
    assert_eq!(json["threshold"], 4096);
    assert_eq!(json["ingest_requests_total"], 2);
    assert_eq!(json["ingest_requests_accepted_total"], 1);
    assert_eq!(json["ingest_lines_accepted_total"], 4);
    assert_eq!(json["ingest_lines_invalid_total"], 1);
    // The configured windows (the default ones), which the page then reads one by one.
    assert_eq!(json["windows"], serde_json::json!(["5m", "1h", "24h"]));
    assert_eq!(json["version"], uniqd::VERSION);
    assert!(json["uptime_ms"].is_u64(), "{json}");

    let r = send_raw(
        service.metrics,
        request_bytes("DELETE", "/status.json", &[], b""),
    )
    .await;
    r.expect_error(405, "method_not_allowed");
    service.stop().await;
}
