//! Process signals that trigger a graceful shutdown: SIGTERM and SIGINT.

use std::future::Future;
use std::io;

/// Installs the signal handlers now (so a failure is reported before
/// serving) and returns a future that resolves on the first SIGTERM or
/// SIGINT (Ctrl-C on non-Unix platforms).
///
/// Must be called from within a tokio runtime.
///
/// # Errors
///
/// The handlers could not be installed.
#[cfg(unix)]
pub fn shutdown_signal() -> io::Result<impl Future<Output = ()> + Send> {
    use tokio::signal::unix::{signal, SignalKind};

    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    Ok(async move {
        let name = tokio::select! {
            _ = terminate.recv() => "SIGTERM",
            _ = interrupt.recv() => "SIGINT",
        };
        tracing::info!(signal = name, "shutdown signal received");
    })
}

/// Installs the Ctrl-C handler and returns a future that resolves on Ctrl-C.
///
/// # Errors
///
/// Never fails up front on this platform; a handler failure is logged and
/// treated as a shutdown request.
#[cfg(not(unix))]
pub fn shutdown_signal() -> io::Result<impl Future<Output = ()> + Send> {
    Ok(async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for Ctrl-C; shutting down");
        }
        tracing::info!(signal = "ctrl-c", "shutdown signal received");
    })
}
