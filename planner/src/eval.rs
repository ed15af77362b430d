//! Evaluating a bound [`Expr`] on one row, with Postgres semantics: three-valued
//! logic, checked integer arithmetic (22003), division by zero (22012),
//! integer division truncating toward zero.

use crate::error::EvalError;
use crate::expr::{BinaryOp, Expr, ScalarFunc, UnaryOp};
use common::{SqlType, Value};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::{Decimal, RoundingStrategy};
use std::cmp::Ordering;

impl Expr {
    /// Evaluates against `row` (the row the expression was bound against) and
    /// the statement's parameters (already decoded to their bound types).
    pub fn eval(&self, row: &[Value], params: &[Value]) -> Result<Value, EvalError> {
        match self {
            Expr::Column { index, .. } => Ok(row.get(*index).cloned().unwrap_or(Value::Null)),
            Expr::Literal { value, .. } => Ok(value.clone()),
            Expr::Parameter { index, ty } => {
                let v = params
                    .get(*index)
                    .ok_or(EvalError::MissingParameter { index: index + 1 })?;
                Ok(v.cast(*ty)?)
            }
            Expr::Unary { op, expr, ty } => unary(*op, expr.eval(row, params)?, *ty),
            Expr::Binary {
                op: BinaryOp::And,
                left,
                right,
                ..
            } => {
                let l = truth(&left.eval(row, params)?)?;
                if l == Some(false) {
                    return Ok(Value::Bool(false));
                }
                let r = truth(&right.eval(row, params)?)?;
                Ok(match (l, r) {
                    (_, Some(false)) => Value::Bool(false),
                    (Some(true), Some(true)) => Value::Bool(true),
                    _ => Value::Null,
                })
            }
            Expr::Binary {
                op: BinaryOp::Or,
                left,
                right,
                ..
            } => {
                let l = truth(&left.eval(row, params)?)?;
                if l == Some(true) {
                    return Ok(Value::Bool(true));
                }
                let r = truth(&right.eval(row, params)?)?;
                Ok(match (l, r) {
                    (_, Some(true)) => Value::Bool(true),
                    (Some(false), Some(false)) => Value::Bool(false),
                    _ => Value::Null,
                })
            }
            Expr::Binary {
                op,
                left,
                right,
                ty,
            } => binary(*op, left.eval(row, params)?, right.eval(row, params)?, *ty),
            Expr::IsNull { expr, negated } => {
                Ok(Value::Bool(expr.eval(row, params)?.is_null() != *negated))
            }
            Expr::InList {
                expr,
                list,
                negated,
            } => {
                let v = expr.eval(row, params)?;
                if v.is_null() {
                    return Ok(Value::Null);
                }
                let mut saw_null = false;
                for item in list {
                    match compare(&v, &item.eval(row, params)?)? {
                        Some(Ordering::Equal) => return Ok(Value::Bool(!negated)),
                        None => saw_null = true,
                        _ => {}
                    }
                }
                Ok(if saw_null {
                    Value::Null
                } else {
                    Value::Bool(*negated)
                })
            }
            Expr::Between {
                expr,
                low,
                high,
                negated,
            } => {
                let v = expr.eval(row, params)?;
                let ge = compare(&v, &low.eval(row, params)?)?.map(|o| o != Ordering::Less);
                let le = compare(&v, &high.eval(row, params)?)?.map(|o| o != Ordering::Greater);
                let both = match (ge, le) {
                    (Some(false), _) | (_, Some(false)) => Some(false),
                    (Some(true), Some(true)) => Some(true),
                    _ => None,
                };
                Ok(both.map_or(Value::Null, |b| Value::Bool(b != *negated)))
            }
            Expr::Like {
                expr,
                pattern,
                negated,
                case_insensitive,
                escape,
            } => {
                let (v, p) = (expr.eval(row, params)?, pattern.eval(row, params)?);
                match (v, p) {
                    (Value::Text(v), Value::Text(p)) => {
                        let m = if *case_insensitive {
                            like(&v.to_lowercase(), &p.to_lowercase(), *escape)?
                        } else {
                            like(&v, &p, *escape)?
                        };
                        Ok(Value::Bool(m != *negated))
                    }
                    (Value::Null, _) | (_, Value::Null) => Ok(Value::Null),
                    (v, _) => Err(EvalError::Kind {
                        op: "LIKE",
                        found: v.kind(),
                    }),
                }
            }
            Expr::Case {
                operand,
                whens,
                otherwise,
                ..
            } => {
                let subject = operand.as_ref().map(|o| o.eval(row, params)).transpose()?;
                for (when, then) in whens {
                    let w = when.eval(row, params)?;
                    let hit = match &subject {
                        Some(s) => compare(s, &w)? == Some(Ordering::Equal),
                        None => truth(&w)? == Some(true),
                    };
                    if hit {
                        return then.eval(row, params);
                    }
                }
                otherwise
                    .as_ref()
                    .map_or(Ok(Value::Null), |o| o.eval(row, params))
            }
            Expr::Cast { expr, ty } => cast(expr.eval(row, params)?, *ty),
            Expr::Function { func, args, ty } => {
                let vals = args
                    .iter()
                    .map(|a| a.eval(row, params))
                    .collect::<Result<Vec<_>, _>>()?;
                function(*func, vals, *ty)
            }
        }
    }
}

