//! Cost of reading one log line: the fast scanner
//! (`uniqd_ingest::fields::scan::scan_fields`, straight from the request bytes) against
//! simd-json (`uniqd_ingest::fields::parse::parse_fields` on a copy, with reused buffers, as
//! the fallback path does). Run:
//! `cargo bench -p uniqd-benches --bench parse`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use uniqd_benches::ipv4_texts;
use uniqd_ingest::fields::parse::{parse_fields, Scratch};
use uniqd_ingest::fields::scan::scan_fields;

/// 4,096 lines of the shape the load benchmark sends (about 90 bytes each).
fn lines() -> Vec<Vec<u8>> {
    ipv4_texts(11, 4096)
        .iter()
        .enumerate()
        .map(|(i, ip)| {
            format!(
                r#"{{"timestamp":"2020-06-24T15:27:00.123456Z","ip":"{ip}","url":"/page/{i}"}}"#
            )
            .into_bytes()
        })
        .collect()
}

fn parse(c: &mut Criterion) {
    let lines = lines();
    let mut group = c.benchmark_group("parse_line");
    group.throughput(Throughput::Elements(lines.len() as u64));
    group.bench_function("scan_fields", |b| {
        b.iter(|| {
            for line in &lines {
                black_box(scan_fields(black_box(line)).expect("plain line"));
            }
        })
    });
    let mut scratch = Scratch::new();
    let mut buf = Vec::new();
    group.bench_function("simd_json_with_copy", |b| {
        b.iter(|| {
            for line in &lines {
                buf.clear();
                buf.extend_from_slice(black_box(line));
                black_box(
                    parse_fields(&mut buf, &mut scratch)
                        .expect("valid line")
                        .ip
                        .len(),
                );
            }
        })
    });
    group.finish();
}

criterion_group!(benches, parse);
criterion_main!(benches);
