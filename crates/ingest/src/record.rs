//! Stage 4 of the ingest pipeline: an accepted log's fields into the [`Views`].
//!
//! [`record_log`] is the one step every framing calls per log: read the fields
//! ([`crate::fields`]) as the [`FieldSpec`] says, hash the address once (for the counter and
//! the window ring; a value that is not an address as it stands, with a port or a forwarded
//! list, is resolved first by [`crate::fields::address::resolve`]), and
//! [`Views::record`] it, which counts it in every view that is on: the counter; the window
//! ring at the log's `timestamp` when it parses and is plausible (see
//! [`crate::fields::timestamp`]), else at arrival; and the `url`, if any, in the top pages (a
//! stack copy of the path and one uncontended lock of this thread's shard, no allocation);
//! and with `--group-by`, the log's group in the per-group counters (`fields/group.rs`).
//! Nothing is counted unless the whole object is valid and the address parses.

use uniqd_core::{hash_ip_str, Arrival, Views};

use crate::fields::address::resolve;
use crate::fields::group::group;
use crate::fields::{FieldReader, FieldSpec, LineError};

/// Reads one log object from `bytes` and records it in `views` (see the module docs);
/// `arrival` is [`Views::arrival`], read once per request or chunk.
///
/// # Errors
///
/// The [`LineError`] of the fields stage, or [`LineError::InvalidIp`] when the `ip` is not an
/// address; nothing is recorded then.
#[inline]
pub(crate) fn record_log(
    reader: &mut FieldReader,
    spec: FieldSpec<'_>,
    bytes: &[u8],
    views: &Views,
    arrival: Arrival,
) -> Result<(), LineError> {
    let (fields, stamps) = reader.read(spec.syntax, spec.map, bytes)?;
    // Hashed once, for the counter and the ring. A bare address (the common case) costs one
    // check; a port or a forwarded list is resolved only when that fails.
    let hash = match hash_ip_str(fields.ip) {
        Ok(hash) => hash,
        Err(_) => resolve(fields.ip, spec.map.trusted_proxies())
            .and_then(|addr| hash_ip_str(addr).ok())
            .ok_or_else(|| LineError::invalid_ip(fields.ip))?,
    };
    let timestamp = fields.timestamp;
    // Only with `--group-by`: read in the same walk as the address (see `fields/group.rs`).
    let group = group(&fields);
    views.record_grouped(
        hash,
        group,
        fields.url,
        || timestamp.and_then(|t| stamps.parse(t)),
        arrival,
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use uniqd_core::{TopPages, UniqueCounter, WindowRing};

    use super::*;
    use crate::fields::{with_reader, RETAIN_LIMIT};

    /// Records `line` at the arrival `views` reads now.
    fn count_line(p: &mut FieldReader, line: &[u8], views: &Views) -> Result<(), LineError> {
        record_log(p, FieldSpec::standard(), line, views, views.arrival())
    }

    #[test]
    fn counts_valid_and_rejects_invalid() {
        let counter = Arc::new(UniqueCounter::new());
        let views = &Views::new(Arc::clone(&counter));
        with_reader(|p| {
            assert_eq!(count_line(p, br#"{"ip":"1.2.3.4"}"#, views), Ok(()));
            assert_eq!(
                count_line(p, br#"{"ip":"1.2.3.400"}"#, views),
                Err(LineError::invalid_ip("1.2.3.400"))
            );
            assert_eq!(
                count_line(p, br#"{"ip":" 1.2.3.4"}"#, views),
                Err(LineError::invalid_ip(" 1.2.3.4"))
            );
        });
        assert_eq!(counter.estimate(), 1);
    }

    #[test]
    fn accepted_lines_record_their_url() {
        let counter = Arc::new(UniqueCounter::new());
        let top =
            Arc::new(TopPages::new(16, 1, uniqd_core::PathOptions::default()).expect("valid size"));
        let views = &Views::new(Arc::clone(&counter)).with_top_pages(Arc::clone(&top));
        with_reader(|p| {
            for line in [
                &br#"{"ip":"1.2.3.4","url":"/a?x=1"}"#[..],
                br#"{"url":"/a","ip":"::1"}"#,
                // Escapes: not the scanner's plain shape, so simd-json reads this one.
                br#"{"ip":"1.2.3.8","url":"\u002fa#x"}"#,
                br#"{"ip":"1.2.3.5"}"#,
                br#"{"ip":"1.2.3.6","url":7}"#,
            ] {
                assert_eq!(count_line(p, line, views), Ok(()));
            }
            // Rejected lines record nothing, whatever their url.
            for line in [
                &br#"{"ip":"1.2.3.400","url":"/bad"}"#[..],
                br#"{"url":"/bad"}"#,
                br#"{"ip":"1.2.3.4","url":"/bad""#,
            ] {
                assert!(count_line(p, line, views).is_err());
            }
        });
        let snapshot = top.snapshot(10);
        assert_eq!(snapshot.total_requests, 3);
        assert_eq!(snapshot.pages.len(), 1);
        assert_eq!(
            (snapshot.pages[0].path.as_str(), snapshot.pages[0].count),
            ("/a", 3)
        );
        assert_eq!(counter.estimate(), 5);
    }

    #[test]
    fn counts_in_windows_at_the_log_timestamp() {
        use uniqd_core::window::MINUTE_MS;
        use uniqd_core::{ManualClock, Span};

        // 2020-06-24T15:27:00Z plus 3 minutes.
        let now = 1_593_012_420_000 + 3 * MINUTE_MS;
        let ring = Arc::new(WindowRing::new(
            5 * MINUTE_MS,
            Arc::new(ManualClock::new(now)),
        ));
        let counter = Arc::new(UniqueCounter::new());
        let views = &Views::new(Arc::clone(&counter)).with_windows(Arc::clone(&ring));
        let arrival = views.arrival();
        assert_eq!(arrival.now_ms(), now);
        with_reader(|p| {
            for line in [
                // Both parse paths read the timestamp: the scanner, then simd-json.
                &br#"{"timestamp":"2020-06-24T15:27:00Z","ip":"1.2.3.4"}"#[..],
                br#"{"timestamp":"2020-06-24T15:27:00Z","ip":"1.2.3.5","x":"\n"}"#,
                // Too old for the 5-minute skew: counts at arrival.
                br#"{"timestamp":"2020-06-24T14:00:00Z","ip":"1.2.3.6"}"#,
                // No timestamp, or not RFC 3339: at arrival.
                br#"{"ip":"1.2.3.7"}"#,
                br#"{"timestamp":"yesterday","ip":"1.2.3.8"}"#,
            ] {
                assert_eq!(count_line(p, line, views), Ok(()));
            }
            let bad = br#"{"timestamp":"2020-06-24T15:27:00Z","ip":"1.2.3.400"}"#;
            assert!(count_line(p, bad, views).is_err());
        });
        assert_eq!(counter.estimate(), 5);
        let count = |w: &str| ring.count(Span::parse(w).expect(w)).expect(w).estimate;
        assert_eq!(count("1m"), 3);
        assert_eq!(count("3m"), 3);
        assert_eq!(count("4m"), 5);
    }

    #[test]
    fn groups_count_the_logs_that_have_one() {
        let counter = Arc::new(UniqueCounter::new());
        let groups = Arc::new(uniqd_core::Groups::new(10, 100).expect("valid"));
        let views = &Views::new(Arc::clone(&counter)).with_groups(Arc::clone(&groups));
        let map = crate::fields::FieldMap::standard()
            .clone()
            .with_group_by("host")
            .expect("valid");
        let spec = FieldSpec {
            syntax: crate::fields::Syntax::Json,
            map: &map,
        };
        with_reader(|p| {
            for line in [
                &br#"{"ip":"1.2.3.4","host":"a"}"#[..],
                br#"{"ip":"1.2.3.5","host":"a","x":"\n"}"#,
                br#"{"ip":"1.2.3.6","host":"b"}"#,
                br#"{"ip":"1.2.3.7"}"#,
            ] {
                assert_eq!(record_log(p, spec, line, views, views.arrival()), Ok(()));
            }
            let bad = br#"{"ip":"1.2.3.400","host":"a"}"#;
            assert!(record_log(p, spec, bad, views, views.arrival()).is_err());
        });
        assert_eq!(counter.estimate(), 4);
        let count = |g: &str| groups.count(g).map(|c| c.estimate);
        assert_eq!((count("a"), count("b")), (Some(2), Some(1)));
        assert_eq!(groups.other().estimate(), 0);
    }

    #[test]
    fn reentrant_use_falls_back_instead_of_panicking() {
        let counter = Arc::new(UniqueCounter::new());
        let views = &Views::new(Arc::clone(&counter));
        with_reader(|outer| {
            with_reader(|inner| {
                assert_eq!(count_line(inner, br#"{"ip":"::1"}"#, views), Ok(()));
            });
            assert_eq!(count_line(outer, br#"{"ip":"::2"}"#, views), Ok(()));
        });
        assert_eq!(counter.estimate(), 2);
    }

    #[test]
    fn oversized_state_is_released() {
        let views = Views::new(Arc::new(UniqueCounter::new()));
        let big = format!(
            r#"{{"pad":"{}","ip":"1.2.3.4"}}"#,
            "x".repeat(RETAIN_LIMIT * 2)
        );
        with_reader(|p| assert_eq!(count_line(p, big.as_bytes(), &views), Ok(())));
        with_reader(|p| assert!(!p.is_oversized()));
    }
}
