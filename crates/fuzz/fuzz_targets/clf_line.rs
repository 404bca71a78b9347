//! Fuzz target: the access-log line parser, `uniqd_ingest::fields::clf::parse_clf`, and
//! `text/plain` batches of such lines (`NdjsonBatch` with `Syntax::Clf`).
//!
//! Properties, for any bytes:
//! * no panic, no hang;
//! * an error's offset is within the line;
//! * an accepted line is valid UTF-8, starts with its host and a space, and holds its request
//!   target; its time is what the timestamp parser reads from the bracketed time;
//! * a batch of the input's lines, fed in two chunks split anywhere, accepts and rejects
//!   exactly the lines `parse_clf` accepts and rejects (with a valid address), in order.

#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use uniqd_core::{hash_ip_str, UniqueCounter, Views};
use uniqd_ingest::fields::clf::parse_clf;
use uniqd_ingest::fields::timestamp::parse_clf_time_ms;
use uniqd_ingest::fields::{FieldMap, FieldSpec, Syntax};
use uniqd_ingest::framing::ndjson::NdjsonBatch;

fuzz_target!(|data: &[u8]| {
    let first = data.split(|&b| b == b'\n').next().unwrap_or_default();
    match parse_clf(first) {
        Ok(line) => {
            let text = std::str::from_utf8(first).expect("accepted lines are UTF-8");
            assert!(text.starts_with(line.host));
            assert_eq!(text.as_bytes().get(line.host.len()), Some(&b' '));
            if let Some(target) = line.target {
                assert!(text.contains(target));
            }
            // The fourth space-separated field opens the time (the first three may hold '[').
            let rest = text.splitn(4, ' ').nth(3).expect("a time field");
            let close = rest.find(']').expect("a closed time");
            assert_eq!(
                parse_clf_time_ms(rest[1..close].as_bytes()),
                Some(line.time_ms)
            );
        }
        Err(e) => assert!(e.offset <= first.len(), "{e:?}"),
    }

    // The batch agrees with the line parser.
    let mut expected = (0u64, 0u64);
    for piece in data.split(|&b| b == b'\n') {
        let line = piece.strip_suffix(b"\r").unwrap_or(piece);
        if line.iter().all(|b| matches!(b, b' ' | b'\t' | b'\r')) {
            continue;
        }
        match parse_clf(line) {
            Ok(l) if hash_ip_str(l.host).is_ok() => expected.0 += 1,
            // A host with a port or a list is resolved: counted when its address is valid.
            Ok(l) => {
                let addr = uniqd_ingest::fields::address::resolve(l.host, &Default::default());
                if addr.is_some_and(|a| hash_ip_str(a).is_ok()) {
                    expected.0 += 1;
                } else {
                    expected.1 += 1;
                }
            }
            Err(_) => expected.1 += 1,
        }
    }
    let views = Views::new(Arc::new(UniqueCounter::new()));
    let spec = FieldSpec {
        syntax: Syntax::Clf,
        map: FieldMap::standard(),
    };
    let mut batch = NdjsonBatch::new(&views, 1 << 20).with_spec(spec);
    let split = usize::from(data.first().copied().unwrap_or(0)).min(data.len());
    batch.feed(&data[..split]);
    batch.feed(&data[split..]);
    let report = batch.finish();
    assert_eq!((report.accepted, report.rejected), expected);
});
