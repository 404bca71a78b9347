//! Settings of the per-group counts (`--group-by`, `--max-groups`; see
//! `uniqd_core::groups`): which log field names the group and how many groups are tracked.

use uniqd_core::{DEFAULT_MAX_GROUPS, MAX_GROUPS};
use uniqd_ingest::fields::names::check_name;

/// Per-group counts: on when this is set in [`AppConfig`](super::AppConfig).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupsConfig {
    /// The member name or dotted path whose value is the group (as `--ip-field`).
    pub field: String,
    /// Groups tracked at most (the rest count as `__other__`).
    pub max_groups: usize,
}

impl GroupsConfig {
    /// Groups by `field`, [`DEFAULT_MAX_GROUPS`] at most.
    #[must_use]
    pub fn by(field: &str) -> Self {
        Self {
            field: field.to_owned(),
            max_groups: DEFAULT_MAX_GROUPS,
        }
    }

    /// Checks the field name and the bound.
    ///
    /// # Errors
    ///
    /// A description of the first invalid setting.
    pub fn validate(&self) -> Result<(), String> {
        check_name(self.field.trim()).map_err(|e| format!("--group-by (UNIQD_GROUP_BY): {e}"))?;
        check_max_groups(self.max_groups)
    }
}

/// Checks `--max-groups` against 1 ..= `uniqd_core::MAX_GROUPS`.
///
/// # Errors
///
/// The bounds, when `max_groups` is outside them.
pub fn check_max_groups(max_groups: usize) -> Result<(), String> {
    if !(1..=MAX_GROUPS).contains(&max_groups) {
        return Err(format!(
            "--max-groups (UNIQD_MAX_GROUPS) must be 1 ..= {MAX_GROUPS}"
        ));
    }
    Ok(())
}
