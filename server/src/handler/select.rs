//! `SELECT`: the router. A read of a view is a key lookup when the planner
//! found an equality on the whole key, else a scan of every partition; the
//! rows then go through the read plan (filter, aggregates, order, limit).
//! System tables and FROM-less selects go through the same plan.

use common::{PartitionId, Row, Value};
use planner::plan::{ReadPlan, RelationRef};
use rdkafka::consumer::Consumer;
use std::time::Instant;

use super::Database;
use crate::catalog::{CatalogState, CatalogView};
use crate::error::Error;
use crate::session::vars::SessionVars;
use crate::session::Outcome;
use crate::system;
use dataflow::TaskState;

pub async fn run(
    db: &Database,
    _vars: &SessionVars,
    plan: &ReadPlan,
    params: &[Value],
) -> Result<Outcome, Error> {
    let rows =
        match &plan.relation {
            RelationRef::Nothing => vec![Vec::new()],
            RelationRef::System(name) => tokio::task::block_in_place(|| system::rows(db, name))?,
            RelationRef::View(name) => {
                let view = db.catalog.read().views.get(name).cloned().ok_or_else(|| {
                    Error::UnknownObject {
                        kind: "materialized view",
                        name: name.clone(),
                    }
                })?;
                read_view(db, &view, plan, params)?
            }
        };
    let rows = planner::execute(plan, rows.into_iter(), params)?;
    Ok(Outcome::Rows {
        columns: plan.columns.clone(),
        rows,
    })
}

fn read_view(
    db: &Database,
    view: &CatalogView,
    plan: &ReadPlan,
    params: &[Value],
) -> Result<Vec<Row>, Error> {
    let status = db.dataflow.status(view.id);
    let state = status.as_ref().map(|s| s.state());
    if state != Some(TaskState::Running) {
        return Err(Error::ViewUnavailable {
            view: view.def.name.clone(),
            partition: 0,
            reason: format!(
                "its task on node {} is {}",
                db.config.node_id,
                system::state_name(state)
            ),
        });
    }
    let store = db.dataflow.store();
    if let Some(key_exprs) = &plan.key_lookup {
        let key = key_exprs
            .iter()
            .map(|e| e.eval(&[], params))
            .collect::<Result<Vec<_>, _>>()?;
        return Ok(dataflow::read::lookup(store, view.id, &view.def, &key)?
            .into_iter()
            .collect());
    }
    tokio::task::block_in_place(|| {
        let mut rows = Vec::new();
        dataflow::read::scan(store, view.id, &view.def, |r| rows.push(r))?;
        Ok(rows)
    })
}

/// Rows of `eddy_catalog.replicas`: one per (view, partition) this node holds.
pub fn replica_rows(db: &Database, catalog: &CatalogState) -> Result<Vec<Row>, Error> {
    let consumer = db.dataflow.kafka().consumer("replicas")?;
    let mut rows = Vec::new();
    for view in catalog.views.values() {
        let status = db.dataflow.status(view.id);
        let (role, progress) = match &status {
            Some(s) if s.state() == TaskState::Running => ("active", s.progress()),
            Some(s) => ("restoring", s.progress()),
            None => ("stopped", Default::default()),
        };
        let topics = db.dataflow.kafka().view_topics(view.id, &view.def.name);
        let started = Instant::now();
        for p in 0..view.def.partitions {
            let applied = match progress.applied.get(&PartitionId(p)) {
                Some(a) => *a,
                None => {
                    db.dataflow
                        .store()
                        .partition_meta(view.id, PartitionId(p))?
                        .changelog_next
                }
            };
            let end = consumer
                .fetch_watermarks(&topics.changelog, p as i32, db.dataflow.kafka().timeout)
                .map(|(_, high)| high)
                .unwrap_or(applied);
            let lag = (end - applied).max(0);
            let lag_ms = if lag == 0 {
                0
            } else {
                status
                    .as_ref()
                    .map_or(0, |s| s.since_applied().as_millis() as i64)
            };
            rows.push(vec![
                Value::Text(view.def.name.clone()),
                Value::Int(i64::from(p)),
                Value::Text(db.config.node_id.clone()),
                Value::Text(role.into()),
                Value::Int(applied),
                Value::Int(end),
                Value::Int(lag),
                Value::Int(lag_ms),
            ]);
        }
        tracing::trace!(view = %view.def.name, elapsed_us = started.elapsed().as_micros() as u64, "replica rows");
    }
    Ok(rows)
}
