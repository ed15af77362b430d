//! `SELECT`: the router. A read of a view is a key lookup when the planner
//! found an equality on the whole key — answered by a replica of the key's
//! partition — else a scan of every partition, each from one of its
//! replicas; the rows then go through the read plan (filter, aggregates,
//! order, limit) here, on the node the client is connected to. System tables
//! and FROM-less selects go through the same plan.
//!
//! Which replica: one whose lag is within the session's `max_staleness` —
//! the active first (or, with `replica_preference = 'any'`, this node's own
//! replica first, else any, spread) — and the replica checks its own lag
//! again when it executes. A replica that cannot answer (dead, paused,
//! behind) passes the read to the next; when none is left the read fails
//! with `EY001` naming every replica and its lag (DESIGN.md §3).

use common::{PartitionId, Row, Value};
use planner::plan::{ReadPlan, RelationRef};

use super::Database;
use crate::catalog::{CatalogState, CatalogView};
use crate::cluster::internal::{
    self, CompareOp, Filter, Refusal, Request, Scan, ScanBatch, Stages,
};
use crate::cluster::peers::PeerError;
use crate::error::Error;
use crate::query::convert;
use crate::session::vars::{ReplicaPreference, SessionVars};
use crate::session::{Outcome, RowStream, WireError};
use crate::system;
use common::SqlState;
use dataflow::status::now_ms;
use dataflow::{Role, ViewStatus};
use datafusion::arrow::record_batch::RecordBatch;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub async fn run(
    db: &Database,
    vars: &SessionVars,
    plan: &ReadPlan,
    params: &[Value],
) -> Result<Outcome, Error> {
    let rows =
        match &plan.relation {
            RelationRef::Nothing => vec![Vec::new()],
            RelationRef::System(name) => system::rows(db, name).await?,
            RelationRef::View(name) => {
                let view = db.catalog.read().views.get(name).cloned().ok_or_else(|| {
                    Error::UnknownObject {
                        kind: "materialized view",
                        name: name.clone(),
                    }
                })?;
                match &plan.key_lookup {
                    None => return scan(db, &view, plan, params, vars).await,
                    Some(key) => lookup(db, &view, key, params, vars).await?,
                }
            }
        };
    // A result of more than a few rows is filtered, sorted and aggregated
    // beside the lookup threads, like the scan that produced it.
    let rows = if rows.len() <= INLINE_ROWS {
        planner::execute(plan, rows.into_iter(), params)?
    } else {
        let (plan, params) = (plan.clone(), params.to_vec());
        db.off_lookup_threads(move || planner::execute(&plan, rows.into_iter(), &params))
            .await??
    };
    Ok(Outcome::Rows {
        columns: plan.columns.clone(),
        rows,
    })
}

/// A read of a view that is not a key lookup: every partition from its best
/// replica, all at once, each replica running the plan's WHERE (and, for a
/// sorted read with a LIMIT, keeping its first rows) over its own rows. The
/// rows stream through the rest of the plan on the query engine's threads
/// as the partitions' batches arrive, and on to the client: a read without
/// ORDER BY or aggregates sends its first rows before the last are fetched,
/// and stops fetching at its LIMIT.
async fn scan(
    db: &Database,
    view: &CatalogView,
    plan: &ReadPlan,
    params: &[Value],
    vars: &SessionVars,
) -> Result<Outcome, Error> {
    let me = db
        .me
        .upgrade()
        .ok_or_else(|| Error::internal("the node is stopping"))?;
    let stages = replica_stages(plan, params);
    let phase = match &stages {
        Some(s) if s.partial => planner::Phase::Merge,
        _ => planner::Phase::Whole,
    };
    let opens = (0..view.def.partitions).map(|p| {
        let scan = Scan {
            view: view.id.0,
            max_lag_ms: bound_ms(vars),
            partitions: vec![p],
            projection: None,
            filters: Vec::new(),
            limit: None,
            stages: stages.clone(),
        };
        partition_batches::<Vec<Row>>(&me, view, scan, vars)
    });
    let mut batches = futures::stream::select_all(futures::future::try_join_all(opens).await?);
    let (plan_owned, params) = (plan.clone(), params.to_vec());
    let rows = db
        .engine
        .ahead(move |tx| async move {
            let (plan, params) = (&plan_owned, &params);
            let mut run = planner::Execution::phase(plan, params, phase)?;
            while !run.is_done() {
                let Some(batch) = batches.next().await else {
                    break;
                };
                let out = run.push_all(batch?)?;
                if !out.is_empty() && tx.send(Ok(out)).await.is_err() {
                    return Ok(()); // nobody reads on
                }
            }
            drop(batches);
            let mut rest = run.finish()?.into_iter().peekable();
            // An empty answer still sends one (empty) batch: the reader
            // waits for the first.
            let mut first = true;
            while first || rest.peek().is_some() {
                first = false;
                let out: Vec<Row> = rest.by_ref().take(SEND_ROWS).collect();
                if tx.send(Ok(out)).await.is_err() {
                    break;
                }
            }
            Ok(())
        })
        .await?;
    Ok(Outcome::Stream {
        columns: plan.columns.clone(),
        rows: RowStream::new(rows.map_err(WireError::from).boxed()),
    })
}

