//! The changelog's record format and the commit protocol it supports.
//!
//! Every stage partition (a view partition, say) has a changelog partition
//! and a commit-log partition of the same number. Its owner writes each batch
//! of state changes as follows:
//! 1. one changelog record per changed row: key = [`changelog_key`], value =
//!    the new row bytes or a tombstone;
//! 2. after every record is acknowledged, one [`Commit`] naming the commit it
//!    builds on (`prev`) and the changelog offsets its records landed at
//!    (`records`, as ranges: one, unless another writer's records
//!    interleaved);
//! 3. only if that commit landed right after the one it builds on, the local
//!    RocksDB batch (state plus the positions in the commit).
//!
//! Invariant: the accepted commits form one chain — a commit is accepted iff
//! its `prev` is the offset of the last accepted commit before it
//! ([`CommitChain`]). Whoever reads the log, in whatever order of events,
//! computes the same chain. A changelog record takes effect only if an
//! accepted commit names its offset. So a batch cut short by a crash never applies,
//! and a writer that lost its partition (a fenced "zombie") cannot extend the
//! chain once the new owner has: its commits build on a stale `prev`.
//!
//! Records carry no Kafka headers: the commit says which offsets count.
//! (Headers would do too, but cost some brokers a lookup per record read —
//! Tansu's sqlite engine scans every header it holds for each one.)

use crate::keys::Table;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A batch of state changes: the writer's epoch and its sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct BatchId {
    pub epoch: u64,
    pub seq: u64,
}

/// The commit of one batch of one stage partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Commit {
    pub batch: BatchId,
    /// Offset of the commit this batch builds on; -1 for the first.
    pub prev: i64,
    /// The changelog offset after this batch's last record (or the previous
    /// end, when the batch changed no rows).
    pub changelog_end: i64,
    /// The changelog offsets of this batch's records in the partition, as
    /// ascending `[start, end)` ranges.
    pub records: Vec<(i64, i64)>,
    /// Next offset to read in the stage's input partition.
    pub input_next: i64,
    /// Next upstream position per upstream partition (duplicate filter).
    pub upstream: BTreeMap<i32, i64>,
}

impl Commit {
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("commit serializes")
    }

    pub fn decode(bytes: &[u8]) -> Result<Commit, serde_json::Error> {
        serde_json::from_slice(bytes)
    }

    /// Whether the record at changelog offset `offset` is one of this batch's.
    pub fn holds(&self, offset: i64) -> bool {
        holds(&self.records, offset)
    }
}

/// `[start, end)` ranges covering ascending `offsets`, adjacent ones merged.
pub fn ranges(offsets: impl IntoIterator<Item = i64>) -> Vec<(i64, i64)> {
    let mut out: Vec<(i64, i64)> = Vec::new();
    for o in offsets {
        match out.last_mut() {
            Some((_, end)) if *end == o => *end = o + 1,
            _ => out.push((o, o + 1)),
        }
    }
    out
}

/// Whether one of ascending, disjoint `ranges` contains `offset`.
fn holds(ranges: &[(i64, i64)], offset: i64) -> bool {
    let i = ranges.partition_point(|(_, end)| *end <= offset);
    ranges.get(i).is_some_and(|(start, _)| *start <= offset)
}

/// The changelog offsets some commits name: the accepted ones' (a restore
/// applies exactly those), or the rejected ones' (records that never count).
/// Commits usually arrive in changelog order; one that does not is sorted in.
#[derive(Debug, Default)]
pub struct CommittedOffsets {
    ranges: Vec<(i64, i64)>,
}

impl CommittedOffsets {
    pub fn add(&mut self, commit: &Commit) {
        let sorted = match (self.ranges.last(), commit.records.first()) {
            (Some((_, end)), Some((start, _))) => end <= start,
            _ => true,
        };
        self.ranges.extend_from_slice(&commit.records);
        if !sorted {
            self.ranges.sort_unstable();
        }
    }

    pub fn holds(&self, offset: i64) -> bool {
        holds(&self.ranges, offset)
    }
}

/// The changelog key of a row: its table, then the row's key.
pub fn changelog_key(table: Table, key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(key.len() + 1);
    k.push(table as u8);
    k.extend_from_slice(key);
    k
}

/// Splits a changelog key; `None` when it is not one Eddy wrote.
pub fn split_changelog_key(k: &[u8]) -> Option<(Table, &[u8])> {
    let (first, rest) = k.split_first()?;
    Some((Table::from_byte(*first)?, rest))
}

/// Decides which commits count while reading a commit log in order.
#[derive(Debug, Clone, Copy)]
pub struct CommitChain {
    last: i64,
}

impl CommitChain {
    /// A chain whose last accepted commit is at `last` (-1: none yet).
    pub fn new(last: i64) -> CommitChain {
        CommitChain { last }
    }

    /// Judges the commit at `offset`; true when it extends the chain.
    pub fn accept(&mut self, offset: i64, commit: &Commit) -> bool {
        if commit.prev != self.last {
            return false;
        }
        self.last = offset;
        true
    }

    pub fn last(&self) -> i64 {
        self.last
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_offsets_become_ranges() {
        assert_eq!(
            ranges([4, 5, 6, 9, 11, 12]),
            vec![(4, 7), (9, 10), (11, 13)]
        );
        assert_eq!(ranges([]), vec![]);
        let r = ranges([4, 5, 6, 9]);
        for (o, held) in [
            (3, false),
            (4, true),
            (6, true),
            (7, false),
            (9, true),
            (10, false),
        ] {
            assert_eq!(holds(&r, o), held, "offset {o}");
        }
        let mut accepted = CommittedOffsets::default();
        let commit = |records: Vec<(i64, i64)>| Commit {
            batch: BatchId { epoch: 1, seq: 1 },
            prev: -1,
            changelog_end: records.last().map_or(0, |r| r.1),
            records,
            input_next: 0,
            upstream: BTreeMap::new(),
        };
        accepted.add(&commit(vec![(10, 12)]));
        accepted.add(&commit(vec![(2, 4)]));
        accepted.add(&commit(vec![(20, 21)]));
        for (o, held) in [
            (1, false),
            (2, true),
            (4, false),
            (11, true),
            (12, false),
            (20, true),
        ] {
            assert_eq!(accepted.holds(o), held, "offset {o}");
        }
    }

    #[test]
    fn changelog_keys_split_back() {
        let k = changelog_key(Table::UpsertInput, b"abc");
        assert_eq!(
            split_changelog_key(&k),
            Some((Table::UpsertInput, &b"abc"[..]))
        );
        assert_eq!(split_changelog_key(&[9, 1]), None);
        assert_eq!(split_changelog_key(&[]), None);
    }

    #[test]
    fn only_commits_extending_the_chain_are_accepted() {
        let c = |epoch, prev| Commit {
            batch: BatchId { epoch, seq: 1 },
            prev,
            changelog_end: 0,
            records: vec![(3, 5)],
            input_next: 0,
            upstream: BTreeMap::new(),
        };
        let mut chain = CommitChain::new(-1);
        assert!(chain.accept(0, &c(1, -1)));
        assert!(
            !chain.accept(1, &c(2, -1)),
            "a second writer that started from nothing is fenced"
        );
        assert!(chain.accept(2, &c(1, 0)));
        assert!(chain.accept(3, &c(3, 2)), "a new owner builds on the last");
        assert!(
            !chain.accept(4, &c(1, 2)),
            "the old owner, unaware of the takeover, is fenced"
        );
        assert_eq!(chain.last(), 3);
        assert_eq!(Commit::decode(&c(2, 2).encode()).unwrap(), c(2, 2));
    }
}
