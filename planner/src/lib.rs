//! # eddy-planner: SQL text → typed plans
//!
//! Sits between the pgwire layer and the dataflow: the server hands it SQL
//! text and a [`Catalog`]; it hands back a [`Statement`] whose views carry a
//! [`ViewPlan`] the dataflow maintains incrementally and whose reads carry a
//! [`ReadPlan`] the server runs with [`execute`]. It must never do I/O, read
//! a clock, or know about Kafka, RocksDB or the wire.
//!
//! ## Layout (in the order a statement travels)
//! - [`bind`]: [`parse`] (sqlparser plus Eddy's `CREATE SOURCE` / `DROP
//!   SOURCE`) and [`plan`], one file per statement kind; `bind::scalar`
//!   binds expressions (with `bind::coerce` for typing and parameter
//!   inference, `bind::functions` for aggregates and functions), and
//!   `bind::select` binds the SELECT core that views and reads share.
//! - [`statement`]: the bound [`Statement`] and [`param_types`].
//! - [`plan`]: the plan types the rest of Eddy consumes.
//! - [`expr`]: bound scalar expressions; [`eval`] evaluates them (Postgres
//!   three-valued logic, checked arithmetic).
//! - [`agg`]: aggregate state with retraction, encoded for RocksDB and the
//!   changelog.
//! - [`exec`]: runs a [`ReadPlan`] over fetched rows; [`explain`] prints plans.
//! - [`error`]: [`PlanError`] and [`EvalError`], each variant with its SQLSTATE.

pub mod agg;
pub mod bind;
pub mod error;
pub mod eval;
pub mod exec;
pub mod explain;
pub mod expr;
pub mod plan;
pub mod statement;

pub use agg::GroupState;
pub use bind::{output_name, parse, plan, position_of};
pub use error::{EvalError, PlanError};
pub use exec::{execute, key_values, partial_columns, Execution, Phase};
pub use explain::explain;
pub use expr::Expr;
pub use plan::*;
pub use statement::{param_types, Defaults, Statement};

/// The stack every thread that parses, plans or evaluates statements must
/// have (tokio workers and view threads): enough for the deepest statement
/// [`bind::limits`] lets through, with room to spare.
pub const NODE_THREAD_STACK: usize = 16 << 20;

#[cfg(test)]
mod tests;
