//! Running a [`ReadPlan`] over rows the server fetched (a key lookup's rows,
//! or every partition's rows gathered):
//! filter → aggregate → having → sort → offset/limit → projection.
//!
//! Pure: no I/O, no clock. The order stage is a stable sort, so rows equal on
//! every sort key keep the order they arrived in.

use crate::agg::GroupState;
use crate::error::EvalError;
use crate::eval::truth;
use crate::expr::Expr;
use crate::plan::{ReadAggregate, ReadPlan, RelationRef, SortKey};
use common::codec::encode_row;
use common::{Row, Value};
use std::cmp::Ordering;
use std::collections::HashMap;

/// Runs `plan` over the relation's `rows` (ignored for a read without FROM,
/// which sees one empty row).
pub fn execute(
    plan: &ReadPlan,
    rows: impl Iterator<Item = Row>,
    params: &[Value],
) -> Result<Vec<Row>, EvalError> {
    let input: Box<dyn Iterator<Item = Row>> = match plan.relation {
        RelationRef::Nothing => Box::new(std::iter::once(Vec::new())),
        _ => Box::new(rows),
    };
    let mut kept = Vec::new();
    for row in input {
        if let Some(f) = &plan.filter {
            if truth(&f.eval(&row, params)?)? != Some(true) {
                continue;
            }
        }
        kept.push(row);
    }
    let mut rows = match &plan.aggregate {
        Some(agg) => aggregate(agg, kept, params)?,
        None => kept,
    };
    if !plan.order_by.is_empty() {
        let mut keyed = rows
            .into_iter()
            .map(|r| {
                let keys = plan
                    .order_by
                    .iter()
                    .map(|k| k.expr.eval(&r, params))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok((keys, r))
            })
            .collect::<Result<Vec<_>, EvalError>>()?;
        keyed.sort_by(|a, b| compare_sort_keys(&plan.order_by, &a.0, &b.0));
        rows = keyed.into_iter().map(|(_, r)| r).collect();
    }
    let offset = row_count(plan.offset.as_ref(), params, "OFFSET")?.unwrap_or(0);
    let limit = row_count(plan.limit.as_ref(), params, "LIMIT")?.unwrap_or(usize::MAX);
    rows.into_iter()
        .skip(offset)
        .take(limit)
        .map(|r| plan.projection.iter().map(|e| e.eval(&r, params)).collect())
        .collect()
}

/// Evaluates a key lookup's expressions. `None` when a key value is NULL:
/// `key = NULL` matches no row, so there is nothing to look up.
pub fn key_values(key: &[Expr], params: &[Value]) -> Result<Option<Row>, EvalError> {
    let values = key
        .iter()
        .map(|e| e.eval(&[], params))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((!values.iter().any(Value::is_null)).then_some(values))
}

/// Groups `rows`, producing group rows (keys then aggregate values) that pass HAVING.
fn aggregate(agg: &ReadAggregate, rows: Vec<Row>, params: &[Value]) -> Result<Vec<Row>, EvalError> {
    let mut groups: Vec<(Row, GroupState)> = Vec::new();
    let mut index: HashMap<Vec<u8>, usize> = HashMap::new();
    for row in rows {
        let keys = agg
            .group_by
            .iter()
            .map(|e| e.eval(&row, params))
            .collect::<Result<Vec<_>, _>>()?;
        let slot = *index.entry(encode_row(&keys)).or_insert_with(|| {
            groups.push((keys, GroupState::append_only(&agg.aggregates)));
            groups.len() - 1
        });
        groups[slot].1.update(&agg.aggregates, &row, params, 1)?;
    }
    // Aggregates without GROUP BY yield one row even over no input (COUNT(*) = 0).
    if groups.is_empty() && agg.group_by.is_empty() {
        groups.push((Vec::new(), GroupState::append_only(&agg.aggregates)));
    }
    let mut out = Vec::with_capacity(groups.len());
    for (mut keys, state) in groups {
        keys.extend(state.finals(&agg.aggregates)?);
        if let Some(h) = &agg.having {
            if truth(&h.eval(&keys, params)?)? != Some(true) {
                continue;
            }
        }
        out.push(keys);
    }
    Ok(out)
}

/// Orders two rows' sort-key values: NULLs first or last as each key says,
/// other values by `Value::total_cmp`, reversed for DESC.
pub fn compare_sort_keys(keys: &[SortKey], a: &[Value], b: &[Value]) -> Ordering {
    for ((k, x), y) in keys.iter().zip(a).zip(b) {
        let o = match (x.is_null(), y.is_null()) {
            (true, true) => Ordering::Equal,
            (true, false) => {
                if k.nulls_first {
                    Ordering::Less
                } else {
                    Ordering::Greater
                }
            }
            (false, true) => {
                if k.nulls_first {
                    Ordering::Greater
                } else {
                    Ordering::Less
                }
            }
            (false, false) => {
                let o = x.total_cmp(y);
                if k.descending {
                    o.reverse()
                } else {
                    o
                }
            }
        };
        if o != Ordering::Equal {
            return o;
        }
    }
    Ordering::Equal
}

fn row_count(
    e: Option<&Expr>,
    params: &[Value],
    clause: &'static str,
) -> Result<Option<usize>, EvalError> {
    let Some(e) = e else { return Ok(None) };
    match e.eval(&[], params)? {
        Value::Null => Ok(None),
        Value::Int(n) if n < 0 => Err(EvalError::NegativeLimit { clause }),
        Value::Int(n) => Ok(Some(usize::try_from(n).unwrap_or(usize::MAX))),
        other => Err(EvalError::Kind {
            op: clause,
            found: other.kind(),
        }),
    }
}
