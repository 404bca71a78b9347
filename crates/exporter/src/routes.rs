//! Routing and responses of the metrics server: `/metrics`, `/healthz`,
//! `/readyz`, the status page `/` and its `/status.json`, and the top pages
//! `/stats`, the time windows `/api/v1/unique` and `/api/v1/unique/series`, the groups
//! `/api/v1/groups` and `/api/v1/unique?group=NAME`;
//! anything else is a JSON 404 (or 405 for a wrong method).
//!
//! With metrics tokens configured, every request needs a valid bearer token
//! (else a JSON 401, decided before the path is even looked up) except those
//! to [`OPEN_PATHS`]: the probes and the status page's HTML shell, which holds
//! no data. Protection is the default, so a view added to [`ENDPOINTS`] later is
//! protected without anyone remembering to.

use std::sync::LazyLock;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{
    HeaderValue, ACCEPT, ALLOW, AUTHORIZATION, CACHE_CONTROL, CONTENT_SECURITY_POLICY,
    CONTENT_TYPE, VARY, WWW_AUTHENTICATE, X_CONTENT_TYPE_OPTIONS,
};
use hyper::{Method, Request, Response, StatusCode};
use uniqd_http::{json_error as error, json_response as json, JsonObject, WWW_AUTHENTICATE_BEARER};

use crate::exposition::{to_classic, Format};
use crate::groups::{asks_for_group, group_json, groups_json, GroupQueryError};
use crate::readiness::ReadyState;
use crate::shared_views::{pick_top_pages, pick_windows, Scope};
use crate::stats::{parse_limit, snapshot_json};
use crate::status::{status_json, STATUS_PAGE, STATUS_PAGE_CSP};
use crate::windows::{series_json, unique_json, WindowQueryError};
use crate::ExporterState;

/// An endpoint of the metrics port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    Metrics,
    Healthz,
    Readyz,
    StatusPage,
    StatusJson,
    Stats,
    Unique,
    Series,
    Groups,
}

/// The paths served without a bearer token even when metrics tokens are configured: the
/// liveness and readiness probes, and the status page's static HTML shell (its data comes
/// from `/status.json`, which needs the token; the page asks for one). Everything else is
/// protected.
pub const OPEN_PATHS: [&str; 3] = ["/healthz", "/readyz", "/"];

/// Every path the metrics port serves, in the routing table's order (for tests and docs that must
/// cover each route, such as "every route but the open ones needs the token").
pub fn served_paths() -> impl Iterator<Item = &'static str> {
    ENDPOINTS.iter().map(|&(path, _)| path)
}

/// Every path the metrics port serves: the one list routing, the 405s and the 404 message
/// read.
const ENDPOINTS: [(&str, Endpoint); 9] = [
    ("/metrics", Endpoint::Metrics),
    ("/healthz", Endpoint::Healthz),
    ("/readyz", Endpoint::Readyz),
    ("/", Endpoint::StatusPage),
    ("/status.json", Endpoint::StatusJson),
    ("/stats", Endpoint::Stats),
    ("/api/v1/unique", Endpoint::Unique),
    ("/api/v1/unique/series", Endpoint::Series),
    ("/api/v1/groups", Endpoint::Groups),
];

impl Endpoint {
    fn find(path: &str) -> Option<Self> {
        ENDPOINTS
            .iter()
            .find(|(known, _)| *known == path)
            .map(|&(_, endpoint)| endpoint)
    }
}

/// Whether a request to `path` needs the bearer token when tokens are configured: every path
/// but [`OPEN_PATHS`], known or not.
fn needs_token(path: &str) -> bool {
    !OPEN_PATHS.contains(&path)
}

/// The message of the 404: "no such endpoint; try /metrics, ..., /a or /b".
fn not_found_message() -> &'static str {
    static MESSAGE: LazyLock<String> = LazyLock::new(|| {
        let paths: Vec<&str> = ENDPOINTS.iter().map(|&(path, _)| path).collect();
        match paths.split_last() {
            Some((last, rest)) => format!("no such endpoint; try {} or {last}", rest.join(", ")),
            None => "no such endpoint".to_owned(),
        }
    });
    &MESSAGE
}

/// Serves one request to the metrics port.
pub(crate) fn handle<B>(state: &ExporterState, req: &Request<B>) -> Response<Full<Bytes>> {
    if needs_token(req.uri().path()) && !authorized(state, req) {
        let mut response = error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing or invalid bearer token; send the header Authorization: Bearer <token>",
        );
        response
            .headers_mut()
            .insert(WWW_AUTHENTICATE, WWW_AUTHENTICATE_BEARER);
        return response;
    }
    let Some(endpoint) = Endpoint::find(req.uri().path()) else {
        return error(StatusCode::NOT_FOUND, "not_found", not_found_message());
    };
    if !matches!(*req.method(), Method::GET | Method::HEAD) {
        let mut response = error(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "only GET and HEAD are supported here",
        );
        response
            .headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    let query = req.uri().query();
    match endpoint {
        Endpoint::Metrics => metrics(state, req),
        Endpoint::Healthz => json(
            StatusCode::OK,
            JsonObject::new().str("status", "ok").finish(),
        ),
        Endpoint::Readyz => readyz(state),
        Endpoint::StatusPage => status_page(),
        Endpoint::StatusJson => no_store(json(
            StatusCode::OK,
            status_json(&state.exported, state.started),
        )),
        Endpoint::Stats => stats(state, query),
        Endpoint::Unique if asks_for_group(query) => group(state, query),
        Endpoint::Unique => windows(state, query, unique_json),
        Endpoint::Series => windows(state, query, series_json),
        Endpoint::Groups => match state.exported.views().groups() {
            Some(groups) => no_store(json(
                StatusCode::OK,
                groups_json(groups, state.exported.shared_views()),
            )),
            None => groups_disabled(),
        },
    }
}

