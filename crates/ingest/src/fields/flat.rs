//! The fast scanner's view of a [`super::FieldMap`]: its candidates that are plain member
//! names (no dotted path, the only kind a flat log can have), laid out so that looking up a
//! member name of the line costs a few instructions and no call.
//!
//! Names are grouped by their exact length. A name of at most 16 bytes is stored as two
//! words: its first eight bytes (zero-padded) and its last eight (zero for names of at most
//! eight bytes). Two names of the same length are equal exactly when both words are, so a
//! member name is compared with two loads from the line itself, not with `memcmp`. Most member
//! names of a log have a length no candidate has and cost one table read. Names over 16 bytes
//! (`downstream_remote_address`) are compared as bytes.
//!
//! The default lists skip even the table: [`standard`] matches them with a `match` the compiler
//! turns into a switch, as the scanner did before the names were configurable.
//!
//! This replaced `FieldMap::matching` (a bucket of candidates, compared through an iterator) in the scanner: on the 3-member lines of the load generator a scan went from
//! 1,260 to 1,147 instructions with the default lists and from 1,249 to 1,198 with a
//! configured list (`benches/examples/field_cost.rs`; 1,054 and 1,102 since the scan also
//! skips a second UTF-8 pass, docs/benchmarks.md).

use super::field::Field;

/// Names up to this many bytes are compared as two words.
const WORDS_MAX: usize = 16;

/// One candidate of at most [`WORDS_MAX`] bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Short {
    head: u64,
    tail: u64,
    field: Field,
    rank: u8,
}

/// A candidate over [`WORDS_MAX`] bytes: its name, field and rank.
type Long = (Box<[u8]>, Field, u8);

/// The flat candidates of a map (see the [module docs](self)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FlatNames {
    /// `short[starts[n]..starts[n + 1]]` are the names of `n` bytes.
    starts: [u8; WORDS_MAX + 2],
    short: Box<[Short]>,
    /// The names over [`WORDS_MAX`] bytes.
    long: Box<[Long]>,
    /// Whether these are exactly the flat names of the default lists, which [`standard`]
    /// matches with code instead of the table.
    standard: bool,
}

impl FlatNames {
    /// The table of `names` (plain member names with their fields and ranks; at most 255 of
    /// them: the map caps its lists); `standard` when they are exactly the default lists'.
    pub(crate) fn new<'a>(
        names: impl IntoIterator<Item = (&'a [u8], Field, u8)>,
        standard: bool,
    ) -> Self {
        let mut short = Vec::new();
        let mut long = Vec::new();
        for (name, field, rank) in names {
            if name.len() <= WORDS_MAX {
                let (head, tail) = words(name);
                let entry = Short {
                    head,
                    tail,
                    field,
                    rank,
                };
                short.push((name.len(), entry));
            } else {
                long.push((Box::from(name), field, rank));
            }
        }
        short.sort_by_key(|&(len, _)| len);
        let mut starts = [0u8; WORDS_MAX + 2];
        for (len, start) in starts.iter_mut().enumerate() {
            let at = short.partition_point(|&(l, _)| l < len);
            *start = u8::try_from(at).unwrap_or(u8::MAX);
        }
        Self {
            starts,
            short: short.into_iter().map(|(_, entry)| entry).collect(),
            long: long.into(),
            standard,
        }
    }

    /// Whether [`standard`] may stand in for [`FlatNames::lookup`].
    pub(crate) fn is_standard(&self) -> bool {
        self.standard
    }

    /// Calls `found` with the field and rank of every candidate named `line[start..end]`.
    #[inline]
    pub(crate) fn lookup(
        &self,
        line: &[u8],
        start: usize,
        end: usize,
        mut found: impl FnMut(Field, u8),
    ) {
        let len = end - start;
        if len <= WORDS_MAX {
            let range = usize::from(self.starts[len])..usize::from(self.starts[len + 1]);
            if range.is_empty() {
                return;
            }
            let (head, tail) = words_in(line, start, end);
            for name in &self.short[range] {
                if name.head == head && name.tail == tail {
                    found(name.field, name.rank);
                }
            }
        } else {
            let key = &line[start..end];
            for (name, field, rank) in &*self.long {
                if **name == *key {
                    found(*field, *rank);
                }
            }
        }
    }
}

