//! Per-thread parser state for the request hot path.
//!
//! A line of the plain shape ingress controllers write is read by
//! [`scan_fields`] straight from the request bytes, with no copy. Any other
//! line goes to simd-json, which decides whether it is valid and why not.
//! simd-json parses in place, but request bodies arrive as shared, immutable
//! [`bytes::Bytes`]; each line is therefore copied into a mutable buffer
//! first. That buffer and the parser [`Scratch`] live in a `thread_local`, so
//! the hot path takes no lock and allocates nothing once warmed up. Borrows of
//! it are strictly synchronous (never held across an `.await`), which is what
//! makes a thread-local correct under both the current-thread and the
//! multi-thread tokio runtime.
//!
//! To stop one huge object from pinning megabytes per thread forever, state
//! that grew past [`RETAIN_LIMIT`] is dropped after use and rebuilt lazily.
//!
//! An accepted line (its `ip` counted) also records its `url`, if it has
//! one, in the [`TopPages`] summary of [`Sinks`]: a stack copy of the path
//! and one uncontended lock of this thread's shard, no allocation. With a
//! [`WindowRing`], the address is hashed once for the counter and the ring,
//! and counted in the ring at the line's `timestamp` when it parses and is
//! plausible (see [`crate::timestamp`]), else at arrival.

use std::cell::RefCell;

use uniqd_core::{hash_ip_str, TopPages, UniqueCounter, WindowRing};

use crate::parse::{parse_fields, LineError, Scratch};
use crate::scan::scan_fields;
use crate::timestamp::TimestampParser;

/// Buffers that grew beyond this many bytes are released after use.
const RETAIN_LIMIT: usize = 64 * 1024;

/// Where an accepted line goes: the unique counter, the top pages summary
/// and the window ring when they are on. References and the arrival time,
/// copied freely.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sinks<'a> {
    /// Counts the `ip` of every accepted line.
    pub(crate) counter: &'a UniqueCounter,
    /// Records the `url` of every accepted line that has one.
    pub(crate) top_pages: Option<&'a TopPages>,
    /// Counts the `ip` of every accepted line per minute and hour.
    pub(crate) windows: Option<&'a WindowRing>,
    /// Arrival time for the window ring, Unix milliseconds (read once per
    /// request or chunk, not per line).
    pub(crate) now_ms: u64,
}

impl<'a> Sinks<'a> {
    /// Only the counter.
    pub(crate) fn counter(counter: &'a UniqueCounter) -> Self {
        Self {
            counter,
            top_pages: None,
            windows: None,
            now_ms: 0,
        }
    }

    /// Reads the ring's clock into `now_ms`, if there is a ring.
    pub(crate) fn arrived_now(mut self) -> Self {
        if let Some(windows) = self.windows {
            self.now_ms = windows.now_ms();
        }
        self
    }
}

/// A mutable line copy plus the simd-json scratch buffers, and the
/// timestamp parser that remembers the last second it read.
#[derive(Debug, Default)]
pub(crate) struct LineParser {
    line: Vec<u8>,
    scratch: Scratch,
    stamps: TimestampParser,
}

impl LineParser {
    /// Parses `bytes` as one JSON object, counts its `ip` in the counter and
    /// records its `url` (if any) in the top pages of `sinks`.
    ///
    /// Nothing is counted unless the whole object is valid and the address
    /// parses.
    pub(crate) fn count_line(&mut self, bytes: &[u8], sinks: Sinks<'_>) -> Result<(), LineError> {
        let fields = match scan_fields(bytes) {
            Some(fields) => fields,
            None => {
                self.line.clear();
                self.line.extend_from_slice(bytes);
                parse_fields(&mut self.line, &mut self.scratch)?
            }
        };
        // Hashed once, for the counter and the ring.
        let hash = hash_ip_str(fields.ip).map_err(|_| LineError::invalid_ip(fields.ip))?;
        sinks.counter.insert_hash(hash);
        if let Some(windows) = sinks.windows {
            let event_ms = fields.timestamp.and_then(|t| self.stamps.parse_ms(t));
            windows.insert_hash_at(hash, event_ms, sinks.now_ms);
        }
        if let (Some(top), Some(url)) = (sinks.top_pages, fields.url) {
            top.record_url(url);
        }
        Ok(())
    }

    fn is_oversized(&self) -> bool {
        self.line.capacity() > RETAIN_LIMIT
    }
}

thread_local! {
    static PARSER: RefCell<LineParser> = RefCell::new(LineParser::default());
}

