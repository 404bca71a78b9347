//! The `uniqd` binary: parse flags, set up logging and the runtime, run
//! [`uniqd::serve_cli`] until SIGTERM/SIGINT, exit 0 after a clean drain.
//! `uniqd healthcheck` probes a URL instead (container health checks);
//! `uniqd loadgen` sends load to a deployment and reports what it counted.

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
    if let Some(Command::Loadgen(args)) = &cli.command {
        return loadgen(args);
    }
    if let Err(message) = uniqd::logging::init(cli.log_format, cli.log_level.as_deref()) {
        // No subscriber means no logs: report on stderr directly.
        let _ = writeln!(std::io::stderr(), "uniqd: {message}");
        return ExitCode::from(2);
    }
    // One work-stealing runtime serves both ports and the background tasks.
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
    match runtime.block_on(uniqd::serve_cli(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "uniqd stopped with an error");
            ExitCode::FAILURE
        }
    }
}

/// `uniqd loadgen`: runs the load on a multi-thread runtime and prints the report on stdout.
fn loadgen(args: &uniqd::loadgen::LoadgenArgs) -> ExitCode {
    let summary = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the tokio runtime: {e}"))
        .and_then(|runtime| runtime.block_on(uniqd::loadgen::run(args)));
    match summary {
        Ok(summary) => {
            // The report is this command's output; a closed stdout leaves nothing to tell.
            let _ = summary.write_report(&mut std::io::stdout().lock());
            if summary.requests_failed == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(message) => {
            let _ = writeln!(std::io::stderr(), "uniqd loadgen: {message}");
            ExitCode::from(2)
        }
    }
}
