//! [`Framing::Ndjson`](super::Framing::Ndjson) and [`Framing::Lines`](super::Framing::Lines):
//! split chunks into lines as they arrive and record each line immediately ([`NdjsonBatch`]).
//! The two differ only in how a line is read: a JSON object, or an access-log line in the
//! combined or common log format ([`NdjsonBatch::with_spec`] and
//! [`Syntax::Clf`](crate::fields::Syntax::Clf)); splitting, limits, budget and error reports
//! are the same.
//!
//! Only a line that straddles two chunks is buffered (in the splitter's
//! carry buffer), so memory per request is bounded by the longest allowed
//! line (the single-object size limit), not by the batch size. The carry
//! grows in steps a transport can know in advance
//! ([`NdjsonBatch::buffer_after`]), so that it can reserve them from a
//! global budget before they are allocated. A line longer
//! than that is not buffered at all: its bytes are skipped up to the next
//! newline and it is reported as [`LineError::LineTooLong`].
//!
//! Line numbers are 1-based physical line numbers, blank lines included, so
//! they match what an editor shows for the file that was posted. Lines end in
//! `\n`; a trailing `\r` is stripped; lines holding only spaces/tabs are
//! blank and ignored; the final newline is optional.

use uniqd_core::{Arrival, Views};

use crate::fields::{with_reader, FieldReader, FieldSpec, LineError};
use crate::record::record_log;

/// How many per-line failures a batch report keeps (the rest are counted).
pub const MAX_REPORTED_ERRORS: usize = 10;

/// One failed line of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineFailure {
    /// 1-based line number within the request body.
    pub line: u64,
    /// What was wrong with it.
    pub error: LineError,
}

/// What a batch is made of, for its report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Unit {
    /// NDJSON lines: `line` numbers are 1-based, blank lines included.
    #[default]
    Line,
    /// Elements of a JSON array or stream (`framing::json`): `line` holds the 0-based index,
    /// and `through_line` the index of the first element not looked at.
    Element,
}

/// Running totals for one NDJSON request (or, with [`Unit::Element`], one JSON body).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchReport {
    /// Lines counted.
    pub accepted: u64,
    /// Non-blank lines rejected.
    pub rejected: u64,
    /// The first [`MAX_REPORTED_ERRORS`] failures, in line order.
    pub errors: Vec<LineFailure>,
    /// The last line (1-based, blank lines included) that was handled: every line up to it
    /// was counted or rejected, none after it was looked at. A client that must resend after
    /// an error resends only the lines after it (`counted_through_line` in error bodies).
    /// For [`Unit::Element`]: the number of elements handled, which is the index to resend
    /// from (`next_index`).
    pub through_line: u64,
    /// Lines or elements.
    pub unit: Unit,
}

impl BatchReport {
    pub(crate) fn record(&mut self, line: u64, result: Result<(), LineError>) {
        match result {
            Ok(()) => self.accepted += 1,
            Err(error) => {
                self.rejected += 1;
                if self.errors.len() < MAX_REPORTED_ERRORS {
                    self.errors.push(LineFailure { line, error });
                }
            }
        }
    }

    /// Non-blank lines seen so far.
    #[must_use]
    pub fn lines(&self) -> u64 {
        self.accepted + self.rejected
    }
}

/// A line handed out by [`LineSplitter`].
#[derive(Debug, PartialEq, Eq)]
enum Line<'a> {
    /// A complete line, without its `\n` (a trailing `\r` may remain).
    Complete(&'a [u8]),
    /// A line that exceeded the length limit; its bytes were discarded.
    TooLong,
}

/// Splits a stream of byte chunks into lines, carrying partial lines over.
#[derive(Debug)]
struct LineSplitter {
    carry: Vec<u8>,
    /// Discarding the rest of an over-long line until its newline.
    skipping: bool,
    /// Number of the line currently being assembled (1-based).
    line_no: u64,
    max_line: usize,
}

impl LineSplitter {
    fn new(max_line: usize) -> Self {
        Self {
            carry: Vec::new(),
            skipping: false,
            line_no: 1,
            max_line,
        }
    }

