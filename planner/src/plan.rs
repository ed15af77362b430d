//! The typed outputs of planning: what the rest of Eddy consumes.
//!
//! sqlparser AST → [`crate::Statement`] (names resolved, types known) → for a
//! view, a [`ViewPlan`] the dataflow runs incrementally; for a read, a
//! [`ReadPlan`] the server runs over a view's rows.

use crate::expr::Expr;
use common::{Column, SqlType, Value};
use serde::{Deserialize, Serialize};

/// How a source's Kafka records are decoded. Only JSON objects today.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Format {
    Json,
}

/// Where a view over a source starts reading when it has no state yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StartFrom {
    Earliest,
    Latest,
}

/// `CREATE SOURCE`: a Kafka topic read as rows of `columns`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceDef {
    pub name: String,
    pub columns: Vec<Column>,
    /// Index of the `PRIMARY KEY` column: the source is then an upsert source
    /// (latest value per key; a null Kafka value deletes the key, which is read
    /// from the Kafka record key).
    pub primary_key: Option<usize>,
    pub topic: String,
    pub format: Format,
    pub start: StartFrom,
    /// The role that created it (and may drop it). `None` in catalogs
    /// written before roles existed: those objects belong to the bootstrap
    /// superuser.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
}

/// `CREATE MATERIALIZED VIEW`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ViewDef {
    pub name: String,
    /// The SELECT text, as the user wrote it (for SHOW and EXPLAIN).
    pub sql: String,
    pub source: String,
    pub partitions: u32,
    pub standbys: u32,
    /// The view's output schema.
    pub columns: Vec<Column>,
    /// Output columns forming the view's key, in key order. An equality on all
    /// of them is served by a key lookup. Empty when the key is hidden (a view
    /// without GROUP BY over an append-only source is keyed by source offset).
    pub key_columns: Vec<usize>,
    pub plan: ViewPlan,
    /// The role that created it; see [`SourceDef::owner`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
}

/// How a view is maintained. Every expression is bound against the source's
/// columns unless said otherwise.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ViewPlan {
    /// GROUP BY (or global aggregates with no GROUP BY): state per group holds
    /// the aggregates' accumulators.
    Aggregate(AggregatePlan),
    /// No aggregation: state per input key holds the projected row. Over an
    /// upsert source the key is the primary key; over an append-only source
    /// it is the record's (partition, offset).
    Project(ProjectPlan),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AggregatePlan {
    pub filter: Option<Expr>,
    pub group_by: Vec<Expr>,
    pub aggregates: Vec<AggCall>,
    /// Bound against the *group row*: the group-by values followed by the
    /// aggregates' final values.
    pub having: Option<Expr>,
    /// Bound against the group row, one per output column.
    pub output: Vec<Expr>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProjectPlan {
    pub filter: Option<Expr>,
    pub output: Vec<Expr>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AggFunc {
    CountStar,
    Count,
    Sum,
    Avg,
    Min,
    Max,
}

/// One aggregate call: `func(arg)`; `arg` is `None` only for `COUNT(*)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AggCall {
    pub func: AggFunc,
    pub arg: Option<Expr>,
    /// Type of the final value.
    pub output_type: SqlType,
}

/// A `SELECT` over one relation (a view or a system table), run at read time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReadPlan {
    pub relation: RelationRef,
    /// The relation's columns as bound (the row `filter` and friends see
    /// before any aggregate). Empty for [`RelationRef::Nothing`].
    pub relation_columns: Vec<Column>,
    /// The relation's key columns (indices into `relation_columns`), in the
    /// order of `key_lookup`'s expressions.
    pub key_columns: Vec<usize>,
    /// Set when WHERE pins every key column of a view by equality: the server
    /// looks the key up instead of scanning. Expressions are constant (they may
    /// use parameters). `filter` still holds the whole WHERE clause.
    pub key_lookup: Option<Vec<Expr>>,
    /// Bound against the relation's columns.
    pub filter: Option<Expr>,
    /// Present when the read groups or aggregates; its output is the row the
    /// later stages see.
    pub aggregate: Option<ReadAggregate>,
    /// Bound against the relation's row (or the aggregate's group row).
    pub projection: Vec<Expr>,
    /// Sort keys, bound against the same row as `projection`.
    pub order_by: Vec<SortKey>,
    pub limit: Option<Expr>,
    pub offset: Option<Expr>,
    pub columns: Vec<Column>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReadAggregate {
    pub group_by: Vec<Expr>,
    pub aggregates: Vec<AggCall>,
    pub having: Option<Expr>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SortKey {
    pub expr: Expr,
    pub descending: bool,
    pub nulls_first: bool,
}

/// What a read is over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RelationRef {
    View(String),
    /// `eddy_catalog.<name>` (or a `pg_catalog` table a client probes).
    System(String),
    /// No FROM clause: `SELECT 1`, `SELECT version()`.
    Nothing,
}

/// A relation as the binder sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct RelationInfo {
    pub kind: RelationKind,
    pub columns: Vec<Column>,
    pub key_columns: Vec<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelationKind {
    Source,
    View,
    System,
}

/// What the binder asks of the catalog. Implemented by the server.
pub trait Catalog {
    /// `name` is lower-cased and may be schema-qualified (`eddy_catalog.nodes`).
    fn relation(&self, name: &str) -> Option<RelationInfo>;
    fn source(&self, name: &str) -> Option<SourceDef>;
}

/// A value a read produces with its type: used for `SELECT 1` and parameters.
pub type TypedValue = (Value, SqlType);
