//! Shared helpers for the integration tests: an in-process service on
//! `127.0.0.1:0`, a tiny raw-TCP HTTP/1.1 client (so tests can also send
//! malformed, chunked, stalled or oversized requests), metric lookup, the
//! strict OpenMetrics check through Python's `prometheus_client`, and reading
//! the repository's YAML files (docs, deploy).

#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

pub mod process;

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use uniqd::AppConfig;

/// Upper bound for any single network wait in tests (generous for debug
/// builds on a loaded 2-core machine); hitting it means a bug, not slowness.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// The whole service running in this process.
pub struct TestService {
    pub ingest: SocketAddr,
    pub metrics: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<io::Result<()>>>,
}

impl TestService {
    /// Starts with the default configuration.
    pub async fn start() -> Self {
        Self::start_with(AppConfig::default()).await
    }

    /// Starts with `config` on two fresh `127.0.0.1:0` listeners.
    pub async fn start_with(config: AppConfig) -> Self {
        let ingest_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let metrics_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let ingest = ingest_listener.local_addr().unwrap();
        let metrics = metrics_listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(uniqd::serve(
            config,
            ingest_listener,
            metrics_listener,
            async move {
                let _ = stopped.await;
            },
        ));
        Self {
            ingest,
            metrics,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Signals shutdown without waiting.
    pub fn trigger_shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Waits for `serve` to return after [`Self::trigger_shutdown`].
    pub async fn join(&mut self) -> io::Result<()> {
        let task = self.task.take().expect("joined twice");
        tokio::time::timeout(DEADLINE, task)
            .await
            .expect("service did not stop in time")
            .expect("service task panicked")
    }

    /// Graceful shutdown; asserts `serve` returned `Ok`.
    pub async fn stop(mut self) {
        self.trigger_shutdown();
        self.join().await.expect("serve returned an error");
    }

    /// `GET /metrics` body (asserting 200 and the OpenMetrics content type).
    pub async fn scrape(&self) -> String {
        let response = get(self.metrics, "/metrics").await;
        assert_eq!(response.status, 200, "{}", response.text());
        assert_eq!(
            response.header("content-type"),
            Some("application/openmetrics-text; version=1.0.0; charset=utf-8")
        );
        response.text()
    }

    /// Value of one sample, e.g. `unique_ip_addresses` or
    /// `uniqd_ingest_requests_total{outcome="accepted"}`.
    pub async fn metric(&self, sample: &str) -> f64 {
        let text = self.scrape().await;
        sample_value(&text, sample).unwrap_or_else(|| panic!("no sample {sample} in:\n{text}"))
    }

    /// `unique_ip_addresses` as an integer.
    pub async fn unique(&self) -> u64 {
        let value = self.metric("unique_ip_addresses").await;
        assert!(value >= 0.0 && value.fract() == 0.0, "{value}");
        value as u64
    }
}

impl Drop for TestService {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Finds `sample` (name plus exact label text) in OpenMetrics text.
pub fn sample_value(text: &str, sample: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(sample)?.strip_prefix(' ')?;
        rest.split(' ').next()?.parse().ok()
    })
}

/// A parsed HTTP/1.1 response.
#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// First header with this (case-insensitive) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON (asserting the JSON content type).
    pub fn json(&self) -> serde_json::Value {
        assert_eq!(
            self.header("content-type"),
            Some("application/json"),
            "status {}: {}",
            self.status,
            self.text()
        );
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("invalid JSON body ({e}): {}", self.text()))
    }

    /// Asserts the status and the JSON `error` code; returns the body.
    pub fn expect_error(&self, status: u16, code: &str) -> serde_json::Value {
        assert_eq!(self.status, status, "{}", self.text());
        let json = self.json();
        assert_eq!(json["error"], code, "{json}");
        assert!(
            json["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{json}"
        );
        json
    }
}

/// Sends `raw` on a fresh connection (concurrently with reading, so an early
/// response to a large request is still seen) and reads one response.
pub async fn send_raw(addr: SocketAddr, raw: Vec<u8>) -> HttpResponse {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let write = tokio::spawn(async move {
        // The server may answer and close before reading everything
        // (413/415): write errors are expected then.
        let _ = writer.write_all(&raw).await;
        let _ = writer.flush().await;
        writer
    });
    let response = tokio::time::timeout(DEADLINE, read_response(&mut reader))
        .await
        .expect("no response in time")
        .expect("malformed or missing response");
    write.abort();
    response
}

