//! The state file: a counter saved and loaded back has the same phase, count and registers;
//! every kind of damage is refused with an error that says what is wrong.

use uniqd_core::{Phase, StateError, UniqueCounter, STATE_VERSION};

fn counter_with(n: u64, threshold: usize) -> UniqueCounter {
    let counter = UniqueCounter::with_threshold(threshold);
    for i in 0..n {
        counter.insert_element(&i.to_le_bytes());
    }
    counter
}

#[test]
fn round_trip_keeps_phase_count_and_registers() {
    for (n, threshold) in [
        (0u64, 4096usize),
        (1, 4096),
        (4096, 4096),
        (4097, 4096),
        (200_000, 4096),
        (500, 0),
    ] {
        let saved = counter_with(n, threshold);
        let loaded = UniqueCounter::from_state(&saved.to_state(), threshold).expect("valid state");
        assert_eq!(loaded.phase(), saved.phase(), "n = {n}");
        assert_eq!(loaded.estimate(), saved.estimate(), "n = {n}");
        assert_eq!(loaded.registers(), saved.registers(), "n = {n}");
        // And counting goes on from where it was: new elements add, old ones do not.
        saved.insert_element(b"new");
        loaded.insert_element(b"new");
        if n > 0 {
            loaded.insert_element(&0u64.to_le_bytes()); // already counted before the save
        }
        assert_eq!(
            loaded.estimate(),
            saved.estimate(),
            "n = {n} after more inserts"
        );
    }
}

#[test]
fn a_smaller_configured_threshold_moves_to_the_sketch_with_the_floor() {
    let saved = counter_with(3_000, 4096);
    let loaded = UniqueCounter::from_state(&saved.to_state(), 1_000).expect("valid state");
    assert_eq!(loaded.phase(), Phase::Sketch);
    assert!(loaded.estimate() >= 1_001);
    let error = (loaded.estimate() as f64 - 3_000.0).abs() / 3_000.0;
    assert!(error < 0.03, "{}", loaded.estimate());
}

/// Recomputes the trailing CRC so that a deliberate edit reaches the later checks.
fn reseal(bytes: &mut [u8]) {
    // Same CRC-32 as the crate: zlib's, computed bitwise here to stay independent.
    let body = &bytes[..bytes.len() - 4];
    let mut crc = !0u32;
    for &b in body {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                0xedb8_8320 ^ (crc >> 1)
            } else {
                crc >> 1
            };
        }
    }
    let n = bytes.len();
    bytes[n - 4..].copy_from_slice(&(!crc).to_le_bytes());
}

#[test]
fn damage_is_refused_with_a_reason() {
    let good = counter_with(100, 4096).to_state();
    let load = |bytes: &[u8]| UniqueCounter::from_state(bytes, 4096).map(|_| ());

    assert_eq!(load(b"HYLL but not a state"), Err(StateError::NotAState));
    assert_eq!(load(&[]), Err(StateError::NotAState));

    let mut flipped = good.clone();
    flipped[5_000] ^= 0x10;
    assert!(matches!(load(&flipped), Err(StateError::Checksum { .. })));

    assert!(matches!(
        load(&good[..good.len() - 9]),
        Err(StateError::Truncated { .. })
    ));
    assert!(matches!(
        load(&good[..20]),
        Err(StateError::Truncated { .. })
    ));
    let mut longer = good.clone();
    longer.push(0);
    assert!(matches!(load(&longer), Err(StateError::Truncated { .. })));

    let mut version = good.clone();
    version[8..12].copy_from_slice(&(STATE_VERSION + 1).to_le_bytes());
    assert_eq!(load(&version), Err(StateError::Version(STATE_VERSION + 1)));

    let mut phase = good.clone();
    phase[12] = 7;
    reseal(&mut phase);
    assert_eq!(load(&phase), Err(StateError::Phase(7)));

    // Zero the registers but keep the exact hashes: the two disagree.
    let mut inconsistent = good.clone();
    inconsistent[32 + 16..32 + 12_304].fill(0);
    reseal(&mut inconsistent);
    assert_eq!(load(&inconsistent), Err(StateError::Inconsistent));

    // A huge hash count must not overflow or allocate.
    let mut count = good;
    let at = 32 + 12_304;
    count[at..at + 8].copy_from_slice(&u64::MAX.to_le_bytes());
    assert!(matches!(load(&count), Err(StateError::Truncated { .. })));
}

