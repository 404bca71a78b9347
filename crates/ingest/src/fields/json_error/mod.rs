//! What is wrong with a log that is not valid JSON, in JSON terms and where: the one place
//! that turns a simd-json error into the `reason` and byte `offset` of
//! [`LineError::InvalidJson`](crate::fields::LineError::InvalidJson) ("invalid JSON at byte 37: unexpected end of input").
//!
//! simd-json's error kinds are named after its internals (`ExpectedObjectContent`,
//! `InternalError`, `Syntax`) and its byte index is often not where the problem is (a body
//! cut off at byte 37 reports byte 0 or 6). So [`phrase`] maps every [`ErrorType`] to a
//! plain phrase (used by [`parse_fields`](super::parse::parse_fields) with simd-json's index,
//! clamped to the input), and `LineError::refine`, with a small validator ([`locate`]) run only after
//! simd-json has rejected the input (the cold path) on the bytes as received, finds the first
//! offending byte and says what it is; a body that ends too early is reported at its length.
//! Where the validator finds nothing wrong (an input simd-json rejects for a reason the
//! validator does not check), the mapped phrase stands.

use simd_json::ErrorType;

/// simd-json's nesting limit: a container opened at this depth (the outermost one is depth
/// 1) is refused.
pub const MAX_DEPTH: usize = 1024;

/// The reason given for input nested too deeply.
pub const TOO_DEEP: &str = "nesting deeper than 1024 levels";

const END_OF_INPUT: &str = "unexpected end of input";

/// A plain phrase for every simd-json error kind (no simd-json identifier, no "Syntax").
#[must_use]
pub fn phrase(error: &ErrorType) -> &'static str {
    match error {
        ErrorType::Eof => END_OF_INPUT,
        ErrorType::DepthLimitExceeded => TOO_DEEP,
        ErrorType::TrailingData => "unexpected data after the JSON value",
        ErrorType::UnterminatedString => "unterminated string",
        ErrorType::InvalidEscape => "invalid escape in a string",
        ErrorType::InvalidUnicodeEscape => "invalid \\u escape in a string",
        ErrorType::InvalidUnicodeCodepoint => "invalid unicode code point (a lone surrogate)",
        ErrorType::InvalidUtf8 => "not valid UTF-8",
        ErrorType::InvalidNumber
        | ErrorType::InvalidExponent
        | ErrorType::ExpectedNumber
        | ErrorType::ExpectedFloat
        | ErrorType::ExpectedInteger
        | ErrorType::ExpectedSigned
        | ErrorType::ExpectedUnsigned => "invalid number",
        ErrorType::ExpectedTrue | ErrorType::ExpectedFalse | ErrorType::ExpectedNull => {
            "invalid literal (expected true, false or null)"
        }
        ErrorType::ExpectedBoolean => "expected true or false",
        ErrorType::ExpectedString => "expected a string",
        ErrorType::ExpectedObjectColon => "expected ':' after an object key",
        ErrorType::ExpectedMapComma => "expected ',' or '}' after an object member",
        ErrorType::ExpectedArrayComma => "expected ',' or ']' after an array element",
        ErrorType::ExpectedMapEnd => "expected '}'",
        ErrorType::ExpectedObjectKey | ErrorType::BadKeyType | ErrorType::KeyMustBeAString => {
            "expected a string as object key"
        }
        ErrorType::ExpectedObjectContent => "expected an object member or '}'",
        ErrorType::ExpectedArrayContent => "expected an array element or ']'",
        ErrorType::ExpectedArray => "expected an array",
        ErrorType::ExpectedMap => "expected an object",
        ErrorType::ExpectedEnum | ErrorType::Unexpected(..) => "unexpected value",
        ErrorType::UnexpectedCharacter | ErrorType::NoStructure => "unexpected character",
        ErrorType::InputTooLarge => "input too large",
        ErrorType::InsufficientPadding
        | ErrorType::InternalError
        | ErrorType::Parser
        | ErrorType::Syntax
        | ErrorType::Overflow
        | ErrorType::SimdUnsupported
        | ErrorType::Serde(_)
        | ErrorType::Io(_) => "malformed JSON",
    }
}

