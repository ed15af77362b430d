//! PostgreSQL spellings DataFusion does not plan, rewritten on the parsed
//! query before it is handed over — what psql, pgjdbc and SQLAlchemy send
//! when they introspect:
//!
//! - `pg_catalog.f(...)` calls `f` (DataFusion has no schema-qualified
//!   functions; every function Eddy has lives in `pg_catalog`);
//! - `x::regclass` / `x::regtype` become the oid the name stands for (a
//!   number, where PostgreSQL would print the name), `::oid`,
//!   `::regproc`, `::regnamespace` and `::regrole` an integer cast, and
//!   `::name` / `::"char"` a text cast;
//! - `OPERATOR(pg_catalog.~)` is the operator it names;
//! - `COLLATE` is dropped: text compares bytewise (the `C` collation).

use sqlparser::ast::{
    visit_expressions, visit_expressions_mut, visit_relations_mut, BinaryOperator, CastKind,
    DataType, Expr, Function, FunctionArg, FunctionArgExpr, FunctionArgumentList,
    FunctionArguments, Ident, ObjectName, Statement,
};
use std::ops::ControlFlow;

use crate::error::Error;

pub fn for_datafusion(mut query: Statement) -> Result<Statement, Error> {
    let _ = visit_expressions_mut(&mut query, |e| {
        rewrite(e);
        ControlFlow::<()>::Continue(())
    });
    // `FROM pg_catalog.unnest(...)`: table functions are unqualified too.
    let _ = visit_relations_mut(&mut query, |name| {
        let qualified = name.0.len() == 2
            && name.0[0]
                .as_ident()
                .is_some_and(|i| i.value.eq_ignore_ascii_case("pg_catalog"))
            && name.0[1]
                .as_ident()
                .is_some_and(|i| TABLE_FUNCTIONS.contains(&i.value.to_ascii_lowercase().as_str()));
        if qualified {
            name.0.remove(0);
        }
        ControlFlow::<()>::Continue(())
    });
    Ok(query)
}

const TABLE_FUNCTIONS: &[&str] = &["unnest", "generate_series", "range"];