/// Runs `f` with this thread's [`LineParser`].
///
/// `f` must not call `with_parser` itself; if it did (or if the thread-local
/// is being torn down), `f` gets a fresh temporary parser instead of
/// panicking.
pub(crate) fn with_parser<R>(f: impl FnOnce(&mut LineParser) -> R) -> R {
    let mut f = Some(f);
    let result = PARSER.try_with(|cell| {
        let mut parser = cell.try_borrow_mut().ok()?;
        let run = f.take()?;
        let result = run(&mut parser);
        if parser.is_oversized() {
            *parser = LineParser::default();
        }
        Some(result)
    });
    match (result, f) {
        (Ok(Some(result)), _) => result,
        // Re-entrant call or thread teardown: fall back to a one-off parser.
        (_, Some(run)) => run(&mut LineParser::default()),
        // `f` is only taken right before it runs and produces `Some`, so the
        // two arms above cover every reachable state.
        (_, None) => unreachable!("parser closure consumed without a result"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_valid_and_rejects_invalid() {
        let counter = UniqueCounter::new();
        let sinks = Sinks::counter(&counter);
        with_parser(|p| {
            assert_eq!(p.count_line(br#"{"ip":"1.2.3.4"}"#, sinks), Ok(()));
            assert_eq!(
                p.count_line(br#"{"ip":"1.2.3.400"}"#, sinks),
                Err(LineError::invalid_ip("1.2.3.400"))
            );
            assert_eq!(
                p.count_line(br#"{"ip":" 1.2.3.4"}"#, sinks),
                Err(LineError::invalid_ip(" 1.2.3.4"))
            );
        });
        assert_eq!(counter.estimate(), 1);
    }

    #[test]
    fn accepted_lines_record_their_url() {
        let counter = UniqueCounter::new();
        let top = TopPages::new(16, 1, uniqd_core::PathOptions::default()).expect("valid size");
        let sinks = Sinks {
            top_pages: Some(&top),
            ..Sinks::counter(&counter)
        };
        with_parser(|p| {
            for line in [
                &br#"{"ip":"1.2.3.4","url":"/a?x=1"}"#[..],
                br#"{"url":"/a","ip":"::1"}"#,
                // Escapes: not the scanner's plain shape, so simd-json reads this one.
                br#"{"ip":"1.2.3.8","url":"\u002fa#x"}"#,
                br#"{"ip":"1.2.3.5"}"#,
                br#"{"ip":"1.2.3.6","url":7}"#,
            ] {
                assert_eq!(p.count_line(line, sinks), Ok(()));
            }
            // Rejected lines record nothing, whatever their url.
            for line in [
                &br#"{"ip":"1.2.3.400","url":"/bad"}"#[..],
                br#"{"url":"/bad"}"#,
                br#"{"ip":"1.2.3.4","url":"/bad""#,
            ] {
                assert!(p.count_line(line, sinks).is_err());
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
        use std::sync::Arc;
        use uniqd_core::window::MINUTE_MS;
        use uniqd_core::{ManualClock, Span};

        // 2020-06-24T15:27:00Z plus 3 minutes.
        let now = 1_593_012_420_000 + 3 * MINUTE_MS;
        let ring = WindowRing::new(5 * MINUTE_MS, Arc::new(ManualClock::new(now)));
        let counter = UniqueCounter::new();
        let sinks = Sinks {
            windows: Some(&ring),
            ..Sinks::counter(&counter)
        }
        .arrived_now();
        assert_eq!(sinks.now_ms, now);
        with_parser(|p| {
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
                assert_eq!(p.count_line(line, sinks), Ok(()));
            }
            let bad = br#"{"timestamp":"2020-06-24T15:27:00Z","ip":"1.2.3.400"}"#;
            assert!(p.count_line(bad, sinks).is_err());
        });
        assert_eq!(counter.estimate(), 5);
        let count = |w: &str| ring.count(Span::parse(w).expect(w)).expect(w).estimate;
        assert_eq!(count("1m"), 3);
        assert_eq!(count("3m"), 3);
        assert_eq!(count("4m"), 5);
    }

    #[test]
    fn reentrant_use_falls_back_instead_of_panicking() {
        let counter = UniqueCounter::new();
        let sinks = Sinks::counter(&counter);
        with_parser(|outer| {
            with_parser(|inner| {
                assert_eq!(inner.count_line(br#"{"ip":"::1"}"#, sinks), Ok(()));
            });
            assert_eq!(outer.count_line(br#"{"ip":"::2"}"#, sinks), Ok(()));
        });
        assert_eq!(counter.estimate(), 2);
    }

    #[test]
    fn oversized_state_is_released() {
        let counter = UniqueCounter::new();
        let big = format!(
            r#"{{"pad":"{}","ip":"1.2.3.4"}}"#,
            "x".repeat(RETAIN_LIMIT * 2)
        );
        with_parser(|p| {
            assert_eq!(
                p.count_line(big.as_bytes(), Sinks::counter(&counter)),
                Ok(())
            )
        });
        with_parser(|p| assert!(!p.is_oversized()));
    }
}
