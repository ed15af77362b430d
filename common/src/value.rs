//! Values, their comparison, casts between types and the Postgres text format.

use crate::types::SqlType;
use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime};
use rust_decimal::prelude::{FromPrimitive, ToPrimitive};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::fmt::Write as _;
use std::str::FromStr;

/// One SQL value. Integers of every width are `Int`, floats of every width are
/// `Float`; dates are days since 1970-01-01; timestamps are microseconds since
/// 1970-01-01 00:00:00 (UTC for `TimestampTz`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Numeric(Decimal),
    Text(String),
    Date(i32),
    Timestamp(i64),
    TimestampTz(i64),
}

pub type Row = Vec<Value>;

/// Why a value cannot become a type. The message is for people: it names the
/// value and the type.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CastError {
    #[error("{value} is out of range for type {ty}")]
    OutOfRange { value: String, ty: SqlType },
    #[error("invalid input syntax for type {ty}: \"{value}\"")]
    InvalidInput { value: String, ty: SqlType },
    #[error("cannot cast a {from} value to {ty}")]
    Incompatible { from: &'static str, ty: SqlType },
    #[error("value too long for type {ty}: \"{value}\"")]
    TooLong { value: String, ty: SqlType },
    #[error("numeric field overflow: a field with precision {precision}, scale {scale} must round to an absolute value less than 10^{}", precision - scale)]
    FieldOverflow { precision: u32, scale: u32 },
}

impl CastError {
    /// The one mapping of cast failures to SQLSTATEs.
    pub fn sqlstate(&self) -> crate::SqlState {
        use crate::SqlState;
        match self {
            CastError::OutOfRange { .. } | CastError::FieldOverflow { .. } => {
                SqlState::NumericValueOutOfRange
            }
            CastError::InvalidInput { .. } => SqlState::InvalidTextRepresentation,
            CastError::Incompatible { .. } => SqlState::DatatypeMismatch,
            CastError::TooLong { .. } => SqlState::StringDataRightTruncation,
        }
    }
}

const MICROS_PER_DAY: i64 = 86_400_000_000;

