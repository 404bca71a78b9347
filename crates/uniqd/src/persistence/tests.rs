//! Unit tests of the state file: loading, saving, the lock, links, carried windows, groups.

use std::ffi::OsString;

use super::*;

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("uniqd-persistence-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn config(path: PathBuf, reset_on_error: bool) -> StateConfig {
    StateConfig {
        path,
        interval: Duration::from_secs(10),
        reset_on_error,
        drop_windows: false,
    }
}

#[test]
fn atomic_write_replaces_and_leaves_no_temporary_file() {
    let dir = temp_dir("atomic");
    let path = dir.join("state");
    write_atomically(&path, b"one").expect("first write");
    write_atomically(&path, b"two").expect("second write");
    assert_eq!(fs::read(&path).expect("read"), b"two");
    let names: Vec<_> = fs::read_dir(&dir)
        .expect("list")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(names, [OsString::from("state")]);
    // A directory that does not exist: an error, nothing created.
    assert!(write_atomically(&dir.join("missing/state"), b"x").is_err());
    fs::remove_dir_all(&dir).expect("cleanup");
}

#[test]
fn missing_file_is_a_fresh_start() {
    let dir = temp_dir("missing");
    let counter = load(&config(dir.join("state"), false), 100, None).expect("fresh");
    assert_eq!(counter.estimate(), 0);
    assert_eq!(counter.threshold(), 100);
    fs::remove_dir_all(&dir).expect("cleanup");
}

#[test]
fn corrupt_file_refuses_or_is_moved_aside() {
    let dir = temp_dir("corrupt");
    let path = dir.join("state");
    let counter = UniqueCounter::with_threshold(100);
    counter.insert_str("1.2.3.4").expect("valid");
    let mut bytes = counter.to_state();
    bytes[40] ^= 1;
    fs::write(&path, &bytes).expect("write");

    let err = load(&config(path.clone(), false), 100, None).expect_err("must refuse");
    assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    let message = err.to_string();
    assert!(message.contains("CRC-32"), "{message}");
    assert!(message.contains("--state-reset-on-error"), "{message}");
    assert_eq!(fs::read(&path).expect("untouched"), bytes);

    let counter = load(&config(path.clone(), true), 100, None).expect("reset");
    assert_eq!(counter.estimate(), 0);
    assert!(!path.exists());
    let kept: Vec<_> = fs::read_dir(&dir)
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(kept.len(), 1);
    assert!(kept[0].starts_with("state.corrupt-"), "{kept:?}");
    fs::remove_dir_all(&dir).expect("cleanup");
}

#[tokio::test]
async fn saver_writes_only_on_change_and_round_trips() {
    let dir = temp_dir("saver");
    let path = dir.join("state");
    let counter = Arc::new(UniqueCounter::with_threshold(100));
    let mut saver = Saver::new(Arc::clone(&counter), None, &config(path.clone(), false));
    assert!(saver.save().await.expect("first save writes"));
    assert!(!saver.save().await.expect("unchanged"));
    counter.insert_str("10.0.0.1").expect("valid");
    counter.insert_str("::1").expect("valid");
    assert!(saver.save().await.expect("changed"));
    let loaded = load(&config(path, false), 100, None).expect("loads");
    assert_eq!(loaded.estimate(), 2);
    assert_eq!(loaded.registers(), counter.registers());
    fs::remove_dir_all(&dir).expect("cleanup");
}

/// A ring on a hand-driven clock at a whole hour (2027-01-15T08:00:00Z).
fn ring_at(now_ms: u64) -> (Arc<uniqd_core::ManualClock>, Arc<WindowRing>) {
    let clock = Arc::new(uniqd_core::ManualClock::new(now_ms));
    let ring = Arc::new(WindowRing::new(0, clock.clone()));
    (clock, ring)
}

fn window(ring: &WindowRing, span: &str) -> u64 {
    let span = uniqd_core::Span::parse(span).expect("a span");
    ring.count(span)
        .expect("a window the ring answers")
        .estimate
}

