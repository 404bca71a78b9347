//! Resource limits that `connections.rs` does not already show: a request
//! head trickled byte by byte is cut off, connections past the cap do not
//! grow the process, and memory stays bounded whatever the body.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::process::Process;
use common::*;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use uniqd::AppConfig;

#[tokio::test]
async fn head_trickled_byte_by_byte_is_dropped() {
    // Slowloris: one byte every 100 ms of a 120-byte head would take 12 s;
    // the 1 s header deadline counts from the first byte, not the last one.
    let mut config = AppConfig::default();
    config.ingest.server.header_read_timeout = Duration::from_secs(1);
    let service = TestService::start_with(config).await;
    let stream = TcpStream::connect(service.ingest).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let head = format!(
        "POST /logs HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n\
         Content-Length: 20\r\nX-Padding: {}\r\n\r\n",
        "p".repeat(16)
    );
    let started = Instant::now();
    let trickle = tokio::spawn(async move {
        let mut sent = 0;
        for byte in head.bytes() {
            if writer.write_all(&[byte]).await.is_err() {
                break;
            }
            sent += 1;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        (sent, head.len())
    });
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(DEADLINE, reader.read_to_end(&mut rest)).await;
    assert!(closed.is_ok(), "the trickling client was never dropped");
    let elapsed = started.elapsed();
    let (sent, total) = trickle.await.unwrap();
    assert!(sent < total, "the whole head got through ({sent} bytes)");
    assert!(
        elapsed < Duration::from_secs(6),
        "dropped only after {elapsed:?}"
    );
    // hyper closes without an answer: a timed-out head gets no response.
    assert!(rest.is_empty(), "{:?}", String::from_utf8_lossy(&rest));
    assert_eq!(service.unique().await, 0);
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_past_the_cap_do_not_grow_the_process() {
    const CAP: usize = 8;
    // Below the listen backlog (128): past it, connect() itself waits.
    const CLIENTS: usize = 100;
    let process = Process::spawn(&[
        "--max-connections",
        &CAP.to_string(),
        "--header-read-timeout",
        "60s",
        "--idle-timeout",
        "60s",
    ]);
    // Descriptors before any connection (the warm-up's socket may still be
    // closing afterwards); RSS after one request, so lazily allocated state
    // exists before the baseline.
    let fds_before = process.open_fds();
    let r = post_json(process.ingest, &log_line("198.51.100.1")).await;
    assert_eq!(r.status, 202);
    let rss_before = process.rss_kib();

    // Clients connect and send half a request head; only CAP are accepted.
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        let mut stream = TcpStream::connect(process.ingest).await.unwrap();
        stream
            .write_all(b"POST /logs HTTP/1.1\r\nHost: t\r\n")
            .await
            .unwrap();
        clients.push(stream);
    }
    // Nothing to poll for when proving a negative: give the server 300 ms
    // to (wrongly) accept more.
    let held = poll_until("the cap to fill", async || {
        let fds = process.open_fds();
        (fds >= fds_before + CAP).then_some(fds)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let fds_during = process.open_fds().max(held);
    let rss_during = process.rss_kib();
    assert!(
        fds_during <= fds_before + CAP + 2,
        "{fds_before} descriptors before, {fds_during} with {CLIENTS} clients (cap {CAP})"
    );
    assert!(
        rss_during < rss_before + 8 * 1024,
        "RSS grew from {rss_before} KiB to {rss_during} KiB"
    );

    // Once the clients leave, the service serves again.
    drop(clients);
    let r = post_json(process.ingest, &log_line("198.51.100.2")).await;
    assert_eq!(r.status, 202, "{}", r.text());
    process.signal("TERM");
    assert!(process.wait().0.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_stays_bounded_whatever_the_body() {
    let process = Process::spawn(&[]);
    assert_eq!(
        post_json(process.ingest, &log_line("198.51.100.1"))
            .await
            .status,
        202
    );
    let rss_before = process.rss_kib();

    // A 48 MiB NDJSON batch (under the 64 MiB limit) that is one endless
    // line: skipped as it streams, never buffered (the line limit is 1 MiB).
    let mut body = Vec::with_capacity(48 << 20);
    body.extend_from_slice(br#"{"ip":"198.51.100.2","pad":""#);
    body.resize((48 << 20) - 40, b'x');
    body.extend_from_slice(b"\"}\n");
    body.extend_from_slice(log_line("198.51.100.3").as_bytes());
    let json = post(process.ingest, "/logs", Some("application/x-ndjson"), &body)
        .await
        .expect_error(400, "invalid_lines");
    assert_eq!(json["accepted"], 1);
    assert_eq!(json["errors"][0]["error"], "line_too_long");
    drop(body);

    // A 16 MiB single object sent chunked (no Content-Length): cut at 1 MiB.
    let chunk = vec![b' '; 1 << 20];
    let chunks: Vec<&[u8]> = std::iter::repeat_n(chunk.as_slice(), 16).collect();
    post_chunked(process.ingest, "/logs", "application/json", &chunks)
        .await
        .expect_error(413, "payload_too_large");

    // Neither body was held: the process grew by far less than either.
    let rss_after = process.rss_kib();
    assert!(
        rss_after < rss_before + 12 * 1024,
        "RSS grew from {rss_before} KiB to {rss_after} KiB"
    );
    let text = get(process.metrics, "/metrics").await.text();
    assert_eq!(sample_value(&text, "unique_ip_addresses"), Some(2.0));
    process.signal("TERM");
    assert!(process.wait().0.success());
}