impl Value {
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// A short name of the value's kind, for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Int(_) => "integer",
            Value::Float(_) => "double precision",
            Value::Numeric(_) => "numeric",
            Value::Text(_) => "text",
            Value::Date(_) => "date",
            Value::Timestamp(_) => "timestamp",
            Value::TimestampTz(_) => "timestamptz",
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(*i as f64),
            Value::Float(f) => Some(*f),
            Value::Numeric(d) => d.to_f64(),
            _ => None,
        }
    }

    fn as_decimal(&self) -> Option<Decimal> {
        match self {
            Value::Int(i) => Some(Decimal::from(*i)),
            Value::Numeric(d) => Some(*d),
            Value::Float(f) => Decimal::from_f64(*f),
            _ => None,
        }
    }

    /// SQL comparison: `None` when either side is NULL or the kinds cannot be
    /// compared. Numbers of different kinds compare by value.
    pub fn sql_cmp(&self, other: &Value) -> Option<Ordering> {
        use Value::*;
        match (self, other) {
            (Null, _) | (_, Null) => None,
            (Bool(a), Bool(b)) => Some(a.cmp(b)),
            (Int(a), Int(b)) => Some(a.cmp(b)),
            (Text(a), Text(b)) => Some(a.cmp(b)),
            (Date(a), Date(b)) => Some(a.cmp(b)),
            (Timestamp(a), Timestamp(b)) | (TimestampTz(a), TimestampTz(b)) => Some(a.cmp(b)),
            (Timestamp(a), TimestampTz(b)) | (TimestampTz(a), Timestamp(b)) => Some(a.cmp(b)),
            (Date(d), Timestamp(t)) | (Date(d), TimestampTz(t)) => {
                Some((i64::from(*d) * MICROS_PER_DAY).cmp(t))
            }
            (Timestamp(t), Date(d)) | (TimestampTz(t), Date(d)) => {
                Some(t.cmp(&(i64::from(*d) * MICROS_PER_DAY)))
            }
            (Float(_), _) | (_, Float(_)) => {
                let (a, b) = (self.as_f64()?, other.as_f64()?);
                Some(a.total_cmp(&b))
            }
            (Numeric(_), _) | (_, Numeric(_)) => Some(self.as_decimal()?.cmp(&other.as_decimal()?)),
            _ => None,
        }
    }

    /// A total order for sorting and for MIN/MAX state: NULL sorts last, as
    /// Postgres does for ascending order; mismatched kinds order by kind.
    pub fn total_cmp(&self, other: &Value) -> Ordering {
        match (self, other) {
            (Value::Null, Value::Null) => Ordering::Equal,
            (Value::Null, _) => Ordering::Greater,
            (_, Value::Null) => Ordering::Less,
            _ => self
                .sql_cmp(other)
                .unwrap_or_else(|| self.rank().cmp(&other.rank())),
        }
    }

    fn rank(&self) -> u8 {
        match self {
            Value::Null => 9,
            Value::Bool(_) => 0,
            Value::Int(_) | Value::Float(_) | Value::Numeric(_) => 1,
            Value::Text(_) => 2,
            Value::Date(_) | Value::Timestamp(_) | Value::TimestampTz(_) => 3,
        }
    }

    /// Casts to `ty` with Postgres' rules: integers are range-checked, text is
    /// parsed, floats round to integers, NULL stays NULL.
    pub fn cast(&self, ty: SqlType) -> Result<Value, CastError> {
        use SqlType as T;
        let out_of_range = || CastError::OutOfRange {
            value: self.to_pg_text().unwrap_or_default(),
            ty,
        };
        let incompatible = || CastError::Incompatible {
            from: self.kind(),
            ty,
        };
        Ok(match (self, ty) {
            (Value::Null, _) => Value::Null,
            (Value::Text(s), _) if !ty.is_text() => return parse_text(s, ty),
            (_, T::Text) => Value::Text(self.to_pg_text().unwrap_or_default()),
            (_, T::Varchar(limit)) => {
                let text = self.to_pg_text().unwrap_or_default();
                match limit {
                    Some(n) if text.chars().count() > n as usize => {
                        return Err(CastError::TooLong { value: text, ty })
                    }
                    _ => Value::Text(text),
                }
            }
            (Value::Bool(b), T::Boolean) => Value::Bool(*b),
            (Value::Int(i), T::Boolean) => Value::Bool(*i != 0),
            (Value::Bool(b), t) if t.is_integer() => Value::Int(i64::from(*b)),
            (Value::Int(i), t) if t.is_integer() => {
                Value::Int(check_int(*i, t).ok_or_else(out_of_range)?)
            }
            (Value::Float(f), t) if t.is_integer() => {
                let r = f.round_ties_even();
                if !r.is_finite() || r < i64::MIN as f64 || r >= i64::MAX as f64 {
                    return Err(out_of_range());
                }
                Value::Int(check_int(r as i64, t).ok_or_else(out_of_range)?)
            }
            (Value::Numeric(d), t) if t.is_integer() => {
                // Postgres rounds numeric half away from zero (2.5 → 3);
                // floats round half to even, as rint() does.
                let i = d
                    .round_dp_with_strategy(0, rust_decimal::RoundingStrategy::MidpointAwayFromZero)
                    .to_i64()
                    .ok_or_else(out_of_range)?;
                Value::Int(check_int(i, t).ok_or_else(out_of_range)?)
            }
            (v, T::Real) => {
                let f = v.as_f64().ok_or_else(incompatible)?;
                if f.is_finite() && (f as f32).is_infinite() {
                    return Err(out_of_range());
                }
                Value::Float(f64::from(f as f32))
            }
            (v, T::Double) => Value::Float(v.as_f64().ok_or_else(incompatible)?),
            (Value::Float(f), T::Numeric) => {
                Value::Numeric(Decimal::from_f64(*f).ok_or_else(out_of_range)?)
            }
            (v, T::Numeric) => Value::Numeric(v.as_decimal().ok_or_else(incompatible)?),
            (Value::Date(d), T::Date) => Value::Date(*d),
            (Value::Timestamp(t), T::Date) | (Value::TimestampTz(t), T::Date) => {
                Value::Date(t.div_euclid(MICROS_PER_DAY) as i32)
            }
            (Value::Date(d), T::Timestamp) => Value::Timestamp(i64::from(*d) * MICROS_PER_DAY),
            (Value::Date(d), T::TimestampTz) => Value::TimestampTz(i64::from(*d) * MICROS_PER_DAY),
            (Value::Timestamp(t), T::Timestamp) | (Value::TimestampTz(t), T::Timestamp) => {
                Value::Timestamp(*t)
            }
            (Value::Timestamp(t), T::TimestampTz) | (Value::TimestampTz(t), T::TimestampTz) => {
                Value::TimestampTz(*t)
            }
            // Epoch milliseconds, as JSON producers commonly send them.
            (Value::Int(ms), T::Timestamp) => {
                Value::Timestamp(epoch_ms(*ms).ok_or_else(out_of_range)?)
            }
            (Value::Int(ms), T::TimestampTz) => {
                Value::TimestampTz(epoch_ms(*ms).ok_or_else(out_of_range)?)
            }
            _ => return Err(incompatible()),
        })
    }

    /// The Postgres text format of the value; `None` for NULL.
    pub fn to_pg_text(&self) -> Option<String> {
        Some(match self {
            Value::Null => return None,
            Value::Bool(b) => if *b { "t" } else { "f" }.to_owned(),
            Value::Int(i) => i.to_string(),
            Value::Float(f) => format_float(*f),
            // With its scale, as Postgres shows a numeric's display scale (1.50).
            Value::Numeric(d) => d.to_string(),
            Value::Text(s) => s.clone(),
            Value::Date(d) => format_date(*d),
            Value::Timestamp(t) => format_timestamp(*t),
            Value::TimestampTz(t) => match format_timestamp(*t).strip_suffix(" BC") {
                Some(ad) => format!("{ad}+00 BC"),
                None => format!("{}+00", format_timestamp(*t)),
            },
        })
    }
}

