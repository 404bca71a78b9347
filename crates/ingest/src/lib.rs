//! HTTP ingestion for uniqd: `POST /logs` records every accepted log into the
//! [`Views`] (the shared [`UniqueCounter`](uniqd_core::UniqueCounter), and when
//! on the top pages and the time windows; see `uniqd_core::Views`).
//!
//! # The pipeline
//!
//! A log goes through four stages, each in its own module with one entry
//! point, and only the first knows where the log came from:
//!
//! | stage | module | entry point | a new one plugs in |
//! |---|---|---|---|
//! | transport: bytes from a client | `logs.rs` (HTTP body; routes, content type, limits and errors beside it; [`decode`] undoes a `Content-Encoding`); [`syslog`] (UDP datagrams, TCP streams) | `POST /logs`; [`syslog::run_syslog`] | a listener module calling a framing entry point |
//! | framing: where one log ends | [`framing`] | [`framing::object::record_object`], [`framing::Streamed`] ([`framing::json::JsonBatch`], [`framing::ndjson::NdjsonBatch`]) | a [`framing::Framing`] variant and its module |
//! | fields: address, URL, time | [`fields`] | `FieldReader::read` (scanner, then simd-json; or the CLF line parser) | in [`fields`] only |
//! | views: count it | `record.rs`, then [`Views::record`] | `record_log` | in `uniqd_core::Views` only |
//!
//! Framing, fields and the record know nothing of hyper, so the syslog listener
//! reuses them as they are.
//!
//! # Design
//!
//! * **Raw hyper 1.x, no framework.** There is one endpoint; routing is a
//!   `match` on method and path (`routes.rs`), and every error is a variant of
//!   one enum ([`error::IngestError`]) turned into status + JSON body in one
//!   place. That keeps the hot path free of boxing and middleware layers.
//! * **Parse only what is needed.** A line of the plain shape (flat object,
//!   ASCII strings without escapes) is validated and read in one pass straight
//!   from the request bytes ([`fields::scan`], about half the cost of
//!   simd-json); every other line is parsed with simd-json into a flat tape
//!   and only the top-level `ip`, `url` and `timestamp` members are extracted
//!   ([`fields::parse`]); other members are skipped by node count, without
//!   recursion. Parser buffers are per-thread and reused ([`fields`]), so a
//!   single-object request allocates nothing on the parsing path once warm,
//!   and nothing takes a lock (the counter and the metrics are lock-free).
//!   The address is hashed once for every view, and the arrival time read
//!   once per request or chunk, only when a view needs it.
//! * **Bounded memory.** Body limits are enforced from `Content-Length` before
//!   reading and while streaming. NDJSON batches are counted line by line as
//!   chunks arrive ([`framing::ndjson`]), so a connection buffers at most one
//!   line (≤ the object limit), not the whole batch. The price: a batch cut
//!   short by the size limit or a timeout has already counted its first lines;
//!   the error body says how many (`accepted`), and since counting the same
//!   address twice changes nothing, the client can simply retry.
//! * **The server kit is `uniqd-http`.** Its [`serve`](uniqd_http::serve)
//!   (connection cap, timeouts, accept backoff, graceful drain), request
//!   bodies with a read timeout, bearer tokens and JSON writer are shared
//!   with the metrics exporter; this crate only adds `/logs`.
//! * **The library never binds sockets, reads flags or installs signal
//!   handlers**: [`run`] takes a bound listener, the views, a config
//!   and a shutdown future, in the style of mini-redis. It runs on either
//!   tokio runtime flavour (the binary uses the multi-thread one).
//!
//! # Protocol
//!
//! `POST /logs` with
//! * `Content-Type: application/json` (or none): one object such as
//!   `{"timestamp": "...", "ip": "83.150.59.250", "url": "/a"}`, at most
//!   [`IngestConfig::max_object_bytes`] (default 1 MiB); or an array of such
//!   objects, or objects concatenated with optional whitespace, at most
//!   [`IngestConfig::max_batch_bytes`] in total and `max_object_bytes` per
//!   element;
//! * `Content-Type: application/x-ndjson`: one object per line, blank lines
//!   ignored, at most [`IngestConfig::max_batch_bytes`] (default 64 MiB) in
//!   total and `max_object_bytes` per line;
//! * `Content-Type: text/plain`: one access-log line per line in the combined
//!   or common log format (`fields::clf`), limits as NDJSON.
//! * any of these with `Content-Encoding: gzip`, `deflate` or `zstd`, decoded
//!   as it streams in ([`decode`]), the limits applying to the decoded bytes
//!   too.
//!
//! The address, URL and time are read from the members [`IngestConfig::fields`]
//! names (`ip`, `url`, `timestamp`, then the gateways' own names, see
//! `fields::names`); an address may carry a port or be a forwarded list
//! (`fields::address`).
//!
//! When [`IngestConfig::auth`] holds tokens, a request without
//! `Authorization: Bearer <token>` naming one of them gets `401` (see
//! [`BearerTokens`](uniqd_http::BearerTokens)) before anything else is looked at.
//!
//! Answers `202 {"accepted": n}`; `400` for invalid JSON / missing or invalid
//! `ip` / empty body (for a batch: the valid lines are still counted and the
//! body lists `accepted`, `rejected` and the first 10 `errors` with their
//! 1-based line numbers, or for an array or stream their 0-based indexes) or a
//! body that does not decode; `408` when the body stalls; `413` over a limit;
//! `415` for other content types and encodings; `404`/`405` otherwise. All error bodies
//! are JSON, see [`error`].

// One `unsafe` block, with its reason and its SAFETY argument: `fields::scan::ascii_str`.
#![deny(unsafe_code)]

pub mod config;
pub mod content_type;
pub mod decode;
pub mod error;
pub mod fields;
pub mod framing;
mod logs;
pub mod metrics;
mod record;
mod routes;
mod state;
pub mod syslog;

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::sync::Arc;

use hyper::service::service_fn;
use tokio::net::TcpListener;
use uniqd_core::Views;

pub use crate::config::IngestConfig;
pub use crate::metrics::IngestMetrics;
use crate::state::IngestState;

/// Runs the ingest server on `listener` until `shutdown` resolves, then
/// drains in-flight requests (see [`uniqd_http::serve`]). Every accepted log
/// object is recorded in every view of `views` that is on.
///
/// # Errors
///
/// `InvalidInput` if `config` is invalid (see [`IngestConfig::validate`]).
pub async fn run(
    listener: TcpListener,
    views: Views,
    metrics: Arc<IngestMetrics>,
    config: IngestConfig,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    config
        .validate()
        .map_err(|msg| io::Error::new(io::ErrorKind::InvalidInput, msg))?;
    let server_config = config.server.clone();
    let state = Arc::new(IngestState {
        views,
        metrics,
        config,
    });
    let make_service = move |_peer| {
        let state = Arc::clone(&state);
        service_fn(move |req| {
            let state = Arc::clone(&state);
            async move { Ok::<_, Infallible>(routes::handle(&state, req).await) }
        })
    };
    uniqd_http::serve(listener, make_service, server_config, shutdown).await
}
