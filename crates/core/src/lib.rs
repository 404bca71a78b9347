//! A lock-free counter of distinct IP addresses: exact while the set is small, then a
//! HyperLogLog sketch of 16 KiB whatever the traffic, with Redis's exact register layout;
//! [`TopPages`], the most requested page paths in fixed memory (Space-Saving, sharded by
//! thread; its [module docs](top_pages) give the algorithm, the error bound and the memory);
//! [`WindowRing`], distinct addresses per minute and hour ([module docs](window));
//! [`Groups`], distinct addresses per group in bounded memory ([module docs](groups)); and
//! [`Views`], the one value bundling them that ingest records every accepted log into
//! ([`Views::record`]) and the exporter reads. A new view is a field and one line of
//! `Views::record` in `views.rs`.
//!
//! # Design
//!
//! | phase | distinct elements | memory (measured, `memory_bytes`) | error of `estimate` |
//! |---|---|---|---|
//! | exact | 0 ..= T (default 4,096) | 60,168 B: registers 16,384 + exact set 43,712 (5,464 slots of 8 B) + header | 0 |
//! | swap | the insert that makes T + 1 | unchanged: nothing is built; the set is freed once no thread still reads it | — |
//! | sketch | > T | 16,424 B: registers + header | relative standard error 1.04/√16384 = 0.81% |
//!
//! **Every insert raises its HyperLogLog register, in every phase**, and while the counter is
//! exact it also adds the element's 64-bit hash to a fixed lock-free open-addressing set. The
//! registers therefore always describe every element, so leaving the exact phase builds
//! nothing: one atomic pointer swap unlinks the set (crossbeam-epoch defers freeing it until no
//! thread is pinned), and an insert racing with the swap has reached the registers before it
//! looks at the set, whichever side of the swap it lands on. The cost is one register update
//! (about 1 ns) per exact-phase insert. `tests/concurrency.rs` inserts disjoint sets from
//! four threads across the threshold, 40 rounds, and checks that every element's register
//! update is present.
//!
//! The exact set stores the element's 64-bit MurmurHash64A rather than the address (one
//! machine word per slot for IPv4 and IPv6 alike); two distinct addresses collide with
//! probability n²/2⁶⁵, below 10⁻¹¹ at n = 4,096. T = 4,096 is the default because it is the
//! largest power of two whose set (at load ≤ 0.75) plus registers stays within 64 KiB; any T
//! can be configured (0 means a sketch from the start).
//!
//! **A count that never goes down.** At the swap the exact count becomes a floor:
//! `estimate()` is `max(raw_estimate(), floor)`, so a dashboard never sees 4,097 become 4,080.
//! `raw_estimate()` stays available; it is what Redis's `PFCOUNT` answers.
//!
//! ## Why atomics, and which orderings
//!
//! Registers are `AtomicU8`: an insert does a `Relaxed` load and a `fetch_max` only when its
//! value is larger. A register is a lone monotone value through which nothing else is
//! published, and `fetch_max` is atomic at any ordering, so `Relaxed` cannot lose an update.
//! Settled registers are only read, so two threads share cache lines instead of bouncing them
//! (a `fetch_max` on every insert costs about 12 ns per thread with two threads; load-first
//! about 1 ns). The exact set claims slots with a `Relaxed` compare-and-swap for the same
//! reason. The one place where ordering matters is the swap: the floor is written before the
//! set pointer is swapped to null with `AcqRel`, and readers load the pointer with `Acquire`,
//! so whoever sees the set gone also sees the floor.
//!
//! ## Why Redis's layout
//!
//! p = 14 (16,384 registers), MurmurHash64A with seed `0xadc83b19` over the element's bytes,
//! index = the low 14 bits, value = 1 + trailing zeros of the other 50, and Ertl's improved
//! estimator (arXiv:1702.01284) as Redis ≥ 5.0 computes it. The element for an address is its
//! canonical text (IPv4 dotted quad, IPv6 per RFC 5952, IPv4-mapped IPv6 as IPv4), so
//! `PFADD key 83.150.59.250` counts the same element. Hence:
//! [`UniqueCounter::to_redis`] is a dense HLL string that `PFCOUNT` and `PFMERGE` accept,
//! [`UniqueCounter::from_redis`] reads Redis's dense and sparse strings, replicas can merge
//! through a Redis key, and a saved state can be inspected with Redis tools.
//! `tests/redis_compat.rs` checks against a real `redis-server`, from 1 to 1,000,000
//! elements, that the registers are identical and that our estimate equals `PFCOUNT`
//! exactly (the arithmetic follows `hllCount` operation by operation, so not even the last
//! bit of rounding differs).
//!
//! ## Why not `hyperloglogplus` at run time
//!
//! The `hyperloglogplus` crate (0.4.1, HLL++) is accurate, but its `insert` and `count` take
//! `&mut self`: sharing it between request handlers needs a `Mutex` on the ingest path, and
//! reading the estimate blocks inserters. Its sparse phase keeps about 40 KB of heap once
//! dense, `count` costs about 14 µs and mutates, and its hash and layout are not Redis's, so
//! its state could not be merged through Redis. It serves as the baseline in `benches/`.
//! Accuracy, mean and maximum absolute relative error over 20 seeds
//! (`cargo run --release -p uniqd-core --example accuracy_table`):
//!
//! | n | uniqd-core mean | uniqd-core max | hyperloglogplus mean | hyperloglogplus max |
//! |---:|---:|---:|---:|---:|
//! | 1 | 0 | 0 | 0 | 0 |
//! | 10 | 0 | 0 | 0 | 0 |
//! | 100 | 0 | 0 | 0 | 0 |
//! | 1,000 | 0 | 0 | 0.008% | 0.097% |
//! | 4,096 | 0 | 0 | 0.013% | 0.037% |
//! | 10,000 | 0.664% | 1.560% | 0.532% | 1.631% |
//! | 100,000 | 0.539% | 2.190% | 0.615% | 1.590% |
//! | 1,000,000 | 0.519% | 1.102% | 0.757% | 1.755% |
//! | 10,000,000 | 0.768% | 1.940% | 0.615% | 2.027% |
//!
//! `tests/accuracy.rs` asserts the bounds from theory on the same rows: 0 while exact, mean
//! at most 1.04/√m ≈ 0.81% and no run beyond 3.5% in the sketch phase.
//!
//! # Examples
//!
//! ```
//! use uniqd_core::{Phase, UniqueCounter};
//!
//! let counter = UniqueCounter::new();
//! counter.insert_str("83.150.59.250")?;
//! counter.insert_str("::1")?;
//! counter.insert_str("0:0:0:0:0:0:0:1")?; // the same address as ::1
//! counter.insert_str("::ffff:83.150.59.250")?; // IPv4-mapped: the same as the first
//! assert!(counter.insert_str("01.2.3.4").is_err()); // not canonical, not counted
//! assert_eq!(counter.estimate(), 2);
//! assert_eq!(counter.phase(), Phase::Exact);
//! assert_eq!(counter.relative_standard_error(), 0.0);
//! # Ok::<(), uniqd_core::InvalidAddress>(())
//! ```
//!
//! Counters merge into the union, whatever their phases:
//!
//! ```
//! use uniqd_core::{Phase, UniqueCounter};
//!
//! let (a, b) = (UniqueCounter::with_threshold(100), UniqueCounter::with_threshold(100));
//! for i in 0..80u32 {
//!     a.insert_ip(std::net::Ipv4Addr::from(i).into());
//!     b.insert_ip(std::net::Ipv4Addr::from(i + 40).into());
//! }
//! a.merge(&b);
//! assert_eq!(a.phase(), Phase::Sketch); // 120 distinct > threshold 100
//! assert!(a.estimate() >= 120 && a.estimate() < 125);
//! ```
//!
//! The registers travel as a Redis HLL string (`SET key <bytes>`, then `PFCOUNT key`):
//!
//! ```
//! use uniqd_core::{UniqueCounter, REDIS_DENSE_LEN};
//!
//! let counter = UniqueCounter::new();
//! counter.insert_str("10.0.0.1").unwrap();
//! let bytes = counter.to_redis();
//! assert_eq!(&bytes[..4], b"HYLL");
//! assert_eq!(bytes.len(), REDIS_DENSE_LEN);
//! let back = UniqueCounter::from_redis(&bytes).unwrap();
//! assert_eq!(back.raw_estimate(), counter.raw_estimate());
//! ```
#![deny(unsafe_code)]

