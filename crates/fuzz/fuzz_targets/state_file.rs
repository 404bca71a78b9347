//! Fuzz target: loading a state file, `UniqueCounter::from_state`.
//!
//! Input layout: byte 0 picks the loading threshold (0, 1, 10, 100 or 4,096) and whether to
//! re-seal the CRC-32 (odd: yes, so that mutations get past the checksum and reach the
//! structural checks); the rest is the file.
//!
//! Properties: no panic; a file that loads round-trips (`to_state` of the loaded counter loads
//! again into the same phase, estimate and registers, and re-encodes to the same bytes); the
//! loaded registers are exactly the Redis HLL string embedded at offset 32.

#![no_main]

use libfuzzer_sys::fuzz_target;
use uniqd_core::{UniqueCounter, REDIS_DENSE_LEN};

/// Where the Redis HLL string sits in a state file (see `crates/core/src/state.rs`).
const REGISTERS_AT: usize = 32;

fuzz_target!(|data: &[u8]| {
    let [selector, file @ ..] = data else {
        return;
    };
    let threshold = [0, 1, 10, 100, 4096][usize::from(selector >> 1) % 5];
    let mut file = file.to_vec();
    if selector & 1 == 1 && file.len() >= 4 {
        let body = file.len() - 4;
        let crc = crc32fast::hash(&file[..body]);
        file[body..].copy_from_slice(&crc.to_le_bytes());
    }
    let Ok(counter) = UniqueCounter::from_state(&file, threshold) else {
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
});
