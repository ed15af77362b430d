//! System tables under `eddy_catalog`: what the node knows about itself,
//! readable with plain SELECT (and so with WHERE, ORDER BY, aggregates).

use common::{Column, Row, SqlType, Value};
use dataflow::TaskState;

use crate::error::Error;
use crate::handler::Database;

pub const SOURCES: &str = "eddy_catalog.sources";
pub const VIEWS: &str = "eddy_catalog.views";
pub const SOURCE_ERRORS: &str = "eddy_catalog.source_errors";
pub const REPLICAS: &str = "eddy_catalog.replicas";
pub const NODES: &str = "eddy_catalog.nodes";

fn cols(list: &[(&str, SqlType)]) -> Vec<Column> {
    list.iter().map(|(n, t)| Column::new(*n, *t)).collect()
}

/// The columns of system table `name`, or `None` if there is no such table.
pub fn columns(name: &str) -> Option<Vec<Column>> {
    use SqlType::*;
    Some(match name {
        SOURCES => cols(&[
            ("name", Text),
            ("topic", Text),
            ("format", Text),
            ("kind", Text),
            ("start", Text),
            ("columns", Text),
        ]),
        VIEWS => cols(&[
            ("name", Text),
            ("id", BigInt),
            ("source", Text),
            ("partitions", Integer),
            ("standbys", Integer),
            ("key", Text),
            ("state", Text),
            ("records", BigInt),
            ("skipped", BigInt),
            ("sql", Text),
        ]),
        SOURCE_ERRORS => cols(&[
            ("source", Text),
            ("partition", Integer),
            ("offset", BigInt),
            ("reason", Text),
            ("seen_at", TimestampTz),
        ]),
        REPLICAS => cols(&[
            ("view", Text),
            ("partition", Integer),
            ("node", Text),
            ("role", Text),
            ("applied_offset", BigInt),
            ("end_offset", BigInt),
            ("lag_records", BigInt),
            ("lag_ms", BigInt),
        ]),
        NODES => cols(&[
            ("node_id", Text),
            ("pg_address", Text),
            ("last_heard_ms", BigInt),
            ("uptime_s", BigInt),
        ]),
        _ => return None,
    })
}

pub fn names() -> [&'static str; 5] {
    [SOURCES, VIEWS, SOURCE_ERRORS, REPLICAS, NODES]
}

fn text(s: impl Into<String>) -> Value {
    Value::Text(s.into())
}

/// The rows of system table `name`. Runs blocking I/O: call off the runtime.
pub fn rows(db: &Database, name: &str) -> Result<Vec<Row>, Error> {
    let catalog = db.catalog.read().clone();
    Ok(match name {
        SOURCES => catalog
            .sources
            .values()
            .map(|s| {
                let columns = s
                    .columns
                    .iter()
                    .map(|c| format!("{} {}", c.name, c.ty))
                    .collect::<Vec<_>>()
                    .join(", ");
                vec![
                    text(&s.name),
                    text(&s.topic),
                    text("json"),
                    text(if s.primary_key.is_some() {
                        "upsert"
                    } else {
                        "append-only"
                    }),
                    text(format!("{:?}", s.start).to_lowercase()),
                    text(columns),
                ]
            })
            .collect(),
        VIEWS => catalog
            .views
            .values()
            .map(|v| {
                let status = db.dataflow.status(v.id);
                let progress = status.as_ref().map(|s| s.progress()).unwrap_or_default();
                let key = v
                    .def
                    .key_columns
                    .iter()
                    .map(|&i| v.def.columns[i].name.clone())
                    .collect::<Vec<_>>()
                    .join(", ");
                vec![
                    text(&v.def.name),
                    Value::Int(v.id.0 as i64),
                    text(&v.def.source),
                    Value::Int(i64::from(v.def.partitions)),
                    Value::Int(i64::from(v.def.standbys)),
                    text(key),
                    text(state_name(status.map(|s| s.state()))),
                    Value::Int(progress.records as i64),
                    Value::Int(progress.skipped as i64),
                    text(&v.def.sql),
                ]
            })
            .collect(),
        SOURCE_ERRORS => db
            .dataflow
            .store()
            .source_errors(None)?
            .into_iter()
            .map(|e| {
                vec![
                    text(e.source),
                    Value::Int(i64::from(e.partition)),
                    Value::Int(e.offset),
                    text(e.reason),
                    Value::TimestampTz(e.seen_at_ms.saturating_mul(1000)),
                ]
            })
            .collect(),
        REPLICAS => crate::handler::replica_rows(db, &catalog)?,
        NODES => vec![vec![
            text(&db.config.node_id),
            text(&db.config.advertise_pg),
            Value::Int(0),
            Value::Int(db.started.elapsed().as_secs() as i64),
        ]],
        _ => return Err(Error::internal(format!("no system table {name}"))),
    })
}

pub fn state_name(state: Option<TaskState>) -> String {
    match state {
        None => "stopped".into(),
        Some(TaskState::Restoring) => "restoring".into(),
        Some(TaskState::Running) => "running".into(),
        Some(TaskState::Stopped) => "stopped".into(),
        Some(TaskState::Failed(reason)) => format!("failed: {reason}"),
    }
}
