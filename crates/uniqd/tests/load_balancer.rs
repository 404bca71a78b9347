//! End to end behind a real load balancer: Debian's HAProxy round-robins HTTP over three
//! uniqd replicas (in-process `uniqd::serve`) that share one real `redis-server`, and `uniqd
//! loadgen` sends through HAProxy. Every replica answers the same global total, the same
//! windows and the same top pages; Redis stopped mid-run and started again (empty), the
//! views converge to the union of everything without counting a page twice.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use clap::Parser as _;
use common::system::Haproxy;
use common::*;
use uniqd::loadgen::{self, LoadgenArgs};
use uniqd::{AppConfig, Cli, RedisConfig};
use uniqd_core::UniqueCounter;
use uniqd_testkit::redis::RedisServer;

const INTERVAL: Duration = Duration::from_millis(100);

/// HAProxy balancing `/logs` round-robin over `backends`.
fn balancer(backends: &[std::net::SocketAddr]) -> Haproxy {
    let servers: String = backends
        .iter()
        .enumerate()
        .map(|(i, addr)| format!("    server uniqd{i} {addr}\n"))
        .collect();
    Haproxy::start("haproxy-lb", |port| {
        format!(
            "defaults\n    mode http\n    timeout connect 5s\n    timeout client 10s\n    \
             timeout server 10s\nfrontend ingest\n    bind 127.0.0.1:{port}\n    \
             default_backend replicas\nbackend replicas\n    balance roundrobin\n{servers}"
        )
    })
}

/// `uniqd loadgen` through HAProxy: `addresses` fresh addresses from `offset`, in NDJSON
/// batches, every log requesting `page`.
async fn send(port: u16, offset: u64, addresses: u64, page: &str) {
    let url = format!("http://127.0.0.1:{port}/logs");
    let (offset, addresses) = (offset.to_string(), addresses.to_string());
    let flags = [
        "uniqd",
        "loadgen",
        "--url",
        &url,
        "--metrics-url",
        "",
        "--addresses",
        &addresses,
        "--offset",
        &offset,
        "--mode",
        "batch",
        "--batch-lines",
        "500",
        "--concurrency",
        "4",
        "--page-url",
        page,
        "--quiet",
    ];
    let Some(uniqd::Command::Loadgen(args)) = Cli::try_parse_from(flags).unwrap().command else {
        unreachable!("loadgen flags parse as loadgen")
    };
    let args: LoadgenArgs = args;
    let summary = loadgen::run(&args).await.expect("loadgen runs");
    assert_eq!(summary.requests_failed, 0, "{:?}", summary.first_error);
    assert_eq!(summary.logs_accepted, args.addresses);
}

/// Redis's count (the same estimator as uniqd-core's sketch) of loadgen addresses
/// `0..addresses`.
fn sketch_count(addresses: u64) -> u64 {
    let counter = UniqueCounter::new();
    for i in 0..addresses {
        counter
            .insert_str(&loadgen::address(i).to_string())
            .unwrap();
    }
    UniqueCounter::from_redis(&counter.to_redis())
        .unwrap()
        .estimate()
}

async fn json(service: &TestService, path: &str) -> serde_json::Value {
    let r = get(service.metrics, path).await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

/// What one replica answers: total, 5m window, 1h window, scope of both, and /stats.
async fn views(service: &TestService) -> (u64, u64, u64, bool, serde_json::Value) {
    let total = service.unique().await;
    let w5 = json(service, "/api/v1/unique?window=5m").await;
    let w1h = json(service, "/api/v1/unique?window=1h").await;
    let mut stats = json(service, "/stats").await;
    let global = w5["scope"] == "global" && stats["scope"] == "global";
    stats["scope"] = serde_json::Value::Null;
    (
        total,
        w5["unique_ip_addresses"].as_u64().unwrap(),
        w1h["unique_ip_addresses"].as_u64().unwrap(),
        global,
        stats,
    )
}

/// Whether every replica answers `expected` in all views, globally, with the same top pages
/// totalling `requests`; returns the common /stats then.
async fn converged(
    replicas: &[TestService],
    expected: u64,
    requests: u64,
) -> Option<serde_json::Value> {
    let mut first: Option<serde_json::Value> = None;
    for replica in replicas {
        let (total, w5, w1h, global, stats) = views(replica).await;
        if !(global && total == expected && w5 == expected && w1h == expected)
            || stats["total_requests"] != requests
            || first.as_ref().is_some_and(|f| *f != stats)
        {
            return None;
        }
        first = Some(stats);
    }
    first
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_behind_haproxy_answer_the_same_global_views() {
    let mut redis = RedisServer::start();
    let mut replicas = Vec::new();
    for _ in 0..3 {
        let config = AppConfig {
            redis: Some(RedisConfig {
                sync_interval: INTERVAL,
                ..RedisConfig::new(redis.url())
            }),
            ..AppConfig::default()
        };
        replicas.push(TestService::start_with(config).await);
    }
    let backends: Vec<_> = replicas.iter().map(|r| r.ingest).collect();
    let haproxy = balancer(&backends);
    poll_until("haproxy to accept connections", async || {
        tokio::net::TcpStream::connect(("127.0.0.1", haproxy.port))
            .await
            .is_ok()
    })
    .await;

    // 12,000 addresses, round-robined in batches of 500 over the three replicas.
    send(haproxy.port, 0, 12_000, "/lb/first").await;
    for replica in &replicas {
        let local = replica.metric("uniqd_local_unique_ip_addresses").await;
        assert!(local < 6_000.0, "each replica saw a share only: {local}");
    }
    let expected = sketch_count(12_000);
    let stats = poll_until("every replica answers the union", async || {
        converged(&replicas, expected, 12_000).await
    })
    .await;
    assert_eq!(page(&stats, "/lb/first"), (12_000, 0), "{stats}");
    assert_eq!(stats["error_bound"], 0);
    let truth = 12_000.0;
    assert!(
        (expected as f64 - truth).abs() <= 3.0 * 0.0082 * truth,
        "{expected} within 3 standard errors of {truth}"
    );

    // Redis dies mid-run: ingest through HAProxy goes on, views turn local.
    redis.kill();
    send(haproxy.port, 12_000, 3_000, "/lb/second").await;
    poll_until("every replica says local", async || {
        for replica in &replicas {
            if views(replica).await.3 {
                return false;
            }
        }
        true
    })
    .await;

    // Redis back, empty: everything converges to the union of both runs, pages not doubled.
    redis.restart();
    let expected = sketch_count(15_000);
    let stats = poll_until("every replica answers the union again", async || {
        converged(&replicas, expected, 15_000).await
    })
    .await;
    assert_eq!(page(&stats, "/lb/first"), (12_000, 0), "{stats}");
    assert_eq!(page(&stats, "/lb/second"), (3_000, 0), "{stats}");
    for replica in &replicas {
        let text = replica.scrape().await;
        assert_eq!(
            sample_value(&text, r#"unique_ip_addresses_window{window="5m"}"#),
            Some(expected as f64)
        );
        assert_eq!(
            sample_value(&text, r#"uniqd_top_page_requests{path="/lb/first"}"#),
            Some(12_000.0)
        );
        assert_eq!(
            sample_value(&text, r#"uniqd_views_scope{view="windows"}"#),
            Some(1.0)
        );
    }
    drop(haproxy);
    for replica in replicas {
        replica.stop().await;
    }
}
