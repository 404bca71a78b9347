//! `application/json` bodies as log shippers and gateways send them: one object, a JSON array
//! of objects (Kong `http-log`, APISIX `http-logger`, Vector's `http` sink with the json codec,
//! Fluent Bit `format json`, Logstash `json_batch`), or concatenated objects (Fluent Bit
//! `json_stream`, NDJSON sent as `application/json`); bad elements reported by index, good
//! ones counted; streamed with at most one element held.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use uniqd::AppConfig;

/// A Kong `http-log`-like entry (field names of its own besides `ip`).
fn kong(ip: &str, i: u32) -> String {
    format!(
        r#"{{"ip":"{ip}","client_ip":"{ip}","started_at":{},"request":{{"method":"GET","uri":"/k/{i}?q=1","url":"http://h/k/{i}?q=1","headers":{{"host":"h","x":"}}]"}}}},"response":{{"status":200}},"latencies":{{"proxy":3}}}}"#,
        1_700_000_000_000u64 + u64::from(i)
    )
}

/// An APISIX `http-logger`-like entry.
fn apisix(ip: &str, i: u32) -> String {
    format!(
        r#"{{"ip":"{ip}","client_ip":"{ip}","start_time":{},"request":{{"uri":"/a/{i}","url":"http://h:9080/a/{i}","method":"POST","headers":{{}}}},"route_id":"1","latency":1.5}}"#,
        1_700_000_000_000u64 + u64::from(i)
    )
}

/// A Vector / Fluent Bit record: the shipper's own fields around the log's.
fn record(ip: &str, i: u32) -> String {
    format!(
        r#"{{"date":1700000000.{i:03},"ip":"{ip}","url":"/v/{i}","timestamp":"2023-11-14T22:13:20Z","kubernetes":{{"pod_name":"ingress-nginx-7f9","labels":{{"app":"x"}}}},"message":"GET /v/{i} \"200\""}}"#
    )
}

fn array_of(entries: &[String], separator: &str) -> String {
    format!("[{}]", entries.join(separator))
}

