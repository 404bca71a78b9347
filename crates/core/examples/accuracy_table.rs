//! Prints the accuracy table of the crate docs: uniqd-core next to the `hyperloglogplus` crate
//! (HLL++, precision 14), mean and maximum absolute relative error over 20 seeds per
//! cardinality. With `--csv PATH` it also runs a 1-2-5 grid of cardinalities and writes every
//! run's signed relative error for `benches/plot.py`.
//! Run: `cargo run --release -p uniqd-core --example accuracy_table [-- --csv target/accuracy.csv]`.
#![allow(clippy::print_stdout)]

use std::collections::hash_map::DefaultHasher;
use std::fmt::Write as _;
use std::hash::BuildHasherDefault;

use hyperloglogplus::{HyperLogLog, HyperLogLogPlus};
use uniqd_core::{UniqueCounter, DEFAULT_THRESHOLD};

const SEEDS: u64 = 20;

/// The rows of the table in the crate docs.
const TABLE: [u64; 9] = [
    1,
    10,
    100,
    1_000,
    DEFAULT_THRESHOLD as u64,
    10_000,
    100_000,
    1_000_000,
    10_000_000,
];

fn stats(errors: &[f64]) -> (f64, f64) {
    let mean = errors.iter().map(|e| e.abs()).sum::<f64>() / errors.len() as f64;
    let max = errors.iter().map(|e| e.abs()).fold(0.0, f64::max);
    (mean * 100.0, max * 100.0)
}

/// Signed relative errors of uniqd-core and hyperloglogplus over `SEEDS` streams of `n`.
fn run(n: u64) -> (Vec<f64>, Vec<f64>) {
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for seed in 0..SEEDS {
        let counter = UniqueCounter::new();
        let mut hllp: HyperLogLogPlus<u64, BuildHasherDefault<DefaultHasher>> =
            HyperLogLogPlus::new(14, BuildHasherDefault::default()).expect("precision 14 is valid");
        for i in 0..n {
            let element = (seed << 40) | i;
            counter.insert_element(&element.to_le_bytes());
            hllp.insert(&element);
        }
        ours.push((counter.estimate() as f64 - n as f64) / n as f64);
        theirs.push((hllp.count() - n as f64) / n as f64);
    }
    (ours, theirs)
}

fn main() {
    let csv_path = std::env::args().skip_while(|a| a != "--csv").nth(1);
    let mut ns = TABLE.to_vec();
    if csv_path.is_some() {
        let grid = (0..7).flat_map(|e| [1, 2, 5].map(|m| m * 10u64.pow(e)));
        ns.extend(grid.chain([10_000_000]));
        ns.sort_unstable();
        ns.dedup();
    }
    println!(
        "| n | uniqd-core mean | uniqd-core max | hyperloglogplus mean | hyperloglogplus max |"
    );
    println!("|---:|---:|---:|---:|---:|");
    let mut csv = String::from("structure,n,seed,relative_error\n");
    for n in ns {
        let (ours, theirs) = run(n);
        for (name, errors) in [("uniqd-core", &ours), ("hyperloglogplus", &theirs)] {
            for (seed, error) in errors.iter().enumerate() {
                let _ = writeln!(csv, "{name},{n},{seed},{error}");
            }
        }
        if TABLE.contains(&n) {
            let ((om, ox), (tm, tx)) = (stats(&ours), stats(&theirs));
            println!("| {n} | {om:.3}% | {ox:.3}% | {tm:.3}% | {tx:.3}% |");
        }
    }
    if let Some(path) = csv_path {
        std::fs::write(&path, csv).expect("write the CSV");
        println!("\nwrote {path}");
    }
}
