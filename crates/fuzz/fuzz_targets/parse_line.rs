//! Fuzz target: the single-object parser, `uniqd_ingest::fields::parse::parse_line` and
//! `parse_fields`.
//!
//! Properties, for any bytes:
//! * no panic, no hang;
//! * reusing the parser's scratch buffers does not change the answer, and `parse_line` answers
//!   what `parse_fields` does;
//! * where the fast scanner (`uniqd_ingest::fields::scan::scan_fields`) answers, simd-json
//!   accepts the input and reads the same fields;
//! * where serde_json (an independent parser) also reads the input, both agree (with a field
//!   map of uniqd's own names only: `ip`, `url`, `timestamp`) on what the top-level `ip` member
//!   is: the same string (the last duplicate wins in both), or the same
//!   reason there is none (not an object, missing, not a string); and on `url` and
//!   `timestamp` (the string, or none when absent or not a string). The parsers may disagree on
//!   which inputs are JSON at all (nesting past serde_json's 128 levels, number ranges, lone
//!   surrogates); those inputs are not compared.

#![no_main]

use std::cell::RefCell;

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use std::sync::LazyLock;

use uniqd_ingest::fields::parse::{
    parse_fields, parse_fields_with, parse_line, LineError, Scratch,
};
use uniqd_ingest::fields::scan::scan_fields;
use uniqd_ingest::fields::{FieldMap, LogFields, Timestamp};

/// uniqd's own names only, to compare with serde_json's top-level lookups.
static OWN: LazyLock<FieldMap> =
    LazyLock::new(|| FieldMap::new(&["ip"], &["url"], &["timestamp"]).expect("valid names"));

thread_local! {
    /// Scratch kept across inputs, as the server keeps one per thread.
    static WARM: RefCell<Scratch> = RefCell::new(Scratch::new());
}

fn parse(data: &[u8], scratch: &mut Scratch) -> Result<String, LineError> {
    let mut buf = data.to_vec();
    parse_line(&mut buf, scratch).map(str::to_owned)
}

type Fields = (String, Option<String>, Option<String>);

fn owned(f: LogFields<'_>) -> Fields {
    (
        f.ip.to_owned(),
        f.url.map(str::to_owned),
        f.timestamp.map(|t| match t {
            Timestamp::Text(s) => s.to_owned(),
            other => format!("{other:?}"),
        }),
    )
}

fn fields(data: &[u8], scratch: &mut Scratch) -> Result<Fields, LineError> {
    let mut buf = data.to_vec();
    parse_fields(&mut buf, scratch).map(owned)
}

fn own_fields(data: &[u8]) -> Result<Fields, LineError> {
    let mut buf = data.to_vec();
    parse_fields_with(&mut buf, &mut Scratch::new(), &OWN).map(owned)
}

fuzz_target!(|data: &[u8]| {
    let fresh = parse(data, &mut Scratch::new());
    let warm = WARM.with(|scratch| parse(data, &mut scratch.borrow_mut()));
    assert_eq!(fresh, warm, "a reused scratch changed the result");
    let all = fields(data, &mut Scratch::new());
    assert_eq!(
        all.as_ref().map(|f| f.0.clone()).map_err(Clone::clone),
        fresh,
        "parse_line and parse_fields disagree"
    );
    if let Some(fast) = scan_fields(data) {
        assert_eq!(
            Ok(&owned(fast)),
            all.as_ref(),
            "the fast scanner disagrees with simd-json"
        );
    }
    let own = own_fields(data);
    let fresh = own.as_ref().map(|f| f.0.clone()).map_err(Clone::clone);

    let Ok(value) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let string = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_owned);
    let expected = match &value {
        Value::Object(map) => match map.get("ip") {
            Some(Value::String(ip)) => Ok(ip.clone()),
            Some(_) => Err(LineError::IpNotString),
            None => Err(LineError::MissingIp),
        },
        _ => Err(LineError::NotAnObject),
    };
    if let (Ok((_, url, timestamp)), Value::Object(map)) = (&own, &value) {
        assert_eq!(
            url,
            &string(map.get("url")),
            "url disagrees with serde_json"
        );
        if !map.get("timestamp").is_some_and(Value::is_number) {
            assert_eq!(
                timestamp,
                &string(map.get("timestamp")),
                "timestamp disagrees with serde_json"
            );
        }
    }
    match &fresh {
        Ok(_) | Err(LineError::NotAnObject | LineError::MissingIp | LineError::IpNotString) => {
            assert_eq!(fresh, expected, "disagrees with serde_json");
        }
        // simd-json refused what serde_json read (e.g. a number out of its range).
        Err(_) => {}
    }
});
