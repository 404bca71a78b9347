//! Per-group counts (`--group-by`): `unique_ip_addresses_by_group{group="..."}` for every
//! tracked group and `group="__other__"`; every replica's counts while a
//! [`SharedViews`] has them (`uniqd_views_scope{view="groups"}` says which).
//!
//! The label's values at any scrape are at most `--max-groups` + 1: the bound of
//! `uniqd_core::groups`. Which groups they are follows the traffic, so over a retention
//! period Prometheus keeps one series per group that ever held a slot; an evicted group's
//! series stops, and starts again from zero if it comes back (`docs/groups.md`).

use std::fmt;
use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::metrics::MetricType;
use uniqd_core::Groups;

use crate::shared_views::{pick_groups, SharedViews};

/// `unique_ip_addresses_by_group{group}` (gauge): distinct addresses per group.
pub const UNIQUE_IP_ADDRESSES_BY_GROUP: &str = "unique_ip_addresses_by_group";

/// Reads every group's counter on every scrape.
#[derive(Debug)]
pub struct GroupsCollector {
    groups: Arc<Groups>,
    shared: Option<Arc<dyn SharedViews>>,
}

impl GroupsCollector {
    /// Exports the counts of `groups`.
    #[must_use]
    pub fn new(groups: Arc<Groups>) -> Self {
        Self {
            groups,
            shared: None,
        }
    }

    /// Exports every replica's counts while `shared` has them.
    #[must_use]
    pub fn with_shared(mut self, shared: Option<Arc<dyn SharedViews>>) -> Self {
        self.shared = shared;
        self
    }
}

impl Collector for GroupsCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> fmt::Result {
        let mut family = encoder.encode_descriptor(
            UNIQUE_IP_ADDRESSES_BY_GROUP,
            "Distinct client IP addresses per group (the --group-by field) since start, for \
             the tracked groups (at most --max-groups, chosen by traffic) and __other__ (the \
             rest); exact up to the exact threshold, then a HyperLogLog estimate.",
            None,
            MetricType::Gauge,
        )?;
        let (snapshot, _scope) = pick_groups(&self.groups, self.shared.as_ref());
        for group in snapshot.groups.iter().chain([&snapshot.other]) {
            family
                .encode_family(&[("group", group.name.as_str())])?
                .encode_gauge(&group.estimate)?;
        }
        Ok(())
    }
}
