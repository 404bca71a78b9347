//! The full parser of the fields stage: the address, URL and time of any JSON log object, as
//! the [`FieldMap`] names them (top-level names or dotted paths), with simd-json and without
//! building a DOM. The fast scanner ([`super::scan`]) reads the common plain lines; every other
//! line comes here.
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
//! * Only the members the [`FieldMap`] names are read (with the default map and
//!   a log that has them: the top-level `ip`, `url` and `timestamp`); every
//!   other member may hold any valid JSON value and is ignored, and so are a
//!   `url` that is not a string and a `timestamp` that is neither a string nor
//!   a number. No address field, or one that is not a string, rejects the
//!   object. Of several candidates present, the first in the map's list wins
//!   (see [`super::names`]).
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

use simd_json::{Buffers, Node, StaticNode, Tape};

use super::json_error::phrase;
pub use super::line_error::LineError;
use super::names::{Best, Field, FieldMap};
use super::timestamp::Timestamp;

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

/// The fields of one log that uniqd reads.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LogFields<'a> {
    /// The address string (not yet checked to be an address; it may carry a port or be a
    /// forwarded list, see [`super::address`]).
    pub ip: &'a str,
    /// The URL string, if present and a string (other types are ignored).
    pub url: Option<&'a str>,
    /// The time, if present and a string or a number (other types are ignored).
    pub timestamp: Option<Timestamp<'a>>,
    /// The `--group-by` member ([`FieldMap::with_group_by`]), if the map names one and it is
    /// present and a string (other types are ignored); read in the same walk as the others.
    pub group: Option<&'a str>,
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

/// [`parse_fields_with`] and the default [`FieldMap`].
///
/// # Errors
///
/// As [`parse_line`].
pub fn parse_fields<'a>(
    buf: &'a mut [u8],
    scratch: &mut Scratch,
) -> Result<LogFields<'a>, LineError> {
    parse_fields_with(buf, scratch, FieldMap::standard())
}

/// Parses one JSON object and returns the address, URL and time `map` names, in one walk of
/// the tape's top level (and a walk into the nested objects a dotted path names); errors as
/// [`parse_line`]. For every field, of the duplicates of one name the last wins.
///
/// # Errors
///
/// As [`parse_line`].
pub fn parse_fields_with<'a>(
    buf: &'a mut [u8],
    scratch: &mut Scratch,
    map: &FieldMap,
) -> Result<LogFields<'a>, LineError> {
    // The stored vector is empty, so re-lifetiming it to `'a` is free.
    let mut tape: Tape<'a> = Tape(std::mem::take(&mut scratch.nodes)).reset();
    let len = buf.len();
    let result = match simd_json::fill_tape(buf, &mut scratch.buffers, &mut tape) {
        Ok(()) => find_fields(&tape.0, map),
        Err(e) => Err(json_error(&e, len)),
    };
    // Hand the (cleared) allocation back for the next call. `result` holds
    // `&'a str`s into `buf`, not into the tape, so this is fine.
    scratch.nodes = tape.reset().0;
    result
}

/// Walks the top level of a parsed tape for the members `map` names.
fn find_fields<'a>(nodes: &[Node<'a>], map: &FieldMap) -> Result<LogFields<'a>, LineError> {
    if !matches!(nodes.first(), Some(Node::Object { .. })) {
        return Err(LineError::NotAnObject);
    }
    let mut best: Best<Node<'a>> = Best::new(Node::Static(StaticNode::Null));
    for_each_member(nodes, 0, |key, idx| {
        for candidate in map.matching(key.as_bytes()) {
            let found = candidate
                .rest
                .iter()
                .try_fold(idx, |at, segment| member(nodes, at, segment));
            if let Some(at) = found {
                best.offer(candidate.field, candidate.rank, nodes[at]);
            }
        }
    })?;
    let url = match best.get(Field::Url) {
        Some(Node::String(s)) => Some(s),
        _ => None,
    };
    let timestamp = match best.get(Field::Timestamp) {
        Some(Node::String(s)) => Some(Timestamp::Text(s)),
        Some(Node::Static(StaticNode::I64(n))) => Some(Timestamp::Int(n)),
        #[allow(clippy::cast_precision_loss)] // only past i64: a time in no unit anyway
        Some(Node::Static(StaticNode::U64(n))) => {
            Some(i64::try_from(n).map_or(Timestamp::Float(n as f64), Timestamp::Int))
        }
        Some(Node::Static(StaticNode::F64(f))) => Some(Timestamp::Float(f)),
        _ => None,
    };
    let group = match best.get(Field::Group) {
        Some(Node::String(s)) => Some(s),
        _ => None,
    };
    match best.get(Field::Ip) {
        None => Err(LineError::MissingIp),
        Some(Node::String(ip)) => Ok(LogFields {
            ip,
            url,
            timestamp,
            group,
        }),
        Some(_) => Err(LineError::IpNotString),
    }
}

/// Calls `f(key, value index)` for every member of the object at `nodes[at]`, in order; nothing
/// if it is not an object.
fn for_each_member<'a>(
    nodes: &[Node<'a>],
    at: usize,
    mut f: impl FnMut(&'a str, usize),
) -> Result<(), LineError> {
    let Some(&Node::Object { len, .. }) = nodes.get(at) else {
        return Ok(());
    };
    let mut idx = at + 1;
    for _ in 0..len {
        // A tape built by simd-json always has a string key followed by a
        // value here; a malformed one is reported rather than panicking.
        let (Some(&Node::String(key)), Some(value)) = (nodes.get(idx), nodes.get(idx + 1)) else {
            return Err(malformed_tape(idx));
        };
        f(key, idx + 1);
        idx += 1 + node_span(value);
    }
    Ok(())
}

/// The index of the value of the last member `key` of the object at `nodes[at]`, if it is an
/// object and has one.
fn member(nodes: &[Node<'_>], at: usize, key: &str) -> Option<usize> {
    let mut found = None;
    for_each_member(nodes, at, |k, idx| {
        if k == key {
            found = Some(idx);
        }
    })
    .ok()?;
    found
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
                timestamp: Some(Timestamp::Text("t0")),
                group: None,
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
