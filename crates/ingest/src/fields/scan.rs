//! The fast path for the common log line: a validating scan of a flat JSON
//! object that reads the address, URL and time straight from the request
//! bytes, under the top-level names of the [`FieldMap`] (`ip`, `url`,
//! `timestamp` and the other defaults, or the configured ones).
//!
//! simd-json costs about 110 ns per 90-byte line on the hot path (copy into a
//! mutable buffer, structural index, tape); most of that is generality a log
//! line does not need. [`scan_fields`] accepts a strict subset of JSON, the
//! shape ingress controllers write, and checks it completely:
//!
//! * leading and trailing JSON whitespace is trimmed; what remains is printable
//!   ASCII (`0x20..=0x7E`, and `0x7F`) without a backslash: one branch-free
//!   pass over the bytes that the compiler vectorises (`is_plain_text`);
//! * the text is one object; between tokens only spaces;
//! * so every `"` delimits a string, and every string is valid JSON as it
//!   stands (no escapes, no control bytes, valid UTF-8): strings are skipped
//!   with `memchr`, and only the few bytes between them are looked at;
//! * every non-string value is `true`, `false`, `null` or a number of the JSON
//!   grammar without exponent and with at most [`MAX_NUMBER_DIGITS`] digits
//!   (so no parser can find it out of range).
//!
//! Anything outside that subset (escapes, non-ASCII text, tabs between tokens,
//! nested objects or arrays, exponents, long numbers, and every kind of invalid
//! input) makes it answer `None`, and the caller parses the line with
//! simd-json ([`super::parse::parse_fields`]), which accepts it or says exactly
//! why not. So the scanner never decides that a line is invalid; it only
//! recognises lines that are certainly valid, and for those it must answer what
//! simd-json answers. Duplicate keys follow the same rule (the last one wins),
//! and so does the choice among candidates (the first in the list that is
//! present); an address that is not a string is left to simd-json to report.
//! Dotted paths name nested members, which a flat line does not have, so they
//! never match here. Each member name costs one lookup in the map's
//! length-bucketed table ([`FieldMap`]). The
//! agreement is checked by unit tests, a property test
//! (`tests/scan_agrees.rs`) and the `parse_line` fuzz target.
//!
//! ```
//! use uniqd_ingest::fields::scan::scan_fields;
//! use uniqd_ingest::fields::{LogFields, Timestamp};
//!
//! let line = br#"{"timestamp": "2020-06-24T15:27:00Z", "ip": "83.150.59.250", "url": "/a", "status": 200}"#;
//! assert_eq!(
//!     scan_fields(line),
//!     Some(LogFields { ip: "83.150.59.250", url: Some("/a"), timestamp: Some(Timestamp::Text("2020-06-24T15:27:00Z")), group: None })
//! );
//! // Escapes are simd-json's business:
//! assert_eq!(scan_fields(br#"{"ip": "1.2.3.\u0034"}"#), None);
//! ```

use super::flat;
use super::names::{Best, Field, FieldMap};
use super::parse::LogFields;
use super::timestamp::Timestamp;

/// Numbers with more digits than this are left to simd-json (18 digits always
/// fit an `i64`, and a fraction this short is an ordinary `f64`).
pub const MAX_NUMBER_DIGITS: usize = 18;

/// A member value as far as the fields we read care.
#[derive(Clone, Copy)]
enum Value {
    /// A string: the byte range of its contents in the text.
    Str(usize, usize),
    /// A number: its byte range.
    Num(usize, usize),
    Other,
}

/// [`scan_fields_with`] and the default [`FieldMap`].
#[must_use]
pub fn scan_fields(line: &[u8]) -> Option<LogFields<'_>> {
    scan_fields_with(line, FieldMap::standard())
}

