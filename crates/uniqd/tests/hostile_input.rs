//! Hostile and unusual requests to `POST /logs`, one test per kind of bad
//! input: JSON that is not a log object (malformed, truncated, not UTF-8, the
//! wrong type, a missing or invalid `ip`), bodies that lie about or exceed
//! their size or type, request heads hyper rejects itself, and valid but
//! unusual requests (HTTP/1.0, pipelining, `Expect: 100-continue`, chunked)
//! that must keep working. `docs/reliability.md` lists each case with its test.
//!
//! Every rejected request is checked three ways: the status, the JSON error
//! body, and that the count is untouched (the service has counted one address
//! before, still has exactly that one after, and still counts the next).
//! Where hyper answers by itself (431, a malformed request line), the
//! connection rewrites its bodiless answer into the same JSON error shape;
//! those tests pin down exactly what is sent.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use serde_json::Value;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use uniqd::AppConfig;

/// Address counted before each bad request.
const BEFORE: &str = "192.0.2.1";
/// Address counted after it, to show the service still counts.
const AFTER: &str = "192.0.2.2";

/// A service that has counted [`BEFORE`].
async fn primed(config: AppConfig) -> TestService {
    let service = TestService::start_with(config).await;
    let r = post_json(service.ingest, &log_line(BEFORE)).await;
    assert_eq!(r.status, 202, "{}", r.text());
    service
}

/// Asserts the count is still 1, then that the service counts [`AFTER`].
async fn untouched_and_alive(service: TestService) {
    assert_eq!(
        service.unique().await,
        1,
        "the bad request changed the count"
    );
    let r = post_json(service.ingest, &log_line(AFTER)).await;
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(service.unique().await, 2);
    service.stop().await;
}

/// Sends `raw` to a primed service; asserts `status` with JSON `code`, an
/// untouched count and a live service. Returns the error body.
async fn rejected_with(config: AppConfig, raw: Vec<u8>, status: u16, code: &str) -> Value {
    let service = primed(config).await;
    let json = send_raw(service.ingest, raw)
        .await
        .expect_error(status, code);
    untouched_and_alive(service).await;
    json
}

async fn rejected(raw: Vec<u8>, status: u16, code: &str) -> Value {
    rejected_with(AppConfig::default(), raw, status, code).await
}

fn json_request(body: &[u8]) -> Vec<u8> {
    let len = body.len().to_string();
    request_bytes(
        "POST",
        "/logs",
        &[
            ("Content-Type", "application/json"),
            ("Content-Length", &len),
        ],
        body,
    )
}

/// Reads everything until the server closes the connection.
async fn read_to_close(stream: &mut TcpStream) -> String {
    let mut out = Vec::new();
    tokio::time::timeout(DEADLINE, stream.read_to_end(&mut out))
        .await
        .expect("server did not close in time")
        .expect("read");
    String::from_utf8_lossy(&out).into_owned()
}

// ---- JSON that is not a log object ----

