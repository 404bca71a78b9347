//! One accepted connection: hyper's HTTP/1.1 state machine plus a watchdog
//! that enforces the header-read and idle timeouts, run inside a single task.
//!
//! hyper 1.x can time out a request head itself, but only with a timer that
//! reads the clock and allocates a fresh `Sleep` for every request, and it
//! has no idle timeout at all. Here neither costs anything per request: the
//! socket is wrapped in [`ActivityIo`], which bumps a counter whenever bytes
//! move, and the service wrapper counts requests started and in flight. One
//! timer per connection, the watchdog, wakes every quarter of the shorter
//! timeout and compares the counters with what it saw last time:
//!
//! * **header read timeout**: no request in flight and none started for
//!   `header_read_timeout` (the connection waits for a head: right after
//!   accept, or after a response on a kept-alive connection) closes it,
//!   whether or not bytes trickle in (slow-loris heads);
//! * **idle timeout**: no request in flight and no bytes moved for
//!   `idle_timeout` closes it.
//!
//! A condition is seen within one tick, so a connection closes between the
//! timeout and 1.25 times it. A request being processed (even silently, e.g.
//! a large batch being parsed) keeps the connection open; a stalled request
//! body is handled by the body-read timeout of [`RequestBody`] instead.
//!
//! Two more things every connection gets here, for both ports:
//!
//! * the socket wrapper replaces hyper's own bodiless error answers (a
//!   request head it cannot parse: 400, 431, 414) with the JSON error shape,
//!   see `bare_error.rs`;
//! * an HTTP/1.1 request without exactly one `Host` header is answered
//!   `400 missing_host` (JSON) before it reaches the service (RFC 9112 §3.2).

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http_body_util::Either;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONNECTION, HOST};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode, Version};
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::Watcher;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Instant;

use crate::bare_error;
use crate::request_body::RequestBody;
use crate::response::{json_error, ResponseBody};
use crate::service::ConnectionService;

/// Per-server settings shared by all connection tasks.
#[derive(Debug)]
pub(crate) struct ConnectionSettings {
    pub(crate) builder: http1::Builder,
    pub(crate) header_read_timeout: Duration,
    pub(crate) idle_timeout: Duration,
    pub(crate) body_read_timeout: Duration,
}

/// Serves one connection until it closes, times out, or is drained.
///
/// `_permit` (the connection cap's) is held until this returns.
pub(crate) async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    service: impl ConnectionService,
    settings: Arc<ConnectionSettings>,
    watcher: Watcher,
    _permit: OwnedSemaphorePermit,
) {
    let activity = Arc::new(Activity::default());
    let io = TokioIo::new(ActivityIo {
        inner: stream,
        activity: Arc::clone(&activity),
        replacement: None,
    });
    let body_read_timeout = settings.body_read_timeout;
    let requests = Arc::clone(&activity);
    let hyper_service = service_fn(move |req: Request<Incoming>| {
        let in_flight = InFlight::enter(&requests);
        let call = if has_valid_host(&req) {
            Some(service.call(req.map(|body| RequestBody::new(body, body_read_timeout))))
        } else {
            None
        };
        async move {
            let response = match call {
                Some(call) => call.await.map(|response| response.map(Either::Left)),
                None => Ok(missing_host().map(Either::Right)),
            };
            drop(in_flight);
            response
        }
    });
    let connection = watcher.watch(settings.builder.serve_connection(io, hyper_service));
    tokio::select! {
        result = connection => {
            if let Err(error) = result {
                // Resets and malformed requests are routine on the internet:
                // not worth more than debug.
                tracing::debug!(%peer, %error, "connection closed with an error");
            }
        }
        expired = watchdog(&activity, settings.header_read_timeout, settings.idle_timeout) => {
            tracing::debug!(%peer, timeout = expired.name(), "closing connection");
        }
    }
}

/// Whether `req` may go to the service as far as `Host` goes: HTTP/1.1
/// needs exactly one (RFC 9112 §3.2); HTTP/1.0 may go without. One header
/// lookup.
fn has_valid_host<B>(req: &Request<B>) -> bool {
    if req.version() != Version::HTTP_11 {
        return true;
    }
    let mut hosts = req.headers().get_all(HOST).iter();
    hosts.next().is_some() && hosts.next().is_none()
}

/// `400 missing_host`, closing the connection (the body is not read).
fn missing_host() -> Response<ResponseBody> {
    let mut response = json_error(
        StatusCode::BAD_REQUEST,
        "missing_host",
        "an HTTP/1.1 request needs exactly one Host header",
    );
    response
        .headers_mut()
        .insert(CONNECTION, HeaderValue::from_static("close"));
    response
}

/// Which timeout closed a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expired {
    /// No request head completed in time.
    HeaderRead,
    /// Nothing moved in time.
    Idle,
}

