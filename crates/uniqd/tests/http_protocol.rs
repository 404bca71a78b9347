//! The HTTP layer at its edges, on both ports: half-closed connections
//! (the client shuts down its write side after the request), requests hyper
//! rejects before they reach a service (every one answered with the same
//! JSON error shape as the service's own errors), a missing `Host`, and
//! bodies in an encoding uniqd does not decode (`Content-Encoding`, a
//! `Transfer-Encoding` other than `chunked`). `docs/reliability.md` lists
//! each case with its test.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write as _;
use std::net::SocketAddr;

use common::*;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// Writes `raw`, shuts down the write side, and reads everything until the
/// server closes.
async fn half_closed_exchange(addr: SocketAddr, raw: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    // The server may answer and close before it read everything.
    let _ = stream.write_all(raw).await;
    let _ = stream.shutdown().await;
    let mut received = Vec::new();
    tokio::time::timeout(DEADLINE, async {
        let mut chunk = [0u8; 8192];
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => received.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await
    .expect("the server neither answered nor closed in time");
    received
}

/// Parses the one response in `bytes`.
async fn parse_one(bytes: Vec<u8>) -> HttpResponse {
    let text = String::from_utf8_lossy(&bytes).into_owned();
    read_response(&mut bytes.as_slice())
        .await
        .unwrap_or_else(|e| panic!("no complete response ({e}): {text:?}"))
}

/// A keep-alive request (no `Connection: close`): the half-close alone ends
/// the connection.
fn keep_alive_request(content_type: &str, body: &[u8]) -> Vec<u8> {
    let mut raw = format!(
        "POST /logs HTTP/1.1\r\nHost: t\r\nContent-Type: {content_type}\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    raw.extend_from_slice(body);
    raw
}

// ---- item 5: half-closed connections ----

/// A keep-alive chunked request, `body` cut into `pieces` HTTP chunks.
fn keep_alive_chunked(content_type: &str, body: &[u8], pieces: usize) -> Vec<u8> {
    let mut raw = format!(
        "POST /logs HTTP/1.1\r\nHost: t\r\nContent-Type: {content_type}\r\n\
         Transfer-Encoding: chunked\r\n\r\n"
    )
    .into_bytes();
    for chunk in body.chunks(body.len().div_ceil(pieces)) {
        raw.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        raw.extend_from_slice(chunk);
        raw.extend_from_slice(b"\r\n");
    }
    raw.extend_from_slice(b"0\r\n\r\n");
    raw
}

#[tokio::test]
async fn half_closed_requests_are_answered_and_counted() {
    let service = TestService::start().await;
    let mut expected_lines = 0;
    // Small requests, and requests whose handling outlasts the read of the
    // client's EOF (a batch of 4,000 lines; an object in 600 chunks): hyper
    // took that EOF for an aborted request and dropped the answer.
    for round in 0..3u32 {
        let body = log_line(&format!("198.51.100.{round}"));
        let raw = keep_alive_request("application/json", body.as_bytes());
        let response = parse_one(half_closed_exchange(service.ingest, &raw).await).await;
        assert_eq!(response.status, 202, "{}", response.text());
        assert_eq!(response.json()["accepted"], 1);

        let mut padded = log_line(&format!("198.51.101.{round}")).into_bytes();
        padded.extend(std::iter::repeat_n(b' ', 60_000));
        let raw = keep_alive_chunked("application/json", &padded, 600);
        let response = parse_one(half_closed_exchange(service.ingest, &raw).await).await;
        assert_eq!(response.status, 202, "{}", response.text());

        for lines in [3u32, 4000] {
            let batch: String = (0..lines)
                .map(|j| log_line(&format!("10.{round}.{}.{}", j / 256, j % 256)) + "\n")
                .collect();
            let raw = keep_alive_request("application/x-ndjson", batch.as_bytes());
            let response = parse_one(half_closed_exchange(service.ingest, &raw).await).await;
            assert_eq!(response.status, 202, "{lines} lines: {}", response.text());
            assert_eq!(response.json()["accepted"], lines);
        }
        expected_lines += 1 + 1 + 3 + 4000;
    }
    // Every line of every answered request was counted.
    assert_eq!(
        service
            .metric("uniqd_ingest_lines_total{outcome=\"accepted\"}")
            .await,
        f64::from(expected_lines)
    );
    assert_eq!(
        service
            .metric("uniqd_ingest_requests_total{outcome=\"accepted\"}")
            .await,
        12.0
    );
    // Two pipelined requests, then the half-close: both answered.
    let mut raw = keep_alive_request("application/json", log_line("192.0.2.200").as_bytes());
    raw.extend(keep_alive_request(
        "application/json",
        log_line("192.0.2.201").as_bytes(),
    ));
    let text = String::from_utf8(half_closed_exchange(service.ingest, &raw).await).unwrap();
    assert_eq!(text.matches("HTTP/1.1 202 ").count(), 2, "{text}");
    assert_eq!(
        service
            .metric("uniqd_ingest_lines_total{outcome=\"accepted\"}")
            .await,
        f64::from(expected_lines + 2)
    );
    service.stop().await;
}

#[tokio::test]
async fn half_closed_requests_on_the_metrics_port_are_answered() {
    let service = TestService::start().await;
    for path in ["/healthz", "/metrics", "/status.json"] {
        let raw = format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n");
        let response = parse_one(half_closed_exchange(service.metrics, raw.as_bytes()).await).await;
        assert_eq!(response.status, 200, "{path}: {}", response.text());
        assert!(!response.body.is_empty(), "{path}");
    }
    service.stop().await;
}

// ---- item 6: protocol-level errors answer with the JSON error shape ----

/// Sends `raw` on its own connection and reads to the close; asserts one
/// `status` response with a JSON error body (`error`, `message`), the right
/// `content-length`, and nothing after it.
async fn json_protocol_error(addr: SocketAddr, raw: &[u8], status: u16) -> serde_json::Value {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let _ = stream.write_all(raw).await;
    let bytes = wait_for_close(&mut stream, DEADLINE).await;
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no complete head: {text:?}"));
    assert!(
        head.starts_with(&format!("HTTP/1.1 {status} ")),
        "{raw:?} -> {text}",
        raw = String::from_utf8_lossy(&raw[..raw.len().min(200)])
    );
    let lower = head.to_ascii_lowercase();
    assert!(
        lower.contains("\r\ncontent-type: application/json\r\n"),
        "{head}"
    );
    assert!(
        lower.contains(&format!("\r\ncontent-length: {}\r\n", body.len())),
        "{text}"
    );
    assert_eq!(lower.matches("content-length").count(), 1, "{head}");
    let json: serde_json::Value =
        serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
    assert!(
        json["error"].as_str().is_some_and(|c| !c.is_empty()),
        "{json}"
    );
    assert!(
        json["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{json}"
    );
    json
}

/// Request heads hyper rejects itself, with the status it answers.
fn malformed_heads() -> Vec<(&'static str, Vec<u8>, u16)> {
    let post = |extra: &str, body: &str| {
        format!(
            "POST /logs HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n{extra}\r\n{body}"
        )
        .into_bytes()
    };
    let body = r#"{"ip":"198.51.100.1"}"#;
    vec![
        (
            "duplicate Content-Length",
            post("Content-Length: 21\r\nContent-Length: 22\r\n", body),
            400,
        ),
        (
            "Content-Length not a number",
            post("Content-Length: 2x\r\n", body),
            400,
        ),
        (
            "negative Content-Length",
            post("Content-Length: -1\r\n", body),
            400,
        ),
        (
            "Transfer-Encoding not ending in chunked",
            post("Transfer-Encoding: chunked, gzip\r\n", body),
            400,
        ),
        (
            "Transfer-Encoding and Content-Length on HTTP/1.0",
            format!("POST /logs HTTP/1.0\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n{body}")
                .into_bytes(),
            400,
        ),
        (
            "obs-fold",
            post("X-Folded: a\r\n  b\r\nContent-Length: 21\r\n", body),
            400,
        ),
        (
            "unknown HTTP version",
            b"GET /healthz HTTP/1.2\r\nHost: t\r\n\r\n".to_vec(),
            400,
        ),
        (
            "HTTP/3 in the request line",
            b"GET /healthz HTTP/3.0\r\nHost: t\r\n\r\n".to_vec(),
            400,
        ),
        (
            "garbage bytes",
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 garbage\r\n\r\n".to_vec(),
            400,
        ),
        (
            "bad method",
            b"G@T / HTTP/1.1\r\nHost: t\r\n\r\n".to_vec(),
            400,
        ),
        (
            "space in the header name",
            b"GET / HTTP/1.1\r\nHost: t\r\nBad Name: x\r\n\r\n".to_vec(),
            400,
        ),
        (
            "head too large",
            format!(
                "GET / HTTP/1.1\r\nHost: t\r\nX-Huge: {}\r\n\r\n",
                "a".repeat(100 * 1024)
            )
            .into_bytes(),
            431,
        ),
        (
            "too many headers",
            format!(
                "GET / HTTP/1.1\r\nHost: t\r\n{}\r\n",
                (0..200)
                    .map(|i| format!("X-H{i}: v\r\n"))
                    .collect::<String>()
            )
            .into_bytes(),
            431,
        ),
    ]
}

#[tokio::test]
async fn protocol_errors_get_the_json_error_shape_on_both_ports() {
    let service = TestService::start().await;
    let r = post_json(service.ingest, &log_line("192.0.2.1")).await;
    assert_eq!(r.status, 202);
    for (what, raw, status) in malformed_heads() {
        for addr in [service.ingest, service.metrics] {
            let json = json_protocol_error(addr, &raw, status).await;
            assert!(json["error"] != "accepted", "{what} on {addr}: {json}");
        }
    }
    // Nothing of it was counted, and both servers still serve.
    assert_eq!(service.unique().await, 1);
    let r = post_json(service.ingest, &log_line("192.0.2.2")).await;
    assert_eq!(r.status, 202);
    assert_eq!(service.unique().await, 2);
    service.stop().await;
}

#[tokio::test]
async fn uri_too_long_gets_the_json_error_shape() {
    // A URI over 65,534 bytes (hyper's own limit) needs a head limit above it.
    let mut config = uniqd::AppConfig::default();
    config.ingest.server.max_buf_size = 256 * 1024;
    config.exporter.server.max_buf_size = 256 * 1024;
    let service = TestService::start_with(config).await;
    let raw = format!("GET /{} HTTP/1.1\r\nHost: t\r\n\r\n", "a".repeat(70_000)).into_bytes();
    for addr in [service.ingest, service.metrics] {
        let json = json_protocol_error(addr, &raw, 414).await;
        assert_eq!(json["error"], "uri_too_long");
    }
    service.stop().await;
}

#[tokio::test]
async fn a_shared_connection_rewrites_only_hypers_own_answer() {
    // A good request, then a bad one on the same connection: the 202 is
    // untouched, the 400 after it gets the JSON shape.
    let service = TestService::start().await;
    let mut raw = keep_alive_request("application/json", log_line("192.0.2.9").as_bytes());
    raw.extend_from_slice(
        b"POST /logs HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
    );
    let mut stream = TcpStream::connect(service.ingest).await.unwrap();
    stream.write_all(&raw).await.unwrap();
    let bytes = wait_for_close(&mut stream, DEADLINE).await;
    let mut reader = bytes.as_slice();
    let first = read_response(&mut reader).await.unwrap();
    assert_eq!(first.status, 202, "{}", first.text());
    assert_eq!(first.json()["accepted"], 1);
    let second_start = String::from_utf8_lossy(&bytes)[1..]
        .find("HTTP/1.1 ")
        .expect("a second answer")
        + 1;
    let second = read_response(&mut &bytes[second_start..]).await.unwrap();
    second.expect_error(400, "bad_request");
    assert_eq!(service.unique().await, 1);
    service.stop().await;
}

#[tokio::test]
async fn http_2_preface_is_closed_without_an_answer() {
    // hyper's HTTP/1 server recognises the HTTP/2 connection preface and
    // closes without writing anything (it has no HTTP/1 answer to rewrite).
    let service = TestService::start().await;
    for addr in [service.ingest, service.metrics] {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
            .await
            .unwrap();
        let bytes = wait_for_close(&mut stream, DEADLINE).await;
        assert!(bytes.is_empty(), "{:?}", String::from_utf8_lossy(&bytes));
    }
    service.stop().await;
}

#[tokio::test]
async fn http_1_1_without_host_is_400_json_on_both_ports() {
    let service = TestService::start().await;
    let body = log_line("198.51.100.77");
    let no_host = format!(
        "POST /logs HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let two_hosts = format!(
        "POST /logs HTTP/1.1\r\nHost: a\r\nHost: b\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    for raw in [no_host, two_hosts] {
        send_raw(service.ingest, raw.into_bytes())
            .await
            .expect_error(400, "missing_host");
    }
    for raw in [
        "GET /metrics HTTP/1.1\r\n\r\n",
        "GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n",
    ] {
        send_raw(service.metrics, raw.as_bytes().to_vec())
            .await
            .expect_error(400, "missing_host");
    }
    // HTTP/1.0 does not need one.
    let raw = format!(
        "POST /logs HTTP/1.0\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let r = send_raw(service.ingest, raw.into_bytes()).await;
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(service.unique().await, 1);
    service.stop().await;
}

// ---- item 7: Content-Encoding and Transfer-Encoding ----

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut child = std::process::Command::new("gzip")
        .arg("-c")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("gzip is installed");
    child.stdin.take().unwrap().write_all(data).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    out.stdout
}

#[tokio::test]
async fn content_encoding_other_than_identity_is_415() {
    // Renamed in meaning: gzip, deflate and zstd are decoded now (tests/encodings.rs); every
    // other coding, and stacked codings, are still refused before the body is read.
    let service = TestService::start().await;
    let plain = log_line("198.51.100.90");
    let gzipped = gzip(plain.as_bytes());
    let ndjson = format!("{plain}\n");
    for (encoding, content_type, body) in [
        ("br", "application/x-ndjson", ndjson.as_bytes().to_vec()),
        ("compress", "application/json", plain.as_bytes().to_vec()),
        (
            "identity, br",
            "application/json",
            plain.as_bytes().to_vec(),
        ),
        ("gzip, gzip", "application/json", gzip(&gzipped)),
        ("x-unknown", "application/json", plain.as_bytes().to_vec()),
    ] {
        let len = body.len().to_string();
        let raw = request_bytes(
            "POST",
            "/logs",
            &[
                ("Content-Type", content_type),
                ("Content-Encoding", encoding),
                ("Content-Length", &len),
            ],
            &body,
        );
        let r = send_raw(service.ingest, raw).await;
        let json = r.expect_error(415, "unsupported_content_encoding");
        let message = json["message"].as_str().unwrap();
        assert!(message.contains("identity"), "{message}");
        assert_eq!(
            r.header("accept-encoding"),
            Some("gzip, deflate, zstd, identity"),
            "{encoding}"
        );
    }
    // Also two codings on two Content-Encoding lines.
    let raw = format!(
        "POST /logs HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Encoding: zstd\r\n\
         Content-Encoding: gzip\r\nContent-Length: {}\r\n\r\n{plain}",
        plain.len()
    );
    send_raw(service.ingest, raw.into_bytes())
        .await
        .expect_error(415, "unsupported_content_encoding");
    // A plain body labelled gzip is refused as what it is not.
    let len = plain.len().to_string();
    let raw = request_bytes(
        "POST",
        "/logs",
        &[("Content-Encoding", "gzip"), ("Content-Length", &len)],
        plain.as_bytes(),
    );
    send_raw(service.ingest, raw)
        .await
        .expect_error(400, "invalid_encoding");
    assert_eq!(service.unique().await, 0);
    assert_eq!(
        service
            .metric("uniqd_ingest_requests_total{outcome=\"unsupported_media_type\"}")
            .await,
        6.0
    );
    // A real gzip body, chunked, with `identity` listed too, is decoded and counted.
    let mut raw = request_bytes(
        "POST",
        "/logs",
        &[
            ("Content-Encoding", "identity, gzip"),
            ("Transfer-Encoding", "chunked"),
        ],
        b"",
    );
    raw.extend_from_slice(format!("{:x}\r\n", gzipped.len()).as_bytes());
    raw.extend_from_slice(&gzipped);
    raw.extend_from_slice(b"\r\n0\r\n\r\n");
    let r = send_raw(service.ingest, raw).await;
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(service.unique().await, 1);

    // identity (any case, also listed twice) is the body as it is.
    for encoding in ["identity", "Identity", "identity, identity"] {
        let len = plain.len().to_string();
        let raw = request_bytes(
            "POST",
            "/logs",
            &[("Content-Encoding", encoding), ("Content-Length", &len)],
            plain.as_bytes(),
        );
        let r = send_raw(service.ingest, raw).await;
        assert_eq!(r.status, 202, "{encoding}: {}", r.text());
    }
    assert_eq!(service.unique().await, 1);
    service.stop().await;
}

#[tokio::test]
async fn transfer_encoding_other_than_chunked_is_refused() {
    let service = TestService::start().await;
    let plain = log_line("198.51.100.91");
    let gzipped = gzip(plain.as_bytes());
    for encoding in [
        "gzip, chunked",
        "deflate,chunked",
        "x-custom, chunked",
        "chunked, chunked",
    ] {
        let mut raw = request_bytes(
            "POST",
            "/logs",
            &[
                ("Content-Type", "application/json"),
                ("Transfer-Encoding", encoding),
            ],
            b"",
        );
        let body = if encoding.starts_with("gzip") {
            gzipped.clone()
        } else {
            plain.as_bytes().to_vec()
        };
        raw.extend_from_slice(format!("{:x}\r\n", body.len()).as_bytes());
        raw.extend_from_slice(&body);
        raw.extend_from_slice(b"\r\n0\r\n\r\n");
        let json = send_raw(service.ingest, raw)
            .await
            .expect_error(501, "unsupported_transfer_encoding");
        let message = json["message"].as_str().unwrap();
        assert!(message.contains("chunked"), "{message}");
    }
    // Not ending in chunked, or on HTTP/1.0: hyper refuses it first, as JSON too.
    for raw in [
        format!("POST /logs HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\n{plain}"),
        format!(
            "POST /logs HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked, identity\r\n\r\n{plain}"
        ),
    ] {
        json_protocol_error(service.ingest, raw.as_bytes(), 400).await;
    }
    // Plain chunked still works, in any case.
    let mut raw = request_bytes(
        "POST",
        "/logs",
        &[
            ("Content-Type", "application/json"),
            ("Transfer-Encoding", "Chunked"),
        ],
        b"",
    );
    raw.extend_from_slice(format!("{:x}\r\n{plain}\r\n0\r\n\r\n", plain.len()).as_bytes());
    let r = send_raw(service.ingest, raw).await;
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(service.unique().await, 1);
    service.stop().await;
}
