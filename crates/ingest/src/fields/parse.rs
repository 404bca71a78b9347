//! The full parser of the fields stage: the top-level `ip`, `url` and `timestamp` of any
//! JSON log object, with simd-json and without building a DOM. The fast scanner
//! ([`super::scan`]) reads the common plain lines; every other line comes here.
//!
//! [`parse_fields`] (and [`parse_line`], its `ip` only) is a pure function (input bytes +
//! reusable [`Scratch`] in, borrowed [`LogFields`] or [`LineError`] out) so it can be wrapped
//! directly by a cargo-fuzz target:
//!
//! ```
//! use uniqd_ingest::fields::parse::{parse_line, Scratch};
//! let mut scratch = Scratch::new();
//! let mut line = br#"{"timestamp": "2020-06-24T15:27:00Z", "ip": "83.150.59.250"}"#.to_vec();
//! assert_eq!(parse_line(&mut line, &mut scratch), Ok("83.150.59.250"));
//! ```
//!
//! # How it works
//!
//! simd-json parses the line (in place: string escapes are decoded into the
//! input buffer, hence `&mut [u8]`) into a flat *tape* of nodes. The tape is
//! walked here by hand: the root must be an object; for each key/value pair
//! the value is skipped by its node count (`Object`/`Array` nodes record how
//! many nodes they contain), so nested values cost O(1) to skip and nothing
//! recurses, however deep the input nests (simd-json itself bounds depth at
//! 1024 and reports deeper input as invalid JSON).
//!
//! # Semantics
//!
//! * Only the top-level `ip`, `url` and `timestamp` members are read; every
//!   other member may hold any valid JSON value and is ignored, and so are a
//!   `url` or `timestamp` that is not a string. A missing `ip`, or one that is
//!   not a string, rejects the object.
//! * **Duplicate keys: the last one wins**, as in JavaScript's
//!   `JSON.parse`, Go's `encoding/json` and Python's `json`. Only the last
//!   occurrence is type-checked: `{"ip": 1, "ip": "1.2.3.4"}` is accepted.
//! * Keys are compared after unescaping, so `{"\u0069p": "..."}` is the `ip` key.
//! * The returned string is the unescaped JSON string; deciding whether it is
//!   an IP address is the counter's job (`UniqueCounter::insert_str`).
//!
//! # Allocation
//!
//! [`Scratch`] keeps simd-json's [`Buffers`] and the tape's node vector
//! between calls, so once warmed up to the longest line seen, parsing
//! allocates nothing on the success path (errors allocate their message).

use std::fmt;

use simd_json::{Buffers, Node, Tape};

use super::json_error::{locate, phrase};

/// Reusable parser state: simd-json's stage-1/stage-2 buffers and the tape.
///
/// Keep one per thread (or per worker) and pass it to every [`parse_line`]
/// call; it grows to fit the longest line parsed and is then reused.
pub struct Scratch {
    buffers: Buffers,
    /// Tape storage between calls. Always empty at rest, so its `'static`
    /// lifetime borrows nothing; [`Tape::reset`] re-lifetimes it per call.
    nodes: Vec<Node<'static>>,
}

impl Scratch {
    /// Creates empty scratch buffers (they grow on first use).
    #[must_use]
    pub fn new() -> Self {
        Self {
            buffers: Buffers::new(256),
            nodes: Vec::new(),
        }
    }
}

impl Default for Scratch {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Scratch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scratch")
            .field("tape_capacity", &self.nodes.capacity())
            .finish_non_exhaustive()
    }
}

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
    /// caller after asking the counter, never by [`parse_line`].
    InvalidIp {
        /// The offending value, truncated to 64 bytes for the error message.
        value: String,
    },
    /// An NDJSON line longer than the per-object size limit. Produced by the
    /// batch splitter, never by [`parse_line`].
    LineTooLong {
        /// The limit in bytes.
        limit: usize,
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
            Self::MissingIp => f.write_str("the object has no \"ip\" field"),
            Self::IpNotString => f.write_str("the \"ip\" field is not a string"),
            Self::InvalidIp { value } => {
                write!(
                    f,
                    "the \"ip\" field is not an IPv4 or IPv6 address: {value:?}"
                )
            }
            Self::LineTooLong { limit } => {
                write!(f, "line is longer than the {limit}-byte object limit")
            }
        }
    }
}

impl std::error::Error for LineError {}

