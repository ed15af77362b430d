//! Decode: a Kafka record's bytes → a typed row of the source's columns.
//!
//! A record that cannot become a row (not JSON, not an object, a field that
//! does not fit its column's type) is a [`BadRecord`]: the caller skips it and
//! records why. Decoding never panics on any input.

use common::{SqlType, Value};
use planner::plan::SourceDef;
use serde::Deserializer as _;

/// Why a record was skipped. The text is shown in `eddy_catalog.source_errors`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BadRecord {
    #[error("value is not valid JSON: {0}")]
    NotJson(String),
    #[error("value is JSON but not an object (found {0})")]
    NotAnObject(&'static str),
    #[error("column \"{column}\": {reason}")]
    Column { column: String, reason: String },
    #[error("upsert record has no key: set the Kafka record key or the \"{0}\" field")]
    MissingKey(String),
    #[error("primary key \"{column}\" from the record key: {reason}")]
    BadKey { column: String, reason: String },
}

/// Decodes a JSON object into a row of `source`'s columns.
///
/// Streams over the object: only declared columns are materialized, other
/// fields are skipped without building them.
pub fn decode_json(source: &SourceDef, bytes: &[u8]) -> Result<Vec<Value>, BadRecord> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let row = de
        .deserialize_map(RowVisitor { source })
        .map_err(|e| classify(&e))??;
    de.end().map_err(|e| BadRecord::NotJson(e.to_string()))?;
    Ok(row)
}

/// A serde error from the top level: a non-object is named as such.
fn classify(e: &serde_json::Error) -> BadRecord {
    let text = e.to_string();
    match text.strip_prefix("invalid type: ") {
        Some(rest) if e.is_data() => {
            let found = rest.split(',').next().unwrap_or(rest);
            BadRecord::NotAnObject(match found.split_whitespace().next() {
                Some("null") => "null",
                Some("boolean") => "a boolean",
                Some("integer" | "floating") => "a number",
                Some("string") => "a string",
                Some("sequence") => "an array",
                _ => "something else",
            })
        }
        _ => BadRecord::NotJson(text),
    }
}

struct RowVisitor<'a> {
    source: &'a SourceDef,
}

impl<'de> serde::de::Visitor<'de> for RowVisitor<'_> {
    type Value = Result<Vec<Value>, BadRecord>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let columns = &self.source.columns;
        let mut row = vec![Value::Null; columns.len()];
        let mut seen = vec![false; columns.len()];
        let mut first_error = None;
        while let Some(FieldName(name)) = map.next_key::<FieldName<'de>>()? {
            let exact = columns.iter().position(|c| c.name == name);
            let index = exact.or_else(|| {
                columns
                    .iter()
                    .position(|c| c.name.eq_ignore_ascii_case(&name))
            });
            // An exact match wins over a case-insensitive one, whatever the order.
            match index.filter(|&i| exact.is_some() || !seen[i]) {
                None => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
                Some(i) => {
                    // The field's own text: numbers are parsed from it
                    // exactly, never through an intermediate float.
                    let raw: &serde_json::value::RawValue = map.next_value()?;
                    seen[i] = true;
                    let typed = raw_to_value(raw.get(), columns[i].ty).and_then(|v| {
                        match (v, columns[i].typmod) {
                            (Value::Numeric(d), Some(t)) => {
                                t.apply(d).map(Value::Numeric).map_err(|e| e.to_string())
                            }
                            (v, _) => Ok(v),
                        }
                    });
                    match typed {
                        Ok(value) => row[i] = value,
                        Err(reason) => {
                            first_error.get_or_insert(BadRecord::Column {
                                column: columns[i].name.clone(),
                                reason,
                            });
                        }
                    }
                }
            }
        }
        Ok(match first_error {
            Some(e) => Err(e),
            None => Ok(row),
        })
    }
}

/// An object key, borrowed from the input when it has no escapes.
struct FieldName<'de>(std::borrow::Cow<'de, str>);

impl<'de> serde::Deserialize<'de> for FieldName<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = FieldName<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a field name")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(FieldName(std::borrow::Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(FieldName(std::borrow::Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_str(V)
    }
}

/// The primary key of an upsert record, from its Kafka key (taken as text and
/// cast to the key column's type).
pub fn decode_key(source: &SourceDef, key: Option<&[u8]>) -> Result<Value, BadRecord> {
    let pk = source
        .primary_key
        .expect("decode_key is only called for upsert sources");
    let col = &source.columns[pk];
    let key = key.ok_or_else(|| BadRecord::MissingKey(col.name.clone()))?;
    let text = std::str::from_utf8(key).map_err(|_| BadRecord::BadKey {
        column: col.name.clone(),
        reason: "record key is not UTF-8".into(),
    })?;
    // A JSON-encoded string key ("\"alice\"") is common; accept it as its content.
    let text = match serde_json::from_str::<serde_json::Value>(text) {
        Ok(serde_json::Value::String(s)) => s,
        _ => text.to_owned(),
    };
    Value::Text(text)
        .cast(col.ty)
        .map_err(|e| BadRecord::BadKey {
            column: col.name.clone(),
            reason: e.to_string(),
        })
}

fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// One field's JSON text as a value of type `ty`.
fn raw_to_value(raw: &str, ty: SqlType) -> Result<Value, String> {
    if raw.starts_with(|c: char| c == '-' || c.is_ascii_digit()) {
        return number_to_value(raw, ty);
    }
    let v: serde_json::Value = serde_json::from_str(raw).map_err(|e| e.to_string())?;
    json_to_value(&v, ty)
}

/// A JSON number, from its text: integers and NUMERIC exactly (out of range
/// is an error, never a wrap or a rounding), floats correctly rounded.
fn number_to_value(text: &str, ty: SqlType) -> Result<Value, String> {
    let out_of_range = || format!("{text} is out of range for type {ty}");
    let whole = !text.contains(['.', 'e', 'E']);
    let value = match ty {
        t if t.is_text() => Value::Text(text.to_owned()),
        SqlType::Double | SqlType::Real => {
            let f: f64 = text.parse().map_err(|_| out_of_range())?;
            if f.is_infinite() {
                return Err(out_of_range());
            }
            Value::Float(f)
        }
        SqlType::Numeric => Value::Numeric(exact_decimal(text).ok_or_else(out_of_range)?),
        t if t.is_integer() || is_time(t) => {
            let i = if whole {
                text.parse::<i64>().map_err(|_| out_of_range())?
            } else {
                // `3.0` and `1e3` are whole numbers; `2.5` is not.
                let d = exact_decimal(text).ok_or_else(out_of_range)?;
                if !d.fract().is_zero() {
                    return Err(format!("{text} is not a whole number, as type {ty} needs"));
                }
                rust_decimal::prelude::ToPrimitive::to_i64(&d).ok_or_else(out_of_range)?
            };
            Value::Int(i)
        }
        _ => return Err(format!("a number cannot be read as type {ty}")),
    };
    value.cast(ty).map_err(|e| e.to_string())
}

/// A decimal from JSON number text, only when it is held exactly (NUMERIC
/// here has 28 significant digits; more would silently round).
fn exact_decimal(text: &str) -> Option<rust_decimal::Decimal> {
    if !text.contains(['e', 'E']) {
        return rust_decimal::Decimal::from_str_exact(text).ok();
    }
    // from_scientific rounds quietly: keep its answer only when every
    // significant digit of the mantissa survived.
    let d = rust_decimal::Decimal::from_scientific(text).ok()?;
    let significant = |s: &str| -> String {
        let digits: String = s.chars().filter(char::is_ascii_digit).collect();
        digits.trim_matches('0').to_owned()
    };
    let mantissa = text.split(['e', 'E']).next().unwrap_or_default();
    (significant(mantissa) == significant(&d.normalize().to_string())).then_some(d)
}

fn json_to_value(v: &serde_json::Value, ty: SqlType) -> Result<Value, String> {
    use serde_json::Value as J;
    let value = match v {
        J::Null => return Ok(Value::Null),
        J::String(s) => Value::Text(s.clone()),
        J::Bool(b) if ty == SqlType::Boolean || ty.is_text() => Value::Bool(*b),
        J::Number(n) => return number_to_value(&n.to_string(), ty),
        J::Array(_) | J::Object(_) if ty.is_text() => Value::Text(v.to_string()),
        other => return Err(format!("{} cannot be read as type {ty}", json_kind(other))),
    };
    value.cast(ty).map_err(|e| e.to_string())
}

