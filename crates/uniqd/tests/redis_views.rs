//! The time windows and top pages through a real `redis-server` (started by each test on a
//! free loopback port): replicas (in-process `uniqd::serve` instances) answer the union of
//! every replica in `unique_ip_addresses_window`, `/api/v1/unique`, `/series`,
//! `uniqd_top_page_requests` and `/stats`, say `"scope":"global"`, fall back to their own
//! views marked `local` while Redis is down, and converge again after a flush or a restart
//! without counting a page twice.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use uniqd::{AppConfig, RedisConfig};
use uniqd_testkit::redis::{Conn, RedisServer, Reply};

const INTERVAL: Duration = Duration::from_millis(100);

fn replica_config(redis: &RedisServer) -> AppConfig {
    AppConfig {
        redis: Some(RedisConfig {
            sync_interval: INTERVAL,
            ..RedisConfig::new(redis.url())
        }),
        ..AppConfig::default()
    }
}

/// NDJSON of `ips`, each requesting `url`.
fn lines(ips: impl Iterator<Item = u32>, url: &str) -> String {
    ips.map(|i| format!("{{\"ip\":\"{}\",\"url\":\"{url}\"}}\n", distinct_ip(i)))
        .collect()
}

async fn post(service: &TestService, body: &str) {
    let r = post_ndjson(service.ingest, body).await;
    assert_eq!(r.status, 202, "{}", r.text());
}

