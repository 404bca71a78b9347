//! Which members of a log object hold its address, its URL and its time: the [`FieldMap`]
//! (`--ip-field`, `--url-field`, `--timestamp-field`), built once at start-up; and with
//! `--group-by`, its group ([`FieldMap::with_group_by`]: one more candidate, so the scanner
//! and simd-json read it in the same walk).
//!
//! Each field has an ordered list of candidates, names (`client_ip`) or dotted paths into
//! nested objects (`request.uri`); **the first candidate present in a log wins**, whatever the
//! order of the members in the log. A candidate is *present* when its member exists (for a
//! dotted path: every object on the way exists and is an object); a present `ip` that is not a
//! string rejects the log (`ip_not_a_string`), a present `url` that is not a string or a present
//! `timestamp` that is neither a string nor a number counts as no URL / no time. Duplicate
//! keys: the last occurrence wins, as before.
//!
//! # The defaults
//!
//! The lists a user would expect, so that the gateways and controllers of
//! `docs/shippers.md` work with no flag; uniqd's own names come first, then the
//! most specific gateway names, then the generic ones:
//!
//! * address: `ip` (uniqd), `client_ip` (Kong, APISIX: the client after their real-IP
//!   handling), `remote_addr` (nginx, ingress-nginx; the client after nginx's real-IP module),
//!   `ClientHost` (Traefik, without port) before `ClientAddr` (Traefik, with port),
//!   `downstream_remote_address` (Envoy, with port), `remote` (the `nginx` and `apache2`
//!   parsers of Fluent Bit and Fluentd, for plain access-log files), `client.ip` (nested,
//!   Elastic Common Schema).
//! * URL: `url` (uniqd), `request_uri` (nginx), `RequestPath` (Traefik), `path` (Envoy),
//!   `uri` (nginx's normalised `$uri`), `request.uri` (Kong, APISIX: the path and query),
//!   `request.url` (APISIX: the full URL, whose host the top pages drop).
//! * time: `timestamp` (uniqd), `@timestamp` (Logstash, ECS), `time` (Fluentd, ingress-nginx
//!   examples), `time_iso8601` and `time_local` (nginx), `StartUTC` (Traefik), `start_time`
//!   (Envoy's RFC 3339 text, APISIX's epoch milliseconds), `started_at` (Kong, epoch
//!   milliseconds), `date` (Fluent Bit, epoch seconds).
//!
//! # Cost
//!
//! The fast scanner compares every member name of a flat log with the plain candidates, through
//! `fields/flat.rs`: a `match` for the default lists, else a table of words by name length; no
//! call and nothing allocated per log (about 50 instructions a line over a scan with names
//! known in advance, docs/benchmarks.md). simd-json's walk, which also follows dotted paths,
//! uses `FieldMap::matching`: the names bucketed by length once here, so a member name costs
//! one table lookup and, for the few candidates of its length, a comparison of its first
//! eight bytes as a word, then of the bytes for names over eight bytes.

use std::sync::LazyLock;

use super::address::TrustedProxies;
pub(crate) use super::field::Field;
use super::flat::FlatNames;

/// The default address candidates (see the [module docs](self)).
pub const DEFAULT_IP_FIELDS: &[&str] = &[
    "ip",
    "client_ip",
    "remote_addr",
    "ClientHost",
    "ClientAddr",
    "downstream_remote_address",
    "remote",
    "client.ip",
];

/// The default URL candidates.
pub const DEFAULT_URL_FIELDS: &[&str] = &[
    "url",
    "request_uri",
    "RequestPath",
    "path",
    "uri",
    "request.uri",
    "request.url",
];

/// The default time candidates.
pub const DEFAULT_TIMESTAMP_FIELDS: &[&str] = &[
    "timestamp",
    "@timestamp",
    "time",
    "time_iso8601",
    "time_local",
    "StartUTC",
    "start_time",
    "started_at",
    "date",
];

/// At most this many candidates per field.
pub const MAX_CANDIDATES: usize = 64;

/// Member names of these lengths get a bucket of their own; longer ones share the last.
const BUCKETS: usize = 32;

