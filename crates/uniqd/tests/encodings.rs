//! `Content-Encoding` on `POST /logs`: `gzip`, `deflate` (zlib) and `zstd` bodies of every
//! shape decoded as they stream in (Vector `compression = "gzip"`/`"zstd"`, Fluent Bit
//! `compress gzip`); a decompression bomb gets 413 once it decodes past the limit, without the
//! memory; malformed data 400 `invalid_encoding` with nothing counted; any other coding 415
//! with `Accept-Encoding`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::codec::{encode, gzip, zlib, zstd};
use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use uniqd::AppConfig;

async fn post_encoded(
    service: &TestService,
    coding: &str,
    content_type: &str,
    body: &[u8],
) -> HttpResponse {
    let len = body.len().to_string();
    send_raw(
        service.ingest,
        request_bytes(
            "POST",
            "/logs",
            &[
                ("Content-Type", content_type),
                ("Content-Encoding", coding),
                ("Content-Length", &len),
            ],
            body,
        ),
    )
    .await
}

/// Every shape, in every coding: one object, an array, concatenated objects, NDJSON.
#[tokio::test]
async fn every_shape_in_every_coding_is_counted() {
    let service = TestService::start().await;
    let mut next = 0u32;
    let mut expected = 0u64;
    for coding in ["gzip", "deflate", "zstd"] {
        let mut ips = || {
            next += 1;
            distinct_ip(next)
        };
        let object = log_line(&ips());
        let array = format!(
            "[{}]",
            (0..20)
                .map(|_| log_line(&ips()))
                .collect::<Vec<_>>()
                .join(",")
        );
        let stream: String = (0..20).map(|_| log_line(&ips())).collect();
        let ndjson: String = (0..20).map(|_| format!("{}\n", log_line(&ips()))).collect();
        for (content_type, body, n) in [
            ("application/json", object, 1),
            ("application/json", array, 20),
            ("application/json", stream, 20),
            ("application/x-ndjson", ndjson, 20),
        ] {
            let r = post_encoded(
                &service,
                coding,
                content_type,
                &encode(coding, body.as_bytes()),
            )
            .await;
            assert_eq!(r.status, 202, "{coding} {content_type}: {}", r.text());
            assert_eq!(r.json()["accepted"], n, "{coding} {content_type}");
            expected += n;
        }
    }
    assert_eq!(service.unique().await, expected);
    service.stop().await;
}

/// Compressed bodies in small HTTP chunks, with the coding in any case (`x-gzip` too).
#[tokio::test]
async fn chunked_compressed_bodies() {
    let service = TestService::start().await;
    let ndjson: String = (0..500)
        .map(|i| format!("{}\n", log_line(&distinct_ip(i))))
        .collect();
    for (coding, encoded) in [
        ("GZIP", gzip(ndjson.as_bytes())),
        ("x-gzip", gzip(ndjson.as_bytes())),
        ("Zstd", zstd(ndjson.as_bytes())),
        ("deflate", zlib(ndjson.as_bytes())),
    ] {
        let mut raw = request_bytes(
            "POST",
            "/logs",
            &[
                ("Content-Type", "application/x-ndjson"),
                ("Content-Encoding", coding),
                ("Transfer-Encoding", "chunked"),
            ],
            b"",
        );
        for chunk in encoded.chunks(5) {
            raw.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
            raw.extend_from_slice(chunk);
            raw.extend_from_slice(b"\r\n");
        }
        raw.extend_from_slice(b"0\r\n\r\n");
        let r = send_raw(service.ingest, raw).await;
        assert_eq!(
            (r.status, r.json()["accepted"].as_u64()),
            (202, Some(500)),
            "{coding}: {}",
            r.text()
        );
    }
    assert_eq!(service.unique().await, 500);
    service.stop().await;
}

/// Resident set size of this process, in KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// Sends `head` and `body` while reading the answer, as a client that does not wait for
/// the server to read it all; returns what was received until the server closed.
async fn send_while_reading(service: &TestService, head: Vec<u8>, body: Vec<u8>) -> String {
    let stream = TcpStream::connect(service.ingest).await.unwrap();
    let (mut read, mut write) = stream.into_split();
    let writer = tokio::spawn(async move {
        let _ = write.write_all(&head).await;
        for part in body.chunks(64 * 1024) {
            if write.write_all(part).await.is_err() {
                break;
            }
        }
        write
    });
    let mut received = Vec::new();
    let _ = tokio::time::timeout(DEADLINE, read.read_to_end(&mut received)).await;
    drop(writer.await);
    String::from_utf8_lossy(&received).into_owned()
}

