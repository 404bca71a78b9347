//! [`Framing::Object`](super::Framing::Object) read as it streams in ([`JsonBatch`]): one JSON
//! object, a JSON array of objects (Kong, APISIX, Vector's json codec, Fluent Bit `format
//! json`, Logstash `json_batch`), or objects concatenated with optional whitespace between
//! them (Fluent Bit `json_stream`, NDJSON sent as `application/json`).
//!
//! The body's first non-whitespace byte decides: `[` is an array, anything else a stream of
//! values, of which a single object is the one-element case. [`json_split::JsonSplitter`]
//! finds the elements as chunks arrive, and each is recorded at once by the fields stage, so
//! a connection holds at most one element (≤ the object limit) whatever the body size.
//!
//! Elements are numbered from 0 (`index`, as in the array); an error's byte offset counts
//! from the start of the body. A broken structure (`[{…} {…}]`, `[{…},]`, data after `]`, an
//! array cut short) is reported once, at the index the next element would have had, and the
//! rest of the body is not looked at.
//!
//! [`json_split::JsonSplitter`]: super::json_split::JsonSplitter

use uniqd_core::{Arrival, Views};

use super::json_split::{JsonSplitter, Piece, Stop};
use super::ndjson::{BatchReport, Unit};
use crate::fields::{with_reader, FieldReader, FieldSpec, LineError};
use crate::record::record_log;

/// Records the elements of one `application/json` body in the views as its chunks arrive.
///
/// Public so that the fuzz targets (`crates/fuzz`) can drive it with arbitrary chunk
/// boundaries; the server uses it through `POST /logs`.
///
/// ```
/// use std::sync::Arc;
/// use uniqd_core::{UniqueCounter, Views};
/// use uniqd_ingest::framing::json::JsonBatch;
///
/// let views = Views::new(Arc::new(UniqueCounter::new()));
/// let mut batch = JsonBatch::new(&views, 1024);
/// let mut grant = |_: usize| true;
/// batch.feed(b"[{\"ip\":\"1.2.3.4\"}, {\"ip\":\"1.2", &mut grant).unwrap();
/// batch.feed(b".3.5\"}, 7]", &mut grant).unwrap();
/// let report = batch.finish();
/// assert_eq!((report.accepted, report.rejected), (2, 1));
/// assert_eq!(report.errors[0].line, 2); // the element's index
/// assert_eq!(views.counter().estimate(), 2);
/// ```
#[derive(Debug)]
pub struct JsonBatch<'v> {
    splitter: JsonSplitter,
    report: BatchReport,
    views: &'v Views,
    max: usize,
    spec: FieldSpec<'v>,
}

impl<'v> JsonBatch<'v> {
    /// Records into every view of `views` that is on; `max` is the longest element in bytes.
    #[must_use]
    pub fn new(views: &'v Views, max: usize) -> Self {
        Self {
            splitter: JsonSplitter::new(max),
            report: BatchReport {
                unit: Unit::Element,
                ..BatchReport::default()
            },
            views,
            max,
            spec: FieldSpec::standard(),
        }
    }

    /// Reads each element's fields as `spec` says (the configured field names) instead of
    /// with the default names.
    #[must_use]
    pub fn with_spec(mut self, spec: FieldSpec<'v>) -> Self {
        self.spec = spec;
        self
    }

    /// Records every element `chunk` completes (the arrival time is read once for them).
    /// `grant(n)` is asked before the carry (one element split between chunks) grows to `n`
    /// bytes.
    ///
    /// # Errors
    ///
    /// [`Stop`]: the grant was refused, or the body's first value (not in an array) is over
    /// the limit. Elements recorded before that stay recorded (see [`Self::report`]).
    pub fn feed(&mut self, chunk: &[u8], grant: &mut dyn FnMut(usize) -> bool) -> Result<(), Stop> {
        let Self {
            splitter,
            report,
            views,
            max,
            spec,
        } = self;
        let arrival = views.arrival();
        with_reader(|reader| {
            splitter.feed(chunk, grant, &mut |piece| {
                handle(reader, *spec, views, arrival, report, *max, piece);
            })
        })
    }

    /// Says that the next chunk is the whole rest of the body (see
    /// [`JsonSplitter::whole_body_next`]).
    pub fn whole_body_next(&mut self) {
        self.splitter.whole_body_next();
    }

    /// Whether the body is a JSON array.
    #[must_use]
    pub fn is_array(&self) -> bool {
        self.splitter.is_array()
    }

    /// The bytes this batch holds in its own buffer (one element split between chunks).
    #[must_use]
    pub fn buffered(&self) -> usize {
        self.splitter.buffered()
    }

