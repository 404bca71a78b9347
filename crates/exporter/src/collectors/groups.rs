//! Per-group counts (`--group-by`): `unique_ip_addresses_by_group{group="..."}` for every
//! tracked group and `group="__other__"`.
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
use uniqd_core::{Groups, OTHER_GROUP};

/// `unique_ip_addresses_by_group{group}` (gauge): distinct addresses per group.
pub const UNIQUE_IP_ADDRESSES_BY_GROUP: &str = "unique_ip_addresses_by_group";

/// Reads every group's counter on every scrape.
#[derive(Debug)]
pub struct GroupsCollector {
    groups: Arc<Groups>,
}

impl GroupsCollector {
    /// Exports the counts of `groups`.
    #[must_use]
    pub fn new(groups: Arc<Groups>) -> Self {
        Self { groups }
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
        let mut result = Ok(());
        self.groups.for_each(|name, counter| {
            if result.is_ok() {
                result = family
                    .encode_family(&[("group", name)])
                    .and_then(|mut gauge| gauge.encode_gauge(&counter.estimate()));
            }
        });
        result?;
        family
            .encode_family(&[("group", OTHER_GROUP)])?
            .encode_gauge(&self.groups.other().estimate())
    }
}
