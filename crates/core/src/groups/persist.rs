//! Saving the groups, and loading them back: the section a version 3 state file carries after
//! the counter and the window ring (see the `state` module;
//! `UniqueCounter::to_state_with_sections`).
//!
//! ```text
//! offset  size    field
//! 0       8       magic "UNIQDGRP"
//! 8       4       format version, u32 LE (1)
//! 12      2       length f of the --group-by field name, u16 LE (1 ..= 1,024)
//! 14      f       the field name, UTF-8
//!         4       number of tracked groups n, u32 LE (at most 10,000)
//! then per group (in slot order):
//!         1       length b of its name, u8 (1 ..= 128)
//!         b       the name, UTF-8 (never "__other__")
//!         8       its score (Space-Saving's, see the groups module), u64 LE
//!         8       length s of its counter, u64 LE
//!         s       the counter as a version 1 state file (`UniqueCounter::to_state`: its own
//!                 magic, registers, exact hashes and CRC-32)
//! then __other__:
//!         8       length s of its counter, u64 LE
//!         s       the counter, as above
//! end-4   4       CRC-32 (IEEE) of every byte before it, u32 LE
//! ```
//!
//! Loading ([`Groups::restore_state`]) checks everything before changing anything, drops the
//! section (and says so) when it was saved for another `--group-by` field, and keeps the
//! union property with any `--max-groups`: the saved groups take the free slots largest
//! first, and those that do not fit are merged into `__other__`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use crossbeam_epoch::{self as epoch, Owned};

use super::state_error::GroupsStateError;
use super::{group_name, promotion_bar, Group, Groups, MAX_GROUPS, OTHER_GROUP};
use crate::counter::{UniqueCounter, DEFAULT_THRESHOLD};
use crate::crc32::crc32;

const MAGIC: &[u8; 8] = b"UNIQDGRP";
const VERSION: u32 = 1;

/// Longest `--group-by` field name a groups section stores.
pub const MAX_GROUP_FIELD_BYTES: usize = 1024;

/// What [`Groups::restore_state`] did with a valid section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupsRestored {
    /// The groups were loaded: `tracked` of them have a slot (merged into a group of the
    /// same name if one was tracked already), `folded` did not fit `max_groups` and were
    /// merged into `__other__`, as was the saved `__other__`.
    Loaded {
        /// Saved groups that got (or joined) a slot.
        tracked: usize,
        /// Saved groups merged into `__other__`.
        folded: usize,
    },
    /// The section was saved with another `--group-by` field (named here): nothing loaded.
    OtherField(String),
}

/// A decoded section.
struct Saved {
    field: String,
    /// Name, score, counter.
    groups: Vec<(String, u64, UniqueCounter)>,
    other: UniqueCounter,
}

/// A little-endian reader that fails with [`GroupsStateError::Truncated`].
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], GroupsStateError> {
        if self.0.len() < n {
            return Err(GroupsStateError::Truncated);
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], GroupsStateError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn text(&mut self, len: usize, what: &'static str) -> Result<String, GroupsStateError> {
        std::str::from_utf8(self.take(len)?)
            .map(str::to_owned)
            .map_err(|_| GroupsStateError::Invalid(what))
    }

    /// A counter: its length, then its version 1 state.
    fn counter(&mut self, threshold: usize) -> Result<UniqueCounter, GroupsStateError> {
        let len = usize::try_from(u64::from_le_bytes(self.array()?))
            .map_err(|_| GroupsStateError::Truncated)?;
        let bytes = self.take(len)?;
        // Only the plain counter: sections inside a group would be dropped at the next save.
        if bytes.get(8..12) != Some(&1u32.to_le_bytes()[..]) {
            return Err(GroupsStateError::Invalid(
                "a counter that is not a version 1 state",
            ));
        }
        UniqueCounter::from_state(bytes, threshold)
            .map_err(|e| GroupsStateError::Counter(e.to_string()))
    }
}

