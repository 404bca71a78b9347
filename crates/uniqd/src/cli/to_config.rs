//! From flags to configuration: [`Cli::app_config`] maps every flag to its
//! place in an [`AppConfig`] and reads the token files. Checking the result
//! is [`AppConfig::validate`]'s job.

use std::path::Path;

use uniqd_core::PathOptions;
use uniqd_exporter::ExporterConfig;
use uniqd_http::{BearerTokens, ServerConfig};
use uniqd_ingest::fields::FieldMap;
use uniqd_ingest::syslog::SyslogConfig;
use uniqd_ingest::IngestConfig;

use super::{Cli, Secret};
use crate::config::{AppConfig, GroupsConfig, SyslogSettings, TopPagesConfig, WindowsConfig};
use crate::persistence::StateConfig;
use crate::redis_sync::config::RedisConfig;

impl Cli {
    /// The service configuration these flags describe (reading the token
    /// files, if any).
    ///
    /// # Errors
    ///
    /// A token file that cannot be read or holds no token, or an invalid
    /// token (the message never contains a token).
    pub fn app_config(&self) -> Result<AppConfig, String> {
        let server = ServerConfig {
            max_connections: self.max_connections,
            drain_timeout: self.drain_timeout,
            header_read_timeout: self.header_read_timeout,
            idle_timeout: self.idle_timeout,
            body_read_timeout: self.body_read_timeout,
            max_buf_size: self.max_header_size,
        };
        let fields = FieldMap::new(
            &self.ip_field.0[..],
            &self.url_field.0[..],
            &self.timestamp_field.0[..],
        )?
        .with_trusted_proxies(self.trusted_proxies.clone().unwrap_or_default());
        Ok(AppConfig {
            exact_threshold: self.exact_threshold,
            ingest: IngestConfig {
                server: server.clone(),
                max_object_bytes: self.max_object_size,
                max_batch_bytes: self.max_batch_size,
                max_buffered_bytes: self.max_buffered_bytes,
                fields: fields.clone(),
                auth: tokens(
                    TokenSetting::INGEST,
                    &self.ingest_token,
                    self.ingest_token_file.as_deref(),
                )?,
            },
            exporter: ExporterConfig {
                server,
                metrics_auth: tokens(
                    TokenSetting::METRICS,
                    &self.metrics_token,
                    self.metrics_token_file.as_deref(),
                )?,
            },
            redis: self.redis_url.as_ref().map(|url| RedisConfig {
                url: url.clone(),
                key: self.redis_key.clone(),
                sync_interval: self.redis_sync_interval,
                timeout: self.redis_timeout,
            }),
            state: self.state_file.clone().map(|path| StateConfig {
                path,
                interval: self.state_interval,
                reset_on_error: self.state_reset_on_error,
                drop_windows: self.state_drop_windows,
            }),
            windows: self.windows.0.clone().map(|gauges| WindowsConfig {
                gauges,
                skew: self.window_skew,
            }),
            syslog: (!self.syslog_listen.is_empty()).then(|| SyslogSettings {
                listen: self.syslog_listen.clone(),
                receive_buffer: self.syslog_receive_buffer,
                limits: SyslogConfig {
                    max_message_bytes: self.syslog_max_message_size,
                    max_connections: self.max_connections,
                    idle_timeout: self.idle_timeout,
                    drain_timeout: self.drain_timeout,
                    fields,
                },
            }),
            groups: self.group_by.as_ref().map(|field| GroupsConfig {
                field: field.clone(),
                max_groups: self.max_groups,
            }),
            top_pages: TopPagesConfig {
                capacity: self.top_pages_capacity,
                metric_limit: self.top_pages_metric_limit,
                path: PathOptions {
                    strip_trailing_slash: self.top_pages_strip_trailing_slash,
                    lowercase_host: self.top_pages_lowercase_host,
                },
            },
        })
    }
}

/// The names of one token setting: its flags and their environment variables.
#[derive(Debug, Clone, Copy)]
struct TokenSetting {
    flag: &'static str,
    env: &'static str,
    file_flag: &'static str,
    file_env: &'static str,
}

