//! The request body handed to services run by [`serve`](crate::serve):
//! hyper's streaming body plus a per-frame read timeout.
//!
//! The header-read timeout stops at the end of the request head; a
//! client that then trickles (or never sends) the body would hold a
//! connection and a task forever. [`RequestBody::data`] therefore waits at
//! most `body_read_timeout` for each next frame. The timeout is per chunk,
//! not for the whole body, so a large batch over a slow but live link is not
//! cut off, while a stalled one is.

use std::future::Future as _;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt as _;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use tokio::time::{Instant, Sleep};

/// Why reading the body failed.
#[derive(Debug)]
pub enum BodyError {
    /// No data arrived within the body-read timeout.
    Timeout,
    /// hyper reported an error (malformed chunked encoding, connection
    /// closed mid-body, ...).
    Read(hyper::Error),
}

impl std::fmt::Display for BodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Timeout => f.write_str("timed out waiting for request body data"),
            Self::Read(e) => write!(f, "error reading request body: {e}"),
        }
    }
}

impl std::error::Error for BodyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Timeout => None,
            Self::Read(e) => Some(e),
        }
    }
}

/// A streaming request body with a per-chunk read timeout.
///
/// Implements [`Body`] (so `http_body_util::BodyExt` works on it) with the
/// timeout applied in `poll_frame`. The timer is only created the first time
/// the body has to wait, so a body that arrived together with the request
/// head costs no timer allocation.
#[derive(Debug)]
pub struct RequestBody {
    inner: Incoming,
    frame_timeout: Duration,
    /// Created lazily on the first wait, then re-armed for each frame.
    timer: Option<Pin<Box<Sleep>>>,
    /// Whether `timer` currently counts down for the frame being awaited.
    armed: bool,
}

impl RequestBody {
    /// Wraps hyper's body; `frame_timeout` bounds the wait for each chunk.
    #[must_use]
    pub fn new(inner: Incoming, frame_timeout: Duration) -> Self {
        Self {
            inner,
            frame_timeout,
            timer: None,
            armed: false,
        }
    }

    /// The exact body length if the client declared one (`Content-Length`).
    #[must_use]
    pub fn declared_len(&self) -> Option<u64> {
        self.inner.size_hint().exact()
    }

    /// The next non-empty chunk of data, `None` at the end of the body.
    /// Trailers are skipped.
    ///
    /// Same timeout semantics as the [`Body`] impl, but the timer lives in
    /// this future instead of a heap-allocated `Sleep`: the request
    /// handlers' hot path uses this.
    ///
    /// # Errors
    ///
    /// [`BodyError::Timeout`] if no frame arrives within the timeout,
    /// [`BodyError::Read`] if hyper fails to read the body.
    pub async fn data(&mut self) -> Option<Result<Bytes, BodyError>> {
        loop {
            let mut next = self.inner.frame();
            // A frame that is already here (a small body usually arrives
            // with its head) needs no timer, and no clock read to arm one.
            let ready = std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut next).poll(cx))).await;
            let polled = match ready {
                Poll::Ready(polled) => polled,
                Poll::Pending => match tokio::time::timeout(self.frame_timeout, next).await {
                    Err(_elapsed) => return Some(Err(BodyError::Timeout)),
                    Ok(polled) => polled,
                },
            };
            let frame = match polled {
                None => return None,
                Some(Err(e)) => return Some(Err(BodyError::Read(e))),
                Some(Ok(frame)) => frame,
            };
            if let Ok(data) = frame.into_data() {
                if !data.is_empty() {
                    return Some(Ok(data));
                }
            }
        }
    }

    /// The underlying hyper body.
    pub fn into_inner(self) -> Incoming {
        self.inner
    }
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = self.get_mut();
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            this.armed = false;
            return Poll::Ready(frame.map(|r| r.map_err(BodyError::Read)));
        }
        let deadline = Instant::now() + this.frame_timeout;
        let timer = this
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if !this.armed {
            timer.as_mut().reset(deadline);
            this.armed = true;
        }
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(BodyError::Timeout))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
