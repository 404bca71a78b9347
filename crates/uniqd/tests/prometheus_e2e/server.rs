//! The Prometheus server of the end-to-end test: Debian's `prometheus` on a
//! free loopback port with a generated config and its own storage directory
//! (a [`TempDir`]), queried through its HTTP API, killed and cleaned up on drop.

use std::collections::BTreeSet;
use std::fs::File;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value as Json;

use crate::common::system::free_port;
use crate::common::{poll_every, query_encode, try_get, TempDir};

/// Pause between two polls of Prometheus (every wait also has a deadline).
const POLL: Duration = Duration::from_millis(100);

/// One series of a query result.
#[derive(Debug)]
pub struct Sample {
    pub labels: serde_json::Map<String, Json>,
    pub value: f64,
}

/// The value of the only series, if there is exactly one.
pub fn one_value(result: &[Sample]) -> Option<f64> {
    match result {
        [only] => Some(only.value),
        _ => None,
    }
}

/// A Prometheus server started by the test; killed on drop.
pub struct Prometheus {
    child: Child,
    addr: SocketAddr,
    dir: TempDir,
}

impl Prometheus {
    /// Starts Prometheus scraping `target` every second with `rule_files`
    /// loaded, and waits until it is ready. A port taken between choosing
    /// and binding it is retried with another.
    pub async fn start(target: SocketAddr, rule_files: &[PathBuf]) -> Self {
        let rule_files: Vec<String> = rule_files
            .iter()
            .map(|p| {
                format!(
                    "  - {}\n",
                    serde_json::to_string(&p.to_string_lossy()).unwrap()
                )
            })
            .collect();
        let config = format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
             rule_files:\n{}\
             scrape_configs:\n  - job_name: uniqd\n    static_configs:\n      - targets: [\"{target}\"]\n",
            rule_files.concat()
        );
        let mut last_log = String::new();
        for _attempt in 0..3 {
            let dir = TempDir::new("prometheus");
            let config_file = dir.join("prometheus.yml");
            std::fs::write(&config_file, &config).unwrap();
            let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
            let log = File::create(dir.join("prometheus.log")).unwrap();
            let child = Command::new("prometheus")
                .arg(format!("--config.file={}", config_file.display()))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.join("data").display()
                ))
                .arg(format!("--web.listen-address={addr}"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .unwrap_or_else(|e| {
                    panic!(
                        "cannot run prometheus ({e}): install Debian's `prometheus` package \
                         (.ci/test does)"
                    )
                });
            let mut prometheus = Self { child, addr, dir };
            if prometheus.wait_ready().await {
                return prometheus;
            }
            last_log = prometheus.log();
            if !last_log.contains("address already in use") {
                break;
            }
        }
        panic!("Prometheus did not become ready; its log:\n{last_log}");
    }

