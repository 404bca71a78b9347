//! The `uniqd` binary: parse flags, set up logging and the runtime, run
//! [`uniqd::run`] until SIGTERM/SIGINT, exit 0 after a clean drain.
//! `uniqd healthcheck` probes a URL instead (container health checks).

#![forbid(unsafe_code)]

use std::io::Write as _;
use std::process::ExitCode;

use clap::Parser as _;
use uniqd::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::Healthcheck { url, timeout }) = &cli.command {
        return if uniqd::healthcheck::run(url, *timeout) {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        };
    }
    if let Err(message) = uniqd::logging::init(cli.log_format, cli.log_level.as_deref()) {
        // No subscriber means no logs: report on stderr directly.
        let _ = writeln!(std::io::stderr(), "uniqd: {message}");
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cli.worker_threads())
        .thread_name("uniqd-worker")
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            tracing::error!(%error, "cannot start the tokio runtime");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(uniqd::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "uniqd stopped with an error");
            ExitCode::FAILURE
        }
    }
}