    /// Feeds one chunk, calling `on_line(line_no, line)` for every line it
    /// completes.
    fn feed(&mut self, mut chunk: &[u8], mut on_line: impl FnMut(u64, Line<'_>)) {
        while let Some(nl) = memchr::memchr(b'\n', chunk) {
            let piece = &chunk[..nl];
            chunk = &chunk[nl + 1..];
            if self.skipping {
                self.skipping = false;
                on_line(self.line_no, Line::TooLong);
            } else if self.carry.is_empty() {
                // Common case: the whole line is inside this chunk, no copy.
                self.emit(piece, &mut on_line);
            } else if self.carry.len() + piece.len() > self.max_line + 1 {
                self.carry.clear();
                on_line(self.line_no, Line::TooLong);
            } else {
                self.grow_carry(self.carry.len() + piece.len());
                let mut carry = std::mem::take(&mut self.carry);
                carry.extend_from_slice(piece);
                self.emit(&carry, &mut on_line);
                carry.clear();
                self.carry = carry;
            }
            self.line_no += 1;
        }
        if !self.skipping && !chunk.is_empty() {
            // `+ 1` leaves room for a `\r` that is stripped later.
            if self.carry.len() + chunk.len() > self.max_line + 1 {
                self.carry.clear();
                self.skipping = true;
            } else {
                self.grow_carry(self.carry.len() + chunk.len());
                self.carry.extend_from_slice(chunk);
            }
        }
    }

    /// The longest the carry ever gets: a line and its `\r`.
    fn carry_limit(&self) -> usize {
        self.max_line + 1
    }

    /// Makes room for `needed` bytes in the carry, to the capacity
    /// [`grown_capacity`] says.
    fn grow_carry(&mut self, needed: usize) {
        let target = grown_capacity(self.carry.capacity(), needed, self.carry_limit());
        if target > self.carry.capacity() {
            self.carry.reserve_exact(target - self.carry.len());
        }
    }

    /// The carry's capacity once `chunk` has been fed: the most it will hold
    /// while and after splitting `chunk` (lines over the limit are skipped,
    /// not held). One `memchr` and one `memrchr` over the chunk.
    fn capacity_after(&self, chunk: &[u8]) -> usize {
        let limit = self.carry_limit();
        let fits = |n: usize| if n <= limit { n } else { 0 };
        let needed = match memchr::memchr(b'\n', chunk) {
            None if self.skipping => 0,
            None => fits(self.carry.len() + chunk.len()),
            Some(first) => {
                let joined = if self.skipping || self.carry.is_empty() {
                    0
                } else {
                    fits(self.carry.len() + first)
                };
                let last = memchr::memrchr(b'\n', chunk).unwrap_or(first);
                joined.max(fits(chunk.len() - last - 1))
            }
        };
        grown_capacity(self.carry.capacity(), needed, limit)
    }

    /// Flushes the last line if the body did not end in a newline.
    fn finish(&mut self, mut on_line: impl FnMut(u64, Line<'_>)) {
        if self.skipping {
            self.skipping = false;
            on_line(self.line_no, Line::TooLong);
        } else if !self.carry.is_empty() {
            let carry = std::mem::take(&mut self.carry);
            self.emit(&carry, &mut on_line);
        }
    }

    fn emit(&self, line: &[u8], on_line: &mut impl FnMut(u64, Line<'_>)) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.len() > self.max_line {
            on_line(self.line_no, Line::TooLong);
        } else {
            on_line(self.line_no, Line::Complete(line));
        }
    }
}

/// The carry's capacity after making room for `needed` bytes: unchanged if
/// they fit, else doubled (so a line trickling in tiny chunks is not copied
/// over and over), at least `needed`, at most `limit`.
pub(super) fn grown_capacity(capacity: usize, needed: usize, limit: usize) -> usize {
    if needed <= capacity {
        capacity
    } else {
        needed.max(capacity.saturating_mul(2).min(limit))
    }
}

/// Whether a line holds nothing but JSON whitespace.
fn is_blank(line: &[u8]) -> bool {
    line.iter().all(|b| matches!(b, b' ' | b'\t' | b'\r'))
}

/// Records the lines of one NDJSON body (or stream) in the views as its chunks arrive.
///
/// Public so that the fuzz targets (`crates/fuzz`) can drive it with
/// arbitrary chunk boundaries; the server uses it through `POST /logs`.
///
/// ```
/// use std::sync::Arc;
/// use uniqd_core::{UniqueCounter, Views};
/// use uniqd_ingest::framing::ndjson::NdjsonBatch;
///
/// let views = Views::new(Arc::new(UniqueCounter::new()));
/// let mut batch = NdjsonBatch::new(&views, 1024);
/// batch.feed(b"{\"ip\":\"1.2.3.4\"}\n{\"ip\":\"1.2");
/// batch.feed(b".3.5\"}\nnot json\n");
/// let report = batch.finish();
/// assert_eq!((report.accepted, report.rejected), (2, 1));
/// assert_eq!(report.errors[0].line, 3);
/// assert_eq!(views.counter().estimate(), 2);
/// ```
#[derive(Debug)]
pub struct NdjsonBatch<'v> {
    splitter: LineSplitter,
    report: BatchReport,
    views: &'v Views,
    spec: FieldSpec<'v>,
}

impl<'v> NdjsonBatch<'v> {
    /// Records into every view of `views` that is on; `max_line` is the longest accepted line
    /// in bytes (excluding `\r\n`).
    #[must_use]
    pub fn new(views: &'v Views, max_line: usize) -> Self {
        Self {
            splitter: LineSplitter::new(max_line),
            report: BatchReport::default(),
            views,
            spec: FieldSpec::standard(),
        }
    }

