//! `uniqd loadgen`: a load generator to point at any uniqd deployment. It sends N distinct
//! addresses (single JSON logs or NDJSON batches, flat out or at a target rate, over C
//! keep-alive connections), shows a progress line, then scrapes `/metrics` and prints what was
//! sent next to what uniqd reports: distinct addresses, estimate, relative error, requests/s,
//! logs/s and latency percentiles.
//!
//! Address `i` (from `--offset`) is the IPv4 address `i × 2654435761 mod 2³²`: a bijection, so
//! any `--addresses` up to 2³² are distinct, spread over the whole space, and runs with
//! disjoint offsets send disjoint sets (`--offset 1000000` continues where
//! `--addresses 1000000` stopped). With `--logs` above `--addresses` the addresses repeat in
//! order, as real traffic does.
//!
//! It measures its own contribution: `unique_ip_addresses` is read before and after the run,
//! and the relative error compares the difference with this run's distinct addresses. Against
//! a live deployment the difference also holds whatever other traffic arrived meanwhile (and
//! misses addresses the deployment had already seen), so the report says so whenever the
//! count was not 0 before; the deployment's existing count is never taken for the run's.
//!
//! Logs carry no `url` field unless `--page-url` asks for one, so a run against a live
//! deployment leaves its top pages alone.

#![forbid(unsafe_code)]

pub mod exposition;
pub mod histogram;
mod http;

use std::io::{self, IsTerminal as _, Write as _};
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::{Args, ValueEnum};

use crate::units::parse_duration;
use histogram::Histogram;
use http::{Connection, Target};

/// How logs are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// One JSON object per request (`Content-Type: application/json`).
    Single,
    /// NDJSON bodies of `--batch-lines` logs (`Content-Type: application/x-ndjson`).
    Batch,
}

/// Flags of `uniqd loadgen`.
#[derive(Debug, Clone, PartialEq, Args)]
pub struct LoadgenArgs {
    /// Ingest endpoint to POST logs to.
    #[arg(long, default_value = "http://127.0.0.1:5000/logs")]
    pub url: String,
    /// Metrics endpoint to read `unique_ip_addresses` from at the end ("" to skip).
    #[arg(long, default_value = "http://127.0.0.1:9102/metrics")]
    pub metrics_url: String,
    /// Distinct addresses to send (at most 4294967296).
    #[arg(long, default_value_t = 100_000)]
    pub addresses: u64,
    /// Logs to send in all [default: --addresses]; addresses repeat past --addresses.
    #[arg(long)]
    pub logs: Option<u64>,
    /// Index of the first address, so that runs can send disjoint sets.
    #[arg(long, default_value_t = 0)]
    pub offset: u64,
    /// Single JSON logs or NDJSON batches.
    #[arg(long, value_enum, default_value_t = Mode::Single)]
    pub mode: Mode,
    /// Logs per NDJSON body in batch mode.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    pub batch_lines: u64,
    /// Concurrent keep-alive connections.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub concurrency: u64,
    /// Target requests per second over all connections (0: as fast as the server answers).
    #[arg(long, default_value_t = 0.0)]
    pub rate: f64,
    /// The `url` field of every log (a page path such as /loadgen). Without it the logs carry
    /// no url field, so the run does not show up in the deployment's top pages.
    #[arg(long, value_parser = parse_page_url)]
    pub page_url: Option<String>,
    /// Bearer token for --url (and --metrics-url), when the service requires one.
    #[arg(long, env = "UNIQD_LOADGEN_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Per-request timeout.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// No progress line on stderr (it is only drawn when stderr is a terminal anyway).
    #[arg(long)]
    pub quiet: bool,
}

/// What a run did, and what the service reported afterwards.
#[derive(Debug, Clone)]
pub struct Summary {
    /// Distinct addresses sent.
    pub distinct: u64,
    /// Logs the service accepted (from 202 answers).
    pub logs_accepted: u64,
    /// Requests answered 202.
    pub requests_ok: u64,
    /// Requests that failed: another status, a timeout or a connection error.
    pub requests_failed: u64,
    /// Wall time of the sending phase.
    pub elapsed: Duration,
    /// Latency of every answered request.
    pub latency: Histogram,
    /// `unique_ip_addresses` before the run, if the metrics URL was read.
    pub before: Option<f64>,
    /// `unique_ip_addresses` after the run, if the metrics URL was read.
    pub estimate: Option<f64>,
    /// The first failure seen, for the report.
    pub first_error: Option<String>,
}

