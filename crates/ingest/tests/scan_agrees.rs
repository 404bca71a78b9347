//! Property test: the fast scanner ([`scan_fields`]) never accepts a line simd-json rejects, and
//! where it answers, it answers what simd-json does ([`parse_fields`]); every plain log line (the
//! shape it exists for) takes the fast path.

use proptest::prelude::*;
use uniqd_ingest::fields::parse::{parse_fields, parse_fields_with, LogFields, Scratch};
use uniqd_ingest::fields::scan::{scan_fields, scan_fields_with};
use uniqd_ingest::fields::FieldMap;

type Owned = (String, Option<String>, Option<String>);

fn owned(f: LogFields<'_>) -> Owned {
    (
        f.ip.to_owned(),
        f.url.map(str::to_owned),
        f.timestamp.map(|t| format!("{t:?}")),
    )
}

fn simd(line: &[u8]) -> Option<Owned> {
    let mut buf = line.to_vec();
    parse_fields(&mut buf, &mut Scratch::new()).ok().map(owned)
}

/// A configured map whose names the generated keys hit: two address candidates, a dotted path
/// (never present in a flat line) and short names.
fn configured() -> FieldMap {
    FieldMap::new(&["a", "ip", "x.ip"], &["b", "url"], &["c", "timestamp"]).expect("valid names")
}

fn simd_with(line: &[u8], map: &FieldMap) -> Option<Owned> {
    let mut buf = line.to_vec();
    parse_fields_with(&mut buf, &mut Scratch::new(), map)
        .ok()
        .map(owned)
}

/// Tokens that make up JSON-ish text, valid and not: keys the parsers look for, strings with and
/// without escapes or non-ASCII bytes, numbers near the edges of the grammar, literals,
/// punctuation, whitespace and stray bytes.
fn token() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => prop_oneof![Just("\"ip\""), Just("\"url\""), Just("\"timestamp\""), Just("\"x\""),
                         Just("\"a\""), Just("\"b\""), Just("\"c\""), Just("\"client_ip\"")]
            .prop_map(|s| s.as_bytes().to_vec()),
        4 => "\"[ -~]{0,12}\"".prop_map(String::into_bytes),
        1 => prop_oneof![Just("\"\\u0069p\""), Just("\"a\\\"b\""), Just("\"é\""), Just("\"\t\"")]
            .prop_map(|s| s.as_bytes().to_vec()),
        2 => "-?[0-9]{0,3}(\\.[0-9]{0,2})?([eE][+-]?[0-9]{0,2})?".prop_map(String::into_bytes),
        1 => "[0-9]{17,20}".prop_map(String::into_bytes),
        1 => prop_oneof![Just("true"), Just("false"), Just("null"), Just("tru"), Just("nulll")]
            .prop_map(|s| s.as_bytes().to_vec()),
        6 => prop_oneof![Just("{"), Just("}"), Just(":"), Just(","), Just("["), Just("]")]
            .prop_map(|s| s.as_bytes().to_vec()),
        2 => prop_oneof![Just(" "), Just("\t"), Just("\r"), Just("\n"), Just("\u{b}")]
            .prop_map(|s| s.as_bytes().to_vec()),
        1 => any::<u8>().prop_map(|b| vec![b]),
    ]
}

/// A flat object of the plain shape, members in any order, with optional whitespace.
fn plain_object() -> impl Strategy<Value = String> {
    let value = prop_oneof![
        "\"[ !#-\\[\\]-~]{0,24}\"".boxed(),
        "-?(0|[1-9][0-9]{0,8})(\\.[0-9]{1,6})?".boxed(),
        prop_oneof![Just("true"), Just("false"), Just("null")]
            .prop_map(str::to_owned)
            .boxed(),
    ];
    // Any key but `ip`: the one `ip` is inserted below, and a second one with a non-string
    // value (`"ip":0`, drawn about once in 10,000 cases) makes the line invalid for both parsers.
    let key = prop_oneof![
        Just("url".to_owned()),
        Just("timestamp".to_owned()),
        "[a-z_]{1,10}".prop_filter("the ip member is added separately", |k| k != "ip")
    ];
    // Between tokens the fast path takes spaces; around the object any JSON whitespace.
    let spaces = prop_oneof![Just(""), Just(" "), Just("  ")];
    let ws = prop_oneof![Just(""), Just(" "), Just("\t "), Just("\r\n")];
    (
        proptest::collection::vec((key, value, spaces), 0..6),
        "[0-9a-f:.]{1,20}",
        0usize..6,
        ws,
    )
        .prop_map(|(mut members, ip, at, ws)| {
            let at = at.min(members.len());
            members.insert(at, ("ip".to_owned(), format!("\"{ip}\""), ""));
            let body: Vec<String> = members
                .iter()
                .map(|(k, v, w)| format!("{w}\"{k}\"{w}:{w}{v}{w}"))
                .collect();
            format!("{ws}{{{}}}{ws}", body.join(","))
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    #[test]
    fn scanner_accepts_only_what_simd_json_accepts(tokens in proptest::collection::vec(token(), 0..16)) {
        let line = tokens.concat();
        if let Some(fast) = scan_fields(&line) {
            prop_assert_eq!(Some(owned(fast)), simd(&line), "{:?}", String::from_utf8_lossy(&line));
        }
        let map = configured();
        if let Some(fast) = scan_fields_with(&line, &map) {
            prop_assert_eq!(Some(owned(fast)), simd_with(&line, &map), "{:?}", String::from_utf8_lossy(&line));
        }
    }

    #[test]
    fn configured_names_agree_on_plain_lines(line in plain_object()) {
        let map = configured();
        let fast = scan_fields_with(line.as_bytes(), &map).map(owned);
        prop_assert!(fast.is_some() || simd_with(line.as_bytes(), &map).is_none(), "{}", line);
        prop_assert_eq!(fast, simd_with(line.as_bytes(), &map), "{}", line);
    }

    #[test]
    fn plain_lines_take_the_fast_path(line in plain_object()) {
        let fast = scan_fields(line.as_bytes()).map(owned);
        prop_assert!(fast.is_some(), "{}", line);
        prop_assert_eq!(fast, simd(line.as_bytes()), "{}", line);
    }
}

/// Mostly-valid objects with one token replaced: the near misses a token soup rarely builds.
#[test]
fn single_token_mutations_of_a_log_line_agree() {
    let base =
        br#"{"timestamp": "2020-06-24T15:27:00Z", "ip": "83.150.59.250", "url": "/a", "n": -1.5}"#;
    let subs: &[&[u8]] = &[
        b"", b" ", b"{", b"}", b"[", b"]", b":", b",", b"\"", b"\\", b"0", b"-", b".", b"e",
        b"\x00", b"\x1f", b"\x7f", b"\x80", b"\xff", b"t", b"n",
    ];
    let mut fast = 0;
    for at in 0..=base.len() {
        for sub in subs {
            for replace in [0, 1] {
                let end = (at + replace).min(base.len());
                let mut line = base[..at].to_vec();
                line.extend_from_slice(sub);
                line.extend_from_slice(&base[end..]);
                if let Some(f) = scan_fields(&line) {
                    fast += 1;
                    assert_eq!(
                        Some(owned(f)),
                        simd(&line),
                        "{:?}",
                        String::from_utf8_lossy(&line)
                    );
                }
            }
        }
    }
    // Many mutations (inside strings, extra spaces) stay valid and fast; the test must see them.
    assert!(fast > 100, "only {fast} mutations took the fast path");
}
