//! [`build`](super::build) without sockets: which collectors the registry holds for which
//! configuration, and that ingest and the exporter share one `Views` value.

use std::sync::Arc;

use prometheus_client::registry::Registry;
use uniqd_exporter::ReadyState;
use uniqd_testkit::TempDir;

use super::build;
use crate::config::AppConfig;
use crate::persistence::StateConfig;
use crate::redis_sync::config::RedisConfig;

fn scrape(registry: &Registry) -> String {
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, registry).expect("encodes");
    text
}

#[tokio::test]
async fn with_windows_off_there_is_no_window_collector() {
    let parts = build(AppConfig {
        windows: None,
        ..AppConfig::default()
    })
    .await
    .expect("builds");
    assert!(parts.views().windows().is_none());
    let text = scrape(parts.registry());
    assert!(!text.contains("unique_ip_addresses_window"), "{text}");
    assert!(text.contains("unique_ip_addresses "), "{text}");
    assert!(text.contains("uniqd_build_info{"), "{text}");

    // The default configuration has windows, and their gauges.
    let parts = build(AppConfig::default()).await.expect("builds");
    assert!(parts.views().windows().is_some());
    let text = scrape(parts.registry());
    assert!(
        text.contains("unique_ip_addresses_window{window=\"5m\"}"),
        "{text}"
    );
}

#[tokio::test]
async fn the_optional_collectors_come_with_their_parts() {
    let parts = build(AppConfig::default()).await.expect("builds");
    assert!(!parts.saves_state());
    assert!(!parts.syncs_redis());
    let text = scrape(parts.registry());
    assert!(!text.contains("uniqd_state_"), "{text}");
    assert!(!text.contains("uniqd_redis_"), "{text}");

    let dir = TempDir::new("app-build");
    let config = AppConfig {
        state: Some(StateConfig {
            path: dir.path().join("state"),
            interval: std::time::Duration::from_secs(60),
            reset_on_error: false,
            drop_windows: false,
        }),
        // Redis is not contacted by `build`: nothing listens on this port.
        redis: Some(RedisConfig::new("redis://127.0.0.1:1/")),
        ..AppConfig::default()
    };
    let parts = build(config).await.expect("builds");
    assert!(parts.saves_state());
    assert!(parts.syncs_redis());
    let text = scrape(parts.registry());
    assert!(text.contains("uniqd_state_save_failures_total"), "{text}");
    assert!(text.contains("uniqd_redis_up"), "{text}");
    // With a shared count, this replica's own count is exported beside it.
    assert!(text.contains("uniqd_local_unique_ip_addresses"), "{text}");
    // `build` wrote the state file once, so a path that cannot be written fails the start.
    assert!(dir.path().join("state").exists());
}

#[tokio::test]
async fn ingest_and_the_exporter_share_one_views_value() {
    let parts = build(AppConfig::default()).await.expect("builds");
    let exported = parts.exported().views();
    assert!(Arc::ptr_eq(parts.views().counter(), exported.counter()));
    let (Some(ours), Some(theirs)) = (parts.views().windows(), exported.windows()) else {
        panic!("windows are on by default");
    };
    assert!(Arc::ptr_eq(ours, theirs));
    let (Some(ours), Some(theirs)) = (parts.views().top_pages(), exported.top_pages()) else {
        panic!("top pages are on by default");
    };
    assert!(Arc::ptr_eq(ours, theirs));

    // What ingest records, /metrics reads.
    parts
        .views()
        .counter()
        .insert_str("192.0.2.1")
        .expect("valid");
    assert!(
        scrape(parts.registry()).contains("\nunique_ip_addresses 1\n"),
        "the registry reads the same counter"
    );
    assert_eq!(parts.readiness().get(), ReadyState::Starting);
}

#[tokio::test]
async fn an_invalid_config_builds_nothing() {
    let error = build(AppConfig {
        exact_threshold: usize::MAX,
        ..AppConfig::default()
    })
    .await
    .expect_err("invalid");
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput);
}

#[tokio::test]
async fn the_syslog_collector_comes_with_syslog_on() {
    let parts = build(AppConfig::default()).await.expect("builds");
    assert!(!scrape(parts.registry()).contains("uniqd_syslog_"));
    let config = AppConfig {
        syslog: Some(crate::config::SyslogSettings {
            listen: vec!["udp://127.0.0.1:5140".parse().expect("valid")],
            receive_buffer: None,
            limits: uniqd_ingest::syslog::SyslogConfig::default(),
        }),
        ..AppConfig::default()
    };
    let parts = build(config).await.expect("builds");
    let text = scrape(parts.registry());
    assert!(
        text.contains("uniqd_syslog_messages_total{transport=\"udp\",outcome=\"accepted\"} 0"),
        "{text}"
    );
    assert!(
        text.contains("uniqd_syslog_tcp_connections_total 0"),
        "{text}"
    );
}

#[tokio::test]
async fn groups_come_with_group_by_and_reach_both_transports() {
    let parts = build(AppConfig::default()).await.expect("builds");
    assert!(parts.views().groups().is_none());
    assert!(parts.config().ingest.fields.group_by().is_none());
    assert!(!scrape(parts.registry()).contains("unique_ip_addresses_by_group"));

    let parts = build(AppConfig {
        groups: Some(crate::config::GroupsConfig {
            field: "kubernetes.namespace".to_owned(),
            max_groups: 7,
        }),
        syslog: Some(crate::config::SyslogSettings {
            listen: vec!["udp://127.0.0.1:5140".parse().expect("valid")],
            receive_buffer: None,
            limits: uniqd_ingest::syslog::SyslogConfig::default(),
        }),
        ..AppConfig::default()
    })
    .await
    .expect("builds");
    let groups = parts.views().groups().expect("on");
    assert_eq!(groups.max_groups(), 7);
    // The ingest server and the syslog listeners read the same field.
    let config = parts.config();
    assert_eq!(
        config.ingest.fields.group_by(),
        Some("kubernetes.namespace")
    );
    let syslog = config.syslog.as_ref().expect("on");
    assert_eq!(
        syslog.limits.fields.group_by(),
        Some("kubernetes.namespace")
    );
    // The exporter reads the same counters.
    let hash = uniqd_core::hash_ip_str("10.0.0.1").expect("valid");
    groups.record("shop", hash);
    let text = scrape(parts.registry());
    assert!(
        text.contains("unique_ip_addresses_by_group{group=\"shop\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("unique_ip_addresses_by_group{group=\"__other__\"} 0"),
        "{text}"
    );
}