#[tokio::test]
async fn gateway_and_shipper_arrays_are_counted_element_by_element() {
    let service = TestService::start().await;
    let ips: Vec<String> = (0..40).map(distinct_ip).collect();
    let batches = [
        // Kong http-log with batching, APISIX http-logger: compact arrays.
        array_of(
            &(0..10).map(|i| kong(&ips[i], i as u32)).collect::<Vec<_>>(),
            ",",
        ),
        array_of(
            &(10..20)
                .map(|i| apisix(&ips[i], i as u32))
                .collect::<Vec<_>>(),
            ",",
        ),
        // Vector's json codec, Fluent Bit `format json`: arrays, pretty or not.
        format!(
            "[\n  {}\n]\n",
            (20..30)
                .map(|i| record(&ips[i], i as u32))
                .collect::<Vec<_>>()
                .join(",\n  ")
        ),
        // Logstash json_batch: an array, entries repeated (resent) in it.
        array_of(
            &(25..40)
                .map(|i| record(&ips[i], i as u32))
                .collect::<Vec<_>>(),
            ", ",
        ),
    ];
    let mut total = 0;
    for batch in &batches {
        let r = post_json(service.ingest, batch).await;
        assert_eq!(r.status, 202, "{}", r.text());
        let n = r.json()["accepted"].as_u64().unwrap();
        assert_eq!(n, batch.matches(r#""ip":"#).count() as u64);
        total += n;
    }
    assert_eq!(total, 45);
    assert_eq!(service.unique().await, 40);
    assert_eq!(
        service
            .metric("uniqd_ingest_lines_total{outcome=\"accepted\"}")
            .await,
        45.0
    );
    // An empty array is a valid, empty batch.
    let r = post_json(service.ingest, " [ ] ").await;
    assert_eq!((r.status, r.json()["accepted"].as_u64()), (202, Some(0)));
    service.stop().await;
}

#[tokio::test]
async fn concatenated_objects_are_counted_like_ndjson() {
    let service = TestService::start().await;
    // Fluent Bit json_stream: objects back to back; NDJSON sent as application/json.
    let stream: String = (0..10).map(|i| record(&distinct_ip(i), i)).collect();
    let r = post_json(service.ingest, &stream).await;
    assert_eq!(
        (r.status, r.json()["accepted"].as_u64()),
        (202, Some(10)),
        "{}",
        r.text()
    );
    let lines: String = (10..20)
        .map(|i| format!("{}\r\n", log_line(&distinct_ip(i))))
        .collect();
    let r = post_json(service.ingest, &lines).await;
    assert_eq!(
        (r.status, r.json()["accepted"].as_u64()),
        (202, Some(10)),
        "{}",
        r.text()
    );
    assert_eq!(service.unique().await, 20);
    service.stop().await;
}

#[tokio::test]
async fn arrays_and_streams_in_small_chunks() {
    let service = TestService::start().await;
    let array = array_of(
        &(0..50)
            .map(|i| kong(&distinct_ip(i), i))
            .collect::<Vec<_>>(),
        ",",
    );
    let chunks: Vec<&[u8]> = array.as_bytes().chunks(7).collect();
    let r = post_chunked(service.ingest, "/logs", "application/json", &chunks).await;
    assert_eq!(
        (r.status, r.json()["accepted"].as_u64()),
        (202, Some(50)),
        "{}",
        r.text()
    );
    let stream: String = (50..80).map(|i| apisix(&distinct_ip(i), i)).collect();
    let chunks: Vec<&[u8]> = stream.as_bytes().chunks(13).collect();
    let r = post_chunked(service.ingest, "/logs", "application/json", &chunks).await;
    assert_eq!(
        (r.status, r.json()["accepted"].as_u64()),
        (202, Some(30)),
        "{}",
        r.text()
    );
    // One object in many chunks is still one object.
    let one = log_line("198.51.100.7");
    let chunks: Vec<&[u8]> = one.as_bytes().chunks(3).collect();
    let r = post_chunked(service.ingest, "/logs", "application/json", &chunks).await;
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(service.unique().await, 81);
    service.stop().await;
}

#[tokio::test]
async fn bad_elements_are_reported_by_index_and_the_rest_counted() {
    let service = TestService::start().await;
    let body = format!(
        r#"[{}, {{"ip":"999.1.1.1"}}, 7, {}, {{"url":"/no-ip"}}, {}]"#,
        log_line("192.0.2.1"),
        log_line("192.0.2.2"),
        log_line("192.0.2.3")
    );
    let json = post_json(service.ingest, &body)
        .await
        .expect_error(400, "invalid_elements");
    assert_eq!(json["accepted"], 3, "{json}");
    assert_eq!(json["rejected"], 3, "{json}");
    assert_eq!(json["next_index"], 6, "{json}");
    let errors = json["errors"].as_array().unwrap();
    let got: Vec<(u64, &str)> = errors
        .iter()
        .map(|e| (e["index"].as_u64().unwrap(), e["error"].as_str().unwrap()))
        .collect();
    assert_eq!(
        got,
        [(1, "invalid_ip"), (2, "not_an_object"), (4, "missing_ip")]
    );
    assert!(
        errors[0]["message"]
            .as_str()
            .unwrap()
            .starts_with("element 1: "),
        "{json}"
    );
    assert!(json["message"]
        .as_str()
        .unwrap()
        .contains("3 of 6 elements"));
    // A stream with a bad object in the middle.
    let body = format!(
        "{}{{\"ip\":\"1.2.3\"}}\n{}",
        log_line("192.0.2.4"),
        log_line("192.0.2.5")
    );
    let json = post_json(service.ingest, &body)
        .await
        .expect_error(400, "invalid_elements");
    assert_eq!(
        (json["accepted"].as_u64(), json["rejected"].as_u64()),
        (Some(2), Some(1))
    );
    assert_eq!(json["errors"][0]["index"], 1);
    assert_eq!(service.unique().await, 5);
    assert_eq!(
        service
            .metric("uniqd_ingest_lines_total{outcome=\"invalid\"}")
            .await,
        4.0
    );
    service.stop().await;
}

#[tokio::test]
async fn a_broken_array_stops_where_it_breaks() {
    let service = TestService::start().await;
    for (body, accepted, index) in [
        // A missing comma: the first element counted, nothing after the break.
        (
            format!("[{} {}]", log_line("192.0.2.10"), log_line("192.0.2.11")),
            1,
            1,
        ),
        // Cut short.
        (format!("[{},", log_line("192.0.2.12")), 1, 1),
        // A trailing comma.
        (format!("[{},]", log_line("192.0.2.13")), 1, 1),
    ] {
        let json = post_json(service.ingest, &body)
            .await
            .expect_error(400, "invalid_elements");
        assert_eq!(json["accepted"], accepted, "{body}: {json}");
        assert_eq!(json["errors"][0]["index"], index, "{body}: {json}");
        assert_eq!(json["errors"][0]["error"], "invalid_json", "{body}: {json}");
    }
    assert_eq!(service.unique().await, 3);
    service.stop().await;
}

#[tokio::test]
async fn an_over_long_element_is_skipped_and_a_first_object_over_the_limit_is_413() {
    let mut config = AppConfig::default();
    config.ingest.max_object_bytes = 1024;
    let service = TestService::start_with(config).await;
    let long = format!(r#"{{"ip":"192.0.2.20","pad":"{}"}}"#, "x".repeat(2000));
    let body = format!(
        "[{}, {long}, {}]",
        log_line("192.0.2.21"),
        log_line("192.0.2.22")
    );
    let chunks: Vec<&[u8]> = body.as_bytes().chunks(100).collect();
    let json = post_chunked(service.ingest, "/logs", "application/json", &chunks)
        .await
        .expect_error(400, "invalid_elements");
    assert_eq!(json["errors"][0]["index"], 1, "{json}");
    assert_eq!(json["errors"][0]["error"], "line_too_long", "{json}");
    assert_eq!(json["accepted"], 2, "{json}");
    // The same object alone (or first in a stream) is a body over the object limit.
    let json = post_json(service.ingest, &long)
        .await
        .expect_error(413, "payload_too_large");
    assert_eq!(json["limit"], 1024);
    assert!(json.get("accepted").is_none(), "{json}");
    assert_eq!(service.unique().await, 2);
    service.stop().await;
}

#[tokio::test]
async fn an_array_holds_one_element_of_the_budget_at_a_time() {
    // A budget of 4 KiB for buffered bytes: a 1 MiB array of elements split across chunks
    // goes through, since only the element that straddles two chunks is held.
    let mut config = AppConfig::default();
    config.ingest.max_buffered_bytes = 4096;
    let service = TestService::start_with(config).await;
    let entries: Vec<String> = (0..6000).map(|i| kong(&distinct_ip(i), i)).collect();
    let body = array_of(&entries, ",");
    assert!(body.len() > 1 << 20);
    let chunks: Vec<&[u8]> = body.as_bytes().chunks(1000).collect();
    let r = post_chunked(service.ingest, "/logs", "application/json", &chunks).await;
    assert_eq!(
        (r.status, r.json()["accepted"].as_u64()),
        (202, Some(6000)),
        "{}",
        r.text()
    );
    assert_eq!(service.metric("uniqd_ingest_buffered_bytes").await, 0.0);
    service.stop().await;
}

#[tokio::test]
async fn what_a_single_object_body_refused_before_is_now_a_stream_or_an_array() {
    let service = TestService::start().await;
    // An object and trailing data: the object is counted, the rest refused.
    let json = post_json(service.ingest, r#"{"ip":"1.2.3.4"} trailing"#)
        .await
        .expect_error(400, "invalid_elements");
    assert_eq!(
        (json["accepted"].as_u64(), json["rejected"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(json["errors"][0]["error"], "invalid_json", "{json}");
    // An array of numbers: every element refused as not an object.
    let json = post_json(service.ingest, "[1,2,3]")
        .await
        .expect_error(400, "invalid_elements");
    assert_eq!(json["rejected"], 3, "{json}");
    assert!(json["errors"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["error"] == "not_an_object"));
    // A single value that is not an object keeps its old answer.
    post_json(service.ingest, "42")
        .await
        .expect_error(400, "not_an_object");
    assert_eq!(service.unique().await, 1);
    service.stop().await;
}