fn decode(bytes: &[u8], threshold: usize) -> Result<Saved, GroupsStateError> {
    if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
        return Err(GroupsStateError::NotGroups);
    }
    let body_len = bytes
        .len()
        .checked_sub(4)
        .ok_or(GroupsStateError::Truncated)?;
    let (body, stored) = bytes.split_at(body_len);
    let mut r = Reader(body.get(MAGIC.len()..).ok_or(GroupsStateError::Truncated)?);
    let version = u32::from_le_bytes(r.array()?);
    if version != VERSION {
        return Err(GroupsStateError::Version(version));
    }
    let stored = u32::from_le_bytes(stored.try_into().map_err(|_| GroupsStateError::Truncated)?);
    if crc32(body) != stored {
        return Err(GroupsStateError::Checksum);
    }
    let field_len = usize::from(u16::from_le_bytes(r.array()?));
    if !(1..=MAX_GROUP_FIELD_BYTES).contains(&field_len) {
        return Err(GroupsStateError::Invalid("field name empty or too long"));
    }
    let field = r.text(field_len, "field name not UTF-8")?;
    let count = u32::from_le_bytes(r.array()?);
    if usize::try_from(count).map_or(true, |n| n > MAX_GROUPS) {
        return Err(GroupsStateError::Invalid(
            "more groups than any build tracks",
        ));
    }
    let mut groups = Vec::new();
    let mut names = std::collections::HashSet::new();
    for _ in 0..count {
        let [len] = r.array()?;
        let name = r.text(usize::from(len), "group name not UTF-8")?;
        if name.is_empty() || group_name(&name) != name {
            return Err(GroupsStateError::Invalid("group name empty or too long"));
        }
        if name == OTHER_GROUP {
            return Err(GroupsStateError::Invalid("a tracked group named __other__"));
        }
        if !names.insert(name.clone()) {
            return Err(GroupsStateError::Invalid("a group name twice"));
        }
        let score = u64::from_le_bytes(r.array()?);
        groups.push((name, score, r.counter(threshold)?));
    }
    let other = r.counter(threshold)?;
    if !r.0.is_empty() {
        return Err(GroupsStateError::Truncated);
    }
    Ok(Saved {
        field,
        groups,
        other,
    })
}

