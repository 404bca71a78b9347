//! The per-group counts (`--group-by`) through Redis: each replica merges every tracked
//! group's registers into one HyperLogLog key per group, and reads back the count of every
//! group any replica registered.
//!
//! # Keys
//!
//! * `<prefix>:group:<hash>`: the union of every replica's registers for one group. `<hash>`
//!   is the 16 hex digits of MurmurHash64A of the group name (the seed Redis uses for its
//!   HyperLogLogs), so a key is short and plain whatever the name holds (up to 128 bytes of
//!   any UTF-8, braces and spaces included). Two names with the same 64-bit hash would share a
//!   key; among the at most 10,000 groups of a fleet that has a chance below 10⁻¹¹.
//! * `<prefix>:groups`: the registry, a sorted set of group *names* scored by the time their
//!   key expires, so that readers know the names behind the hashes and which groups exist.
//! * `<prefix>:groups:other`: the union of every replica's `__other__` counter (the lines of
//!   groups a replica does not track, and the history of the groups it evicted). A key of its
//!   own: a group is tracked on some replicas and untracked on others, so `__other__` cannot
//!   be derived from the group keys.
//! * `<prefix>:groups:gen`: the generation (see below).
//! * `<prefix>:groups:replica:<id>`: this replica's marker, as for the total.
//!
//! # Writing: the same idempotent merge as the total
//!
//! Each round, every group whose dense string differs from the one last merged for it (and
//! `__other__`) is merged full-register inside one `MULTI`: `SET <temp> <12,304 bytes>;
//! PFMERGE <key> <temp>; DEL <temp>; PEXPIRE <key> <ttl>`, then `ZADD` of the names and `SET`
//! of the marker. Registers, never deltas: a merge repeated after a timeout, an outage or a
//! restart changes nothing. When the marker is found gone (Redis flushed, restarted without
//! persistence, failed over) or after any failed round, every group is merged again. Every
//! [`REFRESH_ROUNDS`] rounds the keys and registry entries of unchanged groups get their
//! lifetime back (`PEXPIRE`, `ZADD`): a group that no replica tracks any more expires with
//! its key [`KEY_TTL_MARKERS`] marker lifetimes later (its addresses stay in the `__other__`
//! of the replicas that evicted it).
//!
//! # Reading: bounded like the local groups
//!
//! Every merge transaction also increments `<prefix>:groups:gen`, read with the marker each
//! round; a round reads the counts when it moved since the last read, when this replica
//! merged, and every [`READ_ROUNDS`] rounds (groups expire without moving it), so an idle
//! fleet reads little more than the generation. A read drops expired registry entries, reads
//! the names (`ZRANGE`) and counts each group's key (`PFCOUNT`, pipelined; Redis caches a
//! key's count until it changes). The
//! `max_groups` largest are the global groups; the others (tracked by some replica only, at
//! most replicas × `max_groups` in all) go to the global `__other__`, counted as the union of
//! the other key and theirs (one multi-key `PFCOUNT`). So the global answer is bounded like
//! the local one, and the union of the global groups and `__other__` is the global total.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use redis::aio::ConnectionManager;
use redis::RedisResult;
use uniqd_core::{
    hash_element, GroupCount, Groups, GroupsSnapshot, Phase, OTHER_GROUP,
    SKETCH_RELATIVE_STANDARD_ERROR,
};

use super::keys::{check_marker, fingerprint, push_merge};
use crate::units::millis;

/// Rounds between two refreshes of the lifetime of unchanged groups' keys.
pub const REFRESH_ROUNDS: u32 = 10;
/// A group key lives this many marker lifetimes (at least 30 intervals, 3 minutes) past its
/// last refresh: three times [`REFRESH_ROUNDS`] even when outage backoff stretches rounds.
pub const KEY_TTL_MARKERS: u64 = 3;
/// Rounds between two reads of the counts when no replica merged (catches expired groups).
pub const READ_ROUNDS: u32 = 10;