mod counter;
mod crc32;
mod element;
mod estimator;
mod exact;
pub mod groups;
mod murmur;
mod redis_format;
mod registers;
mod state;
pub mod top_pages;
mod views;
pub mod window;

pub use counter::{Phase, UniqueCounter, DEFAULT_THRESHOLD, SKETCH_RELATIVE_STANDARD_ERROR};
pub use element::{hash_ip, hash_ip_str, InvalidAddress};
pub use groups::{
    group_name, GroupCount, Groups, GroupsError, GroupsRestored, GroupsSnapshot, GroupsStateError,
    DEFAULT_MAX_GROUPS, MAX_GROUPS, MAX_GROUP_FIELD_BYTES, MAX_GROUP_NAME_BYTES, OTHER_GROUP,
};
pub use murmur::{hash_element, murmur64a, REDIS_HLL_SEED};
pub use redis_format::{RedisHllError, DENSE_LEN as REDIS_DENSE_LEN};
pub use registers::{index_and_rank, M as REGISTERS, P as PRECISION};
pub use state::{StateError, StateSections, STATE_VERSION};
pub use top_pages::{
    normalize_path, PageCount, PathOptions, TopPages, TopPagesError, TopPagesSnapshot,
    DEFAULT_TOP_PAGES_CAPACITY, MAX_PATH_BYTES, MAX_TOP_PAGES_CAPACITY, MAX_TOP_PAGES_SHARDS,
};
pub use views::{Arrival, Views};
pub use window::{
    Clock, ManualClock, Resolution, SeriesPoint, SharedIntervals, Span, SpanError, SystemClock,
    WindowCount, WindowRing, WindowStateError,
};
