//! What nodes ask each other, and what a node answers: the requests of the
//! internal service ([`super::service`] serves them, [`super::peers`] sends
//! them) and the scan of this node's replicas that answers them — the same
//! scan a read of a local replica runs.
//!
//! A request is typed ([`Request`]); so is a refusal ([`Refusal`], carried
//! in the error's details, never parsed out of its message). A scan names
//! the view by id, the partitions, the reader's `max_staleness` bound, and
//! what the node asked applies before anything travels: the columns wanted,
//! filters (a conjunction of column-to-constant comparisons) and a limit.
//! An equality on every key column makes the scan one point lookup.
//!
//! The node asked checks, when it executes, that it holds a replica of each
//! partition within the reader's bound (its own lag, measured now): the
//! asker's view of it may be a heartbeat old.

use common::{PartitionId, Row, SqlState, Value, ViewId};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use futures::stream::BoxStream;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::ops::ControlFlow;
use std::sync::Arc;

use crate::catalog::CatalogView;
use crate::error::Error;
use crate::handler::Database;
use crate::query::convert;
use dataflow::status::now_ms;

/// Rows per batch a scan sends.
pub const BATCH_ROWS: usize = 8192;

/// Batches a scan runs ahead of its reader.
const AHEAD: usize = 2;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Request {
    /// Rows of partitions of a view, from the replicas the node asked holds.
    Scan(Scan),
    /// The node's bad records, as rows of `eddy_catalog.source_errors`.
    Errors,
}

impl Request {
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub fn decode(bytes: &[u8]) -> Result<Request, Refusal> {
        serde_json::from_slice(bytes).map_err(|e| Refusal::Malformed(e.to_string()))
    }
}

/// A scan of some partitions of a view's replicas on one node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scan {
    pub view: u64,
    /// The reader's `max_staleness`, in milliseconds.
    pub max_lag_ms: i64,
    pub partitions: Vec<u32>,
    /// The columns to send, by index in the view; every column when `None`.
    pub projection: Option<Vec<usize>>,
    /// Rows failing any of these are not sent. The reader applies its
    /// filters again: these only spare it rows.
    pub filters: Vec<Filter>,
    /// Rows to send at most (after the filters).
    pub limit: Option<usize>,
    /// Stages of the reader's own plan the replica runs over the rows that
    /// pass `filters`, before sending them.
    #[serde(default)]
    pub stages: Option<Stages>,
}

/// A part of an Eddy read plan ([`planner::ReadPlan`]) over the view's row
/// — its WHERE, and, for a read without aggregates, its ORDER BY and its
/// first OFFSET + LIMIT rows; for an aggregate read, its partial
/// aggregates — with the parameters it uses. What the reader then does
/// with the rows of every replica gives the same answer as over every row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stages {
    pub plan: Box<planner::ReadPlan>,
    pub params: Vec<Value>,
    /// The replica sends one partial state per group of the plan's
    /// aggregate ([`planner::Phase::Partial`]), not rows of the view.
    #[serde(default)]
    pub partial: bool,
}

impl Stages {
    /// The columns of the rows the replica sends: partial states, or the
    /// view's columns.
    fn columns(&self) -> Option<Vec<common::Column>> {
        if self.partial {
            planner::partial_columns(&self.plan)
        } else {
            None
        }
    }

    fn phase(&self) -> planner::Phase {
        if self.partial {
            planner::Phase::Partial
        } else {
            planner::Phase::Whole
        }
    }
}

