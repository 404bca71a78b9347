//! Unit tests of the window ring with an injected clock.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use super::*;
use crate::hash_element;

/// A whole hour (2027-01-15T08:00:00Z), so minute and hour boundaries line up.
const T0: u64 = 1_800_000_000_000 - 1_800_000_000_000 % HOUR_MS;

fn ring() -> (Arc<ManualClock>, WindowRing) {
    let clock = Arc::new(ManualClock::new(T0));
    let ring = WindowRing::new(5 * MINUTE_MS, clock.clone());
    (clock, ring)
}

fn h(i: u64) -> u64 {
    hash_element(format!("10.{}.{}.{}", i >> 16 & 255, i >> 8 & 255, i & 255).as_bytes())
}

fn span(text: &str) -> Span {
    Span::parse(text).expect(text)
}

fn count(ring: &WindowRing, window: &str) -> WindowCount {
    ring.count(span(window)).expect(window)
}

fn exact(n: u64) -> WindowCount {
    WindowCount {
        estimate: n,
        exact: true,
    }
}

#[test]
fn distinct_minutes_give_exact_window_counts() {
    let (clock, ring) = ring();
    // Minute k (k = 0..10) sees addresses 10k .. 10k+19 (overlapping the next minute).
    for k in 0..10u64 {
        for i in 10 * k..10 * k + 20 {
            ring.insert_hash(h(i), None);
        }
        clock.advance(MINUTE_MS);
    }
    // Now in minute 10 (empty). Window w covers minutes 10-(w-1) ..= 10.
    assert_eq!(count(&ring, "1m"), exact(0));
    assert_eq!(count(&ring, "2m"), exact(20)); // minute 9: 90..110
    assert_eq!(count(&ring, "3m"), exact(30)); // minutes 8, 9: 80..110
    assert_eq!(count(&ring, "11m"), exact(110));
    assert_eq!(count(&ring, "1h"), exact(110));
    // The hour tier: all of it is in the current hour.
    assert_eq!(count(&ring, "2h"), exact(110));
    assert_eq!(count(&ring, "7d"), exact(110));
    // Cached closed parts give the same answers on a second read.
    assert_eq!(count(&ring, "11m"), exact(110));
    assert_eq!(count(&ring, "7m"), exact(70));
}

#[test]
fn hours_roll_out_of_long_windows() {
    let (clock, ring) = ring();
    // Hour k (k = 0..30) sees 5 addresses of its own.
    for k in 0..30u64 {
        for i in 0..5 {
            ring.insert_hash(h(k * 100 + i), None);
        }
        clock.advance(HOUR_MS);
    }
    // Now in hour 30 (empty): 24h covers hours 7..=30.
    assert_eq!(count(&ring, "24h"), exact(23 * 5));
    assert_eq!(count(&ring, "2h"), exact(5));
    assert_eq!(count(&ring, "1d"), exact(23 * 5));
    assert_eq!(count(&ring, "7d"), exact(30 * 5));
    // The last hour (minute tier) is empty.
    assert_eq!(count(&ring, "1h"), exact(0));
    // After a week, hour 0 has left.
    clock.advance(138 * HOUR_MS); // hour 168: retained 1..=168
    assert_eq!(count(&ring, "7d"), exact(29 * 5));
}

#[test]
fn unanswerable_windows_are_errors() {
    let (_clock, ring) = ring();
    assert_eq!(
        ring.count(span("90m")),
        Err(SpanError::NotWholeHours { minutes: 90 })
    );
    assert!(matches!(
        ring.count(span("8d")),
        Err(SpanError::TooLong { .. })
    ));
}

#[test]
fn event_time_within_skew_is_used_else_arrival() {
    let (clock, ring) = ring();
    clock.advance(10 * MINUTE_MS);
    let now = clock.now_ms();
    assert_eq!(
        ring.effective_time(Some(now - 4 * MINUTE_MS), now),
        now - 4 * MINUTE_MS
    );
    assert_eq!(ring.effective_time(Some(now - 6 * MINUTE_MS), now), now);
    assert_eq!(ring.effective_time(Some(now + 1), now), now);
    assert_eq!(ring.effective_time(None, now), now);
    ring.insert_hash(h(1), Some(now - 4 * MINUTE_MS));
    assert_eq!(count(&ring, "4m").estimate, 0);
    assert_eq!(count(&ring, "5m").estimate, 1);
    // A skew beyond the minute tier is clamped.
    assert_eq!(
        WindowRing::new(u64::MAX, clock.clone()).skew_ms(),
        MAX_SKEW_MS
    );
}