    /// Reads each line as `spec` says (field names, JSON or access-log lines) instead of as
    /// JSON with the default names.
    #[must_use]
    pub fn with_spec(mut self, spec: FieldSpec<'v>) -> Self {
        self.spec = spec;
        self
    }

    /// Processes every line completed by `chunk` (the arrival time is read once for them).
    pub fn feed(&mut self, chunk: &[u8]) {
        let Self {
            splitter,
            report,
            views,
            spec,
        } = self;
        let ctx = Context {
            views,
            arrival: views.arrival(),
            spec: *spec,
            limit: splitter.max_line,
        };
        with_reader(|reader| {
            splitter.feed(chunk, |n, line| handle(reader, &ctx, report, n, line));
        });
    }

    /// The bytes this batch will hold in its own buffer (the carry of a
    /// line split between chunks) once `chunk` is fed: never more than the
    /// longest line plus one, however large the batch. A transport reserves
    /// it from its budget before feeding.
    #[must_use]
    pub fn buffer_after(&self, chunk: &[u8]) -> usize {
        self.splitter.capacity_after(chunk)
    }

    /// Processes the trailing unterminated line, if any, and returns the totals.
    #[must_use]
    pub fn finish(mut self) -> BatchReport {
        let Self {
            splitter,
            report,
            views,
            spec,
        } = &mut self;
        let ctx = Context {
            views,
            arrival: views.arrival(),
            spec: *spec,
            limit: splitter.max_line,
        };
        with_reader(|reader| {
            splitter.finish(|n, line| handle(reader, &ctx, report, n, line));
        });
        self.report
    }

    /// Totals so far.
    #[must_use]
    pub fn report(&self) -> &BatchReport {
        &self.report
    }

    /// The bytes held in the carry now.
    #[must_use]
    pub fn buffered(&self) -> usize {
        self.splitter.carry.capacity()
    }

    /// Takes the totals so far, consuming the batch.
    #[must_use]
    pub fn into_report(self) -> BatchReport {
        self.report
    }
}

/// What every line of one chunk is recorded with.
struct Context<'a> {
    views: &'a Views,
    arrival: Arrival,
    spec: FieldSpec<'a>,
    limit: usize,
}

