//! Where a result column comes from, as RowDescription tells clients: the
//! view's oid and the column's number when the column is a view's column
//! as it is (pgjdbc's `getBaseTableName` and `isNullable`, node-postgres'
//! `columnID`), and the precision and scale of a `numeric(p,s)` result
//! (psycopg's `cursor.description`). PostgreSQL names the origin of a
//! column read through any number of subqueries, joins, filters and
//! sorts, but not of an expression over it.

use common::numeric::Typmod;
use common::{Column, Origin};
use datafusion::arrow::datatypes::DataType;
use datafusion::datasource::source_as_provider;
use datafusion::logical_expr::{Expr, JoinType, LogicalPlan};
use planner::expr::Expr as EddyExpr;
use planner::plan::{ReadPlan, RelationRef};

use crate::catalog::{CatalogState, CatalogView};

use super::convert::{NUMERIC_PRECISION, NUMERIC_SCALE};
use super::pg_catalog::view_oid;
use super::tables::ViewTable;

/// Column `index` of `view` as an origin.
fn view_column(view: &CatalogView, index: usize) -> Option<(Origin, Option<Typmod>)> {
    let column = view.def.columns.get(index)?;
    let origin = Origin {
        table: u32::try_from(view_oid(view.id.0)).ok()?,
        column: i16::try_from(index + 1).ok()?,
    };
    Some((origin, column.typmod))
}

/// Sets the origin (and the typmod a view column has) of every column of
/// a read Eddy's planner planned that is one of its view's columns.
pub fn of_read(state: &CatalogState, plan: &mut ReadPlan) {
    let RelationRef::View(name) = &plan.relation else {
        return;
    };
    let Some(view) = state.views.get(name) else {
        return;
    };
    if plan.aggregate.is_some() {
        return;
    }
    for (column, expr) in plan.columns.iter_mut().zip(&plan.projection) {
        if let EddyExpr::Column { index, .. } = expr {
            if let Some((origin, typmod)) = view_column(view, *index) {
                column.origin = Some(origin);
                column.typmod = column.typmod.or(typmod);
            }
        }
    }
}

/// Sets the origin and typmod of every column of DataFusion's `plan` (not
/// yet optimized) that has one.
pub fn of_query(plan: &LogicalPlan, columns: &mut [Column]) {
    for (i, column) in columns.iter_mut().enumerate() {
        let (origin, typmod) = trace(plan, i);
        column.origin = origin;
        column.typmod = typmod;
    }
}

/// What column `i` of `plan`'s output is: a view's column (through
/// projections of it, aliases, filters, sorts, limits and joins) or a cast
/// to `numeric(p,s)`.
fn trace(plan: &LogicalPlan, i: usize) -> (Option<Origin>, Option<Typmod>) {
    let none = (None, None);
    match plan {
        LogicalPlan::Projection(p) => {
            let Some(expr) = p.expr.get(i) else {
                return none;
            };
            match unalias(expr) {
                Expr::Column(c) => match p.input.schema().index_of_column(c) {
                    Ok(j) => trace(&p.input, j),
                    Err(_) => none,
                },
                Expr::Cast(cast) => (None, typmod(cast.field.data_type())),
                Expr::TryCast(cast) => (None, typmod(cast.field.data_type())),
                // A scalar subquery's column keeps its type, not its origin.
                Expr::ScalarSubquery(s) => (None, trace(&s.subquery, 0).1),
                _ => none,
            }
        }
        LogicalPlan::SubqueryAlias(a) => trace(&a.input, i),
        LogicalPlan::Filter(f) => trace(&f.input, i),
        LogicalPlan::Sort(s) => trace(&s.input, i),
        LogicalPlan::Limit(l) => trace(&l.input, i),
        LogicalPlan::Repartition(r) => trace(&r.input, i),
        LogicalPlan::Distinct(d) => trace(d.input(), i),
        LogicalPlan::Join(j) => {
            let left = j.left.schema().fields().len();
            match j.join_type {
                JoinType::Inner | JoinType::Left | JoinType::Right | JoinType::Full => {
                    if i < left {
                        trace(&j.left, i)
                    } else {
                        trace(&j.right, i - left)
                    }
                }
                JoinType::LeftSemi | JoinType::LeftAnti | JoinType::LeftMark => trace(&j.left, i),
                JoinType::RightSemi | JoinType::RightAnti | JoinType::RightMark => {
                    trace(&j.right, i)
                }
            }
        }
        LogicalPlan::TableScan(scan) => {
            let index = match &scan.projection {
                Some(p) => match p.get(i) {
                    Some(&j) => j,
                    None => return none,
                },
                None => i,
            };
            let Ok(provider) = source_as_provider(&scan.source) else {
                return none;
            };
            match (provider.as_ref() as &dyn std::any::Any).downcast_ref::<ViewTable>() {
                Some(table) => match view_column(table.view(), index) {
                    Some((origin, typmod)) => (Some(origin), typmod),
                    None => none,
                },
                None => none,
            }
        }
        _ => none,
    }
}

fn unalias(e: &Expr) -> &Expr {
    match e {
        Expr::Alias(a) => unalias(&a.expr),
        other => other,
    }
}

/// The typmod of a cast to `numeric(p,s)` (`numeric` alone has none).
fn typmod(ty: &DataType) -> Option<Typmod> {
    match ty {
        DataType::Decimal128(NUMERIC_PRECISION, NUMERIC_SCALE) => None,
        DataType::Decimal128(p, s) if *s >= 0 => Some(Typmod {
            precision: u32::from(*p),
            scale: u32::try_from(*s).ok()?,
        }),
        _ => None,
    }
}
