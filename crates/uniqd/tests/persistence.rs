//! `--state-file` with the built binary: restarts after SIGTERM and SIGKILL,
//! files that must not load, `--state-reset-on-error`, a SIGTERM under load
//! that loses no accepted request, and the time windows saved with the count
//! (window slots the ring no longer keeps dropped at start).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashSet;
use std::path::Path;
use std::sync::{Arc, Mutex};

use common::process::{run_to_exit, Process};
use common::*;
use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpStream;
use uniqd_core::window::{HOUR_MS, MINUTE_MS};
use uniqd_core::{hash_ip_str, ManualClock, UniqueCounter, WindowRing};

/// The counter saved in `path`, if it exists and loads.
fn saved(path: &Path, threshold: usize) -> Option<UniqueCounter> {
    let bytes = std::fs::read(path).ok()?;
    UniqueCounter::from_state(&bytes, threshold).ok()
}

/// `unique_ip_addresses` and the phase label that is 1, from a scrape.
async fn count_and_phase(metrics: std::net::SocketAddr) -> (f64, String) {
    let text = get(metrics, "/metrics").await.text();
    let count = sample_value(&text, "unique_ip_addresses").expect("estimate");
    let phase = ["exact", "sketch"]
        .into_iter()
        .find(|p| {
            sample_value(&text, &format!("uniqd_counter_phase{{phase=\"{p}\"}}")) == Some(1.0)
        })
        .expect("a phase is 1");
    (count, phase.to_owned())
}

async fn post_batch(addr: std::net::SocketAddr, ips: impl Iterator<Item = String>) {
    let body: String = ips.map(|ip| log_line(&ip) + "\n").collect();
    let r = post_ndjson(addr, &body).await;
    assert_eq!(r.status, 202, "{}", r.text());
}

