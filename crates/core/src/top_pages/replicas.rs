//! Merging the [`TopPagesSnapshot`]s of several replicas into one, with the same kind of
//! bound as the merge of shards (see the [module docs](super)).
//!
//! A replica shares a snapshot of its own summary, possibly cut to its first pages. For
//! replica `r`, let `u_r` be its *unlisted bound*: every path it does not list occurred at
//! most `u_r` times there. Uncut, that is its `error_bound` (no path outside a summary
//! occurred more often); cut, a path it tracks but does not list counted at most the lowest
//! listed count, so `u_r` = max(`error_bound`, lowest listed count)
//! ([`TopPagesSnapshot::unlisted_bound`]). Then, per path, with its interval
//! `[count_r − error_r, count_r]` where listed and `[0, u_r]` where not:
//!
//! * `count` = Σ_r (`count_r` or `u_r`) is an upper bound of its true total, and
//!   `error` = Σ_r (`error_r` or `u_r`) the width below it: the truth is in
//!   `[count − error, count]`;
//! * a path no replica lists occurred at most `U` = Σ_r `u_r` times: the merged
//!   `error_bound`, and every `error` is at most `U`.
//!
//! Each replica's snapshot is a *whole* summary of what it counted, never a delta, so a
//! reader that merges the latest snapshot of each replica once counts nothing twice, however
//! often a snapshot was sent or read.

use std::cmp::Ordering;
use std::collections::HashMap;

use super::{PageCount, TopPagesSnapshot};

impl TopPagesSnapshot {
    /// Every path not in [`pages`](Self::pages) occurred at most this often: the
    /// `error_bound` of an uncut snapshot, else at least the lowest listed count (a tracked
    /// page that was cut counted no more than that).
    #[must_use]
    pub fn unlisted_bound(&self) -> u64 {
        if self.tracked > self.pages.len() {
            let lowest = self.pages.last().map_or(0, |p| p.count);
            self.error_bound.max(lowest)
        } else {
            self.error_bound
        }
    }

    /// The merge of the snapshots of several replicas, with its first `limit` pages (same
    /// order as [`TopPages::snapshot`](super::TopPages::snapshot)): `total_requests` and
    /// `shards` add up, `capacity` is the largest, `tracked` counts the distinct paths listed
    /// by any replica, and `error_bound` is the sum of their unlisted bounds.
    #[must_use]
    pub fn merge_replicas(parts: &[Self], limit: usize) -> Self {
        let bounds: Vec<u64> = parts.iter().map(Self::unlisted_bound).collect();
        let bound: u64 = bounds.iter().sum();
        // Per path, over the replicas listing it: Σ count_r, Σ error_r and Σ u_r. The
        // replicas not listing it contribute U − Σ u_r to both sums of the module docs.
        let mut merged: HashMap<&str, (u64, u64, u64)> = HashMap::new();
        for (part, &u) in parts.iter().zip(&bounds) {
            for page in &part.pages {
                let acc = merged.entry(page.path.as_str()).or_insert((0, 0, 0));
                acc.0 += page.count;
                acc.1 += page.error;
                acc.2 += u;
            }
        }
        let mut ranked: Vec<PageCount> = merged
            .into_iter()
            .map(|(path, (count, error, listed))| {
                // `listed` sums some of the terms of `bound`, so this never underflows.
                let others = bound - listed;
                PageCount {
                    path: path.to_owned(),
                    count: count + others,
                    error: error + others,
                }
            })
            .collect();
        let tracked = ranked.len();
        let by_rank = |a: &PageCount, b: &PageCount| -> Ordering {
            b.count.cmp(&a.count).then_with(|| a.path.cmp(&b.path))
        };
        if limit < ranked.len() {
            if limit > 0 {
                ranked.select_nth_unstable_by(limit - 1, by_rank);
            }
            ranked.truncate(limit);
        }
        ranked.sort_unstable_by(by_rank);
        Self {
            total_requests: parts.iter().map(|p| p.total_requests).sum(),
            capacity: parts.iter().map(|p| p.capacity).max().unwrap_or(0),
            shards: parts.iter().map(|p| p.shards).sum(),
            tracked,
            error_bound: bound,
            pages: ranked,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{PathOptions, TopPages};

    fn top(urls: &[&str], capacity: usize) -> TopPages {
        let top = TopPages::new(capacity, 1, PathOptions::default()).expect("valid size");
        for url in urls {
            top.record_url(url);
        }
        top
    }

    #[test]
    fn exact_parts_add_up_exactly() {
        let a = top(&["/", "/", "/a"], 8).snapshot(usize::MAX);
        let b = top(&["/", "/b"], 8).snapshot(usize::MAX);
        let merged = TopPagesSnapshot::merge_replicas(&[a.clone(), b.clone()], 10);
        assert_eq!(merged.total_requests, 5);
        assert_eq!(merged.error_bound, 0);
        assert_eq!(merged.tracked, 3);
        assert_eq!(merged.shards, 2);
        let pages: Vec<(&str, u64, u64)> = merged
            .pages
            .iter()
            .map(|p| (p.path.as_str(), p.count, p.error))
            .collect();
        assert_eq!(pages, [("/", 3, 0), ("/a", 1, 0), ("/b", 1, 0)]);
        // The order of the parts does not matter.
        assert_eq!(TopPagesSnapshot::merge_replicas(&[b, a], 10), merged);
        assert_eq!(TopPagesSnapshot::merge_replicas(&[], 10).pages, []);
    }

    #[test]
    fn cut_and_evicting_parts_keep_a_true_bound() {
        // Replica a: capacity 2 over 3 paths (evicts); replica b: cut to its first page.
        let urls_a = ["/x", "/x", "/x", "/y", "/z", "/z"];
        let urls_b = ["/y", "/y", "/y", "/x", "/w"];
        let a = top(&urls_a, 2).snapshot(usize::MAX);
        let b = top(&urls_b, 8).snapshot(1);
        assert_eq!(b.unlisted_bound(), 3, "cut: the lowest listed count");
        let merged = TopPagesSnapshot::merge_replicas(&[a.clone(), b.clone()], 10);
        assert_eq!(merged.error_bound, a.unlisted_bound() + b.unlisted_bound());
        for path in ["/x", "/y", "/z", "/w"] {
            let truth = urls_a.iter().chain(&urls_b).filter(|u| **u == path).count() as u64;
            match merged.pages.iter().find(|p| p.path == path) {
                Some(page) => {
                    assert!(page.count >= truth, "{path}: {page:?} vs {truth}");
                    assert!(
                        page.count - page.error <= truth,
                        "{path}: {page:?} vs {truth}"
                    );
                    assert!(page.error <= merged.error_bound);
                }
                None => assert!(truth <= merged.error_bound, "{path} unlisted"),
            }
        }
    }
}
