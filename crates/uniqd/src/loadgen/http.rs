//! The load generator's HTTP/1.1 client: one hyper client connection per worker, kept alive,
//! reopened after an error; plus a one-shot GET that reads a gauge from `/metrics`.

#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper::{Method, Request, Uri};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::exposition::sample_value;

/// A parsed `http://host:port/path` URL.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    authority: String,
    path: String,
}

impl Target {
    pub(crate) fn parse(url: &str) -> Result<Self, String> {
        let uri: Uri = url
            .parse()
            .map_err(|e| format!("invalid URL {url:?}: {e}"))?;
        if uri.scheme_str() != Some("http") {
            return Err(format!(
                "unsupported URL {url:?}: only http:// is supported"
            ));
        }
        let host = uri
            .host()
            .ok_or_else(|| format!("URL {url:?} has no host"))?;
        let port = uri.port_u16().unwrap_or(80);
        Ok(Self {
            authority: format!("{host}:{port}"),
            path: uri
                .path_and_query()
                .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned()),
        })
    }

    async fn resolve(&self) -> Result<SocketAddr, String> {
        tokio::net::lookup_host(&self.authority)
            .await
            .map_err(|e| format!("cannot resolve {}: {e}", self.authority))?
            .next()
            .ok_or_else(|| format!("{} resolves to no address", self.authority))
    }

    fn request<B>(
        &self,
        method: Method,
        token: Option<&str>,
        body: B,
    ) -> Result<Request<B>, String> {
        let mut builder = Request::builder()
            .method(method)
            .uri(self.path.as_str())
            .header(HOST, self.authority.as_str());
        if let Some(token) = token {
            builder = builder.header(AUTHORIZATION, format!("Bearer {token}"));
        }
        builder
            .body(body)
            .map_err(|e| format!("invalid request: {e}"))
    }
}

/// One kept-alive client connection.
pub(crate) struct Connection {
    sender: SendRequest<Full<Bytes>>,
}

impl Connection {
    pub(crate) async fn open(target: &Target) -> Result<Self, String> {
        let addr = target.resolve().await?;
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
        // Small requests: send each at once.
        let _ = stream.set_nodelay(true);
        let (sender, connection) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| format!("HTTP handshake with {addr} failed: {e}"))?;
        tokio::spawn(async move {
            // The connection ends when the server closes it or the sender is dropped; the next
            // request on it then fails and the worker reconnects.
            let _ = connection.await;
        });
        Ok(Self { sender })
    }

    /// POSTs `body` and returns the status once the whole answer is read.
    pub(crate) async fn post(
        &mut self,
        target: &Target,
        content_type: &'static str,
        token: Option<&str>,
        body: Bytes,
    ) -> Result<u16, String> {
        let mut request = target.request(Method::POST, token, Full::new(body))?;
        request.headers_mut().insert(
            CONTENT_TYPE,
            hyper::header::HeaderValue::from_static(content_type),
        );
        self.sender
            .ready()
            .await
            .map_err(|e| format!("connection lost: {e}"))?;
        let response = self
            .sender
            .send_request(request)
            .await
            .map_err(|e| format!("request failed: {e}"))?;
        let status = response.status().as_u16();
        response
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("reading the answer failed: {e}"))?;
        Ok(status)
    }
}

/// GETs `url` (a Prometheus text or OpenMetrics page) and returns the value of the sample
/// named `name` without labels.
pub(crate) async fn read_gauge(
    url: &str,
    name: &str,
    token: Option<&str>,
    timeout: Duration,
) -> Result<f64, String> {
    let target = Target::parse(url)?;
    let fetch = async {
        let addr = target.resolve().await?;
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
        let (mut sender, connection) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| format!("HTTP handshake with {addr} failed: {e}"))?;
        tokio::spawn(async move {
            // Ends with the response; errors surface through `send_request`.
            let _ = connection.await;
        });
        let request = target.request(Method::GET, token, Empty::<Bytes>::new())?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| format!("request failed: {e}"))?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("reading the answer failed: {e}"))?
            .to_bytes();
        if !status.is_success() {
            return Err(format!("HTTP status {}", status.as_u16()));
        }
        Ok::<_, String>(body)
    };
    let body = tokio::time::timeout(timeout, fetch)
        .await
        .map_err(|_| format!("no answer within {timeout:?}"))??;
    let text = std::str::from_utf8(&body).map_err(|_| "the page is not UTF-8".to_owned())?;
    sample_value(text, name).ok_or_else(|| format!("no sample {name} on the page"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_samples() {
        let t = Target::parse("http://localhost:5000/logs").expect("valid");
        assert_eq!(
            (t.authority.as_str(), t.path.as_str()),
            ("localhost:5000", "/logs")
        );
        let t = Target::parse("http://example.invalid").expect("valid");
        assert_eq!(
            (t.authority.as_str(), t.path.as_str()),
            ("example.invalid:80", "/")
        );
        assert!(Target::parse("https://x/").is_err());
        assert!(Target::parse("not a url").is_err());

        let page = "# TYPE unique_ip_addresses gauge\nunique_ip_addresses_window{w=\"1h\"} 3\n\
                    unique_ip_addresses 1234\n# EOF\n";
        assert_eq!(sample_value(page, "unique_ip_addresses"), Some(1234.0));
        assert_eq!(sample_value(page, "missing"), None);
    }
}