/// A filter on one column of the view (by index) a replica can apply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Filter {
    Compare {
        column: usize,
        op: CompareOp,
        value: Value,
    },
    IsNull {
        column: usize,
        negated: bool,
    },
    InList {
        column: usize,
        values: Vec<Value>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CompareOp {
    Eq,
    NotEq,
    Lt,
    LtEq,
    Gt,
    GtEq,
}

impl Filter {
    /// Whether `row` may pass. A NULL fails a comparison, as in SQL; values
    /// that do not compare (kinds the reader has not made alike) pass, for
    /// the reader to decide.
    pub fn keeps(&self, row: &[Value]) -> bool {
        let at = |c: &usize| row.get(*c).unwrap_or(&Value::Null);
        match self {
            Filter::Compare { column, op, value } => {
                let v = at(column);
                if v.is_null() || value.is_null() {
                    return false;
                }
                let Some(order) = v.sql_cmp(value) else {
                    return true;
                };
                match op {
                    CompareOp::Eq => order == Ordering::Equal,
                    CompareOp::NotEq => order != Ordering::Equal,
                    CompareOp::Lt => order == Ordering::Less,
                    CompareOp::LtEq => order != Ordering::Greater,
                    CompareOp::Gt => order == Ordering::Greater,
                    CompareOp::GtEq => order != Ordering::Less,
                }
            }
            Filter::IsNull { column, negated } => at(column).is_null() != *negated,
            Filter::InList { column, values } => {
                let v = at(column);
                !v.is_null()
                    && values
                        .iter()
                        .any(|w| v.sql_cmp(w).is_none_or(|o| o == Ordering::Equal))
            }
        }
    }

    /// The column this filter pins to one value, and the value.
    fn pinned(&self) -> Option<(usize, &Value)> {
        match self {
            Filter::Compare {
                column,
                op: CompareOp::Eq,
                value,
            } => Some((*column, value)),
            Filter::InList { column, values } if values.len() == 1 => Some((*column, &values[0])),
            _ => None,
        }
    }
}

/// The view's key, when `filters` pin every key column to a value: the
/// scan is then one point lookup.
pub fn pinned_key(view: &CatalogView, filters: &[Filter]) -> Option<Row> {
    let key = &view.def.key_columns;
    if key.is_empty() {
        return None;
    }
    key.iter()
        .map(|k| {
            filters
                .iter()
                .filter_map(Filter::pinned)
                .find(|(c, _)| c == k)
                .map(|(_, v)| v.clone())
        })
        .collect()
}

/// Why the node asked did not answer: the typed error of the service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
pub enum Refusal {
    #[error("malformed internal request: {0}")]
    Malformed(String),
    /// It cannot answer for a partition now (behind the bound, restoring,
    /// no longer holding it): the reader tries another replica.
    #[error("{reason}")]
    Unavailable { reason: String },
    /// The read failed there, as it would have here.
    #[error("{message}")]
    Failed { sqlstate: SqlState, message: String },
}

impl From<Error> for Refusal {
    fn from(e: Error) -> Refusal {
        match e {
            Error::ViewUnavailable { reason, .. } => Refusal::Unavailable { reason },
            other => Refusal::Failed {
                sqlstate: common::UserError::sqlstate(&other),
                message: other.to_string(),
            },
        }
    }
}

/// The view with id `id`, from this node's catalog.
pub fn view_by_id(db: &Database, id: u64) -> Result<Arc<CatalogView>, Error> {
    db.catalog
        .read()
        .views
        .values()
        .find(|v| v.id == ViewId(id))
        .cloned()
        .ok_or_else(|| Error::UnknownObject {
            kind: "materialized view",
            name: format!("with id {id}"),
        })
}

/// The columns of what `scan` sends (before its projection): the view's,
/// or the partial states of its stages.
fn scan_columns(view: &CatalogView, scan: &Scan) -> Vec<common::Column> {
    scan.stages
        .as_ref()
        .and_then(Stages::columns)
        .unwrap_or_else(|| view.def.columns.clone())
}

/// The Arrow schema of what `scan` sends: the view's columns (or the
/// partial states of its stages), projected.
pub fn scan_schema(view: &CatalogView, scan: &Scan) -> Result<SchemaRef, Error> {
    let all = convert::schema(&scan_columns(view, scan));
    match &scan.projection {
        None => Ok(all),
        Some(p) => Ok(Arc::new(all.project(p).map_err(|e| {
            Error::internal(format!("a scan of columns the view lacks: {e}"))
        })?)),
    }
}

/// The batches of `scan` over this node's replicas of `view`, after
/// checking each partition is within the scan's bound now. The scan runs
/// on the blocking pool, holding a scan slot, a few batches ahead of whoever reads the stream,
/// and stops when the stream is dropped.
pub fn scan_local<T: ScanBatch>(
    db: &Arc<Database>,
    view: &CatalogView,
    scan: &Scan,
) -> Result<BoxStream<'static, Result<T, Error>>, Error> {
    let parts: Vec<PartitionId> = scan.partitions.iter().map(|p| PartitionId(*p)).collect();
    for p in &parts {
        check_replica(db, view, *p, scan.max_lag_ms)?;
    }
    let schema = scan_schema(view, scan)?;
    let columns = scan_columns(view, scan);
    let projection: Vec<usize> = match &scan.projection {
        Some(p) => p.clone(),
        None => (0..columns.len()).collect(),
    };
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<T, Error>>(AHEAD);
    let (db, view, scan) = (db.clone(), view.clone(), scan.clone());
    tokio::spawn(async move {
        let failed = tx.clone();
        let store = db.dataflow.store().clone();
        let Ok(slot) = db.scans.clone().acquire_owned().await else {
            return;
        };
        let slots = db.scans.clone();
        let work = move || -> Result<(), Error> {
            let mut batch = Batcher {
                schema,
                projection,
                columns,
                slot: Some(slot),
                slots,
                rows: Vec::new(),
                left: scan.limit.unwrap_or(usize::MAX),
                tx,
            };
            if batch.left == 0 {
                batch.flush();
                return Ok(());
            }
            match pinned_key(&view, &scan.filters) {
                Some(key) => {
                    let here = dataflow::read::locate(&view.def, &key)
                        .is_some_and(|(p, _)| scan.partitions.contains(&p.0));
                    if here {
                        let row = dataflow::read::lookup(&store, view.id, &view.def, &key)?;
                        if let Some(row) = row.filter(|r| scan.filters.iter().all(|f| f.keeps(r))) {
                            let _ = batch.push(row);
                        }
                    }
                }
                None => match &scan.stages {
                    None => dataflow::read::scan(&store, view.id, &view.def, &parts, |row| {
                        if scan.filters.iter().all(|f| f.keeps(&row)) {
                            batch.push(row)
                        } else {
                            ControlFlow::Continue(())
                        }
                    })?,
                    Some(stages) => {
                        let mut run = planner::Execution::phase(
                            &stages.plan,
                            &stages.params,
                            stages.phase(),
                        )?;
                        let mut failed = None;
                        dataflow::read::scan(&store, view.id, &view.def, &parts, |row| {
                            if !scan.filters.iter().all(|f| f.keeps(&row)) {
                                return ControlFlow::Continue(());
                            }
                            let flow = match run.push(row) {
                                Ok(Some(out)) => batch.push(out),
                                Ok(None) => ControlFlow::Continue(()),
                                Err(e) => {
                                    failed = Some(e);
                                    return ControlFlow::Break(());
                                }
                            };
                            if run.is_done() {
                                ControlFlow::Break(())
                            } else {
                                flow
                            }
                        })?;
                        if let Some(e) = failed {
                            return Err(e.into());
                        }
                        for row in run.finish()? {
                            if batch.push(row).is_break() {
                                break;
                            }
                        }
                    }
                },
            }
            batch.flush();
            Ok(())
        };
        let done = tokio::task::spawn_blocking(work).await;
        if let Err(e) = done.map_err(Error::internal).and_then(|r| r) {
            let _ = failed.send(Err(e)).await;
        }
    });
    Ok(futures::stream::poll_fn(move |cx| rx.poll_recv(cx)).boxed())
}

