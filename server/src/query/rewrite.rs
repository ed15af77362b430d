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
    visit_expressions_mut, BinaryOperator, CastKind, DataType, Expr, Function, FunctionArg,
    FunctionArgExpr, FunctionArgumentList, FunctionArguments, Ident, ObjectName, Statement,
};
use std::ops::ControlFlow;

use crate::error::Error;

pub fn for_datafusion(mut query: Statement) -> Result<Statement, Error> {
    let _ = visit_expressions_mut(&mut query, |e| {
        rewrite(e);
        ControlFlow::<()>::Continue(())
    });
    Ok(query)
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
            if let (true, FunctionArguments::Subquery(query)) = (is_named(f, "array"), &f.args) {
                *e = array_subquery(query.as_ref().clone());
            }
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
                "oid" | "regproc" | "regprocedure" | "regnamespace" | "regrole" | "xid" => {
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