impl Summary {
    /// This run's contribution: the count after the run less the count before (`None` unless
    /// both were read).
    pub fn contribution(&self) -> Option<f64> {
        Some(self.estimate? - self.before?)
    }

    /// Relative error of this run's [contribution](Self::contribution) against the distinct
    /// addresses sent.
    pub fn relative_error(&self) -> Option<f64> {
        let distinct = self.distinct as f64;
        self.contribution()
            .filter(|_| self.distinct > 0)
            .map(|contribution| (contribution - distinct) / distinct)
    }

    /// Whether other addresses were counted before the run, so the contribution may be off
    /// (other traffic during the run, addresses already seen).
    pub fn shared_with_other_traffic(&self) -> bool {
        self.before.is_some_and(|before| before > 0.0)
    }

    /// Writes the human-readable report.
    ///
    /// # Errors
    ///
    /// Errors writing to `out`.
    pub fn write_report(&self, out: &mut impl io::Write) -> io::Result<()> {
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        let total = self.requests_ok + self.requests_failed;
        writeln!(out, "sent distinct addresses  {}", self.distinct)?;
        writeln!(
            out,
            "requests                 {total} ({} answered 202, {} failed)",
            self.requests_ok, self.requests_failed
        )?;
        writeln!(out, "logs accepted            {}", self.logs_accepted)?;
        writeln!(out, "duration                 {secs:.2} s")?;
        writeln!(
            out,
            "throughput               {:.0} requests/s, {:.0} logs/s",
            total as f64 / secs,
            self.logs_accepted as f64 / secs
        )?;
        let ms = |us: u64| us as f64 / 1000.0;
        writeln!(
            out,
            "latency                  p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            ms(self.latency.quantile_us(0.5)),
            ms(self.latency.quantile_us(0.9)),
            ms(self.latency.quantile_us(0.99)),
            ms(self.latency.max_us())
        )?;
        if let Some(before) = self.before {
            writeln!(out, "count before the run     {before:.0}")?;
        }
        match self.estimate {
            Some(estimate) => writeln!(out, "reported estimate        {estimate:.0}")?,
            None => writeln!(out, "reported estimate        (not read)")?,
        }
        if let (Some(contribution), Some(error)) = (self.contribution(), self.relative_error()) {
            writeln!(out, "this run's contribution  {contribution:.0}")?;
            writeln!(out, "relative error           {:+.3}%", error * 100.0)?;
        }
        if self.shared_with_other_traffic() {
            writeln!(
                out,
                "note                     the deployment had counted addresses before this run: \
                 the contribution (after - before) also holds any other traffic during the run \
                 and misses addresses it had already seen (--offset picks fresh ones)"
            )?;
        }
        if let Some(error) = &self.first_error {
            writeln!(out, "first failure            {error}")?;
        }
        Ok(())
    }
}

/// The address with stream index `i`.
pub fn address(i: u64) -> Ipv4Addr {
    // Truncation is the point: indices are taken modulo 2³², and an odd multiplier is a
    // bijection of u32.
    Ipv4Addr::from((i as u32).wrapping_mul(2_654_435_761))
}

/// `--page-url`: a path to put in the logs verbatim, so nothing that JSON would escape.
fn parse_page_url(text: &str) -> Result<String, String> {
    if text.is_empty()
        || text
            .chars()
            .any(|c| c == '"' || c == '\\' || c.is_control())
    {
        return Err(format!(
            "invalid page url {text:?}: expected a non-empty path without quotes, backslashes \
             or control characters, e.g. /loadgen"
        ));
    }
    Ok(text.to_owned())
}

/// Appends the log line for address index `i` (no newline), with `page_url` as its `url`
/// field if any.
fn push_log(body: &mut Vec<u8>, i: u64, page_url: Option<&str>) {
    // Writing into a Vec cannot fail.
    let _ = match page_url {
        Some(url) => write!(
            body,
            r#"{{"timestamp":"2020-06-24T15:27:00.123456Z","ip":"{}","url":"{url}"}}"#,
            address(i)
        ),
        None => write!(
            body,
            r#"{{"timestamp":"2020-06-24T15:27:00.123456Z","ip":"{}"}}"#,
            address(i)
        ),
    };
}

/// Settings derived from the flags, shared by the workers.
struct Plan {
    target: Target,
    mode: Mode,
    addresses: u64,
    offset: u64,
    logs: u64,
    per_request: u64,
    requests: u64,
    rate: f64,
    timeout: Duration,
    token: Option<String>,
    page_url: Option<String>,
}

