//! `GET /api/v1/groups` and `GET /api/v1/unique?group=NAME`: distinct addresses per group
//! (`--group-by`), as JSON, from [`Groups`], or from every replica's groups when a
//! [`SharedViews`] has them ([`pick_groups`]; `scope` says which). Computed when asked, like
//! `/metrics`. Bodies:
//!
//! ```json
//! {"max_groups":100,"evictions":0,"groups":[{"group":"a.example","unique_ip_addresses":42,"exact":true,"relative_standard_error":0}],"scope":"local","other":{"group":"__other__","unique_ip_addresses":0,"exact":true,"relative_standard_error":0}}
//! {"group":"a.example","unique_ip_addresses":42,"exact":true,"relative_standard_error":0,"scope":"local"}
//! ```
//!
//! `group` is percent-decoded (`%20`, `%C3%BC`); `group=__other__` answers the untracked
//! groups' counter. Groups have no time windows (`docs/groups.md` says why), so `window`
//! together with `group` is refused.

use std::fmt;
use std::sync::Arc;

use uniqd_core::{GroupCount, Groups, Phase, OTHER_GROUP};
use uniqd_http::JsonObject;

use crate::query::{single_param, Repeated};
use crate::shared_views::{pick_groups, Scope, SharedViews};

/// Why `/api/v1/unique?group=` was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupQueryError {
    /// `group` given more than once.
    Repeated,
    /// `group` empty or not valid percent-encoded UTF-8.
    Invalid,
    /// `window` with `group`: groups keep no windows.
    NoWindows,
    /// The group has no slot now (never seen, evicted, or not among the heaviest).
    NotTracked(String),
}

impl GroupQueryError {
    /// Stable machine-readable code for the JSON body.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::Repeated => "repeated_parameter",
            Self::Invalid => "invalid_group",
            Self::NoWindows => "group_windows_unsupported",
            Self::NotTracked(_) => "group_not_tracked",
        }
    }
}

impl fmt::Display for GroupQueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Repeated => f.write_str("group is given more than once"),
            Self::Invalid => f.write_str("group: not a non-empty percent-encoded UTF-8 name"),
            Self::NoWindows => f.write_str(
                "groups have no time windows: ask for a group's count since start, without window",
            ),
            Self::NotTracked(name) => write!(
                f,
                "group {name:?} is not tracked now (its lines count in __other__); see /api/v1/groups"
            ),
        }
    }
}

impl std::error::Error for GroupQueryError {}

/// Whether `query` asks for a group (`group` present), so `/api/v1/unique` answers from the
/// groups rather than the time windows.
#[must_use]
pub fn asks_for_group(query: Option<&str>) -> bool {
    !matches!(single_param(query, "group"), Ok(None))
}

fn count_json(count: &GroupCount) -> String {
    count_object(count).finish()
}

fn count_object(count: &GroupCount) -> JsonObject {
    JsonObject::with_capacity(count.name.len() + 112)
        .str("group", &count.name)
        .u64("unique_ip_addresses", count.estimate)
        .raw(
            "exact",
            if count.phase == Phase::Exact {
                "true"
            } else {
                "false"
            },
        )
        .f64("relative_standard_error", count.relative_standard_error)
}

/// The `/api/v1/unique?group=NAME` body (every replica's count of the group when `shared`
/// has one; a group that is not among the shared groups is not tracked).
///
/// # Errors
///
/// See [`GroupQueryError`].
pub fn group_json(
    groups: &Groups,
    shared: Option<&Arc<dyn SharedViews>>,
    query: Option<&str>,
) -> Result<String, GroupQueryError> {
    let raw = single_param(query, "group")
        .map_err(|Repeated| GroupQueryError::Repeated)?
        .unwrap_or_default();
    if !matches!(single_param(query, "window"), Ok(None)) {
        return Err(GroupQueryError::NoWindows);
    }
    let name = percent_decode(raw).ok_or(GroupQueryError::Invalid)?;
    if name.is_empty() {
        return Err(GroupQueryError::Invalid);
    }
    let name = if name == OTHER_GROUP {
        name.as_str()
    } else {
        uniqd_core::group_name(&name)
    };
    let (count, scope) = if shared.is_some_and(|s| s.groups().is_some()) {
        let (snapshot, scope) = pick_groups(groups, shared);
        let count = if name == OTHER_GROUP {
            Some(snapshot.other)
        } else {
            snapshot.groups.into_iter().find(|g| g.name == name)
        };
        (count, scope)
    } else {
        (groups.count(name), Scope::Local)
    };
    match count {
        Some(count) => Ok(count_object(&count).str("scope", scope.as_str()).finish()),
        None => Err(GroupQueryError::NotTracked(name.to_owned())),
    }
}

/// The `/api/v1/groups` body: every tracked group, largest first, and `__other__` (every
/// replica's when `shared` has them).
#[must_use]
pub fn groups_json(groups: &Groups, shared: Option<&Arc<dyn SharedViews>>) -> String {
    let (snapshot, scope) = pick_groups(groups, shared);
    let mut list = String::with_capacity(2 + snapshot.groups.len() * 100);
    list.push('[');
    for (i, group) in snapshot.groups.iter().enumerate() {
        if i > 0 {
            list.push(',');
        }
        list.push_str(&count_json(group));
    }
    list.push(']');
    let to_u64 = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
    JsonObject::with_capacity(list.len() + 200)
        .u64("max_groups", to_u64(snapshot.max_groups))
        .u64("evictions", snapshot.evictions)
        .raw("groups", &list)
        .str("scope", scope.as_str())
        .raw("other", &count_json(&snapshot.other))
        .finish()
}

