//! The syslog listeners' metrics (`--syslog-listen`): messages by transport and outcome, TCP
//! connections, and the kernel's drops on the UDP sockets. Registered only when syslog is on.

use std::fmt;
use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use uniqd_ingest::syslog::{SyslogMetrics, Transport};

/// Family `uniqd_syslog_messages_received`, samples `..._total{transport}`.
pub const SYSLOG_MESSAGES_RECEIVED: &str = "uniqd_syslog_messages_received";
/// Family `uniqd_syslog_messages`, samples `uniqd_syslog_messages_total{transport,outcome}`
/// with `outcome` `accepted` or `invalid`.
pub const SYSLOG_MESSAGES: &str = "uniqd_syslog_messages";
/// Family `uniqd_syslog_tcp_connections`, sample `uniqd_syslog_tcp_connections_total`.
pub const SYSLOG_TCP_CONNECTIONS: &str = "uniqd_syslog_tcp_connections";
/// Family `uniqd_syslog_udp_kernel_drops`, sample `uniqd_syslog_udp_kernel_drops_total`: only
/// while the kernel's counter can be read (Linux, at least one UDP socket).
pub const SYSLOG_UDP_KERNEL_DROPS: &str = "uniqd_syslog_udp_kernel_drops";

/// Reads the syslog metrics on every scrape.
#[derive(Debug)]
pub struct SyslogCollector {
    syslog: Arc<SyslogMetrics>,
}

impl SyslogCollector {
    /// Exports `syslog`.
    #[must_use]
    pub fn new(syslog: Arc<SyslogMetrics>) -> Self {
        Self { syslog }
    }
}

impl Collector for SyslogCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> fmt::Result {
        let mut family = encoder.encode_descriptor(
            SYSLOG_MESSAGES_RECEIVED,
            "Syslog messages received, by transport.",
            None,
            MetricType::Counter,
        )?;
        for transport in Transport::ALL {
            family
                .encode_family(&[("transport", transport.as_str())])?
                .encode_counter::<NoLabelSet, _, u64>(&self.syslog.get(transport).received, None)?;
        }

        let mut family = encoder.encode_descriptor(
            SYSLOG_MESSAGES,
            "Syslog messages by transport and outcome: accepted (counted) or invalid (bad \
             header, over --syslog-max-message-size, not a log).",
            None,
            MetricType::Counter,
        )?;
        for transport in Transport::ALL {
            let counts = self.syslog.get(transport);
            for (outcome, value) in [("accepted", counts.accepted), ("invalid", counts.invalid)] {
                family
                    .encode_family(&[("transport", transport.as_str()), ("outcome", outcome)])?
                    .encode_counter::<NoLabelSet, _, u64>(&value, None)?;
            }
        }

        encoder
            .encode_descriptor(
                SYSLOG_TCP_CONNECTIONS,
                "Syslog TCP connections accepted.",
                None,
                MetricType::Counter,
            )?
            .encode_counter::<NoLabelSet, _, u64>(&self.syslog.tcp_connections(), None)?;

        if let Some(drops) = self.syslog.udp_drops() {
            encoder
                .encode_descriptor(
                    SYSLOG_UDP_KERNEL_DROPS,
                    "Syslog datagrams the kernel dropped on uniqd's UDP sockets (receive buffer \
                     full: raise --syslog-receive-buffer or add workers).",
                    None,
                    MetricType::Counter,
                )?
                .encode_counter::<NoLabelSet, _, u64>(&drops, None)?;
        }
        Ok(())
    }
}
