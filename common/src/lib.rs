//! # eddy-common: the vocabulary every stage shares
//!
//! Sits under the whole flow (source → decode → operator → state + changelog →
//! router → pgwire) and knows nothing of any of them: identifiers, SQL types,
//! values, casts, the Postgres text format and the binary row codec.
//!
//! It must never do I/O. Every encoding here is part of Eddy's on-disk and
//! on-topic format: changing one changes what old state and old changelogs mean.
//!
//! ## Layout
//! - [`ids`]: newtypes for views, partitions, nodes and epochs.
//! - [`types`]: [`SqlType`] and [`Column`].
//! - [`value`]: [`Value`], comparisons, casts and the Postgres text format.
//! - [`array`]: PostgreSQL's array literal text.
//! - [`codec`]: the binary encoding of values and rows (state, changelog, keys).

pub mod array;
pub mod codec;
pub mod hex;
pub mod ids;
pub mod numeric;
pub mod sqlstate;
pub mod types;
pub mod value;

pub use ids::{Epoch, NodeId, PartitionId, ViewId};
pub use sqlstate::{SqlState, UserError};
pub use types::{Column, Origin, SqlType};
pub use value::{CastError, Row, Value};
