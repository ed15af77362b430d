//! # eddy-dataflow: from a Kafka record to view state
//!
//! The runtime between the sources and the state store: source consumer →
//! [`decode`] → route ([`shuffle`]) → repartition topic ([`envelope`]) →
//! [`stage`] → [`operator`] → [`state`] (the batch) → changelog + commit →
//! RocksDB, and back out through [`read`]. [`placement`] decides which node is
//! the active of each partition and which keep standbys; [`follow`] keeps a
//! standby replaying the changelog through [`replay`] (the commit chain
//! every reader of a partition's logs applies); [`restore`] brings a partition up to its
//! changelog when a node becomes its active; [`runtime::Dataflow`] owns the
//! steps of every view.
//!
//! It must never answer a client directly or parse SQL: plans come from the
//! planner, reads go out through the server's router.
//!
//! ## Invariants
//! - Exactly once: see [`stage`] — per partition: duplicates dropped by
//!   upstream position; changelog, then a chained commit, then RocksDB.
//! - Bad input never stops a view: a record that fails to decode, or whose
//!   expressions fail, is skipped and recorded with its position and reason.

pub mod decode;
pub mod envelope;
pub mod error;
pub mod follow;
pub mod kafka;
pub mod operator;
pub mod placement;
pub mod read;
pub mod replay;
pub mod restore;
pub mod runtime;
pub mod shuffle;
pub mod stage;
pub mod state;
pub mod status;
pub mod task;

pub use error::DataflowError;
pub use kafka::{GroupSettings, KafkaConfig, ViewTopics};
pub use placement::{Holding, Member, Roster};
pub use runtime::Dataflow;
pub use status::{PartitionStatus, Progress, Role, TaskState, ViewStatus};
pub use task::ViewSpec;
