//! Readiness as reported by `/readyz`: starting → ready → draining.
//!
//! The application flips it to ready once both servers accept connections
//! and to draining as soon as shutdown starts, so a load balancer stops
//! sending traffic before the ingest listener closes. Dependencies that do not decide
//! readiness (a Redis used for scale-out) add their state to the body as [`ReadyDetail`]s.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

use crate::shared_count::ReadyDetail;

/// Lifecycle state shown by `/readyz`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadyState {
    /// Not yet serving (503).
    Starting,
    /// Serving (200).
    Ready,
    /// Shutting down, finishing in-flight requests (503).
    Draining,
}

impl ReadyState {
    /// The `status` string in the `/readyz` body.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Starting => "starting",
            Self::Ready => "ready",
            Self::Draining => "draining",
        }
    }
}

/// Shared, lock-free readiness flag, plus the details `/readyz` reports beside it.
#[derive(Debug)]
pub struct Readiness {
    state: AtomicU8,
    details: Vec<Arc<dyn ReadyDetail>>,
}

impl Readiness {
    /// Starts in [`ReadyState::Starting`], without details.
    #[must_use]
    pub fn new() -> Self {
        Self {
            state: AtomicU8::new(ReadyState::Starting as u8),
            details: Vec::new(),
        }
    }

    /// Adds a dependency's state to the `/readyz` body (it does not change the status).
    #[must_use]
    pub fn with_detail(mut self, detail: Arc<dyn ReadyDetail>) -> Self {
        self.details.push(detail);
        self
    }

    /// The details added with [`with_detail`](Self::with_detail).
    pub fn details(&self) -> impl Iterator<Item = &dyn ReadyDetail> {
        self.details.iter().map(|detail| &**detail)
    }

    /// Sets the state.
    pub fn set(&self, state: ReadyState) {
        // Relaxed: the flag publishes no other data; readers only need to see
        // the new value eventually (promptly, in practice).
        self.state.store(state as u8, Ordering::Relaxed);
    }

    /// The current state.
    #[must_use]
    pub fn get(&self) -> ReadyState {
        // Relaxed: see `set`.
        match self.state.load(Ordering::Relaxed) {
            s if s == ReadyState::Ready as u8 => ReadyState::Ready,
            s if s == ReadyState::Draining as u8 => ReadyState::Draining,
            _ => ReadyState::Starting,
        }
    }
}

impl Default for Readiness {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transitions() {
        let r = Readiness::new();
        assert_eq!(r.get(), ReadyState::Starting);
        r.set(ReadyState::Ready);
        assert_eq!(r.get(), ReadyState::Ready);
        r.set(ReadyState::Draining);
        assert_eq!(r.get().as_str(), "draining");
    }

    #[derive(Debug)]
    struct Dependency;

    impl ReadyDetail for Dependency {
        fn key(&self) -> &str {
            "dep"
        }
        fn to_json(&self) -> String {
            r#"{"up":false}"#.to_owned()
        }
    }

    #[test]
    fn details_are_kept_in_order_and_do_not_change_the_state() {
        let r = Readiness::new().with_detail(Arc::new(Dependency));
        r.set(ReadyState::Ready);
        assert_eq!(r.get(), ReadyState::Ready);
        let details: Vec<(String, String)> = r
            .details()
            .map(|d| (d.key().to_owned(), d.to_json()))
            .collect();
        assert_eq!(details, [("dep".to_owned(), r#"{"up":false}"#.to_owned())]);
    }
}
