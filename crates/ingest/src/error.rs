//! Everything that can go wrong with an ingest request, and the single place
//! where each error becomes an HTTP status, headers and a JSON body.
//!
//! Every error body is a JSON object with at least `error` (a stable
//! snake_case code) and `message` (human text), served as
//! `Content-Type: application/json`. Batch-related errors add `accepted`,
//! `rejected` and (for 400) `errors`: the first
//! [`MAX_REPORTED_ERRORS`](crate::framing::ndjson::MAX_REPORTED_ERRORS) failures as
//! `{"line": n, "error": code, "message": text}`.
//!
//! Lines of an NDJSON batch are counted as they stream in, so a batch that is
//! cut short (413 over the size limit, 408 body timeout, 400 unreadable body)
//! may already have counted some lines; the error body reports how many in
//! `accepted`, and `counted_through_line`: every line up to that one (1-based,
//! blank lines included) was counted or rejected, none after it was looked at,
//! so a shipper resends only the lines after it. Re-sending counted lines is
//! not harmless for every view: unique counts are idempotent, but the top pages
//! and the accepted-line counters add them again (README, "Retries"). An error
//! without `accepted` counted nothing.

use bytes::Bytes;
use hyper::header::{
    HeaderValue, ACCEPT_ENCODING, ALLOW, CONNECTION, RETRY_AFTER, WWW_AUTHENTICATE,
};
use hyper::{Response, StatusCode};
use uniqd_http::{json_response, BodyError, JsonObject, ResponseBody, WWW_AUTHENTICATE_BEARER};

use crate::fields::LineError;
use crate::framing::ndjson::{BatchReport, Unit};
use crate::metrics::RequestOutcome;

/// A failed ingest request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IngestError {
    /// 404: the path is not `/logs`.
    NotFound,
    /// 405: `/logs` with a method other than POST.
    MethodNotAllowed,
    /// 401: authentication is on and the request has no valid bearer token.
    Unauthorized,
    /// 415: a `Content-Type` other than JSON / NDJSON.
    UnsupportedMediaType {
        /// The header as received (lossy, truncated).
        content_type: String,
    },
    /// 415: a `Content-Encoding` uniqd does not decode (anything but `gzip`,
    /// `deflate`, `zstd` and `identity`, or two codings stacked).
    UnsupportedContentEncoding {
        /// The header as received (lossy, truncated).
        encoding: String,
    },
    /// 501: a `Transfer-Encoding` other than `chunked` (e.g. `gzip, chunked`).
    UnsupportedTransferEncoding {
        /// The header as received (lossy, truncated).
        encoding: String,
    },
    /// 400: the body's `Content-Encoding` does not decode (malformed, or
    /// cut short).
    InvalidEncoding {
        /// The coding, as named in `Content-Encoding`.
        encoding: &'static str,
        /// Lines or elements already processed from the bytes decoded before.
        progress: Option<BatchReport>,
    },
    /// 400: the body is empty (or, for NDJSON, holds only blank lines).
    EmptyBody,
    /// 413: the body is over the limit.
    PayloadTooLarge {
        /// The limit that applied, in bytes.
        limit: usize,
        /// `true` if rejected from `Content-Length` before reading anything.
        declared: bool,
        /// Lines of an NDJSON batch already processed before the limit hit.
        progress: Option<BatchReport>,
    },
    /// 400: a single-object body that is not an acceptable log object.
    InvalidObject(LineError),
    /// 400: an NDJSON batch with at least one bad line (the good ones were
    /// counted).
    InvalidLines(BatchReport),
    /// 408: no body data arrived within the body-read timeout.
    BodyTimeout {
        /// Lines of an NDJSON batch already processed.
        progress: Option<BatchReport>,
    },
    /// 400: the body could not be read (e.g. malformed chunked encoding, or
    /// the client went away mid-body).
    BodyRead {
        /// Lines of an NDJSON batch already processed.
        progress: Option<BatchReport>,
    },
    /// 503: buffering the body would pass the budget for request bytes all
    /// connections hold (`--max-buffered-bytes`).
    BuffersFull {
        /// Lines of an NDJSON batch already processed.
        progress: Option<BatchReport>,
    },
}

