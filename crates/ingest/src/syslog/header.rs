//! The syslog header of one message: RFC 3164 (BSD, what nginx and HAProxy send) and
//! RFC 5424, told apart by the byte after `<PRI>` (`1 ` is the 5424 version). [`message`]
//! checks the header and returns the MSG part, the log.
//!
//! Strict where a mistake would count garbage, tolerant where real senders differ:
//! * `<PRI>` must be 1 to 3 digits, at most 191 (facility 23, severity 7).
//! * RFC 3164: the timestamp must be `Mmm dd hh:mm:ss` (day padded with a space or a zero).
//!   The HOSTNAME is optional (nginx's `nohostname`, HAProxy's default leave it out): the
//!   first word ending in `:` is the TAG (`nginx:`, `haproxy[7]:`), and a word before it the
//!   host. A message without a TAG ending in `:` is refused (a sender we do not know).
//! * RFC 5424: five header fields (timestamp, host, app, procid, msgid), each `-` or printable
//!   ASCII without spaces, then structured data (`-` or `[id k="v" ...]...`, with `\"`, `\\`,
//!   `\]` escapes in values), then an optional space and MSG (a UTF-8 BOM is removed).
//! * A trailing `\n`, `\r\n` or NUL (some senders end datagrams with one) is not part of MSG.

use std::fmt;

/// Why a syslog message was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderError {
    /// No `<PRI>` of 1 to 3 digits (≤ 191) at the start.
    Priority,
    /// An RFC 3164 timestamp other than `Mmm dd hh:mm:ss`.
    Timestamp,
    /// An RFC 3164 message without a `TAG:`.
    Tag,
    /// An RFC 5424 header field missing or not printable ASCII.
    Field,
    /// RFC 5424 structured data that is neither `-` nor well-formed elements.
    StructuredData,
    /// Nothing after the header.
    Empty,
}

impl fmt::Display for HeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Priority => "no <PRI> (1 to 3 digits, at most 191) at the start",
            Self::Timestamp => "RFC 3164 timestamp is not `Mmm dd hh:mm:ss`",
            Self::Tag => "RFC 3164 message has no `TAG:`",
            Self::Field => "RFC 5424 header field missing or not printable ASCII",
            Self::StructuredData => "RFC 5424 structured data is malformed",
            Self::Empty => "empty message",
        })
    }
}

impl std::error::Error for HeaderError {}

/// The MSG of one syslog message (RFC 3164 or RFC 5424), see the module docs.
///
/// ```
/// use uniqd_ingest::syslog::message;
///
/// let nginx = b"<190>Dec  7 16:37:52 web1 nginx: {\"ip\":\"1.2.3.4\"}";
/// assert_eq!(message(nginx), Ok(&b"{\"ip\":\"1.2.3.4\"}"[..]));
/// let rfc5424 = b"<165>1 2003-10-11T22:14:15.003Z host app - - [id a=\"b\"] hello";
/// assert_eq!(message(rfc5424), Ok(&b"hello"[..]));
/// ```
///
/// # Errors
///
/// A [`HeaderError`] naming the first part that is not syslog.
pub fn message(bytes: &[u8]) -> Result<&[u8], HeaderError> {
    let bytes = trim_trailer(bytes);
    let rest = priority(bytes)?;
    let msg = match rest {
        [b'1', b' ', rest @ ..] => rfc5424(rest)?,
        _ => rfc3164(rest)?,
    };
    if msg.is_empty() {
        return Err(HeaderError::Empty);
    }
    Ok(msg)
}

/// `bytes` without one trailing `\n`, `\r\n` or NUL.
fn trim_trailer(bytes: &[u8]) -> &[u8] {
    let bytes = bytes.strip_suffix(b"\0").unwrap_or(bytes);
    let bytes = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    bytes.strip_suffix(b"\r").unwrap_or(bytes)
}

/// What follows a valid `<PRI>`.
fn priority(bytes: &[u8]) -> Result<&[u8], HeaderError> {
    let rest = bytes.strip_prefix(b"<").ok_or(HeaderError::Priority)?;
    let end = rest
        .iter()
        .take(4)
        .position(|&b| b == b'>')
        .ok_or(HeaderError::Priority)?;
    let digits = &rest[..end];
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Err(HeaderError::Priority);
    }
    let value = digits
        .iter()
        .fold(0u32, |v, &d| v * 10 + u32::from(d - b'0'));
    // "<0>" is valid; a leading zero in a longer number is not (RFC 5424 6.2.1).
    if value > 191 || (digits.len() > 1 && digits[0] == b'0') {
        return Err(HeaderError::Priority);
    }
    Ok(&rest[end + 1..])
}