fn is_time(ty: SqlType) -> bool {
    matches!(ty, SqlType::Timestamp | SqlType::TimestampTz)
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::Column;
    use planner::plan::{Format, StartFrom};

    fn source() -> SourceDef {
        SourceDef {
            name: "orders".into(),
            columns: vec![
                Column::new("id", SqlType::BigInt),
                Column::new("qty", SqlType::SmallInt),
                Column::new("amount", SqlType::Double),
                Column::new("name", SqlType::Text),
                Column::new("ts", SqlType::Timestamp),
                Column::new("ok", SqlType::Boolean),
                Column::new("day", SqlType::Date),
            ],
            primary_key: Some(0),
            topic: "orders".into(),
            format: Format::Json,
            start: StartFrom::Earliest,
            owner: None,
        }
    }

    #[test]
    fn fields_fill_columns_and_missing_is_null() {
        let row = decode_json(
            &source(),
            br#"{"id": 7, "qty": 3, "amount": 2.5, "name": "a", "ts": "2026-11-05T07:00:00", "ok": true}"#,
        )
        .unwrap();
        assert_eq!(row[0], Value::Int(7));
        assert_eq!(row[2], Value::Float(2.5));
        assert!(matches!(row[4], Value::Timestamp(_)));
        assert_eq!(row[6], Value::Null);
        let ms = decode_json(&source(), br#"{"ts": 1000}"#).unwrap();
        assert_eq!(ms[4], Value::Timestamp(1_000_000));
    }

    #[test]
    fn bad_records_say_why() {
        let s = source();
        assert!(matches!(
            decode_json(&s, b"{not json"),
            Err(BadRecord::NotJson(_))
        ));
        assert!(matches!(
            decode_json(&s, b"[1]"),
            Err(BadRecord::NotAnObject(_))
        ));
        let e = decode_json(&s, br#"{"qty": 70000}"#).unwrap_err();
        assert!(
            e.to_string().contains("qty") && e.to_string().contains("out of range"),
            "{e}"
        );
        assert!(decode_json(&s, br#"{"id": "abc"}"#).is_err());
        assert!(decode_json(&s, br#"{"id": 2.5}"#).is_err());
        assert!(decode_json(&s, br#"{"ok": 5}"#).is_err());
        assert!(decode_json(&s, br#"{"ts": "not a time"}"#).is_err());
        assert!(decode_json(&s, br#"{"id": 18446744073709551615}"#).is_err());
        assert!(decode_json(&s, &[0xff, 0xfe]).is_err());
    }

    #[test]
    fn numbers_are_exact() {
        let s = SourceDef {
            columns: vec![
                Column::new("d", SqlType::Double),
                Column::new("n", SqlType::Numeric),
                Column::new("b", SqlType::BigInt),
                Column::new("t", SqlType::Text),
            ],
            primary_key: None,
            ..source()
        };
        let row = decode_json(
            &s,
            br#"{"d": 477754489.70793676, "n": 96282070403964.17, "b": 9223372036854775807, "t": 1.50}"#,
        )
        .unwrap();
        assert_eq!(
            row[0],
            Value::Float("477754489.70793676".parse::<f64>().unwrap())
        );
        assert_eq!(row[1].to_pg_text().unwrap(), "96282070403964.17");
        assert_eq!(row[2], Value::Int(i64::MAX));
        assert_eq!(row[3], Value::Text("1.50".into()));
        let row = decode_json(&s, br#"{"n": 1.5e3, "b": 2e3}"#).unwrap();
        assert_eq!(row[1].to_pg_text().unwrap(), "1500");
        assert_eq!(row[2], Value::Int(2000));
        for bad in [
            &br#"{"b": -9223372036854775809}"#[..],
            br#"{"b": 9223372036854775808}"#,
            br#"{"b": 1e30}"#,
            br#"{"d": 1e400}"#,
            br#"{"n": 1e100}"#,
            br#"{"n": 0.12345678901234567890123456789012}"#,
        ] {
            let e = decode_json(&s, bad).unwrap_err();
            assert!(e.to_string().contains("out of range"), "{e}");
        }
    }

    #[test]
    fn unknown_fields_are_skipped_and_exact_names_win() {
        let s = source();
        let row = decode_json(
            &s,
            br#"{"extra": {"deep": [1, 2]}, "NAME": "upper", "name": "exact", "id": 1}"#,
        )
        .unwrap();
        assert_eq!(row[3], Value::Text("exact".into()));
        let row = decode_json(&s, br#"{"name": "exact", "NAME": "upper"}"#).unwrap();
        assert_eq!(row[3], Value::Text("exact".into()));
        let row =
            decode_json(&s, br#"{"Name": "only case-insensitive", "na\u006de2": 1}"#).unwrap();
        assert_eq!(row[3], Value::Text("only case-insensitive".into()));
        assert!(matches!(
            decode_json(&s, br#"{"id": 1} trailing"#),
            Err(BadRecord::NotJson(_))
        ));
        assert!(matches!(
            decode_json(&s, b"null"),
            Err(BadRecord::NotAnObject("null"))
        ));
        assert!(matches!(
            decode_json(&s, b"\"text\""),
            Err(BadRecord::NotAnObject("a string"))
        ));
        assert!(matches!(
            decode_json(&s, b"12"),
            Err(BadRecord::NotAnObject("a number"))
        ));
        assert!(matches!(decode_json(&s, b""), Err(BadRecord::NotJson(_))));
    }

    #[test]
    fn keys_come_from_the_record_key() {
        let s = source();
        assert_eq!(decode_key(&s, Some(b"42")), Ok(Value::Int(42)));
        assert_eq!(decode_key(&s, Some(b"\"42\"")), Ok(Value::Int(42)));
        assert!(decode_key(&s, None).is_err());
        assert!(decode_key(&s, Some(b"x")).is_err());
    }
}
