//! Connection handling of the shared server loop, through the ingest port:
//! header/body/idle timeouts, oversized heads, the connection cap, and
//! graceful shutdown (in-flight requests finish, the drain deadline, readiness
//! turning to draining).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpStream;
use uniqd::AppConfig;

fn config_with(f: impl FnOnce(&mut uniqd_http::ServerConfig)) -> AppConfig {
    let mut config = AppConfig::default();
    f(&mut config.ingest.server);
    config
}

#[tokio::test]
async fn slow_request_head_is_cut_off() {
    let service = TestService::start_with(config_with(|s| {
        s.header_read_timeout = Duration::from_millis(300);
    }))
    .await;
    let mut stream = TcpStream::connect(service.ingest).await.unwrap();
    stream
        .write_all(b"POST /logs HTTP/1.1\r\nHost: t\r\n")
        .await
        .unwrap();
    wait_for_close(&mut stream, Duration::from_secs(10)).await;
    service.stop().await;
}

#[tokio::test]
async fn stalled_body_gets_408_and_counts_nothing() {
    let service = TestService::start_with(config_with(|s| {
        s.body_read_timeout = Duration::from_millis(300);
    }))
    .await;
    let mut stream = TcpStream::connect(service.ingest).await.unwrap();
    stream
        .write_all(
            b"POST /logs HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n\
              Content-Length: 100\r\n\r\n{\"ip\":\"1.2.",
        )
        .await
        .unwrap();
    let response = next_response(&mut stream).await;
    response.expect_error(408, "body_timeout");
    assert_eq!(response.header("connection"), Some("close"));
    assert_eq!(service.unique().await, 0);
    assert_eq!(
        service
            .metric("uniqd_ingest_requests_total{outcome=\"request_timeout\"}")
            .await,
        1.0
    );
    service.stop().await;
}

#[tokio::test]
async fn stalled_batch_reports_lines_already_counted() {
    let service = TestService::start_with(config_with(|s| {
        s.body_read_timeout = Duration::from_millis(300);
    }))
    .await;
    let mut stream = TcpStream::connect(service.ingest).await.unwrap();
    let lines = format!(
        "{}\n{}\n{{\"ip\":",
        log_line("4.4.4.4"),
        log_line("4.4.4.5")
    );
    let head = "POST /logs HTTP/1.1\r\nHost: t\r\nContent-Type: application/x-ndjson\r\n\
                Content-Length: 100000\r\n\r\n";
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(lines.as_bytes()).await.unwrap();
    let response = next_response(&mut stream).await;
    let json = response.expect_error(408, "body_timeout");
    assert_eq!(json["accepted"], 2);
    assert_eq!(service.unique().await, 2);
    service.stop().await;
}

/// Opens a connection and has one log (`ip`) accepted on it, kept alive; returns it.
async fn one_log_kept_alive(addr: std::net::SocketAddr, ip: &str) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request = keep_alive_post(None, log_line(ip).as_bytes());
    stream.write_all(&request).await.unwrap();
    let response = next_response(&mut stream).await;
    assert_eq!(response.status, 202);
    stream
}

#[tokio::test]
async fn idle_keep_alive_connection_is_closed() {
    // The idle timeout is shorter than the header timeout here, so it is the
    // idle timeout (not the header-read timeout) that must close it.
    let service = TestService::start_with(config_with(|s| {
        s.idle_timeout = Duration::from_millis(300);
        s.header_read_timeout = Duration::from_secs(60);
    }))
    .await;
    let mut stream = one_log_kept_alive(service.ingest, "3.3.3.3").await;
    // Kept alive after the response, then closed once idle.
    let rest = wait_for_close(&mut stream, Duration::from_secs(10)).await;
    assert!(rest.is_empty(), "{rest:?}");
    service.stop().await;
}

/// The header-read timeout counts whenever a connection waits for a request
/// head, including between requests on a kept-alive connection.
#[tokio::test]
async fn header_timeout_also_bounds_idle_keep_alive() {
    let service = TestService::start_with(config_with(|s| {
        s.idle_timeout = Duration::from_secs(60);
        s.header_read_timeout = Duration::from_millis(300);
    }))
    .await;
    let mut stream = one_log_kept_alive(service.ingest, "3.3.3.4").await;
    wait_for_close(&mut stream, Duration::from_secs(10)).await;
    service.stop().await;
}

#[tokio::test]
async fn oversized_request_head_gets_431() {
    let service = TestService::start_with(config_with(|s| {
        s.max_buf_size = 16 * 1024;
    }))
    .await;
    let huge = "a".repeat(64 * 1024);
    let r = send_raw(
        service.ingest,
        request_bytes(
            "POST",
            "/logs",
            &[("X-Huge", &huge), ("Content-Length", "2")],
            b"{}",
        ),
    )
    .await;
    assert_eq!(r.status, 431, "{}", r.text());
    service.stop().await;
}

#[tokio::test]
async fn connections_past_the_cap_wait_in_the_backlog() {
    cap_holds(config_with(|s| s.max_connections = 1)).await;
}