/// `Retry-After` of a 503: the budget frees as soon as other bodies finish.
const RETRY_AFTER_SECONDS: HeaderValue = HeaderValue::from_static("1");

impl IngestError {
    /// Maps a body-read failure, keeping the batch progress if any.
    #[must_use]
    pub fn from_body(error: &BodyError, progress: Option<BatchReport>) -> Self {
        match error {
            BodyError::Timeout => Self::BodyTimeout { progress },
            BodyError::Read(_) => Self::BodyRead { progress },
        }
    }

    /// The HTTP status.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        match self {
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::UnsupportedMediaType { .. } | Self::UnsupportedContentEncoding { .. } => {
                StatusCode::UNSUPPORTED_MEDIA_TYPE
            }
            Self::UnsupportedTransferEncoding { .. } => StatusCode::NOT_IMPLEMENTED,
            Self::BuffersFull { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::BodyTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            Self::EmptyBody
            | Self::InvalidObject(_)
            | Self::InvalidLines(_)
            | Self::InvalidEncoding { .. }
            | Self::BodyRead { .. } => StatusCode::BAD_REQUEST,
        }
    }

    /// The request-metrics outcome.
    #[must_use]
    pub fn outcome(&self) -> RequestOutcome {
        match self {
            Self::NotFound => RequestOutcome::NotFound,
            Self::MethodNotAllowed => RequestOutcome::MethodNotAllowed,
            Self::Unauthorized => RequestOutcome::Unauthorized,
            Self::UnsupportedMediaType { .. } | Self::UnsupportedContentEncoding { .. } => {
                RequestOutcome::UnsupportedMediaType
            }
            Self::UnsupportedTransferEncoding { .. } => RequestOutcome::NotImplemented,
            Self::BuffersFull { .. } => RequestOutcome::ServiceUnavailable,
            Self::PayloadTooLarge { .. } => RequestOutcome::PayloadTooLarge,
            Self::BodyTimeout { .. } => RequestOutcome::RequestTimeout,
            Self::EmptyBody
            | Self::InvalidObject(_)
            | Self::InvalidLines(_)
            | Self::InvalidEncoding { .. }
            | Self::BodyRead { .. } => RequestOutcome::BadRequest,
        }
    }

    /// The machine-readable `error` code of the body.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotFound => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::Unauthorized => "unauthorized",
            Self::UnsupportedMediaType { .. } => "unsupported_media_type",
            Self::UnsupportedContentEncoding { .. } => "unsupported_content_encoding",
            Self::UnsupportedTransferEncoding { .. } => "unsupported_transfer_encoding",
            Self::EmptyBody => "empty_body",
            Self::PayloadTooLarge { .. } => "payload_too_large",
            Self::InvalidObject(e) => e.code(),
            Self::InvalidLines(r) if r.unit == Unit::Element => "invalid_elements",
            Self::InvalidLines(_) => "invalid_lines",
            Self::InvalidEncoding { .. } => "invalid_encoding",
            Self::BodyTimeout { .. } => "body_timeout",
            Self::BodyRead { .. } => "body_read_error",
            Self::BuffersFull { .. } => "server_busy",
        }
    }

    /// Lines `(accepted, invalid)` this request contributed, for the line
    /// counters.
    #[must_use]
    pub fn line_counts(&self) -> (u64, u64) {
        match self {
            Self::InvalidObject(_) => (0, 1),
            Self::InvalidLines(report) => (report.accepted, report.rejected),
            Self::PayloadTooLarge { progress, .. }
            | Self::BodyTimeout { progress }
            | Self::BodyRead { progress }
            | Self::InvalidEncoding { progress, .. }
            | Self::BuffersFull { progress } => progress
                .as_ref()
                .map_or((0, 0), |p| (p.accepted, p.rejected)),
            Self::NotFound
            | Self::MethodNotAllowed
            | Self::Unauthorized
            | Self::UnsupportedMediaType { .. }
            | Self::UnsupportedContentEncoding { .. }
            | Self::UnsupportedTransferEncoding { .. }
            | Self::EmptyBody => (0, 0),
        }
    }

    /// Whether the request body may be left partly unread, in which case
    /// the connection cannot be reused.
    fn closes_connection(&self) -> bool {
        matches!(
            self,
            Self::PayloadTooLarge { .. }
                | Self::BodyTimeout { .. }
                | Self::BodyRead { .. }
                | Self::InvalidEncoding { .. }
                | Self::Unauthorized
                | Self::UnsupportedTransferEncoding { .. }
                | Self::BuffersFull { .. }
        )
    }

    fn message(&self) -> String {
        match self {
            Self::NotFound => "no such endpoint; logs are posted to /logs".to_owned(),
            Self::MethodNotAllowed => "/logs only accepts POST".to_owned(),
            Self::Unauthorized => "missing or invalid bearer token; send the header \
                                   Authorization: Bearer <token>"
                .to_owned(),
            Self::UnsupportedMediaType { content_type } => format!(
                "unsupported Content-Type {content_type:?}; send application/json (one object), \
                 application/x-ndjson (one object per line) or text/plain (one combined or \
                 common log format line per line)"
            ),
            Self::UnsupportedContentEncoding { encoding } => format!(
                "unsupported Content-Encoding {encoding:?}; send the body compressed with one \
                 of gzip, deflate (zlib) or zstd, or uncompressed (identity)"
            ),
            Self::UnsupportedTransferEncoding { encoding } => format!(
                "unsupported Transfer-Encoding {encoding:?}; send the body with a \
                 Content-Length, or with Transfer-Encoding: chunked alone"
            ),
            Self::EmptyBody => "the request body is empty; expected a JSON object with an \"ip\" \
                                field, an array of them, or NDJSON lines of such objects"
                .to_owned(),
            Self::InvalidEncoding { encoding, progress } => format!(
                "the body is not valid {encoding} data, or is cut short; {}",
                progress.as_ref().map_or_else(
                    || "nothing was counted".to_owned(),
                    |p| format!("{}, resend only the rest", counted_through(p))
                )
            ),
            Self::PayloadTooLarge {
                limit,
                declared: true,
                ..
            } => format!("Content-Length exceeds the {limit}-byte limit for this content type"),
            Self::PayloadTooLarge {
                limit,
                progress: Some(p),
                ..
            } if p.unit == Unit::Element => format!(
                "request body exceeds the {limit}-byte limit for this content type; {}, resend \
                 only the rest, in smaller batches",
                counted_through(p)
            ),
            Self::PayloadTooLarge {
                limit,
                progress: Some(p),
                ..
            } => format!(
                "request body exceeds the {limit}-byte limit for this content type; reading \
                 stopped after line {}: lines up to it were counted (see accepted), resend only \
                 the lines after it, in smaller batches",
                p.through_line
            ),
            Self::PayloadTooLarge { limit, .. } => format!(
                "request body exceeds the {limit}-byte limit for this content type; nothing \
                 was counted"
            ),
            Self::InvalidObject(e) => e.to_string(),
            Self::InvalidLines(r) if r.unit == Unit::Element => format!(
                "{} of {} elements were rejected; the other elements were counted",
                r.rejected,
                r.lines()
            ),
            Self::InvalidLines(r) => format!(
                "{} of {} lines were rejected; the other lines were counted",
                r.rejected,
                r.lines()
            ),
            Self::BodyTimeout { progress: Some(p) } if p.unit == Unit::Element => format!(
                "timed out waiting for the request body; {}, resend only the rest",
                counted_through(p)
            ),
            Self::BodyTimeout { progress: Some(p) } => format!(
                "timed out waiting for the request body; lines up to line {} were counted (see \
                 accepted), resend only the lines after it",
                p.through_line
            ),
            Self::BodyTimeout { progress: None } => {
                "timed out waiting for the request body; nothing was counted".to_owned()
            }
            Self::BodyRead { progress: Some(p) } if p.unit == Unit::Element => format!(
                "the request body could not be read; {}, resend only the rest",
                counted_through(p)
            ),
            Self::BodyRead { progress: Some(p) } => format!(
                "the request body could not be read; lines up to line {} were counted (see \
                 accepted), resend only the lines after it",
                p.through_line
            ),
            Self::BodyRead { progress: None } => {
                "the request body could not be read; nothing was counted".to_owned()
            }
            Self::BuffersFull { progress: Some(p) } if p.unit == Unit::Element => format!(
                "the server is holding as many partly received request bodies as it may \
                 buffer; {}, retry the rest shortly",
                counted_through(p)
            ),
            Self::BuffersFull { progress: Some(p) } => format!(
                "the server is holding as many partly received request bodies as it may \
                 buffer; lines up to line {} were counted (see accepted), retry the lines \
                 after it shortly",
                p.through_line
            ),
            Self::BuffersFull { progress: None } => "the server is holding as many partly \
                                                     received request bodies as it may buffer; \
                                                     nothing was counted, retry shortly"
                .to_owned(),
        }
    }

    fn body(&self) -> String {
        let mut obj = JsonObject::with_capacity(128)
            .str("error", self.code())
            .str("message", &self.message());
        match self {
            Self::PayloadTooLarge {
                limit, progress, ..
            } => {
                obj = obj.u64("limit", u64::try_from(*limit).unwrap_or(u64::MAX));
                if let Some(p) = progress {
                    obj = progress_members(obj, p);
                }
            }
            Self::BodyTimeout {
                progress: Some(p), ..
            }
            | Self::BodyRead {
                progress: Some(p), ..
            }
            | Self::BuffersFull {
                progress: Some(p), ..
            }
            | Self::InvalidEncoding {
                progress: Some(p), ..
            } => {
                obj = progress_members(obj, p);
            }
            Self::InvalidLines(r) => {
                obj = progress_members(obj, r).raw("errors", &errors_array(r));
            }
            _ => {}
        }
        obj.finish()
    }

    /// The complete HTTP response for this error.
    #[must_use]
    pub fn into_response(self) -> Response<ResponseBody> {
        let mut response = json_response(self.status(), self.body());
        let headers = response.headers_mut();
        match self {
            Self::MethodNotAllowed => {
                headers.insert(ALLOW, HeaderValue::from_static("POST"));
            }
            Self::Unauthorized => {
                headers.insert(WWW_AUTHENTICATE, WWW_AUTHENTICATE_BEARER);
            }
            Self::BuffersFull { .. } => {
                headers.insert(RETRY_AFTER, RETRY_AFTER_SECONDS);
            }
            // RFC 7694: the codings the server accepts.
            Self::UnsupportedContentEncoding { .. } => {
                headers.insert(ACCEPT_ENCODING, ACCEPTED_ENCODINGS);
            }
            _ => {}
        }
        if self.closes_connection() {
            headers.insert(CONNECTION, HeaderValue::from_static("close"));
        }
        response
    }
}