/// What a replica shares of its groups.
#[derive(Debug)]
pub struct GroupShare {
    groups: Arc<Groups>,
    prefix: String,
    registry: String,
    other: String,
    marker: String,
    /// Incremented by every merge transaction of any replica.
    generation: String,
    /// The generation read before the last read of the counts (`None`: none yet).
    read_generation: Option<Option<u64>>,
    /// Rounds since the last read of the counts.
    since_read: u32,
    marker_ttl_ms: u64,
    key_ttl_ms: u64,
    /// Fingerprint of the dense string last merged per group (`__other__` included).
    sent: HashMap<Box<str>, u64>,
    rounds: u32,
}

impl GroupShare {
    /// Shares `groups` under `prefix` (the shared key's same-slot prefix) for `replica`.
    pub fn new(groups: Arc<Groups>, prefix: &str, replica: &str, marker_ttl_ms: u64) -> Self {
        Self {
            groups,
            prefix: prefix.to_owned(),
            registry: format!("{prefix}:groups"),
            other: format!("{prefix}:groups:other"),
            marker: format!("{prefix}:groups:replica:{replica}"),
            generation: format!("{prefix}:groups:gen"),
            read_generation: None,
            since_read: 0,
            marker_ttl_ms,
            key_ttl_ms: marker_ttl_ms.saturating_mul(KEY_TTL_MARKERS),
            sent: HashMap::new(),
            rounds: 0,
        }
    }

    /// The key of group `name`.
    pub fn key(&self, name: &str) -> String {
        group_key(&self.prefix, name)
    }

    /// Merge everything again at the next round (after a failure: Redis may have lost it).
    pub fn forget(&mut self) {
        self.sent.clear();
        self.rounds = 0;
        self.read_generation = None;
    }

    /// One round: check the marker, merge the changed groups, read every group's count when
    /// any replica merged since the last read (or every [`READ_ROUNDS`] rounds). Returns the
    /// counts read, `None` when this round read none.
    pub async fn round(
        &mut self,
        conn: &mut ConnectionManager,
        temp: &str,
    ) -> RedisResult<Option<GroupsSnapshot>> {
        let (alive, generation) =
            check_marker(conn, &self.marker, self.marker_ttl_ms, &self.generation).await?;
        if !alive && !self.sent.is_empty() {
            tracing::info!("redis lost this replica's group counts; merging them again");
            self.sent.clear();
        }
        let merged = self.merge_changed(conn, temp).await?;
        let due = merged
            || self.read_generation != Some(generation)
            || self.since_read + 1 >= READ_ROUNDS;
        if !due {
            self.since_read += 1;
            return Ok(None);
        }
        // Read before the counts: a merge after this read moves it again, and is read at the
        // next round.
        let local = self.groups.snapshot();
        let counts = self.read(conn, &local).await?;
        self.read_generation = Some(generation);
        self.since_read = 0;
        Ok(Some(counts))
    }

    /// Merges the changed groups; whether anything was merged.
    async fn merge_changed(
        &mut self,
        conn: &mut ConnectionManager,
        temp: &str,
    ) -> RedisResult<bool> {
        let refresh = self.sent.is_empty() || self.rounds.is_multiple_of(REFRESH_ROUNDS);
        self.rounds = self.rounds.wrapping_add(1);
        let mut payloads: Vec<(Box<str>, Vec<u8>)> = Vec::new();
        self.groups
            .for_each(|name, counter| payloads.push((name.into(), counter.to_redis())));
        payloads.push((OTHER_GROUP.into(), self.groups.other().to_redis()));
        let now_ms = now_ms();
        let mut pipe = redis::pipe();
        pipe.atomic();
        let mut pending = Vec::new();
        let mut names = Vec::new();
        for (name, payload) in payloads {
            let key = if &*name == OTHER_GROUP {
                self.other.clone()
            } else {
                self.key(&name)
            };
            let fingerprint = fingerprint(&payload);
            let changed = self.sent.get(&name) != Some(&fingerprint);
            if changed {
                push_merge(&mut pipe, temp, &key, &payload);
            }
            if changed || refresh {
                pipe.cmd("PEXPIRE").arg(&key).arg(self.key_ttl_ms).ignore();
                if &*name != OTHER_GROUP {
                    names.push(name.clone());
                }
            }
            pending.push((name, fingerprint, changed));
        }
        let merged = pending.iter().any(|p| p.2);
        if !merged && names.is_empty() {
            self.keep(pending);
            return Ok(false);
        }
        if !names.is_empty() {
            let score = now_ms + self.key_ttl_ms;
            let mut zadd = redis::cmd("ZADD");
            zadd.arg(&self.registry);
            for name in &names {
                zadd.arg(score).arg(&**name);
            }
            pipe.add_command(zadd).ignore();
            pipe.cmd("PEXPIRE")
                .arg(&self.registry)
                .arg(self.key_ttl_ms)
                .ignore();
        }
        pipe.cmd("SET")
            .arg(&self.marker)
            .arg(1)
            .arg("PX")
            .arg(self.marker_ttl_ms)
            .ignore();
        if merged {
            pipe.cmd("INCR").arg(&self.generation).ignore();
        }
        pipe.query_async::<()>(conn).await?;
        self.keep(pending);
        Ok(merged)
    }

