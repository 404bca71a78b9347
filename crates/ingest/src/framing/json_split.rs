//! The incremental splitter behind [`super::json::JsonBatch`]: where each element of a JSON
//! array, or each value of a stream of concatenated JSON values, begins and ends, in bytes
//! that arrive in chunks of any size.
//!
//! It tracks only what it needs to find boundaries: whether it is inside a string (and after a
//! backslash there), and the depth of `{`/`[` inside the current element; strings are skipped
//! with `memchr2` for their closing quote or a backslash. It validates the structure *between*
//! elements itself (`[`, commas, `]`, nothing after the array but whitespace) and leaves every
//! element to the fields stage, which parses it fully: an element whose brackets do not match
//! is cut somewhere, but never accepted, since no valid JSON value has unmatched brackets. So
//! the splitter with the fields stage accepts exactly the arrays (and streams) a full parser
//! accepts as arrays (streams) of objects (`tests/json_split_agrees.rs`, fuzz target
//! `json_batch`).
//!
//! Memory: an element that lies within one chunk is handed out as a slice of it, with no copy.
//! Only an element that straddles chunks is copied into the carry, which grows (doubling, at
//! most to the element limit) only after the caller's `grant` agreed to the new capacity, so a
//! transport can reserve it from a global budget first. An element longer than the limit is
//! not buffered: its bytes are scanned (to find its end) and dropped, and it is reported as
//! [`Piece::TooLong`]; when it is the first value of a body that is not an array (the single
//! object of old), the splitter stops instead ([`Stop::FirstTooLarge`]).
//!
//! The first value of a body that is not an array is held back (in the carry) until the next
//! value starts or the body ends: a body that is one object is counted only once it is whole,
//! so one cut short or stalled after its closing brace counts nothing, as before streams.
//! When the transport knows a chunk is the whole rest of the body
//! ([`JsonSplitter::whole_body_next`]: a body in one piece), nothing can stall after it and the
//! value is handed out from the chunk, with no copy.

use super::ndjson::grown_capacity;

/// What the splitter found, in body order.
#[derive(Debug, PartialEq, Eq)]
pub enum Piece<'a> {
    /// A complete element (or, at the end of the body, an incomplete one, which the fields
    /// stage then refuses).
    Element {
        /// 0-based position in the array or stream.
        index: u64,
        /// Its bytes, from its first to its last byte (no surrounding whitespace).
        bytes: &'a [u8],
        /// The body offset of its first byte.
        offset: usize,
    },
    /// An element longer than the limit; skipped, not buffered.
    TooLong {
        /// 0-based position in the array or stream.
        index: u64,
    },
    /// The structure around the elements is broken (a missing comma, a trailing comma, data
    /// after the array, an array cut short); nothing from here on is looked at.
    Malformed {
        /// The index the next element would have had.
        index: u64,
        /// Body offset of the offending byte (the body's length when it ended too early).
        offset: usize,
        /// What is wrong, in JSON terms.
        reason: &'static str,
    },
}

/// Why [`JsonSplitter::feed`] stopped before the end of a chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// `grant` refused to let the carry grow.
    Budget,
    /// The first value of a body that is not an array is longer than the limit.
    FirstTooLarge,
}

/// The state between elements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Top {
    /// Nothing but whitespace so far.
    Start,
    /// A stream of values: whitespace, or the next value.
    Stream,
    /// Just after `[`: a value or `]`.
    ArrayFirst,
    /// Just after a comma: a value.
    ArrayNext,
    /// Just after a value: `,` or `]`.
    ArrayAfter,
    /// After the closing `]`: only whitespace.
    Closed,
    /// Malformed: the rest is ignored.
    Failed,
}

/// The value being scanned.
#[derive(Debug, Clone, Copy)]
struct Value {
    /// An object, array or string ends when its closing byte brings the depth back to zero; a
    /// bare value (number, literal, or garbage) ends before the next delimiter.
    bare: bool,
    depth: usize,
    in_string: bool,
    escaped: bool,
    /// Bytes of it seen so far.
    len: usize,
    /// Body offset of its first byte.
    offset: usize,
    too_long: bool,
}

