//! Values on the wire: Bind parameters in, DataRow fields out, in the text and
//! the binary format of every [`SqlType`].
//!
//! Invariant: a result field is encoded as the type its column was described
//! with (RowDescription), never as the kind the value happens to have — a
//! client decodes binary fields by the described type, so a mismatch would be
//! read as garbage, not rejected. Values of another kind are cast first.

use crate::session::WireError;
use bytes::{BufMut, BytesMut};
use common::{CastError, Column, SqlState, SqlType, Value};
use pgwire::api::portal::Format;
use pgwire::api::results::{FieldFormat, FieldInfo};
use pgwire::api::Type;
use pgwire::messages::data::DataRow;
use rust_decimal::Decimal;
use std::borrow::Cow;
use std::str::FromStr;

/// Days from 1970-01-01 (Eddy's epoch) to 2000-01-01 (Postgres' binary epoch).
const PG_EPOCH_DAYS: i32 = 10_957;
/// Microseconds from 1970-01-01 to 2000-01-01.
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;

const NUMERIC_POS: u16 = 0x0000;
const NUMERIC_NEG: u16 = 0x4000;
const NUMERIC_NAN: u16 = 0xC000;

/// The Postgres type of a SQL type, for RowDescription and ParameterDescription.
pub(crate) fn pg_type(ty: SqlType) -> Type {
    Type::from_oid(ty.pg_oid()).unwrap_or(Type::UNKNOWN)
}

/// The SQL type a client declared for a parameter in Parse: `Ok(None)` when it
/// left the type to the server (no OID, 0 or `unknown`).
pub(crate) fn declared_type(idx: usize, ty: Option<&Type>) -> Result<Option<SqlType>, WireError> {
    let Some(ty) = ty else { return Ok(None) };
    Ok(Some(match ty.oid() {
        0 | 705 => return Ok(None),
        16 => SqlType::Boolean,
        21 => SqlType::SmallInt,
        23 => SqlType::Integer,
        20 => SqlType::BigInt,
        700 => SqlType::Real,
        701 => SqlType::Double,
        1700 => SqlType::Numeric,
        // name and bpchar travel like text.
        25 | 19 | 1042 => SqlType::Text,
        1043 => SqlType::Varchar(None),
        1082 => SqlType::Date,
        1114 => SqlType::Timestamp,
        1184 => SqlType::TimestampTz,
        oid if SqlType::array_by_oid(oid).is_some() => SqlType::array_by_oid(oid).unwrap_or(SqlType::Text),
        _ => {
            return Err(WireError::new(
                SqlState::FeatureNotSupported,
                format!("parameter ${} has type {}, which Eddy does not support", idx + 1, ty.name()),
            )
            .with_hint("declare it as one of boolean, smallint, integer, bigint, real, double precision, numeric, text, varchar, date, timestamp, timestamptz, or leave its type unspecified"))
        }
    }))
}

/// The format of field `idx`; out-of-range codes (rejected at Bind) read as text.
pub(crate) fn field_format(formats: &Format, idx: usize) -> FieldFormat {
    match formats {
        Format::UnifiedText => FieldFormat::Text,
        Format::UnifiedBinary => FieldFormat::Binary,
        Format::Individual(codes) => codes
            .get(idx)
            .map_or(FieldFormat::Text, |c| FieldFormat::from(*c)),
    }
}

/// Checks that a Bind gives 0, 1 or `n` format codes, as the protocol requires.
pub(crate) fn check_format_count(what: &str, codes: usize, n: usize) -> Result<(), WireError> {
    if codes <= 1 || codes == n {
        Ok(())
    } else {
        Err(WireError::new(
            SqlState::ProtocolViolation,
            format!("bind message has {codes} {what} formats but there are {n} {what}s"),
        ))
    }
}

