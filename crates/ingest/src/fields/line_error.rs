//! Why one log (a JSON object, an NDJSON line, an access-log line) was rejected: [`LineError`],
//! with its stable code and its human message.

use std::fmt;

use super::json_error::locate;

/// Why a line (or a single-object body) was rejected.
///
/// [`LineError::code`] is the stable machine-readable code used in HTTP error
/// bodies; `Display` is the human text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineError {
    /// Not syntactically valid JSON (including trailing data and nesting
    /// deeper than 1024).
    InvalidJson {
        /// Byte offset of the problem in the object (for NDJSON, in its line); the input's
        /// length when it ended too early.
        offset: usize,
        /// What is wrong, in JSON terms (`super::json_error`).
        reason: &'static str,
    },
    /// The bytes are not valid UTF-8 (JSON text must be).
    InvalidUtf8,
    /// Valid JSON, but the top-level value is not an object.
    NotAnObject,
    /// The object has no top-level `ip` member.
    MissingIp,
    /// The (last) `ip` member is not a string.
    IpNotString,
    /// The `ip` string is not an IPv4 or IPv6 address. Produced by the
    /// caller after asking the counter, never by [`parse_line`](super::parse::parse_line).
    InvalidIp {
        /// The offending value, truncated to 64 bytes for the error message.
        value: String,
    },
    /// An NDJSON line longer than the per-object size limit. Produced by the
    /// batch splitter, never by [`parse_line`](super::parse::parse_line).
    LineTooLong {
        /// The limit in bytes.
        limit: usize,
    },
    /// A `text/plain` line that is not a combined or common log line
    /// ([`super::clf`]).
    InvalidLogLine {
        /// Byte offset of the problem in the line.
        offset: usize,
        /// What was expected there.
        reason: &'static str,
    },
}

impl LineError {
    /// This error (an [`LineError::InvalidJson`] from simd-json) made precise: the first
    /// offending byte of `input` and what is wrong there, when the validator
    /// (`json_error::locate`) finds it. `input` must be the bytes as received: simd-json
    /// decodes strings in place, so its own copy may have changed.
    #[cold]
    #[must_use]
    pub fn refine(self, input: &[u8]) -> Self {
        match (&self, locate(input)) {
            (Self::InvalidJson { .. }, Some((offset, reason))) => {
                Self::InvalidJson { offset, reason }
            }
            _ => self,
        }
    }

    /// Stable machine-readable error code (snake_case), used in JSON bodies.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidJson { .. } => "invalid_json",
            Self::InvalidUtf8 => "invalid_utf8",
            Self::NotAnObject => "not_an_object",
            Self::MissingIp => "missing_ip",
            Self::IpNotString => "ip_not_a_string",
            Self::InvalidIp { .. } => "invalid_ip",
            Self::LineTooLong { .. } => "line_too_long",
            Self::InvalidLogLine { .. } => "invalid_log_line",
        }
    }

    /// Builds [`LineError::InvalidIp`], keeping at most 64 bytes of `value`
    /// (cut on a char boundary) so error bodies stay small.
    #[must_use]
    pub fn invalid_ip(value: &str) -> Self {
        const KEEP: usize = 64;
        let mut end = value.len().min(KEEP);
        while !value.is_char_boundary(end) {
            end -= 1;
        }
        Self::InvalidIp {
            value: value[..end].to_owned(),
        }
    }
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidJson { offset, reason } => {
                write!(f, "invalid JSON at byte {offset}: {reason}")
            }
            Self::InvalidUtf8 => f.write_str("not valid UTF-8"),
            Self::NotAnObject => f.write_str("expected a JSON object"),
            Self::MissingIp => f.write_str(
                "the object has no address field (\"ip\", or another name of --ip-field)",
            ),
            Self::IpNotString => f.write_str("the \"ip\" field is not a string"),
            Self::InvalidIp { value } => {
                write!(
                    f,
                    "the \"ip\" field is not an IPv4 or IPv6 address: {value:?}"
                )
            }
            Self::InvalidLogLine { offset, reason } => write!(
                f,
                "not a combined or common log line, at byte {offset}: {reason}"
            ),
            Self::LineTooLong { limit } => {
                write!(f, "line is longer than the {limit}-byte object limit")
            }
        }
    }
}

impl std::error::Error for LineError {}
