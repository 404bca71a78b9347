//! `GET /stats`: the most requested pages as JSON, from the [`TopPages`] summary.
//!
//! Like `/metrics`, the answer is computed when asked ([`TopPages::snapshot`] copies the
//! counters shard by shard and merges them), so it is never stale and costs nothing between
//! requests. The body:
//!
//! ```json
//! {"total_requests":5,"tracked":4,"capacity":1024,"shards":2,"error_bound":0,"limit":100,
//!  "scope":"local","pages":[{"path":"/","count":2,"error":0},{"path":"/a","count":1,"error":0}]}
//! ```
//!
//! `pages` is sorted by `count` (descending), ties by `path` (ascending, byte order), and holds
//! at most `limit` entries (`?limit=N`, default [`DEFAULT_STATS_LIMIT`], 1 ..=
//! [`MAX_STATS_LIMIT`]). Each page's true count lies in `[count − error, count]`; every page
//! with more than `error_bound` true requests is among the `tracked` ones (see
//! `uniqd_core::top_pages` for the algorithm and the bound). `scope` is `global` when the
//! summaries of every replica were merged (`--redis-url`, Redis reachable; the bound is then
//! the sum of theirs, see `TopPagesSnapshot::merge_replicas`), else `local`.

use std::fmt;

use uniqd_core::{TopPages, TopPagesSnapshot};
use uniqd_http::JsonObject;

use crate::query::{single_param, Repeated};
use crate::shared_views::Scope;

/// Pages listed when the query has no `limit`.
pub const DEFAULT_STATS_LIMIT: usize = 100;

/// Largest accepted `limit`.
pub const MAX_STATS_LIMIT: usize = 10_000;

/// Why the query string of `/stats` was refused (a 400).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatsQueryError {
    /// `limit` is not a whole number from 1 to [`MAX_STATS_LIMIT`]; holds the value as sent
    /// (at most 32 bytes of it).
    InvalidLimit(String),
    /// `limit` appears more than once.
    RepeatedLimit,
}

impl StatsQueryError {
    /// Stable machine-readable code for the JSON body.
    #[must_use]
    pub fn code(&self) -> &'static str {
        "invalid_limit"
    }
}

impl fmt::Display for StatsQueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidLimit(value) => write!(
                f,
                "limit must be a whole number from 1 to {MAX_STATS_LIMIT}, not {value:?}"
            ),
            Self::RepeatedLimit => f.write_str("limit is given more than once"),
        }
    }
}

impl std::error::Error for StatsQueryError {}

/// The `limit` of a `/stats` query string (`None`: no query). Other parameters are ignored.
///
/// ```
/// use uniqd_exporter::stats::{parse_limit, DEFAULT_STATS_LIMIT};
///
/// assert_eq!(parse_limit(None), Ok(DEFAULT_STATS_LIMIT));
/// assert_eq!(parse_limit(Some("limit=5")), Ok(5));
/// assert_eq!(parse_limit(Some("_=1&limit=20")), Ok(20));
/// assert!(parse_limit(Some("limit=0")).is_err());
/// assert!(parse_limit(Some("limit=ten")).is_err());
/// ```
///
/// # Errors
///
/// [`StatsQueryError`] for a value that is not a whole number from 1 to [`MAX_STATS_LIMIT`]
/// (digits only: no sign, no spaces), and for a repeated `limit`.
pub fn parse_limit(query: Option<&str>) -> Result<usize, StatsQueryError> {
    let Some(value) =
        single_param(query, "limit").map_err(|Repeated| StatsQueryError::RepeatedLimit)?
    else {
        return Ok(DEFAULT_STATS_LIMIT);
    };
    let invalid = || {
        let mut end = value.len().min(32);
        while !value.is_char_boundary(end) {
            end -= 1;
        }
        StatsQueryError::InvalidLimit(value[..end].to_owned())
    };
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid());
    }
    match value.parse::<usize>() {
        Ok(n @ 1..=MAX_STATS_LIMIT) => Ok(n),
        _ => Err(invalid()),
    }
}

