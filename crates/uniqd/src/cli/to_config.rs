//! From flags to configuration: [`Cli::app_config`] maps every flag to its
//! place in an [`AppConfig`] and reads the token files. Checking the result
//! is [`AppConfig::validate`]'s job.

use std::path::Path;

use uniqd_core::PathOptions;
use uniqd_exporter::ExporterConfig;
use uniqd_http::{BearerTokens, ServerConfig};
use uniqd_ingest::IngestConfig;

use super::{Cli, Secret};
use crate::config::{AppConfig, TopPagesConfig, WindowsConfig};
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
        Ok(AppConfig {
            exact_threshold: self.exact_threshold,
            ingest: IngestConfig {
                server: server.clone(),
                max_object_bytes: self.max_object_size,
                max_batch_bytes: self.max_batch_size,
                max_buffered_bytes: self.max_buffered_bytes,
                auth: tokens(
                    "--ingest-token",
                    &self.ingest_token,
                    self.ingest_token_file.as_deref(),
                )?,
            },
            exporter: ExporterConfig {
                server,
                metrics_auth: tokens(
                    "--metrics-token",
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

/// The tokens of `--<flag>` and `--<flag>-file` together; `None` if neither
/// is given.
fn tokens(
    flag: &str,
    inline: &[Secret],
    file: Option<&Path>,
) -> Result<Option<BearerTokens>, String> {
    let mut all: Vec<String> = inline
        .iter()
        .map(|s| s.expose().to_owned())
        .filter(|s| !s.is_empty())
        .collect();
    if let Some(path) = file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {flag}-file {}: {e}", path.display()))?;
        let before = all.len();
        all.extend(
            text.lines()
                .map(str::trim)
                .filter(|line| !line.is_empty() && !line.starts_with('#'))
                .map(str::to_owned),
        );
        if all.len() == before {
            return Err(format!("{flag}-file {} holds no token", path.display()));
        }
    }
    if all.is_empty() {
        // `--flag ""` (e.g. an empty environment variable) is no token.
        return Ok(None);
    }
    BearerTokens::new(&all)
        .map(Some)
        .map_err(|e| format!("{flag}: {e}"))
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
        // An empty value (e.g. an empty environment variable) is no token.
        let cli = Cli::try_parse_from(["uniqd", "--ingest-token", ""]).expect("parses");
        assert_eq!(cli.app_config().expect("valid").ingest.auth, None);
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
