//! Fuzz target: NDJSON batches (`uniqd_ingest::framing::ndjson::NdjsonBatch`) fed in arbitrary
//! chunks.
//!
//! Input layout: byte 0 picks the line-length limit (1 to 1,021 bytes), bytes 1 and 2 seed the
//! chunk boundaries (chunks of 0 to 63 bytes, empty chunks included), the rest is the body.
//!
//! Properties: the report (accepted, rejected, the first ten failures with their line numbers
//! and reasons) and the counter's registers equal those of a line-by-line model that splits
//! the whole body at once; so `accepted + rejected` is the number of non-blank lines, and how
//! the body is chunked changes nothing.

#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::Arc;

use uniqd_core::{UniqueCounter, Views};
use uniqd_ingest::fields::address::resolve;
use uniqd_ingest::fields::parse::{parse_line, LineError, Scratch};
use uniqd_ingest::fields::TrustedProxies;
use uniqd_ingest::framing::ndjson::{BatchReport, LineFailure, NdjsonBatch, MAX_REPORTED_ERRORS};

/// What the batch must report, computed line by line from the whole body.
fn model(body: &[u8], max_line: usize, counter: &UniqueCounter) -> BatchReport {
    let mut report = BatchReport::default();
    let mut scratch = Scratch::new();
    let pieces: Vec<&[u8]> = body.split(|&b| b == b'\n').collect();
    for (i, piece) in pieces.iter().enumerate() {
        // The piece after the final newline is no line when empty.
        if i + 1 == pieces.len() && piece.is_empty() {
            break;
        }
        report.through_line = i as u64 + 1;
        let line = piece.strip_suffix(b"\r").unwrap_or(piece);
        let result = if line.len() > max_line {
            Err(LineError::LineTooLong { limit: max_line })
        } else if line.iter().all(|b| matches!(b, b' ' | b'\t' | b'\r')) {
            continue;
        } else {
            let mut buf = line.to_vec();
            // A bare address, else the address part of one with a port or of a list.
            // Refined as the fields stage does (the offset and reason on the bytes received).
            parse_line(&mut buf, &mut scratch)
                .map_err(|e| e.refine(line))
                .and_then(|ip| {
                    counter
                        .insert_str(ip)
                        .or_else(|_| {
                            let addr = resolve(ip, &TrustedProxies::default()).unwrap_or(ip);
                            counter.insert_str(addr)
                        })
                        .map_err(|_| LineError::invalid_ip(ip))
                })
        };
        match result {
            Ok(()) => report.accepted += 1,
            Err(error) => {
                report.rejected += 1;
                if report.errors.len() < MAX_REPORTED_ERRORS {
                    report.errors.push(LineFailure {
                        line: i as u64 + 1,
                        error,
                    });
                }
            }
        }
    }
    report
}

fuzz_target!(|data: &[u8]| {
    let [limit, seed_a, seed_b, body @ ..] = data else {
        return;
    };
    let max_line = 1 + usize::from(*limit) * 4;
    let mut seed = u32::from(*seed_a) << 8 | u32::from(*seed_b);

    let expected_counter = UniqueCounter::new();
    let expected = model(body, max_line, &expected_counter);

    let views = Views::new(Arc::new(UniqueCounter::new()));
    let counter = views.counter();
    let mut batch = NdjsonBatch::new(&views, max_line);
    let mut rest = body;
    while !rest.is_empty() {
        seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        let take = ((seed >> 16) as usize % 64).min(rest.len());
        let (chunk, tail) = rest.split_at(take);
        batch.feed(chunk);
        rest = tail;
    }
    let report = batch.finish();

    assert_eq!(
        report, expected,
        "chunked batch disagrees with the line model"
    );
    assert_eq!(counter.registers(), expected_counter.registers());
    assert_eq!(counter.estimate(), expected_counter.estimate());
});
