//! `EXPLAIN`: the plan as text, one row per line. A key lookup with a
//! constant key also says which partition holds the key and which nodes
//! hold its replicas now.

use common::{Column, SqlType, Value};
use planner::plan::{ReadPlan, RelationRef};
use planner::Statement;

use super::Database;
use crate::cluster::Cluster;
use crate::error::Error;
use crate::session::Outcome;

pub fn run(db: &Database, stmt: &Statement) -> Result<Outcome, Error> {
    let mut lines = planner::explain(stmt);
    if let Statement::Select(plan) = stmt {
        lines.extend(where_the_key_lives(db, plan));
    }
    Ok(Outcome::Rows {
        columns: vec![Column::new("QUERY PLAN", SqlType::Text)],
        rows: lines.into_iter().map(|l| vec![Value::Text(l)]).collect(),
    })
}

/// `Partition 3: n2 (active), n1 (standby)` for a lookup of a constant key.
fn where_the_key_lives(db: &Database, plan: &ReadPlan) -> Option<String> {
    let (RelationRef::View(name), Some(exprs)) = (&plan.relation, &plan.key_lookup) else {
        return None;
    };
    let view = db.catalog.read().views.get(name).cloned()?;
    let key = exprs
        .iter()
        .map(|e| e.eval(&[], &[]).ok())
        .collect::<Option<Vec<_>>>()?;
    let (p, _) = dataflow::read::locate(&view.def, &key)?;
    let mut replicas: Vec<(bool, String)> = Cluster::members_now(db)
        .values()
        .flat_map(|beat| {
            beat.replicas
                .iter()
                .filter(|r| r.view == view.id.0 && r.partition == p.0 && r.stage == "view")
                .map(|r| (r.role != "active", format!("{} ({})", beat.node, r.role)))
        })
        .collect();
    replicas.sort();
    let names: Vec<String> = replicas.into_iter().map(|(_, r)| r).collect();
    Some(format!(
        "Partition {}: {}",
        p.0,
        if names.is_empty() {
            "no replica on a live node".to_owned()
        } else {
            names.join(", ")
        }
    ))
}