/// The top-level fields of one log object that uniqd reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogFields<'a> {
    /// The `ip` string (not yet checked to be an address).
    pub ip: &'a str,
    /// The `url` string, if present and a string (other types are ignored).
    pub url: Option<&'a str>,
    /// The `timestamp` string, if present and a string (other types are ignored).
    pub timestamp: Option<&'a str>,
}

/// Parses one JSON object and returns its top-level `ip` string.
///
/// `buf` is modified in place (simd-json decodes string escapes into it); the
/// returned `&str` borrows from it. Leading/trailing JSON whitespace is
/// allowed; anything after the object is an error. See the [module
/// docs](self) for the exact semantics.
///
/// # Errors
///
/// [`LineError::InvalidJson`], [`LineError::InvalidUtf8`],
/// [`LineError::NotAnObject`], [`LineError::MissingIp`] or
/// [`LineError::IpNotString`].
pub fn parse_line<'a>(buf: &'a mut [u8], scratch: &mut Scratch) -> Result<&'a str, LineError> {
    parse_fields(buf, scratch).map(|fields| fields.ip)
}

/// Parses one JSON object and returns its top-level `ip`, `url` and
/// `timestamp` in one walk of the tape; errors as [`parse_line`]. For `url`
/// and `timestamp`, as for `ip`, the last duplicate wins.
///
/// # Errors
///
/// As [`parse_line`].
pub fn parse_fields<'a>(
    buf: &'a mut [u8],
    scratch: &mut Scratch,
) -> Result<LogFields<'a>, LineError> {
    // The stored vector is empty, so re-lifetiming it to `'a` is free.
    let mut tape: Tape<'a> = Tape(std::mem::take(&mut scratch.nodes)).reset();
    let len = buf.len();
    let result = match simd_json::fill_tape(buf, &mut scratch.buffers, &mut tape) {
        Ok(()) => find_fields(&tape.0),
        Err(e) => Err(json_error(&e, len)),
    };
    // Hand the (cleared) allocation back for the next call. `result` holds
    // `&'a str`s into `buf`, not into the tape, so this is fine.
    scratch.nodes = tape.reset().0;
    result
}

/// Walks the top level of a parsed tape for the last `ip`, `url` and `timestamp` members.
fn find_fields<'a>(nodes: &[Node<'a>]) -> Result<LogFields<'a>, LineError> {
    let Some(&Node::Object { len, .. }) = nodes.first() else {
        return Err(LineError::NotAnObject);
    };
    let mut idx = 1;
    let (mut ip, mut url, mut timestamp): (Option<Node<'a>>, Option<Node<'a>>, Option<Node<'a>>) =
        (None, None, None);
    for _ in 0..len {
        // A tape built by simd-json always has a string key followed by a
        // value here; a malformed one is reported rather than panicking.
        let (Some(&Node::String(key)), Some(&value)) = (nodes.get(idx), nodes.get(idx + 1)) else {
            return Err(malformed_tape(idx));
        };
        // Keep going after a match: the last duplicate wins.
        match key {
            "ip" => ip = Some(value),
            "url" => url = Some(value),
            "timestamp" => timestamp = Some(value),
            _ => {}
        }
        idx += 1 + node_span(&value);
    }
    let as_str = |node: Option<Node<'a>>| match node {
        Some(Node::String(s)) => Some(s),
        _ => None,
    };
    match ip {
        None => Err(LineError::MissingIp),
        Some(Node::String(ip)) => Ok(LogFields {
            ip,
            url: as_str(url),
            timestamp: as_str(timestamp),
        }),
        Some(_) => Err(LineError::IpNotString),
    }
}

/// Number of tape nodes a value occupies, itself included.
fn node_span(node: &Node<'_>) -> usize {
    match node {
        // `count` is the number of nodes nested inside, excluding the header.
        Node::Object { count, .. } | Node::Array { count, .. } => count + 1,
        Node::String(_) | Node::Static(_) => 1,
    }
}

/// simd-json's error as a [`LineError`]: its kind in plain words (`json_error::phrase`), at
/// its index (clamped to the input; the input's length for an early end). The fields stage
/// then makes the offset precise on the bytes as received (`LineError::refine`).
#[cold]
fn json_error(e: &simd_json::Error, len: usize) -> LineError {
    match e.error() {
        simd_json::ErrorType::InvalidUtf8 => LineError::InvalidUtf8,
        kind @ simd_json::ErrorType::Eof => LineError::InvalidJson {
            offset: len,
            reason: phrase(kind),
        },
        kind => LineError::InvalidJson {
            offset: e.index().min(len),
            reason: phrase(kind),
        },
    }
}

