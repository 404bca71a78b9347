//! Waiting with a deadline instead of sleeping: [`poll_until`] (async) and [`block_until`]
//! (blocking, for code outside a runtime) re-run a check until it succeeds and fail the test
//! with what was awaited, and the last answer, once the deadline passes.

use std::fmt::Display;
use std::time::{Duration, Instant};

/// Upper bound for any single wait in tests (generous for debug builds on a loaded 2-core
/// machine); hitting it means a bug, not slowness.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// Pause between two checks of [`poll_until`] and [`block_until`].
pub const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// What a check answers: done (with a value), or not yet (with what it saw, if anything).
///
/// Implemented for `bool` (`true` is done), `Option<T>` (`Some` is done) and `Result<T, E>`
/// (`Ok` is done; the last `Err` is shown when the deadline passes).
pub trait Outcome {
    /// The value of a successful check.
    type Output;
    /// `Ok` when done; otherwise what the check saw, for the failure message.
    fn into_outcome(self) -> Result<Self::Output, Option<String>>;
}

impl Outcome for bool {
    type Output = ();
    fn into_outcome(self) -> Result<(), Option<String>> {
        if self {
            Ok(())
        } else {
            Err(None)
        }
    }
}

impl<T> Outcome for Option<T> {
    type Output = T;
    fn into_outcome(self) -> Result<T, Option<String>> {
        self.ok_or(None)
    }
}

impl<T, E: Display> Outcome for Result<T, E> {
    type Output = T;
    fn into_outcome(self) -> Result<T, Option<String>> {
        self.map_err(|e| Some(e.to_string()))
    }
}

/// Counts down `limit`; panics naming `what` (and the last answer) when it has passed.
struct Deadline {
    end: Instant,
    limit: Duration,
}

impl Deadline {
    fn new(limit: Duration) -> Self {
        Self {
            end: Instant::now() + limit,
            limit,
        }
    }

    fn check(&self, what: &dyn Display, last: Option<String>) {
        if Instant::now() >= self.end {
            match last {
                Some(last) => panic!(
                    "timed out after {:?} waiting for {what}; last: {last}",
                    self.limit
                ),
                None => panic!("timed out after {:?} waiting for {what}", self.limit),
            }
        }
    }
}

/// Runs `check` every [`POLL_INTERVAL`] until it succeeds and returns its value; fails the
/// test after [`DEADLINE`] with `what` (and the last `Err`, for a `Result` check).
///
/// ```no_run
/// # async fn demo(ready: impl Fn() -> bool) {
/// uniqd_testkit::poll_until("the server to be ready", async || ready()).await;
/// # }
/// ```
pub async fn poll_until<O: Outcome>(
    what: impl Display,
    check: impl AsyncFnMut() -> O,
) -> O::Output {
    poll_every(POLL_INTERVAL, what, check).await
}

/// [`poll_until`] with another pause between checks (for a check that is costly to run).
pub async fn poll_every<O: Outcome>(
    interval: Duration,
    what: impl Display,
    mut check: impl AsyncFnMut() -> O,
) -> O::Output {
    let deadline = Deadline::new(DEADLINE);
    loop {
        match check().await.into_outcome() {
            Ok(value) => return value,
            Err(last) => deadline.check(&what, last),
        }
        tokio::time::sleep(interval).await;
    }
}

/// The blocking twin of [`poll_until`], with its own `limit`: runs `check` every
/// [`POLL_INTERVAL`] on this thread until it succeeds; fails the test after `limit`.
pub fn block_until<O: Outcome>(
    what: impl Display,
    limit: Duration,
    mut check: impl FnMut() -> O,
) -> O::Output {
    let deadline = Deadline::new(limit);
    loop {
        match check().into_outcome() {
            Ok(value) => return value,
            Err(last) => deadline.check(&what, last),
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_until_returns_the_first_success() {
        let mut calls = 0;
        let value = block_until("three calls", DEADLINE, || {
            calls += 1;
            (calls == 3).then_some(calls)
        });
        assert_eq!(value, 3);
    }

    #[test]
    #[should_panic(expected = "waiting for never; last: still 7")]
    fn block_until_names_the_last_answer() {
        block_until("never", Duration::from_millis(50), || {
            Err::<(), _>("still 7")
        });
    }

    #[tokio::test]
    async fn poll_until_accepts_bool_option_and_result() {
        let mut n = 0;
        poll_until("a bool", async || {
            n += 1;
            n > 2
        })
        .await;
        assert_eq!(poll_until("an option", async || Some(5)).await, 5);
        assert_eq!(poll_until("a result", async || Ok::<_, String>(6)).await, 6);
    }
}
