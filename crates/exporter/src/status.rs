//! The status page at `GET /` and the JSON it polls, `GET /status.json`.
//!
//! The page (`status.html`, compiled into the binary) is self-contained:
//! inline CSS and JavaScript, no external asset, and a
//! `Content-Security-Policy` that forbids loading any (it may only fetch
//! from its own origin). Every second it fetches `status.json` and shows the
//! count, the phase, the error bound and the ingest rate, which it computes
//! from the difference of two successive request counters over the
//! difference of the server's uptime (server time, so network jitter does
//! not skew the rate).
//!
//! Like `/metrics`, `status.json` reads the counter and the ingest atomics of
//! the [`Exported`] value when asked; nothing is cached or updated on the
//! ingest path. With a [`SharedCount`](crate::SharedCount) (replicas sharing one count) it reports the shared count as
//! `unique_ip_addresses`, as `/metrics` does, and this replica's own as
//! `local_unique_ip_addresses`.
//!
//! The page also shows the invalid lines (their count and share), the configured time windows
//! (listed in `status.json` as `windows`, each then read from `/api/v1/unique`), the top pages
//! (`/stats`) and the Redis sync state (the `redis` member of `/readyz`, absent without
//! `--redis-url`). An optional `scope` member of the window and stats answers is shown when
//! present.

use std::time::Instant;

use uniqd_http::{escape_into, JsonObject};
use uniqd_ingest::metrics::{LineOutcome, RequestOutcome};

use crate::exported::Exported;

/// The status page (HTML with inline CSS and JavaScript).
pub const STATUS_PAGE: &str = include_str!("status.html");

/// `Content-Security-Policy` of the status page: nothing but its own inline
/// style and script, and fetches from its own origin.
pub const STATUS_PAGE_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; \
     script-src 'unsafe-inline'; connect-src 'self'; base-uri 'none'; form-action 'none'; \
     frame-ancestors 'none'";

/// The `status.json` body of `exported`; `started` is when the metrics server started.
#[must_use]
pub fn status_json(exported: &Exported, started: Instant) -> String {
    let (counter, ingest) = (exported.views().counter(), exported.ingest());
    let requests: u64 = RequestOutcome::ALL
        .iter()
        .map(|&outcome| ingest.requests(outcome))
        .sum();
    let uptime_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let local = counter.estimate();
    let mut json = JsonObject::with_capacity(320);
    json = match exported.shared_count() {
        Some(shared) => json
            .u64("unique_ip_addresses", shared.global_estimate())
            .u64("local_unique_ip_addresses", local),
        None => json.u64("unique_ip_addresses", local),
    };
    json.str("phase", counter.phase().as_str())
        .f64("relative_standard_error", counter.relative_standard_error())
        .u64(
            "threshold",
            u64::try_from(counter.threshold()).unwrap_or(u64::MAX),
        )
        .u64("ingest_requests_total", requests)
        .u64(
            "ingest_requests_accepted_total",
            ingest.requests(RequestOutcome::Accepted),
        )
        .u64(
            "ingest_lines_accepted_total",
            ingest.lines(LineOutcome::Accepted),
        )
        .u64(
            "ingest_lines_invalid_total",
            ingest.lines(LineOutcome::Invalid),
        )
        .raw("windows", &window_list(exported))
        .u64("uptime_ms", uptime_ms)
        .str("version", &exported.build().version)
        .finish()
}