#[tokio::test]
async fn malformed_json_is_400() {
    let json = rejected(
        json_request(br#"{"ip": "1.2.3.4",, }"#),
        400,
        "invalid_json",
    )
    .await;
    assert!(json["message"].as_str().unwrap().contains("byte"), "{json}");
}

#[tokio::test]
async fn truncated_json_is_400() {
    let json = rejected(json_request(br#"{"ip":"1.2.3.4""#), 400, "invalid_json").await;
    assert!(json["message"].as_str().unwrap().contains("byte"), "{json}");
}

#[tokio::test]
async fn not_utf8_is_400() {
    rejected(
        json_request(b"{\"ip\":\"1.2.3.4\",\"ua\":\"\xff\xfe\"}"),
        400,
        "invalid_utf8",
    )
    .await;
    // Latin-1 inside the address itself.
    rejected(
        json_request(b"{\"ip\":\"1.2.3.\xb4\"}"),
        400,
        "invalid_utf8",
    )
    .await;
}

#[tokio::test]
async fn array_of_non_objects_is_400() {
    // An array of objects is a batch (tests/body_shapes.rs); its elements must be objects.
    let json = rejected(
        json_request(br#"[["ip","1.2.3.4"]]"#),
        400,
        "invalid_elements",
    )
    .await;
    assert_eq!(json["errors"][0]["error"], "not_an_object", "{json}");
    assert_eq!(json["accepted"], 0, "{json}");
}

#[tokio::test]
async fn string_instead_of_object_is_400() {
    rejected(json_request(br#""1.2.3.4""#), 400, "not_an_object").await;
}

#[tokio::test]
async fn number_instead_of_object_is_400() {
    rejected(json_request(b"42"), 400, "not_an_object").await;
}

#[tokio::test]
async fn ip_missing_is_400() {
    rejected(
        json_request(br#"{"url":"/a","IP":"1.2.3.4"}"#),
        400,
        "missing_ip",
    )
    .await;
}

#[tokio::test]
async fn ip_null_is_400() {
    rejected(json_request(br#"{"ip":null}"#), 400, "ip_not_a_string").await;
}

#[tokio::test]
async fn ip_number_is_400() {
    rejected(json_request(br#"{"ip":16909060}"#), 400, "ip_not_a_string").await;
}

#[tokio::test]
async fn ip_object_is_400() {
    rejected(
        json_request(br#"{"ip":{"v4":"1.2.3.4"}}"#),
        400,
        "ip_not_a_string",
    )
    .await;
}

#[tokio::test]
async fn invalid_addresses_are_400() {
    let long = "1".repeat(10 * 1024);
    let service = primed(AppConfig::default()).await;
    for ip in [
        "999.1.1.1",
        "1.2.3",
        "1.2.3.4.5",
        "01.2.3.4",
        "",
        " 1.2.3.4",
        "fe80::1%eth0",
        long.as_str(),
    ] {
        let body = format!(r#"{{"ip":"{ip}"}}"#);
        let json = post_json(service.ingest, &body)
            .await
            .expect_error(400, "invalid_ip");
        let message = json["message"].as_str().unwrap();
        // The value is quoted back, cut to 64 bytes.
        assert!(message.contains(&ip[..ip.len().min(64)]), "{message}");
        assert!(message.len() < 200, "{} bytes", message.len());
        assert_eq!(service.unique().await, 1, "{ip:?} changed the count");
    }
    untouched_and_alive(service).await;
}

#[tokio::test]
async fn duplicate_ip_keys_last_one_wins() {
    let service = primed(AppConfig::default()).await;
    // The last `ip` is valid: counted (and only it).
    let r = post_json(
        service.ingest,
        r#"{"ip":"not an address","ip":"198.51.100.7"}"#,
    )
    .await;
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(service.unique().await, 2);
    // The last `ip` is invalid: rejected, the valid first one not counted.
    post_json(service.ingest, r#"{"ip":"198.51.100.8","ip":"bad"}"#)
        .await
        .expect_error(400, "invalid_ip");
    post_json(service.ingest, r#"{"ip":"198.51.100.9","ip":null}"#)
        .await
        .expect_error(400, "ip_not_a_string");
    assert_eq!(service.unique().await, 2);
    // 198.51.100.7 was the one counted: posting it again changes nothing.
    assert_eq!(
        post_json(service.ingest, &log_line("198.51.100.7"))
            .await
            .status,
        202
    );
    assert_eq!(service.unique().await, 2);
    service.stop().await;
}

#[tokio::test]
async fn deeply_nested_json_in_other_fields() {
    let nest = |depth: usize| -> Vec<u8> {
        let mut body = br#"{"ip":"198.51.100.1","x":"#.to_vec();
        body.extend(std::iter::repeat_n(b'[', depth));
        body.extend(std::iter::repeat_n(b']', depth));
        body.push(b'}');
        body
    };
    // Within simd-json's depth limit (1024): skipped without recursion, counted.
    let service = primed(AppConfig::default()).await;
    let r = send_raw(service.ingest, json_request(&nest(1000))).await;
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(service.unique().await, 2);
    service.stop().await;
    // 200,000 levels: rejected as invalid JSON, no stack overflow, not counted.
    let json = rejected(json_request(&nest(200_000)), 400, "invalid_json").await;
    assert!(json["message"].as_str().is_some(), "{json}");
}

// ---- bodies: size, length, type, emptiness ----

#[tokio::test]
async fn over_limit_by_content_length_is_413_before_reading() {
    // Only the head is sent: the 413 cannot have waited for the 64 MiB body
    // (the limit of a JSON body, which may be an array).
    let json = rejected(
        request_bytes(
            "POST",
            "/logs",
            &[
                ("Content-Type", "application/json"),
                ("Content-Length", "67108865"),
            ],
            b"",
        ),
        413,
        "payload_too_large",
    )
    .await;
    assert_eq!(json["limit"], 64 * 1024 * 1024);
}

#[tokio::test]
async fn over_limit_chunked_is_413_before_the_end_of_the_body() {
    let mut config = AppConfig::default();
    config.ingest.max_object_bytes = 1024;
    let service = primed(config).await;
    let mut stream = TcpStream::connect(service.ingest).await.unwrap();
    let mut raw = request_bytes(
        "POST",
        "/logs",
        &[
            ("Content-Type", "application/json"),
            ("Transfer-Encoding", "chunked"),
        ],
        b"",
    );
    // Two 600-byte chunks pass the 1 KiB limit; the terminating chunk is
    // never sent, so the answer comes before the body ends.
    let chunk = format!(r#"{{"ip":"198.51.100.1","pad":"{}"#, "x".repeat(570));
    for _ in 0..2 {
        raw.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        raw.extend_from_slice(chunk.as_bytes());
        raw.extend_from_slice(b"\r\n");
    }
    stream.write_all(&raw).await.unwrap();
    let r = tokio::time::timeout(DEADLINE, read_response(&mut stream))
        .await
        .expect("413 before the body ended")
        .unwrap();
    let json = r.expect_error(413, "payload_too_large");
    assert_eq!(json["limit"], 1024);
    assert_eq!(r.header("connection"), Some("close"));
    untouched_and_alive(service).await;
}

#[tokio::test]
async fn content_length_shorter_than_the_body() {
    // `Content-Length: 10` of a 22-byte object: the body is its first 10
    // bytes, which are not a JSON object.
    let body = br#"{"ip":"198.51.100.1"}"#;
    let mut raw = request_bytes(
        "POST",
        "/logs",
        &[
            ("Content-Type", "application/json"),
            ("Content-Length", "10"),
        ],
        b"",
    );
    raw.extend_from_slice(body);
    rejected(raw, 400, "invalid_json").await;

    // On a kept-alive connection the remaining bytes are read as the next
    // request: hyper rejects that one itself (400, given the JSON error
    // shape by the connection) and closes.
    let service = primed(AppConfig::default()).await;
    let mut stream = TcpStream::connect(service.ingest).await.unwrap();
    let mut raw = b"POST /logs HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\n".to_vec();
    raw.extend_from_slice(body);
    stream.write_all(&raw).await.unwrap();
    let text = read_to_close(&mut stream).await;
    assert!(text.starts_with("HTTP/1.1 400 "), "{text}");
    assert!(text.contains(r#""error":"invalid_json""#), "{text}");
    let second = text[1..]
        .find("HTTP/1.1 400 Bad Request\r\n")
        .expect("hyper's 400")
        + 1;
    assert!(
        text[second..].contains("content-type: application/json\r\n"),
        "{text}"
    );
    assert!(text[second..].ends_with(r#""error":"bad_request","message":"the request is not valid HTTP/1.1: a malformed request line, method, URI, version or header (including a duplicate or invalid Content-Length, an invalid Transfer-Encoding, or a folded header line)"}"#), "{text}");
    untouched_and_alive(service).await;
}

#[tokio::test]
async fn content_length_longer_than_the_body() {
    // The client stops sending (connection kept open): 408 after the body
    // read timeout.
    let mut config = AppConfig::default();
    config.ingest.server.body_read_timeout = Duration::from_millis(300);
    let service = primed(config).await;
    let mut stream = TcpStream::connect(service.ingest).await.unwrap();
    let body = br#"{"ip":"198.51.100.1"}"#;
    let mut raw = b"POST /logs HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n".to_vec();
    raw.extend_from_slice(body);
    stream.write_all(&raw).await.unwrap();
    let r = next_response(&mut stream).await;
    r.expect_error(408, "body_timeout");
    untouched_and_alive(service).await;

    // The client closes its sending side: the body is cut short, 400.
    let service = primed(AppConfig::default()).await;
    let stream = TcpStream::connect(service.ingest).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    writer.write_all(&raw).await.unwrap();
    writer.shutdown().await.unwrap();
    let r = next_response(&mut reader).await;
    r.expect_error(400, "body_read_error");
    untouched_and_alive(service).await;
}

#[tokio::test]
async fn unsupported_content_type_is_415() {
    for content_type in [
        "application/x-www-form-urlencoded",
        "text/csv",
        "application/jsonl",
        "multipart/form-data; boundary=x",
    ] {
        let body = br#"{"ip":"198.51.100.1"}"#;
        let raw = request_bytes(
            "POST",
            "/logs",
            &[("Content-Type", content_type), ("Content-Length", "21")],
            body,
        );
        let json = rejected(raw, 415, "unsupported_media_type").await;
        let message = json["message"].as_str().unwrap();
        assert!(message.contains("application/x-ndjson"), "{message}");
    }
}

#[tokio::test]
async fn ndjson_batch_with_one_bad_line() {
    let service = primed(AppConfig::default()).await;
    let body = [
        log_line("198.51.100.1"),
        log_line("198.51.100.2"),
        r#"{"ip":"198.51.100.300"}"#.to_owned(),
        log_line("198.51.100.3"),
    ]
    .join("\n");
    let json = post_ndjson(service.ingest, &body)
        .await
        .expect_error(400, "invalid_lines");
    assert_eq!(json["accepted"], 3);
    assert_eq!(json["rejected"], 1);
    assert_eq!(json["errors"].as_array().unwrap().len(), 1);
    assert_eq!(json["errors"][0]["line"], 3);
    assert_eq!(json["errors"][0]["error"], "invalid_ip");
    // The good lines were counted, the bad one not.
    assert_eq!(service.unique().await, 4);
    service.stop().await;
}

#[tokio::test]
async fn empty_body_is_400() {
    let service = primed(AppConfig::default()).await;
    for raw in [
        json_request(b""),
        json_request(b" \r\n\t"),
        request_bytes(
            "POST",
            "/logs",
            &[
                ("Content-Type", "application/x-ndjson"),
                ("Content-Length", "3"),
            ],
            b"\n\n\n",
        ),
        request_bytes(
            "POST",
            "/logs",
            &[
                ("Content-Type", "application/json"),
                ("Transfer-Encoding", "chunked"),
            ],
            b"0\r\n\r\n",
        ),
        // No Content-Length and no Transfer-Encoding: an empty body.
        request_bytes(
            "POST",
            "/logs",
            &[("Content-Type", "application/json")],
            b"",
        ),
    ] {
        send_raw(service.ingest, raw)
            .await
            .expect_error(400, "empty_body");
    }
    untouched_and_alive(service).await;
}

// ---- heads hyper rejects itself ----

/// Sends `raw`; hyper answers `status` itself, which the connection turns
/// into the JSON error shape (`code`): one response with the JSON content
/// type and the body's exact length, and the connection closed.
async fn hyper_rejects(raw: Vec<u8>, status: u16, code: &str) {
    let service = primed(AppConfig::default()).await;
    let mut stream = TcpStream::connect(service.ingest).await.unwrap();
    // The server may close before reading everything it was sent.
    let _ = stream.write_all(&raw).await;
    let text = read_to_close(&mut stream).await;
    assert!(text.starts_with(&format!("HTTP/1.1 {status} ")), "{text}");
    let (head, body) = text.split_once("\r\n\r\n").expect("a complete head");
    assert!(
        head.contains(&format!("\r\ncontent-length: {}\r\n", body.len())),
        "{head}"
    );
    assert!(
        head.contains("\r\ncontent-type: application/json\r\n"),
        "{head}"
    );
    assert!(head.contains("\r\nconnection: close\r\n"), "{head}");
    let json: Value = serde_json::from_str(body).expect("a JSON body");
    assert_eq!(json["error"], code, "{json}");
    assert!(json["message"].as_str().is_some_and(|m| !m.is_empty()));
    untouched_and_alive(service).await;
}

#[tokio::test]
async fn enormous_header_is_431() {
    let huge = "a".repeat(100 * 1024);
    hyper_rejects(
        json_request_with_header("X-Huge", &huge),
        431,
        "header_fields_too_large",
    )
    .await;
}

#[tokio::test]
async fn too_many_headers_is_431() {
    let mut raw = b"POST /logs HTTP/1.1\r\nHost: t\r\n".to_vec();
    for i in 0..200 {
        raw.extend_from_slice(format!("X-H{i}: v\r\n").as_bytes());
    }
    raw.extend_from_slice(b"Content-Length: 2\r\n\r\n{}");
    hyper_rejects(raw, 431, "header_fields_too_large").await;
}

#[tokio::test]
async fn malformed_request_line_is_400() {
    hyper_rejects(
        b"POST /logs HTTP/9.9 nonsense\r\n\r\n".to_vec(),
        400,
        "bad_request",
    )
    .await;
    hyper_rejects(
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03".to_vec(),
        400,
        "bad_request",
    )
    .await;
}

fn json_request_with_header(name: &str, value: &str) -> Vec<u8> {
    let body = br#"{"ip":"198.51.100.1"}"#;
    request_bytes(
        "POST",
        "/logs",
        &[(name, value), ("Content-Length", "21")],
        body,
    )
}

// ---- valid but unusual requests keep working ----

#[tokio::test]
async fn http_1_0_without_keep_alive() {
    let service = TestService::start().await;
    let mut stream = TcpStream::connect(service.ingest).await.unwrap();
    let body = log_line("198.51.100.10");
    let raw = format!(
        "POST /logs HTTP/1.0\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(raw.as_bytes()).await.unwrap();
    // HTTP/1.0 without `Connection: keep-alive`: answered, then closed.
    let text = read_to_close(&mut stream).await;
    assert!(text.starts_with("HTTP/1.0 202 "), "{text}");
    assert!(text.ends_with(r#"{"accepted":1}"#), "{text}");
    assert_eq!(service.unique().await, 1);
    service.stop().await;
}

#[tokio::test]
async fn pipelined_requests() {
    let service = TestService::start().await;
    let mut stream = TcpStream::connect(service.ingest).await.unwrap();
    let mut raw = Vec::new();
    for (i, ip) in ["198.51.100.21", "198.51.100.22", "bad", "198.51.100.23"]
        .iter()
        .enumerate()
    {
        let body = log_line(ip);
        let close = if i == 3 { "Connection: close\r\n" } else { "" };
        raw.extend_from_slice(
            format!(
                "POST /logs HTTP/1.1\r\nHost: t\r\n{close}Content-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        );
    }
    // All four in one write, before any answer.
    stream.write_all(&raw).await.unwrap();
    let text = read_to_close(&mut stream).await;
    let statuses: Vec<&str> = text
        .match_indices("HTTP/1.1 ")
        .map(|(i, _)| &text[i + 9..i + 12])
        .collect();
    assert_eq!(statuses, ["202", "202", "400", "202"], "{text}");
    assert_eq!(service.unique().await, 3);
    service.stop().await;
}

#[tokio::test]
async fn expect_100_continue() {
    let service = TestService::start().await;
    let mut stream = TcpStream::connect(service.ingest).await.unwrap();
    let body = log_line("198.51.100.30");
    let head = format!(
        "POST /logs HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nExpect: 100-continue\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    expect_continue(&mut stream).await;
    stream.write_all(body.as_bytes()).await.unwrap();
    let r = next_response(&mut stream).await;
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(service.unique().await, 1);
    service.stop().await;
}

#[tokio::test]
async fn chunked_bodies() {
    let service = TestService::start().await;
    let single = log_line("198.51.100.40");
    let chunks: Vec<&[u8]> = single.as_bytes().chunks(5).collect();
    let r = post_chunked(service.ingest, "/logs", "application/json", &chunks).await;
    assert_eq!(r.status, 202, "{}", r.text());
    let batch: String = (41..=45)
        .map(|i| log_line(&format!("198.51.100.{i}")) + "\n")
        .collect();
    let chunks: Vec<&[u8]> = batch.as_bytes().chunks(13).collect();
    let r = post_chunked(service.ingest, "/logs", "application/x-ndjson", &chunks).await;
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(r.json()["accepted"], 5);
    assert_eq!(service.unique().await, 6);
    service.stop().await;
}