impl Expired {
    fn name(self) -> &'static str {
        match self {
            Self::HeaderRead => "header_read",
            Self::Idle => "idle",
        }
    }
}

/// Resolves once the connection has waited for a request head longer than
/// `header_timeout`, or been idle longer than `idle_timeout` (see the module
/// docs). One timer, re-armed each tick without allocating.
async fn watchdog(
    activity: &Activity,
    header_timeout: Duration,
    idle_timeout: Duration,
) -> Expired {
    let tick = (header_timeout.min(idle_timeout) / 4).max(Duration::from_millis(1));
    let mut clock = WatchdogClock::new(header_timeout, idle_timeout);
    let mut sleep = std::pin::pin!(tokio::time::sleep(tick));
    loop {
        sleep.as_mut().await;
        if let Some(expired) = clock.tick(activity.snapshot(), tick) {
            return expired;
        }
        sleep.as_mut().reset(Instant::now() + tick);
    }
}

/// The watchdog's bookkeeping, apart from the timer so it can be tested
/// without one: how long the connection has been waiting for a head and
/// been idle, as seen at each tick.
#[derive(Debug)]
struct WatchdogClock {
    header_timeout: Duration,
    idle_timeout: Duration,
    last: Snapshot,
    waiting_for_head: Duration,
    idle: Duration,
}

impl WatchdogClock {
    fn new(header_timeout: Duration, idle_timeout: Duration) -> Self {
        Self {
            header_timeout,
            idle_timeout,
            last: Snapshot::default(),
            waiting_for_head: Duration::ZERO,
            idle: Duration::ZERO,
        }
    }

    /// Accounts for one tick that ended with `now`; `Some` once a timeout
    /// has passed.
    fn tick(&mut self, now: Snapshot, tick: Duration) -> Option<Expired> {
        let last = std::mem::replace(&mut self.last, now);
        if now.in_flight > 0 {
            // Busy: the body-read timeout watches stalled requests.
            self.waiting_for_head = Duration::ZERO;
            self.idle = Duration::ZERO;
            return None;
        }
        // A request ended during the tick (it was in flight at the last one,
        // or started since): the wait for the next head began within it, so
        // the tick does not count, and the timeouts are never cut short.
        let quiet = last.in_flight == 0;
        self.waiting_for_head = if quiet && now.started == last.started {
            self.waiting_for_head + tick
        } else {
            Duration::ZERO
        };
        self.idle = if quiet && now.moved == last.moved {
            self.idle + tick
        } else {
            Duration::ZERO
        };
        if self.waiting_for_head >= self.header_timeout {
            Some(Expired::HeaderRead)
        } else if self.idle >= self.idle_timeout {
            Some(Expired::Idle)
        } else {
            None
        }
    }
}

/// What the watchdog reads at a tick.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Snapshot {
    /// Reads and writes that moved bytes, ever.
    moved: u64,
    /// Requests whose head was parsed, ever.
    started: u64,
    /// Requests being handled now.
    in_flight: u64,
}

/// Activity counters of one connection, bumped by the socket and service
/// wrappers and read by the watchdog.
///
/// Orderings: every access is `Relaxed`, and a counter is bumped with a
/// load and a store, not a read-modify-write. The socket wrapper, the service
/// wrapper and the watchdog all run inside the same connection task (hyper's
/// HTTP/1 dispatcher polls the service future inline), so they are ordered by
/// program order and no two bumps race; the atomics only exist because the
/// state is shared through an `Arc` that must be `Send`. No other data is
/// published through them.
#[derive(Debug, Default)]
struct Activity {
    moved: AtomicU64,
    started: AtomicU64,
    in_flight: AtomicU64,
}

impl Activity {
    fn touch(&self) {
        bump(&self.moved, 1);
    }

    fn snapshot(&self) -> Snapshot {
        // Relaxed: see the type docs.
        Snapshot {
            moved: self.moved.load(Ordering::Relaxed),
            started: self.started.load(Ordering::Relaxed),
            in_flight: self.in_flight.load(Ordering::Relaxed),
        }
    }
}

/// Counts a request as started, and in flight until dropped (also on
/// cancellation).
struct InFlight(Arc<Activity>);

impl InFlight {
    fn enter(activity: &Arc<Activity>) -> Self {
        bump(&activity.started, 1);
        bump(&activity.in_flight, 1);
        Self(Arc::clone(activity))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        bump(&self.0.in_flight, u64::MAX);
    }
}

/// Adds `delta` (wrapping: `u64::MAX` subtracts one) to a counter of
/// [`Activity`], which only its own connection task writes.
fn bump(counter: &AtomicU64, delta: u64) {
    // Relaxed load and store: see `Activity`.
    let value = counter.load(Ordering::Relaxed).wrapping_add(delta);
    counter.store(value, Ordering::Relaxed);
}

