//! Bound scalar expressions: names resolved to column indices, types known.
//!
//! Invariant: the binder inserts every coercion as an explicit [`Expr::Cast`],
//! so the operands of an arithmetic operator already have the operator's type
//! and [`Expr::eval`](crate::eval) never guesses. Parameter types are fixed at
//! bind time; the server decodes parameter values to those types.

use common::{SqlType, Value};
use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Expr {
    /// The `index`-th value of the row the expression is bound against.
    Column {
        index: usize,
        ty: SqlType,
    },
    Literal {
        value: Value,
        ty: SqlType,
    },
    /// `$n` is `Parameter { index: n - 1 }`.
    Parameter {
        index: usize,
        ty: SqlType,
    },
    Unary {
        op: UnaryOp,
        expr: Box<Expr>,
        ty: SqlType,
    },
    Binary {
        op: BinaryOp,
        left: Box<Expr>,
        right: Box<Expr>,
        ty: SqlType,
    },
    IsNull {
        expr: Box<Expr>,
        negated: bool,
    },
    InList {
        expr: Box<Expr>,
        list: Vec<Expr>,
        negated: bool,
    },
    Between {
        expr: Box<Expr>,
        low: Box<Expr>,
        high: Box<Expr>,
        negated: bool,
    },
    /// `LIKE` / `ILIKE`; `escape` is the escape character (default backslash,
    /// `None` after `ESCAPE ''`).
    Like {
        expr: Box<Expr>,
        pattern: Box<Expr>,
        negated: bool,
        case_insensitive: bool,
        escape: Option<char>,
    },
    /// Searched `CASE` (`operand` is `None`) or simple `CASE operand WHEN v ...`.
    Case {
        operand: Option<Box<Expr>>,
        whens: Vec<(Expr, Expr)>,
        otherwise: Option<Box<Expr>>,
        ty: SqlType,
    },
    Cast {
        expr: Box<Expr>,
        ty: SqlType,
    },
    Function {
        func: ScalarFunc,
        args: Vec<Expr>,
        ty: SqlType,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum UnaryOp {
    Not,
    Neg,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BinaryOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Eq,
    NotEq,
    Lt,
    LtEq,
    Gt,
    GtEq,
    And,
    Or,
    Concat,
}

impl BinaryOp {
    pub fn is_comparison(self) -> bool {
        matches!(
            self,
            BinaryOp::Eq
                | BinaryOp::NotEq
                | BinaryOp::Lt
                | BinaryOp::LtEq
                | BinaryOp::Gt
                | BinaryOp::GtEq
        )
    }

    pub fn is_arithmetic(self) -> bool {
        matches!(
            self,
            BinaryOp::Add | BinaryOp::Sub | BinaryOp::Mul | BinaryOp::Div | BinaryOp::Mod
        )
    }

    pub fn symbol(self) -> &'static str {
        match self {
            BinaryOp::Add => "+",
            BinaryOp::Sub => "-",
            BinaryOp::Mul => "*",
            BinaryOp::Div => "/",
            BinaryOp::Mod => "%",
            BinaryOp::Eq => "=",
            BinaryOp::NotEq => "<>",
            BinaryOp::Lt => "<",
            BinaryOp::LtEq => "<=",
            BinaryOp::Gt => ">",
            BinaryOp::GtEq => ">=",
            BinaryOp::And => "AND",
            BinaryOp::Or => "OR",
            BinaryOp::Concat => "||",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ScalarFunc {
    Lower,
    Upper,
    Length,
    Abs,
    /// `round(x)` or `round(x, digits)`.
    Round,
    Coalesce,
    NullIf,
    /// `CAST(x AS NUMERIC(p, s))`: `x` (numeric) rounded to the type's scale
    /// and checked against its precision; arguments `x, p, s`.
    Typmod,
}

impl ScalarFunc {
    pub fn name(self) -> &'static str {
        match self {
            ScalarFunc::Lower => "lower",
            ScalarFunc::Upper => "upper",
            ScalarFunc::Length => "length",
            ScalarFunc::Abs => "abs",
            ScalarFunc::Round => "round",
            ScalarFunc::Coalesce => "coalesce",
            ScalarFunc::NullIf => "nullif",
            ScalarFunc::Typmod => "numeric",
        }
    }

    pub fn from_name(name: &str) -> Option<ScalarFunc> {
        Some(match name {
            "lower" => ScalarFunc::Lower,
            "upper" => ScalarFunc::Upper,
            "length" | "char_length" | "character_length" => ScalarFunc::Length,
            "abs" => ScalarFunc::Abs,
            "round" => ScalarFunc::Round,
            "coalesce" => ScalarFunc::Coalesce,
            "nullif" => ScalarFunc::NullIf,
            _ => return None,
        })
    }
}

impl Expr {
    pub fn ty(&self) -> SqlType {
        match self {
            Expr::Column { ty, .. }
            | Expr::Literal { ty, .. }
            | Expr::Parameter { ty, .. }
            | Expr::Unary { ty, .. }
            | Expr::Binary { ty, .. }
            | Expr::Case { ty, .. }
            | Expr::Cast { ty, .. }
            | Expr::Function { ty, .. } => *ty,
            Expr::IsNull { .. }
            | Expr::InList { .. }
            | Expr::Between { .. }
            | Expr::Like { .. } => SqlType::Boolean,
        }
    }

    pub fn literal(value: Value, ty: SqlType) -> Expr {
        Expr::Literal { value, ty }
    }

    pub fn column(index: usize, ty: SqlType) -> Expr {
        Expr::Column { index, ty }
    }

    /// True when the expression reads no column: its value depends only on
    /// parameters (key lookups and LIMIT need this).
    pub fn is_constant(&self) -> bool {
        let mut constant = true;
        self.visit(&mut |e| {
            if matches!(e, Expr::Column { .. }) {
                constant = false;
            }
        });
        constant
    }

    /// Calls `f` on this expression and every sub-expression, parents first.
    pub fn visit(&self, f: &mut dyn FnMut(&Expr)) {
        f(self);
        for child in self.children() {
            child.visit(f);
        }
    }

    /// Calls `f` on this expression and every sub-expression, children first.
    pub fn visit_mut(&mut self, f: &mut dyn FnMut(&mut Expr)) {
        match self {
            Expr::Column { .. } | Expr::Literal { .. } | Expr::Parameter { .. } => {}
            Expr::Unary { expr, .. } | Expr::IsNull { expr, .. } | Expr::Cast { expr, .. } => {
                expr.visit_mut(f)
            }
            Expr::Binary { left, right, .. } => {
                left.visit_mut(f);
                right.visit_mut(f);
            }
            Expr::InList { expr, list, .. } => {
                expr.visit_mut(f);
                list.iter_mut().for_each(|e| e.visit_mut(f));
            }
            Expr::Between {
                expr, low, high, ..
            } => {
                expr.visit_mut(f);
                low.visit_mut(f);
                high.visit_mut(f);
            }
            Expr::Like { expr, pattern, .. } => {
                expr.visit_mut(f);
                pattern.visit_mut(f);
            }
            Expr::Case {
                operand,
                whens,
                otherwise,
                ..
            } => {
                if let Some(o) = operand {
                    o.visit_mut(f);
                }
                for (w, t) in whens {
                    w.visit_mut(f);
                    t.visit_mut(f);
                }
                if let Some(o) = otherwise {
                    o.visit_mut(f);
                }
            }
            Expr::Function { args, .. } => args.iter_mut().for_each(|e| e.visit_mut(f)),
        }
        f(self);
    }

    fn children(&self) -> Vec<&Expr> {
        match self {
            Expr::Column { .. } | Expr::Literal { .. } | Expr::Parameter { .. } => vec![],
            Expr::Unary { expr, .. } | Expr::IsNull { expr, .. } | Expr::Cast { expr, .. } => {
                vec![expr]
            }
            Expr::Binary { left, right, .. } => vec![left, right],
            Expr::InList { expr, list, .. } => std::iter::once(&**expr).chain(list).collect(),
            Expr::Between {
                expr, low, high, ..
            } => vec![expr, low, high],
            Expr::Like { expr, pattern, .. } => vec![expr, pattern],
            Expr::Case {
                operand,
                whens,
                otherwise,
                ..
            } => {
                let mut v: Vec<&Expr> = operand.iter().map(|b| &**b).collect();
                for (w, t) in whens {
                    v.push(w);
                    v.push(t);
                }
                v.extend(otherwise.iter().map(|b| &**b));
                v
            }
            Expr::Function { args, .. } => args.iter().collect(),
        }
    }

    /// Renders the expression for EXPLAIN, naming columns from `names`.
    pub fn display<'a>(&'a self, names: &'a [String]) -> ExprDisplay<'a> {
        ExprDisplay { expr: self, names }
    }
}

/// [`Expr`] rendered as SQL-like text with column names.
pub struct ExprDisplay<'a> {
    expr: &'a Expr,
    names: &'a [String],
}

impl fmt::Display for ExprDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sub = |e: &Expr| {
            ExprDisplay {
                expr: e,
                names: self.names,
            }
            .to_string()
        };
        match self.expr {
            Expr::Column { index, .. } => match self.names.get(*index) {
                Some(n) => f.write_str(n),
                None => write!(f, "#{index}"),
            },
            Expr::Literal { value, .. } => match value {
                Value::Null => f.write_str("NULL"),
                Value::Text(s) => write!(f, "'{}'", s.replace('\'', "''")),
                Value::Int(_) | Value::Float(_) | Value::Numeric(_) | Value::Bool(_) => {
                    f.write_str(&value.to_pg_text().unwrap_or_default())
                }
                v => write!(f, "'{}'", v.to_pg_text().unwrap_or_default()),
            },
            Expr::Parameter { index, .. } => write!(f, "${}", index + 1),
            Expr::Unary {
                op: UnaryOp::Not,
                expr,
                ..
            } => write!(f, "NOT {}", sub(expr)),
            Expr::Unary {
                op: UnaryOp::Neg,
                expr,
                ..
            } => write!(f, "-{}", sub(expr)),
            Expr::Binary {
                op, left, right, ..
            } => write!(f, "({} {} {})", sub(left), op.symbol(), sub(right)),
            Expr::IsNull { expr, negated } => {
                write!(
                    f,
                    "{} IS {}NULL",
                    sub(expr),
                    if *negated { "NOT " } else { "" }
                )
            }
            Expr::InList {
                expr,
                list,
                negated,
            } => write!(
                f,
                "{} {}IN ({})",
                sub(expr),
                if *negated { "NOT " } else { "" },
                list.iter().map(sub).collect::<Vec<_>>().join(", ")
            ),
            Expr::Between {
                expr,
                low,
                high,
                negated,
            } => write!(
                f,
                "{} {}BETWEEN {} AND {}",
                sub(expr),
                if *negated { "NOT " } else { "" },
                sub(low),
                sub(high)
            ),
            Expr::Like {
                expr,
                pattern,
                negated,
                case_insensitive,
                ..
            } => write!(
                f,
                "{} {}{} {}",
                sub(expr),
                if *negated { "NOT " } else { "" },
                if *case_insensitive { "ILIKE" } else { "LIKE" },
                sub(pattern)
            ),
            Expr::Case {
                operand,
                whens,
                otherwise,
                ..
            } => {
                f.write_str("CASE")?;
                if let Some(o) = operand {
                    write!(f, " {}", sub(o))?;
                }
                for (w, t) in whens {
                    write!(f, " WHEN {} THEN {}", sub(w), sub(t))?;
                }
                if let Some(o) = otherwise {
                    write!(f, " ELSE {}", sub(o))?;
                }
                f.write_str(" END")
            }
            Expr::Cast { expr, ty } => write!(f, "{}::{}", sub(expr), ty),
            Expr::Function { func, args, .. } => {
                write!(
                    f,
                    "{}({})",
                    func.name(),
                    args.iter().map(sub).collect::<Vec<_>>().join(", ")
                )
            }
        }
    }
}