/// With a cap of one connection: a second waits until the first closes.
async fn cap_holds(config: AppConfig) {
    let service = TestService::start_with(config).await;
    // The first connection takes the only slot: prove it is being served by
    // getting a 100 Continue for a request whose body is not sent yet.
    let mut first = TcpStream::connect(service.ingest).await.unwrap();
    first
        .write_all(
            b"POST /logs HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\
              Expect: 100-continue\r\n\r\n",
        )
        .await
        .unwrap();
    expect_continue(&mut first).await;

    // The second completes the TCP handshake (kernel backlog) but is not
    // served while the first is open.
    let addr = service.ingest;
    let mut second = tokio::spawn(async move { post_json(addr, &log_line("2.2.2.2")).await });
    let early = tokio::time::timeout(Duration::from_millis(300), &mut second).await;
    assert!(early.is_err(), "second connection was served past the cap");

    // Closing the first frees the slot: the second is served.
    drop(first);
    let response = tokio::time::timeout(DEADLINE, second)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(response.status, 202, "{}", response.text());
    service.stop().await;
}

/// Opens a connection with a `POST /logs` whose body is still to come, and
/// returns once the service is reading it (so it is in flight).
async fn in_flight_request(addr: std::net::SocketAddr, content_length: usize) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /logs HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n\
         Content-Length: {content_length}\r\nExpect: 100-continue\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    expect_continue(&mut stream).await;
    stream
}

#[tokio::test]
async fn shutdown_finishes_in_flight_requests() {
    in_flight_request_finishes_on_shutdown(AppConfig::default()).await;
}

/// SIGTERM closes the listener, and a request in flight still gets its 202.
async fn in_flight_request_finishes_on_shutdown(config: AppConfig) {
    let mut service = TestService::start_with(config).await;
    let body = log_line("8.8.8.8");
    let mut stream = in_flight_request(service.ingest, body.len()).await;
    service.trigger_shutdown();
    // New connections are refused once the listener is closed.
    wait_until_refused(service.ingest).await;
    // The in-flight request still completes.
    stream.write_all(body.as_bytes()).await.unwrap();
    let response = next_response(&mut stream).await;
    assert_eq!(response.status, 202, "{}", response.text());
    assert_eq!(response.header("connection"), Some("close"));
    service.join().await.expect("clean shutdown");
}

#[tokio::test]
async fn drain_deadline_drops_stuck_connections() {
    let mut config = config_with(|s| {
        s.drain_timeout = Duration::from_millis(300);
        s.body_read_timeout = Duration::from_secs(60);
    });
    config.exporter.server.drain_timeout = Duration::from_millis(300);
    let mut service = TestService::start_with(config).await;
    let mut stream = in_flight_request(service.ingest, 100).await;
    stream.write_all(b"{\"ip\":").await.unwrap();
    service.trigger_shutdown();
    let started = std::time::Instant::now();
    service.join().await.expect("clean shutdown");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    let rest = wait_for_close(&mut stream, Duration::from_secs(10)).await;
    assert!(
        rest.is_empty(),
        "no response expected: {:?}",
        String::from_utf8_lossy(&rest)
    );
}

#[tokio::test]
async fn readiness_turns_to_draining_on_shutdown() {
    let mut config = AppConfig::default();
    config.ingest.server.drain_timeout = Duration::from_secs(20);
    let mut service = TestService::start_with(config).await;
    assert_eq!(get(service.metrics, "/readyz").await.status, 200);
    // An in-flight ingest request keeps the ingest drain (and so the metrics
    // server) alive while readiness is checked.
    let stream = in_flight_request(service.ingest, 50).await;
    service.trigger_shutdown();
    let r = poll_until("/readyz to turn 503", async || {
        Some(get(service.metrics, "/readyz").await).filter(|r| r.status == 503)
    })
    .await;
    assert_eq!(r.json()["status"], "draining");
    // Still scrapable while ingest drains.
    assert_eq!(get(service.metrics, "/metrics").await.status, 200);
    drop(stream);
    service.join().await.expect("clean shutdown");
}

/// Polls until connecting to `addr` is refused.
async fn wait_until_refused(addr: std::net::SocketAddr) {
    poll_until("the listener to close", async || {
        TcpStream::connect(addr).await.is_err()
    })
    .await;
}

/// Many connections at once over three runtime workers: every request is
/// answered and every address counted once.
#[tokio::test(flavor = "multi_thread", worker_threads = 3)]
async fn many_connections_count_every_request() {
    let service = TestService::start_with(AppConfig::default()).await;
    let addr = service.ingest;
    let clients: Vec<_> = (0..24)
        .map(|client| {
            tokio::spawn(async move {
                for n in 0..5 {
                    let r = post_json(addr, &log_line(&format!("10.0.{client}.{n}"))).await;
                    assert_eq!(r.status, 202, "{}", r.text());
                }
            })
        })
        .collect();
    for client in clients {
        client.await.unwrap();
    }
    assert_eq!(service.unique().await, 120);
    assert_eq!(
        service
            .metric("uniqd_ingest_requests_total{outcome=\"accepted\"}")
            .await,
        120.0
    );
    let stats = get(service.metrics, "/stats").await.json();
    assert_eq!(stats["shards"], 3, "one top pages shard per runtime worker");
    service.stop().await;
}
