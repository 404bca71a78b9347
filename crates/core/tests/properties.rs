//! Property tests: merge is the union, the count is monotone, parsing is canonical.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;
use uniqd_core::{hash_ip, hash_ip_str, Phase, UniqueCounter};

fn counter_of(elements: &[u32], threshold: usize) -> UniqueCounter {
    let counter = UniqueCounter::with_threshold(threshold);
    for e in elements {
        counter.insert_element(&e.to_le_bytes());
    }
    counter
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// exact+exact, exact+sketch and sketch+sketch merges all equal the counter of the union:
    /// same registers, same raw estimate, and the same exact count while exact.
    #[test]
    fn merge_equals_union(
        a in proptest::collection::vec(0u32..20_000, 0..3_000),
        b in proptest::collection::vec(0u32..20_000, 0..3_000),
        threshold in prop_oneof![Just(0usize), Just(100), Just(1_000), Just(10_000)],
    ) {
        let left = counter_of(&a, threshold);
        let right = counter_of(&b, threshold);
        left.merge(&right);
        let union: Vec<u32> = a.iter().chain(&b).copied().collect();
        let direct = counter_of(&union, threshold);
        prop_assert_eq!(left.registers(), direct.registers());
        prop_assert_eq!(left.raw_estimate(), direct.raw_estimate());
        let distinct = union.iter().collect::<std::collections::HashSet<_>>().len() as u64;
        if distinct <= threshold as u64 {
            prop_assert_eq!(left.phase(), Phase::Exact);
            prop_assert_eq!(left.estimate(), distinct);
        } else {
            prop_assert_eq!(left.phase(), Phase::Sketch);
            prop_assert!(left.estimate() >= direct.raw_estimate().min(threshold as u64 + 1));
        }
    }

    /// The reported count never goes down as inserts go on, through the swap.
    #[test]
    fn estimate_is_monotone(elements in proptest::collection::vec(any::<u32>(), 1..12_000)) {
        let counter = UniqueCounter::with_threshold(1_000);
        let mut last = 0;
        for (i, e) in elements.iter().enumerate() {
            counter.insert_element(&e.to_le_bytes());
            if i % 17 == 0 || i + 1 == elements.len() {
                let now = counter.estimate();
                prop_assert!(now >= last, "count went down from {} to {}", last, now);
                last = now;
            }
        }
    }

    /// Any spelling std accepts of an address is the same element as the address itself.
    #[test]
    fn text_and_address_are_one_element(v4 in any::<u32>(), v6 in any::<u128>()) {
        let v4 = Ipv4Addr::from(v4);
        prop_assert_eq!(hash_ip_str(&v4.to_string()), Ok(hash_ip(IpAddr::V4(v4))));
        let v6 = Ipv6Addr::from(v6);
        let segments = v6.segments();
        let long = segments.iter().map(|s| format!("{s:04X}")).collect::<Vec<_>>().join(":");
        prop_assert_eq!(hash_ip_str(&long), Ok(hash_ip(IpAddr::V6(v6))));
        let mapped = v4.to_ipv6_mapped();
        prop_assert_eq!(hash_ip_str(&mapped.to_string()), Ok(hash_ip(IpAddr::V4(v4))));
    }

    /// The address check accepts exactly what std's parser accepts, on texts made of the
    /// characters addresses are made of (the IPv4 fast path included), and hashes it as std's
    /// address would be.
    #[test]
    fn address_check_matches_std(text in "[0-9.]{0,18}|[0-9a-fA-F:.]{0,24}") {
        let expected = text.parse::<IpAddr>().map(hash_ip).map_err(|_| ());
        prop_assert_eq!(hash_ip_str(&text).map_err(|_| ()), expected, "{:?}", text);
    }

    /// Near-valid dotted quads: every part from 0 to 999, with and without a leading zero.
    #[test]
    fn dotted_quads_match_std(parts in proptest::collection::vec(0u32..1000, 3..6), zero in any::<bool>()) {
        let mut text = parts.iter().map(u32::to_string).collect::<Vec<_>>().join(".");
        if zero {
            text.insert(0, '0');
        }
        let expected = text.parse::<IpAddr>().map(hash_ip).map_err(|_| ());
        prop_assert_eq!(hash_ip_str(&text).map_err(|_| ()), expected, "{:?}", text);
    }
}
