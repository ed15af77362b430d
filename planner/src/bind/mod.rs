//! Binding: sqlparser AST → [`Statement`] with names resolved and types known.
//!
//! This file holds the dispatch (one arm per statement kind, each handled in
//! its own file) and the helpers every handler shares. Binding never touches
//! data: it asks the [`Catalog`] about relations and nothing else.

mod coerce;
mod create_source;
mod create_view;
mod functions;
pub mod limits;
mod parse;
mod read;
mod scalar;
mod select;
mod session;
mod types;

pub use create_source::INTERNAL_TOPIC_PREFIX;
pub use parse::{parse, position_of};
pub use scalar::output_name;

use crate::error::PlanError;
use crate::expr::Expr;
use crate::plan::{Catalog, RelationInfo};
use crate::statement::{Defaults, Statement};
use common::SqlType;
use scalar::ident_name;
use sqlparser::ast::{self, ObjectName, ObjectNamePart, SetExpr, Statement as Ast, TableFactor};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::tokenizer::{Location, Token, Tokenizer};

/// Binds one parsed statement. `sql_text` must be the text given to
/// [`parse`]: error positions and a view's SQL are taken from it.
pub fn plan(
    stmt: &Ast,
    sql_text: &str,
    catalog: &dyn Catalog,
    defaults: &Defaults,
) -> Result<Statement, PlanError> {
    let (mut stmt, params) = plan_inner(stmt, sql_text, catalog, defaults)?;
    // A parameter's type may be fixed after an earlier use was bound: settle all uses.
    stmt.visit_exprs_mut(&mut |e| {
        if let Expr::Parameter { index, ty } = e {
            *ty = params
                .get(*index)
                .copied()
                .flatten()
                .unwrap_or(SqlType::Text);
        }
    });
    Ok(stmt)
}

fn plan_inner(
    stmt: &Ast,
    sql: &str,
    catalog: &dyn Catalog,
    defaults: &Defaults,
) -> Result<(Statement, Vec<Option<SqlType>>), PlanError> {
    let none = |s: Statement| Ok((s, vec![]));
    match stmt {
        Ast::Query(q) => {
            let (plan, params) = read::plan(q, sql, catalog)?;
            Ok((Statement::Select(plan), params))
        }
        Ast::CreateTable(ct) if ct.external => none(create_source::plan(ct)?),
        Ast::CreateTable(_) => Err(PlanError::unsupported("CREATE TABLE", None).with_hint(
            "Eddy reads Kafka topics: CREATE SOURCE name (col TYPE, ...) WITH (topic = '...'), then CREATE MATERIALIZED VIEW over it.",
        )),
        Ast::CreateView(cv) => none(create_view::plan(cv, sql, catalog, defaults)?),
        Ast::Drop { object_type, if_exists, names, cascade, .. } => {
            none(session::drop(*object_type, *if_exists, names, *cascade)?)
        }
        Ast::ShowVariable { variable } => none(session::show(variable)),
        Ast::ShowViews { .. } => none(Statement::ShowViews),
        Ast::Set(sqlparser::ast::Set::SetTransaction { .. }) => {
            none(Statement::TransactionNoOp { tag: "SET" })
        }
        Ast::Set(set) => none(session::set(set)?),
        Ast::Reset(r) => none(session::reset(&r.reset)?),
        Ast::StartTransaction { .. } => none(Statement::Begin),
        Ast::Commit { .. } => none(Statement::Commit),
        Ast::Rollback { savepoint: None, .. } => none(Statement::Rollback),
        Ast::Rollback { savepoint: Some(_), .. } => none(Statement::TransactionNoOp { tag: "ROLLBACK" }),
        Ast::Savepoint { .. } => none(Statement::TransactionNoOp { tag: "SAVEPOINT" }),
        Ast::ReleaseSavepoint { .. } => none(Statement::TransactionNoOp { tag: "RELEASE" }),
        Ast::Explain { analyze, statement, .. } => {
            if *analyze {
                return Err(PlanError::unsupported("EXPLAIN ANALYZE", None));
            }
            if !matches!(**statement, Ast::Query(_) | Ast::CreateView(_)) {
                return Err(PlanError::unsupported("EXPLAIN of this statement", None)
                    .with_hint("EXPLAIN a SELECT or a CREATE MATERIALIZED VIEW."));
            }
            let (inner, params) = plan_inner(statement, sql, catalog, defaults)?;
            Ok((Statement::Explain(Box::new(inner)), params))
        }
        Ast::Insert(_) => Err(PlanError::ReadOnly { statement: "INSERT".into() }),
        Ast::Update(_) => Err(PlanError::ReadOnly { statement: "UPDATE".into() }),
        Ast::Delete(_) => Err(PlanError::ReadOnly { statement: "DELETE".into() }),
        Ast::Truncate(_) => Err(PlanError::ReadOnly { statement: "TRUNCATE".into() }),
        Ast::Merge(_) => Err(PlanError::ReadOnly { statement: "MERGE".into() }),
        Ast::Copy { .. } => Err(PlanError::ReadOnly { statement: "COPY".into() }),
        other => {
            let text = other.to_string();
            let words: Vec<&str> = text.split_whitespace().take(2).collect();
            Err(PlanError::unsupported(format!("the statement {}", words.join(" ").to_uppercase()), None))
        }
    }
}

