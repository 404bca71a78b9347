//! Stage 1 of the ingest pipeline for HTTP, the *transport*: `POST /logs`.
//! Checks the token, picks the [`Framing`] from the `Content-Type`, reads the
//! body within its size limit, hands the bytes to the framing's entry point
//! (which reads the fields and records each log into the views), and maps the
//! outcome to an [`IngestError`] (status and JSON body). Everything HTTP about
//! ingest (routes, content type, limits, errors) is here or beside it
//! (`routes.rs`, `content_type.rs`, `error.rs`); framing, fields and views
//! know nothing of it, so another transport (a syslog listener on UDP or TCP)
//! reuses them as they are.
//!
//! * One object in one chunk (the common case, and the hot path): the chunk
//!   is parsed straight from hyper's buffer, with no intermediate copy or
//!   allocation besides the per-thread parser buffers.
//! * Any other `application/json` body (an object in several chunks, an
//!   array, concatenated objects), NDJSON and `text/plain` access-log lines:
//!   chunks are split into elements or lines and counted as they arrive
//!   ([`Streamed`]), so memory stays bounded by the object limit however
//!   large the batch. The fields are read as the config's
//!   [`FieldMap`](crate::fields::FieldMap) says.
//! * A `Content-Encoding` of `gzip`, `deflate` or `zstd` is undone as the
//!   body streams in ([`Decoder`], `decode.rs`), between the transport and
//!   any framing; the size limit applies to the wire bytes and to the
//!   decoded bytes, so a decompression bomb gets 413 once it decodes past the
//!   limit, having held no more than the decoder's fixed output buffer.
//! * Every byte copied into a buffer of ours (an object in several chunks,
//!   a line carried between chunks) is reserved first from the budget all
//!   connections share (`--max-buffered-bytes`, `uniqd_http::BufferBudget`);
//!   past it the request gets 503 with `Retry-After` and the connection is
//!   closed. The one-chunk object touches no atomic.
//!
//! With authentication on, the bearer token is checked first (401). Then
//! the encodings: a `Content-Encoding` uniqd does not decode gets 415 and a
//! `Transfer-Encoding` other than `chunked` 501 (`content_type.rs`).
//!
//! Limits are enforced twice: up front from `Content-Length` (413 without
//! reading anything), and while streaming for chunked bodies (413 as soon as
//! the running total passes the limit; reading stops there).

use bytes::Bytes;
use hyper::body::Body as _;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE};
use hyper::Request;

use crate::config::IngestConfig;
use crate::content_type::{check_encodings, classify};
use crate::decode::{Coding, Decoder};
use crate::error::IngestError;
use crate::fields::{FieldSpec, Syntax};
use crate::framing::ndjson::BatchReport;
use crate::framing::object::record_object_with;
use crate::framing::{Finished, Framing, Stop, Streamed};
use crate::IngestState;
use uniqd_http::{BodyError, RequestBody, Reservation};

/// Bodies up to this size that arrive in one chunk and start with `{` are first tried as one
/// object, in hyper's buffer; larger ones (or a stream of objects that fails that try) go
/// through the splitter, which is zero-copy within a chunk too. The bound keeps a failed try
/// (a large stream of concatenated objects) cheap.
const ONE_OBJECT_TRY: usize = 16 * 1024;

/// Handles `POST /logs`; returns the number of lines counted.
pub(crate) async fn post_logs(
    state: &IngestState,
    req: Request<RequestBody>,
) -> Result<u64, IngestError> {
    // Before anything else: an unauthenticated client learns nothing about
    // the body rules and costs no body reading.
    if let Some(tokens) = &state.config.auth {
        if !tokens.verify(req.headers().get(AUTHORIZATION)) {
            return Err(IngestError::Unauthorized);
        }
    }
    let coding = check_encodings(req.headers())?;
    let framing = classify(req.headers().get(CONTENT_TYPE))?;
    let limit = limit_for(&state.config, framing);
    let mut body = req.into_body();
    match body.declared_len() {
        Some(len) if len > u64::try_from(limit).unwrap_or(u64::MAX) => {
            return Err(IngestError::PayloadTooLarge {
                limit,
                declared: true,
                progress: None,
            });
        }
        Some(0) => return Err(IngestError::EmptyBody),
        _ => {}
    }
    let first = match body.data().await {
        None => return Err(IngestError::EmptyBody),
        Some(chunk) => chunk.map_err(|e| IngestError::from_body(&e, None))?,
    };
    if framing == Framing::Object
        && coding == Coding::Identity
        && first.len() <= ONE_OBJECT_TRY.min(state.config.max_object_bytes)
        && body.is_end_stream()
        && first.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{')
        && record_object_with(
            &first,
            FieldSpec {
                syntax: Syntax::Json,
                map: &state.config.fields,
            },
            &state.views,
        )
        .is_ok()
    {
        // The hot path. On failure nothing was counted, and the splitter below
        // says why (or finds a stream of several objects).
        return Ok(1);
    }
    let config = &state.config;
    let decoder = Decoder::new(coding);
    let mut run = Run {
        streamed: Streamed::new(
            framing,
            &state.views,
            config.max_object_bytes,
            &config.fields,
        ),
        decoder,
        reservation: state
            .metrics
            .buffers()
            .reservation(config.max_buffered_bytes),
        limit,
        max_object: config.max_object_bytes,
        wire: 0,
        decoded: 0,
    };
    run.reserve_decoder()
        .map_err(|()| IngestError::BuffersFull { progress: None })?;
    if run.decoder.is_none() && body.is_end_stream() {
        // One piece: the framing reads it where it is, holding nothing back.
        run.streamed.whole_body_next();
    }
    let mut next = Some(Ok(first));
    loop {
        let chunk = match next.take() {
            Some(chunk) => chunk,
            None => match body.data().await {
                Some(chunk) => chunk,
                None => break,
            },
        };
        run.chunk(chunk)?;
    }
    run.finish()
}

fn limit_for(config: &IngestConfig, framing: Framing) -> usize {
    match framing {
        // Arrays and streams: the batch limit for the body, the object limit
        // for each element (and for a body that is one object).
        Framing::Object | Framing::Ndjson | Framing::Lines => config.max_batch_bytes,
    }
}

/// One streamed body: wire bytes → decoder (if any) → framing.
struct Run<'s> {
    streamed: Streamed<'s>,
    decoder: Option<Decoder>,
    /// What the decoder and the framing's buffer hold, from the global budget.
    reservation: Reservation<'s>,
    limit: usize,
    max_object: usize,
    wire: usize,
    decoded: usize,
}

