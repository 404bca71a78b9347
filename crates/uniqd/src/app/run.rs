//! [`run`]: the [`Parts`] served on two listeners, and stopped stage by stage.
//!
//! Nothing is spawned: the tasks beside a stage are polled by `run` itself
//! (`Beside`), so dropping `run`'s future drops everything it started.

use std::future::{poll_fn, Future};
use std::io;
use std::pin::{pin, Pin};
use std::task::{Context, Poll};

use tokio::net::TcpListener;
use tokio::sync::watch;
use uniqd_exporter::ReadyState;
use uniqd_ingest::syslog::{run_syslog, SyslogListeners};

use super::parts::{Parts, VERSION};

/// The two bound listeners the service serves on.
#[derive(Debug)]
pub struct Listeners {
    /// `POST /logs` (default port 5000).
    pub ingest: TcpListener,
    /// `/metrics`, probes, status page and JSON APIs (default port 9102).
    pub metrics: TcpListener,
    /// The syslog sockets (`--syslog-listen`; none by default).
    pub syslog: SyslogListeners,
}

/// The signal one shutdown stage gives a later one: "you may stop now".
///
/// [`Stop::new`] returns the sending half and the [`Stopped`] future the stopped task
/// waits on. The stage that is done calls [`Stop::stop`]; [`run`] calls it on every path,
/// in the order [`run`] documents. Should the `Stop` be dropped without
/// [`stop`](Self::stop) (only when its stage's future is dropped or panicked), the waiter is
/// released too: there is no stage left that could ever send it, and waiting would hang the
/// shutdown.
#[derive(Debug)]
pub struct Stop {
    what: &'static str,
    sender: watch::Sender<bool>,
}

/// The waiting half of a [`Stop`]; [`wait`](Self::wait) resolves once told to stop.
#[derive(Debug)]
pub struct Stopped {
    receiver: watch::Receiver<bool>,
}

impl Stop {
    /// A signal to stop `what` (named in a debug log when sent).
    #[must_use]
    pub fn new(what: &'static str) -> (Self, Stopped) {
        let (sender, receiver) = watch::channel(false);
        (Self { what, sender }, Stopped { receiver })
    }

    /// Tells the waiter to stop.
    pub fn stop(self) {
        tracing::debug!(stage = self.what, "stopping");
        // `send_replace` stores the value even when the waiter is already gone.
        self.sender.send_replace(true);
    }
}

impl Stopped {
    /// Resolves once [`Stop::stop`] was called (or the `Stop` dropped, see [`Stop`]).
    pub async fn wait(mut self) {
        // An error means the `Stop` was dropped without a word: see `Stop`'s docs.
        let _ = self.receiver.wait_for(|stop| *stop).await;
    }
}