impl Groups {
    /// Every tracked group (name, score, counter) and `__other__`, saved for the
    /// `--group-by` field `field`, in the format of the module docs. `field` is cut to
    /// [`MAX_GROUP_FIELD_BYTES`] bytes (at a character boundary).
    #[must_use]
    #[allow(unsafe_code)]
    pub fn to_state(&self, field: &str) -> Vec<u8> {
        let mut end = field.len().min(MAX_GROUP_FIELD_BYTES);
        while !field.is_char_boundary(end) {
            end -= 1;
        }
        let field = &field[..end];
        let mut groups = Vec::with_capacity(self.slots.len());
        let guard = epoch::pin();
        for slot in &*self.slots {
            // Acquire: as in `find`. SAFETY: as in `find`.
            if let Some(group) = unsafe { slot.load(Ordering::Acquire, &guard).as_ref() } {
                // Relaxed: as in `record`; any value read is a score the group had.
                let score = group.score.load(Ordering::Relaxed);
                groups.push((&*group.name, score, group.counter.to_state()));
            }
        }
        let mut out = Vec::new();
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        // At most MAX_GROUP_FIELD_BYTES (cut above).
        out.extend_from_slice(&(field.len() as u16).to_le_bytes());
        out.extend_from_slice(field.as_bytes());
        // At most MAX_GROUPS.
        out.extend_from_slice(&(groups.len() as u32).to_le_bytes());
        for (name, score, counter) in &groups {
            // At most MAX_GROUP_NAME_BYTES (names are cut when recorded).
            out.push(name.len() as u8);
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(&score.to_le_bytes());
            out.extend_from_slice(&(counter.len() as u64).to_le_bytes());
            out.extend_from_slice(counter);
        }
        let other = self.other.to_state();
        out.extend_from_slice(&(other.len() as u64).to_le_bytes());
        out.extend_from_slice(&other);
        let crc = crc32(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    /// Checks that `bytes` are a groups section this build can load (everything
    /// [`restore_state`](Self::restore_state) checks), without groups to load them into: a
    /// service with `--group-by` off keeps a saved section's bytes as they are, and must not
    /// keep bytes that would refuse the start once it is on again. Returns the field name the
    /// section was saved for.
    ///
    /// # Errors
    ///
    /// The bytes are not a valid groups section (see [`GroupsStateError`]).
    pub fn check_state(bytes: &[u8]) -> Result<String, GroupsStateError> {
        decode(bytes, DEFAULT_THRESHOLD).map(|saved| saved.field)
    }

    /// Loads a saved section into these groups (at start, when they are empty; it works at
    /// any time): nothing when it was saved for another `field`; else the saved groups,
    /// largest estimate first, join the tracked group of the same name or take a free slot,
    /// the rest and the saved `__other__` are merged into `__other__`, so the union of the
    /// groups and `__other__` is the union of before and of the file. Saved scores are kept
    /// (the heavy hitters stay heavy); the evictions count restarts. Each counter continues
    /// with these groups' threshold. Nothing changes unless the whole section is valid.
    ///
    /// # Errors
    ///
    /// The bytes are not a valid groups section (see [`GroupsStateError`]).
    #[allow(unsafe_code)]
    pub fn restore_state(
        &self,
        bytes: &[u8],
        field: &str,
    ) -> Result<GroupsRestored, GroupsStateError> {
        let mut saved = decode(bytes, self.threshold)?;
        if saved.field != field {
            return Ok(GroupsRestored::OtherField(saved.field));
        }
        saved
            .groups
            .sort_by(|a, b| (b.2.estimate().cmp(&a.2.estimate())).then_with(|| a.0.cmp(&b.0)));
        // Acquire: as in `promote`. Only a concurrent promotion holds the flag, briefly.
        while self
            .changing
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            std::hint::spin_loop();
        }
        let guard = epoch::pin();
        let mut tracked = HashMap::new();
        let mut free = Vec::new();
        for (i, slot) in self.slots.iter().enumerate().rev() {
            // Acquire: as in `find`. SAFETY: as in `find`; the flag keeps the slot linked.
            match unsafe { slot.load(Ordering::Acquire, &guard).as_ref() } {
                Some(group) => {
                    tracked.insert(group.name.to_string(), group);
                }
                None => free.push(i),
            }
        }
        let (mut joined, mut folded) = (0, 0);
        for (name, score, counter) in saved.groups {
            if let Some(group) = tracked.get(&name) {
                group.counter.merge(&counter);
                // Relaxed: as in `record`.
                group.score.fetch_add(score, Ordering::Relaxed);
                joined += 1;
            } else if let Some(slot) = free.pop() {
                let group = Owned::new(Group {
                    hash: self.hash(&name),
                    name: name.into(),
                    counter,
                    score: AtomicU64::new(score),
                });
                // Release: publishes the group's fields to readers' Acquire (the slot was
                // null: nothing to free).
                self.slots[slot].store(group, Ordering::Release);
                joined += 1;
            } else {
                self.other.merge(&counter);
                folded += 1;
            }
        }
        self.other.merge(&saved.other);
        self.publish_index(&guard);
        let bar = self.lowest_slot(&guard).1.map_or(0, promotion_bar);
        // Relaxed: a hint for the hot path, as in `promote`.
        self.promote_above.store(bar, Ordering::Relaxed);
        // Release: the next holder sees the slots and index set here.
        self.changing.store(false, Ordering::Release);
        Ok(GroupsRestored::Loaded {
            tracked: joined,
            folded,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(i: u64) -> u64 {
        crate::murmur::hash_element(&i.to_le_bytes())
    }

    /// Groups "a" (exact, 3 addresses), "b" (sketch, 5,000), "c" (1), and `__other__`.
    fn sample() -> Groups {
        let groups = Groups::new(3, 100).expect("valid");
        (0..3).for_each(|i| groups.record("a", ip(i)));
        (0..5_000).for_each(|i| groups.record("b", ip(1_000_000 + i)));
        groups.record("c", ip(7));
        (0..10).for_each(|i| groups.record(&format!("d{i}"), ip(2_000_000 + i)));
        groups
    }

    fn counts(groups: &Groups) -> Vec<(String, u64, &'static str)> {
        let snap = groups.snapshot();
        let mut out: Vec<_> = snap
            .groups
            .iter()
            .chain([&snap.other])
            .map(|g| (g.name.clone(), g.estimate, g.phase.as_str()))
            .collect();
        out.sort();
        out
    }

    #[test]
    fn round_trip_exact_sketch_and_other() {
        let groups = sample();
        let saved = groups.to_state("host");
        assert_eq!(Groups::check_state(&saved).as_deref(), Ok("host"));
        let back = Groups::new(3, 100).expect("valid");
        assert_eq!(
            back.restore_state(&saved, "host"),
            Ok(GroupsRestored::Loaded {
                tracked: 3,
                folded: 0
            })
        );
        assert_eq!(counts(&back), counts(&groups));
        assert!(counts(&back).contains(&("a".into(), 3, "exact")));
        assert!(counts(&back)
            .iter()
            .any(|(n, _, p)| n == "b" && *p == "sketch"));
        assert_eq!(back.other().registers(), groups.other().registers());
        // Lookups work: a known address changes nothing, a new one counts.
        back.record("a", ip(0));
        back.record("c", ip(8));
        assert_eq!(back.count("a").map(|g| g.estimate), Some(3));
        assert_eq!(back.count("c").map(|g| g.estimate), Some(2));
    }

    #[test]
    fn fewer_slots_fold_the_smallest_into_other_and_keep_the_union() {
        let groups = sample();
        let saved = groups.to_state("host");
        let small = Groups::new(1, 100).expect("valid");
        assert_eq!(
            small.restore_state(&saved, "host"),
            Ok(GroupsRestored::Loaded {
                tracked: 1,
                folded: 2
            })
        );
        let snap = small.snapshot();
        assert_eq!(snap.groups.len(), 1);
        assert_eq!(snap.groups[0].name, "b");
        let union = |g: &Groups| {
            let all = UniqueCounter::new();
            g.for_each(|_, c| all.merge(c));
            all.merge(g.other());
            all.registers()
        };
        assert_eq!(union(&small), union(&groups));
    }

    #[test]
    fn another_field_loads_nothing() {
        let saved = sample().to_state("host");
        let other = Groups::new(3, 100).expect("valid");
        assert_eq!(
            other.restore_state(&saved, "service"),
            Ok(GroupsRestored::OtherField("host".into()))
        );
        assert!(other.snapshot().groups.is_empty());
        assert_eq!(other.other().estimate(), 0);
    }

    #[test]
    fn corrupt_sections_are_refused_and_change_nothing() {
        let saved = sample().to_state("host");
        let target = Groups::new(3, 100).expect("valid");
        let mut flipped = saved.clone();
        flipped[30] ^= 1;
        assert_eq!(
            target.restore_state(&flipped, "host"),
            Err(GroupsStateError::Checksum)
        );
        assert_eq!(
            Groups::check_state(&saved[..saved.len() - 1]),
            Err(GroupsStateError::Checksum)
        );
        let reseal = |mut body: Vec<u8>| {
            let crc = crc32(&body);
            body.extend_from_slice(&crc.to_le_bytes());
            body
        };
        // A length field past the end, behind a valid checksum.
        let mut long = saved[..saved.len() - 4].to_vec();
        long.truncate(long.len() - 10);
        assert_eq!(
            Groups::check_state(&reseal(long)),
            Err(GroupsStateError::Truncated)
        );
        let mut trailing = saved[..saved.len() - 4].to_vec();
        trailing.push(0);
        assert_eq!(
            Groups::check_state(&reseal(trailing)),
            Err(GroupsStateError::Truncated)
        );
        let mut magic = saved.clone();
        magic[0] = b'X';
        assert_eq!(
            Groups::check_state(&magic),
            Err(GroupsStateError::NotGroups)
        );
        // A group named __other__ (same length as "d0": rename slot 0's... build one).
        let one = Groups::new(2, 100).expect("valid");
        one.record("x", ip(1));
        let mut named = one.to_state("host");
        let at = 14 + 4 + 4 + 1;
        assert_eq!(&named[at..at + 1], b"x");
        named[at] = 0xff;
        let named = reseal(named[..named.len() - 4].to_vec());
        assert_eq!(
            Groups::check_state(&named),
            Err(GroupsStateError::Invalid("group name not UTF-8"))
        );
        assert!(target.snapshot().groups.is_empty());
        assert_eq!(target.other().estimate(), 0);
    }
}
