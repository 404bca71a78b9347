//! What is wrong with a log that is not valid JSON, in JSON terms and where: the one place
//! that turns a simd-json error into the `reason` and byte `offset` of
//! [`LineError::InvalidJson`] ("invalid JSON at byte 37: unexpected end of input").
//!
//! simd-json's error kinds are named after its internals (`ExpectedObjectContent`,
//! `InternalError`, `Syntax`) and its byte index is often not where the problem is (a body
//! cut off at byte 37 reports byte 0 or 6). So [`phrase`] maps every [`ErrorType`] to a
//! plain phrase (used by [`parse_fields`](super::parse::parse_fields) with simd-json's index,
//! clamped to the input), and [`refine`], with a small validator ([`locate`]) run only after
//! simd-json has rejected the input (the cold path) on the bytes as received, finds the first
//! offending byte and says what it is; a body that ends too early is reported at its length.
//! Where the validator finds nothing wrong (an input simd-json rejects for a reason the
//! validator does not check), the mapped phrase stands.

use simd_json::ErrorType;

use super::parse::LineError;

/// simd-json's nesting limit: a container opened at this depth (the outermost one is depth
/// 1) is refused.
pub const MAX_DEPTH: usize = 1024;

/// The reason given for input nested too deeply.
pub const TOO_DEEP: &str = "nesting deeper than 1024 levels";

const END_OF_INPUT: &str = "unexpected end of input";

/// `error` (an [`LineError::InvalidJson`] from simd-json) made precise: the first offending
/// byte of `input` and what is wrong there, when the validator finds it. `input` must be the
/// bytes as received: simd-json decodes strings in place, so its own copy may have changed.
#[cold]
#[must_use]
pub fn refine(error: LineError, input: &[u8]) -> LineError {
    match (&error, locate(input)) {
        (LineError::InvalidJson { .. }, Some((offset, reason))) => {
            LineError::InvalidJson { offset, reason }
        }
        _ => error,
    }
}

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
mod tests {
    use super::*;
    use crate::fields::parse::{parse_line, Scratch};

    /// What the service reports for `input`: simd-json, then [`refine`].
    fn report(input: &[u8]) -> Result<String, LineError> {
        let mut buf = input.to_vec();
        parse_line(&mut buf, &mut Scratch::new())
            .map(str::to_owned)
            .map_err(|e| refine(e, input))
    }

    /// Inputs around a valid log: every prefix, and every byte replaced by characters that
    /// matter to JSON. The validator must agree with simd-json on which are valid, so every
    /// rejected one gets a located, plain reason.
    #[test]
    fn the_validator_agrees_with_simd_json() {
        let valid = br#"{"ip":"1.2.3.4","n":[-1.5e3,0,true,false,null,{},123456789012345678901234567890],"s":"a\"\u00e9\ud83d\ude00"}"#;
        let mut inputs: Vec<Vec<u8>> = (0..valid.len()).map(|n| valid[..n].to_vec()).collect();
        for i in 0..valid.len() {
            for b in *b"{}[]\":,.-+0e1 tn\\ux\t\x01" {
                let mut v = valid.to_vec();
                v[i] = b;
                inputs.push(v);
            }
        }
        let mut checked = 0;
        for input in inputs {
            let mut buf = input.clone();
            let simd = simd_json::to_borrowed_value(&mut buf).is_ok();
            if std::str::from_utf8(&input).is_err() {
                continue;
            }
            let located = locate(&input);
            assert_eq!(
                simd,
                located.is_none(),
                "{:?}: simd-json valid {simd}, validator {located:?}",
                String::from_utf8_lossy(&input)
            );
            checked += 1;
        }
        assert!(checked > 1000, "{checked}");
    }

