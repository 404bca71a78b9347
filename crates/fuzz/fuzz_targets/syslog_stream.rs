//! Fuzz target: the syslog TCP framing (`uniqd_ingest::syslog::stream::StreamFramer`) fed in
//! arbitrary reads, and the RFC 3164/5424 header parser (`uniqd_ingest::syslog::message`) on
//! every framed message and on the raw input (a UDP datagram).
//!
//! Input layout: byte 0 picks the message limit (1 to 256 bytes), bytes 1 and 2 seed the read
//! sizes (1 to 64 bytes), the rest is the stream.
//!
//! Properties: nothing panics; the connection's buffer never holds more than
//! `buffer_size()` bytes and a full buffer is always consumed; every message is at most the
//! limit; the frames are the same whatever the read sizes (compared with reads as large as
//! the buffer); a header's MSG is a non-empty suffix of its message.

#![no_main]

use libfuzzer_sys::fuzz_target;
use uniqd_ingest::syslog::message;
use uniqd_ingest::syslog::stream::{Frame, StreamFramer};

/// One frame, owned.
#[derive(Debug, PartialEq, Eq)]
enum Owned {
    Message(Vec<u8>),
    Oversized,
    Broken,
}

/// Whether `part` is a non-empty slice of `whole`.
fn within(part: &[u8], whole: &[u8]) -> bool {
    let start = (part.as_ptr() as usize).wrapping_sub(whole.as_ptr() as usize);
    !part.is_empty() && start <= whole.len() && start + part.len() <= whole.len()
}

/// The frames of `stream` read `read_size(i)` bytes at a time into a buffer of the framer's
/// size, as a connection does.
fn frames(stream: &[u8], max: usize, mut read_size: impl FnMut() -> usize) -> Vec<Owned> {
    let mut framer = StreamFramer::new(max);
    let capacity = framer.buffer_size();
    let mut buf: Vec<u8> = Vec::with_capacity(capacity);
    let mut out = Vec::new();
    let mut rest = stream;
    loop {
        let n = read_size().min(capacity - buf.len()).min(rest.len());
        if n == 0 && rest.is_empty() {
            break;
        }
        buf.extend_from_slice(&rest[..n]);
        rest = &rest[n..];
        loop {
            let (used, frame) = framer.next(&buf);
            assert!(used <= buf.len());
            let broken = frame == Some(Frame::Broken);
            match frame {
                Some(Frame::Message(m)) => {
                    assert!(m.len() <= max, "message over the limit");
                    if let Ok(msg) = message(m) {
                        assert!(within(msg, m), "MSG is not part of its message");
                    }
                    out.push(Owned::Message(m.to_vec()));
                }
                Some(Frame::Oversized) => out.push(Owned::Oversized),
                Some(Frame::Broken) => out.push(Owned::Broken),
                None => {}
            }
            buf.drain(..used);
            if broken {
                return out;
            }
            if used == 0 {
                assert!(buf.len() < capacity, "a full buffer must be consumed");
                break;
            }
        }
    }
    match framer.finish(&buf) {
        Some(Frame::Message(m)) => out.push(Owned::Message(m.to_vec())),
        Some(Frame::Oversized) => out.push(Owned::Oversized),
        Some(Frame::Broken) => out.push(Owned::Broken),
        None => {}
    }
    out
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    let max = usize::from(data[0]) + 1;
    let mut seed = u16::from_le_bytes([data[1], data[2]]);
    let stream = &data[3..];
    // A datagram: the header parser alone.
    if let Ok(msg) = message(stream) {
        assert!(within(msg, stream), "MSG is not part of the datagram");
    }
    let whole = frames(stream, max, || usize::MAX);
    let pieces = frames(stream, max, || {
        seed = seed.wrapping_mul(25_173).wrapping_add(13_849);
        usize::from(seed >> 10) + 1
    });
    assert_eq!(whole, pieces, "read sizes changed the frames");
});