/// RowDescription fields for `columns`; `formats` is `None` when describing a
/// statement (formats are not known before Bind).
pub(crate) fn field_infos(columns: &[Column], formats: Option<&Format>) -> Vec<FieldInfo> {
    columns
        .iter()
        .enumerate()
        .map(|(idx, col)| {
            let format = formats.map_or(FieldFormat::Text, |f| field_format(f, idx));
            let modifier = match (col.ty, col.typmod) {
                // Postgres stores varchar(n) as n + 4 (the varlena header).
                (SqlType::Varchar(Some(n)), _) => {
                    i32::try_from(n).map_or(-1, |n| n.saturating_add(4))
                }
                // numeric(p,s) as (p << 16 | s) + 4.
                (SqlType::Numeric, Some(t)) => {
                    i32::try_from((t.precision << 16) | t.scale).map_or(-1, |m| m.saturating_add(4))
                }
                _ => -1,
            };
            let (table, column) = col.origin.map_or((None, None), |o| {
                (i32::try_from(o.table).ok(), Some(o.column))
            });
            FieldInfo::new(col.name.clone(), table, column, pg_type(col.ty), format)
                .with_type_size(type_size(col.ty))
                .with_type_modifier(modifier)
        })
        .collect()
}

fn type_size(ty: SqlType) -> i16 {
    match ty {
        SqlType::Boolean => 1,
        SqlType::SmallInt => 2,
        SqlType::Integer | SqlType::Real | SqlType::Date => 4,
        SqlType::BigInt | SqlType::Double | SqlType::Timestamp | SqlType::TimestampTz => 8,
        SqlType::Numeric | SqlType::Text | SqlType::Varchar(_) | SqlType::Array(_) => -1,
    }
}

/// Encodes one row; field `i` as `columns[i].ty` in the format `formats` asks.
pub(crate) fn encode_row(
    row: &[Value],
    columns: &[Column],
    formats: &Format,
) -> Result<DataRow, WireError> {
    if row.len() != columns.len() {
        return Err(WireError::new(
            SqlState::Internal,
            format!(
                "a row has {} values but the result has {} columns",
                row.len(),
                columns.len()
            ),
        ));
    }
    let mut buf = BytesMut::with_capacity(16 * row.len());
    for (idx, (value, col)) in row.iter().zip(columns).enumerate() {
        encode_field(value, col.ty, field_format(formats, idx), &mut buf)?;
    }
    let count = i16::try_from(row.len())
        .map_err(|_| WireError::new(SqlState::Internal, "a row has more than 32767 columns"))?;
    Ok(DataRow::new(buf, count))
}

/// Writes the field's length and bytes (length -1 for NULL).
fn encode_field(
    value: &Value,
    ty: SqlType,
    format: FieldFormat,
    buf: &mut BytesMut,
) -> Result<(), WireError> {
    let value = coerce(value, ty)?;
    let len_at = buf.len();
    buf.put_i32(-1);
    match format {
        FieldFormat::Text => match (&*value, ty) {
            (Value::Float(f), SqlType::Real) => {
                buf.put_slice(common::value::format_real(*f as f32).as_bytes())
            }
            _ => match value.to_pg_text() {
                Some(text) => buf.put_slice(text.as_bytes()),
                None => return Ok(()),
            },
        },
        FieldFormat::Binary => {
            if value.is_null() {
                return Ok(());
            }
            encode_binary(&value, ty, buf)?;
        }
    }
    let len = i32::try_from(buf.len() - len_at - 4)
        .map_err(|_| WireError::new(SqlState::Internal, "a field is larger than 2 GiB"))?;
    buf[len_at..len_at + 4].copy_from_slice(&len.to_be_bytes());
    Ok(())
}

/// The value as the kind `ty` holds, cast when the backend produced another.
fn coerce(value: &Value, ty: SqlType) -> Result<Cow<'_, Value>, WireError> {
    let matches = match (value, ty) {
        (Value::Null, _) => true,
        (Value::Bool(_), SqlType::Boolean) => true,
        (Value::Int(_), t) => t.is_integer(),
        (Value::Float(_), t) => t.is_float(),
        (Value::Numeric(_), SqlType::Numeric) => true,
        (Value::Text(_), t) => t.is_text() || matches!(t, SqlType::Array(_)),
        (Value::Date(_), SqlType::Date) => true,
        (Value::Timestamp(_), SqlType::Timestamp) => true,
        (Value::TimestampTz(_), SqlType::TimestampTz) => true,
        _ => false,
    };
    if matches {
        return Ok(Cow::Borrowed(value));
    }
    value.cast(ty).map(Cow::Owned).map_err(|e| {
        WireError::new(
            SqlState::Internal,
            format!("cannot send a {} value as {ty}: {e}", value.kind()),
        )
    })
}

