//! [`GroupsStateError`]: why a state file's groups section does not load. A module of its
//! own so that the state format (`state.rs`) can name it without depending on the groups'
//! persistence, which depends on the counter and through it on the state format.

use std::fmt;

/// Why bytes are not a groups section this version can load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupsStateError {
    /// Not a uniqd groups section (wrong magic).
    NotGroups,
    /// Written by an unknown format version.
    Version(u32),
    /// Shorter than its fields say, or longer.
    Truncated,
    /// The checksum does not match: the section is corrupt.
    Checksum,
    /// A field or group name that is empty, too long or not UTF-8, a duplicate name, more
    /// groups than any build tracks, or a counter that is not a version 1 state.
    Invalid(&'static str),
    /// A group's counter (or `__other__`'s) does not load: the counter's own error.
    Counter(String),
}

impl fmt::Display for GroupsStateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotGroups => f.write_str("not a uniqd groups section (magic UNIQDGRP missing)"),
            Self::Version(v) => write!(f, "groups section format version {v} is not supported"),
            Self::Truncated => f.write_str("groups section truncated or with trailing bytes"),
            Self::Checksum => f.write_str("groups section corrupt: CRC-32 mismatch"),
            Self::Invalid(what) => write!(f, "groups section invalid: {what}"),
            Self::Counter(e) => write!(f, "a group's counter is invalid: {e}"),
        }
    }
}

impl std::error::Error for GroupsStateError {}