/// Rows a read holds until its input ended are sent this many at a time.
const SEND_ROWS: usize = 1024;

/// Results up to this many rows are finished on the connection's thread.
const INLINE_ROWS: usize = 256;

/// Waits on a peer: a point read is quick, a scan ships a partition.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(2);
const SCAN_TIMEOUT: Duration = Duration::from_secs(60);

/// One replica that may answer for a partition.
#[derive(Debug, Clone)]
struct Candidate {
    node: String,
    /// Its internal service; `None` for this node.
    addr: Option<String>,
    role: Role,
    /// Whether its state answers reads (a restore may be between commits).
    readable: bool,
    /// Its lag as the router sees it (exact for this node; from the last
    /// heartbeat, aged, for the others).
    lag_ms: i64,
}

impl Candidate {
    fn describe(&self) -> String {
        format!(
            "{} ({}, lag {})",
            self.node,
            self.role.name(),
            dataflow::status::lag_text(self.lag_ms)
        )
    }
}

/// The replicas of one partition a read may use, in the order to try them,
/// and every replica there is (for the error when none answers).
struct Routes {
    p: PartitionId,
    usable: Vec<Candidate>,
    all: Vec<Candidate>,
    /// Each tried replica's node and why it did not answer.
    failures: Vec<(String, String)>,
}

/// Spreads `replica_preference = 'any'` reads over the replicas.
static SPREAD: AtomicUsize = AtomicUsize::new(0);

/// Every replica of partition `p` this node knows of — its own, exact; the
/// others' from their heartbeats — and those within the session's bound in
/// the order its `replica_preference` asks for (DESIGN.md §3).
fn routes(
    db: &Database,
    view: &CatalogView,
    status: Option<&ViewStatus>,
    p: PartitionId,
    vars: &SessionVars,
) -> Routes {
    let now = now_ms();
    let mut all = Vec::new();
    if let Some(s) = status.and_then(|s| s.partition(p)) {
        all.push(Candidate {
            node: db.config.node_id.clone(),
            addr: None,
            role: s.role,
            readable: s.readable,
            lag_ms: s.lag_ms(now),
        });
    }
    for r in db.cluster.membership.replicas_of(view.id.0, p.0) {
        all.push(Candidate {
            lag_ms: db
                .cluster
                .seen_lag_ms(r.role, r.lag_ms, r.lag_records, r.age_ms),
            node: r.node,
            addr: Some(r.internal),
            role: r.role,
            readable: r.readable,
        });
    }
    let bound = bound_ms(vars);
    let mut usable: Vec<Candidate> = all
        .iter()
        .filter(|c| c.readable && c.lag_ms <= bound)
        .cloned()
        .collect();
    match vars.replica_preference() {
        ReplicaPreference::Active => {
            usable.sort_by_key(|c| (c.role != Role::Active, c.lag_ms, c.addr.is_some()));
        }
        ReplicaPreference::Any => {
            usable.sort_by_key(|c| (c.addr.is_some(), c.node.clone()));
            let remote = usable.iter().filter(|c| c.addr.is_some()).count();
            if remote == usable.len() && remote > 1 {
                usable.rotate_left(SPREAD.fetch_add(1, Ordering::Relaxed) % remote);
            }
        }
    }
    // A peer that just failed a request is tried last.
    usable.sort_by_key(|c| {
        c.addr
            .as_deref()
            .is_some_and(|addr| db.cluster.peers.suspect(addr))
    });
    Routes {
        p,
        usable,
        all,
        failures: Vec::new(),
    }
}

pub fn bound_ms(vars: &SessionVars) -> i64 {
    i64::try_from(vars.max_staleness().as_millis()).unwrap_or(i64::MAX)
}

