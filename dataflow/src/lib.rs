//! # eddy-dataflow: from a Kafka record to view state
//!
//! The runtime between the sources and the state store: source consumer →
//! [`decode`] → [`operator`] → [`state`] (the batch) → changelog + commit →
//! RocksDB ([`task`]), and back out through [`read`]. [`restore`] rebuilds
//! state from the changelog; [`runtime::Dataflow`] owns the tasks.
//!
//! It must never answer a client directly or parse SQL: plans come from the
//! planner, reads go out through the server's router.
//!
//! ## Invariants
//! - Exactly once: see [`task`] — changelog, then commit, then RocksDB.
//! - Bad input never stops a view: a record that fails to decode, or whose
//!   expressions fail, is skipped and recorded with its position and reason.

pub mod decode;
pub mod error;
pub mod kafka;
pub mod operator;
pub mod read;
pub mod restore;
pub mod runtime;
pub mod state;
pub mod status;
pub mod task;

pub use error::DataflowError;
pub use kafka::{KafkaConfig, ViewTopics};
pub use runtime::Dataflow;
pub use status::{Progress, TaskState, ViewStatus};
pub use task::ViewSpec;
