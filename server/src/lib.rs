//! # eddy-server: the node — catalog, router and the Postgres front door
//!
//! The last stages of the flow (… → state + changelog → **router → pgwire**)
//! and the node that runs the rest. A client's statement arrives through
//! [`pgwire`], becomes a call on the [`session::Backend`] that
//! [`handler::Database`] implements, is planned by the planner, and is
//! answered from the dataflow's state ([`handler`]'s `select` is the router)
//! or applied to the [`catalog`] log.
//!
//! The pgwire layer must never touch RocksDB or Kafka: it only calls the
//! session interface.
//!
//! ## Layout
//! - [`node`]: start-up and shutdown order.
//! - [`catalog`]: sources, views and roles as a replicated command log.
//! - [`access`]: roles, privileges, passwords and TLS.
//! - [`cluster`]: membership, peers, and the internal requests of reads
//!   forwarded to a partition's owner.
//! - [`handler`]: one file per statement.
//! - [`system`]: `eddy_catalog.*` tables.
//! - [`session`]: the interface the wire layer calls, and session variables.
//! - [`pgwire`]: the Postgres protocol.

pub mod access;
pub mod catalog;
pub mod cluster;
pub mod config;
pub mod error;
pub mod handler;
pub mod node;
pub mod pgwire;
pub mod query;
pub mod session;
pub mod system;

pub use config::NodeConfig;
pub use error::Error;
