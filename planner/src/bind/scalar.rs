//! Binding scalar expressions: sqlparser `Expr` → [`Expr`] against one input
//! row (the relation's columns) or, in [`Mode::Group`], against the group row
//! (the GROUP BY values followed by the aggregates' values).
//!
//! Types are settled here: untyped string literals and parameters take the
//! type their context asks for (`ts > '2026-01-01'` casts the literal to the
//! column's type; `id = $1` gives `$1` the type of `id`), numeric operands are
//! promoted with explicit casts, and what cannot be matched is 42804.

use super::functions::agg_func;
use super::parse::position_of;
use super::types::{castable, numeric_typmod, pg_type_name, sql_type};
use crate::error::PlanError;
use crate::expr::{BinaryOp, Expr, ScalarFunc, UnaryOp};
use crate::plan::AggCall;
use common::{Column, SqlType, Value};
use rust_decimal::Decimal;
use sqlparser::ast::{self, CastKind, Ident, UnaryOperator as U, Value as V};
use std::str::FromStr;

/// The most parameters one statement can have: Bind counts them in 16 bits.
pub const MAX_PARAMETERS: usize = 65_535;

/// What a name in an expression resolves against, and what binding learned.
pub(crate) struct Binder<'a> {
    pub sql: &'a str,
    pub columns: Vec<Column>,
    /// Names that may qualify a column (`revenue.total`, `r.total`).
    pub qualifiers: Vec<String>,
    /// Inferred parameter types, by index; `None` until a context fixes one.
    pub params: Vec<Option<SqlType>>,
    /// False in view definitions: a view has no parameters.
    pub params_allowed: bool,
    pub group: Option<Grouping>,
    /// Set when an aggregate was met where none is allowed (the SELECT list
    /// is first bound row-wise to find out whether the query aggregates).
    pub saw_aggregate: bool,
}

