//! [`BufferBudget`]: one lock-free count of the request bytes a server holds
//! in its own buffers, shared by all its connections, and [`Reservation`],
//! a request's share of it, released when dropped.
//!
//! A stalled client can hold a partly read body in the server's buffer for
//! as long as the body-read timeout lets it; thousands of them would take
//! gigabytes. A server reserves every byte it copies into a buffer of its
//! own (a body collected across chunks, a line carried between chunks) from
//! one budget before copying, and refuses the request (503) when the
//! budget is spent, instead of running out of memory. Bytes still in
//! hyper's read buffer are not counted here: hyper bounds them per
//! connection (`max_buf_size`).

use std::sync::atomic::{AtomicUsize, Ordering};

/// Bytes held in request buffers now, across all connections of a server.
///
/// Orderings: every access is `Relaxed`. The count guards no other memory
/// (a reservation only says how much may be allocated; the bytes are
/// written by the task that owns them), and an atomic read-modify-write
/// sees the latest value in the count's modification order whatever the
/// ordering, so two reservations can never both take the last bytes.
#[derive(Debug, Default)]
pub struct BufferBudget {
    used: AtomicUsize,
}

/// The budget had no room for a reservation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BudgetExhausted;

impl BufferBudget {
    /// Nothing reserved.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            used: AtomicUsize::new(0),
        }
    }

    /// Bytes reserved now (for a gauge).
    #[must_use]
    pub fn in_use(&self) -> usize {
        // Relaxed: a monitoring read; see the type docs.
        self.used.load(Ordering::Relaxed)
    }

    /// An empty reservation that may grow while the budget's total stays
    /// within `limit` bytes.
    #[must_use]
    pub fn reservation(&self, limit: usize) -> Reservation<'_> {
        Reservation {
            budget: self,
            limit,
            held: 0,
        }
    }
}

/// A request's share of a [`BufferBudget`]; gives it back when dropped.
#[derive(Debug)]
pub struct Reservation<'a> {
    budget: &'a BufferBudget,
    limit: usize,
    held: usize,
}

impl Reservation<'_> {
    /// Bytes held.
    #[must_use]
    pub fn held(&self) -> usize {
        self.held
    }

    /// Grows the reservation to `total` bytes (nothing to do if it holds
    /// that much already).
    ///
    /// # Errors
    ///
    /// [`BudgetExhausted`] if the budget's total would pass its limit; the
    /// reservation keeps what it held.
    pub fn grow_to(&mut self, total: usize) -> Result<(), BudgetExhausted> {
        let Some(extra) = total.checked_sub(self.held).filter(|&n| n > 0) else {
            return Ok(());
        };
        // Relaxed load and compare-exchange: see `BufferBudget`; the
        // compare-exchange fails and retries if another reservation moved
        // the count in between.
        let mut used = self.budget.used.load(Ordering::Relaxed);
        loop {
            let next = used
                .checked_add(extra)
                .filter(|&next| next <= self.limit)
                .ok_or(BudgetExhausted)?;
            match self.budget.used.compare_exchange_weak(
                used,
                next,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => break,
                Err(actual) => used = actual,
            }
        }
        self.held = total;
        Ok(())
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if self.held > 0 {
            // Relaxed: see `BufferBudget`.
            self.budget.used.fetch_sub(self.held, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_share_the_limit_and_give_back_on_drop() {
        let budget = BufferBudget::new();
        let mut a = budget.reservation(100);
        a.grow_to(60).expect("room");
        a.grow_to(40).expect("already held");
        assert_eq!((a.held(), budget.in_use()), (60, 60));
        let mut b = budget.reservation(100);
        assert_eq!(b.grow_to(41), Err(BudgetExhausted));
        assert_eq!(budget.in_use(), 60);
        b.grow_to(40).expect("exactly the rest");
        assert_eq!(budget.in_use(), 100);
        drop(a);
        assert_eq!(budget.in_use(), 40);
        b.grow_to(usize::MAX).expect_err("never overflows");
        drop(b);
        assert_eq!(budget.in_use(), 0);
    }

    #[test]
    fn concurrent_reservations_never_pass_the_limit() {
        let budget = BufferBudget::new();
        std::thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| {
                    for _ in 0..10_000 {
                        let mut r = budget.reservation(1000);
                        if r.grow_to(300).is_ok() {
                            assert!(budget.in_use() <= 1000);
                        }
                    }
                });
            }
        });
        assert_eq!(budget.in_use(), 0);
    }
}
