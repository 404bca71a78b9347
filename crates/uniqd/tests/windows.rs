//! Time windows end to end: accepted logs reach `unique_ip_addresses_window{window}` on
//! `/metrics`, `GET /api/v1/unique?window=` and `GET /api/v1/unique/series`, counted at the
//! log's own timestamp when it is within the skew and at arrival otherwise; bad parameters get
//! 400 JSON errors; `--windows off` turns it all off (404); the metrics token guards the
//! endpoints like `/stats`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use serde_json::Value as Json;
use uniqd::AppConfig;

const MINUTE_MS: u64 = 60_000;

/// `ms` (Unix milliseconds) as RFC 3339 UTC with milliseconds, e.g. `2027-01-15T08:00:00.000Z`.
fn rfc3339(ms: u64) -> String {
    let (year, month, day, rest) = civil_utc(ms);
    let (h, m, s, milli) = (
        rest / 3_600_000,
        rest / 60_000 % 60,
        rest / 1_000 % 60,
        rest % 1_000,
    );
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{milli:03}Z")
}

#[test]
fn rfc3339_round_trips_through_the_service_parser() {
    for ms in [
        0,
        1_593_012_420_123,
        1_709_164_800_000,
        1_800_000_000_000,
        now_ms(),
    ] {
        assert_eq!(
            uniqd_ingest::fields::timestamp::parse_rfc3339_ms(&rfc3339(ms)),
            Some(ms),
            "{}",
            rfc3339(ms)
        );
    }
}

/// `GET path` on the metrics port as JSON, asserting 200 and `Cache-Control: no-store`.
async fn get_json(service: &TestService, path: &str) -> Json {
    let response = get(service.metrics, path).await;
    assert_eq!(response.status, 200, "{path}: {}", response.text());
    assert_eq!(response.header("cache-control"), Some("no-store"), "{path}");
    response.json()
}