/// Epoch milliseconds as a timestamp's microseconds, when in range.
fn epoch_ms(ms: i64) -> Option<i64> {
    ms.checked_mul(1000).and_then(timestamp_in_range)
}

fn check_int(i: i64, ty: SqlType) -> Option<i64> {
    let ok = match ty {
        SqlType::SmallInt => i16::try_from(i).is_ok(),
        SqlType::Integer => i32::try_from(i).is_ok(),
        _ => true,
    };
    ok.then_some(i)
}

fn format_float(f: f64) -> String {
    pg_float_text(f, f.to_string(), format!("{f:e}"), 15)
}

/// A `real` as PostgreSQL prints it: the shortest digits that read back as
/// the same single-precision value (`0.1`, not `0.10000000149011612`).
pub fn format_real(f: f32) -> String {
    pg_float_text(f64::from(f), f.to_string(), format!("{f:e}"), 6)
}

/// PostgreSQL 12+'s float output: the shortest round-trip digits, written
/// like `%g` — exponent form (`1e+15`, `1.5e-05`) when the decimal exponent
/// is below -4 or at least `precision` (15 for double, 6 for real).
fn pg_float_text(f: f64, fixed: String, sci: String, precision: i32) -> String {
    if f.is_nan() {
        return "NaN".to_owned();
    }
    if f.is_infinite() {
        return if f > 0.0 { "Infinity" } else { "-Infinity" }.to_owned();
    }
    let Some((mantissa, exp)) = sci.split_once('e') else {
        return fixed;
    };
    let exp: i32 = exp.parse().unwrap_or(0);
    if f != 0.0 && (exp < -4 || exp >= precision) {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    } else {
        fixed
    }
}

/// The earliest timestamp PostgreSQL has (4713-11-24 BC, Julian day 0), in
/// microseconds since 1970.
pub const MIN_TIMESTAMP_MICROS: i64 = -210_866_803_200_000_000;
/// The earliest date PostgreSQL has, in days since 1970-01-01.
pub const MIN_DATE_DAYS: i32 = -2_440_588;