/// `/api/v1/unique?group=NAME`: 404 when groups are off or the group is not tracked, 400 for a
/// bad query.
fn group(state: &ExporterState, query: Option<&str>) -> Response<Full<Bytes>> {
    let Some(groups) = state.exported.views().groups() else {
        return groups_disabled();
    };
    match group_json(groups, state.exported.shared_views(), query) {
        Ok(body) => no_store(json(StatusCode::OK, body)),
        Err(e @ GroupQueryError::NotTracked(_)) => {
            error(StatusCode::NOT_FOUND, e.code(), &e.to_string())
        }
        Err(e) => error(StatusCode::BAD_REQUEST, e.code(), &e.to_string()),
    }
}

fn groups_disabled() -> Response<Full<Bytes>> {
    error(
        StatusCode::NOT_FOUND,
        "groups_disabled",
        "per-group counts are off (no --group-by)",
    )
}

/// `/stats?limit=N`: the top pages, or 404 when they are off, 400 for a bad `limit`.
fn stats(state: &ExporterState, query: Option<&str>) -> Response<Full<Bytes>> {
    let Some(top) = state.exported.views().top_pages() else {
        return error(
            StatusCode::NOT_FOUND,
            "top_pages_disabled",
            "top pages are off (--top-pages-capacity 0)",
        );
    };
    match parse_limit(query) {
        Ok(limit) => {
            let (snapshot, scope) = pick_top_pages(top, state.exported.shared_views(), limit);
            no_store(json(StatusCode::OK, snapshot_json(&snapshot, scope, limit)))
        }
        Err(e) => error(StatusCode::BAD_REQUEST, e.code(), &e.to_string()),
    }
}

/// A time-window endpoint: 404 when windows are off, 400 for a bad query.
fn windows(
    state: &ExporterState,
    query: Option<&str>,
    body: fn(&uniqd_core::WindowRing, Scope, Option<&str>) -> Result<String, WindowQueryError>,
) -> Response<Full<Bytes>> {
    let Some(ring) = state.exported.views().windows() else {
        return error(
            StatusCode::NOT_FOUND,
            "windows_disabled",
            "time windows are off (--windows off)",
        );
    };
    let (ring, scope) = pick_windows(ring, state.exported.shared_views());
    match body(&ring, scope, query) {
        Ok(body) => no_store(json(StatusCode::OK, body)),
        Err(e) => error(StatusCode::BAD_REQUEST, e.code(), &e.to_string()),
    }
}

/// Whether a protected path may be served: no tokens configured, or a valid one sent.
fn authorized<B>(state: &ExporterState, req: &Request<B>) -> bool {
    state
        .metrics_auth
        .as_ref()
        .is_none_or(|tokens| tokens.verify(req.headers().get(AUTHORIZATION)))
}

/// `/metrics`: OpenMetrics or the classic text format, as `Accept` asks (see
/// [`crate::exposition`]).
fn metrics<B>(state: &ExporterState, req: &Request<B>) -> Response<Full<Bytes>> {
    let format = Format::negotiate(
        req.headers()
            .get(ACCEPT)
            .and_then(|value| value.to_str().ok()),
    );
    let mut text = String::with_capacity(state.scrape_size_hint());
    if let Err(error) = prometheus_client::encoding::text::encode(&mut text, &state.registry) {
        tracing::error!(%error, "encoding metrics failed");
        return error_response_500();
    }
    state.record_scrape_size(text.len());
    if format == Format::Classic {
        text = to_classic(&text);
    }
    let mut response = Response::new(Full::new(Bytes::from(text)));
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    headers.insert(VARY, HeaderValue::from_static("Accept"));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_not_found_message_lists_every_path() {
        assert_eq!(
            not_found_message(),
            "no such endpoint; try /metrics, /healthz, /readyz, /, /status.json, /stats, \
             /api/v1/unique, /api/v1/unique/series or /api/v1/groups"
        );
        for (path, endpoint) in ENDPOINTS {
            assert_eq!(Endpoint::find(path), Some(endpoint));
        }
        assert_eq!(Endpoint::find("/metrics/"), None);
    }

    #[test]
    fn only_the_open_paths_are_open() {
        for path in OPEN_PATHS {
            assert!(Endpoint::find(path).is_some(), "{path} is served");
            assert!(!needs_token(path), "{path}");
        }
        let protected: Vec<&str> = served_paths().filter(|p| needs_token(p)).collect();
        assert_eq!(
            protected,
            [
                "/metrics",
                "/status.json",
                "/stats",
                "/api/v1/unique",
                "/api/v1/unique/series",
                "/api/v1/groups"
            ]
        );
        // Unknown paths, and paths that only look like open ones, are protected too.
        for path in [
            "/nope",
            "/healthz/",
            "//",
            "/status.json/",
            "/api/v1/unique/",
        ] {
            assert!(needs_token(path), "{path}");
        }
    }
}
