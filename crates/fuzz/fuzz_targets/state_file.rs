//! Fuzz target: loading a state file, both format versions (1: the counter; 2: the counter
//! and the time window ring), the three ways uniqd loads one: `UniqueCounter::from_state`,
//! `from_state_with_windows` (time windows on) and `from_state_keeping_windows` (time windows
//! off: the window section is kept as stored).
//!
//! Input layout: byte 0 picks the loading threshold (0, 1, 10, 100 or 4,096, from bits 1 to
//! 7) and whether to re-seal the CRC-32 (bit 0: yes, so that mutations get past the outer
//! checksum and reach the structural checks; the window section's own CRC is re-sealed too
//! when the file is a version 2 one whose section length field fits); the rest is the file.
//! The window ring loads on a hand-driven clock at 2027-01-15T08:00:00Z, the time the
//! committed version 2 seeds were saved at, so their slots are all still in the ring.
//!
//! Properties: no panic; a file that loads round-trips (`to_state` of the loaded counter loads
//! again into the same phase, estimate and registers, and re-encodes to the same bytes); the
//! loaded registers are exactly the Redis HLL string embedded at offset 32; the window-aware
//! loaders accept exactly the same files, and each accepted file also loads with
//! `from_state`; a kept window section is saved back byte for byte and loads again; a ring
//! loaded from a file re-encodes stably (saved, loaded into a fresh ring, saved again: the
//! same bytes) and gives the same counts after the round trip.

#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use uniqd_core::{ManualClock, Span, UniqueCounter, WindowRing, REDIS_DENSE_LEN};

/// Where the Redis HLL string sits in a state file (see `crates/core/src/state.rs`).
const REGISTERS_AT: usize = 32;
/// Where the number of exact hashes sits (the window section follows the hashes).
const HASHES_AT: usize = REGISTERS_AT + REDIS_DENSE_LEN;
/// 2027-01-15T08:00:00Z, a whole hour: the seeds' save time.
const NOW_MS: u64 = 1_800_000_000_000;

fn u64_at(bytes: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
}

/// Re-seals the window section's own CRC (when its length field fits the file), then the
/// file's.
fn reseal(file: &mut [u8]) {
    let version2 = file.get(8..12) == Some(&2u32.to_le_bytes()[..]);
    if version2 {
        let section = u64_at(file, HASHES_AT)
            .and_then(|k| usize::try_from(k).ok())
            .and_then(|k| k.checked_mul(8))
            .and_then(|n| n.checked_add(HASHES_AT + 8))
            .and_then(|end| Some((end + 8, usize::try_from(u64_at(file, end)?).ok()?)));
        if let Some((start, len)) = section {
            if len >= 4 && start.checked_add(len).is_some_and(|end| end <= file.len()) {
                let body = start + len - 4;
                let crc = crc32fast::hash(&file[start..body]);
                file[body..body + 4].copy_from_slice(&crc.to_le_bytes());
            }
        }
    }
    if file.len() >= 4 {
        let body = file.len() - 4;
        let crc = crc32fast::hash(&file[..body]);
        file[body..].copy_from_slice(&crc.to_le_bytes());
    }
}

fn ring() -> WindowRing {
    WindowRing::new(0, Arc::new(ManualClock::new(NOW_MS)))
}

fn counts(ring: &WindowRing) -> Vec<u64> {
    ["1m", "5m", "1h", "24h", "7d"]
        .into_iter()
        .map(|s| {
            let span = Span::parse(s).expect("a valid span");
            ring.count(span).expect("a span the ring answers").estimate
        })
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let [selector, file @ ..] = data else {
        return;
    };
    let threshold = [0, 1, 10, 100, 4096][usize::from(selector >> 1) % 5];
    let mut file = file.to_vec();
    if selector & 1 == 1 {
        reseal(&mut file);
    }

    let plain = UniqueCounter::from_state(&file, threshold);
    let kept = UniqueCounter::from_state_keeping_windows(&file, threshold);
    let loaded_ring = ring();
    let with_ring = UniqueCounter::from_state_with_windows(&file, threshold, &loaded_ring);
    assert_eq!(
        kept.is_ok(),
        with_ring.is_ok(),
        "keeping and loading the windows disagree: {:?} vs {:?}",
        kept.as_ref().err(),
        with_ring.as_ref().err()
    );
    if kept.is_ok() {
        assert!(plain.is_ok(), "a window-aware loader accepts what from_state refuses");
    }
    let Ok(counter) = plain else {
        return;
    };

    let embedded = UniqueCounter::from_redis(&file[REGISTERS_AT..REGISTERS_AT + REDIS_DENSE_LEN])
        .expect("a loaded state embeds a valid HLL string");
    assert_eq!(counter.registers(), embedded.registers());

    let saved = counter.to_state();
    let again = UniqueCounter::from_state(&saved, threshold).expect("own output must load");
    assert_eq!(again.phase(), counter.phase());
    assert_eq!(again.estimate(), counter.estimate());
    assert_eq!(again.registers(), counter.registers());
    assert_eq!(again.to_state(), saved, "re-encoding is not stable");

    // Time windows off: the section is carried through byte for byte.
    let Ok((kept_counter, section)) = kept else {
        return;
    };
    assert_eq!(kept_counter.registers(), counter.registers());
    assert_eq!(kept_counter.estimate(), counter.estimate());
    if let Some(section) = &section {
        let carried = kept_counter.to_state_with_window_section(section);
        let (back, section_back) = UniqueCounter::from_state_keeping_windows(&carried, threshold)
            .expect("a carried section must load");
        assert_eq!(section_back.as_deref(), Some(&section[..]));
        assert_eq!(back.to_state_with_window_section(section), carried);
    }

    // Time windows on: the loaded ring saves and loads back to itself.
    let Ok((ring_counter, _)) = with_ring else {
        return;
    };
    assert_eq!(ring_counter.registers(), counter.registers());
    let saved = ring_counter.to_state_with_windows(&loaded_ring);
    let reloaded_ring = ring();
    let (reloaded, _) = UniqueCounter::from_state_with_windows(&saved, threshold, &reloaded_ring)
        .expect("own output with windows must load");
    assert_eq!(counts(&reloaded_ring), counts(&loaded_ring));
    assert_eq!(
        reloaded.to_state_with_windows(&reloaded_ring),
        saved,
        "re-encoding with windows is not stable"
    );
});
