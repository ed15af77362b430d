//! [`StateStore`]: one RocksDB per node holding every view partition it serves.

use crate::keys::{self, Stage, Table};
use common::{PartitionId, SqlState, UserError, ViewId};
use rocksdb::{Direction, IteratorMode, Options, WriteBatch, WriteOptions, DB};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("state store error: {0}")]
    Rocks(#[from] rocksdb::Error),
    #[error("corrupt {what} in the state store: {reason}")]
    Corrupt { what: &'static str, reason: String },
}

impl UserError for StorageError {
    fn sqlstate(&self) -> SqlState {
        SqlState::Internal
    }
}

/// What one stage partition's state reflects, written in the same RocksDB
/// batch as the state it describes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionMeta {
    /// Offset of the last accepted commit in the partition's commit log;
    /// -1 before the first.
    pub last_commit: i64,
    /// Next commit-log offset to read: everything below has been judged.
    pub commit_next: i64,
    /// Next changelog offset to apply: everything below is in the state.
    pub changelog_next: i64,
    /// Next offset to read in the stage's input partition.
    pub input_next: i64,
    /// Next upstream position to apply, per upstream partition. An input
    /// record below it was applied already (a duplicate written by a writer
    /// that died mid-batch) and is skipped.
    pub upstream: BTreeMap<i32, i64>,
}

impl Default for PartitionMeta {
    fn default() -> Self {
        PartitionMeta {
            last_commit: -1,
            commit_next: 0,
            changelog_next: 0,
            input_next: 0,
            upstream: BTreeMap::new(),
        }
    }
}

/// A record of a source that could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceErrorRecord {
    pub source: String,
    pub partition: i32,
    pub offset: i64,
    pub reason: String,
    /// When it was seen, in ms since the epoch.
    pub seen_at_ms: i64,
}

/// Changes to apply atomically: rows of any partitions of one view plus the
/// metadata describing them.
#[derive(Default)]
pub struct StateBatch {
    batch: WriteBatch,
}

impl StateBatch {
    pub fn new() -> StateBatch {
        StateBatch::default()
    }

    pub fn put(
        &mut self,
        view: ViewId,
        partition: PartitionId,
        table: Table,
        key: &[u8],
        value: &[u8],
    ) {
        self.batch
            .put(keys::state_key(view, partition, table, key), value);
    }

    pub fn delete(&mut self, view: ViewId, partition: PartitionId, table: Table, key: &[u8]) {
        self.batch
            .delete(keys::state_key(view, partition, table, key));
    }

    pub fn set_partition_meta(
        &mut self,
        view: ViewId,
        stage: Stage,
        partition: PartitionId,
        meta: &PartitionMeta,
    ) {
        self.batch.put(
            keys::partition_meta_key(view, stage, partition),
            to_json(meta),
        );
    }

    pub fn len(&self) -> usize {
        self.batch.len()
    }

    pub fn is_empty(&self) -> bool {
        self.batch.is_empty()
    }
}

fn to_json<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).expect("metadata serializes")
}

fn from_json<T: for<'de> Deserialize<'de>>(
    what: &'static str,
    bytes: &[u8],
) -> Result<T, StorageError> {
    serde_json::from_slice(bytes).map_err(|e| StorageError::Corrupt {
        what,
        reason: e.to_string(),
    })
}

pub struct StateStore {
    db: DB,
}

impl StateStore {
    pub fn open(path: &Path) -> Result<StateStore, StorageError> {
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.increase_parallelism(2);
        Ok(StateStore {
            db: DB::open(&opts, path)?,
        })
    }

    /// Applies a batch atomically. The WAL is written but not fsynced: the
    /// batch survives a killed process; a lost machine is recovered from the
    /// changelog.
    pub fn write(&self, batch: StateBatch) -> Result<(), StorageError> {
        let mut opts = WriteOptions::default();
        opts.set_sync(false);
        self.db.write_opt(batch.batch, &opts)?;
        Ok(())
    }

