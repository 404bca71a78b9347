//! Tests of the JSON error phrases and the validator, against simd-json itself.

use super::*;
use crate::fields::parse::{parse_line, LineError, Scratch};

/// What the service reports for `input`: simd-json, then `LineError::refine`.
fn report(input: &[u8]) -> Result<String, LineError> {
    let mut buf = input.to_vec();
    parse_line(&mut buf, &mut Scratch::new())
        .map(str::to_owned)
        .map_err(|e| e.refine(input))
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
