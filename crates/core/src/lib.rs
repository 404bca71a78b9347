//! Temporary API surface of `uniqd-core` (being replaced by the real implementation).
#![allow(missing_docs, clippy::all)]
use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::Mutex;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase { Exact, Sketch }
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidAddress;
impl std::fmt::Display for InvalidAddress { fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str("invalid IP address") } }
impl std::error::Error for InvalidAddress {}
pub const DEFAULT_THRESHOLD: usize = 4096;
pub struct UniqueCounter { set: Mutex<HashSet<IpAddr>>, t: usize }
impl Default for UniqueCounter { fn default() -> Self { Self::new() } }
impl UniqueCounter {
    pub fn new() -> Self { Self::with_threshold(DEFAULT_THRESHOLD) }
    pub fn with_threshold(t: usize) -> Self { Self { set: Mutex::new(HashSet::new()), t } }
    pub fn insert_str(&self, s: &str) -> Result<(), InvalidAddress> { let ip: IpAddr = s.parse().map_err(|_| InvalidAddress)?; self.insert_ip(ip); Ok(()) }
    pub fn insert_ip(&self, ip: IpAddr) { let ip = match ip { IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip), v4 => v4 }; self.set.lock().unwrap().insert(ip); }
    pub fn estimate(&self) -> u64 { self.set.lock().unwrap().len() as u64 }
    pub fn raw_estimate(&self) -> u64 { self.estimate() }
    pub fn phase(&self) -> Phase { if self.estimate() as usize > self.t { Phase::Sketch } else { Phase::Exact } }
    pub fn relative_standard_error(&self) -> f64 { match self.phase() { Phase::Exact => 0.0, Phase::Sketch => 1.04 / 128.0 } }
    pub fn threshold(&self) -> usize { self.t }
}