    /// Totals so far.
    #[must_use]
    pub fn report(&self) -> &BatchReport {
        &self.report
    }

    /// Records the value still in progress, if any, and returns the totals.
    #[must_use]
    pub fn finish(mut self) -> BatchReport {
        let Self {
            splitter,
            report,
            views,
            max,
            spec,
        } = &mut self;
        let arrival = views.arrival();
        with_reader(|reader| {
            splitter
                .finish(&mut |piece| handle(reader, *spec, views, arrival, report, *max, piece));
        });
        self.report
    }

    /// Takes the totals so far, consuming the batch.
    #[must_use]
    pub fn into_report(self) -> BatchReport {
        self.report
    }
}

fn handle(
    reader: &mut FieldReader,
    spec: FieldSpec<'_>,
    views: &Views,
    arrival: Arrival,
    report: &mut BatchReport,
    max: usize,
    piece: Piece<'_>,
) {
    let (index, result) = match piece {
        Piece::Element {
            index,
            bytes,
            offset,
        } => (
            index,
            record_log(reader, spec, bytes, views, arrival).map_err(|e| at_body_offset(e, offset)),
        ),
        Piece::TooLong { index } => (index, Err(LineError::LineTooLong { limit: max })),
        Piece::Malformed {
            index,
            offset,
            reason,
        } => (index, Err(LineError::InvalidJson { offset, reason })),
    };
    // `through_line` holds the index of the next element for this unit.
    report.through_line = index + 1;
    report.record(index, result);
}