async fn sigterm_restart_round_trip(threshold: &str, distinct: u32, expected_phase: &str) {
    let dir = TempDir::new("sigterm");
    let state = dir.join("uniqd.state");
    let state_arg = state.to_str().unwrap();
    let flags = ["--state-file", state_arg, "--exact-threshold", threshold];

    let first = Process::spawn(&flags);
    // Every address twice, in two requests.
    for _ in 0..2 {
        post_batch(first.ingest, (0..distinct).map(distinct_ip)).await;
    }
    let before = count_and_phase(first.metrics).await;
    assert_eq!(before.1, expected_phase);
    first.signal("TERM");
    let (status, log) = first.wait();
    assert!(status.success(), "{status:?} {log:#?}");
    assert!(
        log.iter().any(|l| l.contains("state saved on shutdown")),
        "{log:#?}"
    );

    let second = Process::spawn(&flags);
    assert_eq!(count_and_phase(second.metrics).await, before);
    // Counting goes on from the loaded state: known addresses change nothing.
    post_batch(second.ingest, (0..distinct).map(distinct_ip)).await;
    assert_eq!(count_and_phase(second.metrics).await, before);
    second.signal("TERM");
    assert!(second.wait().0.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_then_restart_keeps_the_exact_count() {
    sigterm_restart_round_trip("1000", 700, "exact").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_then_restart_keeps_the_sketch_estimate() {
    sigterm_restart_round_trip("100", 5000, "sketch").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_loses_at_most_the_last_interval() {
    let dir = TempDir::new("sigkill");
    let state = dir.join("uniqd.state");
    let state_arg = state.to_str().unwrap();
    let flags = [
        "--state-file",
        state_arg,
        "--state-interval",
        "200ms",
        "--exact-threshold",
        "1000",
    ];

    let first = Process::spawn(&flags);
    post_batch(first.ingest, (0..100).map(distinct_ip)).await;
    // A periodic save (not a shutdown) puts the first batch on disk.
    poll_until("the first batch in the state file", async || {
        saved(&state, 1000).filter(|c| c.estimate() == 100)
    })
    .await;
    // The second batch may or may not be saved before the kill.
    post_batch(first.ingest, (100..200).map(distinct_ip)).await;
    first.signal("KILL");
    let (status, _) = first.wait();
    assert!(!status.success());

    let second = Process::spawn(&flags);
    let (count, phase) = count_and_phase(second.metrics).await;
    assert!((100.0..=200.0).contains(&count), "{count}");
    assert_eq!(phase, "exact");
    // No temporary file is left behind by a saver that only ever renames.
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "uniqd.state")
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    second.signal("TERM");
    assert!(second.wait().0.success());
}

/// A valid state file holding three addresses.
fn valid_state() -> Vec<u8> {
    let counter = UniqueCounter::with_threshold(1000);
    for ip in ["10.0.0.1", "10.0.0.2", "::1"] {
        counter.insert_str(ip).unwrap();
    }
    counter.to_state()
}

#[test]
fn unloadable_state_files_refuse_to_start() {
    let good = valid_state();
    let mut flipped = good.clone();
    flipped[100] ^= 0x10;
    let mut version = good.clone();
    version[8..12].copy_from_slice(&3u32.to_le_bytes());
    let cases: [(&str, Vec<u8>, &str); 5] = [
        ("corrupt", flipped, "CRC-32"),
        ("truncated", good[..good.len() - 9].to_vec(), "truncated"),
        ("unknown version", version, "version 3"),
        (
            "not a state file",
            b"hello, world\n".to_vec(),
            "not a uniqd state file",
        ),
        ("empty", Vec::new(), "not a uniqd state file"),
    ];
    for (name, bytes, reason) in cases {
        let dir = TempDir::new("refuse");
        let state = dir.join("uniqd.state");
        std::fs::write(&state, &bytes).unwrap();
        let output = run_to_exit(&["--state-file", state.to_str().unwrap()]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{name}: {stderr}");
        for needle in [
            state.to_str().unwrap(),
            reason,
            "refusing to start",
            "--state-reset-on-error",
        ] {
            assert!(stderr.contains(needle), "{name}: no {needle:?} in {stderr}");
        }
        // Never reset silently: the file is exactly as it was.
        assert_eq!(std::fs::read(&state).unwrap(), bytes, "{name}");
    }
}

#[test]
fn unwritable_state_path_refuses_to_start() {
    let dir = TempDir::new("unwritable");
    let state = dir.join("no-such-dir/uniqd.state");
    let output = run_to_exit(&["--state-file", state.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("cannot write the state file"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_flag_starts_empty_and_keeps_the_bad_file() {
    let dir = TempDir::new("reset");
    let state = dir.join("uniqd.state");
    let mut bad = valid_state();
    bad[40] ^= 1;
    std::fs::write(&state, &bad).unwrap();

    let process = Process::spawn(&[
        "--state-file",
        state.to_str().unwrap(),
        "--state-reset-on-error",
    ]);
    assert_eq!(count_and_phase(process.metrics).await.0, 0.0);
    // The bad file is kept aside, byte for byte; a fresh state replaced it.
    let kept: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains("uniqd.state.corrupt-"))
        .collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(std::fs::read(&kept[0]).unwrap(), bad);
    assert_eq!(saved(&state, 4096).map(|c| c.estimate()), Some(0));
    // Loudly: an error-level line naming where the bad file went.
    let line = process
        .startup
        .iter()
        .find(|l| l.contains("STATE FILE UNUSABLE"))
        .expect("the reset is logged");
    let json: serde_json::Value = serde_json::from_str(line).unwrap();
    assert_eq!(json["level"], "ERROR", "{json}");
    assert_eq!(json["moved_to"], kept[0].to_str().unwrap(), "{json}");
    process.signal("TERM");
    assert!(process.wait().0.success());
}

/// One keep-alive client: posts distinct addresses until the server goes
/// away, recording every address answered 202. Any answer other than 202 is
/// a failure.
async fn client(
    addr: std::net::SocketAddr,
    id: u32,
    accepted: Arc<Mutex<HashSet<String>>>,
    unanswered: Arc<Mutex<u64>>,
) {
    let mut seq = 0u32;
    'connect: loop {
        let Ok(stream) = TcpStream::connect(addr).await else {
            return; // refused: the server has stopped accepting
        };
        let (mut reader, mut writer) = stream.into_split();
        loop {
            let ip = distinct_ip(id << 16 | seq);
            seq += 1;
            let request = keep_alive_post(Some("application/json"), log_line(&ip).as_bytes());
            if writer.write_all(&request).await.is_err() {
                *unanswered.lock().unwrap() += 1;
                continue 'connect;
            }
            match tokio::time::timeout(DEADLINE, read_response(&mut reader)).await {
                Ok(Ok(response)) => {
                    assert_eq!(response.status, 202, "{}", response.text());
                    accepted.lock().unwrap().insert(ip);
                    if response.header("connection") == Some("close") {
                        continue 'connect;
                    }
                }
                // Closed before answering (idle keep-alive closed by the drain).
                Ok(Err(_)) => {
                    *unanswered.lock().unwrap() += 1;
                    continue 'connect;
                }
                Err(_) => panic!("no response within the deadline"),
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_loses_no_accepted_request() {
    let dir = TempDir::new("load");
    let state = dir.join("uniqd.state");
    let flags = [
        "--state-file",
        state.to_str().unwrap(),
        "--exact-threshold",
        "1000000",
    ];
    let process = Process::spawn(&flags);
    let accepted = Arc::new(Mutex::new(HashSet::new()));
    let unanswered = Arc::new(Mutex::new(0));
    let clients: Vec<_> = (0..8)
        .map(|id| {
            tokio::spawn(client(
                process.ingest,
                id,
                Arc::clone(&accepted),
                Arc::clone(&unanswered),
            ))
        })
        .collect();
    // SIGTERM while the clients are busy.
    poll_until("load to build up", async || {
        (accepted.lock().unwrap().len() >= 1000).then_some(())
    })
    .await;
    process.signal("TERM");
    for client in clients {
        tokio::time::timeout(DEADLINE, client)
            .await
            .expect("clients stop once the server is gone")
            .expect("client failed");
    }
    let (status, log) = process.wait();
    assert!(status.success(), "{status:?} {log:#?}");

    let accepted = accepted.lock().unwrap().len();
    let saved_count = saved(&state, 1_000_000).expect("state saved").estimate();
    assert_eq!(
        saved_count,
        accepted as u64,
        "distinct addresses answered 202 vs saved count (unanswered: {})",
        unanswered.lock().unwrap()
    );
    let restarted = Process::spawn(&flags);
    let (count, phase) = count_and_phase(restarted.metrics).await;
    assert_eq!(count, accepted as f64);
    assert_eq!(phase, "exact");
    restarted.signal("TERM");
    assert!(restarted.wait().0.success());
}

/// `unique_ip_addresses` of `GET /api/v1/unique?window=<window>`.
async fn window_count(metrics: std::net::SocketAddr, window: &str) -> u64 {
    let response = get(metrics, &format!("/api/v1/unique?window={window}")).await;
    assert_eq!(response.status, 200, "{}", response.text());
    response.json()["unique_ip_addresses"]
        .as_u64()
        .expect("a count")
}

async fn window_counts(metrics: std::net::SocketAddr) -> Vec<u64> {
    let mut counts = Vec::new();
    for window in ["5m", "1h", "24h", "7d"] {
        counts.push(window_count(metrics, window).await);
    }
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_then_restart_keeps_the_window_counts() {
    let dir = TempDir::new("windows");
    let state = dir.join("uniqd.state");
    let flags = ["--state-file", state.to_str().unwrap()];
    let first = Process::spawn(&flags);
    // 300 distinct addresses: past a slot's exact set of 256, so its registers are saved.
    post_batch(first.ingest, (0..300).map(distinct_ip)).await;
    post_batch(first.ingest, (250..320).map(distinct_ip)).await;
    let before = window_counts(first.metrics).await;
    assert!(before.iter().all(|&c| c.abs_diff(320) <= 10), "{before:?}");
    first.signal("TERM");
    assert!(first.wait().0.success());
    let saved_bytes = std::fs::read(&state).unwrap();
    assert_eq!(&saved_bytes[8..12], &2u32.to_le_bytes(), "format version 2");

    let second = Process::spawn(&flags);
    assert_eq!(window_counts(second.metrics).await, before);
    // Known addresses change nothing, in the windows as in the counter.
    post_batch(second.ingest, (0..320).map(distinct_ip)).await;
    assert_eq!(window_counts(second.metrics).await, before);
    second.signal("TERM");
    assert!(second.wait().0.success());

    // With --windows off the file loads (the counter alone) and is written as version 1.
    let off = Process::spawn(&["--state-file", state.to_str().unwrap(), "--windows", "off"]);
    assert!(count_and_phase(off.metrics).await.0 > 300.0);
    off.signal("TERM");
    assert!(off.wait().0.success());
    assert_eq!(&std::fs::read(&state).unwrap()[8..12], &1u32.to_le_bytes());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn window_slots_the_ring_no_longer_keeps_are_dropped_at_start() {
    // A state saved two hours ago: 50 addresses then, and 30 more in an hour slot that was
    // the oldest the ring kept then (a week before), so it is one hour too old now.
    let now = u64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap();
    let saved_at = now - 2 * HOUR_MS;
    let ring = WindowRing::new(5 * MINUTE_MS, Arc::new(ManualClock::new(saved_at)));
    let counter = UniqueCounter::with_threshold(1000);
    for (range, at) in [(0..50, saved_at), (50..80, saved_at - 166 * HOUR_MS)] {
        for i in range {
            let hash = hash_ip_str(&distinct_ip(i)).unwrap();
            counter.insert_hash(hash);
            ring.insert_hash_at(hash, None, at);
        }
    }
    let dir = TempDir::new("stale-windows");
    let state = dir.join("uniqd.state");
    std::fs::write(&state, counter.to_state_with_windows(&ring)).unwrap();

    let process = Process::spawn(&["--state-file", state.to_str().unwrap()]);
    // The counter keeps everything since it started counting.
    assert_eq!(count_and_phase(process.metrics).await.0, 80.0);
    // The minute slots of two hours ago have left; their hour is still in the day; the
    // hour of eight days ago has left the week.
    assert_eq!(window_counts(process.metrics).await, [0, 0, 50, 50]);
    let line = process
        .startup
        .iter()
        .find(|l| l.contains("state loaded"))
        .expect("the load is logged");
    let json: serde_json::Value = serde_json::from_str(line).unwrap();
    assert_eq!(
        json["window_slots"], 1,
        "only the hour slot of two hours ago: {json}"
    );
    process.signal("TERM");
    assert!(process.wait().0.success());
}
