//! uniqd-core against a real `redis-server`: the same elements through `PFADD` and through
//! `UniqueCounter` give the same registers and the same `PFCOUNT`, and our dense export is a
//! valid Redis HLL for `PFCOUNT` and `PFMERGE`.

use uniqd_core::{Phase, UniqueCounter, DEFAULT_THRESHOLD};
use uniqd_testkit::redis::{RedisServer, Reply};

/// The n-th test address as canonical text (what `PFADD` must receive to count the same
/// element): IPv4 mostly, every 7th an IPv6 address.
fn address(n: u64) -> String {
    let x = n.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 16;
    if n.is_multiple_of(7) {
        let groups = [
            0x2001,
            0xdb8,
            (x >> 32) as u16,
            (x >> 16) as u16,
            0,
            0,
            0,
            n as u16,
        ];
        std::net::Ipv6Addr::from(groups).to_string()
    } else {
        let v = (n as u32).wrapping_mul(2_654_435_761);
        std::net::Ipv4Addr::from(v).to_string()
    }
}

/// Fails naming the first few registers that differ (never prints 16,384 values).
fn assert_same_registers(theirs: &UniqueCounter, ours: &UniqueCounter, n: u64) {
    let (theirs, ours) = (theirs.registers(), ours.registers());
    let diffs: Vec<(usize, u8, u8)> = (0..theirs.len())
        .filter(|&i| theirs[i] != ours[i])
        .map(|i| (i, theirs[i], ours[i]))
        .take(5)
        .collect();
    assert!(
        diffs.is_empty(),
        "registers differ at n = {n}: (index, redis, ours) {diffs:?}"
    );
}

#[test]
fn same_elements_same_registers_and_count_as_redis() {
    let redis = RedisServer::start();
    let mut conn = redis.connect();
    let counter = UniqueCounter::new();
    let checkpoints = [
        1u64, 2, 10, 100, 1_000, 4_096, 4_097, 10_000, 100_000, 250_000, 1_000_000,
    ];
    let mut inserted = 0u64;
    let mut batch: Vec<String> = Vec::new();
    for &target in &checkpoints {
        // Add addresses `inserted..target` to both, PFADD in pipelined batches of 1,000.
        let mut pending = 0;
        while inserted < target {
            let text = address(inserted);
            counter.insert_str(&text).expect("test addresses are valid");
            batch.push(text);
            inserted += 1;
            if batch.len() == 1_000 || inserted == target {
                let mut args: Vec<&[u8]> = vec![b"PFADD", b"theirs"];
                args.extend(batch.iter().map(|s| s.as_bytes()));
                conn.send(&args);
                pending += 1;
                batch.clear();
            }
        }
        for _ in 0..pending {
            assert!(matches!(conn.read(), Reply::Int(_)));
        }

        let theirs = conn.pfcount("theirs");
        let ours_bytes = counter.to_redis();
        assert_eq!(
            conn.cmd(&[b"SET" as &[u8], b"ours", &ours_bytes]),
            Reply::Status("OK".into())
        );
        assert_eq!(
            conn.pfcount("ours"),
            theirs,
            "PFCOUNT of our export at n = {target}"
        );
        assert_eq!(
            counter.raw_estimate(),
            theirs,
            "our raw estimate vs PFCOUNT at n = {target}"
        );

        // Their key (sparse at small n, dense later) decodes to exactly our registers.
        let their_bytes = conn.cmd(&[b"GET" as &[u8], b"theirs"]).bytes();
        let imported = UniqueCounter::from_redis(&their_bytes).expect("Redis's own HLL string");
        assert_same_registers(&imported, &counter, target);

        // PFMERGE accepts our export; merging equal sets changes nothing.
        assert_eq!(
            conn.cmd(&[b"PFMERGE" as &[u8], b"merged", b"ours", b"theirs"]),
            Reply::Status("OK".into())
        );
        assert_eq!(conn.pfcount("merged"), theirs, "PFMERGE at n = {target}");

        if target <= DEFAULT_THRESHOLD as u64 {
            assert_eq!(counter.phase(), Phase::Exact);
            assert_eq!(
                counter.estimate(),
                target,
                "exact phase is exact at n = {target}"
            );
        } else {
            assert_eq!(counter.phase(), Phase::Sketch);
            assert_eq!(counter.estimate(), theirs.max(DEFAULT_THRESHOLD as u64 + 1));
        }
    }
}

#[test]
fn our_export_merges_with_other_redis_keys_as_a_union() {
    let redis = RedisServer::start();
    let mut conn = redis.connect();
    let ours = UniqueCounter::new();
    for n in 0..20_000 {
        ours.insert_str(&address(n)).expect("valid");
    }
    // Redis holds an overlapping range: 10,000..30,000.
    let their_addresses: Vec<String> = (10_000..30_000u64).map(address).collect();
    conn.pfadd_all("theirs", &their_addresses);
    conn.cmd(&[b"SET" as &[u8], b"ours", &ours.to_redis()]);
    conn.cmd(&[b"PFMERGE" as &[u8], b"union", b"ours", b"theirs"]);
    let union = conn.pfcount("union");

    // The same union computed locally: import Redis's key and merge.
    let theirs = UniqueCounter::from_redis(&conn.cmd(&[b"GET" as &[u8], b"theirs"]).bytes())
        .expect("valid HLL");
    ours.merge(&theirs);
    assert_eq!(ours.raw_estimate(), union);
    let error = (union as f64 - 30_000.0).abs() / 30_000.0;
    assert!(error < 0.03, "union estimate {union} for 30,000");
}
