//! (crate docs written below after measurement)
#![deny(unsafe_code)]

mod counter;
mod element;
mod estimator;
mod exact;
mod murmur;
mod redis_format;
mod registers;

pub use counter::{Phase, UniqueCounter, DEFAULT_THRESHOLD, SKETCH_RELATIVE_STANDARD_ERROR};
pub use element::{hash_ip, hash_ip_str, InvalidAddress};
pub use murmur::{hash_element, murmur64a, REDIS_HLL_SEED};
pub use redis_format::{RedisHllError, DENSE_LEN as REDIS_DENSE_LEN};
pub use registers::{index_and_rank, M as REGISTERS, P as PRECISION};
