//! The ingest request and line metrics: plain atomics kept by `uniqd-ingest`, read here.

use std::fmt;
use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Unit;
use uniqd_ingest::metrics::{LineOutcome, RequestOutcome};
use uniqd_ingest::IngestMetrics;

/// Family `uniqd_ingest_requests`, samples `uniqd_ingest_requests_total{outcome}`.
pub const INGEST_REQUESTS: &str = "uniqd_ingest_requests";
/// Family `uniqd_ingest_lines`, samples `uniqd_ingest_lines_total{outcome}`.
pub const INGEST_LINES: &str = "uniqd_ingest_lines";
/// `uniqd_ingest_buffered_bytes` gauge: request bytes held in uniqd's buffers now.
pub const INGEST_BUFFERED: &str = "uniqd_ingest_buffered";
/// `uniqd_ingest_request_duration_seconds` histogram (name without the unit).
pub const INGEST_REQUEST_DURATION: &str = "uniqd_ingest_request_duration";

/// Reads the ingest metrics on every scrape.
#[derive(Debug)]
pub struct IngestCollector {
    ingest: Arc<IngestMetrics>,
}

impl IngestCollector {
    /// Exports `ingest`.
    #[must_use]
    pub fn new(ingest: Arc<IngestMetrics>) -> Self {
        Self { ingest }
    }
}

impl Collector for IngestCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> fmt::Result {
        let mut family = encoder.encode_descriptor(
            INGEST_REQUESTS,
            "Ingest HTTP requests by outcome.",
            None,
            MetricType::Counter,
        )?;
        for outcome in RequestOutcome::ALL {
            family
                .encode_family(&[("outcome", outcome.as_str())])?
                .encode_counter::<NoLabelSet, _, u64>(&self.ingest.requests(outcome), None)?;
        }

        let mut family = encoder.encode_descriptor(
            INGEST_LINES,
            "Log objects (NDJSON lines or single bodies) by outcome.",
            None,
            MetricType::Counter,
        )?;
        for outcome in LineOutcome::ALL {
            family
                .encode_family(&[("outcome", outcome.as_str())])?
                .encode_counter::<NoLabelSet, _, u64>(&self.ingest.lines(outcome), None)?;
        }

        let buffered = u64::try_from(self.ingest.buffered_bytes()).unwrap_or(u64::MAX);
        encoder
            .encode_descriptor(
                INGEST_BUFFERED,
                "Request bytes all ingest connections hold in uniqd's buffers now \
                 (limit: --max-buffered-bytes).",
                Some(&Unit::Bytes),
                MetricType::Gauge,
            )?
            .encode_gauge(&buffered)?;

        let histogram = self.ingest.request_duration();
        encoder
            .encode_descriptor(
                INGEST_REQUEST_DURATION,
                "Time from request head to response, per ingest request.",
                Some(&Unit::Seconds),
                MetricType::Histogram,
            )?
            .encode_histogram::<NoLabelSet>(
                histogram.sum_seconds,
                histogram.count,
                &histogram.buckets,
                None,
            )
    }
}
