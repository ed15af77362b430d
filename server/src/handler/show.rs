//! `SHOW SOURCES` and `SHOW MATERIALIZED VIEWS`.

use common::{Column, SqlType, Value};

use super::Database;
use crate::error::Error;
use crate::session::Outcome;

pub fn source_columns() -> Vec<Column> {
    vec![
        Column::new("name", SqlType::Text),
        Column::new("topic", SqlType::Text),
        Column::new("kind", SqlType::Text),
    ]
}

pub fn view_columns() -> Vec<Column> {
    vec![
        Column::new("name", SqlType::Text),
        Column::new("source", SqlType::Text),
        Column::new("partitions", SqlType::Integer),
    ]
}

pub fn sources(db: &Database) -> Result<Outcome, Error> {
    let catalog = db.catalog.read();
    let rows = catalog
        .sources
        .values()
        .map(|s| {
            let kind = if s.primary_key.is_some() {
                "upsert"
            } else {
                "append-only"
            };
            vec![
                Value::Text(s.name.clone()),
                Value::Text(s.topic.clone()),
                Value::Text(kind.into()),
            ]
        })
        .collect();
    Ok(Outcome::Rows {
        columns: source_columns(),
        rows,
    })
}

pub fn views(db: &Database) -> Result<Outcome, Error> {
    let catalog = db.catalog.read();
    let rows = catalog
        .views
        .values()
        .map(|v| {
            vec![
                Value::Text(v.def.name.clone()),
                Value::Text(v.def.source.clone()),
                Value::Int(i64::from(v.def.partitions)),
            ]
        })
        .collect();
    Ok(Outcome::Rows {
        columns: view_columns(),
        rows,
    })
}