/// Splits a JSON array, or concatenated JSON values, into elements (see the module docs).
#[derive(Debug)]
pub struct JsonSplitter {
    top: Top,
    value: Option<Value>,
    carry: Vec<u8>,
    /// Index of the next element.
    index: u64,
    /// Body bytes fed so far.
    offset: usize,
    max: usize,
    /// The body began with `[`.
    array: bool,
    /// The body offset of the first value, complete and held back in the carry.
    held_first: Option<usize>,
    /// The caller said the next chunk is the whole rest of the body: nothing is held back.
    whole: bool,
}

const fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// Bytes that end a bare value (and are not part of it).
const fn ends_bare(b: u8) -> bool {
    is_ws(b) || matches!(b, b',' | b']' | b'}' | b'[' | b'{' | b'"' | b':')
}

/// Where a flat object that starts at `bytes[0]` (a `{`) ends, found with a few SIMD searches
/// instead of a byte loop: the first `}` ends it if nothing before it could change the
/// string or depth state differently from [`Value::scan`] (no backslash, no bracket or brace,
/// an even number of quotes). `None`: let the byte loop decide.
fn flat_object_end(bytes: &[u8]) -> Option<usize> {
    let close = memchr::memchr(b'}', bytes.get(1..)?)? + 1;
    let inner = &bytes[1..close];
    if memchr::memchr3(b'\\', b'{', b'[', inner).is_some()
        || memchr::memchr(b']', inner).is_some()
        || !memchr::memchr_iter(b'"', inner).count().is_multiple_of(2)
    {
        return None;
    }
    Some(close + 1)
}

impl Value {
    fn new(first: u8, offset: usize) -> Self {
        let (bare, depth, in_string) = match first {
            b'{' | b'[' => (false, 1, false),
            b'"' => (false, 0, true),
            _ => (true, 0, false),
        };
        Self {
            bare,
            depth,
            in_string,
            escaped: false,
            len: 1,
            offset,
            too_long: false,
        }
    }

    /// Advances over `bytes` (which follow the value's first byte); the number of them that
    /// belong to the value if it ends within them.
    fn scan(&mut self, bytes: &[u8]) -> Option<usize> {
        let mut i = 0;
        while i < bytes.len() {
            if self.in_string {
                if self.escaped {
                    self.escaped = false;
                    i += 1;
                    continue;
                }
                let k = memchr::memchr2(b'"', b'\\', &bytes[i..])?;
                i += k + 1;
                if bytes[i - 1] == b'\\' {
                    self.escaped = true;
                } else {
                    self.in_string = false;
                    if self.depth == 0 {
                        return Some(i);
                    }
                }
                continue;
            }
            let b = bytes[i];
            if self.bare {
                if ends_bare(b) {
                    return Some(i);
                }
            } else {
                match b {
                    b'"' => self.in_string = true,
                    b'{' | b'[' => self.depth += 1,
                    b'}' | b']' => {
                        self.depth -= 1;
                        if self.depth == 0 {
                            return Some(i + 1);
                        }
                    }
                    _ => {}
                }
            }
            i += 1;
        }
        None
    }
}

impl JsonSplitter {
    /// A splitter for elements of at most `max` bytes.
    #[must_use]
    pub fn new(max: usize) -> Self {
        Self {
            top: Top::Start,
            value: None,
            carry: Vec::new(),
            index: 0,
            offset: 0,
            max,
            array: false,
            held_first: None,
            whole: false,
        }
    }

    /// Whether the body is a JSON array (known from its first non-whitespace byte).
    #[must_use]
    pub fn is_array(&self) -> bool {
        self.array
    }

    /// Says that the next chunk fed is the rest of the body, all of it (a body that came in
    /// one piece): the first value is then handed out at once, from the chunk, with no copy.
    pub fn whole_body_next(&mut self) {
        self.whole = true;
    }

