//! `CREATE SOURCE name (col TYPE [PRIMARY KEY], ...) WITH (topic = .., format = .., start = ..)`.

use super::scalar::ident_name;
use super::types::{numeric_typmod, sql_type};
use super::{object_name, option_value};
use crate::error::PlanError;
use crate::plan::{Format, SourceDef, StartFrom};
use crate::statement::Statement;
use common::Column;
use sqlparser::ast::{ColumnOption, CreateTable, CreateTableOptions, SqlOption, TableConstraint};

/// Eddy's own topics (catalog, membership, repartition, changelogs) start
/// with this. They hold the cluster's internals, including the secret nodes
/// authenticate each other with, so no source may read them.
pub const INTERNAL_TOPIC_PREFIX: &str = "_eddy_";

const OPTIONS: &[&str] = &["topic", "format", "start"];
const CONTEXT: Option<&str> = Some("CREATE SOURCE");

pub(crate) fn plan(ct: &CreateTable) -> Result<Statement, PlanError> {
    if ct.if_not_exists || ct.or_replace {
        return Err(
            PlanError::unsupported("IF NOT EXISTS / OR REPLACE", CONTEXT)
                .with_hint("Check SHOW SOURCES, or DROP SOURCE first."),
        );
    }
    if ct.query.is_some() {
        return Err(PlanError::unsupported("CREATE SOURCE ... AS SELECT", None)
            .with_hint("Use CREATE MATERIALIZED VIEW for a query."));
    }
    let name = object_name(&ct.name)?;
    if name.contains('.') {
        return Err(PlanError::unsupported(
            "schema-qualified source names",
            None,
        ));
    }
    let mut columns: Vec<Column> = Vec::new();
    let mut primary_key = None;
    for def in &ct.columns {
        let col = ident_name(&def.name);
        if columns.iter().any(|c| c.name == col) {
            return Err(PlanError::Duplicate {
                what: "column",
                name: col,
            });
        }
        for opt in &def.options {
            match &opt.option {
                ColumnOption::PrimaryKey(_) => {
                    if primary_key.is_some() {
                        return Err(PlanError::MultiplePrimaryKeys { source_name: name });
                    }
                    primary_key = Some(columns.len());
                }
                ColumnOption::Null | ColumnOption::NotNull => {}
                other => {
                    return Err(PlanError::unsupported(
                        format!("the column option {other}"),
                        CONTEXT,
                    )
                    .with_hint(
                        "Sources take a name, a type and optionally PRIMARY KEY per column.",
                    ))
                }
            }
        }
        columns.push(Column {
            typmod: numeric_typmod(&def.data_type)?,
            ..Column::new(col, sql_type(&def.data_type)?)
        });
    }
    if columns.is_empty() {
        return Err(PlanError::Syntax {
            message: "a source needs at least one column".into(),
            position: None,
        });
    }
    for constraint in &ct.constraints {
        match constraint {
            TableConstraint::PrimaryKey(pk) => {
                let [col] = pk.columns.as_slice() else {
                    return Err(PlanError::unsupported("composite primary keys", CONTEXT)
                        .with_hint("Declare one key column; combine fields upstream if needed."));
                };
                let key = match &col.column.expr {
                    sqlparser::ast::Expr::Identifier(id) => ident_name(id),
                    other => {
                        return Err(PlanError::unsupported(
                            format!("the key expression {other}"),
                            CONTEXT,
                        ))
                    }
                };
                let index = columns.iter().position(|c| c.name == key).ok_or_else(|| {
                    PlanError::UnknownColumn {
                        name: key.clone(),
                        available: columns.iter().map(|c| c.name.clone()).collect(),
                        position: None,
                    }
                })?;
                if primary_key.replace(index).is_some() {
                    return Err(PlanError::MultiplePrimaryKeys { source_name: name });
                }
            }
            other => {
                return Err(PlanError::unsupported(
                    format!("the constraint {other}"),
                    CONTEXT,
                ))
            }
        }
    }

    let mut topic = name.clone();
    let mut format = Format::Json;
    let mut start = StartFrom::Earliest;
    let options: &[SqlOption] = match &ct.table_options {
        CreateTableOptions::None => &[],
        CreateTableOptions::With(opts) => opts,
        _ => {
            return Err(PlanError::unsupported(
                "table options other than WITH (...)",
                CONTEXT,
            ))
        }
    };
    for opt in options {
        let SqlOption::KeyValue { key, value } = opt else {
            return Err(PlanError::Syntax {
                message: format!("expected key = value in WITH, found {opt}"),
                position: None,
            });
        };
        let key = ident_name(key);
        let value = option_value(value);
        match key.as_str() {
            "topic" => topic = value,
            "format" => {
                format = match value.to_lowercase().as_str() {
                    "json" => Format::Json,
                    _ => {
                        return Err(PlanError::InvalidOptionValue {
                            option: key,
                            value,
                            expected: "'json'".into(),
                        })
                    }
                }
            }
            "start" => {
                start = match value.to_lowercase().as_str() {
                    "earliest" => StartFrom::Earliest,
                    "latest" => StartFrom::Latest,
                    _ => {
                        return Err(PlanError::InvalidOptionValue {
                            option: key,
                            value,
                            expected: "'earliest' or 'latest'".into(),
                        })
                    }
                }
            }
            _ => {
                return Err(PlanError::UnknownOption {
                    object: "source",
                    option: key,
                    accepted: OPTIONS,
                })
            }
        }
    }
    if topic.is_empty() {
        return Err(PlanError::InvalidOptionValue {
            option: "topic".into(),
            value: topic,
            expected: "a topic name".into(),
        });
    }
    if topic.starts_with(INTERNAL_TOPIC_PREFIX) {
        return Err(PlanError::InternalTopic { topic });
    }
    Ok(Statement::CreateSource(SourceDef {
        name,
        columns,
        primary_key,
        topic,
        format,
        start,
        owner: None,
    }))
}
