//! `POST /logs` behaviour against the in-process service: counting, address
//! canonicalisation, batches, and every error status.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use uniqd::AppConfig;

#[tokio::test]
async fn ten_distinct_of_thirty_posts_current_thread() {
    ten_distinct_of_thirty_posts().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_distinct_of_thirty_posts_multi_thread() {
    ten_distinct_of_thirty_posts().await;
}

async fn ten_distinct_of_thirty_posts() {
    let service = TestService::start().await;
    for i in 0..30 {
        let ip = format!("83.150.59.{}", i % 10);
        let response = post_json(service.ingest, &log_line(&ip)).await;
        assert_eq!(response.status, 202, "{}", response.text());
        assert_eq!(response.json(), serde_json::json!({"accepted": 1}));
    }
    let text = service.scrape().await;
    assert!(text.contains("\nunique_ip_addresses 10\n"), "{text}");
    assert_eq!(
        sample_value(&text, "uniqd_ingest_requests_total{outcome=\"accepted\"}"),
        Some(30.0)
    );
    assert_eq!(
        sample_value(&text, "uniqd_ingest_lines_total{outcome=\"accepted\"}"),
        Some(30.0)
    );
    assert_eq!(
        sample_value(&text, "uniqd_ingest_request_duration_seconds_count"),
        Some(30.0)
    );
    service.stop().await;
}

#[tokio::test]
async fn no_content_type_and_charset_parameter_are_json() {
    let service = TestService::start().await;
    let r = post(service.ingest, "/logs", None, br#"{"ip":"1.1.1.1"}"#).await;
    assert_eq!(r.status, 202, "{}", r.text());
    let r = post(
        service.ingest,
        "/logs",
        Some("application/json; charset=utf-8"),
        br#"{"ip":"2.2.2.2"}"#,
    )
    .await;
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(service.unique().await, 2);
    service.stop().await;
}

#[tokio::test]
async fn ipv6_forms_are_counted_once() {
    let service = TestService::start().await;
    for ip in [
        "::1",
        "0:0:0:0:0:0:0:1",
        "0000:0000:0000:0000:0000:0000:0000:0001",
        "::ffff:1.2.3.4",
        "1.2.3.4",
        "2001:DB8::1",
        "2001:db8:0::1",
    ] {
        let r = post_json(service.ingest, &log_line(ip)).await;
        assert_eq!(r.status, 202, "{ip}: {}", r.text());
    }
    assert_eq!(service.unique().await, 3);
    service.stop().await;
}

#[tokio::test]
async fn single_object_errors_are_400_and_count_nothing() {
    let service = TestService::start().await;
    let cases: &[(&[u8], &str)] = &[
        (b"{not json", "invalid_json"),
        // An object followed by more is a stream of objects, and an array an array of
        // elements (tests/body_shapes.rs); a value that is not an object stays refused.
        (br#""1.2.3.4""#, "not_an_object"),
        (b"12.5", "not_an_object"),
        (br#"{"url":"/a"}"#, "missing_ip"),
        (br#"{"ip":1234}"#, "ip_not_a_string"),
        (br#"{"ip":null}"#, "ip_not_a_string"),
        (br#"{"ip":"999.1.1.1"}"#, "invalid_ip"),
        (br#"{"ip":"01.2.3.4"}"#, "invalid_ip"),
        (br#"{"ip":" 1.2.3.4"}"#, "invalid_ip"),
        (br#"{"ip":"fe80::1%eth0"}"#, "invalid_ip"),
        (br#"{"ip":""}"#, "invalid_ip"),
        (b"{\"ip\":\"1.2.3.4\",\"x\":\"\xff\"}", "invalid_utf8"),
    ];
    for (body, code) in cases {
        let r = post(service.ingest, "/logs", Some("application/json"), body).await;
        r.expect_error(400, code);
    }
    let text = service.scrape().await;
    assert!(text.contains("\nunique_ip_addresses 0\n"), "{text}");
    assert_eq!(
        sample_value(
            &text,
            "uniqd_ingest_requests_total{outcome=\"bad_request\"}"
        ),
        Some(cases.len() as f64)
    );
    assert_eq!(
        sample_value(&text, "uniqd_ingest_lines_total{outcome=\"invalid\"}"),
        Some(cases.len() as f64)
    );
    service.stop().await;
}

#[tokio::test]
async fn invalid_ip_message_names_the_value() {
    let service = TestService::start().await;
    let json = post_json(service.ingest, r#"{"ip":"300.1.1.1"}"#)
        .await
        .expect_error(400, "invalid_ip");
    assert!(
        json["message"].as_str().unwrap().contains("300.1.1.1"),
        "{json}"
    );
    service.stop().await;
}

#[tokio::test]
async fn empty_bodies_are_400() {
    let service = TestService::start().await;
    post(service.ingest, "/logs", Some("application/json"), b"")
        .await
        .expect_error(400, "empty_body");
    post(service.ingest, "/logs", None, b"  \r\n")
        .await
        .expect_error(400, "empty_body");
    post_ndjson(service.ingest, "")
        .await
        .expect_error(400, "empty_body");
    post_ndjson(service.ingest, "\n\r\n  \n")
        .await
        .expect_error(400, "empty_body");
    post_chunked(service.ingest, "/logs", "application/json", &[])
        .await
        .expect_error(400, "empty_body");
    service.stop().await;
}

#[tokio::test]
async fn routing_errors() {
    let service = TestService::start().await;
    get(service.ingest, "/")
        .await
        .expect_error(404, "not_found");
    post_json(service.ingest, "{}")
        .await
        .expect_error(400, "missing_ip");
    post(service.ingest, "/log", None, br#"{"ip":"1.1.1.1"}"#)
        .await
        .expect_error(404, "not_found");
    for method in ["GET", "PUT", "DELETE", "PATCH"] {
        let r = send_raw(
            service.ingest,
            request_bytes(method, "/logs", &[("Content-Length", "0")], b""),
        )
        .await;
        r.expect_error(405, "method_not_allowed");
        assert_eq!(r.header("allow"), Some("POST"));
    }
    assert_eq!(
        service
            .metric("uniqd_ingest_requests_total{outcome=\"method_not_allowed\"}")
            .await,
        4.0
    );
    service.stop().await;
}

#[tokio::test]
async fn unsupported_media_types_are_415() {
    let service = TestService::start().await;
    for ct in [
        "application/x-www-form-urlencoded",
        "text/csv",
        "application/xml",
        "multipart/form-data; boundary=x",
    ] {
        let json = post(service.ingest, "/logs", Some(ct), br#"{"ip":"1.1.1.1"}"#)
            .await
            .expect_error(415, "unsupported_media_type");
        let message = json["message"].as_str().unwrap();
        assert!(message.contains("application/json"), "{message}");
        assert!(message.contains("application/x-ndjson"), "{message}");
        assert!(message.contains("text/plain"), "{message}");
    }
    assert_eq!(service.unique().await, 0);
    service.stop().await;
}

#[tokio::test]
async fn too_large_by_content_length_is_413_without_reading() {
    let service = TestService::start().await;
    // Only the head is sent: the server must answer without waiting for the
    // announced body. A JSON body may be an array, so its limit is the batch
    // limit (64 MiB); each object in it has the object limit.
    let r = send_raw(
        service.ingest,
        request_bytes(
            "POST",
            "/logs",
            &[
                ("Content-Type", "application/json"),
                ("Content-Length", "67108865"),
            ],
            b"",
        ),
    )
    .await;
    let json = r.expect_error(413, "payload_too_large");
    assert_eq!(json["limit"], 64 * 1024 * 1024);
    assert_eq!(r.header("connection"), Some("close"));

    // The NDJSON limit is the same batch limit.
    let r = send_raw(
        service.ingest,
        request_bytes(
            "POST",
            "/logs",
            &[
                ("Content-Type", "application/x-ndjson"),
                ("Content-Length", "67108865"),
            ],
            b"",
        ),
    )
    .await;
    r.expect_error(413, "payload_too_large");
    assert_eq!(
        service
            .metric("uniqd_ingest_requests_total{outcome=\"payload_too_large\"}")
            .await,
        2.0
    );
    service.stop().await;
}

fn small_limits() -> AppConfig {
    let mut config = AppConfig::default();
    config.ingest.max_object_bytes = 1024;
    config.ingest.max_batch_bytes = 16 * 1024;
    config
}

#[tokio::test]
async fn too_large_chunked_single_object_is_413() {
    let service = TestService::start_with(small_limits()).await;
    let padding = "x".repeat(700);
    let part1 = format!(r#"{{"ip":"1.2.3.4","a":"{padding}","#);
    let part2 = format!(r#""b":"{padding}"}}"#);
    post_chunked(
        service.ingest,
        "/logs",
        "application/json",
        &[part1.as_bytes(), part2.as_bytes()],
    )
    .await
    .expect_error(413, "payload_too_large");
    assert_eq!(service.unique().await, 0);

    // Just under the limit, in several chunks: accepted.
    let ok = format!(r#"{{"ip":"1.2.3.4","a":"{}"}}"#, "y".repeat(900));
    let chunks: Vec<&[u8]> = ok.as_bytes().chunks(100).collect();
    let r = post_chunked(service.ingest, "/logs", "application/json", &chunks).await;
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(service.unique().await, 1);
    service.stop().await;
}

#[tokio::test]
async fn too_large_chunked_batch_is_413_and_reports_progress() {
    let service = TestService::start_with(small_limits()).await;
    // 400 lines (~36 KiB) in 1 KiB chunks: the 16 KiB limit is hit midway.
    let chunk: String = (0..400).map(|i| log_line(&distinct_ip(i)) + "\n").collect();
    let chunk = chunk.as_bytes();
    let chunks: Vec<&[u8]> = chunk.chunks(1024).collect();
    let r = post_chunked(service.ingest, "/logs", "application/x-ndjson", &chunks).await;
    let json = r.expect_error(413, "payload_too_large");
    assert_eq!(r.header("connection"), Some("close"));
    let accepted = json["accepted"].as_u64().expect("accepted count");
    assert!(accepted > 0 && accepted < 400, "{json}");
    assert_eq!(json["rejected"], 0);
    // Exactly the reported lines were counted.
    assert_eq!(service.unique().await, accepted);
    assert_eq!(
        service
            .metric("uniqd_ingest_lines_total{outcome=\"accepted\"}")
            .await,
        accepted as f64
    );
    service.stop().await;
}

#[tokio::test]
async fn over_long_ndjson_line_is_rejected_not_buffered() {
    let service = TestService::start_with(small_limits()).await;
    let long = log_line(&format!("1.1.1.1\",\"pad\":\"{}", "z".repeat(2000)));
    let body = format!("{}\n{long}\n{}\n", log_line("5.5.5.5"), log_line("6.6.6.6"));
    let json = post_ndjson(service.ingest, &body)
        .await
        .expect_error(400, "invalid_lines");
    assert_eq!(json["accepted"], 2);
    assert_eq!(json["rejected"], 1);
    assert_eq!(json["errors"][0]["line"], 2);
    assert_eq!(json["errors"][0]["error"], "line_too_long");
    assert_eq!(service.unique().await, 2);
    service.stop().await;
}

#[tokio::test]
async fn batch_below_threshold_is_exact() {
    let config = AppConfig {
        exact_threshold: 4096,
        ..AppConfig::default()
    };
    let service = TestService::start_with(config).await;
    // 3000 distinct addresses, each posted twice, mixed forms, CRLF endings,
    // blank lines, no final newline.
    let mut body = String::new();
    for round in 0..2 {
        for i in 0..3000 {
            let ip = distinct_ip(i);
            let ip = if round == 1 && i % 2 == 0 {
                format!("::ffff:{ip}")
            } else {
                ip
            };
            body.push_str(&log_line(&ip));
            body.push_str(if i % 3 == 0 { "\r\n" } else { "\n" });
            if i % 500 == 0 {
                body.push('\n');
            }
        }
    }
    let body = body.trim_end();
    let r = post_ndjson(service.ingest, body).await;
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(r.json(), serde_json::json!({"accepted": 6000}));
    let text = service.scrape().await;
    assert!(text.contains("\nunique_ip_addresses 3000\n"), "{text}");
    assert!(
        text.contains("uniqd_estimator_phase{phase=\"exact\"} 1\n"),
        "{text}"
    );
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_thousand_line_batch_is_within_four_percent() {
    const N: u32 = 100_000;
    let service = TestService::start().await;
    let mut body = String::with_capacity(N as usize * 40);
    for i in 0..N {
        body.push_str(r#"{"ip":""#);
        body.push_str(&distinct_ip(i));
        body.push_str("\"}\n");
    }
    let r = post_ndjson(service.ingest, &body).await;
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(r.json()["accepted"], u64::from(N));

    let text = service.scrape().await;
    let estimate = sample_value(&text, "unique_ip_addresses").expect("estimate");
    let error = (estimate - f64::from(N)).abs() / f64::from(N);
    assert!(
        error < 0.04,
        "estimate {estimate} is {:.2}% off",
        error * 100.0
    );
    assert!(
        text.contains("uniqd_estimator_phase{phase=\"sketch\"} 1\n"),
        "{text}"
    );
    assert_eq!(
        sample_value(&text, "uniqd_ingest_lines_total{outcome=\"accepted\"}"),
        Some(f64::from(N))
    );
    service.stop().await;
}

#[tokio::test]
async fn batch_with_a_bad_line_counts_the_good_ones() {
    let service = TestService::start().await;
    let body = [
        log_line("1.0.0.1"),
        log_line("1.0.0.2"),
        String::new(),
        r#"{"ip":"1.0.0.999"}"#.to_owned(),
        log_line("1.0.0.3"),
        "not json".to_owned(),
        log_line("1.0.0.4"),
    ]
    .join("\n");
    let r = post_ndjson(service.ingest, &body).await;
    let json = r.expect_error(400, "invalid_lines");
    assert_eq!(json["accepted"], 4);
    assert_eq!(json["rejected"], 2);
    let errors = json["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 2);
    assert_eq!(errors[0]["line"], 4);
    assert_eq!(errors[0]["error"], "invalid_ip");
    assert_eq!(errors[1]["line"], 6);
    assert_eq!(errors[1]["error"], "invalid_json");
    assert!(errors[1]["message"].as_str().is_some());
    assert_eq!(service.unique().await, 4);
    let text = service.scrape().await;
    assert_eq!(
        sample_value(&text, "uniqd_ingest_lines_total{outcome=\"invalid\"}"),
        Some(2.0)
    );
    service.stop().await;
}

#[tokio::test]
async fn batch_reports_only_the_first_ten_errors() {
    let service = TestService::start().await;
    let body = "{}\n".repeat(25);
    let json = post_ndjson(service.ingest, &body)
        .await
        .expect_error(400, "invalid_lines");
    assert_eq!(json["accepted"], 0);
    assert_eq!(json["rejected"], 25);
    assert_eq!(json["errors"].as_array().unwrap().len(), 10);
    assert_eq!(json["errors"][9]["line"], 10);
    service.stop().await;
}

#[tokio::test]
async fn ndjson_lines_split_across_chunks() {
    let service = TestService::start().await;
    let body: String = (0..50)
        .map(|i| log_line(&distinct_ip(i)) + "\r\n")
        .collect();
    // 7-byte chunks: nearly every line straddles a chunk boundary.
    let chunks: Vec<&[u8]> = body.as_bytes().chunks(7).collect();
    let r = post_chunked(service.ingest, "/logs", "application/x-ndjson", &chunks).await;
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(r.json()["accepted"], 50);
    assert_eq!(service.unique().await, 50);
    service.stop().await;
}

#[tokio::test]
async fn keep_alive_serves_several_requests_per_connection() {
    use tokio::io::AsyncWriteExt as _;
    let service = TestService::start().await;
    let mut stream = tokio::net::TcpStream::connect(service.ingest)
        .await
        .unwrap();
    for ip in ["7.7.7.1", "7.7.7.2", "7.7.7.3"] {
        let body = log_line(ip);
        let head = format!(
            "POST /logs HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        stream.write_all(body.as_bytes()).await.unwrap();
        let r = next_response(&mut stream).await;
        assert_eq!(r.status, 202, "{}", r.text());
    }
    assert_eq!(service.unique().await, 3);
    service.stop().await;
}
