//! `--state-file` with the built binary: restarts after SIGTERM and SIGKILL,
//! files that must not load, `--state-reset-on-error`, a SIGTERM under load
//! that loses no accepted request, the time windows saved with the count
//! (window slots the ring no longer keeps dropped at start, the history kept
//! through a start with `--windows off`), one process per state file (the
//! lock), a symbolic link written through, and failed saves on `/metrics`.

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
            sample_value(&text, &format!("uniqd_estimator_phase{{phase=\"{p}\"}}")) == Some(1.0)
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
        // The lock file stays by design (see `uniqd::persistence::lock`).
        .filter(|n| n != "uniqd.state" && n != "uniqd.state.lock")
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
    // The first version this build does not read (3 is the groups' version now).
    let unknown = uniqd_core::STATE_VERSION + 1;
    version[8..12].copy_from_slice(&unknown.to_le_bytes());
    let unknown = format!("version {unknown}");
    let cases: [(&str, Vec<u8>, &str); 5] = [
        ("corrupt", flipped, "CRC-32"),
        ("truncated", good[..good.len() - 9].to_vec(), "truncated"),
        ("unknown version", version, &unknown),
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

    // With --windows off the file loads (the counter), the count grows and is saved, and the
    // window history is kept in the file, loudly: a warning says so.
    let off = Process::spawn(&["--state-file", state.to_str().unwrap(), "--windows", "off"]);
    let (count, _) = count_and_phase(off.metrics).await;
    assert!(count > 300.0, "{count}");
    assert!(
        off.startup
            .iter()
            .any(|l| l.contains("WARN") && l.contains("window history")),
        "{:#?}",
        off.startup
    );
    post_batch(off.ingest, (1000..1010).map(distinct_ip)).await;
    let grown = count_and_phase(off.metrics).await.0;
    assert!(grown > count, "{grown} vs {count}");
    off.signal("TERM");
    assert!(off.wait().0.success());
    assert_eq!(&std::fs::read(&state).unwrap()[8..12], &2u32.to_le_bytes());
    assert_eq!(saved(&state, 4096).unwrap().estimate() as f64, grown);

    // Windows on again: the history is still there; the count has what came in meanwhile.
    let on = Process::spawn(&flags);
    assert_eq!(window_counts(on.metrics).await, before);
    assert_eq!(count_and_phase(on.metrics).await.0, grown);
    on.signal("TERM");
    assert!(on.wait().0.success());

    // Dropping the history is explicit (for a rollback to a build without windows), and only
    // with windows off.
    let refused = run_to_exit(&[
        "--state-file",
        state.to_str().unwrap(),
        "--state-drop-windows",
    ]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("needs --windows off"), "{stderr}");
    let drop = Process::spawn(&[
        "--state-file",
        state.to_str().unwrap(),
        "--windows",
        "off",
        "--state-drop-windows",
    ]);
    drop.signal("TERM");
    assert!(drop.wait().0.success());
    assert_eq!(&std::fs::read(&state).unwrap()[8..12], &1u32.to_le_bytes());
    assert_eq!(saved(&state, 4096).unwrap().estimate() as f64, grown);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_process_on_one_state_file_refuses_to_start() {
    let dir = TempDir::new("lock");
    let state = dir.join("uniqd.state");
    let flags = ["--state-file", state.to_str().unwrap()];
    let first = Process::spawn(&flags);
    post_batch(first.ingest, (0..5).map(distinct_ip)).await;

    // Through the same path, and through a symbolic link to it: both refused.
    let link = dir.join("link.state");
    std::os::unix::fs::symlink(&state, &link).unwrap();
    for path in [&state, &link] {
        let output = run_to_exit(&["--state-file", path.to_str().unwrap()]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{stderr}");
        for needle in [
            state.to_str().unwrap(),
            "in use by another uniqd process",
            &format!("pid={}", first.pid()),
            "refusing to start",
        ] {
            assert!(stderr.contains(needle), "no {needle:?} in {stderr}");
        }
    }
    // The first one went on untouched, and saves on shutdown as ever.
    assert_eq!(count_and_phase(first.metrics).await.0, 5.0);
    first.signal("TERM");
    assert!(first.wait().0.success());

    // Once it has exited, a new process starts on the file.
    let second = Process::spawn(&flags);
    assert_eq!(count_and_phase(second.metrics).await.0, 5.0);
    second.signal("TERM");
    assert!(second.wait().0.success());
    // A SIGKILLed holder frees the lock too (the kernel drops it with the process).
    let third = Process::spawn(&flags);
    third.signal("KILL");
    let _ = third.wait();
    let fourth = Process::spawn(&flags);
    fourth.signal("TERM");
    assert!(fourth.wait().0.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_symlinked_state_file_is_written_through_the_link() {
    let dir = TempDir::new("symlink");
    std::fs::create_dir(dir.join("volume")).unwrap();
    let target = dir.join("volume/uniqd.state");
    let link = dir.join("uniqd.state");
    std::os::unix::fs::symlink("volume/uniqd.state", &link).unwrap();
    let flags = [
        "--state-file",
        link.to_str().unwrap(),
        "--state-interval",
        "100ms",
    ];

    let first = Process::spawn(&flags);
    post_batch(first.ingest, (0..7).map(distinct_ip)).await;
    // Periodic saves and the final one all go to the target; the link stays a link.
    poll_until("the batch saved in the link's target", async || {
        saved(&target, 4096).filter(|c| c.estimate() == 7)
    })
    .await;
    first.signal("TERM");
    assert!(first.wait().0.success());
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(saved(&link, 4096).map(|c| c.estimate()), Some(7));
    assert!(dir.join("volume/uniqd.state.lock").exists());

    let second = Process::spawn(&flags);
    assert_eq!(count_and_phase(second.metrics).await.0, 7.0);
    second.signal("TERM");
    assert!(second.wait().0.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_saves_show_on_metrics_and_the_replica_stays_ready() {
    let dir = TempDir::new("save-failures");
    let state = dir.join("uniqd.state");
    let process = Process::spawn(&[
        "--state-file",
        state.to_str().unwrap(),
        "--state-interval",
        "100ms",
    ]);
    let scrape = |metrics| async move {
        let text = get(metrics, "/metrics").await.text();
        let failures = sample_value(&text, "uniqd_state_save_failures_total").expect("counter");
        let last = sample_value(&text, "uniqd_state_last_save_timestamp_seconds").expect("gauge");
        (failures, last)
    };
    let (failures, started) = scrape(process.metrics).await;
    assert_eq!(failures, 0.0);
    assert!(started > 1.7e9, "{started}");

    // The state file's name taken by a (non-empty) directory: every rename fails. (Root
    // ignores permissions, so a read-only directory would not do.)
    std::fs::remove_file(&state).unwrap();
    std::fs::create_dir(&state).unwrap();
    std::fs::write(state.join("in-the-way"), b"x").unwrap();
    post_batch(process.ingest, (0..3).map(distinct_ip)).await;
    let mut failing = (0.0, 0.0);
    for _ in 0..2 {
        // Two scrapes that each see more failures: the saver keeps retrying.
        let before = failing.0;
        let deadline = std::time::Instant::now() + DEADLINE;
        loop {
            failing = scrape(process.metrics).await;
            if failing.0 > before {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "no failure counted");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
    assert!(failing.0 >= 2.0, "{failing:?}");
    let stale = failing.1;
    // Still ready: it counts correctly, it only cannot persist (alert, not readiness).
    assert_eq!(get(process.metrics, "/readyz").await.status, 200);

    // The fault removed: the next save succeeds, the timestamp moves on, the count stops.
    std::fs::remove_dir_all(&state).unwrap();
    poll_until("a good save after the failures", async || {
        saved(&state, 4096).filter(|c| c.estimate() == 3)
    })
    .await;
    // The file is renamed into place a moment before the saver records the good save, so
    // the timestamp is polled for, not read once.
    let (after, last) = poll_until("the last good save's timestamp to move on", async || {
        let (after, last) = scrape(process.metrics).await;
        (last > stale).then_some((after, last))
    })
    .await;
    assert!(
        after >= failing.0 && last > stale,
        "{after} {last} {failing:?}"
    );
    process.signal("TERM");
    assert!(process.wait().0.success());
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
