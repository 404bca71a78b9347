//! Accuracy against theory: error 0 in the exact phase; in the sketch phase a mean absolute
//! relative error over 20 seeds at most 1.04/√16384 ≈ 0.81% and no run beyond 3.5%.
//!
//! The 10⁷ row runs in release mode only (`cargo test --release -p uniqd-core --test accuracy
//! -- --ignored`); `.ci/run` runs it.

use uniqd_core::{Phase, UniqueCounter, DEFAULT_THRESHOLD, SKETCH_RELATIVE_STANDARD_ERROR};

const SEEDS: u64 = 20;

/// Inserts `n` distinct elements for `seed` and returns the relative error of the estimate.
fn relative_error(n: u64, seed: u64) -> (f64, Phase) {
    let counter = UniqueCounter::new();
    for i in 0..n {
        counter.insert_element(&((seed << 40) | i).to_le_bytes());
    }
    let estimate = counter.estimate() as f64;
    ((estimate - n as f64).abs() / n as f64, counter.phase())
}

fn check_row(n: u64) {
    let runs: Vec<(f64, Phase)> = (0..SEEDS).map(|seed| relative_error(n, seed)).collect();
    let mean = runs.iter().map(|(e, _)| e).sum::<f64>() / SEEDS as f64;
    let max = runs.iter().map(|(e, _)| *e).fold(0.0, f64::max);
    if n <= DEFAULT_THRESHOLD as u64 {
        assert!(
            runs.iter().all(|&(e, p)| e == 0.0 && p == Phase::Exact),
            "n = {n}: exact phase must be exact"
        );
    } else {
        assert!(runs.iter().all(|&(_, p)| p == Phase::Sketch));
        assert!(
            mean <= SKETCH_RELATIVE_STANDARD_ERROR,
            "n = {n}: mean error {mean:.5} above 1.04/sqrt(m)"
        );
        assert!(max <= 0.035, "n = {n}: a run erred by {max:.5}");
    }
}

#[test]
fn exact_rows() {
    for n in [1, 10, 100, 1_000, DEFAULT_THRESHOLD as u64] {
        check_row(n);
    }
}

#[test]
fn sketch_rows() {
    for n in [DEFAULT_THRESHOLD as u64 + 1, 10_000, 100_000, 1_000_000] {
        check_row(n);
    }
}

#[test]
#[ignore = "release mode: 20 x 10^7 inserts"]
fn ten_million() {
    check_row(10_000_000);
}
