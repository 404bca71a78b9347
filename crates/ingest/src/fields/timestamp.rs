//! Parsing a log's time into Unix milliseconds, by hand and without allocating, for the
//! time-window counts. A [`Timestamp`] is a string or a number from a JSON log, or the time of
//! an access-log line already read; [`TimestampParser::parse`] takes any of them:
//!
//! * **RFC 3339** (`2020-06-24T15:27:00.123Z`, `2020-06-24T17:27:00+02:00`): `YYYY-MM-DD`, then
//!   `T`, `t` or a space, `hh:mm:ss`, an optional fraction of any length (digits beyond
//!   milliseconds are truncated), then `Z`, `z` or `±hh:mm`. A leap second (`:60`) is read as
//!   the next second's start.
//! * **Epoch** seconds, milliseconds, microseconds or nanoseconds, as a JSON number or a string
//!   of digits with an optional fraction (`1593012420`, `1593012420123`, `"1593012420.5"`).
//!   The unit is decided by magnitude: below 10^11 seconds (10^11 s is the year 5138, while
//!   10^11 ms is 1973), below 10^14 milliseconds, below 10^17 microseconds, below 10^20
//!   nanoseconds; anything larger, negative or not finite is no time.
//! * **CLF time**, as nginx's `$time_local` and Apache's `%t` write it:
//!   `10/Oct/2000:13:55:36 -0700` (English month abbreviations, a `±hhmm` zone).
//!
//! Years before 1970, times before the epoch and anything else give `None`, and the log then
//! counts at its arrival time.

/// A log's time as found in the log.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Timestamp<'a> {
    /// A JSON string, or the text of a JSON number as the fast scanner saw it.
    Text(&'a str),
    /// A JSON integer.
    Int(i64),
    /// A JSON number with a fraction or exponent, or an integer too large for `i64`.
    Float(f64),
    /// Unix milliseconds, already parsed (an access-log line's time).
    Millis(u64),
}

/// Length of `YYYY-MM-DDThh:mm:ss`.
const SECONDS_LEN: usize = 19;

/// Unix milliseconds of an RFC 3339 timestamp, or `None` if it is not one.
pub fn parse_rfc3339_ms(text: &str) -> Option<u64> {
    let b = text.as_bytes();
    with_local_seconds(b, local_seconds(b.get(..SECONDS_LEN)?)?)
}

/// [`parse_rfc3339_ms`] that remembers the date and time (to the second) of the last
/// timestamp it read: the lines of a batch mostly share their second, and then only the
/// fraction and the zone are parsed (about a third of the work). One per thread, in the fields
/// stage's reader.
#[derive(Debug, Default)]
pub struct TimestampParser {
    /// `YYYY-MM-DDThh:mm:ss` of the last valid timestamp, and its seconds (local time).
    last: Option<([u8; SECONDS_LEN], i64)>,
}

impl TimestampParser {
    /// Unix milliseconds of any [`Timestamp`] (see the [module docs](self)), or `None`.
    #[inline]
    pub fn parse(&mut self, stamp: Timestamp<'_>) -> Option<u64> {
        match stamp {
            Timestamp::Text(text) => self.parse_text(text),
            Timestamp::Int(n) => epoch_ms(u128::try_from(n).ok()?, 0),
            Timestamp::Float(f) => epoch_ms_float(f),
            Timestamp::Millis(ms) => Some(ms),
        }
    }

    /// A string: RFC 3339 (the common case, tried first), epoch digits or CLF time.
    #[inline]
    fn parse_text(&mut self, text: &str) -> Option<u64> {
        let b = text.as_bytes();
        if b.get(4) == Some(&b'-') {
            return self.parse_ms(text);
        }
        match *b.first()? {
            b'0'..=b'9' if b.get(2) == Some(&b'/') => parse_clf_time_ms(b),
            b'0'..=b'9' => parse_epoch_text_ms(b),
            // Not a time (RFC 3339 has its `-` at 4): the parser says so.
            _ => self.parse_ms(text),
        }
    }