/// The grouping of an aggregating query: keys bound against the input row,
/// and the aggregate calls found so far.
#[derive(Debug, Default)]
pub(crate) struct Grouping {
    pub keys: Vec<Expr>,
    pub calls: Vec<AggCall>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Against the input row; aggregates are not allowed in the named clause.
    Row(&'static str),
    /// Against the group row.
    Group,
}

pub(crate) fn ident_name(id: &Ident) -> String {
    if id.quote_style.is_some() {
        id.value.clone()
    } else {
        id.value.to_lowercase()
    }
}

/// The column name Postgres gives a select-list expression without an alias.
pub fn output_name(e: &ast::Expr) -> String {
    match e {
        ast::Expr::Identifier(id) => ident_name(id),
        ast::Expr::CompoundIdentifier(ids) => ids.last().map(ident_name).unwrap_or_default(),
        ast::Expr::Function(f) => match f.name.0.last() {
            Some(ast::ObjectNamePart::Identifier(id)) => ident_name(id),
            _ => "?column?".into(),
        },
        ast::Expr::Nested(inner) => output_name(inner),
        ast::Expr::Cast {
            expr, data_type, ..
        } => match output_name(expr).as_str() {
            "?column?" => sql_type(data_type)
                .map(|t| pg_type_name(t).to_owned())
                .unwrap_or_else(|_| "?column?".into()),
            name => name.to_owned(),
        },
        ast::Expr::TypedString(t) => sql_type(&t.data_type)
            .map(|t| pg_type_name(t).to_owned())
            .unwrap_or_else(|_| "?column?".into()),
        ast::Expr::Case { .. } => "case".into(),
        ast::Expr::Value(v) if matches!(v.value, V::Boolean(_)) => "bool".into(),
        ast::Expr::Exists { negated: false, .. } => "exists".into(),
        ast::Expr::Array(_) => "array".into(),
        ast::Expr::Ceil { .. } => "ceil".into(),
        ast::Expr::Floor { .. } => "floor".into(),
        ast::Expr::Substring { .. } => "substring".into(),
        ast::Expr::Position { .. } => "position".into(),
        ast::Expr::Trim { .. } => "btrim".into(),
        ast::Expr::Extract { .. } => "extract".into(),
        ast::Expr::Overlay { .. } => "overlay".into(),
        // A scalar subquery is named after its one column.
        ast::Expr::Subquery(q) => match q.body.as_ref() {
            ast::SetExpr::Select(select) => match select.projection.first() {
                Some(ast::SelectItem::ExprWithAlias { alias, .. }) => ident_name(alias),
                Some(ast::SelectItem::UnnamedExpr(e)) => output_name(e),
                _ => "?column?".into(),
            },
            _ => "?column?".into(),
        },
        _ => "?column?".into(),
    }
}

impl<'a> Binder<'a> {
    pub fn new(sql: &'a str, columns: Vec<Column>, qualifiers: Vec<String>) -> Binder<'a> {
        Binder {
            sql,
            columns,
            qualifiers,
            params: Vec::new(),
            params_allowed: true,
            group: None,
            saw_aggregate: false,
        }
    }

    fn pos(&self, id: &Ident) -> Option<u32> {
        position_of(self.sql, id.span.start)
    }

    pub fn bind(&mut self, e: &ast::Expr, mode: Mode) -> Result<Expr, PlanError> {
        match mode {
            Mode::Group => self.bind_grouped(e),
            Mode::Row(_) => self.bind_node(e, mode),
        }
    }

    /// A boolean condition (WHERE, HAVING).
    pub fn bind_condition(
        &mut self,
        e: &ast::Expr,
        mode: Mode,
        clause: &str,
    ) -> Result<Expr, PlanError> {
        let bound = self.bind(e, mode)?;
        self.expect_type(bound, SqlType::Boolean, clause)
    }

    pub fn expect_type(&mut self, e: Expr, ty: SqlType, context: &str) -> Result<Expr, PlanError> {
        match self.try_coerce(&e, ty)? {
            Some(c) if c.ty() == ty || (c.ty().is_integer() && ty.is_integer()) => Ok(c),
            _ => Err(PlanError::ExpectedType {
                context: context.into(),
                expected: ty,
                found: e.ty(),
            }),
        }
    }

    /// In an aggregating query: an aggregate call, a GROUP BY expression, a
    /// constant, or an expression built from those.
    fn bind_grouped(&mut self, e: &ast::Expr) -> Result<Expr, PlanError> {
        if let ast::Expr::Function(f) = e {
            if let Some(name) = agg_func(f) {
                return self.bind_aggregate(f, name);
            }
        }
        if let ast::Expr::Nested(inner) = e {
            return self.bind_grouped(inner);
        }
        let (params, saw) = (self.params.clone(), self.saw_aggregate);
        if let Ok(bound) = self.bind_node(e, Mode::Row("GROUP BY")) {
            let keys = &self.group.as_ref().expect("group mode has a grouping").keys;
            if let Some(i) = keys.iter().position(|k| *k == bound) {
                return Ok(Expr::Column {
                    index: i,
                    ty: bound.ty(),
                });
            }
            if bound.is_constant() {
                return Ok(bound);
            }
        }
        (self.params, self.saw_aggregate) = (params, saw);
        self.bind_node(e, Mode::Group)
    }

    fn column(&self, name: String, id: &Ident, mode: Mode) -> Result<Expr, PlanError> {
        if mode == Mode::Group {
            return Err(PlanError::Grouping {
                column: name,
                position: self.pos(id),
            });
        }
        let mut hits = self
            .columns
            .iter()
            .enumerate()
            .filter(|(_, c)| c.name == name);
        match (hits.next(), hits.next()) {
            (Some((index, c)), None) => Ok(Expr::Column { index, ty: c.ty }),
            (Some(_), Some(_)) => Err(PlanError::AmbiguousColumn {
                name,
                position: self.pos(id),
            }),
            (None, _) => Err(PlanError::UnknownColumn {
                name,
                available: self.columns.iter().map(|c| c.name.clone()).collect(),
                position: self.pos(id),
            }),
        }
    }

    pub(super) fn bind_args(
        &mut self,
        args: &[&ast::Expr],
        mode: Mode,
    ) -> Result<Vec<Expr>, PlanError> {
        args.iter().map(|a| self.bind(a, mode)).collect()
    }

    pub(super) fn bind_node(&mut self, e: &ast::Expr, mode: Mode) -> Result<Expr, PlanError> {
        use ast::Expr as A;
        Ok(match e {
            A::Identifier(id) => self.column(ident_name(id), id, mode)?,
            A::CompoundIdentifier(ids) => match ids.as_slice() {
                [q, c] if self.qualifiers.contains(&ident_name(q)) => {
                    self.column(ident_name(c), c, mode)?
                }
                [.., c] => {
                    let name = ids.iter().map(ident_name).collect::<Vec<_>>().join(".");
                    return Err(PlanError::UnknownColumn {
                        name,
                        available: vec![],
                        position: self.pos(c),
                    });
                }
                [] => return Err(PlanError::internal("empty compound identifier")),
            },
            A::Nested(inner) => self.bind(inner, mode)?,
            A::Value(v) => self.literal(&v.value)?,
            A::TypedString(t) => {
                let ty = sql_type(&t.data_type)?;
                let text = t.value.clone().into_string().unwrap_or_default();
                let value = Value::Text(text)
                    .cast(ty)
                    .map_err(|source| PlanError::InvalidLiteral { source })?;
                Expr::Literal { value, ty }
            }
            A::UnaryOp { op, expr } => self.unary(*op, expr, mode)?,
            A::BinaryOp { left, op, right } => {
                let l = self.bind(left, mode)?;
                let r = self.bind(right, mode)?;
                self.binary(op, l, r)?
            }
            A::IsNull(x) => Expr::IsNull {
                expr: Box::new(self.bind(x, mode)?),
                negated: false,
            },
            A::IsNotNull(x) => Expr::IsNull {
                expr: Box::new(self.bind(x, mode)?),
                negated: true,
            },
            A::IsTrue(x) | A::IsNotTrue(x) | A::IsFalse(x) | A::IsNotFalse(x) => {
                let b = self.bind_condition(x, mode, "IS TRUE")?;
                let want = matches!(e, A::IsTrue(_) | A::IsNotTrue(_));
                let negated = matches!(e, A::IsNotTrue(_) | A::IsNotFalse(_));
                // x IS TRUE ≡ coalesce(x = true, false): never NULL.
                let eq = Expr::Binary {
                    op: BinaryOp::Eq,
                    left: Box::new(b),
                    right: Box::new(Expr::literal(Value::Bool(want), SqlType::Boolean)),
                    ty: SqlType::Boolean,
                };
                let is = Expr::Function {
                    func: ScalarFunc::Coalesce,
                    args: vec![eq, Expr::literal(Value::Bool(false), SqlType::Boolean)],
                    ty: SqlType::Boolean,
                };
                if negated {
                    Expr::Unary {
                        op: UnaryOp::Not,
                        expr: Box::new(is),
                        ty: SqlType::Boolean,
                    }
                } else {
                    is
                }
            }
            A::InList {
                expr,
                list,
                negated,
            } => {
                let mut all = vec![self.bind(expr, mode)?];
                for item in list {
                    all.push(self.bind(item, mode)?);
                }
                let (mut all, _) = self.unify(all, "IN")?;
                let expr = Box::new(all.remove(0));
                Expr::InList {
                    expr,
                    list: all,
                    negated: *negated,
                }
            }
            A::Between {
                expr,
                negated,
                low,
                high,
            } => {
                let all = vec![
                    self.bind(expr, mode)?,
                    self.bind(low, mode)?,
                    self.bind(high, mode)?,
                ];
                let (all, _) = self.unify(all, "BETWEEN")?;
                let [x, lo, hi]: [Expr; 3] = all
                    .try_into()
                    .map_err(|_| PlanError::internal("between arity"))?;
                Expr::Between {
                    expr: Box::new(x),
                    low: Box::new(lo),
                    high: Box::new(hi),
                    negated: *negated,
                }
            }
            A::Like {
                negated,
                any,
                expr,
                pattern,
                escape_char,
            }
            | A::ILike {
                negated,
                any,
                expr,
                pattern,
                escape_char,
            } => {
                if *any {
                    return Err(PlanError::unsupported("LIKE ANY", None));
                }
                let op = if matches!(e, A::Like { .. }) {
                    "LIKE"
                } else {
                    "ILIKE"
                };
                let x = self.bind(expr, mode)?;
                let p = self.bind(pattern, mode)?;
                let (xc, pc) = (
                    self.try_coerce(&x, SqlType::Text)?,
                    self.try_coerce(&p, SqlType::Text)?,
                );
                let (Some(x), Some(p)) = (
                    xc.filter(|x| x.ty().is_text()),
                    pc.filter(|p| p.ty().is_text()),
                ) else {
                    return Err(PlanError::OperatorTypes {
                        op: op.into(),
                        left: x.ty(),
                        right: p.ty(),
                    });
                };
                let escape = match escape_char.as_deref() {
                    None => Some('\\'),
                    Some(v) => {
                        let s = v.clone().into_string().unwrap_or_default();
                        let mut chars = s.chars();
                        match (chars.next(), chars.next()) {
                            (None, _) => None,
                            (Some(c), None) => Some(c),
                            _ => {
                                return Err(PlanError::unsupported(
                                    "a multi-character LIKE escape",
                                    None,
                                ))
                            }
                        }
                    }
                };
                Expr::Like {
                    expr: Box::new(x),
                    pattern: Box::new(p),
                    negated: *negated,
                    case_insensitive: op == "ILIKE",
                    escape,
                }
            }
            A::Case {
                operand,
                conditions,
                else_result,
                ..
            } => {
                let operand = operand.as_ref().map(|o| self.bind(o, mode)).transpose()?;
                let mut whens = Vec::new();
                let mut results = Vec::new();
                for cw in conditions {
                    let w = self.bind(&cw.condition, mode)?;
                    let w = match &operand {
                        Some(o) => {
                            let (mut pair, _) = self.unify(vec![o.clone(), w], "CASE/WHEN")?;
                            pair.pop().expect("two")
                        }
                        None => self.expect_type(w, SqlType::Boolean, "CASE/WHEN")?,
                    };
                    whens.push(w);
                    results.push(self.bind(&cw.result, mode)?);
                }
                let has_else = else_result.is_some();
                if let Some(x) = else_result {
                    results.push(self.bind(x, mode)?);
                }
                let (mut results, ty) = self.unify(results, "CASE")?;
                let otherwise = if has_else {
                    results.pop().map(Box::new)
                } else {
                    None
                };
                let operand = match operand {
                    // The operand was unified with each WHEN; re-coerce an unknown one.
                    Some(o) => Some(Box::new(match whens.first() {
                        Some(w) => self.try_coerce(&o, w.ty())?.unwrap_or(o),
                        None => o,
                    })),
                    None => None,
                };
                Expr::Case {
                    operand,
                    whens: whens.into_iter().zip(results).collect(),
                    otherwise,
                    ty,
                }
            }
            A::Cast {
                kind,
                expr,
                data_type,
                format,
                ..
            } => {
                if !matches!(kind, CastKind::Cast | CastKind::DoubleColon) || format.is_some() {
                    return Err(PlanError::unsupported(format!("{kind:?} casts"), None));
                }
                let ty = sql_type(data_type)?;
                let inner = self.bind(expr, mode)?;
                let cast = self.cast(inner, ty)?;
                match numeric_typmod(data_type)? {
                    None => cast,
                    Some(t) => {
                        let int =
                            |n: u32| Expr::literal(Value::Int(i64::from(n)), SqlType::Integer);
                        Expr::Function {
                            func: ScalarFunc::Typmod,
                            args: vec![cast, int(t.precision), int(t.scale)],
                            ty: SqlType::Numeric,
                        }
                    }
                }
            }
            A::Function(f) => self.function(f, mode)?,
            A::Subquery(_) | A::Exists { .. } | A::InSubquery { .. } => {
                return Err(PlanError::unsupported_plural("subqueries", None))
            }
            other => {
                return Err(PlanError::unsupported(
                    format!("the expression `{other}`"),
                    None,
                ))
            }
        })
    }

    fn literal(&mut self, v: &V) -> Result<Expr, PlanError> {
        Ok(match v {
            V::Number(s, _) => {
                let (value, ty) = if let Ok(i) = s.parse::<i64>() {
                    (
                        Value::Int(i),
                        if i32::try_from(i).is_ok() {
                            SqlType::Integer
                        } else {
                            SqlType::BigInt
                        },
                    )
                } else {
                    let d = Decimal::from_str(s)
                        .or_else(|_| Decimal::from_scientific(s))
                        .map_err(|_| PlanError::InvalidLiteral {
                            source: common::CastError::OutOfRange {
                                value: s.clone(),
                                ty: SqlType::Numeric,
                            },
                        })?;
                    (Value::Numeric(d), SqlType::Numeric)
                };
                Expr::Literal { value, ty }
            }
            V::Boolean(b) => Expr::literal(Value::Bool(*b), SqlType::Boolean),
            V::Null => Expr::literal(Value::Null, SqlType::Text),
            V::Placeholder(p) => {
                let Some(digits) = p.strip_prefix('$') else {
                    return Err(PlanError::Syntax {
                        message: format!("invalid parameter {p}; use $1, $2, ..."),
                        position: None,
                    });
                };
                // The protocol numbers at most 65535 parameters (Bind's count
                // is 16 bits): check before sizing anything by the number.
                let Some(n) = digits
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=MAX_PARAMETERS).contains(n))
                else {
                    return Err(PlanError::NoSuchParameter {
                        index: digits.to_owned(),
                    });
                };
                if !self.params_allowed {
                    return Err(PlanError::unsupported(
                        "parameters ($1, $2, ...)",
                        Some("materialized view definitions"),
                    )
                    .with_hint("Write the value into the view's SQL."));
                }
                if self.params.len() < n {
                    self.params.resize(n, None);
                }
                Expr::Parameter {
                    index: n - 1,
                    ty: self.params[n - 1].unwrap_or(SqlType::Text),
                }
            }
            other => match other.clone().into_string() {
                Some(s) => Expr::literal(Value::Text(s), SqlType::Text),
                None => return Err(PlanError::unsupported(format!("the literal {other}"), None)),
            },
        })
    }

