//! Property test: the access-log line parser (`fields::clf::parse_clf`) against a spec model
//! written differently (string splitting, no cursor), on generated combined/common log lines
//! (with further quoted and plain fields, as HAProxy's `option httplog clf` appends) and their
//! one-byte mutations: both accept the same lines and read the same host, request
//! target and time. The model's time goes through the RFC 3339 parser (rebuilt as
//! `YYYY-MM-DDThh:mm:ss±hh:mm`), not the CLF time parser.

use proptest::prelude::*;
use uniqd_ingest::fields::clf::parse_clf;
use uniqd_ingest::fields::timestamp::parse_rfc3339_ms;

type Fields = (String, Option<String>, u64);

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

fn is_token(t: &str) -> bool {
    !t.is_empty() && t.chars().all(|c| c > ' ' && c != '\u{7f}')
}

/// `"..."` (the opening quote already taken): contents and the rest after the closing quote.
fn quoted(s: &str) -> Option<(&str, &str)> {
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((&s[..i], &s[i + 1..])),
            '\\' => match chars.next() {
                Some((_, n)) if n >= ' ' && n != '\u{7f}' => {}
                _ => return None,
            },
            c if c < ' ' || c == '\u{7f}' => return None,
            _ => {}
        }
    }
    None
}

fn time_model(t: &str) -> Option<u64> {
    if t.len() != 26 || !t.is_ascii() {
        return None;
    }
    let (date, rest) = t.split_once(':')?;
    let (clock, zone) = rest.split_once(' ')?;
    let parts: Vec<&str> = date.split('/').collect();
    let [day, month, year] = parts[..] else {
        return None;
    };
    let month = MONTHS.iter().position(|m| *m == month)? + 1;
    let (sign, zone) = (zone.get(..1)?, zone.get(1..)?);
    if !matches!(sign, "+" | "-") || zone.len() != 4 || day.len() != 2 || clock.len() != 8 {
        return None;
    }
    let rfc = format!(
        "{year}-{month:02}-{day}T{clock}{sign}{}:{}",
        &zone[..2],
        &zone[2..]
    );
    parse_rfc3339_ms(&rfc)
}

fn target_model(request: &str) -> Option<String> {
    let parts: Vec<&str> = request.split(' ').collect();
    let ok = matches!(parts.len(), 2 | 3)
        && !parts[0].is_empty()
        && parts[0].chars().all(|c| c.is_ascii_alphabetic())
        && !parts[1].is_empty()
        && (parts.len() == 2 || parts[2].starts_with("HTTP/"));
    ok.then(|| parts[1].to_owned())
}

fn model(line: &[u8]) -> Option<Fields> {
    let s = std::str::from_utf8(line).ok()?;
    let (host, rest) = s.split_once(' ')?;
    let (ident, rest) = rest.split_once(' ')?;
    let (user, rest) = rest.split_once(' ')?;
    if ![host, ident, user].into_iter().all(is_token) {
        return None;
    }
    let (time, rest) = rest.strip_prefix('[')?.split_once(']')?;
    let ms = time_model(time)?;
    let (request, rest) = quoted(rest.strip_prefix(" \"")?)?;
    let rest = rest.strip_prefix(' ')?;
    let (status, rest) = (rest.get(..3)?, rest.get(3..)?);
    if !status.bytes().all(|b| b.is_ascii_digit()) || status.starts_with('0') {
        return None;
    }
    let rest = rest.strip_prefix(' ')?;
    let (size, mut tail) = rest.find(' ').map_or((rest, ""), |i| rest.split_at(i));
    if size != "-" && (size.is_empty() || !size.bytes().all(|b| b.is_ascii_digit())) {
        return None;
    }
    let mut quoted_fields = 0;
    while !tail.is_empty() {
        let trimmed = tail.trim_start_matches(' ');
        if trimmed.len() == tail.len() {
            return None;
        }
        if trimmed.is_empty() {
            break;
        }
        if let Some(opened) = trimmed.strip_prefix('"') {
            tail = quoted(opened)?.1;
            quoted_fields += 1;
        } else if quoted_fields >= 2 {
            // A plain field after the referer and user agent (HAProxy's clf timers).
            let (field, rest) = trimmed.split_at(trimmed.find(' ').unwrap_or(trimmed.len()));
            if !is_token(field) {
                return None;
            }
            tail = rest;
        } else {
            return None;
        }
    }
    Some((host.to_owned(), target_model(request), ms))
}

fn parsed(line: &[u8]) -> Option<Fields> {
    parse_clf(line)
        .ok()
        .map(|f| (f.host.to_owned(), f.target.map(str::to_owned), f.time_ms))
}

