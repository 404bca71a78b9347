//! `--group-by`: which member of a JSON log names its group (site, tenant, service), read only
//! when per-group counts are on ([`FieldMap::with_group_by`]).
//!
//! The field is one name or dotted path, with the same mapping rules as `--ip-field`
//! ([`super::names`]; the last occurrence of a duplicate key wins). Its value must be a
//! non-empty string; a log without it (or with another type, or a combined log format line)
//! counts toward the total only.
//!
//! # Cost
//!
//! Read after the log was counted, from the same bytes. For a top-level name on a flat line
//! without escapes (the shape ingress controllers write), a line is read straight from the
//! bytes: one `memchr3` pass over the line (no `\`, no nested `{` or `[`, so every `"`
//! delimits a string), a reverse `memmem` search for `"name"`, a parity check that the hit
//! opens a string, and a `:`. Any other line (escapes, nesting, a dotted path) is read with a
//! second [`FieldMap`] naming only the group field, through the same thread-local reader as
//! the log itself (the scanner or simd-json). When `--group-by` is not set, nothing here runs:
//! `record_log` tests one `Option`.

use memchr::memmem::FinderRev;

use super::names::FieldMap;
use super::{FieldReader, Syntax};

/// The group of a log of `syntax` in `bytes` that was just counted (so valid), if `map` has a
/// `--group-by` field ([`FieldMap::with_group_by`]) and the log has a group.
#[inline]
pub(crate) fn read_group<'a>(
    reader: &'a mut FieldReader,
    syntax: Syntax,
    map: &FieldMap,
    bytes: &'a [u8],
) -> Option<&'a str> {
    let field = map.group_field()?;
    if syntax != Syntax::Json {
        return None;
    }
    let value = match &field.quoted {
        Some(quoted) if is_flat(bytes) => flat_member(quoted, bytes)?,
        _ => reader.read(Syntax::Json, &field.map, bytes).ok()?.0.ip,
    };
    (!value.is_empty()).then_some(value)
}

/// A line whose strings have no escapes and that nests nothing: every `"` delimits a string.
#[inline]
fn is_flat(bytes: &[u8]) -> bool {
    bytes.len() > 1 && memchr::memchr3(b'\\', b'{', b'[', &bytes[1..]).is_none()
}

/// The string value of the last top-level member `"name"` of a flat line (see [`is_flat`]).
fn flat_member<'a>(quoted: &FinderRev<'_>, bytes: &'a [u8]) -> Option<&'a str> {
    let mut end = bytes.len();
    while let Some(at) = quoted.rfind(&bytes[..end]) {
        end = at;
        // An even number of quotes before the hit: it opens a string.
        let opens = bytes[..at].iter().filter(|&&b| b == b'"').count() % 2 == 0;
        let rest = skip_space(&bytes[at + quoted.needle().len()..]);
        if !opens || rest.first() != Some(&b':') {
            continue;
        }
        let rest = skip_space(&rest[1..]);
        let value = rest.strip_prefix(b"\"")?;
        let close = memchr::memchr(b'"', value)?;
        return std::str::from_utf8(&value[..close]).ok();
    }
    None
}

fn skip_space(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
        .unwrap_or(bytes.len());
    &bytes[start..]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fields::with_reader;

    fn map(field: &str) -> FieldMap {
        FieldMap::standard()
            .clone()
            .with_group_by(field)
            .expect("valid")
    }

    fn group(field: &str, line: &str) -> Option<String> {
        let map = map(field);
        with_reader(|r| read_group(r, Syntax::Json, &map, line.as_bytes()).map(str::to_owned))
    }

    #[test]
    fn reads_top_level_and_nested_members() {
        let some = |s: &str| Some(s.to_owned());
        assert_eq!(
            group("host", r#"{"ip":"1.2.3.4","host":"a.example"}"#),
            some("a.example")
        );
        assert_eq!(
            group("host", r#"{ "host" : "b" , "ip":"1.2.3.4"}"#),
            some("b")
        );
        // A value equal to the name is not the member.
        assert_eq!(group("host", r#"{"x":"host","host":"c"}"#), some("c"));
        assert_eq!(group("host", r#"{"host":"d","x":"host"}"#), some("d"));
        assert_eq!(group("host", r#"{"x":"host"}"#), None);
        // Duplicate keys: the last wins, as for the address.
        assert_eq!(group("host", r#"{"host":"e","host":"f"}"#), some("f"));
        // Non-ASCII text, escapes, nesting: the second map.
        assert_eq!(group("host", r#"{"host":"ü.example"}"#), some("ü.example"));
        assert_eq!(group("host", r#"{"host":"g\u0021","x":1}"#), some("g!"));
        assert_eq!(
            group("host", r#"{"y":{"host":"no"},"host":"h"}"#),
            some("h")
        );
        let k8s = r#"{"ip":"1.2.3.4","kubernetes":{"namespace":"shop","pod":"p"}}"#;
        assert_eq!(group("kubernetes.namespace", k8s), some("shop"));
        // Not a string, empty, absent, not JSON: no group.
        for line in [
            r#"{"host":7}"#,
            r#"{"host":""}"#,
            r#"{"hostx":"a"}"#,
            r#"{}"#,
        ] {
            assert_eq!(group("host", line), None, "{line}");
        }
        let host = map("host");
        let clf = br#"1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.1" 200 1"#;
        let read = |map: &FieldMap| with_reader(|r| read_group(r, Syntax::Clf, map, clf).is_some());
        assert!(!read(&host));
        let none = FieldMap::standard();
        let line = br#"{"host":"a"}"#;
        assert!(!with_reader(
            |r| read_group(r, Syntax::Json, none, line).is_some()
        ));
        let bad = |name| FieldMap::standard().clone().with_group_by(name).is_err();
        assert!(bad("") && bad("a..b"));
        assert_eq!(host.group_by(), Some("host"));
    }
}