/// One candidate: the member name it starts with, the rest of its dotted path, and its place
/// in its field's list (0 is the first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Candidate {
    pub(crate) field: Field,
    pub(crate) rank: u8,
    /// The first eight bytes of `first`, zero-padded: compared before the bytes themselves.
    head: u64,
    pub(crate) first: Box<[u8]>,
    pub(crate) rest: Box<[Box<str>]>,
}

/// The configured field names (see the [module docs](self)) and the trusted proxies that
/// decide which address of a forwarded list counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldMap {
    lists: [Box<[Box<str>]>; 3],
    /// Sorted by bucket (`first.len()`, capped at [`BUCKETS`]).
    candidates: Box<[Candidate]>,
    /// `candidates[starts[b]..starts[b + 1]]` have first segments in bucket `b`.
    starts: [u16; BUCKETS + 2],
    /// The plain names among `candidates` again, for the fast scanner.
    flat: FlatNames,
    trusted: TrustedProxies,
    /// The `--group-by` field, if per-group counts are on: also one of `candidates`
    /// ([`Field::Group`]), so it is read in the same walk as the others (`group.rs`).
    group: Option<Box<str>>,
}

impl Default for FieldMap {
    fn default() -> Self {
        FieldMap::standard().clone()
    }
}

static STANDARD: LazyLock<FieldMap> = LazyLock::new(|| {
    // The default lists are valid (checked by a unit test).
    FieldMap::new(
        DEFAULT_IP_FIELDS,
        DEFAULT_URL_FIELDS,
        DEFAULT_TIMESTAMP_FIELDS,
    )
    .unwrap_or_else(|e| unreachable!("default field lists: {e}"))
});

