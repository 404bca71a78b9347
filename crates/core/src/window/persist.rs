//! Saving the window ring, and loading it back: the section a version 2 state file carries
//! after the counter (see the `state` module; `UniqueCounter::to_state_with_windows`).
//!
//! ```text
//! offset  size    field
//! 0       8       magic "UNIQDWIN"
//! 8       4       format version, u32 LE (1)
//! 12      4       number of tiers, u32 LE (2)
//! then per tier:
//!         8       interval length, milliseconds, u64 LE (60,000 or 3,600,000)
//!         4       number of slots that follow, u32 LE
//!         then per slot:
//!         8       interval number since the Unix epoch, u64 LE
//!         1       kind: 0 exact, 1 registers
//!         4       kind 0: number of hashes k, u32 LE; kind 1: 16,384
//!         8 × k   kind 0: the hashes, u64 LE; kind 1: the 16,384 registers, one byte each
//! end-4   4       CRC-32 (IEEE) of every byte before it, u32 LE
//! ```
//!
//! Loading keeps the slots the ring still retains at load time (older intervals have left
//! every window while the service was down) and merges them into whatever the ring holds.

use std::fmt;

use super::tier::SlotContents;
use super::{WindowRing, HOUR_MS, MINUTE_MS};
use crate::crc32::crc32;
use crate::registers::{M, MAX_RANK};

const MAGIC: &[u8; 8] = b"UNIQDWIN";
const VERSION: u32 = 1;

/// Why bytes are not a window ring this version can load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WindowStateError {
    /// Not a uniqd window file (wrong magic).
    NotWindows,
    /// Written by an unknown format version.
    Version(u32),
    /// Shorter than its fields say, or longer.
    Truncated,
    /// The checksum does not match: the file is corrupt.
    Checksum,
    /// A slot kind other than 0 or 1, a register above the maximum rank, or an interval
    /// length this build does not keep.
    Invalid(&'static str),
}

impl fmt::Display for WindowStateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotWindows => f.write_str("not a uniqd window file (magic UNIQDWIN missing)"),
            Self::Version(v) => write!(
                f,
                "window file format version {v} is not supported (this build reads {VERSION})"
            ),
            Self::Truncated => f.write_str("window file truncated or with trailing bytes"),
            Self::Checksum => f.write_str("window file corrupt: CRC-32 mismatch"),
            Self::Invalid(what) => write!(f, "window file invalid: {what}"),
        }
    }
}

impl std::error::Error for WindowStateError {}