mod windows {
    //! Version 2: the window ring saved with the counter.

    use std::sync::Arc;

    use super::{counter_with, reseal};
    use uniqd_core::window::{HOUR_MS, MINUTE_MS};
    use uniqd_core::{
        hash_element, ManualClock, Span, StateError, UniqueCounter, WindowRing, WindowStateError,
        STATE_VERSION,
    };

    /// A whole hour (2027-01-15T08:00:00Z).
    const T0: u64 = 1_800_000_000_000 - 1_800_000_000_000 % HOUR_MS;

    fn ring_at(now_ms: u64) -> WindowRing {
        WindowRing::new(5 * MINUTE_MS, Arc::new(ManualClock::new(now_ms)))
    }

    fn count(ring: &WindowRing, window: &str) -> u64 {
        ring.count(Span::parse(window).expect(window))
            .expect(window)
            .estimate
    }

    /// A counter of 100 addresses and a ring that saw 10 of them in each of minutes 0..10,
    /// read at minute 10; minute 3 overflows its slot (1,000 more addresses).
    fn saved() -> (UniqueCounter, WindowRing, Vec<u8>) {
        let counter = counter_with(100, 4096);
        let ring = ring_at(T0 + 10 * MINUTE_MS);
        for minute in 0..10u64 {
            let n = if minute == 3 { 1_010 } else { 10 };
            for i in 0..n {
                let hash = hash_element(&(minute * 10_000 + i).to_le_bytes());
                ring.insert_hash_at(hash, None, T0 + minute * MINUTE_MS);
            }
        }
        let bytes = counter.to_state_with_windows(&ring);
        (counter, ring, bytes)
    }

    #[test]
    fn without_a_ring_the_file_stays_version_1() {
        let bytes = counter_with(10, 4096).to_state();
        assert_eq!(&bytes[8..12], &1u32.to_le_bytes());
        // It loads with a ring too, restoring no slot.
        let ring = ring_at(T0);
        let (loaded, slots) =
            UniqueCounter::from_state_with_windows(&bytes, 4096, &ring).expect("version 1");
        assert_eq!((loaded.estimate(), slots), (10, 0));
        assert_eq!(count(&ring, "7d"), 0);
    }

    #[test]
    fn round_trip_keeps_the_counter_and_every_window() {
        let (counter, ring, bytes) = saved();
        // Version 2 (windows, no groups), still what older builds read; 3 is the newest.
        assert_eq!(&bytes[8..12], &2u32.to_le_bytes());
        assert_eq!(STATE_VERSION, 3);
        let loaded_ring = ring_at(T0 + 10 * MINUTE_MS);
        let (loaded, slots) =
            UniqueCounter::from_state_with_windows(&bytes, 4096, &loaded_ring).expect("loads");
        assert_eq!(slots, 11, "10 minute slots and 1 hour slot");
        assert_eq!(loaded.registers(), counter.registers());
        for window in ["1m", "5m", "7m", "8m", "1h", "2h", "7d"] {
            assert_eq!(
                loaded_ring.count(Span::parse(window).expect(window)),
                ring.count(Span::parse(window).expect(window)),
                "{window}"
            );
        }
        // 1,100 distinct addresses, past a slot's exact set: an estimate.
        let hour = count(&loaded_ring, "1h");
        assert!(hour.abs_diff(1_100) <= 33, "{hour}");
        // Minutes 6 to 10 (the current, empty one): exact slots give an exact window.
        assert_eq!(count(&loaded_ring, "5m"), 4 * 10);
        // The counter alone loads from the same file.
        let alone = UniqueCounter::from_state(&bytes, 4096).expect("loads");
        assert_eq!(alone.estimate(), 100);
    }