/// `Accept-Encoding` of a 415 for the coding (RFC 7694): what `POST /logs` decodes.
const ACCEPTED_ENCODINGS: HeaderValue = HeaderValue::from_static("gzip, deflate, zstd, identity");

/// `accepted`, `rejected` and where to resume: `counted_through_line` for NDJSON lines,
/// `next_index` (the first element not looked at) for JSON elements.
fn progress_members(obj: JsonObject, p: &BatchReport) -> JsonObject {
    let obj = obj.u64("accepted", p.accepted).u64("rejected", p.rejected);
    match p.unit {
        Unit::Line => obj.u64("counted_through_line", p.through_line),
        Unit::Element => obj.u64("next_index", p.through_line),
    }
}

/// Where a cut-short body stopped, in words.
fn counted_through(p: &BatchReport) -> String {
    match p.unit {
        Unit::Line => format!(
            "lines up to line {} were counted (see accepted)",
            p.through_line
        ),
        Unit::Element => format!(
            "the elements before index {} were counted or rejected (see accepted, next_index)",
            p.through_line
        ),
    }
}

fn errors_array(report: &BatchReport) -> String {
    let (key, word) = match report.unit {
        Unit::Line => ("line", "line"),
        Unit::Element => ("index", "element"),
    };
    let mut out = String::with_capacity(64 * report.errors.len() + 2);
    out.push('[');
    for (i, failure) in report.errors.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(
            &JsonObject::new()
                .u64(key, failure.line)
                .str("error", failure.error.code())
                .str(
                    "message",
                    &format!("{word} {}: {}", failure.line, failure.error),
                )
                .finish(),
        );
    }
    out.push(']');
    out
}

