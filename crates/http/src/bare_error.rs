//! hyper's own error answers, rewritten into the JSON error shape.
//!
//! A request whose head hyper cannot parse (bad `Content-Length` or
//! `Transfer-Encoding`, obs-fold, an unknown HTTP version, garbage bytes, a
//! head too large: 431, a URI too long: 414) never reaches a service: hyper
//! 1.x's HTTP/1 server writes a bare status line with `content-length: 0`
//! itself and closes, and has no hook to change that answer (hyper issue
//! #3225). The connection's socket wrapper (`connection.rs`) therefore
//! looks at what hyper writes: [`rewrite`] recognises such an answer and
//! returns the response to send in its place, the same
//! `{"error": code, "message": text}` JSON with `content-type:
//! application/json` that every other error carries.
//!
//! Recognising it is safe because the services' own responses always carry
//! a `content-type`: hyper's bare answer is a head that starts a write,
//! has a status of 400 to 599, and holds nothing but `content-length: 0`,
//! `date` and `connection` header lines. A response body never starts with
//! `HTTP/1.` (they are JSON, HTML or OpenMetrics text), and a successful
//! response is ruled out after comparing ten bytes.

use std::fmt::Write as _;

use hyper::StatusCode;

use crate::json::JsonObject;

/// The longest head hyper writes for its own error (status line, three
/// short header lines); anything longer is not one.
const MAX_BARE_HEAD: usize = 256;

/// If `buf` starts with an error answer hyper wrote itself, the number of
/// bytes of `buf` it takes and the JSON response to write instead.
pub(crate) fn rewrite(buf: &[u8]) -> Option<(usize, Vec<u8>)> {
    // The success path ends here: "HTTP/1.1 2.." or body bytes.
    if buf.len() < 16 || !matches!(buf.get(9), Some(b'4' | b'5')) || !buf.starts_with(b"HTTP/1.") {
        return None;
    }
    let window = &buf[..buf.len().min(MAX_BARE_HEAD)];
    let head_len = find(window, b"\r\n\r\n")? + 4;
    let head = &window[..head_len - 2];
    let status_end = find(head, b"\r\n")?;
    let status_line = &head[..status_end];
    let status = std::str::from_utf8(status_line.get(9..12)?)
        .ok()
        .and_then(|code| code.parse::<u16>().ok())
        .and_then(|code| StatusCode::from_u16(code).ok())?;
    let mut zero_length = false;
    let mut date: &[u8] = b"";
    for line in head[status_end + 2..].split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        let (name, value) = line.split_at(line.iter().position(|&b| b == b':')?);
        let value = value[1..].trim_ascii();
        if name.eq_ignore_ascii_case(b"content-length") && value == b"0" {
            zero_length = true;
        } else if name.eq_ignore_ascii_case(b"date") {
            date = line;
        } else if !name.eq_ignore_ascii_case(b"connection") {
            // Any other header (content-type above all): not hyper's answer.
            return None;
        }
    }
    if !zero_length {
        return None;
    }
    Some((head_len, json_answer(status_line, status, date)))
}

/// The JSON response replacing hyper's bare one: the same status line, the
/// JSON body, and hyper's `date` line if it wrote one.
fn json_answer(status_line: &[u8], status: StatusCode, date: &[u8]) -> Vec<u8> {
    let (code, message) = describe(status);
    let body = JsonObject::with_capacity(160)
        .str("error", code)
        .str("message", message)
        .finish();
    let mut head = String::with_capacity(128);
    // Writing to a String cannot fail.
    let _ = write!(
        head,
        "\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n",
        body.len()
    );
    let mut out = Vec::with_capacity(status_line.len() + head.len() + date.len() + body.len() + 4);
    out.extend_from_slice(status_line);
    out.extend_from_slice(head.as_bytes());
    if !date.is_empty() {
        out.extend_from_slice(date);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body.as_bytes());
    out
}

/// The error code and message for a status hyper answers by itself.
fn describe(status: StatusCode) -> (&'static str, &'static str) {
    match status {
        StatusCode::BAD_REQUEST => (
            "bad_request",
            "the request is not valid HTTP/1.1: a malformed request line, method, URI, version \
             or header (including a duplicate or invalid Content-Length, an invalid \
             Transfer-Encoding, or a folded header line)",
        ),
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => (
            "header_fields_too_large",
            "the request head is larger than the server accepts, or has more than 100 header \
             fields",
        ),
        StatusCode::URI_TOO_LONG => ("uri_too_long", "the request target (URI) is too long"),
        _ if status.is_server_error() => (
            "server_error",
            "the server could not handle the request at the HTTP level",
        ),
        _ => ("http_error", "the request was rejected at the HTTP level"),
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DATE: &str = "date: Tue, 15 Nov 1994 08:12:31 GMT";

    fn parts(response: &[u8]) -> (String, String) {
        let text = String::from_utf8(response.to_vec()).expect("UTF-8");
        let (head, body) = text.split_once("\r\n\r\n").expect("a head");
        (head.to_owned(), body.to_owned())
    }

    #[test]
    fn hypers_answers_become_json() {
        for (status, code) in [
            ("400 Bad Request", "bad_request"),
            (
                "431 Request Header Fields Too Large",
                "header_fields_too_large",
            ),
            ("414 URI Too Long", "uri_too_long"),
        ] {
            let bare = format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\n{DATE}\r\n\r\n");
            let (taken, response) = rewrite(bare.as_bytes()).expect("rewritten");
            assert_eq!(taken, bare.len());
            let (head, body) = parts(&response);
            assert!(
                head.starts_with(&format!("HTTP/1.1 {status}\r\n")),
                "{head}"
            );
            assert!(
                head.contains("\r\ncontent-type: application/json\r\n"),
                "{head}"
            );
            assert!(
                head.contains(&format!("\r\ncontent-length: {}\r\n", body.len())),
                "{head}"
            );
            assert!(head.ends_with(DATE), "{head}");
            assert!(
                body.starts_with(&format!("{{\"error\":\"{code}\",\"message\":\"")),
                "{body:?}"
            );
        }
        // Also with connection: close, without a date, with more bytes after.
        let bare =
            b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nconnection: close\r\n\r\nmore";
        let (taken, response) = rewrite(bare).expect("rewritten");
        assert_eq!(taken, bare.len() - 4);
        assert!(String::from_utf8_lossy(&response).contains("\"bad_request\""));
    }

    #[test]
    fn everything_else_is_left_alone() {
        for text in [
            // Success, and the services' own errors (they have a content type).
            format!("HTTP/1.1 202 Accepted\r\ncontent-type: application/json\r\ncontent-length: 14\r\n{DATE}\r\n\r\n"),
            format!("HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 0\r\n{DATE}\r\n\r\n"),
            format!("HTTP/1.1 404 Not Found\r\ncontent-length: 12\r\n{DATE}\r\n\r\n"),
            // A 1xx/3xx, an incomplete head, body bytes.
            "HTTP/1.1 100 Continue\r\n\r\n".to_owned(),
            "HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n".to_owned(),
            "{\"error\":\"bad_request\",\"message\":\"x\"}".to_owned(),
            "HTTP/1.1 4xx Odd\r\ncontent-length: 0\r\n\r\n".to_owned(),
        ] {
            assert!(rewrite(text.as_bytes()).is_none(), "{text}");
        }
    }
}