fn line() -> impl Strategy<Value = String> {
    let host = prop_oneof![
        Just("203.0.113.9".to_owned()),
        Just("2001:db8::1".to_owned()),
        Just("-".to_owned()),
        "[!-~]{1,12}",
        "[a-zé]{1,6}",
    ];
    let who = prop_oneof![Just("-".to_owned()), "[a-z]{1,6}"];
    let valid_time = (
        1u32..=28,
        0usize..12,
        1970u32..2100,
        0u32..24,
        0u32..60,
        0u32..60,
    )
        .prop_map(|(d, m, y, h, mi, s)| {
            format!("{d:02}/{}/{y}:{h:02}:{mi:02}:{s:02} +0000", MONTHS[m])
        });
    let wild_time = (
        1u32..=32,
        prop_oneof![
            (0usize..12).prop_map(|m| MONTHS[m].to_owned()),
            Just("oct".to_owned())
        ],
        1965u32..2100,
        0u32..25,
        0u32..61,
        0u32..61,
        prop_oneof![Just('+'), Just('-')],
        0u32..25,
        prop_oneof![Just(0u32), Just(30), Just(60)],
    )
        .prop_map(|(d, mo, y, h, mi, s, sign, zh, zm)| {
            format!("{d:02}/{mo}/{y}:{h:02}:{mi:02}:{s:02} {sign}{zh:02}{zm:02}")
        });
    let time = prop_oneof![3 => valid_time, 1 => wild_time];
    let request = prop_oneof![
        4 => ("[A-Z]{1,7}", "/[a-z0-9/?=&%.-]{0,16}", prop_oneof![Just(" HTTP/1.1"), Just(" HTTP/2.0"), Just(""), Just(" FTP")])
            .prop_map(|(m, t, p)| format!("{m} {t}{p}")),
        1 => Just("-".to_owned()),
        1 => "[ -!#-\\[\\]-~]{0,12}",
        1 => Just(r#"GET /a\"b\x22 HTTP/1.1"#.to_owned()),
    ];
    let status = prop_oneof![8 => "[1-5][0-9]{2}", 1 => "[0-9]{2,4}"];
    let size = prop_oneof![4 => Just("-".to_owned()), 4 => "[0-9]{1,6}", 1 => Just(String::new())];
    // Quoted fields, and plain ones (valid after two quoted ones).
    let field = prop_oneof![
        3 => "[ -!#-\\[\\]-~]{0,10}".prop_map(|f| format!("\"{f}\"")),
        1 => "[!-~]{1,6}",
    ];
    let tail = proptest::collection::vec(field, 0..5);
    let spaces = prop_oneof![8 => Just(""), 1 => Just(" "), 1 => Just("  ")];
    (
        host,
        who.clone(),
        who,
        time,
        request,
        status,
        size,
        tail,
        spaces,
    )
        .prop_map(
            |(host, ident, user, time, request, status, size, tail, end)| {
                let mut line =
                    format!("{host} {ident} {user} [{time}] \"{request}\" {status} {size}");
                for field in tail {
                    line.push(' ');
                    line.push_str(&field);
                }
                line.push_str(end);
                line
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    #[test]
    fn parser_agrees_with_the_model(line in line()) {
        prop_assert_eq!(parsed(line.as_bytes()), model(line.as_bytes()), "{}", line);
    }

    #[test]
    fn one_byte_mutations_agree(line in line(), at in any::<prop::sample::Index>(), byte in prop_oneof![
        Just(b' '), Just(b'"'), Just(b'\\'), Just(b'['), Just(b']'), Just(b'\t'), Just(0u8),
        Just(0x7f), Just(0xc3), Just(b'0'), Just(b'-'), Just(b'x'), Just(b'/'), Just(b':'),
    ], replace in any::<bool>()) {
        let mut bytes = line.into_bytes();
        let at = at.index(bytes.len() + 1);
        if replace && at < bytes.len() {
            bytes[at] = byte;
        } else {
            bytes.insert(at, byte);
        }
        prop_assert_eq!(parsed(&bytes), model(&bytes), "{:?}", String::from_utf8_lossy(&bytes));
    }
}

#[test]
fn most_generated_lines_are_valid() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let strategy = line();
    let valid = (0..1000)
        .filter(|_| {
            let line = strategy.new_tree(&mut runner).expect("a line").current();
            parsed(line.as_bytes()).is_some()
        })
        .count();
    assert!(
        valid > 200,
        "only {valid} of 1000 generated lines are valid"
    );
}
