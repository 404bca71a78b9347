//! The ingest server on threads of its own, one single-threaded tokio
//! runtime each ([`IngestConfig::per_core_threads`](crate::IngestConfig::per_core_threads)).
//!
//! On a multi-thread runtime every request may wake a task on another worker
//! and pass through the work-stealing scheduler. Here a connection lives and
//! dies on one thread: no cross-thread wake-ups, no shared run queue.
//!
//! One accept loop, on the runtime [`run`] is called on, takes the cap's
//! permit and accepts exactly as [`serve`](crate::server::serve) does, then
//! hands the connection to the thread with the fewest open connections.
//! (Letting every thread accept from the shared listener left one thread
//! with five times the other's share under wrk's burst of connections;
//! `SO_REUSEPORT` would need listeners bound for it, while the library takes
//! any bound listener.) Accepting is rare next to requests on kept-alive
//! connections, so the hand-over costs nothing measurable. On shutdown the
//! accept loop stops, every thread drains its own connections within the
//! drain deadline, and [`run`] returns once all have.
//!
//! The trade-off: a connection stays on its thread, so a few very busy
//! connections (a single ingress controller sending large batches) can leave
//! a core idle that the multi-thread runtime would have used.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};

use crate::server::{accept_loop, Accepted, ConnectionService, Connections, ServerConfig};

/// Serves `listener` with `threads` threads until `shutdown` resolves, then
/// drains (see the module docs). Each thread makes its connections' services
/// with its own clone of `make_service`.
///
/// # Errors
///
/// `InvalidInput` if `config` fails [`ServerConfig::validate`]; a thread or
/// runtime that cannot be started; a thread that panicked.
pub(crate) async fn run<M, S>(
    listener: TcpListener,
    threads: NonZeroUsize,
    config: ServerConfig,
    make_service: M,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()>
where
    M: FnMut(SocketAddr) -> S + Clone + Send + 'static,
    S: ConnectionService,
{
    config
        .validate()
        .map_err(|msg| io::Error::new(io::ErrorKind::InvalidInput, msg))?;
    let local_addr = listener.local_addr()?;
    let config = Arc::new(config);
    let mut shards = Vec::with_capacity(threads.get());
    let mut finished = Vec::with_capacity(threads.get());
    for n in 0..threads.get() {
        let (handoff, incoming) = mpsc::unbounded_channel();
        let open = Arc::new(AtomicUsize::new(0));
        let (done, finished_rx) = oneshot::channel();
        let thread = Thread {
            // Built here, so that a runtime that cannot start fails `run` now.
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?,
            incoming,
            make_service: make_service.clone(),
            config: Arc::clone(&config),
            local_addr,
        };
        std::thread::Builder::new()
            .name(format!("uniqd-ingest-{n}"))
            .spawn(move || {
                thread.run();
                // A send error means `run` is gone: nobody is left to tell.
                let _ = done.send(());
            })?;
        shards.push(Shard { handoff, open });
        finished.push(finished_rx);
    }
    let permits = Arc::new(Semaphore::new(config.max_connections));
    accept_loop(&listener, &permits, shutdown, |accepted| {
        hand_over(&shards, accepted);
    })
    .await;
    // Stop accepting, then let every thread drain: closing the hand-over
    // channels is their signal.
    drop(listener);
    drop(shards);
    let mut result = Ok(());
    for thread in finished {
        // The sender is dropped without a send only if the thread panicked.
        if thread.await.is_err() {
            result = Err(io::Error::other("an ingest thread panicked"));
        }
    }
    result
}

/// The accept loop's handle on one thread.
struct Shard {
    handoff: mpsc::UnboundedSender<Handed>,
    /// Connections handed to the thread and not closed yet.
    open: Arc<AtomicUsize>,
}

/// A connection on its way to a thread: the socket leaves the accepting
/// runtime's reactor and joins the thread's.
struct Handed {
    stream: std::net::TcpStream,
    peer: SocketAddr,
    slot: Slot,
}

/// Held by a connection's task until it closes: the cap's permit, and one of
/// its thread's open connections.
struct Slot {
    _permit: OwnedSemaphorePermit,
    open: Arc<AtomicUsize>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        // Relaxed: the count only steers where the next connection goes; a
        // stale read sends it to a slightly busier thread, nothing more.
        self.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Gives `accepted` to the thread with the fewest open connections.
fn hand_over(shards: &[Shard], accepted: Accepted) {
    let Accepted {
        stream,
        peer,
        permit,
    } = accepted;
    // Relaxed: see `Slot`.
    let Some(shard) = shards.iter().min_by_key(|s| s.open.load(Ordering::Relaxed)) else {
        return;
    };
    let stream = match stream.into_std() {
        Ok(stream) => stream,
        Err(error) => {
            tracing::debug!(%peer, %error, "could not hand the connection over");
            return;
        }
    };
    // Relaxed: see `Slot`.
    shard.open.fetch_add(1, Ordering::Relaxed);
    let slot = Slot {
        _permit: permit,
        open: Arc::clone(&shard.open),
    };
    if shard.handoff.send(Handed { stream, peer, slot }).is_err() {
        // Only if the thread panicked, which `run` reports.
        tracing::error!(%peer, "ingest thread gone; connection dropped");
    }
}

/// What one thread serves with.
struct Thread<M> {
    runtime: tokio::runtime::Runtime,
    incoming: mpsc::UnboundedReceiver<Handed>,
    make_service: M,
    config: Arc<ServerConfig>,
    local_addr: SocketAddr,
}

impl<M, S> Thread<M>
where
    M: FnMut(SocketAddr) -> S,
    S: ConnectionService,
{
    /// Serves the connections handed over until the accept loop stops, then
    /// drains them.
    fn run(self) {
        let Self {
            runtime,
            mut incoming,
            make_service,
            config,
            local_addr,
        } = self;
        runtime.block_on(async move {
            let mut connections = Connections::new(make_service, &config);
            while let Some(Handed { stream, peer, slot }) = incoming.recv().await {
                match TcpStream::from_std(stream) {
                    Ok(stream) => connections.spawn(stream, peer, slot),
                    Err(error) => {
                        tracing::debug!(%peer, %error, "could not take the connection over");
                    }
                }
            }
            connections.drain(local_addr, config.drain_timeout).await;
        });
    }
}
