//! Between the transport and framing: undoing a body's `Content-Encoding` (`gzip`, `deflate`,
//! `zstd`) as it streams in ([`Decoder`]).
//!
//! The decoder knows no framing: the transport pushes each received chunk in and pulls
//! decoded bytes out, at most [`OUTPUT_BYTES`] at a time, and feeds them to whatever framing
//! the `Content-Type` picked (one object, an array or stream, NDJSON, or plain lines). It
//! never holds more than two such output buffers (the last piece is held back until the
//! stream proves complete, see [`Decoder`]) and the codec's own state, so a decompression bomb
//! costs no more memory than an honest body: the transport counts the decoded bytes against
//! the same limit as the wire bytes and stops (413) as soon as they pass it.
//!
//! | coding | codec | state per connection |
//! |---|---|---|
//! | `gzip` (also `x-gzip`), several members allowed | flate2 `MultiGzDecoder` on the zlib-rs backend | [`INFLATE_BYTES`]: the 32 KiB window and the inflate state, fixed |
//! | `deflate`: the zlib format (RFC 1950), as RFC 9110 defines it | flate2 `Decompress` (zlib-rs) | [`INFLATE_BYTES`] |
//! | `zstd`, one or more frames | zstd-safe's `DCtx` (the reference C library), reused: one idle context per runtime thread, of at most 1 MiB | the frame's window, at most 2^[`ZSTD_WINDOW_LOG_MAX`] = 8 MiB (a frame asking for more is refused as malformed), plus about 100 KiB; measured after each step ([`Decoder::held_bytes`]) |
//!
//! Plus two output buffers of [`OUTPUT_BYTES`] for each. The transport reserves
//! [`Decoder::held_bytes`] from the global buffer budget before it feeds the next chunk.
//! Anything the codec refuses, a stream cut short (no gzip trailer, no zlib end, a zstd frame
//! unfinished) or bytes after a zlib stream is [`Malformed`].

use std::io::{self, BufRead, Read};

use bytes::Bytes;
use flate2::bufread::MultiGzDecoder;
use flate2::{Decompress, FlushDecompress, Status};

/// The decoded bytes handed out per step.
pub const OUTPUT_BYTES: usize = 32 * 1024;

/// What an inflate stream holds besides the output buffer: zlib-rs's state and its 32 KiB
/// window (about 45 KiB; counted as 64 KiB).
pub const INFLATE_BYTES: usize = 64 * 1024;

/// The largest zstd window accepted: 2^23 = 8 MiB (zstd's levels up to 19 use at most that;
/// `--long` frames with larger windows are refused as malformed).
pub const ZSTD_WINDOW_LOG_MAX: u32 = 23;

/// A body's content coding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coding {
    /// Not encoded.
    Identity,
    /// `gzip` (RFC 1952).
    Gzip,
    /// `deflate`: zlib (RFC 1950).
    Deflate,
    /// `zstd` (RFC 8878).
    Zstd,
}

impl Coding {
    /// The coding a `Content-Encoding` token names, if uniqd decodes it.
    #[must_use]
    pub fn from_token(token: &[u8]) -> Option<Self> {
        const NAMES: [(&[u8], Coding); 5] = [
            (b"identity", Coding::Identity),
            (b"gzip", Coding::Gzip),
            (b"x-gzip", Coding::Gzip),
            (b"deflate", Coding::Deflate),
            (b"zstd", Coding::Zstd),
        ];
        NAMES
            .iter()
            .find(|(name, _)| token.eq_ignore_ascii_case(name))
            .map(|&(_, coding)| coding)
    }

    /// Its `Content-Encoding` name.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Identity => "identity",
            Self::Gzip => "gzip",
            Self::Deflate => "deflate",
            Self::Zstd => "zstd",
        }
    }
}

/// The encoded data is malformed, or ends too early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Malformed;

/// The compressed bytes pushed so far: a [`BufRead`] that says `WouldBlock` when it needs the
/// next chunk, and end of file once the body ended.
#[derive(Debug, Default)]
struct Input {
    chunk: Bytes,
    pos: usize,
    eof: bool,
}

