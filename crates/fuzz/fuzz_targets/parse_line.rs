//! Fuzz target: the single-object parser, `uniqd_ingest::parse::parse_line`.
//!
//! Properties, for any bytes:
//! * no panic, no hang;
//! * reusing the parser's scratch buffers does not change the answer;
//! * where serde_json (an independent parser) also reads the input, both agree on what the
//!   top-level `ip` member is: the same string (the last duplicate wins in both), or the same
//!   reason there is none (not an object, missing, not a string). The parsers may disagree on
//!   which inputs are JSON at all (nesting past serde_json's 128 levels, number ranges, lone
//!   surrogates); those inputs are not compared.

#![no_main]

use std::cell::RefCell;

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use uniqd_ingest::parse::{parse_line, LineError, Scratch};

thread_local! {
    /// Scratch kept across inputs, as the server keeps one per thread.
    static WARM: RefCell<Scratch> = RefCell::new(Scratch::new());
}

fn parse(data: &[u8], scratch: &mut Scratch) -> Result<String, LineError> {
    let mut buf = data.to_vec();
    parse_line(&mut buf, scratch).map(str::to_owned)
}

fuzz_target!(|data: &[u8]| {
    let fresh = parse(data, &mut Scratch::new());
    let warm = WARM.with(|scratch| parse(data, &mut scratch.borrow_mut()));
    assert_eq!(fresh, warm, "a reused scratch changed the result");

    let Ok(value) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let expected = match value {
        Value::Object(map) => match map.get("ip") {
            Some(Value::String(ip)) => Ok(ip.clone()),
            Some(_) => Err(LineError::IpNotString),
            None => Err(LineError::MissingIp),
        },
        _ => Err(LineError::NotAnObject),
    };
    match &fresh {
        Ok(_) | Err(LineError::NotAnObject | LineError::MissingIp | LineError::IpNotString) => {
            assert_eq!(fresh, expected, "disagrees with serde_json");
        }
        // simd-json refused what serde_json read (e.g. a number out of its range).
        Err(_) => {}
    }
});
