//! Stage 3 of the ingest pipeline, *fields*: the top-level `ip`, `url` and `timestamp` of one
//! framed log object, read without building a DOM (`FieldReader::read`).
//!
//! A log of the plain shape ingress controllers write is read by [`scan::scan_fields`]
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
//! Configurable field names would be a change to this stage only.

pub mod json_error;
pub mod parse;
pub mod scan;
pub mod timestamp;

use std::cell::RefCell;

use self::parse::parse_fields;
pub use self::parse::{LineError, LogFields, Scratch};
use self::scan::scan_fields;
pub use self::timestamp::TimestampParser;

/// Buffers that grew beyond this many bytes are released after use.
pub(crate) const RETAIN_LIMIT: usize = 64 * 1024;

/// The per-thread state of the fields stage: a mutable copy of the log for simd-json, its
/// scratch buffers, and the timestamp parser.
#[derive(Debug, Default)]
pub(crate) struct FieldReader {
    line: Vec<u8>,
    scratch: Scratch,
    stamps: TimestampParser,
}

impl FieldReader {
    /// Reads the fields of one log object: the fast scanner when the log has the plain shape,
    /// else simd-json on a copy. Also hands out the timestamp parser, so the event time is
    /// parsed only if a view asks for it.
    ///
    /// # Errors
    ///
    /// As [`parse::parse_fields`]: invalid JSON, not an object, no string `ip`.
    pub(crate) fn read<'a>(
        &'a mut self,
        bytes: &'a [u8],
    ) -> Result<(LogFields<'a>, &'a mut TimestampParser), LineError> {
        let Self {
            line,
            scratch,
            stamps,
        } = self;
        let fields = match scan_fields(bytes) {
            Some(fields) => fields,
            None => {
                line.clear();
                line.extend_from_slice(bytes);
                parse_fields(line, scratch).map_err(|e| e.refine(bytes))?
            }
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
                timestamp: Some("t"),
            };
            assert_eq!(r.read(plain).map(|(f, _)| f), Ok(expected));
            assert_eq!(r.read(escaped).map(|(f, _)| f), Ok(expected));
            assert_eq!(
                r.read(br#"{"url":"/a"}"#).map(|(f, _)| f),
                Err(LineError::MissingIp)
            );
        });
    }
}
