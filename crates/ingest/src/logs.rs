//! `POST /logs`: read the body within its size limit, count the addresses and
//! record the pages (the `url` of each accepted object).
//!
//! * Single object: the body is collected (it is at most the object limit)
//!   and parsed once. When it arrives as one chunk, which is the common case,
//!   the chunk is parsed straight from hyper's buffer, with no intermediate
//!   copy or allocation besides the per-thread parser buffers.
//! * NDJSON: chunks are split into lines and counted as they arrive (see
//!   [`crate::ndjson`]), so memory stays bounded by the object limit however
//!   large the batch.
//!
//! With authentication on, the bearer token is checked first (401).
//!
//! Limits are enforced twice: up front from `Content-Length` (413 without
//! reading anything), and while streaming for chunked bodies (413 as soon as
//! the running total passes the limit; reading stops there).

use bytes::Bytes;
use hyper::body::Body as _;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE};
use hyper::Request;

use crate::config::IngestConfig;
use crate::content_type::{classify, BodyFormat};
use crate::error::IngestError;
use crate::line_parser::with_parser;
use crate::ndjson::NdjsonBatch;
use crate::IngestState;
use uniqd_http::RequestBody;

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
    let format = classify(req.headers().get(CONTENT_TYPE))?;
    let limit = limit_for(&state.config, format);
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
    match format {
        BodyFormat::Single => single(state, &mut body, limit).await,
        BodyFormat::Ndjson => ndjson(state, &mut body, limit).await,
    }
}

fn limit_for(config: &IngestConfig, format: BodyFormat) -> usize {
    match format {
        BodyFormat::Single => config.max_object_bytes,
        BodyFormat::Ndjson => config.max_batch_bytes,
    }
}

/// One JSON object.
async fn single(
    state: &IngestState,
    body: &mut RequestBody,
    limit: usize,
) -> Result<u64, IngestError> {
    let bytes = collect_single(body, limit).await?;
    if bytes
        .iter()
        .all(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
    {
        return Err(IngestError::EmptyBody);
    }
    with_parser(|parser| parser.count_line(&bytes, state.sinks().arrived_now()))
        .map_err(IngestError::InvalidObject)?;
    Ok(1)
}

/// Reads a whole (small) body, without copying when it is a single chunk.
async fn collect_single(body: &mut RequestBody, limit: usize) -> Result<Bytes, IngestError> {
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
    let Some(second) = body.data().await else {
        return Ok(first);
    };
    let second = second.map_err(body_error)?;
    // Rare: the body arrived in several chunks; join them (bounded by `limit`).
    let mut joined = Vec::with_capacity(
        body.declared_len()
            .and_then(|n| usize::try_from(n).ok())
            .unwrap_or(first.len() + second.len())
            .min(limit),
    );
    let mut next = Some(second);
    joined.extend_from_slice(&first);
    while let Some(chunk) = next {
        if joined.len() + chunk.len() > limit {
            return Err(too_large());
        }
        joined.extend_from_slice(&chunk);
        next = body.data().await.transpose().map_err(body_error)?;
    }
    Ok(Bytes::from(joined))
}

/// NDJSON: count lines chunk by chunk.
async fn ndjson(
    state: &IngestState,
    body: &mut RequestBody,
    limit: usize,
) -> Result<u64, IngestError> {
    let mut batch = NdjsonBatch::new(&state.targets.counter, state.config.max_object_bytes);
    if let Some(top) = &state.targets.top_pages {
        batch = batch.with_top_pages(top);
    }
    if let Some(windows) = &state.targets.windows {
        batch = batch.with_windows(windows);
    }
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
