//! Views without aggregation: one output row per input key (the primary key
//! of an upsert source, or the record's position in an append-only one).

use common::{Row, Value};
use planner::plan::ProjectPlan;

use super::{passes, Ctx, RecordError};
use crate::error::DataflowError;
use crate::state::BatchCache;
use storage::keys::Table;

pub struct Project {
    plan: ProjectPlan,
    pub(crate) cache: BatchCache<Row>,
}

impl Project {
    pub fn new(plan: ProjectPlan) -> Project {
        Project {
            plan,
            cache: BatchCache::new(Table::Output),
        }
    }

    pub(crate) fn project(&self, row: &[Value]) -> Result<Option<Row>, RecordError> {
        if !passes(self.plan.filter.as_ref(), row)? {
            return Ok(None);
        }
        self.plan
            .output
            .iter()
            .map(|e| e.eval(row, &[]))
            .collect::<Result<Row, _>>()
            .map(Some)
    }

    pub(crate) fn check(&self, row: &[Value]) -> Result<(), RecordError> {
        self.project(row).map(|_| ())
    }

    pub(crate) fn apply(
        &mut self,
        ctx: &Ctx<'_>,
        key: &[u8],
        row: &[Value],
        diff: i64,
    ) -> Result<Result<(), RecordError>, DataflowError> {
        let out = match self.project(row) {
            Ok(out) => out,
            Err(e) => return Ok(Err(e)),
        };
        let slot = self
            .cache
            .entry(ctx.store, ctx.view, ctx.partitions, key.to_vec())?;
        if diff > 0 {
            if out.is_some() {
                *slot = out;
            }
        } else if out.is_some() {
            *slot = None;
        }
        Ok(Ok(()))
    }
}
