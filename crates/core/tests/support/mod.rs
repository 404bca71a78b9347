//! Test support shared by the integration tests of uniqd-core.
pub mod redis;
