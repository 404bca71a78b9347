//! `uniqd_build_info{version}`.

use std::fmt;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::metrics::MetricType;

use crate::exported::BuildInfo;

/// `uniqd_build_info{version}` (gauge, always 1).
pub const BUILD_INFO: &str = "uniqd_build_info";

/// Exports the build as `uniqd_build_info{version}`.
#[derive(Debug)]
pub struct BuildInfoCollector {
    build: BuildInfo,
}

impl BuildInfoCollector {
    /// Exports `build`.
    #[must_use]
    pub fn new(build: BuildInfo) -> Self {
        Self { build }
    }
}

impl Collector for BuildInfoCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> fmt::Result {
        encoder
            .encode_descriptor(
                BUILD_INFO,
                "Build information; always 1.",
                None,
                MetricType::Gauge,
            )?
            .encode_family(&[("version", self.build.version.as_str())])?
            .encode_gauge(&1_i64)
    }
}
