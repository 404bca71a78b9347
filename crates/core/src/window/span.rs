//! Window and step lengths as the API and flags spell them (`5m`, `1h`, `24h`, `7d`), and the
//! rules that say which lengths the two tiers of the ring can answer.

use std::fmt;

/// One minute, milliseconds.
pub const MINUTE_MS: u64 = 60_000;
/// One hour, milliseconds.
pub const HOUR_MS: u64 = 60 * MINUTE_MS;
/// Per-minute slots: the last hour.
pub const MINUTE_SLOTS: usize = 60;
/// Per-hour slots: the last seven days.
pub const HOUR_SLOTS: usize = 168;
/// The longest skew the ring accepts: an older event would miss the minute tier.
pub const MAX_SKEW_MS: u64 = (MINUTE_SLOTS as u64 - 1) * MINUTE_MS;

/// Minutes in an hour.
const HOUR: u64 = 60;

/// A whole number of minutes, at least one: a window or a series step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Span {
    minutes: u64,
}

/// Which tier answers a window or a series (also names a tier's intervals when they are
/// shared with other replicas, see [`crate::window::WindowRing::slot_to_redis`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Resolution {
    /// Per-minute slots, the last [`MINUTE_SLOTS`] minutes.
    Minute,
    /// Per-hour slots, the last [`HOUR_SLOTS`] hours.
    Hour,
}

/// Why a window, lookback or step cannot be answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpanError {
    /// Not a positive whole number followed by `m`, `h` or `d`.
    Syntax(String),
    /// Longer than the ring keeps.
    TooLong {
        /// What was asked for, minutes.
        minutes: u64,
        /// The longest allowed, minutes.
        max_minutes: u64,
    },
    /// Over an hour but not whole hours: the hour tier cannot cut it.
    NotWholeHours {
        /// What was asked for, minutes.
        minutes: u64,
    },
    /// A series step longer than its lookback.
    StepLongerThanLookback,
}

impl fmt::Display for SpanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Syntax(text) => write!(
                f,
                "{text:?} is not a duration: expected a positive whole number and a unit m, h or d, e.g. 15m, 1h, 7d"
            ),
            Self::TooLong {
                minutes,
                max_minutes,
            } => write!(
                f,
                "{} is longer than the {} this can look back",
                Span { minutes: *minutes },
                Span {
                    minutes: *max_minutes
                }
            ),
            Self::NotWholeHours { minutes } => write!(
                f,
                "{} is over an hour but not whole hours: beyond 60m only hourly slots are kept, use e.g. 2h",
                Span { minutes: *minutes }
            ),
            Self::StepLongerThanLookback => f.write_str("step is longer than lookback"),
        }
    }
}

impl std::error::Error for SpanError {}

impl Span {
    /// `minutes` minutes; `None` for zero.
    pub const fn minutes(minutes: u64) -> Option<Self> {
        if minutes == 0 {
            None
        } else {
            Some(Self { minutes })
        }
    }

    /// Parses `15m`, `1h`, `24h`, `7d`.
    ///
    /// # Errors
    ///
    /// [`SpanError::Syntax`] for anything else, zero included.
    pub fn parse(text: &str) -> Result<Self, SpanError> {
        let syntax = || SpanError::Syntax(text.chars().take(32).collect());
        let split = text.len().checked_sub(1).ok_or_else(syntax)?;
        let (number, unit) = text.split_at_checked(split).ok_or_else(syntax)?;
        if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
            return Err(syntax());
        }
        let per_unit = match unit {
            "m" => 1,
            "h" => HOUR,
            "d" => 24 * HOUR,
            _ => return Err(syntax()),
        };
        let n: u64 = number.parse().map_err(|_| syntax())?;
        n.checked_mul(per_unit)
            .and_then(Self::minutes)
            .ok_or_else(syntax)
    }

    /// Length in minutes.
    pub const fn as_minutes(self) -> u64 {
        self.minutes
    }

    /// Length in milliseconds.
    pub const fn as_ms(self) -> u64 {
        self.minutes * 60_000
    }

    /// The longest window: the hour tier's retention.
    pub const MAX_WINDOW: Self = Self {
        minutes: HOUR_SLOTS as u64 * HOUR,
    };

    /// The tier and the number of its intervals that answer this span as a window.
    pub(crate) fn window_tier(self) -> Result<(Resolution, u64), SpanError> {
        if self.minutes <= MINUTE_SLOTS as u64 {
            return Ok((Resolution::Minute, self.minutes));
        }
        if self > Self::MAX_WINDOW {
            return Err(SpanError::TooLong {
                minutes: self.minutes,
                max_minutes: Self::MAX_WINDOW.minutes,
            });
        }
        if !self.minutes.is_multiple_of(HOUR) {
            return Err(SpanError::NotWholeHours {
                minutes: self.minutes,
            });
        }
        Ok((Resolution::Hour, self.minutes / HOUR))
    }

    /// Checks this span as a window the ring can answer.
    ///
    /// # Errors
    ///
    /// Longer than [`Span::MAX_WINDOW`], or over an hour and not whole hours.
    pub fn check_window(self) -> Result<(), SpanError> {
        self.window_tier().map(drop)
    }

    /// The tier, step and lookback (in that tier's intervals) of a series.
    pub(crate) fn series_tier(
        lookback: Self,
        step: Self,
    ) -> Result<(Resolution, u64, u64), SpanError> {
        if step > lookback {
            return Err(SpanError::StepLongerThanLookback);
        }
        if step.minutes < HOUR {
            let max = MINUTE_SLOTS as u64;
            if lookback.minutes > max {
                return Err(SpanError::TooLong {
                    minutes: lookback.minutes,
                    max_minutes: max,
                });
            }
            return Ok((Resolution::Minute, step.minutes, lookback.minutes));
        }
        if !step.minutes.is_multiple_of(HOUR) {
            return Err(SpanError::NotWholeHours {
                minutes: step.minutes,
            });
        }
        if lookback > Self::MAX_WINDOW {
            return Err(SpanError::TooLong {
                minutes: lookback.minutes,
                max_minutes: Self::MAX_WINDOW.minutes,
            });
        }
        Ok((
            Resolution::Hour,
            step.minutes / HOUR,
            lookback.minutes.div_ceil(HOUR),
        ))
    }
}