impl Routes {
    /// The error when no replica of the partition answered within the bound.
    fn exhausted(&self, db: &Database, view: &CatalogView, vars: &SessionVars) -> Error {
        let bound = internal::bound_text(bound_ms(vars));
        let reason = if self.all.is_empty() {
            let live = db.cluster.membership.live();
            format!(
                "no live node holds a replica of it (live nodes: {}); a dead node's partitions \
                 move to the others {} ms after its last heartbeat",
                live.keys().cloned().collect::<Vec<_>>().join(", "),
                db.cluster.failure_timeout.as_millis()
            )
        } else {
            let mut seen: Vec<String> = self.failures.iter().map(|(_, why)| why.clone()).collect();
            for c in &self.all {
                if !self.failures.iter().any(|(node, _)| *node == c.node) {
                    seen.push(c.describe());
                }
            }
            format!(
                "no replica is within max_staleness = {bound}; replicas: {}",
                seen.join("; ")
            )
        };
        Error::ViewUnavailable {
            view: view.def.name.clone(),
            partition: self.p.0,
            reason,
        }
    }
}

/// What came of asking one replica.
enum Attempt {
    Rows(Vec<Row>),
    /// It could not answer (unreachable, behind, no longer holding it): try
    /// the next replica.
    Next(String),
}

/// A key lookup: the key's partition from its best replica.
async fn lookup(
    db: &Database,
    view: &CatalogView,
    key_exprs: &[planner::Expr],
    params: &[Value],
    vars: &SessionVars,
) -> Result<Vec<Row>, Error> {
    let status = db.dataflow.status(view.id);
    let status = status.as_deref();
    let bound = bound_ms(vars);
    let Some(key) = planner::key_values(key_exprs, params)? else {
        return Ok(Vec::new()); // `= NULL` matches nothing
    };
    let Some((p, _)) = dataflow::read::locate(&view.def, &key) else {
        return Ok(Vec::new());
    };
    // The hot path: this node's own replica is the one to use.
    if serves_here(status, p, vars, bound) {
        return Ok(
            dataflow::read::lookup(db.dataflow.store(), view.id, &view.def, &key)?
                .into_iter()
                .collect(),
        );
    }
    let mut routes = routes(db, view, status, p, vars);
    for c in routes.usable.clone() {
        let attempt = match &c.addr {
            None => match stale(db, view, &[p], bound) {
                Some(why) => Ok(Attempt::Next(why)),
                None => dataflow::read::lookup(db.dataflow.store(), view.id, &view.def, &key)
                    .map(|row| Attempt::Rows(row.into_iter().collect()))
                    .map_err(Error::from),
            },
            Some(addr) => {
                let filters = view
                    .def
                    .key_columns
                    .iter()
                    .zip(&key)
                    .map(|(&column, value)| Filter::Compare {
                        column,
                        op: CompareOp::Eq,
                        value: value.clone(),
                    })
                    .collect();
                let scan = Scan {
                    view: view.id.0,
                    max_lag_ms: bound,
                    partitions: vec![p.0],
                    projection: None,
                    filters,
                    limit: None,
                    stages: None,
                };
                fetch(db, &c.node, addr, scan, LOOKUP_TIMEOUT).await
            }
        }?;
        match attempt {
            Attempt::Rows(rows) => return Ok(rows),
            Attempt::Next(why) => routes.failures.push((c.node.clone(), why)),
        }
    }
    Err(routes.exhausted(db, view, vars))
}

