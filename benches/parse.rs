//! Cost of reading one log line: the fast scanner
//! (`uniqd_ingest::fields::scan::scan_fields`, straight from the request bytes) against
//! simd-json (`uniqd_ingest::fields::parse::parse_fields` on a copy, with reused buffers, as
//! the fallback path does); the scanner with the default field names (`ip`, `url`,
//! `timestamp` and the gateways' names) against uniqd's three names only (the cost of
//! configurable names) and on a Traefik-style flat line; and the access-log line parser
//! (`uniqd_ingest::fields::clf::parse_clf`). Run:
//! `cargo bench -p uniqd-benches --bench parse`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use uniqd_benches::ipv4_texts;
use uniqd_ingest::fields::clf::parse_clf;
use uniqd_ingest::fields::parse::{parse_fields, Scratch};
use uniqd_ingest::fields::scan::{scan_fields, scan_fields_with};
use uniqd_ingest::fields::FieldMap;

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
    let own = FieldMap::new(&["ip"], &["url"], &["timestamp"]).expect("valid names");
    group.bench_function("scan_fields_uniqd_names_only", |b| {
        b.iter(|| {
            for line in &lines {
                black_box(scan_fields_with(black_box(line), &own).expect("plain line"));
            }
        })
    });
    let traefik: Vec<Vec<u8>> = ipv4_texts(12, 4096)
        .iter()
        .enumerate()
        .map(|(i, ip)| {
            format!(
                r#"{{"ClientHost":"{ip}","RequestMethod":"GET","RequestPath":"/page/{i}","DownstreamStatus":200,"StartUTC":"2020-06-24T15:27:00.123456Z"}}"#
            )
            .into_bytes()
        })
        .collect();
    group.bench_function("scan_fields_traefik_names", |b| {
        b.iter(|| {
            for line in &traefik {
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

fn clf(c: &mut Criterion) {
    let lines: Vec<Vec<u8>> = ipv4_texts(13, 4096)
        .iter()
        .enumerate()
        .map(|(i, ip)| {
            format!(
                r#"{ip} - - [24/Jun/2020:15:27:00 +0000] "GET /page/{i}?q=1 HTTP/1.1" 200 2326 "https://example.com/" "Mozilla/5.0 (X11; Linux x86_64)""#
            )
            .into_bytes()
        })
        .collect();
    let mut group = c.benchmark_group("clf_line");
    group.throughput(Throughput::Elements(lines.len() as u64));
    group.bench_function("parse_clf", |b| {
        b.iter(|| {
            for line in &lines {
                black_box(parse_clf(black_box(line)).expect("combined line"));
            }
        })
    });
    group.finish();
}

criterion_group!(benches, parse, clf);
criterion_main!(benches);