    /// Unix milliseconds of an RFC 3339 timestamp, or `None` if it is not one (the same
    /// answers as [`parse_rfc3339_ms`]).
    pub fn parse_ms(&mut self, text: &str) -> Option<u64> {
        let b = text.as_bytes();
        let head = b.get(..SECONDS_LEN)?;
        let local = match self.last {
            Some((prefix, local)) if prefix == head => local,
            _ => {
                let local = local_seconds(head)?;
                let mut prefix = [0u8; SECONDS_LEN];
                prefix.copy_from_slice(head);
                self.last = Some((prefix, local));
                local
            }
        };
        with_local_seconds(b, local)
    }
}

/// Seconds since 1970-01-01T00:00:00 of `YYYY-MM-DDThh:mm:ss` (`T`, `t` or a space), in the
/// timestamp's own zone; `None` if it is not a valid date and time from 1970 on.
fn local_seconds(b: &[u8]) -> Option<i64> {
    let num = |range: std::ops::Range<usize>| -> Option<u64> {
        let digits = b.get(range)?;
        digits.iter().try_fold(0u64, |acc, &d| {
            d.is_ascii_digit().then(|| acc * 10 + u64::from(d - b'0'))
        })
    };
    let year = num(0..4)?;
    let month = num(5..7)?;
    let day = num(8..10)?;
    let hour = num(11..13)?;
    let minute = num(14..16)?;
    let second = num(17..19)?;
    if b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    if hour > 23 || minute > 59 || second > 60 || year < 1970 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    // At most 23:59:60: fits.
    Some(days * 86_400 + (hour * 3600 + minute * 60 + second) as i64)
}

/// The fraction and zone after the seconds (`b[19..]`), applied to `local` seconds.
fn with_local_seconds(b: &[u8], local: i64) -> Option<u64> {
    let mut i = SECONDS_LEN;
    let mut millis = 0u64;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            if i - start < 3 {
                millis = millis * 10 + u64::from(b[i] - b'0');
            }
            i += 1;
        }
        let digits = i - start;
        if digits == 0 {
            return None;
        }
        for _ in digits..3 {
            millis *= 10;
        }
    }
    let offset_secs: i64 = match b.get(i..)? {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let two = |a: u8, c: u8| -> Option<i64> {
                (a.is_ascii_digit() && c.is_ascii_digit())
                    .then(|| i64::from(a - b'0') * 10 + i64::from(c - b'0'))
            };
            let (oh, om) = (two(*h1, *h2)?, two(*m1, *m2)?);
            if oh > 23 || om > 59 {
                return None;
            }
            let secs = oh * 3600 + om * 60;
            if *sign == b'+' {
                secs
            } else {
                -secs
            }
        }
        _ => return None,
    };
    u64::try_from(local - offset_secs)
        .ok()
        .and_then(|s| s.checked_mul(1000))
        .map(|ms| ms + millis)
}

/// Epoch text: 1 to 20 digits, optionally `.` and at least one more digit.
fn parse_epoch_text_ms(b: &[u8]) -> Option<u64> {
    let (int, frac) = match b.iter().position(|&c| c == b'.') {
        Some(dot) => (&b[..dot], Some(&b[dot + 1..])),
        None => (b, None),
    };
    let all_digits = |d: &[u8]| !d.is_empty() && d.iter().all(u8::is_ascii_digit);
    if int.len() > 20 || !all_digits(int) || frac.is_some_and(|f| !all_digits(f)) {
        return None;
    }
    let value = int
        .iter()
        .fold(0u128, |acc, &d| acc * 10 + u128::from(d - b'0'));
    // Milliseconds of a fraction of a second: its first three digits.
    let frac_ms = frac.map_or(0, |f| {
        (0..3).fold(0u64, |acc, i| {
            acc * 10 + f.get(i).map_or(0, |&d| u64::from(d - b'0'))
        })
    });
    epoch_ms(value, frac_ms)
}

/// 10^11, 10^14, 10^17, 10^20: the magnitudes where the unit changes.
const SECONDS_BELOW: u128 = 100_000_000_000;
const MILLIS_BELOW: u128 = SECONDS_BELOW * 1000;
const MICROS_BELOW: u128 = MILLIS_BELOW * 1000;
const NANOS_BELOW: u128 = MICROS_BELOW * 1000;