impl Plan {
    fn new(args: &LoadgenArgs) -> Result<Self, String> {
        if args.addresses == 0 || args.addresses > 1 << 32 {
            return Err("--addresses must be between 1 and 4294967296".to_owned());
        }
        if !(args.rate.is_finite() && args.rate >= 0.0) {
            return Err("--rate must be a non-negative number".to_owned());
        }
        let logs = args.logs.unwrap_or(args.addresses);
        let per_request = match args.mode {
            Mode::Single => 1,
            Mode::Batch => args.batch_lines,
        };
        Ok(Self {
            target: Target::parse(&args.url)?,
            mode: args.mode,
            addresses: args.addresses,
            offset: args.offset,
            logs,
            per_request,
            requests: logs.div_ceil(per_request),
            rate: args.rate,
            timeout: args.timeout,
            token: args.token.clone(),
            page_url: args.page_url.clone(),
        })
    }

    /// The body of request `n`, and how many logs it holds.
    fn body(&self, n: u64) -> (Bytes, u64) {
        let first = n * self.per_request;
        let count = self.per_request.min(self.logs - first);
        let mut body = Vec::with_capacity(count as usize * 96);
        for k in first..first + count {
            push_log(
                &mut body,
                self.offset + k % self.addresses,
                self.page_url.as_deref(),
            );
            if self.mode == Mode::Batch {
                body.push(b'\n');
            }
        }
        (Bytes::from(body), count)
    }

    fn content_type(&self) -> &'static str {
        match self.mode {
            Mode::Single => "application/json",
            Mode::Batch => "application/x-ndjson",
        }
    }
}

/// Counters the workers share with the progress line.
#[derive(Default)]
struct Progress {
    next: AtomicU64,
    done: AtomicU64,
    failed: AtomicU64,
    accepted_logs: AtomicU64,
}

/// What one worker measured.
#[derive(Default)]
struct WorkerResult {
    latency: Histogram,
    first_error: Option<String>,
}

async fn worker(plan: Arc<Plan>, progress: Arc<Progress>, start: Instant) -> WorkerResult {
    let mut result = WorkerResult::default();
    let mut connection: Option<Connection> = None;
    loop {
        // Relaxed: a ticket counter; each value is handed out once, nothing else is published.
        let n = progress.next.fetch_add(1, Ordering::Relaxed);
        if n >= plan.requests {
            return result;
        }
        if plan.rate > 0.0 {
            let due = start + Duration::from_secs_f64(n as f64 / plan.rate);
            tokio::time::sleep_until(due.into()).await;
        }
        let (body, logs) = plan.body(n);
        let sent = Instant::now();
        let outcome = tokio::time::timeout(plan.timeout, async {
            if connection.is_none() {
                connection = Some(Connection::open(&plan.target).await?);
            }
            let Some(conn) = connection.as_mut() else {
                unreachable!("opened above")
            };
            conn.post(
                &plan.target,
                plan.content_type(),
                plan.token.as_deref(),
                body,
            )
            .await
        })
        .await
        .unwrap_or_else(|_| Err(format!("no answer within {:?}", plan.timeout)));
        // Relaxed (here and below): statistics counters, read for display and after join.
        match outcome {
            Ok(202) => {
                result.latency.record(sent.elapsed());
                progress.accepted_logs.fetch_add(logs, Ordering::Relaxed);
            }
            Ok(status) => {
                result.latency.record(sent.elapsed());
                progress.failed.fetch_add(1, Ordering::Relaxed);
                result
                    .first_error
                    .get_or_insert_with(|| format!("HTTP status {status}"));
            }
            Err(error) => {
                // The connection may be broken: open a new one for the next request.
                connection = None;
                progress.failed.fetch_add(1, Ordering::Relaxed);
                result.first_error.get_or_insert(error);
            }
        }
        progress.done.fetch_add(1, Ordering::Relaxed);
    }
}

/// Draws `[#####     ] 45% 1234/2700 requests, 65000/s` on stderr until `total` are done.
async fn show_progress(progress: Arc<Progress>, total: u64, start: Instant) {
    let mut stderr = io::stderr();
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        // Relaxed: display only.
        let done = progress.done.load(Ordering::Relaxed);
        let fraction = done as f64 / total.max(1) as f64;
        let filled = (fraction * 30.0) as usize;
        let rate = done as f64 / start.elapsed().as_secs_f64().max(1e-9);
        // A failed progress write is not worth stopping the run for.
        let _ = write!(
            stderr,
            "\r[{:<30}] {:>3.0}% {done}/{total} requests, {rate:.0}/s ",
            "#".repeat(filled),
            fraction * 100.0
        );
        if done >= total {
            let _ = writeln!(stderr);
            return;
        }
    }
}