    pub fn get(
        &self,
        view: ViewId,
        partition: PartitionId,
        table: Table,
        key: &[u8],
    ) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self.db.get(keys::state_key(view, partition, table, key))?)
    }

    /// Calls `f(key, value)` for every row of one table of a view partition,
    /// in key order, from a consistent snapshot.
    pub fn scan<E: From<StorageError>>(
        &self,
        view: ViewId,
        partition: PartitionId,
        table: Table,
        mut f: impl FnMut(&[u8], &[u8]) -> Result<(), E>,
    ) -> Result<(), E> {
        let prefix = keys::state_prefix(view, partition, table);
        let iter = self
            .db
            .iterator(IteratorMode::From(&prefix, Direction::Forward));
        for item in iter {
            let (k, v) = item.map_err(StorageError::from)?;
            if !k.starts_with(&prefix) {
                break;
            }
            f(&k[prefix.len()..], &v)?;
        }
        Ok(())
    }

    pub fn partition_meta(
        &self,
        view: ViewId,
        stage: Stage,
        partition: PartitionId,
    ) -> Result<PartitionMeta, StorageError> {
        Ok(self
            .db
            .get(keys::partition_meta_key(view, stage, partition))?
            .map(|b| from_json("partition metadata", &b))
            .transpose()?
            .unwrap_or_default())
    }

    /// Removes every row and all metadata of a view.
    pub fn drop_view(&self, view: ViewId) -> Result<(), StorageError> {
        let mut batch = WriteBatch::default();
        for tag in [b'v', b'm'] {
            let (start, end) = keys::view_range(tag, view);
            batch.delete_range(start, end);
        }
        self.db.write(batch)?;
        Ok(())
    }

    /// Records a bad source record. Idempotent: the same (source, partition,
    /// offset) seen again, by replay or by another view, is one record.
    pub fn record_source_error(&self, record: &SourceErrorRecord) -> Result<(), StorageError> {
        let key = keys::source_error_key(&record.source, record.partition, record.offset);
        self.db.put(key, to_json(record))?;
        Ok(())
    }

    /// Bad records of `source`, or of every source when `None`, in order.
    pub fn source_errors(
        &self,
        source: Option<&str>,
    ) -> Result<Vec<SourceErrorRecord>, StorageError> {
        let prefix = match source {
            Some(s) => keys::source_error_prefix(s),
            None => vec![b'e'],
        };
        let mut out = Vec::new();
        for item in self
            .db
            .iterator(IteratorMode::From(&prefix, Direction::Forward))
        {
            let (k, v) = item?;
            if !k.starts_with(&prefix) {
                break;
            }
            out.push(from_json("source error record", &v)?);
        }
        Ok(out)
    }

    pub fn drop_source_errors(&self, source: &str) -> Result<(), StorageError> {
        let prefix = keys::source_error_prefix(source);
        let mut batch = WriteBatch::default();
        batch.delete_range(prefix.clone(), keys::prefix_end(&prefix));
        self.db.write(batch)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, StateStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::open(dir.path()).unwrap();
        (dir, store)
    }

    #[test]
    fn state_and_metadata_commit_together_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let (v, p) = (ViewId(7), PartitionId(1));
        {
            let store = StateStore::open(dir.path()).unwrap();
            let mut batch = StateBatch::new();
            batch.put(v, p, Table::Output, b"alice", b"1");
            batch.put(v, PartitionId(2), Table::Output, b"bob", b"2");
            let meta = PartitionMeta {
                last_commit: 3,
                commit_next: 4,
                changelog_next: 10,
                input_next: 7,
                upstream: [(0, 42)].into(),
            };
            batch.set_partition_meta(v, Stage::View, p, &meta);
            store.write(batch).unwrap();
        }
        let store = StateStore::open(dir.path()).unwrap();
        assert_eq!(
            store.get(v, p, Table::Output, b"alice").unwrap().as_deref(),
            Some(&b"1"[..])
        );
        assert_eq!(store.get(v, p, Table::Output, b"bob").unwrap(), None);
        let meta = store.partition_meta(v, Stage::View, p).unwrap();
        assert_eq!((meta.changelog_next, meta.upstream[&0]), (10, 42));
        assert_eq!(
            store.partition_meta(v, Stage::Resolve, p).unwrap(),
            PartitionMeta::default(),
            "stages keep separate metadata"
        );
    }

    #[test]
    fn scan_stays_inside_its_partition_and_table() {
        let (_d, store) = store();
        let mut batch = StateBatch::new();
        for (view, part, table, key) in [
            (1, 0, Table::Output, "a"),
            (1, 0, Table::Output, "b"),
            (1, 0, Table::UpsertInput, "c"),
            (1, 1, Table::Output, "d"),
            (2, 0, Table::Output, "e"),
        ] {
            batch.put(ViewId(view), PartitionId(part), table, key.as_bytes(), b"x");
        }
        store.write(batch).unwrap();
        let mut seen = Vec::new();
        store
            .scan::<StorageError>(ViewId(1), PartitionId(0), Table::Output, |k, _| {
                seen.push(String::from_utf8(k.to_vec()).unwrap());
                Ok(())
            })
            .unwrap();
        assert_eq!(seen, ["a", "b"]);
    }

    #[test]
    fn drop_view_removes_only_that_view() {
        let (_d, store) = store();
        let mut batch = StateBatch::new();
        batch.put(ViewId(1), PartitionId(0), Table::Output, b"k", b"x");
        batch.put(ViewId(2), PartitionId(0), Table::Output, b"k", b"y");
        batch.set_partition_meta(
            ViewId(1),
            Stage::View,
            PartitionId(0),
            &PartitionMeta::default(),
        );
        store.write(batch).unwrap();
        store.drop_view(ViewId(1)).unwrap();
        assert_eq!(
            store
                .get(ViewId(1), PartitionId(0), Table::Output, b"k")
                .unwrap(),
            None
        );
        assert_eq!(
            store
                .partition_meta(ViewId(1), Stage::View, PartitionId(0))
                .unwrap(),
            PartitionMeta::default()
        );
        assert!(store
            .get(ViewId(2), PartitionId(0), Table::Output, b"k")
            .unwrap()
            .is_some());
    }

    #[test]
    fn source_errors_are_idempotent_per_position() {
        let (_d, store) = store();
        let rec = |offset| SourceErrorRecord {
            source: "orders".into(),
            partition: 0,
            offset,
            reason: "bad".into(),
            seen_at_ms: 0,
        };
        store.record_source_error(&rec(5)).unwrap();
        store.record_source_error(&rec(5)).unwrap();
        store.record_source_error(&rec(9)).unwrap();
        let other = SourceErrorRecord {
            source: "orders2".into(),
            ..rec(1)
        };
        store.record_source_error(&other).unwrap();
        assert_eq!(store.source_errors(Some("orders")).unwrap().len(), 2);
        assert_eq!(store.source_errors(None).unwrap().len(), 3);
        store.drop_source_errors("orders").unwrap();
        assert_eq!(store.source_errors(None).unwrap().len(), 1);
    }
}