impl FieldMap {
    /// The default lists, no trusted proxies.
    #[must_use]
    pub fn standard() -> &'static FieldMap {
        &STANDARD
    }

    /// Builds a map from the candidate lists of the address, the URL and the time (names or
    /// dotted paths, first wins).
    ///
    /// # Errors
    ///
    /// An empty list, an empty name or path segment, or more than [`MAX_CANDIDATES`] names.
    pub fn new<S: AsRef<str>>(ip: &[S], url: &[S], timestamp: &[S]) -> Result<Self, String> {
        let mut candidates = Vec::new();
        let mut lists: [Box<[Box<str>]>; 3] = Default::default();
        for (field, names, flag) in [
            (Field::Ip, ip, "--ip-field"),
            (Field::Url, url, "--url-field"),
            (Field::Timestamp, timestamp, "--timestamp-field"),
        ] {
            if names.is_empty() {
                return Err(format!("{flag} needs at least one name"));
            }
            if names.len() > MAX_CANDIDATES {
                return Err(format!("{flag} takes at most {MAX_CANDIDATES} names"));
            }
            let mut list = Vec::with_capacity(names.len());
            for (rank, name) in names.iter().enumerate() {
                let name = name.as_ref().trim();
                check_name(name).map_err(|e| format!("{flag}: {e}"))?;
                let mut segments = name.split('.');
                let first = segments.next().unwrap_or_default();
                let rest: Vec<Box<str>> = segments.map(Box::from).collect();
                candidates.push(Candidate {
                    field,
                    // Below MAX_CANDIDATES (64), checked above: fits.
                    rank: rank as u8,
                    head: head_of(first.as_bytes()),
                    first: first.as_bytes().into(),
                    rest: rest.into(),
                });
                list.push(Box::from(name));
            }
            lists[field as usize] = list.into();
        }
        let (candidates, starts) = bucketed(candidates);
        Ok(Self {
            lists,
            flat: flat_names(&candidates),
            candidates,
            starts,
            trusted: TrustedProxies::default(),
            group: None,
        })
    }

    /// This map, taking the rightmost address of a forwarded list that is not in `trusted`
    /// (see [`super::address`]).
    #[must_use]
    pub fn with_trusted_proxies(mut self, trusted: TrustedProxies) -> Self {
        self.trusted = trusted;
        self
    }

    /// This map, also reading the group of each log from the member or dotted path `name`
    /// (`--group-by`, see `group.rs`).
    ///
    /// # Errors
    ///
    /// An empty name or path segment, or a name over [`uniqd_core::MAX_GROUP_FIELD_BYTES`].
    pub fn with_group_by(mut self, name: &str) -> Result<Self, String> {
        let name = name.trim();
        check_name(name).map_err(|e| format!("--group-by: {e}"))?;
        if name.len() > uniqd_core::MAX_GROUP_FIELD_BYTES {
            // The state file stores the field with its groups, up to this length.
            return Err(format!(
                "--group-by: at most {} bytes",
                uniqd_core::MAX_GROUP_FIELD_BYTES
            ));
        }
        let mut segments = name.split('.');
        let first = segments.next().unwrap_or_default();
        let mut candidates: Vec<Candidate> = self
            .candidates
            .iter()
            .filter(|c| c.field != Field::Group)
            .cloned()
            .collect();
        candidates.push(Candidate {
            field: Field::Group,
            rank: 0,
            head: head_of(first.as_bytes()),
            first: first.as_bytes().into(),
            rest: segments.map(Box::from).collect(),
        });
        (self.candidates, self.starts) = bucketed(candidates);
        self.flat = flat_names(&self.candidates);
        self.group = Some(name.into());
        Ok(self)
    }

    /// The `--group-by` field, if set.
    #[must_use]
    pub fn group_by(&self) -> Option<&str> {
        self.group.as_deref()
    }

    /// The trusted proxies.
    #[must_use]
    pub fn trusted_proxies(&self) -> &TrustedProxies {
        &self.trusted
    }

    /// The address candidates, in order.
    #[must_use]
    pub fn ip_fields(&self) -> &[Box<str>] {
        &self.lists[Field::Ip as usize]
    }

    /// The URL candidates, in order.
    #[must_use]
    pub fn url_fields(&self) -> &[Box<str>] {
        &self.lists[Field::Url as usize]
    }

    /// The time candidates, in order.
    #[must_use]
    pub fn timestamp_fields(&self) -> &[Box<str>] {
        &self.lists[Field::Timestamp as usize]
    }

    /// The candidates that are plain member names, for the fast scanner.
    pub(crate) fn flat(&self) -> &FlatNames {
        &self.flat
    }

    /// The candidates whose first segment is the member name `key`. Names of one bucket
    /// under [`BUCKETS`] bytes have the same length, so for names of at most eight bytes equal
    /// heads are equal names, without a call to `memcmp`.
    #[inline]
    pub(crate) fn matching<'s>(&'s self, key: &'s [u8]) -> impl Iterator<Item = &'s Candidate> {
        let b = bucket(key.len());
        let range = usize::from(self.starts[b])..usize::from(self.starts[b + 1]);
        let head = head_of(key);
        self.candidates[range]
            .iter()
            .filter(move |c| c.head == head && (key.len() <= 8 || *c.first == *key))
    }
}

/// Checks one candidate: a member name, or a dotted path of them (`a.b.c`), no part empty.
///
/// # Errors
///
/// What is wrong with it.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.split('.').any(str::is_empty) {
        return Err(format!(
            "{name:?} is not a field name or a dotted path (a.b.c)"
        ));
    }
    Ok(())
}

/// The first eight bytes of `key`, zero-padded, as one word: one load for names of eight
/// bytes or more, a short loop for shorter ones (a `copy_from_slice` of a variable length
/// would call `memcpy`).
#[inline]
fn head_of(key: &[u8]) -> u64 {
    match key.first_chunk::<8>() {
        Some(word) => u64::from_le_bytes(*word),
        None => key
            .iter()
            .rev()
            .fold(0, |word, &b| (word << 8) | u64::from(b)),
    }
}

fn bucket(len: usize) -> usize {
    len.min(BUCKETS)
}

