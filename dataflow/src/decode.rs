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
                    let v: serde_json::Value = map.next_value()?;
                    seen[i] = true;
                    match json_to_value(&v, columns[i].ty) {
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

fn json_to_value(v: &serde_json::Value, ty: SqlType) -> Result<Value, String> {
    use serde_json::Value as J;
    let value = match v {
        J::Null => return Ok(Value::Null),
        J::String(s) => Value::Text(s.clone()),
        J::Bool(b) if ty == SqlType::Boolean || ty.is_text() => Value::Bool(*b),
        J::Number(n) if ty.is_text() => Value::Text(n.to_string()),
        J::Number(n) if ty == SqlType::Numeric => Value::Text(n.to_string()),
        J::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::Int(i)
            } else if n.is_u64() {
                return Err(format!("{n} is out of range for type {ty}"));
            } else {
                let f = n.as_f64().unwrap_or(f64::NAN);
                if ty.is_integer() && f.fract() != 0.0 {
                    return Err(format!("{n} is not a whole number, as type {ty} needs"));
                }
                Value::Float(f)
            }
        }
        J::Array(_) | J::Object(_) if ty.is_text() => Value::Text(v.to_string()),
        other => return Err(format!("{} cannot be read as type {ty}", json_kind(other))),
    };
    if matches!(value, Value::Int(_) | Value::Float(_)) && !(ty.is_numeric() || is_time(ty)) {
        return Err(format!("a number cannot be read as type {ty}"));
    }
    if matches!(value, Value::Float(_)) && is_time(ty) {
        return Err(format!("{v} is not epoch milliseconds"));
    }
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
