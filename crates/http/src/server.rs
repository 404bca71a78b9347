//! The HTTP/1.1 accept loop shared by the ingest and the metrics servers:
//! [`serve`].
//!
//! [`serve`] owns a bound listener and runs until `shutdown` resolves, then
//! drains. What it guarantees, in order of a connection's life:
//!
//! 1. **Connection cap**: a semaphore permit is taken *before* `accept`, so
//!    once [`ServerConfig::max_connections`] are open, further clients wait
//!    in the kernel's listen backlog instead of being accepted and starved.
//! 2. **Accept errors** (EMFILE, ENFILE, ECONNABORTED, ...) are logged at
//!    warn and retried with exponential backoff (10 ms doubling to 1 s); they
//!    never stop the server.
//! 3. Each connection gets `TCP_NODELAY` and its own task, running hyper's
//!    HTTP/1.1 server with keep-alive and:
//!    * a **header-read timeout** (see `connection.rs`): a connection that
//!      waits for a request head — right after accept *and* after each
//!      response on a kept-alive connection — longer than
//!      `header_read_timeout` is closed. It therefore bounds slow-loris heads
//!      **and** idle keep-alive time, but not bodies;
//!    * `max_buf_size`: a request head that does not fit gets hyper's 431;
//!    * a **body-read timeout**, per chunk, applied by
//!      [`RequestBody`](crate::RequestBody), which hyper lacks;
//!    * an **idle timeout** (see `connection.rs`): a connection with no
//!      request in flight and no bytes moved for `idle_timeout` is closed.
//!      With the defaults, the shorter header timeout closes idle
//!      connections first; the idle timeout matters when it is configured
//!      below the header timeout.
//!
//!    Both timeouts are kept by one watchdog timer per connection, not by
//!    hyper's per-request header timer (which reads the clock and allocates
//!    for every request); a connection closes between the timeout and 1.25
//!    times it.
//! 4. **Shutdown**: the listener is closed (new connections are refused),
//!    hyper-util's `GracefulShutdown` tells every connection to finish its
//!    in-flight request and close, and after [`ServerConfig::drain_timeout`]
//!    the remaining connection tasks are aborted.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;

use crate::config::ServerConfig;
use crate::connection::{serve_connection, ConnectionSettings};
use crate::service::ConnectionService;

/// Serves HTTP/1.1 on `listener` until `shutdown` resolves, then drains.
///
/// `make_service` is called once per accepted connection with the peer
/// address and returns the service for that connection. Requests reach it
/// with a [`RequestBody`](crate::RequestBody) that enforces the body-read
/// timeout.
///
/// Works on both the current-thread and the multi-thread tokio runtime
/// (connections are spawned on the ambient runtime).
///
/// # Errors
///
/// `InvalidInput` if `config` fails [`ServerConfig::validate`]. Runtime
/// errors (accept failures, broken connections) are logged, not returned.
pub async fn serve<M, S>(
    listener: TcpListener,
    make_service: M,
    config: ServerConfig,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()>
where
    M: FnMut(SocketAddr) -> S,
    S: ConnectionService,
{
    config
        .validate()
        .map_err(|msg| io::Error::new(io::ErrorKind::InvalidInput, msg))?;
    let local_addr = listener.local_addr()?;
    let permits = Arc::new(Semaphore::new(config.max_connections));
    let mut connections = Connections::new(make_service, &config);
    accept_loop(&listener, &permits, shutdown, |accepted| {
        connections.spawn(accepted.stream, accepted.peer, accepted.permit);
    })
    .await;
    // Stop accepting: the kernel now refuses new connections.
    drop(listener);
    connections.drain(local_addr, config.drain_timeout).await;
    Ok(())
}

/// A connection just accepted, with its slot under the connection cap.
#[derive(Debug)]
struct Accepted {
    stream: TcpStream,
    peer: SocketAddr,
    permit: OwnedSemaphorePermit,
}

/// Accepts connections on `listener` until `shutdown` resolves, handing each
/// to `dispatch` with TCP_NODELAY set. A permit of `permits` is taken
/// *before* each accept, so at the cap clients wait in the kernel's backlog;
/// accept errors are logged and retried with backoff.
async fn accept_loop(
    listener: &TcpListener,
    permits: &Arc<Semaphore>,
    shutdown: impl Future<Output = ()>,
    mut dispatch: impl FnMut(Accepted),
) {
    let local_addr = listener.local_addr().ok();
    let mut backoff = Backoff::default();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            biased;
            () = &mut shutdown => break,
            permit = Arc::clone(permits).acquire_owned() => match permit {
                Ok(permit) => permit,
                // The semaphore is never closed; stop serving if it were.
                Err(_closed) => break,
            },
        };
        let accepted = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(conn) => {
                backoff.reset();
                conn
            }
            Err(error) => {
                let delay = backoff.next_delay();
                tracing::warn!(local_addr = ?local_addr, %error, retry_in = ?delay, "accept failed");
                drop(permit);
                tokio::select! {
                    biased;
                    () = &mut shutdown => break,
                    () = tokio::time::sleep(delay) => continue,
                }
            }
        };
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%peer, %error, "could not set TCP_NODELAY");
        }
        dispatch(Accepted {
            stream,
            peer,
            permit,
        });
    }
}

