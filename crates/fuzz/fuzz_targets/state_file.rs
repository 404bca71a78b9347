//! Fuzz target: loading a state file, every format version (1: the counter; 2: the counter
//! and the time window ring; 3: and the groups), the ways uniqd loads one:
//! `UniqueCounter::from_state`, `from_state_with_windows` (time windows on),
//! `from_state_keeping_windows` (time windows off: the window section is kept as stored), and
//! `from_state_with_sections` with the groups section checked (`Groups::check_state`) and
//! loaded (`Groups::restore_state`), as the service does.
//!
//! Input layout: byte 0 picks the loading threshold (0, 1, 10, 100 or 4,096, from bits 1 to
//! 7) and whether to re-seal the CRC-32 (bit 0: yes, so that mutations get past the outer
//! checksum and reach the structural checks; the window and groups sections' own CRCs are
//! re-sealed too when their length fields fit); the rest is the file.
//! The window ring loads on a hand-driven clock at 2027-01-15T08:00:00Z, the time the
//! committed version 2 seeds were saved at, so their slots are all still in the ring.
//!
//! Properties: no panic; a file that loads round-trips (`to_state` of the loaded counter loads
//! again into the same phase, estimate and registers, and re-encodes to the same bytes); the
//! loaded registers are exactly the Redis HLL string embedded at offset 32; the window-aware
//! loaders accept exactly the same files, and each accepted file also loads with
//! `from_state`; a kept window section is saved back byte for byte and loads again; a ring
//! loaded from a file re-encodes stably (saved, loaded into a fresh ring, saved again: the
//! same bytes) and gives the same counts after the round trip; `from_state_with_sections`
//! accepts exactly what the window-aware loaders accept, and its sections are saved back byte
//! for byte; a groups section that checks also loads (into 4 slots, so groups are folded into
//! `__other__`), keeping the union of the groups and `__other__`, and the loaded groups save
//! and load back to the same bytes; loaded for another field, it changes nothing.

#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use uniqd_core::{
    Groups, GroupsRestored, ManualClock, Span, UniqueCounter, WindowRing,
    REDIS_DENSE_LEN,
};

/// Where the Redis HLL string sits in a state file (see `crates/core/src/state.rs`).
const REGISTERS_AT: usize = 32;
/// Where the number of exact hashes sits (the window section follows the hashes).
const HASHES_AT: usize = REGISTERS_AT + REDIS_DENSE_LEN;
/// 2027-01-15T08:00:00Z, a whole hour: the seeds' save time.
const NOW_MS: u64 = 1_800_000_000_000;

fn u64_at(bytes: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
}

/// Re-seals the window and groups sections' own CRCs (when their length fields fit the
/// file), then the file's.
fn reseal(file: &mut [u8]) {
    let version = file.get(8..12).map(|v| u32::from_le_bytes(v.try_into().unwrap_or([0; 4])));
    let sections = match version {
        Some(2) => 1,
        Some(3) => 2,
        _ => 0,
    };
    let mut end = u64_at(file, HASHES_AT)
        .and_then(|k| usize::try_from(k).ok())
        .and_then(|k| k.checked_mul(8))
        .and_then(|n| n.checked_add(HASHES_AT + 8));
    for _ in 0..sections {
        let Some((start, len)) = end
            .and_then(|end| Some((end + 8, usize::try_from(u64_at(file, end)?).ok()?)))
        else {
            break;
        };
        let Some(stop) = start.checked_add(len).filter(|&stop| stop <= file.len()) else {
            break;
        };
        if len >= 4 {
            let body = stop - 4;
            let crc = crc32fast::hash(&file[start..body]);
            file[body..stop].copy_from_slice(&crc.to_le_bytes());
        }
        end = Some(stop);
    }
    if file.len() >= 4 {
        let body = file.len() - 4;
        let crc = crc32fast::hash(&file[..body]);
        file[body..].copy_from_slice(&crc.to_le_bytes());
    }
}

/// The union of the groups' and `__other__`'s registers.
fn union(groups: &Groups) -> Box<[u8; uniqd_core::REGISTERS]> {
    let all = UniqueCounter::new();
    groups.for_each(|_, counter| all.merge(counter));
    all.merge(groups.other());
    all.registers()
}

/// The groups section's checks and load: what the service does with `--group-by`.
fn check_groups(section: &[u8], threshold: usize) {
    let Ok(field) = Groups::check_state(section) else {
        let groups = Groups::new(4, threshold).expect("valid");
        assert!(groups.restore_state(section, "host").is_err());
        assert!(groups.snapshot().groups.is_empty());
        return;
    };
    // Another field: nothing changes.
    let other = Groups::new(4, threshold).expect("valid");
    let elsewhere = format!("{field}.x");
    assert_eq!(
        other.restore_state(section, &elsewhere),
        Ok(GroupsRestored::OtherField(field.clone()))
    );
    assert!(other.snapshot().groups.is_empty());
    assert_eq!(other.other().estimate(), 0);
    // The field it was saved for: loads, into 4 slots; the union is the file's.
    let loaded = Groups::new(4, threshold).expect("valid");
    let Ok(GroupsRestored::Loaded { tracked, folded }) = loaded.restore_state(section, &field)
    else {
        panic!("a section that checks must load");
    };
    if folded > 0 {
        let wide = Groups::new(tracked + folded, threshold).expect("at most MAX_GROUPS");
        wide.restore_state(section, &field).expect("loads");
        assert_eq!(union(&loaded), union(&wide), "folding lost addresses");
    }
    // Saved and loaded again: the same bytes.
    let saved = loaded.to_state(&field);
    let again = Groups::new(4, threshold).expect("valid");
    again.restore_state(&saved, &field).expect("own output must load");
    assert_eq!(again.to_state(&field), saved, "groups re-encoding is not stable");
    assert_eq!(again.snapshot(), loaded.snapshot());
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
    let sections = UniqueCounter::from_state_with_sections(&file, threshold);
    assert_eq!(sections.is_ok(), kept.is_ok(), "{:?}", sections.as_ref().err());
    if let Ok((counter, sections)) = &sections {
        // The sections are saved back byte for byte.
        let carried = counter.to_state_with_sections(*sections);
        let (_, back) = UniqueCounter::from_state_with_sections(&carried, threshold)
            .expect("carried sections must load");
        assert_eq!(&back, sections);
        if let Some(groups) = sections.groups {
            check_groups(groups, threshold);
        }
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
