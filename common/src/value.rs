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
                        return Err(CastError::OutOfRange { value: text, ty })
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
                let i = d.round().to_i64().ok_or_else(out_of_range)?;
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
                Value::Timestamp(ms.checked_mul(1000).ok_or_else(out_of_range)?)
            }
            (Value::Int(ms), T::TimestampTz) => {
                Value::TimestampTz(ms.checked_mul(1000).ok_or_else(out_of_range)?)
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
            Value::Numeric(d) => d.normalize().to_string(),
            Value::Text(s) => s.clone(),
            Value::Date(d) => format_date(*d),
            Value::Timestamp(t) => format_timestamp(*t),
            Value::TimestampTz(t) => format!("{}+00", format_timestamp(*t)),
        })
    }
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
    if f.is_nan() {
        "NaN".to_owned()
    } else if f.is_infinite() {
        if f > 0.0 { "Infinity" } else { "-Infinity" }.to_owned()
    } else {
        // Rust's shortest round-trip form, as Postgres 12+ prints (extra_float_digits = 1).
        let s = f.to_string();
        if s.contains('e') {
            s
        } else if f.abs() >= 1e15 && f.fract() == 0.0 {
            format!("{f:e}").replace("e", "e+")
        } else {
            s
        }
    }
}

fn epoch_date() -> NaiveDate {
    NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid date")
}

fn format_date(days: i32) -> String {
    epoch_date()
        .checked_add_signed(chrono::Duration::days(i64::from(days)))
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_else(|| days.to_string())
}

fn format_timestamp(micros: i64) -> String {
    let Some(ts) = DateTime::from_timestamp_micros(micros) else {
        return micros.to_string();
    };
    let naive = ts.naive_utc();
    let mut s = naive.format("%Y-%m-%d %H:%M:%S").to_string();
    let frac = micros.rem_euclid(1_000_000);
    if frac != 0 {
        let digits = format!("{frac:06}");
        let _ = write!(s, ".{}", digits.trim_end_matches('0'));
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
        SqlType::Timestamp => Value::Timestamp(parse_timestamp(t).ok_or_else(invalid)?),
        SqlType::TimestampTz => Value::TimestampTz(parse_timestamp(t).ok_or_else(invalid)?),
        SqlType::Text | SqlType::Varchar(_) => Value::Text(s.to_owned()).cast(ty)?,
    })
}

fn parse_date(s: &str) -> Option<i32> {
    let d = NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()?;
    i32::try_from(d.signed_duration_since(epoch_date()).num_days()).ok()
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
    fn varchar_length_is_enforced() {
        assert!(Value::Text("abcd".into())
            .cast(SqlType::Varchar(Some(3)))
            .is_err());
        assert_eq!(
            Value::Text("abc".into()).cast(SqlType::Varchar(Some(3))),
            Ok(Value::Text("abc".into()))
        );
    }
}
