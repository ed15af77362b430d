//! `CREATE MATERIALIZED VIEW name [WITH (partitions = N, standbys = K)] AS SELECT ...`.
//!
//! A view reads exactly one source. With GROUP BY (or aggregates) it becomes
//! a [`ViewPlan::Aggregate`] keyed by the group; otherwise a
//! [`ViewPlan::Project`] keyed by the source's primary key (upsert source) or
//! by record offset (append-only source, key hidden).

use super::scalar::{ident_name, Binder};
use super::select::{bind_select, check_select};
use super::{
    from_relation, object_name, option_value, resolve_relation, single_select, statement_text,
};
use crate::error::PlanError;
use crate::expr::Expr;
use crate::plan::{AggregatePlan, Catalog, ProjectPlan, RelationKind, ViewDef, ViewPlan};
use crate::statement::{Defaults, Statement};
use common::Column;
use sqlparser::ast::{CreateTableOptions, CreateView, SqlOption};

const OPTIONS: &[&str] = &["partitions", "standbys"];
const CONTEXT: Option<&str> = Some("materialized views");

pub(crate) fn plan(
    cv: &CreateView,
    sql: &str,
    catalog: &dyn Catalog,
    defaults: &Defaults,
) -> Result<Statement, PlanError> {
    if !cv.materialized {
        return Err(PlanError::unsupported("CREATE VIEW", None)
            .with_hint("Eddy maintains views incrementally: use CREATE MATERIALIZED VIEW."));
    }
    if cv.or_replace || cv.or_alter || cv.if_not_exists {
        return Err(
            PlanError::unsupported("OR REPLACE / IF NOT EXISTS", CONTEXT)
                .with_hint("Check SHOW MATERIALIZED VIEWS, or DROP MATERIALIZED VIEW first."),
        );
    }
    let name = object_name(&cv.name)?;
    if name.contains('.') {
        return Err(PlanError::unsupported("schema-qualified view names", None));
    }
    let (partitions, standbys) = options(&cv.options, defaults)?;

    let query = &cv.query;
    if query.order_by.is_some() || query.limit_clause.is_some() {
        return Err(PlanError::unsupported_plural("ORDER BY and LIMIT", CONTEXT)
            .with_hint("A view is a set of rows; sort and limit when reading it: SELECT ... FROM view ORDER BY ... LIMIT n."));
    }
    let select = single_select(query, CONTEXT)?;
    check_select(select, CONTEXT)?;
    if select.distinct.is_some() {
        return Err(
            PlanError::unsupported("DISTINCT", CONTEXT).with_hint("GROUP BY the columns instead.")
        );
    }
    let Some((rel, alias)) = from_relation(select, CONTEXT)? else {
        return Err(PlanError::unsupported("a view without FROM", CONTEXT)
            .with_hint("Select FROM a source."));
    };
    let (source_name, info) = resolve_relation(catalog, rel, sql)?;
    let source = match info.kind {
        RelationKind::Source => catalog.source(&source_name),
        RelationKind::View => {
            return Err(
                PlanError::unsupported_plural("views over materialized views", None)
                    .with_hint("Select FROM the source the other view reads."),
            )
        }
        RelationKind::System => {
            return Err(PlanError::unsupported_plural(
                "views over system tables",
                None,
            ))
        }
    };
    let primary_key = source
        .as_ref()
        .map_or_else(|| info.key_columns.first().copied(), |s| s.primary_key);

    let mut qualifiers = vec![source_name.clone()];
    qualifiers.extend(alias);
    let mut b = Binder::new(sql, info.columns.clone(), qualifiers);
    b.params_allowed = false;
    let bound = bind_select(&mut b, select, None)?;

    let mut names = bound.names;
    if !cv.columns.is_empty() {
        if cv.columns.len() > names.len() {
            return Err(PlanError::Syntax {
                message: "CREATE MATERIALIZED VIEW specifies more column names than columns".into(),
                position: None,
            });
        }
        for (n, c) in names.iter_mut().zip(&cv.columns) {
            *n = ident_name(&c.name);
        }
    }
    let mut columns: Vec<Column> = Vec::new();
    for (n, e) in names.into_iter().zip(&bound.projection) {
        if columns.iter().any(|c| c.name == n) {
            return Err(PlanError::Duplicate {
                what: "column",
                name: n,
            });
        }
        columns.push(Column::new(n, e.ty()));
    }

    let position_of = |target: &Expr| bound.projection.iter().position(|e| e == target);
    let (plan, key_columns) = match bound.grouping {
        Some(g) => {
            let keys: Option<Vec<usize>> = g
                .keys
                .iter()
                .enumerate()
                .map(|(i, k)| position_of(&Expr::column(i, k.ty())))
                .collect();
            let plan = AggregatePlan {
                filter: bound.filter,
                group_by: g.keys,
                aggregates: g.calls,
                having: g.having,
                output: bound.projection.clone(),
            };
            (ViewPlan::Aggregate(plan), keys.unwrap_or_default())
        }
        None => {
            let key =
                primary_key.and_then(|pk| position_of(&Expr::column(pk, info.columns[pk].ty)));
            let plan = ProjectPlan {
                filter: bound.filter,
                output: bound.projection.clone(),
            };
            (ViewPlan::Project(plan), key.into_iter().collect())
        }
    };

    let text =
        statement_text(sql, select.select_token.0.span.start).unwrap_or_else(|| query.to_string());
    Ok(Statement::CreateView(ViewDef {
        name,
        sql: text,
        source: source_name,
        partitions,
        standbys,
        columns,
        key_columns,
        plan,
        owner: None,
    }))
}

fn options(options: &CreateTableOptions, defaults: &Defaults) -> Result<(u32, u32), PlanError> {
    let (mut partitions, mut standbys) = (defaults.partitions, defaults.standbys);
    let list: &[SqlOption] = match options {
        CreateTableOptions::None => &[],
        CreateTableOptions::With(opts) => opts,
        _ => {
            return Err(PlanError::unsupported(
                "view options other than WITH (...)",
                None,
            ))
        }
    };
    for opt in list {
        let SqlOption::KeyValue { key, value } = opt else {
            return Err(PlanError::Syntax {
                message: format!("expected key = value in WITH, found {opt}"),
                position: None,
            });
        };
        let key = ident_name(key);
        let raw = option_value(value);
        let (slot, min, max, expected) = match key.as_str() {
            "partitions" => (&mut partitions, 1, 1024, "an integer from 1 to 1024"),
            "standbys" => (&mut standbys, 0, 16, "an integer from 0 to 16"),
            _ => {
                return Err(PlanError::UnknownOption {
                    object: "materialized view",
                    option: key,
                    accepted: OPTIONS,
                })
            }
        };
        *slot = raw
            .parse::<u32>()
            .ok()
            .filter(|n| (min..=max).contains(n))
            .ok_or(PlanError::InvalidOptionValue {
                option: key,
                value: raw,
                expected: expected.into(),
            })?;
    }
    Ok((partitions, standbys))
}
