//! System tables under `eddy_catalog`: what the node knows about itself,
//! readable with plain SELECT (and so with WHERE, ORDER BY, aggregates).

use common::{Column, Row, SqlType, Value};
use dataflow::TaskState;
use std::time::Duration;

use crate::error::Error;
use crate::handler::{select, Database};
use crate::query::convert;
use futures::TryStreamExt;

/// How long another node may take to send its bad records.
const ERRORS_TIMEOUT: Duration = Duration::from_secs(10);

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
            ("internal_address", Text),
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

/// The rows of system table `name`.
pub async fn rows(db: &Database, name: &str) -> Result<Vec<Row>, Error> {
    match name {
        SOURCE_ERRORS => source_errors(db).await,
        NODES => Ok(nodes(db)),
        _ => tokio::task::block_in_place(|| local_rows(db, name)),
    }
}

/// Every live node's bad records (each node records those it read), by
/// source, partition and offset; a record two nodes saw counts once.
async fn source_errors(db: &Database) -> Result<Vec<Row>, Error> {
    let mut rows: Vec<Row> =
        tokio::task::block_in_place(|| crate::cluster::internal::serve_errors(db))?;
    let others: Vec<_> = db
        .cluster
        .membership
        .live()
        .into_values()
        .filter(|b| b.node != db.config.node_id)
        .collect();
    let request = crate::cluster::internal::Request::Errors;
    let asks = others.iter().map(|b| async {
        let batches = match select::open(db, &b.node, &b.internal, &request, ERRORS_TIMEOUT).await?
        {
            Ok(batches) => batches,
            Err(why) => return Err(Error::internal(why)),
        };
        let mut rows = Vec::new();
        let batches: Vec<_> = batches.try_collect().await?;
        for batch in &batches {
            convert::rows(batch, &mut rows).map_err(Error::internal)?;
        }
        Ok(rows)
    });
    for (beat, answer) in others.iter().zip(futures::future::join_all(asks).await) {
        match answer {
            Ok(theirs) => rows.extend(theirs),
            Err(e) => {
                tracing::warn!(node = %beat.node, error = %e, "could not collect bad records")
            }
        }
    }
    let position = |r: &Row| match (&r[0], &r[1], &r[2]) {
        (Value::Text(s), Value::Int(p), Value::Int(o)) => (s.clone(), *p, *o),
        _ => (String::new(), 0, 0),
    };
    rows.sort_by_key(position);
    rows.dedup_by(|a, b| position(a) == position(b));
    Ok(rows)
}

/// Live nodes, this one included.
fn nodes(db: &Database) -> Vec<Row> {
    let now = dataflow::status::now_ms();
    db.cluster
        .membership
        .live()
        .into_values()
        .map(|b| {
            let me = b.node == db.config.node_id;
            vec![
                text(&b.node),
                text(&b.pg),
                text(&b.internal),
                Value::Int(if me { 0 } else { (now - b.sent_ms).max(0) }),
                Value::Int(((now - b.started_ms) / 1000).max(0)),
            ]
        })
        .collect()
}

fn local_rows(db: &Database, name: &str) -> Result<Vec<Row>, Error> {
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
        VIEWS => {
            let counts = crate::cluster::Cluster::view_counts(db);
            catalog
                .views
                .values()
                .map(|v| {
                    let status = db.dataflow.status(v.id);
                    let (records, skipped) = counts.get(&v.id.0).copied().unwrap_or_default();
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
                        Value::Int(records as i64),
                        Value::Int(skipped as i64),
                        text(&v.def.sql),
                    ]
                })
                .collect()
        }
        REPLICAS => crate::handler::replica_rows(db, &catalog)?,
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
