//! Reading one sample from a Prometheus text or OpenMetrics exposition: how `uniqd loadgen`
//! reads `unique_ip_addresses` after a run, and how the integration tests read `/metrics`.
//! Deliberately small: it finds a sample by its exact text, it does not validate the page
//! (the tests check validity with a strict parser of their own).

#![forbid(unsafe_code)]

/// The value of `sample` in exposition `text`: the metric name plus, for a labelled sample,
/// its label set exactly as exposed (`uniqd_ingest_requests_total{outcome="accepted"}`).
/// `None` if no line holds that sample or its value is not a number. A timestamp after the
/// value is ignored; `+Inf`, `-Inf` and `NaN` are read as such.
pub fn sample_value(text: &str, sample: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(sample)?.strip_prefix(' ')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_exact_sample() {
        // Where the loadgen reads unique_ip_addresses: see `http::tests`.
        let page = "# TYPE a counter\na_total 7 1700000000\nb +Inf\nc NaN\nd{x=\"y\"} 0.5\n\
                    d_sum 2\n# EOF\n";
        assert_eq!(sample_value(page, "a_total"), Some(7.0));
        assert_eq!(sample_value(page, "b"), Some(f64::INFINITY));
        assert!(sample_value(page, "c").is_some_and(f64::is_nan));
        assert_eq!(sample_value(page, "d{x=\"y\"}"), Some(0.5));
        assert_eq!(sample_value(page, "d"), None);
        assert_eq!(sample_value(page, "# TYPE a"), None);
    }
}