/// Whether `service` answers `unique` for the 5m window and the last series point, with
/// `scope`, and its `/stats` says `scope` with `total` requests.
async fn answers(service: &TestService, scope: &str, unique: u64, total: u64) -> bool {
    let window = get_json(service, "/api/v1/unique?window=5m").await;
    let series = get_json(service, "/api/v1/unique/series?lookback=10m&step=10m").await;
    let stats = get_json(service, "/stats").await;
    window["scope"] == scope
        && window["unique_ip_addresses"] == unique
        && series["scope"] == scope
        && series["points"][0]["unique_ip_addresses"] == unique
        && stats["scope"] == scope
        && stats["total_requests"] == total
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn windows_and_top_pages_are_the_union_of_every_replica() {
    let redis = RedisServer::start();
    let mut conn = redis.connect();
    let a = TestService::start_with(replica_config(&redis)).await;
    let b = TestService::start_with(replica_config(&redis)).await;
    // Overlapping addresses; one page each, one page on both.
    post(&a, &lines(0..3_000, "/a")).await;
    post(&a, &lines(0..100, "/both")).await;
    post(&b, &lines(2_000..6_000, "/b")).await;
    post(&b, &lines(0..50, "/both")).await;
    let union = union_count(&mut conn, "check:union", 0..6_000);
    let total = 3_000 + 100 + 4_000 + 50;

    poll_until("both replicas answer the union, scope global", async || {
        answers(&a, "global", union, total).await && answers(&b, "global", union, total).await
    })
    .await;
    for replica in [&a, &b] {
        let stats = get_json(replica, "/stats").await;
        assert_eq!(stats["error_bound"], 0, "{stats}");
        assert_eq!(page(&stats, "/b"), (4_000, 0));
        assert_eq!(page(&stats, "/a"), (3_000, 0));
        assert_eq!(page(&stats, "/both"), (150, 0), "summed, once");
        let text = replica.scrape().await;
        assert_valid_openmetrics(&text);
        assert_eq!(
            sample_value(&text, r#"unique_ip_addresses_window{window="5m"}"#),
            Some(union as f64)
        );
        assert_eq!(
            sample_value(&text, r#"uniqd_top_page_requests{path="/both"}"#),
            Some(150.0)
        );
        assert_eq!(
            sample_value(&text, r#"uniqd_views_scope{view="windows"}"#),
            Some(1.0)
        );
        assert_eq!(
            sample_value(&text, r#"uniqd_views_scope{view="top_pages"}"#),
            Some(1.0)
        );
    }
    // Re-sent summaries and re-merged slots add nothing: many rounds later, the same.
    let rounds = conn.command_calls("mget");
    poll_until("twenty more rounds", async || {
        conn.command_calls("mget") >= rounds + 20
    })
    .await;
    assert!(answers(&a, "global", union, total).await);
    assert_eq!(page(&get_json(&b, "/stats").await, "/both"), (150, 0));
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn views_fall_back_to_local_and_converge_after_flush_and_restart() {
    let mut redis = RedisServer::start();
    let mut conn = redis.connect();
    let a = TestService::start_with(replica_config(&redis)).await;
    let b = TestService::start_with(replica_config(&redis)).await;
    post(&a, &lines(0..1_000, "/a")).await;
    post(&b, &lines(500..2_000, "/b")).await;
    let union = union_count(&mut conn, "check", 0..2_000);
    poll_until("global views", async || {
        answers(&a, "global", union, 2_500).await && answers(&b, "global", union, 2_500).await
    })
    .await;

    // Flushed by hand, no disconnection: every replica merges and publishes again, and a
    // replica started afterwards (which knows only what is in Redis) answers the union.
    conn.cmd(&[b"FLUSHALL"]);
    let c = TestService::start_with(replica_config(&redis)).await;
    poll_until("a new replica sees the restored union", async || {
        answers(&c, "global", union, 2_500).await
    })
    .await;
    c.stop().await;

    // Redis down: ingest goes on, every view answers locally and says so.
    redis.kill();
    post(&a, &lines(5_000..5_010, "/a")).await;
    // The local ring's slots are sketches past 256 addresses: its estimate of a's addresses.
    let own = uniqd_core::UniqueCounter::new();
    for i in (0..1_000).chain(5_000..5_010) {
        own.insert_str(&distinct_ip(i)).unwrap();
    }
    let own = uniqd_core::UniqueCounter::from_redis(&own.to_redis())
        .unwrap()
        .estimate();
    poll_until("local views while Redis is down", async || {
        let window = get_json(&a, "/api/v1/unique?window=5m").await;
        let stats = get_json(&a, "/stats").await;
        let text = a.scrape().await;
        window["scope"] == "local"
            && window["unique_ip_addresses"] == own
            && stats["scope"] == "local"
            && stats["total_requests"] == 1_010
            && sample_value(&text, r#"uniqd_views_scope{view="windows"}"#) == Some(0.0)
    })
    .await;

    // Redis back, empty: the views converge to the union of everything, pages not doubled.
    redis.restart();
    let mut conn = redis.connect();
    let all: Vec<String> = (0..2_000).chain(5_000..5_010).map(distinct_ip).collect();
    conn.pfadd_all("check", &all);
    let expected = conn.pfcount("check");
    poll_until("global again after the restart", async || {
        answers(&a, "global", expected, 2_510).await && answers(&b, "global", expected, 2_510).await
    })
    .await;
    let stats = get_json(&b, "/stats").await;
    assert_eq!(page(&stats, "/a"), (1_010, 0), "{stats}");
    assert_eq!(page(&stats, "/b"), (1_500, 0), "{stats}");
    a.stop().await;
    b.stop().await;
}

/// The Redis cost written down in docs/scale-out.md ("Sizing"): commands and bytes per round
/// of one replica, busy (new addresses every round) and idle, and the memory of the keys.
/// Prints the figures (`--nocapture`) and asserts the bounds the docs state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::print_stderr)] // the figures are this test's output, for the docs
async fn redis_cost_per_round_is_bounded() {
    let redis = RedisServer::start();
    let mut conn = redis.connect();
    let replica = TestService::start_with(replica_config(&redis)).await;
    post(&replica, &lines(0..5_000, "/warm")).await;
    wait_sync_rounds(&replica, 6, async || {}).await;
    const ROUNDS: u32 = 20;

    let before = conn.traffic();
    let mut next = 10_000u32;
    let busy_time = wait_sync_rounds(&replica, ROUNDS, async || {
        post(&replica, &lines(next..next + 200, "/busy")).await;
        next += 200;
    })
    .await;
    let busy = conn.traffic();
    // Settle: a merge that slipped past the busy rounds (one round late on a loaded machine)
    // is neither busy nor idle; two rounds let it land before idle is measured.
    wait_sync_rounds(&replica, 2, async || {}).await;
    let settled = conn.traffic();
    let idle_time = wait_sync_rounds(&replica, ROUNDS, async || {}).await;
    let idle = conn.traffic();
    let per_round = |a: (u64, u64, u64), b: (u64, u64, u64), r: u64| {
        ((b.0 - a.0) / r, (b.1 - a.1) / r, (b.2 - a.2) / r)
    };
    let (busy_calls, busy_in, busy_out) =
        per_round(before, busy, rounds_in(busy_time, INTERVAL, ROUNDS));
    let (idle_calls, idle_in, idle_out) =
        per_round(settled, idle, rounds_in(idle_time, INTERVAL, ROUNDS));
    let prefix = "{uniqd:unique_ip_addresses}";
    let memory =
        |conn: &mut Conn, key: &str| conn.cmd(&[b"MEMORY", b"USAGE", key.as_bytes()]).int();
    // The largest of the keys matching `pattern` (the idle rounds may have crossed into a
    // minute, or an hour, that has no key yet: measure the ones there are).
    let largest = |conn: &mut Conn, pattern: &str| -> i64 {
        let Reply::Array(keys) = conn.cmd(&[b"KEYS", pattern.as_bytes()]) else {
            panic!("KEYS answers an array");
        };
        assert!(!keys.is_empty(), "no key matches {pattern}");
        keys.into_iter()
            .map(|key| conn.cmd(&[b"MEMORY", b"USAGE", &key.bytes()]).int())
            .max()
            .unwrap_or(0)
    };
    let replica_id = get(replica.metrics, "/readyz").await.json()["redis"]["replica"]
        .as_str()
        .unwrap()
        .to_owned();
    let pages_key = format!("{prefix}:pages:{replica_id}");
    eprintln!(
        "per round, busy: {busy_calls} commands, {busy_in} B in, {busy_out} B out; \
         idle: {idle_calls} commands, {idle_in} B in, {idle_out} B out; \
         memory: total {} B, minute {} B, hour {} B, pages {} B, dbsize {}",
        memory(&mut conn, "uniqd:unique_ip_addresses"),
        largest(&mut conn, &format!("{prefix}:win:m:*")),
        largest(&mut conn, &format!("{prefix}:win:h:*")),
        memory(&mut conn, &pages_key),
        conn.cmd(&[b"DBSIZE"]).int(),
    );
    // Busy: the total and two window slots (minute, hour) of 12,304 bytes each, plus a share
    // of the top pages; reads: the current and previous keys of each tier.
    assert!(busy_calls <= 40, "{busy_calls}");
    assert!(busy_in <= 3 * 12_400 + 8_000, "{busy_in}");
    assert!(busy_out <= 4 * 12_400 + 40_000, "{busy_out}");
    // Idle: no sketch written, and none read but every tenth round's live range (the
    // generation did not move).
    assert!(idle_in <= 4_000, "{idle_in}");
    assert!(idle_out <= 8_000, "{idle_out}");
    assert!(largest(&mut conn, &format!("{prefix}:win:m:*")) <= 16_000);
    replica.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn window_and_page_keys_share_the_slot_on_redis_cluster() {
    // A cluster node refuses a MULTI or MGET whose keys span hash slots (CROSSSLOT): the
    // window keys, summaries and markers carry the shared key's slot, with and without a tag.
    let redis = RedisServer::start_cluster_node();
    let mut conn = redis.connect();
    for key in [
        uniqd::redis_sync::config::DEFAULT_REDIS_KEY,
        "{tenant-a}:unique",
    ] {
        let mut config = replica_config(&redis);
        if let Some(r) = config.redis.as_mut() {
            r.key = key.to_owned();
        }
        let replica = TestService::start_with(config).await;
        post(&replica, &lines(0..300, "/c")).await;
        let expected = union_count(&mut conn, &format!("{key}:check"), 0..300);
        poll_until("global views on the cluster node", async || {
            answers(&replica, "global", expected, 300).await
        })
        .await;
        assert_eq!(replica.metric("uniqd_redis_sync_errors_total").await, 0.0);
        replica.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_redis_delays_neither_ingest_nor_the_views() {
    let redis = RedisServer::start();
    let mut conn = redis.connect();
    let mut config = replica_config(&redis);
    if let Some(r) = config.redis.as_mut() {
        r.timeout = Duration::from_millis(300);
    }
    let replica = TestService::start_with(config).await;
    post(&replica, &lines(0..500, "/slow")).await;
    let first = union_count(&mut conn, "check", 0..500);
    poll_until("global views", async || {
        answers(&replica, "global", first, 500).await
    })
    .await;

    // Redis stops answering for 3 s (connections stay open): ingest and every read answer at
    // once; once a round has timed out the views say local.
    conn.cmd(&[b"CLIENT", b"PAUSE", b"3000", b"ALL"]);
    let paused = std::time::Instant::now();
    let mut next = 500;
    poll_until("local views during the pause", async || {
        let started = std::time::Instant::now();
        post(&replica, &lines(next..next + 50, "/slow")).await;
        next += 50;
        let window = get_json(&replica, "/api/v1/unique?window=5m").await;
        let stats = get_json(&replica, "/stats").await;
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "a post and two reads took {:?} while redis was paused",
            started.elapsed()
        );
        window["scope"] == "local" && stats["scope"] == "local"
    })
    .await;
    assert!(
        paused.elapsed() < Duration::from_secs(3),
        "noticed during the pause"
    );

    let mut check = redis.connect(); // waits out the pause
    let all = union_count(&mut check, "check2", 0..next);
    poll_until("global again after the pause", async || {
        answers(&replica, "global", all, u64::from(next)).await
    })
    .await;
    replica.stop().await;
}
