//! `docs/openapi.yaml` against the running service: every example in it is
//! sent, and the answer must have the documented status, `Content-Type`,
//! constant headers and body. How an example becomes a request, and how
//! bodies are compared, is described in the document's `info.description`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use serde_json::Value as Json;
use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpStream;

const METHODS: [&str; 7] = ["get", "put", "post", "delete", "options", "head", "patch"];

/// The token the example service requires on `/logs` and `/metrics`; every
/// example request carries it unless it sets `Authorization` itself.
const EXAMPLE_TOKEN: &str = "example-token";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_example_gets_the_documented_answer() {
    let spec = read_yaml("docs/openapi.yaml");
    assert_eq!(spec["openapi"], "3.1.0");
    assert_eq!(spec["info"]["version"], uniqd::VERSION, "info.version");
    let cases = cases(&spec);
    let statuses: Vec<u16> = cases.iter().map(|c| c.status).collect();
    for status in [202, 400, 401, 404, 405, 408, 413, 415, 200, 503] {
        assert!(statuses.contains(&status), "no example answers {status}");
    }

    let mut config = uniqd::AppConfig::default();
    config.ingest.server.body_read_timeout = Duration::from_millis(200);
    let tokens = uniqd_http::BearerTokens::new([EXAMPLE_TOKEN]).unwrap();
    config.ingest.auth = Some(tokens.clone());
    config.exporter.metrics_auth = Some(tokens);
    // Per-group counts on, so that their endpoints answer (no example log has a host).
    config.groups = Some(uniqd::GroupsConfig::by("host"));
    let service = TestService::start_with(config).await;
    for case in cases.iter().filter(|c| !c.draining) {
        let addr = case.port.pick(&service);
        let response = send_raw(addr, case.request_bytes()).await;
        case.check(&response);
    }
    service.stop().await;

    for case in cases.iter().filter(|c| c.draining) {
        let response = while_draining(case).await;
        case.check(&response);
    }
}

/// Which of the two listeners a path is served on (from its `servers`).
#[derive(Debug, Clone, Copy)]
enum Port {
    Ingest,
    Metrics,
}

impl Port {
    fn of(path_item: &Json, path: &str) -> Self {
        let url = path_item["servers"][0]["url"]
            .as_str()
            .unwrap_or_else(|| panic!("{path}: no servers[0].url"));
        match url.rsplit(':').next() {
            Some("5000") => Self::Ingest,
            Some("9102") => Self::Metrics,
            _ => panic!("{path}: server {url} is neither the ingest nor the metrics port"),
        }
    }

    fn pick(self, service: &TestService) -> SocketAddr {
        match self {
            Self::Ingest => service.ingest,
            Self::Metrics => service.metrics,
        }
    }
}

/// One response example and the request that must produce it.
#[derive(Debug)]
struct Case {
    name: String,
    port: Port,
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// Send the head and `body`, then nothing more.
    stall: bool,
    /// Ask while the service drains after a shutdown signal.
    draining: bool,
    status: u16,
    media_type: String,
    /// Documented response headers with a constant value.
    const_headers: Vec<(String, String)>,
    expected: Json,
    live_numbers: bool,
}

impl Case {
    fn request_bytes(&self) -> Vec<u8> {
        let length = self.body.len().to_string();
        let mut headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        if !headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            && (self.method == "POST" || !self.body.is_empty())
        {
            headers.push(("Content-Length", &length));
        }
        let authorization = format!("Bearer {EXAMPLE_TOKEN}");
        if !headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("authorization"))
        {
            headers.push(("Authorization", &authorization));
        }
        request_bytes(&self.method, &self.path, &headers, &self.body)
    }

    fn check(&self, response: &HttpResponse) {
        let name = &self.name;
        assert_eq!(response.status, self.status, "{name}: {}", response.text());
        let content_type = response.header("content-type").unwrap_or_default();
        let matches = if self.media_type.contains(';') {
            content_type == self.media_type
        } else {
            content_type.split(';').next() == Some(self.media_type.as_str())
        };
        assert!(
            matches,
            "{name}: Content-Type {content_type:?}, documented {:?}",
            self.media_type
        );
        for (header, value) in &self.const_headers {
            assert_eq!(response.header(header), Some(value.as_str()), "{name}");
        }
        if self.media_type.starts_with("application/json") {
            let actual: Json = serde_json::from_slice(&response.body)
                .unwrap_or_else(|e| panic!("{name}: not JSON ({e}): {}", response.text()));
            assert!(
                json_matches(&self.expected, &actual, self.live_numbers),
                "{name}: the answer differs from the documented example\n  documented: {}\n  \
                 answered:   {actual}",
                self.expected
            );
        } else {
            let text = response.text();
            let normalize = |line: &str| {
                let line = line.trim();
                if self.live_numbers {
                    any_number(line)
                } else {
                    line.to_owned()
                }
            };
            let lines: Vec<String> = text.lines().map(normalize).collect();
            let example = self.expected.as_str().expect("a text example is a string");
            for line in example.lines().filter(|l| !l.trim().is_empty()) {
                assert!(
                    lines.contains(&normalize(line)),
                    "{name}: the answer has no line {line:?}:\n{text}"
                );
            }
        }
    }
}