/// What a scan sends its rows as: Arrow batches (for DataFusion, and for
/// another node), or the rows as the store holds them (for Eddy's planner
/// on this node: a numeric keeps its own scale, which an Arrow decimal
/// column, one scale for all its values, cannot).
pub trait ScanBatch: Sized + Send + 'static {
    /// `rows` of a view with `columns`, the `projection` of them, as `schema` says.
    fn pack(
        schema: &SchemaRef,
        columns: &[common::Column],
        projection: &[usize],
        rows: Vec<Row>,
    ) -> Result<Self, Error>;

    /// A batch another node sent.
    fn unpack(batch: RecordBatch) -> Result<Self, Error>;
}

impl ScanBatch for RecordBatch {
    fn pack(
        schema: &SchemaRef,
        columns: &[common::Column],
        projection: &[usize],
        rows: Vec<Row>,
    ) -> Result<RecordBatch, Error> {
        convert::to_batch(schema, columns, projection, &rows)
            .map_err(|e| Error::internal(format!("a row of the view does not fit its type: {e}")))
    }

    fn unpack(batch: RecordBatch) -> Result<RecordBatch, Error> {
        Ok(batch)
    }
}

impl ScanBatch for Vec<Row> {
    fn pack(
        _: &SchemaRef,
        columns: &[common::Column],
        projection: &[usize],
        rows: Vec<Row>,
    ) -> Result<Vec<Row>, Error> {
        if projection.iter().copied().eq(0..columns.len()) {
            return Ok(rows);
        }
        Ok(rows
            .into_iter()
            .map(|r| projection.iter().map(|&i| r[i].clone()).collect())
            .collect())
    }

