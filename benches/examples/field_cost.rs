//! What the configurable field names cost the fast scanner, in instructions (reproducible
//! on a busy machine, unlike the criterion times of `benches/parse.rs`): the lines of
//! `parse_line/scan_fields` read `REPS` times under the map named by the argument, so that
//! `valgrind --tool=callgrind` counts of two runs, divided by the lines read, give the cost
//! per line of one map against another:
//!
//! ```sh
//! cargo build --profile bench -p uniqd-benches --example field_cost
//! for map in none own default traefik; do
//!   valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!     target/release/examples/field_cost $map 2>&1 | grep refs
//! done
//! ```
//!
//! `none` only builds the lines (the fixed cost to subtract), `own` reads them under `ip`,
//! `url`, `timestamp` only, `default` under the default lists, `traefik` reads Traefik lines
//! under the default lists.
#![allow(clippy::print_stdout)] // an example whose output is its result

use std::hint::black_box;

use uniqd_benches::ipv4_texts;
use uniqd_ingest::fields::scan::scan_fields_with;
use uniqd_ingest::fields::FieldMap;

const LINES: usize = 4096;
const REPS: usize = 100;

fn main() {
    let which = std::env::args().nth(1).unwrap_or_else(|| "default".into());
    let lines: Vec<Vec<u8>> = if which == "traefik" {
        ipv4_texts(12, LINES)
            .iter()
            .enumerate()
            .map(|(i, ip)| {
                format!(
                    r#"{{"ClientHost":"{ip}","RequestMethod":"GET","RequestPath":"/page/{i}","DownstreamStatus":200,"StartUTC":"2020-06-24T15:27:00.123456Z"}}"#
                )
                .into_bytes()
            })
            .collect()
    } else {
        ipv4_texts(11, LINES)
            .iter()
            .enumerate()
            .map(|(i, ip)| {
                format!(
                    r#"{{"timestamp":"2020-06-24T15:27:00.123456Z","ip":"{ip}","url":"/page/{i}"}}"#
                )
                .into_bytes()
            })
            .collect()
    };
    let own = FieldMap::new(&["ip"], &["url"], &["timestamp"]).expect("valid names");
    let map = match which.as_str() {
        "none" => return,
        "own" => &own,
        "default" | "traefik" => FieldMap::standard(),
        other => panic!("unknown map {other:?}: none, own, default or traefik"),
    };
    let mut read = 0usize;
    for _ in 0..REPS {
        for line in &lines {
            read += usize::from(scan_fields_with(black_box(line), black_box(map)).is_some());
        }
    }
    assert_eq!(read, LINES * REPS, "every line is plain");
    println!("{which}: {read} lines");
}
