//! Cost of per-group counts (`--group-by host`) per log, side by side with the same logs
//! and groups off: a 64 KiB NDJSON batch of 100-byte logs with a `host` member (50 sites)
//! through `NdjsonBatch` into the views (framing, fields, counter, and with groups on the
//! group's member, read in the same scan, counted in `Groups`), and `Groups::record` alone
//! (which pins the epoch itself; ingest pins once for the total and the group). The
//! difference between `on` and `off` is what a line pays for its group (budget: about
//! 30 ns; `docs/groups.md` has the measured figures). Run:
//! `cargo bench -p uniqd-benches --bench groups`.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use uniqd_benches::ipv4_texts;
use uniqd_core::{hash_ip_str, Groups, UniqueCounter, Views, DEFAULT_MAX_GROUPS};
use uniqd_ingest::fields::{FieldMap, FieldSpec, Syntax};
use uniqd_ingest::framing::ndjson::NdjsonBatch;

/// 655 logs of exactly 100 bytes, each with one of 50 `host`s.
fn logs() -> Vec<String> {
    ipv4_texts(7, 655)
        .iter()
        .enumerate()
        .map(|(i, ip)| {
            let head = format!(
                r#"{{"ip":"{ip}","host":"site-{}.example","url":"/page/{}"#,
                i % 50,
                i % 100
            );
            format!("{head}{}\"}}", "x".repeat(100 - head.len() - 3))
        })
        .collect()
}

fn groups(c: &mut Criterion) {
    let logs = logs();
    let ndjson: String = logs.iter().map(|l| format!("{l}\n")).collect();
    let mut group = c.benchmark_group("groups_64k");
    group.throughput(Throughput::Elements(logs.len() as u64));
    let off_views = Views::new(Arc::new(UniqueCounter::new()));
    let on_views = Views::new(Arc::new(UniqueCounter::new())).with_groups(Arc::new(
        Groups::new(DEFAULT_MAX_GROUPS, 4096).expect("valid bound"),
    ));
    let on_map = FieldMap::standard()
        .clone()
        .with_group_by("host")
        .expect("valid name");
    for (name, views, map) in [
        ("off", &off_views, FieldMap::standard()),
        ("on", &on_views, &on_map),
    ] {
        let spec = FieldSpec {
            syntax: Syntax::Json,
            map,
        };
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut batch = NdjsonBatch::new(views, 1 << 20).with_spec(spec);
                for chunk in ndjson.as_bytes().chunks(16 * 1024) {
                    batch.feed(black_box(chunk));
                }
                black_box(batch.finish().accepted)
            })
        });
    }
    group.finish();

    // Groups::record alone, for one hot group and for 50 (each group's counter is its own
    // 16 KiB of registers and exact set: with many groups, a line's two cache lines are
    // rarely in cache, which is most of the cost), next to the total counter's insert.
    let hashes: Vec<u64> = ipv4_texts(9, 1024)
        .iter()
        .map(|ip| hash_ip_str(ip).expect("valid address"))
        .collect();
    let total = UniqueCounter::new();
    let mut i = 0usize;
    c.bench_function("counter_insert_hash", |b| {
        b.iter(|| {
            i = i.wrapping_add(1);
            total.insert_hash(black_box(hashes[i % 1024]));
        })
    });
    for n in [1usize, 50] {
        let groups = Groups::new(DEFAULT_MAX_GROUPS, 4096).expect("valid bound");
        let names: Vec<String> = (0..n).map(|i| format!("site-{i}.example")).collect();
        c.bench_function(&format!("groups_record_tracked_{n}"), |b| {
            b.iter(|| {
                i = i.wrapping_add(1);
                groups.record(black_box(&names[i % n]), black_box(hashes[i % 1024]));
            })
        });
    }
}

criterion_group!(benches, groups);
criterion_main!(benches);
