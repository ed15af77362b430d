//! Binding function calls: the aggregates (COUNT, SUM, AVG, MIN, MAX) and
//! the scalar functions Eddy evaluates.

use super::scalar::{ident_name, Binder, Mode};
use crate::error::PlanError;
use crate::expr::{Expr, ScalarFunc};
use crate::plan::{AggCall, AggFunc};
use common::{SqlType, Value};
use sqlparser::ast::{self, DuplicateTreatment, FunctionArg, FunctionArgExpr, FunctionArguments};

/// Inside an aggregate's argument: another aggregate is a nesting error.
pub(super) const IN_AGGREGATE: &str = "aggregate function calls";

pub(super) fn agg_func(f: &ast::Function) -> Option<&'static str> {
    let name = f.name.0.last()?;
    let ast::ObjectNamePart::Identifier(id) = name else {
        return None;
    };
    match ident_name(id).as_str() {
        "count" => Some("count"),
        "sum" => Some("sum"),
        "avg" => Some("avg"),
        "min" => Some("min"),
        "max" => Some("max"),
        _ => None,
    }
}

impl Binder<'_> {
    pub(super) fn bind_aggregate(
        &mut self,
        f: &ast::Function,
        name: &'static str,
    ) -> Result<Expr, PlanError> {
        if f.over.is_some() {
            return Err(PlanError::unsupported_plural("window functions", None));
        }
        if f.filter.is_some() || !f.within_group.is_empty() {
            return Err(PlanError::unsupported(
                format!("{name}(...) FILTER / WITHIN GROUP"),
                None,
            ));
        }
        let FunctionArguments::List(list) = &f.args else {
            return Err(PlanError::FunctionTypes {
                name: name.into(),
                args: vec![],
            });
        };
        if list.duplicate_treatment == Some(DuplicateTreatment::Distinct) {
            return Err(PlanError::unsupported(
                format!("{}(DISTINCT ...)", name.to_uppercase()),
                None,
            )
            .with_hint("Aggregate over GROUP BY of the distinct values instead."));
        }
        if !list.clauses.is_empty() {
            return Err(PlanError::unsupported(
                format!("ORDER BY or LIMIT inside {name}(...)"),
                None,
            ));
        }
        let (func, arg) = match list.args.as_slice() {
            [FunctionArg::Unnamed(FunctionArgExpr::Wildcard)] if name == "count" => {
                (AggFunc::CountStar, None)
            }
            [FunctionArg::Unnamed(FunctionArgExpr::Expr(x))] => {
                let func = match name {
                    "count" => AggFunc::Count,
                    "sum" => AggFunc::Sum,
                    "avg" => AggFunc::Avg,
                    "min" => AggFunc::Min,
                    _ => AggFunc::Max,
                };
                let mut arg = self.bind_node(x, Mode::Row(IN_AGGREGATE))?;
                if self.is_unknown(&arg) {
                    let ty = if matches!(func, AggFunc::Sum | AggFunc::Avg) {
                        SqlType::Numeric
                    } else {
                        SqlType::Text
                    };
                    arg = self.try_coerce(&arg, ty)?.unwrap_or(arg);
                }
                (func, Some(arg))
            }
            _ => {
                let args = self.bind_args(list_exprs(list)?.as_slice(), Mode::Row(IN_AGGREGATE))?;
                return Err(PlanError::FunctionTypes {
                    name: name.into(),
                    args: args.iter().map(Expr::ty).collect(),
                });
            }
        };
        let input = arg.as_ref().map(Expr::ty);
        let output_type = match (func, input) {
            (AggFunc::CountStar | AggFunc::Count, _) => SqlType::BigInt,
            (AggFunc::Sum, Some(SqlType::BigInt)) => SqlType::Numeric,
            (AggFunc::Sum, Some(t)) if t.is_integer() => SqlType::BigInt,
            // As Postgres: sum(real) is real, avg(real) double precision.
            (AggFunc::Sum, Some(SqlType::Real)) => SqlType::Real,
            (AggFunc::Sum | AggFunc::Avg, Some(t)) if t.is_float() => SqlType::Double,
            (AggFunc::Avg, Some(t)) if t.is_integer() => SqlType::Numeric,
            (AggFunc::Sum | AggFunc::Avg, Some(SqlType::Numeric)) => SqlType::Numeric,
            (AggFunc::Min | AggFunc::Max, Some(t)) => t,
            (_, t) => {
                return Err(PlanError::FunctionTypes {
                    name: name.into(),
                    args: t.into_iter().collect(),
                })
            }
        };
        let call = AggCall {
            func,
            arg,
            output_type,
        };
        let group = self.group.as_mut().expect("group mode has a grouping");
        let j = match group.calls.iter().position(|c| *c == call) {
            Some(j) => j,
            None => {
                group.calls.push(call);
                group.calls.len() - 1
            }
        };
        Ok(Expr::Column {
            index: group.keys.len() + j,
            ty: output_type,
        })
    }

    pub(super) fn function(&mut self, f: &ast::Function, mode: Mode) -> Result<Expr, PlanError> {
        if let Some(name) = agg_func(f) {
            return match mode {
                Mode::Group => self.bind_aggregate(f, name),
                Mode::Row(IN_AGGREGATE) => Err(PlanError::NestedAggregate),
                Mode::Row(clause) => {
                    self.saw_aggregate = true;
                    Err(PlanError::AggregateNotAllowed { clause })
                }
            };
        }
        if f.over.is_some() {
            return Err(PlanError::unsupported_plural("window functions", None));
        }
        let name = match f.name.0.last() {
            Some(ast::ObjectNamePart::Identifier(id)) => ident_name(id),
            _ => f.name.to_string().to_lowercase(),
        };
        let args: Vec<&ast::Expr> = match &f.args {
            FunctionArguments::None => vec![],
            FunctionArguments::List(list) => list_exprs(list)?,
            FunctionArguments::Subquery(_) => {
                return Err(PlanError::unsupported_plural("subqueries", None))
            }
        };
        let text = |s: &str| Expr::literal(Value::Text(s.into()), SqlType::Text);
        match (name.as_str(), args.len()) {
            ("version", 0) => {
                return Ok(text(concat!(
                    "PostgreSQL 15.0 (Eddy ",
                    env!("CARGO_PKG_VERSION"),
                    ") on x86_64, a streaming database"
                )))
            }
            ("current_database", 0) => return Ok(text("eddy")),
            ("current_schema", 0) => return Ok(text("public")),
            _ => {}
        }
        let Some(func) = ScalarFunc::from_name(&name) else {
            return Err(PlanError::UnknownFunction { name });
        };
        let bound = self.bind_args(&args, mode)?;
        let types = |b: &[Expr]| b.iter().map(Expr::ty).collect::<Vec<_>>();
        let bad = |b: &[Expr]| PlanError::FunctionTypes {
            name: func.name().into(),
            args: types(b),
        };
        let one = |s: &mut Self,
                   want: fn(SqlType) -> bool,
                   default: SqlType|
         -> Result<Expr, PlanError> {
            match bound.as_slice() {
                [x] => {
                    let x = if s.is_unknown(x) {
                        s.coerce_to(x, default)?
                    } else {
                        x.clone()
                    };
                    if want(x.ty()) {
                        Ok(x)
                    } else {
                        Err(bad(&bound))
                    }
                }
                _ => Err(bad(&bound)),
            }
        };
        Ok(match func {
            ScalarFunc::Lower | ScalarFunc::Upper => {
                let x = one(self, SqlType::is_text, SqlType::Text)?;
                Expr::Function {
                    func,
                    args: vec![x],
                    ty: SqlType::Text,
                }
            }
            ScalarFunc::Length => {
                let x = one(self, SqlType::is_text, SqlType::Text)?;
                Expr::Function {
                    func,
                    args: vec![x],
                    ty: SqlType::Integer,
                }
            }
            ScalarFunc::Abs => {
                let x = one(self, SqlType::is_numeric, SqlType::Numeric)?;
                let ty = x.ty();
                Expr::Function {
                    func,
                    args: vec![x],
                    ty,
                }
            }
            ScalarFunc::Round => {
                let mut args = bound.clone();
                if let Some(x) = args.first().filter(|x| self.is_unknown(x)).cloned() {
                    args[0] = self.coerce_to(&x, SqlType::Numeric)?;
                }
                if args.len() == 2 {
                    let d = args[1].clone();
                    args[1] = self.expect_type(d, SqlType::Integer, "round")?;
                }
                let ty = match args.first().map(Expr::ty) {
                    Some(t) if t.is_float() && args.len() == 1 => SqlType::Double,
                    Some(t) if t.is_integer() || t == SqlType::Numeric => SqlType::Numeric,
                    _ => return Err(bad(&args)),
                };
                if !(1..=2).contains(&args.len()) {
                    return Err(bad(&args));
                }
                Expr::Function { func, args, ty }
            }
            ScalarFunc::Coalesce | ScalarFunc::NullIf => {
                if bound.is_empty() || (func == ScalarFunc::NullIf && bound.len() != 2) {
                    return Err(bad(&bound));
                }
                let (args, ty) = self.unify(bound, func.name())?;
                Expr::Function { func, args, ty }
            }
            // Only casts make it (`from_name` never names it).
            ScalarFunc::Typmod => return Err(PlanError::UnknownFunction { name }),
        })
    }
}

fn list_exprs(list: &ast::FunctionArgumentList) -> Result<Vec<&ast::Expr>, PlanError> {
    if list.duplicate_treatment == Some(DuplicateTreatment::Distinct) || !list.clauses.is_empty() {
        return Err(PlanError::unsupported(
            "DISTINCT or ORDER BY in a function's arguments",
            None,
        ));
    }
    list.args
        .iter()
        .map(|a| match a {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Ok(e),
            _ => Err(PlanError::unsupported(
                "named or wildcard function arguments",
                None,
            )),
        })
        .collect()
}