    #[test]
    fn slots_the_ring_no_longer_keeps_are_dropped_on_load() {
        let (_, _, bytes) = saved();
        // 70 minutes later: the minute slots have left; the hour slot is kept.
        let later = ring_at(T0 + 80 * MINUTE_MS);
        let (_, slots) =
            UniqueCounter::from_state_with_windows(&bytes, 4096, &later).expect("loads");
        assert_eq!(slots, 1);
        assert_eq!(count(&later, "1h"), 0);
        let hours = count(&later, "2h");
        assert!(hours.abs_diff(1_100) <= 33, "{hours}");
        // A week later nothing is kept.
        let week = ring_at(T0 + 169 * HOUR_MS);
        let (_, slots) =
            UniqueCounter::from_state_with_windows(&bytes, 4096, &week).expect("loads");
        assert_eq!(slots, 0);
        assert_eq!(count(&week, "7d"), 0);
    }

    #[test]
    fn a_damaged_window_section_loads_nothing() {
        let (_, _, bytes) = saved();
        let window_at = 32 + 12_304 + 8 + 8 * 100 + 8;
        assert_eq!(&bytes[window_at..window_at + 8], b"UNIQDWIN");
        // Damage inside the section, outer checksum resealed: the section's own check fails.
        let mut damaged = bytes.clone();
        damaged[window_at + 40] ^= 1;
        reseal(&mut damaged);
        let ring = ring_at(T0 + 10 * MINUTE_MS);
        assert_eq!(
            UniqueCounter::from_state_with_windows(&damaged, 4096, &ring).map(|_| ()),
            Err(StateError::Windows(WindowStateError::Checksum))
        );
        assert_eq!(count(&ring, "7d"), 0);
        // A section length that does not match the file.
        let mut length = bytes.clone();
        length[window_at - 8] ^= 1;
        reseal(&mut length);
        assert!(matches!(
            UniqueCounter::from_state(&length, 4096),
            Err(StateError::Truncated { .. })
        ));
        // Cut anywhere: refused, nothing restored.
        for cut in (0..bytes.len()).step_by(997) {
            let ring = ring_at(T0 + 10 * MINUTE_MS);
            assert!(
                UniqueCounter::from_state_with_windows(&bytes[..cut], 4096, &ring).is_err(),
                "cut at {cut}"
            );
            assert_eq!(count(&ring, "7d"), 0, "cut at {cut}");
        }
    }
}

/// 2027-01-15T08:00:00Z, a whole hour.
const T0: u64 = 1_800_000_000_000;

/// A counter and ring at `T0` with `n` addresses in the current minute and `m` an hour ago.
fn with_windows(n: u64, m: u64, threshold: usize) -> (UniqueCounter, uniqd_core::WindowRing) {
    let ring =
        uniqd_core::WindowRing::new(0, std::sync::Arc::new(uniqd_core::ManualClock::new(T0)));
    let counter = UniqueCounter::with_threshold(threshold);
    for (range, at) in [(0..n, T0), (n..n + m, T0 - 3_600_000)] {
        for i in range {
            let hash = uniqd_core::hash_element(&i.to_le_bytes());
            counter.insert_hash(hash);
            ring.insert_hash_at(hash, None, at);
        }
    }
    (counter, ring)
}

#[test]
fn a_window_section_is_carried_through_unchanged() {
    let (counter, ring) = with_windows(5, 300, 4096);
    let file = counter.to_state_with_windows(&ring);
    let (loaded, section) = UniqueCounter::from_state_keeping_windows(&file, 4096).expect("loads");
    let section = section.expect("a version 2 file has a window section");
    assert_eq!(section, ring.to_state());
    // Counting goes on with windows off; the section is saved back as it was.
    loaded.insert_element(b"new");
    let carried = loaded.to_state_with_window_section(&section);
    assert_eq!(&carried[8..12], &2u32.to_le_bytes());
    let (_, again) = UniqueCounter::from_state_keeping_windows(&carried, 4096).expect("loads");
    assert_eq!(again.as_deref(), Some(&section[..]));
    // Windows on again: the ring is restored as saved.
    let restored =
        uniqd_core::WindowRing::new(0, std::sync::Arc::new(uniqd_core::ManualClock::new(T0)));
    let (back, _) =
        UniqueCounter::from_state_with_windows(&carried, 4096, &restored).expect("loads");
    assert_eq!(back.estimate(), counter.estimate() + 1);
    assert_eq!(restored.to_state(), ring.to_state());
    // A version 1 file has no section.
    let (_, none) =
        UniqueCounter::from_state_keeping_windows(&counter.to_state(), 4096).expect("loads");
    assert_eq!(none, None);
}

