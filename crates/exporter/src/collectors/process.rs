//! The standard process metrics every official Prometheus client library exports
//! (`process_cpu_seconds_total`, `process_resident_memory_bytes`, `process_virtual_memory_bytes`,
//! `process_open_fds`, `process_max_fds`, `process_start_time_seconds`), read from `/proc/self`
//! at scrape time.
//!
//! No maintained crate provides them for prometheus-client (client_rust has no process
//! collector; `metrics-process` serves the `metrics` facade), so this reads `/proc` as Go's
//! `procfs` does: `/proc/self/stat` (CPU ticks, virtual size, start ticks), `/proc/self/status`
//! (`VmRSS`, which needs no page size), `/proc/self/limits` (`Max open files`, soft limit),
//! `/proc/self/fd` (one entry per open descriptor) and `/proc/stat` (`btime`). Ticks are
//! `USER_HZ` = 100, fixed by the Linux ABI (procfs assumes the same). A family whose source
//! cannot be read is left out, so on systems without `/proc` the collector exports nothing.

use std::fmt;
use std::fs;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;

/// `USER_HZ`: the unit of the tick counts in `/proc/<pid>/stat` on every Linux architecture.
const USER_HZ: f64 = 100.0;

/// The process's own numbers, each absent when its source could not be read or parsed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProcessStats {
    /// User plus system CPU time, seconds.
    pub cpu_seconds: Option<f64>,
    /// Resident set size, bytes.
    pub resident_memory_bytes: Option<u64>,
    /// Virtual memory size, bytes.
    pub virtual_memory_bytes: Option<u64>,
    /// Open file descriptors.
    pub open_fds: Option<u64>,
    /// The soft limit on open file descriptors.
    pub max_fds: Option<u64>,
    /// Start time, seconds since the Unix epoch.
    pub start_time_seconds: Option<f64>,
}

impl ProcessStats {
    /// Reads this process's numbers from `/proc`.
    #[must_use]
    pub fn read() -> Self {
        let read = |path: &str| fs::read_to_string(path).ok();
        let stat = read("/proc/self/stat").and_then(|text| parse_stat(&text));
        let btime = read("/proc/stat").and_then(|text| parse_btime(&text));
        Self {
            cpu_seconds: stat.map(|s| (s.utime + s.stime) as f64 / USER_HZ),
            resident_memory_bytes: read("/proc/self/status").and_then(|text| parse_rss(&text)),
            virtual_memory_bytes: stat.map(|s| s.vsize),
            open_fds: fs::read_dir("/proc/self/fd")
                // The directory listing holds its own descriptor while open, as Go's count does.
                .map(|dir| dir.count() as u64)
                .ok(),
            max_fds: read("/proc/self/limits").and_then(|text| parse_max_fds(&text)),
            start_time_seconds: stat
                .zip(btime)
                .map(|(s, btime)| btime as f64 + s.starttime as f64 / USER_HZ),
        }
    }
}

/// The fields of `/proc/self/stat` used here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stat {
    utime: u64,
    stime: u64,
    starttime: u64,
    vsize: u64,
}

/// Parses `/proc/<pid>/stat`: the fields after the command name (in parentheses, which may
/// itself hold spaces and parentheses, hence the last `)`), numbered from 3 (`state`).
fn parse_stat(text: &str) -> Option<Stat> {
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Field n (1-based, as in proc(5)) is fields[n - 3].
    let field = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
    Some(Stat {
        utime: field(14)?,
        stime: field(15)?,
        starttime: field(22)?,
        vsize: field(23)?,
    })
}

/// `VmRSS` of `/proc/<pid>/status`, in bytes.
fn parse_rss(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("VmRSS:"))?;
    let mut parts = line["VmRSS:".len()..].split_whitespace();
    let value: u64 = parts.next()?.parse().ok()?;
    match parts.next() {
        Some("kB") => value.checked_mul(1024),
        _ => None,
    }
}

