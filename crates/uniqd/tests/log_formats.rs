//! What gateways, ingress controllers and log shippers send, end to end with no flag: their own
//! field names (Kong `http-log`, APISIX `http-logger`, ingress-nginx JSON, Traefik, Envoy;
//! fixtures in `tests/fixtures/gateways`), the shippers' wire formats (Vector, Fluent Bit,
//! Fluentd, Logstash: content type, body shape, compression and their own fields around the
//! log; fixtures in `tests/fixtures/shippers`), the recipes in `docs/shippers.md`; addresses with ports and
//! forwarded lists (with and without `--trusted-proxies`), epoch and CLF timestamps in the
//! right time window, combined and common log format lines as `text/plain` with bad lines
//! reported by number; and configured field names.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::codec::{gzip, zstd};
use common::*;
use serde_json::Value as Json;
use uniqd::AppConfig;
use uniqd_ingest::fields::{FieldMap, TrustedProxies};

const MINUTE_MS: u64 = 60_000;

fn fixture(name: &str) -> String {
    let path = repo_path(format!("crates/uniqd/tests/fixtures/{name}"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// POSTs `body` to /logs as a shipper does: its content type, and compressed with `coding`
/// (`gzip`, `zstd`) or not.
async fn post_shipped(
    service: &TestService,
    content_type: &str,
    coding: Option<&str>,
    body: &[u8],
) -> HttpResponse {
    let body = match coding {
        Some("gzip") => gzip(body),
        Some("zstd") => zstd(body),
        Some(other) => unreachable!("{other}"),
        None => body.to_vec(),
    };
    let len = body.len().to_string();
    let mut headers = vec![("Content-Type", content_type), ("Content-Length", &len)];
    if let Some(coding) = coding {
        headers.push(("Content-Encoding", coding));
    }
    send_raw(
        service.ingest,
        request_bytes("POST", "/logs", &headers, &body),
    )
    .await
}

/// The elements of a fixture holding a JSON array, each as compact JSON text.
fn elements(array: &str) -> Vec<String> {
    let value: Json = serde_json::from_str(array).unwrap();
    value
        .as_array()
        .expect("an array")
        .iter()
        .map(Json::to_string)
        .collect()
}

async fn post_text(service: &TestService, body: &str) -> HttpResponse {
    post(service.ingest, "/logs", Some("text/plain"), body.as_bytes()).await
}

/// The paths of `/stats`, with their counts.
async fn pages(service: &TestService) -> Vec<(String, u64)> {
    let stats = get(service.metrics, "/stats").await.json();
    let mut pages: Vec<(String, u64)> = stats["pages"]
        .as_array()
        .expect("pages")
        .iter()
        .map(|p| {
            (
                p["path"].as_str().unwrap().to_owned(),
                p["count"].as_u64().unwrap(),
            )
        })
        .collect();
    pages.sort();
    pages
}

async fn window(service: &TestService, window: &str) -> u64 {
    let body: Json = get(service.metrics, &format!("/api/v1/unique?window={window}"))
        .await
        .json();
    body["unique_ip_addresses"].as_u64().expect("a count")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_logs_count_with_no_flag() {
    let service = TestService::start().await;
    for name in [
        "kong_http_log.json",
        "apisix_http_logger.json",
        "ingress_nginx.json",
        "traefik.json",
        "envoy.json",
    ] {
        let name = format!("gateways/{name}");
        let response = post_json(service.ingest, &fixture(&name)).await;
        assert_eq!(response.status, 202, "{name}: {}", response.text());
        // And as an NDJSON line.
        let line = fixture(&name).replace('\n', "");
        assert_eq!(
            post_ndjson(service.ingest, &line).await.status,
            202,
            "{name}"
        );
    }
    assert_eq!(service.unique().await, 5);
    assert_eq!(
        pages(&service).await,
        [
            ("/apisix/hello".to_owned(), 2),
            ("/envoy/status".to_owned(), 2),
            ("/kong/items".to_owned(), 2),
            ("/nginx/cart".to_owned(), 2),
            ("/traefik/whoami".to_owned(), 2),
        ]
    );
    service.stop().await;
}

/// Plain access-log files (nginx `combined`, Apache) tailed through the `nginx` / `apache2`
/// parsers of Fluent Bit and Fluentd: their `remote` and `path` are on the default lists, so
/// the records count with no flag (docs/shippers.md).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_log_files_parsed_by_the_shippers_count_with_no_flag() {
    let service = TestService::start().await;
    for name in ["fluent_bit_nginx_parser.json", "fluentd_nginx_parser.json"] {
        let response = post_json(service.ingest, &fixture(&format!("shippers/{name}"))).await;
        assert_eq!(response.status, 202, "{name}: {}", response.text());
        assert_eq!(response.json()["accepted"], 2, "{name}");
    }
    assert_eq!(service.unique().await, 4);
    assert_eq!(
        pages(&service).await,
        [
            ("/parsed/apache".to_owned(), 1),
            ("/parsed/nginx".to_owned(), 3),
        ]
    );
    service.stop().await;
}

/// Each shipper's HTTP output as `docs/shippers.md` configures it, its wire format replayed
/// from `tests/fixtures/shippers`: every log counted once per delivery, by the fields uniqd
/// reads among the shipper's own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shipper_batches_count_with_no_flag() {
    let service = TestService::start().await;
    let accepted = async |content_type: &str, coding: Option<&str>, body: &str, n: u64| {
        let response = post_shipped(&service, content_type, coding, body.as_bytes()).await;
        assert_eq!(response.status, 202, "{body}: {}", response.text());
        assert_eq!(response.json()["accepted"], n, "{body}");
    };

    // Vector, `http` sink, `encoding.codec = "json"`: a JSON array per batch, with
    // `compression = "gzip"` or `"zstd"`; the remap has made each event the access log.
    let vector = fixture("shippers/vector_http_json.json");
    accepted("application/json", Some("gzip"), &vector, 3).await;
    accepted("application/json", Some("zstd"), &vector, 3).await;
    // `encoding.codec = "text"`, newline-delimited framing: nginx's combined lines as read.
    let lines = fixture("shippers/vector_http_text.txt");
    accepted("text/plain", None, &lines, 3).await;

    // Fluent Bit, `http` output: `format json` (an array) with `compress gzip`,
    // `format json_stream` (concatenated objects, application/json), `format json_lines`
    // (NDJSON, application/x-ndjson since Fluent Bit 3.1, application/json before).
    let fluent_bit = fixture("shippers/fluent_bit_json.json");
    accepted("application/json", Some("gzip"), &fluent_bit, 3).await;
    let records = elements(&fluent_bit);
    accepted("application/json", None, &records.concat(), 3).await;
    let json_lines: String = records.iter().map(|r| format!("{r}\n")).collect();
    accepted("application/x-ndjson", None, &json_lines, 3).await;
    accepted("application/json", None, &json_lines, 3).await;

    // Fluentd, `out_http`: `json_array true` (application/json), else NDJSON
    // (application/x-ndjson), `compress gzip`.
    let fluentd = fixture("shippers/fluentd_json_array.json");
    accepted("application/json", None, &fluentd, 3).await;
    let ndjson: String = elements(&fluentd)
        .iter()
        .map(|r| format!("{r}\n"))
        .collect();
    accepted("application/x-ndjson", Some("gzip"), &ndjson, 3).await;

    // Logstash, `http` output: `format => "json_batch"` with `http_compression => true`, and
    // `format => "json"` (one event per request).
    let logstash = fixture("shippers/logstash_json_batch.json");
    accepted("application/json", Some("gzip"), &logstash, 3).await;
    for event in elements(&logstash) {
        accepted("application/json", None, &event, 1).await;
    }

    // Vector, Fluent Bit: 3 + 2 + 3; Fluentd, Logstash: 3 + 3.
    assert_eq!(service.unique().await, 14);
    assert_eq!(
        pages(&service).await,
        [
            ("/fluent-bit/a".to_owned(), 8),
            ("/fluent-bit/b".to_owned(), 4),
            ("/fluentd/a".to_owned(), 4),
            ("/fluentd/b".to_owned(), 2),
            ("/logstash/a".to_owned(), 2),
            ("/logstash/b".to_owned(), 4),
            ("/vector/a".to_owned(), 4),
            ("/vector/b".to_owned(), 2),
            ("/vector/text/a".to_owned(), 2),
            ("/vector/text/b".to_owned(), 1),
        ]
    );
    service.stop().await;
}

/// A shipper that forwards the access log unparsed, as a string in `message` (Vector's
/// `kubernetes_logs` source with no remap), sends no address uniqd reads: every element is
/// refused by index, nothing counts; `docs/shippers.md` says how to parse it in the shipper.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unparsed_access_log_string_is_refused() {
    let service = TestService::start().await;
    let body = fixture("shippers/vector_unparsed.json");
    let json = post_shipped(&service, "application/json", Some("gzip"), body.as_bytes())
        .await
        .expect_error(400, "invalid_elements");
    assert_eq!(json["accepted"], 0, "{json}");
    let errors: Vec<(u64, &str)> = json["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["index"].as_u64().unwrap(), e["error"].as_str().unwrap()))
        .collect();
    assert_eq!(errors, [(0, "missing_ip"), (1, "missing_ip")]);
    assert_eq!(service.unique().await, 0);
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ports_and_forwarded_lists_count_their_client() {
    let service = TestService::start().await;
    for (body, status) in [
        (r#"{"ip":"198.51.100.1:5678"}"#, 202),
        (r#"{"ip":"[2001:db8::1]:443"}"#, 202),
        (r#"{"ip":"198.51.100.2, 10.0.0.1"}"#, 202),
        (r#"{"ip":"198.51.100.2 , 10.0.0.2, 10.0.0.3"}"#, 202),
        (r#"{"ip":"1.2.3.4:99999"}"#, 400),
        (r#"{"ip":"[1.2.3.4]:80"}"#, 400),
        (r#"{"ip":"nope, 10.0.0.1"}"#, 400),
    ] {
        let response = post_json(service.ingest, body).await;
        assert_eq!(response.status, status, "{body}: {}", response.text());
        if status == 400 {
            response.expect_error(400, "invalid_ip");
        }
    }
    // The leftmost address of a list: 198.51.100.1, 2001:db8::1, 198.51.100.2.
    assert_eq!(service.unique().await, 3);
    service.stop().await;

    // With trusted proxies, the rightmost address not in them.
    let mut config = AppConfig::default();
    config.ingest.fields = FieldMap::standard()
        .clone()
        .with_trusted_proxies(TrustedProxies::parse("10.0.0.0/8").unwrap());
    let service = TestService::start_with(config).await;
    let batch = [
        // A client forging the start of the list is counted as where it came from.
        r#"{"ip":"1.1.1.1, 198.51.100.7, 10.0.0.1"}"#,
        r#"{"ip":"6.6.6.6, 198.51.100.7, 10.0.0.2, 10.1.1.1"}"#,
        // All trusted: the leftmost.
        r#"{"ip":"10.0.0.5, 10.0.0.1"}"#,
        r#"{"ip":"198.51.100.8"}"#,
    ]
    .join("\n");
    let response = post_ndjson(service.ingest, &batch).await;
    assert_eq!(response.status, 202, "{}", response.text());
    assert_eq!(service.unique().await, 3);
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn epoch_and_clf_times_land_in_their_window() {
    let service = TestService::start().await;
    // Four minutes back: within the 5m skew, outside the last minute.
    let back = now_ms() - 4 * MINUTE_MS;
    let clf_time = {
        // UTC, as nginx's $time_local with TZ=UTC.
        let (year, month, day, rest_ms) = civil_utc(back);
        let names = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ];
        let rest = rest_ms / 1000;
        format!(
            "{day:02}/{}/{year}:{:02}:{:02}:{:02} +0000",
            names[(month - 1) as usize],
            rest / 3600,
            rest / 60 % 60,
            rest % 60
        )
    };
    let batch = [
        // Kong: epoch milliseconds as a number.
        format!(r#"{{"client_ip":"192.0.2.1","started_at":{back}}}"#),
        // Fluent Bit: epoch seconds with a fraction.
        format!(
            r#"{{"ip":"192.0.2.2","date":{}.{:03}}}"#,
            back / 1000,
            back % 1000
        ),
        // Epoch microseconds as a string.
        format!(r#"{{"ip":"192.0.2.3","timestamp":"{}000"}}"#, back),
        // nginx's $time_local.
        format!(r#"{{"remote_addr":"192.0.2.4","time_local":"{clf_time}"}}"#),
    ]
    .join("\n");
    let response = post_ndjson(service.ingest, &batch).await;
    assert_eq!(response.status, 202, "{}", response.text());
    let line = format!(r#"192.0.2.5 - - [{clf_time}] "GET /a HTTP/1.1" 200 5"#);
    assert_eq!(post_text(&service, &line).await.status, 202);
    assert_eq!(service.unique().await, 5);
    assert_eq!(window(&service, "5m").await, 5);
    assert_eq!(window(&service, "1m").await, 0);
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_log_lines_as_text_plain() {
    let service = TestService::start().await;
    let body = "\
203.0.113.9 - - [10/Oct/2000:13:55:36 -0700] \"GET /a?x=1 HTTP/1.0\" 200 2326 \"-\" \"curl/8\"\r
203.0.113.10 - frank [10/Oct/2000:13:55:36 -0700] \"POST /b HTTP/1.1\" 201 -\n\
\n\
2001:db8::9 - - [10/Oct/2000:13:55:36 +0000] \"GET /a HTTP/2.0\" 200 1 \"https://ex.com/\" \"UA\" \"198.51.100.1\"\n";
    let response = post_text(&service, body).await;
    assert_eq!(response.status, 202, "{}", response.text());
    assert_eq!(response.json()["accepted"], 3);
    assert_eq!(service.unique().await, 3);
    assert_eq!(
        pages(&service).await,
        [("/a".to_owned(), 2), ("/b".to_owned(), 1)]
    );

    // A bad line is reported by number; the good ones count.
    let body = "\
198.51.100.20 - - [10/Oct/2000:13:55:36 -0700] \"GET /c HTTP/1.1\" 200 1\n\
{\"ip\":\"198.51.100.21\"}\n\
198.51.100.22 - - [10/Oct/2000:13:55:36 -0700] \"GET /c HTTP/1.1\" 200\n\
999.1.1.1 - - [10/Oct/2000:13:55:36 -0700] \"GET /c HTTP/1.1\" 200 1\n\
198.51.100.23 - - [10/Oct/2000:13:55:36 -0700] \"GET /c HTTP/1.1\" 200 1";
    let response = post_text(&service, body).await;
    let json = response.expect_error(400, "invalid_lines");
    assert_eq!(
        (json["accepted"].clone(), json["rejected"].clone()),
        (2.into(), 3.into())
    );
    let errors = json["errors"].as_array().unwrap();
    let lines: Vec<(u64, &str)> = errors
        .iter()
        .map(|e| (e["line"].as_u64().unwrap(), e["error"].as_str().unwrap()))
        .collect();
    assert_eq!(
        lines,
        [
            (2, "invalid_log_line"),
            (3, "invalid_log_line"),
            (4, "invalid_ip")
        ]
    );
    let message = errors[1]["message"].as_str().unwrap();
    assert!(message.contains("at byte 68"), "{message}");
    assert_eq!(service.unique().await, 5);
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configured_field_names_replace_the_defaults() {
    let mut config = AppConfig::default();
    config.ingest.fields = FieldMap::new(&["src.addr", "peer"], &["req.path"], &["ts"]).unwrap();
    let service = TestService::start_with(config).await;
    let batch = [
        r#"{"src":{"addr":"192.0.2.1"},"peer":"192.0.2.99","req":{"path":"/x"}}"#,
        r#"{"peer":"192.0.2.2","req":{"path":"/x"}}"#,
        // uniqd's own name is not on the list any more.
        r#"{"ip":"192.0.2.3"}"#,
    ]
    .join("\n");
    let json = post_ndjson(service.ingest, &batch)
        .await
        .expect_error(400, "invalid_lines");
    assert_eq!(json["accepted"], 2);
    assert_eq!(json["errors"][0]["error"], "missing_ip");
    assert_eq!(service.unique().await, 2);
    assert_eq!(pages(&service).await, [("/x".to_owned(), 2)]);
    service.stop().await;
}