/// What of `plan` a replica may run over its own rows of the view: the
/// WHERE; without aggregates also the ORDER BY and the first OFFSET +
/// LIMIT rows (the reader sorts and limits again over every replica's);
/// with aggregates, partial aggregates per group, which the reader merges.
fn replica_stages(plan: &ReadPlan, params: &[Value]) -> Option<Stages> {
    if plan.aggregate.is_some() {
        return Some(Stages {
            plan: Box::new(ReadPlan {
                key_lookup: None,
                order_by: Vec::new(),
                limit: None,
                offset: None,
                ..plan.clone()
            }),
            params: params.to_vec(),
            partial: true,
        });
    }
    let columns = plan.relation_columns.clone();
    let mut stages = ReadPlan {
        relation: plan.relation.clone(),
        key_columns: plan.key_columns.clone(),
        key_lookup: None,
        filter: plan.filter.clone(),
        aggregate: None,
        projection: columns
            .iter()
            .enumerate()
            .map(|(index, c)| planner::Expr::Column { index, ty: c.ty })
            .collect(),
        order_by: Vec::new(),
        limit: None,
        offset: None,
        relation_columns: columns.clone(),
        columns,
    };
    let count = |e: &Option<planner::Expr>, none: i64| match e {
        None => Some(none),
        Some(e) => match e.eval(&[], params) {
            Ok(Value::Int(n)) if n >= 0 => Some(n),
            _ => None,
        },
    };
    if let (Some(limit), Some(offset)) = (count(&plan.limit, -1), count(&plan.offset, 0)) {
        if limit >= 0 {
            stages.order_by = plan.order_by.clone();
            stages.limit = Some(planner::Expr::Literal {
                value: Value::Int(limit.saturating_add(offset)),
                ty: common::SqlType::BigInt,
            });
        }
    }
    (stages.filter.is_some() || stages.limit.is_some()).then(|| Stages {
        plan: Box::new(stages),
        params: params.to_vec(),
        partial: false,
    })
}

/// The batches of partition `scan.partitions[0]` of `view` (filtered,
/// projected and limited as `scan` says), from the replica the router
/// picks — the next when one cannot answer — for DataFusion's scan of
/// that partition.
pub async fn partition_batches<T: ScanBatch>(
    db: &Arc<Database>,
    view: &CatalogView,
    scan: Scan,
    vars: &SessionVars,
) -> Result<BoxStream<'static, Result<T, Error>>, Error> {
    let status = db.dataflow.status(view.id);
    let p = PartitionId(scan.partitions[0]);
    let mut routes = routes(db, view, status.as_deref(), p, vars);
    for c in routes.usable.clone() {
        let opened = match &c.addr {
            None => match internal::scan_local(db, view, &scan) {
                Ok(batches) => Ok(batches),
                Err(e @ Error::ViewUnavailable { .. }) => Err(unavailable_reason(e)),
                Err(e) => return Err(e),
            },
            Some(addr) => {
                match open(
                    db,
                    &c.node,
                    addr,
                    &Request::Scan(scan.clone()),
                    SCAN_TIMEOUT,
                )
                .await?
                {
                    Ok(mut batches) => match batches.next().await {
                        // It stopped before its first batch: nothing of the
                        // partition was used yet, so the next replica may
                        // answer instead.
                        Some(Err(Error::Peer {
                            message,
                            sqlstate: SqlState::ReplicaUnavailable,
                            ..
                        })) => Err(message),
                        first => Ok(futures::stream::iter(first)
                            .chain(batches)
                            .map(|b| b.and_then(T::unpack))
                            .boxed()),
                    },
                    Err(why) => Err(why),
                }
            }
        };
        match opened {
            Ok(batches) => return Ok(batches),
            Err(why) => routes.failures.push((c.node.clone(), why)),
        }
    }
    Err(routes.exhausted(db, view, vars))
}

/// Whether this node's replica of `p` answers without looking further: it
/// is the active, or (with `replica_preference = 'any'`) any replica within
/// the bound — exactly what [`routes`] would put first.
fn serves_here(
    status: Option<&ViewStatus>,
    p: PartitionId,
    vars: &SessionVars,
    bound: i64,
) -> bool {
    let Some(s) = status.and_then(|s| s.partition(p)) else {
        return false;
    };
    match (s.role, vars.replica_preference()) {
        (Role::Active, _) => true,
        (Role::Standby, ReplicaPreference::Any) => s.lag_ms(now_ms()) <= bound,
        _ => false,
    }
}

/// Why this node's replica of one of `parts` may not answer now (restoring
/// between commits, or behind the bound as measured now), if one may not.
fn stale(db: &Database, view: &CatalogView, parts: &[PartitionId], bound: i64) -> Option<String> {
    parts
        .iter()
        .find_map(|p| internal::check_replica(db, view, *p, bound).err())
        .map(unavailable_reason)
}

fn unavailable_reason(e: Error) -> String {
    match e {
        Error::ViewUnavailable { reason, .. } => reason,
        other => other.to_string(),
    }
}

/// A stream of batches a replica sends.
pub type Batches = BoxStream<'static, Result<RecordBatch, Error>>;

