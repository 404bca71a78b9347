//! One access-log line in the **combined** or **common log format** (CLF), as nginx's default
//! `combined` format, Apache's `%h %l %u %t "%r" %>s %b` and most web servers write it:
//!
//! ```text
//! 203.0.113.9 - frank [10/Oct/2000:13:55:36 -0700] "GET /a?x=1 HTTP/1.0" 200 2326 "-" "UA"
//! ^ address   ^ ident ^ user ^ time                 ^ request          ^ status ^ size ^ referer, agent
//! ```
//!
//! [`parse_clf`] reads the address (the first field), the request target (the path and query
//! of the request line; the top pages drop the query) and the time
//! ([`super::timestamp::parse_clf_time_ms`]). It is strict: the line must be valid UTF-8 with
//! exactly this layout (single spaces between fields, three-digit status, a size of digits or
//! `-`), optionally followed by any number of further quoted fields (the combined format's
//! referer and user agent, nginx's `"$http_x_forwarded_for"`) and, once two quoted fields
//! are there, plain ones too (HAProxy's `option httplog clf` appends its timers and flags
//! after an empty referer and user agent), then nothing but spaces.
//! Anything else is refused with the byte offset of the first thing that is wrong. Quoted
//! fields may hold `\"` (Apache) and `\x22` (nginx) escapes, no control characters. A request
//! line that is not `METHOD target` or `METHOD target PROTOCOL` (nginx logs a garbage request
//! as it came, and `-` for none) is no URL, and the line still counts.
//!
//! It knows nothing of transports: `text/plain` bodies feed it lines today, a syslog listener
//! can hand it the message part of a syslog line the same way.
//!
//! ```
//! use uniqd_ingest::fields::clf::parse_clf;
//!
//! let line = br#"203.0.113.9 - - [10/Oct/2000:13:55:36 -0700] "GET /a?x HTTP/1.0" 200 2326 "-" "UA""#;
//! let fields = parse_clf(line).expect("a combined log line");
//! assert_eq!((fields.host, fields.target), ("203.0.113.9", Some("/a?x")));
//! assert_eq!(fields.time_ms, 971_211_336_000);
//! assert_eq!(parse_clf(b"203.0.113.9 - -").unwrap_err().offset, 15);
//! ```

use std::fmt;

use super::timestamp::parse_clf_time_ms;

/// What uniqd reads from one access-log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClfLine<'a> {
    /// The first field (not yet checked to be an address).
    pub host: &'a str,
    /// The request target, when the request line has one.
    pub target: Option<&'a str>,
    /// The time, in Unix milliseconds.
    pub time_ms: u64,
}

/// Why a line is not a combined or common log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClfError {
    /// Byte offset of the first thing that is wrong (the line's length when it ends early).
    pub offset: usize,
    /// What was expected there.
    pub reason: &'static str,
}

impl fmt::Display for ClfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at byte {}: {}", self.offset, self.reason)
    }
}

/// Reads one combined or common log line (no line terminator); see the [module docs](self).
///
/// # Errors
///
/// [`ClfError`] with the offset of the first byte that does not fit the format.
pub fn parse_clf(line: &[u8]) -> Result<ClfLine<'_>, ClfError> {
    let text = std::str::from_utf8(line).map_err(|e| ClfError {
        offset: e.valid_up_to(),
        reason: "not valid UTF-8",
    })?;
    let mut c = Cursor { text, pos: 0 };
    let host = c.token("expected the client address")?;
    c.space()?;
    c.token("expected the ident field (or -)")?;
    c.space()?;
    c.token("expected the user field (or -)")?;
    c.space()?;
    c.byte(b'[', "expected '[' opening the time")?;
    let time_at = c.pos;
    let time = c.until(b']', "expected ']' closing the time")?;
    let time_ms = parse_clf_time_ms(time.as_bytes()).ok_or(ClfError {
        offset: time_at,
        reason: "expected the time as dd/Mon/yyyy:hh:mm:ss +hhmm",
    })?;
    c.space()?;
    let request = c.quoted("expected '\"' opening the request line")?;
    c.space()?;
    c.status()?;
    c.space()?;
    c.size()?;
    let mut quoted = 0;
    while c.peek() == Some(b' ') {
        while c.peek() == Some(b' ') {
            c.pos += 1;
        }
        match c.peek() {
            None => break,
            // After the combined format's referer and user agent, plain fields too
            // (HAProxy's `option httplog clf` timers and flags, Apache's `%I %O`).
            Some(b) if quoted >= 2 && b != b'"' => {
                c.token("expected a field or the end of the line")?;
            }
            Some(_) => {
                c.quoted("expected a quoted field or the end of the line")?;
                quoted += 1;
            }
        }
    }
    if c.peek().is_some() {
        return Err(c.error("expected a space or the end of the line"));
    }
    Ok(ClfLine {
        host,
        target: request_target(request),
        time_ms,
    })
}