/// Reads the address, URL and time of `line` under the top-level names of `map` when it is a
/// flat JSON object of the plain shape described in the [module docs](self); `None` when it is
/// not, or when it has no string address (the caller's full parser then decides).
#[must_use]
pub fn scan_fields_with<'a>(line: &'a [u8], map: &FieldMap) -> Option<LogFields<'a>> {
    // JSON whitespace only: `trim_ascii_start` would also skip a form feed (0x0C), which
    // JSON does not allow (found by the `ndjson_batch` fuzz target).
    let start = line
        .iter()
        .position(|b| !matches!(b, b' ' | b'\t' | b'\r' | b'\n'))?;
    let line = &line[start..];
    let end = line
        .iter()
        .rposition(|b| !matches!(b, b' ' | b'\t' | b'\r' | b'\n'))?;
    let line = &line[..=end];
    if !is_plain_text(line) {
        return None;
    }
    let text = ascii_str(line);
    let mut s = Scanner {
        bytes: line,
        pos: 0,
    };
    s.expect(b'{')?;
    s.skip_spaces();
    if s.peek() == Some(b'}') {
        // `{}` has no `ip`: simd-json reports that.
        return None;
    }
    let standard = map.flat().is_standard();
    let mut best = Best::new(Value::Other);
    loop {
        s.expect(b'"')?;
        let (start, end) = s.string_body()?;
        s.skip_spaces();
        s.expect(b':')?;
        s.skip_spaces();
        let value = s.value()?;
        let offer = |field, rank| best.offer(field, rank, value);
        if standard {
            flat::standard(&line[start..end], offer);
        } else {
            map.flat().lookup(line, start, end, offer);
        }
        s.skip_spaces();
        match s.next()? {
            b',' => s.skip_spaces(),
            b'}' => break,
            _ => return None,
        }
    }
    if s.pos != line.len() {
        return None;
    }
    let url = match best.get(Field::Url) {
        Some(Value::Str(start, end)) => text.get(start..end),
        _ => None,
    };
    let timestamp = match best.get(Field::Timestamp) {
        Some(Value::Str(start, end)) => text.get(start..end).map(Timestamp::Text),
        Some(Value::Num(start, end)) => Some(number(text.get(start..end)?)),
        _ => None,
    };
    let group = match best.get(Field::Group) {
        Some(Value::Str(start, end)) => text.get(start..end),
        _ => None,
    };
    match best.get(Field::Ip) {
        Some(Value::Str(start, end)) => Some(LogFields {
            ip: text.get(start..end)?,
            url,
            timestamp,
            group,
        }),
        _ => None,
    }
}

/// A number of the scanner's grammar as simd-json reads it: an integer (at most
/// [`MAX_NUMBER_DIGITS`] digits, so it fits an `i64`), else a float.
fn number(text: &str) -> Timestamp<'_> {
    match text.parse::<i64>() {
        Ok(n) => Timestamp::Int(n),
        // The grammar is a subset of Rust's float syntax.
        Err(_) => text.parse().map_or(Timestamp::Text(text), Timestamp::Float),
    }
}