/// `micros` when it is a timestamp PostgreSQL and Eddy can both hold:
/// PostgreSQL's lower bound, and chrono's upper one (the year 262142, below
/// PostgreSQL's 294276). Outside it a value is out of range, never stored.
pub fn timestamp_in_range(micros: i64) -> Option<i64> {
    (micros >= MIN_TIMESTAMP_MICROS && DateTime::from_timestamp_micros(micros).is_some())
        .then_some(micros)
}

/// `days` when it is a date PostgreSQL and Eddy can both hold.
pub fn date_in_range(days: i32) -> Option<i32> {
    (days >= MIN_DATE_DAYS
        && epoch_date()
            .checked_add_signed(chrono::Duration::days(i64::from(days)))
            .is_some())
    .then_some(days)
}

fn epoch_date() -> NaiveDate {
    NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid date")
}

fn format_date(days: i32) -> String {
    match epoch_date().checked_add_signed(chrono::Duration::days(i64::from(days))) {
        Some(d) => {
            let (ymd, bc) = pg_ymd(d);
            if bc {
                format!("{ymd} BC")
            } else {
                ymd
            }
        }
        None => days.to_string(),
    }
}

/// A date as PostgreSQL prints it: four or more year digits without a sign,
/// and years before 1 AD counted back from 1 BC (chrono's year 0), with the
/// caller adding ` BC` after the time.
fn pg_ymd(d: NaiveDate) -> (String, bool) {
    use chrono::Datelike;
    let (year, bc) = match d.year() {
        y if y <= 0 => (1 - y, true),
        y => (y, false),
    };
    (format!("{year:04}-{:02}-{:02}", d.month(), d.day()), bc)
}

fn format_timestamp(micros: i64) -> String {
    let Some(ts) = DateTime::from_timestamp_micros(micros) else {
        return micros.to_string();
    };
    let naive = ts.naive_utc();
    let (ymd, bc) = pg_ymd(naive.date());
    let mut s = format!("{ymd} {}", naive.format("%H:%M:%S"));
    let frac = micros.rem_euclid(1_000_000);
    if frac != 0 {
        let digits = format!("{frac:06}");
        let _ = write!(s, ".{}", digits.trim_end_matches('0'));
    }
    if bc {
        s.push_str(" BC");
    }
    s
}

fn parse_text(s: &str, ty: SqlType) -> Result<Value, CastError> {
    let invalid = || CastError::InvalidInput {
        value: s.to_owned(),
        ty,
    };
    let t = s.trim();
    Ok(match ty {
        SqlType::Boolean => match t.to_ascii_lowercase().as_str() {
            "t" | "true" | "yes" | "y" | "on" | "1" => Value::Bool(true),
            "f" | "false" | "no" | "n" | "off" | "0" => Value::Bool(false),
            _ => return Err(invalid()),
        },
        SqlType::SmallInt | SqlType::Integer | SqlType::BigInt => {
            let i: i64 = t.parse().map_err(|_| invalid())?;
            Value::Int(i).cast(ty)?
        }
        SqlType::Real | SqlType::Double => {
            let f = match t.to_ascii_lowercase().as_str() {
                "nan" => f64::NAN,
                "infinity" | "inf" => f64::INFINITY,
                "-infinity" | "-inf" => f64::NEG_INFINITY,
                _ => t.parse().map_err(|_| invalid())?,
            };
            Value::Float(f).cast(ty)?
        }
        SqlType::Numeric => Value::Numeric(
            Decimal::from_str(t)
                .or_else(|_| Decimal::from_scientific(t))
                .map_err(|_| invalid())?,
        ),
        SqlType::Date => Value::Date(parse_date(t).ok_or_else(invalid)?),
        SqlType::Timestamp | SqlType::TimestampTz => {
            let micros = parse_timestamp(t).ok_or_else(invalid)?;
            let micros = timestamp_in_range(micros).ok_or_else(|| CastError::OutOfRange {
                value: s.to_owned(),
                ty,
            })?;
            if ty == SqlType::Timestamp {
                Value::Timestamp(micros)
            } else {
                Value::TimestampTz(micros)
            }
        }
        SqlType::Text | SqlType::Varchar(_) => Value::Text(s.to_owned()).cast(ty)?,
        // The elements are read where the array is used (see the server's
        // `convert`); here only its shape.
        SqlType::Array(_) if t.starts_with('{') && t.ends_with('}') => Value::Text(t.to_owned()),
        SqlType::Array(_) => return Err(invalid()),
    })
}

