//! Optional bearer-token authentication: `POST /logs` (`--ingest-token`),
//! `/metrics` (`--metrics-token`), the probes left open, tokens from the
//! environment and from files, tokens never appearing in logs or help, and
//! token settings that cannot work refusing to start.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::process::{run_to_exit, run_to_exit_env, Process, BIN};
use common::*;
use uniqd::AppConfig;
use uniqd_http::BearerTokens;

fn ingest_auth(tokens: &[&str]) -> AppConfig {
    let mut config = AppConfig::default();
    config.ingest.auth = Some(BearerTokens::new(tokens).unwrap());
    config
}

fn post_with_auth(authorization: Option<&str>, body: &str) -> Vec<u8> {
    let len = body.len().to_string();
    let mut headers = vec![
        ("Content-Type", "application/json"),
        ("Content-Length", len.as_str()),
    ];
    if let Some(value) = authorization {
        headers.push(("Authorization", value));
    }
    request_bytes("POST", "/logs", &headers, body.as_bytes())
}

#[tokio::test]
async fn ingest_needs_one_of_the_tokens() {
    let service = TestService::start_with(ingest_auth(&["alpha-1", "beta-2"])).await;
    for authorization in [
        None,
        Some("Bearer wrong"),
        Some("Bearer alpha-"),
        Some("Bearer alpha-1x"),
        Some("Basic YWxwaGEtMQ=="),
        Some("alpha-1"),
    ] {
        let r = send_raw(
            service.ingest,
            post_with_auth(authorization, &log_line("203.0.113.1")),
        )
        .await;
        let json = r.expect_error(401, "unauthorized");
        assert!(
            json["message"].as_str().unwrap().contains("Bearer"),
            "{json}"
        );
        assert_eq!(r.header("www-authenticate"), Some("Bearer realm=\"uniqd\""));
    }
    assert_eq!(service.unique().await, 0);
    // Either token works, the scheme in any case.
    for (i, authorization) in ["Bearer alpha-1", "bearer beta-2"].iter().enumerate() {
        let r = send_raw(
            service.ingest,
            post_with_auth(
                Some(authorization),
                &log_line(&format!("203.0.113.{}", i + 10)),
            ),
        )
        .await;
        assert_eq!(r.status, 202, "{}", r.text());
    }
    assert_eq!(service.unique().await, 2);
    assert_eq!(
        service
            .metric("uniqd_ingest_requests_total{outcome=\"unauthorized\"}")
            .await,
        6.0
    );
    service.stop().await;
}

#[tokio::test]
async fn unauthenticated_request_is_refused_before_its_body() {
    let service = TestService::start_with(ingest_auth(&["alpha-1"])).await;
    // Only the head of a 60 MiB upload: the 401 cannot have waited for it,
    // and is given before the size limit or the content type are looked at.
    let r = send_raw(
        service.ingest,
        request_bytes(
            "POST",
            "/logs",
            &[
                ("Content-Type", "text/plain"),
                ("Content-Length", "62914560"),
            ],
            b"",
        ),
    )
    .await;
    r.expect_error(401, "unauthorized");
    assert_eq!(r.header("connection"), Some("close"));
    service.stop().await;
}

