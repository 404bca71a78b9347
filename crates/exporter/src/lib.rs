//! Prometheus/OpenMetrics exporter for uniqd: `/metrics`, `/healthz`,
//! `/readyz` and a status page on the metrics port (default 9102).
//!
//! # Design
//!
//! * **One value to read.** [`Exported`] holds the [`Views`](uniqd_core::Views)
//!   (the same value ingest records into), the ingest metrics, the build and
//!   the shared count if any; `/metrics` and every JSON API read it.
//! * **Read at scrape time, one collector per view.** The unique-address
//!   estimate and the ingest request metrics are not mirrored into
//!   prometheus-client metric objects; custom
//!   [`Collector`](prometheus_client::collector::Collector)s read them when
//!   Prometheus scrapes, one per view, registered only when the view is on
//!   ([`collectors`]). The ingest hot path thus only touches its own lock-free
//!   atomics, and the exported values are never stale.
//! * **A plain [`Registry`]**, so more collectors or metrics can be added by
//!   the caller before [`run`]; [`registry`] builds the standard one.
//! * **Same server kit as ingest** ([`uniqd_http::serve`]): connection
//!   cap, timeouts, graceful drain.
//! * **Replicas sharing a count.** A [`SharedCount`] given to [`Exported`]
//!   answers `unique_ip_addresses`; the local count is then exported as
//!   `uniqd_local_unique_ip_addresses`. How the count is shared is the
//!   application's business (uniqd's Redis sync).
//! * **Replicas sharing windows and top pages.** A [`SharedViews`] given to
//!   [`Exported`] answers the window gauges, `/api/v1/unique...`, the top
//!   pages and `/stats` for every replica while it has a current answer, and
//!   the local views answer otherwise; the JSON says `"scope"`, `/metrics`
//!   says `uniqd_views_scope{view}` ([`shared_views`]).
//! * **Negotiated format** ([`exposition`]): OpenMetrics text
//!   (`application/openmetrics-text; version=1.0.0`, ending in `# EOF`) when
//!   `Accept` asks for it, as Prometheus's does; the classic text format 0.0.4
//!   (`text/plain; version=0.0.4`) otherwise. Encoding the whole registry takes
//!   microseconds.
//! * **A status page for people** ([`status`]): one self-contained HTML page
//!   compiled into the binary (no asset to ship, nothing to load from
//!   elsewhere) that polls `/status.json`, a small JSON read at request time
//!   like `/metrics`.
//!
//! | endpoint   | answer |
//! |------------|--------|
//! | `/metrics` | 200, OpenMetrics text or the classic text format, as `Accept` asks |
//! | `/healthz` | 200 `{"status":"ok"}` while the process serves |
//! | `/readyz`  | 200 `{"status":"ready",...}`; 503 while starting or draining; [`ReadyDetail`]s add fields |
//! | `/`        | 200, the status page (HTML) |
//! | `/status.json` | 200, count, phase, error bound and ingest counters (JSON) |
//! | `/stats`   | 200, the most requested pages with counts and error bounds (JSON, [`stats`]); `?limit=N`, 400 for a bad one; 404 when the top pages are off |
//! | `/api/v1/unique?window=15m` | 200, distinct addresses in the window (JSON, [`windows`]); 400 for a bad or too long window; 404 when the windows are off |
//! | `/api/v1/unique/series?lookback=1h&step=1m` | 200, distinct addresses per step (JSON); 400 for bad parameters |
//! | other      | 404 JSON (405 for non-GET/HEAD on the paths above) |
//!
//! With [`ExporterConfig::metrics_auth`] set, every path but [`OPEN_PATHS`]
//! (`/healthz`, `/readyz` and the status page's HTML shell `/`) needs
//! `Authorization: Bearer <token>` (Prometheus: `authorization` in the scrape
//! config) and answers 401 JSON with `WWW-Authenticate: Bearer` otherwise:
//! `/metrics`, `/status.json`, `/stats`, `/api/v1/...`, any path added later,
//! and unknown paths (401 before 404). The status page asks for the token
//! when `/status.json` answers 401.

#![forbid(unsafe_code)]

pub mod collectors;
pub mod config;
mod exported;
pub mod exposition;
pub mod groups;
pub mod query;
pub mod readiness;
mod routes;
pub mod shared_count;
pub mod shared_views;
mod state;
pub mod stats;
pub mod status;
pub mod windows;

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::Instant;

use hyper::service::service_fn;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;

pub use crate::collectors::{registry, MetricOptions};
pub use crate::config::ExporterConfig;
pub use crate::exported::{BuildInfo, Exported};
pub use crate::exposition::{Format, CLASSIC_CONTENT_TYPE, OPENMETRICS_CONTENT_TYPE};
pub use crate::readiness::{Readiness, ReadyState};
pub use crate::routes::{served_paths, OPEN_PATHS};
pub use crate::shared_count::{ReadyDetail, SharedCount};
pub use crate::shared_views::{Scope, SharedViews};
use crate::state::ExporterState;