/// `Some(b)` for a boolean, `None` for NULL.
pub(crate) fn truth(v: &Value) -> Result<Option<bool>, EvalError> {
    match v {
        Value::Bool(b) => Ok(Some(*b)),
        Value::Null => Ok(None),
        other => Err(EvalError::Kind {
            op: "a boolean condition",
            found: other.kind(),
        }),
    }
}

fn compare(a: &Value, b: &Value) -> Result<Option<Ordering>, EvalError> {
    if a.is_null() || b.is_null() {
        return Ok(None);
    }
    a.sql_cmp(b).map(Some).ok_or(EvalError::Kind {
        op: "comparison",
        found: b.kind(),
    })
}

/// Casts with Postgres' text form of booleans (`true`, not `t`).
///
/// Every `Expr::Cast` to `varchar(n)` is an explicit one (text converts to
/// text without a cast), and an explicit cast truncates to `n` characters,
/// as in Postgres; storing a longer value (decoding a record) is an error.
pub(crate) fn cast(v: Value, ty: SqlType) -> Result<Value, EvalError> {
    let v = match (&v, ty) {
        (Value::Bool(b), t) if t.is_text() => Value::Text(b.to_string()),
        _ => v,
    };
    match ty {
        SqlType::Varchar(Some(n)) => Ok(match v.cast(SqlType::Text)? {
            Value::Text(s) => Value::Text(match s.char_indices().nth(n as usize) {
                Some((end, _)) => s[..end].to_owned(),
                None => s,
            }),
            other => other,
        }),
        _ => Ok(v.cast(ty)?),
    }
}

fn unary(op: UnaryOp, v: Value, ty: SqlType) -> Result<Value, EvalError> {
    Ok(match (op, v) {
        (_, Value::Null) => Value::Null,
        (UnaryOp::Not, Value::Bool(b)) => Value::Bool(!b),
        (UnaryOp::Neg, Value::Int(i)) => int_result(i.checked_neg(), ty)?,
        (UnaryOp::Neg, Value::Float(f)) => Value::Float(-f),
        (UnaryOp::Neg, Value::Numeric(d)) => Value::Numeric(-d),
        (UnaryOp::Not, v) => {
            return Err(EvalError::Kind {
                op: "NOT",
                found: v.kind(),
            })
        }
        (UnaryOp::Neg, v) => {
            return Err(EvalError::Kind {
                op: "unary minus",
                found: v.kind(),
            })
        }
    })
}

fn int_result(i: Option<i64>, ty: SqlType) -> Result<Value, EvalError> {
    let i = i.ok_or(EvalError::Overflow { ty })?;
    Value::Int(i)
        .cast(ty)
        .map_err(|_| EvalError::Overflow { ty })
}

