//! # eddy-storage: view state in RocksDB, and the changelog's record format
//!
//! Sits after the operators in the flow (source → decode → operator → **state +
//! changelog** → router → pgwire). It holds each view partition's rows in one
//! RocksDB per node and defines how state changes look on the changelog topic.
//! It never talks to Kafka: the dataflow produces and consumes the records
//! whose format [`changelog`] defines.
//!
//! ## Invariants
//! - The offsets that say what state holds (source offsets, changelog offsets,
//!   the last committed batch) are written in the **same RocksDB write batch**
//!   as the state they describe. Replay skips what these offsets cover, so a
//!   crash at any moment neither loses nor double-applies a record.
//! - Keys are namespaced by view id and partition; dropping a view removes a
//!   contiguous key range.
//!
//! ## Layout
//! - [`keys`]: the key layout of the store.
//! - [`store`]: [`StateStore`], [`StateBatch`] and the metadata types.
//! - [`changelog`]: changelog and commit record formats.

pub mod changelog;
pub mod keys;
pub mod store;

pub use keys::{Stage, Table};
pub use store::{PartitionMeta, SourceErrorRecord, StateBatch, StateStore, StorageError};