/// A socket that counts the reads and writes that move bytes, and writes
/// the JSON form of hyper's own bodiless error answers (`bare_error.rs`).
struct ActivityIo {
    inner: TcpStream,
    activity: Arc<Activity>,
    /// A JSON answer replacing hyper's bare one, and how much of it is
    /// written. hyper was told the bare answer went out; this is written
    /// before anything else, and before a flush or shutdown completes.
    replacement: Option<(Vec<u8>, usize)>,
}

impl ActivityIo {
    /// Writes what is left of the replacement answer, if any; `Ready(Ok)`
    /// once nothing is left.
    fn poll_replacement(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some((bytes, written)) = &mut self.replacement {
            if *written == bytes.len() {
                self.replacement = None;
                break;
            }
            match Pin::new(&mut self.inner).poll_write(cx, &bytes[*written..]) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => {
                    *written += n;
                    self.activity.touch();
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(Ok(()))
    }

    /// If `buf` (the start of what hyper writes) is one of hyper's bare
    /// error answers, takes it: queues the JSON answer, starts writing it,
    /// and returns how many bytes of `buf` count as written.
    fn take_bare_error(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Option<io::Result<usize>> {
        let (taken, replacement) = bare_error::rewrite(buf)?;
        self.replacement = Some((replacement, 0));
        // Pending is fine: hyper flushes next, and the flush finishes it.
        if let Poll::Ready(Err(e)) = self.poll_replacement(cx) {
            return Some(Err(e));
        }
        Some(Ok(taken))
    }
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
        std::task::ready!(this.poll_replacement(cx))?;
        if let Some(taken) = this.take_bare_error(cx, buf) {
            return Poll::Ready(taken);
        }
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
        std::task::ready!(this.poll_replacement(cx))?;
        // A head is always at the start of hyper's first buffer.
        if let Some(first) = bufs.iter().find(|b| !b.is_empty()) {
            if let Some(taken) = this.take_bare_error(cx, first) {
                return Poll::Ready(taken);
            }
        }
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
        let this = self.get_mut();
        std::task::ready!(this.poll_replacement(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        std::task::ready!(this.poll_replacement(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TICK: Duration = Duration::from_millis(100);

    fn snapshot(moved: u64, started: u64, in_flight: u64) -> Snapshot {
        Snapshot {
            moved,
            started,
            in_flight,
        }
    }

    /// Ticks `clock` with `now` until it expires; the number of ticks taken.
    fn ticks_until_expired(clock: &mut WatchdogClock, now: Snapshot) -> (usize, Expired) {
        for n in 1..=1000 {
            if let Some(expired) = clock.tick(now, TICK) {
                return (n, expired);
            }
        }
        panic!("never expired");
    }

    #[test]
    fn a_silent_connection_hits_the_shorter_timeout() {
        let mut clock = WatchdogClock::new(TICK * 4, TICK * 8);
        assert_eq!(
            ticks_until_expired(&mut clock, Snapshot::default()),
            (4, Expired::HeaderRead)
        );
        let mut clock = WatchdogClock::new(TICK * 8, TICK * 4);
        assert_eq!(
            ticks_until_expired(&mut clock, Snapshot::default()),
            (4, Expired::Idle)
        );
    }

    #[test]
    fn a_trickling_head_still_times_out() {
        let mut clock = WatchdogClock::new(TICK * 4, TICK * 4);
        for (moved, expected) in [
            (1, None),
            (2, None),
            (3, None),
            (4, Some(Expired::HeaderRead)),
        ] {
            assert_eq!(clock.tick(snapshot(moved, 0, 0), TICK), expected);
        }
    }

    #[test]
    fn requests_in_flight_hold_the_connection_open() {
        let mut clock = WatchdogClock::new(TICK * 2, TICK * 2);
        for _ in 0..100 {
            assert_eq!(clock.tick(snapshot(5, 1, 1), TICK), None);
        }
        // Done: the wait for the next head starts within the tick that saw
        // the request end, which does not count.
        assert_eq!(clock.tick(snapshot(6, 1, 0), TICK), None);
        assert_eq!(
            ticks_until_expired(&mut clock, snapshot(6, 1, 0)),
            (2, Expired::HeaderRead)
        );
    }

    #[test]
    fn a_steady_stream_of_requests_never_expires() {
        let mut clock = WatchdogClock::new(TICK * 2, TICK * 2);
        for n in 1..1000 {
            assert_eq!(clock.tick(snapshot(2 * n, n, 0), TICK), None);
        }
    }

    #[test]
    fn bump_adds_and_subtracts() {
        let counter = AtomicU64::new(0);
        bump(&counter, 1);
        bump(&counter, 1);
        bump(&counter, u64::MAX);
        assert_eq!(counter.load(Ordering::Relaxed), 1);
    }
}