/// The configured windows as a JSON array of their labels, e.g. `["5m","1h"]`.
fn window_list(exported: &Exported) -> String {
    let mut out = String::from("[");
    for (i, span) in exported.windows().iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        escape_into(&mut out, &span.to_string()); // quoted by escape_into
    }
    out.push(']');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    use uniqd_core::{ManualClock, Span, UniqueCounter, Views, WindowRing};
    use uniqd_ingest::IngestMetrics;

    use crate::exported::BuildInfo;
    use crate::shared_count::SharedCount;

    #[test]
    fn reports_the_counter_and_the_ingest_counters() {
        let counter = Arc::new(UniqueCounter::with_threshold(2));
        let ingest = Arc::new(IngestMetrics::new());
        let source = Exported::new(
            Views::new(Arc::clone(&counter)),
            Arc::clone(&ingest),
            BuildInfo {
                version: "9.8.7".to_owned(),
            },
        );
        let json = status_json(&source, Instant::now());
        assert!(
            json.starts_with(
                r#"{"unique_ip_addresses":0,"phase":"exact","relative_standard_error":0,"threshold":2,"ingest_requests_total":0,"#
            ),
            "{json}"
        );

        for ip in ["1.1.1.1", "2.2.2.2", "3.3.3.3"] {
            counter.insert_str(ip).expect("valid");
        }
        ingest.record_request(RequestOutcome::Accepted, Duration::from_micros(5));
        ingest.record_request(RequestOutcome::BadRequest, Duration::from_micros(5));
        ingest.record_lines(3, 1);
        let json = status_json(&source, Instant::now());
        for expected in [
            r#""unique_ip_addresses":3,"phase":"sketch","relative_standard_error":0.008125,"#,
            r#""ingest_requests_total":2,"ingest_requests_accepted_total":1,"#,
            r#""ingest_lines_accepted_total":3,"ingest_lines_invalid_total":1,"windows":[],"#,
            r#""version":"9.8.7"}"#,
        ] {
            assert!(json.contains(expected), "missing {expected} in {json}");
        }
    }

    #[test]
    fn lists_the_configured_windows_only_with_a_window_ring() {
        let spans: Vec<Span> = ["5m", "1h", "24h"]
            .iter()
            .map(|w| Span::parse(w).expect("a valid window"))
            .collect();
        let counter = Arc::new(UniqueCounter::new());
        let build = || BuildInfo {
            version: "1".to_owned(),
        };
        let without_ring = Exported::new(
            Views::new(Arc::clone(&counter)),
            Arc::new(IngestMetrics::new()),
            build(),
        )
        .with_windows(spans.clone());
        let json = status_json(&without_ring, Instant::now());
        assert!(json.contains(r#""windows":[],"#), "{json}");

        let ring = Arc::new(WindowRing::new(
            0,
            Arc::new(ManualClock::new(1_800_000_000_000)),
        ));
        let with_ring = Exported::new(
            Views::new(counter).with_windows(ring),
            Arc::new(IngestMetrics::new()),
            build(),
        )
        .with_windows(spans);
        let json = status_json(&with_ring, Instant::now());
        assert!(json.contains(r#""windows":["5m","1h","24h"],"#), "{json}");
    }

    #[derive(Debug)]
    struct Global(u64);

    impl SharedCount for Global {
        fn global_estimate(&self) -> u64 {
            self.0
        }
    }

    #[test]
    fn a_shared_count_is_the_count_and_the_local_one_is_added() {
        let counter = Arc::new(UniqueCounter::new());
        counter.insert_str("1.1.1.1").expect("valid");
        let source = Exported::new(
            Views::new(counter),
            Arc::new(IngestMetrics::new()),
            BuildInfo {
                version: "1".to_owned(),
            },
        )
        .with_shared_count(Arc::new(Global(42)));
        let json = status_json(&source, Instant::now());
        assert!(
            json.starts_with(
                r#"{"unique_ip_addresses":42,"local_unique_ip_addresses":1,"phase":"exact","#
            ),
            "{json}"
        );
    }

    #[test]
    fn the_page_is_self_contained() {
        assert!(STATUS_PAGE.starts_with("<!DOCTYPE html>"));
        for external in ["http://", "https://", "src=", "<link", "@import", "url("] {
            let found = STATUS_PAGE
                .lines()
                .filter(|line| !line.trim_start().starts_with("//"))
                .any(|line| line.contains(external));
            assert!(!found, "the status page references {external:?}");
        }
        assert!(STATUS_PAGE.contains("fetch(\"status.json\""));
    }
}