fn parse_date(s: &str) -> Option<i32> {
    let d = NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()?;
    i32::try_from(d.signed_duration_since(epoch_date()).num_days())
        .ok()
        .and_then(date_in_range)
}

/// ISO 8601 / RFC 3339: `T` or a space, optional fraction, optional zone
/// (`Z`, `+01:00`, `+0100`, `+01`). A value without a zone is taken as UTC.
pub fn parse_timestamp(s: &str) -> Option<i64> {
    let normalized = s.trim().replacen(' ', "T", 1);
    if let Ok(dt) = DateTime::parse_from_rfc3339(&normalized) {
        return Some(dt.timestamp_micros());
    }
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%.f%#z",
        "%Y-%m-%dT%H:%M:%S%#z",
        "%Y-%m-%dT%H:%M%#z",
    ] {
        if let Ok(dt) = DateTime::parse_from_str(&normalized, fmt) {
            return Some(dt.timestamp_micros());
        }
    }
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(dt) = NaiveDateTime::parse_from_str(&normalized, fmt) {
            return Some(dt.and_utc().timestamp_micros());
        }
    }
    let date = NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").ok()?;
    Some(date.and_time(NaiveTime::MIN).and_utc().timestamp_micros())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_casts_are_range_checked() {
        assert_eq!(
            Value::Int(40_000).cast(SqlType::Integer),
            Ok(Value::Int(40_000))
        );
        assert!(matches!(
            Value::Int(40_000).cast(SqlType::SmallInt),
            Err(CastError::OutOfRange { .. })
        ));
        assert_eq!(Value::Float(2.5).cast(SqlType::BigInt), Ok(Value::Int(2)));
        assert!(Value::Float(1e300).cast(SqlType::BigInt).is_err());
        assert!(Value::Text("12x".into()).cast(SqlType::Integer).is_err());
        assert_eq!(
            Value::Text(" 12 ".into()).cast(SqlType::Integer),
            Ok(Value::Int(12))
        );
    }

    #[test]
    fn timestamps_parse_in_every_documented_form() {
        let base = parse_timestamp("2026-11-05T07:00:00").unwrap();
        assert_eq!(parse_timestamp("2026-11-05 07:00:00"), Some(base));
        assert_eq!(parse_timestamp("2026-11-05T07:00:00Z"), Some(base));
        assert_eq!(parse_timestamp("2026-11-05T08:00:00+01:00"), Some(base));
        assert_eq!(parse_timestamp("2026-11-05T08:00:00+0100"), Some(base));
        assert_eq!(
            parse_timestamp("2026-11-05T07:00:00.250"),
            Some(base + 250_000)
        );
        assert_eq!(
            Value::Int(1_000).cast(SqlType::Timestamp),
            Ok(Value::Timestamp(1_000_000))
        );
        assert!(parse_timestamp("yesterday").is_none());
    }

    #[test]
    fn text_format_matches_postgres() {
        assert_eq!(
            Value::Timestamp(parse_timestamp("2026-11-05T07:00:00.5").unwrap())
                .to_pg_text()
                .unwrap(),
            "2026-11-05 07:00:00.5"
        );
        assert_eq!(
            Value::Date(parse_date("2026-11-05").unwrap())
                .to_pg_text()
                .unwrap(),
            "2026-11-05"
        );
        assert_eq!(Value::Float(1.5).to_pg_text().unwrap(), "1.5");
        // Each as PostgreSQL 15 prints float8 / float4.
        assert_eq!(Value::Float(1e15).to_pg_text().unwrap(), "1e+15");
        assert_eq!(
            Value::Float(123456789012345.0).to_pg_text().unwrap(),
            "123456789012345"
        );
        assert_eq!(Value::Float(0.0001).to_pg_text().unwrap(), "0.0001");
        assert_eq!(Value::Float(0.00001234).to_pg_text().unwrap(), "1.234e-05");
        assert_eq!(Value::Float(-2.5e100).to_pg_text().unwrap(), "-2.5e+100");
        assert_eq!(format_real(0.1), "0.1");
        assert_eq!(format_real(1234567.0), "1.234567e+06");
        assert_eq!(format_real(123456.0), "123456");
        assert_eq!(
            Value::Float(f64::INFINITY).to_pg_text().unwrap(),
            "Infinity"
        );
        assert_eq!(Value::Bool(true).to_pg_text().unwrap(), "t");
        assert_eq!(Value::Null.to_pg_text(), None);
    }

    #[test]
    fn comparisons_mix_numeric_kinds_and_sort_nulls_last() {
        assert_eq!(
            Value::Int(2).sql_cmp(&Value::Float(2.5)),
            Some(Ordering::Less)
        );
        assert_eq!(Value::Int(2).sql_cmp(&Value::Null), None);
        assert_eq!(Value::Null.total_cmp(&Value::Int(1)), Ordering::Greater);
        assert_eq!(
            Value::Numeric(Decimal::new(25, 1)).sql_cmp(&Value::Int(3)),
            Some(Ordering::Less)
        );
    }

    #[test]
    fn timestamps_outside_postgres_range_are_out_of_range() {
        // 9e15 epoch milliseconds is past any year a client can read.
        assert!(matches!(
            Value::Int(9_000_000_000_000_000).cast(SqlType::Timestamp),
            Err(CastError::OutOfRange { .. })
        ));
        assert!(matches!(
            Value::Int(-9_000_000_000_000_000).cast(SqlType::TimestampTz),
            Err(CastError::OutOfRange { .. })
        ));
        assert!(Value::Int(253_402_300_799_000)
            .cast(SqlType::Timestamp)
            .is_ok());
        assert_eq!(
            timestamp_in_range(MIN_TIMESTAMP_MICROS),
            Some(MIN_TIMESTAMP_MICROS)
        );
        assert_eq!(timestamp_in_range(MIN_TIMESTAMP_MICROS - 1), None);
        assert_eq!(date_in_range(MIN_DATE_DAYS - 1), None);
    }

    #[test]
    fn far_years_print_as_postgres_does() {
        assert_eq!(
            Value::Timestamp(MIN_TIMESTAMP_MICROS).to_pg_text().unwrap(),
            "4714-11-24 00:00:00 BC"
        );
        assert_eq!(
            Value::TimestampTz(MIN_TIMESTAMP_MICROS)
                .to_pg_text()
                .unwrap(),
            "4714-11-24 00:00:00+00 BC"
        );
        assert_eq!(
            Value::Date(MIN_DATE_DAYS).to_pg_text().unwrap(),
            "4714-11-24 BC"
        );
        let y20000 = NaiveDate::from_ymd_opt(20_000, 1, 1)
            .unwrap()
            .and_time(NaiveTime::MIN)
            .and_utc()
            .timestamp_micros();
        assert_eq!(
            Value::Timestamp(y20000).to_pg_text().unwrap(),
            "20000-01-01 00:00:00"
        );
        assert_eq!(Value::Date(0).to_pg_text().unwrap(), "1970-01-01");
        assert_eq!(Value::Date(-719_528).to_pg_text().unwrap(), "0001-01-01 BC");
    }

    #[test]
    fn varchar_length_is_enforced() {
        assert!(matches!(
            Value::Text("abcd".into()).cast(SqlType::Varchar(Some(3))),
            Err(CastError::TooLong { .. })
        ));
        assert_eq!(
            Value::Numeric(Decimal::new(25, 1)).cast(SqlType::Integer),
            Ok(Value::Int(3))
        );
        assert_eq!(
            Value::Numeric(Decimal::new(-25, 1)).cast(SqlType::Integer),
            Ok(Value::Int(-3))
        );
        assert_eq!(
            Value::Text("abc".into()).cast(SqlType::Varchar(Some(3))),
            Ok(Value::Text("abc".into()))
        );
    }
}
