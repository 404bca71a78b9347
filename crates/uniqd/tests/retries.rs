//! What a re-sent batch does to each view (shippers deliver at least once), and error answers
//! of a partly counted batch telling the client what was counted (`accepted`,
//! `counted_through_line`), so that it can resend only the rest.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpStream;
use uniqd::AppConfig;

fn line(i: u32) -> String {
    format!(
        "{{\"ip\":\"{}\",\"url\":\"/page/{}\"}}",
        distinct_ip(i),
        i % 3
    )
}

/// Requests of one page path as `/stats` lists it.
async fn page_count(service: &TestService, path: &str) -> u64 {
    let json = get(service.metrics, "/stats?limit=100").await.json();
    json["pages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["path"] == path)
        .map_or(0, |p| p["count"].as_u64().unwrap())
}

/// The same batch sent three times: the unique count and the windows are unchanged by the
/// repeats, the page counts and the accepted-line counter add each delivery (as documented).
#[tokio::test]
async fn a_resent_batch_is_idempotent_for_unique_counts_only() {
    let service = TestService::start().await;
    let body = format!(
        "{}\n{}\n",
        r#"{"ip":"198.51.100.1","url":"/home"}"#, r#"{"ip":"198.51.100.2","url":"/home"}"#
    );
    for _ in 0..3 {
        let r = post_ndjson(service.ingest, &body).await;
        assert_eq!(r.status, 202, "{}", r.text());
    }
    assert_eq!(service.unique().await, 2);
    let window = get(service.metrics, "/api/v1/unique?window=5m")
        .await
        .json();
    assert_eq!(window["unique_ip_addresses"], 2, "{window}");
    assert_eq!(page_count(&service, "/home").await, 6);
    assert_eq!(
        service
            .metric("uniqd_ingest_lines_total{outcome=\"accepted\"}")
            .await,
        6.0
    );
    service.stop().await;
}

/// A 413 in the middle of a streamed batch says through which line it counted; resending only
/// the lines after it counts every line exactly once, in every view.
#[tokio::test]
async fn a_batch_cut_by_413_resent_from_counted_through_line_counts_each_line_once() {
    let mut config = AppConfig::default();
    config.ingest.max_batch_bytes = 16 * 1024;
    let service = TestService::start_with(config).await;
    let lines: Vec<String> = (0..800).map(line).collect();
    let body: String = lines.iter().map(|l| format!("{l}\n")).collect();
    let chunks: Vec<&[u8]> = body.as_bytes().chunks(1024).collect();
    let r = post_chunked(service.ingest, "/logs", "application/x-ndjson", &chunks).await;
    let json = r.expect_error(413, "payload_too_large");
    let through = json["counted_through_line"]
        .as_u64()
        .expect("counted_through_line");
    assert!(through > 0 && through < 800, "{json}");
    assert_eq!(json["accepted"], through, "{json}");
    assert!(
        json["message"]
            .as_str()
            .unwrap()
            .contains(&format!("line {through}")),
        "{json}"
    );
    assert_eq!(service.unique().await, through);

    // Resend the rest, in batches under the limit.
    let rest = &lines[usize::try_from(through).unwrap()..];
    for part in rest.chunks(100) {
        let body: String = part.iter().map(|l| format!("{l}\n")).collect();
        assert_eq!(post_ndjson(service.ingest, &body).await.status, 202);
    }
    assert_eq!(service.unique().await, 800);
    for page in 0..3 {
        let expected = (0..800).filter(|i| i % 3 == page).count() as u64;
        assert_eq!(
            page_count(&service, &format!("/page/{page}")).await,
            expected
        );
    }
    assert_eq!(
        service
            .metric("uniqd_ingest_lines_total{outcome=\"accepted\"}")
            .await,
        800.0
    );
    service.stop().await;
}

/// A 400 with bad lines and a 408 on a stalled body say through which line they counted
/// (blank lines count in the numbering).
#[tokio::test]
async fn partly_counted_errors_say_through_which_line() {
    let mut config = AppConfig::default();
    config.ingest.server.body_read_timeout = Duration::from_millis(300);
    let service = TestService::start_with(config).await;
    let body = format!("{}\n\n{{\"ip\":1}}\n{}\n", line(1), line(2));
    let json = post_ndjson(service.ingest, &body)
        .await
        .expect_error(400, "invalid_lines");
    assert_eq!(json["accepted"], 2, "{json}");
    assert_eq!(json["counted_through_line"], 4, "{json}");

    let mut stream = TcpStream::connect(service.ingest).await.unwrap();
    let partial = format!("{}\n\n{}\n{{\"ip\":", line(3), line(4));
    let head = "POST /logs HTTP/1.1\r\nHost: t\r\nContent-Type: application/x-ndjson\r\n\
                Content-Length: 100000\r\n\r\n";
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(partial.as_bytes()).await.unwrap();
    let json = next_response(&mut stream)
        .await
        .expect_error(408, "body_timeout");
    assert_eq!(json["accepted"], 2, "{json}");
    assert_eq!(json["counted_through_line"], 3, "{json}");
    assert_eq!(service.unique().await, 4);
    service.stop().await;
}
