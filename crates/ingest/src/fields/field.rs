//! The fields uniqd reads from a log, as the field map, the fast scanner and simd-json's walk
//! name them: a leaf module, so that `names.rs` (the configured names) and `flat.rs` (the
//! scanner's view of them) both use it without using each other.

/// The fields uniqd reads: the three of every log, and the group with `--group-by`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Field {
    Ip = 0,
    Url = 1,
    Timestamp = 2,
    Group = 3,
}
