//! Shared pieces of the uniqd benchmarks: deterministic address streams and the four
//! distinct-counting structures compared in `exact_vs_approx` and the `memory_error` example.
#![allow(missing_docs)]

pub mod counting_alloc;

use std::collections::HashSet;
use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher, Hash};
use std::net::IpAddr;
use std::sync::Mutex;

use hyperloglogplus::{HyperLogLog, HyperLogLogPlus};
use uniqd_core::UniqueCounter;

/// The `i`-th address of a stream as canonical IPv4 text: a bijection of `i`, so the first
/// 2³² are distinct and look random to any hash.
pub fn ipv4_text(i: u32) -> String {
    std::net::Ipv4Addr::from(i.wrapping_mul(2_654_435_761)).to_string()
}

/// `n` distinct addresses starting at stream position `start`.
pub fn ipv4_texts(start: u32, n: usize) -> Vec<String> {
    (0..n as u32)
        .map(|i| ipv4_text(start.wrapping_add(i)))
        .collect()
}

/// `n` distinct address texts packed in one buffer (10⁷ `String`s would cost 400 MB).
pub struct TextStream {
    bytes: Vec<u8>,
    ends: Vec<u32>,
}

impl TextStream {
    pub fn new(start: u32, n: usize) -> Self {
        let mut bytes = Vec::with_capacity(n * 14);
        let mut ends = Vec::with_capacity(n);
        for i in 0..n as u32 {
            bytes.extend_from_slice(ipv4_text(start.wrapping_add(i)).as_bytes());
            ends.push(bytes.len() as u32);
        }
        Self { bytes, ends }
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Texts `range` of the stream.
    pub fn iter(&self, range: std::ops::Range<usize>) -> impl Iterator<Item = &str> + '_ {
        range.map(move |i| {
            let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
            std::str::from_utf8(&self.bytes[start..self.ends[i] as usize])
                .expect("ASCII digits and dots")
        })
    }
}

/// A distinct counter shared by `&self`, fed address text as it arrives in a log.
pub trait Distinct: Send + Sync {
    const NAME: &'static str;
    fn new() -> Self;
    fn insert(&self, text: &str);
    fn count(&self) -> u64;
}

impl Distinct for UniqueCounter {
    const NAME: &'static str = "uniqd-core";
    fn new() -> Self {
        UniqueCounter::new()
    }
    fn insert(&self, text: &str) {
        self.insert_str(text).expect("valid address");
    }
    fn count(&self) -> u64 {
        self.estimate()
    }
}

fn parse(text: &str) -> IpAddr {
    text.parse().expect("valid address")
}

/// `hyperloglogplus` (HLL++, p = 14): `&mut self` API, so shared behind a `Mutex`.
pub struct HllPlus(Mutex<HyperLogLogPlus<IpAddr, BuildHasherDefault<DefaultHasher>>>);

impl Distinct for HllPlus {
    const NAME: &'static str = "hyperloglogplus+Mutex";
    fn new() -> Self {
        Self(Mutex::new(
            HyperLogLogPlus::new(14, BuildHasherDefault::default()).expect("p = 14 is valid"),
        ))
    }
    fn insert(&self, text: &str) {
        let ip = parse(text);
        self.0.lock().expect("no panics while locked").insert(&ip);
    }
    fn count(&self) -> u64 {
        self.0
            .lock()
            .expect("no panics while locked")
            .count()
            .round() as u64
    }
}

/// The exact baseline of the peers: a `HashSet<IpAddr>` behind one `Mutex`.
pub struct ExactSet(Mutex<HashSet<IpAddr>>);

impl Distinct for ExactSet {
    const NAME: &'static str = "HashSet<IpAddr>+Mutex";
    fn new() -> Self {
        Self(Mutex::new(HashSet::new()))
    }
    fn insert(&self, text: &str) {
        let ip = parse(text);
        self.0.lock().expect("no panics while locked").insert(ip);
    }
    fn count(&self) -> u64 {
        self.0.lock().expect("no panics while locked").len() as u64
    }
}

const SHARDS: usize = 64;

/// An exact sharded set (what `DashSet<IpAddr>` does): 64 `HashSet`s, each behind its own lock.
pub struct ShardedSet {
    hasher: BuildHasherDefault<DefaultHasher>,
    shards: Vec<Mutex<HashSet<IpAddr>>>,
}

impl Distinct for ShardedSet {
    const NAME: &'static str = "sharded HashSet<IpAddr>";
    fn new() -> Self {
        Self {
            hasher: BuildHasherDefault::default(),
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
        }
    }
    fn insert(&self, text: &str) {
        let ip = parse(text);
        let mut h = self.hasher.build_hasher();
        ip.hash(&mut h);
        let shard = (std::hash::Hasher::finish(&h) as usize) % SHARDS;
        self.shards[shard]
            .lock()
            .expect("no panics while locked")
            .insert(ip);
    }
    fn count(&self) -> u64 {
        self.shards
            .iter()
            .map(|s| s.lock().expect("no panics while locked").len() as u64)
            .sum()
    }
}
