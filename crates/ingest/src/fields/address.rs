//! The address in an address field that is not a bare address: with a port
//! (`1.2.3.4:5678`, `[2001:db8::1]:443`, as Envoy and Traefik write them), or a forwarded list
//! (`"198.51.100.1, 10.0.0.1"`, an `X-Forwarded-For` value).
//!
//! [`resolve`] is only asked when the value is not an address as it stands (the common case
//! costs nothing), and hands back the part that should be one; whether it is, is then decided
//! by the same strict check as for a bare address (`uniqd_core::hash_ip_str`), so `1.2.3.4:`
//! or `[1.2.3.4]` are still invalid.
//!
//! # Which address of a forwarded list
//!
//! Every proxy appends the address it received the request from, so the list reads client
//! first, proxies after; but the client writes the start of the list itself and can put
//! anything there. By default uniqd counts the **leftmost** address: right when every proxy on
//! the way overwrites the header (or the client cannot reach them directly), and spoofable
//! otherwise: a client sending `X-Forwarded-For: 1.1.1.1` is counted as `1.1.1.1`. With
//! `--trusted-proxies` (a list of networks), uniqd walks the list **from the right** and counts
//! the first address that is not in them, as nginx's real-IP module (`real_ip_recursive on`)
//! and Traefik's `forwardedHeaders.trustedIPs` do: the client can only prepend, so the
//! address your own proxies saw it come from is what counts. When every address is trusted, the
//! leftmost counts. A list element that is not an address makes the log invalid.

use std::fmt;
use std::net::IpAddr;

/// Networks whose addresses are proxies of yours (`--trusted-proxies`), in CIDR notation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    networks: Vec<(IpAddr, u8)>,
}

impl TrustedProxies {
    /// Parses a list such as `10.0.0.0/8, 192.168.0.0/16, ::1` (an address alone is its own
    /// network).
    ///
    /// # Errors
    ///
    /// The first item that is not an address with an optional prefix length in range.
    pub fn parse(list: &str) -> Result<Self, String> {
        let mut networks = Vec::new();
        for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (addr, prefix) = match item.split_once('/') {
                Some((addr, prefix)) => (addr, Some(prefix)),
                None => (item, None),
            };
            let bad = || format!("{item:?} is not a network (CIDR such as 10.0.0.0/8)");
            let addr: IpAddr = addr.parse().map_err(|_| bad())?;
            let addr = canonical(addr);
            let max = if addr.is_ipv4() { 32 } else { 128 };
            let prefix = match prefix {
                Some(p) if p.bytes().all(|b| b.is_ascii_digit()) => {
                    p.parse::<u8>().map_err(|_| bad())?
                }
                Some(_) => return Err(bad()),
                None => max,
            };
            if prefix > max {
                return Err(bad());
            }
            networks.push((addr, prefix));
        }
        Ok(Self { networks })
    }

    /// Whether no network is trusted (the leftmost address of a list counts).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.networks.is_empty()
    }

    /// Whether `addr` is in one of the networks.
    #[must_use]
    pub fn contains(&self, addr: IpAddr) -> bool {
        let addr = canonical(addr);
        self.networks
            .iter()
            .any(|&(net, prefix)| match (net, addr) {
                (IpAddr::V4(n), IpAddr::V4(a)) => {
                    let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
                    u32::from(n) & mask == u32::from(a) & mask
                }
                (IpAddr::V6(n), IpAddr::V6(a)) => {
                    let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
                    u128::from(n) & mask == u128::from(a) & mask
                }
                _ => false,
            })
    }
}

impl fmt::Display for TrustedProxies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (addr, prefix)) in self.networks.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{addr}/{prefix}")?;
        }
        Ok(())
    }
}

/// IPv4-mapped IPv6 as IPv4, as the counter sees it.
fn canonical(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, IpAddr::V4),
        IpAddr::V4(_) => addr,
    }
}

/// The address part of `value` (see the [module docs](self)): the element of a forwarded list
/// that counts, without its port or brackets; `None` when an element that must be looked at is
/// not an address.
#[must_use]
pub fn resolve<'a>(value: &'a str, trusted: &TrustedProxies) -> Option<&'a str> {
    if !value.contains(',') {
        // A lone value is taken as it is: `" 1.2.3.4"` stays invalid.
        return Some(strip_port(value));
    }
    if trusted.is_empty() {
        return value
            .split(',')
            .next()
            .map(|e| strip_port(e.trim_matches(is_ows)));
    }
    let mut leftmost = None;
    for element in value.rsplit(',') {
        let element = strip_port(element.trim_matches(is_ows));
        let addr: IpAddr = element.parse().ok()?;
        if !trusted.contains(addr) {
            return Some(element);
        }
        leftmost = Some(element);
    }
    leftmost
}

