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
//! * One object: the body is collected (it is at most the object limit)
//!   and parsed once. When it arrives as one chunk, which is the common case,
//!   the chunk is parsed straight from hyper's buffer, with no intermediate
//!   copy or allocation besides the per-thread parser buffers.
//! * NDJSON, and `text/plain` access-log lines: chunks are split into lines
//!   and counted as they arrive (see [`crate::framing::ndjson`]), so memory
//!   stays bounded by the object limit however large the batch. The fields
//!   are read as the config's [`FieldMap`](crate::fields::FieldMap) says.
//! * Every byte copied into a buffer of ours (an object in several chunks,
//!   a line carried between chunks) is reserved first from the budget all
//!   connections share (`--max-buffered-bytes`, `uniqd_http::BufferBudget`);
//!   past it the request gets 503 with `Retry-After` and the connection is
//!   closed. The one-chunk object touches no atomic.
//!
//! With authentication on, the bearer token is checked first (401). Then
//! the encodings: a `Content-Encoding` other than `identity` gets 415 and a
//! `Transfer-Encoding` other than `chunked` 501 (`content_type.rs`), since
//! bodies are not decoded.
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
use crate::error::IngestError;
use crate::fields::{FieldSpec, Syntax};
use crate::framing::ndjson::NdjsonBatch;
use crate::framing::object::{record_object_with, ObjectError};
use crate::framing::Framing;
use crate::IngestState;
use uniqd_http::{RequestBody, Reservation};

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
    // Bodies are not decoded: a compressed or otherwise encoded one is
    // refused before it is read.
    check_encodings(req.headers())?;
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
    match framing {
        Framing::Object => object(state, &mut body, limit).await,
        Framing::Ndjson => ndjson(state, &mut body, limit, Syntax::Json).await,
        Framing::Lines => ndjson(state, &mut body, limit, Syntax::Clf).await,
    }
}

fn limit_for(config: &IngestConfig, framing: Framing) -> usize {
    match framing {
        Framing::Object => config.max_object_bytes,
        Framing::Ndjson | Framing::Lines => config.max_batch_bytes,
    }
}

/// One JSON object.
async fn object(
    state: &IngestState,
    body: &mut RequestBody,
    limit: usize,
) -> Result<u64, IngestError> {
    let mut reservation = state
        .metrics
        .buffers()
        .reservation(state.config.max_buffered_bytes);
    let bytes = collect_single(body, limit, &mut reservation).await?;
    let spec = FieldSpec {
        syntax: Syntax::Json,
        map: &state.config.fields,
    };
    record_object_with(&bytes, spec, &state.views).map_err(|e| match e {
        ObjectError::Blank => IngestError::EmptyBody,
        ObjectError::Invalid(e) => IngestError::InvalidObject(e),
    })?;
    // The reservation is given back here, once the copy is parsed.
    drop(reservation);
    Ok(1)
}

/// Reads a whole (small) body, without copying when it is a single chunk.
///
/// A body that arrives in one chunk is parsed straight from hyper's buffer
/// (the hot path: no copy, no atomic). Otherwise the chunks are copied into
/// a buffer of ours, whose every byte is reserved from the global budget
/// in `reservation` before it is allocated, and the first chunk is copied
/// before waiting for the next, so that a stalled body is held by us, in
/// the budget, and not by hyper.
async fn collect_single(
    body: &mut RequestBody,
    limit: usize,
    reservation: &mut Reservation<'_>,
) -> Result<Bytes, IngestError> {
    let too_large = || IngestError::PayloadTooLarge {
        limit,
        declared: false,
        progress: None,
    };
    let body_error = |e| IngestError::from_body(&e, None);
    let first = match body.data().await {
        None => return Err(IngestError::EmptyBody),
        Some(chunk) => chunk.map_err(body_error)?,
    };
    if first.len() > limit {
        return Err(too_large());
    }
    if body.is_end_stream() {
        return Ok(first);
    }
    // Rare: more may come; join the chunks (bounded by `limit`, and by what
    // the client declared).
    let most = body
        .declared_len()
        .and_then(|n| usize::try_from(n).ok())
        .map_or(limit, |declared| declared.min(limit));
    let mut joined = Vec::new();
    let mut next = Some(first);
    while let Some(chunk) = next {
        let needed = joined.len() + chunk.len();
        if needed > limit {
            return Err(too_large());
        }
        if needed > joined.capacity() {
            // Doubling, or exactly what is needed when the budget has no
            // room for the doubling.
            let doubled = needed.max(joined.capacity().saturating_mul(2).min(most));
            let target = if reservation.grow_to(doubled).is_ok() {
                doubled
            } else {
                reservation
                    .grow_to(needed)
                    .map_err(|_| IngestError::BuffersFull { progress: None })?;
                needed
            };
            joined.reserve_exact(target - joined.len());
        }
        joined.extend_from_slice(&chunk);
        drop(chunk);
        next = body.data().await.transpose().map_err(body_error)?;
    }
    Ok(Bytes::from(joined))
}

/// NDJSON or access-log lines (`syntax`): count lines chunk by chunk.
async fn ndjson(
    state: &IngestState,
    body: &mut RequestBody,
    limit: usize,
    syntax: Syntax,
) -> Result<u64, IngestError> {
    let spec = FieldSpec {
        syntax,
        map: &state.config.fields,
    };
    let mut batch = NdjsonBatch::new(&state.views, state.config.max_object_bytes).with_spec(spec);
    // The batch's carry (one line at most) is reserved before it grows.
    let mut reservation = state
        .metrics
        .buffers()
        .reservation(state.config.max_buffered_bytes);
    let mut received: usize = 0;
    while let Some(chunk) = body.data().await {
        let chunk = match chunk {
            Ok(chunk) => chunk,
            Err(e) => return Err(IngestError::from_body(&e, Some(batch.into_report()))),
        };
        received = received.saturating_add(chunk.len());
        if received > limit {
            return Err(IngestError::PayloadTooLarge {
                limit,
                declared: false,
                progress: Some(batch.into_report()),
            });
        }
        let buffered = batch.buffer_after(&chunk);
        if buffered > reservation.held() && reservation.grow_to(buffered).is_err() {
            return Err(IngestError::BuffersFull {
                progress: Some(batch.into_report()),
            });
        }
        batch.feed(&chunk);
    }
    let report = batch.finish();
    if report.lines() == 0 {
        Err(IngestError::EmptyBody)
    } else if report.rejected > 0 {
        Err(IngestError::InvalidLines(report))
    } else {
        Ok(report.accepted)
    }
}