/// 1 GiB of zeros as 1,024 gzip members (or zstd frames) of 1 MiB each: a megabyte on the
/// wire. Answered 413 once the decoded bytes pass the limit, long before the end, with the
/// process's memory as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decompression_bomb_gets_413_without_the_memory() {
    let service = TestService::start().await;
    let mib = vec![0u8; 1 << 20];
    let bombs: Vec<(&str, &str, usize, Vec<u8>)> = [
        ("gzip", "application/x-ndjson", 64 << 20),
        ("zstd", "application/x-ndjson", 64 << 20),
        // As JSON, the zeros are one value over the object limit.
        ("gzip", "application/json", 1 << 20),
        ("deflate", "application/json", 1 << 20),
    ]
    .into_iter()
    .map(|(coding, content_type, limit)| {
        let bomb = if coding == "deflate" {
            // One zlib stream cannot be concatenated: 16 MiB of zeros in one.
            zlib(&mib.repeat(16))
        } else {
            encode(coding, &mib).repeat(1024)
        };
        (coding, content_type, limit, bomb)
    })
    .collect();
    drop(mib);
    // Built before measuring: what grows from here is the service's.
    let before = rss_kib();
    for (coding, content_type, limit, bomb) in bombs {
        let head = format!(
            "POST /logs HTTP/1.1\r\nHost: t\r\nContent-Type: {content_type}\r\n\
             Content-Encoding: {coding}\r\nContent-Length: {}\r\n\r\n",
            bomb.len()
        );
        let started = Instant::now();
        let answer = send_while_reading(&service, head.into_bytes(), bomb).await;
        assert!(answer.starts_with("HTTP/1.1 413"), "{coding}: {answer}");
        assert!(answer.contains("payload_too_large"), "{answer}");
        assert!(answer.contains(&format!("\"limit\":{limit}")), "{answer}");
        assert!(started.elapsed() < Duration::from_secs(30), "{coding}");
    }
    let grown = rss_kib().saturating_sub(before);
    // 64 MiB decoded from one NDJSON bomb, 1 GiB offered: the decoder held 64 KiB.
    assert!(grown < 16 * 1024, "RSS grew by {grown} KiB");
    assert_eq!(service.unique().await, 0);
    assert_eq!(service.metric("uniqd_ingest_buffered_bytes").await, 0.0);
    service.stop().await;
}

#[tokio::test]
async fn malformed_compressed_bodies_are_400_and_count_nothing() {
    let service = TestService::start().await;
    let line = log_line("198.51.100.30");
    let good = gzip(line.as_bytes());
    let mut flipped = good.clone();
    let at = flipped.len() / 2;
    flipped[at] ^= 0xff;
    for (coding, body) in [
        // A plain body labelled compressed.
        ("gzip", line.as_bytes().to_vec()),
        ("deflate", line.as_bytes().to_vec()),
        ("zstd", line.as_bytes().to_vec()),
        // Cut short, or damaged (the CRC catches what inflate does not).
        ("gzip", good[..good.len() - 4].to_vec()),
        ("gzip", flipped),
        ("zstd", zstd(line.as_bytes())[..10].to_vec()),
        ("deflate", gzip(line.as_bytes())),
    ] {
        let json = post_encoded(&service, coding, "application/json", &body)
            .await
            .expect_error(400, "invalid_encoding");
        let message = json["message"].as_str().unwrap();
        assert!(message.contains(coding), "{message}");
        assert!(message.contains("nothing was counted"), "{message}");
        assert!(json.get("accepted").is_none(), "{json}");
    }
    assert_eq!(service.unique().await, 0);
    // The next good request is counted.
    let r = post_encoded(&service, "gzip", "application/json", &good).await;
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(service.unique().await, 1);
    service.stop().await;
}

#[tokio::test]
async fn a_batch_whose_stream_breaks_reports_what_it_counted() {
    let service = TestService::start().await;
    let ndjson: String = (0..2000)
        .map(|i| format!("{}\n", log_line(&distinct_ip(i))))
        .collect();
    let mut encoded = zstd(ndjson.as_bytes());
    encoded.truncate(encoded.len() - 3);
    let json = post_encoded(&service, "zstd", "application/x-ndjson", &encoded)
        .await
        .expect_error(400, "invalid_encoding");
    let accepted = json["accepted"].as_u64().unwrap();
    assert_eq!(
        json["counted_through_line"].as_u64(),
        Some(accepted),
        "{json}"
    );
    assert!(accepted > 1000, "{json}");
    assert_eq!(service.unique().await, accepted);
    service.stop().await;
}

#[tokio::test]
async fn other_codings_are_415_naming_the_accepted_ones() {
    let mut config = AppConfig::default();
    config.ingest.max_object_bytes = 4096;
    let service = TestService::start_with(config).await;
    let line = log_line("198.51.100.40");
    for coding in ["br", "compress", "x-unknown", "gzip, zstd", "identity, br"] {
        let r = post_encoded(&service, coding, "application/json", line.as_bytes()).await;
        let json = r.expect_error(415, "unsupported_content_encoding");
        let message = json["message"].as_str().unwrap();
        for accepted in ["gzip", "deflate", "zstd", "identity"] {
            assert!(message.contains(accepted), "{message}");
        }
        assert_eq!(
            r.header("accept-encoding"),
            Some("gzip, deflate, zstd, identity"),
            "{coding}"
        );
    }
    assert_eq!(service.unique().await, 0);
    service.stop().await;
}