/// `%XX` escapes decoded (and `+` as a space, as forms send it); `None` for a bad escape or
/// bytes that are not UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = text.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use uniqd_core::hash_ip_str;

    #[test]
    fn answers_tracked_groups_and_refuses_the_rest() {
        let groups = Groups::new(4, 100).expect("valid");
        for (group, ip) in [
            ("a.example", "1.2.3.4"),
            ("ü b", "1.2.3.5"),
            ("a.example", "::1"),
        ] {
            groups.record(group, hash_ip_str(ip).expect("valid"));
        }
        let body = group_json(&groups, None, Some("group=a.example")).expect("tracked");
        assert_eq!(
            body,
            r#"{"group":"a.example","unique_ip_addresses":2,"exact":true,"relative_standard_error":0,"scope":"local"}"#
        );
        let body = group_json(&groups, None, Some("group=%C3%BC+b")).expect("tracked");
        assert!(body.contains(r#""unique_ip_addresses":1"#), "{body}");
        let other = group_json(&groups, None, Some("group=__other__")).expect("always");
        assert!(other.contains(r#""unique_ip_addresses":0"#), "{other}");
        let code = |q: &str| group_json(&groups, None, Some(q)).map_err(|e| e.code());
        assert_eq!(code("group=nope"), Err("group_not_tracked"));
        assert_eq!(code("group="), Err("invalid_group"));
        assert_eq!(code("group=%ZZ"), Err("invalid_group"));
        assert_eq!(code("group=%FF"), Err("invalid_group"));
        assert_eq!(code("group=a&group=b"), Err("repeated_parameter"));
        assert_eq!(
            code("group=a.example&window=5m"),
            Err("group_windows_unsupported")
        );
        assert!(asks_for_group(Some("group=a")) && asks_for_group(Some("group")));
        assert!(!asks_for_group(Some("window=5m")) && !asks_for_group(None));
        let list = groups_json(&groups, None);
        assert!(list.starts_with(r#"{"max_groups":4,"evictions":0,"groups":[{"group":"a.example","unique_ip_addresses":2"#), "{list}");
        assert!(list.ends_with(r#""other":{"group":"__other__","unique_ip_addresses":0,"exact":true,"relative_standard_error":0}}"#), "{list}");
    }
}

#[cfg(test)]
mod shared_tests {
    use std::sync::Arc;

    use uniqd_core::{
        hash_ip_str, GroupCount, Groups, GroupsSnapshot, Phase, TopPagesSnapshot, WindowRing,
    };

    use super::*;

    /// Every replica's groups, as a sync task would have read them.
    #[derive(Debug)]
    struct Fleet(Option<GroupsSnapshot>);

    impl SharedViews for Fleet {
        fn windows(&self) -> Option<Arc<WindowRing>> {
            None
        }
        fn top_pages(&self, _limit: usize) -> Option<TopPagesSnapshot> {
            None
        }
        fn groups(&self) -> Option<GroupsSnapshot> {
            self.0.clone()
        }
    }

    fn count(name: &str, estimate: u64) -> GroupCount {
        GroupCount {
            name: name.to_owned(),
            estimate,
            phase: Phase::Sketch,
            relative_standard_error: uniqd_core::SKETCH_RELATIVE_STANDARD_ERROR,
        }
    }

    #[test]
    fn shared_groups_answer_global_and_never_below_the_local_count() {
        let groups = Groups::new(4, 100).expect("valid");
        for (group, ip) in [
            ("a", "1.2.3.4"),
            ("a", "1.2.3.5"),
            ("a", "1.2.3.6"),
            ("z", "::1"),
        ] {
            groups.record(group, hash_ip_str(ip).expect("valid"));
        }
        // The fleet: a larger than here, b only elsewhere; this replica's z is not among the

        let fleet: Arc<dyn SharedViews> = Arc::new(Fleet(Some(GroupsSnapshot {
            groups: vec![count("a", 40), count("b", 7)],
            other: count(OTHER_GROUP, 0),
            max_groups: 2,
            evictions: 0,
        })));
        let shared = Some(&fleet);
        let body = group_json(&groups, shared, Some("group=a")).expect("global");
        assert_eq!(
            body,
            r#"{"group":"a","unique_ip_addresses":40,"exact":false,"relative_standard_error":0.008125,"scope":"global"}"#
        );
        let b = group_json(&groups, shared, Some("group=b")).expect("global");
        assert!(b.contains(r#""unique_ip_addresses":7"#), "{b}");
        let z = group_json(&groups, shared, Some("group=z")).map_err(|e| e.code());
        assert_eq!(z, Err("group_not_tracked"), "not among the fleet's largest");
        let list = groups_json(&groups, shared);
        assert!(list.contains(r#""scope":"global""#), "{list}");
        assert!(
            list.contains(r#"{"group":"a","unique_ip_addresses":40"#),
            "{list}"
        );

        // A stale global count below this replica's own: the local one answers, exact.
        let stale: Arc<dyn SharedViews> = Arc::new(Fleet(Some(GroupsSnapshot {
            groups: vec![count("a", 2)],
            other: count(OTHER_GROUP, 0),
            max_groups: 4,
            evictions: 0,
        })));
        let body = group_json(&groups, Some(&stale), Some("group=a")).expect("global");
        assert_eq!(
            body,
            r#"{"group":"a","unique_ip_addresses":3,"exact":true,"relative_standard_error":0,"scope":"global"}"#
        );

        // No current shared answer: local.
        let down: Arc<dyn SharedViews> = Arc::new(Fleet(None));
        let body = group_json(&groups, Some(&down), Some("group=z")).expect("local");
        assert!(body.ends_with(r#""scope":"local"}"#), "{body}");
        assert!(groups_json(&groups, Some(&down)).contains(r#""scope":"local""#));
    }
}
