//! Error messages in JSON terms, with the right place: malformed single objects name the
//! byte offset in the body, malformed NDJSON lines their line number and the byte offset in
//! the line, and no message shows a parser identifier (a CamelCase word) or "Syntax".

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;

/// `(body, offset, what)`: the body is sent as one object and, with other lines around it, as
/// line 3 of an NDJSON batch.
const TABLE: &[(&str, usize, &str)] = &[
    (
        r#"{"timestamp":"2020-06-24T15:27:00.123456Z","ip":"1.2.3.4""#,
        57,
        "unexpected end of input",
    ),
    (r#"{"ip":"83.150.59.2"#, 18, "unexpected end of input"),
    (r#"{"ip":"1.2.3.4","n":-}"#, 20, "invalid number"),
    (r#"{"ip":"1.2.3.4","n":1.5.2}"#, 20, "invalid number"),
    (r#"{"ip": "1.2.3.4",, }"#, 17, "expected a string key"),
    (r#"{'ip':'1.2.3.4'}"#, 1, "expected a string key"),
    (r#"{"ip" "1.2.3.4"}"#, 6, "expected ':'"),
    (r#"{"ip":"1.2.3.4","u":"\q"}"#, 21, "invalid escape"),
    (r#"{"ip":"1.2.3.4","a":[1,2}"#, 24, "expected ',' or ']'"),
    (r#"{"ip":nul}"#, 6, "invalid literal"),
];

/// Rows for NDJSON lines only: as an `application/json` body, an object followed by more is a
/// stream of objects (tests/body_shapes.rs).
const NDJSON_ONLY: &[(&str, usize, &str)] = &[(
    r#"{"ip":"1.2.3.4"} {}"#,
    17,
    "unexpected data after the JSON value",
)];

fn assert_plain(text: &str) {
    assert!(!text.to_lowercase().contains("syntax"), "{text}");
    for word in text.split(|c: char| !c.is_ascii_alphabetic()) {
        let inner_upper = word.chars().skip(1).any(|c| c.is_ascii_uppercase());
        let lower = word.chars().any(|c| c.is_ascii_lowercase());
        assert!(
            !(inner_upper && lower),
            "{text}: parser identifier {word:?}"
        );
    }
}

#[tokio::test]
async fn malformed_json_is_described_in_json_terms_with_its_place() {
    let service = TestService::start().await;
    for (row, &(body, offset, what)) in TABLE.iter().chain(NDJSON_ONLY).enumerate() {
        if row < TABLE.len() {
            let r = post_json(service.ingest, body).await;
            let json = r.expect_error(400, "invalid_json");
            let message = json["message"].as_str().unwrap();
            let want = format!("invalid JSON at byte {offset}: {what}");
            assert!(
                message.starts_with(&want),
                "{body}: {message} (want {want})"
            );
            assert_plain(message);
        }

        let batch = format!(
            "{}\n\n{body}\n{}\n",
            log_line("10.0.0.1"),
            log_line("10.0.0.2")
        );
        let r = post_ndjson(service.ingest, &batch).await;
        let json = r.expect_error(400, "invalid_lines");
        let failure = &json["errors"][0];
        assert_eq!(failure["line"], 3, "{json}");
        let message = failure["message"].as_str().unwrap();
        let want = format!("line 3: invalid JSON at byte {offset}: {what}");
        assert!(
            message.starts_with(&want),
            "{body}: {message} (want {want})"
        );
        assert_plain(message);
    }
    // Too deep: said as such, at the bracket that goes too deep.
    let deep = format!(r#"{{"ip":"1.2.3.4","x":{}"#, "[".repeat(3000));
    let r = post_json(service.ingest, &deep).await;
    let message = r.expect_error(400, "invalid_json")["message"].clone();
    assert_eq!(
        message,
        "invalid JSON at byte 1042: nesting deeper than 1024 levels"
    );
    assert_eq!(service.unique().await, 2);
    service.stop().await;
}