fn handle(
    reader: &mut FieldReader,
    ctx: &Context<'_>,
    report: &mut BatchReport,
    line_no: u64,
    line: Line<'_>,
) {
    report.through_line = line_no;
    match line {
        Line::Complete(bytes) if is_blank(bytes) => {}
        Line::Complete(bytes) => {
            let result = record_log(reader, ctx.spec, bytes, ctx.views, ctx.arrival);
            report.record(line_no, result);
        }
        Line::TooLong => report.record(line_no, Err(LineError::LineTooLong { limit: ctx.limit })),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use uniqd_core::{TopPages, UniqueCounter};

    use super::*;

    #[derive(Debug, PartialEq, Eq)]
    enum Got {
        Line(u64, String),
        TooLong(u64),
    }

    fn split(chunks: &[&[u8]], max_line: usize) -> Vec<Got> {
        let mut s = LineSplitter::new(max_line);
        let mut out = Vec::new();
        let mut sink = |n: u64, line: Line<'_>| {
            out.push(match line {
                Line::Complete(b) => Got::Line(n, String::from_utf8_lossy(b).into_owned()),
                Line::TooLong => Got::TooLong(n),
            });
        };
        for c in chunks {
            s.feed(c, &mut sink);
        }
        s.finish(&mut sink);
        out
    }

    fn line(n: u64, s: &str) -> Got {
        Got::Line(n, s.to_owned())
    }

    #[test]
    fn lines_within_one_chunk() {
        assert_eq!(
            split(&[b"a\nb\r\n\nc"], 100),
            vec![line(1, "a"), line(2, "b"), line(3, ""), line(4, "c")]
        );
        assert_eq!(split(&[b"a\n"], 100), vec![line(1, "a")]);
        assert_eq!(split(&[b""], 100), vec![]);
    }

    #[test]
    fn lines_across_chunks() {
        assert_eq!(
            split(&[b"ab", b"c\nd", b"", b"e\r", b"\nf"], 100),
            vec![line(1, "abc"), line(2, "de"), line(3, "f")]
        );
        // Every byte its own chunk.
        let text = b"{\"ip\":\"1\"}\r\n\n{}\n";
        let chunks: Vec<&[u8]> = text.chunks(1).collect();
        assert_eq!(
            split(&chunks, 100),
            vec![line(1, "{\"ip\":\"1\"}"), line(2, ""), line(3, "{}")]
        );
    }

    #[test]
    fn over_long_lines_are_skipped_not_buffered() {
        // In one chunk.
        assert_eq!(
            split(&[b"12345\n123456\nok"], 5),
            vec![line(1, "12345"), Got::TooLong(2), line(3, "ok")]
        );
        // `\r\n` does not count against the limit.
        assert_eq!(split(&[b"12345\r\n"], 5), vec![line(1, "12345")]);
        // Spread over chunks: the carry never exceeds the limit.
        let mut s = LineSplitter::new(5);
        let mut out = Vec::new();
        for c in [&b"123"[..], b"456", b"789", b"0\nok\n"] {
            s.feed(c, |n, l| out.push((n, matches!(l, Line::TooLong))));
            assert!(s.carry.len() <= 6);
        }
        assert_eq!(out, vec![(1, true), (2, false)]);
        // Unterminated over-long last line.
        assert_eq!(
            split(&[b"ok\n1234", b"567"], 5),
            vec![line(1, "ok"), Got::TooLong(2)]
        );
    }

    #[test]
    fn the_carry_grows_exactly_as_predicted() {
        let text: Vec<u8> = (0..200)
            .map(|i| {
                format!(
                    "{{\"ip\":\"10.0.0.{}\",\"pad\":\"{}\"}}\n",
                    i % 250,
                    "x".repeat(i * 7 % 90)
                )
            })
            .collect::<String>()
            .into_bytes();
        for (chunk_len, max_line) in [
            (1, 64),
            (3, 1000),
            (7, 40),
            (50, 120),
            (333, 1000),
            (4096, 60),
        ] {
            let mut s = LineSplitter::new(max_line);
            for chunk in text.chunks(chunk_len) {
                let predicted = s.capacity_after(chunk);
                s.feed(chunk, |_, _| {});
                assert_eq!(s.carry.capacity(), predicted, "{chunk_len} {max_line}");
                assert!(predicted <= max_line + 1);
            }
        }
    }

    #[test]
    fn blank_detection() {
        assert!(is_blank(b""));
        assert!(is_blank(b" \t\r"));
        assert!(!is_blank(b" {} "));
    }

    #[test]
    fn batch_counts_and_reports_first_errors() {
        let views = Views::new(Arc::new(UniqueCounter::new()));
        let counter = views.counter();
        let mut batch = NdjsonBatch::new(&views, 1024);
        batch.feed(b"{\"ip\":\"1.1.1.1\"}\n\nnot json\n{\"ip\":\"1.1.");
        assert_eq!(batch.report().accepted, 1);
        batch.feed(b"1.2\"}\n{\"ip\":\"1.1.1.1\"}\r\n");
        let report = batch.finish();
        assert_eq!(report.accepted, 3);
        assert_eq!(report.rejected, 1);
        assert_eq!(report.errors.len(), 1);
        assert_eq!(report.errors[0].line, 3);
        assert_eq!(report.errors[0].error.code(), "invalid_json");
        assert_eq!(counter.estimate(), 2);
    }

    #[test]
    fn batch_keeps_only_the_first_ten_errors() {
        let views = Views::new(Arc::new(UniqueCounter::new()));
        let mut batch = NdjsonBatch::new(&views, 1024);
        let body = "{}\n".repeat(25);
        batch.feed(body.as_bytes());
        let report = batch.finish();
        assert_eq!(report.rejected, 25);
        assert_eq!(report.errors.len(), MAX_REPORTED_ERRORS);
        assert_eq!(report.errors[9].line, 10);
        assert!(report
            .errors
            .iter()
            .all(|e| e.error == LineError::MissingIp));
    }

    #[test]
    fn batch_records_the_urls_of_accepted_lines() {
        let top =
            Arc::new(TopPages::new(16, 1, uniqd_core::PathOptions::default()).expect("valid size"));
        let views = Views::new(Arc::new(UniqueCounter::new())).with_top_pages(Arc::clone(&top));
        let mut batch = NdjsonBatch::new(&views, 1024);
        batch.feed(b"{\"ip\":\"1.1.1.1\",\"url\":\"/a\"}\n{\"ip\":\"x\",\"url\":\"/a\"}\n");
        batch.feed(b"{\"ip\":\"1.1.1.2\"}\n{\"ip\":\"1.1.1.3\",\"url\":\"/b?q\"}");
        let report = batch.finish();
        assert_eq!((report.accepted, report.rejected), (3, 1));
        let pages: Vec<(String, u64)> = top
            .snapshot(10)
            .pages
            .into_iter()
            .map(|p| (p.path, p.count))
            .collect();
        assert_eq!(pages, [("/a".to_owned(), 1), ("/b".to_owned(), 1)]);
    }
}
