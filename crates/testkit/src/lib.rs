//! Test support shared by the integration tests of several uniqd crates (dev-only, never
//! published). It exists so that each helper is written once instead of copied per test file:
//!
//! - [`TempDir`]: a fresh directory under the system's temporary directory, removed on drop;
//! - [`poll`]: waiting with a deadline instead of sleeping ([`poll_until`], [`block_until`],
//!   [`DEADLINE`]);
//! - [`http`]: a raw-TCP HTTP/1.1 client that sends any bytes (malformed, chunked, stalled or
//!   oversized requests too) and parses the response;
//! - [`redis`]: a real `redis-server` (Debian's, installed by `.ci/test`) on a free loopback
//!   port, checked by process id to be its own child, with a std-only RESP client: the same
//!   server binary users run, no mock.
//!
//! The Prometheus text parser the tests read `/metrics` with is not here: `uniqd loadgen`
//! needs it in production code, so it is `uniqd::loadgen::exposition`, which the tests use.

#![forbid(unsafe_code)]

pub mod http;
pub mod poll;
pub mod redis;
mod temp_dir;

pub use poll::{block_until, poll_every, poll_until, DEADLINE};
pub use temp_dir::TempDir;