#[tokio::test]
async fn windows_are_saved_with_the_counter_and_stale_slots_dropped() {
    // A whole hour: 2027-01-15T08:00:00Z.
    const T0: u64 = 1_800_000_000_000;
    let dir = temp_dir("windows");
    let path = dir.join("state");
    let counter = Arc::new(UniqueCounter::with_threshold(100));
    let (clock, ring) = ring_at(T0);
    // Minute 0: two addresses; minute 10: one more.
    for (ip, at) in [
        ("10.0.0.1", T0),
        ("10.0.0.2", T0),
        ("10.0.0.3", T0 + 600_000),
    ] {
        let hash = uniqd_core::hash_ip_str(ip).expect("valid");
        counter.insert_hash(hash);
        ring.insert_hash_at(hash, None, at);
    }
    clock.set(T0 + 600_000);
    let mut saver = Saver::new(
        Arc::clone(&counter),
        Some(Arc::clone(&ring)),
        &config(path.clone(), false),
    );
    assert!(saver.save().await.expect("first save writes"));
    assert!(!saver.save().await.expect("unchanged"));
    let bytes = fs::read(&path).expect("saved");
    assert_eq!(&bytes[8..12], &2u32.to_le_bytes(), "format version 2");

    // A restart a minute later: every window as before.
    let (_, later) = ring_at(T0 + 660_000);
    let loaded = load(&config(path.clone(), false), 100, Some(&later)).expect("loads");
    assert_eq!(loaded.estimate(), 3);
    assert_eq!((window(&later, "2m"), window(&later, "1h")), (1, 3));
    assert_eq!(window(&later, "2h"), 3);

    // Two hours later the minute slots have left the ring; the hour slot stays.
    let (_, much_later) = ring_at(T0 + 2 * 3_600_000);
    load(&config(path.clone(), false), 100, Some(&much_later)).expect("loads");
    assert_eq!(window(&much_later, "1h"), 0);
    assert_eq!(window(&much_later, "3h"), 3);

    // With windows off the same file loads the counter alone.
    assert_eq!(
        load(&config(path, false), 100, None)
            .expect("loads")
            .estimate(),
        3
    );
    fs::remove_dir_all(&dir).expect("cleanup");
}

#[test]
fn a_version_1_file_loads_with_windows_on() {
    let dir = temp_dir("version1");
    let path = dir.join("state");
    let counter = UniqueCounter::with_threshold(100);
    counter.insert_str("1.2.3.4").expect("valid");
    let bytes = counter.to_state();
    assert_eq!(&bytes[8..12], &1u32.to_le_bytes(), "format version 1");
    fs::write(&path, &bytes).expect("write");
    let (_, ring) = ring_at(1_800_000_000_000);
    let loaded = load(&config(path, false), 100, Some(&ring)).expect("loads");
    assert_eq!(loaded.estimate(), 1);
    assert_eq!(window(&ring, "7d"), 0);
    fs::remove_dir_all(&dir).expect("cleanup");
}

#[tokio::test]
async fn a_second_open_of_one_state_file_is_refused_until_the_first_is_dropped() {
    let dir = temp_dir("lock");
    let path = dir.join("state");
    let config = config(path.clone(), false);
    let (_, first) = open(Some(&config), 100, None, None)
        .await
        .expect("first open");
    let first = first.expect("a saver");
    assert_eq!(first.lock_path(), Some(dir.join("state.lock").as_path()));

    let err = open(Some(&config), 100, None, None)
        .await
        .expect_err("the file is in use");
    assert_eq!(err.kind(), io::ErrorKind::ResourceBusy);
    let message = err.to_string();
    for needle in [
        path.to_str().expect("utf-8"),
        "in use by another uniqd process",
        &format!("pid={}", std::process::id()),
        "started=",
        "refusing to start",
    ] {
        assert!(message.contains(needle), "no {needle:?} in {message}");
    }
    // Through a link to the same file, too: the lock is the target's.
    let link = dir.join("link");
    std::os::unix::fs::symlink(&path, &link).expect("symlink");
    let err = open(Some(&config_at(link)), 100, None, None)
        .await
        .expect_err("the link's target is in use");
    assert_eq!(err.kind(), io::ErrorKind::ResourceBusy);

    drop(first);
    let (_, again) = open(Some(&config), 100, None, None)
        .await
        .expect("free once the first is gone");
    drop(again);
    fs::remove_dir_all(&dir).expect("cleanup");
}

fn config_at(path: PathBuf) -> StateConfig {
    config(path, false)
}