#[test]
fn merges_above_the_thresholds_estimate_the_union() {
    let (clock, ring) = ring();
    // 30 minutes of 2,000 addresses each, half shared with the previous minute: a union of
    // 31,000 over 30 minutes; each slot overflows its exact set.
    for k in 0..30u64 {
        for i in 1_000 * k..1_000 * k + 2_000 {
            ring.insert_hash(h(i), None);
        }
        clock.advance(MINUTE_MS);
    }
    // Back into minute 29 (the last written).
    clock.set(clock.now_ms() - MINUTE_MS);
    // 3 standard errors of the 0.81% sketch.
    let bound = 3.0 * crate::SKETCH_RELATIVE_STANDARD_ERROR;
    for (window, truth) in [
        ("1m", 2_000f64),
        ("2m", 3_000.0),
        ("10m", 11_000.0),
        ("30m", 31_000.0),
        ("1h", 31_000.0),
        ("2h", 31_000.0),
    ] {
        let c = count(&ring, window);
        assert!(!c.exact);
        let err = (c.estimate as f64 - truth).abs() / truth;
        assert!(err < bound, "window {window}: {} vs {truth}", c.estimate);
    }
}

#[test]
fn series_steps_count_each_step() {
    let (clock, ring) = ring();
    // Minute k (k = 0..12) sees k + 1 addresses of its own.
    for k in 0..12u64 {
        for i in 0..=k {
            ring.insert_hash(h(k * 100 + i), None);
        }
        clock.advance(MINUTE_MS);
    }
    clock.set(clock.now_ms() - MINUTE_MS); // minute 11
    let points = ring.series(span("12m"), span("3m")).expect("valid");
    let counts: Vec<u64> = points.iter().map(|p| p.count.estimate).collect();
    assert_eq!(counts, [1 + 2 + 3, 4 + 5 + 6, 7 + 8 + 9, 10 + 11 + 12]);
    assert_eq!(points[0].start_ms, T0);
    assert!(points
        .windows(2)
        .all(|w| w[1].start_ms - w[0].start_ms == 3 * MINUTE_MS));
    let hourly = ring.series(span("3h"), span("1h")).expect("valid");
    let counts: Vec<u64> = hourly.iter().map(|p| p.count.estimate).collect();
    assert_eq!(counts, [0, 0, (1..=12).sum::<u64>()]);
    assert_eq!(
        ring.series(span("2h"), span("1m")),
        Err(SpanError::TooLong {
            minutes: 120,
            max_minutes: 60
        })
    );
}

#[test]
fn old_slots_are_reused_and_older_intervals_dropped() {
    let tier = Tier::new(4, MINUTE_MS);
    let guard = epoch::pin();
    let minute = T0 / MINUTE_MS;
    assert!(tier.insert(h(1), minute, &guard));
    assert!(tier.insert(h(2), minute + 4, &guard)); // same cell, 4 minutes later
    let mut merge = Merge::default();
    tier.merge(minute, minute + 4, minute + 4, &mut merge);
    assert_eq!(merge.count(), exact(1));
    // A write for 4 minutes ago finds a newer slot in its cell and is dropped.
    assert!(!tier.insert(h(3), minute, &guard));
}

#[test]
fn rotation_under_concurrent_inserts_loses_nothing() {
    // 4 inserters hammer the current minute while a driver advances the clock 40 times
    // across a 4-slot tier; every accepted insert of a retained minute must be counted.
    const THREADS: u64 = 4;
    let clock = Arc::new(ManualClock::new(T0));
    let tier = Arc::new(Tier::new(4, MINUTE_MS));
    let stop = Arc::new(AtomicBool::new(false));
    let inserted = Arc::new(AtomicU64::new(0));
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let (tier, stop, clock, inserted) =
                (tier.clone(), stop.clone(), clock.clone(), inserted.clone());
            std::thread::spawn(move || {
                let mut log = Vec::new();
                let mut i = 0u64;
                // Acquire: pairs with the driver's Release store of `stop`.
                while !stop.load(Ordering::Acquire) {
                    let minute = clock.now_ms() / MINUTE_MS;
                    let hash = h(t << 20 | i);
                    if tier.insert(hash, minute, &epoch::pin()) {
                        log.push((minute, hash));
                    }
                    // Relaxed: a progress counter for the driver.
                    inserted.fetch_add(1, Ordering::Relaxed);
                    i += 1;
                }
                log
            })
        })
        .collect();
    for _ in 0..40 {
        // Wait for some progress in this minute (spins; no sleeps), more than a slot's
        // exact capacity so that overflow races with rotation too.
        let target = inserted.load(Ordering::Relaxed) + 700;
        while inserted.load(Ordering::Relaxed) < target {
            std::hint::spin_loop();
        }
        clock.advance(MINUTE_MS);
    }
    // Release: see the inserters' Acquire load.
    stop.store(true, Ordering::Release);
    let mut by_minute: HashMap<u64, HashSet<u64>> = HashMap::new();
    for handle in handles {
        // A panicking inserter fails the test here.
        for (minute, hash) in handle.join().expect("inserter panicked") {
            by_minute.entry(minute).or_default().insert(hash);
        }
    }
    let now_minute = clock.now_ms() / MINUTE_MS;
    let mut checked = 0;
    for (index, contents) in tier.contents(now_minute) {
        let Some(expected) = by_minute.get(&index) else {
            continue;
        };
        checked += 1;
        match contents {
            tier::SlotContents::Registers(registers) => {
                for &hash in expected {
                    let (i, rank) = crate::index_and_rank(hash);
                    assert!(registers[i] >= rank, "minute {index}: lost a register");
                }
            }
            tier::SlotContents::Exact(hashes) => {
                let seen: HashSet<u64> = hashes.into_iter().collect();
                assert!(expected.is_subset(&seen), "minute {index}: lost a hash");
            }
        }
    }
    assert!(checked > 0, "no retained minute was written");
}

