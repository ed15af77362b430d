//! The bound statement: what the server executes. One variant per command.

use crate::expr::Expr;
use crate::plan::{ReadPlan, SourceDef, ViewDef, ViewPlan};
use common::SqlType;

/// A statement with names resolved and types known.
#[derive(Debug, Clone, PartialEq)]
pub enum Statement {
    CreateSource(SourceDef),
    CreateView(ViewDef),
    DropView {
        name: String,
        if_exists: bool,
    },
    DropSource {
        name: String,
        if_exists: bool,
    },
    ShowSources,
    ShowViews,
    Select(ReadPlan),
    /// `EXPLAIN SELECT ...` or `EXPLAIN CREATE MATERIALIZED VIEW ...`.
    Explain(Box<Statement>),
    /// `SET [LOCAL] name = value`; `value` is `None` for `SET name TO
    /// DEFAULT`. Names are lower-cased; values are the literal's text
    /// (`'500ms'` → `500ms`). A `local` setting lasts until the end of the
    /// transaction block.
    SetVariable {
        name: String,
        value: Option<String>,
        local: bool,
    },
    ShowVariable {
        name: String,
    },
    /// `RESET name`; `RESET ALL` gives the name `all`.
    ResetVariable {
        name: String,
    },
    Begin,
    Commit,
    Rollback,
    /// A transaction command with nothing to do inside a transaction of
    /// reads: `SAVEPOINT`, `RELEASE`, `ROLLBACK TO`, `SET TRANSACTION` and
    /// `SET SESSION CHARACTERISTICS AS TRANSACTION`. Accepted, as clients
    /// send them around every unit of work.
    TransactionNoOp {
        tag: &'static str,
    },
}

/// Server-wide defaults a statement may override.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Defaults {
    pub partitions: u32,
    pub standbys: u32,
}

impl Statement {
    /// The Postgres command tag for the statement's CommandComplete message
    /// (for SELECT the server appends the row count).
    pub fn command_tag(&self) -> &'static str {
        match self {
            Statement::CreateSource(_) => "CREATE SOURCE",
            Statement::CreateView(_) => "CREATE MATERIALIZED VIEW",
            Statement::DropView { .. } => "DROP MATERIALIZED VIEW",
            Statement::DropSource { .. } => "DROP SOURCE",
            Statement::ShowSources | Statement::ShowViews | Statement::ShowVariable { .. } => {
                "SHOW"
            }
            Statement::Select(_) => "SELECT",
            Statement::Explain(_) => "EXPLAIN",
            Statement::SetVariable { .. } => "SET",
            Statement::ResetVariable { .. } => "RESET",
            Statement::Begin => "BEGIN",
            Statement::Commit => "COMMIT",
            Statement::Rollback => "ROLLBACK",
            Statement::TransactionNoOp { tag } => tag,
        }
    }

    /// Calls `f` on every bound expression of the statement.
    pub fn visit_exprs_mut(&mut self, f: &mut dyn FnMut(&mut Expr)) {
        match self {
            Statement::Select(p) => {
                let agg = p.aggregate.iter_mut().flat_map(|a| {
                    a.group_by
                        .iter_mut()
                        .chain(a.aggregates.iter_mut().filter_map(|c| c.arg.as_mut()))
                        .chain(a.having.as_mut())
                });
                let keys = p.key_lookup.iter_mut().flatten();
                let sorts = p.order_by.iter_mut().map(|k| &mut k.expr);
                for e in keys
                    .chain(p.filter.as_mut())
                    .chain(agg)
                    .chain(p.projection.iter_mut())
                    .chain(sorts)
                    .chain(p.limit.as_mut())
                    .chain(p.offset.as_mut())
                {
                    e.visit_mut(f);
                }
            }
            Statement::CreateView(v) => {
                let exprs: Vec<&mut Expr> = match &mut v.plan {
                    ViewPlan::Aggregate(a) => a
                        .filter
                        .as_mut()
                        .into_iter()
                        .chain(a.group_by.iter_mut())
                        .chain(a.aggregates.iter_mut().filter_map(|c| c.arg.as_mut()))
                        .chain(a.having.as_mut())
                        .chain(a.output.iter_mut())
                        .collect(),
                    ViewPlan::Project(p) => p
                        .filter
                        .as_mut()
                        .into_iter()
                        .chain(p.output.iter_mut())
                        .collect(),
                };
                for e in exprs {
                    e.visit_mut(f);
                }
            }
            Statement::Explain(inner) => inner.visit_exprs_mut(f),
            _ => {}
        }
    }
}

/// The types of the statement's parameters `$1..$n`, in order. A parameter
/// whose type no context fixed (or that is never used) is `text`.
pub fn param_types(stmt: &Statement) -> Vec<SqlType> {
    let mut types: Vec<Option<SqlType>> = Vec::new();
    let mut stmt = stmt.clone();
    stmt.visit_exprs_mut(&mut |e| {
        if let Expr::Parameter { index, ty } = e {
            if types.len() <= *index {
                types.resize(*index + 1, None);
            }
            types[*index].get_or_insert(*ty);
        }
    });
    types
        .into_iter()
        .map(|t| t.unwrap_or(SqlType::Text))
        .collect()
}
