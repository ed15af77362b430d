//! Reading a view's rows out of its state: the last step before the router.
//!
//! State holds accumulators (GROUP BY) or projected rows; a read turns each
//! into the view's output row, applying HAVING.

use common::codec::decode_row;
use common::{PartitionId, Row, Value, ViewId};
use planner::agg::GroupState;
use planner::plan::{ViewDef, ViewPlan};
use planner::Expr;
use std::ops::ControlFlow;
use storage::keys::Table;
use storage::StateStore;

use crate::error::DataflowError;

fn corrupt(def: &ViewDef, reason: impl ToString) -> DataflowError {
    DataflowError::CorruptState {
        view: def.name.clone(),
        reason: reason.to_string(),
    }
}

/// The output row of one stored row; `None` when HAVING drops it.
fn finalize(def: &ViewDef, key: &[u8], value: &[u8]) -> Result<Option<Row>, DataflowError> {
    match &def.plan {
        ViewPlan::Project(_) => decode_row(value).map(Some).map_err(|e| corrupt(def, e)),
        ViewPlan::Aggregate(plan) => {
            let mut group = decode_row(key).map_err(|e| corrupt(def, e))?;
            let state = GroupState::decode(value).map_err(|e| corrupt(def, e))?;
            // A group kept only for rows whose insert was refused has no rows.
            if state.rows() == 0 && !plan.group_by.is_empty() {
                return Ok(None);
            }
            group.extend(
                state
                    .finals(&plan.aggregates)
                    .map_err(|source| DataflowError::Eval {
                        view: def.name.clone(),
                        source,
                    })?,
            );
            output_row(def, plan.having.as_ref(), &plan.output, &group)
        }
    }
}

fn output_row(
    def: &ViewDef,
    having: Option<&Expr>,
    output: &[Expr],
    group: &[Value],
) -> Result<Option<Row>, DataflowError> {
    let eval = |e: &Expr| {
        e.eval(group, &[]).map_err(|source| DataflowError::Eval {
            view: def.name.clone(),
            source,
        })
    };
    if let Some(h) = having {
        if !matches!(eval(h)?, Value::Bool(true)) {
            return Ok(None);
        }
    }
    output
        .iter()
        .map(eval)
        .collect::<Result<Row, _>>()
        .map(Some)
}

/// Calls `f` with every row of the given partitions of the view, until
/// `f` breaks.
pub fn scan(
    store: &StateStore,
    id: ViewId,
    def: &ViewDef,
    partitions: &[PartitionId],
    mut f: impl FnMut(Row) -> ControlFlow<()>,
) -> Result<(), DataflowError> {
    /// Why a partition's scan ended early.
    enum Stop {
        Broke,
        Failed(DataflowError),
    }
    impl From<storage::StorageError> for Stop {
        fn from(e: storage::StorageError) -> Stop {
            Stop::Failed(e.into())
        }
    }
    for &p in partitions {
        let mut any = false;
        let scanned = store.scan::<Stop>(id, p, Table::Output, |k, v| {
            any = true;
            match finalize(def, k, v).map_err(Stop::Failed)?.map(&mut f) {
                Some(ControlFlow::Break(())) => Err(Stop::Broke),
                _ => Ok(()),
            }
        });
        match scanned {
            Ok(()) => {}
            Err(Stop::Broke) => return Ok(()),
            Err(Stop::Failed(e)) => return Err(e),
        }
        // A global aggregate keeps its one group in one partition.
        if !any && p == PartitionId::for_key(&crate::task::key_bytes(&[]), def.partitions) {
            if let Some(row) = empty_global_aggregate(def)? {
                if f(row).is_break() {
                    return Ok(());
                }
            }
        }
    }
    Ok(())
}

/// A global aggregate (no GROUP BY) over no rows still has one row, as in
/// Postgres: `COUNT(*)` is 0 and the others are NULL.
fn empty_global_aggregate(def: &ViewDef) -> Result<Option<Row>, DataflowError> {
    match &def.plan {
        ViewPlan::Aggregate(plan) if plan.group_by.is_empty() => {
            let finals = GroupState::new(&plan.aggregates)
                .finals(&plan.aggregates)
                .map_err(|source| DataflowError::Eval {
                    view: def.name.clone(),
                    source,
                })?;
            output_row(def, plan.having.as_ref(), &plan.output, &finals)
        }
        _ => Ok(None),
    }
}

/// The partition and encoded state key holding the row whose key columns
/// (`def.key_columns`, in order) equal `key`; `None` when the view has no
/// usable key.
pub fn locate(def: &ViewDef, key: &[Value]) -> Option<(PartitionId, Vec<u8>)> {
    if def.key_columns.is_empty() || key.len() != def.key_columns.len() {
        return None;
    }
    let state_key = match &def.plan {
        ViewPlan::Aggregate(plan) => {
            let mut group = vec![Value::Null; plan.group_by.len()];
            for (value, &col) in key.iter().zip(&def.key_columns) {
                let Expr::Column { index, .. } = plan.output.get(col)? else {
                    return None;
                };
                *group.get_mut(*index)? = value.cast(plan.group_by[*index].ty()).ok()?;
            }
            crate::task::key_bytes(&group)
        }
        ViewPlan::Project(_) => {
            let pk_type = def.columns[def.key_columns[0]].ty;
            crate::task::key_bytes(&[key[0].cast(pk_type).ok()?])
        }
    };
    Some((PartitionId::for_key(&state_key, def.partitions), state_key))
}

/// The row with key `key`, read with one RocksDB get.
pub fn lookup(
    store: &StateStore,
    id: ViewId,
    def: &ViewDef,
    key: &[Value],
) -> Result<Option<Row>, DataflowError> {
    if key.iter().any(Value::is_null) {
        return Ok(None); // `= NULL` matches nothing
    }
    let Some((partition, state_key)) = locate(def, key) else {
        return Ok(None);
    };
    match store.get(id, partition, Table::Output, &state_key)? {
        Some(v) => finalize(def, &state_key, &v),
        None => Ok(None),
    }
}