/// Every response example of the document, with its request.
fn cases(spec: &Json) -> Vec<Case> {
    let mut cases = Vec::new();
    for (path, item) in spec["paths"].as_object().expect("paths") {
        let port = Port::of(item, path);
        for (method, op) in item.as_object().unwrap() {
            if !METHODS.contains(&method.as_str()) {
                continue;
            }
            let requests = request_examples(op);
            let mut used: BTreeMap<&str, usize> = BTreeMap::new();
            for (status, response) in op["responses"].as_object().expect("responses") {
                let response = resolve(spec, response);
                let Some(content) = response.get("content").and_then(Json::as_object) else {
                    continue;
                };
                let const_headers = const_headers(response);
                for (media_type, media) in content {
                    let examples = media["examples"].as_object();
                    assert!(
                        examples.is_some_and(|e| !e.is_empty()),
                        "{method} {path} {status} {media_type}: no example"
                    );
                    for (name, example) in examples.unwrap() {
                        let mut case = Case {
                            name: format!(
                                "{} {path} -> {status} example {name:?}",
                                method.to_uppercase()
                            ),
                            port,
                            method: method.to_uppercase(),
                            path: path.clone(),
                            headers: Vec::new(),
                            body: Vec::new(),
                            stall: false,
                            draining: false,
                            status: status.parse().expect("a numeric status"),
                            media_type: media_type.clone(),
                            const_headers: const_headers.clone(),
                            expected: example["value"].clone(),
                            live_numbers: example["x-live-numbers"] == true,
                        };
                        if let Some(request) = example.get("x-request") {
                            apply_x_request(&mut case, request);
                        } else if op.get("requestBody").is_none() {
                            // The operation's plain request, e.g. `GET /healthz`.
                        } else {
                            let (request_media, value) =
                                requests.get(name.as_str()).unwrap_or_else(|| {
                                    panic!(
                                        "{}: no request example of this name and no x-request",
                                        case.name
                                    )
                                });
                            *used.entry(name.as_str()).or_default() += 1;
                            case.headers
                                .push(("Content-Type".to_owned(), request_media.clone()));
                            case.body = match value {
                                Json::String(raw) => raw.clone().into_bytes(),
                                other => other.to_string().into_bytes(),
                            };
                        }
                        cases.push(case);
                    }
                }
            }
            for name in requests.keys() {
                assert_eq!(
                    used.get(name.as_str()).copied().unwrap_or(0),
                    1,
                    "{method} {path}: request example {name:?} must name exactly one response example"
                );
            }
        }
    }
    cases
}

/// `name -> (media type, value)` of an operation's request body examples.
fn request_examples(op: &Json) -> BTreeMap<String, (String, Json)> {
    let mut examples = BTreeMap::new();
    for (media_type, media) in op["requestBody"]["content"]
        .as_object()
        .into_iter()
        .flatten()
    {
        for (name, example) in media["examples"].as_object().into_iter().flatten() {
            let previous =
                examples.insert(name.clone(), (media_type.clone(), example["value"].clone()));
            assert!(
                previous.is_none(),
                "request example {name:?} is listed twice"
            );
        }
    }
    examples
}

