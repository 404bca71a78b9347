//! The time windows through Redis: one HyperLogLog key per minute and per hour that every
//! replica merges its window slot into, and a *mirror* ring filled with those keys, which
//! answers the windows for every replica.
//!
//! # Writing: the same idempotent merge as the total
//!
//! Interval `i` of a tier lives in `<prefix>:win:<m|h>:<i>` (the prefix carries the shared
//! key's hash tag, see [`super::keys`]), expiring one interval after the ring lets it go
//! (`PEXPIREAT` at the end of interval `i + slots`, the same instant on every replica). Each
//! round, a slot is merged when its dense string differs from the one last merged for it:
//! only live intervals can change (the current one and those within the skew), so closed
//! slots are merged once. A merge is `SET <temp> <12,304 bytes>; PFMERGE <key> <temp>; DEL
//! <temp>; PEXPIREAT <key> <end>`, all of a round's merges in one `MULTI`: full registers,
//! never deltas, so a merge repeated after a timeout or a restart changes nothing.
//!
//! A marker `<prefix>:win:replica:<id>` says that Redis holds this replica's slots. When a
//! round finds it gone (Redis flushed or restarted without persistence), or after any failed
//! round, every retained slot is merged again.
//!
//! # Reading: a mirror ring, no Redis on the read path
//!
//! Every merge transaction also increments `<prefix>:win:gen`, which each round reads with
//! the marker. When it moved since the last fetch, the round `MGET`s the keys of the current
//! and the previous interval of each tier (an idle fleet therefore reads no sketch); every
//! [`RECENT_FETCH_ROUNDS`] rounds the whole live range; every [`FULL_FETCH_ROUNDS`] rounds
//! (and first, and after an outage) every retained interval. Each answer is merged into the
//! mirror (`WindowRing::merge_redis_slot`: register-wise maximum, idempotent). Scrapes and
//! the API then read the mirror like the local ring (cached closed intervals included), so a
//! window costs no Redis round trip and a slow Redis never slows a scrape. The mirror only
//! grows, so a flushed Redis does not make the global windows dip.

use std::collections::HashMap;
use std::sync::Arc;

use redis::aio::ConnectionManager;
use redis::RedisResult;
use uniqd_core::{Resolution, WindowRing};

use super::keys::{check_marker, fingerprint, push_merge};

/// Rounds between fetches of every live interval (the current and previous ones are fetched
/// every round).
pub const RECENT_FETCH_ROUNDS: u32 = 10;
/// Rounds between fetches of every retained interval (catches slots another replica merged
/// late, after an outage of its own).
pub const FULL_FETCH_ROUNDS: u32 = 300;

/// What a replica shares of its window ring, and the mirror it fills.
#[derive(Debug)]
pub struct WindowShare {
    local: Arc<WindowRing>,
    mirror: Arc<WindowRing>,
    prefix: String,
    marker: String,
    /// Incremented by every merge transaction of any replica.
    generation: String,
    /// The generation read before the last fetch (`None`: none yet, or the key was absent).
    fetched_generation: Option<Option<u64>>,
    marker_ttl_ms: u64,
    /// Fingerprint of the dense string last merged per interval.
    sent: HashMap<(Resolution, u64), u64>,
    /// Rounds since the last fetch of every retained interval; `None`: fetch them all next.
    since_full: Option<u32>,
    rounds: u32,
}

impl WindowShare {
    /// Shares `local` under `prefix` (the shared key's same-slot prefix) for `replica`.
    pub fn new(local: Arc<WindowRing>, prefix: &str, replica: &str, marker_ttl_ms: u64) -> Self {
        Self {
            mirror: Arc::new(local.mirror()),
            local,
            prefix: prefix.to_owned(),
            marker: format!("{prefix}:win:replica:{replica}"),
            generation: format!("{prefix}:win:gen"),
            fetched_generation: None,
            marker_ttl_ms,
            sent: HashMap::new(),
            since_full: None,
            rounds: 0,
        }
    }

    /// The ring holding the union of every replica's windows.
    pub fn mirror(&self) -> Arc<WindowRing> {
        Arc::clone(&self.mirror)
    }

    /// Whether every retained interval was fetched at least once.
    pub fn has_fetched(&self) -> bool {
        self.since_full.is_some()
    }

    /// Forgets what was merged and fetched: the next round merges and fetches everything
    /// (after a failed round, whose effect on Redis is unknown).
    pub fn forget(&mut self) {
        self.sent.clear();
        self.since_full = None;
        self.fetched_generation = None;
    }

