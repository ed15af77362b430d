//! Eddy's values as Arrow arrays and back: the rows a replica answers with
//! become the record batches DataFusion computes on, and the batches it
//! produces become the rows the pgwire layer encodes (so every type keeps
//! the text and binary form PostgreSQL gives it).

use common::{Column, Row, SqlType, Value};
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanBuilder, Date32Builder, Decimal128Builder, Float32Builder,
    Float64Builder, Int16Builder, Int32Builder, Int64Builder, RecordBatch, StringBuilder,
    TimestampMicrosecondBuilder,
};
use datafusion::arrow::datatypes::{
    DataType, Date32Type, Decimal128Type, Field, Float32Type, Float64Type, Int16Type, Int32Type,
    Int64Type, Int8Type, Schema, SchemaRef, TimeUnit, TimestampMicrosecondType,
    TimestampMillisecondType, TimestampNanosecondType, TimestampSecondType, UInt16Type, UInt32Type,
    UInt64Type, UInt8Type,
};
use datafusion::arrow::error::ArrowError;
use datafusion::common::ScalarValue;
use rust_decimal::Decimal;
use std::sync::Arc;

/// The precision and scale a numeric column without a declared one is
/// computed with: every value Eddy stores (28 significant digits, as
/// `rust_decimal`) up to 10 fractional digits.
pub const NUMERIC_PRECISION: u8 = 38;
pub const NUMERIC_SCALE: i8 = 10;

/// The time zone a `timestamptz` array carries.
const UTC: &str = "+00:00";

/// The Arrow type a column of `ty` is computed as.
pub fn arrow_type(column: &Column) -> DataType {
    match column.ty {
        SqlType::Boolean => DataType::Boolean,
        SqlType::SmallInt => DataType::Int16,
        SqlType::Integer => DataType::Int32,
        SqlType::BigInt => DataType::Int64,
        SqlType::Real => DataType::Float32,
        SqlType::Double => DataType::Float64,
        SqlType::Numeric => match column.typmod {
            Some(t) => DataType::Decimal128(
                u8::try_from(t.precision).unwrap_or(NUMERIC_PRECISION),
                i8::try_from(t.scale).unwrap_or(NUMERIC_SCALE),
            ),
            None => DataType::Decimal128(NUMERIC_PRECISION, NUMERIC_SCALE),
        },
        SqlType::Text | SqlType::Varchar(_) => DataType::Utf8,
        SqlType::Date => DataType::Date32,
        SqlType::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, None),
        SqlType::TimestampTz => DataType::Timestamp(TimeUnit::Microsecond, Some(UTC.into())),
        SqlType::Array(element) => DataType::List(Arc::new(Field::new_list_field(
            arrow_type(&Column::new("", *element)),
            true,
        ))),
    }
}

/// The Arrow schema of a relation with `columns`; every column nullable.
pub fn schema(columns: &[Column]) -> SchemaRef {
    Arc::new(Schema::new(
        columns
            .iter()
            .map(|c| Field::new(&c.name, arrow_type(c), true))
            .collect::<Vec<_>>(),
    ))
}

/// The SQL type a client is told a result column of Arrow type `ty` has.
/// Types Eddy has no wire form for (lists, intervals, ...) are sent as text.
pub fn sql_type(ty: &DataType) -> SqlType {
    match ty {
        DataType::Boolean => SqlType::Boolean,
        DataType::Int8 | DataType::Int16 | DataType::UInt8 => SqlType::SmallInt,
        DataType::Int32 | DataType::UInt16 => SqlType::Integer,
        DataType::Int64 | DataType::UInt32 => SqlType::BigInt,
        DataType::UInt64 | DataType::Decimal128(..) | DataType::Decimal256(..) => SqlType::Numeric,
        DataType::Float16 | DataType::Float32 => SqlType::Real,
        DataType::Float64 => SqlType::Double,
        DataType::Date32 | DataType::Date64 => SqlType::Date,
        DataType::Timestamp(_, None) => SqlType::Timestamp,
        DataType::Timestamp(_, Some(_)) => SqlType::TimestampTz,
        DataType::List(element) | DataType::LargeList(element) => {
            SqlType::array_of(sql_type(element.data_type())).unwrap_or(SqlType::Text)
        }
        _ => SqlType::Text,
    }
}