#[test]
fn concurrent_overflow_keeps_every_hash() {
    for round in 0..20u64 {
        let tier = Arc::new(Tier::new(4, MINUTE_MS));
        let minute = T0 / MINUTE_MS;
        let handles: Vec<_> = (0..4u64)
            .map(|t| {
                let tier = tier.clone();
                std::thread::spawn(move || {
                    for i in 0..150u64 {
                        tier.insert(h(round << 24 | t << 16 | i), minute, &epoch::pin());
                    }
                })
            })
            .collect();
        for handle in handles {
            handle.join().expect("inserter panicked");
        }
        let contents = tier.contents(minute);
        let [(_, tier::SlotContents::Registers(registers))] = &contents[..] else {
            panic!("600 distinct addresses overflow a 256-hash slot");
        };
        for t in 0..4u64 {
            for i in 0..150u64 {
                let (index, rank) = crate::index_and_rank(h(round << 24 | t << 16 | i));
                assert!(registers[index] >= rank);
            }
        }
    }
}

#[test]
fn memory_is_bounded_and_lazy() {
    let (clock, ring) = ring();
    let empty = ring.memory_bytes();
    assert!(empty < 4 * 1024, "{empty}");
    ring.insert_hash(h(1), None);
    // One minute slot and one hour slot, both exact.
    let one = ring.memory_bytes() - empty;
    assert!(one < 6 * 1024, "{one}");
    for i in 0..1_000 {
        ring.insert_hash(h(i), None);
    }
    let busy = ring.memory_bytes() - empty;
    assert!(busy < 2 * 20 * 1024, "{busy}");
    // Every slot of both tiers full: the stated bound, and no more.
    for k in 0..(HOUR_SLOTS as u64 + 1) {
        for i in 0..300 {
            ring.insert_hash(h(k << 12 | i), None);
        }
        clock.advance(if k < 60 { MINUTE_MS } else { HOUR_MS });
    }
    let full = ring.memory_bytes();
    assert!(full <= ring.max_memory_bytes(), "{full}");
    assert!(ring.max_memory_bytes() < 9 * 1024 * 1024 / 2);
}

#[test]
fn state_round_trips_and_drops_what_left_the_ring() {
    let (clock, ring) = ring();
    for k in 0..5u64 {
        // Minute 0 overflows its slot; the others stay exact.
        let n = if k == 0 { 1_000 } else { 10 };
        for i in 0..n {
            ring.insert_hash(h(k * 10_000 + i), None);
        }
        clock.advance(MINUTE_MS);
    }
    let saved = ring.to_state();
    let loaded = WindowRing::new(5 * MINUTE_MS, clock.clone());
    assert_eq!(loaded.restore_state(&saved), Ok(6)); // 5 minute slots and 1 hour slot
    for window in ["1m", "3m", "5m", "6m", "1h", "2h"] {
        assert_eq!(count(&loaded, window), count(&ring, window), "{window}");
    }
    // Two hours later, the minute slots have left; the hour slot stays.
    clock.advance(2 * HOUR_MS);
    let later = WindowRing::new(5 * MINUTE_MS, clock.clone());
    assert_eq!(later.restore_state(&saved), Ok(1));
    assert_eq!(count(&later, "1h"), exact(0));
    assert_eq!(count(&later, "3h"), count(&ring, "3h"));
    assert!(!count(&later, "3h").exact);
}

#[test]
fn corrupt_state_is_rejected_whole() {
    let (_clock, ring) = ring();
    ring.insert_hash(h(1), None);
    let saved = ring.to_state();
    let fresh = || WindowRing::new(0, Arc::new(ManualClock::new(T0)));
    let mut flipped = saved.clone();
    flipped[20] ^= 1;
    assert_eq!(
        fresh().restore_state(&flipped),
        Err(WindowStateError::Checksum)
    );
    assert_eq!(
        fresh().restore_state(&saved[..saved.len() - 1]),
        Err(WindowStateError::Checksum)
    );
    assert_eq!(
        fresh().restore_state(b"UNIQDSTA"),
        Err(WindowStateError::NotWindows)
    );
    let mut version = saved.clone();
    version[8] = 9;
    assert_eq!(
        fresh().restore_state(&version),
        Err(WindowStateError::Version(9))
    );
    for cut in 0..saved.len() {
        let ring = fresh();
        assert!(ring.restore_state(&saved[..cut]).is_err(), "cut at {cut}");
        assert_eq!(count(&ring, "7d"), exact(0));
    }
}
