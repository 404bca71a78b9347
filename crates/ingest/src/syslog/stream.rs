//! TCP framing of syslog (RFC 6587): where one message ends in a stream.
//!
//! Two framings exist and senders do not announce theirs, so [`StreamFramer`] decides per
//! connection from its first byte: a digit starts *octet counting* (§3.4.1, `LEN SP MSG`,
//! what rsyslog and syslog-ng send with `framing octet-counted`), a `<` starts
//! *non-transparent framing* (§3.4.2, each message ends with `\n`, a `\r` before it dropped;
//! what most others send). Anything else is not syslog and the connection is closed.
//!
//! A message longer than the limit is skipped (the rest of its line, or its announced
//! length) and reported once as [`Frame::Oversized`]: the connection goes on with the next
//! message and never buffers more than the limit. A length prefix that is not a number
//! cannot be resynchronised: [`Frame::Broken`], and the caller closes the connection.

/// What [`StreamFramer::next`] found at the start of the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame<'a> {
    /// One whole message (without its length prefix or line end).
    Message(&'a [u8]),
    /// A message longer than the limit, skipped.
    Oversized,
    /// Not a syslog stream (or a broken length prefix): close the connection.
    Broken,
}

/// Which framing a connection uses, decided by its first byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    OctetCounting,
    NonTransparent,
}

/// The longest octet count accepted in a prefix: 10 digits.
const MAX_LEN_DIGITS: usize = 10;

/// Splits one connection's bytes into messages; see the module docs.
#[derive(Debug)]
pub struct StreamFramer {
    max: usize,
    mode: Option<Mode>,
    /// Bytes of an oversized octet-counted message still to skip.
    skip: usize,
    /// Skipping an oversized line up to its `\n`.
    skip_line: bool,
}

impl StreamFramer {
    /// A framer for a new connection whose messages may be at most `max_message_bytes`.
    #[must_use]
    pub fn new(max_message_bytes: usize) -> Self {
        Self {
            max: max_message_bytes,
            mode: None,
            skip: 0,
            skip_line: false,
        }
    }

    /// How many bytes the caller should be able to hold so that any message within the limit
    /// fits: the limit, its length prefix and its line end.
    #[must_use]
    pub fn buffer_size(&self) -> usize {
        self.max + MAX_LEN_DIGITS + 2
    }