/// `bytes` as text, without checking it again: the caller has just seen [`is_plain_text`]
/// accept exactly these bytes.
///
/// The one `unsafe` block of this crate. `std::str::from_utf8` here cost 87 of the scan's
/// 1,147 instructions a line (a second pass over the line, after `is_plain_text`'s), and
/// checking each field's bytes instead cost more; without it plain NDJSON missed issue 17's
/// "within 5% of the build before" (docs/benchmarks.md).
#[allow(unsafe_code)]
fn ascii_str(bytes: &[u8]) -> &str {
    debug_assert!(is_plain_text(bytes));
    // SAFETY: `is_plain_text(bytes)` held (the only caller returns early otherwise, and the
    // debug build checks it again), so every byte is below 0x80: the bytes are ASCII, and
    // ASCII is valid UTF-8.
    unsafe { std::str::from_utf8_unchecked(bytes) }
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// Eight bytes as a little-endian word, `None` past the end of `bytes`.
fn word_at(bytes: &[u8], at: usize) -> Option<u64> {
    let chunk: [u8; 8] = bytes.get(at..at + 8)?.try_into().ok()?;
    Some(u64::from_le_bytes(chunk))
}

/// High bit set in every byte lane of `w` equal to `byte` (the classic
/// "has zero byte" trick on `w ^ byte`). Through the borrow it may also flag
/// lanes above a real match, never below one: it is non-zero exactly when
/// there is a match, and its lowest flag is the first match.
fn lanes_equal(w: u64, byte: u8) -> u64 {
    let x = w ^ (ONES * u64::from(byte));
    x.wrapping_sub(ONES) & !x & HIGHS
}

/// Whether every byte is printable ASCII (`0x20..=0x7F`) other than `\`.
///
/// Eight bytes at a time without an early exit, so there is no data-dependent
/// branch: a byte below `0x20` sets the high bit of its lane in `w - 0x20…`
/// (its borrow can only add flags above it), a byte of `0x80` or more has it
/// set in `w` already.
fn is_plain_text(bytes: &[u8]) -> bool {
    let bad_lanes = |w: u64| ((w.wrapping_sub(ONES * 0x20) | w) & HIGHS) | lanes_equal(w, b'\\');
    let mut bad = 0;
    let mut at = 0;
    while let Some(w) = word_at(bytes, at) {
        bad |= bad_lanes(w);
        at += 8;
    }
    bad == 0
        && bytes[at..]
            .iter()
            .all(|&b| (0x20..0x80).contains(&b) && b != b'\\')
}

/// Offset of the first `"` in `bytes`, eight bytes at a time (strings in log
/// lines are short, and a `memchr` call costs more than it saves there).
fn find_quote(bytes: &[u8]) -> Option<usize> {
    let mut at = 0;
    while let Some(w) = word_at(bytes, at) {
        let hits = lanes_equal(w, b'"');
        if hits != 0 {
            // The lowest flagged lane is the first quote.
            return Some(at + (hits.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    bytes[at..].iter().position(|&b| b == b'"').map(|i| at + i)
}

/// A cursor over text that [`is_plain_text`] accepted.
struct Scanner<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Scanner<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.pos += 1;
        Some(b)
    }

    fn expect(&mut self, want: u8) -> Option<()> {
        (self.next()? == want).then_some(())
    }

    /// Tabs and newlines are JSON whitespace too, but [`is_plain_text`] has
    /// already sent lines holding them to simd-json.
    fn skip_spaces(&mut self) {
        while self.peek() == Some(b' ') {
            self.pos += 1;
        }
    }

    /// After an opening quote: the byte range of the string's contents, whose
    /// closing quote is consumed. The text holds no backslash, so the next
    /// quote closes the string, and no control or non-ASCII byte, so the
    /// contents are a valid JSON string as they stand.
    fn string_body(&mut self) -> Option<(usize, usize)> {
        let start = self.pos;
        let len = find_quote(&self.bytes[start..])?;
        self.pos += len + 1;
        Some((start, start + len))
    }

    fn value(&mut self) -> Option<Value> {
        match self.peek()? {
            b'"' => {
                self.pos += 1;
                self.string_body()
                    .map(|(start, end)| Value::Str(start, end))
            }
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            b'-' | b'0'..=b'9' => self.number(),
            _ => None,
        }
    }

    fn literal(&mut self, word: &[u8]) -> Option<Value> {
        self.bytes[self.pos..].starts_with(word).then(|| {
            self.pos += word.len();
            Value::Other
        })
    }

    /// `-? (0 | [1-9][0-9]*) (. [0-9]+)?`, at most [`MAX_NUMBER_DIGITS`]
    /// digits. What follows is checked by the caller (a delimiter must come
    /// next, so `01`, `1.` or `1e5` end up as `None`).
    fn number(&mut self) -> Option<Value> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        let int = self.digits();
        if int == 0 || (int > 1 && self.bytes[self.pos - int] == b'0') {
            return None;
        }
        let mut total = int;
        if self.peek() == Some(b'.') {
            self.pos += 1;
            let frac = self.digits();
            if frac == 0 {
                return None;
            }
            total += frac;
        }
        (total <= MAX_NUMBER_DIGITS).then_some(Value::Num(start, self.pos))
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
        self.pos - start
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(line: &str) -> Option<&str> {
        scan_fields(line.as_bytes()).map(|f| f.ip)
    }

    #[test]
    fn reads_the_common_shapes() {
        assert_eq!(ip(r#"{"ip":"1.2.3.4"}"#), Some("1.2.3.4"));
        assert_eq!(
            ip(" \t{ \"a\" : 1 , \"ip\" : \"::1\" , \"b\" : -0.5 }\r\n"),
            Some("::1")
        );
        assert_eq!(
            ip(r#"{"n":null,"t":true,"f":false,"z":0,"m":-12,"ip":"x"}"#),
            Some("x")
        );
        let f = scan_fields(br#"{"url":1,"ip":"1.1.1.1","url":"/b","timestamp":null}"#);
        assert_eq!(
            f,
            Some(LogFields {
                ip: "1.1.1.1",
                url: Some("/b"),
                timestamp: None,
                group: None,
            })
        );
    }

    #[test]
    fn configured_names_first_present_wins() {
        let map = FieldMap::new(&["remote_addr", "ip", "client.ip"], &["u"], &["t"]).expect("map");
        let f = |line: &'static str| {
            scan_fields_with(line.as_bytes(), &map).map(|f| (f.ip, f.timestamp))
        };
        assert_eq!(
            f(r#"{"ip":"1.1.1.1","remote_addr":"2.2.2.2","t":17}"#),
            Some(("2.2.2.2", Some(Timestamp::Int(17))))
        );
        assert_eq!(
            f(r#"{"ip":"1.1.1.1","t":1.5}"#),
            Some(("1.1.1.1", Some(Timestamp::Float(1.5))))
        );
        // A flat `client` is not the nested path `client.ip`.
        assert_eq!(f(r#"{"client":"1.1.1.1"}"#), None);
        // The default map reads the gateways' names.
        assert_eq!(
            ip(r#"{"ClientAddr":"1.2.3.4:80","ClientHost":"1.2.3.4"}"#),
            Some("1.2.3.4")
        );
    }

    #[test]
    fn duplicate_ip_last_wins_and_non_string_last_is_left_to_simd_json() {
        assert_eq!(ip(r#"{"ip":"1.1.1.1","ip":"2.2.2.2"}"#), Some("2.2.2.2"));
        assert_eq!(ip(r#"{"ip":1,"ip":"2.2.2.2"}"#), Some("2.2.2.2"));
        assert_eq!(ip(r#"{"ip":"2.2.2.2","ip":null}"#), None);
        assert_eq!(ip(r#"{"url":"/"}"#), None);
        assert_eq!(ip("{}"), None);
    }

    #[test]
    fn everything_unusual_is_left_to_simd_json() {
        for line in [
            r#"{"ip":"1.2.3.\u0034"}"#,
            r#"{"\u0069p":"1.2.3.4"}"#,
            r#"{"ip":"1.2.3.4","u":"é"}"#,
            r#"{"ip":"1.2.3.4","o":{}}"#,
            r#"{"ip":"1.2.3.4","a":[]}"#,
            r#"{"ip":"1.2.3.4","e":1e5}"#,
            r#"{"ip":"1.2.3.4","n":1234567890123456789}"#,
            r#"{"ip":"1.2.3.4","n":0.1234567890123456789}"#,
            "{\"ip\":\"1.2.3.4\t\"}",
            // Whitespace JSON does not have (form feed, vertical tab) around the object.
            "\x0c{\"ip\":\"1.2.3.4\"}",
            "{\"ip\":\"1.2.3.4\"}\x0c",
            "\x0b{\"ip\":\"1.2.3.4\"}",
            "[]",
            "",
        ] {
            assert_eq!(ip(line), None, "{line}");
        }
    }

    #[test]
    fn invalid_json_is_never_accepted() {
        for line in [
            r#"{"ip":"1.2.3.4""#,
            r#"{"ip":"1.2.3.4",}"#,
            r#"{"ip":"1.2.3.4"} {}"#,
            r#"{"ip":"1.2.3.4"}}"#,
            r#"{"ip" "1.2.3.4"}"#,
            r#"{"ip":"1.2.3.4" "a":1}"#,
            r#"{,"ip":"1.2.3.4"}"#,
            r#"{"ip":"1.2.3.4","n":01}"#,
            r#"{"ip":"1.2.3.4","n":1.}"#,
            r#"{"ip":"1.2.3.4","n":.5}"#,
            r#"{"ip":"1.2.3.4","n":-}"#,
            r#"{"ip":"1.2.3.4","n":+1}"#,
            r#"{"ip":"1.2.3.4","t":tru}"#,
            r#"{"ip":"1.2.3.4","t":truee}"#,
            r#"{"ip":"1.2.3.4","n":nul}"#,
            r#"{'ip':'1.2.3.4'}"#,
            r#"{"ip":1.2.3.4}"#,
            "{\"ip\":\"1.2.3.4\"}\u{0}",
            "{\"ip\":\"1.2.3.4\"}\u{b}",
        ] {
            assert_eq!(ip(line), None, "{line}");
        }
    }

    #[test]
    fn quote_search_finds_the_first_quote_at_every_offset() {
        for len in 0..40 {
            let mut s = vec![b'a'; len];
            assert_eq!(find_quote(&s), None);
            s.push(b'"');
            s.extend_from_slice(b"x\"y");
            assert_eq!(find_quote(&s), Some(len), "len {len}");
        }
    }

    #[test]
    fn plain_text_check_finds_a_bad_byte_anywhere() {
        for len in 0..70 {
            let text = vec![b'a'; len];
            assert!(is_plain_text(&text));
            // Every byte value at every position.
            for at in 0..len {
                for byte in 0..=u8::MAX {
                    let mut t = text.clone();
                    t[at] = byte;
                    let plain = (0x20..0x80).contains(&byte) && byte != b'\\';
                    assert_eq!(is_plain_text(&t), plain, "len {len} at {at} byte {byte:#x}");
                }
            }
        }
    }

    #[test]
    fn whitespace_around_the_object_is_trimmed() {
        assert_eq!(ip("\r\n\t {\"ip\":\"1.2.3.4\"} \t\r\n"), Some("1.2.3.4"));
        // Inside the object only spaces take the fast path.
        assert_eq!(ip("{\"ip\":\t\"1.2.3.4\"}"), None);
        assert_eq!(ip(" \n "), None);
    }
}
