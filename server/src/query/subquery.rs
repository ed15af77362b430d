//! Subqueries in the shapes DataFusion decorrelates.
//!
//! DataFusion runs a correlated scalar subquery only when it aggregates,
//! and pulls its correlated predicates above that aggregate only when they
//! are equalities between an outer and an inner column. PostgreSQL's
//! clients send others: psql's `\d` asks
//! `(SELECT c.collname FROM pg_collation c, pg_type t WHERE c.oid =
//! a.attcollation AND t.oid = a.atttypid AND a.attcollation <>
//! t.typcollation)`. So, on the parsed query:
//!
//! - a subquery that does not aggregate gets `eddy_single`, which is
//!   PostgreSQL's rule (NULL for no row, 21000 for more than one);
//! - an outer column equal to an inner expression is replaced by that
//!   expression in the other predicates (`a.attcollation <>
//!   t.typcollation` becomes `c.oid <> t.typcollation`);
//! - a predicate on outer columns only moves out of the subquery into a
//!   `CASE WHEN` around it (no row when it is false, so NULL).

use sqlparser::ast::helpers::attached_token::AttachedToken;
use sqlparser::ast::{
    visit_expressions, visit_expressions_mut, BinaryOperator, CaseWhen, Expr, Function,
    FunctionArguments, Query, Select, SetExpr, Statement, TableFactor,
};
use std::collections::{HashMap, HashSet};
use std::ops::ControlFlow;

use super::rewrite::call;

/// A scalar subquery DataFusion can run, or None when `query` is one
/// already (then it may still have been changed in place).
pub fn scalar(query: &mut Query) -> Option<Expr> {
    let inner = Inner::of(query)?;
    if let SetExpr::Select(select) = query.body.as_mut() {
        if let Some(selection) = select.selection.as_mut() {
            inner.substitute_equals(selection);
        }
    }
    if !aggregate_projection(query, "eddy_single") {
        return None;
    }
    let SetExpr::Select(select) = query.body.as_mut() else {
        return None;
    };
    let selection = select.selection.take()?;
    let (outer, kept): (Vec<_>, Vec<_>) = conjuncts(selection)
        .into_iter()
        .partition(|c| inner.outer_only(c));
    select.selection = and(kept);
    let guard = and(outer)?;
    Some(Expr::Case {
        case_token: AttachedToken::empty(),
        end_token: AttachedToken::empty(),
        operand: None,
        conditions: vec![CaseWhen {
            condition: guard,
            result: Expr::Subquery(Box::new(query.clone())),
        }],
        else_result: None,
    })
}

/// The relations a subquery's `FROM` names, to tell its own columns from
/// the outer query's by qualifier.
struct Inner {
    names: HashSet<String>,
}

impl Inner {
    /// None when the subquery is not one `SELECT` over tables and derived
    /// tables (a `FROM` this cannot read is left alone).
    fn of(query: &Query) -> Option<Inner> {
        let SetExpr::Select(select) = query.body.as_ref() else {
            return None;
        };
        Some(Inner {
            names: from_names(select)?,
        })
    }

    /// Whether `e` names a column of the outer query (`o.x` where `o` is
    /// not one of the subquery's relations).
    fn is_outer(&self, e: &Expr) -> bool {
        match e {
            Expr::CompoundIdentifier(parts) if parts.len() >= 2 => {
                let qualifier = &parts[parts.len() - 2].value;
                !self.names.contains(&qualifier.to_ascii_lowercase())
            }
            _ => false,
        }
    }

    /// (outer columns, inner columns) `e` reads; None when it holds a
    /// subquery of its own (whose names this does not resolve).
    fn columns(&self, e: &Expr) -> Option<(usize, usize)> {
        let (mut outer, mut inner) = (0, 0);
        let nested = visit_expressions(e, |x| match x {
            Expr::Subquery(_) | Expr::Exists { .. } | Expr::InSubquery { .. } => {
                ControlFlow::Break(())
            }
            Expr::CompoundIdentifier(_) if self.is_outer(x) => {
                outer += 1;
                ControlFlow::Continue(())
            }
            Expr::CompoundIdentifier(_) | Expr::Identifier(_) => {
                inner += 1;
                ControlFlow::Continue(())
            }
            _ => ControlFlow::Continue(()),
        });
        (!nested.is_break()).then_some((outer, inner))
    }

    fn outer_only(&self, e: &Expr) -> bool {
        matches!(self.columns(e), Some((outer, 0)) if outer > 0)
    }