/// `(start_ms, unique_ip_addresses)` of each point of a series, checking the shape: aligned,
/// contiguous steps of `step_ms`, each exact here, the last one containing `now_ms`.
fn points(series: &Json, step_ms: u64) -> Vec<(u64, u64)> {
    let now = series["now_ms"].as_u64().expect("now_ms");
    let points: Vec<(u64, u64)> = series["points"]
        .as_array()
        .expect("points")
        .iter()
        .map(|p| {
            assert_eq!(p["exact"], true, "{p}");
            assert_eq!(p["relative_standard_error"], 0, "{p}");
            (
                p["start_ms"].as_u64().expect("start_ms"),
                p["unique_ip_addresses"].as_u64().expect("count"),
            )
        })
        .collect();
    for pair in points.windows(2) {
        assert_eq!(pair[1].0 - pair[0].0, step_ms, "{series}");
    }
    let last = points.last().expect("at least one point").0;
    assert!(
        last.is_multiple_of(step_ms) && (last..last + step_ms).contains(&now),
        "{series}"
    );
    points
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn windows_reach_the_gauges_and_the_api() {
    let service = TestService::start().await;
    let ingest = service.ingest;
    let before = now_ms();
    // Six distinct addresses at arrival: no timestamp, one too old for the 5m skew, one in
    // the future, one that is not RFC 3339, and an NDJSON batch (duplicates and spellings).
    for body in [
        r#"{"ip":"10.0.0.1"}"#.to_owned(),
        format!(
            r#"{{"ip":"10.0.0.2","timestamp":"{}"}}"#,
            rfc3339(before - 10 * MINUTE_MS)
        ),
        format!(
            r#"{{"ip":"10.0.0.3","timestamp":"{}"}}"#,
            rfc3339(before + 10 * MINUTE_MS)
        ),
        r#"{"ip":"10.0.0.4","timestamp":"yesterday"}"#.to_owned(),
    ] {
        assert_eq!(post_json(ingest, &body).await.status, 202, "{body}");
    }
    let batch = "{\"ip\":\"::1\"}\n{\"ip\":\"0:0:0:0:0:0:0:1\"}\n{\"ip\":\"10.0.0.1\"}\n{\"ip\":\"::ffff:10.0.0.5\"}\n";
    assert_eq!(post_ndjson(ingest, batch).await.status, 202);
    // One more, 3 minutes back and within the skew: counted in that minute.
    let three_back = before - 3 * MINUTE_MS;
    let body = format!(
        r#"{{"ip":"10.0.0.9","timestamp":"{}"}}"#,
        rfc3339(three_back)
    );
    assert_eq!(post_json(ingest, &body).await.status, 202);
    let after = now_ms();
    let distinct: u64 = 7;

    let text = service.scrape().await;
    assert_valid_openmetrics(&text);
    assert!(
        text.contains("# TYPE unique_ip_addresses_window gauge\n"),
        "{text}"
    );
    for window in ["5m", "1h", "24h"] {
        let sample = format!("unique_ip_addresses_window{{window=\"{window}\"}}");
        assert_eq!(
            sample_value(&text, &sample),
            Some(distinct as f64),
            "{text}"
        );
    }
    assert_eq!(
        text.matches("unique_ip_addresses_window{").count(),
        3,
        "{text}"
    );

    let body = get_json(&service, "/api/v1/unique?window=15m").await;
    let answered = body["now_ms"].as_u64().expect("now_ms");
    assert!((before..=now_ms()).contains(&answered), "{body}");
    assert_eq!(
        body,
        serde_json::json!({
            "window": "15m", "unique_ip_addresses": distinct, "exact": true,
            "relative_standard_error": 0, "now_ms": answered, "scope": "local",
        })
    );
    // Canonical spelling: 60m is 1h, 1d is 24h.
    assert_eq!(
        get_json(&service, "/api/v1/unique?window=60m").await["window"],
        "1h"
    );
    let day = get_json(&service, "/api/v1/unique?x=1&window=1d").await;
    assert_eq!(
        (&day["window"], &day["unique_ip_addresses"]),
        (&"24h".into(), &distinct.into())
    );
    // The address 3 minutes back is not in the last minute (unless the test straddled more
    // than two minutes, which the deadline rules out).
    let last_minute = get_json(&service, "/api/v1/unique?window=1m").await;
    assert!(
        last_minute["unique_ip_addresses"].as_u64().unwrap() < distinct,
        "{last_minute}"
    );

    // Per minute: the backdated address alone in its minute; the others in the minutes of
    // the test; nothing anywhere else.
    let series = get_json(&service, "/api/v1/unique/series?lookback=15m&step=1m").await;
    assert_eq!(
        (&series["lookback"], &series["step"]),
        (&"15m".into(), &"1m".into())
    );
    let minutes = points(&series, MINUTE_MS);
    assert_eq!(minutes.len(), 15, "{series}");
    let minute_of = |ms: u64| ms - ms % MINUTE_MS;
    let mut at_arrival = 0;
    for &(start, count) in &minutes {
        if start == minute_of(three_back) {
            assert_eq!(count, 1, "{series}");
        } else if (minute_of(before)..=after).contains(&start) {
            assert!(count < distinct, "{series}");
            at_arrival += count;
        } else {
            assert_eq!(count, 0, "{series}");
        }
    }
    assert!(at_arrival >= distinct - 1, "{series}");

    // Per hour over a day: 24 points, everything in the last one or two.
    let hourly = get_json(&service, "/api/v1/unique/series?lookback=24h&step=1h").await;
    let hours = points(&hourly, 60 * MINUTE_MS);
    assert_eq!(hours.len(), 24, "{hourly}");
    let recent: u64 = hours[22..].iter().map(|p| p.1).sum();
    assert!(recent >= distinct, "{hourly}");
    assert!(hours[..22].iter().all(|p| p.1 == 0), "{hourly}");
    service.stop().await;
}

#[tokio::test]
async fn bad_parameters_get_400_with_a_reason() {
    let service = TestService::start().await;
    for (path, code, says) in [
        ("/api/v1/unique", "missing_parameter", "window is required"),
        (
            "/api/v1/unique?windows=5m",
            "missing_parameter",
            "window is required",
        ),
        (
            "/api/v1/unique?window=5m&window=1h",
            "repeated_parameter",
            "more than once",
        ),
        ("/api/v1/unique?window=", "invalid_window", "not a duration"),
        (
            "/api/v1/unique?window=5",
            "invalid_window",
            "not a duration",
        ),
        (
            "/api/v1/unique?window=0m",
            "invalid_window",
            "not a duration",
        ),
        (
            "/api/v1/unique?window=5%6D",
            "invalid_window",
            "not a duration",
        ),
        (
            "/api/v1/unique?window=90m",
            "invalid_window",
            "not whole hours",
        ),
        (
            "/api/v1/unique?window=8d",
            "invalid_window",
            "longer than the 7d",
        ),
        (
            "/api/v1/unique/series?step=1m",
            "missing_parameter",
            "lookback is required",
        ),
        (
            "/api/v1/unique/series?lookback=1h",
            "missing_parameter",
            "step is required",
        ),
        (
            "/api/v1/unique/series?lookback=1h&step=1s",
            "invalid_step",
            "not a duration",
        ),
        (
            "/api/v1/unique/series?lookback=2h&step=1m",
            "invalid_lookback",
            "longer than the 1h",
        ),
        (
            "/api/v1/unique/series?lookback=8d&step=1h",
            "invalid_lookback",
            "longer than the 7d",
        ),
        (
            "/api/v1/unique/series?lookback=3h&step=90m",
            "invalid_step",
            "not whole hours",
        ),
        (
            "/api/v1/unique/series?lookback=5m&step=10m",
            "invalid_step",
            "longer than lookback",
        ),
    ] {
        let response = get(service.metrics, path).await;
        let body = response.expect_error(400, code);
        let message = body["message"].as_str().unwrap();
        assert!(message.contains(says), "{path}: {message}");
    }
    for path in ["/api/v1/unique?window=5m", "/api/v1/unique/series"] {
        let response = send_raw(
            service.metrics,
            request_bytes("POST", path, &[("Content-Length", "0")], b""),
        )
        .await;
        response.expect_error(405, "method_not_allowed");
        assert_eq!(response.header("allow"), Some("GET, HEAD"));
    }
    get(service.metrics, "/api/v1/unique/")
        .await
        .expect_error(404, "not_found");
    service.stop().await;
}

#[tokio::test]
async fn windows_off_answers_404_and_exports_no_gauge() {
    let config = AppConfig {
        windows: None,
        ..AppConfig::default()
    };
    let service = TestService::start_with(config).await;
    assert_eq!(
        post_json(service.ingest, &log_line("1.2.3.4")).await.status,
        202
    );
    for path in [
        "/api/v1/unique?window=5m",
        "/api/v1/unique/series?lookback=1h&step=1m",
    ] {
        let body = get(service.metrics, path)
            .await
            .expect_error(404, "windows_disabled");
        assert!(
            body["message"].as_str().unwrap().contains("--windows"),
            "{body}"
        );
    }
    let text = service.scrape().await;
    assert!(!text.contains("unique_ip_addresses_window"), "{text}");
    assert_eq!(service.unique().await, 1);
    service.stop().await;
}

#[tokio::test]
async fn the_endpoints_need_the_metrics_token_when_one_is_set() {
    let service = start_with_metrics_token().await;
    for path in [
        "/api/v1/unique?window=5m",
        "/api/v1/unique/series?lookback=5m&step=1m",
    ] {
        let response = assert_needs_metrics_token(&service, path).await;
        assert!(response.json().get("now_ms").is_some());
    }
    service.stop().await;
}
