//! Shared inputs for the uniqd benchmarks: deterministic address streams.

/// The `i`-th address of a stream as canonical IPv4 text: a bijection of `i`, so the first
/// 2³² are distinct and look random to the hash.
pub fn ipv4_text(i: u32) -> String {
    std::net::Ipv4Addr::from(i.wrapping_mul(2_654_435_761)).to_string()
}

/// `n` distinct addresses starting at stream position `start`.
pub fn ipv4_texts(start: u32, n: usize) -> Vec<String> {
    (0..n as u32)
        .map(|i| ipv4_text(start.wrapping_add(i)))
        .collect()
}