/// Where a JSON parser expects to be.
#[derive(Clone, Copy)]
enum Expect {
    Value,
    /// Right after `[`: an element or `]`.
    ElementOrEnd,
    /// Right after `{`: a key or `}`.
    KeyOrEnd,
    /// After `,` in an object.
    Key,
    Colon,
    /// After an object member.
    MemberCommaOrEnd,
    /// After an array element.
    ElementCommaOrEnd,
    /// After the top-level value.
    Nothing,
}

/// What is wrong and where: a byte offset and a plain phrase.
type Failure = (usize, &'static str);

/// The first offending byte of `input` (valid UTF-8) as JSON text (RFC 8259, with
/// simd-json's nesting limit), and what is wrong there; `None` if it is valid. Iterative:
/// the nesting costs one byte per level, never a stack frame.
#[must_use]
pub fn locate(input: &[u8]) -> Option<(usize, &'static str)> {
    walk(input).err()
}

fn walk(input: &[u8]) -> Result<(), Failure> {
    let mut open: Vec<u8> = Vec::new();
    let mut expect = Expect::Value;
    let mut i = 0;
    loop {
        while input
            .get(i)
            .is_some_and(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
        {
            i += 1;
        }
        let Some(&c) = input.get(i) else {
            return match expect {
                Expect::Nothing => Ok(()),
                _ => Err((input.len(), END_OF_INPUT)),
            };
        };
        let after_value = |open: &Vec<u8>| match open.last() {
            None => Expect::Nothing,
            Some(b'{') => Expect::MemberCommaOrEnd,
            Some(_) => Expect::ElementCommaOrEnd,
        };
        expect = match (expect, c) {
            (Expect::ElementOrEnd | Expect::ElementCommaOrEnd, b']')
            | (Expect::KeyOrEnd | Expect::MemberCommaOrEnd, b'}') => {
                open.pop();
                i += 1;
                after_value(&open)
            }
            (Expect::Value | Expect::ElementOrEnd, b'{' | b'[') => {
                if open.len() + 1 >= MAX_DEPTH {
                    return Err((i, TOO_DEEP));
                }
                open.push(c);
                i += 1;
                if c == b'{' {
                    Expect::KeyOrEnd
                } else {
                    Expect::ElementOrEnd
                }
            }
            (Expect::Value | Expect::ElementOrEnd, _) => {
                i = value(input, i)?;
                after_value(&open)
            }
            (Expect::KeyOrEnd | Expect::Key, b'"') => {
                i = string(input, i)?;
                Expect::Colon
            }
            (Expect::KeyOrEnd, _) => return Err((i, "expected a string key or '}'")),
            (Expect::Key, _) => return Err((i, "expected a string key after ','")),
            (Expect::Colon, b':') => {
                i += 1;
                Expect::Value
            }
            (Expect::Colon, _) => return Err((i, "expected ':' after an object key")),
            (Expect::MemberCommaOrEnd, b',') => {
                i += 1;
                Expect::Key
            }
            (Expect::MemberCommaOrEnd, _) => {
                return Err((i, "expected ',' or '}' after an object member"))
            }
            (Expect::ElementCommaOrEnd, b',') => {
                i += 1;
                Expect::Value
            }
            (Expect::ElementCommaOrEnd, _) => {
                return Err((i, "expected ',' or ']' after an array element"))
            }
            (Expect::Nothing, _) => return Err((i, "unexpected data after the JSON value")),
        };
    }
}

/// A scalar value starting at `i` (not whitespace); the offset after it.
fn value(input: &[u8], i: usize) -> Result<usize, Failure> {
    match input[i] {
        b'"' => string(input, i),
        b'-' | b'0'..=b'9' => number(input, i),
        b't' => literal(input, i, b"true"),
        b'f' => literal(input, i, b"false"),
        b'n' => literal(input, i, b"null"),
        _ => Err((
            i,
            "expected a value (object, array, string, number, true, false or null)",
        )),
    }
}

fn literal(input: &[u8], i: usize, word: &[u8]) -> Result<usize, Failure> {
    let rest = &input[i..];
    if rest.starts_with(word) {
        Ok(i + word.len())
    } else if word.starts_with(rest) {
        Err((input.len(), END_OF_INPUT))
    } else {
        Err((i, "invalid literal (expected true, false or null)"))
    }
}

/// A number starting at `i`; errors point at the number's first byte.
fn number(input: &[u8], i: usize) -> Result<usize, Failure> {
    const INVALID: &str = "invalid number";
    let digit = |j: usize| input.get(j).is_some_and(u8::is_ascii_digit);
    let digits = |mut j: usize| -> Result<usize, Failure> {
        match input.get(j) {
            None => return Err((input.len(), END_OF_INPUT)),
            Some(b) if !b.is_ascii_digit() => return Err((i, INVALID)),
            Some(_) => {}
        }
        while digit(j) {
            j += 1;
        }
        Ok(j)
    };
    let mut j = i + usize::from(input[i] == b'-');
    match input.get(j) {
        None => return Err((input.len(), END_OF_INPUT)),
        Some(b'0') => {
            j += 1;
            if digit(j) {
                return Err((i, "invalid number (leading zero)"));
            }
        }
        Some(_) => j = digits(j)?,
    }
    if input.get(j) == Some(&b'.') {
        j = digits(j + 1)?;
    }
    if matches!(input.get(j), Some(b'e' | b'E')) {
        j += 1;
        if matches!(input.get(j), Some(b'+' | b'-')) {
            j += 1;
        }
        j = digits(j)?;
    }
    // A letter or dot glued to the number (`1x`, `1.2.3`) makes it invalid too.
    if input
        .get(j)
        .is_some_and(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'+' | b'-'))
    {
        return Err((i, INVALID));
    }
    // simd-json refuses an integer past 64 bits and a number no f64 holds.
    let text = std::str::from_utf8(&input[i..j]).unwrap_or("0");
    let out_of_range = if text.contains(['.', 'e', 'E']) {
        text.parse::<f64>().is_ok_and(f64::is_infinite)
    } else {
        text.parse::<i64>().is_err() && text.parse::<u64>().is_err()
    };
    if out_of_range {
        return Err((i, "number out of range"));
    }
    Ok(j)
}

/// A string starting at the `"` at `i`; the offset after its closing quote.
fn string(input: &[u8], i: usize) -> Result<usize, Failure> {
    let mut j = i + 1;
    loop {
        let Some(&b) = input.get(j) else {
            return Err((input.len(), END_OF_INPUT));
        };
        match b {
            b'"' => return Ok(j + 1),
            b'\\' => j = escape(input, j)?,
            0..=0x1f => return Err((j, "control character in a string (must be escaped)")),
            _ => j += 1,
        }
    }
}

/// The escape starting at the `\` at `j`; the offset after it.
fn escape(input: &[u8], j: usize) -> Result<usize, Failure> {
    match input.get(j + 1) {
        None => Err((input.len(), END_OF_INPUT)),
        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => Ok(j + 2),
        Some(b'u') => {
            let unit = hex4(input, j)?;
            match unit {
                0xD800..=0xDBFF => {
                    // A high surrogate must be followed by an escaped low one.
                    let next = j + 6;
                    if input.get(next) == Some(&b'\\') && input.get(next + 1) == Some(&b'u') {
                        if (0xDC00..=0xDFFF).contains(&hex4(input, next)?) {
                            return Ok(next + 6);
                        }
                    } else if next >= input.len() {
                        return Err((input.len(), END_OF_INPUT));
                    }
                    Err((j, LONE_SURROGATE))
                }
                0xDC00..=0xDFFF => Err((j, LONE_SURROGATE)),
                _ => Ok(j + 6),
            }
        }
        Some(_) => Err((j, "invalid escape in a string")),
    }
}

const LONE_SURROGATE: &str = "invalid \\u escape (a lone surrogate)";

/// The four hex digits of the `\u` escape at `j`.
fn hex4(input: &[u8], j: usize) -> Result<u32, Failure> {
    let mut unit = 0;
    for k in j + 2..j + 6 {
        let Some(&b) = input.get(k) else {
            return Err((input.len(), END_OF_INPUT));
        };
        let Some(d) = char::from(b).to_digit(16) else {
            return Err((j, "invalid \\u escape in a string (expected 4 hex digits)"));
        };
        unit = unit * 16 + d;
    }
    Ok(unit)
}

#[cfg(test)]
mod tests;