/// The result columns of a query with Arrow schema `schema`.
pub fn columns(schema: &Schema) -> Vec<Column> {
    schema
        .fields()
        .iter()
        .map(|f| Column::new(f.name(), sql_type(f.data_type())))
        .collect()
}

/// Rows of `columns` as one record batch of `schema` (the projection of
/// those columns the scan wants, given as their indexes).
pub fn to_batch(
    schema: &SchemaRef,
    columns: &[Column],
    projection: &[usize],
    rows: &[Row],
) -> Result<RecordBatch, ArrowError> {
    let arrays = projection
        .iter()
        .zip(schema.fields())
        .map(|(&i, field)| to_array(&columns[i], field.data_type(), rows.iter().map(|r| &r[i])))
        .collect::<Result<Vec<_>, _>>()?;
    RecordBatch::try_new_with_options(
        schema.clone(),
        arrays,
        &datafusion::arrow::array::RecordBatchOptions::new().with_row_count(Some(rows.len())),
    )
}

fn mismatch(column: &Column, v: &Value) -> ArrowError {
    ArrowError::InvalidArgumentError(format!(
        "column \"{}\" of type {} holds a {} value",
        column.name,
        column.ty,
        v.kind()
    ))
}

/// One column of values as an Arrow array of type `ty` (the column's
/// type, or a list type whose values are PostgreSQL array literals).
fn to_array<'a>(
    column: &Column,
    ty: &DataType,
    values: impl ExactSizeIterator<Item = &'a Value>,
) -> Result<ArrayRef, ArrowError> {
    let n = values.len();
    macro_rules! build {
        ($builder:expr, |$v:ident| $($pat:pat => $val:expr),+) => {{
            let mut b = $builder;
            for $v in values {
                match $v {
                    Value::Null => b.append_null(),
                    $($pat => b.append_value($val),)+
                    other => return Err(mismatch(column, other)),
                }
            }
            Arc::new(b.finish()) as ArrayRef
        }};
    }
    Ok(match ty.clone() {
        DataType::List(element) => {
            let lists = values
                .map(|v| match v {
                    Value::Null => Ok(None),
                    Value::Text(t) => common::array::parse(t).map(Some).ok_or_else(|| {
                        ArrowError::CastError(format!(
                            "column \"{}\" holds {t:?}, which is not an array literal",
                            column.name
                        ))
                    }),
                    other => Err(mismatch(column, other)),
                })
                .collect::<Result<Vec<_>, _>>()?;
            list_array(element.data_type(), &lists)?
        }
        DataType::Boolean => build!(BooleanBuilder::with_capacity(n), |v| Value::Bool(b) => *b),
        DataType::Int16 => build!(Int16Builder::with_capacity(n), |v|
            Value::Int(i) => i16::try_from(*i).map_err(|_| mismatch(column, v))?),
        DataType::Int32 => build!(Int32Builder::with_capacity(n), |v|
            Value::Int(i) => i32::try_from(*i).map_err(|_| mismatch(column, v))?),
        DataType::Int64 => build!(Int64Builder::with_capacity(n), |v| Value::Int(i) => *i),
        DataType::Float32 => build!(Float32Builder::with_capacity(n), |v|
            Value::Float(f) => *f as f32, Value::Int(i) => *i as f32),
        DataType::Float64 => build!(Float64Builder::with_capacity(n), |v|
            Value::Float(f) => *f, Value::Int(i) => *i as f64),
        DataType::Decimal128(p, s) => {
            let b = Decimal128Builder::with_capacity(n).with_precision_and_scale(p, s)?;
            build!(b, |v|
                Value::Numeric(d) => decimal_to_i128(*d, s).ok_or_else(|| mismatch(column, v))?,
                Value::Int(i) => decimal_to_i128(Decimal::from(*i), s).ok_or_else(|| mismatch(column, v))?)
        }
        DataType::Utf8 => build!(StringBuilder::with_capacity(n, n * 16), |v| Value::Text(t) => t),
        DataType::Date32 => build!(Date32Builder::with_capacity(n), |v| Value::Date(d) => *d),
        DataType::Timestamp(_, tz) => {
            let b = TimestampMicrosecondBuilder::with_capacity(n).with_timezone_opt(tz);
            build!(b, |v| Value::Timestamp(t) => *t, Value::TimestampTz(t) => *t)
        }
        other => {
            return Err(ArrowError::NotYetImplemented(format!(
                "no Arrow form for {other}"
            )))
        }
    })
}