    /// In the conjuncts of `selection` that are not themselves the
    /// equality, replaces each outer column some conjunct equates with an
    /// inner expression by that expression.
    fn substitute_equals(&self, selection: &mut Expr) {
        let mut equal: HashMap<String, Expr> = HashMap::new();
        for c in conjuncts(selection.clone()) {
            if let Expr::BinaryOp {
                left,
                op: BinaryOperator::Eq,
                right,
            } = &c
            {
                for (o, i) in [(left, right), (right, left)] {
                    if self.is_outer(o) && matches!(self.columns(i), Some((0, n)) if n > 0) {
                        equal.entry(o.to_string()).or_insert_with(|| (**i).clone());
                    }
                }
            }
        }
        if equal.is_empty() {
            return;
        }
        let rewritten = conjuncts(selection.clone()).into_iter().map(|mut c| {
            let equality = matches!(&c, Expr::BinaryOp { op: BinaryOperator::Eq, left, right }
                if equal.contains_key(&left.to_string()) || equal.contains_key(&right.to_string()));
            if !equality && self.columns(&c).is_some() {
                let _ = visit_expressions_mut(&mut c, |x| {
                    if self.is_outer(x) {
                        if let Some(i) = equal.get(&x.to_string()) {
                            *x = i.clone();
                        }
                    }
                    ControlFlow::<()>::Continue(())
                });
            }
            c
        });
        if let Some(all) = and(rewritten.collect()) {
            *selection = all;
        }
    }
}

/// The names a `SELECT`'s `FROM` binds (aliases, or tables' last names),
/// lowercase; None for a `FROM` holding anything but tables and derived
/// tables.
pub(super) fn from_names(select: &Select) -> Option<HashSet<String>> {
    let mut names = HashSet::new();
    for from in &select.from {
        let joined = from.joins.iter().map(|j| &j.relation);
        for factor in std::iter::once(&from.relation).chain(joined) {
            let name = match factor {
                TableFactor::Table { alias: Some(a), .. }
                | TableFactor::Derived { alias: Some(a), .. } => &a.name,
                TableFactor::Table { name, .. } => name.0.last()?.as_ident()?,
                _ => return None,
            };
            names.insert(name.value.to_ascii_lowercase());
        }
    }
    Some(names)
}

fn conjuncts(e: Expr) -> Vec<Expr> {
    match e {
        Expr::BinaryOp {
            left,
            op: BinaryOperator::And,
            right,
        } => {
            let mut all = conjuncts(*left);
            all.extend(conjuncts(*right));
            all
        }
        Expr::Nested(inner)
            if matches!(
                *inner,
                Expr::BinaryOp {
                    op: BinaryOperator::And,
                    ..
                }
            ) =>
        {
            conjuncts(*inner)
        }
        other => vec![other],
    }
}

fn and(all: Vec<Expr>) -> Option<Expr> {
    all.into_iter().reduce(|l, r| Expr::BinaryOp {
        left: Box::new(l),
        op: BinaryOperator::And,
        right: Box::new(r),
    })
}

/// `ARRAY(SELECT x ...)`: the subquery's single column aggregated into an
/// array, as `(SELECT array_agg(x) ...)` where that keeps its meaning, else
/// `(SELECT array_agg(e) FROM (SELECT x ...) AS a(e))`.
pub fn array(mut query: Query) -> Expr {
    if aggregate_projection(&mut query, "array_agg") {
        return Expr::Subquery(Box::new(query));
    }
    let template = "SELECT array_agg(eddy_element) FROM (SELECT 1) AS eddy_array(eddy_element)";
    let Ok(Some(Statement::Query(mut wrapper))) = planner::parse(template).map(|mut s| s.pop())
    else {
        return Expr::value(sqlparser::ast::Value::Null);
    };
    if let SetExpr::Select(select) = wrapper.body.as_mut() {
        if let Some(TableFactor::Derived { subquery, .. }) =
            select.from.first_mut().map(|f| &mut f.relation)
        {
            **subquery = query;
        }
    }
    Expr::Subquery(wrapper)
}

/// Aggregate functions, to tell a subquery that already aggregates (and a
/// call in a select list that is not a function of each row).
pub(super) const AGGREGATES: &[&str] = &[
    "count",
    "sum",
    "avg",
    "min",
    "max",
    "array_agg",
    "string_agg",
    "bool_and",
    "bool_or",
    "every",
    "stddev",
    "stddev_pop",
    "stddev_samp",
    "variance",
    "var_pop",
    "var_samp",
    "first_value",
    "last_value",
    "json_agg",
    "jsonb_agg",
    "json_object_agg",
    "jsonb_object_agg",
    "eddy_single",
];

fn aggregates(e: &Expr) -> bool {
    visit_expressions(e, |x| match x {
        Expr::Function(f)
            if f.over.is_none()
                && f.name.0.last().and_then(|p| p.as_ident()).is_some_and(|i| {
                    AGGREGATES.contains(&i.value.to_ascii_lowercase().as_str())
                }) =>
        {
            ControlFlow::Break(())
        }
        _ => ControlFlow::Continue(()),
    })
    .is_break()
}