fn out_of_range(value: &Value, ty: SqlType) -> WireError {
    WireError::new(
        SqlState::NumericValueOutOfRange,
        format!(
            "{} is out of range for type {ty}",
            value.to_pg_text().unwrap_or_default()
        ),
    )
}

fn encode_binary(value: &Value, ty: SqlType, buf: &mut BytesMut) -> Result<(), WireError> {
    let range = || out_of_range(value, ty);
    match (value, ty) {
        (Value::Bool(b), _) => buf.put_u8(u8::from(*b)),
        (Value::Int(i), SqlType::SmallInt) => buf.put_i16(i16::try_from(*i).map_err(|_| range())?),
        (Value::Int(i), SqlType::Integer) => buf.put_i32(i32::try_from(*i).map_err(|_| range())?),
        (Value::Int(i), _) => buf.put_i64(*i),
        (Value::Float(f), SqlType::Real) => buf.put_f32(*f as f32),
        (Value::Float(f), _) => buf.put_f64(*f),
        (Value::Numeric(d), _) => encode_numeric(*d, buf),
        (Value::Text(s), SqlType::Array(element)) => encode_array(s, *element, buf)?,
        (Value::Text(s), _) => buf.put_slice(s.as_bytes()),
        (Value::Date(d), _) => buf.put_i32(d.checked_sub(PG_EPOCH_DAYS).ok_or_else(range)?),
        (Value::Timestamp(t), _) | (Value::TimestampTz(t), _) => {
            buf.put_i64(t.checked_sub(PG_EPOCH_MICROS).ok_or_else(range)?)
        }
        (Value::Null, _) => {}
    }
    Ok(())
}

/// Postgres' binary array of one dimension: dimensions, whether any
/// element is NULL, the element type, the length and lower bound (1), then
/// each element as its length and binary form.
fn encode_array(text: &str, element: SqlType, buf: &mut BytesMut) -> Result<(), WireError> {
    let elements = common::array::parse(text).ok_or_else(|| {
        WireError::new(
            SqlState::InvalidTextRepresentation,
            format!("malformed array literal: \"{text}\""),
        )
    })?;
    let len = i32::try_from(elements.len())
        .map_err(|_| WireError::new(SqlState::ProgramLimitExceeded, "array too large"))?;
    buf.put_i32(i32::from(len > 0));
    buf.put_i32(i32::from(elements.iter().any(Option::is_none)));
    buf.put_u32(element.pg_oid());
    if len > 0 {
        buf.put_i32(len);
        buf.put_i32(1);
    }
    for e in &elements {
        let value = e.as_ref().map_or(Value::Null, |e| Value::Text(e.clone()));
        encode_field(&value, element, FieldFormat::Binary, buf)?;
    }
    Ok(())
}

