//! Fuzz target: `application/json` bodies (`uniqd_ingest::framing::json::JsonBatch` and its
//! splitter `json_split::JsonSplitter`) fed in arbitrary chunks.
//!
//! Input layout: byte 0 picks the element limit (1 to 1,021 bytes), bytes 1 and 2 seed the
//! chunk boundaries (chunks of 0 to 63 bytes, empty chunks included), the rest is the body.
//!
//! Properties:
//! * chunking changes nothing: the report (accepted, rejected, the first ten failures with
//!   their indexes and reasons, the next index) and the counter's registers equal those of the
//!   whole body fed at once; or both stop, for a first value over the limit;
//! * with no limit in the way, the splitter with the fields stage accepts the body exactly
//!   when serde_json reads it as an array of objects (a body starting with `[`) or as a stream
//!   of objects (any other body), where serde_json and simd-json agree on what JSON is (no
//!   nesting past serde_json's 128 levels, no `\u` escapes: lone surrogates, no exponents:
//!   number ranges).

#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use uniqd_core::{UniqueCounter, Views};
use uniqd_ingest::fields::parse::{parse_fields, LineError, Scratch};
use uniqd_ingest::framing::json::JsonBatch;
use uniqd_ingest::framing::json_split::{JsonSplitter, Piece, Stop};
use uniqd_ingest::framing::ndjson::BatchReport;

fn run(body: &[u8], max: usize, seed: Option<u32>) -> (Result<BatchReport, Stop>, Vec<u8>) {
    let views = Views::new(Arc::new(UniqueCounter::new()));
    let mut batch = JsonBatch::new(&views, max);
    let mut rest = body;
    let mut seed = seed;
    let mut stopped = None;
    while !rest.is_empty() {
        let take = match &mut seed {
            Some(s) => {
                *s = s.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                ((*s >> 16) as usize % 64).min(rest.len())
            }
            None => rest.len(),
        };
        let (chunk, tail) = rest.split_at(take);
        if let Err(stop) = batch.feed(chunk, &mut |n| n <= max) {
            stopped = Some(stop);
            break;
        }
        rest = tail;
    }
    let result = match stopped {
        Some(stop) => Err(stop),
        None => Ok(batch.finish()),
    };
    (result, views.counter().registers().to_vec())
}

fn is_object(bytes: &[u8]) -> bool {
    let mut copy = bytes.to_vec();
    matches!(
        parse_fields(&mut copy, &mut Scratch::new()),
        Ok(_) | Err(LineError::MissingIp | LineError::IpNotString)
    )
}

fn splitter_accepts(body: &[u8]) -> bool {
    let mut splitter = JsonSplitter::new(usize::MAX / 2);
    let mut ok = true;
    let mut on_piece = |piece: Piece<'_>| {
        ok &= matches!(piece, Piece::Element { bytes, .. } if is_object(bytes));
    };
    if splitter.feed(body, &mut |_| true, &mut on_piece).is_err() {
        return false;
    }
    splitter.finish(&mut on_piece);
    ok
}

fn serde_accepts(body: &[u8]) -> bool {
    let first = body.iter().find(|b| !matches!(b, b' ' | b'\t' | b'\r' | b'\n'));
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

/// Inputs both parsers read the same way (see the module docs).
fn comparable(body: &[u8]) -> bool {
    let opens = body.iter().filter(|&&b| b == b'[' || b == b'{').count();
    opens < 100
        && !body.windows(2).any(|w| {
            w == b"\\u" || (w[0].is_ascii_digit() && matches!(w[1], b'e' | b'E' | b'.'))
        })
}

fuzz_target!(|data: &[u8]| {
    let [limit, seed_a, seed_b, body @ ..] = data else {
        return;
    };
    let max = 1 + usize::from(*limit) * 4;
    let seed = u32::from(*seed_a) << 8 | u32::from(*seed_b);

    let whole = run(body, max, None);
    let chunked = run(body, max, Some(seed));
    assert_eq!(chunked, whole, "chunking changed the outcome");

    if comparable(body) {
        assert_eq!(
            splitter_accepts(body),
            serde_accepts(body),
            "splitter and serde_json disagree"
        );
    }
});
