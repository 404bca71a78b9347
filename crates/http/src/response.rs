//! JSON responses: the body type both servers answer with and the one place
//! that turns a status and a JSON text into a response. Each server maps
//! its own errors to a status, a code and a message (ingest's `IngestError`,
//! the exporter's routes) and hands the JSON to [`json_response`].

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Response, StatusCode};

use crate::json::JsonObject;

/// The body of every response the uniqd servers produce: one buffer.
pub type ResponseBody = Full<Bytes>;

/// `Content-Type` of every JSON response.
pub const APPLICATION_JSON: HeaderValue = HeaderValue::from_static("application/json");

/// A `status` response carrying `body` (JSON text) as `application/json`.
#[must_use]
pub fn json_response(status: StatusCode, body: impl Into<Bytes>) -> Response<ResponseBody> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, APPLICATION_JSON);
    response
}

/// A `status` response with the error body both servers use:
/// `{"error": code, "message": message}`.
#[must_use]
pub fn json_error(status: StatusCode, code: &str, message: &str) -> Response<ResponseBody> {
    json_response(
        status,
        JsonObject::new()
            .str("error", code)
            .str("message", message)
            .finish(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_responses_carry_status_type_and_body() {
        let response = json_error(StatusCode::NOT_FOUND, "not_found", "no \"such\" path");
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert_eq!(response.headers()[CONTENT_TYPE], "application/json");
        let body = response.into_body();
        let text = format!("{body:?}");
        assert!(text.contains(r#"{\"error\":\"not_found\""#), "{text}");
    }
}
