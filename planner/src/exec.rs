//! Running a [`ReadPlan`] over a relation's rows as they arrive (a key
//! lookup's row, a partition's batches, a system table's rows):
//! filter → aggregate → having → sort → offset/limit → projection.
//!
//! An [`Execution`] takes rows one at a time. A plan without aggregates or
//! ORDER BY passes each row on as it arrives and stops wanting rows at its
//! LIMIT, so a read sends its first rows before its last are fetched and
//! holds none of them. A sorted read holds its rows until the last one came
//! — only the first OFFSET + LIMIT of them when it has a LIMIT — and an
//! aggregate holds one state per group.
//!
//! Pure: no I/O, no clock. The order stage is a stable sort, so rows equal on
//! every sort key keep the order they arrived in.

use crate::agg::GroupState;
use crate::error::EvalError;
use crate::eval::truth;
use crate::expr::Expr;
use crate::plan::{ReadAggregate, ReadPlan, RelationRef, SortKey};
use common::codec::encode_key;
use common::{Column, Row, SqlType, Value};
use std::cmp::Ordering;
use std::collections::hash_map::Entry;
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
    let mut run = Execution::new(plan, params)?;
    let mut out = run.push_all(input)?;
    out.extend(run.finish()?);
    Ok(out)
}

/// Which part of an aggregate read an execution runs. A read over several
/// replicas aggregates on each replica ([`Phase::Partial`]: its rows in,
/// one partial state per group out) and merges those on the reader
/// ([`Phase::Merge`]), so each group travels once per replica instead of
/// every row; the answer is the one [`Phase::Whole`] gives over all rows.
/// A read without aggregates runs whole in every phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Whole,
    Partial,
    Merge,
}

/// The columns of a [`Phase::Partial`] execution's rows: the group keys,
/// then the group's state (opaque text).
pub fn partial_columns(plan: &ReadPlan) -> Option<Vec<Column>> {
    let agg = plan.aggregate.as_ref()?;
    let mut columns: Vec<Column> = agg
        .group_by
        .iter()
        .enumerate()
        .map(|(i, e)| Column::new(format!("key{i}"), e.ty()))
        .collect();
    columns.push(Column::new("state", SqlType::Text));
    Some(columns)
}

/// One read plan running over rows pushed to it.
pub struct Execution<'a> {
    plan: &'a ReadPlan,
    params: &'a [Value],
    phase: Phase,
    held: Held<'a>,
    /// Rows still to skip (OFFSET).
    skip: usize,
    /// Rows still to send (LIMIT).
    left: usize,
}

/// What an execution holds until its input ends.
enum Held<'a> {
    /// Nothing: each row goes on as it comes.
    Nothing,
    /// Rows to sort, with their sort keys, in the order they came (the
    /// first ones sorted already when the rows were last pruned to `keep`).
    Sorted {
        rows: Vec<(Vec<Value>, Row)>,
        /// How many of the sorted rows can reach the output.
        keep: Option<usize>,
    },
    /// Aggregate state per group, in the order groups first appeared.
    Groups {
        agg: &'a ReadAggregate,
        groups: Vec<(Row, GroupState)>,
        index: HashMap<Vec<u8>, usize>,
    },
}

/// A sorted read with a LIMIT sorts and drops what cannot reach the output
/// once it holds this many times its OFFSET + LIMIT rows (and at least
/// [`PRUNE_MIN`]).
const PRUNE_FACTOR: usize = 2;
const PRUNE_MIN: usize = 1024;