impl Input {
    fn rest(&self) -> &[u8] {
        self.chunk.get(self.pos..).unwrap_or_default()
    }
}

impl Read for Input {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let rest = self.fill_buf()?;
        let n = rest.len().min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for Input {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.pos < self.chunk.len() || self.eof {
            Ok(self.rest())
        } else {
            Err(io::ErrorKind::WouldBlock.into())
        }
    }

    fn consume(&mut self, amount: usize) {
        self.pos = (self.pos + amount).min(self.chunk.len());
    }
}

enum Engine {
    Gzip(Box<MultiGzDecoder<Input>>),
    Zlib {
        inflate: Box<Decompress>,
        input: Input,
        ended: bool,
        /// The last step filled the output: the codec may hold more without new input.
        pending: bool,
    },
    Zstd {
        dctx: PooledDCtx,
        input: Input,
        /// Inside a frame (its end not decoded yet).
        in_frame: bool,
        pending: bool,
    },
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Gzip(_) => "Gzip",
            Self::Zlib { .. } => "Zlib",
            Self::Zstd { .. } => "Zstd",
        })
    }
}

/// Decodes one body of a [`Coding`] other than identity (see the module docs).
///
/// Decoded bytes are handed out one output buffer behind the codec: the last piece is
/// released only once the stream is known to be complete (the gzip trailer's CRC and
/// length checked, the zlib or zstd end reached), so that a body of up to [`OUTPUT_BYTES`]
/// (every single log) is counted only if its encoding is intact; a longer one has counted
/// all but its last piece when its end turns out broken (and says so).
#[derive(Debug)]
pub struct Decoder {
    coding: Coding,
    engine: Engine,
    /// Two output buffers: the codec writes into one while the other holds the piece not
    /// yet handed out.
    out: [Box<[u8]>; 2],
    /// The buffer the codec writes into next.
    write: usize,
    /// A decoded piece held back: its buffer and length.
    held: Option<(usize, usize)>,
    /// The buffer of the piece handed out last ([`Self::output`]).
    ready: usize,
}

impl Decoder {
    /// A decoder for `coding`; `None` for [`Coding::Identity`].
    #[must_use]
    pub fn new(coding: Coding) -> Option<Self> {
        let engine = match coding {
            Coding::Identity => return None,
            Coding::Gzip => Engine::Gzip(Box::new(MultiGzDecoder::new(Input::default()))),
            Coding::Deflate => Engine::Zlib {
                inflate: Box::new(Decompress::new(true)),
                input: Input::default(),
                ended: false,
                pending: false,
            },
            Coding::Zstd => Engine::Zstd {
                dctx: PooledDCtx::take(),
                input: Input::default(),
                in_frame: false,
                pending: false,
            },
        };
        let buffer = || vec![0; OUTPUT_BYTES].into_boxed_slice();
        Some(Self {
            coding,
            engine,
            out: [buffer(), buffer()],
            write: 0,
            held: None,
            ready: 0,
        })
    }

    /// The coding it undoes.
    #[must_use]
    pub fn coding(&self) -> Coding {
        self.coding
    }

    /// The bytes this decoder holds: the two output buffers and the codec's state.
    #[must_use]
    pub fn held_bytes(&self) -> usize {
        2 * OUTPUT_BYTES
            + match &self.engine {
                Engine::Gzip(_) | Engine::Zlib { .. } => INFLATE_BYTES,
                Engine::Zstd { dctx, .. } => dctx.sizeof(),
            }
    }

    fn input(&mut self) -> &mut Input {
        match &mut self.engine {
            Engine::Gzip(decoder) => decoder.get_mut(),
            Engine::Zlib { input, .. } | Engine::Zstd { input, .. } => input,
        }
    }

    /// The next chunk of encoded bytes; the previous one must have been used up ([`Self::decode`]
    /// returned `None`).
    pub fn push(&mut self, chunk: Bytes) {
        let input = self.input();
        input.chunk = chunk;
        input.pos = 0;
    }

    /// The body ended: [`Self::decode`] then decodes what is left and checks the stream is
    /// complete.
    pub fn end(&mut self) {
        self.input().eof = true;
    }