/// Sends `request` to node `node`'s internal service at `addr`: the stream
/// of its answer, or why another replica should be asked instead.
pub async fn open(
    db: &Database,
    node: &str,
    addr: &str,
    request: &Request,
    timeout: Duration,
) -> Result<Result<Batches, String>, Error> {
    // Set before the node takes its first client.
    let credentials = db
        .cluster
        .credentials()
        .ok_or_else(|| Error::internal("this node does not hold the cluster's credentials yet"))?;
    let failed = |message: String, sqlstate| Error::Peer {
        node: node.to_owned(),
        message,
        sqlstate,
    };
    match db
        .cluster
        .peers
        .request(addr, &credentials, request, timeout)
        .await
    {
        Ok(batches) => {
            let node = node.to_owned();
            Ok(Ok(batches
                .map_err(move |e| match e {
                    PeerError::Refused(Refusal::Failed { sqlstate, message }) => Error::Peer {
                        node: node.clone(),
                        message,
                        sqlstate,
                    },
                    other => Error::Peer {
                        node: node.clone(),
                        message: format!("stopped answering: {other}"),
                        sqlstate: SqlState::ReplicaUnavailable,
                    },
                })
                .boxed()))
        }
        Err(PeerError::Unreachable(e)) => Ok(Err(format!("{node} at {addr} is unreachable: {e}"))),
        Err(PeerError::Refused(Refusal::Unavailable { reason })) => Ok(Err(reason)),
        Err(PeerError::Refused(Refusal::Failed { sqlstate, message })) => {
            Err(failed(message, sqlstate))
        }
        Err(PeerError::Refused(refusal)) => Err(failed(refusal.to_string(), SqlState::Internal)),
    }
}

/// Asks node `node` (its internal service at `addr`) for the rows of `scan`.
async fn fetch(
    db: &Database,
    node: &str,
    addr: &str,
    scan: Scan,
    timeout: Duration,
) -> Result<Attempt, Error> {
    let batches = match open(db, node, addr, &Request::Scan(scan), timeout).await? {
        Ok(batches) => batches,
        Err(why) => return Ok(Attempt::Next(why)),
    };
    let mut rows = Vec::new();
    let mut batches = batches;
    while let Some(batch) = batches.next().await {
        let batch = match batch {
            Ok(batch) => batch,
            // It died midway: nothing went to the client yet, so the
            // partitions go to their next replicas.
            Err(Error::Peer {
                message,
                sqlstate: SqlState::ReplicaUnavailable,
                ..
            }) => return Ok(Attempt::Next(message)),
            Err(e) => return Err(e),
        };
        convert::rows(&batch, &mut rows).map_err(Error::internal)?;
    }
    Ok(Attempt::Rows(rows))
}

/// Rows of `eddy_catalog.replicas`: one per view partition and node holding
/// a replica of it, as the nodes' heartbeats report them (this node's from
/// its own state) with the lag the router counts, plus one row with no node
/// for a partition nobody serves.
pub fn replica_rows(db: &Database, catalog: &CatalogState) -> Result<Vec<Row>, Error> {
    let members = crate::cluster::Cluster::members_now(db);
    let now = now_ms();
    let mut rows = Vec::new();
    for view in catalog.views.values() {
        for p in 0..view.def.partitions {
            let mut served = false;
            for beat in members.values() {
                for r in beat
                    .replicas
                    .iter()
                    .filter(|r| r.view == view.id.0 && r.partition == p && r.stage == "view")
                {
                    served = true;
                    rows.push(vec![
                        Value::Text(view.def.name.clone()),
                        Value::Int(i64::from(p)),
                        Value::Text(beat.node.clone()),
                        Value::Text(r.role.clone()),
                        Value::Int(r.applied),
                        Value::Int(r.end),
                        Value::Int((r.end - r.applied).max(0)),
                        match db.cluster.seen_lag_ms(
                            Role::from_name(&r.role).unwrap_or(Role::Restoring),
                            r.lag_ms,
                            (r.end - r.applied).max(0),
                            now - beat.sent_ms,
                        ) {
                            // Behind since a time nobody knows: no number to show.
                            dataflow::status::UNKNOWN_LAG_MS => Value::Null,
                            lag => Value::Int(lag),
                        },
                    ]);
                }
            }
            if !served {
                rows.push(vec![
                    Value::Text(view.def.name.clone()),
                    Value::Int(i64::from(p)),
                    Value::Null,
                    Value::Text("unassigned".into()),
                    Value::Null,
                    Value::Null,
                    Value::Null,
                    Value::Null,
                ]);
            }
        }
    }
    Ok(rows)
}
