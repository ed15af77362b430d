//! Coercion: untyped literals and parameters take the type their context
//! asks for; numeric operands are promoted; operators are type-checked.

use super::scalar::Binder;
use crate::error::PlanError;
use crate::expr::{BinaryOp, Expr};
use common::{SqlType, Value};
use sqlparser::ast::BinaryOperator as B;

impl Binder<'_> {
    /// An untyped string literal, NULL, or a parameter whose type no context fixed yet.
    pub fn is_unknown(&self, e: &Expr) -> bool {
        match e {
            Expr::Literal {
                ty: SqlType::Text,
                value: Value::Text(_) | Value::Null,
            } => true,
            Expr::Parameter { index, .. } => self.params.get(*index).is_some_and(Option::is_none),
            _ => false,
        }
    }

    /// `e` as type `ty` where Postgres converts implicitly; `None` where it
    /// would not. A bad literal (`'abc'` as integer) is an error.
    pub fn try_coerce(&mut self, e: &Expr, ty: SqlType) -> Result<Option<Expr>, PlanError> {
        if self.is_unknown(e) {
            return Ok(Some(match e {
                Expr::Parameter { index, .. } => {
                    self.params[*index] = Some(ty);
                    Expr::Parameter { index: *index, ty }
                }
                Expr::Literal { value, .. } => {
                    let value = value
                        .cast(ty)
                        .map_err(|source| PlanError::InvalidLiteral { source })?;
                    Expr::Literal { value, ty }
                }
                _ => unreachable!("only literals and parameters are unknown"),
            }));
        }
        let from = e.ty();
        let temporal =
            |t: SqlType| matches!(t, SqlType::Date | SqlType::Timestamp | SqlType::TimestampTz);
        Ok(if from == ty || (from.is_text() && ty.is_text()) {
            Some(e.clone())
        } else if (from.is_numeric() && ty.is_numeric()) || (temporal(from) && temporal(ty)) {
            Some(Expr::Cast {
                expr: Box::new(e.clone()),
                ty,
            })
        } else {
            None
        })
    }

    /// A parameter carries the type it had when it was bound; a later use
    /// may have fixed it since (`$1 + $1`). This is `e` with the type as of now.
    fn settled(&self, e: &Expr) -> Expr {
        match e {
            Expr::Parameter { index, .. } => match self.params.get(*index).copied().flatten() {
                Some(ty) => Expr::Parameter { index: *index, ty },
                None => e.clone(),
            },
            _ => e.clone(),
        }
    }

    /// `e` as `ty` (an unknown takes the type), or 42846 where Postgres
    /// would not convert implicitly.
    pub fn coerce_to(&mut self, e: &Expr, ty: SqlType) -> Result<Expr, PlanError> {
        let e = self.settled(e);
        self.try_coerce(&e, ty)?.ok_or(PlanError::CannotCast {
            from: e.ty(),
            to: ty,
        })
    }

    /// Brings `exprs` to one type (CASE branches, IN lists, BETWEEN bounds).
    pub fn unify(
        &mut self,
        exprs: Vec<Expr>,
        context: &str,
    ) -> Result<(Vec<Expr>, SqlType), PlanError> {
        let known: Vec<SqlType> = exprs
            .iter()
            .filter(|e| !self.is_unknown(e))
            .map(Expr::ty)
            .collect();
        let mut ty = known.first().copied().unwrap_or(SqlType::Text);
        for &t in &known[1.min(known.len())..] {
            let next = if t == ty {
                Some(t)
            } else if t.is_text() && ty.is_text() {
                Some(SqlType::Text)
            } else if let Some(n) = SqlType::numeric_supertype(ty, t) {
                Some(n)
            } else {
                match (ty, t) {
                    (SqlType::TimestampTz, _) | (_, SqlType::TimestampTz)
                        if [ty, t].iter().all(|x| is_temporal(*x)) =>
                    {
                        Some(SqlType::TimestampTz)
                    }
                    _ if is_temporal(ty) && is_temporal(t) => Some(SqlType::Timestamp),
                    _ => None,
                }
            };
            ty = next.ok_or(PlanError::CannotMatch {
                context: context.into(),
                left: ty,
                right: t,
            })?;
        }
        let out = exprs
            .iter()
            .map(|e| {
                self.try_coerce(e, ty)?.ok_or(PlanError::CannotMatch {
                    context: context.into(),
                    left: ty,
                    right: e.ty(),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok((out, ty))
    }

    pub fn binary(&mut self, op: &B, l: Expr, r: Expr) -> Result<Expr, PlanError> {
        let op = match op {
            B::Plus => BinaryOp::Add,
            B::Minus => BinaryOp::Sub,
            B::Multiply => BinaryOp::Mul,
            B::Divide => BinaryOp::Div,
            B::Modulo => BinaryOp::Mod,
            B::Eq => BinaryOp::Eq,
            B::NotEq => BinaryOp::NotEq,
            B::Lt => BinaryOp::Lt,
            B::LtEq => BinaryOp::LtEq,
            B::Gt => BinaryOp::Gt,
            B::GtEq => BinaryOp::GtEq,
            B::And => BinaryOp::And,
            B::Or => BinaryOp::Or,
            B::StringConcat => BinaryOp::Concat,
            other => {
                return Err(PlanError::unsupported(
                    format!("the operator {other}"),
                    None,
                ))
            }
        };
        let mismatch = |l: &Expr, r: &Expr| PlanError::OperatorTypes {
            op: op.symbol().into(),
            left: l.ty(),
            right: r.ty(),
        };
        let (l, r) = match (self.is_unknown(&l), self.is_unknown(&r)) {
            (true, true) if op.is_arithmetic() => {
                let both_params =
                    matches!((&l, &r), (Expr::Parameter { .. }, Expr::Parameter { .. }));
                if !both_params {
                    return Err(mismatch(&l, &r));
                }
                (
                    self.coerce_to(&l, SqlType::Numeric)?,
                    self.coerce_to(&r, SqlType::Numeric)?,
                )
            }
            (true, true) => {
                let ty = if matches!(op, BinaryOp::And | BinaryOp::Or) {
                    SqlType::Boolean
                } else {
                    SqlType::Text
                };
                (self.coerce_to(&l, ty)?, self.coerce_to(&r, ty)?)
            }
            (true, false) => (self.coerce_operand(&l, &r, op)?, r),
            (false, true) => {
                let r2 = self.coerce_operand(&r, &l, op)?;
                (l, r2)
            }
            (false, false) => (l, r),
        };
        let (lt, rt) = (l.ty(), r.ty());
        let boxed = |l, r, ty| Expr::Binary {
            op,
            left: Box::new(l),
            right: Box::new(r),
            ty,
        };
        match op {
            BinaryOp::And | BinaryOp::Or => {
                let l = self.expect_type(l, SqlType::Boolean, op.symbol())?;
                let r = self.expect_type(r, SqlType::Boolean, op.symbol())?;
                Ok(boxed(l, r, SqlType::Boolean))
            }
            BinaryOp::Concat => {
                if !lt.is_text() && !rt.is_text() {
                    return Err(mismatch(&l, &r));
                }
                let text = |e: Expr| {
                    if e.ty().is_text() {
                        e
                    } else {
                        Expr::Cast {
                            expr: Box::new(e),
                            ty: SqlType::Text,
                        }
                    }
                };
                Ok(boxed(text(l), text(r), SqlType::Text))
            }
            _ if op.is_comparison() => {
                let comparable = lt == rt
                    || (lt.is_numeric() && rt.is_numeric())
                    || (lt.is_text() && rt.is_text())
                    || (is_temporal(lt) && is_temporal(rt));
                if !comparable {
                    return Err(mismatch(&l, &r));
                }
                Ok(boxed(l, r, SqlType::Boolean))
            }
            _ => {
                let ty = SqlType::numeric_supertype(lt, rt).ok_or_else(|| mismatch(&l, &r))?;
                let promote = |e: Expr| {
                    if e.ty() == ty {
                        e
                    } else {
                        Expr::Cast {
                            expr: Box::new(e),
                            ty,
                        }
                    }
                };
                Ok(boxed(promote(l), promote(r), ty))
            }
        }
    }

    /// Types an unknown operand from the other side of `op`.
    pub(super) fn coerce_operand(
        &mut self,
        unknown: &Expr,
        other: &Expr,
        op: BinaryOp,
    ) -> Result<Expr, PlanError> {
        let target = match op {
            BinaryOp::Concat => SqlType::Text,
            BinaryOp::And | BinaryOp::Or => SqlType::Boolean,
            _ => other.ty(),
        };
        match self.try_coerce(unknown, target) {
            Ok(Some(e)) => Ok(e),
            // `'abc' + 1`: the literal cannot be a number, so the operator does not exist.
            Err(_) | Ok(None) if op.is_arithmetic() => Err(PlanError::OperatorTypes {
                op: op.symbol().into(),
                left: SqlType::Text,
                right: other.ty(),
            }),
            Err(e) => Err(e),
            Ok(None) => Err(PlanError::OperatorTypes {
                op: op.symbol().into(),
                left: unknown.ty(),
                right: other.ty(),
            }),
        }
    }
}

pub(super) fn is_temporal(t: SqlType) -> bool {
    matches!(t, SqlType::Date | SqlType::Timestamp | SqlType::TimestampTz)
}