    fn unpack(batch: RecordBatch) -> Result<Vec<Row>, Error> {
        let mut rows = Vec::new();
        convert::rows(&batch, &mut rows).map_err(Error::internal)?;
        Ok(rows)
    }
}

/// Rows gathered into batches and sent as each fills, until the limit.
struct Batcher<T> {
    schema: SchemaRef,
    projection: Vec<usize>,
    columns: Vec<common::Column>,
    /// The scan slot ([`Database::scans`]) this scan holds while it works;
    /// given back while it waits for its reader, so a reader that reads
    /// another partition first never waits on this one.
    slot: Option<tokio::sync::OwnedSemaphorePermit>,
    slots: Arc<tokio::sync::Semaphore>,
    rows: Vec<Row>,
    left: usize,
    tx: tokio::sync::mpsc::Sender<Result<T, Error>>,
}

impl<T: ScanBatch> Batcher<T> {
    /// Takes one row; breaks when the limit is reached or nobody reads on.
    fn push(&mut self, row: Row) -> ControlFlow<()> {
        self.rows.push(row);
        self.left -= 1;
        if self.rows.len() >= BATCH_ROWS && self.send().is_err() {
            return ControlFlow::Break(());
        }
        if self.left == 0 {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    }

    /// Sends the rows gathered; fails when the rows do not make a batch
    /// (the reader gets the error) or nobody reads on.
    fn send(&mut self) -> Result<(), ()> {
        let rows = std::mem::take(&mut self.rows);
        let batch = T::pack(&self.schema, &self.columns, &self.projection, rows);
        let ok = batch.is_ok();
        let sent = match self.tx.try_send(batch) {
            Ok(()) => Ok(()),
            Err(tokio::sync::mpsc::error::TrySendError::Full(batch)) => {
                self.slot = None;
                let sent = self.tx.blocking_send(batch).map_err(|_| ());
                let handle = tokio::runtime::Handle::current();
                self.slot = handle.block_on(self.slots.clone().acquire_owned()).ok();
                sent
            }
            Err(_) => Err(()),
        };
        match sent {
            Ok(()) if ok => Ok(()),
            _ => Err(()),
        }
    }

    /// Sends what is left: at least one batch, so the reader sees the schema.
    fn flush(mut self) {
        let _ = self.send();
    }
}

/// This node's bad records, as rows of `eddy_catalog.source_errors`.
pub fn serve_errors(db: &Database) -> Result<Vec<Row>, Error> {
    Ok(db
        .dataflow
        .store()
        .source_errors(None)?
        .into_iter()
        .map(|e| {
            vec![
                Value::Text(e.source),
                Value::Int(i64::from(e.partition)),
                Value::Int(e.offset),
                Value::Text(e.reason),
                Value::TimestampTz(e.seen_at_ms.saturating_mul(1000)),
            ]
        })
        .collect())
}

/// Fails unless this node holds a replica of partition `p` of `view` that
/// may answer a read accepting `max_lag_ms` of staleness: the active, or a
/// standby whose own lag, measured now, is within it (DESIGN.md §3).
pub fn check_replica(
    db: &Database,
    view: &CatalogView,
    p: PartitionId,
    max_lag_ms: i64,
) -> Result<(), Error> {
    let status = db.dataflow.status(view.id).and_then(|s| s.partition(p));
    let node = &db.config.node_id;
    let reason = match status {
        Some(s) => {
            let lag = s.lag_ms(now_ms());
            if s.readable && lag <= max_lag_ms {
                return Ok(());
            }
            format!(
                "node {node} ({}) is {} behind the changelog ({} records), over \
                 max_staleness = {}",
                s.role.name(),
                dataflow::status::lag_text(lag),
                s.lag_records(),
                bound_text(max_lag_ms)
            )
        }
        None => format!("node {node} holds no replica of it"),
    };
    Err(Error::ViewUnavailable {
        view: view.def.name.clone(),
        partition: p.0,
        reason,
    })
}

/// A `max_staleness` bound in milliseconds, as `SHOW max_staleness` puts it.
pub fn bound_text(ms: i64) -> String {
    crate::session::vars::format_duration(std::time::Duration::from_millis(ms.max(0) as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip() {
        for r in [
            Request::Scan(Scan {
                view: 12,
                max_lag_ms: 250,
                partitions: vec![0, 3, 7],
                projection: Some(vec![2, 0]),
                stages: None,
                filters: vec![
                    Filter::Compare {
                        column: 1,
                        op: CompareOp::GtEq,
                        value: Value::Text("alice b".into()),
                    },
                    Filter::IsNull {
                        column: 0,
                        negated: true,
                    },
                    Filter::InList {
                        column: 2,
                        values: vec![Value::Int(-3), Value::Float(0.1 + 0.2)],
                    },
                ],
                limit: Some(10),
            }),
            Request::Errors,
        ] {
            assert_eq!(Request::decode(&r.encode()).unwrap(), r);
        }
        assert!(matches!(
            Request::decode(b"{\"Scan\":{\"view\":\"x\"}}"),
            Err(Refusal::Malformed(_))
        ));
        assert!(Request::decode(b"").is_err());
    }

    #[test]
    fn filters_keep_what_sql_keeps_and_what_they_cannot_judge() {
        let row = vec![Value::Int(5), Value::Null, Value::Text("b".into())];
        let cmp = |column, op, value| Filter::Compare { column, op, value };
        assert!(cmp(0, CompareOp::Eq, Value::Int(5)).keeps(&row));
        assert!(cmp(0, CompareOp::LtEq, Value::Numeric(5.into())).keeps(&row));
        assert!(!cmp(0, CompareOp::Gt, Value::Int(5)).keeps(&row));
        assert!(!cmp(1, CompareOp::NotEq, Value::Int(5)).keeps(&row), "NULL");
        assert!(!cmp(0, CompareOp::Eq, Value::Null).keeps(&row), "= NULL");
        assert!(
            cmp(2, CompareOp::Eq, Value::Int(1)).keeps(&row),
            "not comparable"
        );
        assert!(Filter::IsNull {
            column: 1,
            negated: false
        }
        .keeps(&row));
        let list = |values| Filter::InList { column: 2, values };
        assert!(list(vec![Value::Text("a".into()), Value::Text("b".into())]).keeps(&row));
        assert!(!list(vec![Value::Text("a".into())]).keeps(&row));
    }
}
