//! Stage 2 of the ingest pipeline, *framing*: where one log object ends and the next begins
//! in the bytes a transport delivers.
//!
//! [`Framing`] names the layouts; each has one module with one entry point that takes the
//! bytes and the [`Views`](uniqd_core::Views) and hands every framed log to
//! `record.rs` (fields, then views):
//!
//! | framing | entry point | memory |
//! |---|---|---|
//! | [`Framing::Object`]: the whole body is one JSON object | [`object::record_object`] | the transport collects the body (≤ the object limit) |
//! | [`Framing::Ndjson`]: one JSON object per line | [`ndjson::NdjsonBatch`], fed chunk by chunk | at most one line carried between chunks |
//! | [`Framing::Lines`]: one access-log line (combined or common log format) per line | [`ndjson::NdjsonBatch`] with [`Syntax::Clf`](crate::fields::Syntax::Clf) | as NDJSON |
//!
//! Framing knows neither HTTP nor sockets: the HTTP transport (`logs.rs`) picks the framing
//! from the `Content-Type` and maps the outcome to a status; a syslog listener would pick it
//! from its configuration and feed datagrams or stream chunks to the same entry points. A new
//! layout (JSON arrays, concatenated objects) is a variant here, a
//! module beside these two, and its arm in the transport's `match`.

pub mod ndjson;
pub mod object;

/// How the log objects of one body (or datagram, or stream) are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// One JSON object.
    Object,
    /// NDJSON: one JSON object per line.
    Ndjson,
    /// Plain text: one access-log line per line (`text/plain`), split like NDJSON and read by
    /// `fields::clf`.
    Lines,
}
