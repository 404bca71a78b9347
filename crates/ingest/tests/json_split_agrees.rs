//! Property test: the array/stream splitter ([`JsonSplitter`]) with the fields stage
//! ([`parse_fields`], simd-json) accepts exactly what serde_json accepts: a body starting with
//! `[` iff serde_json reads it as an array of objects, any other body iff serde_json reads it
//! as a stream of objects; and how the body is cut into chunks changes nothing.

use proptest::prelude::*;
use serde_json::Value;
use uniqd_ingest::fields::parse::{parse_fields, LineError, Scratch};
use uniqd_ingest::framing::json_split::{JsonSplitter, Piece};

#[derive(Debug, Clone, PartialEq, Eq)]
enum Seen {
    /// An element and whether the fields stage read it as an object.
    Element(u64, usize, bool),
    TooLong(u64),
    Malformed(u64, usize),
}

/// Whether the fields stage reads `bytes` as a JSON object (with or without a usable `ip`).
fn is_object(bytes: &[u8]) -> bool {
    let mut copy = bytes.to_vec();
    matches!(
        parse_fields(&mut copy, &mut Scratch::new()),
        Ok(_) | Err(LineError::MissingIp | LineError::IpNotString)
    )
}

fn split(body: &[u8], chunk: usize) -> Vec<Seen> {
    let mut splitter = JsonSplitter::new(1 << 20);
    let mut seen = Vec::new();
    let mut on_piece = |piece: Piece<'_>| {
        seen.push(match piece {
            Piece::Element {
                index,
                bytes,
                offset,
            } => Seen::Element(index, offset, is_object(bytes)),
            Piece::TooLong { index } => Seen::TooLong(index),
            Piece::Malformed { index, offset, .. } => Seen::Malformed(index, offset),
        });
    };
    for part in body.chunks(chunk.max(1)) {
        splitter
            .feed(part, &mut |_| true, &mut on_piece)
            .expect("no limit reached");
    }
    splitter.finish(&mut on_piece);
    seen
}

fn accepted(seen: &[Seen]) -> bool {
    seen.iter().all(|s| matches!(s, Seen::Element(_, _, true)))
}

fn serde_accepts(body: &[u8]) -> bool {
    let first = body
        .iter()
        .find(|b| !matches!(b, b' ' | b'\t' | b'\r' | b'\n'));
    if first == Some(&b'[') {
        matches!(
            serde_json::from_slice::<Value>(body),
            Ok(Value::Array(items)) if items.iter().all(Value::is_object)
        )
    } else {
        serde_json::Deserializer::from_slice(body)
            .into_iter::<Value>()
            .all(|v| matches!(v, Ok(Value::Object(_))))
    }
}

/// JSON text of a value, nested at most `depth` levels, with the bytes a splitter must not
/// mistake for structure inside strings (brackets, braces, commas, escaped quotes).
fn value(depth: u32) -> BoxedStrategy<String> {
    let leaf = prop_oneof![
        "-?(0|[1-9][0-9]{0,5})(\\.[0-9]{1,3})?([eE][+-]?[0-9]{1,2})?".boxed(),
        prop_oneof![Just("true"), Just("false"), Just("null")]
            .prop_map(str::to_owned)
            .boxed(),
        "\"([ a-z\\[\\]{},:]|\\\\\"|\\\\\\\\|\\\\n|é){0,8}\"".boxed(),
    ];
    if depth == 0 {
        return leaf.boxed();
    }
    prop_oneof![
        3 => leaf,
        1 => proptest::collection::vec(value(depth - 1), 0..3)
            .prop_map(|items| format!("[{}]", items.join(","))),
        1 => object(depth - 1),
    ]
    .boxed()
}

fn object(depth: u32) -> BoxedStrategy<String> {
    proptest::collection::vec(("[a-z]{1,4}", value(depth)), 0..4)
        .prop_map(|members| {
            let body: Vec<String> = members
                .iter()
                .map(|(k, v)| format!("\"{k}\" : {v}"))
                .collect();
            format!("{{\"ip\":\"10.0.0.1\",{}}}", body.join(" ,")).replace(",}", "}")
        })
        .boxed()
}

/// An element: mostly an object, sometimes another value.
fn element() -> BoxedStrategy<String> {
    prop_oneof![6 => object(3), 1 => value(2)].boxed()
}

/// `text` with up to two single-byte edits (delete, insert or replace by a structural byte).
fn mutated(text: String) -> BoxedStrategy<Vec<u8>> {
    let bytes = text.into_bytes();
    let len = bytes.len();
    proptest::collection::vec(
        (
            0..3u8,
            0..=len,
            prop_oneof![
                Just(b'['),
                Just(b']'),
                Just(b'{'),
                Just(b'}'),
                Just(b','),
                Just(b'"'),
                Just(b'\\'),
                Just(b' '),
                Just(b':'),
                Just(b'1')
            ],
        ),
        0..3,
    )
    .prop_map(move |edits| {
        let mut out = bytes.clone();
        for (kind, at, byte) in edits {
            let at = at.min(out.len());
            match kind {
                0 if at < out.len() => {
                    out.remove(at);
                }
                1 => out.insert(at, byte),
                _ if at < out.len() => out[at] = byte,
                _ => {}
            }
        }
        out
    })
    .boxed()
}

fn array_body() -> impl Strategy<Value = String> {
    (
        proptest::collection::vec(element(), 0..5),
        prop_oneof![Just(","), Just(" , "), Just(",\n")],
        prop_oneof![Just(""), Just(" "), Just("\r\n")],
    )
        .prop_map(|(items, sep, ws)| format!("{ws}[{ws}{}{ws}]{ws}", items.join(sep)))
}

fn stream_body() -> impl Strategy<Value = String> {
    (
        proptest::collection::vec(element(), 0..5),
        prop_oneof![Just(""), Just(" "), Just("\n"), Just("\r\n"), Just("\t")],
    )
        .prop_map(|(items, sep)| items.join(sep))
        .prop_filter("a body starting with [ is an array", |s| {
            !s.trim_start().starts_with('[')
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arrays_agree_with_serde_json(body in array_body().prop_flat_map(mutated), chunk in 1usize..40) {
        let whole = split(&body, body.len());
        prop_assert_eq!(&split(&body, chunk), &whole, "chunking changed the pieces");
        prop_assert_eq!(accepted(&whole), serde_accepts(&body), "{}", String::from_utf8_lossy(&body));
    }

    #[test]
    fn streams_agree_with_serde_json(body in stream_body().prop_flat_map(mutated), chunk in 1usize..40) {
        let whole = split(&body, body.len());
        prop_assert_eq!(&split(&body, chunk), &whole, "chunking changed the pieces");
        prop_assert_eq!(accepted(&whole), serde_accepts(&body), "{}", String::from_utf8_lossy(&body));
    }

    #[test]
    fn valid_arrays_are_accepted_element_by_element(items in proptest::collection::vec(object(3), 0..8)) {
        let body = format!("[{}]", items.join(","));
        let seen = split(body.as_bytes(), 7);
        prop_assert_eq!(seen.len(), items.len());
        prop_assert!(accepted(&seen));
    }
}
