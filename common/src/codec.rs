//! The binary encoding of values and rows.
//!
//! Used for view state in RocksDB, for changelog records and for state keys.
//! Invariant: [`encode_key`] is deterministic — equal values of one declared
//! type encode to equal bytes (`1.0` and `1.00` are one key) — because keys
//! are looked up by bytes; callers cast values to the column's type first.
//! [`encode_row`] keeps what a value shows, a numeric's display scale included.

use crate::value::{Row, Value};
use rust_decimal::Decimal;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("corrupt encoded value at byte {at}: {reason}")]
pub struct DecodeError {
    pub at: usize,
    pub reason: &'static str,
}

const NULL: u8 = 0;
const FALSE: u8 = 1;
const TRUE: u8 = 2;
const INT: u8 = 3;
const FLOAT: u8 = 4;
const NUMERIC: u8 = 5;
const TEXT: u8 = 6;
const DATE: u8 = 7;
const TIMESTAMP: u8 = 8;
const TIMESTAMPTZ: u8 = 9;

pub fn encode_value(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Null => out.push(NULL),
        Value::Bool(false) => out.push(FALSE),
        Value::Bool(true) => out.push(TRUE),
        Value::Int(i) => {
            out.push(INT);
            out.extend_from_slice(&i.to_be_bytes());
        }
        Value::Float(f) => {
            out.push(FLOAT);
            // -0.0 and 0.0 are one SQL value, so one key.
            let f = if *f == 0.0 { 0.0 } else { *f };
            out.extend_from_slice(&f.to_bits().to_be_bytes());
        }
        Value::Numeric(d) => {
            out.push(NUMERIC);
            out.extend_from_slice(&d.serialize());
        }
        Value::Text(s) => {
            out.push(TEXT);
            out.extend_from_slice(&(s.len() as u32).to_be_bytes());
            out.extend_from_slice(s.as_bytes());
        }
        Value::Date(d) => {
            out.push(DATE);
            out.extend_from_slice(&d.to_be_bytes());
        }
        Value::Timestamp(t) => {
            out.push(TIMESTAMP);
            out.extend_from_slice(&t.to_be_bytes());
        }
        Value::TimestampTz(t) => {
            out.push(TIMESTAMPTZ);
            out.extend_from_slice(&t.to_be_bytes());
        }
    }
}

/// A key: like [`encode_row`], with every numeric at its smallest scale, so
/// values equal in SQL are one key.
pub fn encode_key(key: &[Value]) -> Vec<u8> {
    let normal = |v: &Value| match v {
        Value::Numeric(d) => Value::Numeric(d.normalize()),
        other => other.clone(),
    };
    if key.iter().any(|v| matches!(v, Value::Numeric(_))) {
        encode_row(&key.iter().map(normal).collect::<Vec<_>>())
    } else {
        encode_row(key)
    }
}

pub fn encode_row(row: &[Value]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + row.len() * 9);
    encode_row_into(row, &mut out);
    out
}

pub fn encode_row_into(row: &[Value], out: &mut Vec<u8>) {
    out.extend_from_slice(&(row.len() as u32).to_be_bytes());
    for v in row {
        encode_value(v, out);
    }
}

/// A cursor over encoded bytes.
pub struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader { bytes, at: 0 }
    }

    pub fn is_empty(&self) -> bool {
        self.at >= self.bytes.len()
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self.at.checked_add(n).filter(|e| *e <= self.bytes.len());
        let end = end.ok_or(DecodeError {
            at: self.at,
            reason: "truncated",
        })?;
        let s = &self.bytes[self.at..end];
        self.at = end;
        Ok(s)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    /// The next `n` bytes as they are.
    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        self.take(n)
    }

    pub fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    pub fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    pub fn i64(&mut self) -> Result<i64, DecodeError> {
        Ok(i64::from_be_bytes(self.array()?))
    }

    pub fn value(&mut self) -> Result<Value, DecodeError> {
        let at = self.at;
        let tag = self.take(1)?[0];
        Ok(match tag {
            NULL => Value::Null,
            FALSE => Value::Bool(false),
            TRUE => Value::Bool(true),
            INT => Value::Int(i64::from_be_bytes(self.array()?)),
            FLOAT => Value::Float(f64::from_bits(u64::from_be_bytes(self.array()?))),
            NUMERIC => Value::Numeric(Decimal::deserialize(self.array()?)),
            TEXT => {
                let len = self.u32()? as usize;
                let s = std::str::from_utf8(self.take(len)?).map_err(|_| DecodeError {
                    at,
                    reason: "text is not UTF-8",
                })?;
                Value::Text(s.to_owned())
            }
            DATE => Value::Date(i32::from_be_bytes(self.array()?)),
            TIMESTAMP => Value::Timestamp(i64::from_be_bytes(self.array()?)),
            TIMESTAMPTZ => Value::TimestampTz(i64::from_be_bytes(self.array()?)),
            _ => {
                return Err(DecodeError {
                    at,
                    reason: "unknown value tag",
                })
            }
        })
    }

    pub fn row(&mut self) -> Result<Row, DecodeError> {
        let n = self.u32()? as usize;
        // A corrupt length must not allocate gigabytes: every value is at least a byte.
        if n > self.bytes.len() - self.at {
            return Err(DecodeError {
                at: self.at,
                reason: "row length exceeds input",
            });
        }
        (0..n).map(|_| self.value()).collect()
    }
}

pub fn decode_row(bytes: &[u8]) -> Result<Row, DecodeError> {
    Reader::new(bytes).row()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_round_trip() {
        let row = vec![
            Value::Null,
            Value::Bool(true),
            Value::Int(-7),
            Value::Float(2.5),
            Value::Numeric(Decimal::new(12345, 2)),
            Value::Text("héllo".into()),
            Value::Date(-3),
            Value::Timestamp(1_700_000_000_000_000),
            Value::TimestampTz(5),
        ];
        assert_eq!(decode_row(&encode_row(&row)).unwrap(), row);
    }

    #[test]
    fn equal_values_encode_equally() {
        assert_eq!(
            encode_row(&[Value::Float(0.0)]),
            encode_row(&[Value::Float(-0.0)])
        );
        assert_eq!(
            encode_key(&[Value::Numeric(Decimal::new(10, 1))]),
            encode_key(&[Value::Numeric(Decimal::new(1, 0))])
        );
        // A row keeps the display scale.
        let row = decode_row(&encode_row(&[Value::Numeric(Decimal::new(150, 2))])).unwrap();
        assert_eq!(row[0].to_pg_text().unwrap(), "1.50");
    }

    #[test]
    fn corrupt_input_is_an_error_not_a_panic() {
        assert!(decode_row(&[0, 0, 0, 5, INT, 1]).is_err());
        assert!(decode_row(&[0xff, 0xff, 0xff, 0xff]).is_err());
        assert!(decode_row(&[0, 0, 0, 1, 42]).is_err());
    }
}