#[tokio::test]
async fn a_linked_state_file_is_written_through_the_link() {
    let dir = temp_dir("symlink");
    fs::create_dir_all(dir.join("data")).expect("target dir");
    let target = dir.join("data/state");
    let link = dir.join("state");
    // A relative link, dangling until the first save creates the target.
    std::os::unix::fs::symlink("data/state", &link).expect("symlink");
    assert_eq!(resolve_links(&link).expect("resolves"), target);

    let (counter, saver) = open(Some(&config_at(link.clone())), 100, None, None)
        .await
        .expect("opens");
    let mut saver = saver.expect("a saver");
    assert_eq!(
        saver.lock_path(),
        Some(dir.join("data/state.lock").as_path())
    );
    counter.insert_str("10.0.0.1").expect("valid");
    assert!(saver.save().await.expect("saves"));
    drop(saver);
    assert!(fs::symlink_metadata(&link)
        .expect("link")
        .file_type()
        .is_symlink());
    let loaded = load(&config_at(target.clone()), 100, None).expect("target loads");
    assert_eq!(loaded.estimate(), 1);
    // The temporary file went to the target's directory, and nothing is left of it.
    let names = |d: &Path| -> Vec<String> {
        let mut names: Vec<_> = fs::read_dir(d)
            .expect("list")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    assert_eq!(names(&dir.join("data")), ["state", "state.lock"]);
    assert_eq!(names(&dir), ["data", "state"]);

    // A loop of links is refused with a message.
    let a = dir.join("a");
    std::os::unix::fs::symlink("b", &a).expect("symlink");
    std::os::unix::fs::symlink("a", dir.join("b")).expect("symlink");
    let err = open(Some(&config_at(a)), 100, None, None)
        .await
        .expect_err("a loop");
    assert!(err.to_string().contains("symbolic links"), "{err}");
    fs::remove_dir_all(&dir).expect("cleanup");
}

#[tokio::test]
async fn windows_off_keeps_the_window_history_in_the_file() {
    const T0: u64 = 1_800_000_000_000;
    let dir = temp_dir("windows-off");
    let path = dir.join("state");
    let counter = UniqueCounter::with_threshold(100);
    let (_, ring) = ring_at(T0);
    for ip in ["10.0.0.1", "10.0.0.2"] {
        let hash = uniqd_core::hash_ip_str(ip).expect("valid");
        counter.insert_hash(hash);
        ring.insert_hash_at(hash, None, T0);
    }
    fs::write(&path, counter.to_state_with_windows(&ring)).expect("write");

    // Windows off: the count loads and grows, the saved file keeps the window section.
    let (counter, saver) = open(Some(&config_at(path.clone())), 100, None, None)
        .await
        .expect("opens");
    let mut saver = saver.expect("a saver");
    counter.insert_str("10.0.0.3").expect("valid");
    assert!(saver.save().await.expect("saves"));
    drop(saver);
    let bytes = fs::read(&path).expect("saved");
    assert_eq!(&bytes[8..12], &2u32.to_le_bytes(), "still format version 2");

    // Windows on again: the history is there, the count has the third address.
    let (_, later) = ring_at(T0 + 60_000);
    let loaded = load(&config_at(path.clone()), 100, Some(&later)).expect("loads");
    assert_eq!(loaded.estimate(), 3);
    assert_eq!(window(&later, "1h"), 2);
    fs::remove_dir_all(&dir).expect("cleanup");
}

#[tokio::test]
async fn failed_saves_are_counted_and_good_ones_timestamped() {
    let dir = temp_dir("save-failures");
    let path = dir.join("state");
    let counter = Arc::new(UniqueCounter::with_threshold(100));
    let mut saver = Saver::new(Arc::clone(&counter), None, &config_at(path.clone()));
    let status = saver.status();
    assert!(saver.save().await.expect("first save"));
    assert_eq!(status.failures(), 0);
    assert!(status.last_save_unix_seconds() > 1.7e9);
    // The state file's name taken by a directory: the rename fails.
    fs::remove_file(&path).expect("remove");
    fs::create_dir(&path).expect("a directory in the way");
    fs::write(path.join("keep"), b"x").expect("non-empty");
    counter.insert_str("10.0.0.1").expect("valid");
    assert!(saver.save().await.is_err());
    assert!(saver.save().await.is_err());
    assert_eq!(status.failures(), 2);
    fs::remove_dir_all(&path).expect("out of the way");
    assert!(saver.save().await.expect("saves again"));
    assert_eq!(status.failures(), 2);
    fs::remove_dir_all(&dir).expect("cleanup");
}

/// The groups' names and counts, and `__other__`'s count.
fn group_counts(groups: &Groups) -> (Vec<(String, u64)>, u64) {
    let snap = groups.snapshot();
    let named = snap
        .groups
        .iter()
        .map(|g| (g.name.clone(), g.estimate))
        .collect();
    (named, snap.other.estimate)
}

/// Opens `path` with `--group-by field` (2 slots), records `lines` (group, address), saves
/// and releases the file; returns the groups.
async fn groups_session(path: &Path, field: &str, lines: &[(&str, &str)]) -> Arc<Groups> {
    let groups = Arc::new(Groups::new(2, 100).expect("valid"));
    let (counter, saver) = open(
        Some(&config_at(path.to_owned())),
        100,
        None,
        Some((&groups, field)),
    )
    .await
    .expect("opens");
    let mut saver = saver.expect("a saver");
    for (group, ip) in lines {
        let hash = uniqd_core::hash_ip_str(ip).expect("valid");
        counter.insert_hash(hash);
        groups.record(group, hash);
    }
    saver.save().await.expect("saves");
    groups
}

#[tokio::test]
async fn groups_are_saved_and_loaded_back() {
    let dir = temp_dir("groups");
    let path = dir.join("state");
    let lines = [
        ("a", "10.0.0.1"),
        ("a", "10.0.0.2"),
        ("b", "10.0.0.3"),
        ("c", "10.0.0.4"),
    ];
    let before = groups_session(&path, "host", &lines).await;
    assert_eq!(&fs::read(&path).expect("saved")[8..12], &3u32.to_le_bytes());
    let after = groups_session(&path, "host", &[]).await;
    assert_eq!(group_counts(&after), group_counts(&before));
    assert_eq!(group_counts(&after).0.len(), 2);
    assert_eq!(group_counts(&after).1, 1, "c is in __other__");

    // Another field: the groups are dropped, the total is kept.
    let other = groups_session(&path, "service", &[]).await;
    assert_eq!(group_counts(&other), (Vec::new(), 0));
    assert_eq!(
        load(&config_at(path.clone()), 100, None)
            .expect("loads")
            .estimate(),
        4
    );
    fs::remove_dir_all(&dir).expect("cleanup");
}

#[tokio::test]
async fn group_by_off_keeps_the_groups_in_the_file() {
    let dir = temp_dir("groups-off");
    let path = dir.join("state");
    let before = groups_session(&path, "host", &[("a", "10.0.0.1"), ("b", "10.0.0.2")]).await;
    let saved = fs::read(&path).expect("saved");

    // --group-by off: the count grows, the groups section is saved again as it was.
    let (counter, saver) = open(Some(&config_at(path.clone())), 100, None, None)
        .await
        .expect("opens");
    let mut saver = saver.expect("a saver");
    counter.insert_str("10.0.0.9").expect("valid");
    assert!(saver.save().await.expect("saves"));
    drop(saver);
    let bytes = fs::read(&path).expect("saved");
    assert_eq!(&bytes[8..12], &3u32.to_le_bytes(), "still format version 3");
    let (_, sections) = UniqueCounter::from_state_with_sections(&bytes, 100).expect("loads");
    let (_, was) = UniqueCounter::from_state_with_sections(&saved, 100).expect("loads");
    assert_eq!(sections.groups, was.groups);

    // On again: the groups are back.
    let after = groups_session(&path, "host", &[]).await;
    assert_eq!(group_counts(&after), group_counts(&before));

    // --state-drop-windows (windows and groups off) writes version 1.
    let dropping = StateConfig {
        drop_windows: true,
        ..config_at(path.clone())
    };
    let (_, saver) = open(Some(&dropping), 100, None, None).await.expect("opens");
    drop(saver);
    assert_eq!(&fs::read(&path).expect("saved")[8..12], &1u32.to_le_bytes());
    fs::remove_dir_all(&dir).expect("cleanup");
}

#[test]
fn a_damaged_groups_section_refuses_the_load_and_restores_nothing() {
    let dir = temp_dir("groups-damaged");
    let path = dir.join("state");
    let groups = Groups::new(2, 100).expect("valid");
    groups.record("a", 1);
    let mut section = groups.to_state("host");
    section[20] ^= 1;
    let counter = UniqueCounter::with_threshold(100);
    counter.insert_hash(1);
    let file = counter.to_state_with_sections(StateSections {
        windows: None,
        groups: Some(&section),
    });
    fs::write(&path, file).expect("write");
    let fresh = Groups::new(2, 100).expect("valid");
    for groups in [None, Some((&fresh, "host"))] {
        let err = load_state(&config_at(path.clone()), 100, None, groups).expect_err("refused");
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(err.to_string().contains("groups"), "{err}");
    }
    assert_eq!(group_counts(&fresh), (Vec::new(), 0));
    fs::remove_dir_all(&dir).expect("cleanup");
}
