//! Stage 3 of the ingest pipeline, *fields*: the address, URL and time of one framed log,
//! read without building a DOM (`FieldReader::read`). A log is a JSON object
//! ([`Syntax::Json`]) whose members the [`FieldMap`] names ([`names`]: `--ip-field` and
//! friends, top-level names or dotted paths, first present wins), or an access-log line in
//! the combined or common log format ([`Syntax::Clf`], [`clf`]). The address may carry a port
//! or be a forwarded list ([`address`], resolved in `record.rs`); the time is RFC 3339, epoch
//! or CLF time ([`timestamp`]).
//!
//! A JSON log of the plain shape ingress controllers write is read by [`scan::scan_fields`]
//! straight from the framed bytes, with no copy. Any other log goes to simd-json
//! ([`parse::parse_fields`]), which decides whether it is valid and why not. simd-json parses
//! in place, but the bytes arrive shared and immutable (an HTTP body is [`bytes::Bytes`]); such
//! a log is therefore copied into a mutable buffer first. That buffer, the parser [`Scratch`]
//! and the [`TimestampParser`] (which remembers the last second it read) live in a
//! `thread_local` (`with_reader`), so the hot path takes no lock and allocates nothing once
//! warmed up. Borrows of it are strictly synchronous (never held across an `.await`), which is
//! what makes a thread-local correct under both the current-thread and the multi-thread tokio
//! runtime. To stop one huge object from pinning megabytes per thread forever, state that grew
//! past `RETAIN_LIMIT` bytes is dropped after use and rebuilt lazily.
//!
//! Nothing here knows where the bytes came from (HTTP today, syslog datagrams or streams
//! later) nor what they are counted into: the framing stage hands each log to
//! `record.rs`, which reads its fields here and records them into the views.

pub mod address;
pub mod clf;
mod field;
mod flat;
pub(crate) mod group;
pub mod json_error;
mod line_error;
pub mod names;
pub mod parse;
pub mod scan;
pub mod timestamp;

use std::cell::RefCell;

pub use self::address::TrustedProxies;
use self::clf::parse_clf;
pub use self::names::FieldMap;
use self::parse::parse_fields_with;
pub use self::parse::{LineError, LogFields, Scratch};
use self::scan::scan_fields_with;
pub use self::timestamp::{Timestamp, TimestampParser};

/// What one framed log is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Syntax {
    /// A JSON object.
    #[default]
    Json,
    /// A combined or common log format line ([`clf`]).
    Clf,
}

/// Buffers that grew beyond this many bytes are released after use.
pub(crate) const RETAIN_LIMIT: usize = 64 * 1024;

/// How to read the fields of the logs of one body (or stream): their [`Syntax`] and the
/// server's [`FieldMap`].
#[derive(Debug, Clone, Copy)]
pub struct FieldSpec<'a> {
    /// JSON objects or access-log lines.
    pub syntax: Syntax,
    /// The field names and trusted proxies.
    pub map: &'a FieldMap,
}

impl FieldSpec<'static> {
    /// JSON objects, the default [`FieldMap`].
    #[must_use]
    pub fn standard() -> Self {
        Self {
            syntax: Syntax::Json,
            map: FieldMap::standard(),
        }
    }
}

/// The per-thread state of the fields stage: a mutable copy of the log for simd-json, its
/// scratch buffers, and the timestamp parser.
#[derive(Debug, Default)]
pub(crate) struct FieldReader {
    line: Vec<u8>,
    scratch: Scratch,
    stamps: TimestampParser,
}

