//! Per-group counts (`Groups`): exact below the threshold, the union property, eviction and
//! `__other__` under a skewed stream of many groups, and the memory bound with 100,000
//! distinct group values streaming in.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr};

use uniqd_core::{
    hash_ip, Groups, Phase, UniqueCounter, DEFAULT_MAX_GROUPS, DEFAULT_THRESHOLD,
    MAX_GROUP_NAME_BYTES, OTHER_GROUP,
};

fn ip(i: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(i))
}

/// A small deterministic generator (xorshift64*), so the streams are reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Zipf-like over `1..=n` with exponent about 1: rank = n^u.
    fn zipf(&mut self, n: u64) -> u64 {
        let u = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        ((n as f64).powf(u) as u64).clamp(1, n)
    }
}

/// Max-merged registers of every tracked group and `__other__`.
fn union_registers(groups: &Groups) -> Vec<u8> {
    let mut union = groups.other().registers().to_vec();
    groups.for_each(|_, counter| {
        for (u, r) in union.iter_mut().zip(counter.registers().iter()) {
            *u = (*u).max(*r);
        }
    });
    union
}

#[test]
fn below_the_bound_every_group_is_exact_and_other_is_empty() {
    let groups = Groups::new(DEFAULT_MAX_GROUPS, DEFAULT_THRESHOLD).expect("valid");
    let mut truth: HashMap<String, HashSet<u32>> = HashMap::new();
    let mut rng = Rng(7);
    for _ in 0..200_000 {
        let g = rng.next() % 60;
        let a = (rng.next() % 3_000) as u32 + (g as u32) * 1_000;
        let name = format!("site-{g}.example");
        groups.record(&name, hash_ip(ip(a)));
        truth.entry(name).or_default().insert(a);
    }
    let snapshot = groups.snapshot();
    assert_eq!(snapshot.groups.len(), 60);
    assert_eq!(snapshot.evictions, 0);
    assert_eq!(snapshot.other.estimate, 0);
    for group in &snapshot.groups {
        assert_eq!(
            group.estimate,
            truth[&group.name].len() as u64,
            "{}",
            group.name
        );
        assert_eq!(group.phase, Phase::Exact);
        assert_eq!(groups.count(&group.name).as_ref(), Some(group));
    }
    assert!(snapshot
        .groups
        .windows(2)
        .all(|w| w[0].estimate >= w[1].estimate));
    assert_eq!(groups.count("nope"), None);
    assert_eq!(groups.count(OTHER_GROUP).map(|c| c.estimate), Some(0));
}

#[test]
fn skewed_stream_keeps_the_heavy_groups_and_the_union() {
    let max = 20;
    let groups = Groups::new(max, 256).expect("valid");
    let total = UniqueCounter::with_threshold(256);
    let mut lines: HashMap<u64, u64> = HashMap::new();
    let mut truth: HashMap<u64, HashSet<u32>> = HashMap::new();
    let mut rng = Rng(11);
    // 10,000 groups, Zipf traffic: groups 1..=10 carry most lines.
    for i in 0..400_000u32 {
        let g = rng.zipf(10_000);
        let a = (rng.next() % 50_000) as u32;
        let h = hash_ip(ip(a));
        groups.record(&format!("g{g}"), h);
        total.insert_hash(h);
        *lines.entry(g).or_default() += 1;
        if i >= 200_000 {
            truth.entry(g).or_default().insert(a);
        }
    }
    let snapshot = groups.snapshot();
    // The bound holds, some groups were evicted, the rest went to __other__.
    assert_eq!(snapshot.groups.len(), max);
    assert!(snapshot.evictions > 0);
    assert!(snapshot.other.estimate > 0);
    let tracked: HashSet<&str> = snapshot.groups.iter().map(|g| g.name.as_str()).collect();
    // The heaviest groups hold a slot.
    for g in 1..=5 {
        assert!(tracked.contains(format!("g{g}").as_str()), "g{g} untracked");
    }
    // The union of the groups and __other__ is the total, register for register.
    assert_eq!(union_registers(&groups), total.registers().to_vec());
    // A heavy group, tracked since early on, counts at least its addresses of the second
    // half of the stream (it cannot have been evicted: it is the heaviest).
    let g1 = groups.count("g1").expect("tracked");
    let expected = truth[&1].len() as f64;
    assert!(
        g1.estimate as f64 >= expected * 0.97,
        "{} < {expected}",
        g1.estimate
    );
    // Churn stays within the documented bound: max × (log_1.25 N + 5).
    let bound = max as f64 * ((400_000f64).ln() / 1.25f64.ln() + 5.0);
    assert!(
        (snapshot.evictions as f64) < bound,
        "{} evictions",
        snapshot.evictions
    );
}