    /// Decodes the next bytes into the output buffer and says how many
    /// ([`Self::output`]), or `None` once the input pushed so far is used up (after
    /// [`Self::end`]: once the stream is complete).
    ///
    /// # Errors
    ///
    /// [`Malformed`] for data the codec refuses, or a stream that ends too early.
    pub fn decode(&mut self) -> Result<Option<usize>, Malformed> {
        loop {
            match self.step()? {
                Some(n) => {
                    let decoded = (self.write, n);
                    self.write ^= 1;
                    if let Some((buffer, len)) = self.held.replace(decoded) {
                        self.ready = buffer;
                        return Ok(Some(len));
                    }
                }
                None if self.input().eof => {
                    // The stream is complete: the piece held back can go.
                    return Ok(self.held.take().map(|(buffer, len)| {
                        self.ready = buffer;
                        len
                    }));
                }
                None => return Ok(None),
            }
        }
    }

    /// One step of the codec into the free output buffer.
    fn step(&mut self) -> Result<Option<usize>, Malformed> {
        let out = &mut self.out[self.write];
        Ok(match &mut self.engine {
            Engine::Gzip(decoder) => match decoder.read(out) {
                Ok(0) => None,
                Ok(n) => Some(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => None,
                Err(_) => return Err(Malformed),
            },
            Engine::Zlib {
                inflate,
                input,
                ended,
                pending,
            } => zlib_step(inflate, input, ended, pending, out)?,
            Engine::Zstd {
                dctx,
                input,
                in_frame,
                pending,
            } => zstd_step(dctx.get(), input, in_frame, pending, out)?,
        })
    }

    /// The `n` bytes [`Self::decode`] handed out last.
    #[must_use]
    pub fn output(&self, n: usize) -> &[u8] {
        let out = &self.out[self.ready];
        &out[..n.min(out.len())]
    }
}

fn zlib_step(
    inflate: &mut Decompress,
    input: &mut Input,
    ended: &mut bool,
    pending: &mut bool,
    out: &mut [u8],
) -> Result<Option<usize>, Malformed> {
    loop {
        if *ended {
            // Bytes after the end of the zlib stream.
            return if input.rest().is_empty() {
                Ok(None)
            } else {
                Err(Malformed)
            };
        }
        let rest = input.rest();
        if rest.is_empty() && !*pending {
            return if input.eof { Err(Malformed) } else { Ok(None) };
        }
        let (in_before, out_before) = (inflate.total_in(), inflate.total_out());
        let status = inflate
            .decompress(rest, out, FlushDecompress::None)
            .map_err(|_| Malformed)?;
        let consumed = usize::try_from(inflate.total_in() - in_before).map_err(|_| Malformed)?;
        let produced = usize::try_from(inflate.total_out() - out_before).map_err(|_| Malformed)?;
        input.consume(consumed);
        *ended = status == Status::StreamEnd;
        *pending = produced == out.len();
        if produced > 0 {
            return Ok(Some(produced));
        }
        if consumed == 0 && !*ended {
            // No progress with input and room to write: a stream cut short at the end, or
            // one the codec cannot go on with.
            if input.rest().is_empty() && !input.eof {
                return Ok(None);
            }
            return Err(Malformed);
        }
    }
}

/// The most a zstd context may hold to go back to its thread's pool: a context keeps the
/// buffers of the largest frame it decoded, up to the 8 MiB window; one that grew past this
/// is freed instead, so the pools hold at most this much per runtime thread.
const POOLED_DCTX_MAX_BYTES: usize = 1024 * 1024;

thread_local! {
    /// One idle zstd context per thread. Creating a context allocates and initialises its
    /// tables and, at the first frame, its window buffers: per 64 KiB body that was about a
    /// fifth of decoding's CPU (docs/benchmarks.md, zstd64k).
    static IDLE_DCTX: std::cell::RefCell<Option<zstd_safe::DCtx<'static>>> =
        const { std::cell::RefCell::new(None) };
}

/// A zstd context taken from this thread's pool (or new), given back when its body is done.
struct PooledDCtx(Option<zstd_safe::DCtx<'static>>);

impl PooledDCtx {
    fn take() -> Self {
        let idle = IDLE_DCTX.with(|idle| idle.borrow_mut().take());
        Self(Some(idle.unwrap_or_else(Self::create)))
    }

    fn create() -> zstd_safe::DCtx<'static> {
        let mut dctx = zstd_safe::DCtx::create();
        // Only fails for a value out of zstd's range, which this constant is not.
        let _ = dctx.set_parameter(zstd_safe::DParameter::WindowLogMax(ZSTD_WINDOW_LOG_MAX));
        dctx
    }

    fn get(&mut self) -> &mut zstd_safe::DCtx<'static> {
        // `Some` from `take` until `drop`, the only place that empties it.
        self.0.get_or_insert_with(Self::create)
    }