/// Makes `SELECT x FROM ... [ORDER BY o] [LIMIT 1]` (one column, no
/// grouping) `SELECT f(x ORDER BY o) FROM ...`, where `f` is `aggregate`,
/// or `first_value` under `LIMIT 1`. False when the query is not of that
/// shape (it aggregates already, or returns more than one column).
fn aggregate_projection(q: &mut sqlparser::ast::Query, aggregate: &str) -> bool {
    use sqlparser::ast::{GroupByExpr, LimitClause, OrderByKind, SelectItem, SetExpr};
    let first = match &q.limit_clause {
        None => false,
        Some(LimitClause::LimitOffset {
            limit: Some(Expr::Value(v)),
            offset: None,
            limit_by,
        }) if limit_by.is_empty() && v.value.to_string() == "1" => true,
        Some(_) => return false,
    };
    if q.fetch.is_some() {
        return false;
    }
    let SetExpr::Select(select) = q.body.as_mut() else {
        return false;
    };
    let grouped =
        !matches!(&select.group_by, GroupByExpr::Expressions(e, m) if e.is_empty() && m.is_empty());
    if select.projection.len() != 1
        || select.distinct.is_some()
        || select.having.is_some()
        || grouped
    {
        return false;
    }
    let expr = match &mut select.projection[0] {
        SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => e,
        _ => return false,
    };
    if aggregates(expr) {
        return false;
    }
    let order = match q.order_by.take().map(|o| o.kind) {
        Some(OrderByKind::Expressions(exprs)) => exprs,
        Some(other) => {
            q.order_by = Some(sqlparser::ast::OrderBy {
                kind: other,
                interpolate: None,
            });
            return false;
        }
        None => Vec::new(),
    };
    let inner = std::mem::replace(expr, Expr::value(sqlparser::ast::Value::Null));
    let mut f = call(if first { "first_value" } else { aggregate }, inner);
    if let (
        false,
        Expr::Function(Function {
            args: FunctionArguments::List(list),
            ..
        }),
    ) = (order.is_empty(), &mut f)
    {
        list.clauses
            .push(sqlparser::ast::FunctionArgumentClause::OrderBy(order));
    }
    *expr = f;
    q.limit_clause = None;
    true
}

#[cfg(test)]
mod tests {
    fn rewritten(sql: &str) -> String {
        let stmt = planner::parse(sql).unwrap().pop().unwrap();
        crate::query::rewrite::without_names(crate::query::rewrite::for_datafusion(stmt).unwrap())
            .to_string()
    }

    #[test]
    fn outer_columns_equal_to_inner_ones_are_replaced() {
        assert_eq!(
            rewritten(
                "SELECT (SELECT c.collname FROM pg_collation c, pg_type t WHERE c.oid = a.attcollation \
                 AND t.oid = a.atttypid AND a.attcollation <> t.typcollation) FROM pg_attribute a"
            ),
            "SELECT (SELECT eddy_single(c.collname) FROM pg_collation c, pg_type t \
             WHERE c.oid = a.attcollation AND t.oid = a.atttypid AND c.oid <> t.typcollation) \
             FROM pg_attribute a"
        );
    }

    #[test]
    fn predicates_on_outer_columns_only_guard_the_subquery() {
        assert_eq!(
            rewritten(
                "SELECT (SELECT d.adbin FROM attrdefs d WHERE d.adrelid = a.attrelid \
                 AND a.atthasdef) FROM pg_attribute a"
            ),
            "SELECT CASE WHEN a.atthasdef THEN (SELECT eddy_single(d.adbin) FROM attrdefs d \
             WHERE d.adrelid = a.attrelid) END FROM pg_attribute a"
        );
        // An aggregate answers for no rows too (count is 0): left alone.
        assert_eq!(
            rewritten(
                "SELECT (SELECT count(*) FROM attrdefs d WHERE d.adrelid = a.attrelid \
                 AND a.atthasdef) FROM pg_attribute a"
            ),
            "SELECT (SELECT count(*) FROM attrdefs d WHERE d.adrelid = a.attrelid \
             AND a.atthasdef) FROM pg_attribute a"
        );
    }

    #[test]
    fn array_of_a_subquery_aggregates_it() {
        assert_eq!(
            rewritten("SELECT ARRAY(SELECT x FROM t ORDER BY x)"),
            "SELECT (SELECT array_agg(x ORDER BY x) FROM t)"
        );
        assert_eq!(
            rewritten("SELECT ARRAY(SELECT DISTINCT x FROM t)"),
            "SELECT (SELECT array_agg(eddy_element) FROM (SELECT DISTINCT x FROM t) \
             AS eddy_array (eddy_element))"
        );
    }
}