#[test]
fn evicted_groups_restart_from_zero() {
    let groups = Groups::new(1, 100).expect("valid");
    groups.record("a", hash_ip(ip(1)));
    groups.record("a", hash_ip(ip(2)));
    assert_eq!(groups.count("a").map(|c| c.estimate), Some(2));
    // "b" must beat a's score (2) by the margin (1): its fourth line promotes it.
    for i in 0..3 {
        groups.record("b", hash_ip(ip(10 + i)));
        assert!(groups.count("b").is_none());
    }
    groups.record("b", hash_ip(ip(20)));
    assert_eq!(groups.count("b").map(|c| c.estimate), Some(1));
    assert_eq!(groups.count("a"), None);
    // a's history and b's untracked lines are in __other__.
    assert_eq!(groups.other().estimate(), 5);
    assert_eq!(groups.snapshot().evictions, 1);
    // A group called like the untracked counter never takes a slot: it counts there.
    for i in 0..10 {
        groups.record(OTHER_GROUP, hash_ip(ip(100 + i)));
    }
    assert_eq!(groups.other().estimate(), 15);
    assert_eq!(groups.count("b").map(|c| c.estimate), Some(1));
}

#[test]
fn long_names_are_cut_at_a_character_boundary() {
    let groups = Groups::new(4, 100).expect("valid");
    let long = "é".repeat(100);
    groups.record(&long, hash_ip(ip(1)));
    let snapshot = groups.snapshot();
    let name = &snapshot.groups[0].name;
    assert!(name.len() <= MAX_GROUP_NAME_BYTES && long.starts_with(name.as_str()));
    assert_eq!(groups.count(&long).map(|c| c.estimate), Some(1));
    assert!(Groups::new(0, 1).is_err() && Groups::new(10_001, 1).is_err());
}

/// The memory bound of the module docs, measured while 100,000 distinct group values stream
/// in (each with many addresses, so every counter that can be exact is at its largest).
#[test]
fn memory_stays_bounded_with_100_000_distinct_groups() {
    let groups = Groups::new(DEFAULT_MAX_GROUPS, DEFAULT_THRESHOLD).expect("valid");
    let empty = groups.memory_bytes();
    let mut peak = 0;
    let mut rng = Rng(3);
    for i in 0..1_000_000u32 {
        // Half the lines from 100,000 distinct groups, half from 50 steady ones.
        let g = if i % 2 == 0 {
            i / 2 % 100_000
        } else {
            (rng.next() % 50) as u32
        };
        groups.record(&format!("group-{g:06}"), hash_ip(ip(rng.next() as u32)));
        if i % 50_000 == 0 {
            peak = peak.max(groups.memory_bytes());
        }
    }
    peak = peak.max(groups.memory_bytes());
    // Documented bound: (max + 1) exact counters, names, sketch, index, slots.
    let counter_max = UniqueCounter::new().memory_bytes() + 64;
    let bound = (DEFAULT_MAX_GROUPS + 1) * (counter_max + MAX_GROUP_NAME_BYTES) + 80 * 1024;
    assert!(peak <= bound, "peak {peak} > bound {bound}");
    assert!(bound <= 6_300_000, "documented as at most 6.2 MB: {bound}");
    // Measured: 130,704 B empty, 6,108,160 B at the peak (bound 6,178,280 B).
    assert!(empty < 140_000, "{empty}");
    assert_eq!(groups.snapshot().groups.len(), DEFAULT_MAX_GROUPS);
}

#[test]
fn concurrent_records_lose_no_address() {
    let groups = std::sync::Arc::new(Groups::new(8, 100_000).expect("valid"));
    let threads: Vec<_> = (0..4u32)
        .map(|t| {
            let groups = std::sync::Arc::clone(&groups);
            std::thread::spawn(move || {
                for i in 0..20_000u32 {
                    groups.record(&format!("g{}", i % 4), hash_ip(ip(t * 1_000_000 + i)));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("no panic");
    }
    // Every address is in exactly one counter, all exact: a group's first lines may count
    // in __other__ while another thread holds the promotion flag (building a counter with
    // a large exact set), no more.
    let snapshot = groups.snapshot();
    assert_eq!(snapshot.groups.len(), 4);
    let sum: u64 = snapshot.groups.iter().map(|g| g.estimate).sum();
    assert_eq!(sum + snapshot.other.estimate, 80_000);
    assert!(
        snapshot.other.estimate < 40_000,
        "{}",
        snapshot.other.estimate
    );
}