const MONTHS: [&[u8; 3]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

/// RFC 3164 after `<PRI>`: `Mmm dd hh:mm:ss [HOST ]TAG: MSG`.
fn rfc3164(rest: &[u8]) -> Result<&[u8], HeaderError> {
    let (stamp, rest) = rest.split_at_checked(16).ok_or(HeaderError::Timestamp)?;
    if !is_bsd_timestamp(stamp) {
        return Err(HeaderError::Timestamp);
    }
    // The first word ending in ':' is the tag; at most one word (the host) before it.
    let (first, after_first) = word(rest);
    let after_tag = if is_tag(first) {
        after_first
    } else {
        let (second, after_second) = word(after_first);
        if first.is_empty() || !is_tag(second) {
            return Err(HeaderError::Tag);
        }
        after_second
    };
    Ok(after_tag)
}

/// `Mmm dd hh:mm:ss ` (16 bytes, with the space after it).
fn is_bsd_timestamp(s: &[u8]) -> bool {
    let digit = |i: usize| s[i].is_ascii_digit();
    MONTHS.iter().any(|m| &s[..3] == *m)
        && s[3] == b' '
        && (s[4] == b' ' || digit(4))
        && digit(5)
        && s[6] == b' '
        && digit(7)
        && digit(8)
        && s[9] == b':'
        && digit(10)
        && digit(11)
        && s[12] == b':'
        && digit(13)
        && digit(14)
        && s[15] == b' '
}

/// A TAG word: printable, ends in ':' (`nginx:`, `haproxy[123]:`), more than the colon.
fn is_tag(w: &[u8]) -> bool {
    w.len() > 1 && w.ends_with(b":") && w.iter().all(|b| b.is_ascii_graphic())
}

/// The bytes up to the first space, and what follows that one space.
fn word(s: &[u8]) -> (&[u8], &[u8]) {
    match s.iter().position(|&b| b == b' ') {
        Some(i) => (&s[..i], &s[i + 1..]),
        None => (s, &[]),
    }
}

/// RFC 5424 after `<PRI>1 `: `TIMESTAMP HOST APP PROCID MSGID SD[ MSG]`.
fn rfc5424(mut rest: &[u8]) -> Result<&[u8], HeaderError> {
    for _ in 0..5 {
        let (field, after) = word(rest);
        if field.is_empty()
            || field.len() > 255
            || !field.iter().all(u8::is_ascii_graphic)
            || after.len() == rest.len() - field.len()
        {
            // Empty, too long, not printable, or the last word (no space after it).
            return Err(HeaderError::Field);
        }
        rest = after;
    }
    let rest = structured_data(rest)?;
    let msg = match rest {
        [] => rest,
        [b' ', msg @ ..] => msg,
        _ => return Err(HeaderError::StructuredData),
    };
    Ok(msg.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(msg))
}

/// What follows the structured data: `-`, or one or more `[SD-ID (SP NAME="VALUE")*]`.
fn structured_data(s: &[u8]) -> Result<&[u8], HeaderError> {
    if let Some(rest) = s.strip_prefix(b"-") {
        return Ok(rest);
    }
    let mut i = 0;
    if s.first() != Some(&b'[') {
        return Err(HeaderError::StructuredData);
    }
    while s.get(i) == Some(&b'[') {
        i = sd_element(s, i + 1).ok_or(HeaderError::StructuredData)?;
    }
    Ok(&s[i..])
}

/// From just after a `[`, the index just after its `]`.
fn sd_element(s: &[u8], mut i: usize) -> Option<usize> {
    let name = |s: &[u8], i: usize| {
        let len = s[i..]
            .iter()
            .take_while(|&&b| b.is_ascii_graphic() && !matches!(b, b'=' | b']' | b'"'))
            .count();
        (len > 0).then_some(i + len)
    };
    i = name(s, i)?;
    loop {
        match s.get(i)? {
            b']' => return Some(i + 1),
            b' ' => {
                i = name(s, i + 1)?;
                if s.get(i..i + 2)? != b"=\"" {
                    return None;
                }
                i += 2;
                // The value, up to an unescaped '"'.
                loop {
                    match s.get(i)? {
                        b'\\' => i += 2,
                        b'"' => break,
                        _ => i += 1,
                    }
                }
                i += 1;
            }
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests;