/// A little-endian reader that fails with [`WindowStateError::Truncated`].
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], WindowStateError> {
        if self.0.len() < n {
            return Err(WindowStateError::Truncated);
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], WindowStateError> {
        let bytes = self.take(N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    fn u32(&mut self) -> Result<u32, WindowStateError> {
        self.array().map(u32::from_le_bytes)
    }

    fn u64(&mut self) -> Result<u64, WindowStateError> {
        self.array().map(u64::from_le_bytes)
    }
}

/// A decoded tier: its interval length and slots.
type Tiers = Vec<(u64, Vec<(u64, SlotContents)>)>;

fn decode(bytes: &[u8]) -> Result<Tiers, WindowStateError> {
    if bytes.len() < 8 || &bytes[..8] != MAGIC {
        return Err(WindowStateError::NotWindows);
    }
    let body_len = bytes
        .len()
        .checked_sub(4)
        .ok_or(WindowStateError::Truncated)?;
    let (body, stored) = bytes.split_at(body_len);
    let mut r = Reader(body.get(8..).ok_or(WindowStateError::Truncated)?);
    let version = r.u32()?;
    if version != VERSION {
        return Err(WindowStateError::Version(version));
    }
    let stored = u32::from_le_bytes(stored.try_into().map_err(|_| WindowStateError::Truncated)?);
    if crc32(body) != stored {
        return Err(WindowStateError::Checksum);
    }
    let tiers = r.u32()?;
    let mut out = Vec::new();
    for _ in 0..tiers {
        let interval_ms = r.u64()?;
        let slots = r.u32()?;
        let mut tier = Vec::new();
        for _ in 0..slots {
            let index = r.u64()?;
            let [kind] = r.array::<1>()?;
            let len = usize::try_from(r.u32()?).map_err(|_| WindowStateError::Truncated)?;
            let contents = match kind {
                0 => {
                    let raw = r.take(len.checked_mul(8).ok_or(WindowStateError::Truncated)?)?;
                    SlotContents::Exact(
                        raw.chunks_exact(8)
                            .map(|c| {
                                let mut b = [0u8; 8];
                                b.copy_from_slice(c);
                                u64::from_le_bytes(b)
                            })
                            .collect(),
                    )
                }
                1 if len == M => {
                    let mut registers = Box::new([0u8; M]);
                    registers.copy_from_slice(r.take(M)?);
                    if registers.iter().any(|&v| v > MAX_RANK) {
                        return Err(WindowStateError::Invalid("register above the maximum rank"));
                    }
                    SlotContents::Registers(registers)
                }
                1 => return Err(WindowStateError::Invalid("register slot of the wrong size")),
                _ => return Err(WindowStateError::Invalid("slot kind neither 0 nor 1")),
            };
            tier.push((index, contents));
        }
        out.push((interval_ms, tier));
    }
    if !r.0.is_empty() {
        return Err(WindowStateError::Truncated);
    }
    Ok(out)
}

impl WindowRing {
    /// The ring's retained slots in the format of the module docs.
    pub fn to_state(&self) -> Vec<u8> {
        let now = self.clock.now_ms();
        let mut out = Vec::new();
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(&2u32.to_le_bytes());
        for tier in [&self.minutes, &self.hours] {
            let slots = tier.contents(now / tier.interval_ms());
            out.extend_from_slice(&tier.interval_ms().to_le_bytes());
            // At most 168 slots.
            out.extend_from_slice(&(slots.len() as u32).to_le_bytes());
            for (index, contents) in slots {
                out.extend_from_slice(&index.to_le_bytes());
                match contents {
                    SlotContents::Exact(hashes) => {
                        out.push(0);
                        // At most a few hundred hashes.
                        out.extend_from_slice(&(hashes.len() as u32).to_le_bytes());
                        hashes
                            .iter()
                            .for_each(|h| out.extend_from_slice(&h.to_le_bytes()));
                    }
                    SlotContents::Registers(registers) => {
                        out.push(1);
                        out.extend_from_slice(&(M as u32).to_le_bytes());
                        out.extend_from_slice(&registers[..]);
                    }
                }
            }
        }
        let crc = crc32(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    /// Checks that `bytes` are a window ring this build can load (everything
    /// [`restore_state`](Self::restore_state) checks), without a ring to load them into: a
    /// service with time windows off keeps a saved ring's bytes as they are, and must not keep
    /// bytes that would refuse the start once windows are on again.
    ///
    /// # Errors
    ///
    /// The bytes are not a valid window file (see [`WindowStateError`]).
    pub fn check_state(bytes: &[u8]) -> Result<(), WindowStateError> {
        let tiers = decode(bytes)?;
        if tiers
            .iter()
            .any(|(interval, _)| ![MINUTE_MS, HOUR_MS].contains(interval))
        {
            return Err(WindowStateError::Invalid(
                "an interval length this build does not keep",
            ));
        }
        Ok(())
    }

    /// Merges a saved ring into this one, keeping the slots still retained now. Returns how
    /// many slots were restored. Nothing is merged unless the whole file is valid.
    ///
    /// # Errors
    ///
    /// The bytes are not a valid window file (see [`WindowStateError`]).
    pub fn restore_state(&self, bytes: &[u8]) -> Result<usize, WindowStateError> {
        let tiers = decode(bytes)?;
        let kept = [self.minutes.interval_ms(), self.hours.interval_ms()];
        if tiers.iter().any(|(interval, _)| !kept.contains(interval)) {
            return Err(WindowStateError::Invalid(
                "an interval length this build does not keep",
            ));
        }
        let now = self.clock.now_ms();
        let guard = crossbeam_epoch::pin();
        let mut restored = 0;
        for (interval_ms, slots) in tiers {
            let tier = if interval_ms == self.minutes.interval_ms() {
                &self.minutes
            } else {
                &self.hours
            };
            let now_index = now / interval_ms;
            let oldest = now_index.saturating_sub(tier.len() - 1);
            for (index, contents) in slots {
                if !(oldest..=now_index).contains(&index) {
                    continue;
                }
                let kept = match contents {
                    SlotContents::Exact(hashes) => hashes
                        .into_iter()
                        .map(|h| tier.insert(h, index, &guard))
                        .fold(true, |all, kept| all & kept),
                    SlotContents::Registers(registers) => tier.restore_registers(index, &registers),
                };
                restored += usize::from(kept);
            }
        }
        Ok(restored)
    }
}
