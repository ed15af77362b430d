//! Which of a read's filters travel to the replicas: comparisons of a view
//! column with a constant of the column's own Arrow type (`=`, `<>`, `<`,
//! `<=`, `>`, `>=`, `IN (..)`, `IS [NOT] NULL`), where comparing
//! [`common::Value`]s gives what DataFusion gives. Replicas apply them as a
//! prefilter; DataFusion applies every filter again (they are *inexact*),
//! so a filter a replica cannot judge only costs rows sent, never rows
//! lost. Float columns stay out (`-0.0`, NaN), and so does anything cast.

use datafusion::arrow::datatypes::{DataType, Schema};
use datafusion::common::ScalarValue;
use datafusion::logical_expr::{BinaryExpr, Expr, Operator};

use super::convert;
use crate::cluster::internal::{CompareOp, Filter};
use common::Value;

/// The replica filter `e` stands for over a table of `schema`, if it has one.
pub fn filter(e: &Expr, schema: &Schema) -> Option<Filter> {
    match e {
        Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
            let op = compare_op(*op)?;
            match (column(left, schema), constant(right)) {
                (Some((column, ty)), Some(value)) if same_type(ty, value) => {
                    Some(Filter::Compare {
                        column,
                        op,
                        value: to_value(value)?,
                    })
                }
                _ => {
                    let (column, ty) = column(right, schema)?;
                    let value = constant(left).filter(|v| same_type(ty, v))?;
                    Some(Filter::Compare {
                        column,
                        op: flipped(op),
                        value: to_value(value)?,
                    })
                }
            }
        }
        Expr::IsNull(inner) | Expr::IsNotNull(inner) => Some(Filter::IsNull {
            column: column(inner, schema)?.0,
            negated: matches!(e, Expr::IsNotNull(_)),
        }),
        Expr::InList(list) if !list.negated => {
            let (column, ty) = column(&list.expr, schema)?;
            let values = list
                .list
                .iter()
                .map(|v| constant(v).filter(|v| same_type(ty, v)).and_then(to_value))
                .collect::<Option<Vec<_>>>()?;
            Some(Filter::InList { column, values })
        }
        _ => None,
    }
}

fn compare_op(op: Operator) -> Option<CompareOp> {
    Some(match op {
        Operator::Eq => CompareOp::Eq,
        Operator::NotEq => CompareOp::NotEq,
        Operator::Lt => CompareOp::Lt,
        Operator::LtEq => CompareOp::LtEq,
        Operator::Gt => CompareOp::Gt,
        Operator::GtEq => CompareOp::GtEq,
        _ => return None,
    })
}

/// `a op b` as `b op' a`.
fn flipped(op: CompareOp) -> CompareOp {
    match op {
        CompareOp::Lt => CompareOp::Gt,
        CompareOp::LtEq => CompareOp::GtEq,
        CompareOp::Gt => CompareOp::Lt,
        CompareOp::GtEq => CompareOp::LtEq,
        same => same,
    }
}

/// A column of the table, by index, with its type; not a float.
fn column<'a>(e: &Expr, schema: &'a Schema) -> Option<(usize, &'a DataType)> {
    let Expr::Column(c) = e else {
        return None;
    };
    let index = schema.index_of(&c.name).ok()?;
    let ty = schema.field(index).data_type();
    (!ty.is_floating()).then_some((index, ty))
}

fn constant(e: &Expr) -> Option<&ScalarValue> {
    match e {
        Expr::Literal(v, _) => Some(v),
        _ => None,
    }
}

fn same_type(ty: &DataType, v: &ScalarValue) -> bool {
    &v.data_type() == ty
}

fn to_value(v: &ScalarValue) -> Option<Value> {
    let array = v.to_array().ok()?;
    convert::value(&array, 0).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::datatypes::Field;
    use datafusion::logical_expr::{col, lit};

    fn schema() -> Schema {
        Schema::new(vec![
            Field::new("id", DataType::Int64, true),
            Field::new("name", DataType::Utf8, true),
            Field::new("score", DataType::Float64, true),
        ])
    }

    #[test]
    fn comparisons_with_constants_of_the_column_type_travel() {
        let s = schema();
        assert_eq!(
            filter(&col("id").eq(lit(5i64)), &s),
            Some(Filter::Compare {
                column: 0,
                op: CompareOp::Eq,
                value: Value::Int(5)
            })
        );
        assert_eq!(
            filter(&lit("m").lt(col("name")), &s),
            Some(Filter::Compare {
                column: 1,
                op: CompareOp::Gt,
                value: Value::Text("m".into())
            })
        );
        assert_eq!(
            filter(&col("name").in_list(vec![lit("a"), lit("b")], false), &s),
            Some(Filter::InList {
                column: 1,
                values: vec![Value::Text("a".into()), Value::Text("b".into())]
            })
        );
        assert_eq!(
            filter(&col("id").is_not_null(), &s),
            Some(Filter::IsNull {
                column: 0,
                negated: true
            })
        );
    }

    #[test]
    fn what_values_might_judge_differently_stays() {
        let s = schema();
        assert_eq!(filter(&col("id").eq(lit(5i32)), &s), None, "other type");
        assert_eq!(filter(&col("score").eq(lit(0.0f64)), &s), None, "float");
        assert_eq!(filter(&col("name").like(lit("a%")), &s), None);
        assert_eq!(
            filter(&col("id").in_list(vec![lit(1i64)], true), &s),
            None,
            "NOT IN"
        );
        assert_eq!(filter(&col("id").eq(col("id")), &s), None);
    }
}