    /// Polls `/-/ready` until 200; `false` if Prometheus exits first.
    async fn wait_ready(&mut self) -> bool {
        poll_every(POLL, "Prometheus to be ready", async || {
            if self.child.try_wait().unwrap().is_some() {
                return Ok(false);
            }
            if try_get(self.addr, "/-/ready")
                .await
                .is_some_and(|r| r.status == 200)
            {
                return Ok(true);
            }
            Err(format!("not ready; its log:\n{}", self.log()))
        })
        .await
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("prometheus.log")).unwrap_or_default()
    }

    /// `GET path` on the API; returns `data` of a `"status": "success"`
    /// answer, or the error Prometheus reported.
    async fn api(&self, path: &str) -> Result<Json, String> {
        let response = try_get(self.addr, path)
            .await
            .ok_or_else(|| format!("Prometheus did not answer GET {path}"))?;
        let body: Json = serde_json::from_slice(&response.body)
            .map_err(|e| format!("GET {path}: {e}: {}", response.text()))?;
        if body["status"] == "success" {
            Ok(body["data"].clone())
        } else {
            Err(format!("GET {path}: {} {body}", response.status))
        }
    }

    /// Evaluates `expr` now (instant query).
    pub async fn query(&self, expr: &str) -> Result<Vec<Sample>, String> {
        let data = self
            .api(&format!("/api/v1/query?query={}", query_encode(expr)))
            .await?;
        let sample = |labels: &Json, value: &Json| -> Result<Sample, String> {
            let text = value[1].as_str().ok_or("no value")?;
            Ok(Sample {
                labels: labels.as_object().cloned().unwrap_or_default(),
                value: text.parse().map_err(|_| format!("bad value {text:?}"))?,
            })
        };
        match data["resultType"].as_str() {
            Some("vector") => data["result"]
                .as_array()
                .ok_or("no result")?
                .iter()
                .map(|s| sample(&s["metric"], &s["value"]))
                .collect(),
            Some("scalar") => Ok(vec![sample(&Json::Null, &data["result"])?]),
            other => Err(format!("unexpected result type {other:?}: {data}")),
        }
    }

    /// Re-evaluates `expr` until `check` accepts its result; fails at once
    /// if Prometheus rejects the expression, and after `DEADLINE`
    /// otherwise, showing the last result.
    pub async fn poll(&self, what: &str, expr: &str, check: impl Fn(&[Sample]) -> Option<()>) {
        poll_every(POLL, what, async || {
            let result = self
                .query(expr)
                .await
                .unwrap_or_else(|e| panic!("{what}: Prometheus rejected {expr}: {e}"));
            match check(&result) {
                Some(()) => Ok(()),
                None => Err(format!("{result:?}; Prometheus log:\n{}", self.log())),
            }
        })
        .await;
    }

    /// The only active target is `target`, job `uniqd`, scraped without error.
    pub async fn assert_target_healthy(&self, target: SocketAddr) {
        let data = self.api("/api/v1/targets?state=active").await.unwrap();
        let targets = data["activeTargets"].as_array().unwrap();
        assert_eq!(targets.len(), 1, "{data}");
        let t = &targets[0];
        assert_eq!(t["labels"]["job"], "uniqd", "{t}");
        assert_eq!(t["scrapeUrl"], format!("http://{target}/metrics"), "{t}");
        assert_eq!(t["health"], "up", "{t}");
        assert_eq!(t["lastError"], "", "{t}");
    }

    /// The loaded rules are exactly `names` (alert and record names), and
    /// each has evaluated without error (polled: a rule is `unknown` until
    /// its first evaluation).
    pub async fn assert_rules_healthy(&self, names: &BTreeSet<String>) {
        poll_every(POLL, "healthy rules", async || {
            let data = self.api("/api/v1/rules").await.unwrap();
            let mut loaded = BTreeSet::new();
            let mut unhealthy = Vec::new();
            for rule in data["groups"]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|g| g["rules"].as_array().unwrap())
            {
                loaded.insert(rule["name"].as_str().unwrap().to_owned());
                if rule["health"] != "ok" {
                    unhealthy.push(rule.clone());
                }
            }
            assert_eq!(&loaded, names, "loaded rules differ from the rule files");
            if unhealthy.is_empty() {
                Ok(())
            } else {
                Err(format!("unhealthy: {unhealthy:?}"))
            }
        })
        .await;
    }

    /// Waits until the active alerts are exactly `expected` (name, state).
    pub async fn poll_alerts(&self, expected: &[(&str, &str)]) {
        let expected: BTreeSet<(String, String)> = expected
            .iter()
            .map(|(n, s)| ((*n).to_owned(), (*s).to_owned()))
            .collect();
        poll_every(POLL, format!("active alerts {expected:?}"), async || {
            let data = self.api("/api/v1/alerts").await.unwrap();
            let active: BTreeSet<(String, String)> = data["alerts"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| {
                    let name = a["labels"]["alertname"].as_str().unwrap_or_default();
                    let state = a["state"].as_str().unwrap_or_default();
                    (name.to_owned(), state.to_owned())
                })
                .collect();
            if active == expected {
                Ok(())
            } else {
                Err(format!("active alerts {active:?}"))
            }
        })
        .await;
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
