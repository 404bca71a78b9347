//! Property tests of the window ring against an exact model: below the exact thresholds,
//! every series step and every window counts exactly the distinct addresses the model holds
//! for the same minutes or hours, and the steps of a series sum to the model's sum.

use std::collections::HashSet;
use std::sync::Arc;

use proptest::prelude::*;
use uniqd_core::window::{HOUR_MS, MINUTE_MS, MINUTE_SLOTS};
use uniqd_core::{hash_element, ManualClock, Span, WindowCount, WindowRing};

/// A whole hour (2027-01-15T08:00:00Z).
const BASE_MS: u64 = 1_800_000_000_000 - 1_800_000_000_000 % HOUR_MS;
/// Events fall in the 300 minutes (5 hours) after `BASE_MS`.
const MINUTES: u64 = 300;

fn hash(ip: u16) -> u64 {
    hash_element(format!("192.0.{}.{}", ip >> 8, ip & 255).as_bytes())
}

fn minutes(n: u64) -> Span {
    Span::minutes(n).expect("positive")
}

/// Events `(ms after BASE_MS, address)`, in arrival order, and the read time.
fn events() -> impl Strategy<Value = (Vec<(u64, u16)>, u64)> {
    (
        prop::collection::vec((0..MINUTES * MINUTE_MS, 0u16..300), 0..400),
        0..MINUTE_MS,
    )
        .prop_map(|(mut events, extra)| {
            events.sort_unstable();
            (events, MINUTES * MINUTE_MS + extra)
        })
}

/// Distinct addresses among `events` whose interval of `interval_ms` is in `from ..= to`.
fn model(events: &[(u64, u16)], interval_ms: u64, from: u64, to: u64) -> u64 {
    let set: HashSet<u16> = events
        .iter()
        .filter(|&&(t, _)| (from..=to).contains(&((BASE_MS + t) / interval_ms)))
        .map(|&(_, ip)| ip)
        .collect();
    set.len() as u64
}

fn exact(estimate: u64) -> WindowCount {
    WindowCount {
        estimate,
        exact: true,
    }
}

/// Feeds `events` at their arrival times and leaves the clock at `now_ms` after `BASE_MS`.
fn fed(events: &[(u64, u16)], now_ms: u64) -> WindowRing {
    let clock = Arc::new(ManualClock::new(BASE_MS));
    let ring = WindowRing::new(0, clock.clone());
    for &(t, ip) in events {
        ring.insert_hash_at(hash(ip), None, BASE_MS + t);
    }
    clock.set(BASE_MS + now_ms);
    ring
}

/// Checks a series against the model: aligned, contiguous steps ending in the current one,
/// each exact, summing to the model's sum.
fn check_series(
    events: &[(u64, u16)],
    ring: &WindowRing,
    lookback: u64,
    step: u64,
    interval_ms: u64,
    oldest: u64,
) -> Result<(), TestCaseError> {
    let now = ring.now_ms() / interval_ms;
    let per = interval_ms / MINUTE_MS;
    let series = ring
        .series(minutes(lookback * per), minutes(step * per))
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(series.len() as u64, lookback.div_ceil(step));
    let (mut sum, mut model_sum) = (0, 0);
    for (k, point) in series.iter().enumerate() {
        let start = point.start_ms / interval_ms;
        prop_assert_eq!(start % step, 0);
        if let Some(next) = series.get(k + 1) {
            prop_assert_eq!(next.start_ms - point.start_ms, step * interval_ms);
        } else {
            prop_assert!(start <= now && now < start + step);
        }
        let expected = model(events, interval_ms, start.max(oldest), start + step - 1);
        prop_assert_eq!(point.count, exact(expected));
        sum += point.count.estimate;
        model_sum += expected;
    }
    prop_assert_eq!(sum, model_sum);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn minute_series_and_windows_match_an_exact_model(
        (events, now_ms) in events(),
        lookback in 1u64..=MINUTE_SLOTS as u64,
        step in 1u64..=45,
        window in 1u64..=MINUTE_SLOTS as u64,
    ) {
        let ring = fed(&events, now_ms);
        let now = (BASE_MS + now_ms) / MINUTE_MS;
        let oldest = now - (MINUTE_SLOTS as u64 - 1);
        check_series(&events, &ring, lookback, step.min(lookback), MINUTE_MS, oldest)?;
        let w = ring.count(minutes(window)).expect("a minute window");
        prop_assert_eq!(w, exact(model(&events, MINUTE_MS, now + 1 - window, now)));
        // The second read comes from the cache of closed minutes.
        prop_assert_eq!(ring.count(minutes(window)).expect("a minute window"), w);
    }

    #[test]
    fn hour_series_and_windows_match_an_exact_model(
        (events, now_ms) in events(),
        lookback in 1u64..=6,
        step in 1u64..=3,
        window in 2u64..=7,
    ) {
        let ring = fed(&events, now_ms);
        let now = (BASE_MS + now_ms) / HOUR_MS;
        check_series(&events, &ring, lookback, step.min(lookback), HOUR_MS, 0)?;
        let w = ring.count(minutes(window * 60)).expect("an hour window");
        prop_assert_eq!(w, exact(model(&events, HOUR_MS, now + 1 - window, now)));
        prop_assert_eq!(ring.count(minutes(window * 60)).expect("an hour window"), w);
    }
}