fn binary(op: BinaryOp, l: Value, r: Value, ty: SqlType) -> Result<Value, EvalError> {
    if l.is_null() || r.is_null() {
        return Ok(Value::Null);
    }
    if op.is_comparison() {
        let o = compare(&l, &r)?.expect("non-null operands");
        let b = match op {
            BinaryOp::Eq => o == Ordering::Equal,
            BinaryOp::NotEq => o != Ordering::Equal,
            BinaryOp::Lt => o == Ordering::Less,
            BinaryOp::LtEq => o != Ordering::Greater,
            BinaryOp::Gt => o == Ordering::Greater,
            _ => o != Ordering::Less,
        };
        return Ok(Value::Bool(b));
    }
    if op == BinaryOp::Concat {
        let text = |v: &Value| match v {
            Value::Bool(b) => b.to_string(),
            v => v.to_pg_text().unwrap_or_default(),
        };
        return Ok(Value::Text(text(&l) + &text(&r)));
    }
    if ty.is_integer() {
        let (Value::Int(a), Value::Int(b)) = (&l, &r) else {
            return Err(EvalError::Kind {
                op: op.symbol(),
                found: mismatch(&l, &r, "integer"),
            });
        };
        let (a, b) = (*a, *b);
        if matches!(op, BinaryOp::Div | BinaryOp::Mod) && b == 0 {
            return Err(EvalError::DivisionByZero);
        }
        let out = match op {
            BinaryOp::Add => a.checked_add(b),
            BinaryOp::Sub => a.checked_sub(b),
            BinaryOp::Mul => a.checked_mul(b),
            BinaryOp::Div => a.checked_div(b),
            // i64::MIN % -1 is 0 in SQL, not an overflow.
            _ => Some(a.checked_rem(b).unwrap_or(0)),
        };
        return int_result(out, ty);
    }
    if ty.is_float() {
        let (Some(a), Some(b)) = (l.as_f64(), r.as_f64()) else {
            return Err(EvalError::Kind {
                op: op.symbol(),
                found: mismatch(&l, &r, "double precision"),
            });
        };
        if matches!(op, BinaryOp::Div | BinaryOp::Mod) && b == 0.0 {
            return Err(EvalError::DivisionByZero);
        }
        let out = match op {
            BinaryOp::Add => a + b,
            BinaryOp::Sub => a - b,
            BinaryOp::Mul => a * b,
            BinaryOp::Div => a / b,
            _ => a % b,
        };
        if out.is_infinite() && a.is_finite() && b.is_finite() {
            return Err(EvalError::Overflow { ty });
        }
        return cast(Value::Float(out), ty).map_err(|_| EvalError::Overflow { ty });
    }
    if ty == SqlType::Numeric {
        let dec = |v: &Value| match v.cast(SqlType::Numeric) {
            Ok(Value::Numeric(d)) => Some(d),
            _ => None,
        };
        let (Some(a), Some(b)) = (dec(&l), dec(&r)) else {
            return Err(EvalError::Kind {
                op: op.symbol(),
                found: mismatch(&l, &r, "numeric"),
            });
        };
        if matches!(op, BinaryOp::Div | BinaryOp::Mod) && b.is_zero() {
            return Err(EvalError::DivisionByZero);
        }
        let out = match op {
            BinaryOp::Add => a.checked_add(b),
            BinaryOp::Sub => a.checked_sub(b),
            BinaryOp::Mul => a.checked_mul(b),
            BinaryOp::Div => common::numeric::pg_div(a, b),
            _ => a.checked_rem(b),
        };
        return out.map(Value::Numeric).ok_or(EvalError::Overflow { ty });
    }
    Err(EvalError::Kind {
        op: op.symbol(),
        found: l.kind(),
    })
}

