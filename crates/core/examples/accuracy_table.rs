//! Prints the accuracy table of the crate docs: uniqd-core next to the `hyperloglogplus` crate
//! (HLL++, precision 14), mean and maximum absolute relative error over 20 seeds per
//! cardinality. Run: `cargo run --release -p uniqd-core --example accuracy_table`.
#![allow(clippy::print_stdout)]

use std::collections::hash_map::DefaultHasher;
use std::hash::BuildHasherDefault;

use hyperloglogplus::{HyperLogLog, HyperLogLogPlus};
use uniqd_core::{UniqueCounter, DEFAULT_THRESHOLD};

const SEEDS: u64 = 20;

fn stats(errors: &[f64]) -> (f64, f64) {
    let mean = errors.iter().sum::<f64>() / errors.len() as f64;
    (
        mean * 100.0,
        errors.iter().copied().fold(0.0, f64::max) * 100.0,
    )
}

fn main() {
    println!(
        "| n | uniqd-core mean | uniqd-core max | hyperloglogplus mean | hyperloglogplus max |"
    );
    println!("|---:|---:|---:|---:|---:|");
    let ns = [
        1u64,
        10,
        100,
        1_000,
        DEFAULT_THRESHOLD as u64,
        10_000,
        100_000,
        1_000_000,
        10_000_000,
    ];
    for n in ns {
        let (mut ours, mut theirs) = (Vec::new(), Vec::new());
        for seed in 0..SEEDS {
            let counter = UniqueCounter::new();
            let mut hllp: HyperLogLogPlus<u64, BuildHasherDefault<DefaultHasher>> =
                HyperLogLogPlus::new(14, BuildHasherDefault::default())
                    .expect("precision 14 is valid");
            for i in 0..n {
                let element = (seed << 40) | i;
                counter.insert_element(&element.to_le_bytes());
                hllp.insert(&element);
            }
            ours.push((counter.estimate() as f64 - n as f64).abs() / n as f64);
            theirs.push((hllp.count() - n as f64).abs() / n as f64);
        }
        let ((om, ox), (tm, tx)) = (stats(&ours), stats(&theirs));
        println!("| {n} | {om:.3}% | {ox:.3}% | {tm:.3}% | {tx:.3}% |");
    }
}
