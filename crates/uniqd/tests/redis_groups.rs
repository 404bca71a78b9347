//! Per-group counts through a real `redis-server` (started by each test on a free loopback
//! port): replicas with `--group-by` answer every replica's union per group in
//! `unique_ip_addresses_by_group`, `/api/v1/groups` and `/api/v1/unique?group=`, say
//! `"scope":"global"` (and `uniqd_views_scope{view="groups"} 1`), keep at most `--max-groups`
//! global groups (the rest in `__other__`), fall back to their own counts marked `local` while
//! Redis is down, and converge after a flush or a restart without counting anything twice.

#![allow(clippy::unwrap_used, clippy::expect_used)]
// `&[a..b]` lists the address ranges of a union, one or several.
#![allow(clippy::single_range_in_vec_init)]

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::*;
use uniqd::{AppConfig, GroupsConfig, RedisConfig};
use uniqd_testkit::redis::{Conn, RedisServer};

const INTERVAL: Duration = Duration::from_millis(100);

fn replica_config(redis: &RedisServer, max_groups: usize) -> AppConfig {
    AppConfig {
        redis: Some(RedisConfig {
            sync_interval: INTERVAL,
            ..RedisConfig::new(redis.url())
        }),
        groups: Some(GroupsConfig {
            max_groups,
            ..GroupsConfig::by("host")
        }),
        ..AppConfig::default()
    }
}

/// NDJSON of `ips` for site `host`.
fn lines(ips: std::ops::Range<u32>, host: &str) -> String {
    ips.map(|i| format!("{{\"ip\":\"{}\",\"host\":\"{host}\"}}\n", distinct_ip(i)))
        .collect()
}

async fn post(service: &TestService, body: &str) {
    let r = post_ndjson(service.ingest, body).await;
    assert_eq!(r.status, 202, "{}", r.text());
}

/// Whether `service`'s `/api/v1/groups` lists exactly `expected` (group name to count, in any
/// order) and `other` with `scope`, and `/api/v1/unique?group=` agrees for each.
async fn answers(
    service: &TestService,
    scope: &str,
    expected: &HashMap<&str, u64>,
    other: u64,
) -> bool {
    let list = get_json(service, "/api/v1/groups").await;
    let listed: HashMap<String, u64> = list["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["group"].as_str().unwrap().to_owned(),
                g["unique_ip_addresses"].as_u64().unwrap(),
            )
        })
        .collect();
    let same = listed.len() == expected.len()
        && expected
            .iter()
            .all(|(name, count)| listed.get(*name) == Some(count));
    if !(same && list["scope"] == scope && list["other"]["unique_ip_addresses"] == other) {
        return false;
    }
    for (name, count) in expected {
        let one = get_json(service, &format!("/api/v1/unique?group={name}")).await;
        if one["scope"] != scope || one["unique_ip_addresses"] != *count {
            return false;
        }
    }
    true
}

