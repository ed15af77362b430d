//! The changelog's record format and the commit protocol it supports.
//!
//! A view writes each batch of state changes as follows:
//! 1. one changelog record per changed row, to the changelog partition of the
//!    row's view partition: key = [`changelog_key`], value = the new row bytes
//!    or a tombstone, header [`BATCH_HEADER`] = the [`BatchId`];
//! 2. after every record of the batch is acknowledged, one [`Commit`] record
//!    to the view's single-partition commit topic;
//! 3. after the commit is acknowledged, the local RocksDB batch (state plus
//!    the offsets in the commit).
//!
//! Invariant: a changelog record takes effect only if its batch has a commit
//! record of an epoch not older than every commit before it. A batch cut
//! short by a crash has no commit, so a restore never applies half a batch,
//! and a fenced writer's late commits are ignored.

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

/// The commit of one batch, on the view's commit topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Commit {
    pub batch: BatchId,
    /// Next source offset per source partition once this batch is applied.
    pub source_offsets: BTreeMap<i32, i64>,
    /// Per changed view partition: the changelog offset after this batch's
    /// last record there.
    pub changelog_ends: BTreeMap<u32, i64>,
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

/// Decides which commits count while reading a commit topic in order.
/// A commit whose epoch is older than one already seen comes from a fenced
/// writer and is ignored.
#[derive(Debug, Default)]
pub struct CommitFilter {
    max_epoch: u64,
}

impl CommitFilter {
    pub fn new(start_epoch: u64) -> CommitFilter {
        CommitFilter {
            max_epoch: start_epoch,
        }
    }

    pub fn accept(&mut self, commit: &Commit) -> bool {
        if commit.batch.epoch < self.max_epoch {
            return false;
        }
        self.max_epoch = commit.batch.epoch;
        true
    }

    pub fn max_epoch(&self) -> u64 {
        self.max_epoch
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
    fn commits_from_a_fenced_epoch_are_ignored() {
        let c = |epoch, seq| Commit {
            batch: BatchId { epoch, seq },
            source_offsets: BTreeMap::new(),
            changelog_ends: BTreeMap::new(),
        };
        let mut f = CommitFilter::new(0);
        assert!(f.accept(&c(1, 1)));
        assert!(f.accept(&c(2, 1)));
        assert!(
            !f.accept(&c(1, 2)),
            "a zombie of epoch 1 commits after epoch 2 took over"
        );
        assert!(f.accept(&c(2, 2)));
        assert_eq!(Commit::decode(&c(2, 2).encode()).unwrap(), c(2, 2));
    }
}
