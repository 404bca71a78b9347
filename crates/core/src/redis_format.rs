//! Redis's HyperLogLog string format: export as dense, import dense or sparse.
//!
//! Layout (`struct hllhdr` in Redis's `src/hyperloglog.c`): 4 bytes magic `HYLL`, 1 byte
//! encoding (0 dense, 1 sparse), 3 unused bytes, 8 bytes cached cardinality (little-endian; the
//! top bit of the last byte set means "stale, recompute"), then the registers. Dense registers
//! are 6 bits each, least significant bits first, 12,288 bytes for 16,384 registers. Sparse is
//! run-length opcodes: `00xxxxxx` a run of 1..64 zeros, `01xxxxxx yyyyyyyy` a run of 1..16,384
//! zeros, `1vvvvvxx` a run of 1..4 registers of value 1..32.

#![forbid(unsafe_code)]

use std::fmt;

use crate::registers::{M, MAX_RANK};

/// Header bytes before the registers.
pub(crate) const HEADER_LEN: usize = 16;
/// Length of a dense HLL string: header plus 16,384 six-bit registers.
pub const DENSE_LEN: usize = HEADER_LEN + M * 6 / 8;

const MAGIC: &[u8; 4] = b"HYLL";
const DENSE: u8 = 0;
const SPARSE: u8 = 1;

/// Why bytes are not a Redis HLL string this crate accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedisHllError {
    /// Shorter than the 16-byte header.
    TooShort(usize),
    /// The first four bytes are not `HYLL`.
    BadMagic,
    /// An encoding byte other than dense (0) or sparse (1).
    UnknownEncoding(u8),
    /// A dense string whose length is not 12,304 bytes.
    DenseLength(usize),
    /// A register value no 64-bit hash can produce (above 51).
    RegisterOutOfRange {
        /// Register index.
        index: usize,
        /// Its value.
        value: u8,
    },
    /// Sparse opcodes that do not cover exactly 16,384 registers.
    SparseCoverage(usize),
    /// A sparse `XZERO` opcode cut off at the end.
    SparseTruncated,
}

impl fmt::Display for RedisHllError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooShort(n) => write!(f, "{n} bytes is shorter than the 16-byte HLL header"),
            Self::BadMagic => f.write_str("missing HYLL magic"),
            Self::UnknownEncoding(e) => write!(f, "unknown HLL encoding {e}"),
            Self::DenseLength(n) => write!(f, "dense HLL is {n} bytes, expected {DENSE_LEN}"),
            Self::RegisterOutOfRange { index, value } => {
                write!(
                    f,
                    "register {index} holds {value}, above the maximum {MAX_RANK}"
                )
            }
            Self::SparseCoverage(n) => write!(f, "sparse HLL covers {n} registers, expected {M}"),
            Self::SparseTruncated => f.write_str("sparse HLL ends inside an opcode"),
        }
    }
}

impl std::error::Error for RedisHllError {}

/// Encodes registers as a dense Redis HLL string with its cached cardinality marked stale,
/// so Redis computes `PFCOUNT` from the registers themselves.
pub(crate) fn encode_dense(registers: &[u8; M]) -> Vec<u8> {
    let mut out = vec![0u8; DENSE_LEN];
    out[..4].copy_from_slice(MAGIC);
    out[4] = DENSE;
    out[HEADER_LEN - 1] = 0x80; // card[7] top bit: cache invalid.
    let dense = &mut out[HEADER_LEN..];
    for (index, &value) in registers.iter().enumerate() {
        let value = value & 63;
        let bit = index * 6;
        let (byte, shift) = (bit / 8, bit % 8);
        dense[byte] |= value << shift;
        if shift > 2 {
            dense[byte + 1] |= value >> (8 - shift);
        }
    }
    out
}

/// Decodes a dense or sparse Redis HLL string into one byte per register.
pub(crate) fn decode(bytes: &[u8]) -> Result<Box<[u8; M]>, RedisHllError> {
    if bytes.len() < HEADER_LEN {
        return Err(RedisHllError::TooShort(bytes.len()));
    }
    if &bytes[..4] != MAGIC {
        return Err(RedisHllError::BadMagic);
    }
    let body = &bytes[HEADER_LEN..];
    let registers = match bytes[4] {
        DENSE => decode_dense(bytes.len(), body)?,
        SPARSE => decode_sparse(body)?,
        other => return Err(RedisHllError::UnknownEncoding(other)),
    };
    if let Some((index, &value)) = registers.iter().enumerate().find(|(_, &v)| v > MAX_RANK) {
        return Err(RedisHllError::RegisterOutOfRange { index, value });
    }
    Ok(registers)
}

