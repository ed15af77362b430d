//! The changelog's record format and the commit protocol it supports.
//!
//! Every stage partition (a view partition, say) has a changelog partition
//! and a commit-log partition of the same number. Its owner writes each batch
//! of state changes as follows:
//! 1. one changelog record per changed row: key = [`changelog_key`], value =
//!    the new row bytes or a tombstone, header [`BATCH_HEADER`] = the
//!    [`BatchId`];
//! 2. after every record is acknowledged, one [`Commit`] naming the commit it
//!    builds on (`prev`);
//! 3. only if that commit landed right after the one it builds on, the local
//!    RocksDB batch (state plus the positions in the commit).
//!
//! Invariant: the accepted commits form one chain — a commit is accepted iff
//! its `prev` is the offset of the last accepted commit before it
//! ([`CommitChain`]). Whoever reads the log, in whatever order of events,
//! computes the same chain. A changelog record takes effect only if its
//! batch's commit is accepted. So a batch cut short by a crash never applies,
//! and a writer that lost its partition (a fenced "zombie") cannot extend the
//! chain once the new owner has: its commits build on a stale `prev`.

use crate::keys::Table;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The Kafka header carrying a changelog record's batch.
pub const BATCH_HEADER: &str = "eddy-batch";

/// A batch of state changes: the writer's epoch and its sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct BatchId {
    pub epoch: u64,
    pub seq: u64,
}

impl BatchId {
    pub fn to_bytes(self) -> [u8; 16] {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&self.epoch.to_be_bytes());
        b[8..].copy_from_slice(&self.seq.to_be_bytes());
        b
    }

    pub fn from_bytes(b: &[u8]) -> Option<BatchId> {
        let b: &[u8; 16] = b.try_into().ok()?;
        Some(BatchId {
            epoch: u64::from_be_bytes(b[..8].try_into().ok()?),
            seq: u64::from_be_bytes(b[8..].try_into().ok()?),
        })
    }
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
    fn batch_ids_round_trip_and_order() {
        let id = BatchId { epoch: 3, seq: 99 };
        assert_eq!(BatchId::from_bytes(&id.to_bytes()), Some(id));
        assert_eq!(BatchId::from_bytes(b"short"), None);
        assert!(BatchId { epoch: 2, seq: 100 } < BatchId { epoch: 3, seq: 0 });
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
