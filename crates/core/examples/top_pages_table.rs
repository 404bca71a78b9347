//! Prints the accuracy and memory table of `docs/top-pages.md`: `TopPages` on Zipf streams of
//! 1,000,000 requests over 1,000,000 paths (seeded SplitMix64, one thread per shard, each with
//! its own stream), for several capacities, shard counts and Zipf exponents.
//! Run: `cargo run --release -p uniqd-core --example top_pages_table`.
#![allow(clippy::print_stdout)]

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::thread;

use uniqd_core::{PathOptions, TopPages};

const REQUESTS: usize = 1_000_000;
const PATHS: usize = 1_000_000;

/// (capacity, shards, Zipf exponent) of each row.
const ROWS: [(usize, usize, f64); 7] = [
    (256, 1, 1.0),
    (1024, 1, 1.0),
    (1024, 2, 1.0),
    (4096, 1, 1.0),
    (4096, 2, 1.0),
    (1024, 2, 0.8),
    (1024, 2, 1.2),
];

fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn zipf_cdf(s: f64) -> Vec<f64> {
    let mut sum = 0.0;
    (1..=PATHS)
        .map(|r| {
            sum += (r as f64).powf(-s);
            sum
        })
        .collect()
}

fn main() {
    println!(
        "| k | S | Zipf s | N/k | error_bound M | pages above M (all listed) | their largest \
         overcount | largest error listed | top 20 right and exact | memory (bytes) |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|");
    for (capacity, shards, s) in ROWS {
        let cdf = Arc::new(zipf_cdf(s));
        let top = Arc::new(TopPages::new(capacity, shards, PathOptions::default()).expect("size"));
        let memory = top.memory_bytes();
        let handles: Vec<_> = (0..shards)
            .map(|t| {
                let (top, cdf) = (Arc::clone(&top), Arc::clone(&cdf));
                thread::spawn(move || {
                    let mut rng = 0x5eed_0000 + t as u64;
                    let total = cdf[PATHS - 1];
                    let mut truth = vec![0u32; PATHS];
                    let mut url = String::new();
                    for _ in 0..REQUESTS / shards {
                        let u = (splitmix(&mut rng) >> 11) as f64 / (1u64 << 53) as f64 * total;
                        let rank = cdf.partition_point(|&c| c < u).min(PATHS - 1);
                        truth[rank] += 1;
                        url.clear();
                        let _ = write!(url, "/page/{rank}");
                        top.record_url(&url);
                    }
                    truth
                })
            })
            .collect();
        let mut truth = vec![0u64; PATHS];
        for handle in handles {
            for (sum, n) in truth.iter_mut().zip(handle.join().expect("no panic")) {
                *sum += u64::from(n);
            }
        }
        assert_eq!(top.memory_bytes(), memory);
        let snapshot = top.snapshot(usize::MAX);
        let listed: HashMap<&str, _> = snapshot
            .pages
            .iter()
            .map(|p| (p.path.as_str(), p))
            .collect();
        let bound = snapshot.error_bound;
        let above: Vec<usize> = (0..PATHS).filter(|&r| truth[r] > bound).collect();
        assert!(above
            .iter()
            .all(|r| listed.contains_key(format!("/page/{r}").as_str())));
        let rank_of = |path: &str| -> usize { path["/page/".len()..].parse().expect("page") };
        let largest_error = snapshot.pages.iter().map(|p| p.error).max().unwrap_or(0);
        // How far the counts of the heavy pages (true count above M) are off.
        let overcount = above
            .iter()
            .map(|r| listed[format!("/page/{r}").as_str()].count - truth[*r])
            .max()
            .unwrap_or(0);
        // The 20 listed first against the 20 truly most requested, and their counts.
        let mut by_truth: Vec<usize> = (0..PATHS).collect();
        by_truth.sort_unstable_by(|&a, &b| truth[b].cmp(&truth[a]).then(a.cmp(&b)));
        let top20_exact = snapshot.pages[..20]
            .iter()
            .zip(&by_truth[..20])
            .all(|(p, &r)| rank_of(&p.path) == r && p.count == truth[r]);
        println!(
            "| {} | {shards} | {s:.1} | {} | {} | {} | {overcount} | {} | {} | {} |",
            thousands(capacity),
            thousands(REQUESTS / capacity),
            thousands(bound as usize),
            above.len(),
            thousands(largest_error as usize),
            if top20_exact { "yes" } else { "no" },
            thousands(memory),
        );
    }
}
