//! Sharing the ring with other replicas: a slot's registers as a Redis HyperLogLog string,
//! which intervals may still change, and merging the union read back from Redis into a
//! *mirror* ring (a second [`WindowRing`] that then answers for every replica).
//!
//! The registers of a slot are the counter's layout, which is Redis's (same hash, index and
//! rank), so Redis's `PFMERGE` of the slots of several replicas into one key per interval is
//! the sketch of the union of their addresses, and merging that key's registers back into a
//! ring (register-wise maximum) is lossless and idempotent: merging it twice, or merging an
//! older copy after a newer one, changes nothing. No I/O here; the binary's sync task moves
//! the bytes.

use std::ops::RangeInclusive;
use std::sync::Arc;

use super::span::{Resolution, HOUR_MS, HOUR_SLOTS, MINUTE_MS, MINUTE_SLOTS};
use super::tier::SlotContents;
use super::WindowRing;
use crate::redis_format::{self, RedisHllError};
use crate::registers::{index_and_rank, M};

impl Resolution {
    /// Both tiers, minutes first.
    pub const ALL: [Self; 2] = [Self::Minute, Self::Hour];

    /// Length of one interval, milliseconds.
    #[must_use]
    pub const fn interval_ms(self) -> u64 {
        match self {
            Self::Minute => MINUTE_MS,
            Self::Hour => HOUR_MS,
        }
    }

    /// Intervals the tier keeps.
    #[must_use]
    pub const fn slots(self) -> u64 {
        match self {
            Self::Minute => MINUTE_SLOTS as u64,
            Self::Hour => HOUR_SLOTS as u64,
        }
    }

    /// A short name for keys and logs: `m` or `h`.
    #[must_use]
    pub const fn short_name(self) -> &'static str {
        match self {
            Self::Minute => "m",
            Self::Hour => "h",
        }
    }
}

/// The intervals of one tier at one moment, for sharing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedIntervals {
    /// Every interval the tier retains, oldest first; the last is the current one.
    pub retained: RangeInclusive<u64>,
    /// The first interval that may still receive inserts (the current one, those within the
    /// skew, and one more); older retained intervals are closed and never change again.
    pub live_from: u64,
}

impl WindowRing {
    /// An empty ring with this one's clock and skew: the mirror a sync task fills with the
    /// union of every replica's slots, which then answers windows and series for all of them.
    #[must_use]
    pub fn mirror(&self) -> Self {
        Self::new(self.skew_ms, Arc::clone(&self.clock))
    }

    /// The retained and live intervals of `tier` at `now_ms`.
    #[must_use]
    pub fn shared_intervals(&self, tier: Resolution, now_ms: u64) -> SharedIntervals {
        let now_index = now_ms / tier.interval_ms();
        let first = now_index.saturating_sub(tier.slots() - 1);
        let live_from = now_index
            .saturating_sub(self.live_intervals(tier.interval_ms()) - 1)
            .max(first);
        SharedIntervals {
            retained: first..=now_index,
            live_from,
        }
    }

    /// Interval `index` of `tier` as a dense Redis HLL string (12,304 bytes), or `None` when
    /// the ring holds no slot for it (nothing was seen then, or it left the ring). An exact
    /// slot is converted: its registers describe the same addresses.
    #[must_use]
    pub fn slot_to_redis(&self, tier: Resolution, index: u64) -> Option<Vec<u8>> {
        let registers = match self.tier(tier).slot_contents(index)? {
            SlotContents::Registers(registers) => registers,
            SlotContents::Exact(hashes) => {
                let mut registers = Box::new([0u8; M]);
                for hash in hashes {
                    let (i, rank) = index_and_rank(hash);
                    registers[i] = registers[i].max(rank);
                }
                registers
            }
        };
        Some(redis_format::encode_dense(&registers))
    }

    /// Merges a Redis HLL string (dense or sparse) into interval `index` of `tier`: the slot
    /// becomes the register-wise maximum of both. Returns `false` when the string holds no
    /// address or the interval is older than the tier keeps (nothing is merged then).
    ///
    /// # Errors
    ///
    /// `bytes` is not a Redis HyperLogLog.
    pub fn merge_redis_slot(
        &self,
        tier: Resolution,
        index: u64,
        bytes: &[u8],
    ) -> Result<bool, RedisHllError> {
        let registers = redis_format::decode(bytes)?;
        if registers.iter().all(|&r| r == 0) {
            return Ok(false);
        }
        Ok(self.tier(tier).restore_registers(index, &registers))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::window::{ManualClock, Span};
    use crate::{hash_ip_str, UniqueCounter};

    const START: u64 = 1_800_000_000_000;

    #[test]
    fn intervals_follow_the_clock_and_the_skew() {
        let ring = WindowRing::new(5 * MINUTE_MS, Arc::new(ManualClock::new(START)));
        let minutes = ring.shared_intervals(Resolution::Minute, START);
        let now = START / MINUTE_MS;
        assert_eq!(minutes.retained, now - 59..=now);
        assert_eq!(
            minutes.live_from,
            now - 6,
            "5 minutes of skew, the current and one more"
        );
        let hours = ring.shared_intervals(Resolution::Hour, START);
        assert_eq!(*hours.retained.end(), START / HOUR_MS);
        assert_eq!(hours.live_from, START / HOUR_MS - 2);
    }

    #[test]
    fn slots_round_trip_through_redis_strings_into_a_mirror() {
        let clock = Arc::new(ManualClock::new(START));
        let a = WindowRing::new(0, clock.clone());
        let b = WindowRing::new(0, clock.clone());
        let mirror = a.mirror();
        for i in 0..300u32 {
            let ip = format!("10.0.{}.{}", i / 256, i % 256);
            let ring = if i % 2 == 0 { &a } else { &b };
            ring.insert_hash(hash_ip_str(&ip).expect("valid"), None);
            if i < 10 {
                // Seen by both replicas.
                let other = if i % 2 == 0 { &b } else { &a };
                other.insert_hash(hash_ip_str(&ip).expect("valid"), None);
            }
        }
        let now = START / MINUTE_MS;
        assert!(a.slot_to_redis(Resolution::Minute, now - 1).is_none());
        for ring in [&a, &b] {
            for tier in Resolution::ALL {
                let index = START / tier.interval_ms();
                let bytes = ring.slot_to_redis(tier, index).expect("a slot");
                assert_eq!(bytes.len(), crate::REDIS_DENSE_LEN);
                // Twice: idempotent.
                for _ in 0..2 {
                    assert!(mirror.merge_redis_slot(tier, index, &bytes).expect("valid"));
                }
            }
        }
        // The union of 300 addresses, as one sketch would count them.
        let expected = UniqueCounter::new();
        for i in 0..300u32 {
            expected
                .insert_str(&format!("10.0.{}.{}", i / 256, i % 256))
                .expect("valid");
        }
        let sketch = UniqueCounter::from_redis(&expected.to_redis()).expect("valid");
        for window in ["5m", "24h"] {
            let count = mirror
                .count(Span::parse(window).expect("span"))
                .expect("window");
            assert_eq!(count.estimate, sketch.estimate(), "{window}");
            assert!(!count.exact);
        }
        let empty = redis_format::encode_dense(&[0u8; M]);
        assert!(!mirror
            .merge_redis_slot(Resolution::Minute, now, &empty)
            .expect("valid"));
        assert!(mirror
            .merge_redis_slot(Resolution::Minute, now, b"junk")
            .is_err());
    }
}
