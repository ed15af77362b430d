//! Operators: a decoded source record → changes to a view's state.
//!
//! One file per operator: [`route`] (which partition a source record goes
//! to), [`aggregate`] (GROUP BY), [`project`] (views without aggregation) and
//! [`resolve`] (latest row per key before a GROUP BY over an upsert source).
//! For a projection of an upsert source the latest row per primary key is
//! kept here, so an update or delete first retracts the old row.

pub mod aggregate;
pub mod project;
pub mod resolve;
pub mod route;

use common::codec::encode_key;
use common::{Row, Value, ViewId};
use planner::plan::{SourceDef, ViewDef, ViewPlan};
use storage::keys::Table;
use storage::StateStore;

use crate::error::DataflowError;
use crate::state::{BatchCache, RowChange};

/// A record as operators see it.
pub struct SourceRecord {
    pub partition: i32,
    pub offset: i64,
    /// Primary key of an upsert source's record.
    pub key: Option<Value>,
    /// The decoded row; `None` deletes the key of an upsert source.
    pub row: Option<Row>,
}

/// Why one record was skipped by an operator (an expression failed on it).
pub type RecordError = planner::EvalError;

pub struct Operators {
    view: ViewId,
    partitions: u32,
    upsert_input: Option<BatchCache<Row>>,
    kind: Kind,
}

enum Kind {
    Aggregate(aggregate::Aggregate),
    Project(project::Project),
}

impl Operators {
    /// The operators of a view's `View` stage. Over an upsert source a GROUP
    /// BY receives retractions from `Resolve` and keeps no input table.
    pub fn new(view: ViewId, def: &ViewDef, source: &SourceDef) -> Operators {
        let upsert = source.primary_key.is_some();
        let kind = match &def.plan {
            ViewPlan::Aggregate(plan) => {
                Kind::Aggregate(aggregate::Aggregate::new(plan.clone(), upsert))
            }
            ViewPlan::Project(plan) => Kind::Project(project::Project::new(plan.clone())),
        };
        Operators {
            view,
            partitions: def.partitions,
            upsert_input: (upsert && matches!(def.plan, ViewPlan::Project(_)))
                .then(|| BatchCache::new(Table::UpsertInput)),
            kind,
        }
    }

    /// Applies one record. `Ok(Err(_))` means the record was skipped because an
    /// expression failed on it; no state was changed.
    pub fn apply(
        &mut self,
        store: &StateStore,
        rec: SourceRecord,
    ) -> Result<Result<(), RecordError>, DataflowError> {
        let ctx = self.ctx(store);
        let Some(input) = self.upsert_input.as_mut() else {
            let Some(row) = rec.row else {
                return Ok(Ok(()));
            };
            let key = route::position_key(rec.partition, rec.offset);
            return self.kind.apply(&ctx, &key, &row, 1);
        };
        let pk = rec.key.unwrap_or(Value::Null);
        let key = encode_key(std::slice::from_ref(&pk));
        // Validate the new row before touching anything, so a bad one changes nothing.
        if let Some(row) = &rec.row {
            if let Err(e) = self.kind.check(row) {
                return Ok(Err(e));
            }
        }
        let slot = input.entry(store, self.view, self.partitions, key.clone())?;
        let old = std::mem::replace(slot, rec.row.clone());
        if let Some(old) = old {
            if let Err(e) = self.kind.apply(&ctx, &key, &old, -1)? {
                return Err(DataflowError::Eval {
                    view: self.view.to_string(),
                    source: e,
                });
            }
        }
        if let Some(new) = rec.row {
            if let Err(e) = self.kind.apply(&ctx, &key, &new, 1)? {
                return Err(DataflowError::Eval {
                    view: self.view.to_string(),
                    source: e,
                });
            }
        }
        Ok(Ok(()))
    }

    /// Applies a retraction (`diff` −1) or insertion (+1) from `Resolve`.
    pub fn apply_diff(
        &mut self,
        store: &StateStore,
        row: &[Value],
        diff: i64,
    ) -> Result<Result<(), RecordError>, DataflowError> {
        let ctx = self.ctx(store);
        self.kind.apply(&ctx, &[], row, diff)
    }

    fn ctx<'a>(&self, store: &'a StateStore) -> Ctx<'a> {
        Ctx {
            store,
            view: self.view,
            partitions: self.partitions,
        }
    }

    pub fn is_dirty(&self) -> bool {
        self.upsert_input.as_ref().is_some_and(|c| !c.is_empty()) || !self.kind.is_empty()
    }

    /// Every change of the batch; leaves the operators empty for the next one.
    pub fn drain(&mut self) -> Vec<RowChange> {
        let mut out = Vec::new();
        if let Some(input) = self.upsert_input.as_mut() {
            input.drain_into(&mut out);
        }
        match &mut self.kind {
            Kind::Aggregate(a) => a.cache.drain_into(&mut out),
            Kind::Project(p) => p.cache.drain_into(&mut out),
        }
        out
    }
}

pub(crate) struct Ctx<'a> {
    pub store: &'a StateStore,
    pub view: ViewId,
    pub partitions: u32,
}

impl Kind {
    fn check(&self, row: &[Value]) -> Result<(), RecordError> {
        match self {
            Kind::Aggregate(a) => a.check(row),
            Kind::Project(p) => p.check(row),
        }
    }

    fn apply(
        &mut self,
        ctx: &Ctx<'_>,
        input_key: &[u8],
        row: &[Value],
        diff: i64,
    ) -> Result<Result<(), RecordError>, DataflowError> {
        match self {
            Kind::Aggregate(a) => a.apply(ctx, row, diff),
            Kind::Project(p) => p.apply(ctx, input_key, row, diff),
        }
    }

    fn is_empty(&self) -> bool {
        match self {
            Kind::Aggregate(a) => a.cache.is_empty(),
            Kind::Project(p) => p.cache.is_empty(),
        }
    }
}

/// `Some(true)` only when a filter holds; NULL and false both drop the row.
pub(crate) fn passes(filter: Option<&planner::Expr>, row: &[Value]) -> Result<bool, RecordError> {
    match filter {
        None => Ok(true),
        Some(f) => Ok(matches!(f.eval(row, &[])?, Value::Bool(true))),
    }
}
