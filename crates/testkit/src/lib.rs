//! Test support shared by the integration tests of several uniqd crates (dev-only, never
//! published). It exists so that the helpers are written once instead of copied per crate.
//!
//! [`redis`] starts a real `redis-server` (Debian's, installed by `.ci/test`) on a free
//! loopback port, checks by process id that the server answering is its own child, and talks
//! to it with a std-only RESP client: the same server binary users run, no mock.

#![forbid(unsafe_code)]

pub mod redis;