/// An epoch integer in the unit its magnitude says, as milliseconds; `frac_ms` (the
/// milliseconds of a fraction) only counts for seconds.
fn epoch_ms(value: u128, frac_ms: u64) -> Option<u64> {
    let ms = if value < SECONDS_BELOW {
        value * 1000 + u128::from(frac_ms)
    } else if value < MILLIS_BELOW {
        value
    } else if value < MICROS_BELOW {
        value / 1000
    } else if value < NANOS_BELOW {
        value / 1_000_000
    } else {
        return None;
    };
    u64::try_from(ms).ok()
}

/// An epoch number with a fraction, by the same magnitudes as [`epoch_ms`] (the thresholds
/// are exact in `f64`).
fn epoch_ms_float(f: f64) -> Option<u64> {
    if !f.is_finite() || f < 0.0 {
        return None;
    }
    let ms = if f < SECONDS_BELOW as f64 {
        f * 1000.0
    } else if f < MILLIS_BELOW as f64 {
        f
    } else if f < MICROS_BELOW as f64 {
        f / 1000.0
    } else if f < NANOS_BELOW as f64 {
        f / 1_000_000.0
    } else {
        return None;
    };
    // Below 10^14 and not negative: the cast is exact in its integer part.
    Some(ms.floor() as u64)
}

/// `dd/Mon/yyyy:hh:mm:ss ±hhmm` (exactly 26 bytes) as Unix milliseconds.
pub fn parse_clf_time_ms(b: &[u8]) -> Option<u64> {
    const MONTHS: [&[u8; 3]; 12] = [
        b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
        b"Dec",
    ];
    let &[d1, d2, b'/', m1, m2, m3, b'/', y1, y2, y3, y4, b':', h1, h2, b':', i1, i2, b':', s1, s2, b' ', sign, z1, z2, z3, z4] =
        b
    else {
        return None;
    };
    let month = MONTHS.iter().position(|m| **m == [m1, m2, m3])? + 1;
    // Rebuilt as RFC 3339's `YYYY-MM-DDThh:mm:ss` and read by the same code.
    let m = u8::try_from(month).ok()?;
    let head = [
        y1,
        y2,
        y3,
        y4,
        b'-',
        b'0' + m / 10,
        b'0' + m % 10,
        b'-',
        d1,
        d2,
        b'T',
        h1,
        h2,
        b':',
        i1,
        i2,
        b':',
        s1,
        s2,
    ];
    let local = local_seconds(&head)?;
    let sign = match sign {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let digit = |c: u8| c.is_ascii_digit().then(|| i64::from(c - b'0'));
    let (oh, om) = (digit(z1)? * 10 + digit(z2)?, digit(z3)? * 10 + digit(z4)?);
    if oh > 23 || om > 59 {
        return None;
    }
    let utc = local - sign * (oh * 3600 + om * 60);
    u64::try_from(utc).ok()?.checked_mul(1000)
}

fn is_leap(year: u64) -> bool {
    year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400))
}