/// The soft `Max open files` limit of `/proc/<pid>/limits` (`unlimited`: none).
fn parse_max_fds(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// `btime` of `/proc/stat`: boot time, seconds since the Unix epoch.
fn parse_btime(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()
}

/// Reads `/proc` on every scrape (a few small files; tens of microseconds).
#[derive(Debug, Default)]
pub struct ProcessCollector;

impl ProcessCollector {
    /// The collector of this process's metrics.
    #[must_use]
    pub fn new() -> Self {
        Self
    }
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> fmt::Result {
        let stats = ProcessStats::read();
        if let Some(cpu) = stats.cpu_seconds {
            encoder
                .encode_descriptor(
                    "process_cpu_seconds",
                    "Total user and system CPU time spent in seconds.",
                    None,
                    MetricType::Counter,
                )?
                .encode_counter::<NoLabelSet, _, u64>(&cpu, None)?;
        }
        let gauges: [(&str, &str, Option<f64>); 5] = [
            (
                "process_resident_memory_bytes",
                "Resident memory size in bytes.",
                stats.resident_memory_bytes.map(|v| v as f64),
            ),
            (
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes.",
                stats.virtual_memory_bytes.map(|v| v as f64),
            ),
            (
                "process_open_fds",
                "Number of open file descriptors.",
                stats.open_fds.map(|v| v as f64),
            ),
            (
                "process_max_fds",
                "Maximum number of open file descriptors.",
                stats.max_fds.map(|v| v as f64),
            ),
            (
                "process_start_time_seconds",
                "Start time of the process since unix epoch in seconds.",
                stats.start_time_seconds,
            ),
        ];
        for (name, help, value) in gauges {
            if let Some(value) = value {
                encoder
                    .encode_descriptor(name, help, None, MetricType::Gauge)?
                    .encode_gauge(&value)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_proc_files() {
        // A command name with a space and a parenthesis, as proc(5) allows.
        let stat = "4242 (uniqd (x) y) S 1 4242 4242 0 -1 4194560 1234 0 0 0 250 130 0 0 20 0 \
                    9 0 987654 123456789 2048 18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 0 \
                    17 1 0 0 0 0 0\n";
        assert_eq!(
            parse_stat(stat),
            Some(Stat {
                utime: 250,
                stime: 130,
                starttime: 987_654,
                vsize: 123_456_789,
            })
        );
        assert_eq!(parse_stat("garbage"), None);
        assert_eq!(
            parse_rss("Name:\tuniqd\nVmRSS:\t    4712 kB\nThreads:\t9\n"),
            Some(4712 * 1024)
        );
        assert_eq!(parse_rss("Name:\tkthread\n"), None);
        let limits = "Limit                     Soft Limit           Hard Limit           Units     \n\
                      Max processes             63443                63443                processes \n\
                      Max open files            1024                 524288               files     \n";
        assert_eq!(parse_max_fds(limits), Some(1024));
        assert_eq!(
            parse_max_fds(
                "Max open files            unlimited            unlimited            files"
            ),
            None
        );
        assert_eq!(
            parse_btime("cpu  1 2 3\nbtime 1700000000\nprocesses 5\n"),
            Some(1_700_000_000)
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn reads_this_process_on_linux() {
        let before = ProcessStats::read();
        let files: Vec<fs::File> = (0..20)
            .map(|_| fs::File::open("/proc/self/status").expect("open"))
            .collect();
        let after = ProcessStats::read();
        drop(files);
        assert!(before.cpu_seconds.is_some_and(|v| v >= 0.0), "{before:?}");
        assert!(
            before
                .resident_memory_bytes
                .is_some_and(|v| v > 1024 * 1024),
            "{before:?}"
        );
        assert!(
            before.virtual_memory_bytes >= before.resident_memory_bytes,
            "{before:?}"
        );
        assert!(before.max_fds.is_some_and(|v| v >= 16), "{before:?}");
        // 20 more descriptors open (with room for other tests' threads closing some).
        assert!(
            after
                .open_fds
                .zip(before.open_fds)
                .is_some_and(|(a, b)| a >= b + 10),
            "{before:?} {after:?}"
        );
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("after 1970")
            .as_secs_f64();
        let start = before.start_time_seconds.expect("start time");
        assert!(
            start <= now + 1.0 && start > now - 3600.0,
            "{start} vs {now}"
        );
    }
}
