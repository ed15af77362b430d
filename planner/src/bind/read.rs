//! `SELECT` over a view, a system table, or nothing: a [`ReadPlan`].

use super::scalar::{Binder, Mode};
use super::select::{bind_select, check_select};
use super::{from_relation, resolve_relation, single_select};
use crate::error::PlanError;
use crate::expr::{BinaryOp, Expr};
use crate::plan::{Catalog, ReadAggregate, ReadPlan, RelationKind, RelationRef};
use common::{Column, SqlType};
use sqlparser::ast::{self, LimitClause};

pub(crate) fn plan(
    query: &ast::Query,
    sql: &str,
    catalog: &dyn Catalog,
) -> Result<(ReadPlan, Vec<Option<SqlType>>), PlanError> {
    let select = single_select(query, None)?;
    check_select(select, None)?;
    if select.distinct.is_some() {
        return Err(PlanError::unsupported("SELECT DISTINCT", None)
            .with_hint("GROUP BY the selected columns instead."));
    }
    let (relation, info, qualifiers) = match from_relation(select, None)? {
        None => (RelationRef::Nothing, None, vec![]),
        Some((name, alias)) => {
            let (name, info) = resolve_relation(catalog, name, sql)?;
            let relation = match info.kind {
                RelationKind::View => RelationRef::View(name.clone()),
                RelationKind::System => RelationRef::System(name.clone()),
                RelationKind::Source => {
                    return Err(PlanError::WrongObjectType {
                        name,
                        found: "source",
                        expected: "materialized view",
                    })
                }
            };
            let mut qualifiers = vec![name.clone()];
            if let Some((_, short)) = name.split_once('.') {
                qualifiers.push(short.to_owned());
            }
            qualifiers.extend(alias);
            (relation, Some(info), qualifiers)
        }
    };
    let columns = info.as_ref().map(|i| i.columns.clone()).unwrap_or_default();
    let mut b = Binder::new(sql, columns, qualifiers);
    let bound = bind_select(&mut b, select, query.order_by.as_ref())?;

    let (limit, offset) = match &query.limit_clause {
        None => (None, None),
        Some(LimitClause::LimitOffset {
            limit,
            offset,
            limit_by,
        }) => {
            if !limit_by.is_empty() {
                return Err(PlanError::unsupported("LIMIT BY", None));
            }
            (limit.as_ref(), offset.as_ref().map(|o| &o.value))
        }
        Some(LimitClause::OffsetCommaLimit { offset, limit }) => (Some(limit), Some(offset)),
    };
    let mut count =
        |e: Option<&ast::Expr>, clause: &'static str| -> Result<Option<Expr>, PlanError> {
            let Some(e) = e else { return Ok(None) };
            // LIMIT sees no columns: bind against an empty row.
            let columns = std::mem::take(&mut b.columns);
            let bound = b.bind(e, Mode::Row(clause));
            b.columns = columns;
            let bound = b.expect_type(bound?, SqlType::BigInt, clause)?;
            Ok(match bound {
                // `LIMIT ALL` parses as NULL: no limit.
                Expr::Literal {
                    value: common::Value::Null,
                    ..
                } => None,
                e => Some(e),
            })
        };
    let limit = count(limit, "LIMIT")?;
    let offset = count(offset, "OFFSET")?;
    if query.fetch.is_some() {
        return Err(PlanError::unsupported("FETCH FIRST", None).with_hint("Use LIMIT n."));
    }

    let key_lookup = match (&info, &bound.filter) {
        (Some(info), Some(filter))
            if info.kind == RelationKind::View && !info.key_columns.is_empty() =>
        {
            key_lookup(filter, &info.key_columns, &info.columns)
        }
        _ => None,
    };
    let columns = bound
        .names
        .iter()
        .zip(&bound.projection)
        .map(|(n, e)| Column::new(n.clone(), e.ty()))
        .collect();
    let aggregate = bound.grouping.map(|g| ReadAggregate {
        group_by: g.keys,
        aggregates: g.calls,
        having: g.having,
    });
    let plan = ReadPlan {
        relation,
        relation_columns: info.as_ref().map(|i| i.columns.clone()).unwrap_or_default(),
        key_columns: info
            .as_ref()
            .map(|i| i.key_columns.clone())
            .unwrap_or_default(),
        key_lookup,
        filter: bound.filter,
        aggregate,
        projection: bound.projection,
        order_by: bound.order_by,
        limit,
        offset,
        columns,
    };
    Ok((plan, b.params))
}

/// The key of a lookup when `filter` is a conjunction pinning every key
/// column with `col = constant` (constants may use parameters). Each key
/// expression is cast to its column's type.
pub(crate) fn key_lookup(
    filter: &Expr,
    key_columns: &[usize],
    columns: &[Column],
) -> Option<Vec<Expr>> {
    let mut conjuncts = Vec::new();
    flatten_and(filter, &mut conjuncts);
    key_columns
        .iter()
        .map(|&k| {
            let ty = columns.get(k)?.ty;
            conjuncts.iter().find_map(|c| match c {
                Expr::Binary {
                    op: BinaryOp::Eq,
                    left,
                    right,
                    ..
                } => {
                    let value = match (&**left, &**right) {
                        (Expr::Column { index, .. }, v) | (v, Expr::Column { index, .. })
                            if *index == k && v.is_constant() =>
                        {
                            v
                        }
                        _ => return None,
                    };
                    Some(if value.ty() == ty {
                        value.clone()
                    } else {
                        Expr::Cast {
                            expr: Box::new(value.clone()),
                            ty,
                        }
                    })
                }
                _ => None,
            })
        })
        .collect()
}

fn flatten_and<'e>(e: &'e Expr, out: &mut Vec<&'e Expr>) {
    match e {
        Expr::Binary {
            op: BinaryOp::And,
            left,
            right,
            ..
        } => {
            flatten_and(left, out);
            flatten_and(right, out);
        }
        other => out.push(other),
    }
}