/// A `202 Accepted` response: `{"accepted": n}`.
#[must_use]
pub fn accepted_response(lines: u64) -> Response<ResponseBody> {
    let body = if lines == 1 {
        // The single-object hot path: a static body, no allocation.
        Bytes::from_static(b"{\"accepted\":1}")
    } else {
        Bytes::from(JsonObject::new().u64("accepted", lines).finish())
    };
    json_response(StatusCode::ACCEPTED, body)
}

/// Truncates an untrusted header value for inclusion in a message (it is
/// JSON-escaped when the body is written).
pub(crate) fn excerpt(bytes: &[u8]) -> String {
    const KEEP: usize = 100;
    String::from_utf8_lossy(&bytes[..bytes.len().min(KEEP)]).into_owned()
}

#[cfg(test)]
mod tests {
    use hyper::header::CONTENT_TYPE;

    use super::*;
    use crate::framing::ndjson::LineFailure;

    fn body_of(e: IngestError) -> (StatusCode, String) {
        let status = e.status();
        (status, e.body())
    }

    #[test]
    fn statuses_and_codes() {
        assert_eq!(body_of(IngestError::NotFound).0, StatusCode::NOT_FOUND);
        assert_eq!(IngestError::EmptyBody.code(), "empty_body");
        assert_eq!(
            IngestError::InvalidObject(LineError::MissingIp).code(),
            "missing_ip"
        );
        let r = IngestError::MethodNotAllowed.into_response();
        assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(r.headers()[ALLOW], "POST");
        assert_eq!(r.headers()[CONTENT_TYPE], "application/json");
    }

