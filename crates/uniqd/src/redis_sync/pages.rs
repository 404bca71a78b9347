//! The top pages through Redis: each replica publishes its whole summary under a key of its
//! own, and every replica merges all of them (`TopPagesSnapshot::merge_replicas`).
//!
//! # Why nothing is counted twice
//!
//! A replica's key `<prefix>:pages:<id>` holds a snapshot of *everything* that replica
//! counted since it started, and each publication overwrites the previous one (`SET ... PX`):
//! it is never a delta, so sending it again, or after a timeout whose outcome is unknown,
//! replaces equal or older data and adds nothing. A reader merges the one current key of
//! each live replica once per read, from scratch, and keeps nothing of earlier reads: a
//! re-read or a re-merge yields the same result, never a sum of two reads. The live replicas
//! are the members of the sorted set `<prefix>:pages:replicas` whose score (the expiry time
//! each replica refreshes every round) is in the future; a replica that stops drops out
//! after the marker lifetime, and its counts leave the global top pages with it.
//!
//! A summary is cut to its first [`PUBLISHED_PAGES`] pages; the merge accounts for the cut
//! in its bound. Publications happen every [`PAGES_ROUNDS`] rounds (and at once after an
//! outage or when the key was lost), and only when the summary changed; otherwise the key's
//! lifetime is refreshed.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use redis::aio::ConnectionManager;
use redis::RedisResult;
use uniqd_core::{PageCount, TopPages, TopPagesSnapshot};

use crate::units::millis;

/// Most pages a replica publishes (its most requested ones).
pub const PUBLISHED_PAGES: usize = 1024;
/// Rounds between two publications and reads of the top pages.
pub const PAGES_ROUNDS: u32 = 5;
/// Most pages kept of the merge (`/stats` lists at most this many).
pub const MERGED_PAGES: usize = uniqd_exporter::stats::MAX_STATS_LIMIT;

const MAGIC: &[u8; 4] = b"UQP1";

/// What a replica shares of its top pages.
#[derive(Debug)]
pub struct PageShare {
    top: Arc<TopPages>,
    key: String,
    registry: String,
    prefix: String,
    replica: String,
    ttl_ms: u64,
    /// `total_requests` of the last publication; `None`: publish next round.
    published: Option<u64>,
    rounds: u32,
}

impl PageShare {
    /// Shares `top` under `prefix` for `replica`; keys live `ttl_ms` past their last refresh.
    pub fn new(top: Arc<TopPages>, prefix: &str, replica: &str, ttl_ms: u64) -> Self {
        Self {
            top,
            key: format!("{prefix}:pages:{replica}"),
            registry: format!("{prefix}:pages:replicas"),
            prefix: prefix.to_owned(),
            replica: replica.to_owned(),
            ttl_ms,
            published: None,
            rounds: 0,
        }
    }

    /// Publish and read at the next round (after a failure: Redis may have lost the key).
    pub fn forget(&mut self) {
        self.published = None;
        self.rounds = 0;
    }

    /// One round: publish if due and changed, then read and merge every replica's summary.
    /// Returns the merge, or `None` when this round was not due.
    pub async fn round(
        &mut self,
        conn: &mut ConnectionManager,
    ) -> RedisResult<Option<TopPagesSnapshot>> {
        let due = self.published.is_none() || self.rounds.is_multiple_of(PAGES_ROUNDS);
        self.rounds = self.rounds.wrapping_add(1);
        if !due {
            return Ok(None);
        }
        let now_ms = millis(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default(),
        );
        let changed = self.published != Some(self.top.total());
        let kept = if changed {
            false
        } else {
            let (kept,): (bool,) = redis::pipe()
                .cmd("PEXPIRE")
                .arg(&self.key)
                .arg(self.ttl_ms)
                .query_async(conn)
                .await?;
            kept
        };
        let mut pipe = redis::pipe();
        if !kept {
            let snapshot = self.top.snapshot(PUBLISHED_PAGES);
            pipe.cmd("SET")
                .arg(&self.key)
                .arg(encode(&snapshot))
                .arg("PX")
                .arg(self.ttl_ms)
                .ignore();
            self.published = Some(snapshot.total_requests);
        }
        pipe.cmd("ZADD")
            .arg(&self.registry)
            .arg(now_ms + self.ttl_ms)
            .arg(&self.replica)
            .ignore()
            .cmd("ZREMRANGEBYSCORE")
            .arg(&self.registry)
            .arg("-inf")
            .arg(now_ms)
            .ignore()
            .cmd("ZRANGE")
            .arg(&self.registry)
            .arg(0)
            .arg(-1);
        let result: RedisResult<(Vec<String>,)> = pipe.query_async(conn).await;
        let (replicas,) = result.inspect_err(|_| self.published = None)?;
        let keys: Vec<String> = replicas
            .iter()
            .map(|r| format!("{}:pages:{r}", self.prefix))
            .collect();
        let values: Vec<Option<Vec<u8>>> = redis::cmd("MGET").arg(&keys).query_async(conn).await?;
        let parts: Vec<TopPagesSnapshot> = values
            .iter()
            .flatten()
            .filter_map(|bytes| {
                decode(bytes)
                    .inspect_err(|e| tracing::debug!(error = e, "unreadable top pages; skipped"))
                    .ok()
            })
            .collect();
        Ok(Some(TopPagesSnapshot::merge_replicas(&parts, MERGED_PAGES)))
    }
}