impl TokenSetting {
    const INGEST: Self = Self {
        flag: "--ingest-token",
        env: "UNIQD_INGEST_TOKEN",
        file_flag: "--ingest-token-file",
        file_env: "UNIQD_INGEST_TOKEN_FILE",
    };
    const METRICS: Self = Self {
        flag: "--metrics-token",
        env: "UNIQD_METRICS_TOKEN",
        file_flag: "--metrics-token-file",
        file_env: "UNIQD_METRICS_TOKEN_FILE",
    };
}

/// Whether the environment variable `name` is set but holds nothing but
/// whitespace. clap treats such a variable as unset, which for a secret
/// would silently turn authentication off.
fn blank_env(name: &str) -> bool {
    std::env::var_os(name).is_some_and(|value| value.to_string_lossy().trim().is_empty())
}

/// The tokens of `--<flag>` and `--<flag>-file` together; `None` if neither
/// is given. A setting that is given but empty (an empty or blank value, an
/// empty member of a comma-separated list, an empty environment variable, a
/// file with no token) is an error naming the flag and its environment
/// variable: an empty secret must never mean "authentication off".
fn tokens(
    setting: TokenSetting,
    inline: &[Secret],
    file: Option<&Path>,
) -> Result<Option<BearerTokens>, String> {
    let TokenSetting {
        flag,
        env,
        file_flag,
        file_env,
    } = setting;
    let empty = |what: &str| {
        format!(
            "{what} is set but empty: give a token (or remove the setting to leave \
             authentication off); an empty token would turn authentication off"
        )
    };
    if inline.iter().any(|s| s.expose().is_empty()) || (inline.is_empty() && blank_env(env)) {
        return Err(empty(&format!(
            "{flag} / {env} (or one entry of its comma-separated list)"
        )));
    }
    // An empty `*_FILE` variable never gets here: clap refuses it as a missing value (exit
    // 2, naming the flag).
    let mut all: Vec<String> = inline.iter().map(|s| s.expose().to_owned()).collect();
    if let Some(path) = file {
        let text = std::fs::read_to_string(path).map_err(|e| {
            format!(
                "cannot read {file_flag} / {file_env} {}: {e}",
                path.display()
            )
        })?;
        let before = all.len();
        all.extend(
            text.lines()
                .map(str::trim)
                .filter(|line| !line.is_empty() && !line.starts_with('#'))
                .map(str::to_owned),
        );
        if all.len() == before {
            return Err(format!(
                "{file_flag} / {file_env} {} holds no token (only blank lines or # comments): \
                 refusing to start with authentication off",
                path.display()
            ));
        }
    }
    if all.is_empty() {
        return Ok(None);
    }
    BearerTokens::new(&all)
        .map(Some)
        .map_err(|e| format!("{flag} / {env}: {e}"))
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::time::Duration;

    use clap::Parser as _;
    use uniqd_core::Span;

    use super::*;
    use crate::build;
    use crate::cli::LogFormat;
    use crate::redis_sync::config::DEFAULT_REDIS_KEY;

    #[test]
    fn defaults_match_the_library_defaults() {
        let cli = Cli::try_parse_from(["uniqd"]).expect("defaults parse");
        assert_eq!(cli.listen, "0.0.0.0:5000".parse().expect("addr"));
        assert_eq!(cli.metrics_listen, "0.0.0.0:9102".parse().expect("addr"));
        assert_eq!(cli.app_config(), Ok(AppConfig::default()));
        assert_eq!(cli.log_format, LogFormat::Text);
        assert!(cli.worker_threads() >= 1);
        assert_eq!(cli.command, None);
    }

    #[test]
    fn flags_are_applied() {
        let cli = Cli::try_parse_from([
            "uniqd",
            "--listen",
            "127.0.0.1:0",
            "--exact-threshold",
            "10",
            "--max-object-size",
            "2KiB",
            "--max-batch-size",
            "1MB",
            "--max-buffered-bytes",
            "3MiB",
            "--body-read-timeout",
            "500ms",
            "--max-connections",
            "5",
            "--workers",
            "3",
            "--log-format",
            "json",
        ])
        .expect("parses");
        let config = cli.app_config().expect("valid");
        assert_eq!(config.exact_threshold, 10);
        assert_eq!(config.ingest.max_object_bytes, 2048);
        assert_eq!(config.ingest.max_batch_bytes, 1_000_000);
        assert_eq!(config.ingest.max_buffered_bytes, 3 * 1024 * 1024);
        assert_eq!(
            config.ingest.server.body_read_timeout,
            Duration::from_millis(500)
        );
        assert_eq!(config.exporter.server.max_connections, 5);
        assert_eq!(cli.worker_threads(), 3);
        assert_eq!(cli.log_format, LogFormat::Json);
        assert_eq!(config.redis, None);
        assert_eq!(config.validate(), Ok(()));
    }

    #[test]
    fn redis_flags() {
        let cli = Cli::try_parse_from([
            "uniqd",
            "--redis-url",
            "redis://:secret@10.0.0.5:6380/2",
            "--redis-sync-interval",
            "250ms",
        ])
        .expect("parses");
        let config = cli.app_config().expect("valid");
        let redis = config.redis.clone().expect("redis on");
        assert_eq!(redis.url, "redis://:secret@10.0.0.5:6380/2");
        assert_eq!(redis.key, DEFAULT_REDIS_KEY);
        assert_eq!(redis.sync_interval, Duration::from_millis(250));
        assert_eq!(redis.timeout, Duration::from_secs(2));
        assert_eq!(config.validate(), Ok(()));
        assert!(
            !format!("{config:?}").contains("secret"),
            "the password must not reach logs"
        );

        for (url, key, interval) in [
            ("not a url", DEFAULT_REDIS_KEY, Duration::from_secs(1)),
            (
                "redis://:secret@10.0.0.5:port",
                DEFAULT_REDIS_KEY,
                Duration::from_secs(1),
            ),
            ("http://10.0.0.5", DEFAULT_REDIS_KEY, Duration::from_secs(1)),
            ("redis://10.0.0.5", "a}b", Duration::from_secs(1)),
            ("redis://10.0.0.5", DEFAULT_REDIS_KEY, Duration::ZERO),
        ] {
            let redis = RedisConfig {
                key: key.to_owned(),
                sync_interval: interval,
                ..RedisConfig::new(url)
            };
            let error = redis.validate().expect_err(url);
            assert!(!error.is_empty() && !error.contains("secret"), "{error}");
        }
        let tls = RedisConfig::new("rediss://10.0.0.5:6380").validate();
        if cfg!(feature = "redis-tls") {
            assert_eq!(tls, Ok(()));
        } else {
            assert!(tls.is_err_and(|e| e.contains("redis-tls")));
        }
    }

    #[test]
    fn bad_values_are_rejected() {
        for args in [
            &["uniqd", "--exact-threshold", "99999999999"][..],
            &["uniqd", "--max-object-size", "lots"],
            &["uniqd", "--drain-timeout", "soon"],
            &["uniqd", "--workers", "0"],
            &["uniqd", "--log-format", "xml"],
        ] {
            assert!(Cli::try_parse_from(args).is_err(), "{args:?}");
        }
        let cli = Cli::try_parse_from(["uniqd", "--max-header-size", "1KiB"]).expect("parses");
        assert!(cli.app_config().expect("reads").validate().is_err());
    }

    /// Every configuration error names the flag (and, from the checks, its environment
    /// variable), whether clap or a sub-config's check refuses the value.
    #[test]
    fn configuration_errors_name_the_flag() {
        for (args, names) in [
            (
                &["--max-header-size", "1KiB"][..],
                "--max-header-size (UNIQD_MAX_HEADER_SIZE) must be at least 8192",
            ),
            (
                &["--max-connections", "0"],
                "--max-connections (UNIQD_MAX_CONNECTIONS)",
            ),
            (
                &["--header-read-timeout", "0s"],
                "--header-read-timeout (UNIQD_HEADER_READ_TIMEOUT)",
            ),
            (
                &["--body-read-timeout", "0s"],
                "--body-read-timeout (UNIQD_BODY_READ_TIMEOUT)",
            ),
            (
                &["--idle-timeout", "0s"],
                "--idle-timeout (UNIQD_IDLE_TIMEOUT)",
            ),
            (
                &["--max-object-size", "0"],
                "--max-object-size (UNIQD_MAX_OBJECT_SIZE)",
            ),
            (
                &["--max-batch-size", "0"],
                "--max-batch-size (UNIQD_MAX_BATCH_SIZE)",
            ),
            (
                &["--window-skew", "1h"],
                "--window-skew (UNIQD_WINDOW_SKEW)",
            ),
            (
                &["--state-file", "s", "--state-interval", "0s"],
                "--state-interval (UNIQD_STATE_INTERVAL)",
            ),
            (
                &["--redis-url", "redis://127.0.0.1", "--redis-timeout", "0s"],
                "--redis-timeout",
            ),
            (&["--exact-threshold", "99999999999"], "--exact-threshold"),
            (&["--top-pages-capacity", "65537"], "--top-pages-capacity"),
            (
                &["--top-pages-metric-limit", "101"],
                "--top-pages-metric-limit",
            ),
            (&["--windows", "90m"], "--windows"),
            (
                &[
                    "--syslog-listen",
                    "udp://127.0.0.1:5140",
                    "--syslog-max-message-size",
                    "0",
                ],
                "--syslog-max-message-size (UNIQD_SYSLOG_MAX_MESSAGE_SIZE)",
            ),
            (
                &[
                    "--syslog-listen",
                    "udp://127.0.0.1:5140",
                    "--syslog-receive-buffer",
                    "0",
                ],
                "--syslog-receive-buffer (UNIQD_SYSLOG_RECEIVE_BUFFER)",
            ),
            (
                &["--syslog-listen", "http://127.0.0.1:5140"],
                "--syslog-listen",
            ),
            (&["--syslog-listen", "udp://127.0.0.1"], "--syslog-listen"),
            (&["--max-object-size", "lots"], "--max-object-size"),
            (&["--drain-timeout", "soon"], "--drain-timeout"),
        ] {
            let error = Cli::try_parse_from(["uniqd"].iter().chain(args))
                .map_err(|e| e.to_string())
                .and_then(|cli| cli.app_config())
                .and_then(|config| config.validate())
                .expect_err(names);
            assert!(error.contains(names), "{args:?}: {error}");
        }
        // The checks themselves, as the flag parsers call them.
        assert!(crate::config::check_exact_threshold(usize::MAX)
            .is_err_and(|e| e.contains("--exact-threshold (UNIQD_EXACT_THRESHOLD)")));
        let too_big = TopPagesConfig {
            metric_limit: 1000,
            ..TopPagesConfig::default()
        };
        assert!(too_big
            .validate()
            .is_err_and(|e| e.contains("--top-pages-metric-limit (UNIQD_TOP_PAGES_METRIC_LIMIT)")));
    }

    #[test]
    fn tokens_are_collected_and_never_printed() {
        let cli = Cli::try_parse_from([
            "uniqd",
            "--ingest-token",
            "tok-AAA,tok-BBB",
            "--ingest-token",
            "tok-CCC",
            "--metrics-token",
            "tok-MMM",
        ])
        .expect("parses");
        let config = cli.app_config().expect("valid");
        assert_eq!(config.ingest.auth.as_ref().map(BearerTokens::len), Some(3));
        assert_eq!(
            config.exporter.metrics_auth.as_ref().map(BearerTokens::len),
            Some(1)
        );
        for text in [format!("{cli:?}"), format!("{config:?}")] {
            assert!(!text.contains("tok-"), "{text}");
            assert!(text.contains("redacted"), "{text}");
        }
        // An empty value, or an empty member of a list, is refused: it must not turn
        // authentication off.
        for value in ["", " ", "a,,b", "a,", ",", " , "] {
            for flag in ["--ingest-token", "--metrics-token"] {
                let cli = Cli::try_parse_from(["uniqd", flag, value]).expect("parses");
                let error = cli.app_config().expect_err(value);
                assert!(error.contains(flag), "{value:?}: {error}");
                assert!(error.contains("set but empty"), "{value:?}: {error}");
            }
        }
    }

    #[test]
    fn top_pages_flags() {
        let cli = Cli::try_parse_from(["uniqd"]).expect("parses");
        assert_eq!(
            cli.app_config().expect("valid").top_pages,
            TopPagesConfig::default()
        );
        let cli = Cli::try_parse_from([
            "uniqd",
            "--top-pages-capacity",
            "64",
            "--top-pages-metric-limit",
            "5",
            "--top-pages-strip-trailing-slash",
            "--top-pages-lowercase-host",
        ])
        .expect("parses");
        let config = cli.app_config().expect("valid").top_pages;
        assert_eq!(
            config,
            TopPagesConfig {
                capacity: 64,
                metric_limit: 5,
                path: PathOptions {
                    strip_trailing_slash: true,
                    lowercase_host: true,
                },
            }
        );
        let top = build::top_pages(&config, 3).expect("valid").expect("on");
        assert_eq!((top.capacity(), top.shards()), (64, 3));
        let off = TopPagesConfig {
            capacity: 0,
            ..config
        };
        assert!(build::top_pages(&off, 3).expect("valid").is_none());
        for args in [
            &["uniqd", "--top-pages-capacity", "65537"][..],
            &["uniqd", "--top-pages-capacity", "-1"],
            &["uniqd", "--top-pages-metric-limit", "101"],
            &["uniqd", "--top-pages-metric-limit", "many"],
        ] {
            assert!(Cli::try_parse_from(args).is_err(), "{args:?}");
        }
        let too_big = TopPagesConfig {
            metric_limit: 1000,
            ..config
        };
        assert!(too_big.validate().is_err());
        assert!(build::top_pages(&too_big, 1).is_err());
    }

    #[test]
    fn state_flags() {
        let cli = Cli::try_parse_from(["uniqd"]).expect("parses");
        assert_eq!(cli.app_config().expect("valid").state, None);
        let cli = Cli::try_parse_from([
            "uniqd",
            "--state-file",
            "/var/lib/uniqd/state",
            "--state-interval",
            "5s",
            "--state-reset-on-error",
        ])
        .expect("parses");
        let config = cli.app_config().expect("valid");
        assert_eq!(
            config.state,
            Some(StateConfig {
                path: PathBuf::from("/var/lib/uniqd/state"),
                interval: Duration::from_secs(5),
                reset_on_error: true,
                drop_windows: false,
            })
        );
        let cli = Cli::try_parse_from(["uniqd", "--state-file", "s", "--state-interval", "0s"])
            .expect("parses");
        assert!(cli.app_config().expect("reads").validate().is_err());
    }

    #[test]
    fn window_flags() {
        let parse = |args: &[&str]| {
            Cli::try_parse_from(["uniqd"].iter().chain(args))
                .map_err(|e| e.to_string())
                .and_then(|cli| cli.app_config())
        };
        let windows = |args: &[&str]| {
            parse(args)
                .expect("valid")
                .windows
                .map(|w| w.gauges.iter().map(Span::to_string).collect::<Vec<_>>())
        };
        assert_eq!(
            windows(&[]),
            Some(vec!["5m".into(), "1h".into(), "24h".into()])
        );
        assert_eq!(windows(&["--windows", "off"]), None);
        // One gauge per window, however it is spelled.
        assert_eq!(
            windows(&["--windows", " 60m, 1h ,7d,1d"]),
            Some(vec!["1h".into(), "7d".into(), "24h".into()])
        );
        for (bad, says) in [
            ("90m", "not whole hours"),
            ("8d", "longer than"),
            ("5s", "not a duration"),
            ("", "no window given"),
            (",", "no window given"),
        ] {
            let e = parse(&["--windows", bad]).expect_err(bad);
            assert!(e.contains(says), "{bad}: {e}");
        }
        let config = parse(&["--window-skew", "90s"]).expect("valid");
        assert_eq!(config.windows.expect("on").skew, Duration::from_secs(90));
        let config = parse(&["--window-skew", "1h"]).expect("parses");
        assert!(config.validate().expect_err("too long").contains("59m"));
    }
}
