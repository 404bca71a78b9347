//! Scale-out through a real `redis-server` (started by each test on a free loopback port):
//! replicas (in-process `uniqd::serve` instances) share one global count, survive a Redis
//! outage and restart without losing an address, and write nothing while nothing changes.
//! Replicas here share only the total (windows and top pages off); `tests/redis_views.rs`
//! covers the shared windows and top pages, `tests/load_balancer.rs` all of it behind HAProxy.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::ops::Range;
use std::time::{Duration, Instant};

use common::*;
use uniqd::redis_sync::config::DEFAULT_REDIS_KEY;
use uniqd::{AppConfig, RedisConfig};
use uniqd_core::UniqueCounter;
use uniqd_testkit::redis::{Conn, RedisServer};

/// Short, so that tests take a few seconds; the logic does not depend on it.
const INTERVAL: Duration = Duration::from_millis(100);

/// A replica sharing only the total: these tests count its keys and commands. The windows and
/// top pages through Redis are `tests/redis_views.rs`.
fn replica_config(redis: &RedisServer, key: &str, interval: Duration) -> AppConfig {
    AppConfig {
        redis: Some(RedisConfig {
            key: key.to_owned(),
            sync_interval: interval,
            ..RedisConfig::new(redis.url())
        }),
        windows: None,
        top_pages: uniqd::TopPagesConfig {
            capacity: 0,
            ..uniqd::TopPagesConfig::default()
        },
        ..AppConfig::default()
    }
}

async fn start_replicas(n: usize, redis: &RedisServer, key: &str) -> Vec<TestService> {
    let mut replicas = Vec::new();
    for _ in 0..n {
        replicas.push(TestService::start_with(replica_config(redis, key, INTERVAL)).await);
    }
    replicas
}

fn addresses(range: Range<u32>) -> Vec<String> {
    range.map(distinct_ip).collect()
}

/// POSTs `ips` as NDJSON batches of 2,000 lines, asserting 202 for each.
async fn post_addresses(service: &TestService, ips: &[String]) {
    for batch in ips.chunks(2_000) {
        let body: String = batch.iter().map(|ip| log_line(ip) + "\n").collect();
        let r = post_ndjson(service.ingest, &body).await;
        assert_eq!(r.status, 202, "{}", r.text());
    }
}

/// Every replica reports `expected` as `unique_ip_addresses` and `uniqd_redis_up 1`.
async fn all_report(replicas: &[TestService], expected: u64) -> bool {
    for replica in replicas {
        if replica.unique().await != expected || replica.metric("uniqd_redis_up").await != 1.0 {
            return false;
        }
    }
    true
}

