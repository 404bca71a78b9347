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

use std::cell::RefCell;

use uniqd_core::UniqueCounter;

use crate::parse::{parse_line, LineError, Scratch};
use crate::scan::scan_fields;

/// Buffers that grew beyond this many bytes are released after use.
const RETAIN_LIMIT: usize = 64 * 1024;

/// A mutable line copy plus the simd-json scratch buffers.
#[derive(Debug, Default)]
pub(crate) struct LineParser {
    line: Vec<u8>,
    scratch: Scratch,
}

impl LineParser {
    /// Parses `bytes` as one JSON object and counts its `ip` in `counter`.
    ///
    /// Nothing is counted unless the whole object is valid and the address
    /// parses.
    pub(crate) fn count_line(
        &mut self,
        bytes: &[u8],
        counter: &UniqueCounter,
    ) -> Result<(), LineError> {
        let ip = match scan_fields(bytes) {
            Some(fields) => fields.ip,
            None => {
                self.line.clear();
                self.line.extend_from_slice(bytes);
                parse_line(&mut self.line, &mut self.scratch)?
            }
        };
        counter
            .insert_str(ip)
            .map_err(|_| LineError::invalid_ip(ip))
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
        with_parser(|p| {
            assert_eq!(p.count_line(br#"{"ip":"1.2.3.4"}"#, &counter), Ok(()));
            assert_eq!(
                p.count_line(br#"{"ip":"1.2.3.400"}"#, &counter),
                Err(LineError::invalid_ip("1.2.3.400"))
            );
            assert_eq!(
                p.count_line(br#"{"ip":" 1.2.3.4"}"#, &counter),
                Err(LineError::invalid_ip(" 1.2.3.4"))
            );
        });
        assert_eq!(counter.estimate(), 1);
    }

    #[test]
    fn reentrant_use_falls_back_instead_of_panicking() {
        let counter = UniqueCounter::new();
        with_parser(|outer| {
            with_parser(|inner| {
                assert_eq!(inner.count_line(br#"{"ip":"::1"}"#, &counter), Ok(()));
            });
            assert_eq!(outer.count_line(br#"{"ip":"::2"}"#, &counter), Ok(()));
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
        with_parser(|p| assert_eq!(p.count_line(big.as_bytes(), &counter), Ok(())));
        with_parser(|p| assert!(!p.is_oversized()));
    }
}