    pub(super) fn cast(&mut self, inner: Expr, ty: SqlType) -> Result<Expr, PlanError> {
        if self.is_unknown(&inner) && !(ty.is_text() && matches!(inner, Expr::Literal { .. })) {
            return self.coerce_to(&inner, ty);
        }
        if !castable(inner.ty(), ty) {
            return Err(PlanError::CannotCast {
                from: inner.ty(),
                to: ty,
            });
        }
        Ok(Expr::Cast {
            expr: Box::new(inner),
            ty,
        })
    }

    pub(super) fn unary(&mut self, op: U, x: &ast::Expr, mode: Mode) -> Result<Expr, PlanError> {
        let inner = self.bind(x, mode)?;
        match op {
            U::Not => {
                let b = self.expect_type(inner, SqlType::Boolean, "NOT")?;
                Ok(Expr::Unary {
                    op: UnaryOp::Not,
                    expr: Box::new(b),
                    ty: SqlType::Boolean,
                })
            }
            U::Minus | U::Plus => {
                let inner = if self.is_unknown(&inner) {
                    self.try_coerce(&inner, SqlType::Numeric)
                        .ok()
                        .flatten()
                        .ok_or(PlanError::UnaryOperatorType {
                            op: "-".into(),
                            operand: SqlType::Text,
                        })?
                } else {
                    inner
                };
                let ty = inner.ty();
                if !ty.is_numeric() {
                    return Err(PlanError::UnaryOperatorType {
                        op: op.to_string(),
                        operand: ty,
                    });
                }
                Ok(match (op, inner) {
                    (U::Plus, e) => e,
                    (
                        _,
                        Expr::Literal {
                            value: Value::Int(i),
                            ty,
                        },
                    ) if i != i64::MIN => Expr::Literal {
                        value: Value::Int(-i),
                        ty,
                    },
                    (
                        _,
                        Expr::Literal {
                            value: Value::Numeric(d),
                            ty,
                        },
                    ) => {
                        let (value, ty) = match i64::try_from(-d) {
                            Ok(i) if d.scale() == 0 => (Value::Int(i), SqlType::BigInt),
                            _ => (Value::Numeric(-d), ty),
                        };
                        Expr::Literal { value, ty }
                    }
                    (_, e) => Expr::Unary {
                        op: UnaryOp::Neg,
                        expr: Box::new(e),
                        ty,
                    },
                })
            }
            other => Err(PlanError::unsupported(
                format!("the operator {other}"),
                None,
            )),
        }
    }
}
