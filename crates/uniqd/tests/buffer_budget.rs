//! The global budget for request bytes held in uniqd's buffers
//! (`--max-buffered-bytes`): bodies that stall part-way hold their share,
//! a request that would pass the budget gets 503 with `Retry-After` and the
//! JSON error shape, and once the holders finish requests pass again. A
//! single object in one piece never touches the budget. `docs/reliability.md`
//! lists the behaviour, and the RSS measured with many stalled clients.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpStream;
use uniqd::AppConfig;

const BUDGET: usize = 4096;

async fn service() -> TestService {
    let mut config = AppConfig::default();
    config.ingest.max_buffered_bytes = BUDGET;
    TestService::start_with(config).await
}

/// The head of a chunked `POST /logs`.
fn chunked_head(content_type: &str) -> Vec<u8> {
    format!(
        "POST /logs HTTP/1.1\r\nHost: t\r\nContent-Type: {content_type}\r\n\
         Transfer-Encoding: chunked\r\n\r\n"
    )
    .into_bytes()
}

fn chunk(data: &[u8]) -> Vec<u8> {
    let mut out = format!("{:x}\r\n", data.len()).into_bytes();
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
    out
}

/// A log object padded to `len` bytes, cut after `cut` bytes.
fn padded_object(ip: &str, len: usize) -> Vec<u8> {
    let start = format!(r#"{{"ip":"{ip}","pad":""#);
    let mut out = start.into_bytes();
    out.resize(len - 2, b'x');
    out.extend_from_slice(b"\"}");
    out
}

async fn buffered(service: &TestService) -> f64 {
    service.metric("uniqd_ingest_buffered_bytes").await
}

#[tokio::test]
async fn a_spent_budget_answers_503_until_the_holder_finishes() {
    let service = service().await;

    // A: a single object whose first 3,000 bytes arrive, then nothing.
    let object_a = padded_object("198.51.100.1", 3500);
    let mut a = TcpStream::connect(service.ingest).await.unwrap();
    let mut raw = chunked_head("application/json");
    raw.extend(chunk(&object_a[..3000]));
    a.write_all(&raw).await.unwrap();
    poll_until("A's partial body to be held in the budget", async || {
        let held = buffered(&service).await;
        if held >= 3000.0 {
            Ok(held)
        } else {
            Err(held)
        }
    })
    .await;

    // B: another object in pieces needs 2,000 more bytes: 503.
    let object_b = padded_object("198.51.100.2", 2500);
    let mut raw = chunked_head("application/json");
    raw.extend(chunk(&object_b[..2000]));
    raw.extend(chunk(&object_b[2000..]));
    raw.extend_from_slice(b"0\r\n\r\n");
    let r = send_raw(service.ingest, raw.clone()).await;
    let json = r.expect_error(503, "server_busy");
    assert_eq!(r.header("retry-after"), Some("1"), "{json}");
    assert_eq!(r.header("connection"), Some("close"), "{json}");

    // C: an NDJSON batch whose second line is split between chunks: the
    // chunk's carry does not fit, so the chunk is refused before any of it
    // is counted; 503 with the progress (nothing counted).
    let line_1 = log_line("198.51.100.3") + "\n";
    let line_2 = padded_object("198.51.100.4", 2500);
    let mut ndjson = chunked_head("application/x-ndjson");
    let mut first = line_1.clone().into_bytes();
    first.extend_from_slice(&line_2[..2000]);
    ndjson.extend(chunk(&first));
    ndjson.extend(chunk(&line_2[2000..]));
    ndjson.extend_from_slice(b"0\r\n\r\n");
    let r = send_raw(service.ingest, ndjson.clone()).await;
    let json = r.expect_error(503, "server_busy");
    assert_eq!(
        (&json["accepted"], &json["rejected"]),
        (&0.into(), &0.into()),
        "{json}"
    );
    assert_eq!(r.header("retry-after"), Some("1"));

    // A single object in one piece is parsed from hyper's buffer: no budget.
    let r = post_json(service.ingest, &log_line("198.51.100.5")).await;
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(
        service
            .metric("uniqd_ingest_requests_total{outcome=\"service_unavailable\"}")
            .await,
        2.0
    );

    // A finishes: 202, its share given back, and B and C pass.
    let mut rest = chunk(&object_a[3000..]);
    rest.extend_from_slice(b"0\r\n\r\n");
    a.write_all(&rest).await.unwrap();
    let r = next_response(&mut a).await;
    assert_eq!(r.status, 202, "{}", r.text());
    poll_until("the budget to be given back", async || {
        let held = buffered(&service).await;
        if held == 0.0 {
            Ok(())
        } else {
            Err(held)
        }
    })
    .await;
    let r = send_raw(service.ingest, raw).await;
    assert_eq!(r.status, 202, "{}", r.text());
    let r = send_raw(service.ingest, ndjson).await;
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(r.json()["accepted"], 2);
    assert_eq!(service.unique().await, 5);
    assert_eq!(buffered(&service).await, 0.0);
    service.stop().await;
}

#[tokio::test]
async fn a_stalled_body_that_times_out_gives_its_share_back() {
    let mut config = AppConfig::default();
    config.ingest.max_buffered_bytes = BUDGET;
    config.ingest.server.body_read_timeout = std::time::Duration::from_millis(300);
    let service = TestService::start_with(config).await;
    let object = padded_object("198.51.100.9", 3500);
    let mut a = TcpStream::connect(service.ingest).await.unwrap();
    let mut raw = chunked_head("application/json");
    raw.extend(chunk(&object[..3000]));
    a.write_all(&raw).await.unwrap();
    let r = next_response(&mut a).await;
    r.expect_error(408, "body_timeout");
    assert_eq!(buffered(&service).await, 0.0);
    // The whole budget is free again.
    let mut raw = chunked_head("application/json");
    let big = padded_object("198.51.100.10", BUDGET);
    raw.extend(chunk(&big[..BUDGET / 2]));
    raw.extend(chunk(&big[BUDGET / 2..]));
    raw.extend_from_slice(b"0\r\n\r\n");
    let r = send_raw(service.ingest, raw).await;
    assert_eq!(r.status, 202, "{}", r.text());
    service.stop().await;
}