/// Aggregate functions, to tell a subquery that already aggregates.
const AGGREGATES: &[&str] = &[
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

fn rewrite(e: &mut Expr) {
    match e {
        Expr::Function(f) => {
            if f.name.0.len() == 2
                && f.name.0[0]
                    .as_ident()
                    .is_some_and(|i| i.value.eq_ignore_ascii_case("pg_catalog"))
            {
                f.name.0.remove(0);
            }
            // PostgreSQL's name for the length of dimension 1.
            if is_named(f, "array_upper") {
                f.name = ObjectName::from(vec![Ident::new("array_length")]);
            }
            if let (true, FunctionArguments::Subquery(query)) = (is_named(f, "array"), &f.args) {
                let mut query = query.as_ref().clone();
                *e = if aggregate_projection(&mut query, "array_agg") {
                    Expr::Subquery(Box::new(query))
                } else {
                    array_subquery(query)
                };
            }
        }
        // DataFusion runs a correlated scalar subquery only when it
        // aggregates: one that does not is given `eddy_single`, which is
        // PostgreSQL's rule (NULL for no row, 21000 for more than one).
        Expr::Subquery(query) => {
            aggregate_projection(query, "eddy_single");
        }
        Expr::Cast {
            expr, data_type, ..
        } => {
            // `x::regtype::text` is the type's name, `x::regclass::text` the
            // relation's.
            if matches!(data_type, DataType::Text) {
                if let Expr::Function(f) = expr.as_mut() {
                    for (from, to) in [
                        ("eddy_regclass", "eddy_regclass_name"),
                        ("eddy_regtype", "eddy_regtype_name"),
                    ] {
                        if is_named(f, from) {
                            f.name = ObjectName::from(vec![Ident::new(to)]);
                            *e = std::mem::replace(
                                expr.as_mut(),
                                Expr::value(sqlparser::ast::Value::Null),
                            );
                            return;
                        }
                    }
                }
            }
            // `'{a,b}'::text[]`: the literal's elements, not one element.
            if let (DataType::Array(_), Expr::Value(v)) = (&*data_type, expr.as_ref()) {
                if let Some(text) = v.value.clone().into_string() {
                    let elements = crate::query::convert::parse_array_literal(&text)
                        .into_iter()
                        .map(|e| match e {
                            Some(e) => Expr::value(sqlparser::ast::Value::SingleQuotedString(e)),
                            None => Expr::value(sqlparser::ast::Value::Null),
                        })
                        .collect();
                    **expr = Expr::Array(sqlparser::ast::Array {
                        elem: elements,
                        named: true,
                    });
                    return;
                }
            }
            let name = match data_type {
                DataType::Regclass => "regclass".to_owned(),
                DataType::Custom(name, _) => name
                    .0
                    .last()
                    .and_then(|p| p.as_ident())
                    .map(|i| i.value.to_ascii_lowercase())
                    .unwrap_or_default(),
                _ => return,
            };
            if let Some(plain) = builtin_type(&name) {
                *data_type = plain;
                return;
            }
            let inner = std::mem::replace(expr.as_mut(), Expr::value(sqlparser::ast::Value::Null));
            *e = match name.as_str() {
                "regclass" => call("eddy_regclass", inner),
                "regtype" => call("eddy_regtype", inner),
                "regnamespace" => call("eddy_regnamespace", inner),
                "oid" | "regproc" | "regprocedure" | "regrole" | "xid" => {
                    cast(inner, DataType::BigInt(None))
                }
                "name" | "char" | "bpchar" => cast(inner, DataType::Text),
                _ => {
                    // Not ours: put it back as it was.
                    **expr = inner;
                    return;
                }
            };
        }
        Expr::BinaryOp { op, .. } => {
            if let BinaryOperator::PGCustomBinaryOperator(parts) = op {
                if let Some(plain) = parts.last().and_then(|o| operator(o)) {
                    *op = plain;
                }
            }
        }
        Expr::Collate { expr, .. } => {
            let inner = std::mem::replace(expr.as_mut(), Expr::value(sqlparser::ast::Value::Null));
            *e = inner;
        }
        _ => {}
    }
}

fn is_named(f: &Function, name: &str) -> bool {
    f.name.0.len() == 1
        && f.name.0[0]
            .as_ident()
            .is_some_and(|i| i.quote_style.is_none() && i.value.eq_ignore_ascii_case(name))
}

/// A built-in type by its `pg_catalog` name (`pg_catalog.int4`, `text`).
fn builtin_type(name: &str) -> Option<DataType> {
    use sqlparser::ast::{ExactNumberInfo, TimezoneInfo};
    Some(match name {
        "text" => DataType::Text,
        "int2" | "smallint" => DataType::SmallInt(None),
        "int4" | "integer" | "int" => DataType::Integer(None),
        "int8" | "bigint" => DataType::BigInt(None),
        "bool" | "boolean" => DataType::Boolean,
        "float4" | "real" => DataType::Real,
        "float8" => DataType::DoublePrecision,
        "numeric" => DataType::Numeric(ExactNumberInfo::None),
        "varchar" => DataType::Varchar(None),
        "date" => DataType::Date,
        "timestamp" => DataType::Timestamp(None, TimezoneInfo::None),
        "timestamptz" => DataType::Timestamp(None, TimezoneInfo::WithTimeZone),
        _ => return None,
    })
}

/// `ARRAY(SELECT x ...)`: the subquery's single column aggregated into an
/// array, `(SELECT array_agg(e) FROM (SELECT x ...) AS a(e))`.
fn array_subquery(query: sqlparser::ast::Query) -> Expr {
    let sql = format!("SELECT array_agg(eddy_element) FROM ({query}) AS eddy_array(eddy_element)");
    match planner::parse(&sql).ok().and_then(|mut s| s.pop()) {
        Some(Statement::Query(q)) => Expr::Subquery(q),
        _ => Expr::value(sqlparser::ast::Value::Null),
    }
}

fn operator(op: &str) -> Option<BinaryOperator> {
    Some(match op {
        "~" => BinaryOperator::PGRegexMatch,
        "~*" => BinaryOperator::PGRegexIMatch,
        "!~" => BinaryOperator::PGRegexNotMatch,
        "!~*" => BinaryOperator::PGRegexNotIMatch,
        "=" => BinaryOperator::Eq,
        "<>" | "!=" => BinaryOperator::NotEq,
        "<" => BinaryOperator::Lt,
        "<=" => BinaryOperator::LtEq,
        ">" => BinaryOperator::Gt,
        ">=" => BinaryOperator::GtEq,
        "~~" => return None,
        _ => return None,
    })
}

fn call(name: &str, arg: Expr) -> Expr {
    Expr::Function(Function {
        name: ObjectName::from(vec![Ident::new(name)]),
        uses_odbc_syntax: false,
        parameters: FunctionArguments::None,
        args: FunctionArguments::List(FunctionArgumentList {
            duplicate_treatment: None,
            args: vec![FunctionArg::Unnamed(FunctionArgExpr::Expr(arg))],
            clauses: Vec::new(),
        }),
        filter: None,
        null_treatment: None,
        over: None,
        within_group: Vec::new(),
    })
}

fn cast(expr: Expr, data_type: DataType) -> Expr {
    Expr::Cast {
        kind: CastKind::Cast,
        expr: Box::new(expr),
        data_type,
        array: false,
        format: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewritten(sql: &str) -> String {
        let stmt = planner::parse(sql).unwrap().pop().unwrap();
        for_datafusion(stmt).unwrap().to_string()
    }

    #[test]
    fn catalog_spellings_become_plain_sql() {
        assert_eq!(
            rewritten("SELECT pg_catalog.format_type(a.atttypid, NULL) FROM t"),
            "SELECT format_type(a.atttypid, NULL) FROM t"
        );
        assert_eq!(
            rewritten("SELECT 'v'::regclass, c.oid::pg_catalog.oid FROM c"),
            "SELECT eddy_regclass('v'), CAST(c.oid AS BIGINT) FROM c"
        );
        assert_eq!(
            rewritten("SELECT 1 FROM c WHERE c.relname OPERATOR(pg_catalog.~) '^(v)$' COLLATE pg_catalog.default"),
            "SELECT 1 FROM c WHERE c.relname ~ '^(v)$'"
        );
    }
}
