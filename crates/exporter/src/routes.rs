//! Routing and responses of the metrics server: `/metrics`, `/healthz`,
//! `/readyz`, the status page `/` and its `/status.json`, and the top pages
//! `/stats`, the time windows `/api/v1/unique` and `/api/v1/unique/series`;
//! anything else is a JSON 404 (or 405 for a wrong method), and the data
//! endpoints (`/metrics`, `/stats`, `/api/v1/...`) without a valid bearer
//! token (when tokens are configured) a JSON 401.

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{
    HeaderValue, ALLOW, AUTHORIZATION, CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE,
    WWW_AUTHENTICATE, X_CONTENT_TYPE_OPTIONS,
};
use hyper::{Method, Request, Response, StatusCode};
use uniqd_http::{json_error as error, json_response as json, JsonObject, WWW_AUTHENTICATE_BEARER};

use crate::readiness::ReadyState;
use crate::stats::{parse_limit, stats_json};
use crate::status::{STATUS_PAGE, STATUS_PAGE_CSP};
use crate::windows::{series_json, unique_json, WindowQueryError};
use crate::ExporterState;

/// `Content-Type` of `/metrics`.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Serves one request to the metrics port.
pub(crate) fn handle<B>(state: &ExporterState, req: &Request<B>) -> Response<Full<Bytes>> {
    let read = matches!(*req.method(), Method::GET | Method::HEAD);
    match (read, req.uri().path()) {
        (true, "/metrics" | "/stats" | UNIQUE | SERIES) if !authorized(state, req) => {
            let mut response = error(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "missing or invalid bearer token; send the header Authorization: Bearer <token>",
            );
            response
                .headers_mut()
                .insert(WWW_AUTHENTICATE, WWW_AUTHENTICATE_BEARER);
            response
        }
        (true, "/metrics") => metrics(state),
        (true, "/healthz") => json(
            StatusCode::OK,
            JsonObject::new().str("status", "ok").finish(),
        ),
        (true, "/readyz") => readyz(state),
        (true, "/") => status_page(),
        (true, "/status.json") => {
            no_store(json(StatusCode::OK, state.status.to_json(state.started)))
        }
        (true, "/stats") => stats(state, req.uri().query()),
        (true, UNIQUE) => windows(state, req.uri().query(), unique_json),
        (true, SERIES) => windows(state, req.uri().query(), series_json),
        (
            false,
            "/metrics" | "/healthz" | "/readyz" | "/" | "/status.json" | "/stats" | UNIQUE | SERIES,
        ) => {
            let mut response = error(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "only GET and HEAD are supported here",
            );
            response
                .headers_mut()
                .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
            response
        }
        _ => error(
            StatusCode::NOT_FOUND,
            "not_found",
            "no such endpoint; try /metrics, /healthz, /readyz, /, /status.json, /stats, \
             /api/v1/unique or /api/v1/unique/series",
        ),
    }
}

/// `/stats?limit=N`: the top pages, or 404 when they are off, 400 for a bad `limit`.
fn stats(state: &ExporterState, query: Option<&str>) -> Response<Full<Bytes>> {
    let Some(top) = state.status.top_pages() else {
        return error(
            StatusCode::NOT_FOUND,
            "top_pages_disabled",
            "top pages are off (--top-pages-capacity 0)",
        );
    };
    match parse_limit(query) {
        Ok(limit) => no_store(json(StatusCode::OK, stats_json(top, limit))),
        Err(e) => error(StatusCode::BAD_REQUEST, e.code(), &e.to_string()),
    }
}

/// `/api/v1/unique?window=` and `/api/v1/unique/series?lookback=&step=`.
const UNIQUE: &str = "/api/v1/unique";
const SERIES: &str = "/api/v1/unique/series";

/// A time-window endpoint: 404 when windows are off, 400 for a bad query.
fn windows(
    state: &ExporterState,
    query: Option<&str>,
    body: fn(&uniqd_core::WindowRing, Option<&str>) -> Result<String, WindowQueryError>,
) -> Response<Full<Bytes>> {
    let Some(ring) = state.status.windows() else {
        return error(
            StatusCode::NOT_FOUND,
            "windows_disabled",
            "time windows are off (--windows off)",
        );
    };
    match body(ring, query) {
        Ok(body) => no_store(json(StatusCode::OK, body)),
        Err(e) => error(StatusCode::BAD_REQUEST, e.code(), &e.to_string()),
    }
}

/// Whether a data endpoint (`/metrics`, `/stats`, `/api/v1/...`) may be
/// served: no tokens configured, or a valid one sent.
fn authorized<B>(state: &ExporterState, req: &Request<B>) -> bool {
    state
        .metrics_auth
        .as_ref()
        .is_none_or(|tokens| tokens.verify(req.headers().get(AUTHORIZATION)))
}

fn metrics(state: &ExporterState) -> Response<Full<Bytes>> {
    let mut text = String::with_capacity(state.scrape_size_hint());
    if let Err(error) = prometheus_client::encoding::text::encode(&mut text, &state.registry) {
        tracing::error!(%error, "encoding metrics failed");
        return error_response_500();
    }
    state.record_scrape_size(text.len());
    let mut response = Response::new(Full::new(Bytes::from(text)));
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static(OPENMETRICS_CONTENT_TYPE),
    );
    response
}

fn status_page() -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(STATUS_PAGE.as_bytes())));
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(
        CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(STATUS_PAGE_CSP),
    );
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    no_store(response)
}

/// Marks a live answer as not cacheable.
fn no_store(mut response: Response<Full<Bytes>>) -> Response<Full<Bytes>> {
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn error_response_500() -> Response<Full<Bytes>> {
    error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "encoding_failed",
        "metrics could not be encoded",
    )
}

fn readyz(state: &ExporterState) -> Response<Full<Bytes>> {
    let ready = state.readiness.get();
    let status = if ready == ReadyState::Ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let mut body = JsonObject::new()
        .str("status", ready.as_str())
        .u64("uptime_seconds", state.started.elapsed().as_secs());
    for detail in state.readiness.details() {
        body = body.raw(detail.key(), &detail.to_json());
    }
    json(status, body.finish())
}
