//! The uniqd service: counts distinct client IP addresses from HTTP logs and
//! exports the count to Prometheus.
//!
//! # Design
//!
//! The binary is a thin shell over this library so that tests can run the
//! whole service in-process: [`serve`] takes already-bound listeners and a
//! shutdown future, which makes port-0 binding and deterministic shutdown
//! trivial. It is [`app::build`], which makes the [`Parts`] without sockets,
//! then [`app::run`], which serves them and stops them stage by stage.
//! Flag parsing ([`cli`], mapped to the checked [`config`], from which
//! [`mod@build`] makes the runtime objects), logging ([`logging`]) and
//! signals ([`signal`]) stay out of the reusable crates (`uniqd-http`,
//! `uniqd-ingest`, `uniqd-exporter`), which never bind sockets or read flags
//! themselves. The binary runs everything on one multi-thread tokio runtime
//! of `--workers` threads.
//!
//! The optional state file ([`persistence`]) lives here too, not in the
//! counter crate: when to write, how to write atomically and what to do with
//! a file that does not load are service decisions; `uniqd-core` only
//! encodes and checks the bytes.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use tokio::net::TcpListener;
//! let ingest = TcpListener::bind("127.0.0.1:0").await?;
//! let metrics = TcpListener::bind("127.0.0.1:0").await?;
//! let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
//! let service = tokio::spawn(uniqd::serve(
//!     uniqd::AppConfig::default(),
//!     ingest,
//!     metrics,
//!     async move { let _ = stopped.await; },
//! ));
//! // ... talk to the listeners' local_addr() ...
//! let _ = stop.send(());
//! service.await??;
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]

pub mod app;
pub mod build;
pub mod cli;
pub mod config;
pub mod healthcheck;
pub mod loadgen;
pub mod logging;
pub mod persistence;
pub mod redis_sync;
pub mod signal;
pub mod units;

pub use crate::app::{serve, serve_cli, Listeners, Parts, VERSION};
pub use crate::cli::{Cli, Command, LogFormat, WindowList};
pub use crate::config::{AppConfig, GroupsConfig, TopPagesConfig, WindowsConfig};
pub use crate::redis_sync::config::RedisConfig;