/// [`FlatNames::lookup`] for the default lists, as a `match` on the name: what the scanner
/// did before the names became configurable. (A switch on the length comparing words with
/// constants, as the table does, measured 35 instructions a line more in the whole server.)
/// The table and this agree on every name (unit test below); the scanner uses this when
/// [`FlatNames::is_standard`].
#[inline]
pub(crate) fn standard(key: &[u8], mut found: impl FnMut(Field, u8)) {
    let (field, rank) = match key {
        b"ip" => (Field::Ip, 0),
        b"client_ip" => (Field::Ip, 1),
        b"remote_addr" => (Field::Ip, 2),
        b"ClientHost" => (Field::Ip, 3),
        b"ClientAddr" => (Field::Ip, 4),
        b"downstream_remote_address" => (Field::Ip, 5),
        b"remote" => (Field::Ip, 6),
        b"url" => (Field::Url, 0),
        b"request_uri" => (Field::Url, 1),
        b"RequestPath" => (Field::Url, 2),
        b"path" => (Field::Url, 3),
        b"uri" => (Field::Url, 4),
        b"timestamp" => (Field::Timestamp, 0),
        b"@timestamp" => (Field::Timestamp, 1),
        b"time" => (Field::Timestamp, 2),
        b"time_iso8601" => (Field::Timestamp, 3),
        b"time_local" => (Field::Timestamp, 4),
        b"StartUTC" => (Field::Timestamp, 5),
        b"start_time" => (Field::Timestamp, 6),
        b"started_at" => (Field::Timestamp, 7),
        b"date" => (Field::Timestamp, 8),
        _ => return,
    };
    found(field, rank);
}

/// The two words of a name of at most [`WORDS_MAX`] bytes.
fn words(name: &[u8]) -> (u64, u64) {
    words_in(name, 0, name.len())
}

/// The two words of `line[start..end]`: its first eight bytes zero-padded, and its last eight
/// if it is longer than eight. Reads whole words from the line where it can.
#[inline]
fn words_in(line: &[u8], start: usize, end: usize) -> (u64, u64) {
    let len = end - start;
    let head = match line.get(start..).and_then(<[u8]>::first_chunk::<8>) {
        // The line goes on past a short name (its closing quote at least): mask the rest off.
        Some(word) if len < 8 => u64::from_le_bytes(*word) & ((1u64 << (8 * len)) - 1),
        Some(word) => u64::from_le_bytes(*word),
        None => line[start..end]
            .iter()
            .rev()
            .fold(0, |word, &b| (word << 8) | u64::from(b)),
    };
    let tail = match line[..end].last_chunk::<8>() {
        Some(word) if len > 8 => u64::from_le_bytes(*word),
        _ => 0,
    };
    (head, tail)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `table` finds for `key`, looked up where it stands in `line`.
    fn found(table: &FlatNames, line: &str, key: &str) -> Vec<(Field, u8)> {
        let start = line.find(key).expect("the key is in the line");
        let mut all = Vec::new();
        table.lookup(line.as_bytes(), start, start + key.len(), |f, r| {
            all.push((f, r));
        });
        all
    }

    #[test]
    fn names_of_every_length_are_told_apart_in_every_place() {
        let names: Vec<&str> = (1..=20).map(|n| &"abcdefghijklmnopqrst"[..n]).collect();
        let table = FlatNames::new(
            (0u8..)
                .zip(&names)
                .map(|(rank, n)| (n.as_bytes(), Field::Ip, rank)),
            false,
        );
        for (rank, name) in (0u8..).zip(names.iter()) {
            let want = [(Field::Ip, rank)];
            // At the end of the line (no whole word after it) and inside one.
            for line in [name.to_string(), format!(r#"{{"{name}":1}}"#)] {
                assert_eq!(found(&table, &line, name), want, "{line}");
            }
            let mut other = name.to_string();
            other.replace_range(name.len() - 1.., "x");
            assert!(found(&table, &other, &other).is_empty(), "{other}");
            let mut first = name.to_string();
            first.replace_range(..1, "x");
            assert!(found(&table, &first, &first).is_empty(), "{first}");
        }
    }

    #[test]
    fn shared_names_all_answer() {
        let long = "downstream_remote_address";
        let table = FlatNames::new(
            [
                (&b"ip"[..], Field::Ip, 1),
                (b"ip", Field::Url, 0),
                (long.as_bytes(), Field::Ip, 5),
            ],
            false,
        );
        assert_eq!(
            found(&table, r#"{"ip":"1"}"#, "ip"),
            [(Field::Ip, 1), (Field::Url, 0)]
        );
        let envoy = format!(r#"{{"{long}":"1.2.3.4:5"}}"#);
        assert_eq!(found(&table, &envoy, long), [(Field::Ip, 5)]);
        assert!(found(&table, &envoy, &long[..long.len() - 1]).is_empty());
    }
}