/// An element's JSON error with its offset counted from the start of the body.
fn at_body_offset(error: LineError, start: usize) -> LineError {
    match error {
        LineError::InvalidJson { offset, reason } => LineError::InvalidJson {
            offset: offset.saturating_add(start),
            reason,
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use uniqd_core::UniqueCounter;

    use super::*;

    /// (accepted, rejected, [(index, code)], is_array), the body fed in chunks of `n`.
    fn run(body: &[u8], n: usize, max: usize) -> (u64, u64, Vec<(u64, &'static str)>, bool) {
        let views = Views::new(Arc::new(UniqueCounter::new()));
        let mut batch = JsonBatch::new(&views, max);
        for chunk in body.chunks(n.max(1)) {
            batch.feed(chunk, &mut |_| true).expect("fed");
        }
        let array = batch.is_array();
        let r = batch.finish();
        let errors = r.errors.iter().map(|f| (f.line, f.error.code())).collect();
        (r.accepted, r.rejected, errors, array)
    }

    fn every_chunking(body: &str, max: usize) -> (u64, u64, Vec<(u64, &'static str)>, bool) {
        let whole = run(body.as_bytes(), body.len(), max);
        for n in [1, 2, 3, 7, 16] {
            assert_eq!(
                run(body.as_bytes(), n, max),
                whole,
                "{body:?} in chunks of {n}"
            );
        }
        whole
    }

    #[test]
    fn arrays_of_objects() {
        let body = r#" [ {"ip":"1.1.1.1","x":[1,{"y":"]}"}]} , {"ip":"1.1.1.2"},{"ip":"::1"} ] "#;
        assert_eq!(every_chunking(body, 1000), (3, 0, vec![], true));
        assert_eq!(every_chunking("[]", 1000), (0, 0, vec![], true));
        assert_eq!(every_chunking(" [ \n ] \n", 1000), (0, 0, vec![], true));
    }

    #[test]
    fn streams_of_objects() {
        let body =
            "{\"ip\":\"1.1.1.1\",\"s\":\"\\\"}\"}{\"ip\":\"1.1.1.2\"}\n{\"ip\":\"1.1.1.3\"}\r\n";
        assert_eq!(every_chunking(body, 1000), (3, 0, vec![], false));
        assert_eq!(
            every_chunking(r#"{"ip":"1.1.1.1"}"#, 1000),
            (1, 0, vec![], false)
        );
    }

    #[test]
    fn bad_elements_are_reported_by_index() {
        let body = r#"[{"ip":"1.1.1.1"}, 5, "s", {"ip":"x"}, [], {"ip":"1.1.1.2"}, nul]"#;
        assert_eq!(
            every_chunking(body, 1000),
            (
                2,
                5,
                vec![
                    (1, "not_an_object"),
                    (2, "not_an_object"),
                    (3, "invalid_ip"),
                    (4, "not_an_object"),
                    (6, "invalid_json"),
                ],
                true
            )
        );
        let body = r#"{"ip":"1.1.1.1"} x {"ip":"1.1.1.2"} {"ip":"#;
        assert_eq!(
            every_chunking(body, 1000),
            (2, 2, vec![(1, "invalid_json"), (3, "invalid_json")], false)
        );
    }

    #[test]
    fn broken_structure_stops_the_array() {
        for (body, accepted, index) in [
            (r#"[{"ip":"1.1.1.1"} {"ip":"1.1.1.2"}]"#, 1, 1),
            (r#"[{"ip":"1.1.1.1"},]"#, 1, 1),
            (r#"[,{"ip":"1.1.1.1"}]"#, 0, 0),
            (r#"[{"ip":"1.1.1.1"},,{"ip":"1.1.1.2"}]"#, 1, 1),
            (r#"[{"ip":"1.1.1.1"}] x"#, 1, 1),
            (r#"[{"ip":"1.1.1.1"}][]"#, 1, 1),
            (r#"[{"ip":"1.1.1.1"}"#, 1, 1),
            (r#"[{"ip":"1.1.1.1"},"#, 1, 1),
            ("[", 0, 0),
        ] {
            assert_eq!(
                every_chunking(body, 1000),
                (accepted, 1, vec![(index, "invalid_json")], true),
                "{body}"
            );
        }
    }

    #[test]
    fn error_offsets_count_from_the_start_of_the_body() {
        let views = Views::new(Arc::new(UniqueCounter::new()));
        let mut batch = JsonBatch::new(&views, 1000);
        batch
            .feed(br#"  [{"ip":"1.1.1.1"}, {"ip":"1.1.1.2",,}]"#, &mut |_| {
                true
            })
            .expect("fed");
        let r = batch.finish();
        assert_eq!(
            r.errors[0].error,
            LineError::InvalidJson {
                offset: 37,
                reason: "expected a string key after ','"
            }
        );
    }

    #[test]
    fn over_long_elements_are_skipped_not_buffered() {
        let long = format!(r#"{{"ip":"1.1.1.1","pad":"{}"}}"#, "x".repeat(100));
        let body = format!(r#"[{long}, {{"ip":"1.1.1.2"}}]"#);
        assert_eq!(
            every_chunking(&body, 64),
            (1, 1, vec![(0, "line_too_long")], true)
        );
        // The carry never holds more than the limit.
        let views = Views::new(Arc::new(UniqueCounter::new()));
        let mut batch = JsonBatch::new(&views, 64);
        for chunk in body.as_bytes().chunks(5) {
            let mut granted = 0;
            batch
                .feed(chunk, &mut |n| {
                    granted = n;
                    n <= 64
                })
                .expect("fed");
            assert!(batch.buffered() <= 64 && granted <= 64);
        }
        // The first value of a stream over the limit stops the body.
        let mut batch = JsonBatch::new(&views, 64);
        let stream = format!("{long}{long}");
        assert_eq!(batch.feed(&stream.as_bytes()[..30], &mut |_| true), Ok(()));
        assert_eq!(
            batch.feed(&stream.as_bytes()[30..], &mut |_| true),
            Err(Stop::FirstTooLarge)
        );
        let mut batch = JsonBatch::new(&views, 64);
        assert_eq!(
            batch.feed(stream.as_bytes(), &mut |_| true),
            Err(Stop::FirstTooLarge)
        );
    }

    #[test]
    fn a_first_value_is_held_back_unless_the_chunk_is_the_whole_body() {
        let views = Views::new(Arc::new(UniqueCounter::new()));
        let body = br#"{"ip":"1.1.1.1"}"#;
        // Chunks may follow: the object waits (copied) for the end of the body.
        let mut batch = JsonBatch::new(&views, 1000);
        batch.feed(body, &mut |_| true).expect("fed");
        assert_eq!((batch.report().accepted, batch.buffered() > 0), (0, true));
        assert_eq!(batch.finish().accepted, 1);
        // The whole body in one chunk: counted from the chunk, nothing buffered.
        let mut batch = JsonBatch::new(&views, 1000);
        batch.whole_body_next();
        batch.feed(body, &mut |_| false).expect("no grant needed");
        assert_eq!((batch.report().accepted, batch.buffered()), (1, 0));
    }

    #[test]
    fn a_refused_grant_stops_the_feed() {
        let views = Views::new(Arc::new(UniqueCounter::new()));
        let mut batch = JsonBatch::new(&views, 1000);
        assert_eq!(
            batch.feed(br#"[{"ip":"1.1.1.1"},{"ip":"#, &mut |_| false),
            Err(Stop::Budget)
        );
        assert_eq!(batch.report().accepted, 1);
    }
}