fn mismatch(l: &Value, r: &Value, expected: &'static str) -> &'static str {
    if l.kind() != expected && !matches!(l, Value::Int(_)) {
        l.kind()
    } else {
        r.kind()
    }
}

fn function(func: ScalarFunc, args: Vec<Value>, ty: SqlType) -> Result<Value, EvalError> {
    let first = args.first().cloned().unwrap_or(Value::Null);
    match func {
        ScalarFunc::Coalesce => {
            return Ok(args
                .into_iter()
                .find(|v| !v.is_null())
                .unwrap_or(Value::Null))
        }
        ScalarFunc::NullIf => {
            let second = args.get(1).cloned().unwrap_or(Value::Null);
            return Ok(if compare(&first, &second)? == Some(Ordering::Equal) {
                Value::Null
            } else {
                first
            });
        }
        _ => {}
    }
    if args.iter().any(Value::is_null) {
        return Ok(Value::Null);
    }
    Ok(match (func, first) {
        (ScalarFunc::Lower, Value::Text(s)) => Value::Text(s.to_lowercase()),
        (ScalarFunc::Upper, Value::Text(s)) => Value::Text(s.to_uppercase()),
        (ScalarFunc::Length, Value::Text(s)) => Value::Int(s.chars().count() as i64),
        (ScalarFunc::Abs, Value::Int(i)) => int_result(i.checked_abs(), ty)?,
        (ScalarFunc::Abs, Value::Float(f)) => Value::Float(f.abs()),
        (ScalarFunc::Abs, Value::Numeric(d)) => Value::Numeric(d.abs()),
        // Postgres rounds floats half to even (rint) and numerics half away from zero.
        (ScalarFunc::Round, Value::Float(f)) => Value::Float(f.round_ties_even()),
        (ScalarFunc::Round, v @ (Value::Int(_) | Value::Numeric(_))) => {
            let Value::Numeric(d) = v.cast(SqlType::Numeric)? else {
                return Err(EvalError::Kind {
                    op: "round",
                    found: v.kind(),
                });
            };
            let digits = match args.get(1) {
                Some(Value::Int(n)) => *n,
                _ => 0,
            };
            Value::Numeric(round_decimal(d, digits).ok_or(EvalError::Overflow {
                ty: SqlType::Numeric,
            })?)
        }
        (ScalarFunc::Typmod, Value::Numeric(d)) => {
            let int = |i: usize| match args.get(i) {
                Some(Value::Int(n)) => u32::try_from(*n).unwrap_or(0),
                _ => 0,
            };
            let typmod = common::numeric::Typmod {
                precision: int(1),
                scale: int(2),
            };
            Value::Numeric(typmod.apply(d)?)
        }
        (f, v) => {
            return Err(EvalError::Kind {
                op: f.name(),
                found: v.kind(),
            })
        }
    })
}

fn round_decimal(d: Decimal, digits: i64) -> Option<Decimal> {
    if digits >= 0 {
        return Some(d.round_dp_with_strategy(
            digits.min(28) as u32,
            RoundingStrategy::MidpointAwayFromZero,
        ));
    }
    let scale = Decimal::from(10i64.checked_pow(u32::try_from(-digits).ok()?.min(18))?);
    let q = (d / scale).round_dp_with_strategy(0, RoundingStrategy::MidpointAwayFromZero);
    q.checked_mul(scale).filter(|r| r.to_f64().is_some())
}

/// SQL `LIKE`: `%` matches any run, `_` one character, `escape` makes the next
/// character literal.
pub(crate) fn like(text: &str, pattern: &str, escape: Option<char>) -> Result<bool, EvalError> {
    enum Tok {
        Any,
        One,
        Lit(char),
    }
    let mut toks = Vec::new();
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        toks.push(match c {
            c if Some(c) == escape => Tok::Lit(chars.next().ok_or(EvalError::BadLikeEscape)?),
            '%' => Tok::Any,
            '_' => Tok::One,
            c => Tok::Lit(c),
        });
    }
    let text: Vec<char> = text.chars().collect();
    // Greedy match with one backtrack point (the last `%`): linear in practice.
    let (mut t, mut p) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match toks.get(p) {
            Some(Tok::Any) => {
                star = Some((p, t));
                p += 1;
            }
            Some(Tok::One) => {
                t += 1;
                p += 1;
            }
            Some(Tok::Lit(c)) if *c == text[t] => {
                t += 1;
                p += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return Ok(false),
            },
        }
    }
    Ok(toks[p..].iter().all(|t| matches!(t, Tok::Any)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lit(v: Value, ty: SqlType) -> Box<Expr> {
        Box::new(Expr::Literal { value: v, ty })
    }

    fn bin(op: BinaryOp, l: Box<Expr>, r: Box<Expr>, ty: SqlType) -> Expr {
        Expr::Binary {
            op,
            left: l,
            right: r,
            ty,
        }
    }

    fn int(i: i64) -> Box<Expr> {
        lit(Value::Int(i), SqlType::Integer)
    }

    fn b(v: Option<bool>) -> Box<Expr> {
        lit(v.map_or(Value::Null, Value::Bool), SqlType::Boolean)
    }

    #[test]
    fn three_valued_logic() {
        let cases = [
            (BinaryOp::And, None, Some(false), Value::Bool(false)),
            (BinaryOp::And, None, Some(true), Value::Null),
            (BinaryOp::And, Some(false), None, Value::Bool(false)),
            (BinaryOp::Or, None, Some(true), Value::Bool(true)),
            (BinaryOp::Or, None, Some(false), Value::Null),
            (BinaryOp::Or, Some(true), None, Value::Bool(true)),
        ];
        for (op, l, r, want) in cases {
            assert_eq!(
                bin(op, b(l), b(r), SqlType::Boolean)
                    .eval(&[], &[])
                    .unwrap(),
                want,
                "{op:?} {l:?} {r:?}"
            );
        }
        let not_null = Expr::Unary {
            op: UnaryOp::Not,
            expr: b(None),
            ty: SqlType::Boolean,
        };
        assert_eq!(not_null.eval(&[], &[]).unwrap(), Value::Null);
        let eq_null = bin(
            BinaryOp::Eq,
            int(1),
            lit(Value::Null, SqlType::Integer),
            SqlType::Boolean,
        );
        assert_eq!(eq_null.eval(&[], &[]).unwrap(), Value::Null);
    }

    #[test]
    fn in_list_with_null_is_unknown_when_no_match() {
        let e = |negated, items: Vec<Value>| Expr::InList {
            expr: int(1),
            list: items
                .into_iter()
                .map(|v| *lit(v, SqlType::Integer))
                .collect(),
            negated,
        };
        assert_eq!(
            e(false, vec![Value::Int(2), Value::Null])
                .eval(&[], &[])
                .unwrap(),
            Value::Null
        );
        assert_eq!(
            e(false, vec![Value::Int(1), Value::Null])
                .eval(&[], &[])
                .unwrap(),
            Value::Bool(true)
        );
        assert_eq!(
            e(true, vec![Value::Int(2), Value::Null])
                .eval(&[], &[])
                .unwrap(),
            Value::Null
        );
        assert_eq!(
            e(true, vec![Value::Int(2)]).eval(&[], &[]).unwrap(),
            Value::Bool(true)
        );
    }

    #[test]
    fn integer_arithmetic_is_checked() {
        let e = bin(
            BinaryOp::Add,
            int(i64::from(i32::MAX)),
            int(1),
            SqlType::Integer,
        );
        assert_eq!(
            e.eval(&[], &[]),
            Err(EvalError::Overflow {
                ty: SqlType::Integer
            })
        );
        let e = bin(BinaryOp::Div, int(7), int(0), SqlType::Integer);
        assert_eq!(e.eval(&[], &[]), Err(EvalError::DivisionByZero));
        let e = bin(BinaryOp::Div, int(-7), int(2), SqlType::Integer);
        assert_eq!(e.eval(&[], &[]), Ok(Value::Int(-3)));
        let e = bin(BinaryOp::Mod, int(-7), int(2), SqlType::Integer);
        assert_eq!(e.eval(&[], &[]), Ok(Value::Int(-1)));
        let f = bin(
            BinaryOp::Div,
            lit(Value::Float(1.0), SqlType::Double),
            lit(Value::Float(0.0), SqlType::Double),
            SqlType::Double,
        );
        assert_eq!(f.eval(&[], &[]), Err(EvalError::DivisionByZero));
        let n = bin(
            BinaryOp::Div,
            lit(Value::Numeric(Decimal::new(1, 0)), SqlType::Numeric),
            lit(Value::Numeric(Decimal::new(4, 0)), SqlType::Numeric),
            SqlType::Numeric,
        );
        assert_eq!(n.eval(&[], &[]), Ok(Value::Numeric(Decimal::new(25, 2))));
    }

    #[test]
    fn like_patterns() {
        assert!(like("alice", "a%", Some('\\')).unwrap());
        assert!(like("alice", "%ice", Some('\\')).unwrap());
        assert!(like("alice", "a_i%e", Some('\\')).unwrap());
        assert!(!like("alice", "a_e", Some('\\')).unwrap());
        assert!(like("50%", "50\\%", Some('\\')).unwrap());
        assert!(!like("500", "50\\%", Some('\\')).unwrap());
        assert!(like("a%b", "a!%b", Some('!')).unwrap());
        assert!(like("", "%", Some('\\')).unwrap());
        assert!(like("abcabd", "%abd", Some('\\')).unwrap());
        assert!(like("x\\y", "x\\y", None).unwrap());
        assert_eq!(like("a", "a\\", Some('\\')), Err(EvalError::BadLikeEscape));
        let ilike = Expr::Like {
            expr: lit(Value::Text("ALICE".into()), SqlType::Text),
            pattern: lit(Value::Text("al%".into()), SqlType::Text),
            negated: false,
            case_insensitive: true,
            escape: Some('\\'),
        };
        assert_eq!(ilike.eval(&[], &[]).unwrap(), Value::Bool(true));
    }

    #[test]
    fn case_between_functions_and_params() {
        let case = Expr::Case {
            operand: Some(Box::new(Expr::Column {
                index: 0,
                ty: SqlType::Integer,
            })),
            whens: vec![(*int(1), *lit(Value::Text("one".into()), SqlType::Text))],
            otherwise: Some(lit(Value::Text("other".into()), SqlType::Text)),
            ty: SqlType::Text,
        };
        assert_eq!(
            case.eval(&[Value::Int(1)], &[]).unwrap(),
            Value::Text("one".into())
        );
        assert_eq!(
            case.eval(&[Value::Null], &[]).unwrap(),
            Value::Text("other".into())
        );
        let between = Expr::Between {
            expr: int(5),
            low: int(1),
            high: int(5),
            negated: false,
        };
        assert_eq!(between.eval(&[], &[]).unwrap(), Value::Bool(true));
        let round = Expr::Function {
            func: ScalarFunc::Round,
            args: vec![*lit(Value::Float(2.5), SqlType::Double)],
            ty: SqlType::Double,
        };
        assert_eq!(round.eval(&[], &[]).unwrap(), Value::Float(2.0));
        let coalesce = Expr::Function {
            func: ScalarFunc::Coalesce,
            args: vec![*lit(Value::Null, SqlType::Integer), *int(3)],
            ty: SqlType::Integer,
        };
        assert_eq!(coalesce.eval(&[], &[]).unwrap(), Value::Int(3));
        let p = Expr::Parameter {
            index: 0,
            ty: SqlType::BigInt,
        };
        assert_eq!(
            p.eval(&[], &[Value::Text("42".into())]).unwrap(),
            Value::Int(42)
        );
        assert_eq!(
            p.eval(&[], &[]),
            Err(EvalError::MissingParameter { index: 1 })
        );
        let c = Expr::Cast {
            expr: b(Some(true)),
            ty: SqlType::Text,
        };
        assert_eq!(c.eval(&[], &[]).unwrap(), Value::Text("true".into()));
    }
}