impl Run<'_> {
    /// Reserves what the decoder holds now (its state can grow: a zstd window).
    fn reserve_decoder(&mut self) -> Result<(), ()> {
        let held = self.decoder.as_ref().map_or(0, Decoder::held_bytes);
        let carry = self.streamed.buffered();
        self.reservation.grow_to(held + carry).map_err(|_| ())
    }

    fn chunk(&mut self, chunk: Result<Bytes, BodyError>) -> Result<(), IngestError> {
        let chunk = match chunk {
            Ok(chunk) => chunk,
            Err(e) => return Err(IngestError::from_body(&e, self.progress())),
        };
        self.wire = self.wire.saturating_add(chunk.len());
        if self.wire > self.limit {
            return Err(self.too_large(self.limit));
        }
        match self.decoder.take() {
            None => self.feed_decoded(&chunk),
            Some(mut decoder) => {
                decoder.push(chunk);
                let result = self.drain(&mut decoder);
                self.decoder = Some(decoder);
                result
            }
        }
    }

    /// Feeds everything `decoder` can decode from what it has been given.
    fn drain(&mut self, decoder: &mut Decoder) -> Result<(), IngestError> {
        loop {
            let n = match decoder.decode() {
                Ok(Some(n)) => n,
                Ok(None) => break,
                Err(_) => {
                    return Err(IngestError::InvalidEncoding {
                        encoding: decoder.coding().name(),
                        progress: self.progress(),
                    })
                }
            };
            self.decoded = self.decoded.saturating_add(n);
            if self.decoded > self.limit {
                return Err(self.too_large(self.limit));
            }
            // A zstd window is allocated when a frame starts: counted here.
            let held = decoder.held_bytes();
            let bytes = decoder.output(n);
            if self
                .reservation
                .grow_to(held + self.streamed.buffered())
                .is_err()
            {
                return Err(self.stopped(Stop::Budget));
            }
            feed(&mut self.streamed, bytes, &mut self.reservation, held)
                .map_err(|stop| self.stopped(stop))?;
        }
        Ok(())
    }

    fn feed_decoded(&mut self, bytes: &[u8]) -> Result<(), IngestError> {
        feed(&mut self.streamed, bytes, &mut self.reservation, 0).map_err(|stop| self.stopped(stop))
    }

    fn finish(mut self) -> Result<u64, IngestError> {
        if let Some(mut decoder) = self.decoder.take() {
            decoder.end();
            self.drain(&mut decoder)?;
        }
        match self.streamed.finish() {
            Finished::Counted(n) => Ok(n),
            Finished::Empty => Err(IngestError::EmptyBody),
            Finished::SingleRefused(e) => Err(IngestError::InvalidObject(e)),
            Finished::Partly(report) => Err(IngestError::InvalidLines(report)),
        }
    }

    /// The totals so far for an error that cuts the body short; none for a JSON body that
    /// counted and refused nothing yet (the error then says nothing was counted).
    fn progress(&self) -> Option<BatchReport> {
        self.streamed.progress()
    }

    fn stopped(&self, stop: Stop) -> IngestError {
        match stop {
            Stop::Budget => IngestError::BuffersFull {
                progress: self.progress(),
            },
            // The first value of a body that is not an array: nothing was counted.
            Stop::FirstTooLarge => IngestError::PayloadTooLarge {
                limit: self.max_object,
                declared: false,
                progress: None,
            },
        }
    }

    fn too_large(&self, limit: usize) -> IngestError {
        IngestError::PayloadTooLarge {
            limit,
            declared: false,
            progress: self.progress(),
        }
    }
}

/// Feeds `bytes` to the framing, its buffer growth reserved on top of `base` bytes.
fn feed(
    streamed: &mut Streamed<'_>,
    bytes: &[u8],
    reservation: &mut Reservation<'_>,
    base: usize,
) -> Result<(), Stop> {
    streamed.feed(bytes, &mut |n| reservation.grow_to(base + n).is_ok())
}
