//! Property test: addresses with ports and forwarded lists (`fields::address`) against std's
//! `SocketAddr`/`IpAddr` parsing and a model of the forwarded-list rule.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use proptest::prelude::*;
use uniqd_ingest::fields::address::{resolve, strip_port};
use uniqd_ingest::fields::TrustedProxies;

fn ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<u32>().prop_map(|v| IpAddr::V4(Ipv4Addr::from(v))),
        any::<u128>().prop_map(|v| IpAddr::V6(Ipv6Addr::from(v))),
        // A few addresses, so lists repeat them and trusted sets hit them.
        (0u8..6).prop_map(|i| IpAddr::V4(Ipv4Addr::new(10, 0, 0, i))),
    ]
}

/// An address as a log may write it: bare, or with a port.
fn written() -> impl Strategy<Value = (IpAddr, String)> {
    (ip(), proptest::option::of(any::<u16>())).prop_map(|(ip, port)| {
        let text = match port {
            Some(port) => SocketAddr::new(ip, port).to_string(),
            None => ip.to_string(),
        };
        (ip, text)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    #[test]
    fn socket_addresses_lose_their_port(ip in ip(), port in any::<u16>()) {
        let text = SocketAddr::new(ip, port).to_string();
        prop_assert_eq!(strip_port(&text).parse::<IpAddr>(), Ok(ip), "{}", text);
        if let IpAddr::V6(v6) = ip {
            let bracketed = format!("[{v6}]");
            prop_assert_eq!(strip_port(&bracketed).parse::<IpAddr>(), Ok(ip));
        }
        // A bare address is left as it is.
        let bare = ip.to_string();
        prop_assert_eq!(strip_port(&bare), bare.as_str());
    }

    #[test]
    fn a_stripped_port_is_what_std_reads(text in "[0-9a-f:.\\[\\]%]{0,24}") {
        let stripped = strip_port(&text);
        if let (true, Ok(ip)) = (stripped != text, stripped.parse::<IpAddr>()) {
            if text.ends_with(']') {
                prop_assert!(ip.is_ipv6() && text == format!("[{stripped}]"), "{}", text);
            } else {
                let socket: Result<SocketAddr, _> = text.parse();
                prop_assert_eq!(socket.map(|s| s.ip()), Ok(ip), "{}", text);
            }
        }
        // Whatever std reads as a socket address (without a zone, port of at most 5 digits),
        // the address part is what it read.
        if let Ok(socket) = text.parse::<SocketAddr>() {
            let port_digits = text.rsplit(':').next().map_or(0, str::len);
            if !text.contains('%') && port_digits <= 5 {
                prop_assert_eq!(strip_port(&text).parse::<IpAddr>(), Ok(socket.ip()), "{}", text);
            }
        }
    }

    #[test]
    fn forwarded_lists_follow_the_rule(
        list in proptest::collection::vec(written(), 1..6),
        trusted_count in 0usize..4,
        seps in proptest::collection::vec(prop_oneof![Just(","), Just(", "), Just(" ,\t")], 5),
    ) {
        let text: String = list
            .iter()
            .enumerate()
            .map(|(i, (_, t))| if i == 0 { t.clone() } else { format!("{}{t}", seps[i - 1]) })
            .collect();
        // Trust the first few of 10.0.0.0..5, one by one.
        let networks: Vec<String> = (0..trusted_count).map(|i| format!("10.0.0.{i}/32")).collect();
        let trusted = TrustedProxies::parse(&networks.join(",")).expect("valid networks");
        let expected = if trusted.is_empty() {
            list[0].0
        } else {
            list.iter()
                .rev()
                .map(|(ip, _)| *ip)
                .find(|ip| !trusted.contains(*ip))
                .unwrap_or(list[0].0)
        };
        let got = resolve(&text, &trusted).map(|a| a.parse::<IpAddr>());
        prop_assert_eq!(got, Some(Ok(expected)), "{} trusting {:?}", text, networks);
    }
}
