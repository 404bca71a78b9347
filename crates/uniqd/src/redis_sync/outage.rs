//! Outage bookkeeping of the sync task: when to retry (exponential backoff from one sync
//! interval up to [`MAX_BACKOFF_INTERVALS`] intervals) and when to log (the first failure of
//! an outage and the recovery, not every failed attempt).

use std::time::Duration;

/// Longest wait between two attempts while Redis is failing, in sync intervals: bounds how
/// long after Redis returns a replica merges again (8 s at the default 1 s interval), while
/// a fleet of replicas retries a dead Redis at most once per 8 intervals each.
pub const MAX_BACKOFF_INTERVALS: u32 = 8;

/// Consecutive failed sync attempts.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Outage {
    failures: u32,
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    /// First failure since the last success: log at warn.
    pub first: bool,
    /// Wait this long before the next attempt.
    pub after: Duration,
}

impl Outage {
    /// Records a failure.
    pub fn failed(&mut self, interval: Duration) -> Retry {
        self.failures = self.failures.saturating_add(1);
        let doublings = (self.failures - 1).min(MAX_BACKOFF_INTERVALS.trailing_zeros());
        Retry {
            first: self.failures == 1,
            after: interval.saturating_mul(1 << doublings),
        }
    }

    /// Records a success; returns the number of failed attempts it ends (0: there was no
    /// outage).
    pub fn succeeded(&mut self) -> u32 {
        std::mem::take(&mut self.failures)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_and_warns_once() {
        let interval = Duration::from_millis(100);
        let mut outage = Outage::default();
        let retries: Vec<Retry> = (0..6).map(|_| outage.failed(interval)).collect();
        let waits: Vec<u64> = retries.iter().map(|r| r.after.as_millis() as u64).collect();
        assert_eq!(waits, [100, 200, 400, 800, 800, 800]);
        assert_eq!(
            retries.iter().filter(|r| r.first).count(),
            1,
            "one warning per outage"
        );
        assert!(retries[0].first);

        assert_eq!(outage.succeeded(), 6);
        assert_eq!(outage.succeeded(), 0, "no outage to end");
        assert!(outage.failed(interval).first, "a new outage warns again");
    }
}
