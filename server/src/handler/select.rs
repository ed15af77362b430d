//! `SELECT`: the router. A read of a view is a key lookup when the planner
//! found an equality on the whole key — answered by the node that owns the
//! key's partition — else a scan of every partition, gathered from their
//! owners; the rows then go through the read plan (filter, aggregates,
//! order, limit) here, on the node the client is connected to. System tables
//! and FROM-less selects go through the same plan.

use common::{PartitionId, Row, Value};
use planner::plan::{ReadPlan, RelationRef};
use std::collections::BTreeMap;

use super::Database;
use crate::catalog::{CatalogState, CatalogView};
use crate::cluster::internal::{self, Request};
use crate::cluster::peers::PeerError;
use crate::error::Error;
use crate::session::vars::SessionVars;
use crate::session::Outcome;
use crate::system;
use dataflow::{Role, ViewStatus};

pub async fn run(
    db: &Database,
    _vars: &SessionVars,
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
                read_view(db, &view, plan, params).await?
            }
        };
    let rows = planner::execute(plan, rows.into_iter(), params)?;
    Ok(Outcome::Rows {
        columns: plan.columns.clone(),
        rows,
    })
}

/// Where one partition's rows are read.
enum Route {
    Local,
    Remote { node: String, pg: String },
}

async fn read_view(
    db: &Database,
    view: &CatalogView,
    plan: &ReadPlan,
    params: &[Value],
) -> Result<Vec<Row>, Error> {
    let store = db.dataflow.store();
    let status = db.dataflow.status(view.id);
    let status = status.as_deref();
    if let Some(key_exprs) = &plan.key_lookup {
        let key = key_exprs
            .iter()
            .map(|e| e.eval(&[], params))
            .collect::<Result<Vec<_>, _>>()?;
        if key.iter().any(Value::is_null) {
            return Ok(Vec::new()); // `= NULL` matches nothing
        }
        let Some((p, _)) = dataflow::read::locate(&view.def, &key) else {
            return Ok(Vec::new());
        };
        return match route(db, view, status, p)? {
            Route::Local => Ok(dataflow::read::lookup(store, view.id, &view.def, &key)?
                .into_iter()
                .collect()),
            Route::Remote { node, pg } => {
                let request = Request::Lookup {
                    view: view.id.0,
                    key,
                };
                fetch(db, view, p, &node, &pg, &request).await
            }
        };
    }
    let mut local = Vec::new();
    let mut remote: BTreeMap<(String, String), Vec<u32>> = BTreeMap::new();
    for p in (0..view.def.partitions).map(PartitionId) {
        match route(db, view, status, p)? {
            Route::Local => local.push(p),
            Route::Remote { node, pg } => remote.entry((node, pg)).or_default().push(p.0),
        }
    }
    let fetches = remote
        .into_iter()
        .map(|((node, pg), partitions)| async move {
            let first = PartitionId(partitions[0]);
            let request = Request::Rows {
                view: view.id.0,
                partitions,
            };
            fetch(db, view, first, &node, &pg, &request).await
        });
    let gathered = futures::future::join_all(fetches);
    let mut rows = if local.is_empty() {
        Vec::new()
    } else {
        tokio::task::block_in_place(|| {
            let mut rows = Vec::new();
            dataflow::read::scan(store, view.id, &view.def, &local, |r| rows.push(r))?;
            Ok::<_, Error>(rows)
        })?
    };
    for part in gathered.await {
        rows.extend(part?);
    }
    Ok(rows)
}

/// Who answers for partition `p`: this node if it is the active, else the
/// live node whose heartbeat says it is.
/// `status` is this node's status of the view, if it runs it.
fn route(
    db: &Database,
    view: &CatalogView,
    status: Option<&ViewStatus>,
    p: PartitionId,
) -> Result<Route, Error> {
    let local = status.and_then(|s| s.partition(p));
    if local.is_some_and(|s| s.role == Role::Active) {
        return Ok(Route::Local);
    }
    let membership = &db.cluster.membership;
    if let Some((node, pg)) = membership.owner(view.id.0, p.0) {
        return Ok(Route::Remote { node, pg });
    }
    let live = membership.live();
    let restoring: Vec<String> = live
        .values()
        .filter(|b| {
            b.replicas
                .iter()
                .any(|r| r.view == view.id.0 && r.partition == p.0)
        })
        .map(|b| b.node.clone())
        .chain(local.map(|_| db.config.node_id.clone()))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let reason = if restoring.is_empty() {
        format!(
            "no live node serves it (live nodes: {}); a dead node's partitions move to the others \
             {} ms after its last heartbeat, then restore from the changelog",
            live.keys().cloned().collect::<Vec<_>>().join(", "),
            db.cluster.failure_timeout.as_millis()
        )
    } else {
        format!(
            "node {} is restoring it from the changelog",
            restoring.join(", ")
        )
    };
    Err(Error::ViewUnavailable {
        view: view.def.name.clone(),
        partition: p.0,
        reason,
    })
}

/// Asks node `node` (at `pg`) for rows of partitions it owns.
async fn fetch(
    db: &Database,
    view: &CatalogView,
    p: PartitionId,
    node: &str,
    pg: &str,
    request: &Request,
) -> Result<Vec<Row>, Error> {
    let secret = db.catalog.read().secret.clone().ok_or_else(|| {
        Error::internal("the cluster secret is not in the catalog yet; retry shortly")
    })?;
    match db.cluster.peers.query(pg, &request.to_sql(&secret)).await {
        Ok(texts) => internal::decode_rows(node, texts),
        Err(PeerError::Unreachable(e)) => Err(Error::ViewUnavailable {
            view: view.def.name.clone(),
            partition: p.0,
            reason: format!("its owner, node {node} at {pg}, is unreachable: {e}"),
        }),
        Err(PeerError::Refused { code, message }) => Err(Error::Peer {
            node: node.to_owned(),
            unavailable: code == common::SqlState::ReplicaUnavailable.code(),
            message,
        }),
    }
}

/// Rows of `eddy_catalog.replicas`: one per view partition and node serving
/// it, as the nodes' heartbeats report them (this node's from its own
/// state), plus one row with no node for a partition nobody serves.
pub fn replica_rows(db: &Database, catalog: &CatalogState) -> Result<Vec<Row>, Error> {
    let members = crate::cluster::Cluster::members_now(db);
    let mut rows = Vec::new();
    for view in catalog.views.values() {
        for p in 0..view.def.partitions {
            let mut served = false;
            for beat in members.values() {
                for r in beat
                    .replicas
                    .iter()
                    .filter(|r| r.view == view.id.0 && r.partition == p)
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
                        Value::Int(r.lag_ms),
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