/// The `/stats` body for the first `limit` pages of `top` (this replica's: scope `local`).
#[must_use]
pub fn stats_json(top: &TopPages, limit: usize) -> String {
    snapshot_json(&top.snapshot(limit), Scope::Local, limit)
}

/// The `/stats` body of a snapshot taken with `limit`, covering `scope`.
#[must_use]
pub fn snapshot_json(snapshot: &TopPagesSnapshot, scope: Scope, limit: usize) -> String {
    let mut pages = String::with_capacity(2 + snapshot.pages.len() * 64);
    pages.push('[');
    for (i, page) in snapshot.pages.iter().enumerate() {
        if i > 0 {
            pages.push(',');
        }
        pages.push_str(
            &JsonObject::with_capacity(page.path.len() + 48)
                .str("path", &page.path)
                .u64("count", page.count)
                .u64("error", page.error)
                .finish(),
        );
    }
    pages.push(']');
    let to_u64 = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
    JsonObject::with_capacity(pages.len() + 128)
        .u64("total_requests", snapshot.total_requests)
        .u64("tracked", to_u64(snapshot.tracked))
        .u64("capacity", to_u64(snapshot.capacity))
        .u64("shards", to_u64(snapshot.shards))
        .u64("error_bound", snapshot.error_bound)
        .u64("limit", to_u64(limit))
        .str("scope", scope.as_str())
        .raw("pages", &pages)
        .finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use uniqd_core::PathOptions;

    #[test]
    fn limits() {
        assert_eq!(parse_limit(Some("")), Ok(DEFAULT_STATS_LIMIT));
        assert_eq!(parse_limit(Some("other=x")), Ok(DEFAULT_STATS_LIMIT));
        assert_eq!(parse_limit(Some("limit=1")), Ok(1));
        assert_eq!(parse_limit(Some("limit=10000")), Ok(MAX_STATS_LIMIT));
        assert_eq!(parse_limit(Some("limit=007")), Ok(7));
        for bad in [
            "limit",
            "limit=",
            "limit=0",
            "limit=10001",
            "limit=-1",
            "limit=+1",
            "limit=1.5",
            "limit= 1",
            "limit=99999999999999999999999",
        ] {
            let error = parse_limit(Some(bad)).expect_err(bad);
            assert_eq!(error.code(), "invalid_limit");
            assert!(error.to_string().contains("from 1 to 10000"), "{error}");
        }
        assert_eq!(
            parse_limit(Some("limit=1&limit=2")),
            Err(StatsQueryError::RepeatedLimit)
        );
        let long = format!("limit={}", "é".repeat(40));
        let Err(StatsQueryError::InvalidLimit(shown)) = parse_limit(Some(&long)) else {
            unreachable!("an accented limit is invalid")
        };
        assert!(shown.len() <= 32);
    }

    #[test]
    fn body() {
        let top = TopPages::new(8, 1, PathOptions::default()).expect("valid size");
        for url in ["/", "/b", "/a", "/", "/\"q\""] {
            top.record_url(url);
        }
        assert_eq!(
            stats_json(&top, 3),
            r#"{"total_requests":5,"tracked":4,"capacity":8,"shards":1,"error_bound":0,"limit":3,"scope":"local","pages":[{"path":"/","count":2,"error":0},{"path":"/\"q\"","count":1,"error":0},{"path":"/a","count":1,"error":0}]}"#
        );
        let empty = TopPages::new(8, 2, PathOptions::default()).expect("valid size");
        assert_eq!(
            stats_json(&empty, 100),
            r#"{"total_requests":0,"tracked":0,"capacity":8,"shards":2,"error_bound":0,"limit":100,"scope":"local","pages":[]}"#
        );
    }
}
