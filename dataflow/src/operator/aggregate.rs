//! GROUP BY: one accumulator set per group, keyed by the encoded group values.
//! Retractions (diff −1) undo an earlier insert exactly, MIN and MAX included;
//! a group whose row count falls to zero is deleted.

use common::codec::encode_key;
use common::Value;
use planner::agg::GroupState;
use planner::plan::AggregatePlan;

use super::{passes, Ctx, RecordError};
use crate::error::DataflowError;
use crate::state::BatchCache;
use storage::keys::Table;

pub struct Aggregate {
    plan: AggregatePlan,
    /// Whether the input can retract rows (an upsert source). If not, MIN and
    /// MAX keep one value instead of a multiset of every value seen.
    retractions: bool,
    pub(crate) cache: BatchCache<GroupState>,
}

impl Aggregate {
    pub fn new(plan: AggregatePlan, retractions: bool) -> Aggregate {
        Aggregate {
            plan,
            retractions,
            cache: BatchCache::new(Table::Output),
        }
    }

    fn group_key(&self, row: &[Value]) -> Result<Vec<Value>, RecordError> {
        self.plan
            .group_by
            .iter()
            .map(|e| e.eval(row, &[]))
            .collect()
    }

    /// The group of a row the filter keeps; `None` when the filter drops it.
    pub(crate) fn group_of(&self, row: &[Value]) -> Result<Option<Vec<Value>>, RecordError> {
        if !passes(self.plan.filter.as_ref(), row)? {
            return Ok(None);
        }
        self.group_key(row).map(Some)
    }

    pub(crate) fn check(&self, row: &[Value]) -> Result<(), RecordError> {
        if passes(self.plan.filter.as_ref(), row)? {
            self.group_key(row)?;
            GroupState::with_retractions(&self.plan.aggregates, self.retractions).update(
                &self.plan.aggregates,
                row,
                &[],
                1,
            )?;
        }
        Ok(())
    }

    pub(crate) fn apply(
        &mut self,
        ctx: &Ctx<'_>,
        row: &[Value],
        diff: i64,
    ) -> Result<Result<(), RecordError>, DataflowError> {
        match passes(self.plan.filter.as_ref(), row) {
            Ok(true) => {}
            Ok(false) => return Ok(Ok(())),
            Err(e) => return Ok(Err(e)),
        }
        let group = match self.group_key(row) {
            Ok(g) => g,
            Err(e) => return Ok(Err(e)),
        };
        let slot = self
            .cache
            .entry(ctx.store, ctx.view, ctx.partitions, encode_key(&group))?;
        let mut state = slot.take().unwrap_or_else(|| {
            GroupState::with_retractions(&self.plan.aggregates, self.retractions)
        });
        let result = state.update(&self.plan.aggregates, row, &[], diff);
        if result.is_err() && diff > 0 && self.retractions {
            // Upstream recorded the row (an upsert's latest value) and will
            // retract it: that retraction must find it refused, not counted.
            state.reject(row);
        }
        *slot = (!state.is_empty()).then_some(state);
        Ok(result)
    }
}