/// Reads one response from `reader` (content-length, chunked or until EOF).
/// A connection reset after a complete response head is tolerated.
pub async fn read_response<R: tokio::io::AsyncRead + Unpin>(
    reader: &mut R,
) -> Result<HttpResponse, String> {
    let mut buf = Vec::new();
    let head_end = loop {
        if let Some(pos) = find(&buf, b"\r\n\r\n") {
            break pos;
        }
        let mut chunk = [0u8; 8192];
        match reader.read(&mut chunk).await {
            Ok(0) => {
                return Err(format!(
                    "EOF before the end of the head: {:?}",
                    String::from_utf8_lossy(&buf)
                ))
            }
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) => return Err(format!("read error before the end of the head: {e}")),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let mut rest = buf[head_end + 4..].to_vec();
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    let body = if let Some(len) = header("content-length") {
        let len: usize = len.parse().map_err(|_| "bad content-length".to_owned())?;
        while rest.len() < len {
            let mut chunk = [0u8; 8192];
            match reader.read(&mut chunk).await {
                Ok(0) | Err(_) => return Err("body cut short".to_owned()),
                Ok(n) => rest.extend_from_slice(&chunk[..n]),
            }
        }
        rest.truncate(len);
        rest
    } else if header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        loop {
            if let Some(body) = decode_chunked(&rest) {
                break body;
            }
            let mut chunk = [0u8; 8192];
            match reader.read(&mut chunk).await {
                Ok(0) | Err(_) => return Err("chunked body cut short".to_owned()),
                Ok(n) => rest.extend_from_slice(&chunk[..n]),
            }
        }
    } else {
        let _ = reader.read_to_end(&mut rest).await;
        rest
    };
    Ok(HttpResponse {
        status,
        headers,
        body,
    })
}

