//! The union of some window slots, as read by scrapes and the API: exact hashes while few,
//! else a register-wise maximum, and the count it gives.

use std::collections::HashSet;

use super::packed::PackedRegisters;
use crate::estimator;
use crate::registers::{index_and_rank, M};

/// Distinct addresses up to which a merge is exact (when all its slots are exact): the
/// counter's default threshold.
pub const WINDOW_EXACT_THRESHOLD: usize = crate::exact::DEFAULT_THRESHOLD;

/// The union of some slots.
#[derive(Clone, Debug)]
pub(crate) enum Merge {
    /// Every hash, while at most [`WINDOW_EXACT_THRESHOLD`].
    Exact(HashSet<u64>),
    /// Register-wise maximum; `floor` is a lower bound on the distinct count.
    Sketch {
        /// The registers.
        registers: Box<[u8; M]>,
        /// Largest exact count known to be included.
        floor: u64,
    },
}

impl Default for Merge {
    fn default() -> Self {
        Self::Exact(HashSet::new())
    }
}

impl Merge {
    fn make_sketch(&mut self) -> (&mut [u8; M], &mut u64) {
        if let Self::Exact(set) = self {
            let mut registers = Box::new([0u8; M]);
            for &h in set.iter() {
                let (index, rank) = index_and_rank(h);
                registers[index] = registers[index].max(rank);
            }
            *self = Self::Sketch {
                registers,
                floor: set.len() as u64,
            };
        }
        match self {
            Self::Sketch { registers, floor } => (registers, floor),
            // Converted just above.
            Self::Exact(_) => unreachable!("merge was converted to a sketch"),
        }
    }

    pub(crate) fn add_hash(&mut self, hash: u64) {
        match self {
            Self::Exact(set) => {
                set.insert(hash);
                if set.len() > WINDOW_EXACT_THRESHOLD {
                    self.make_sketch();
                }
            }
            Self::Sketch { registers, .. } => {
                let (index, rank) = index_and_rank(hash);
                registers[index] = registers[index].max(rank);
            }
        }
    }

    /// Adds a slot's registers; `slot_floor` is the slot's exact count before it overflowed.
    pub(crate) fn add_registers(&mut self, regs: &PackedRegisters, slot_floor: u64) {
        let (registers, floor) = self.make_sketch();
        regs.max_into(registers);
        *floor = (*floor).max(slot_floor);
    }

    /// The distinct count: exact, or the estimate never below the floor.
    pub(crate) fn count(&self) -> WindowCount {
        match self {
            Self::Exact(set) => WindowCount {
                estimate: set.len() as u64,
                exact: true,
            },
            Self::Sketch { registers, floor } => {
                let mut histogram = [0u32; 64];
                for &r in registers.iter() {
                    histogram[usize::from(r & 63)] += 1;
                }
                WindowCount {
                    estimate: estimator::estimate(&histogram).max(*floor),
                    exact: false,
                }
            }
        }
    }
}

/// The answer for one window or step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowCount {
    /// Distinct addresses.
    pub estimate: u64,
    /// Whether the count is exact (else a HyperLogLog estimate, 0.81% standard error).
    pub exact: bool,
}