/// Reads Postgres' binary array of one dimension as its literal text.
fn decode_array(bytes: &[u8], element: SqlType) -> Result<Value, WireError> {
    let bad = || {
        WireError::new(
            SqlState::InvalidBinaryRepresentation,
            format!("incorrect binary data format for type {element}[]"),
        )
    };
    let mut rest = bytes;
    let int = |rest: &mut &[u8]| -> Result<i32, WireError> {
        let (head, tail) = rest.split_first_chunk::<4>().ok_or_else(bad)?;
        *rest = tail;
        Ok(i32::from_be_bytes(*head))
    };
    let dimensions = int(&mut rest)?;
    let _has_nulls = int(&mut rest)?;
    let _element_oid = int(&mut rest)?;
    let len = match dimensions {
        0 => 0,
        1 => {
            let len = int(&mut rest)?;
            let _lower_bound = int(&mut rest)?;
            usize::try_from(len).map_err(|_| bad())?
        }
        _ => {
            return Err(WireError::new(
                SqlState::FeatureNotSupported,
                "arrays of more than one dimension are not supported",
            )
            .with_hint("pass a one-dimensional array"))
        }
    };
    let mut texts = Vec::with_capacity(len.min(1024));
    for _ in 0..len {
        let size = int(&mut rest)?;
        let value = if size < 0 {
            None
        } else {
            let size = usize::try_from(size).map_err(|_| bad())?;
            if rest.len() < size {
                return Err(bad());
            }
            let (field, tail) = rest.split_at(size);
            rest = tail;
            decode_param(Some(field), element, true)?.to_pg_text()
        };
        texts.push(value);
    }
    if !rest.is_empty() {
        return Err(bad());
    }
    Ok(Value::Text(common::array::format(
        texts.iter().map(Option::as_deref),
    )))
}

/// Postgres' binary numeric: digit count, weight (of the first base-10000
/// digit), sign, display scale, then the base-10000 digits.
fn encode_numeric(d: Decimal, buf: &mut BytesMut) {
    // Not normalized: the scale is the display scale (1.50 keeps its 0).
    let scale = d.scale() as usize;
    let digits = d.mantissa().unsigned_abs().to_string();
    let (int_part, frac_part) = if digits.len() > scale {
        let (i, f) = digits.split_at(digits.len() - scale);
        (i.to_owned(), f.to_owned())
    } else {
        (
            String::new(),
            format!("{}{digits}", "0".repeat(scale - digits.len())),
        )
    };
    let int_padded = format!("{}{int_part}", "0".repeat((4 - int_part.len() % 4) % 4));
    let frac_padded = format!("{frac_part}{}", "0".repeat((4 - frac_part.len() % 4) % 4));
    let mut groups: Vec<i16> = int_padded
        .as_bytes()
        .chunks(4)
        .chain(frac_padded.as_bytes().chunks(4))
        .map(|chunk| {
            chunk
                .iter()
                .fold(0i16, |acc, b| acc * 10 + i16::from(b - b'0'))
        })
        .collect();
    let mut weight = (int_padded.len() / 4) as i16 - 1;
    let leading = groups.iter().take_while(|g| **g == 0).count();
    groups.drain(..leading);
    weight -= leading as i16;
    while groups.last() == Some(&0) {
        groups.pop();
    }
    if groups.is_empty() {
        weight = 0;
    }
    let sign = if d.is_sign_negative() && !d.is_zero() {
        NUMERIC_NEG
    } else {
        NUMERIC_POS
    };
    buf.put_i16(groups.len() as i16);
    buf.put_i16(weight);
    buf.put_u16(sign);
    buf.put_u16(scale as u16);
    for g in groups {
        buf.put_i16(g);
    }
}

/// Decodes the Bind parameters as `types` (one per parameter).
pub(crate) fn decode_params(
    params: &[Option<bytes::Bytes>],
    formats: &Format,
    types: &[SqlType],
) -> Result<Vec<Value>, WireError> {
    if params.len() != types.len() {
        return Err(WireError::new(
            SqlState::ProtocolViolation,
            format!(
                "bind message supplies {} parameters, but prepared statement requires {}",
                params.len(),
                types.len()
            ),
        ));
    }
    params
        .iter()
        .zip(types)
        .enumerate()
        .map(|(idx, (bytes, ty))| {
            let binary = field_format(formats, idx) == FieldFormat::Binary;
            decode_param(bytes.as_deref(), *ty, binary)
                .map_err(|e| e.with_detail(format!("in parameter ${}", idx + 1)))
        })
        .collect()
}

