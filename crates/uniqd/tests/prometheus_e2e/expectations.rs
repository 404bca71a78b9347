//! What every PromQL expression of the dashboard and the rules must return
//! after the test's traffic: a value, one series per label value, or nothing.

use std::collections::BTreeMap;

use super::server::{one_value, Sample};

/// The numbers the expressions are checked against.
pub struct Expected {
    pub distinct: f64,
    pub quota: f64,
    pub threshold: f64,
    pub error_ratio: f64,
    /// Requests counted for the one page path the traffic uses.
    pub page_requests: f64,
}

/// A value a series must have.
#[derive(Debug, Clone, Copy)]
pub enum Want {
    /// This value (to 1e-9, relative).
    Eq(f64),
    /// Any finite value above zero.
    Positive,
    /// A value in this closed range.
    Within(f64, f64),
}

impl Want {
    fn check(self, value: f64) -> Option<()> {
        let ok = match self {
            Self::Eq(want) => (value - want).abs() <= 1e-9 * want.abs().max(1.0),
            Self::Positive => value.is_finite() && value > 0.0,
            Self::Within(low, high) => (low..=high).contains(&value),
        };
        ok.then_some(())
    }
}

/// What one expression must return.
#[derive(Debug, Clone)]
pub enum Expect {
    /// Nothing: an alert condition that does not hold, or an `absent()`
    /// guard whose series exists.
    Empty,
    /// Exactly one series, with this value.
    One(Want),
    /// One series per listed value of the label, and no other.
    By(&'static str, Vec<(String, Want)>),
}

impl Expect {
    pub fn check(&self, result: &[Sample]) -> Option<()> {
        match self {
            Self::Empty => result.is_empty().then_some(()),
            Self::One(want) => want.check(one_value(result)?),
            Self::By(label, wanted) => {
                let got: BTreeMap<&str, f64> = result
                    .iter()
                    .map(|s| Some((s.labels.get(*label)?.as_str()?, s.value)))
                    .collect::<Option<_>>()?;
                (got.len() == result.len() && got.len() == wanted.len()).then_some(())?;
                wanted
                    .iter()
                    .try_for_each(|(value, want)| want.check(*got.get(value.as_str())?))
            }
        }
    }
}

/// Every expression of the dashboard (`$job` = `uniqd`) and the rules, and
/// what it returns after the test's traffic: one entry per line of
/// `deploy/extract_promql.py`.
pub fn expectations(x: &Expected) -> BTreeMap<String, Expect> {
    use Expect::{By, Empty, One};
    use Want::{Eq, Positive, Within};
    let each = |label, values: &[&str], want| {
        By(
            label,
            values.iter().map(|v| (v.to_string(), want)).collect(),
        )
    };
    let outcomes = [
        "accepted",
        "bad_request",
        "payload_too_large",
        "unsupported_media_type",
        "not_found",
        "method_not_allowed",
        "request_timeout",
    ];
    let latency = |q| {
        format!("histogram_quantile({q}, sum by (le) (rate(uniqd_ingest_request_duration_seconds_bucket{{job=~\"uniqd\"}}[1m])))")
    };
    [
        // Dashboard: every panel has data, with the values the traffic implies.
        ("max(unique_ip_addresses{job=~\"uniqd\"})".to_owned(), One(Eq(x.distinct))),
        (
            "max by (phase) (uniqd_estimator_phase{job=~\"uniqd\"}) == 1".to_owned(),
            each("phase", &["exact"], Eq(1.0)),
        ),
        (
            "max by (phase) (uniqd_estimator_phase{job=~\"uniqd\"})".to_owned(),
            By("phase", vec![("exact".to_owned(), Eq(1.0)), ("sketch".to_owned(), Eq(0.0))]),
        ),
        ("max(uniqd_estimator_relative_standard_error{job=~\"uniqd\"})".to_owned(), One(Eq(0.0))),
        ("uniqd:visitor_quota:ratio{job=~\"uniqd\"}".to_owned(), One(Eq(x.distinct / x.quota))),
        ("sum(up{job=~\"uniqd\"})".to_owned(), One(Eq(1.0))),
        ("count(up{job=~\"uniqd\"})".to_owned(), One(Eq(1.0))),
        (
            "count by (version) (uniqd_build_info{job=~\"uniqd\"})".to_owned(),
            each("version", &[uniqd::VERSION], Eq(1.0)),
        ),
        ("max(uniqd_exact_threshold{job=~\"uniqd\"})".to_owned(), One(Eq(x.threshold))),
        ("uniqd:visitor_quota".to_owned(), One(Eq(x.quota))),
        (
            "sum by (outcome) (rate(uniqd_ingest_requests_total{job=~\"uniqd\"}[1m]))".to_owned(),
            By(
                "outcome",
                outcomes
                    .iter()
                    .map(|o| (o.to_string(), Positive))
                    // Authentication is off here, and no request has an unsupported
                    // Transfer-Encoding or finds the buffer budget spent: the series
                    // exist, at zero.
                    .chain(
                        ["unauthorized", "not_implemented", "service_unavailable"]
                            .map(|o| (o.to_owned(), Eq(0.0))),
                    )
                    .collect(),
            ),
        ),
        (
            "sum by (outcome) (rate(uniqd_ingest_lines_total{job=~\"uniqd\"}[1m]))".to_owned(),
            each("outcome", &["accepted", "invalid"], Positive),
        ),
        // Both outcomes have a rate above: a share strictly between 0 and 1.
        (
            "sum(rate(uniqd_ingest_lines_total{job=~\"uniqd\",outcome=\"invalid\"}[1m])) / (sum(rate(uniqd_ingest_lines_total{job=~\"uniqd\"}[1m])) > 0)".to_owned(),
            One(Within(1e-9, 1.0 - 1e-9)),
        ),
        (
            "(sum(rate(uniqd_ingest_requests_total{job=~\"uniqd\",outcome!=\"accepted\"}[5m])) or vector(0)) / (sum(rate(uniqd_ingest_requests_total{job=~\"uniqd\"}[5m])) > 0)".to_owned(),
            One(Eq(x.error_ratio)),
        ),
        (latency("0.5"), One(Positive)),
        (latency("0.9"), One(Positive)),
        (latency("0.99"), One(Positive)),
        (
            "sum(rate(uniqd_ingest_request_duration_seconds_sum{job=~\"uniqd\"}[1m])) / (sum(rate(uniqd_ingest_request_duration_seconds_count{job=~\"uniqd\"}[1m])) > 0)".to_owned(),
            One(Positive),
        ),
        (
            "topk(10, max by (path) (uniqd_top_page_requests{job=~\"uniqd\"}))".to_owned(),
            each("path", &["/a"], Eq(x.page_requests)),
        ),
        // All the traffic arrived within the last minutes: every window holds all of it.
        (
            "max by (window) (unique_ip_addresses_window{job=~\"uniqd\"})".to_owned(),
            each("window", &["5m", "1h", "24h"], Eq(x.distinct)),
        ),
        // Groups row (--group-by url): the one url holds every address that came with it,
        // nothing went to __other__.
        (
            "sort_desc(max by (group) (unique_ip_addresses_by_group{job=~\"uniqd\"}))".to_owned(),
            By(
                "group",
                vec![
                    ("/a?b=c".to_owned(), Within(1.0, x.distinct)),
                    ("__other__".to_owned(), Eq(0.0)),
                ],
            ),
        ),
        // The example group quota (groups.yml): far below.
        (
            "max by (job, group) (unique_ip_addresses_by_group{job=\"uniqd\", group!=\"__other__\"}) > 100000".to_owned(),
            Empty,
        ),
        // Process row: a live process that has not restarted.
        (
            "sum(rate(process_cpu_seconds_total{job=~\"uniqd\"}[1m]))".to_owned(),
            One(Within(0.0, 64.0)),
        ),
        ("max(process_resident_memory_bytes{job=~\"uniqd\"})".to_owned(), One(Positive)),
        ("max(process_virtual_memory_bytes{job=~\"uniqd\"})".to_owned(), One(Positive)),
        (
            "max(process_open_fds{job=~\"uniqd\"} / process_max_fds{job=~\"uniqd\"})".to_owned(),
            One(Within(1e-9, 1.0)),
        ),
        (
            "sum(changes(process_start_time_seconds{job=~\"uniqd\"}[5m]))".to_owned(),
            One(Eq(0.0)),
        ),
        // The restart annotation: no restart.
        (
            "changes(process_start_time_seconds{job=~\"uniqd\"}[1m]) > 0".to_owned(),
            Empty,
        ),
        // Scale-out row: one replica, in sync with a healthy Redis.
        (
            "uniqd_local_unique_ip_addresses{job=~\"uniqd\"}".to_owned(),
            One(Eq(x.distinct)),
        ),
        ("uniqd_redis_up{job=~\"uniqd\"}".to_owned(), One(Eq(1.0))),
        // Every shared view answers for the fleet (windows, top pages and, with --group-by,
        // groups) while Redis is healthy.
        (
            "min by (view) (uniqd_views_scope{job=~\"uniqd\"})".to_owned(),
            each("view", &["windows", "top_pages", "groups"], Eq(1.0)),
        ),
        (
            "sum(rate(uniqd_redis_sync_errors_total{job=~\"uniqd\"}[1m]))".to_owned(),
            One(Eq(0.0)),
        ),
        (
            "time() - uniqd_redis_last_sync_timestamp_seconds{job=~\"uniqd\"}".to_owned(),
            One(Within(0.0, 30.0)),
        ),
        // Availability alerts: a healthy, present, fast target.
        ("up{job=\"uniqd\"} == 0".to_owned(), Empty),
        ("absent(up{job=\"uniqd\"})".to_owned(), Empty),
        ("scrape_duration_seconds{job=\"uniqd\"} > 0.5".to_owned(), Empty),
        ("uniqd_redis_up{job=\"uniqd\"} == 0".to_owned(), Empty),
        // Saves succeed (the state file is on; the test checks its series exist).
        (
            "increase(uniqd_state_save_failures_total{job=\"uniqd\"}[10m]) > 0 and (time() - uniqd_state_last_save_timestamp_seconds{job=\"uniqd\"}) > 300".to_owned(),
            Empty,
        ),
        // Dashboard, syslog row: no syslog listener in this test, so no data.
        (
            "sum by (transport, outcome) (rate(uniqd_syslog_messages_total{job=~\"uniqd\"}[1m]))".to_owned(),
            Empty,
        ),
        (
            "sum by (transport) (rate(uniqd_syslog_messages_received_total{job=~\"uniqd\"}[1m]))".to_owned(),
            Empty,
        ),
        (
            "sum(rate(uniqd_syslog_udp_kernel_drops_total{job=~\"uniqd\"}[1m]))".to_owned(),
            Empty,
        ),
        (
            "sum(rate(uniqd_syslog_tcp_connections_total{job=~\"uniqd\"}[1m]))".to_owned(),
            Empty,
        ),
        // No syslog listener here: the drops series does not exist (its alert is tested with
        // promtool in deploy/prometheus/alerts.test.yml).
        (
            "increase(uniqd_syslog_udp_kernel_drops_total{job=\"uniqd\"}[5m]) > 0".to_owned(),
            Empty,
        ),
        // Ingest errors: the recording rule, and its alert, which holds (the
        // traffic has more than 5 % errors).
        (
            "sum by (job) (rate(uniqd_ingest_requests_total{job=\"uniqd\", outcome!=\"accepted\"}[5m])) / (sum by (job) (rate(uniqd_ingest_requests_total{job=\"uniqd\"}[5m])) > 0)".to_owned(),
            One(Eq(x.error_ratio)),
        ),
        ("uniqd:ingest_error_ratio:rate5m > 0.05".to_owned(), One(Eq(x.error_ratio))),
        // Lines were accepted just now: not stalled.
        (
            "sum by (job, instance) (increase(uniqd_ingest_lines_total{job=\"uniqd\", outcome=\"accepted\"}[10m])) == 0 and on (job, instance) up{job=\"uniqd\"} == 1".to_owned(),
            Empty,
        ),
        // Two invalid lines among a couple of hundred: a ratio, below the alert's 5 %.
        (
            "sum by (job) (rate(uniqd_ingest_lines_total{job=\"uniqd\", outcome=\"invalid\"}[5m])) / (sum by (job) (rate(uniqd_ingest_lines_total{job=\"uniqd\"}[5m])) > 0)".to_owned(),
            One(Within(1e-9, 0.05)),
        ),
        ("uniqd:ingest_invalid_line_ratio:rate5m > 0.05".to_owned(), Empty),
        // Visitor quota: recorded, far from every level, configured.
        ("max by (job) (unique_ip_addresses{job=\"uniqd\"})".to_owned(), One(Eq(x.distinct))),
        (
            "uniqd:unique_ip_addresses:max / on() group_left() uniqd:visitor_quota".to_owned(),
            One(Eq(x.distinct / x.quota)),
        ),
        ("uniqd:visitor_quota:ratio >= 0.8".to_owned(), Empty),
        ("uniqd:visitor_quota:ratio >= 0.9".to_owned(), Empty),
        ("uniqd:visitor_quota:ratio >= 1".to_owned(), Empty),
        ("absent(uniqd:visitor_quota)".to_owned(), Empty),
        (format!("vector({})", x.quota), One(Eq(x.quota))),
    ]
    .into_iter()
    .collect()
}
