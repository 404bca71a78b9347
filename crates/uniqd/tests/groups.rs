//! Per-group counts end to end (issue 21): the built binary with `--group-by host` and a small
//! `--max-groups`, fed NDJSON over HTTP and JSON logs over syslog UDP; the gauge
//! `unique_ip_addresses_by_group{group}` (tracked groups and `__other__`, never more label
//! values than the bound), `/api/v1/groups`, `/api/v1/unique?group=NAME` and their errors; the
//! groups saved in the state file and loaded back after a SIGTERM (and folded into `__other__`
//! when `--max-groups` shrinks); and nothing of it without `--group-by`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;

use common::process::Process;
use common::*;
use tokio::net::UdpSocket;

fn line(ip: &str, host: Option<&str>) -> String {
    match host {
        Some(host) => format!(r#"{{"ip":"{ip}","host":"{host}","url":"/"}}"#),
        None => format!(r#"{{"ip":"{ip}","url":"/"}}"#),
    }
}

fn group_sample(text: &str, group: &str) -> Option<f64> {
    sample_value(
        text,
        &format!("unique_ip_addresses_by_group{{group=\"{group}\"}}"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_counts_groups_from_ndjson_and_syslog() {
    let uniqd = Process::spawn(&[
        "--group-by",
        "host",
        "--max-groups",
        "3",
        "--syslog-listen",
        "udp://127.0.0.1:0",
    ]);
    let listening: serde_json::Value =
        serde_json::from_str(uniqd.startup.last().expect("the listening line")).unwrap();
    let syslog: SocketAddr = listening["syslog"]
        .as_str()
        .and_then(|a| a.strip_prefix("udp://"))
        .expect("the syslog address")
        .parse()
        .unwrap();

    // Over HTTP: a 10 addresses, b 5, c 3 take the three slots; two logs without a host
    // count toward the total only; d's one line then finds no free slot and too little
    // traffic to take one: __other__.
    let mut body = String::new();
    for (group, n, base) in [("a", 10, 0), ("b", 5, 20), ("c", 3, 40)] {
        for i in 0..n {
            body += &line(&format!("192.0.2.{}", base + i), Some(group));
            body += "\n";
        }
    }
    body += &(line("198.51.100.1", None) + "\n" + &line("198.51.100.2", None) + "\n");
    body += &(line("203.0.113.9", Some("d")) + "\n");
    let r = post_ndjson(uniqd.ingest, &body).await;
    assert_eq!(r.status, 202, "{}", r.text());

    // Over syslog: three more addresses of b, in the JSON log each message carries.
    let sender = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    for i in 0..3 {
        let log = line(&format!("192.0.2.{}", 60 + i), Some("b"));
        let message = format!("<190>Dec  7 16:37:52 web1 nginx: {log}");
        sender.send_to(message.as_bytes(), syslog).await.unwrap();
    }
    poll_until("every log counted", async || {
        let text = get(uniqd.metrics, "/metrics").await.text();
        match sample_value(&text, "unique_ip_addresses") {
            Some(24.0) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;

    let r = get_openmetrics(uniqd.metrics).await;
    let text = r.text();
    assert_valid_openmetrics(&text);
    assert_promtool_clean(&get(uniqd.metrics, "/metrics").await.text());
    for (group, want) in [("a", 10.0), ("b", 8.0), ("c", 3.0), ("__other__", 1.0)] {
        assert_eq!(group_sample(&text, group), Some(want), "{group}: {text}");
    }
    let labels = text
        .lines()
        .filter(|l| l.starts_with("unique_ip_addresses_by_group{"))
        .count();
    assert_eq!(labels, 4, "at most --max-groups + 1 label values: {text}");

    let groups: serde_json::Value =
        serde_json::from_str(&get(uniqd.metrics, "/api/v1/groups").await.text()).unwrap();
    assert_eq!(groups["max_groups"], 3);
    let names: Vec<&str> = groups["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["group"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a", "b", "c"], "{groups}");
    assert_eq!(groups["other"]["unique_ip_addresses"], 1);

    let one: serde_json::Value =
        serde_json::from_str(&get(uniqd.metrics, "/api/v1/unique?group=b").await.text()).unwrap();
    assert_eq!(one["group"], "b");
    assert_eq!(one["unique_ip_addresses"], 8);
    assert_eq!(one["exact"], true);
    get(uniqd.metrics, "/api/v1/unique?group=d")
        .await
        .expect_error(404, "group_not_tracked");
    get(uniqd.metrics, "/api/v1/unique?group=a&window=5m")
        .await
        .expect_error(400, "group_windows_unsupported");
    get(uniqd.metrics, "/api/v1/unique?group=")
        .await
        .expect_error(400, "invalid_group");
    // The time windows are untouched by the group parameter's absence.
    assert_eq!(
        get(uniqd.metrics, "/api/v1/unique?window=5m").await.status,
        200
    );

    uniqd.signal("TERM");
    let (status, _) = uniqd.wait();
    assert!(status.success(), "{status}");
}

/// Every `unique_ip_addresses_by_group` sample of a scrape, sorted.
async fn group_gauges(metrics: SocketAddr) -> Vec<(String, f64)> {
    let text = get(metrics, "/metrics").await.text();
    let mut gauges: Vec<(String, f64)> = text
        .lines()
        .filter_map(|l| l.strip_prefix("unique_ip_addresses_by_group{group=\""))
        .filter_map(|l| {
            let (group, value) = l.split_once("\"} ")?;
            Some((group.to_owned(), value.trim().parse().ok()?))
        })
        .collect();
    gauges.sort_by(|a, b| a.0.cmp(&b.0));
    gauges
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_survive_a_restart_through_the_state_file() {
    let dir = TempDir::new("groups-state");
    let state = dir.join("uniqd.state");
    let state_arg = state.to_str().unwrap();
    // Threshold 8: a (20 addresses) is a sketch, b (5) and c (3) are exact.
    let flags = |max: &'static str| {
        [
            "--state-file",
            state_arg,
            "--group-by",
            "host",
            "--max-groups",
            max,
            "--exact-threshold",
            "8",
        ]
    };
    let first = Process::spawn(&flags("3"));
    let mut body = String::new();
    for (group, n, base) in [("a", 20, 0), ("b", 5, 30), ("c", 3, 40), ("d", 1, 50)] {
        for i in 0..n {
            body += &line(&format!("192.0.2.{}", base + i), Some(group));
            body += "\n";
        }
    }
    let r = post_ndjson(first.ingest, &body).await;
    assert_eq!(r.status, 202, "{}", r.text());
    let before = group_gauges(first.metrics).await;
    let names: Vec<&str> = before.iter().map(|(g, _)| g.as_str()).collect();
    assert_eq!(names, ["__other__", "a", "b", "c"], "{before:?}");
    first.signal("TERM");
    let (status, log) = first.wait();
    assert!(status.success(), "{status:?} {log:#?}");

    // Same flags: every per-group gauge is what it was.
    let second = Process::spawn(&flags("3"));
    assert_eq!(group_gauges(second.metrics).await, before);
    // Known addresses change nothing; the groups go on counting.
    let r = post_ndjson(second.ingest, &body).await;
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(group_gauges(second.metrics).await, before);
    second.signal("TERM");
    assert!(second.wait().0.success());

    // Fewer slots: the largest groups keep theirs, c is folded into __other__ (d and c).
    let third = Process::spawn(&flags("2"));
    let after = group_gauges(third.metrics).await;
    let value = |gauges: &[(String, f64)], name: &str| {
        gauges.iter().find(|(g, _)| g == name).map(|(_, v)| *v)
    };
    assert_eq!(value(&after, "a"), value(&before, "a"));
    assert_eq!(value(&after, "b"), value(&before, "b"));
    assert_eq!(value(&after, "c"), None);
    assert_eq!(value(&after, "__other__"), Some(4.0), "{after:?}");
    third.signal("TERM");
    assert!(third.wait().0.success());
}

#[tokio::test]
async fn without_group_by_there_are_no_groups() {
    let service = TestService::start().await;
    let r = post_json(service.ingest, &line("192.0.2.1", Some("a"))).await;
    assert_eq!(r.status, 202);
    assert!(!service
        .scrape()
        .await
        .contains("unique_ip_addresses_by_group"));
    get(service.metrics, "/api/v1/groups")
        .await
        .expect_error(404, "groups_disabled");
    get(service.metrics, "/api/v1/unique?group=a")
        .await
        .expect_error(404, "groups_disabled");
    service.stop().await;
}

#[test]
fn bad_group_flags_are_usage_errors() {
    for args in [
        &["--group-by", ""][..],
        &["--group-by", "a..b"],
        &["--group-by", "host", "--max-groups", "0"],
        &["--group-by", "host", "--max-groups", "10001"],
    ] {
        let out = common::process::run_to_exit(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
}
