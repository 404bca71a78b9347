//! The state file format: a counter saved to disk and loaded back, phase and all, and (from
//! version 2) the window ring saved with it, and (version 3) the per-group counters.
//!
//! ```text
//! offset  size    field
//! 0       8       magic "UNIQDSTA"
//! 8       4       format version, u32 little-endian (1, 2 or 3)
//! 12      1       phase: 0 exact, 1 sketch
//! 13      3       zero
//! 16      8       exact threshold the counter ran with, u64 LE (for inspection; the
//!                 loading configuration decides the threshold)
//! 24      8       floor (exact count at the swap), u64 LE
//! 32      12,304  the registers as a Redis dense HLL string ("HYLL" ...)
//! 12,336  8       number of exact hashes that follow, u64 LE (0 in the sketch phase)
//! 12,344  8 × k   the exact set's 64-bit element hashes, u64 LE
//! versions 2 and 3:
//!         8       length w of the window ring section, u64 LE (version 3: 0 when none)
//!         w       the window ring (its own format, magic "UNIQDWIN": `window::persist`)
//! version 3 only:
//!         8       length g of the groups section, u64 LE
//!         g       the groups (their own format, magic "UNIQDGRP": `groups::persist`)
//! end-4   4       CRC-32 (IEEE) of every byte before it, u32 LE
//! ```
//!
//! Version 3 is written only when the state has groups (`--group-by`, or a file's groups
//! carried through with `--group-by` off), so a file without groups stays a version 1 or 2
//! file that older builds read. All three versions load.
//!
//! Version 2 is version 1 with the window section before the checksum; it is written when
//! the service keeps time windows, or when it runs with `--windows off` on a file that has a
//! window section (carried through unchanged: `UniqueCounter::from_state_keeping_windows` and
//! `to_state_with_window_section`, so the history survives a start without windows). A file
//! that never had windows stays a version 1 file that older builds read. Both versions load.
//!
//! The registers sit at a fixed offset as a Redis string, so the state can be inspected with
//! Redis itself: `tail -c +33 state | head -c 12304 | redis-cli -x SET k` then `PFCOUNT k`.
//! Loading checks the magic, version, lengths, checksum, register values, and that every
//! exact hash's register update is present in the registers, and says which check failed.

#![forbid(unsafe_code)]

use std::fmt;

use crate::crc32::crc32;
use crate::groups::GroupsStateError;
use crate::redis_format::{self, RedisHllError, DENSE_LEN};
use crate::registers::{index_and_rank, M};
use crate::window::WindowStateError;

const MAGIC: &[u8; 8] = b"UNIQDSTA";
/// Newest state format version (3: with the groups); version 1 and 2 files load too.
pub const STATE_VERSION: u32 = 3;
/// The version with a window section and no groups, still written when there are no groups.
const VERSION_WITH_WINDOWS: u32 = 2;
/// The version without a window section, still written when there is no ring nor groups.
const VERSION_WITHOUT_WINDOWS: u32 = 1;
const HEADER_LEN: usize = 32;
const HASHES_AT: usize = HEADER_LEN + DENSE_LEN;
const MIN_LEN: usize = HASHES_AT + 8 + 4;

/// Why bytes are not a state this version can load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateError {
    /// Not a uniqd state file (wrong magic).
    NotAState,
    /// Written by an unknown format version.
    Version(u32),
    /// Too short or a length field that does not match the file's size.
    Truncated {
        /// Bytes expected.
        expected: usize,
        /// Bytes found.
        found: usize,
    },
    /// The checksum does not match: the file is corrupt.
    Checksum {
        /// CRC stored in the file.
        stored: u32,
        /// CRC of the bytes read.
        computed: u32,
    },
    /// The embedded HLL string is invalid.
    Registers(RedisHllError),
    /// A phase byte other than 0 or 1.
    Phase(u8),
    /// An exact hash whose register update is missing: registers and set disagree.
    Inconsistent,
    /// The window ring section is invalid (nothing was loaded).
    Windows(WindowStateError),
    /// The groups section is invalid (nothing was loaded).
    Groups(GroupsStateError),
}

impl fmt::Display for StateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotAState => f.write_str("not a uniqd state file (magic UNIQDSTA missing)"),
            Self::Version(v) => write!(
                f,
                "state format version {v} is not supported (this build reads 1 to {STATE_VERSION})"
            ),
            Self::Truncated { expected, found } => {
                write!(
                    f,
                    "state file truncated: expected {expected} bytes, found {found}"
                )
            }
            Self::Checksum { stored, computed } => {
                write!(
                    f,
                    "state file corrupt: CRC-32 {computed:08x} does not match stored {stored:08x}"
                )
            }
            Self::Registers(e) => write!(f, "state file registers invalid: {e}"),
            Self::Phase(p) => write!(
                f,
                "state file phase byte {p} is neither 0 (exact) nor 1 (sketch)"
            ),
            Self::Inconsistent => {
                f.write_str("state file inconsistent: an exact hash is missing from the registers")
            }
            Self::Windows(e) => write!(f, "state file time windows invalid: {e}"),
            Self::Groups(e) => write!(f, "state file groups invalid: {e}"),
        }
    }
}

impl std::error::Error for StateError {}

/// A counter's state, decoded and checked.
pub(crate) struct State<'a> {
    pub(crate) sketch: bool,
    pub(crate) floor: u64,
    pub(crate) registers: Box<[u8; M]>,
    pub(crate) hashes: Vec<u64>,
    /// The window ring section (versions 2 and 3), not yet decoded.
    pub(crate) windows: Option<&'a [u8]>,
    /// The groups section (version 3), not yet decoded.
    pub(crate) groups: Option<&'a [u8]>,
}