    fn sizeof(&self) -> usize {
        self.0.as_ref().map_or(0, zstd_safe::DCtx::sizeof)
    }
}

impl Drop for PooledDCtx {
    fn drop(&mut self) {
        let Some(mut dctx) = self.0.take() else {
            return;
        };
        // A session reset drops the frame in progress (a body cut short) and keeps the
        // parameters (the window limit) and the buffers.
        if dctx.sizeof() <= POOLED_DCTX_MAX_BYTES
            && dctx.reset(zstd_safe::ResetDirective::SessionOnly).is_ok()
        {
            // `try_with`: during thread teardown the pool may be gone; the context is freed.
            let _ = IDLE_DCTX.try_with(|idle| {
                if let Ok(mut idle) = idle.try_borrow_mut() {
                    idle.get_or_insert(dctx);
                }
            });
        }
    }
}

fn zstd_step(
    dctx: &mut zstd_safe::DCtx<'static>,
    input: &mut Input,
    in_frame: &mut bool,
    pending: &mut bool,
    out: &mut [u8],
) -> Result<Option<usize>, Malformed> {
    loop {
        let rest = input.rest();
        if rest.is_empty() && !*pending {
            return if input.eof && *in_frame {
                Err(Malformed)
            } else {
                Ok(None)
            };
        }
        let mut in_buffer = zstd_safe::InBuffer::around(rest);
        let mut out_buffer = zstd_safe::OutBuffer::around(&mut *out);
        let hint = dctx
            .decompress_stream(&mut out_buffer, &mut in_buffer)
            .map_err(|_| Malformed)?;
        let (consumed, produced) = (in_buffer.pos(), out_buffer.pos());
        input.consume(consumed);
        *in_frame = hint != 0;
        *pending = produced == out.len();
        if produced > 0 {
            return Ok(Some(produced));
        }
        if consumed == 0 {
            if input.rest().is_empty() {
                *pending = false;
                continue;
            }
            return Err(Malformed);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).expect("in memory");
        e.finish().expect("in memory")
    }

    fn zlib(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).expect("in memory");
        e.finish().expect("in memory")
    }

    fn zstd(data: &[u8]) -> Vec<u8> {
        let mut out = vec![0; zstd_safe::compress_bound(data.len())];
        let n = zstd_safe::compress(&mut out[..], data, 3).expect("in memory");
        out.truncate(n);
        out
    }

    /// Decodes `encoded` pushed in chunks of `n`; the most bytes one step handed out.
    fn decode(coding: Coding, encoded: &[u8], n: usize) -> Result<(Vec<u8>, usize), Malformed> {
        let mut d = Decoder::new(coding).expect("not identity");
        let mut out = Vec::new();
        let mut most = 0;
        for chunk in encoded.chunks(n.max(1)) {
            d.push(Bytes::copy_from_slice(chunk));
            while let Some(n) = d.decode()? {
                most = most.max(n);
                out.extend_from_slice(d.output(n));
            }
        }
        d.end();
        while let Some(n) = d.decode()? {
            most = most.max(n);
            out.extend_from_slice(d.output(n));
        }
        Ok((out, most))
    }

    fn sample() -> Vec<u8> {
        (0..5000)
            .map(|i| format!("{{\"ip\":\"10.0.{}.{}\"}}\n", i / 250, i % 250))
            .collect::<String>()
            .into_bytes()
    }

    #[test]
    fn every_coding_round_trips_in_any_chunking() {
        let data = sample();
        for (coding, encoded) in [
            (Coding::Gzip, gzip(&data)),
            (Coding::Deflate, zlib(&data)),
            (Coding::Zstd, zstd(&data)),
        ] {
            for n in [1, 7, 100, 4096, encoded.len()] {
                let (out, most) = decode(coding, &encoded, n).expect("valid");
                assert!(out == data, "{coding:?} in chunks of {n}");
                assert!(most <= OUTPUT_BYTES);
            }
        }
        // Two gzip members, two zstd frames.
        let two = [gzip(b"ab"), gzip(b"cd")].concat();
        assert_eq!(decode(Coding::Gzip, &two, 3).expect("valid").0, b"abcd");
        let two = [zstd(b"ab"), zstd(b"cd")].concat();
        assert_eq!(decode(Coding::Zstd, &two, 3).expect("valid").0, b"abcd");
    }

    #[test]
    fn malformed_and_truncated_streams_are_refused() {
        let data = sample();
        for (coding, encoded) in [
            (Coding::Gzip, gzip(&data)),
            (Coding::Deflate, zlib(&data)),
            (Coding::Zstd, zstd(&data)),
        ] {
            // Cut anywhere, the last piece decoded is never handed out.
            for cut in [encoded.len() / 2, encoded.len() - 5, encoded.len() - 1] {
                let mut d = Decoder::new(coding).expect("not identity");
                d.push(Bytes::copy_from_slice(&encoded[..cut]));
                let mut out = 0;
                while let Some(n) = d.decode().expect("no error before the end") {
                    out += n;
                }
                d.end();
                assert_eq!(d.decode(), Err(Malformed), "{coding:?} cut at {cut}");
                assert!(out < data.len(), "{coding:?} cut at {cut}");
            }
            let cut = &encoded[..encoded.len() - 5];
            assert_eq!(decode(coding, cut, 100), Err(Malformed), "{coding:?} cut");
            assert_eq!(
                decode(coding, b"this is not compressed", 100),
                Err(Malformed),
                "{coding:?} garbage"
            );
            let mut flipped = encoded.clone();
            let middle = flipped.len() / 2;
            flipped[middle] ^= 0x55;
            flipped[middle + 1] ^= 0xaa;
            assert!(decode(coding, &flipped, 100).map(|(o, _)| o) != Ok(data.clone()));
        }
        let mut trailing = zlib(b"ab");
        trailing.push(b'x');
        assert_eq!(decode(Coding::Deflate, &trailing, 100), Err(Malformed));
    }

    #[test]
    fn a_bomb_comes_out_one_buffer_at_a_time() {
        let zeros = vec![0u8; 16 << 20];
        for (coding, encoded) in [(Coding::Gzip, gzip(&zeros)), (Coding::Zstd, zstd(&zeros))] {
            let mut d = Decoder::new(coding).expect("not identity");
            d.push(Bytes::from(encoded));
            let first = d.decode().expect("valid").expect("some output");
            assert_eq!(d.output(first).len(), first);
            assert!(first <= OUTPUT_BYTES);
            // inflate: fixed; zstd: the frame's window (2 MiB at level 3), capped at 8 MiB.
            let most = match coding {
                Coding::Zstd => (1 << ZSTD_WINDOW_LOG_MAX) + 256 * 1024,
                _ => 2 * OUTPUT_BYTES + INFLATE_BYTES,
            };
            assert!(d.held_bytes() <= most, "{coding:?} {}", d.held_bytes());
        }
    }

    #[test]
    fn coding_names() {
        assert_eq!(Coding::from_token(b"GZip"), Some(Coding::Gzip));
        assert_eq!(Coding::from_token(b"x-gzip"), Some(Coding::Gzip));
        assert_eq!(Coding::from_token(b"br"), None);
        assert_eq!(Coding::Zstd.name(), "zstd");
    }
}
