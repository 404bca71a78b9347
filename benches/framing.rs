//! Cost of framing a 64 KiB batch of the load benchmark's 100-byte logs, per log: NDJSON
//! (`NdjsonBatch`, lines found with memchr) against the same logs as one JSON array
//! (`JsonBatch`, elements found by the string/depth-tracking splitter) and as concatenated
//! objects, each fed in 16 KiB chunks and counted into a fresh counter's views. Fields and
//! recording are the same for all three, so the difference is the splitting. Run:
//! `cargo bench -p uniqd-benches --bench framing`.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use uniqd_benches::ipv4_texts;
use uniqd_core::{UniqueCounter, Views};
use uniqd_ingest::framing::json::JsonBatch;
use uniqd_ingest::framing::ndjson::NdjsonBatch;

/// 655 logs of exactly 100 bytes with their separator, as benches/load/logs.lua builds them.
fn logs() -> Vec<String> {
    ipv4_texts(7, 655)
        .iter()
        .enumerate()
        .map(|(i, ip)| {
            let head = format!(
                r#"{{"timestamp":"2020-06-24T15:27:00.123456Z","ip":"{ip}","url":"/page/{}"#,
                i % 100
            );
            format!("{head}{}\"}}", "x".repeat(100 - head.len() - 3))
        })
        .collect()
}

fn framing(c: &mut Criterion) {
    let logs = logs();
    let ndjson: String = logs.iter().map(|l| format!("{l}\n")).collect();
    let array = format!("[{}]", logs.join(","));
    let stream = logs.concat();
    let views = Views::new(Arc::new(UniqueCounter::new()));
    let mut group = c.benchmark_group("framing_64k");
    group.throughput(Throughput::Elements(logs.len() as u64));
    group.bench_function("ndjson_lines", |b| {
        b.iter(|| {
            let mut batch = NdjsonBatch::new(&views, 1 << 20);
            for chunk in ndjson.as_bytes().chunks(16 * 1024) {
                batch.feed(black_box(chunk));
            }
            black_box(batch.finish().accepted)
        })
    });
    for (name, body) in [("json_array", &array), ("json_stream", &stream)] {
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut batch = JsonBatch::new(&views, 1 << 20);
                for chunk in body.as_bytes().chunks(16 * 1024) {
                    batch
                        .feed(black_box(chunk), &mut |_| true)
                        .expect("no limit reached");
                }
                black_box(batch.finish().accepted)
            })
        });
    }
    group.finish();
}

criterion_group!(benches, framing);
criterion_main!(benches);