    /// Bytes held in the carry (its capacity).
    #[must_use]
    pub fn buffered(&self) -> usize {
        self.carry.capacity()
    }

    /// Feeds the next chunk of the body, handing every piece it completes to `on_piece`.
    /// `grant(n)` is asked before the carry grows to a capacity of `n` bytes.
    ///
    /// # Errors
    ///
    /// [`Stop`]: the rest of the chunk was not looked at; the body should be abandoned.
    pub fn feed(
        &mut self,
        chunk: &[u8],
        grant: &mut dyn FnMut(usize) -> bool,
        on_piece: &mut dyn FnMut(Piece<'_>),
    ) -> Result<(), Stop> {
        let base = self.offset;
        self.offset = base.saturating_add(chunk.len());
        let mut i = 0;
        while i < chunk.len() {
            if let Some(mut value) = self.value.take() {
                // A value that began in an earlier chunk.
                let end = value.scan(&chunk[i..]);
                let part = &chunk[i..end.map_or(chunk.len(), |n| i + n)];
                self.extend(&mut value, part, grant)?;
                match end {
                    Some(n) => {
                        i += n;
                        if self.hold_first(&value) {
                            // The value is in the carry already.
                            continue;
                        }
                        let carry = std::mem::take(&mut self.carry);
                        self.emit(&value, &carry, on_piece);
                        self.carry = carry;
                        self.carry.clear();
                    }
                    None => {
                        self.value = Some(value);
                        return Ok(());
                    }
                }
                continue;
            }
            let b = chunk[i];
            if is_ws(b) && self.top != Top::Failed {
                i += 1;
                if self.top == Top::Start && base + i > self.max {
                    // Whitespace before the first value counts against the limit of a body
                    // that is one value, as it always did.
                    return Err(Stop::FirstTooLarge);
                }
                continue;
            }
            match self.top {
                Top::Failed => return Ok(()),
                Top::Start if b == b'[' => {
                    self.top = Top::ArrayFirst;
                    self.array = true;
                    i += 1;
                    continue;
                }
                Top::Start => self.top = Top::Stream,
                Top::ArrayFirst if b == b']' => {
                    self.top = Top::Closed;
                    i += 1;
                    continue;
                }
                Top::ArrayFirst | Top::ArrayNext if matches!(b, b']' | b',' | b'}' | b':') => {
                    self.malformed(base + i, "expected a value", on_piece);
                    return Ok(());
                }
                Top::ArrayAfter => {
                    match b {
                        b',' => self.top = Top::ArrayNext,
                        b']' => self.top = Top::Closed,
                        _ => {
                            self.malformed(base + i, "expected ',' or ']'", on_piece);
                            return Ok(());
                        }
                    }
                    i += 1;
                    continue;
                }
                Top::Closed => {
                    self.malformed(base + i, "unexpected data after the JSON value", on_piece);
                    return Ok(());
                }
                Top::Stream | Top::ArrayFirst | Top::ArrayNext => {}
            }
            // A value starts at `i`: a first one held back is one of a stream.
            self.release_first(on_piece);
            let mut value = Value::new(b, base + i);
            let start = i;
            let flat = if b == b'{' {
                flat_object_end(&chunk[i..])
            } else {
                None
            };
            i += 1;
            match flat.map(|n| n - 1).or_else(|| value.scan(&chunk[i..])) {
                Some(n) => {
                    i += n;
                    value.len = i - start;
                    if value.len > self.value_limit(&value) {
                        value.too_long = true;
                        self.check_first(&value)?;
                    }
                    if self.hold_first(&value) {
                        self.push_carry(&chunk[start..i], grant)?;
                        continue;
                    }
                    self.emit(&value, &chunk[start..i], on_piece);
                }
                None => {
                    value.len = 0;
                    self.extend(&mut value, &chunk[start..], grant)?;
                    self.value = Some(value);
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// Adds `part` of the current value to the carry, or marks the value too long.
    fn extend(
        &mut self,
        value: &mut Value,
        part: &[u8],
        grant: &mut dyn FnMut(usize) -> bool,
    ) -> Result<(), Stop> {
        value.len = value.len.saturating_add(part.len());
        if value.too_long {
            return Ok(());
        }
        if value.len > self.value_limit(value) {
            value.too_long = true;
            self.carry.clear();
            return self.check_first(value);
        }
        self.push_carry(part, grant)
    }

    /// Appends to the carry, growing it (doubling, or exactly what is needed when the grant
    /// refuses the doubling) only as `grant` allows.
    fn push_carry(
        &mut self,
        part: &[u8],
        grant: &mut dyn FnMut(usize) -> bool,
    ) -> Result<(), Stop> {
        let needed = self.carry.len() + part.len();
        let mut target = grown_capacity(self.carry.capacity(), needed, self.max);
        if target > self.carry.capacity() {
            if !grant(target) {
                if needed < target && grant(needed) {
                    target = needed;
                } else {
                    return Err(Stop::Budget);
                }
            }
            self.carry.reserve_exact(target - self.carry.len());
        }
        self.carry.extend_from_slice(part);
        Ok(())
    }

    /// Whether `value` is the first of a body that is not an array.
    fn is_first(&self) -> bool {
        self.index == 0 && self.top == Top::Stream
    }

    /// The most bytes `value` may have: the element limit, less the whitespace before it for
    /// the first value of a body that is not an array (such a body was always limited as a
    /// whole).
    fn value_limit(&self, value: &Value) -> usize {
        if self.is_first() {
            self.max.saturating_sub(value.offset)
        } else {
            self.max
        }
    }

    fn check_first(&self, value: &Value) -> Result<(), Stop> {
        if value.too_long && self.is_first() {
            Err(Stop::FirstTooLarge)
        } else {
            Ok(())
        }
    }

    /// Holds back the complete first value of a body that is not an array (in the carry,
    /// where the caller leaves or puts it) until the body shows whether another value follows
    /// or it ends, so that a body that is one object is counted only once it is whole (a
    /// body cut short or stalled after its object counts nothing, as it always did).
    fn hold_first(&mut self, value: &Value) -> bool {
        if self.is_first() && !value.too_long && !self.whole {
            self.held_first = Some(value.offset);
            self.index = 1;
            true
        } else {
            false
        }
    }

    /// Hands out the first value held back, if any.
    fn release_first(&mut self, on_piece: &mut dyn FnMut(Piece<'_>)) {
        if let Some(offset) = self.held_first.take() {
            on_piece(Piece::Element {
                index: 0,
                bytes: &self.carry,
                offset,
            });
            self.carry.clear();
        }
    }

    fn emit(&mut self, value: &Value, bytes: &[u8], on_piece: &mut dyn FnMut(Piece<'_>)) {
        let index = self.index;
        self.index += 1;
        if value.too_long {
            on_piece(Piece::TooLong { index });
        } else {
            on_piece(Piece::Element {
                index,
                bytes,
                offset: value.offset,
            });
        }
        if self.top != Top::Stream {
            self.top = Top::ArrayAfter;
        }
    }

    fn malformed(
        &mut self,
        offset: usize,
        reason: &'static str,
        on_piece: &mut dyn FnMut(Piece<'_>),
    ) {
        on_piece(Piece::Malformed {
            index: self.index,
            offset,
            reason,
        });
        self.index += 1;
        self.top = Top::Failed;
    }

    /// The end of the body: hands out a value still in progress (complete if bare, else cut
    /// short, which the fields stage refuses) and reports an array that was not closed.
    pub fn finish(&mut self, on_piece: &mut dyn FnMut(Piece<'_>)) {
        self.release_first(on_piece);
        if let Some(value) = self.value.take() {
            let carry = std::mem::take(&mut self.carry);
            self.emit(&value, &carry, on_piece);
            return;
        }
        if matches!(self.top, Top::ArrayFirst | Top::ArrayNext | Top::ArrayAfter) {
            self.malformed(self.offset, "unexpected end of input", on_piece);
        }
    }
}
