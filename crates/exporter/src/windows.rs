//! `GET /api/v1/unique?window=15m` and `GET /api/v1/unique/series?lookback=1h&step=1m`: unique
//! addresses over time windows, as JSON, from the [`WindowRing`].
//!
//! Like `/metrics`, answers are computed when asked. `scope` says whose addresses are
//! counted: `global` (every replica, from the ring the Redis sync fills) or `local` (this
//! replica's; see [`crate::shared_views`]). Bodies:
//!
//! ```json
//! {"window":"15m","unique_ip_addresses":42,"exact":true,"relative_standard_error":0,"now_ms":1800000000000,"scope":"local"}
//! {"lookback":"1h","step":"1m","now_ms":1800000000000,"scope":"local","points":[{"start_ms":1799996460000,"unique_ip_addresses":3,"exact":true,"relative_standard_error":0},...]}
//! ```
//!
//! A window is the current, partial minute (or hour, beyond 60m) and the whole ones before it;
//! series steps are aligned to multiples of the step since the Unix epoch (UTC), oldest first,
//! the last one partial. Windows of 1m to 60m read per-minute slots, longer windows (whole
//! hours up to 7d) per-hour slots; a series with steps under an hour looks back at most 60m,
//! one with whole-hour steps at most 7d (see `uniqd_core::window`). Every other query is a 400
//! naming the parameter and the rule.

use std::fmt;

use uniqd_core::{SeriesPoint, Span, SpanError, WindowCount, WindowRing};
use uniqd_http::JsonObject;

use crate::query::{single_param, Repeated};
use crate::shared_views::Scope;

/// A query parameter of the window endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Param {
    /// `window` of `/api/v1/unique`.
    Window,
    /// `lookback` of `/api/v1/unique/series`.
    Lookback,
    /// `step` of `/api/v1/unique/series`.
    Step,
}

impl Param {
    /// The parameter's name in the query string.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Window => "window",
            Self::Lookback => "lookback",
            Self::Step => "step",
        }
    }
}

/// Why a query was refused (a 400).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WindowQueryError {
    /// A required parameter is missing.
    Missing(Param),
    /// A parameter appears more than once.
    Repeated(Param),
    /// A parameter's value is not a length, or not one the ring can answer.
    Invalid(Param, SpanError),
}

impl WindowQueryError {
    /// Stable machine-readable code for the JSON body.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::Missing(_) => "missing_parameter",
            Self::Repeated(_) => "repeated_parameter",
            Self::Invalid(Param::Window, _) => "invalid_window",
            Self::Invalid(Param::Lookback, _) => "invalid_lookback",
            Self::Invalid(Param::Step, _) => "invalid_step",
        }
    }
}

impl fmt::Display for WindowQueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Missing(p) => write!(f, "the query parameter {} is required", p.name()),
            Self::Repeated(p) => write!(f, "{} is given more than once", p.name()),
            Self::Invalid(p, e) => write!(f, "{}: {e}", p.name()),
        }
    }
}

impl std::error::Error for WindowQueryError {}

/// The value of `param` in `query` as a [`Span`]; other parameters are ignored.
fn span_param(query: Option<&str>, param: Param) -> Result<Span, WindowQueryError> {
    let value = single_param(query, param.name())
        .map_err(|Repeated| WindowQueryError::Repeated(param))?
        .ok_or(WindowQueryError::Missing(param))?;
    Span::parse(value).map_err(|e| WindowQueryError::Invalid(param, e))
}

fn count_fields(json: JsonObject, count: WindowCount) -> JsonObject {
    let rse = if count.exact {
        0.0
    } else {
        uniqd_core::SKETCH_RELATIVE_STANDARD_ERROR
    };
    json.u64("unique_ip_addresses", count.estimate)
        .raw("exact", if count.exact { "true" } else { "false" })
        .f64("relative_standard_error", rse)
}

/// The `/api/v1/unique` body for `query`.
///
/// ```
/// use std::sync::Arc;
/// use uniqd_core::{hash_ip_str, ManualClock, WindowRing};
/// use uniqd_exporter::{windows::unique_json, Scope};
///
/// let ring = WindowRing::new(0, Arc::new(ManualClock::new(1_800_000_000_000)));
/// ring.insert_hash(hash_ip_str("10.0.0.1").unwrap(), None);
/// let body = unique_json(&ring, Scope::Local, Some("window=15m")).unwrap();
/// assert!(body.starts_with(r#"{"window":"15m","unique_ip_addresses":1,"exact":true"#));
/// assert_eq!(unique_json(&ring, Scope::Local, Some("window=90m")).unwrap_err().code(), "invalid_window");
/// ```
///
/// # Errors
///
/// `window` missing, repeated, or not a window the ring keeps.
pub fn unique_json(
    ring: &WindowRing,
    scope: Scope,
    query: Option<&str>,
) -> Result<String, WindowQueryError> {
    let window = span_param(query, Param::Window)?;
    let count = ring
        .count(window)
        .map_err(|e| WindowQueryError::Invalid(Param::Window, e))?;
    let json = JsonObject::with_capacity(128).str("window", &window.to_string());
    Ok(count_fields(json, count)
        .u64("now_ms", ring.now_ms())
        .str("scope", scope.as_str())
        .finish())
}

