//! MurmurHash64A, byte for byte the variant Redis uses for its HyperLogLog (`src/hyperloglog.c`).
//!
//! Redis reads the input in 8-byte little-endian words (it converts on big-endian hosts), so
//! this port does the same on every platform; the tail is folded in exactly as the C `switch`
//! with fall-through does.

#![forbid(unsafe_code)]

/// The seed Redis passes to `MurmurHash64A` for HyperLogLog elements.
pub const REDIS_HLL_SEED: u64 = 0xadc8_3b19;

const M: u64 = 0xc6a4_a793_5bd1_e995;
const R: u32 = 47;

/// Hashes `data` with MurmurHash64A and `seed`, as Redis does.
#[inline]
pub fn murmur64a(data: &[u8], seed: u64) -> u64 {
    // C computes `seed ^ (len * m)` with `len` an `int` promoted to uint64_t: wrapping product.
    let mut h = seed ^ (data.len() as u64).wrapping_mul(M);
    let mut chunks = data.chunks_exact(8);
    for chunk in &mut chunks {
        let mut k = u64::from_le_bytes([
            chunk[0], chunk[1], chunk[2], chunk[3], chunk[4], chunk[5], chunk[6], chunk[7],
        ]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h ^= k;
        h = h.wrapping_mul(M);
    }
    let tail = chunks.remainder();
    if !tail.is_empty() {
        for (i, &byte) in tail.iter().enumerate() {
            h ^= u64::from(byte) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> R;
    h = h.wrapping_mul(M);
    h ^= h >> R;
    h
}

/// Hashes an HLL element as Redis's `PFADD` does.
#[inline]
pub fn hash_element(element: &[u8]) -> u64 {
    murmur64a(element, REDIS_HLL_SEED)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tail_length_mixes_every_byte() {
        // Flipping any single byte of inputs of length 0..=17 changes the hash: the tail
        // handling reads every byte (a missed fall-through would leave some byte unread).
        for len in 1..=17usize {
            let base: Vec<u8> = (0..len as u8).collect();
            let h = murmur64a(&base, REDIS_HLL_SEED);
            for i in 0..len {
                let mut flipped = base.clone();
                flipped[i] ^= 0x5a;
                assert_ne!(h, murmur64a(&flipped, REDIS_HLL_SEED), "len {len} byte {i}");
            }
        }
    }

    #[test]
    fn length_is_part_of_the_hash() {
        assert_ne!(murmur64a(b"", 0), murmur64a(b"\0", 0));
        assert_ne!(murmur64a(b"\0", 0), murmur64a(b"\0\0", 0));
    }
}