/// Runs the service's [`Parts`] on `listeners` until `shutdown` resolves, then stops it
/// in stages and returns.
///
/// The stages, in the order `run` awaits them:
/// 1. **Ingest** serves until the `shutdown` future resolves; `/readyz` then
///    turns 503 (`draining`) so load balancers stop routing here, and ingest
///    stops accepting and drains in-flight requests (up to its drain timeout);
///    the syslog listeners, if any, stop at the same moment and count what they
///    already received.
///    The exporter, the state saver and the Redis sync run beside it.
/// 2. **Saver and Redis sync**: the count is now final. Each gets its [`Stop`]:
///    the state file is written a last time (so every request answered 202 is
///    in it) and the sync task merges what the last interval counted (bounded
///    by `--redis-timeout`). The exporter still serves.
/// 3. **Exporter**: only now does it get its [`Stop`], so the final counts stay
///    scrapable while ingest drains (its own drain is quick: scrapers hold idle
///    keep-alive connections, which close at once).
///
/// It logs one info line, `uniqd listening`, with the fields `ingest_addr`,
/// `metrics_addr` and `syslog` (its addresses, or `off`), and `shutdown complete` at the end.
///
/// # Errors
///
/// I/O errors reading the listeners' local addresses, before anything is served; a server
/// that failed; a failed final save of the state file, after everything stopped.
pub async fn run(
    parts: Parts,
    listeners: Listeners,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let ingest_addr = listeners.ingest.local_addr()?;
    let metrics_addr = listeners.metrics.local_addr()?;
    let Parts {
        config,
        views,
        ingest_metrics,
        syslog_metrics,
        exported,
        registry,
        readiness,
        redis_sync,
        saver,
    } = parts;
    let state_file = config
        .state
        .as_ref()
        .map_or_else(|| "off".to_owned(), |s| s.path.display().to_string());
    let ingest_auth = config.ingest.auth.is_some();
    let metrics_auth = config.exporter.metrics_auth.is_some();
    let (stop_saver, saver_stopped) = Stop::new("state saver");
    let (stop_sync, sync_stopped) = Stop::new("redis sync");
    let (stop_exporter, exporter_stopped) = Stop::new("exporter");

    let mut exporter = Beside::new(uniqd_exporter::run(
        listeners.metrics,
        registry,
        exported,
        readiness.clone(),
        config.exporter,
        exporter_stopped.wait(),
    ));
    let mut saver = Beside::new(async move {
        match saver {
            Some(saver) => saver.run(saver_stopped.wait()).await,
            None => Ok(()),
        }
    });
    let mut sync = Beside::new(async move {
        if let Some(sync) = redis_sync {
            if let Err(error) = sync.run(sync_stopped.wait()).await {
                tracing::error!(%error, "the redis sync task could not start");
            }
        }
        Ok(())
    });
    // One shutdown signal for both ingest transports: the HTTP server's future resolves it
    // for the syslog listeners too, so they stop and drain together in stage 1.
    let (stop_syslog, syslog_stopped) = Stop::new("syslog");
    let syslog_on = !listeners.syslog.is_empty();
    let syslog_addrs = syslog_addresses(&listeners.syslog)?;
    let syslog = run_syslog(
        listeners.syslog,
        views.clone(),
        syslog_metrics,
        config
            .syslog
            .as_ref()
            .map(|s| s.limits.clone())
            .unwrap_or_default(),
        syslog_stopped.wait(),
    );
    let http = uniqd_ingest::run(listeners.ingest, views, ingest_metrics, config.ingest, {
        let readiness = readiness.clone();
        async move {
            shutdown.await;
            readiness.set(ReadyState::Draining);
            stop_syslog.stop();
        }
    });
    let ingest = async move {
        if syslog_on {
            let (http, syslog) = tokio::join!(http, syslog);
            http.and(syslog)
        } else {
            drop(syslog);
            http.await
        }
    };

    readiness.set(ReadyState::Ready);
    tracing::info!(
        %ingest_addr,
        %metrics_addr,
        exact_threshold = config.exact_threshold,
        top_pages_capacity = config.top_pages.capacity,
        state_file,
        ingest_auth,
        metrics_auth,
        syslog = syslog_addrs,
        version = VERSION,
        "uniqd listening"
    );

    // 1. Ingest until `shutdown`, then its drain; everything else keeps running.
    let ingest_result = during(ingest, &mut [&mut exporter, &mut saver, &mut sync]).await;
    // 2. The count is final (ingest drained, or failed): last save, last merge.
    stop_saver.stop();
    stop_sync.stop();
    let (saver_result, sync_result) = during(
        async { tokio::join!(saver.finish(), sync.finish()) },
        &mut [&mut exporter],
    )
    .await;
    // 3. The exporter, last.
    stop_exporter.stop();
    let exporter_result = exporter.finish().await;

    ingest_result?;
    exporter_result?;
    saver_result?;
    sync_result?;
    tracing::info!("shutdown complete");
    Ok(())
}

/// The syslog sockets' addresses for the start log line, `udp://A,tcp://B` (a UDP address
/// once, however many workers share it), or `off`.
fn syslog_addresses(syslog: &SyslogListeners) -> io::Result<String> {
    let mut addrs: Vec<String> = Vec::new();
    for socket in &syslog.udp {
        let addr = format!("udp://{}", socket.local_addr()?);
        if !addrs.contains(&addr) {
            addrs.push(addr);
        }
    }
    for listener in &syslog.tcp {
        addrs.push(format!("tcp://{}", listener.local_addr()?));
    }
    Ok(if addrs.is_empty() {
        "off".to_owned()
    } else {
        addrs.join(",")
    })
}

/// A task that runs beside the stages of [`run`]: polled whenever `run` awaits a stage
/// through [`during`], its result kept until [`finish`](Self::finish) asks for it.
struct Beside<'a> {
    task: Option<Pin<Box<dyn Future<Output = io::Result<()>> + Send + 'a>>>,
    result: Option<io::Result<()>>,
}

impl<'a> Beside<'a> {
    fn new(task: impl Future<Output = io::Result<()>> + Send + 'a) -> Self {
        Self {
            task: Some(Box::pin(task)),
            result: None,
        }
    }

    /// Polls the task if it is still running, keeping its result once it is done.
    fn poll_task(&mut self, cx: &mut Context<'_>) {
        if let Some(task) = &mut self.task {
            if let Poll::Ready(result) = task.as_mut().poll(cx) {
                self.task = None;
                self.result = Some(result);
            }
        }
    }

    /// Waits for the task to end (it must have been told to stop) and returns its result.
    async fn finish(&mut self) -> io::Result<()> {
        poll_fn(|cx| {
            self.poll_task(cx);
            match self.result.take() {
                Some(result) => Poll::Ready(result),
                // Still running: `poll_task` registered the waker. (Once taken, a result is
                // never asked for again: `run` finishes each task once.)
                None => Poll::Pending,
            }
        })
        .await
    }
}

/// Awaits `stage` while polling `beside` (tasks that must keep running meanwhile).
async fn during<T>(stage: impl Future<Output = T>, beside: &mut [&mut Beside<'_>]) -> T {
    let mut stage = pin!(stage);
    poll_fn(|cx| {
        for task in beside.iter_mut() {
            task.poll_task(cx);
        }
        stage.as_mut().poll(cx)
    })
    .await
}