/// What a state file holds besides the counter, each section in its own encoding, as
/// [`UniqueCounter::to_state_with_sections`](crate::UniqueCounter::to_state_with_sections)
/// writes and
/// [`from_state_with_sections`](crate::UniqueCounter::from_state_with_sections) returns them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StateSections<'a> {
    /// The window ring ([`WindowRing::to_state`](crate::WindowRing::to_state)).
    pub windows: Option<&'a [u8]>,
    /// The groups ([`Groups::to_state`](crate::Groups::to_state)); written as format
    /// version 3.
    pub groups: Option<&'a [u8]>,
}

/// Encodes a state.
pub(crate) fn encode(
    sketch: bool,
    threshold: u64,
    floor: u64,
    registers: &[u8; M],
    hashes: &[u64],
    extras: StateSections<'_>,
) -> Vec<u8> {
    let windows_len = extras.windows.map_or(0, |w| 8 + w.len());
    let groups_len = extras.groups.map_or(0, |g| 16 + g.len());
    let mut out = Vec::with_capacity(MIN_LEN + hashes.len() * 8 + windows_len + groups_len);
    let version = match extras {
        StateSections {
            groups: Some(_), ..
        } => STATE_VERSION,
        StateSections {
            windows: Some(_), ..
        } => VERSION_WITH_WINDOWS,
        _ => VERSION_WITHOUT_WINDOWS,
    };
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&version.to_le_bytes());
    out.extend_from_slice(&[u8::from(sketch), 0, 0, 0]);
    out.extend_from_slice(&threshold.to_le_bytes());
    out.extend_from_slice(&floor.to_le_bytes());
    out.extend_from_slice(&redis_format::encode_dense(registers));
    out.extend_from_slice(&(hashes.len() as u64).to_le_bytes());
    for hash in hashes {
        out.extend_from_slice(&hash.to_le_bytes());
    }
    if version >= VERSION_WITH_WINDOWS {
        // Version 3 without a ring: an empty window section.
        let windows = extras.windows.unwrap_or_default();
        out.extend_from_slice(&(windows.len() as u64).to_le_bytes());
        out.extend_from_slice(windows);
    }
    if let Some(groups) = extras.groups {
        out.extend_from_slice(&(groups.len() as u64).to_le_bytes());
        out.extend_from_slice(groups);
    }
    let crc = crc32(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(word)
}

/// Decodes and checks a state (either version).
pub(crate) fn decode(bytes: &[u8]) -> Result<State<'_>, StateError> {
    if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
        return Err(StateError::NotAState);
    }
    if bytes.len() < 12 {
        return Err(StateError::Truncated {
            expected: MIN_LEN,
            found: bytes.len(),
        });
    }
    let version = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
    if !(VERSION_WITHOUT_WINDOWS..=STATE_VERSION).contains(&version) {
        return Err(StateError::Version(version));
    }
    if bytes.len() < MIN_LEN {
        return Err(StateError::Truncated {
            expected: MIN_LEN,
            found: bytes.len(),
        });
    }
    let count = u64_at(bytes, HASHES_AT);
    // Where the hashes end (and the sections start, in versions 2 and 3).
    let hashes_end = count
        .checked_mul(8)
        .and_then(|n| usize::try_from(n).ok())
        .and_then(|n| n.checked_add(HASHES_AT + 8))
        .ok_or(StateError::Truncated {
            expected: usize::MAX,
            found: bytes.len(),
        })?;
    // The sections' ranges, each after its u64 length, in file order.
    let sections = usize::from(version >= VERSION_WITH_WINDOWS) + usize::from(version >= 3);
    let mut ranges = [0..0, 0..0];
    let mut end = hashes_end;
    for range in ranges.iter_mut().take(sections) {
        let header_end = end.saturating_add(8 + 4);
        if bytes.len() < header_end {
            return Err(StateError::Truncated {
                expected: header_end,
                found: bytes.len(),
            });
        }
        let start = end + 8;
        end = usize::try_from(u64_at(bytes, end))
            .ok()
            .and_then(|len| start.checked_add(len))
            .ok_or(StateError::Truncated {
                expected: usize::MAX,
                found: bytes.len(),
            })?;
        *range = start..end;
    }
    let expected = end.saturating_add(4);
    if bytes.len() != expected {
        return Err(StateError::Truncated {
            expected,
            found: bytes.len(),
        });
    }
    let (body, stored) = bytes.split_at(bytes.len() - 4);
    let stored = u32::from_le_bytes([stored[0], stored[1], stored[2], stored[3]]);
    let computed = crc32(body);
    if stored != computed {
        return Err(StateError::Checksum { stored, computed });
    }
    let sketch = match bytes[12] {
        0 => false,
        1 => true,
        other => return Err(StateError::Phase(other)),
    };
    let registers =
        redis_format::decode(&bytes[HEADER_LEN..HASHES_AT]).map_err(StateError::Registers)?;
    let hashes: Vec<u64> = (0..count as usize)
        .map(|i| u64_at(bytes, HASHES_AT + 8 + 8 * i))
        .collect();
    if hashes.iter().any(|&h| {
        let (index, rank) = index_and_rank(h);
        registers[index] < rank
    }) {
        return Err(StateError::Inconsistent);
    }
    // The length checks above put every range inside `body`. Version 3 writes an empty
    // window section when there is no ring.
    let [windows, groups] = ranges;
    let windows = (version == VERSION_WITH_WINDOWS || !windows.is_empty()).then(|| &body[windows]);
    let groups = (version == STATE_VERSION).then(|| &body[groups]);
    Ok(State {
        sketch,
        floor: u64_at(bytes, 24),
        registers,
        hashes,
        windows,
        groups,
    })
}
