//! A fixed-size latency histogram for the load generator: log-linear buckets (exact below
//! 64 µs, then 32 buckets per power of two, so a quantile is within about 3% of the truth),
//! 2 KiB per worker whatever the number of requests, merged at the end.

#![forbid(unsafe_code)]

use std::time::Duration;

/// Sub-buckets per power of two (5 bits of mantissa).
const SUB: u32 = 32;
/// Values below this are their own bucket.
const LINEAR: u64 = 2 * SUB as u64;
/// Enough buckets for any `u64` of microseconds.
const BUCKETS: usize = (LINEAR as usize) + (64 - 6) * SUB as usize;

/// Counts of latencies in microseconds.
#[derive(Debug, Clone)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self {
            counts: vec![0; BUCKETS],
            total: 0,
            max: 0,
        }
    }
}

fn bucket(us: u64) -> usize {
    if us < LINEAR {
        return us as usize;
    }
    let exp = 63 - us.leading_zeros(); // ≥ 6
    let sub = (us >> (exp - 5)) & u64::from(SUB - 1);
    LINEAR as usize + (exp as usize - 6) * SUB as usize + sub as usize
}

/// The largest value that falls into bucket `index`.
fn upper_bound(index: usize) -> u64 {
    if index < LINEAR as usize {
        return index as u64;
    }
    let rel = index - LINEAR as usize;
    let exp = rel as u32 / SUB + 6;
    let sub = rel as u64 % u64::from(SUB);
    let low = (1u64 << exp) | (sub << (exp - 5));
    low + ((1u64 << (exp - 5)) - 1)
}

impl Histogram {
    /// Records one latency.
    pub fn record(&mut self, latency: Duration) {
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.counts[bucket(us)] += 1;
        self.total += 1;
        self.max = self.max.max(us);
    }

    /// Adds `other`'s counts to `self`.
    pub fn merge(&mut self, other: &Self) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.total += other.total;
        self.max = self.max.max(other.max);
    }

    /// Number of recorded latencies.
    pub fn len(&self) -> u64 {
        self.total
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// The `q`-quantile (0 ≤ q ≤ 1) in microseconds: the upper bound of its bucket, never above
    /// the maximum seen; 0 when empty.
    pub fn quantile_us(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        // Rank of the quantile, 1-based; the float is at most `total`.
        let rank = ((q.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (index, &count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return upper_bound(index).min(self.max);
            }
        }
        self.max
    }

    /// The largest latency seen, in microseconds.
    pub fn max_us(&self) -> u64 {
        self.max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_monotone_and_tight() {
        let mut last = 0;
        for us in (0..200_000u64).chain([u64::MAX / 2, u64::MAX]) {
            let b = bucket(us);
            assert!(b >= last && b < BUCKETS, "{us}");
            assert!(upper_bound(b) >= us, "{us}");
            // Within 1/32 relative width.
            assert!(
                upper_bound(b) - us <= us / 32 + 1,
                "{us}: {}",
                upper_bound(b)
            );
            last = b;
        }
    }

    #[test]
    fn quantiles_of_a_uniform_spread() {
        let mut h = Histogram::default();
        for us in 1..=10_000u64 {
            h.record(Duration::from_micros(us));
        }
        assert_eq!(h.len(), 10_000);
        for (q, expected) in [(0.5, 5_000.0), (0.9, 9_000.0), (0.99, 9_900.0)] {
            let got = h.quantile_us(q) as f64;
            assert!((got - expected).abs() / expected < 0.035, "q{q}: {got}");
        }
        assert_eq!(h.quantile_us(1.0), 10_000);
        let mut other = Histogram::default();
        other.record(Duration::from_secs(1));
        h.merge(&other);
        assert_eq!(h.max_us(), 1_000_000);
        assert_eq!(h.len(), 10_001);
        assert!(Histogram::default().is_empty());
    }
}
