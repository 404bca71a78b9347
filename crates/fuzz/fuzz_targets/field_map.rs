//! Fuzz target: configured field names (`FieldMap`) and address values with ports or
//! forwarded lists (`uniqd_ingest::fields::address`).
//!
//! Input layout: the bytes up to the first `\n` are three field lists separated by `|`
//! (comma-separated names or dotted paths, as `--ip-field` takes them), then a trusted-proxy
//! list after a second `|`; the rest is one log.
//!
//! Properties, for any bytes:
//! * no panic, no hang;
//! * where the fast scanner answers with the map, simd-json with the same map accepts the log
//!   and reads the same fields (the scanner only ever sees top-level names);
//! * the address part `resolve` hands back of a value is a substring of it, and when
//!   `strip_port` strips a port off an address, `std::net::SocketAddr` reads the value as that
//!   address and a port.

#![no_main]

use std::net::{IpAddr, SocketAddr};

use libfuzzer_sys::fuzz_target;
use uniqd_ingest::fields::address::{resolve, strip_port};
use uniqd_ingest::fields::parse::{parse_fields_with, Scratch};
use uniqd_ingest::fields::scan::scan_fields_with;
use uniqd_ingest::fields::{FieldMap, LogFields, TrustedProxies};

fn owned(f: LogFields<'_>) -> (String, Option<String>, Option<String>) {
    (
        f.ip.to_owned(),
        f.url.map(str::to_owned),
        f.timestamp.map(|t| format!("{t:?}")),
    )
}

fuzz_target!(|data: &[u8]| {
    let (head, log) = match data.iter().position(|&b| b == b'\n') {
        Some(nl) => (&data[..nl], &data[nl + 1..]),
        None => (data, &b""[..]),
    };
    let head = String::from_utf8_lossy(head);
    let mut parts = head.split('|');
    let mut list = || -> Vec<String> {
        parts
            .next()
            .unwrap_or("ip")
            .split(',')
            .map(str::to_owned)
            .collect()
    };
    let (ip, url, timestamp) = (list(), list(), list());
    let trusted = TrustedProxies::parse(parts.next().unwrap_or("")).unwrap_or_default();
    let Ok(map) = FieldMap::new(&ip, &url, &timestamp) else {
        return;
    };
    let map = map.with_trusted_proxies(trusted.clone());

    let mut buf = log.to_vec();
    let full = parse_fields_with(&mut buf, &mut Scratch::new(), &map).map(owned);
    if let Some(fast) = scan_fields_with(log, &map) {
        assert_eq!(
            Ok(owned(fast)),
            full,
            "the fast scanner disagrees with simd-json"
        );
    }

    // Addresses: the log as a value.
    let value = String::from_utf8_lossy(log);
    if let Some(addr) = resolve(&value, &trusted) {
        assert!(value.contains(addr));
    }
    let stripped = strip_port(&value);
    if let (true, Ok(ip)) = (stripped != value, stripped.parse::<IpAddr>()) {
        if value.ends_with(']') {
            assert!(
                ip.is_ipv6() && value == format!("[{stripped}]"),
                "{value:?}"
            );
        } else {
            let socket: SocketAddr = value.parse().expect("a stripped port was a socket address");
            assert_eq!(socket.ip(), ip, "{value:?}");
        }
    }
});
