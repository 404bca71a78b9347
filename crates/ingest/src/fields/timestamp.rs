//! Parsing a log line's `timestamp` (RFC 3339, e.g. `2020-06-24T15:27:00.123Z` or
//! `2020-06-24T17:27:00+02:00`) into Unix milliseconds, by hand and without allocating, for
//! the time-window counts.
//!
//! Accepted: `YYYY-MM-DD`, then `T`, `t` or a space, `hh:mm:ss`, an optional fraction of any
//! length (digits beyond milliseconds are truncated), then `Z`, `z` or `±hh:mm`. Years before
//! 1970, times before the epoch and anything else give `None`, and the line then counts at its
//! arrival time. A leap second (`:60`) is read as the next second's start.

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
