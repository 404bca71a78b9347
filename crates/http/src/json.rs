//! A tiny JSON object writer for response bodies.
//!
//! Responses are a handful of flat fields (plus one array of small objects),
//! so writing them by hand avoids a serde dependency; the only subtle part,
//! string escaping, lives in [`escape_into`].

use std::fmt::Write as _;

/// Builds one JSON object into a `String`.
#[derive(Debug)]
pub struct JsonObject {
    out: String,
    empty: bool,
}

impl JsonObject {
    /// Starts `{`.
    #[must_use]
    pub fn new() -> Self {
        Self::with_capacity(64)
    }

    /// Starts `{` with room for `capacity` bytes.
    #[must_use]
    pub fn with_capacity(capacity: usize) -> Self {
        let mut out = String::with_capacity(capacity);
        out.push('{');
        Self { out, empty: true }
    }

    fn key(&mut self, key: &str) {
        if !self.empty {
            self.out.push(',');
        }
        self.empty = false;
        escape_into(&mut self.out, key);
        self.out.push(':');
    }

    /// Adds `"key": "value"`.
    #[must_use]
    pub fn str(mut self, key: &str, value: &str) -> Self {
        self.key(key);
        escape_into(&mut self.out, value);
        self
    }

    /// Adds `"key": number`.
    #[must_use]
    pub fn u64(mut self, key: &str, value: u64) -> Self {
        self.key(key);
        // Writing to a String cannot fail.
        let _ = write!(self.out, "{value}");
        self
    }

    /// Adds `"key": number`; a NaN or infinite value (not representable in
    /// JSON) is written as `null`.
    #[must_use]
    pub fn f64(mut self, key: &str, value: f64) -> Self {
        self.key(key);
        if value.is_finite() {
            // Writing to a String cannot fail. `Display` of an `f64` is the
            // shortest text that reads back as the same value, and never uses
            // an exponent, so it is a valid JSON number.
            let _ = write!(self.out, "{value}");
        } else {
            self.out.push_str("null");
        }
        self
    }

    /// Adds `"key": <already-serialised JSON>`; `raw` must be valid JSON.
    #[must_use]
    pub fn raw(mut self, key: &str, raw: &str) -> Self {
        self.key(key);
        self.out.push_str(raw);
        self
    }

    /// Closes the object and returns the text.
    #[must_use]
    pub fn finish(mut self) -> String {
        self.out.push('}');
        self.out
    }
}

impl Default for JsonObject {
    fn default() -> Self {
        Self::new()
    }
}

/// Appends `s` as a quoted JSON string.
pub fn escape_into(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 || c == '\u{2028}' || c == '\u{2029}' => {
                // Writing to a String cannot fail.
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_objects() {
        assert_eq!(JsonObject::new().finish(), "{}");
        let s = JsonObject::new()
            .str("a", "x")
            .u64("n", 42)
            .raw("r", "[1,2]")
            .f64("f", 0.008_125)
            .f64("z", 0.0)
            .f64("nan", f64::NAN)
            .finish();
        assert_eq!(
            s,
            r#"{"a":"x","n":42,"r":[1,2],"f":0.008125,"z":0,"nan":null}"#
        );
    }

    #[test]
    fn escapes_strings() {
        let mut out = String::new();
        escape_into(&mut out, "q\"b\\n\n\u{1}é\u{2028}");
        assert_eq!(out, r#""q\"b\\n\n\u0001é\u2028""#);
    }
}