fn apply_x_request(case: &mut Case, request: &Json) {
    if let Some(method) = request["method"].as_str() {
        case.method = method.to_owned();
    }
    if let Some(path) = request["path"].as_str() {
        case.path = path.to_owned();
    }
    for (name, value) in request["headers"].as_object().into_iter().flatten() {
        let value = value
            .as_str()
            .unwrap_or_else(|| panic!("{}: header {name} is not a string", case.name));
        case.headers.push((name.clone(), value.to_owned()));
    }
    if let Some(body) = request["body"].as_str() {
        case.body = body.as_bytes().to_vec();
    }
    case.stall = request["stall"] == true;
    case.draining = request["draining"] == true;
    if case.stall {
        assert!(
            case.headers
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case("content-length")),
            "{}: a stalled request needs a Content-Length larger than its body",
            case.name
        );
    }
}

/// Follows a `$ref` into `#/components/...`.
fn resolve<'a>(spec: &'a Json, value: &'a Json) -> &'a Json {
    match value["$ref"].as_str() {
        Some(pointer) => spec
            .pointer(pointer.trim_start_matches('#'))
            .unwrap_or_else(|| panic!("dangling $ref {pointer}")),
        None => value,
    }
}

/// Documented response headers whose schema is a `const`.
fn const_headers(response: &Json) -> Vec<(String, String)> {
    response["headers"]
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(name, header)| {
            Some((name.clone(), header["schema"]["const"].as_str()?.to_owned()))
        })
        .collect()
}

/// `expected` and `actual` are the same JSON, except that with
/// `live_numbers` any number matches any number.
fn json_matches(expected: &Json, actual: &Json, live_numbers: bool) -> bool {
    match (expected, actual) {
        (Json::Number(_), Json::Number(_)) if live_numbers => true,
        (Json::Object(e), Json::Object(a)) => {
            e.len() == a.len()
                && e.iter()
                    .all(|(k, v)| a.get(k).is_some_and(|av| json_matches(v, av, live_numbers)))
        }
        (Json::Array(e), Json::Array(a)) => {
            e.len() == a.len()
                && e.iter()
                    .zip(a)
                    .all(|(ev, av)| json_matches(ev, av, live_numbers))
        }
        _ => expected == actual,
    }
}

/// `text` with every number (a run of digits and dots) replaced by `0`.
fn any_number(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_number = false;
    for c in text.chars() {
        let numeric = c.is_ascii_digit() || (in_number && c == '.');
        if numeric && !in_number {
            out.push('0');
        } else if !numeric {
            out.push(c);
        }
        in_number = numeric;
    }
    out
}

/// Sends `case` to a service that is draining: an ingest request is kept
/// in flight (its body never completes) so the drain lasts, shutdown is
/// triggered, and the request is sent once `/readyz` reports the drain.
async fn while_draining(case: &Case) -> HttpResponse {
    let mut service = TestService::start().await;
    let mut in_flight = TcpStream::connect(service.ingest).await.unwrap();
    in_flight
        .write_all(&request_bytes(
            "POST",
            "/logs",
            &[
                ("Content-Type", "application/x-ndjson"),
                ("Content-Length", "1000"),
                ("Expect", "100-continue"),
            ],
            b"",
        ))
        .await
        .unwrap();
    expect_continue(&mut in_flight).await;
    service.trigger_shutdown();
    poll_until("/readyz to turn 503 after shutdown", async || {
        get(service.metrics, "/readyz").await.status == 503
    })
    .await;
    let response = send_raw(case.port.pick(&service), case.request_bytes()).await;
    drop(in_flight);
    service.join().await.expect("serve returned an error");
    response
}

#[test]
fn any_number_replaces_numbers_only() {
    assert_eq!(
        any_number(r#"x_bucket{le="0.0001"} 12"#),
        r#"x_bucket{le="0"} 0"#
    );
    assert_eq!(any_number("version=\"0.1.0\" +Inf"), "version=\"0\" +Inf");
    assert_eq!(any_number("a.b 3."), "a.b 0");
}

#[test]
fn live_numbers_match_any_number_but_nothing_else() {
    let documented = serde_json::json!({"status": "ready", "uptime_seconds": 42});
    let answered = serde_json::json!({"status": "ready", "uptime_seconds": 0});
    assert!(json_matches(&documented, &answered, true));
    assert!(!json_matches(&documented, &answered, false));
    let other = serde_json::json!({"status": "draining", "uptime_seconds": 0});
    assert!(!json_matches(&documented, &other, true));
    let extra = serde_json::json!({"status": "ready", "uptime_seconds": 0, "x": 1});
    assert!(!json_matches(&documented, &extra, true));
}
