//! Readiness as reported by `/readyz`: starting → ready → draining.
//!
//! The application flips it to ready once both servers accept connections
//! and to draining as soon as shutdown starts, so a load balancer stops
//! sending traffic before the ingest listener closes.

use std::sync::atomic::{AtomicU8, Ordering};

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

/// Shared, lock-free readiness flag.
#[derive(Debug)]
pub struct Readiness(AtomicU8);

impl Readiness {
    /// Starts in [`ReadyState::Starting`].
    #[must_use]
    pub fn new() -> Self {
        Self(AtomicU8::new(ReadyState::Starting as u8))
    }

    /// Sets the state.
    pub fn set(&self, state: ReadyState) {
        // Relaxed: the flag publishes no other data; readers only need to see
        // the new value eventually (promptly, in practice).
        self.0.store(state as u8, Ordering::Relaxed);
    }

    /// The current state.
    #[must_use]
    pub fn get(&self) -> ReadyState {
        // Relaxed: see `set`.
        match self.0.load(Ordering::Relaxed) {
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
}
