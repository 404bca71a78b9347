//! Prints the tables of `docs/groups.md`: per-group accuracy under a skewed stream (a Zipf
//! distribution of 2,000,000 lines over 10,000 groups, each line a random address of a pool of
//! 200,000; `--max-groups` 100), and memory for several bounds while 100,000 distinct group
//! values stream in. Run: `cargo run --release -p uniqd-core --example groups_table`.
#![allow(clippy::print_stdout)]

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr};

use uniqd_core::{hash_ip, Groups, UniqueCounter, DEFAULT_THRESHOLD};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn zipf(&mut self, n: u64) -> u64 {
        let u = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        ((n as f64).powf(u) as u64).clamp(1, n)
    }
}

fn ip(i: u32) -> u64 {
    hash_ip(IpAddr::V4(Ipv4Addr::from(i)))
}

fn accuracy() {
    let groups = Groups::new(100, DEFAULT_THRESHOLD).expect("valid");
    let total = UniqueCounter::new();
    let mut truth: HashMap<u64, HashSet<u32>> = HashMap::new();
    let mut rng = Rng(21);
    for _ in 0..2_000_000 {
        let g = rng.zipf(10_000);
        let a = (rng.next() % 200_000) as u32;
        groups.record(&format!("g{g}"), ip(a));
        total.insert_hash(ip(a));
        truth.entry(g).or_default().insert(a);
    }
    let snapshot = groups.snapshot();
    println!("| rank | lines' true distinct addresses | estimate | error |");
    println!("|---:|---:|---:|---:|");
    for rank in [1u64, 2, 5, 10, 20, 50, 100] {
        let truth = truth[&rank].len() as f64;
        match groups.count(&format!("g{rank}")) {
            Some(c) => println!(
                "| {rank} | {truth} | {} | {:+.2}% |",
                c.estimate,
                (c.estimate as f64 / truth - 1.0) * 100.0
            ),
            None => println!("| {rank} | {truth} | untracked | |"),
        }
    }
    println!(
        "\ntracked {}, evictions {}, __other__ {}, total {}",
        snapshot.groups.len(),
        snapshot.evictions,
        snapshot.other.estimate,
        total.estimate()
    );
}

fn memory() {
    println!("\n| max groups | empty | peak with 100,000 distinct groups | per group |");
    println!("|---:|---:|---:|---:|");
    for max in [10, 100, 1_000] {
        let groups = Groups::new(max, DEFAULT_THRESHOLD).expect("valid");
        let empty = groups.memory_bytes();
        let mut peak = empty;
        let mut rng = Rng(3);
        for i in 0..2_000_000u32 {
            let g = if i % 2 == 0 {
                i / 2 % 100_000
            } else {
                (rng.next() % (max as u64 / 2).max(1)) as u32
            };
            groups.record(&format!("group-{g:06}"), ip(rng.next() as u32));
            if i % 100_000 == 0 {
                peak = peak.max(groups.memory_bytes());
            }
        }
        peak = peak.max(groups.memory_bytes());
        println!("| {max} | {empty} | {peak} | {} |", peak / (max + 1));
    }
}

fn main() {
    accuracy();
    memory();
}
