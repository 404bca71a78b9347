//! The HTTP/1.1 server kit uniqd's two ports share: the ingest server
//! (`uniqd-ingest`, `POST /logs`) and the metrics server (`uniqd-exporter`,
//! `/metrics` and the JSON APIs) both run on [`serve`], read request bodies
//! through [`RequestBody`], check [`BearerTokens`] and answer JSON written
//! with [`JsonObject`]. Nothing here knows about logs, counters or metrics:
//! whoever looks for a port's timeouts, connection cap or drain finds them
//! here, once.
//!
//! # Design
//!
//! * **Raw hyper 1.x, no framework.** A server is a function from a request
//!   to a response; [`serve`] takes a `make_service` closure (one service per
//!   connection) and any service that fits [`ConnectionService`].
//! * **What hyper lacks, written once** (`server.rs`, `connection.rs`,
//!   `request_body.rs`): a connection cap taken *before* `accept` (clients
//!   past it wait in the kernel backlog), accept errors retried with
//!   backoff, a header-read and an idle timeout kept by one watchdog timer
//!   per connection (no clock read or timer per request), a per-chunk
//!   body-read timeout, a request-head size cap (431), and a graceful drain
//!   with a deadline. The settings are one [`ServerConfig`], checked in one
//!   place ([`ServerConfig::validate`]).
//! * **No import cycle.** The accept loop (`server.rs`) depends on the
//!   connection task (`connection.rs`); both depend on [`ConnectionService`]
//!   (`service.rs`) and [`RequestBody`], which depend on neither.
//! * **The library never binds sockets, reads flags or installs signal
//!   handlers**: [`serve`] takes a bound listener and a shutdown future. It
//!   runs on either tokio runtime flavour.
//! * **Errors stay with their server.** Each server maps its own error enum
//!   to a status, a code and a message in one place; this crate only gives
//!   them the shared shape, [`json_response`] and [`json_error`]
//!   (`{"error": code, "message": text}` as `application/json`).
//! * **Every error is JSON**, also those hyper answers by itself before a
//!   service sees the request (400 for a head it cannot parse, 431, 414):
//!   the connection's socket wrapper rewrites them (`bare_error.rs`), and an
//!   HTTP/1.1 request without `Host` gets `400 missing_host`.
//! * **A global budget for buffered request bytes** ([`BufferBudget`]):
//!   lock-free, shared by all connections of a server, each request's share
//!   an RAII [`Reservation`].
//! * **Bearer tokens** ([`BearerTokens`]): optional, several at once for
//!   rotation, compared in constant time, never printed.

#![forbid(unsafe_code)]

mod auth;
mod bare_error;
mod budget;
mod config;
mod connection;
mod json;
mod request_body;
mod response;
mod server;
mod service;

pub use crate::auth::{BearerTokens, WWW_AUTHENTICATE_BEARER};
pub use crate::budget::{BudgetExhausted, BufferBudget, Reservation};
pub use crate::config::{ServerConfig, MIN_BUF_SIZE};
pub use crate::json::{escape_into, JsonObject};
pub use crate::request_body::{BodyError, RequestBody};
pub use crate::response::{json_error, json_response, ResponseBody, APPLICATION_JSON};
pub use crate::server::serve;
pub use crate::service::{BoxError, ConnectionService};
