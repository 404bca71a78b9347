//! The syslog transport end to end (issue 18): uniqd in-process with a UDP socket and a TCP
//! listener on 127.0.0.1, fed by raw clients (both header formats, both TCP framings, bad and
//! oversized messages, a shutdown with messages in flight), by Debian's real `nginx` writing
//! its access log over syslog in a JSON `log_format` and in `combined`, and by Debian's real
//! `haproxy` logging HTTP requests as JSON (`log-format`) and in its common log format
//! (`option httplog clf`), over UDP and TCP, with clients from distinct loopback source
//! addresses.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::process::Process;

use std::io::{Read as _, Write as _};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::system::{find_binary, free_port, Haproxy};
use common::*;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use uniqd::config::{SyslogListen, SyslogSettings};
use uniqd::{AppConfig, Listeners};
use uniqd_core::Views;
use uniqd_ingest::syslog::{SyslogConfig, SyslogListeners};

/// Message size limit of these tests.
const MAX_MESSAGE: usize = 1024;

/// uniqd with one syslog UDP socket and one TCP listener.
struct SyslogService {
    metrics: SocketAddr,
    udp: SocketAddr,
    tcp: SocketAddr,
    views: Views,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl SyslogService {
    async fn start() -> Self {
        Self::start_with_limit(MAX_MESSAGE).await
    }

    /// With messages of at most `max_message_bytes`.
    async fn start_with_limit(max_message_bytes: usize) -> Self {
        let udp_socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let tcp_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let udp = udp_socket.local_addr().unwrap();
        let tcp = tcp_listener.local_addr().unwrap();
        let config = AppConfig {
            syslog: Some(SyslogSettings {
                listen: vec![SyslogListen::Udp(udp), SyslogListen::Tcp(tcp)],
                receive_buffer: None,
                limits: SyslogConfig {
                    max_message_bytes,
                    ..SyslogConfig::default()
                },
            }),
            ..AppConfig::default()
        };
        let parts = uniqd::app::build(config).await.unwrap();
        let views = parts.views().clone();
        let listeners = Listeners {
            ingest: TcpListener::bind("127.0.0.1:0").await.unwrap(),
            metrics: TcpListener::bind("127.0.0.1:0").await.unwrap(),
            syslog: SyslogListeners {
                udp: vec![udp_socket],
                tcp: vec![tcp_listener],
            },
        };
        let metrics = listeners.metrics.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(uniqd::app::run(parts, listeners, async move {
            let _ = stopped.await;
        }));
        Self {
            metrics,
            udp,
            tcp,
            views,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// The value of `sample` on `/metrics` (0 when it is missing).
    async fn metric(&self, sample: &str) -> f64 {
        let text = get(self.metrics, "/metrics").await.text();
        sample_value(&text, sample).unwrap_or(0.0)
    }

    /// Waits until `sample` reaches `want`.
    async fn wait_metric(&self, sample: &str, want: f64) {
        poll_until(format!("{sample} = {want}"), async || {
            let value = self.metric(sample).await;
            if value == want {
                Ok(())
            } else {
                Err(value.to_string())
            }
        })
        .await;
    }

    /// Graceful shutdown; asserts `run` returned `Ok`.
    async fn stop(&mut self) {
        let _ = self.stop.take().expect("stopped twice").send(());
        let task = self.task.take().expect("joined twice");
        tokio::time::timeout(DEADLINE, task)
            .await
            .expect("service did not stop in time")
            .expect("service task panicked")
            .expect("run returned an error");
    }
}

impl Drop for SyslogService {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

fn json(ip: &str, path: &str) -> String {
    format!(r#"{{"timestamp":"2026-12-07T16:37:52+00:00","ip":"{ip}","url":"{path}"}}"#)
}

fn rfc3164(log: &str) -> String {
    format!("<190>Dec  7 16:37:52 web1 nginx: {log}")
}

fn rfc5424(log: &str) -> String {
    format!("<165>1 2026-12-07T16:37:52.003Z web1 app - ID47 [a@1 b=\"c\\]\"] {log}")
}

#[tokio::test]
async fn udp_and_tcp_both_framings_and_both_header_formats() {
    let service = SyslogService::start().await;
    let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let datagrams = [
        rfc3164(&json("192.0.2.1", "/udp/3164")),
        rfc5424(&json("192.0.2.2", "/udp/5424")),
        // Invalid: no header, a bad address, not a log, and over the size limit.
        json("192.0.2.99", "/bad"),
        rfc3164(&json("192.0.2.300", "/bad")),
        rfc3164("GET / HTTP/1.1"),
        rfc3164(&json(
            "192.0.2.98",
            &format!("/{}", "x".repeat(MAX_MESSAGE)),
        )),
    ];
    for datagram in &datagrams {
        udp.send_to(datagram.as_bytes(), service.udp).await.unwrap();
    }
    service
        .wait_metric(
            "uniqd_syslog_messages_received_total{transport=\"udp\"}",
            6.0,
        )
        .await;

    // Octet counting, messages split over writes, one over the limit in the middle.
    let mut octets = TcpStream::connect(service.tcp).await.unwrap();
    let mut stream = String::new();
    for message in [
        rfc3164(&json("192.0.2.3", "/tcp/octets")),
        rfc3164(&json(
            "192.0.2.97",
            &format!("/{}", "y".repeat(MAX_MESSAGE)),
        )),
        rfc5424(&json("192.0.2.4", "/tcp/octets")),
    ] {
        stream.push_str(&format!("{} {message}", message.len()));
    }
    let (a, b) = stream.split_at(100);
    octets.write_all(a.as_bytes()).await.unwrap();
    octets.flush().await.unwrap();
    octets.write_all(b.as_bytes()).await.unwrap();

    // Newline framing: the last message has no line end and is ended by the close.
    let mut lines = TcpStream::connect(service.tcp).await.unwrap();
    let text = format!(
        "{}\r\n{}\nnot syslog\n{}",
        rfc3164(&json("192.0.2.5", "/tcp/lines")),
        rfc5424(&json("192.0.2.6", "/tcp/lines")),
        rfc3164(&json("192.0.2.7", "/tcp/lines")),
    );
    lines.write_all(text.as_bytes()).await.unwrap();
    lines.shutdown().await.unwrap();
    drop(lines);

    service
        .wait_metric(
            "uniqd_syslog_messages_received_total{transport=\"tcp\"}",
            7.0,
        )
        .await;
    let text = get_openmetrics(service.metrics).await.text();
    assert_valid_openmetrics(&text);
    for (sample, want) in [
        (
            "uniqd_syslog_messages_total{transport=\"udp\",outcome=\"accepted\"}",
            2.0,
        ),
        (
            "uniqd_syslog_messages_total{transport=\"udp\",outcome=\"invalid\"}",
            4.0,
        ),
        (
            "uniqd_syslog_messages_total{transport=\"tcp\",outcome=\"accepted\"}",
            5.0,
        ),
        (
            "uniqd_syslog_messages_total{transport=\"tcp\",outcome=\"invalid\"}",
            2.0,
        ),
        ("uniqd_syslog_tcp_connections_total", 2.0),
        ("uniqd_syslog_udp_kernel_drops_total", 0.0),
        ("unique_ip_addresses", 7.0),
    ] {
        assert_eq!(
            sample_value(&text, sample),
            Some(want),
            "{sample} in\n{text}"
        );
    }
    let stats = get(service.metrics, "/stats").await.text();
    for path in ["/udp/3164", "/udp/5424", "/tcp/octets", "/tcp/lines"] {
        assert!(stats.contains(&format!("\"{path}\"")), "{path} in {stats}");
    }
    assert!(!stats.contains("/bad"), "{stats}");
    drop(octets);
}

#[tokio::test]
async fn long_tcp_messages_grow_the_buffer_up_to_the_limit() {
    // Larger than a connection's first buffer (4 KiB), within the 20 KiB limit, and over it.
    let service = SyslogService::start_with_limit(20 * 1024).await;
    let long = |ip: &str, n: usize| rfc3164(&json(ip, &format!("/long/{}", "z".repeat(n))));
    let mut octets = TcpStream::connect(service.tcp).await.unwrap();
    for message in [
        long("192.0.2.20", 10_000),
        long("192.0.2.96", 30_000),
        long("192.0.2.21", 19_000),
    ] {
        octets
            .write_all(format!("{} {message}", message.len()).as_bytes())
            .await
            .unwrap();
    }
    let mut lines = TcpStream::connect(service.tcp).await.unwrap();
    for message in [
        long("192.0.2.22", 15_000),
        long("192.0.2.95", 25_000),
        long("192.0.2.23", 100),
    ] {
        lines
            .write_all(format!("{message}\n").as_bytes())
            .await
            .unwrap();
    }
    service
        .wait_metric(
            "uniqd_syslog_messages_received_total{transport=\"tcp\"}",
            6.0,
        )
        .await;
    assert_eq!(
        service
            .metric("uniqd_syslog_messages_total{transport=\"tcp\",outcome=\"invalid\"}")
            .await,
        2.0
    );
    assert_eq!(service.metric("unique_ip_addresses").await, 4.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_binds_one_reuseport_socket_per_worker_and_a_tcp_listener() {
    let uniqd = Process::spawn(&[
        "--syslog-listen",
        "udp://127.0.0.1:0,tcp://127.0.0.1:0",
        "--syslog-receive-buffer",
        "1MiB",
    ]);
    let listening: serde_json::Value =
        serde_json::from_str(uniqd.startup.last().expect("the listening line")).unwrap();
    let addrs: Vec<&str> = listening["syslog"]
        .as_str()
        .expect("syslog addresses")
        .split(',')
        .collect();
    let [udp, tcp] = addrs[..] else {
        panic!("one UDP and one TCP address: {listening}")
    };
    let udp: SocketAddr = udp.strip_prefix("udp://").unwrap().parse().unwrap();
    let tcp: SocketAddr = tcp.strip_prefix("tcp://").unwrap().parse().unwrap();
    // One socket per worker (`Process` runs 2) on the one UDP port.
    let port = format!(":{:04X} ", udp.port());
    let sockets = std::fs::read_to_string("/proc/net/udp")
        .unwrap()
        .lines()
        .filter(|line| {
            line.split_whitespace()
                .nth(1)
                .is_some_and(|local| format!("{local} ").ends_with(&port))
        })
        .count();
    assert_eq!(sockets, 2, "UDP sockets on port {}", udp.port());
    // From many source ports, so the kernel spreads them over both workers' sockets.
    let n = 40;
    for i in 0..n {
        let sender = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let log = json(&format!("198.51.100.{i}"), "/binary");
        sender.send_to(rfc3164(&log).as_bytes(), udp).await.unwrap();
    }
    let mut stream = TcpStream::connect(tcp).await.unwrap();
    let message = rfc5424(&json("203.0.113.1", "/binary"));
    stream
        .write_all(format!("{} {message}", message.len()).as_bytes())
        .await
        .unwrap();
    poll_until("every message counted", async || {
        let text = get(uniqd.metrics, "/metrics").await.text();
        match sample_value(&text, "unique_ip_addresses") {
            Some(v) if v == f64::from(n + 1) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    let text = get(uniqd.metrics, "/metrics").await.text();
    assert_eq!(
        sample_value(&text, "uniqd_syslog_udp_kernel_drops_total"),
        Some(0.0),
        "{text}"
    );
    drop(stream);
    uniqd.signal("TERM");
    let (status, _) = uniqd.wait();
    assert!(status.success(), "{status}");
}

#[tokio::test]
async fn a_broken_stream_is_closed_and_the_listener_goes_on() {
    let service = SyslogService::start().await;
    let mut garbage = TcpStream::connect(service.tcp).await.unwrap();
    garbage.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
    let closed = wait_for_close(&mut garbage, DEADLINE).await;
    assert!(closed.is_empty(), "uniqd never answers syslog");
    let mut good = TcpStream::connect(service.tcp).await.unwrap();
    let message = rfc3164(&json("192.0.2.10", "/after"));
    good.write_all(format!("{} {message}", message.len()).as_bytes())
        .await
        .unwrap();
    service
        .wait_metric(
            "uniqd_syslog_messages_total{transport=\"tcp\",outcome=\"accepted\"}",
            1.0,
        )
        .await;
    assert_eq!(
        service
            .metric("uniqd_syslog_messages_total{transport=\"tcp\",outcome=\"invalid\"}")
            .await,
        1.0
    );
}

#[tokio::test]
async fn shutdown_counts_what_was_already_received() {
    let mut service = SyslogService::start().await;
    let mut tcp = TcpStream::connect(service.tcp).await.unwrap();
    service
        .wait_metric("uniqd_syslog_tcp_connections_total", 1.0)
        .await;
    let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let n = 50;
    for i in 0..n {
        let log = json(&format!("198.51.100.{i}"), "/udp");
        udp.send_to(rfc3164(&log).as_bytes(), service.udp)
            .await
            .unwrap();
        let log = json(&format!("203.0.113.{i}"), "/tcp");
        tcp.write_all(format!("{}\n", rfc3164(&log)).as_bytes())
            .await
            .unwrap();
    }
    tcp.flush().await.unwrap();
    // Stop at once: every datagram is in the socket's queue and every line in the
    // connection's, and all of them must be counted before `run` returns.
    service.stop().await;
    assert_eq!(service.views.counter().estimate(), 2 * n);
}

/// `GET path` on `127.0.0.1:port` from the loopback address `source` (the client socket is
/// bound to it before connecting); the status line.
fn get_from(port: u16, source: [u8; 4], path: &str) -> Result<String, String> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).map_err(|e| e.to_string())?;
    let from = SocketAddr::from((source, 0));
    socket.bind(&from.into()).map_err(|e| e.to_string())?;
    let to = SocketAddr::from(([127, 0, 0, 1], port));
    socket
        .connect_timeout(&to.into(), Duration::from_secs(5))
        .map_err(|e| e.to_string())?;
    let mut stream: std::net::TcpStream = socket.into();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut answer = String::new();
    stream
        .read_to_string(&mut answer)
        .map_err(|e| e.to_string())?;
    Ok(answer.lines().next().unwrap_or_default().to_owned())
}

/// Debian's nginx, started on a free loopback port with a temporary configuration.
struct Nginx {
    child: Child,
    port: u16,
    _dir: TempDir,
}

impl Nginx {
    /// nginx sending its access log in `format` (`j`, the JSON format, or nginx's own
    /// `combined`) to `syslog` over UDP.
    fn start(syslog: SocketAddr, format: &str) -> Self {
        let binary = find_binary("nginx");
        let dir = TempDir::new("nginx");
        let port = free_port();
        let d = dir.path().display();
        let conf = format!(
            r#"daemon off;
master_process off;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 64; }}
http {{
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    log_format j escape=json '{{"timestamp":"$time_iso8601","ip":"$remote_addr","url":"$request_uri"}}';
    access_log syslog:server={syslog},tag=nginx {format};
    server {{
        listen 127.0.0.1:{port};
        location / {{ return 200 "ok\n"; }}
    }}
}}
"#
        );
        let path = dir.path().join("nginx.conf");
        std::fs::write(&path, conf).unwrap();
        let child = Command::new(binary)
            .arg("-p")
            .arg(dir.path())
            .arg("-e")
            .arg(dir.path().join("error.log"))
            .arg("-c")
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start nginx");
        Self {
            child,
            port,
            _dir: dir,
        }
    }

    /// `GET path` from the loopback address `source`; the status line.
    fn get_from(&self, source: [u8; 4], path: &str) -> Result<String, String> {
        get_from(self.port, source, path)
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Requests through nginx from 127.0.0.2 ..= 127.0.0.9, logged in `format` over UDP.
async fn nginx_counts_exactly(format: &str) {
    let service = SyslogService::start().await;
    let nginx = Nginx::start(service.udp, format);
    // nginx is up once it answers; this first request (from 127.0.0.2) is logged too.
    let status = poll_until("nginx to answer", async || {
        tokio::task::block_in_place(|| nginx.get_from([127, 0, 0, 2], "/ready"))
    })
    .await;
    assert!(status.contains("200"), "{status}");
    let sources = 2..=9u8;
    for k in sources.clone() {
        let status =
            tokio::task::block_in_place(|| nginx.get_from([127, 0, 0, k], &format!("/page/{k}")))
                .expect("nginx answers");
        assert!(status.contains("200"), "{status}");
    }
    // 127.0.0.2 sent /ready too; every request is one message.
    let requests = f64::from(sources.end() - sources.start() + 1) + 1.0;
    service
        .wait_metric(
            "uniqd_syslog_messages_total{transport=\"udp\",outcome=\"accepted\"}",
            requests,
        )
        .await;
    let distinct = f64::from(sources.end() - sources.start() + 1);
    assert_eq!(service.metric("unique_ip_addresses").await, distinct);
    assert_eq!(
        service
            .metric("uniqd_syslog_messages_total{transport=\"udp\",outcome=\"invalid\"}")
            .await,
        0.0
    );
    let stats = get(service.metrics, "/stats").await.text();
    for k in sources {
        assert!(
            stats.contains(&format!("\"/page/{k}\"")),
            "/page/{k} in {stats}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_json_access_log_over_syslog_udp_counts_exactly() {
    nginx_counts_exactly("j").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_combined_access_log_over_syslog_udp_counts_exactly() {
    nginx_counts_exactly("combined").await;
}

/// Debian's HAProxy answering every request itself, logging each one over syslog to
/// `target` (`udp` or `tcp`) in `format`: a JSON line (`log-format`), or HAProxy's common log
/// format line (`option httplog clf`: CLF, then its timers and flags; HAProxy's default
/// `option httplog` line is its own format, not CLF).
fn haproxy(transport: &str, syslog: SocketAddr, format: HaproxyLog) -> Haproxy {
    let target = match transport {
        "udp" => syslog.to_string(),
        _ => format!("tcp@{syslog}"),
    };
    let log = match format {
        HaproxyLog::Json => r#"log-format '{"ip":"%ci","url":"%HU"}'"#,
        HaproxyLog::Clf => "option httplog clf",
    };
    Haproxy::start("haproxy", |port| {
        format!(
            r#"global
    log {target} local0
defaults
    mode http
    log global
    timeout connect 5s
    timeout client 5s
    timeout server 5s
frontend web
    bind 127.0.0.1:{port}
    {log}
    http-request return status 200 content-type text/plain string ok
"#
        )
    })
}

/// What HAProxy logs for a request.
#[derive(Clone, Copy)]
enum HaproxyLog {
    Json,
    Clf,
}

/// Requests through HAProxy from 127.0.0.2 ..= 127.0.0.9, logged in `format` over `transport`.
async fn haproxy_counts_exactly(transport: &str, format: HaproxyLog) {
    let service = SyslogService::start().await;
    let target = if transport == "udp" {
        service.udp
    } else {
        service.tcp
    };
    let haproxy = haproxy(transport, target, format);
    let status = poll_until("haproxy to answer", async || {
        tokio::task::block_in_place(|| get_from(haproxy.port, [127, 0, 0, 2], "/ready"))
    })
    .await;
    assert!(status.contains("200"), "{status}");
    let sources = 2..=9u8;
    for k in sources.clone() {
        let status = tokio::task::block_in_place(|| {
            get_from(haproxy.port, [127, 0, 0, k], &format!("/haproxy/{k}"))
        })
        .expect("haproxy answers");
        assert!(status.contains("200"), "{status}");
    }
    let requests = f64::from(sources.end() - sources.start() + 1) + 1.0;
    let accepted =
        format!("uniqd_syslog_messages_total{{transport=\"{transport}\",outcome=\"accepted\"}}");
    service.wait_metric(&accepted, requests).await;
    let distinct = f64::from(sources.end() - sources.start() + 1);
    assert_eq!(service.metric("unique_ip_addresses").await, distinct);
    let invalid =
        format!("uniqd_syslog_messages_total{{transport=\"{transport}\",outcome=\"invalid\"}}");
    assert_eq!(service.metric(&invalid).await, 0.0);
    let stats = get(service.metrics, "/stats").await.text();
    for k in sources {
        assert!(
            stats.contains(&format!("\"/haproxy/{k}\"")),
            "/haproxy/{k} in {stats}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn haproxy_json_log_over_syslog_udp_counts_exactly() {
    haproxy_counts_exactly("udp", HaproxyLog::Json).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn haproxy_json_log_over_syslog_tcp_counts_exactly() {
    haproxy_counts_exactly("tcp", HaproxyLog::Json).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn haproxy_clf_log_over_syslog_udp_counts_exactly() {
    haproxy_counts_exactly("udp", HaproxyLog::Clf).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn haproxy_clf_log_over_syslog_tcp_counts_exactly() {
    haproxy_counts_exactly("tcp", HaproxyLog::Clf).await;
}
