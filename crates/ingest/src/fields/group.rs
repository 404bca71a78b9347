//! `--group-by`: which member of a JSON log names its group (site, tenant, service), read only
//! when per-group counts are on ([`FieldMap::with_group_by`](super::FieldMap::with_group_by)).
//!
//! The field is one name or dotted path, with the same mapping rules as `--ip-field`
//! ([`super::names`]; the last occurrence of a duplicate key wins). Its value must be a
//! non-empty string; a log without it (or with another type, or a combined log format line)
//! counts toward the total only.
//!
//! # Cost
//!
//! The group member is one more candidate of the [`FieldMap`](super::FieldMap)
//! ([`with_group_by`](super::FieldMap::with_group_by)
//! adds it to the length-bucketed table), so it is read in the same walk as the address, URL
//! and time: by the fast scanner for a flat plain line (one more name in the table, no
//! second pass over the bytes), by simd-json for any other (a dotted path such as
//! `kubernetes.namespace` walks into the nested objects there, as `client.ip` does). The line
//! is read once. When `--group-by` is not set, no candidate is a group and `record_log`
//! tests one `Option`.

use super::parse::LogFields;

/// The group of a log whose `fields` were just read, if its map has a `--group-by` field and
/// the log has a non-empty string there.
#[inline]
pub(crate) fn group<'a>(fields: &LogFields<'a>) -> Option<&'a str> {
    fields.group.filter(|g| !g.is_empty())
}

#[cfg(test)]
mod tests {
    use crate::fields::names::FieldMap;
    use crate::fields::{with_reader, FieldReader, Syntax};

    /// The group of `line` (a counted log: one without an address gets one appended, as
    /// `record_log` only reads the group of a log it counted).
    fn read_group<'a>(
        reader: &'a mut FieldReader,
        syntax: Syntax,
        map: &FieldMap,
        line: &'a [u8],
    ) -> Option<&'a str> {
        reader
            .read(syntax, map, line)
            .ok()
            .and_then(|(fields, _)| super::group(&fields))
    }

    fn with_ip(line: &str) -> String {
        match line.strip_suffix('}') {
            Some("{") => r#"{"ip":"1.2.3.4"}"#.to_owned(),
            Some(head) if !line.contains(r#""ip""#) => format!(r#"{head},"ip":"1.2.3.4"}}"#),
            _ => line.to_owned(),
        }
    }

    fn map(field: &str) -> FieldMap {
        FieldMap::standard()
            .clone()
            .with_group_by(field)
            .expect("valid")
    }

    fn group(field: &str, line: &str) -> Option<String> {
        let map = map(field);
        let line = with_ip(line);
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
        let line = br#"{"host":"a","ip":"1.2.3.4"}"#;
        assert!(!with_reader(
            |r| read_group(r, Syntax::Json, none, line).is_some()
        ));
        let bad = |name| FieldMap::standard().clone().with_group_by(name).is_err();
        assert!(bad("") && bad("a..b"));
        let longest = "a".repeat(uniqd_core::MAX_GROUP_FIELD_BYTES);
        assert!(!bad(&longest) && bad(&format!("{longest}a")));
        assert_eq!(host.group_by(), Some("host"));
    }

    #[test]
    fn the_scanner_reads_the_group_in_its_one_pass() {
        use crate::fields::scan::scan_fields_with;
        let host = map("host");
        let line = br#"{"ip":"1.2.3.4","host":"a.example","url":"/"}"#;
        let fields = scan_fields_with(line, &host).expect("a plain line");
        assert_eq!((fields.ip, fields.group), ("1.2.3.4", Some("a.example")));
        // Without `--group-by`, no group; a dotted path is never a flat member.
        let fields = scan_fields_with(line, FieldMap::standard()).expect("a plain line");
        assert_eq!(fields.group, None);
        let nested = map("host.name");
        assert_eq!(scan_fields_with(line, &nested).map(|f| f.group), Some(None));
        // The group field does not change which member is the address.
        let same = map("ip");
        let fields = scan_fields_with(line, &same).expect("a plain line");
        assert_eq!((fields.ip, fields.group), ("1.2.3.4", Some("1.2.3.4")));
    }
}