/// A snapshot as bytes: magic, then big-endian `total_requests`, `error_bound`,
/// `capacity`, `shards`, `tracked` and the number of pages (u64 each), then per page
/// `count`, `error` (u64) and the path (u32 length, UTF-8 bytes).
pub fn encode(snapshot: &TopPagesSnapshot) -> Vec<u8> {
    let paths: usize = snapshot.pages.iter().map(|p| p.path.len() + 20).sum();
    let mut out = Vec::with_capacity(MAGIC.len() + 48 + paths);
    out.extend_from_slice(MAGIC);
    let to_u64 = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
    for n in [
        snapshot.total_requests,
        snapshot.error_bound,
        to_u64(snapshot.capacity),
        to_u64(snapshot.shards),
        to_u64(snapshot.tracked),
        to_u64(snapshot.pages.len()),
    ] {
        out.extend_from_slice(&n.to_be_bytes());
    }
    for page in &snapshot.pages {
        out.extend_from_slice(&page.count.to_be_bytes());
        out.extend_from_slice(&page.error.to_be_bytes());
        // Paths are at most MAX_PATH_BYTES (256) long.
        let len = u32::try_from(page.path.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(page.path.as_bytes());
    }
    out
}

/// The snapshot [`encode`] wrote.
///
/// # Errors
///
/// Bytes that [`encode`] did not write (what is wrong, briefly).
pub fn decode(bytes: &[u8]) -> Result<TopPagesSnapshot, &'static str> {
    let rest = bytes.strip_prefix(MAGIC).ok_or("bad magic")?;
    let mut reader = Reader(rest);
    let total_requests = reader.u64()?;
    let error_bound = reader.u64()?;
    let capacity = reader.usize()?;
    let shards = reader.usize()?;
    let tracked = reader.usize()?;
    let len = reader.usize()?;
    let mut pages = Vec::with_capacity(len.min(PUBLISHED_PAGES));
    for _ in 0..len {
        let count = reader.u64()?;
        let error = reader.u64()?;
        let path_len = usize::try_from(reader.u32()?).map_err(|_| "path too long")?;
        let path = reader.take(path_len)?;
        let path = std::str::from_utf8(path).map_err(|_| "path not UTF-8")?;
        pages.push(PageCount {
            path: path.to_owned(),
            count,
            error,
        });
    }
    if !reader.0.is_empty() {
        return Err("trailing bytes");
    }
    Ok(TopPagesSnapshot {
        total_requests,
        capacity,
        shards,
        tracked,
        error_bound,
        pages,
    })
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], &'static str> {
        if self.0.len() < n {
            return Err("truncated");
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn u64(&mut self) -> Result<u64, &'static str> {
        let bytes = self.take(8)?;
        let mut array = [0u8; 8];
        array.copy_from_slice(bytes);
        Ok(u64::from_be_bytes(array))
    }

    fn u32(&mut self) -> Result<u32, &'static str> {
        let bytes = self.take(4)?;
        let mut array = [0u8; 4];
        array.copy_from_slice(bytes);
        Ok(u32::from_be_bytes(array))
    }

    fn usize(&mut self) -> Result<usize, &'static str> {
        usize::try_from(self.u64()?).map_err(|_| "too large")
    }
}

#[cfg(test)]
mod tests {
    use uniqd_core::PathOptions;

    use super::*;

    #[test]
    fn snapshots_round_trip() {
        let top = TopPages::new(4, 1, PathOptions::default()).expect("valid size");
        for url in ["/", "/", "/é", "/a", "/b", "/c", "/d"] {
            top.record_url(url);
        }
        for limit in [0, 2, 100] {
            let snapshot = top.snapshot(limit);
            let bytes = encode(&snapshot);
            assert_eq!(decode(&bytes), Ok(snapshot));
            assert!(decode(&bytes[..bytes.len() - 1]).is_err());
        }
        assert!(decode(b"nope").is_err());
        let mut long = encode(&top.snapshot(1));
        long.push(0);
        assert_eq!(decode(&long), Err("trailing bytes"));
    }
}