    fn key(&self, tier: Resolution, index: u64) -> String {
        format!("{}:win:{}:{index}", self.prefix, tier.short_name())
    }

    /// One round: check the marker, merge the changed slots, fetch the keys due.
    pub async fn round(&mut self, conn: &mut ConnectionManager, temp: &str) -> RedisResult<()> {
        let (alive, generation) =
            check_marker(conn, &self.marker, self.marker_ttl_ms, &self.generation).await?;
        if !alive && !self.sent.is_empty() {
            tracing::info!("redis lost this replica's window slots; merging them again");
            self.sent.clear();
        }
        let now_ms = self.local.now_ms();
        self.merge_changed(conn, temp, now_ms).await?;
        // Read before the fetch: a merge after this read moves it again, and is fetched at the
        // next round.
        let moved = self.fetched_generation != Some(generation);
        self.fetch(conn, now_ms, moved).await?;
        self.fetched_generation = Some(generation);
        Ok(())
    }

    async fn merge_changed(
        &mut self,
        conn: &mut ConnectionManager,
        temp: &str,
        now_ms: u64,
    ) -> RedisResult<()> {
        let mut pipe = redis::pipe();
        pipe.atomic();
        let mut pending = Vec::new();
        for tier in Resolution::ALL {
            let intervals = self.local.shared_intervals(tier, now_ms);
            for index in intervals.retained.clone() {
                let known = self.sent.get(&(tier, index)).copied();
                if known.is_some() && index < intervals.live_from {
                    continue; // closed and merged: it cannot have changed
                }
                let Some(payload) = self.local.slot_to_redis(tier, index) else {
                    continue;
                };
                let fingerprint = fingerprint(&payload);
                if known == Some(fingerprint) {
                    continue;
                }
                let key = self.key(tier, index);
                let expire_at = (index + tier.slots() + 1) * tier.interval_ms();
                push_merge(&mut pipe, temp, &key, &payload);
                pipe.cmd("PEXPIREAT").arg(&key).arg(expire_at).ignore();
                pending.push(((tier, index), fingerprint));
            }
            // Intervals that left the ring are forgotten.
            let first = *intervals.retained.start();
            self.sent.retain(|&(t, i), _| t != tier || i >= first);
        }
        if pending.is_empty() {
            return Ok(());
        }
        pipe.cmd("SET")
            .arg(&self.marker)
            .arg(1)
            .arg("PX")
            .arg(self.marker_ttl_ms)
            .ignore()
            .cmd("INCR")
            .arg(&self.generation)
            .ignore();
        pipe.query_async::<()>(conn).await?;
        self.sent.extend(pending);
        Ok(())
    }

    async fn fetch(
        &mut self,
        conn: &mut ConnectionManager,
        now_ms: u64,
        moved: bool,
    ) -> RedisResult<()> {
        let full = self.since_full.is_none_or(|n| n >= FULL_FETCH_ROUNDS);
        let recent = self.rounds.is_multiple_of(RECENT_FETCH_ROUNDS);
        if !full && !recent && !moved {
            // Nothing merged anywhere since the last fetch.
            self.rounds = self.rounds.wrapping_add(1);
            self.since_full = self.since_full.map(|n| n + 1);
            return Ok(());
        }
        let mut wanted = Vec::new();
        for tier in Resolution::ALL {
            let intervals = self.local.shared_intervals(tier, now_ms);
            let now_index = *intervals.retained.end();
            let from = if full {
                *intervals.retained.start()
            } else if recent {
                intervals.live_from
            } else {
                now_index.saturating_sub(1).max(*intervals.retained.start())
            };
            wanted.extend((from..=now_index).map(|index| (tier, index)));
        }
        let keys: Vec<String> = wanted.iter().map(|&(t, i)| self.key(t, i)).collect();
        let values: Vec<Option<Vec<u8>>> = redis::cmd("MGET").arg(&keys).query_async(conn).await?;
        for ((tier, index), value) in wanted.into_iter().zip(values) {
            let Some(bytes) = value else { continue };
            if let Err(error) = self.mirror.merge_redis_slot(tier, index, &bytes) {
                tracing::debug!(%error, key = %self.key(tier, index), "not a HyperLogLog; skipped");
            }
        }
        self.rounds = self.rounds.wrapping_add(1);
        self.since_full = Some(if full {
            0
        } else {
            self.since_full.map_or(0, |n| n + 1)
        });
        Ok(())
    }
}
