//! Fuzz target: reading a Redis HLL string, `UniqueCounter::from_redis` and `merge_redis`.
//!
//! Properties: no panic; `from_redis` and `merge_redis` into an empty counter accept the same
//! strings and yield the same registers; a string that loads round-trips through `to_redis`
//! (a dense string of 12,304 bytes that loads back to the same registers and estimate); and a
//! valid dense input comes back with its register bytes unchanged.

#![no_main]

use libfuzzer_sys::fuzz_target;
use uniqd_core::{UniqueCounter, REDIS_DENSE_LEN};

/// Bytes before the registers: magic, encoding, unused, cached cardinality.
const HEADER_LEN: usize = 16;

fuzz_target!(|data: &[u8]| {
    let loaded = UniqueCounter::from_redis(data);
    let merged = UniqueCounter::new();
    let merge_result = merged.merge_redis(data);
    assert_eq!(loaded.is_ok(), merge_result.is_ok());
    let Ok(counter) = loaded else {
        return;
    };
    assert_eq!(merged.registers(), counter.registers());

    let dense = counter.to_redis();
    assert_eq!(dense.len(), REDIS_DENSE_LEN);
    let again = UniqueCounter::from_redis(&dense).expect("own output must load");
    assert_eq!(again.registers(), counter.registers());
    assert_eq!(again.raw_estimate(), counter.raw_estimate());
    if data.get(4) == Some(&0) {
        assert_eq!(&dense[HEADER_LEN..], &data[HEADER_LEN..], "dense registers changed");
    }
});