/// Decodes one parameter; `None` bytes is NULL.
pub(crate) fn decode_param(
    bytes: Option<&[u8]>,
    ty: SqlType,
    binary: bool,
) -> Result<Value, WireError> {
    let Some(bytes) = bytes else {
        return Ok(Value::Null);
    };
    if !binary || ty.is_text() {
        let text = std::str::from_utf8(bytes).map_err(|_| {
            WireError::new(
                SqlState::InvalidTextRepresentation,
                "parameter is not valid UTF-8",
            )
        })?;
        return Value::Text(text.to_owned())
            .cast(ty)
            .map_err(|e| cast_error(&e));
    }
    let bad = || {
        WireError::new(
            SqlState::InvalidTextRepresentation,
            format!(
                "incorrect binary data format for type {ty} ({} bytes)",
                bytes.len()
            ),
        )
    };
    let value = match ty {
        SqlType::Boolean => match bytes {
            [b] => Value::Bool(*b != 0),
            _ => return Err(bad()),
        },
        // Any integer width is accepted: some drivers send int4 for int8.
        SqlType::SmallInt | SqlType::Integer | SqlType::BigInt => {
            let i = match bytes.len() {
                2 => i64::from(i16::from_be_bytes(bytes.try_into().map_err(|_| bad())?)),
                4 => i64::from(i32::from_be_bytes(bytes.try_into().map_err(|_| bad())?)),
                8 => i64::from_be_bytes(bytes.try_into().map_err(|_| bad())?),
                _ => return Err(bad()),
            };
            Value::Int(i).cast(ty).map_err(|e| cast_error(&e))?
        }
        SqlType::Real | SqlType::Double => {
            let f = match bytes.len() {
                4 => f64::from(f32::from_be_bytes(bytes.try_into().map_err(|_| bad())?)),
                8 => f64::from_be_bytes(bytes.try_into().map_err(|_| bad())?),
                _ => return Err(bad()),
            };
            Value::Float(f).cast(ty).map_err(|e| cast_error(&e))?
        }
        SqlType::Numeric => Value::Numeric(decode_numeric(bytes).ok_or_else(bad)??),
        SqlType::Date => {
            let days = i32::from_be_bytes(bytes.try_into().map_err(|_| bad())?);
            Value::Date(
                days.checked_add(PG_EPOCH_DAYS)
                    .ok_or_else(|| infinite(ty))?,
            )
        }
        SqlType::Timestamp | SqlType::TimestampTz => {
            let micros = i64::from_be_bytes(bytes.try_into().map_err(|_| bad())?);
            let micros = micros
                .checked_add(PG_EPOCH_MICROS)
                .ok_or_else(|| infinite(ty))?;
            if ty == SqlType::Timestamp {
                Value::Timestamp(micros)
            } else {
                Value::TimestampTz(micros)
            }
        }
        SqlType::Array(element) => decode_array(bytes, *element)?,
        SqlType::Text | SqlType::Varchar(_) => unreachable!("text types are decoded above"),
    };
    Ok(value)
}

fn infinite(ty: SqlType) -> WireError {
    WireError::new(
        SqlState::NumericValueOutOfRange,
        format!("{ty} infinity is not supported"),
    )
}

