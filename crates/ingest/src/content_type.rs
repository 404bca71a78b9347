//! The HTTP transport's choice of [`Framing`] for a `/logs` body, from its `Content-Type`,
//! and of the [`Coding`] to undo, from its `Content-Encoding` ([`check_encodings`]).
//!
//! * no `Content-Type`, or `application/json` → one JSON object, an array of objects, or
//!   concatenated objects;
//! * `application/x-ndjson` → newline-delimited JSON objects;
//! * `text/plain` → one access-log line (combined or common log format) per line;
//! * anything else → 415.
//!
//! The media type is compared case-insensitively and parameters
//! (`; charset=utf-8`) are ignored. The body must be UTF-8 either way (JSON
//! text is UTF-8, and access-log lines are read as UTF-8 too).

use hyper::header::{HeaderMap, HeaderValue, CONTENT_ENCODING, TRANSFER_ENCODING};

use crate::decode::Coding;
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
    } else if essence.eq_ignore_ascii_case(b"text/plain") {
        Ok(Framing::Lines)
    } else {
        Err(IngestError::UnsupportedMediaType {
            content_type: excerpt(bytes),
        })
    }
}

/// The body's [`Coding`], from its `Content-Encoding`, and the check that its
/// `Transfer-Encoding` is `chunked` alone if any (501 otherwise, e.g. `gzip, chunked`, which
/// hyper de-chunks but leaves compressed). One coding is decoded: `gzip` (or `x-gzip`),
/// `deflate` or `zstd`, besides `identity` tokens, which change nothing; stacked codings
/// (`gzip, zstd`, or on two header lines) and any other coding get 415. Every header line of
/// either is looked at; codings are compared case-insensitively. Absent headers, the common
/// case, cost two lookups.
///
/// # Errors
///
/// [`IngestError::UnsupportedContentEncoding`],
/// [`IngestError::UnsupportedTransferEncoding`].
pub fn check_encodings(headers: &HeaderMap) -> Result<Coding, IngestError> {
    for value in headers.get_all(TRANSFER_ENCODING) {
        if !value
            .as_bytes()
            .trim_ascii()
            .eq_ignore_ascii_case(b"chunked")
        {
            return Err(IngestError::UnsupportedTransferEncoding {
                encoding: excerpt(value.as_bytes()),
            });
        }
    }
    if headers.get_all(TRANSFER_ENCODING).iter().nth(1).is_some() {
        return Err(IngestError::UnsupportedTransferEncoding {
            encoding: "chunked, chunked".to_owned(),
        });
    }
    let mut coding = Coding::Identity;
    for value in headers.get_all(CONTENT_ENCODING) {
        let refused = || IngestError::UnsupportedContentEncoding {
            encoding: excerpt(value.as_bytes()),
        };
        for token in value
            .as_bytes()
            .split(|&b| b == b',')
            .map(<[u8]>::trim_ascii)
        {
            if token.is_empty() {
                continue;
            }
            match Coding::from_token(token) {
                Some(Coding::Identity) => {}
                Some(found) if coding == Coding::Identity => coding = found,
                _ => return Err(refused()),
            }
        }
    }
    Ok(coding)
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
    fn text_plain_is_access_log_lines() {
        for s in ["text/plain", "Text/Plain; charset=utf-8"] {
            assert_eq!(classify_str(s), Ok(Framing::Lines), "{s}");
        }
    }

    fn encodings(pairs: &[(&str, &str)]) -> Result<Coding, IngestError> {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(
                hyper::header::HeaderName::from_bytes(name.as_bytes()).expect("a name"),
                HeaderValue::from_str(value).expect("a value"),
            );
        }
        check_encodings(&headers)
    }

    #[test]
    fn one_known_coding_passes() {
        for (pairs, coding) in [
            (&[][..], Coding::Identity),
            (&[("content-encoding", "identity")], Coding::Identity),
            (
                &[("content-encoding", "Identity , identity")],
                Coding::Identity,
            ),
            (&[("content-encoding", "")], Coding::Identity),
            (&[("transfer-encoding", "chunked")], Coding::Identity),
            (&[("transfer-encoding", " Chunked ")], Coding::Identity),
            (&[("content-encoding", "gzip")], Coding::Gzip),
            (&[("content-encoding", "X-GZIP")], Coding::Gzip),
            (
                &[("content-encoding", "identity, deflate")],
                Coding::Deflate,
            ),
            (
                &[
                    ("content-encoding", "identity"),
                    ("content-encoding", "zstd"),
                ],
                Coding::Zstd,
            ),
            (
                &[
                    ("content-encoding", "zstd"),
                    ("transfer-encoding", "chunked"),
                ],
                Coding::Zstd,
            ),
        ] {
            assert_eq!(encodings(pairs), Ok(coding), "{pairs:?}");
        }
        for (pairs, code) in [
            (
                &[("content-encoding", "br")][..],
                "unsupported_content_encoding",
            ),
            (
                &[("content-encoding", "identity, br")],
                "unsupported_content_encoding",
            ),
            (
                &[("content-encoding", "gzip, zstd")],
                "unsupported_content_encoding",
            ),
            (
                &[("content-encoding", "gzip"), ("content-encoding", "gzip")],
                "unsupported_content_encoding",
            ),
            (
                &[
                    ("content-encoding", "identity"),
                    ("content-encoding", "compress"),
                ],
                "unsupported_content_encoding",
            ),
            (
                &[("transfer-encoding", "gzip, chunked")],
                "unsupported_transfer_encoding",
            ),
            (
                &[("transfer-encoding", "chunked, chunked")],
                "unsupported_transfer_encoding",
            ),
            (
                &[
                    ("transfer-encoding", "gzip"),
                    ("transfer-encoding", "chunked"),
                ],
                "unsupported_transfer_encoding",
            ),
            (
                &[
                    ("transfer-encoding", "chunked"),
                    ("transfer-encoding", "chunked"),
                ],
                "unsupported_transfer_encoding",
            ),
        ] {
            let error = encodings(pairs).expect_err("refused");
            assert_eq!(error.code(), code, "{pairs:?}");
        }
    }

    #[test]
    fn everything_else_is_unsupported() {
        for s in [
            "application/x-www-form-urlencoded",
            "text/plainx",
            "text/csv",
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
