//! A tiny raw-TCP HTTP/1.1 client: requests are plain bytes, so a test can send malformed,
//! chunked, pipelined, stalled or oversized requests as easily as good ones, and read the
//! answer (content-length, chunked or until EOF) as a parsed [`HttpResponse`].
//!
//! Every wait is bounded by [`DEADLINE`]; the helpers without `try_` fail the test when it
//! passes or the answer is malformed.

use std::net::SocketAddr;

use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::poll::DEADLINE;

/// A parsed HTTP/1.1 response.
#[derive(Debug)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// The headers in order, names as sent.
    pub headers: Vec<(String, String)>,
    /// The body (chunked encoding removed).
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

    /// The body as text (invalid UTF-8 replaced).
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

    /// Asserts the status and the JSON `error` code (with a non-empty `message`); returns the
    /// body.
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

/// Sends `raw` on a fresh connection (concurrently with reading, so an early response to a
/// large request is still seen) and reads one response; `Err` if nothing listens, or no
/// complete response arrives within [`DEADLINE`].
pub async fn try_send_raw(addr: SocketAddr, raw: Vec<u8>) -> Result<HttpResponse, String> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    let (mut reader, mut writer) = stream.into_split();
    let write = tokio::spawn(async move {
        // The server may answer and close before reading everything (413/415): write errors
        // are expected then.
        let _ = writer.write_all(&raw).await;
        let _ = writer.flush().await;
        writer
    });
    let response = tokio::time::timeout(DEADLINE, read_response(&mut reader))
        .await
        .unwrap_or_else(|_| Err(format!("no response from {addr} within {DEADLINE:?}")));
    write.abort();
    response
}

/// [`try_send_raw`], failing the test if no response arrives.
pub async fn send_raw(addr: SocketAddr, raw: Vec<u8>) -> HttpResponse {
    try_send_raw(addr, raw)
        .await
        .unwrap_or_else(|e| panic!("malformed or missing response: {e}"))
}

/// Reads the next response from `reader` within [`DEADLINE`], failing the test otherwise.
pub async fn next_response<R: AsyncRead + Unpin>(reader: &mut R) -> HttpResponse {
    tokio::time::timeout(DEADLINE, read_response(reader))
        .await
        .unwrap_or_else(|_| panic!("no response within {DEADLINE:?}"))
        .unwrap_or_else(|e| panic!("malformed or missing response: {e}"))
}

/// Reads one response from `reader` (content-length, chunked or until EOF), without a
/// deadline. A connection reset after a complete response head is tolerated.
pub async fn read_response<R: AsyncRead + Unpin>(reader: &mut R) -> Result<HttpResponse, String> {
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

/// A keep-alive `POST /logs` (no `Connection: close`) with a `Content-Length` body and, if
/// given, a `Content-Type`: for tests that send several requests on one connection.
pub fn keep_alive_post(content_type: Option<&str>, body: &[u8]) -> Vec<u8> {
    let mut raw = b"POST /logs HTTP/1.1\r\nHost: t\r\n".to_vec();
    if let Some(content_type) = content_type {
        raw.extend_from_slice(format!("Content-Type: {content_type}\r\n").as_bytes());
    }
    raw.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
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

/// `GET path`, or `None` if nothing listens or no complete answer arrives in time (for
/// polling a server that is still starting).
pub async fn try_get(addr: SocketAddr, path: &str) -> Option<HttpResponse> {
    try_send_raw(addr, request_bytes("GET", path, &[], b""))
        .await
        .ok()
}

/// Waits until the server closes `stream` (EOF or reset), failing after `limit`. Any bytes
/// received before are returned.
pub async fn wait_for_close(stream: &mut TcpStream, limit: std::time::Duration) -> Vec<u8> {
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

/// Reads the interim `100 Continue` response that hyper sends when the service starts
/// reading the body of a request sent with `Expect: 100-continue`: proof that the request is
/// in flight.
pub async fn expect_continue(stream: &mut TcpStream) {
    let mut buf = Vec::new();
    tokio::time::timeout(DEADLINE, async {
        let mut byte = [0u8; 1];
        while !buf.ends_with(b"\r\n\r\n") {
            let n = stream
                .read(&mut byte)
                .await
                .expect("read until 100 Continue");
            assert_eq!(n, 1, "connection closed before 100 Continue: {buf:?}");
            buf.push(byte[0]);
        }
    })
    .await
    .expect("no 100 Continue in time");
    let text = String::from_utf8_lossy(&buf);
    assert!(text.starts_with("HTTP/1.1 100 Continue\r\n"), "{text}");
}

/// Percent-encodes `text` for a URL query parameter (RFC 3986 unreserved characters stay as
/// they are).
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reads_content_length_chunked_and_until_eof() {
        let mut raw: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhiEXTRA";
        let r = read_response(&mut raw).await.expect("parsed");
        assert_eq!((r.status, r.body.as_slice()), (200, &b"hi"[..]));

        let mut raw: &[u8] =
            b"HTTP/1.1 202 Accepted\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n1;x\r\nd\r\n0\r\n\r\n";
        let r = read_response(&mut raw).await.expect("parsed");
        assert_eq!((r.status, r.text().as_str()), (202, "abcd"));
        assert_eq!(r.header("Transfer-Encoding"), Some("chunked"));

        let mut raw: &[u8] = b"HTTP/1.0 400 Bad\r\n\r\nall of it";
        assert_eq!(
            read_response(&mut raw).await.expect("parsed").text(),
            "all of it"
        );

        let mut raw: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhi";
        assert!(read_response(&mut raw).await.is_err());
    }

    #[test]
    fn requests_and_query_encoding() {
        assert_eq!(
            request_bytes("POST", "/p", &[("A", "1")], b"x"),
            b"POST /p HTTP/1.1\r\nHost: test\r\nConnection: close\r\nA: 1\r\n\r\nx"
        );
        assert_eq!(
            keep_alive_post(Some("application/json"), b"{}"),
            b"POST /logs HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n\
              Content-Length: 2\r\n\r\n{}"
        );
        assert_eq!(query_encode("a b/ü~"), "a%20b%2F%C3%BC~");
    }
}