fn days_in_month(year: u64, month: u64) -> u64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 (Howard Hinnant's `days_from_civil`), for years ≥ 1970.
fn days_from_civil(year: u64, month: u64, day: u64) -> i64 {
    let y = year as i64 - i64::from(month <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = month as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + day as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rfc3339_forms() {
        assert_eq!(parse_rfc3339_ms("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_rfc3339_ms("2020-06-24T15:27:00Z"),
            Some(1_593_012_420_000)
        );
        assert_eq!(
            parse_rfc3339_ms("2020-06-24T15:27:00.123456Z"),
            Some(1_593_012_420_123)
        );
        assert_eq!(
            parse_rfc3339_ms("2020-06-24t15:27:00.1z"),
            Some(1_593_012_420_100)
        );
        assert_eq!(
            parse_rfc3339_ms("2020-06-24T17:27:00+02:00"),
            Some(1_593_012_420_000)
        );
        assert_eq!(
            parse_rfc3339_ms("2020-06-24 10:27:00-05:00"),
            Some(1_593_012_420_000)
        );
        assert_eq!(
            parse_rfc3339_ms("2024-02-29T00:00:00Z"),
            Some(1_709_164_800_000)
        );
    }

    #[test]
    fn rejects_anything_else() {
        for text in [
            "",
            "2020-06-24",
            "2020-06-24T15:27:00",
            "2020-06-24T15:27:00.Z",
            "2020-13-01T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "2020-06-24T24:00:00Z",
            "2020-06-24T15:27:00+2:00",
            "2020-06-24T15:27:00Zjunk",
            "1969-12-31T23:59:59Z",
            "2020/06/24T15:27:00Z",
            "２020-06-24T15:27:00Z",
        ] {
            assert_eq!(parse_rfc3339_ms(text), None, "{text:?}");
        }
    }

    #[test]
    fn epoch_numbers_and_strings_by_magnitude() {
        let mut p = TimestampParser::default();
        let at = 1_593_012_420_000;
        for stamp in [
            Timestamp::Int(1_593_012_420),
            Timestamp::Int(1_593_012_420_000),
            Timestamp::Int(1_593_012_420_000_000),
            Timestamp::Int(1_593_012_420_000_000_000),
            Timestamp::Float(1_593_012_420.0),
            Timestamp::Text("1593012420"),
            Timestamp::Text("1593012420000"),
            Timestamp::Text("1593012420000000"),
            Timestamp::Text("1593012420000000000"),
            Timestamp::Text("1593012420000.9"),
            Timestamp::Millis(at),
        ] {
            assert_eq!(p.parse(stamp), Some(at), "{stamp:?}");
        }
        assert_eq!(
            p.parse(Timestamp::Text("1593012420.123456")),
            Some(at + 123)
        );
        assert_eq!(p.parse(Timestamp::Text("1593012420.5")), Some(at + 500));
        assert_eq!(p.parse(Timestamp::Float(1_593_012_420.5)), Some(at + 500));
        for stamp in [
            Timestamp::Int(-1),
            Timestamp::Float(-1.0),
            Timestamp::Float(f64::NAN),
            Timestamp::Float(f64::INFINITY),
            Timestamp::Float(1e20),
            Timestamp::Text("100000000000000000000"),
            Timestamp::Text("1593012420."),
            Timestamp::Text("1593012420.5.5"),
            Timestamp::Text("15930x2420"),
            Timestamp::Text(""),
        ] {
            assert_eq!(p.parse(stamp), None, "{stamp:?}");
        }
    }

    #[test]
    fn clf_times() {
        let mut p = TimestampParser::default();
        // 2000-10-10T20:55:36Z
        let at = 971_211_336_000;
        for text in [
            "10/Oct/2000:13:55:36 -0700",
            "10/Oct/2000:20:55:36 +0000",
            "11/Oct/2000:00:55:36 +0400",
        ] {
            assert_eq!(p.parse(Timestamp::Text(text)), Some(at), "{text}");
        }
        for text in [
            "10/oct/2000:13:55:36 -0700",
            "10/Oct/2000:13:55:36 -07:00",
            "10/Oct/2000:13:55:36",
            "31/Feb/2000:13:55:36 -0700",
            "10/Oct/2000:24:55:36 -0700",
            "10/Oct/2000:13:55:36 -2400",
            "10/Oct/2000:13:55:36 x0700",
            "10/Oct/1969:13:55:36 +0000",
            "1/Oct/2000:13:55:36 -0700",
        ] {
            assert_eq!(p.parse(Timestamp::Text(text)), None, "{text}");
        }
        assert_eq!(
            p.parse(Timestamp::Text("2000-10-10T20:55:36Z")),
            Some(at),
            "RFC 3339 still"
        );
    }

    #[test]
    fn the_remembering_parser_gives_the_same_answers() {
        let mut parser = TimestampParser::default();
        for text in [
            "2020-06-24T15:27:00.123Z",
            "2020-06-24T15:27:00.999+02:00",
            "2020-06-24T15:27:00Z",
            "2020-06-24T15:27:00",
            "2020-06-24T15:27:00Zjunk",
            "2020-06-24T15:27:01.5Z",
            "2020-06-24T15:27:0x.5Z",
            "2020-06-24T15:27:01-01:30",
            "1969-12-31T23:59:59Z",
            "1970-01-01T00:30:00+01:00",
            "",
            "2020-06-24T15:27:01.5Z",
        ] {
            assert_eq!(parser.parse_ms(text), parse_rfc3339_ms(text), "{text:?}");
        }
    }
}