/// An object name as the catalog knows it: parts lower-cased unless quoted,
/// joined with `.`; `public.x` is `x`.
pub(crate) fn object_name(name: &ObjectName) -> Result<String, PlanError> {
    let parts = name
        .0
        .iter()
        .map(|p| match p {
            ObjectNamePart::Identifier(id) => Ok(ident_name(id)),
            ObjectNamePart::Function(_) => {
                Err(PlanError::unsupported("computed object names", None))
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(match parts.as_slice() {
        [schema, rest] if schema == "public" => rest.clone(),
        _ => parts.join("."),
    })
}

/// An option's or a SET's value as text: `'500ms'` → `500ms`, `8` → `8`, `on` → `on`.
pub(crate) fn option_value(e: &ast::Expr) -> String {
    match e {
        ast::Expr::Value(v) => match &v.value {
            ast::Value::Number(n, _) => n.clone(),
            ast::Value::Boolean(b) => b.to_string(),
            other => other
                .clone()
                .into_string()
                .unwrap_or_else(|| other.to_string()),
        },
        ast::Expr::Identifier(id) => ident_name(id),
        ast::Expr::UnaryOp {
            op: ast::UnaryOperator::Minus,
            expr,
        } => format!("-{}", option_value(expr)),
        other => other.to_string(),
    }
}

/// Looks a relation up; an unknown name is 42P01.
pub(crate) fn resolve_relation(
    catalog: &dyn Catalog,
    name: &ObjectName,
    sql: &str,
) -> Result<(String, RelationInfo), PlanError> {
    let resolved = object_name(name)?;
    match catalog.relation(&resolved) {
        Some(info) => Ok((resolved, info)),
        None => {
            let position = match name.0.first() {
                Some(ObjectNamePart::Identifier(id)) => parse::position_of(sql, id.span.start),
                _ => None,
            };
            Err(PlanError::UnknownRelation {
                name: resolved,
                position,
            })
        }
    }
}

/// The single relation a SELECT reads and its alias; `None` without FROM.
pub(crate) fn from_relation<'q>(
    select: &'q ast::Select,
    context: Option<&str>,
) -> Result<Option<(&'q ObjectName, Option<String>)>, PlanError> {
    let from = match select.from.as_slice() {
        [] => return Ok(None),
        [one] if one.joins.is_empty() => one,
        _ => {
            return Err(PlanError::unsupported_plural("joins", context)
                .with_hint("A materialized view reads one source; a read reads one view."))
        }
    };
    match &from.relation {
        TableFactor::Table {
            name,
            alias,
            args: None,
            ..
        } => {
            if alias.as_ref().is_some_and(|a| !a.columns.is_empty()) {
                return Err(PlanError::unsupported("column aliases in FROM", context));
            }
            Ok(Some((name, alias.as_ref().map(|a| ident_name(&a.name)))))
        }
        TableFactor::Derived { .. } => {
            Err(PlanError::unsupported_plural("subqueries in FROM", context))
        }
        _ => Err(PlanError::unsupported_plural(
            "table functions and other FROM items",
            context,
        )),
    }
}

/// The query as a single SELECT (no CTEs, set operations, VALUES or locks).
pub(crate) fn single_select<'q>(
    query: &'q ast::Query,
    context: Option<&str>,
) -> Result<&'q ast::Select, PlanError> {
    if query.with.is_some() {
        return Err(PlanError::unsupported(
            "WITH (common table expressions)",
            context,
        ));
    }
    if !query.locks.is_empty() {
        return Err(PlanError::unsupported("FOR UPDATE / FOR SHARE", context));
    }
    match &*query.body {
        SetExpr::Select(select) => Ok(select),
        SetExpr::SetOperation { .. } => Err(PlanError::unsupported(
            "UNION, INTERSECT and EXCEPT",
            context,
        )),
        SetExpr::Values(_) => Err(PlanError::unsupported("VALUES", context)),
        SetExpr::Query(inner) => single_select(inner, context),
        _ => Err(PlanError::unsupported("this kind of query", context)),
    }
}

/// The statement's text from `start` to its terminating `;` (or the end).
pub(crate) fn statement_text(sql: &str, start: Location) -> Option<String> {
    let begin = parse::byte_offset_of(sql, start)?;
    let rest = &sql[begin..];
    let tokens = Tokenizer::new(&PostgreSqlDialect {}, rest)
        .tokenize_with_location()
        .ok()?;
    let end = tokens
        .iter()
        .find(|t| t.token == Token::SemiColon)
        .and_then(|t| parse::byte_offset_of(rest, t.span.start))
        .unwrap_or(rest.len());
    Some(rest[..end].trim().to_owned())
}
