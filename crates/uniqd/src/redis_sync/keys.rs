//! The Redis keys one replica touches, all in the hash slot of the shared key, so that the
//! merge transaction is valid on Redis Cluster (a `MULTI` whose keys span slots fails with
//! `CROSSSLOT`).
//!
//! Redis Cluster hashes only the *hash tag* of a key when it has one: the text between the
//! first `{` and the next `}`, if not empty. The per-replica keys therefore carry the shared
//! key's tag: `{uniqd:unique_ip_addresses}:merge:<replica>` for the default key (which has no
//! tag and so is hashed whole), or `<key>:merge:<replica>` for a key that already has a tag
//! such as `{tenant-a}:unique`.
//!
//! Beside the names, the one command sequence every view merges a sketch with
//! ([`push_merge`]), how a sent sketch is remembered ([`fingerprint`]) and the marker check
//! that starts a shared view's round ([`check_marker`]).

use std::hash::{BuildHasher as _, BuildHasherDefault, DefaultHasher, Hasher as _};

/// Appends the idempotent full-register merge of `payload` (a Redis HyperLogLog string) into
/// `key` to a transaction: `SET <temp> <payload>; PFMERGE <key> <temp>; DEL <temp>`, replies
/// ignored. Inside one `MULTI` the temporary key never outlives the transaction.
pub fn push_merge(pipe: &mut redis::Pipeline, temp: &str, key: &str, payload: &[u8]) {
    pipe.cmd("SET")
        .arg(temp)
        .arg(payload)
        .ignore()
        .cmd("PFMERGE")
        .arg(key)
        .arg(temp)
        .ignore()
        .cmd("DEL")
        .arg(temp)
        .ignore();
}

/// The start of a shared view's round, pipelined: `PEXPIRE <marker> <ttl_ms>` (false: Redis
/// lost this replica's marker, and with it what the replica merged for the view, which must
/// then be merged again) and `GET <generation>` (the view's merge counter, `None` if unset).
///
/// # Errors
///
/// The connection's, when Redis does not answer.
pub async fn check_marker(
    conn: &mut redis::aio::ConnectionManager,
    marker: &str,
    ttl_ms: u64,
    generation: &str,
) -> redis::RedisResult<(bool, Option<u64>)> {
    redis::pipe()
        .cmd("PEXPIRE")
        .arg(marker)
        .arg(ttl_ms)
        .cmd("GET")
        .arg(generation)
        .query_async(conn)
        .await
}

/// What a merged payload is remembered by, so that a round sends only what changed since
/// the last successful merge (a fixed-key hasher: the same bytes, the same value, every run).
#[must_use]
pub fn fingerprint(payload: &[u8]) -> u64 {
    BuildHasherDefault::<DefaultHasher>::default().hash_one(payload)
}

/// The keys of one replica.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncKeys {
    /// The shared HyperLogLog every replica merges into (`--redis-key`).
    pub shared: String,
    /// This replica's temporary key: set, merged and deleted inside one transaction.
    pub merge: String,
    /// This replica's marker, written with each merge and kept alive by each idle sync: when
    /// it is gone, the shared key no longer holds our registers (Redis restarted without
    /// persistence, was flushed, or failed over) and they are sent again.
    pub marker: String,
    /// The start of every helper key: followed by text without braces, it hashes to the
    /// shared key's slot (the window and top-pages keys use it too).
    pub prefix: String,
}

impl SyncKeys {
    /// The keys of replica `replica` sharing `shared`.
    ///
    /// # Errors
    ///
    /// An empty key, or one that contains `}` without a hash tag: no other key can be placed
    /// in its slot by construction.
    pub fn new(shared: &str, replica: &str) -> Result<Self, String> {
        let prefix = same_slot_prefix(shared)?;
        Ok(Self {
            shared: shared.to_owned(),
            merge: format!("{prefix}:merge:{replica}"),
            marker: format!("{prefix}:replica:{replica}"),
            prefix,
        })
    }
}

/// The hash tag Redis Cluster hashes for `key`, if it has one.
fn hash_tag(key: &str) -> Option<&str> {
    let open = key.find('{')?;
    let rest = &key[open + 1..];
    let close = rest.find('}')?;
    (close > 0).then(|| &rest[..close])
}

/// A prefix that, followed by any text without braces, hashes to the slot of `key`.
fn same_slot_prefix(key: &str) -> Result<String, String> {
    if key.is_empty() {
        return Err("the Redis key must not be empty".to_owned());
    }
    match hash_tag(key) {
        // Appending keeps the first `{...}`, hence the tag.
        Some(_) => Ok(key.to_owned()),
        None if key.contains('}') => Err(format!(
            "Redis key {key:?} contains '}}' but no hash tag, so the replica's helper keys \
             cannot share its cluster slot; use a key without braces or with a tag like \
             {{name}}:rest"
        )),
        // The whole key is hashed; as a tag it hashes the same.
        None => Ok(format!("{{{key}}}")),
    }
}

/// A random replica id (16 hex digits), fresh for every process: names the helper keys.
///
/// `RandomState` is seeded randomly per process by the standard library; mixing in the
/// process id and the time keeps ids apart even where that seed were predictable.
pub fn new_replica_id() -> String {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_nanos());
    hasher.write_u128(nanos);
    format!("{:016x}", hasher.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_tags_follow_the_cluster_rule() {
        assert_eq!(hash_tag("uniqd:unique_ip_addresses"), None);
        assert_eq!(hash_tag("{user1000}.following"), Some("user1000"));
        assert_eq!(hash_tag("foo{}{bar}"), None); // empty first tag: whole key
        assert_eq!(hash_tag("foo{{bar}}zap"), Some("{bar"));
        assert_eq!(hash_tag("foo{bar}{zap}"), Some("bar"));
        assert_eq!(hash_tag("a{b"), None);
    }

    #[test]
    fn helper_keys_carry_the_shared_keys_tag() {
        let keys = SyncKeys::new("uniqd:unique_ip_addresses", "ab12").expect("valid");
        assert_eq!(keys.shared, "uniqd:unique_ip_addresses");
        assert_eq!(keys.merge, "{uniqd:unique_ip_addresses}:merge:ab12");
        assert_eq!(keys.marker, "{uniqd:unique_ip_addresses}:replica:ab12");
        assert_eq!(hash_tag(&keys.merge), Some(keys.shared.as_str()));

        let tagged = SyncKeys::new("{tenant}:uniq", "ab12").expect("valid");
        assert_eq!(tagged.merge, "{tenant}:uniq:merge:ab12");
        assert_eq!(hash_tag(&tagged.marker), Some("tenant"));

        let open_only = SyncKeys::new("a{b", "x").expect("valid");
        assert_eq!(hash_tag(&open_only.merge), Some("a{b"));
    }

    #[test]
    fn keys_that_cannot_share_a_slot_are_rejected() {
        assert!(SyncKeys::new("", "x").is_err());
        assert!(SyncKeys::new("a}b", "x").is_err());
        assert!(SyncKeys::new("foo{}bar", "x").is_err());
    }

    #[test]
    fn replica_ids_differ() {
        let (a, b) = (new_replica_id(), new_replica_id());
        assert_eq!(a.len(), 16);
        assert_ne!(a, b);
    }
}