/// The larger of the union's count and a replica's own exact count of a group: what a
/// replica answers (its own count is never hidden behind an estimate below it).
fn seen_by(union: u64, own: u64) -> u64 {
    union.max(own)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_are_the_union_of_every_replica_and_bounded() {
    let redis = RedisServer::start();
    let mut conn = redis.connect();
    // Two groups at most: a holds 300 + 300 overlapping addresses on the two replicas, b 100
    // on a only, c 50 on b only. Global: a and b (the two largest), c in __other__.
    let a = TestService::start_with(replica_config(&redis, 2)).await;
    let b = TestService::start_with(replica_config(&redis, 2)).await;
    post(&a, &lines(0..300, "a.example")).await;
    post(&a, &lines(1_000..1_100, "b.example")).await;
    post(&b, &lines(200..500, "a.example")).await;
    post(&b, &lines(2_000..2_050, "c.example")).await;
    let union_a = union_count(&mut conn, "check:a", 0..500);
    let union_b = union_count(&mut conn, "check:b", 1_000..1_100);
    let union_c = union_count(&mut conn, "check:c", 2_000..2_050);
    let on_a = HashMap::from([("a.example", union_a), ("b.example", seen_by(union_b, 100))]);
    let on_b = HashMap::from([("a.example", union_a), ("b.example", union_b)]);

    poll_until("both replicas answer the union per group", async || {
        answers(&a, "global", &on_a, union_c).await
            && answers(&b, "global", &on_b, seen_by(union_c, 0)).await
    })
    .await;
    for replica in [&a, &b] {
        let text = replica.scrape().await;
        assert_valid_openmetrics(&text);
        let sample = |group: &str| {
            sample_value(
                &text,
                &format!("unique_ip_addresses_by_group{{group=\"{group}\"}}"),
            )
        };
        assert_eq!(sample("a.example"), Some(union_a as f64));
        assert_eq!(sample("c.example"), None, "beyond the bound: __other__");
        assert_eq!(sample("__other__"), Some(union_c as f64));
        assert_eq!(
            sample_value(&text, r#"uniqd_views_scope{view="groups"}"#),
            Some(1.0)
        );
        // The total is still the union of everything.
        assert_eq!(
            replica.unique().await,
            union_count(
                &mut conn,
                "check:all",
                (0..500).chain(1_000..1_100).chain(2_000..2_050)
            )
        );
    }
    // Merges repeated many rounds later add nothing (full registers, idempotent).
    let rounds = conn.command_calls("zrange");
    poll_until("twenty more rounds", async || {
        conn.command_calls("zrange") >= rounds + 20
    })
    .await;
    assert!(answers(&a, "global", &on_a, union_c).await);
    // Group keys are short and carry the shared key's hash tag.
    let uniqd_testkit::redis::Reply::Array(keys) = conn.cmd(&[b"KEYS", b"*:group:*"]) else {
        panic!("KEYS answers an array");
    };
    let keys: Vec<String> = keys.into_iter().map(|k| k.text()).collect();
    assert_eq!(keys.len(), 3, "{keys:?}");
    for key in &keys {
        assert!(
            key.starts_with("{uniqd:unique_ip_addresses}:group:"),
            "{key}"
        );
        assert_eq!(
            key.len(),
            "{uniqd:unique_ip_addresses}:group:".len() + 16,
            "{key}"
        );
    }
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_fall_back_to_local_and_converge_after_flush_and_restart() {
    let mut redis = RedisServer::start();
    let mut conn = redis.connect();
    let a = TestService::start_with(replica_config(&redis, 100)).await;
    let b = TestService::start_with(replica_config(&redis, 100)).await;
    post(&a, &lines(0..400, "s1")).await;
    post(&a, &lines(5_000..5_030, "s2")).await;
    post(&b, &lines(300..600, "s1")).await;
    let s1 = union_count(&mut conn, "check:s1", 0..600);
    let s2 = union_count(&mut conn, "check:s2", 5_000..5_030);
    let on_a = HashMap::from([("s1", s1), ("s2", seen_by(s2, 30))]);
    let on_b = HashMap::from([("s1", s1), ("s2", s2)]);
    poll_until("global groups", async || {
        answers(&a, "global", &on_a, 0).await && answers(&b, "global", &on_b, 0).await
    })
    .await;

    // Flushed by hand: every replica merges its groups again, and a replica started
    // afterwards (which knows only what is in Redis) answers the union.
    conn.cmd(&[b"FLUSHALL"]);
    let c = TestService::start_with(replica_config(&redis, 100)).await;
    poll_until("a new replica sees the restored groups", async || {
        answers(&c, "global", &on_b, 0).await
    })
    .await;
    c.stop().await;

    // Redis down: each replica answers its own groups and says so.
    redis.kill();
    post(&a, &lines(6_000..6_010, "s2")).await;
    let own_s1 = a
        .metric(r#"unique_ip_addresses_by_group{group="s1"}"#)
        .await;
    poll_until("local groups while Redis is down", async || {
        let own = HashMap::from([("s1", 400), ("s2", 40)]);
        let text = a.scrape().await;
        answers(&a, "local", &own, 0).await
            && sample_value(&text, r#"uniqd_views_scope{view="groups"}"#) == Some(0.0)
    })
    .await;
    assert!(own_s1 >= 400.0);

    // Redis back, empty: the groups converge to the union of everything, nothing doubled.
    redis.restart();
    let mut conn = redis.connect();
    let s1 = union_count(&mut conn, "check:s1", 0..600);
    let s2 = union_count(&mut conn, "check:s2", (5_000..5_030).chain(6_000..6_010));
    let on_a = HashMap::from([("s1", s1), ("s2", seen_by(s2, 40))]);
    let on_b = HashMap::from([("s1", s1), ("s2", s2)]);
    poll_until("global again after the restart", async || {
        answers(&a, "global", &on_a, 0).await && answers(&b, "global", &on_b, 0).await
    })
    .await;
    a.stop().await;
    b.stop().await;
}

const GROUPS: u32 = 100;
const ROUNDS: u32 = 20;

/// Commands, bytes in and bytes out per round of one replica, busy (new addresses in every
/// one of [`GROUPS`] groups each round) then idle.
async fn cost(redis: &RedisServer, groups: bool) -> ((u64, u64, u64), (u64, u64, u64)) {
    let mut conn = redis.connect();
    let mut config = replica_config(redis, GROUPS as usize);
    if !groups {
        config.groups = None;
    }
    // Windows off in both runs: their sync reads the closed minute's keys when a minute
    // ends, which falls in one run's idle phase and not the other's at random, and the
    // difference of the two runs is meant to be the groups' share only. (CI once saw
    // 3.5 KB a round more read in the idle phase; 0.3 KB otherwise.)
    config.windows = None;
    let replica = TestService::start_with(config).await;
    let batch = |from: u32| -> String {
        (0..GROUPS)
            .map(|g| lines(from + 2 * g..from + 2 * g + 2, &format!("site-{g}")))
            .collect()
    };
    post(&replica, &batch(0)).await;
    wait_sync_rounds(&replica, 6, async || {}).await;
    let before = conn.traffic();
    let mut next = 1_000_000u32;
    let mut busy_time = wait_sync_rounds(&replica, ROUNDS, async || {
        post(&replica, &batch(next)).await;
        next += 2 * GROUPS;
    })
    .await;
    // The last batch is merged by the next round: counted as busy.
    busy_time += wait_sync_rounds(&replica, 1, async || {}).await;
    let busy = conn.traffic();
    // Settle: a merge that slipped past the busy rounds (one round late on a loaded machine)
    // is neither busy nor idle; two rounds let it land before idle is measured.
    wait_sync_rounds(&replica, 2, async || {}).await;
    let settled = conn.traffic();
    let idle_time = wait_sync_rounds(&replica, ROUNDS, async || {}).await;
    let idle = conn.traffic();
    replica.stop().await;
    let per_round = |a: (u64, u64, u64), b: (u64, u64, u64), r: u64| {
        ((b.0 - a.0) / r, (b.1 - a.1) / r, (b.2 - a.2) / r)
    };
    (
        per_round(before, busy, rounds_in(busy_time, INTERVAL, ROUNDS)),
        per_round(settled, idle, rounds_in(idle_time, INTERVAL, ROUNDS)),
    )
}

/// The Redis cost of the groups written down in docs/groups.md and docs/scale-out.md: one
/// replica with 100 busy groups against the same replica without `--group-by`, per round,
/// and the memory of the group keys. Prints the figures (`--nocapture`) and asserts the
/// bounds the docs state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::print_stderr)] // the figures are this test's output, for the docs
async fn redis_cost_of_groups_per_round_is_bounded() {
    let redis = RedisServer::start();
    let (base_busy, base_idle) = cost(&redis, false).await;
    let mut conn = redis.connect();
    conn.cmd(&[b"FLUSHALL"]);
    let (busy, idle) = cost(&redis, true).await;
    let diff = |a: (u64, u64, u64), b: (u64, u64, u64)| {
        (
            a.0.saturating_sub(b.0),
            a.1.saturating_sub(b.1),
            a.2.saturating_sub(b.2),
        )
    };
    let (busy_calls, busy_in, busy_out) = diff(busy, base_busy);
    let (idle_calls, idle_in, idle_out) = diff(idle, base_idle);
    let memory =
        |conn: &mut Conn, key: &str| conn.cmd(&[b"MEMORY", b"USAGE", key.as_bytes()]).int();
    let prefix = "{uniqd:unique_ip_addresses}";
    let group_key = format!(
        "{prefix}:group:{:016x}",
        uniqd_core::hash_element(b"site-7")
    );
    let registry = format!("{prefix}:groups");
    eprintln!(
        "groups' share per round ({GROUPS} groups), busy: {busy_calls} commands, {busy_in} B \
         in, {busy_out} B out; idle: {idle_calls} commands, {idle_in} B in, {idle_out} B out; \
         memory: group key {} B, registry {} B, other {} B, dbsize {}; whole round with \
         groups (busy, idle): {busy:?} {idle:?}, without: {base_busy:?} {base_idle:?}",
        memory(&mut conn, &group_key),
        memory(&mut conn, &registry),
        memory(&mut conn, &format!("{prefix}:groups:other")),
        conn.cmd(&[b"DBSIZE"]).int(),
    );
    // Busy: every group (and __other__, unchanged) merged: 4 commands and 12.3 KB a group
    // (the round after the last batch counts too: up to 21 batches in 20 rounds); read back:
    // one PFCOUNT a group.
    assert!(busy_calls <= 6 * u64::from(GROUPS) + 20, "{busy_calls}");
    assert!(busy_in <= u64::from(GROUPS) * 13_000 + 20_000, "{busy_in}");
    assert!(busy_out <= 10_000, "{busy_out}");
    // Idle: no sketch written; the marker and generation each round, the names and counts
    // every tenth round (nothing merged), the lifetimes refreshed every tenth round.
    assert!(
        idle_calls <= 2 * u64::from(GROUPS) / 10 + 20,
        "{idle_calls}"
    );
    assert!(idle_in <= 4_000, "{idle_in}");
    assert!(idle_out <= 2_000, "{idle_out}");
    assert!(memory(&mut conn, &group_key) <= 16_000);
}