    #[test]
    fn batch_error_body_lists_failures() {
        let report = BatchReport {
            accepted: 2,
            rejected: 1,
            errors: vec![LineFailure {
                line: 3,
                error: LineError::invalid_ip("x\"y"),
            }],
            through_line: 4,
            unit: Unit::Line,
        };
        let (status, body) = body_of(IngestError::InvalidLines(report));
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(body.starts_with(r#"{"error":"invalid_lines","#), "{body}");
        assert!(
            body.contains(
                r#""accepted":2,"rejected":1,"counted_through_line":4,"errors":[{"line":3,"error":"invalid_ip","message":"#
            ),
            "{body}"
        );
        assert!(body.contains(r#"x\\\"y"#), "{body}");
    }

    #[test]
    fn too_large_reports_progress_and_closes() {
        let e = IngestError::PayloadTooLarge {
            limit: 10,
            declared: false,
            progress: Some(BatchReport {
                accepted: 7,
                through_line: 9,
                ..BatchReport::default()
            }),
        };
        assert_eq!(e.line_counts(), (7, 0));
        let (_, body) = body_of(e.clone());
        assert!(
            body.contains(r#""limit":10,"accepted":7,"rejected":0,"counted_through_line":9"#),
            "{body}"
        );
        assert_eq!(e.into_response().headers()[CONNECTION], "close");
    }

    #[test]
    fn accepted_bodies() {
        let r = accepted_response(1);
        assert_eq!(r.status(), StatusCode::ACCEPTED);
        let r = accepted_response(12);
        assert_eq!(r.headers()[CONTENT_TYPE], "application/json");
    }
}