/// Runs the metrics server on `listener` until `shutdown` resolves, then
/// drains (see [`uniqd_http::serve`]). `/metrics` encodes
/// `registry` (see [`registry`]); the JSON APIs read `exported`.
///
/// # Errors
///
/// `InvalidInput` if the server configuration is invalid.
pub async fn run(
    listener: TcpListener,
    registry: Arc<Registry>,
    exported: Exported,
    readiness: Arc<Readiness>,
    config: ExporterConfig,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let state = Arc::new(ExporterState {
        registry,
        exported,
        readiness,
        metrics_auth: config.metrics_auth,
        started: Instant::now(),
        last_scrape_len: AtomicUsize::new(0),
    });
    let make_service = move |_peer| {
        let state = Arc::clone(&state);
        service_fn(move |req| {
            let response = routes::handle(&state, &req);
            async move { Ok::<_, Infallible>(response) }
        })
    };
    uniqd_http::serve(listener, make_service, config.server, shutdown).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use uniqd_core::{TopPages, UniqueCounter, Views};
    use uniqd_ingest::IngestMetrics;

    fn build(version: &str) -> BuildInfo {
        BuildInfo {
            version: version.to_owned(),
        }
    }

    /// The registry of the counter alone, with default options.
    fn counter_registry(counter: Arc<UniqueCounter>, ingest: Arc<IngestMetrics>) -> Registry {
        registry(
            &Exported::new(Views::new(counter), ingest, build("1.2.3")),
            &MetricOptions::default(),
        )
    }

    fn scrape(registry: &Registry) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, registry).expect("encodes");
        text
    }

    #[test]
    fn exposes_the_contracted_families() {
        let counter = Arc::new(UniqueCounter::with_threshold(100));
        let ingest = Arc::new(IngestMetrics::new());
        for ip in ["1.2.3.4", "::1", "0:0:0:0:0:0:0:1", "::ffff:1.2.3.4"] {
            counter.insert_str(ip).expect("valid");
        }
        ingest.record_request(
            uniqd_ingest::metrics::RequestOutcome::Accepted,
            std::time::Duration::from_micros(300),
        );
        ingest.record_lines(4, 1);
        let text = scrape(&counter_registry(Arc::clone(&counter), ingest));
        for expected in [
            "# TYPE unique_ip_addresses gauge\nunique_ip_addresses 2\n",
            "uniqd_estimator_phase{phase=\"exact\"} 1\n",
            "uniqd_estimator_phase{phase=\"sketch\"} 0\n",
            "uniqd_estimator_relative_standard_error 0.0\n",
            "uniqd_exact_threshold 100\n",
            "# TYPE uniqd_ingest_requests counter\n",
            "uniqd_ingest_requests_total{outcome=\"accepted\"} 1\n",
            "uniqd_ingest_requests_total{outcome=\"payload_too_large\"} 0\n",
            "uniqd_ingest_lines_total{outcome=\"accepted\"} 4\n",
            "uniqd_ingest_lines_total{outcome=\"invalid\"} 1\n",
            "# UNIT uniqd_ingest_request_duration_seconds seconds\n",
            "uniqd_ingest_request_duration_seconds_count 1\n",
            "uniqd_ingest_request_duration_seconds_bucket{le=\"0.0005\"} 1\n",
            "uniqd_ingest_request_duration_seconds_bucket{le=\"+Inf\"} 1\n",
            "uniqd_build_info{version=\"1.2.3\"} 1\n",
        ] {
            assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
        }
        assert!(text.ends_with("# EOF\n"), "{text}");
        assert!(!text.contains("uniqd_local_unique_ip_addresses"), "{text}");
        #[cfg(target_os = "linux")]
        for expected in [
            "# TYPE process_cpu_seconds counter\nprocess_cpu_seconds_total ",
            "# TYPE process_resident_memory_bytes gauge\n",
            "# TYPE process_virtual_memory_bytes gauge\n",
            "# TYPE process_open_fds gauge\n",
            "# TYPE process_max_fds gauge\n",
            "# TYPE process_start_time_seconds gauge\n",
        ] {
            assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
        }
    }

    #[derive(Debug)]
    struct FixedCount(u64);

    impl SharedCount for FixedCount {
        fn global_estimate(&self) -> u64 {
            self.0
        }
    }

    #[test]
    fn a_shared_count_answers_unique_ip_addresses() {
        let counter = Arc::new(UniqueCounter::new());
        counter.insert_str("1.2.3.4").expect("valid");
        let exported = Exported::new(
            Views::new(counter),
            Arc::new(IngestMetrics::new()),
            build("1"),
        )
        .with_shared_count(Arc::new(FixedCount(12_345)));
        let text = scrape(&registry(&exported, &MetricOptions::default()));
        assert!(
            text.contains("# TYPE unique_ip_addresses gauge\nunique_ip_addresses 12345\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "# TYPE uniqd_local_unique_ip_addresses gauge\nuniqd_local_unique_ip_addresses 1\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn top_pages_are_exported_highest_first_up_to_k() {
        let top =
            Arc::new(TopPages::new(16, 1, uniqd_core::PathOptions::default()).expect("valid size"));
        for url in ["/a", "/b", "/b", "/c\"d", "/c\"d", "/c\"d", "/z"] {
            top.record_url(url);
        }
        let exported = Exported::new(
            Views::new(Arc::new(UniqueCounter::new())).with_top_pages(Arc::clone(&top)),
            Arc::new(IngestMetrics::new()),
            build("1"),
        );
        let top_pages = |pages| {
            let options = MetricOptions {
                top_pages: pages,
                ..MetricOptions::default()
            };
            scrape(&registry(&exported, &options))
        };
        let text = top_pages(3);
        assert!(
            text.contains(
                "# TYPE uniqd_top_page_requests gauge\n\
                 uniqd_top_page_requests{path=\"/c\\\"d\"} 3\n\
                 uniqd_top_page_requests{path=\"/b\"} 2\n\
                 uniqd_top_page_requests{path=\"/a\"} 1\n\
                 # HELP uniqd_build_info"
            ),
            "{text}"
        );
        assert!(!text.contains("\"/z\""), "only the top 3: {text}");

        // K = 0: no family at all.
        assert!(!top_pages(0).contains("uniqd_top_page_requests"));
    }
}