    #[test]
    fn malformed_bodies_say_what_and_where() {
        let deep = {
            let mut v = br#"{"ip":"1.2.3.4","x":"#.to_vec();
            v.extend(std::iter::repeat_n(b'[', 5000));
            v
        };
        let truncated = br#"{"timestamp":"2020-06-24T15:27:00Z","ip""#;
        assert_eq!(truncated.len(), 40);
        let table: &[(&[u8], usize, &str)] = &[
            (truncated, 40, "unexpected end of input"),
            (br#"{"ip":"1.2.3.4""#, 15, "unexpected end of input"),
            (br#"{"ip":"1.2.3"#, 12, "unexpected end of input"),
            (br#"{"ip":"1.2.3.4","n":1e999}"#, 20, "number out of range"),
            (b"{", 1, "unexpected end of input"),
            (b"[1,2", 4, "unexpected end of input"),
            (br#"{"ip":"1.2.3.4","n":1."#, 22, "unexpected end of input"),
            (br#"{"ip":"1.2.3.4","n":tr"#, 22, "unexpected end of input"),
            (br#"{"ip":"1.2.3.4","n":01}"#, 20, "invalid number"),
            (br#"{"ip":"1.2.3.4","n":1.}"#, 20, "invalid number"),
            (br#"{"ip":"1.2.3.4","n":-}"#, 20, "invalid number"),
            (br#"{"ip":"1.2.3.4","n":1e}"#, 20, "invalid number"),
            (br#"{"ip": "1.2.3.4",, }"#, 17, "expected a string key"),
            (br#"{"ip":"1.2.3.4",}"#, 16, "expected a string key"),
            (br#"{'ip':'1.2.3.4'}"#, 1, "expected a string key"),
            (br#"{"ip" "x"}"#, 6, "expected ':'"),
            (
                br#"{"ip":"x"} {}"#,
                11,
                "unexpected data after the JSON value",
            ),
            (br#"{"ip":"bad \x"}"#, 11, "invalid escape"),
            (br#"{"ip":"\ud800"}"#, 7, "lone surrogate"),
            (br#"{"ip":tru}"#, 6, "invalid literal"),
            (br#"{"a":[1,2}"#, 9, "expected ',' or ']'"),
            (br#"{"a" : 1 2}"#, 9, "expected ',' or '}'"),
            (b"{\"a\":\"x\ty\"}", 7, "control character"),
            (b"x", 0, "expected a value"),
            (&deep, 20 + 1022, TOO_DEEP),
        ];
        for &(input, offset, says) in table {
            let error = report(input).expect_err("invalid");
            let text = error.to_string();
            let want = format!("invalid JSON at byte {offset}: ");
            assert!(
                text.starts_with(&want) && text.contains(says),
                "{:?}: {text} (want {want}... {says})",
                String::from_utf8_lossy(&input[..input.len().min(60)])
            );
            assert_plain(&text);
        }
    }

    /// No simd-json identifier (a CamelCase word) and no "Syntax" in a message.
    fn assert_plain(text: &str) {
        assert!(
            !text.contains("Syntax") && !text.contains("syntax"),
            "{text}"
        );
        for word in text.split(|c: char| !c.is_ascii_alphabetic()) {
            let camel = word.len() > 1
                && word.starts_with(|c: char| c.is_ascii_uppercase())
                && word.chars().skip(1).any(|c| c.is_ascii_lowercase())
                && word.chars().skip(1).any(|c| c.is_ascii_uppercase());
            assert!(!camel, "{text}: {word}");
        }
    }

    #[test]
    fn every_phrase_is_plain() {
        use simd_json::ValueType;
        let kinds = [
            ErrorType::Unexpected(Some(ValueType::Null), None),
            ErrorType::InputTooLarge,
            ErrorType::InsufficientPadding,
            ErrorType::BadKeyType,
            ErrorType::ExpectedArray,
            ErrorType::ExpectedArrayComma,
            ErrorType::ExpectedBoolean,
            ErrorType::ExpectedEnum,
            ErrorType::ExpectedFloat,
            ErrorType::ExpectedInteger,
            ErrorType::ExpectedMap,
            ErrorType::ExpectedObjectColon,
            ErrorType::ExpectedMapComma,
            ErrorType::ExpectedMapEnd,
            ErrorType::ExpectedNull,
            ErrorType::ExpectedTrue,
            ErrorType::ExpectedFalse,
            ErrorType::ExpectedNumber,
            ErrorType::ExpectedSigned,
            ErrorType::ExpectedString,
            ErrorType::ExpectedUnsigned,
            ErrorType::InternalError,
            ErrorType::InvalidEscape,
            ErrorType::InvalidExponent,
            ErrorType::InvalidNumber,
            ErrorType::InvalidUtf8,
            ErrorType::InvalidUnicodeEscape,
            ErrorType::InvalidUnicodeCodepoint,
            ErrorType::KeyMustBeAString,
            ErrorType::NoStructure,
            ErrorType::Parser,
            ErrorType::Eof,
            ErrorType::Serde("x".to_owned()),
            ErrorType::Syntax,
            ErrorType::TrailingData,
            ErrorType::UnexpectedCharacter,
            ErrorType::UnterminatedString,
            ErrorType::ExpectedArrayContent,
            ErrorType::ExpectedObjectContent,
            ErrorType::ExpectedObjectKey,
            ErrorType::Overflow,
            ErrorType::DepthLimitExceeded,
            ErrorType::SimdUnsupported,
            ErrorType::Io(std::io::Error::other("x")),
        ];
        for kind in &kinds {
            let text = LineError::InvalidJson {
                offset: 3,
                reason: phrase(kind),
            }
            .to_string();
            assert!(text.starts_with("invalid JSON at byte 3: "), "{text}");
            assert_plain(&text);
        }
    }
}
