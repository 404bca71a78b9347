//! `uniqd healthcheck --url URL`: a dependency-free HTTP GET for container
//! health checks (the runtime image has no shell or curl).
//!
//! Exit status 0 when the URL answers 2xx within the timeout, 1 otherwise
//! (bad URL, connection refused, timeout, non-2xx). Plain `http://` only,
//! which is all a local probe of the metrics port needs.

use std::io::{self, Read as _, Write as _};
use std::net::{TcpStream, ToSocketAddrs as _};
use std::time::{Duration, Instant};

/// Result of a probe: the HTTP status, or why there is none.
pub type ProbeResult = Result<u16, String>;

/// GETs `url` and returns the response status.
///
/// # Errors
///
/// A human-readable reason: unsupported URL, unresolvable host, connection
/// failure, timeout or a malformed response.
pub fn probe(url: &str, timeout: Duration) -> ProbeResult {
    let deadline = Instant::now() + timeout;
    let (authority, path) = split_url(url)?;
    let addr = authority
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {authority}: {e}"))?
        .next()
        .ok_or_else(|| format!("{authority} resolves to no address"))?;
    let mut stream = TcpStream::connect_timeout(&addr, remaining(deadline)?)
        .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: uniqd-healthcheck\r\n\
         Connection: close\r\n\r\n"
    );
    stream
        .set_write_timeout(Some(remaining(deadline)?))
        .and_then(|()| stream.write_all(request.as_bytes()))
        .map_err(|e| format!("cannot send the request: {e}"))?;
    let mut head = Vec::with_capacity(256);
    let mut buf = [0u8; 256];
    while !head.windows(2).any(|w| w == b"\r\n") {
        stream
            .set_read_timeout(Some(remaining(deadline)?))
            .map_err(|e| format!("cannot read the response: {e}"))?;
        match stream.read(&mut buf) {
            Ok(0) => return Err("connection closed before a response".to_owned()),
            Ok(n) => head.extend_from_slice(&buf[..n]),
            Err(e) if is_timeout(&e) => return Err("timed out waiting for a response".to_owned()),
            Err(e) => return Err(format!("cannot read the response: {e}")),
        }
    }
    parse_status(&head)
}

/// Splits `http://host:port/path` into `("host:port", "/path")`.
fn split_url(url: &str) -> Result<(String, String), String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("unsupported URL {url:?}: only http:// is supported"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.is_empty() {
        return Err(format!("URL {url:?} has no host"));
    }
    // Default the port so `to_socket_addrs` accepts it.
    let has_port = authority.rsplit_once(':').is_some_and(|(host, port)| {
        !port.is_empty() && !host.ends_with(':') && port.chars().all(|c| c.is_ascii_digit())
    });
    let authority = if has_port {
        authority.to_owned()
    } else {
        format!("{authority}:80")
    };
    Ok((authority, path.to_owned()))
}

fn parse_status(head: &[u8]) -> ProbeResult {
    let line = head.split(|&b| b == b'\r').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut parts = line.split(' ');
    match (parts.next(), parts.next().map(str::parse::<u16>)) {
        (Some(version), Some(Ok(status))) if version.starts_with("HTTP/") => Ok(status),
        _ => Err(format!("malformed status line {line:?}")),
    }
}

fn remaining(deadline: Instant) -> Result<Duration, String> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        Err("timed out".to_owned())
    } else {
        Ok(left)
    }
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// Runs the subcommand: probes `url`, reports failures on stderr, and
/// returns whether the target is healthy (2xx).
pub fn run(url: &str, timeout: Duration) -> bool {
    let outcome = probe(url, timeout);
    let healthy = matches!(outcome, Ok(200..=299));
    if !healthy {
        let reason = match outcome {
            Ok(status) => format!("status {status}"),
            Err(reason) => reason,
        };
        // Health-check output is read by the container runtime; a failed
        // write to stderr changes nothing about the verdict.
        let _ = writeln!(io::stderr(), "uniqd healthcheck: {url}: {reason}");
    }
    healthy
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    fn serve_once(response: &'static [u8]) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        std::thread::spawn(move || {
            if let Ok((mut stream, _)) = listener.accept() {
                let mut buf = [0u8; 1024];
                let _ = stream.read(&mut buf);
                let _ = stream.write_all(response);
            }
        });
        format!("http://{addr}/healthz")
    }

    #[test]
    fn reports_the_status() {
        let url = serve_once(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
        assert_eq!(probe(&url, Duration::from_secs(5)), Ok(200));
        let url = serve_once(b"HTTP/1.1 503 Service Unavailable\r\n\r\n");
        assert!(!run(&url, Duration::from_secs(5)));
        let url = serve_once(b"garbage\r\n");
        assert!(probe(&url, Duration::from_secs(5)).is_err());
    }

    #[test]
    fn refused_connection_is_unhealthy() {
        let addr = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("port");
        // The listener is dropped: nothing listens there now.
        assert!(probe(&format!("http://{addr}/"), Duration::from_secs(5)).is_err());
    }

    #[test]
    fn silent_server_times_out() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}/", listener.local_addr().expect("addr"));
        let started = Instant::now();
        let result = probe(&url, Duration::from_millis(200));
        assert!(result.is_err(), "{result:?}");
        assert!(started.elapsed() < Duration::from_secs(5));
        drop(listener);
    }

    #[test]
    fn url_parsing() {
        assert_eq!(
            split_url("http://127.0.0.1:9102/healthz"),
            Ok(("127.0.0.1:9102".to_owned(), "/healthz".to_owned()))
        );
        assert_eq!(
            split_url("http://localhost"),
            Ok(("localhost:80".to_owned(), "/".to_owned()))
        );
        assert_eq!(
            split_url("http://[::1]:9102/x"),
            Ok(("[::1]:9102".to_owned(), "/x".to_owned()))
        );
        assert_eq!(
            split_url("http://[::1]/x"),
            Ok(("[::1]:80".to_owned(), "/x".to_owned()))
        );
        assert!(split_url("https://x/").is_err());
        assert!(split_url("http:///x").is_err());
    }
}