impl fmt::Display for Span {
    /// The canonical spelling: minutes under an hour or when not whole hours (`5m`, `90m`),
    /// hours up to a day (`1h`, `24h`), days beyond when whole (`2d`, `7d`; `36h` stays).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.minutes;
        if m > 24 * HOUR && m.is_multiple_of(24 * HOUR) {
            write!(f, "{}d", m / (24 * HOUR))
        } else if m.is_multiple_of(HOUR) {
            write!(f, "{}h", m / HOUR)
        } else {
            write!(f, "{m}m")
        }
    }
}

impl std::str::FromStr for Span {
    type Err = SpanError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        for (text, minutes, printed) in [
            ("5m", 5, "5m"),
            ("60m", 60, "1h"),
            ("1h", 60, "1h"),
            ("24h", 1440, "24h"),
            ("1d", 1440, "24h"),
            ("36h", 2160, "36h"),
            ("48h", 2880, "2d"),
            ("7d", 10_080, "7d"),
            ("90m", 90, "90m"),
        ] {
            let span = Span::parse(text).expect(text);
            assert_eq!(span.as_minutes(), minutes);
            assert_eq!(span.to_string(), printed);
        }
        for bad in [
            "",
            "m",
            "0m",
            "5",
            "5s",
            "-5m",
            "1.5h",
            " 5m",
            "5m ",
            "99999999999999999999d",
            "5é",
        ] {
            assert!(
                matches!(Span::parse(bad), Err(SpanError::Syntax(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn windows_pick_a_tier() {
        let w = |t| Span::parse(t).expect(t).window_tier();
        assert_eq!(w("1m"), Ok((Resolution::Minute, 1)));
        assert_eq!(w("60m"), Ok((Resolution::Minute, 60)));
        assert_eq!(w("2h"), Ok((Resolution::Hour, 2)));
        assert_eq!(w("7d"), Ok((Resolution::Hour, 168)));
        assert_eq!(w("90m"), Err(SpanError::NotWholeHours { minutes: 90 }));
        assert!(matches!(w("8d"), Err(SpanError::TooLong { .. })));
    }

    #[test]
    fn series_pick_a_tier() {
        let s = |l, st| Span::series_tier(Span::parse(l).expect(l), Span::parse(st).expect(st));
        assert_eq!(s("1h", "1m"), Ok((Resolution::Minute, 1, 60)));
        assert_eq!(s("30m", "7m"), Ok((Resolution::Minute, 7, 30)));
        assert_eq!(s("24h", "1h"), Ok((Resolution::Hour, 1, 24)));
        assert_eq!(s("7d", "1d"), Ok((Resolution::Hour, 24, 168)));
        assert_eq!(s("1m", "5m"), Err(SpanError::StepLongerThanLookback));
        assert!(matches!(
            s("2h", "1m"),
            Err(SpanError::TooLong {
                max_minutes: 60,
                ..
            })
        ));
        assert_eq!(
            s("3h", "90m"),
            Err(SpanError::NotWholeHours { minutes: 90 })
        );
        assert!(matches!(s("8d", "1h"), Err(SpanError::TooLong { .. })));
    }
}
