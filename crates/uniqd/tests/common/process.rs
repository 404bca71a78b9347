//! The built `uniqd` binary as a child process on `127.0.0.1:0`, with its
//! addresses read from the structured startup log line.

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use super::DEADLINE;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_uniqd");

/// A running `uniqd` process with its addresses parsed from the startup log.
pub struct Process {
    /// `None` once waited for.
    child: Option<Child>,
    pub ingest: SocketAddr,
    pub metrics: SocketAddr,
    /// The stderr lines up to and including `uniqd listening`.
    pub startup: Vec<String>,
    /// Every stderr line after startup (collected by a reader thread).
    pub log: mpsc::Receiver<String>,
}

impl Process {
    /// Starts `uniqd` on loopback port 0 with JSON logs, 2 workers and
    /// `extra` flags, and waits for its `uniqd listening` line.
    pub fn spawn(extra: &[&str]) -> Self {
        Self::spawn_env(extra, &[])
    }

    /// [`Process::spawn`] with extra environment variables.
    pub fn spawn_env(extra: &[&str], env: &[(&str, &str)]) -> Self {
        let mut child = Command::new(BIN)
            .args([
                "--listen",
                "127.0.0.1:0",
                "--metrics-listen",
                "127.0.0.1:0",
                "--log-format",
                "json",
                "--workers",
                "2",
            ])
            .args(extra)
            .env_remove("RUST_LOG")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn uniqd");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        // Wait for the structured "uniqd listening" line.
        let mut startup = Vec::new();
        let listening = loop {
            let line = rx.recv_timeout(DEADLINE).unwrap_or_else(|_| {
                panic!("uniqd exited or did not log its addresses in time: {startup:#?}")
            });
            let json: serde_json::Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("log line is not JSON ({e}): {line}"));
            startup.push(line);
            if json["message"] == "uniqd listening" {
                break json;
            }
        };
        assert_eq!(listening["level"], "INFO", "{listening}");
        let addr = |field: &str| -> SocketAddr {
            listening[field]
                .as_str()
                .unwrap_or_else(|| panic!("no {field} in {listening}"))
                .parse()
                .unwrap()
        };
        Self {
            ingest: addr("ingest_addr"),
            metrics: addr("metrics_addr"),
            child: Some(child),
            startup,
            log: rx,
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Sends a signal (`TERM`, `INT`, `KILL`, ...) with kill(1).
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([format!("-{name}"), self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success());
    }

    /// Waits for the process to exit (on a helper thread, with a deadline);
    /// returns its status and the log lines it wrote since startup.
    pub fn wait(mut self) -> (ExitStatus, Vec<String>) {
        let mut child = self.child.take().expect("running");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(child.wait());
        });
        let status = rx
            .recv_timeout(DEADLINE)
            .expect("uniqd did not exit in time")
            .expect("wait for uniqd");
        // The reader thread ends at EOF on stderr, which the exit brings.
        let mut lines = Vec::new();
        while let Ok(line) = self.log.recv_timeout(DEADLINE) {
            lines.push(line);
        }
        (status, lines)
    }

    /// `VmRSS` of the process in KiB (Linux).
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("read /proc/PID/status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS in /proc/PID/status")
    }

    /// Number of open file descriptors of the process (Linux).
    pub fn open_fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .expect("read /proc/PID/fd")
            .count()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        // A test that failed midway must not leave the child running.
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Runs the binary on loopback port 0 with `args` until it exits on its own
/// (it must, within [`DEADLINE`]: these are starts that must be refused).
pub fn run_to_exit(args: &[&str]) -> Output {
    run_to_exit_env(args, &[])
}

/// [`run_to_exit`] with extra environment variables.
pub fn run_to_exit_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut child = Command::new(BIN)
        .args(["--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"])
        .args(args)
        .env_remove("RUST_LOG")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn uniqd");
    let deadline = std::time::Instant::now() + DEADLINE;
    while child.try_wait().expect("try_wait").is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("uniqd {args:?} started instead of refusing");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("output")
}