    /// Remembers what was merged, and only the groups tracked now.
    fn keep(&mut self, pending: Vec<(Box<str>, u64, bool)>) {
        self.sent = pending.into_iter().map(|(n, f, _)| (n, f)).collect();
    }

    async fn read(
        &mut self,
        conn: &mut ConnectionManager,
        local: &GroupsSnapshot,
    ) -> RedisResult<GroupsSnapshot> {
        let (names,): (Vec<String>,) = redis::pipe()
            .cmd("ZREMRANGEBYSCORE")
            .arg(&self.registry)
            .arg("-inf")
            .arg(now_ms())
            .ignore()
            .cmd("ZRANGE")
            .arg(&self.registry)
            .arg(0)
            .arg(-1)
            .query_async(conn)
            .await?;
        let mut pipe = redis::pipe();
        for name in &names {
            pipe.cmd("PFCOUNT").arg(self.key(name));
        }
        let counts: Vec<u64> = if names.is_empty() {
            Vec::new()
        } else {
            pipe.query_async(conn).await?
        };
        let mut global: Vec<(String, u64)> = names
            .into_iter()
            .zip(counts)
            .filter(|&(_, count)| count > 0) // the key expired before its entry
            .collect();
        global.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        let hidden = global.split_off(global.len().min(local.max_groups));
        let mut other = redis::cmd("PFCOUNT");
        other.arg(&self.other);
        for (name, _) in &hidden {
            other.arg(self.key(name));
        }
        let other: u64 = other.query_async(conn).await?;
        Ok(GroupsSnapshot {
            groups: global
                .into_iter()
                .map(|(name, estimate)| shared_count(name, estimate))
                .collect(),
            other: shared_count(OTHER_GROUP.to_owned(), other),
            max_groups: local.max_groups,
            evictions: local.evictions,
        })
    }
}

/// The key of group `name` under `prefix` (see the [module docs](self)).
pub fn group_key(prefix: &str, name: &str) -> String {
    format!("{prefix}:group:{:016x}", hash_element(name.as_bytes()))
}

/// A count read from Redis: a HyperLogLog estimate.
fn shared_count(name: String, estimate: u64) -> GroupCount {
    GroupCount {
        name,
        estimate,
        phase: Phase::Sketch,
        relative_standard_error: SKETCH_RELATIVE_STANDARD_ERROR,
    }
}

fn now_ms() -> u64 {
    millis(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_keys_are_short_plain_and_distinct() {
        let prefix = "{uniqd:unique_ip_addresses}";
        let a = group_key(prefix, "a.example");
        assert!(a.starts_with("{uniqd:unique_ip_addresses}:group:"), "{a}");
        assert_eq!(a.len(), prefix.len() + ":group:".len() + 16);
        let odd = group_key(prefix, "{x} ü\n");
        assert!(odd[prefix.len()..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b':'));
        assert_ne!(a, group_key(prefix, "b.example"));
        assert_eq!(a, group_key(prefix, "a.example"), "stable");
    }
}
