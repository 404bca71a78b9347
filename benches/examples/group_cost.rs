//! What `--group-by` costs a line, in instructions (reproducible on a busy machine, unlike
//! the criterion times of `benches/groups.rs`): the 64 KiB NDJSON batch of `benches/groups.rs`
//! (655 logs of 100 bytes, 50 `host`s) through `NdjsonBatch` into the views `REPS` times,
//! with groups off or on, so that `valgrind --tool=callgrind` counts of the runs, divided by
//! the lines, give the cost per line of groups on against off:
//!
//! ```sh
//! cargo build --profile bench -p uniqd-benches --example group_cost
//! for mode in none off on; do
//!   valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!     target/release/examples/group_cost $mode 2>&1 | grep refs
//! done
//! ```
//!
//! `none` only builds the logs and the views (the fixed cost to subtract), `off` counts the
//! batches with the default map and no groups, `on` with `--group-by host` and 100 groups.
//! A second argument sets the number of batches (default 200): the difference between runs
//! of 400 and 200 is the steady cost per line, without the one-time costs (the 50 groups'
//! counters are allocated on their first lines).
#![allow(clippy::print_stdout)] // an example whose output is its result

use std::hint::black_box;
use std::sync::Arc;

use uniqd_benches::ipv4_texts;
use uniqd_core::{Groups, UniqueCounter, Views, DEFAULT_MAX_GROUPS};
use uniqd_ingest::fields::{FieldMap, FieldSpec, Syntax};
use uniqd_ingest::framing::ndjson::NdjsonBatch;

const LINES: usize = 655;
const REPS: usize = 200;

fn main() {
    let which = std::env::args().nth(1).unwrap_or_else(|| "on".into());
    let reps = std::env::args()
        .nth(2)
        .map_or(REPS, |n| n.parse().expect("a number of batches"));
    let ndjson: String = ipv4_texts(7, LINES)
        .iter()
        .enumerate()
        .map(|(i, ip)| {
            let head = format!(
                r#"{{"ip":"{ip}","host":"site-{}.example","url":"/page/{}"#,
                i % 50,
                i % 100
            );
            format!("{head}{}\"}}\n", "x".repeat(100 - head.len() - 3))
        })
        .collect();
    let counter = Arc::new(UniqueCounter::new());
    let groups = Arc::new(Groups::new(DEFAULT_MAX_GROUPS, 4096).expect("valid bound"));
    let on_map = FieldMap::standard()
        .clone()
        .with_group_by("host")
        .expect("valid name");
    let (views, map) = match which.as_str() {
        "none" => return,
        "off" => (Views::new(counter), FieldMap::standard()),
        "on" => (
            Views::new(counter).with_groups(Arc::clone(&groups)),
            &on_map,
        ),
        other => panic!("unknown mode {other:?}: none, off or on"),
    };
    let spec = FieldSpec {
        syntax: Syntax::Json,
        map,
    };
    let mut accepted = 0;
    for _ in 0..reps {
        let mut batch = NdjsonBatch::new(&views, 1 << 20).with_spec(spec);
        for chunk in ndjson.as_bytes().chunks(16 * 1024) {
            batch.feed(black_box(chunk));
        }
        accepted += batch.finish().accepted;
    }
    assert_eq!(accepted as usize, LINES * reps, "every log is counted");
    if which == "on" {
        assert_eq!(groups.snapshot().groups.len(), 50, "every host is a group");
    }
    println!("{which}: {accepted} lines");
}