impl FieldReader {
    /// Reads the fields of one log as `map` names them. A JSON log: the fast scanner when
    /// the log has the plain shape, else simd-json on a copy. An access-log line: [`clf`].
    /// Also hands out the timestamp parser, so the event time is parsed only if a view asks
    /// for it.
    ///
    /// # Errors
    ///
    /// As [`parse::parse_fields`]: invalid JSON, not an object, no string address; for a
    /// line, [`LineError::InvalidLogLine`].
    pub(crate) fn read<'a>(
        &'a mut self,
        syntax: Syntax,
        map: &FieldMap,
        bytes: &'a [u8],
    ) -> Result<(LogFields<'a>, &'a mut TimestampParser), LineError> {
        let Self {
            line,
            scratch,
            stamps,
        } = self;
        let fields = match syntax {
            Syntax::Clf => parse_clf(bytes)
                .map(|clf| LogFields {
                    ip: clf.host,
                    url: clf.target,
                    timestamp: Some(Timestamp::Millis(clf.time_ms)),
                    // An access-log line has no group.
                    group: None,
                })
                .map_err(|e| LineError::InvalidLogLine {
                    offset: e.offset,
                    reason: e.reason,
                })?,
            Syntax::Json => match scan_fields_with(bytes, map) {
                Some(fields) => fields,
                None => {
                    line.clear();
                    line.extend_from_slice(bytes);
                    parse_fields_with(line, scratch, map).map_err(|e| e.refine(bytes))?
                }
            },
        };
        Ok((fields, stamps))
    }

    pub(crate) fn is_oversized(&self) -> bool {
        self.line.capacity() > RETAIN_LIMIT
    }
}

thread_local! {
    static READER: RefCell<FieldReader> = RefCell::new(FieldReader::default());
}

/// Runs `f` with this thread's [`FieldReader`].
///
/// `f` must not call `with_reader` itself; if it did (or if the thread-local is being torn
/// down), `f` gets a fresh temporary reader instead of panicking.
pub(crate) fn with_reader<R>(f: impl FnOnce(&mut FieldReader) -> R) -> R {
    let mut f = Some(f);
    let result = READER.try_with(|cell| {
        let mut reader = cell.try_borrow_mut().ok()?;
        let run = f.take()?;
        let result = run(&mut reader);
        if reader.is_oversized() {
            *reader = FieldReader::default();
        }
        Some(result)
    });
    match (result, f) {
        (Ok(Some(result)), _) => result,
        // Re-entrant call or thread teardown: fall back to a one-off reader.
        (_, Some(run)) => run(&mut FieldReader::default()),
        // `f` is only taken right before it runs and produces `Some`, so the
        // two arms above cover every reachable state.
        (_, None) => unreachable!("reader closure consumed without a result"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_paths_read_the_same_fields() {
        with_reader(|r| {
            let plain = br#"{"ip":"1.2.3.4","url":"/a","timestamp":"t"}"#;
            let escaped = br#"{"ip":"1.2.3.\u0034","url":"\/a","timestamp":"t"}"#;
            let expected = LogFields {
                ip: "1.2.3.4",
                url: Some("/a"),
                timestamp: Some(Timestamp::Text("t")),
                group: None,
            };
            let map = FieldMap::standard();
            let json = |r: &mut FieldReader, b: &[u8]| {
                r.read(Syntax::Json, map, b).map(|(f, _)| {
                    (
                        f.ip.to_owned(),
                        f.url.map(str::to_owned),
                        f.timestamp.is_some(),
                    )
                })
            };
            let want = Ok(("1.2.3.4".to_owned(), Some("/a".to_owned()), true));
            assert_eq!(
                r.read(Syntax::Json, map, plain).map(|(f, _)| f),
                Ok(expected)
            );
            assert_eq!(json(r, escaped), want);
            assert_eq!(json(r, br#"{"url":"/a"}"#), Err(LineError::MissingIp));
            // Nested paths are simd-json's.
            let kong = br#"{"request":{"uri":"/a","x":[1]},"client_ip":"1.2.3.4","started_at":1}"#;
            assert_eq!(json(r, kong), want);
            let line = br#"1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] "GET /a HTTP/1.1" 200 1"#;
            let clf = r.read(Syntax::Clf, map, line).map(|(f, _)| f);
            assert_eq!(
                clf.map(|f| (f.ip, f.url, f.timestamp)),
                Ok((
                    "1.2.3.4",
                    Some("/a"),
                    Some(Timestamp::Millis(971_211_336_000))
                ))
            );
            let bad = r.read(Syntax::Clf, map, b"{}").map(|(f, _)| f.ip);
            assert_eq!(bad.map_err(|e| e.code()), Err("invalid_log_line"));
        });
    }
}