/// The `/api/v1/unique/series` body for `query`.
///
/// # Errors
///
/// `lookback` or `step` missing, repeated, or a combination the ring cannot answer.
pub fn series_json(
    ring: &WindowRing,
    scope: Scope,
    query: Option<&str>,
) -> Result<String, WindowQueryError> {
    let lookback = span_param(query, Param::Lookback)?;
    let step = span_param(query, Param::Step)?;
    let points = ring.series(lookback, step).map_err(|e| match e {
        // The step decides the tier: one that is not whole hours past an hour, or one that
        // does not fit in the lookback, is the step's fault; a lookback too long for the
        // step's tier is the lookback's.
        SpanError::NotWholeHours { .. } | SpanError::StepLongerThanLookback => {
            WindowQueryError::Invalid(Param::Step, e)
        }
        _ => WindowQueryError::Invalid(Param::Lookback, e),
    })?;
    Ok(JsonObject::with_capacity(96 + points.len() * 96)
        .str("lookback", &lookback.to_string())
        .str("step", &step.to_string())
        .u64("now_ms", ring.now_ms())
        .str("scope", scope.as_str())
        .raw("points", &points_json(&points))
        .finish())
}

fn points_json(points: &[SeriesPoint]) -> String {
    let mut out = String::with_capacity(2 + points.len() * 96);
    out.push('[');
    for (i, point) in points.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let json = JsonObject::with_capacity(96).u64("start_ms", point.start_ms);
        out.push_str(&count_fields(json, point.count).finish());
    }
    out.push(']');
    out
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use uniqd_core::{hash_ip_str, ManualClock};

    use super::*;

    /// A whole hour: 2027-01-15T08:00:00Z.
    const T0: u64 = 1_800_000_000_000;

    fn ring() -> WindowRing {
        let clock = Arc::new(ManualClock::new(T0 + 150_000)); // 2.5 minutes past the hour
        let ring = WindowRing::new(0, clock);
        for (ip, at) in [
            ("10.0.0.1", T0),
            ("10.0.0.2", T0 + 60_000),
            ("10.0.0.1", T0 + 120_000),
        ] {
            ring.insert_hash_at(hash_ip_str(ip).expect("valid"), None, at);
        }
        ring
    }

    #[test]
    fn unique_bodies() {
        let ring = ring();
        assert_eq!(
            unique_json(&ring, Scope::Local, Some("window=2m")).expect("valid"),
            format!(
                r#"{{"window":"2m","unique_ip_addresses":2,"exact":true,"relative_standard_error":0,"now_ms":{},"scope":"local"}}"#,
                T0 + 150_000
            )
        );
        assert!(unique_json(&ring, Scope::Local, Some("x=1&window=1m"))
            .expect("valid")
            .contains(r#""unique_ip_addresses":1,"#));
        assert!(unique_json(&ring, Scope::Local, Some("window=24h"))
            .expect("valid")
            .contains(r#""window":"24h","unique_ip_addresses":2,"#));
    }

    #[test]
    fn series_bodies() {
        let ring = ring();
        let body = series_json(&ring, Scope::Local, Some("lookback=3m&step=1m")).expect("valid");
        assert_eq!(
            body,
            format!(
                r#"{{"lookback":"3m","step":"1m","now_ms":{},"scope":"local","points":[{{"start_ms":{},"unique_ip_addresses":1,"exact":true,"relative_standard_error":0}},{{"start_ms":{},"unique_ip_addresses":1,"exact":true,"relative_standard_error":0}},{{"start_ms":{},"unique_ip_addresses":1,"exact":true,"relative_standard_error":0}}]}}"#,
                T0 + 150_000,
                T0,
                T0 + 60_000,
                T0 + 120_000
            )
        );
    }

    #[test]
    fn bad_queries_say_what_is_wrong() {
        let ring = ring();
        for (query, code, says) in [
            (None, "missing_parameter", "window is required"),
            (
                Some("window=1m&window=2m"),
                "repeated_parameter",
                "more than once",
            ),
            (Some("window=15"), "invalid_window", "not a duration"),
            (Some("window=90m"), "invalid_window", "not whole hours"),
            (Some("window=8d"), "invalid_window", "longer than the 7d"),
        ] {
            let e = unique_json(&ring, Scope::Local, query).expect_err("refused");
            assert_eq!(e.code(), code, "{query:?}");
            assert!(e.to_string().contains(says), "{query:?}: {e}");
        }
        for (query, code, says) in [
            (Some("step=1m"), "missing_parameter", "lookback is required"),
            (Some("lookback=1h"), "missing_parameter", "step is required"),
            (
                Some("lookback=1h&step=0m"),
                "invalid_step",
                "not a duration",
            ),
            (
                Some("lookback=2h&step=1m"),
                "invalid_lookback",
                "longer than the 1h",
            ),
            (
                Some("lookback=3h&step=90m"),
                "invalid_step",
                "not whole hours",
            ),
            (
                Some("lookback=1m&step=5m"),
                "invalid_step",
                "step is longer",
            ),
            (
                Some("lookback=8d&step=1d"),
                "invalid_lookback",
                "longer than the 7d",
            ),
        ] {
            let e = series_json(&ring, Scope::Local, query).expect_err("refused");
            assert_eq!(e.code(), code, "{query:?}");
            assert!(e.to_string().contains(says), "{query:?}: {e}");
        }
    }
}