/// Optional white space of HTTP lists.
fn is_ows(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// `1.2.3.4:80` → `1.2.3.4`, `[::1]:80` and `[::1]` → `::1`; anything else as it is (a bare
/// IPv6 address has several colons and keeps them; brackets hold IPv6 only, so `[1.2.3.4]`
/// stays). The port must be 1 to 5 digits up to 65535, as `std::net::SocketAddr` reads it.
#[must_use]
pub fn strip_port(value: &str) -> &str {
    if let Some(inner) = value.strip_prefix('[') {
        return match inner.split_once(']') {
            Some((addr, "")) if addr.contains(':') => addr,
            Some((addr, port))
                if addr.contains(':') && port.strip_prefix(':').is_some_and(is_port) =>
            {
                addr
            }
            _ => value,
        };
    }
    match value.split_once(':') {
        Some((addr, port)) if is_port(port) => addr,
        _ => value,
    }
}

fn is_port(text: &str) -> bool {
    (1..=5).contains(&text.len())
        && text.bytes().all(|b| b.is_ascii_digit())
        && text.parse::<u16>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trusted(list: &str) -> TrustedProxies {
        TrustedProxies::parse(list).expect("valid list")
    }

    #[test]
    fn ports_and_brackets_are_stripped() {
        for (value, want) in [
            ("1.2.3.4:5678", "1.2.3.4"),
            ("[2001:db8::1]:443", "2001:db8::1"),
            ("[2001:db8::1]", "2001:db8::1"),
            ("2001:db8::1", "2001:db8::1"),
            ("1.2.3.4:", "1.2.3.4:"),
            ("1.2.3.4:65536", "1.2.3.4:65536"),
            ("1.2.3.4:+80", "1.2.3.4:+80"),
            ("[::1]:", "[::1]:"),
            ("[::1]x", "[::1]x"),
            ("[1.2.3.4]:80", "[1.2.3.4]:80"),
        ] {
            assert_eq!(strip_port(value), want, "{value}");
        }
    }

    #[test]
    fn forwarded_lists_count_the_leftmost_by_default() {
        let none = TrustedProxies::default();
        assert_eq!(
            resolve("198.51.100.1, 10.0.0.1", &none),
            Some("198.51.100.1")
        );
        assert_eq!(resolve(" 1.1.1.1 ,2.2.2.2", &none), Some("1.1.1.1"));
        assert_eq!(resolve("[::1]:80,2.2.2.2", &none), Some("::1"));
        assert_eq!(resolve("1.2.3.4:80", &none), Some("1.2.3.4"));
    }

    #[test]
    fn trusted_proxies_pick_the_rightmost_untrusted() {
        let t = trusted("10.0.0.0/8, 192.168.1.1, fd00::/8");
        assert_eq!(
            resolve("1.1.1.1, 203.0.113.7, 10.1.2.3, 192.168.1.1", &t),
            Some("203.0.113.7")
        );
        assert_eq!(resolve("1.1.1.1, 10.0.0.1:99", &t), Some("1.1.1.1"));
        // All trusted: the leftmost.
        assert_eq!(resolve("10.0.0.2, 10.0.0.1", &t), Some("10.0.0.2"));
        assert_eq!(resolve("1.1.1.1, [fd00::1]:443", &t), Some("1.1.1.1"));
        // A bad element on the way makes the log invalid; one left of the answer is ignored.
        assert_eq!(resolve("1.1.1.1, bad, 10.0.0.1", &t), None);
        assert_eq!(resolve("bad, 1.1.1.1, 10.0.0.1", &t), Some("1.1.1.1"));
        assert!(t.contains("::ffff:10.9.9.9".parse().expect("an address")));
        assert!(!t.contains("192.168.1.2".parse().expect("an address")));
    }

    #[test]
    fn network_lists() {
        assert_eq!(trusted("").to_string(), "");
        assert_eq!(trusted("0.0.0.0/0,::/0").to_string(), "0.0.0.0/0,::/0");
        assert!(trusted("0.0.0.0/0").contains("8.8.8.8".parse().expect("an address")));
        for bad in [
            "10.0.0.0/33",
            "::/129",
            "10.0.0.0/",
            "10.0.0.0/+8",
            "x",
            "10/8",
        ] {
            assert!(TrustedProxies::parse(bad).is_err(), "{bad}");
        }
    }
}
