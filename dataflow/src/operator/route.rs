//! Routing: where a decoded source record goes before any state is touched.
//!
//! Runs in the shuffle step, on whichever node owns the source partition. It
//! validates the record against the view's expressions (so a bad record is
//! reported where it was read and never reaches a state partition), drops
//! rows the view's filter rejects, and names the key whose partition must
//! apply it: the primary key of an upsert source, the GROUP BY key of an
//! aggregate, or the record's position for a projection of an append-only
//! source.

use common::codec::{encode_key, encode_row};
use common::{Row, Value};
use planner::plan::{SourceDef, ViewDef, ViewPlan};

use super::aggregate::Aggregate;
use super::project::Project;
use super::{RecordError, SourceRecord};
use crate::envelope::Kind;

/// A record on its way to a partition.
pub struct Routed {
    /// The routing key: its partition is `PartitionId::for_key(key)`.
    pub key: Vec<u8>,
    pub kind: Kind,
    pub row: Option<Row>,
}

pub struct Route {
    upsert: bool,
    kind: RouteKind,
}

enum RouteKind {
    Aggregate(Aggregate),
    Project(Project),
}

impl Route {
    pub fn new(def: &ViewDef, source: &SourceDef) -> Route {
        let upsert = source.primary_key.is_some();
        let kind = match &def.plan {
            ViewPlan::Aggregate(plan) => RouteKind::Aggregate(Aggregate::new(plan.clone(), upsert)),
            ViewPlan::Project(plan) => RouteKind::Project(Project::new(plan.clone())),
        };
        Route { upsert, kind }
    }

    /// Where `rec` goes; `Ok(None)` when the view's filter drops it, `Err`
    /// when one of the view's expressions fails on it (a bad record).
    pub fn route(&self, rec: SourceRecord) -> Result<Option<Routed>, RecordError> {
        if self.upsert {
            if let Some(row) = &rec.row {
                self.check(row)?;
            }
            return Ok(Some(Routed {
                key: encode_key(&[rec.key.unwrap_or(Value::Null)]),
                kind: if rec.row.is_some() {
                    Kind::Upsert
                } else {
                    Kind::Delete
                },
                row: rec.row,
            }));
        }
        let Some(row) = rec.row else {
            return Ok(None);
        };
        let key = match &self.kind {
            RouteKind::Aggregate(a) => {
                a.check(&row)?;
                match a.group_of(&row)? {
                    Some(group) => encode_key(&group),
                    None => return Ok(None),
                }
            }
            RouteKind::Project(p) => {
                if p.project(&row)?.is_none() {
                    return Ok(None);
                }
                position_key(rec.partition, rec.offset)
            }
        };
        Ok(Some(Routed {
            key,
            kind: Kind::Insert,
            row: Some(row),
        }))
    }

    fn check(&self, row: &[Value]) -> Result<(), RecordError> {
        match &self.kind {
            RouteKind::Aggregate(a) => a.check(row),
            RouteKind::Project(p) => p.check(row),
        }
    }
}

/// The key of an append-only record in a projection: its source position.
pub fn position_key(partition: i32, offset: i64) -> Vec<u8> {
    encode_row(&[Value::Int(i64::from(partition)), Value::Int(offset)])
}
