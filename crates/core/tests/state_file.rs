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
