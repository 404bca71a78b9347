//! Stage 2 of the ingest pipeline, *framing*: where one log object ends and the next begins
//! in the bytes a transport delivers.
//!
//! [`Framing`] names the layouts; each has one module with one entry point that takes the
//! bytes and the [`Views`] and hands every framed log to
//! `record.rs` (fields, then views):
//!
//! | framing | entry point | memory |
//! |---|---|---|
//! | [`Framing::Object`], a body that is one JSON object in one chunk (the hot path) | [`object::record_object`] | none: parsed in the transport's buffer |
//! | [`Framing::Object`], any other `application/json` body: an object, an array of objects, concatenated objects | [`json::JsonBatch`], fed chunk by chunk | at most one element carried between chunks |
//! | [`Framing::Ndjson`]: one JSON object per line | [`ndjson::NdjsonBatch`], fed chunk by chunk | at most one line carried between chunks |
//! | [`Framing::Lines`]: one access-log line (combined or common log format) per line | [`ndjson::NdjsonBatch`] with [`Syntax::Clf`] | as NDJSON |
//!
//! Framing knows neither HTTP nor sockets, nor content encodings: the HTTP transport
//! (`logs.rs`) picks the framing from the `Content-Type`, undoes a `Content-Encoding`
//! (`decode.rs`) and feeds the decoded bytes, and maps the outcome to a status; a syslog
//! listener would pick it from its configuration and feed datagrams or stream chunks to the
//! same entry points. A new layout is a variant here, a module beside these, and its arm in
//! [`Streamed`].

pub mod json;
pub mod json_split;
pub mod ndjson;
pub mod object;

use uniqd_core::Views;

use crate::fields::{FieldMap, FieldSpec, Syntax};

use self::json::JsonBatch;
pub use self::json_split::Stop;
use self::ndjson::{BatchReport, NdjsonBatch};

/// How the log objects of one body (or datagram, or stream) are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// JSON: one object, an array of objects, or concatenated objects.
    Object,
    /// NDJSON: one JSON object per line.
    Ndjson,
    /// Plain text: one access-log line per line (`text/plain`), split like NDJSON and read by
    /// `fields::clf`.
    Lines,
}

/// A body being framed as it streams in, whatever its [`Framing`]: the one interface a
/// transport feeds.
#[derive(Debug)]
pub enum Streamed<'v> {
    /// `application/json`.
    Json(JsonBatch<'v>),
    /// `application/x-ndjson`.
    Ndjson(NdjsonBatch<'v>),
}

/// How a streamed body ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finished {
    /// Every element or line counted (`[]` counts zero).
    Counted(u64),
    /// Nothing but whitespace.
    Empty,
    /// A body that is a single value (not an array), and that value was refused: the error
    /// a single object has always got.
    SingleRefused(crate::fields::LineError),
    /// At least one element or line refused; the others were counted.
    Partly(BatchReport),
}

impl<'v> Streamed<'v> {
    /// Starts a body of `framing`; `max` is the longest element or line, `fields` names the
    /// members the fields are read from.
    #[must_use]
    pub fn new(framing: Framing, views: &'v Views, max: usize, fields: &'v FieldMap) -> Self {
        let spec = |syntax| FieldSpec {
            syntax,
            map: fields,
        };
        match framing {
            Framing::Object => Self::Json(JsonBatch::new(views, max).with_spec(spec(Syntax::Json))),
            Framing::Ndjson => {
                Self::Ndjson(NdjsonBatch::new(views, max).with_spec(spec(Syntax::Json)))
            }
            Framing::Lines => {
                Self::Ndjson(NdjsonBatch::new(views, max).with_spec(spec(Syntax::Clf)))
            }
        }
    }

    /// Feeds the next bytes. `grant(n)` is asked before the framing's own buffer grows to
    /// `n` bytes.
    ///
    /// # Errors
    ///
    /// [`Stop`]: the body must be abandoned (what was counted stays counted).
    pub fn feed(&mut self, bytes: &[u8], grant: &mut dyn FnMut(usize) -> bool) -> Result<(), Stop> {
        match self {
            Self::Json(batch) => batch.feed(bytes, grant),
            Self::Ndjson(batch) => {
                let buffered = batch.buffer_after(bytes);
                if !grant(buffered) {
                    return Err(Stop::Budget);
                }
                batch.feed(bytes);
                Ok(())
            }
        }
    }

    /// Says that the next bytes fed are the whole rest of the body (it came in one piece),
    /// which spares the JSON framing a copy.
    pub fn whole_body_next(&mut self) {
        if let Self::Json(batch) = self {
            batch.whole_body_next();
        }
    }

    /// The totals so far, for an error that cuts the body short: always for NDJSON, for
    /// JSON once an element was counted or refused (a single object cut short counted
    /// nothing, and its error says so).
    #[must_use]
    pub fn progress(&self) -> Option<BatchReport> {
        match self {
            Self::Json(batch) => Some(batch.report().clone()).filter(|r| r.through_line > 0),
            Self::Ndjson(batch) => Some(batch.report().clone()),
        }
    }

    /// The bytes held in the framing's own buffer (an element or line carried between
    /// chunks).
    #[must_use]
    pub fn buffered(&self) -> usize {
        match self {
            Self::Json(batch) => batch.buffered(),
            Self::Ndjson(batch) => batch.buffered(),
        }
    }

    /// The end of the body.
    #[must_use]
    pub fn finish(self) -> Finished {
        let (report, single) = match self {
            Self::Json(batch) => {
                let single = !batch.is_array();
                let report = batch.finish();
                if report.lines() == 0 && !single {
                    // `[]`: a valid, empty batch.
                    return Finished::Counted(0);
                }
                (report, single)
            }
            Self::Ndjson(batch) => (batch.finish(), false),
        };
        if report.lines() == 0 {
            Finished::Empty
        } else if report.rejected == 0 {
            Finished::Counted(report.accepted)
        } else if single && report.lines() == 1 {
            match report.errors.into_iter().next() {
                Some(failure) => Finished::SingleRefused(failure.error),
                // `rejected` is 1, so the first failure is kept.
                None => Finished::Counted(0),
            }
        } else {
            Finished::Partly(report)
        }
    }
}