/// Lists of text elements as an Arrow list array of `element` values.
fn list_array(
    element: &DataType,
    lists: &[Option<Vec<Option<String>>>],
) -> Result<ArrayRef, ArrowError> {
    let scalars = lists
        .iter()
        .map(|list| {
            let Some(items) = list else {
                return ScalarValue::try_from(&DataType::List(Arc::new(Field::new_list_field(
                    element.clone(),
                    true,
                ))));
            };
            let items = items
                .iter()
                .map(|i| match i {
                    None => ScalarValue::try_from(element),
                    Some(text) => ScalarValue::Utf8(Some(text.clone())).cast_to(element),
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(ScalarValue::List(ScalarValue::new_list_nullable(
                &items, element,
            )))
        })
        .collect::<Result<Vec<_>, datafusion::common::DataFusionError>>()
        .map_err(|e| ArrowError::CastError(e.to_string()))?;
    if scalars.is_empty() {
        return Ok(datafusion::arrow::array::new_empty_array(&DataType::List(
            Arc::new(Field::new_list_field(element.clone(), true)),
        )));
    }
    ScalarValue::iter_to_array(scalars).map_err(|e| ArrowError::CastError(e.to_string()))
}

/// `d` as the unscaled integer of an Arrow decimal with `scale` fractional
/// digits (rounded half away from zero past them), if it fits.
fn decimal_to_i128(d: Decimal, scale: i8) -> Option<i128> {
    let scale = u32::try_from(scale).ok()?;
    // Rescaled in i128, not in `Decimal`: 28 digits before the point and
    // 10 after fit an Arrow decimal but not `Decimal`'s 96-bit mantissa.
    let d = if d.scale() > scale {
        d.round_dp_with_strategy(scale, rust_decimal::RoundingStrategy::MidpointAwayFromZero)
    } else {
        d
    };
    d.mantissa()
        .checked_mul(10i128.checked_pow(scale.checked_sub(d.scale())?)?)
}

/// The scale of an average of integers or numerics: the 16 digits after
/// the point PostgreSQL shows for an average from 1 to 9999 (fewer for
/// larger ones, more for smaller ones).
pub const AVG_SCALE: i8 = 16;

/// An Arrow decimal's unscaled `v` with `scale` as a [`Decimal`], or `None`
/// past 28 digits. DataFusion fixes one scale per column, where PostgreSQL
/// keeps each value's own. A scale under [`NUMERIC_SCALE`] comes from a
/// declared `NUMERIC(p,s)`, a literal, or arithmetic on those, and is the
/// scale PostgreSQL shows, so it stays (`1.50`), as does an average's
/// [`AVG_SCALE`]; any other is Eddy's scale for a numeric of unknown scale
/// (or arithmetic on one), so the value shows its own digits, trailing
/// zeros dropped.
fn i128_to_decimal(mut v: i128, scale: i8) -> Option<Decimal> {
    let declared = (0..NUMERIC_SCALE).contains(&scale) || scale == AVG_SCALE;
    if declared {
        if let Ok(d) = Decimal::try_from_i128_with_scale(v, u32::try_from(scale).ok()?) {
            return Some(d);
        }
    }
    let mut scale = i32::from(scale);
    // Trailing zeros first: 28 digits and 10 zeros after the point fit
    // `Decimal` only without the zeros.
    while scale > 0 && v != 0 && v % 10 == 0 {
        v /= 10;
        scale -= 1;
    }
    let d = if scale >= 0 {
        Decimal::try_from_i128_with_scale(v, u32::try_from(scale).ok()?).ok()?
    } else {
        Decimal::try_from_i128_with_scale(v, 0)
            .ok()?
            .checked_mul(Decimal::from(10i64.checked_pow(scale.unsigned_abs())?))?
    };
    Some(if declared { d } else { d.normalize() })
}

/// The rows of `batch`, each value as the type [`sql_type`] names for its
/// column.
pub fn rows(batch: &RecordBatch, out: &mut Vec<Row>) -> Result<(), ArrowError> {
    let start = out.len();
    out.extend((0..batch.num_rows()).map(|_| Vec::with_capacity(batch.num_columns())));
    for array in batch.columns() {
        for (i, row) in out[start..].iter_mut().enumerate() {
            row.push(value(array, i)?);
        }
    }
    Ok(())
}

/// The value at row `i` of `array`.
pub fn value(array: &ArrayRef, i: usize) -> Result<Value, ArrowError> {
    // A `NULL` column's array has no null buffer: every value is NULL.
    if array.is_null(i) || array.data_type() == &DataType::Null {
        return Ok(Value::Null);
    }
    let too_big = || ArrowError::ComputeError("a value is out of range for type numeric".into());
    Ok(match array.data_type() {
        DataType::Boolean => Value::Bool(array.as_boolean().value(i)),
        DataType::Int8 => Value::Int(array.as_primitive::<Int8Type>().value(i).into()),
        DataType::Int16 => Value::Int(array.as_primitive::<Int16Type>().value(i).into()),
        DataType::Int32 => Value::Int(array.as_primitive::<Int32Type>().value(i).into()),
        DataType::Int64 => Value::Int(array.as_primitive::<Int64Type>().value(i)),
        DataType::UInt8 => Value::Int(array.as_primitive::<UInt8Type>().value(i).into()),
        DataType::UInt16 => Value::Int(array.as_primitive::<UInt16Type>().value(i).into()),
        DataType::UInt32 => Value::Int(array.as_primitive::<UInt32Type>().value(i).into()),
        DataType::UInt64 => Value::Numeric(array.as_primitive::<UInt64Type>().value(i).into()),
        DataType::Float32 => Value::Float(array.as_primitive::<Float32Type>().value(i).into()),
        DataType::Float64 => Value::Float(array.as_primitive::<Float64Type>().value(i)),
        DataType::Decimal128(_, s) => Value::Numeric(
            i128_to_decimal(array.as_primitive::<Decimal128Type>().value(i), *s)
                .ok_or_else(too_big)?,
        ),
        DataType::Date32 => Value::Date(array.as_primitive::<Date32Type>().value(i)),
        DataType::Timestamp(unit, tz) => {
            let micros = match unit {
                TimeUnit::Second => array
                    .as_primitive::<TimestampSecondType>()
                    .value(i)
                    .checked_mul(1_000_000),
                TimeUnit::Millisecond => array
                    .as_primitive::<TimestampMillisecondType>()
                    .value(i)
                    .checked_mul(1_000),
                TimeUnit::Microsecond => {
                    Some(array.as_primitive::<TimestampMicrosecondType>().value(i))
                }
                TimeUnit::Nanosecond => Some(
                    array
                        .as_primitive::<TimestampNanosecondType>()
                        .value(i)
                        .div_euclid(1_000),
                ),
            }
            .ok_or_else(|| ArrowError::ComputeError("timestamp out of range".into()))?;
            if tz.is_some() {
                Value::TimestampTz(micros)
            } else {
                Value::Timestamp(micros)
            }
        }
        DataType::Utf8 => Value::Text(array.as_string::<i32>().value(i).to_owned()),
        DataType::LargeUtf8 => Value::Text(array.as_string::<i64>().value(i).to_owned()),
        DataType::Utf8View => Value::Text(array.as_string_view().value(i).to_owned()),
        DataType::List(_) | DataType::LargeList(_) | DataType::FixedSizeList(..) => {
            Value::Text(pg_array_text(array, i)?)
        }
        _ => {
            let text = datafusion::arrow::util::display::array_value_to_string(array, i)?;
            Value::Text(text)
        }
    })
}

/// A list value in PostgreSQL's array text form: `{1,2,NULL,"a b"}`.
fn pg_array_text(array: &ArrayRef, i: usize) -> Result<String, ArrowError> {
    let inner = match array.data_type() {
        DataType::List(_) => array.as_list::<i32>().value(i),
        DataType::LargeList(_) => array.as_list::<i64>().value(i),
        _ => array.as_fixed_size_list().value(i),
    };
    let mut out = String::from("{");
    for j in 0..inner.len() {
        if j > 0 {
            out.push(',');
        }
        match value(&inner, j)? {
            Value::Null => out.push_str("NULL"),
            Value::Text(t) if matches!(inner.data_type(), DataType::List(_)) => out.push_str(&t),
            Value::Text(t) => common::array::push_element(&mut out, &t),
            v => out.push_str(&v.to_pg_text().unwrap_or_default()),
        }
    }
    out.push('}');
    Ok(out)
}

/// A bound parameter as the scalar of the type DataFusion planned for it.
pub fn scalar(v: &Value, ty: Option<&DataType>) -> Result<ScalarValue, ArrowError> {
    if let (Value::Text(text), Some(DataType::List(element))) = (v, ty) {
        let elements = common::array::parse(text)
            .ok_or_else(|| ArrowError::CastError(format!("malformed array literal: \"{text}\"")))?;
        let array = list_array(element.data_type(), &[Some(elements)])?;
        return ScalarValue::try_from_array(&array, 0)
            .map_err(|e| ArrowError::CastError(e.to_string()));
    }
    let s = match v {
        Value::Null => ScalarValue::Null,
        Value::Bool(b) => ScalarValue::Boolean(Some(*b)),
        Value::Int(i) => ScalarValue::Int64(Some(*i)),
        Value::Float(f) => ScalarValue::Float64(Some(*f)),
        Value::Numeric(d) => {
            let scale = i8::try_from(d.scale()).unwrap_or(NUMERIC_SCALE);
            ScalarValue::Decimal128(Some(d.mantissa()), NUMERIC_PRECISION, scale)
        }
        Value::Text(t) => ScalarValue::Utf8(Some(t.clone())),
        Value::Date(d) => ScalarValue::Date32(Some(*d)),
        Value::Timestamp(t) => ScalarValue::TimestampMicrosecond(Some(*t), None),
        Value::TimestampTz(t) => ScalarValue::TimestampMicrosecond(Some(*t), Some(UTC.into())),
    };
    match ty {
        Some(ty) if *ty != s.data_type() && !matches!(ty, DataType::Null) => s
            .cast_to(ty)
            .map_err(|e| ArrowError::CastError(e.to_string())),
        _ => Ok(s),
    }
}

/// The SQL type a client should bind parameter of Arrow type `ty` as; text
/// when DataFusion could not tell.
pub fn param_type(ty: Option<&DataType>) -> SqlType {
    ty.map_or(SqlType::Text, sql_type)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_survive_a_round_trip_through_arrow() {
        let columns = vec![
            Column::new("b", SqlType::Boolean),
            Column::new("i", SqlType::Integer),
            Column::new("n", SqlType::Numeric),
            Column::new("t", SqlType::Text),
            Column::new("ts", SqlType::TimestampTz),
        ];
        let rows = vec![
            vec![
                Value::Bool(true),
                Value::Int(7),
                Value::Numeric(Decimal::new(150, 2)),
                Value::Text("x".into()),
                Value::TimestampTz(1_000_000),
            ],
            vec![Value::Null; 5],
        ];
        let schema = schema(&columns);
        let batch = to_batch(&schema, &columns, &[0, 1, 2, 3, 4], &rows).unwrap();
        let mut back = Vec::new();
        super::rows(&batch, &mut back).unwrap();
        assert_eq!(back[1], rows[1]);
        assert_eq!(back[0][2], Value::Numeric(Decimal::new(15, 1)));
        // A declared scale stays, as PostgreSQL shows it.
        let typed = vec![Column {
            typmod: Some(common::numeric::Typmod {
                precision: 6,
                scale: 2,
            }),
            ..Column::new("m", SqlType::Numeric)
        }];
        let row = vec![Value::Numeric(Decimal::new(150, 2))];
        let batch = to_batch(
            &super::schema(&typed),
            &typed,
            &[0],
            std::slice::from_ref(&row),
        )
        .unwrap();
        let mut shown = Vec::new();
        super::rows(&batch, &mut shown).unwrap();
        assert_eq!(shown[0][0].to_pg_text().as_deref(), Some("1.50"));
        assert_eq!(back[0][4], rows[0][4]);
    }

    #[test]
    fn a_numeric_of_28_digits_survives_a_round_trip_through_arrow() {
        let columns = vec![Column::new("n", SqlType::Numeric)];
        let schema = schema(&columns);
        for text in [
            "9999999999999999999999999999",
            "-1234567890123456789012345678",
            "0.0000000001",
            "0",
        ] {
            let row = vec![Value::Numeric(text.parse().unwrap())];
            let batch = to_batch(&schema, &columns, &[0], std::slice::from_ref(&row)).unwrap();
            let mut back = Vec::new();
            super::rows(&batch, &mut back).unwrap();
            assert_eq!(back, vec![row], "{text}");
        }
    }

    #[test]
    fn an_integer_too_wide_for_its_column_is_an_error_not_a_wrap() {
        let columns = vec![Column::new("i", SqlType::SmallInt)];
        let schema = schema(&columns);
        assert!(to_batch(&schema, &columns, &[0], &[vec![Value::Int(70_000)]]).is_err());
    }
}