/// The scanner's table of the plain names among `candidates`, told whether they are exactly
/// the default lists' (then it matches them with code, `flat::standard`).
fn flat_names(candidates: &[Candidate]) -> FlatNames {
    let plain = |c: &&Candidate| c.rest.is_empty();
    let mut names: Vec<(&[u8], Field, u8)> = candidates
        .iter()
        .filter(plain)
        .map(|c| (&*c.first, c.field, c.rank))
        .collect();
    names.sort_unstable();
    let standard = names == standard_names();
    FlatNames::new(names, standard)
}

/// The plain names of the default lists with their fields and ranks, sorted.
fn standard_names() -> Vec<(&'static [u8], Field, u8)> {
    let mut names = Vec::new();
    for (field, list) in [
        (Field::Ip, DEFAULT_IP_FIELDS),
        (Field::Url, DEFAULT_URL_FIELDS),
        (Field::Timestamp, DEFAULT_TIMESTAMP_FIELDS),
    ] {
        for (rank, name) in (0u8..).zip(list.iter()) {
            if !name.contains('.') {
                names.push((name.as_bytes(), field, rank));
            }
        }
    }
    names.sort_unstable();
    names
}

/// `candidates` sorted by bucket, and where each bucket starts.
fn bucketed(mut candidates: Vec<Candidate>) -> (Box<[Candidate]>, [u16; BUCKETS + 2]) {
    candidates.sort_by_key(|c| bucket(c.first.len()));
    let mut starts = [0u16; BUCKETS + 2];
    for (b, start) in starts.iter_mut().enumerate() {
        // At most 3 * MAX_CANDIDATES + 1 candidates: fits.
        *start = candidates.partition_point(|c| bucket(c.first.len()) < b) as u16;
    }
    (candidates.into(), starts)
}

/// The best candidate found so far for each field, with its value: a lower rank replaces a
/// higher one, the same rank (a duplicate key) replaces it too (the last wins).
#[derive(Debug)]
pub(crate) struct Best<V> {
    /// Each field's best rank so far, [`Best::NONE`] before the first.
    ranks: [u8; 4],
    values: [V; 4],
}

impl<V: Copy> Best<V> {
    /// No rank: the map caps each list at [`MAX_CANDIDATES`] names.
    const NONE: u8 = u8::MAX;

    /// Nothing found yet; `empty` fills the slots and is never returned.
    pub(crate) fn new(empty: V) -> Self {
        Self {
            ranks: [Self::NONE; 4],
            values: [empty; 4],
        }
    }

    #[inline]
    pub(crate) fn offer(&mut self, field: Field, rank: u8, value: V) {
        let at = field as usize;
        if rank <= self.ranks[at] {
            self.ranks[at] = rank;
            self.values[at] = value;
        }
    }