/// The open connections: each in its own task, all told to finish by one
/// graceful shutdown.
struct Connections<M> {
    make_service: M,
    settings: Arc<ConnectionSettings>,
    graceful: GracefulShutdown,
    tasks: JoinSet<()>,
}

impl<M, S> Connections<M>
where
    M: FnMut(SocketAddr) -> S,
    S: ConnectionService,
{
    /// No connections yet; `config` is valid.
    fn new(make_service: M, config: &ServerConfig) -> Self {
        Self {
            make_service,
            settings: Arc::new(ConnectionSettings {
                builder: config.http1_builder(),
                header_read_timeout: config.header_read_timeout,
                idle_timeout: config.idle_timeout,
                body_read_timeout: config.body_read_timeout,
            }),
            graceful: GracefulShutdown::new(),
            tasks: JoinSet::new(),
        }
    }

    /// Serves `stream` in a task of the current runtime; `permit` is held
    /// until the connection closes.
    fn spawn(&mut self, stream: TcpStream, peer: SocketAddr, permit: OwnedSemaphorePermit) {
        reap_finished(&mut self.tasks);
        self.tasks.spawn(serve_connection(
            stream,
            peer,
            (self.make_service)(peer),
            Arc::clone(&self.settings),
            self.graceful.watcher(),
            permit,
        ));
    }

    /// Tells every connection to finish its in-flight request and close,
    /// waits up to `drain_timeout`, then drops the rest.
    async fn drain(self, local_addr: SocketAddr, drain_timeout: Duration) {
        let Self {
            graceful,
            mut tasks,
            ..
        } = self;
        let open = graceful.count();
        tracing::info!(%local_addr, open_connections = open, drain_timeout = ?drain_timeout, "server stopping; draining connections");
        if tokio::time::timeout(drain_timeout, graceful.shutdown())
            .await
            .is_ok()
        {
            while let Some(result) = tasks.join_next().await {
                log_task_result(result);
            }
            tracing::debug!(%local_addr, "all connections drained");
        } else {
            tracing::warn!(%local_addr, remaining = tasks.len(), "drain deadline passed; closing remaining connections");
            tasks.shutdown().await;
        }
    }
}

/// Collects finished connection tasks so the set does not grow unboundedly.
fn reap_finished(tasks: &mut JoinSet<()>) {
    while let Some(result) = tasks.try_join_next() {
        log_task_result(result);
    }
}

fn log_task_result(result: Result<(), tokio::task::JoinError>) {
    if let Err(error) = result {
        if error.is_panic() {
            tracing::error!(%error, "connection task panicked");
        }
    }
}

/// Exponential backoff for accept errors: 10 ms, doubling, capped at 1 s.
#[derive(Debug)]
struct Backoff {
    next: Duration,
}

impl Backoff {
    const MIN: Duration = Duration::from_millis(10);
    const MAX: Duration = Duration::from_secs(1);

    fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(Self::MAX);
        delay
    }

    fn reset(&mut self) {
        self.next = Self::MIN;
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Self { next: Self::MIN }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_a_cap_and_resets() {
        let mut b = Backoff::default();
        let delays: Vec<_> = (0..9).map(|_| b.next_delay().as_millis()).collect();
        assert_eq!(delays, [10, 20, 40, 80, 160, 320, 640, 1000, 1000]);
        b.reset();
        assert_eq!(b.next_delay(), Duration::from_millis(10));
    }
}
