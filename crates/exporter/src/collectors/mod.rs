//! `/metrics`: one prometheus-client [`Collector`](prometheus_client::collector::Collector) per
//! view, registered only when the view is on (as client_rust's own collectors are), plus the
//! ingest metrics and the build; [`registry`] assembles them from an [`Exported`].
//!
//! Nothing is cached: every scrape reads the views and the ingest atomics directly, so
//! `/metrics` is always current and the hot path never does extra work for monitoring. Metric
//! names are a fixed contract with dashboards and alerts (`deploy/`); change them only
//! together. The families come out in registration order:
//!
//! | collector | families | registered |
//! |---|---|---|
//! | [`CounterCollector`] | `unique_ip_addresses` (the shared count with a [`SharedCount`](crate::SharedCount), this replica's then as `uniqd_local_unique_ip_addresses`), `uniqd_estimator_phase`, `uniqd_estimator_relative_standard_error`, `uniqd_exact_threshold` | always |
//! | [`IngestCollector`] | `uniqd_ingest_requests_total`, `uniqd_ingest_lines_total`, `uniqd_ingest_request_duration_seconds` | always |
//! | [`TopPagesCollector`] | `uniqd_top_page_requests{path}` | top pages on and [`MetricOptions::top_pages`] > 0 |
//! | [`WindowsCollector`] | `unique_ip_addresses_window{window}` | windows on |
//! | [`GroupsCollector`] | `unique_ip_addresses_by_group{group}` (at most `--max-groups` + 1 values) | groups on (`--group-by`) |
//! | [`ScopeCollector`] | `uniqd_views_scope{view}`: 1 while `windows` / `top_pages` / `groups` answer for every replica, 0 while local | with a [`SharedViews`](crate::SharedViews) |
//! | [`BuildInfoCollector`] | `uniqd_build_info{version}` | always |
//! | [`ProcessCollector`] | `process_cpu_seconds_total`, `process_resident_memory_bytes`, `process_virtual_memory_bytes`, `process_open_fds`, `process_max_fds`, `process_start_time_seconds` (the official clients' process metrics, from `/proc`) | always (each family only where `/proc` has it: Linux) |
//! | [`SyslogCollector`] | `uniqd_syslog_messages_received_total{transport}`, `uniqd_syslog_messages_total{transport,outcome}`, `uniqd_syslog_tcp_connections_total`, `uniqd_syslog_udp_kernel_drops_total` | by the binary, with `--syslog-listen` |
//!
//! A new view gets its own module here with its collector, and one line in [`registry`].

mod build;
mod counter;
mod groups;
mod ingest;
mod process;
mod scope;
mod syslog;
mod top_pages;
mod windows;

use std::sync::Arc;

use prometheus_client::registry::Registry;
use uniqd_core::Span;

pub use self::build::{BuildInfoCollector, BUILD_INFO};
pub use self::counter::{
    CounterCollector, ESTIMATOR_PHASE, ESTIMATOR_RELATIVE_STANDARD_ERROR, EXACT_THRESHOLD,
    LOCAL_UNIQUE_IP_ADDRESSES, UNIQUE_IP_ADDRESSES,
};
pub use self::groups::{GroupsCollector, UNIQUE_IP_ADDRESSES_BY_GROUP};
pub use self::ingest::{IngestCollector, INGEST_LINES, INGEST_REQUESTS, INGEST_REQUEST_DURATION};
pub use self::process::{ProcessCollector, ProcessStats};
pub use self::scope::{ScopeCollector, VIEWS_SCOPE};
pub use self::syslog::{
    SyslogCollector, SYSLOG_MESSAGES, SYSLOG_MESSAGES_RECEIVED, SYSLOG_TCP_CONNECTIONS,
    SYSLOG_UDP_KERNEL_DROPS,
};
pub use self::top_pages::{TopPagesCollector, TOP_PAGE_REQUESTS};
pub use self::windows::{WindowsCollector, UNIQUE_IP_ADDRESSES_WINDOW};
use crate::exported::Exported;

/// How much of the optional views `/metrics` shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricOptions {
    /// How many of the most requested pages to export as `uniqd_top_page_requests` (0: the
    /// family is left out).
    pub top_pages: usize,
    /// The windows exported as `unique_ip_addresses_window{window}`.
    pub windows: Vec<Span>,
}

impl Default for MetricOptions {
    /// The top 20 pages; no window gauge.
    fn default() -> Self {
        Self {
            top_pages: 20,
            windows: Vec::new(),
        }
    }
}

/// A registry with one collector per view of `exported` that is on, the ingest metrics and
/// the build (see the [module docs](self)); register more collectors on it before
/// [`run`](crate::run).
#[must_use]
pub fn registry(exported: &Exported, options: &MetricOptions) -> Registry {
    let views = exported.views();
    let mut registry = Registry::default();
    registry.register_collector(Box::new(CounterCollector::new(
        Arc::clone(views.counter()),
        exported.shared_count().cloned(),
    )));
    registry.register_collector(Box::new(IngestCollector::new(Arc::clone(
        exported.ingest(),
    ))));
    if let Some(top) = views.top_pages().filter(|_| options.top_pages > 0) {
        registry.register_collector(Box::new(
            TopPagesCollector::new(Arc::clone(top), options.top_pages)
                .with_shared(exported.shared_views().cloned()),
        ));
    }
    if let Some(ring) = views.windows() {
        registry.register_collector(Box::new(
            WindowsCollector::new(Arc::clone(ring), &options.windows)
                .with_shared(exported.shared_views().cloned()),
        ));
    }
    if let Some(shared) = exported.shared_views() {
        registry.register_collector(Box::new(
            ScopeCollector::new(
                Arc::clone(shared),
                views.windows().is_some(),
                views.top_pages().is_some(),
            )
            .with_groups(views.groups().is_some()),
        ));
    }
    if let Some(groups) = views.groups() {
        registry.register_collector(Box::new(
            GroupsCollector::new(Arc::clone(groups)).with_shared(exported.shared_views().cloned()),
        ));
    }
    registry.register_collector(Box::new(BuildInfoCollector::new(exported.build().clone())));
    registry.register_collector(Box::new(ProcessCollector::new()));
    registry
}