    #[inline]
    pub(crate) fn get(&self, field: Field) -> Option<V> {
        let at = field as usize;
        (self.ranks[at] != Self::NONE).then_some(self.values[at])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ranks(map: &FieldMap, key: &str) -> Vec<(Field, u8, usize)> {
        map.matching(key.as_bytes())
            .map(|c| (c.field, c.rank, c.rest.len()))
            .collect()
    }

    #[test]
    fn the_default_lists_are_valid_and_start_with_uniqds_own_names() {
        let map = FieldMap::standard();
        assert_eq!(&*map.ip_fields()[0], "ip");
        assert_eq!(&*map.url_fields()[0], "url");
        assert_eq!(&*map.timestamp_fields()[0], "timestamp");
        assert_eq!(ranks(map, "ip"), [(Field::Ip, 0, 0)]);
        assert_eq!(ranks(map, "client"), [(Field::Ip, 7, 1)]);
        assert_eq!(ranks(map, "remote"), [(Field::Ip, 6, 0)]);
        assert_eq!(
            ranks(map, "request"),
            [(Field::Url, 5, 1), (Field::Url, 6, 1)]
        );
        assert_eq!(ranks(map, "downstream_remote_address"), [(Field::Ip, 5, 0)]);
        assert!(ranks(map, "IP").is_empty());
        assert!(ranks(map, "ib").is_empty());
        assert!(ranks(map, "timestamq").is_empty());
        assert!(ranks(map, "timestamp\0").is_empty());
        assert_eq!(ranks(map, "timestamp"), [(Field::Timestamp, 0, 0)]);
        assert!(ranks(map, "").is_empty());
    }

    #[test]
    fn long_names_share_the_last_bucket() {
        let long = "a".repeat(40);
        let longer = "a".repeat(41);
        let map = FieldMap::new(&[long.as_str(), longer.as_str()], &["u"], &["t"]).expect("valid");
        assert_eq!(ranks(&map, &long), [(Field::Ip, 0, 0)]);
        assert_eq!(ranks(&map, &longer), [(Field::Ip, 1, 0)]);
        assert!(ranks(&map, &"a".repeat(39)).is_empty());
    }

    #[test]
    fn names_are_told_apart_at_every_length() {
        let names = [
            "a",
            "abcdefg",
            "abcdefgh",
            "abcdefghi",
            "abcdefghijklmnop",
            "abcdefghijklmnopq",
        ];
        let map = FieldMap::new(&names, &["u"], &["t"]).expect("valid");
        for (rank, name) in (0u8..).zip(names.iter()) {
            assert_eq!(ranks(&map, name), [(Field::Ip, rank, 0)]);
            assert_eq!(
                head_of(name.as_bytes()).to_le_bytes()[..name.len().min(8)],
                name.as_bytes()[..name.len().min(8)]
            );
            assert!(ranks(&map, &name[1..]).is_empty(), "{name}");
            let mut other = name.to_string();
            other.replace_range(name.len() - 1.., "x");
            assert!(ranks(&map, &other).is_empty(), "{other}");
            assert!(ranks(&map, &format!("{name}x")).is_empty(), "{name}x");
        }
    }

    #[test]
    fn bad_lists_are_refused() {
        let cases: [(Vec<&str>, Vec<&str>); 5] = [
            (vec![], vec!["u"]),
            (vec!["a..b"], vec!["u"]),
            (vec!["ip"], vec![".u"]),
            (vec!["ip"], vec!["u."]),
            (vec![""], vec!["u"]),
        ];
        for (ip, url) in cases {
            assert!(FieldMap::new(&ip, &url, &["t"]).is_err(), "{ip:?} {url:?}");
        }
    }

    #[test]
    fn the_scanners_match_agrees_with_its_table_on_the_default_lists() {
        let map = FieldMap::standard();
        assert!(map.flat().is_standard());
        let mut keys: Vec<String> = standard_names()
            .iter()
            .map(|(name, _, _)| String::from_utf8_lossy(name).into_owned())
            .collect();
        assert_eq!(keys.len(), 21, "every plain default name");
        keys.extend(["client", "request", "ipx", "Ip", "times", "", "status"].map(String::from));
        for key in &keys {
            let line = format!(r#"{{"{key}":1}}"#);
            let mut table = Vec::new();
            map.flat()
                .lookup(line.as_bytes(), 2, 2 + key.len(), |f, r| table.push((f, r)));
            let mut code = Vec::new();
            super::super::flat::standard(key.as_bytes(), |f, r| code.push((f, r)));
            assert_eq!(table, code, "{key}");
            let known = standard_names().iter().any(|n| n.0 == key.as_bytes());
            assert_eq!(code.is_empty(), !known, "{key}");
        }
        // Any change to the lists leaves the table in charge.
        let traefik_first = FieldMap::new(&["ClientHost", "ip"], &["url"], &["timestamp"]);
        assert!(!traefik_first.expect("valid").flat().is_standard());
        let grouped = map.clone().with_group_by("host").expect("valid");
        assert!(!grouped.flat().is_standard());
    }

    #[test]
    fn best_keeps_the_lowest_rank_and_the_last_duplicate() {
        let mut best = Best::new(' ');
        best.offer(Field::Ip, 3, 'a');
        best.offer(Field::Ip, 1, 'b');
        best.offer(Field::Ip, 2, 'c');
        best.offer(Field::Ip, 1, 'd');
        assert_eq!(best.get(Field::Ip), Some('d'));
        assert_eq!(best.get(Field::Url), None);
    }
}
