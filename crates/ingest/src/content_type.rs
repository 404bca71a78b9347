//! The HTTP transport's choice of [`Framing`] for a `/logs` body, from its `Content-Type`.
//!
//! * no `Content-Type`, or `application/json` → one JSON object;
//! * `application/x-ndjson` → newline-delimited JSON objects;
//! * anything else → 415.
//!
//! The media type is compared case-insensitively and parameters
//! (`; charset=utf-8`) are ignored. The body must be UTF-8 either way, since
//! JSON text is UTF-8.

use hyper::header::HeaderValue;

use crate::error::{excerpt, IngestError};
use crate::framing::Framing;

/// Classifies a request's `Content-Type` header.
///
/// # Errors
///
/// [`IngestError::UnsupportedMediaType`] for any other media type.
pub fn classify(content_type: Option<&HeaderValue>) -> Result<Framing, IngestError> {
    let Some(value) = content_type else {
        return Ok(Framing::Object);
    };
    let bytes = value.as_bytes();
    let essence = bytes
        .split(|&b| b == b';')
        .next()
        .unwrap_or_default()
        .trim_ascii();
    if essence.eq_ignore_ascii_case(b"application/json") {
        Ok(Framing::Object)
    } else if essence.eq_ignore_ascii_case(b"application/x-ndjson") {
        Ok(Framing::Ndjson)
    } else {
        Err(IngestError::UnsupportedMediaType {
            content_type: excerpt(bytes),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classify_str(s: &str) -> Result<Framing, IngestError> {
        classify(Some(&HeaderValue::from_str(s).expect("valid header")))
    }

    #[test]
    fn json_variants() {
        assert_eq!(classify(None), Ok(Framing::Object));
        for s in [
            "application/json",
            "Application/JSON",
            "application/json; charset=utf-8",
            "application/json;charset=UTF-8",
            " application/json ",
        ] {
            assert_eq!(classify_str(s), Ok(Framing::Object), "{s}");
        }
    }

    #[test]
    fn ndjson_variants() {
        for s in [
            "application/x-ndjson",
            "application/X-NDJSON; charset=utf-8",
        ] {
            assert_eq!(classify_str(s), Ok(Framing::Ndjson), "{s}");
        }
    }

    #[test]
    fn everything_else_is_unsupported() {
        for s in [
            "application/x-www-form-urlencoded",
            "text/plain",
            "",
            "application/jsonx",
            "multipart/form-data; boundary=x",
        ] {
            assert!(
                matches!(
                    classify_str(s),
                    Err(IngestError::UnsupportedMediaType { .. })
                ),
                "{s}"
            );
        }
    }
}
