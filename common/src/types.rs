//! SQL types as Eddy declares and stores them.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A column type. Integers are held as `i64` and floats as `f64` in
/// [`crate::Value`]; the declared width is enforced by casts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SqlType {
    Boolean,
    SmallInt,
    Integer,
    BigInt,
    Real,
    Double,
    Numeric,
    Text,
    /// `VARCHAR(n)`; `None` is unbounded.
    Varchar(Option<u32>),
    Date,
    Timestamp,
    TimestampTz,
    /// A one-dimensional array of the element type (one of the others),
    /// held as PostgreSQL's array literal text (`{a,b}`). Results and
    /// parameters only: no source or view column has it.
    #[serde(skip)]
    Array(&'static SqlType),
}

impl SqlType {
    /// The array type of `element` (`text` for `text[]`), if Eddy has it.
    pub fn array_of(element: SqlType) -> Option<SqlType> {
        use SqlType::*;
        let element: &'static SqlType = match element {
            Boolean => &Boolean,
            SmallInt => &SmallInt,
            Integer => &Integer,
            BigInt => &BigInt,
            Real => &Real,
            Double => &Double,
            Numeric => &Numeric,
            Text => &Text,
            Varchar(_) => &Varchar(None),
            Date => &Date,
            Timestamp => &Timestamp,
            TimestampTz => &TimestampTz,
            Array(_) => return None,
        };
        Some(Array(element))
    }

    /// The type whose array type has the Postgres OID `oid`.
    pub fn array_by_oid(oid: u32) -> Option<SqlType> {
        use SqlType::*;
        let element = match oid {
            1000 => Boolean,
            1005 => SmallInt,
            1007 => Integer,
            1016 => BigInt,
            1021 => Real,
            1022 => Double,
            1231 => Numeric,
            1009 | 1003 | 1014 => Text,
            1015 => Varchar(None),
            1182 => Date,
            1115 => Timestamp,
            1185 => TimestampTz,
            _ => return None,
        };
        SqlType::array_of(element)
    }

    pub fn is_integer(self) -> bool {
        matches!(self, SqlType::SmallInt | SqlType::Integer | SqlType::BigInt)
    }

    pub fn is_float(self) -> bool {
        matches!(self, SqlType::Real | SqlType::Double)
    }

    pub fn is_numeric(self) -> bool {
        self.is_integer() || self.is_float() || self == SqlType::Numeric
    }

    pub fn is_text(self) -> bool {
        matches!(self, SqlType::Text | SqlType::Varchar(_))
    }

    /// The Postgres type OID, as clients see it in RowDescription.
    pub fn pg_oid(self) -> u32 {
        match self {
            SqlType::Boolean => 16,
            SqlType::SmallInt => 21,
            SqlType::Integer => 23,
            SqlType::BigInt => 20,
            SqlType::Real => 700,
            SqlType::Double => 701,
            SqlType::Numeric => 1700,
            SqlType::Text => 25,
            SqlType::Varchar(_) => 1043,
            SqlType::Date => 1082,
            SqlType::Timestamp => 1114,
            SqlType::TimestampTz => 1184,
            SqlType::Array(element) => match element.pg_oid() {
                16 => 1000,
                21 => 1005,
                23 => 1007,
                20 => 1016,
                700 => 1021,
                701 => 1022,
                1700 => 1231,
                1043 => 1015,
                1082 => 1182,
                1114 => 1115,
                1184 => 1185,
                _ => 1009,
            },
        }
    }

    /// The common type two numeric operands are promoted to.
    pub fn numeric_supertype(a: SqlType, b: SqlType) -> Option<SqlType> {
        use SqlType::*;
        if !a.is_numeric() || !b.is_numeric() {
            return None;
        }
        Some(if a.is_float() || b.is_float() {
            Double
        } else if a == Numeric || b == Numeric {
            Numeric
        } else if a == BigInt || b == BigInt {
            BigInt
        } else if a == Integer || b == Integer {
            Integer
        } else {
            SmallInt
        })
    }
}

impl fmt::Display for SqlType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SqlType::Boolean => f.write_str("boolean"),
            SqlType::SmallInt => f.write_str("smallint"),
            SqlType::Integer => f.write_str("integer"),
            SqlType::BigInt => f.write_str("bigint"),
            SqlType::Real => f.write_str("real"),
            SqlType::Double => f.write_str("double precision"),
            SqlType::Numeric => f.write_str("numeric"),
            SqlType::Text => f.write_str("text"),
            SqlType::Varchar(None) => f.write_str("character varying"),
            SqlType::Varchar(Some(n)) => write!(f, "character varying({n})"),
            SqlType::Date => f.write_str("date"),
            SqlType::Timestamp => f.write_str("timestamp without time zone"),
            SqlType::TimestampTz => f.write_str("timestamp with time zone"),
            SqlType::Array(element) => write!(f, "{element}[]"),
        }
    }
}

/// A named, typed column of a source, a view or a result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Column {
    pub name: String,
    pub ty: SqlType,
    /// `NUMERIC(p,s)`'s precision and scale, for a numeric source column.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub typmod: Option<crate::numeric::Typmod>,
    /// For a result column that is a view's column as it is: where it
    /// comes from, as RowDescription names it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<Origin>,
}

/// A relation's column by PostgreSQL's numbers: the relation's oid and the
/// column's number (from 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Origin {
    pub table: u32,
    pub column: i16,
}

impl Column {
    pub fn new(name: impl Into<String>, ty: SqlType) -> Column {
        Column {
            name: name.into(),
            ty,
            typmod: None,
            origin: None,
        }
    }
}
