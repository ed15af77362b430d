//! The changes of one batch, held decoded until the batch is flushed.
//!
//! Operators read a row through [`BatchCache::entry`] (from the batch if it
//! was touched, else from the store) and change it in place; at the end of
//! the batch every touched row becomes one changelog record and one RocksDB
//! write, whatever number of records touched it.

use common::codec::{self, DecodeError};
use common::{PartitionId, Row, ViewId};
use planner::agg::GroupState;
use std::collections::HashMap;
use storage::keys::Table;
use storage::StateStore;

use crate::error::DataflowError;

/// How a table's rows are stored.
pub trait StateCodec: Sized {
    fn encode(&self) -> Vec<u8>;
    fn decode(bytes: &[u8]) -> Result<Self, DecodeError>;
}

impl StateCodec for Row {
    fn encode(&self) -> Vec<u8> {
        codec::encode_row(self)
    }
    fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        codec::decode_row(bytes)
    }
}

impl StateCodec for GroupState {
    fn encode(&self) -> Vec<u8> {
        GroupState::encode(self)
    }
    fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        GroupState::decode(bytes)
    }
}

/// One changed row, ready for the changelog and the store.
pub struct RowChange {
    pub table: Table,
    pub partition: PartitionId,
    pub key: Vec<u8>,
    /// `None` deletes the row.
    pub value: Option<Vec<u8>>,
}

pub struct BatchCache<T> {
    table: Table,
    entries: HashMap<Vec<u8>, (PartitionId, Option<T>)>,
}

impl<T: StateCodec> BatchCache<T> {
    pub fn new(table: Table) -> BatchCache<T> {
        BatchCache {
            table,
            entries: HashMap::new(),
        }
    }

    /// The row at `key` as of this batch, loading it from the store on first use.
    pub fn entry(
        &mut self,
        store: &StateStore,
        view: ViewId,
        partitions: u32,
        key: Vec<u8>,
    ) -> Result<&mut Option<T>, DataflowError> {
        use std::collections::hash_map::Entry;
        match self.entries.entry(key) {
            Entry::Occupied(e) => Ok(&mut e.into_mut().1),
            Entry::Vacant(e) => {
                let partition = PartitionId::for_key(e.key(), partitions);
                let loaded = store
                    .get(view, partition, self.table, e.key())?
                    .map(|bytes| T::decode(&bytes))
                    .transpose()
                    .map_err(|err| DataflowError::CorruptState {
                        view: view.to_string(),
                        reason: err.to_string(),
                    })?;
                Ok(&mut e.insert((partition, loaded)).1)
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn drain_into(&mut self, out: &mut Vec<RowChange>) {
        let table = self.table;
        out.extend(
            self.entries
                .drain()
                .map(|(key, (partition, value))| RowChange {
                    table,
                    partition,
                    key,
                    value: value.map(|v| v.encode()),
                }),
        );
    }
}
