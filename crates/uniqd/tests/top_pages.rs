//! Top pages end to end: the `url` of every accepted log (single objects and NDJSON lines)
//! reaches `GET /stats` and `uniqd_top_page_requests` on the metrics port; the flags size,
//! normalise, limit and turn it off; `/stats` rejects a bad `limit` and obeys the metrics
//! token.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use serde_json::{json, Value as Json};
use uniqd::{AppConfig, TopPagesConfig};
use uniqd_core::PathOptions;

/// `GET /stats?<query>` as JSON, asserting 200 and `Cache-Control: no-store`.
async fn stats(service: &TestService, query: &str) -> Json {
    let response = get(service.metrics, &format!("/stats{query}")).await;
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.header("cache-control"), Some("no-store"));
    response.json()
}

/// `(path, count, error)` of each listed page.
fn pages(stats: &Json) -> Vec<(String, u64, u64)> {
    stats["pages"]
        .as_array()
        .expect("pages is an array")
        .iter()
        .map(|p| {
            (
                p["path"].as_str().expect("path").to_owned(),
                p["count"].as_u64().expect("count"),
                p["error"].as_u64().expect("error"),
            )
        })
        .collect()
}

fn row(path: &str, count: u64) -> (String, u64, u64) {
    (path.to_owned(), count, 0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn urls_of_accepted_logs_reach_stats_and_metrics() {
    let service = TestService::start().await;
    let ingest = service.ingest;
    for (body, status) in [
        (r#"{"ip":"1.2.3.4","url":"/a?x=1"}"#, 202),
        (r#"{"url":"/b","ip":"1.2.3.5","timestamp":"t"}"#, 202),
        // No url: counted as an address, not as a page.
        (r#"{"ip":"1.2.3.6"}"#, 202),
        (r#"{"ip":"1.2.3.7","url":null}"#, 202),
        // Rejected objects count no page.
        (r#"{"ip":"not an address","url":"/a"}"#, 400),
        (r#"{"url":"/a"}"#, 400),
    ] {
        assert_eq!(post_json(ingest, body).await.status, status, "{body}");
    }
    let batch = concat!(
        "{\"ip\":\"::1\",\"url\":\"/a#top\"}\n",
        "\n",
        "{\"ip\":\"::2\",\"url\":\"/c\"}\r\n",
        "{\"ip\":\"::3\",\"url\":\"/a\"}\n",
        "{\"ip\":\"::4\"}",
    );
    assert_eq!(post_ndjson(ingest, batch).await.status, 202);
    // A batch with a bad line: its good lines count, the bad one's url does not.
    let mixed = "{\"ip\":\"::5\",\"url\":\"/c\"}\n{\"ip\":\"x\",\"url\":\"/c\"}\n";
    let response = post_ndjson(ingest, mixed).await;
    response.expect_error(400, "invalid_lines");

    let body = stats(&service, "").await;
    assert_eq!(
        pages(&body),
        [row("/a", 3), row("/c", 2), row("/b", 1)],
        "{body}"
    );
    for (key, value) in [
        ("total_requests", 6),
        ("tracked", 3),
        ("error_bound", 0),
        ("limit", 100),
        ("capacity", 1024),
        ("shards", 2),
    ] {
        assert_eq!(body[key], value, "{key}: {body}");
    }
    let top_one = stats(&service, "?limit=1").await;
    assert_eq!(pages(&top_one), [row("/a", 3)]);
    assert_eq!(
        (top_one["tracked"].clone(), top_one["limit"].clone()),
        (json!(3), json!(1))
    );

    for query in ["?limit=0", "?limit=abc", "?limit=10001", "?limit=1&limit=2"] {
        let response = get(service.metrics, &format!("/stats{query}")).await;
        response.expect_error(400, "invalid_limit");
    }
    let response = send_raw(
        service.metrics,
        request_bytes("POST", "/stats", &[("Content-Length", "0")], b""),
    )
    .await;
    response.expect_error(405, "method_not_allowed");
    assert_eq!(response.header("allow"), Some("GET, HEAD"));

    let text = service.scrape().await;
    assert_valid_openmetrics(&text);
    assert!(
        text.contains(
            "# TYPE uniqd_top_page_requests gauge\n\
             uniqd_top_page_requests{path=\"/a\"} 3\n\
             uniqd_top_page_requests{path=\"/c\"} 2\n\
             uniqd_top_page_requests{path=\"/b\"} 1\n"
        ),
        "{text}"
    );
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bounds_are_reported_once_paths_outnumber_the_counters() {
    let config = AppConfig {
        top_pages: TopPagesConfig {
            capacity: 8,
            metric_limit: 2,
            ..TopPagesConfig::default()
        },
        ..AppConfig::default()
    };
    let service = TestService::start_with(config).await;
    // 200 requests: /hot 100 times, and 100 distinct cold paths.
    let body: String = (0..200)
        .map(|i| {
            let url = if i % 2 == 0 {
                "/hot".to_owned()
            } else {
                format!("/cold/{i}")
            };
            format!("{{\"ip\":\"{}\",\"url\":\"{url}\"}}\n", distinct_ip(i))
        })
        .collect();
    assert_eq!(post_ndjson(service.ingest, &body).await.status, 202);

    let body = stats(&service, "?limit=10000").await;
    let total = body["total_requests"].as_u64().unwrap();
    let bound = body["error_bound"].as_u64().unwrap();
    assert_eq!(total, 200);
    assert!(bound > 0 && bound <= total / 8, "{body}");
    let listed = pages(&body);
    assert!(
        listed.len() <= 8 * 2 && body["tracked"] == listed.len(),
        "{body}"
    );
    let (path, count, error) = &listed[0];
    assert_eq!(path, "/hot", "{body}");
    assert!(count - error <= 100 && 100 <= *count, "{body}");
    for (_, _, error) in &listed {
        assert!(*error <= bound, "{body}");
    }
    // K = 2: two series.
    let text = service.scrape().await;
    let series = text
        .lines()
        .filter(|l| l.starts_with("uniqd_top_page_requests{"))
        .count();
    assert_eq!(series, 2, "{text}");
    assert!(
        text.contains("uniqd_top_page_requests{path=\"/hot\"} "),
        "{text}"
    );
    service.stop().await;
}

#[tokio::test]
async fn normalisation_flags_apply() {
    let config = AppConfig {
        top_pages: TopPagesConfig {
            path: PathOptions {
                strip_trailing_slash: true,
                lowercase_host: true,
            },
            ..TopPagesConfig::default()
        },
        ..AppConfig::default()
    };
    let service = TestService::start_with(config).await;
    let batch = [
        "/docs/",
        "/docs",
        "/docs//?page=2",
        "HTTP://Example.COM/Docs/",
        "http://example.com/Docs",
        "/",
    ]
    .iter()
    .enumerate()
    .map(|(i, url)| format!("{{\"ip\":\"10.0.0.{i}\",\"url\":\"{url}\"}}\n"))
    .collect::<String>();
    assert_eq!(post_ndjson(service.ingest, &batch).await.status, 202);
    let body = stats(&service, "").await;
    assert_eq!(
        pages(&body),
        [
            row("/docs", 3),
            row("http://example.com/Docs", 2),
            row("/", 1)
        ],
        "{body}"
    );
    // One shard on the current-thread runtime of this test.
    assert_eq!(body["shards"], 1);
    service.stop().await;
}

#[tokio::test]
async fn capacity_zero_turns_top_pages_off() {
    let config = AppConfig {
        top_pages: TopPagesConfig {
            capacity: 0,
            ..TopPagesConfig::default()
        },
        ..AppConfig::default()
    };
    let service = TestService::start_with(config).await;
    assert_eq!(
        post_json(service.ingest, &log_line("1.2.3.4")).await.status,
        202
    );
    let response = get(service.metrics, "/stats").await;
    let body = response.expect_error(404, "top_pages_disabled");
    assert!(body["message"]
        .as_str()
        .unwrap()
        .contains("--top-pages-capacity"));
    let text = service.scrape().await;
    assert!(!text.contains("uniqd_top_page_requests"), "{text}");
    assert_eq!(service.unique().await, 1);
    service.stop().await;
}

#[tokio::test]
async fn stats_needs_the_metrics_token_when_one_is_set() {
    let mut config = AppConfig::default();
    config.exporter.metrics_auth = Some(uniqd_http::BearerTokens::new(["s3cret"]).unwrap());
    let service = TestService::start_with(config).await;
    let response = get(service.metrics, "/stats").await;
    response.expect_error(401, "unauthorized");
    assert_eq!(
        response.header("www-authenticate"),
        Some("Bearer realm=\"uniqd\"")
    );
    let response = send_raw(
        service.metrics,
        request_bytes("GET", "/stats", &[("Authorization", "Bearer s3cret")], b""),
    )
    .await;
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.json()["total_requests"], 0);
    service.stop().await;
}
