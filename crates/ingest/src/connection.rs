//! One accepted connection: hyper's HTTP/1.1 state machine plus an idle
//! watchdog, run inside a single task.
//!
//! hyper 1.x has no idle timeout of its own (its `header_read_timeout` only
//! covers waiting for a request head). To close connections that sit idle,
//! the socket is wrapped in [`ActivityIo`], which stamps the time of the last
//! successful read or write, and the service is wrapped to count requests in
//! flight. The watchdog closes the connection once no request is in flight
//! and nothing moved for `idle_timeout`. A request that is being processed
//! (even silently, e.g. a large batch being parsed) keeps it open; a stalled
//! request body is handled by the body-read timeout instead.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::body::{Body, Incoming};
use hyper::server::conn::http1;
use hyper::service::{service_fn, Service};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::Watcher;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Instant;

use crate::request_body::RequestBody;

/// Per-server settings shared by all connection tasks.
#[derive(Debug)]
pub(crate) struct ConnectionSettings {
    pub(crate) builder: http1::Builder,
    pub(crate) idle_timeout: Duration,
    pub(crate) body_read_timeout: Duration,
}

/// Serves one connection until it closes, goes idle, or is drained.
///
/// `_permit` is the connection-cap slot, released when this returns.
pub(crate) async fn serve_connection<S, B>(
    stream: TcpStream,
    peer: SocketAddr,
    service: S,
    settings: Arc<ConnectionSettings>,
    watcher: Watcher,
    _permit: OwnedSemaphorePermit,
) where
    S: Service<Request<RequestBody>, Response = Response<B>> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let activity = Arc::new(Activity::new());
    let io = TokioIo::new(ActivityIo {
        inner: stream,
        activity: Arc::clone(&activity),
    });
    let body_read_timeout = settings.body_read_timeout;
    let requests = Arc::clone(&activity);
    let hyper_service = service_fn(move |req: Request<Incoming>| {
        let in_flight = InFlight::enter(&requests);
        let response = service.call(req.map(|body| RequestBody::new(body, body_read_timeout)));
        async move {
            let response = response.await;
            drop(in_flight);
            response
        }
    });
    let connection = watcher.watch(settings.builder.serve_connection(io, hyper_service));
    tokio::select! {
        result = connection => {
            if let Err(error) = result {
                // Timeouts, resets and malformed requests are routine on the
                // internet: not worth more than debug.
                tracing::debug!(%peer, %error, "connection closed with an error");
            }
        }
        () = idle(&activity, settings.idle_timeout) => {
            tracing::debug!(%peer, "closing idle connection");
        }
    }
}

/// Resolves once the connection has been idle for `timeout`.
async fn idle(activity: &Activity, timeout: Duration) {
    loop {
        let deadline = activity.last() + timeout;
        if Instant::now() < deadline {
            tokio::time::sleep_until(deadline).await;
        } else if activity.in_flight() == 0 {
            return;
        } else {
            // Busy with a request: look again later.
            tokio::time::sleep(timeout).await;
        }
    }
}

/// Last-activity stamp and in-flight request count of one connection.
///
/// Orderings: every access is `Relaxed`. The socket wrapper, the service
/// wrapper and the watchdog all run inside the same connection task (hyper's
/// HTTP/1 dispatcher polls the service future inline), so they are ordered by
/// program order anyway; the atomics only exist because the state is shared
/// through an `Arc` that must be `Send`. No other data is published through
/// them.
#[derive(Debug)]
struct Activity {
    epoch: Instant,
    /// Milliseconds since `epoch` of the last read or write.
    last_ms: AtomicU64,
    in_flight: AtomicUsize,
}

impl Activity {
    fn new() -> Self {
        Self {
            epoch: Instant::now(),
            last_ms: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
        }
    }

    fn touch(&self) {
        let ms = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        // Relaxed: see the type docs.
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    fn last(&self) -> Instant {
        // Relaxed: see the type docs.
        self.epoch + Duration::from_millis(self.last_ms.load(Ordering::Relaxed))
    }

    fn in_flight(&self) -> usize {
        // Relaxed: see the type docs.
        self.in_flight.load(Ordering::Relaxed)
    }
}

/// Counts a request as in flight until dropped (also on cancellation).
struct InFlight(Arc<Activity>);

impl InFlight {
    fn enter(activity: &Arc<Activity>) -> Self {
        // Relaxed: see `Activity`.
        activity.in_flight.fetch_add(1, Ordering::Relaxed);
        Self(Arc::clone(activity))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        // Relaxed: see `Activity`.
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.0.touch();
    }
}

/// A socket that records when bytes last moved through it.
struct ActivityIo {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for ActivityIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let result = Pin::new(&mut this.inner).poll_read(cx, buf);
        if matches!(result, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.activity.touch();
        }
        result
    }
}

impl AsyncWrite for ActivityIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.inner).poll_write(cx, buf);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            this.activity.touch();
        }
        result
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            this.activity.touch();
        }
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