#[tokio::test]
async fn metrics_token_guards_metrics_but_not_the_probes() {
    let mut config = AppConfig::default();
    config.exporter.metrics_auth = Some(BearerTokens::new(["scrape-token"]).unwrap());
    let service = TestService::start_with(config).await;
    // Ingest stays open: only /metrics was given a token.
    assert_eq!(
        post_json(service.ingest, &log_line("203.0.113.5"))
            .await
            .status,
        202
    );

    let r = get(service.metrics, "/metrics").await;
    r.expect_error(401, "unauthorized");
    assert_eq!(r.header("www-authenticate"), Some("Bearer realm=\"uniqd\""));
    let r = send_raw(
        service.metrics,
        request_bytes("GET", "/metrics", &[("Authorization", "Bearer nope")], b""),
    )
    .await;
    r.expect_error(401, "unauthorized");

    let r = send_raw(
        service.metrics,
        request_bytes(
            "GET",
            "/metrics",
            &[("Authorization", "Bearer scrape-token")],
            b"",
        ),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(sample_value(&r.text(), "unique_ip_addresses"), Some(1.0));
    for probe in ["/healthz", "/readyz"] {
        assert_eq!(get(service.metrics, probe).await.status, 200, "{probe}");
    }
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_from_env_and_file_and_never_logged() {
    let dir = TempDir::new("tokens");
    let file = dir.join("tokens");
    std::fs::write(&file, "# ingest tokens\nfile-token-3\n\n  file-token-4  \n").unwrap();
    let mut process = Process::spawn_env(
        &[
            "--ingest-token-file",
            file.to_str().unwrap(),
            "--log-level",
            "debug",
        ],
        &[
            ("UNIQD_INGEST_TOKEN", "env-token-1,env-token-2"),
            ("UNIQD_METRICS_TOKEN", "env-metrics-token"),
        ],
    );
    for token in ["env-token-1", "env-token-2", "file-token-3", "file-token-4"] {
        let r = send_raw(
            process.ingest,
            post_with_auth(Some(&format!("Bearer {token}")), &log_line("203.0.113.7")),
        )
        .await;
        assert_eq!(r.status, 202, "{token}: {}", r.text());
    }
    send_raw(
        process.ingest,
        post_with_auth(Some("Bearer env-metrics-token"), &log_line("203.0.113.8")),
    )
    .await
    .expect_error(401, "unauthorized");
    let r = send_raw(
        process.metrics,
        request_bytes(
            "GET",
            "/metrics",
            &[("Authorization", "Bearer env-metrics-token")],
            b"",
        ),
    )
    .await;
    assert_eq!(sample_value(&r.text(), "unique_ip_addresses"), Some(1.0));
    process.signal("TERM");
    let startup = std::mem::take(&mut process.startup);
    let (status, log) = process.wait();
    assert!(status.success());
    let all = [startup, log].concat().join("\n");
    assert!(all.contains("\"ingest_auth\":true"), "{all}");
    assert!(all.contains("\"metrics_auth\":true"), "{all}");
    assert!(!all.contains("-token"), "a token reached the log:\n{all}");
}

#[test]
fn help_does_not_show_token_values() {
    let output = std::process::Command::new(BIN)
        .arg("--help")
        .env("UNIQD_INGEST_TOKEN", "help-secret-1")
        .env("UNIQD_METRICS_TOKEN", "help-secret-2")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(help.contains("UNIQD_INGEST_TOKEN"), "{help}");
    assert!(!help.contains("help-secret"), "{help}");
}

#[test]
fn unusable_token_settings_refuse_to_start() {
    let dir = TempDir::new("bad-tokens");
    let empty = dir.join("empty");
    std::fs::write(&empty, "# nothing\n\n").unwrap();
    let missing = dir.join("missing");
    for (args, needle) in [
        (
            vec!["--ingest-token-file", empty.to_str().unwrap()],
            "--ingest-token-file / UNIQD_INGEST_TOKEN_FILE",
        ),
        (
            vec!["--metrics-token-file", missing.to_str().unwrap()],
            "cannot read --metrics-token-file",
        ),
        (
            vec!["--ingest-token", "has space"],
            "not a valid bearer token",
        ),
    ] {
        let output = run_to_exit(&args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
        assert!(!stderr.contains("has space"), "{stderr}");
    }
}

/// Arguments, environment variables, and the flag and variable the refusal must name.
type RefusedStart<'a> = (Vec<&'a str>, Vec<(&'a str, &'a str)>, &'a str, &'a str);

/// An empty or blank secret, by flag, by environment variable, as a member of a list, or as a
/// token file without tokens, refuses the start naming the setting (flag and environment
/// variable): it never turns authentication off.
#[test]
fn empty_secrets_refuse_to_start() {
    let dir = TempDir::new("empty-secrets");
    let comments = dir.join("comments");
    std::fs::write(&comments, "# rotate me\n   \n# nothing yet\n").unwrap();
    let blank_file = dir.join("blank");
    std::fs::write(&blank_file, "").unwrap();
    let comments = comments.to_str().unwrap();
    let blank_file = blank_file.to_str().unwrap();
    for (flag, env) in [
        ("--ingest-token", "UNIQD_INGEST_TOKEN"),
        ("--metrics-token", "UNIQD_METRICS_TOKEN"),
    ] {
        let file_flag = format!("{flag}-file");
        let file_env = format!("{env}_FILE");
        let cases: Vec<RefusedStart<'_>> = vec![
            (vec![flag, ""], vec![], flag, env),
            (vec![flag, "   "], vec![], flag, env),
            (vec![flag, "a-1,,b-2"], vec![], flag, env),
            (vec![flag, "a-1,"], vec![], flag, env),
            (vec![flag, "a-1", flag, ""], vec![], flag, env),
            (vec![], vec![(env, "")], flag, env),
            (vec![], vec![(env, "  ")], flag, env),
            (vec![], vec![(env, "a-1,,b-2")], flag, env),
            (vec![], vec![(env, " , ")], flag, env),
            (vec![], vec![(file_env.as_str(), "")], &file_flag, &file_env),
            (vec![&file_flag, comments], vec![], &file_flag, &file_env),
            (vec![&file_flag, blank_file], vec![], &file_flag, &file_env),
            (
                vec![],
                vec![(file_env.as_str(), comments)],
                &file_flag,
                &file_env,
            ),
        ];
        for (args, env_vars, names_flag, names_env) in cases {
            let output = run_to_exit_env(&args, &env_vars);
            let stderr = String::from_utf8_lossy(&output.stderr);
            // 1: refused by uniqd's configuration check; 2: an empty `*_FILE` variable, which
            // clap refuses as a usage error naming the flag.
            let code = output.status.code();
            assert!(
                code == Some(1) || (code == Some(2) && names_env.ends_with("_FILE")),
                "{args:?} {env_vars:?}: {code:?} {stderr}"
            );
            assert!(
                stderr.contains(names_flag) && (code == Some(2) || stderr.contains(names_env)),
                "{args:?} {env_vars:?} must name {names_flag} and {names_env}: {stderr}"
            );
            assert!(
                !stderr.contains("uniqd listening"),
                "{args:?} {env_vars:?}: {stderr}"
            );
        }
    }
}

/// With `--metrics-token`, every route of the metrics port's routing table needs the token
/// except the open ones (the probes and the status page's HTML shell): the list is read from
/// the exporter, so a route added later is covered without touching this test. Unknown paths
/// are protected too (401 before 404), and so are other methods.
#[tokio::test]
async fn every_metrics_route_but_the_open_ones_needs_the_token() {
    let mut config = AppConfig::default();
    config.exporter.metrics_auth = Some(BearerTokens::new(["scrape-token"]).unwrap());
    let service = TestService::start_with(config).await;
    assert_eq!(
        post_json(service.ingest, &log_line("203.0.113.9"))
            .await
            .status,
        202
    );
    let open = uniqd_exporter::OPEN_PATHS;
    let paths: Vec<&str> = uniqd_exporter::served_paths().collect();
    assert!(paths.len() >= 8, "{paths:?}");
    for path in &paths {
        let without = get(service.metrics, path).await;
        let wrong = send_raw(
            service.metrics,
            request_bytes("GET", path, &[("Authorization", "Bearer nope")], b""),
        )
        .await;
        let with = send_raw(
            service.metrics,
            request_bytes(
                "GET",
                path,
                &[("Authorization", "Bearer scrape-token")],
                b"",
            ),
        )
        .await;
        if open.contains(path) {
            assert_eq!(without.status, 200, "{path} is open: {}", without.text());
        } else {
            for r in [&without, &wrong] {
                r.expect_error(401, "unauthorized");
                assert_eq!(r.header("www-authenticate"), Some("Bearer realm=\"uniqd\""));
                assert!(!r.text().contains("203.0.113"), "{path}: {}", r.text());
            }
            let post = send_raw(
                service.metrics,
                request_bytes("POST", path, &[("Content-Length", "0")], b""),
            )
            .await;
            post.expect_error(401, "unauthorized");
        }
        assert_ne!(with.status, 401, "{path} with the token: {}", with.text());
    }
    // The open ones hold no count: the status page shell is static HTML.
    let page = get(service.metrics, "/").await;
    assert!(
        !page.text().contains("unique_ip_addresses\":"),
        "{}",
        page.text()
    );
    // Paths outside the table are protected too: a 404 only with the token.
    for path in ["/nope", "/metrics/", "/status.json/", "/api/v1/unique/x"] {
        get(service.metrics, path)
            .await
            .expect_error(401, "unauthorized");
        let r = send_raw(
            service.metrics,
            request_bytes(
                "GET",
                path,
                &[("Authorization", "Bearer scrape-token")],
                b"",
            ),
        )
        .await;
        assert_eq!(r.status, 404, "{path}");
    }
    service.stop().await;
}