/// Decodes a complete chunked body, or `None` if more bytes are needed.
fn decode_chunked(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = find(data, b"\r\n")?;
        let size_text = std::str::from_utf8(&data[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Some(body);
        }
        if data.len() < size + 2 {
            return None;
        }
        body.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// A request head (with `Connection: close`) plus body bytes.
pub fn request_bytes(method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut raw = format!("{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n");
    for (name, value) in headers {
        raw.push_str(&format!("{name}: {value}\r\n"));
    }
    raw.push_str("\r\n");
    let mut raw = raw.into_bytes();
    raw.extend_from_slice(body);
    raw
}

/// `POST` with a `Content-Length` body and an optional `Content-Type`.
pub async fn post(
    addr: SocketAddr,
    path: &str,
    content_type: Option<&str>,
    body: &[u8],
) -> HttpResponse {
    let len = body.len().to_string();
    let mut headers = vec![("Content-Length", len.as_str())];
    if let Some(ct) = content_type {
        headers.push(("Content-Type", ct));
    }
    send_raw(addr, request_bytes("POST", path, &headers, body)).await
}

/// `POST /logs` with `Content-Type: application/json`.
pub async fn post_json(addr: SocketAddr, body: &str) -> HttpResponse {
    post(addr, "/logs", Some("application/json"), body.as_bytes()).await
}

/// `POST /logs` with `Content-Type: application/x-ndjson`.
pub async fn post_ndjson(addr: SocketAddr, body: &str) -> HttpResponse {
    post(addr, "/logs", Some("application/x-ndjson"), body.as_bytes()).await
}

/// `POST` with `Transfer-Encoding: chunked`, one HTTP chunk per slice.
pub async fn post_chunked(
    addr: SocketAddr,
    path: &str,
    content_type: &str,
    chunks: &[&[u8]],
) -> HttpResponse {
    let mut raw = request_bytes(
        "POST",
        path,
        &[
            ("Content-Type", content_type),
            ("Transfer-Encoding", "chunked"),
        ],
        b"",
    );
    for chunk in chunks {
        raw.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        raw.extend_from_slice(chunk);
        raw.extend_from_slice(b"\r\n");
    }
    raw.extend_from_slice(b"0\r\n\r\n");
    send_raw(addr, raw).await
}

/// `GET path`.
pub async fn get(addr: SocketAddr, path: &str) -> HttpResponse {
    send_raw(addr, request_bytes("GET", path, &[], b"")).await
}

/// `{"ip": "<ip>"}` plus some other fields, as a log line.
pub fn log_line(ip: &str) -> String {
    format!(
        r#"{{"timestamp":"2020-06-24T15:27:00.123456Z","ip":"{ip}","url":"/a?b=c","ua":{{"n":[1,2]}}}}"#
    )
}

/// The `i`-th address of a large distinct set (10.0.0.0/8).
pub fn distinct_ip(i: u32) -> String {
    format!("10.{}.{}.{}", (i >> 16) & 255, (i >> 8) & 255, i & 255)
}

/// Waits until the server closes `stream` (EOF or reset), failing after
/// `limit`. Any bytes received before are returned.
pub async fn wait_for_close(stream: &mut TcpStream, limit: Duration) -> Vec<u8> {
    let mut received = Vec::new();
    let closed = tokio::time::timeout(limit, async {
        let mut chunk = [0u8; 4096];
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => received.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await;
    assert!(
        closed.is_ok(),
        "server did not close the connection within {limit:?}"
    );
    received
}

/// Asserts the strict OpenMetrics parser of Python's `prometheus_client`
/// accepts `text`. Fails (never skips) when Python or the package is missing.
pub fn assert_valid_openmetrics(text: &str) {
    const SCRIPT: &str = "
import sys
try:
    from prometheus_client.openmetrics.parser import text_string_to_metric_families
except ImportError as e:
    sys.stderr.write('IMPORT-ERROR: %s\\n' % e)
    sys.exit(3)
families = list(text_string_to_metric_families(sys.stdin.read()))
print(len(families))
";
    let child = Command::new("python3")
        .args(["-c", SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(e) => panic!(
            "cannot run python3 ({e}); the OpenMetrics check needs Python 3 with \
             prometheus_client: install python3, then `python3 -m pip install prometheus_client`"
        ),
    };
    {
        use std::io::Write as _;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(text.as_bytes()).unwrap();
    }
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    if output.status.code() == Some(3) && stderr.contains("IMPORT-ERROR") {
        panic!(
            "Python's prometheus_client is not installed ({}); install it with \
             `python3 -m pip install prometheus_client`",
            stderr.trim()
        );
    }
    assert!(
        output.status.success(),
        "prometheus_client rejected the exposition: {stderr}\n--- text ---\n{text}"
    );
}

/// Reads the interim `100 Continue` response that hyper sends when the
/// service starts reading the body of a request sent with
/// `Expect: 100-continue`: proof that the request is in flight.
pub async fn expect_continue(stream: &mut TcpStream) {
    let mut buf = Vec::new();
    tokio::time::timeout(DEADLINE, async {
        let mut byte = [0u8; 1];
        while !buf.ends_with(b"\r\n\r\n") {
            let n = stream.read(&mut byte).await.unwrap();
            assert_eq!(n, 1, "connection closed before 100 Continue: {buf:?}");
            buf.push(byte[0]);
        }
    })
    .await
    .expect("no 100 Continue in time");
    let text = String::from_utf8_lossy(&buf);
    assert!(text.starts_with("HTTP/1.1 100 Continue\r\n"), "{text}");
}

/// A fresh directory under the system temp dir, removed on drop.
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    pub fn new(name: &str) -> Self {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("uniqd-test-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    pub fn join(&self, name: &str) -> std::path::PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Polls `check` until it returns `Some`, failing after [`DEADLINE`].
pub async fn poll_until<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = std::time::Instant::now() + DEADLINE;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A path relative to the repository root (an absolute path stays as it is).
pub fn repo_path(relative: impl AsRef<Path>) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(relative)
}

/// Reads a YAML file of the repository (e.g. `docs/openapi.yaml`) as JSON
/// values. Mapping keys must be strings (quote numeric keys such as `'200'`).
pub fn read_yaml(relative: impl AsRef<Path>) -> serde_json::Value {
    let path = repo_path(relative);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_norway::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not valid YAML: {e}", path.display()))
}

/// Percent-encodes `text` for a URL query parameter (RFC 3986 unreserved
/// characters stay as they are).
pub fn query_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}