impl<'a> Execution<'a> {
    pub fn new(plan: &'a ReadPlan, params: &'a [Value]) -> Result<Execution<'a>, EvalError> {
        Execution::phase(plan, params, Phase::Whole)
    }

    /// An execution of `phase` of `plan` (see [`Phase`]).
    pub fn phase(
        plan: &'a ReadPlan,
        params: &'a [Value],
        phase: Phase,
    ) -> Result<Execution<'a>, EvalError> {
        let phase = if plan.aggregate.is_some() {
            phase
        } else {
            Phase::Whole
        };
        let skip = row_count(plan.offset.as_ref(), params, "OFFSET")?.unwrap_or(0);
        let left = row_count(plan.limit.as_ref(), params, "LIMIT")?.unwrap_or(usize::MAX);
        let held = if let Some(agg) = &plan.aggregate {
            Held::Groups {
                agg,
                groups: Vec::new(),
                index: HashMap::new(),
            }
        } else if !plan.order_by.is_empty() {
            Held::Sorted {
                rows: Vec::new(),
                keep: (left != usize::MAX).then(|| skip.saturating_add(left)),
            }
        } else {
            Held::Nothing
        };
        Ok(Execution {
            plan,
            params,
            phase,
            held,
            skip,
            left,
        })
    }

    /// Whether no further row can change the answer (the LIMIT is reached
    /// by rows already sent): the reader may stop fetching.
    pub fn is_done(&self) -> bool {
        self.left == 0 && matches!(self.held, Held::Nothing)
    }

    /// Takes one row of the relation; the output row it makes now, if any
    /// (only a read that holds nothing answers before its input ends).
    pub fn push(&mut self, row: Row) -> Result<Option<Row>, EvalError> {
        let (plan, params) = (self.plan, self.params);
        if self.phase == Phase::Merge {
            return self.merge(row).map(|()| None);
        }
        if let Some(f) = &plan.filter {
            if truth(&f.eval(&row, params)?)? != Some(true) {
                return Ok(None);
            }
        }
        match &mut self.held {
            Held::Nothing => self.output(row),
            Held::Sorted { rows, keep } => {
                let keys = sort_keys(&plan.order_by, &row, params)?;
                rows.push((keys, row));
                if let Some(keep) = *keep {
                    if rows.len() >= keep.saturating_mul(PRUNE_FACTOR).max(PRUNE_MIN) {
                        sort(&plan.order_by, rows);
                        rows.truncate(keep);
                    }
                }
                Ok(None)
            }
            Held::Groups { agg, groups, index } => {
                let keys = agg
                    .group_by
                    .iter()
                    .map(|e| e.eval(&row, params))
                    .collect::<Result<Vec<_>, _>>()?;
                let slot = *index.entry(encode_key(&keys)).or_insert_with(|| {
                    groups.push((keys, GroupState::append_only(&agg.aggregates)));
                    groups.len() - 1
                });
                groups[slot].1.update(&agg.aggregates, &row, params, 1)?;
                Ok(None)
            }
        }
    }

    /// Takes `rows` in order until no further row can change the answer;
    /// the output rows they make now.
    pub fn push_all(&mut self, rows: impl IntoIterator<Item = Row>) -> Result<Vec<Row>, EvalError> {
        let mut out = Vec::new();
        for row in rows {
            if self.is_done() {
                break;
            }
            out.extend(self.push(row)?);
        }
        Ok(out)
    }

    /// Takes one partial row: group keys, then the group's state.
    fn merge(&mut self, mut row: Row) -> Result<(), EvalError> {
        let Held::Groups { agg, groups, index } = &mut self.held else {
            return Ok(());
        };
        let bad = || EvalError::Kind {
            op: "merging aggregate states",
            found: "a row that is no partial state",
        };
        let state = match row.pop() {
            Some(Value::Text(hex)) => common::hex::decode(&hex)
                .and_then(|bytes| GroupState::decode(&bytes).ok())
                .ok_or_else(bad)?,
            _ => return Err(bad()),
        };
        if row.len() != agg.group_by.len() {
            return Err(bad());
        }
        match index.entry(encode_key(&row)) {
            Entry::Occupied(slot) => groups[*slot.get()].1.merge(&agg.aggregates, state)?,
            Entry::Vacant(slot) => {
                slot.insert(groups.len());
                groups.push((row, state));
            }
        }
        Ok(())
    }

    /// The input ended: the output rows held until now.
    pub fn finish(mut self) -> Result<Vec<Row>, EvalError> {
        let (plan, params) = (self.plan, self.params);
        let rows = match std::mem::replace(&mut self.held, Held::Nothing) {
            Held::Nothing => return Ok(Vec::new()),
            Held::Groups { groups, .. } if self.phase == Phase::Partial => {
                return Ok(groups
                    .into_iter()
                    .map(|(mut keys, state)| {
                        keys.push(Value::Text(common::hex::encode(&state.encode())));
                        keys
                    })
                    .collect())
            }
            Held::Sorted { rows, .. } => sorted(&plan.order_by, rows),
            Held::Groups { agg, groups, .. } => {
                let rows = finals(agg, groups, params)?;
                if plan.order_by.is_empty() {
                    rows
                } else {
                    let keyed = rows
                        .into_iter()
                        .map(|r| Ok((sort_keys(&plan.order_by, &r, params)?, r)))
                        .collect::<Result<Vec<_>, EvalError>>()?;
                    sorted(&plan.order_by, keyed)
                }
            }
        };
        let mut out = Vec::new();
        for row in rows {
            if self.left == 0 {
                break;
            }
            out.extend(self.output(row)?);
        }
        Ok(out)
    }

    /// Applies OFFSET, LIMIT and the select list to the next row in order.
    fn output(&mut self, row: Row) -> Result<Option<Row>, EvalError> {
        if self.skip > 0 {
            self.skip -= 1;
            return Ok(None);
        }
        if self.left == 0 {
            return Ok(None);
        }
        self.left -= 1;
        let params = self.params;
        Ok(Some(
            self.plan
                .projection
                .iter()
                .map(|e| e.eval(&row, params))
                .collect::<Result<_, _>>()?,
        ))
    }
}

fn sort_keys(keys: &[SortKey], row: &[Value], params: &[Value]) -> Result<Vec<Value>, EvalError> {
    keys.iter().map(|k| k.expr.eval(row, params)).collect()
}

/// A stable sort of keyed rows by their keys.
fn sort(keys: &[SortKey], rows: &mut [(Vec<Value>, Row)]) {
    rows.sort_by(|a, b| compare_sort_keys(keys, &a.0, &b.0));
}

/// The rows of `keyed`, sorted by their keys.
fn sorted(keys: &[SortKey], mut keyed: Vec<(Vec<Value>, Row)>) -> Vec<Row> {
    sort(keys, &mut keyed);
    keyed.into_iter().map(|(_, r)| r).collect()
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

/// The group rows (keys then aggregate values) that pass HAVING.
fn finals(
    agg: &ReadAggregate,
    mut groups: Vec<(Row, GroupState)>,
    params: &[Value],
) -> Result<Vec<Row>, EvalError> {
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