fn decode_dense(total_len: usize, dense: &[u8]) -> Result<Box<[u8; M]>, RedisHllError> {
    if total_len != DENSE_LEN {
        return Err(RedisHllError::DenseLength(total_len));
    }
    let mut registers = Box::new([0u8; M]);
    for (index, register) in registers.iter_mut().enumerate() {
        let bit = index * 6;
        let (byte, shift) = (bit / 8, bit % 8);
        let low = u16::from(dense[byte]);
        let high = u16::from(dense.get(byte + 1).copied().unwrap_or(0));
        *register = (((low | high << 8) >> shift) & 63) as u8;
    }
    Ok(registers)
}

fn decode_sparse(opcodes: &[u8]) -> Result<Box<[u8; M]>, RedisHllError> {
    let mut registers = Box::new([0u8; M]);
    let mut index = 0usize;
    let mut pos = 0usize;
    while pos < opcodes.len() {
        let op = opcodes[pos];
        let (run, value, width) = match op >> 6 {
            0b00 => (usize::from(op & 0x3f) + 1, 0, 1),
            0b01 => {
                let low = *opcodes.get(pos + 1).ok_or(RedisHllError::SparseTruncated)?;
                ((usize::from(op & 0x3f) << 8 | usize::from(low)) + 1, 0, 2)
            }
            _ => (usize::from(op & 0x3) + 1, ((op >> 2) & 0x1f) + 1, 1),
        };
        let end = index + run;
        if end > M {
            return Err(RedisHllError::SparseCoverage(end));
        }
        registers[index..end].fill(value);
        index = end;
        pos += width;
    }
    if index != M {
        return Err(RedisHllError::SparseCoverage(index));
    }
    Ok(registers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dense_round_trips_every_value_at_every_offset() {
        let mut registers = Box::new([0u8; M]);
        for (i, r) in registers.iter_mut().enumerate() {
            *r = ((i * 7 + i / 5) % 52) as u8;
        }
        let encoded = encode_dense(&registers);
        assert_eq!(encoded.len(), DENSE_LEN);
        assert_eq!(&encoded[..4], b"HYLL");
        assert_eq!(decode(&encoded).expect("valid dense"), registers);
    }

    #[test]
    fn sparse_decodes_runs() {
        // XZERO of 100, VAL 3 x2, ZERO of 64, XZERO covering the rest.
        let rest = M - 100 - 2 - 64;
        let mut bytes = vec![
            b'H', b'Y', b'L', b'L', SPARSE, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x80,
        ];
        bytes.extend([0x40, 99, 0x80 | (2 << 2) | 1, 63]);
        bytes.extend([0x40 | ((rest - 1) >> 8) as u8, ((rest - 1) & 0xff) as u8]);
        let regs = decode(&bytes).expect("valid sparse");
        assert_eq!(regs[99], 0);
        assert_eq!((regs[100], regs[101], regs[102]), (3, 3, 0));
        assert_eq!(regs.iter().filter(|&&r| r != 0).count(), 2);
    }

    #[test]
    fn rejects_malformed_strings() {
        let good = encode_dense(&Box::new([1u8; M]));
        assert_eq!(decode(&good[..10]), Err(RedisHllError::TooShort(10)));
        assert_eq!(
            decode(&good[..DENSE_LEN - 1]),
            Err(RedisHllError::DenseLength(DENSE_LEN - 1))
        );
        let mut bad = good.clone();
        bad[0] = b'X';
        assert_eq!(decode(&bad), Err(RedisHllError::BadMagic));
        let mut bad = good.clone();
        bad[4] = 9;
        assert_eq!(decode(&bad), Err(RedisHllError::UnknownEncoding(9)));
        let mut bad = good;
        bad[HEADER_LEN] = 63;
        assert!(matches!(
            decode(&bad),
            Err(RedisHllError::RegisterOutOfRange {
                index: 0,
                value: 63
            })
        ));
        let mut sparse = vec![
            b'H', b'Y', b'L', b'L', SPARSE, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ];
        sparse.push(0x7f);
        assert_eq!(decode(&sparse), Err(RedisHllError::SparseTruncated));
        sparse.push(0xff);
        assert_eq!(
            decode(&sparse).expect("one XZERO run covers all"),
            Box::new([0u8; M])
        );
        sparse.push(0x00);
        assert_eq!(decode(&sparse), Err(RedisHllError::SparseCoverage(M + 1)));
    }
}
