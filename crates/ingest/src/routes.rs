//! Request routing for the ingest server, and per-request metrics.
//!
//! Routing is a plain `match` on method and path: there is one endpoint, and
//! a router crate would add more code than it removes.

use std::time::Instant;

use hyper::{Method, Request, Response};

use crate::error::{accepted_response, IngestError};
use crate::logs::post_logs;
use crate::metrics::RequestOutcome;
use crate::IngestState;
use uniqd_http::{RequestBody, ResponseBody};

/// Serves one request; never fails (errors become JSON responses).
pub(crate) async fn handle(
    state: &IngestState,
    req: Request<RequestBody>,
) -> Response<ResponseBody> {
    let started = Instant::now();
    let result = match (req.method(), req.uri().path()) {
        (&Method::POST, "/logs") => post_logs(state, req).await,
        (_, "/logs") => Err(IngestError::MethodNotAllowed),
        _ => Err(IngestError::NotFound),
    };
    let (response, outcome, (accepted, invalid)) = match result {
        Ok(lines) => (
            accepted_response(lines),
            RequestOutcome::Accepted,
            (lines, 0),
        ),
        Err(error) => {
            tracing::debug!(code = error.code(), status = %error.status(), "ingest request rejected");
            let outcome = error.outcome();
            let lines = error.line_counts();
            (error.into_response(), outcome, lines)
        }
    };
    state.metrics.record_lines(accepted, invalid);
    state.metrics.record_request(outcome, started.elapsed());
    response
}
