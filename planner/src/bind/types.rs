//! sqlparser data types → Eddy's [`SqlType`].

use crate::error::PlanError;
use common::numeric::Typmod;
use common::SqlType;
use sqlparser::ast::{CharacterLength, DataType, ExactNumberInfo, TimezoneInfo};

/// The precision and scale of `NUMERIC(p[, s])`; `None` for a plain numeric
/// or another type. Eddy's numerics hold 28 digits, so `p` is 1..=28.
pub(crate) fn numeric_typmod(dt: &DataType) -> Result<Option<Typmod>, PlanError> {
    use DataType as D;
    let (D::Numeric(info) | D::Decimal(info) | D::Dec(info)) = dt else {
        return Ok(None);
    };
    let (precision, scale) = match info {
        ExactNumberInfo::None => return Ok(None),
        ExactNumberInfo::Precision(p) => (*p, 0),
        ExactNumberInfo::PrecisionAndScale(p, s) => (*p, *s),
    };
    let bad = |message: String| PlanError::InvalidTypmod { message };
    if !(1..=28).contains(&precision) {
        return Err(bad(format!(
            "NUMERIC precision {precision} must be between 1 and 28"
        )));
    }
    if scale < 0 || scale as u64 > precision {
        return Err(bad(format!(
            "NUMERIC scale {scale} must be between 0 and precision {precision}"
        )));
    }
    Ok(Some(Typmod {
        precision: precision as u32,
        scale: scale as u32,
    }))
}

/// Maps a declared or cast-to type; anything Eddy cannot store is 0A000.
pub(crate) fn sql_type(dt: &DataType) -> Result<SqlType, PlanError> {
    use DataType as D;
    Ok(match dt {
        D::Bool | D::Boolean => SqlType::Boolean,
        D::SmallInt(_) | D::Int2(_) => SqlType::SmallInt,
        D::Int(_) | D::Integer(_) | D::Int4(_) => SqlType::Integer,
        D::BigInt(_) | D::Int8(_) => SqlType::BigInt,
        D::Real | D::Float4 => SqlType::Real,
        D::DoublePrecision | D::Float8 | D::Double(ExactNumberInfo::None) => SqlType::Double,
        D::Float(ExactNumberInfo::Precision(p)) if *p <= 24 => SqlType::Real,
        D::Float(_) => SqlType::Double,
        D::Numeric(_) | D::Decimal(_) | D::Dec(_) => SqlType::Numeric,
        D::Text | D::String(None) => SqlType::Text,
        D::Varchar(len) | D::CharacterVarying(len) | D::CharVarying(len) => {
            SqlType::Varchar(match len {
                Some(CharacterLength::IntegerLength { length, .. }) => {
                    Some(u32::try_from(*length).map_err(|_| unsupported(dt))?)
                }
                _ => None,
            })
        }
        D::Date => SqlType::Date,
        D::Timestamp(_, TimezoneInfo::None | TimezoneInfo::WithoutTimeZone) => SqlType::Timestamp,
        D::Timestamp(_, TimezoneInfo::WithTimeZone | TimezoneInfo::Tz) => SqlType::TimestampTz,
        D::Custom(name, args) if args.is_empty() => {
            match name.to_string().to_lowercase().as_str() {
                "int2" => SqlType::SmallInt,
                "int4" => SqlType::Integer,
                "int8" => SqlType::BigInt,
                "float4" => SqlType::Real,
                "float8" => SqlType::Double,
                "timestamptz" => SqlType::TimestampTz,
                "bool" => SqlType::Boolean,
                _ => return Err(unsupported(dt)),
            }
        }
        _ => return Err(unsupported(dt)),
    })
}

fn unsupported(dt: &DataType) -> PlanError {
    PlanError::UnsupportedType {
        name: dt.to_string(),
    }
}

/// The name Postgres gives a cast's output column (`SELECT '1'::int` → `int4`).
pub(crate) fn pg_type_name(ty: SqlType) -> &'static str {
    match ty {
        SqlType::Boolean => "bool",
        SqlType::SmallInt => "int2",
        SqlType::Integer => "int4",
        SqlType::BigInt => "int8",
        SqlType::Real => "float4",
        SqlType::Double => "float8",
        SqlType::Numeric => "numeric",
        SqlType::Text => "text",
        SqlType::Varchar(_) => "varchar",
        SqlType::Date => "date",
        SqlType::Timestamp => "timestamp",
        SqlType::TimestampTz => "timestamptz",
        // `'{a}'::text[]` is named `text`, as its element type.
        SqlType::Array(element) => pg_type_name(*element),
    }
}

/// Whether an explicit cast from `from` to `to` exists.
pub(crate) fn castable(from: SqlType, to: SqlType) -> bool {
    use SqlType::*;
    let temporal = |t: SqlType| matches!(t, Date | Timestamp | TimestampTz);
    from == to
        || from.is_text()
        || to.is_text()
        || (from.is_numeric() && to.is_numeric())
        || (temporal(from) && temporal(to))
        || (from == Boolean && matches!(to, Integer | BigInt | SmallInt))
        || (from.is_integer() && to == Boolean)
}