#[test]
fn a_damaged_window_section_is_refused_with_windows_off_too() {
    let (counter, ring) = with_windows(3, 0, 4096);
    let mut file = counter.to_state_with_windows(&ring);
    // The section's last byte is its own CRC; flip a byte before it and re-seal the file's.
    let at = file.len() - 4 - 4 - 1;
    file[at] ^= 0x40;
    reseal(&mut file);
    assert!(
        UniqueCounter::from_state(&file, 4096).is_ok(),
        "the counter alone is fine"
    );
    let err = UniqueCounter::from_state_keeping_windows(&file, 4096).expect_err("refused");
    assert!(matches!(err, StateError::Windows(_)), "{err:?}");
}

/// Groups "a" (3 addresses, exact), "b" (500, a sketch at threshold 100) and 20 one-line
/// groups for `__other__` (2 slots).
fn with_groups(threshold: usize) -> (UniqueCounter, uniqd_core::Groups) {
    let counter = UniqueCounter::with_threshold(threshold);
    let groups = uniqd_core::Groups::new(2, threshold).expect("valid");
    let add = |group: &str, i: u64| {
        let hash = uniqd_core::hash_element(&i.to_le_bytes());
        counter.insert_hash(hash);
        groups.record(group, hash);
    };
    (0..3).for_each(|i| add("a", i));
    (0..500).for_each(|i| add("b", 1_000 + i));
    (0..20).for_each(|i| add(&format!("g{i}"), 10_000 + i));
    (counter, groups)
}

mod groups {
    //! Version 3: the groups saved with the counter (and the window ring, or not).

    use super::{counter_with, reseal, with_groups, with_windows};
    use uniqd_core::{
        Groups, GroupsRestored, GroupsStateError, StateError, StateSections, UniqueCounter,
    };

    fn snapshot(groups: &Groups) -> (Vec<(String, u64)>, u64) {
        let snap = groups.snapshot();
        let named = snap
            .groups
            .iter()
            .map(|g| (g.name.clone(), g.estimate))
            .collect();
        (named, snap.other.estimate)
    }

    #[test]
    fn round_trip_with_and_without_windows() {
        let (counter, groups) = with_groups(100);
        let section = groups.to_state("host");
        let (_, ring) = with_windows(4, 2, 100);
        let ring_section = ring.to_state();
        for windows in [None, Some(&ring_section[..])] {
            let file = counter.to_state_with_sections(StateSections {
                windows,
                groups: Some(&section),
            });
            assert_eq!(&file[8..12], &3u32.to_le_bytes());
            let (loaded, sections) =
                UniqueCounter::from_state_with_sections(&file, 100).expect("version 3");
            assert_eq!(loaded.registers(), counter.registers());
            assert_eq!(sections.windows, windows);
            assert_eq!(sections.groups, Some(&section[..]));
            let back = Groups::new(2, 100).expect("valid");
            assert_eq!(
                back.restore_state(sections.groups.expect("groups"), "host"),
                Ok(GroupsRestored::Loaded {
                    tracked: 2,
                    folded: 0
                })
            );
            assert_eq!(snapshot(&back), snapshot(&groups));
            // The counter alone loads from a version 3 file, and the window-aware loaders too.
            assert!(UniqueCounter::from_state(&file, 100).is_ok());
            let (_, kept) = UniqueCounter::from_state_keeping_windows(&file, 100).expect("loads");
            assert_eq!(kept.as_deref(), windows);
        }
    }

