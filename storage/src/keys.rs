//! The key layout of the node's RocksDB.
//!
//! ```text
//! v | view u64 | partition u32 | table u8 | key..   view state rows
//! m | view u64 | stage u8 | partition u32  partition metadata (commit, changelog, input positions)
//! e | source name | 0 | partition i32 | offset i64   a bad source record
//! ```
//! All integers big-endian, so one view's keys are contiguous and ordered.

use common::{PartitionId, ViewId};

/// Which table of a view partition a row belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Table {
    /// The view's own rows (or group accumulators).
    Output = 0,
    /// Latest row per primary key of an upsert source, kept to retract it.
    UpsertInput = 1,
}

impl Table {
    pub fn from_byte(b: u8) -> Option<Table> {
        match b {
            0 => Some(Table::Output),
            1 => Some(Table::UpsertInput),
            _ => None,
        }
    }
}

pub(crate) fn state_prefix(view: ViewId, partition: PartitionId, table: Table) -> Vec<u8> {
    let mut k = Vec::with_capacity(14);
    k.push(b'v');
    k.extend_from_slice(&view.0.to_be_bytes());
    k.extend_from_slice(&partition.0.to_be_bytes());
    k.push(table as u8);
    k
}

pub(crate) fn state_key(view: ViewId, partition: PartitionId, table: Table, key: &[u8]) -> Vec<u8> {
    let mut k = state_prefix(view, partition, table);
    k.extend_from_slice(key);
    k
}

/// A stateful step of a view. Most views have one; a GROUP BY over an upsert
/// source has two: `Resolve` keeps the latest row per primary key and emits
/// retractions, `View` aggregates them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Stage {
    /// The stage whose state is the view (what reads see).
    View = 0,
    /// Latest row per primary key of an upsert source, keyed by that key.
    Resolve = 1,
}

pub(crate) fn partition_meta_key(view: ViewId, stage: Stage, partition: PartitionId) -> Vec<u8> {
    let mut k = Vec::with_capacity(14);
    k.push(b'm');
    k.extend_from_slice(&view.0.to_be_bytes());
    k.push(stage as u8);
    k.extend_from_slice(&partition.0.to_be_bytes());
    k
}

/// The half-open key range `[start, end)` of everything a view owns with `tag`.
pub(crate) fn view_range(tag: u8, view: ViewId) -> (Vec<u8>, Vec<u8>) {
    let mut start = vec![tag];
    start.extend_from_slice(&view.0.to_be_bytes());
    let mut end = vec![tag];
    end.extend_from_slice(&(view.0 + 1).to_be_bytes());
    (start, end)
}

pub(crate) fn source_error_prefix(source: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(source.len() + 2);
    k.push(b'e');
    k.extend_from_slice(source.as_bytes());
    k.push(0);
    k
}

pub(crate) fn source_error_key(source: &str, partition: i32, offset: i64) -> Vec<u8> {
    let mut k = source_error_prefix(source);
    k.extend_from_slice(&partition.to_be_bytes());
    k.extend_from_slice(&offset.to_be_bytes());
    k
}

/// The smallest key greater than every key starting with `prefix`.
pub(crate) fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0xff; prefix.len() + 1]
}