/// Runs the load described by `args` and reads the estimate afterwards.
///
/// # Errors
///
/// Invalid flags (bad URL, zero addresses, negative rate).
pub async fn run(args: &LoadgenArgs) -> Result<Summary, String> {
    let plan = Arc::new(Plan::new(args)?);
    let mut first_error = None;
    let before = read_count(args, &mut first_error).await;
    let progress = Arc::new(Progress::default());
    let start = Instant::now();
    let workers: Vec<_> = (0..args.concurrency.min(plan.requests.max(1)))
        .map(|_| tokio::spawn(worker(Arc::clone(&plan), Arc::clone(&progress), start)))
        .collect();
    let bar = (!args.quiet && io::stderr().is_terminal())
        .then(|| tokio::spawn(show_progress(Arc::clone(&progress), plan.requests, start)));
    let mut latency = Histogram::default();
    for handle in workers {
        let result = handle
            .await
            .map_err(|e| format!("a load worker failed: {e}"))?;
        latency.merge(&result.latency);
        first_error = first_error.or(result.first_error);
    }
    let elapsed = start.elapsed();
    if let Some(bar) = bar {
        // The bar ends by itself once every request is done; a join error is cosmetic.
        let _ = bar.await;
    }
    let estimate = read_count(args, &mut first_error).await;
    // Relaxed: every worker has been joined, which orders their writes before these reads.
    let failed = progress.failed.load(Ordering::Relaxed);
    let done = progress.done.load(Ordering::Relaxed);
    Ok(Summary {
        distinct: plan.addresses.min(plan.logs),
        logs_accepted: progress.accepted_logs.load(Ordering::Relaxed),
        requests_ok: done - failed,
        requests_failed: failed,
        elapsed,
        latency,
        before,
        estimate,
        first_error,
    })
}

/// `unique_ip_addresses` from `--metrics-url` (`None` when that is "" or cannot be read; the
/// failure then goes to `first_error` unless one is there already).
async fn read_count(args: &LoadgenArgs, first_error: &mut Option<String>) -> Option<f64> {
    if args.metrics_url.is_empty() {
        return None;
    }
    match http::read_gauge(
        &args.metrics_url,
        "unique_ip_addresses",
        args.token.as_deref(),
        args.timeout,
    )
    .await
    {
        Ok(value) => Some(value),
        Err(error) => {
            first_error.get_or_insert(format!("reading {}: {error}", args.metrics_url));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_distinct_and_bodies_hold_the_planned_logs() {
        let set: std::collections::HashSet<_> = (0..100_000).map(address).collect();
        assert_eq!(set.len(), 100_000);
        assert_eq!(address(1 << 32), address(0));

        let args = LoadgenArgs {
            url: "http://127.0.0.1:1/logs".to_owned(),
            metrics_url: String::new(),
            addresses: 10,
            logs: Some(25),
            offset: 0,
            mode: Mode::Batch,
            batch_lines: 10,
            concurrency: 1,
            rate: 0.0,
            token: None,
            page_url: None,
            timeout: Duration::from_secs(1),
            quiet: true,
        };
        let plan = Plan::new(&args).expect("valid flags");
        assert_eq!(plan.requests, 3);
        let (last, count) = plan.body(2);
        assert_eq!(count, 5);
        let text = std::str::from_utf8(&last).expect("ASCII");
        assert_eq!(text.lines().count(), 5);
        assert!(
            text.contains(&format!("\"ip\":\"{}\"", address(0))),
            "{text}"
        );
        assert!(
            !text.contains("\"url\""),
            "no page path unless asked: {text}"
        );
        let with_url = Plan::new(&LoadgenArgs {
            page_url: Some("/loadgen".to_owned()),
            ..args.clone()
        })
        .expect("valid flags");
        let (first, _) = with_url.body(0);
        let text = std::str::from_utf8(&first).expect("ASCII");
        assert_eq!(text.matches("\"url\":\"/loadgen\"").count(), 10, "{text}");
        for bad in ["", "/a\"b", "/a\\b", "/a\nb"] {
            assert!(parse_page_url(bad).is_err(), "{bad:?}");
        }
        assert!(Plan::new(&LoadgenArgs {
            addresses: 0,
            ..args.clone()
        })
        .is_err());
        assert!(Plan::new(&LoadgenArgs { rate: -1.0, ..args }).is_err());
    }
}
