//! The element an address is counted as: its canonical text, as `PFADD key <text>` would count it.
//!
//! IPv4 is the dotted quad; IPv6 is RFC 5952 text as `std` formats it; an IPv4-mapped IPv6
//! address (`::ffff:a.b.c.d`) is the same element as its IPv4 form. IPv4 text is accepted only in
//! the canonical form, as `std`'s parser accepts it (no leading zeros, no spaces, exactly four
//! parts; checked without building a value), so for IPv4 input the text received *is* the element and is hashed as is, without formatting. IPv6 text has
//! many spellings and is formatted into a stack buffer (no allocation).

#![forbid(unsafe_code)]

use std::fmt::{self, Write as _};
use std::net::{IpAddr, Ipv6Addr};

use crate::murmur::hash_element;

/// The text was not an IPv4 or IPv6 address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidAddress;

impl fmt::Display for InvalidAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not an IPv4 or IPv6 address")
    }
}

impl std::error::Error for InvalidAddress {}

/// Longest canonical text: a full IPv6 address, 8 groups of 4 hex digits and 7 colons.
const MAX_TEXT: usize = 39;

/// A fixed buffer that `write!` can fill without allocating.
struct TextBuf {
    bytes: [u8; MAX_TEXT],
    len: usize,
}

impl TextBuf {
    fn new() -> Self {
        Self {
            bytes: [0; MAX_TEXT],
            len: 0,
        }
    }

    fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

impl fmt::Write for TextBuf {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len + s.len();
        let dst = self.bytes.get_mut(self.len..end).ok_or(fmt::Error)?;
        dst.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// Hashes the canonical text of `ip`.
pub fn hash_ip(ip: IpAddr) -> u64 {
    let mut text = TextBuf::new();
    // Writing an address's Display into a 39-byte buffer cannot fail: IPv4 text is at most
    // 15 bytes and IPv6 text (mapped addresses already turned into IPv4) at most 39.
    let written = match canonical(ip) {
        IpAddr::V4(v4) => write!(text, "{v4}"),
        IpAddr::V6(v6) => write!(text, "{v6}"),
    };
    debug_assert!(written.is_ok());
    hash_element(text.as_bytes())
}

/// Parses `text` as an address and hashes its canonical text.
///
/// IPv4 text that parses is already canonical and is hashed without formatting.
#[inline]
pub fn hash_ip_str(text: &str) -> Result<u64, InvalidAddress> {
    if is_ipv4(text.as_bytes()) {
        return Ok(hash_element(text.as_bytes()));
    }
    let v6: Ipv6Addr = text.parse().map_err(|_| InvalidAddress)?;
    Ok(hash_ip(IpAddr::V6(v6)))
}

/// Whether `text` is a dotted-quad IPv4 address as `std` accepts it: four decimal parts of one
/// to three digits, each at most 255, without leading zeros. About four times cheaper than
/// `text.parse::<std::net::Ipv4Addr>()` (it builds no value); `tests/properties.rs` checks that both
/// accept the same texts.
fn is_ipv4(text: &[u8]) -> bool {
    if !(7..=15).contains(&text.len()) {
        return false;
    }
    let (mut dots, mut value, mut digits) = (0u32, 0u32, 0u32);
    for &b in text {
        if b.is_ascii_digit() {
            // A second digit after a leading `0`, or a part over 255 (which
            // also catches four or more digits).
            if digits == 1 && value == 0 {
                return false;
            }
            value = value * 10 + u32::from(b - b'0');
            digits += 1;
            if value > 255 {
                return false;
            }
        } else if b == b'.' && digits > 0 && dots < 3 {
            dots += 1;
            (value, digits) = (0, 0);
        } else {
            return false;
        }
    }
    dots == 3 && digits > 0
}

/// The address an element stands for: IPv4-mapped IPv6 becomes IPv4.
pub(crate) fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn h(text: &str) -> u64 {
        hash_ip_str(text).unwrap_or_else(|_| panic!("{text:?} should parse"))
    }

    #[test]
    fn spellings_of_one_address_are_one_element() {
        assert_eq!(h("::1"), h("0:0:0:0:0:0:0:1"));
        assert_eq!(
            h("2001:db8::1"),
            h("2001:0DB8:0000:0000:0000:0000:0000:0001")
        );
        assert_eq!(h("::ffff:1.2.3.4"), h("1.2.3.4"));
        assert_eq!(h("::ffff:0102:0304"), h("1.2.3.4"));
        assert_eq!(h("83.150.59.250"), hash_element(b"83.150.59.250"));
        assert_eq!(h("2001:db8::1"), hash_element(b"2001:db8::1"));
    }

    #[test]
    fn ipv4_check_matches_std() {
        for text in [
            "0.0.0.0",
            "1.2.3.4",
            "255.255.255.255",
            "83.150.59.250",
            "256.1.1.1",
            "1.2.3",
            "1.2.3.4.5",
            "01.2.3.4",
            "1.2.3.04",
            "1..2.3",
            ".1.2.3",
            "1.2.3.",
            "1.2.3.4 ",
            " 1.2.3.4",
            "1.2.3.1000",
            "1.2.3.-1",
            "+1.2.3.4",
            "1.2.3.4a",
            "",
            "1",
            "::1",
            "0000.1.1.1",
            "1.2.3.2555",
        ] {
            assert_eq!(
                is_ipv4(text.as_bytes()),
                text.parse::<Ipv4Addr>().is_ok(),
                "{text:?}"
            );
        }
    }

    #[test]
    fn hash_ip_matches_hash_ip_str() {
        for text in [
            "1.2.3.4",
            "255.255.255.255",
            "::",
            "fe80::1",
            "::ffff:10.0.0.1",
        ] {
            let ip: IpAddr = text.parse().expect("test addresses are valid");
            assert_eq!(hash_ip(ip), h(text), "{text}");
        }
    }

    #[test]
    fn non_canonical_or_invalid_text_is_rejected() {
        for text in [
            "",
            " 1.2.3.4",
            "1.2.3.4 ",
            "999.1.1.1",
            "1.2.3",
            "1.2.3.4.5",
            "01.2.3.4",
            "fe80::1%eth0",
            "1.2.3.4/32",
            "::g",
            "[::1]",
        ] {
            assert_eq!(hash_ip_str(text), Err(InvalidAddress), "{text:?}");
        }
    }
}