    #[test]
    fn versions_1_and_2_still_load_without_groups() {
        let v1 = counter_with(10, 4096).to_state();
        let (counter, ring) = with_windows(5, 3, 4096);
        let v2 = counter.to_state_with_windows(&ring);
        for (file, version) in [(&v1, 1u32), (&v2, 2)] {
            assert_eq!(&file[8..12], &version.to_le_bytes());
            let (_, sections) = UniqueCounter::from_state_with_sections(file, 4096).expect("loads");
            assert_eq!(sections.groups, None);
            assert_eq!(sections.windows.is_some(), version == 2);
        }
        // Without groups the writer keeps the old versions.
        let sections = StateSections {
            windows: Some(&ring.to_state()),
            groups: None,
        };
        assert_eq!(counter.to_state_with_sections(sections), v2);
        assert_eq!(
            counter_with(10, 4096).to_state_with_sections(StateSections::default()),
            v1
        );
    }

    #[test]
    fn a_damaged_groups_section_is_refused() {
        let (counter, groups) = with_groups(100);
        let section = groups.to_state("host");
        let good = counter.to_state_with_sections(StateSections {
            windows: None,
            groups: Some(&section),
        });
        // The file's CRC covers the section.
        let mut flipped = good.clone();
        let at = good.len() - 100;
        flipped[at] ^= 0x01;
        assert!(matches!(
            UniqueCounter::from_state_with_sections(&flipped, 100),
            Err(StateError::Checksum { .. })
        ));
        // Re-sealed, the section's own CRC refuses it.
        reseal(&mut flipped);
        let (_, sections) =
            UniqueCounter::from_state_with_sections(&flipped, 100).expect("outer is fine");
        let section = sections.groups.expect("groups");
        assert_eq!(
            Groups::check_state(section),
            Err(GroupsStateError::Checksum)
        );
        let target = Groups::new(2, 100).expect("valid");
        assert_eq!(
            target.restore_state(section, "host"),
            Err(GroupsStateError::Checksum)
        );
        assert!(target.snapshot().groups.is_empty());
        let message = StateError::Groups(GroupsStateError::Checksum).to_string();
        assert!(message.contains("groups"), "{message}");
        // A section length past the end of the file.
        let mut long = good.clone();
        let at = good.len() - 4 - section.len() - 8;
        long[at..at + 8].copy_from_slice(&u64::MAX.to_le_bytes());
        reseal(&mut long);
        assert!(matches!(
            UniqueCounter::from_state_with_sections(&long, 100),
            Err(StateError::Truncated { .. })
        ));
        // A missing section (cut after the window section's length).
        let mut cut = good[..good.len() - 4 - section.len() - 8].to_vec();
        cut.extend_from_slice(&[0; 4]);
        reseal(&mut cut);
        assert!(matches!(
            UniqueCounter::from_state_with_sections(&cut, 100),
            Err(StateError::Truncated { .. })
        ));
    }
}

/// Writes the committed version 2 and 3 seeds of the `state_file` fuzz target (format: a selector
/// byte, then the file; see `crates/fuzz/fuzz_targets/state_file.rs`):
/// `cargo test -p uniqd-core --test state_file -- --ignored write_state_file_fuzz_seeds`.
#[test]
#[ignore = "writes crates/fuzz/seeds/state_file; run by hand when the format changes"]
fn write_state_file_fuzz_seeds() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds/state_file");
    // Selector 0x06: threshold 100, no re-seal.
    for (name, n, m) in [("v2_exact_windows", 5, 3), ("v2_sketch_windows", 400, 300)] {
        let (counter, ring) = with_windows(n, m, 100);
        let mut seed = vec![0x06];
        seed.extend(counter.to_state_with_windows(&ring));
        std::fs::write(dir.join(name), seed).expect("write seed");
    }
    let (counter, groups) = with_groups(100);
    let (_, ring) = with_windows(2, 1, 100);
    let section = groups.to_state("host");
    for (name, windows) in [
        ("v3_groups", None),
        ("v3_groups_windows", Some(ring.to_state())),
    ] {
        let mut seed = vec![0x06];
        seed.extend(counter.to_state_with_sections(uniqd_core::StateSections {
            windows: windows.as_deref(),
            groups: Some(&section),
        }));
        std::fs::write(dir.join(name), seed).expect("write seed");
    }
}