/// The target of `METHOD target` or `METHOD target PROTOCOL`.
fn request_target(request: &str) -> Option<&str> {
    let mut parts = request.split(' ');
    let (method, target) = (parts.next()?, parts.next()?);
    let ok = !method.is_empty()
        && method.bytes().all(|b| b.is_ascii_alphabetic())
        && !target.is_empty()
        && parts.next().is_none_or(|p| p.starts_with("HTTP/"))
        && parts.next().is_none();
    ok.then_some(target)
}

struct Cursor<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    #[cold]
    fn error(&self, reason: &'static str) -> ClfError {
        ClfError {
            offset: self.pos,
            reason,
        }
    }

    fn byte(&mut self, want: u8, reason: &'static str) -> Result<(), ClfError> {
        if self.peek() == Some(want) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.error(reason))
        }
    }

    fn space(&mut self) -> Result<(), ClfError> {
        self.byte(b' ', "expected a single space")
    }

    /// One or more bytes up to the next space, no control characters.
    fn token(&mut self, reason: &'static str) -> Result<&'a str, ClfError> {
        let start = self.pos;
        let bytes = &self.text.as_bytes()[start..];
        let len = bytes
            .iter()
            .position(|&b| b <= b' ' || b == 0x7f)
            .unwrap_or(bytes.len());
        if len == 0 || bytes.get(len).is_some_and(|&b| b != b' ') {
            return Err(ClfError {
                offset: start + len,
                reason,
            });
        }
        self.pos += len;
        Ok(&self.text[start..start + len])
    }

    /// The text up to `end` (consumed), none of it a control character.
    fn until(&mut self, end: u8, reason: &'static str) -> Result<&'a str, ClfError> {
        let start = self.pos;
        let bytes = &self.text.as_bytes()[start..];
        match bytes.iter().position(|&b| b == end || b < b' ') {
            Some(len) if bytes[len] == end => {
                self.pos += len + 1;
                // `end` is ASCII: a char boundary.
                Ok(&self.text[start..start + len])
            }
            Some(len) => Err(ClfError {
                offset: start + len,
                reason,
            }),
            None => Err(ClfError {
                offset: self.text.len(),
                reason,
            }),
        }
    }

    /// `"..."` with `\` escaping the next byte; the contents, escapes as they are.
    fn quoted(&mut self, reason: &'static str) -> Result<&'a str, ClfError> {
        self.byte(b'"', reason)?;
        let start = self.pos;
        let bytes = self.text.as_bytes();
        let mut i = start;
        loop {
            match bytes.get(i).copied() {
                None => {
                    return Err(ClfError {
                        offset: bytes.len(),
                        reason: "unterminated quoted field",
                    })
                }
                Some(b'"') => break,
                Some(b'\\') if bytes.get(i + 1).is_some_and(|&b| b >= b' ' && b != 0x7f) => {
                    i += 2;
                }
                Some(b) if b < b' ' || b == 0x7f || b == b'\\' => {
                    return Err(ClfError {
                        offset: i,
                        reason: "control character or lone backslash in a quoted field",
                    })
                }
                Some(_) => i += 1,
            }
        }
        self.pos = i + 1;
        // Between two ASCII quotes, after a check of every byte: char boundaries.
        Ok(&self.text[start..i])
    }

    fn status(&mut self) -> Result<(), ClfError> {
        let digits = self.text.as_bytes().get(self.pos..self.pos + 3);
        match digits {
            Some(d) if d.iter().all(u8::is_ascii_digit) && d[0] != b'0' => {
                self.pos += 3;
                Ok(())
            }
            _ => Err(self.error("expected the three-digit status")),
        }
    }

    fn size(&mut self) -> Result<(), ClfError> {
        if self.peek() == Some(b'-') {
            self.pos += 1;
            return Ok(());
        }
        let start = self.pos;
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.pos += 1;
        }
        if self.pos == start {
            return Err(self.error("expected the response size (digits or -)"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COMBINED: &str = r#"203.0.113.9 - frank [10/Oct/2000:13:55:36 -0700] "GET /a?x=1 HTTP/1.0" 200 2326 "http://ex.com/start.html" "Mozilla/4.08 [en] (Win98; I ;Nav)""#;

    fn ok(line: &str) -> ClfLine<'_> {
        parse_clf(line.as_bytes()).unwrap_or_else(|e| panic!("{line}: {e}"))
    }

    fn err(line: &str) -> (usize, &'static str) {
        let e = parse_clf(line.as_bytes()).expect_err(line);
        (e.offset, e.reason)
    }

    #[test]
    fn combined_and_common_lines() {
        let f = ok(COMBINED);
        assert_eq!(f.host, "203.0.113.9");
        assert_eq!(f.target, Some("/a?x=1"));
        assert_eq!(f.time_ms, 971_211_336_000);
        let common = r#"::1 - - [10/Oct/2000:13:55:36 -0700] "POST /b HTTP/1.1" 404 -"#;
        assert_eq!(ok(common).host, "::1");
        assert_eq!(ok(common).target, Some("/b"));
        // nginx's `main` adds the forwarded list; trailing spaces are fine.
        let main = format!("{COMBINED} \"198.51.100.1, 10.0.0.1\"  ");
        assert_eq!(ok(&main).target, Some("/a?x=1"));
        // HAProxy 2.6's `option httplog clf`, as its syslog message carries it.
        let haproxy = r#"127.0.0.3 - - [07/Dec/2026:19:36:46 +0000] "GET /a/b?x=1 HTTP/1.1" 200 73 "" "" 48178 478 "web" "web" "<NOSRV>" 0 -1 -1 -1 0 LR-- 1 1 0 0 0 0 0 "" "" "#;
        let f = ok(haproxy);
        assert_eq!((f.host, f.target), ("127.0.0.3", Some("/a/b?x=1")));
    }

    #[test]
    fn odd_request_lines_are_no_url() {
        for request in ["-", "", "\\x16\\x03\\x01", "GET", "GET  /a", "GET /a FTP/1"] {
            let line = format!(r#"1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] "{request}" 400 0"#);
            assert_eq!(ok(&line).target, None, "{request}");
        }
        let http09 = r#"1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] "GET /old" 200 0"#;
        assert_eq!(ok(http09).target, Some("/old"));
        let escaped = r#"1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] "GET /a\"b\x22 HTTP/1.1" 200 0"#;
        assert_eq!(ok(escaped).target, Some(r#"/a\"b\x22"#));
    }

    #[test]
    fn anything_else_is_refused_with_its_offset() {
        let t = "[10/Oct/2000:13:55:36 -0700]";
        for (line, offset) in [
            (String::new(), 0),
            (" 1.2.3.4 - - x".to_owned(), 0),
            ("1.2.3.4  - - x".to_owned(), 8),
            (format!("1.2.3.4 - - {t}"), 40),
            (
                "1.2.3.4 - - [10/Oct/2000:13:55:36 -07:00] \"GET / HTTP/1.1\" 200 1".to_owned(),
                13,
            ),
            (format!("1.2.3.4 - - {t} \"GET / HTTP/1.1\" 20 1"), 58),
            (format!("1.2.3.4 - - {t} \"GET / HTTP/1.1\" 200 x"), 62),
            (format!("1.2.3.4 - - {t} \"GET / HTTP/1.1\" 200 1 x"), 64),
            (format!("1.2.3.4 - - {t} \"GET / HTTP/1.1\" 200 1x"), 63),
            (format!("1.2.3.4 - - {t} \"GET / HTTP/1.1\" 200 1 \"-"), 66),
            // Plain fields only after two quoted ones, and no control characters in them.
            (
                format!("1.2.3.4 - - {t} \"GET / HTTP/1.1\" 200 1 \"-\" x"),
                68,
            ),
            (
                format!("1.2.3.4 - - {t} \"GET / HTTP/1.1\" 200 1 \"-\" \"-\" x\ty"),
                73,
            ),
            (format!("1.2.3.4 - - {t} \"GET /\ta HTTP/1.1\" 200 1"), 47),
            (format!("1.2.3.4 - - {t} GET / HTTP/1.1 200 1"), 41),
            ("{\"ip\":\"1.2.3.4\"}".to_owned(), 16),
        ] {
            assert_eq!(err(&line).0, offset, "{line}: {:?}", err(&line));
        }
        let bad_utf8 = parse_clf(b"1.2.3.4 \xff").expect_err("not UTF-8");
        assert_eq!((bad_utf8.offset, bad_utf8.reason), (8, "not valid UTF-8"));
    }
}
