//! The TCP side of the syslog transport: an accept loop with a connection cap (a permit is
//! taken before `accept`, so past the cap senders wait in the kernel's backlog, as in
//! `uniqd_http::serve`, whose loop is tied to hyper and not reused), and one task per
//! connection that frames ([`StreamFramer`]) and records its messages. A connection that
//! sends nothing for the idle timeout is closed. Messages are recorded before the next read,
//! so a sender faster than uniqd is back-pressured by TCP.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;

use super::config::SyslogConfig;
use super::metrics::{SyslogMetrics, Transport};
use super::receive::{read_now, record_message, until_stopped, Sink};
use super::stream::{Frame, StreamFramer};

/// A connection's first buffer; it doubles as longer messages need, up to the message limit,
/// so 10,000 idle connections hold 40 MiB, not 10,000 times the limit.
const INITIAL_BUFFER: usize = 4096;

/// Accepts connections on `listener` until `stopped`, then lets each count what it holds
/// (within the drain timeout) and returns.
pub(super) async fn serve(
    listener: TcpListener,
    sink: Sink,
    metrics: Arc<SyslogMetrics>,
    config: SyslogConfig,
    mut stopped: watch::Receiver<bool>,
) {
    let permits = Arc::new(Semaphore::new(config.max_connections));
    let mut connections = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            () = until_stopped(&mut stopped) => break,
            accepted = async {
                // The semaphore is never closed, so `acquire_owned` cannot fail.
                let permit = Arc::clone(&permits).acquire_owned().await.ok();
                (listener.accept().await, permit)
            } => accepted,
        };
        match accepted {
            (Ok((stream, _peer)), Some(permit)) => {
                metrics.connection();
                connections.spawn(connection(
                    stream,
                    sink.clone(),
                    Arc::clone(&metrics),
                    config.clone(),
                    stopped.clone(),
                    permit,
                ));
            }
            (Err(error), _) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(%error, "syslog tcp accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            (Ok(_), None) => {}
        }
        // Reap the finished ones, so the set does not grow with the connections served.
        while connections.try_join_next().is_some() {}
    }
    let drained = tokio::time::timeout(config.drain_timeout, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!("syslog tcp connections did not finish within the drain timeout");
        connections.abort_all();
    }
}

/// One connection: read, frame, record, until the peer closes, goes idle, breaks the framing
/// or the listener stops.
async fn connection(
    mut stream: TcpStream,
    sink: Sink,
    metrics: Arc<SyslogMetrics>,
    config: SyslogConfig,
    mut stopped: watch::Receiver<bool>,
    _permit: OwnedSemaphorePermit,
) {
    let mut framer = StreamFramer::new(config.max_message_bytes);
    let capacity = framer.buffer_size();
    let mut conn = Buffered {
        buf: vec![0; INITIAL_BUFFER.min(capacity)],
        end: 0,
    };
    loop {
        conn.make_room(capacity);
        let read = tokio::select! {
            () = until_stopped(&mut stopped) => {
                // Count what has already arrived, then close.
                while let Ok(n) = read_now((&stream).into(), conn.make_room(capacity)) {
                    if n == 0 {
                        conn.end_of_stream(&mut framer, &sink, &metrics);
                        return;
                    }
                    conn.end += n;
                    if !conn.frames(&mut framer, &sink, &metrics) {
                        return;
                    }
                }
                if conn.end > 0 {
                    // A message cut in half by the shutdown.
                    metrics.record(Transport::Tcp, false);
                }
                return;
            }
            read = tokio::time::timeout(config.idle_timeout, stream.read(conn.space())) => read,
        };
        match read {
            Ok(Ok(0)) => {
                conn.end_of_stream(&mut framer, &sink, &metrics);
                return;
            }
            Ok(Ok(n)) => {
                conn.end += n;
                if !conn.frames(&mut framer, &sink, &metrics) {
                    return;
                }
            }
            // Idle for too long, or a reset: a message begun is lost.
            Err(_) | Ok(Err(_)) => {
                if conn.end > 0 {
                    metrics.record(Transport::Tcp, false);
                }
                return;
            }
        }
    }
}

/// A connection's bytes not yet framed: `buf[..end]`.
struct Buffered {
    buf: Vec<u8>,
    end: usize,
}

impl Buffered {
    fn space(&mut self) -> &mut [u8] {
        &mut self.buf[self.end..]
    }

    /// The free space, after growing a full buffer (a message longer than it) towards
    /// `capacity`, what the longest message needs: the framer consumes a buffer of that size
    /// whatever it holds, so the space is never empty.
    fn make_room(&mut self, capacity: usize) -> &mut [u8] {
        if self.end == self.buf.len() && self.buf.len() < capacity {
            self.buf.resize((self.buf.len() * 2).min(capacity), 0);
        }
        self.space()
    }

    /// Records every whole message buffered and keeps the rest at the start; `false` when the
    /// framing is broken and the connection must close.
    fn frames(&mut self, framer: &mut StreamFramer, sink: &Sink, metrics: &SyslogMetrics) -> bool {
        let mut start = 0;
        loop {
            let (used, frame) = framer.next(&self.buf[start..self.end]);
            start += used;
            match frame {
                Some(Frame::Message(msg)) => {
                    metrics.record(Transport::Tcp, record_message(msg, sink));
                }
                Some(Frame::Oversized) => metrics.record(Transport::Tcp, false),
                Some(Frame::Broken) => {
                    metrics.record(Transport::Tcp, false);
                    return false;
                }
                None if used == 0 => break,
                None => {}
            }
        }
        self.buf.copy_within(start..self.end, 0);
        self.end -= start;
        true
    }

    /// The peer closed: its last bytes (a line without `\n`) may be a message.
    fn end_of_stream(&mut self, framer: &mut StreamFramer, sink: &Sink, metrics: &SyslogMetrics) {
        match framer.finish(&self.buf[..self.end]) {
            Some(Frame::Message(msg)) => {
                metrics.record(Transport::Tcp, record_message(msg, sink));
            }
            Some(Frame::Oversized | Frame::Broken) => metrics.record(Transport::Tcp, false),
            None => {}
        }
    }
}