#[cold]
fn malformed_tape(idx: usize) -> LineError {
    // Never produced by simd-json's tapes; reported rather than panicking.
    tracing::debug!(node = idx, "unexpected tape layout");
    LineError::InvalidJson {
        offset: 0,
        reason: "malformed JSON",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &[u8]) -> Result<String, LineError> {
        let mut scratch = Scratch::new();
        let mut buf = s.to_vec();
        parse_line(&mut buf, &mut scratch).map(str::to_owned)
    }

    #[test]
    fn fields_are_read_in_one_walk() {
        let mut scratch = Scratch::new();
        let mut line =
            br#"{"url":1,"timestamp":"t0","ip":"1.2.3.4","url":"/a","x":{"url":"/n"}}"#.to_vec();
        let fields = parse_fields(&mut line, &mut scratch).expect("valid line");
        assert_eq!(
            fields,
            LogFields {
                ip: "1.2.3.4",
                url: Some("/a"),
                timestamp: Some("t0")
            }
        );
        let mut line = br#"{"ip":"::1","url":null}"#.to_vec();
        let fields = parse_fields(&mut line, &mut scratch).expect("valid line");
        assert_eq!((fields.url, fields.timestamp), (None, None));
    }

    #[test]
    fn spec_example() {
        let line =
            br#"{"timestamp": "2020-06-24T15:27:00.123456Z", "ip": "83.150.59.250", "url": "/a"}"#;
        assert_eq!(parse(line).as_deref(), Ok("83.150.59.250"));
    }

    #[test]
    fn fields_in_any_order() {
        assert_eq!(
            parse(br#"{"ip":"1.2.3.4","url":"/"}"#).as_deref(),
            Ok("1.2.3.4")
        );
        assert_eq!(
            parse(br#"{"url":"/","ip":"1.2.3.4"}"#).as_deref(),
            Ok("1.2.3.4")
        );
        assert_eq!(
            parse(br#"{"a":1,"ip":"1.2.3.4","b":null}"#).as_deref(),
            Ok("1.2.3.4")
        );
        assert_eq!(parse(br#"{"ip":"::1"}"#).as_deref(), Ok("::1"));
    }

    #[test]
    fn nested_values_are_skipped() {
        let line = br#"{"a":{"ip":"9.9.9.9","b":[1,{"ip":"8.8.8.8"},[[]]]},"c":[],"d":{},"ip":"1.2.3.4","e":[{"f":{"g":"h"}}]}"#;
        assert_eq!(parse(line).as_deref(), Ok("1.2.3.4"));
        // Only nested `ip`s: the top level has none.
        assert_eq!(
            parse(br#"{"a":{"ip":"9.9.9.9"},"b":[{"ip":"1.1.1.1"}]}"#),
            Err(LineError::MissingIp)
        );
    }

    #[test]
    fn deep_nesting_does_not_recurse() {
        let depth = 1000;
        let mut line = br#"{"x":"#.to_vec();
        line.extend(std::iter::repeat_n(b'[', depth));
        line.extend(std::iter::repeat_n(b']', depth));
        line.extend_from_slice(br#","ip":"1.2.3.4"}"#);
        assert_eq!(parse(&line).as_deref(), Ok("1.2.3.4"));

        let too_deep = 100_000;
        let mut line = br#"{"ip":"1.2.3.4","x":"#.to_vec();
        line.extend(std::iter::repeat_n(b'[', too_deep));
        line.extend(std::iter::repeat_n(b']', too_deep));
        line.push(b'}');
        assert!(matches!(parse(&line), Err(LineError::InvalidJson { .. })));
    }

    #[test]
    fn escapes_in_ip_string_are_decoded() {
        assert_eq!(parse(br#"{"ip":"1.2.3.\u0034"}"#).as_deref(), Ok("1.2.3.4"));
        assert_eq!(parse(br#"{"ip":"\u003a\u003a1"}"#).as_deref(), Ok("::1"));
        assert_eq!(parse(br#"{"\u0069p":"5.6.7.8"}"#).as_deref(), Ok("5.6.7.8"));
        // Decoded, but still not an address: that is the counter's call.
        assert_eq!(parse(br#"{"ip":"a\"b"}"#).as_deref(), Ok("a\"b"));
    }

    #[test]
    fn duplicate_keys_last_wins() {
        assert_eq!(
            parse(br#"{"ip":"1.1.1.1","ip":"2.2.2.2"}"#).as_deref(),
            Ok("2.2.2.2")
        );
        assert_eq!(
            parse(br#"{"ip":1,"ip":"2.2.2.2"}"#).as_deref(),
            Ok("2.2.2.2")
        );
        assert_eq!(
            parse(br#"{"ip":"2.2.2.2","ip":null}"#),
            Err(LineError::IpNotString)
        );
    }

    #[test]
    fn not_an_object() {
        for line in [
            &b"[]"[..],
            b"[{\"ip\":\"1.2.3.4\"}]",
            b"\"1.2.3.4\"",
            b"42",
            b"null",
            b"true",
        ] {
            assert_eq!(parse(line), Err(LineError::NotAnObject), "{line:?}");
        }
    }

    #[test]
    fn missing_or_mistyped_ip() {
        assert_eq!(parse(b"{}"), Err(LineError::MissingIp));
        assert_eq!(parse(br#"{"IP":"1.2.3.4"}"#), Err(LineError::MissingIp));
        for v in ["1", "null", "true", "[\"1.2.3.4\"]", "{\"v\":\"1.2.3.4\"}"] {
            let line = format!(r#"{{"ip":{v}}}"#);
            assert_eq!(
                parse(line.as_bytes()),
                Err(LineError::IpNotString),
                "{line}"
            );
        }
    }

    #[test]
    fn invalid_json() {
        for line in [
            &b""[..],
            b"   ",
            b"{",
            b"{\"ip\":\"1.2.3.4\"",
            b"{\"ip\" \"1.2.3.4\"}",
            b"{'ip':'1.2.3.4'}",
            b"{\"ip\":\"1.2.3.4\"} {}",
            b"{\"ip\":\"1.2.3.4\",}",
            b"{\"ip\":\"bad \\x escape\"}",
        ] {
            let err = parse(line).expect_err("must be rejected");
            assert!(
                matches!(err, LineError::InvalidJson { .. }),
                "{line:?}: {err:?}"
            );
            assert_eq!(err.code(), "invalid_json");
        }
    }

    #[test]
    fn invalid_utf8() {
        let err = parse(b"{\"ip\":\"1.2.3.4\",\"u\":\"\xff\xfe\"}").expect_err("invalid");
        assert_eq!(err, LineError::InvalidUtf8);
        assert_eq!(err.code(), "invalid_utf8");
    }

    #[test]
    fn whitespace_around_object_is_fine() {
        assert_eq!(
            parse(b" \t{\"ip\":\"1.2.3.4\"} \r\n").as_deref(),
            Ok("1.2.3.4")
        );
    }

    #[test]
    fn scratch_is_reused_across_lines_of_different_sizes() {
        let mut scratch = Scratch::new();
        let big = format!(r#"{{"pad":"{}","ip":"10.0.0.1"}}"#, "x".repeat(100_000));
        let lines = [
            big.as_bytes().to_vec(),
            br#"{"ip":"10.0.0.2"}"#.to_vec(),
            b"not json".to_vec(),
            br#"{"ip":"10.0.0.3"}"#.to_vec(),
        ];
        let mut got = Vec::new();
        for line in lines {
            let mut buf = line;
            got.push(parse_line(&mut buf, &mut scratch).map(str::to_owned));
        }
        assert_eq!(got[0].as_deref(), Ok("10.0.0.1"));
        assert_eq!(got[1].as_deref(), Ok("10.0.0.2"));
        assert!(got[2].is_err());
        assert_eq!(got[3].as_deref(), Ok("10.0.0.3"));
    }

    #[test]
    fn invalid_ip_value_is_truncated_on_a_char_boundary() {
        let long = "é".repeat(100);
        let LineError::InvalidIp { value } = LineError::invalid_ip(&long) else {
            unreachable!()
        };
        assert!(value.len() <= 64);
        assert!(long.starts_with(&value));
    }

    #[test]
    fn codes_and_messages() {
        assert_eq!(LineError::MissingIp.code(), "missing_ip");
        assert_eq!(LineError::IpNotString.code(), "ip_not_a_string");
        assert_eq!(LineError::NotAnObject.code(), "not_an_object");
        assert_eq!(LineError::invalid_ip("x").code(), "invalid_ip");
        assert_eq!(LineError::LineTooLong { limit: 3 }.code(), "line_too_long");
        assert!(LineError::invalid_ip("x").to_string().contains("\"x\""));
    }
}
