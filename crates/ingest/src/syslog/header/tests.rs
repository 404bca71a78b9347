//! The header parser on what real senders write, and on what it must refuse.

use super::{message, HeaderError};

fn ok(input: &[u8]) -> &[u8] {
    message(input).unwrap_or_else(|e| panic!("{:?}: {e}", String::from_utf8_lossy(input)))
}

#[test]
fn rfc3164_as_nginx_and_haproxy_send_it() {
    // nginx: `<PRI>Mmm dd hh:mm:ss host tag: msg`; single-digit days padded with a space.
    assert_eq!(
        ok(b"<190>Dec  7 16:37:52 web1 nginx: {\"ip\":\"1.2.3.4\"}"),
        b"{\"ip\":\"1.2.3.4\"}"
    );
    assert_eq!(ok(b"<190>Dec 17 16:37:52 web1 nginx: a b: c"), b"a b: c");
    assert_eq!(ok(b"<190>Dec 07 16:37:52 web1 nginx: x"), b"x");
    // nginx's `nohostname`, HAProxy's default: no host.
    assert_eq!(ok(b"<190>Dec  7 16:37:52 nginx: x y"), b"x y");
    assert_eq!(
        ok(b"<134>Jan  1 00:00:00 haproxy[1234]: 10.0.0.1:5 [x]"),
        b"10.0.0.1:5 [x]"
    );
    // Trailers some senders add.
    assert_eq!(ok(b"<13>Feb 28 23:59:59 h t: msg\n"), b"msg");
    assert_eq!(ok(b"<13>Feb 28 23:59:59 h t: msg\r\n"), b"msg");
    assert_eq!(ok(b"<13>Feb 28 23:59:59 h t: msg\0"), b"msg");
    assert_eq!(ok(b"<0>Feb 28 23:59:59 t: msg"), b"msg");
}

#[test]
fn rfc5424_with_nil_values_and_structured_data() {
    assert_eq!(
        ok(b"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut=\"3\" eventSource=\"Application\"] {\"ip\":\"::1\"}"),
        b"{\"ip\":\"::1\"}"
    );
    assert_eq!(ok(b"<34>1 - - - - - - msg"), b"msg");
    assert_eq!(
        ok(b"<34>1 2003-10-11T22:14:15Z h a 1 m [a][b x=\"y\\\"]\\\\\"] m s g"),
        b"m s g"
    );
    // The BOM before a UTF-8 MSG is not part of it.
    assert_eq!(ok(b"<34>1 - h a - - - \xEF\xBB\xBFhello"), b"hello");
}

#[test]
fn refuses_what_is_not_syslog() {
    let cases: &[(&[u8], HeaderError)] = &[
        (b"", HeaderError::Priority),
        (b"{\"ip\":\"1.2.3.4\"}", HeaderError::Priority),
        (b"<>Dec  7 16:37:52 h t: m", HeaderError::Priority),
        (b"<192>Dec  7 16:37:52 h t: m", HeaderError::Priority),
        (b"<1900>Dec  7 16:37:52 h t: m", HeaderError::Priority),
        (b"<01>Dec  7 16:37:52 h t: m", HeaderError::Priority),
        (b"<1a>Dec  7 16:37:52 h t: m", HeaderError::Priority),
        (b"<13>Foo  7 16:37:52 h t: m", HeaderError::Timestamp),
        (b"<13>Dec  7 16:37 h t: m", HeaderError::Timestamp),
        (b"<13>2003-10-11T22:14:15Z h t: m", HeaderError::Timestamp),
        (b"<13>Dec  7 16:37:52 host no tag here", HeaderError::Tag),
        (b"<13>Dec  7 16:37:52 ", HeaderError::Tag),
        (b"<13>Dec  7 16:37:52 h t:", HeaderError::Empty),
        (b"<34>1 - - - - -", HeaderError::Field),
        (b"<34>1 - - - - - x msg", HeaderError::StructuredData),
        (b"<34>1 - - - - - [a b=c] msg", HeaderError::StructuredData),
        (
            b"<34>1 - - - - - [a b=\"c] msg",
            HeaderError::StructuredData,
        ),
        (b"<34>1 - - - - - [a]msg", HeaderError::StructuredData),
        (b"<34>1 - - - - - -", HeaderError::Empty),
        (b"<34>1 - - - - - - ", HeaderError::Empty),
    ];
    for (input, want) in cases {
        assert_eq!(
            message(input),
            Err(*want),
            "{:?}",
            String::from_utf8_lossy(input)
        );
    }
}