/// `PFCOUNT` of `elements` added with `PFADD` to a fresh key of the server behind `conn`.
fn pfcount_of(conn: &mut Conn, check_key: &str, elements: &[String]) -> u64 {
    conn.pfadd_all(check_key, elements);
    conn.pfcount(check_key)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_share_one_global_count() {
    let redis = RedisServer::start();
    let mut conn = redis.connect();
    let replicas = start_replicas(3, &redis, DEFAULT_REDIS_KEY).await;
    // Overlapping shares; the first replica stays in its exact phase (< 4,096 addresses).
    let shares = [0..3_000, 1_000..21_000, 15_000..40_000];

    let merged = UniqueCounter::new();
    for (replica, share) in replicas.iter().zip(shares) {
        let ips = addresses(share);
        post_addresses(replica, &ips).await;
        let local = UniqueCounter::new();
        for ip in &ips {
            local.insert_str(ip).unwrap();
        }
        assert_eq!(
            replica.metric("uniqd_local_unique_ip_addresses").await,
            local.estimate() as f64,
            "the replica's own count"
        );
        merged.merge(&local);
    }

    let union = pfcount_of(&mut conn, "check:union", &addresses(0..40_000));
    assert_eq!(merged.estimate(), union, "merging the local counters");
    poll_until("every replica reports PFCOUNT of the union", async || {
        all_report(&replicas, union).await
    })
    .await;
    assert_eq!(conn.pfcount(DEFAULT_REDIS_KEY), union);
    let shared = conn.cmd(&[b"GET", DEFAULT_REDIS_KEY.as_bytes()]).bytes();
    assert_eq!(
        UniqueCounter::from_redis(&shared).unwrap().registers(),
        merged.registers(),
        "the shared key holds exactly the union's registers"
    );

    for replica in &replicas {
        let text = replica.scrape().await;
        assert_valid_openmetrics(&text);
        assert_eq!(
            sample_value(&text, "uniqd_redis_sync_errors_total"),
            Some(0.0)
        );
        let age = sample_value(&text, "uniqd_redis_last_sync_timestamp_seconds").unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        assert!((now - age).abs() < 60.0, "last sync {age} vs now {now}");
        let ready = get(replica.metrics, "/readyz").await;
        assert_eq!(ready.status, 200);
        let json = ready.json();
        assert_eq!(json["redis"]["up"], true, "{json}");
        assert_eq!(json["redis"]["key"], DEFAULT_REDIS_KEY, "{json}");
    }
    // Temporary merge keys never outlive their transaction: only the shared key, the check
    // key and one marker per replica exist.
    assert_eq!(conn.cmd(&[b"DBSIZE"]).int(), 2 + 3);
    for replica in replicas {
        replica.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_outage_and_restart_loses_nothing() {
    let mut redis = RedisServer::start();
    let replicas = start_replicas(2, &redis, DEFAULT_REDIS_KEY).await;

    // Before: both replicas synced.
    post_addresses(&replicas[0], &addresses(0..5_000)).await;
    post_addresses(&replicas[1], &addresses(2_500..7_500)).await;
    let before = pfcount_of(&mut redis.connect(), "check:before", &addresses(0..7_500));
    poll_until("synced before the outage", async || {
        all_report(&replicas, before).await
    })
    .await;

    // Outage: Redis dies (no persistence). Ingest keeps answering 202 and counting.
    redis.kill();
    let during = addresses(7_500..15_000);
    let mut chunks = during.chunks(500).enumerate();
    poll_until("both replicas report uniqd_redis_up 0", async || {
        if let Some((i, chunk)) = chunks.next() {
            post_addresses(&replicas[i % 2], chunk).await;
        }
        for replica in &replicas {
            if replica.metric("uniqd_redis_up").await != 0.0 {
                return false;
            }
        }
        true
    })
    .await;
    for (i, chunk) in chunks {
        post_addresses(&replicas[i % 2], chunk).await;
    }
    for replica in &replicas {
        assert!(replica.metric("uniqd_redis_sync_errors_total").await >= 1.0);
        let ready = get(replica.metrics, "/readyz").await;
        assert_eq!(ready.status, 200, "readiness does not depend on Redis");
        assert_eq!(ready.json()["redis"]["up"], false);
        assert!(
            replica.metric("uniqd_local_unique_ip_addresses").await >= 5_000.0,
            "still counting locally"
        );
    }

    // Redis returns empty on the same port; more traffic arrives.
    redis.restart();
    post_addresses(&replicas[1], &addresses(15_000..20_000)).await;
    let mut conn = redis.connect();
    let union = pfcount_of(&mut conn, "check:union", &addresses(0..20_000));
    poll_until("the global count converges to the union", async || {
        all_report(&replicas, union).await
    })
    .await;
    assert_eq!(conn.pfcount(DEFAULT_REDIS_KEY), union);
    for replica in replicas {
        replica.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_redis_delays_only_the_sync() {
    let redis = RedisServer::start();
    let mut conn = redis.connect();
    let timeout = Duration::from_millis(300);
    let mut config = replica_config(&redis, DEFAULT_REDIS_KEY, INTERVAL);
    if let Some(redis) = &mut config.redis {
        redis.timeout = timeout;
    }
    let replica = TestService::start_with(config).await;
    poll_until("first sync", async || {
        replica.metric("uniqd_redis_up").await == 1.0
    })
    .await;

    // Redis stops answering any client for 3 s (slow, not down: connections stay open).
    conn.cmd(&[b"CLIENT", b"PAUSE", b"3000", b"ALL"]);
    let paused = Instant::now();
    let ips = addresses(0..2_000);
    let mut posted = 0;
    poll_until("uniqd_redis_up 0 after a round timed out", async || {
        if posted < ips.len() {
            let started = Instant::now();
            post_addresses(&replica, &ips[posted..posted + 100]).await;
            posted += 100;
            assert!(
                started.elapsed() < Duration::from_secs(1),
                "ingest waited {:?} while redis was paused",
                started.elapsed()
            );
        }
        replica.metric("uniqd_redis_up").await == 0.0
    })
    .await;
    assert!(
        paused.elapsed() < Duration::from_secs(3),
        "noticed during the pause"
    );
    post_addresses(&replica, &ips[posted..]).await;

    let mut check = redis.connect(); // waits out the pause
    let expected = pfcount_of(&mut check, "check", &ips);
    poll_until("synced after the pause", async || {
        all_report(std::slice::from_ref(&replica), expected).await
    })
    .await;
    assert_eq!(conn.pfcount(DEFAULT_REDIS_KEY), expected);
    replica.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_written_while_nothing_changes_and_a_lost_key_is_restored() {
    let redis = RedisServer::start();
    let mut conn = redis.connect();
    let replica = TestService::start_with(replica_config(
        &redis,
        DEFAULT_REDIS_KEY,
        Duration::from_millis(50),
    ))
    .await;
    post_addresses(&replica, &addresses(0..1_000)).await;
    let expected = pfcount_of(&mut conn, "check", &addresses(0..1_000));
    poll_until("first sync", async || {
        all_report(std::slice::from_ref(&replica), expected).await
    })
    .await;

    // Idle: only the marker refresh and the count read, no write of the sketch.
    conn.cmd(&[b"CONFIG", b"RESETSTAT"]);
    poll_until("ten idle sync rounds", async || {
        conn.command_calls("pfcount") >= 10
    })
    .await;
    for command in ["set", "pfmerge", "del", "multi", "exec"] {
        assert_eq!(conn.command_calls(command), 0, "{command} while idle");
    }
    assert!(conn.command_calls("pexpire") >= 10);

    // One new address: exactly one merge.
    post_addresses(&replica, &addresses(1_000..1_001)).await;
    poll_until("one merge", async || conn.command_calls("pfmerge") == 1).await;
    let rounds = conn.command_calls("pfcount");
    poll_until("five more rounds", async || {
        conn.command_calls("pfcount") >= rounds + 5
    })
    .await;
    assert_eq!(conn.command_calls("pfmerge"), 1, "one change, one merge");
    assert_eq!(conn.command_calls("set"), 2, "merge key and marker, once");

    // An operator flushes the database (no disconnection): the marker is gone too, so the
    // replica merges its registers again.
    let expected = pfcount_of(&mut conn, "check", &addresses(0..1_001));
    conn.cmd(&[b"FLUSHALL"]);
    poll_until("the shared key is restored", async || {
        conn.pfcount(DEFAULT_REDIS_KEY) == expected
    })
    .await;
    assert_eq!(replica.metric("uniqd_redis_sync_errors_total").await, 0.0);
    replica.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_merges_what_the_last_interval_counted() {
    let redis = RedisServer::start();
    let mut conn = redis.connect();
    // An interval longer than the test: only the first round and the final merge run.
    let replica = TestService::start_with(replica_config(
        &redis,
        DEFAULT_REDIS_KEY,
        Duration::from_secs(3600),
    ))
    .await;
    poll_until("first sync", async || {
        replica.metric("uniqd_redis_up").await == 1.0
    })
    .await;
    let ips = addresses(0..300);
    post_addresses(&replica, &ips).await;
    replica.stop().await;
    assert_eq!(
        conn.pfcount(DEFAULT_REDIS_KEY),
        pfcount_of(&mut conn, "check", &ips)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_merge_transaction_is_valid_on_redis_cluster() {
    // A cluster node rejects a MULTI whose keys span hash slots (CROSSSLOT): the helper keys
    // must carry the shared key's slot, with and without a hash tag in the key.
    let redis = RedisServer::start_cluster_node();
    let mut conn = redis.connect();
    for key in [DEFAULT_REDIS_KEY, "{tenant-a}:unique"] {
        let replica = TestService::start_with(replica_config(&redis, key, INTERVAL)).await;
        let ips = addresses(0..200);
        post_addresses(&replica, &ips).await;
        let expected = pfcount_of(&mut conn, &format!("{key}:check"), &ips);
        poll_until("synced with the cluster node", async || {
            all_report(std::slice::from_ref(&replica), expected).await
        })
        .await;
        assert_eq!(conn.pfcount(key), expected);
        assert_eq!(replica.metric("uniqd_redis_sync_errors_total").await, 0.0);
        replica.stop().await;
    }
}

#[tokio::test]
async fn without_redis_nothing_changes() {
    let service = TestService::start().await;
    post_json(service.ingest, &log_line("10.1.2.3")).await;
    let text = service.scrape().await;
    assert_eq!(sample_value(&text, "unique_ip_addresses"), Some(1.0));
    assert!(!text.contains("uniqd_redis"), "{text}");
    assert!(!text.contains("uniqd_local_unique_ip_addresses"), "{text}");
    let ready = get(service.metrics, "/readyz").await.json();
    assert!(ready.get("redis").is_none(), "{ready}");
    service.stop().await;
}