/// `None` when the bytes are malformed; `Some(Err)` for a well-formed value
/// Eddy cannot hold (NaN, infinities, more than 28 significant digits).
fn decode_numeric(bytes: &[u8]) -> Option<Result<Decimal, WireError>> {
    let word = |i: usize| {
        bytes
            .get(2 * i..2 * i + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
    };
    let ndigits = word(0)? as i16;
    let weight = word(1)? as i16;
    let sign = word(2)?;
    let dscale = word(3)?;
    if ndigits < 0 || bytes.len() != 8 + 2 * ndigits as usize {
        return None;
    }
    if sign != NUMERIC_POS && sign != NUMERIC_NEG {
        let what = if sign == NUMERIC_NAN {
            "NaN"
        } else {
            "infinity"
        };
        return Some(Err(WireError::new(
            SqlState::NumericValueOutOfRange,
            format!("numeric {what} is not supported"),
        )));
    }
    let mut digits = String::with_capacity(4 * ndigits as usize);
    for i in 0..ndigits as usize {
        let g = word(4 + i)?;
        if g > 9999 {
            return None;
        }
        digits.push_str(&format!("{g:04}"));
    }
    // The decimal point sits after (weight + 1) base-10000 digits.
    let point = 4 * (i64::from(weight) + 1);
    let len = digits.len() as i64;
    let text = if point <= 0 {
        format!("0.{}{digits}", "0".repeat((-point) as usize))
    } else if point >= len {
        format!("{digits}{}", "0".repeat((point - len) as usize))
    } else {
        let (i, f) = digits.split_at(point as usize);
        format!("{i}.{f}")
    };
    let text = if sign == NUMERIC_NEG {
        format!("-{text}")
    } else {
        text
    };
    Some(
        Decimal::from_str(&text)
            .map(|d| {
                let d = d.normalize();
                if d.scale() > u32::from(dscale) {
                    d.round_dp(u32::from(dscale))
                } else {
                    d
                }
            })
            .map_err(|_| {
                WireError::new(
                    SqlState::NumericValueOutOfRange,
                    format!("numeric value {text} is out of range"),
                )
                .with_hint("Eddy's numeric holds up to 28 significant digits")
            }),
    )
}

pub(crate) fn cast_error(e: &CastError) -> WireError {
    WireError::new(e.sqlstate(), e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binary(value: &Value, ty: SqlType) -> Vec<u8> {
        let mut buf = BytesMut::new();
        encode_field(value, ty, FieldFormat::Binary, &mut buf).unwrap();
        buf[4..].to_vec()
    }

    fn text(value: &Value, ty: SqlType) -> String {
        let mut buf = BytesMut::new();
        encode_field(value, ty, FieldFormat::Text, &mut buf).unwrap();
        String::from_utf8(buf[4..].to_vec()).unwrap()
    }

    fn dec(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    #[test]
    fn every_type_round_trips_through_binary() {
        let ts = common::value::parse_timestamp("2026-11-05T07:00:00.25").unwrap();
        let cases = [
            (Value::Bool(true), SqlType::Boolean),
            (Value::Int(-7), SqlType::SmallInt),
            (Value::Int(70_000), SqlType::Integer),
            (Value::Int(i64::MIN), SqlType::BigInt),
            (Value::Float(1.5), SqlType::Real),
            (Value::Float(-0.1), SqlType::Double),
            (Value::Numeric(dec("12345.678")), SqlType::Numeric),
            (Value::Numeric(dec("-0.0005")), SqlType::Numeric),
            (Value::Numeric(dec("0")), SqlType::Numeric),
            (Value::Numeric(dec("10000")), SqlType::Numeric),
            (
                Value::Numeric(dec("79228162514264337593543950335")),
                SqlType::Numeric,
            ),
            (Value::Text("héllo".into()), SqlType::Text),
            (Value::Text("abc".into()), SqlType::Varchar(Some(3))),
            (Value::Date(0), SqlType::Date),
            (Value::Date(-10_000), SqlType::Date),
            (Value::Timestamp(ts), SqlType::Timestamp),
            (Value::TimestampTz(ts), SqlType::TimestampTz),
        ];
        for (value, ty) in cases {
            let bytes = binary(&value, ty);
            assert_eq!(decode_param(Some(&bytes), ty, true).unwrap(), value, "{ty}");
            let text = value.to_pg_text().unwrap();
            assert_eq!(
                decode_param(Some(text.as_bytes()), ty, false).unwrap(),
                value,
                "{ty} as text"
            );
        }
    }

    #[test]
    fn binary_layouts_match_postgres() {
        assert_eq!(binary(&Value::Int(1), SqlType::BigInt), 1i64.to_be_bytes());
        assert_eq!(binary(&Value::Int(1), SqlType::Integer), 1i32.to_be_bytes());
        // 2000-01-01 is day 0 on the wire.
        assert_eq!(
            binary(&Value::Date(PG_EPOCH_DAYS), SqlType::Date),
            0i32.to_be_bytes()
        );
        assert_eq!(
            binary(&Value::Timestamp(PG_EPOCH_MICROS + 1), SqlType::Timestamp),
            1i64.to_be_bytes()
        );
        // 12345.678: 3 digits, weight 1, positive, dscale 3: 1 2345 6780.
        let expected: Vec<u8> = [3i16, 1, 0, 3, 1, 2345, 6780]
            .iter()
            .flat_map(|w| w.to_be_bytes())
            .collect();
        assert_eq!(
            binary(&Value::Numeric(dec("12345.678")), SqlType::Numeric),
            expected
        );
        // 0.50: weight -1, display scale 2, as Postgres sends '0.50'::numeric.
        let expected: Vec<u8> = [1i16, -1, 0, 2, 5000]
            .iter()
            .flat_map(|w| w.to_be_bytes())
            .collect();
        assert_eq!(
            binary(&Value::Numeric(dec("0.50")), SqlType::Numeric),
            expected
        );
        let zero: Vec<u8> = [0i16, 0, 0, 2]
            .iter()
            .flat_map(|w| w.to_be_bytes())
            .collect();
        assert_eq!(binary(&Value::Numeric(dec("0.00")), SqlType::Numeric), zero);
        let neg: Vec<u8> = [1i16, 0, 0x4000, 0, 42]
            .iter()
            .flat_map(|w| w.to_be_bytes())
            .collect();
        assert_eq!(binary(&Value::Numeric(dec("-42")), SqlType::Numeric), neg);
    }

    #[test]
    fn values_of_another_kind_are_cast_to_the_column_type() {
        assert_eq!(binary(&Value::Int(2), SqlType::Double), 2f64.to_be_bytes());
        assert_eq!(text(&Value::Int(2), SqlType::Numeric), "2");
        assert_eq!(
            text(&Value::TimestampTz(0), SqlType::TimestampTz),
            "1970-01-01 00:00:00+00"
        );
        let mut buf = BytesMut::new();
        let err = encode_field(
            &Value::Int(70_000),
            SqlType::SmallInt,
            FieldFormat::Binary,
            &mut buf,
        )
        .unwrap_err();
        assert_eq!(err.code, SqlState::NumericValueOutOfRange);
        let err = encode_field(
            &Value::Text("x".into()),
            SqlType::Date,
            FieldFormat::Text,
            &mut buf,
        )
        .unwrap_err();
        assert_eq!(err.code, SqlState::Internal);
    }

    #[test]
    fn nulls_have_length_minus_one() {
        let columns = [
            Column::new("a", SqlType::BigInt),
            Column::new("b", SqlType::Text),
        ];
        let row = encode_row(
            &[Value::Null, Value::Text("x".into())],
            &columns,
            &Format::UnifiedBinary,
        )
        .unwrap();
        assert_eq!(row.field_count, 2);
        assert_eq!(&row.data[..], &[255, 255, 255, 255, 0, 0, 0, 1, b'x']);
        assert_eq!(
            decode_param(None, SqlType::BigInt, true).unwrap(),
            Value::Null
        );
    }

    #[test]
    fn bad_parameters_are_user_errors() {
        let err = decode_param(Some(b"12x"), SqlType::Integer, false).unwrap_err();
        assert_eq!(err.code, SqlState::InvalidTextRepresentation);
        assert_eq!(
            err.message,
            "invalid input syntax for type integer: \"12x\""
        );
        let err =
            decode_param(Some(&70_000i32.to_be_bytes()), SqlType::SmallInt, true).unwrap_err();
        assert_eq!(err.code, SqlState::NumericValueOutOfRange);
        let err = decode_param(Some(&[0, 1, 2]), SqlType::BigInt, true).unwrap_err();
        assert_eq!(err.code, SqlState::InvalidTextRepresentation);
        let nan: Vec<u8> = [0i16, 0, 0xC000u16 as i16, 0]
            .iter()
            .flat_map(|w| w.to_be_bytes())
            .collect();
        assert_eq!(
            decode_param(Some(&nan), SqlType::Numeric, true)
                .unwrap_err()
                .code,
            SqlState::NumericValueOutOfRange
        );
        let inf = i64::MAX.to_be_bytes();
        assert!(decode_param(Some(&inf), SqlType::Timestamp, true).is_err());
        let err = decode_params(&[None], &Format::UnifiedText, &[]).unwrap_err();
        assert_eq!(err.code, SqlState::ProtocolViolation);
        let err = decode_params(
            &[Some("x".into())],
            &Format::UnifiedText,
            &[SqlType::BigInt],
        )
        .unwrap_err();
        assert_eq!(err.detail.as_deref(), Some("in parameter $1"));
    }

    #[test]
    fn narrower_integers_are_accepted_for_wider_params() {
        assert_eq!(
            decode_param(Some(&5i32.to_be_bytes()), SqlType::BigInt, true).unwrap(),
            Value::Int(5)
        );
        assert_eq!(
            decode_param(Some(&1.5f32.to_be_bytes()), SqlType::Double, true).unwrap(),
            Value::Float(1.5)
        );
    }

    #[test]
    fn declared_types_map_to_sql_types() {
        assert_eq!(
            declared_type(0, Some(&Type::INT8)).unwrap(),
            Some(SqlType::BigInt)
        );
        assert_eq!(declared_type(0, Some(&Type::UNKNOWN)).unwrap(), None);
        assert_eq!(declared_type(0, None).unwrap(), None);
        let err = declared_type(1, Some(&Type::UUID)).unwrap_err();
        assert_eq!(err.code, SqlState::FeatureNotSupported);
        assert!(err.message.starts_with("parameter $2 has type uuid"));
        for ty in [
            SqlType::Boolean,
            SqlType::Numeric,
            SqlType::Varchar(None),
            SqlType::TimestampTz,
        ] {
            assert_eq!(declared_type(0, Some(&pg_type(ty))).unwrap(), Some(ty));
        }
    }

    #[test]
    fn arrays_round_trip_in_binary() {
        let text_array = SqlType::array_of(SqlType::Text).unwrap();
        let value = Value::Text(r#"{a,"b c",NULL,""}"#.into());
        let mut buf = BytesMut::new();
        encode_binary(&value, text_array, &mut buf).unwrap();
        // One dimension, with a NULL, of text (25), four elements from 1.
        assert_eq!(
            &buf[..20],
            &[0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 25, 0, 0, 0, 4, 0, 0, 0, 1]
        );
        assert_eq!(decode_param(Some(&buf), text_array, true).unwrap(), value);
        let ints = SqlType::array_of(SqlType::BigInt).unwrap();
        let mut buf = BytesMut::new();
        encode_binary(&Value::Text("{1,-2}".into()), ints, &mut buf).unwrap();
        assert_eq!(
            decode_param(Some(&buf), ints, true).unwrap(),
            Value::Text("{1,-2}".into())
        );
        // Truncated, or two dimensions: errors, not panics.
        assert!(decode_param(Some(&buf[..buf.len() - 1]), ints, true).is_err());
        let two = [0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 20];
        assert_eq!(
            decode_param(Some(&two), ints, true).unwrap_err().code,
            SqlState::FeatureNotSupported
        );
        assert_eq!(
            declared_type(0, Some(&Type::TEXT_ARRAY)).unwrap(),
            Some(text_array)
        );
        assert_eq!(pg_type(text_array), Type::TEXT_ARRAY);
    }

    #[test]
    fn field_infos_carry_formats_and_modifiers() {
        let cols = [
            Column::new("n", SqlType::Varchar(Some(10))),
            Column::new("x", SqlType::BigInt),
        ];
        let fields = field_infos(&cols, Some(&Format::Individual(vec![0, 1])));
        assert_eq!(fields[0].type_modifier(), 14);
        assert_eq!(fields[1].format(), FieldFormat::Binary);
        assert_eq!(fields[1].type_size(), 8);
        assert_eq!(fields[1].datatype(), &Type::INT8);
        assert!(check_format_count("result", 3, 2).is_err());
        assert!(check_format_count("result", 1, 2).is_ok());
    }
}