    /// The next frame at the start of `buf`: `(consumed, frame)`. The caller removes the
    /// `consumed` bytes from its buffer and calls again; `None` means more bytes are needed
    /// (once the buffer holds [`buffer_size`](Self::buffer_size) bytes, `next` always consumes
    /// some).
    pub fn next<'a>(&mut self, buf: &'a [u8]) -> (usize, Option<Frame<'a>>) {
        if self.skip > 0 {
            let n = self.skip.min(buf.len());
            self.skip -= n;
            return (n, None);
        }
        if self.skip_line {
            return match memchr::memchr(b'\n', buf) {
                Some(i) => {
                    self.skip_line = false;
                    (i + 1, None)
                }
                None => (buf.len(), None),
            };
        }
        let Some(&first) = buf.first() else {
            return (0, None);
        };
        let mode = match self.mode {
            Some(mode) => mode,
            None => {
                let mode = match first {
                    b'0'..=b'9' => Mode::OctetCounting,
                    b'<' => Mode::NonTransparent,
                    // Blank lines before the first message.
                    b'\n' | b'\r' => return (1, None),
                    _ => return (buf.len(), Some(Frame::Broken)),
                };
                self.mode = Some(mode);
                mode
            }
        };
        match mode {
            Mode::OctetCounting => self.octet_counted(buf),
            Mode::NonTransparent => self.line(buf),
        }
    }

    fn octet_counted<'a>(&mut self, buf: &'a [u8]) -> (usize, Option<Frame<'a>>) {
        let digits = buf
            .iter()
            .take(MAX_LEN_DIGITS + 1)
            .take_while(|b| b.is_ascii_digit())
            .count();
        match buf.get(digits) {
            None if digits <= MAX_LEN_DIGITS => return (0, None),
            Some(b' ') if (1..=MAX_LEN_DIGITS).contains(&digits) && buf[0] != b'0' => {}
            _ => return (buf.len(), Some(Frame::Broken)),
        }
        let len = buf[..digits].iter().fold(0usize, |n, &d| {
            n.saturating_mul(10).saturating_add(usize::from(d - b'0'))
        });
        let start = digits + 1;
        if len > self.max {
            self.skip = len;
            return (start, Some(Frame::Oversized));
        }
        match buf.get(start..start + len) {
            Some(msg) => (start + len, Some(Frame::Message(msg))),
            None => (0, None),
        }
    }

    fn line<'a>(&mut self, buf: &'a [u8]) -> (usize, Option<Frame<'a>>) {
        match memchr::memchr(b'\n', buf) {
            Some(0) => (1, None),
            Some(i) => {
                let msg = buf[..i].strip_suffix(b"\r").unwrap_or(&buf[..i]);
                if msg.len() > self.max {
                    (i + 1, Some(Frame::Oversized))
                } else if msg.is_empty() {
                    (i + 1, None)
                } else {
                    (i + 1, Some(Frame::Message(msg)))
                }
            }
            None if buf.len() > self.max + 1 => {
                self.skip_line = true;
                (buf.len(), Some(Frame::Oversized))
            }
            None => (0, None),
        }
    }

    /// At the end of the stream, what the buffer still holds: a last line without its `\n`
    /// is a message; a partial octet-counted message is reported as oversized-or-truncated
    /// ([`Frame::Broken`]); `None` when nothing is left.
    pub fn finish<'a>(&mut self, buf: &'a [u8]) -> Option<Frame<'a>> {
        if buf.is_empty() || self.skip > 0 || self.skip_line {
            return None;
        }
        match self.mode {
            Some(Mode::NonTransparent) => {
                let msg = buf.strip_suffix(b"\r").unwrap_or(buf);
                if msg.len() > self.max {
                    Some(Frame::Oversized)
                } else {
                    (!msg.is_empty()).then_some(Frame::Message(msg))
                }
            }
            _ if buf.iter().all(|b| matches!(b, b'\r' | b'\n')) => None,
            _ => Some(Frame::Broken),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Frame, StreamFramer};

    /// Every frame of `stream` fed in pieces of `piece` bytes, as a connection would.
    fn frames(stream: &[u8], piece: usize, max: usize) -> Vec<Result<Vec<u8>, &'static str>> {
        let mut framer = StreamFramer::new(max);
        let mut buf = Vec::new();
        let mut out = Vec::new();
        let push = |frame: Frame<'_>, out: &mut Vec<_>| {
            out.push(match frame {
                Frame::Message(m) => Ok(m.to_vec()),
                Frame::Oversized => Err("oversized"),
                Frame::Broken => Err("broken"),
            });
        };
        for chunk in stream.chunks(piece) {
            buf.extend_from_slice(chunk);
            loop {
                let (used, frame) = framer.next(&buf);
                let broken = frame == Some(Frame::Broken);
                if let Some(frame) = frame {
                    push(frame, &mut out);
                }
                buf.drain(..used);
                if broken {
                    return out;
                }
                if used == 0 {
                    assert!(
                        buf.len() < framer.buffer_size(),
                        "must consume a full buffer"
                    );
                    break;
                }
            }
        }
        if let Some(frame) = framer.finish(&buf) {
            push(frame, &mut out);
        }
        out
    }

    fn msgs(list: &[&str]) -> Vec<Result<Vec<u8>, &'static str>> {
        list.iter()
            .map(|m| match *m {
                "oversized" => Err("oversized"),
                "broken" => Err("broken"),
                m => Ok(m.as_bytes().to_vec()),
            })
            .collect()
    }

    #[test]
    fn octet_counting_in_any_pieces() {
        let stream = b"5 <1>ab3 <2>10 <3>a\nb c d1 x";
        for piece in 1..stream.len() {
            assert_eq!(
                frames(stream, piece, 64),
                msgs(&["<1>ab", "<2>", "<3>a\nb c d", "x"]),
                "piece {piece}"
            );
        }
    }

    #[test]
    fn newline_framing_in_any_pieces() {
        let stream = b"\n<1>a\r\n<2>b\n\n<3>c";
        for piece in 1..stream.len() {
            assert_eq!(
                frames(stream, piece, 64),
                msgs(&["<1>a", "<2>b", "<3>c"]),
                "piece {piece}"
            );
        }
    }

    #[test]
    fn oversized_messages_are_skipped_and_the_stream_goes_on() {
        for piece in [1, 3, 7, 100] {
            assert_eq!(
                frames(b"3 <1>20 <2>xxxxxxxxxxxxxxxxx3 <3>", piece, 8),
                msgs(&["<1>", "oversized", "<3>"]),
                "piece {piece}"
            );
            assert_eq!(
                frames(
                    b"<1>a\n<2>xxxxxxxxxxxxxxxxxxxxxxxxxx\n<3>c\n<4>dddddddddddddd",
                    piece,
                    8
                ),
                msgs(&["<1>a", "oversized", "<3>c", "oversized"]),
                "piece {piece}"
            );
        }
    }

    #[test]
    fn what_is_not_syslog_breaks_the_connection() {
        assert_eq!(frames(b"GET / HTTP/1.1\r\n", 4, 64), msgs(&["broken"]));
        assert_eq!(frames(b"3 <1>x 2 <2>", 100, 64), msgs(&["<1>", "broken"]));
        assert_eq!(frames(b"05 <1>ab", 100, 64), msgs(&["broken"]));
        assert_eq!(frames(b"12345678901 x", 100, 64), msgs(&["broken"]));
        // Cut short at the end of the stream.
        assert_eq!(frames(b"9 <1>ab", 100, 64), msgs(&["broken"]));
    }
}
