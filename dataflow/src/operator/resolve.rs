//! Resolve: the first stage of a GROUP BY over an upsert source.
//!
//! Keeps the latest row per primary key (partitioned by that key) and turns
//! each upsert into a retraction of the old row and an insertion of the new
//! one, each routed by its own GROUP BY key to the aggregating stage. A
//! change of group thus moves a row from one group (and node) to another.

use common::codec::encode_key;
use common::{Row, ViewId};
use planner::plan::AggregatePlan;
use storage::keys::Table;
use storage::StateStore;

use super::aggregate::Aggregate;
use super::route::Routed;
use crate::envelope::Kind;
use crate::error::DataflowError;
use crate::state::{BatchCache, RowChange};

pub struct Resolve {
    view: ViewId,
    partitions: u32,
    groups: Aggregate,
    latest: BatchCache<Row>,
}

impl Resolve {
    pub fn new(view: ViewId, partitions: u32, plan: AggregatePlan) -> Resolve {
        Resolve {
            view,
            partitions,
            groups: Aggregate::new(plan, true),
            latest: BatchCache::new(Table::UpsertInput),
        }
    }

    /// Sets the row of `key` (an encoded primary key); returns what the
    /// aggregating stage must apply, retraction first.
    pub fn apply(
        &mut self,
        store: &StateStore,
        key: Vec<u8>,
        row: Option<Row>,
    ) -> Result<Vec<Routed>, DataflowError> {
        let slot = self.latest.entry(store, self.view, self.partitions, key)?;
        let old = std::mem::replace(slot, row.clone());
        let mut out = Vec::with_capacity(2);
        for (kind, row) in [(Kind::Retract, old), (Kind::Insert, row)] {
            let Some(row) = row else { continue };
            // Rows were checked when they were routed: a failure here is a bug.
            let group = self
                .groups
                .group_of(&row)
                .map_err(|source| DataflowError::Eval {
                    view: self.view.to_string(),
                    source,
                })?;
            if let Some(group) = group {
                out.push(Routed {
                    key: encode_key(&group),
                    kind,
                    row: Some(row),
                });
            }
        }
        Ok(out)
    }

    pub fn drain_into(&mut self, out: &mut Vec<RowChange>) {
        self.latest.drain_into(out);
    }
}
