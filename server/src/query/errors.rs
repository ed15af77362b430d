//! DataFusion's errors as PostgreSQL's: each gets the SQLSTATE a client
//! would get from PostgreSQL for the same mistake, and Eddy's own errors
//! raised inside a scan (a partition no replica can serve, EY001) come out
//! exactly as they went in.

use common::SqlState;
use datafusion::arrow::error::ArrowError;
use datafusion::common::{DataFusionError, SchemaError};

use crate::error::Error;

/// `e` as the error the client sees.
pub fn query_error(e: DataFusionError) -> Error {
    if let Some(ours) = eddy_error(&e) {
        return ours;
    }
    let root = e.find_root();
    let (code, message) = match root {
        DataFusionError::ArrowError(a, _) => arrow_code(a),
        DataFusionError::SchemaError(s, _) => (
            match s.as_ref() {
                SchemaError::FieldNotFound { .. } => SqlState::UndefinedColumn,
                SchemaError::AmbiguousReference { .. } => SqlState::AmbiguousColumn,
                _ => SqlState::SyntaxErrorOrAccessRuleViolation,
            },
            s.to_string(),
        ),
        DataFusionError::SQL(p, _) => (SqlState::SyntaxError, p.to_string()),
        DataFusionError::NotImplemented(m) => (SqlState::FeatureNotSupported, m.clone()),
        DataFusionError::Plan(m) => (plan_code(m), m.clone()),
        DataFusionError::Execution(m) => (execution_code(m), m.clone()),
        DataFusionError::ResourcesExhausted(m) => (SqlState::OutOfMemory, m.clone()),
        other => (SqlState::Internal, other.message().into_owned()),
    };
    let message = first_line(&message);
    let message = match code {
        SqlState::UndefinedTable => missing_relation(&message).unwrap_or(message),
        _ => message,
    };
    let hint = match code {
        SqlState::UndefinedTable => Some(
            "SHOW VIEWS lists the views; system tables are under eddy_catalog and pg_catalog"
                .to_owned(),
        ),
        SqlState::FeatureNotSupported => {
            Some("docs/sql.md lists what reads accept; rewrite the query without it".to_owned())
        }
        _ => None,
    };
    Error::Query {
        code,
        message,
        hint,
    }
}

/// DataFusion's "table 'eddy.public.nope' not found" as PostgreSQL says it:
/// `relation "nope" does not exist` (the schema kept unless it is public).
fn missing_relation(message: &str) -> Option<String> {
    let start = message.find("table '")? + "table '".len();
    let end = start + message[start..].find("' not found")?;
    let name = &message[start..end];
    let name = name
        .strip_prefix(&format!("{}.", super::DATABASE))
        .unwrap_or(name);
    let name = name
        .strip_prefix(&format!("{}.", super::tables::PUBLIC))
        .unwrap_or(name);
    Some(format!("relation \"{name}\" does not exist"))
}

/// An Eddy error a table raised, wherever DataFusion wrapped it.
fn eddy_error(e: &DataFusionError) -> Option<Error> {
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = next {
        if let Some(ours) = err.downcast_ref::<Error>() {
            return Some(ours.clone());
        }
        next = err.source();
    }
    None
}

fn arrow_code(e: &ArrowError) -> (SqlState, String) {
    match e {
        ArrowError::DivideByZero => (SqlState::DivisionByZero, "division by zero".into()),
        ArrowError::ArithmeticOverflow(m) => (SqlState::NumericValueOutOfRange, overflow(m)),
        ArrowError::CastError(m) | ArrowError::ParseError(m) => {
            let lower = m.to_ascii_lowercase();
            if lower.contains("overflow")
                || lower.contains("out of range")
                || lower.contains("too large")
            {
                (SqlState::NumericValueOutOfRange, m.clone())
            } else {
                (SqlState::InvalidTextRepresentation, m.clone())
            }
        }
        ArrowError::ComputeError(m) if m.contains("out of range") => {
            (SqlState::NumericValueOutOfRange, m.clone())
        }
        ArrowError::InvalidArgumentError(m) | ArrowError::ComputeError(m) => {
            (SqlState::DataException, m.clone())
        }
        other => (SqlState::Internal, other.to_string()),
    }
}

/// Arrow says "Overflow happened on: 9223372036854775807 + 1"; PostgreSQL
/// says "bigint out of range".
fn overflow(m: &str) -> String {
    format!(
        "value out of range: {}",
        m.trim_start_matches("Overflow happened on: ")
    )
}

fn plan_code(m: &str) -> SqlState {
    let lower = m.to_ascii_lowercase();
    if lower.contains("table") && lower.contains("not found") {
        SqlState::UndefinedTable
    } else if lower.contains("invalid function")
        || lower.contains("no function matches")
        || (lower.contains("function") && lower.contains("does not exist"))
    {
        SqlState::UndefinedFunction
    } else if lower.contains("aggregate") && lower.contains("group by") {
        SqlState::GroupingError
    } else if lower.contains("coerc")
        || lower.contains("cannot infer common")
        || lower.contains("type")
    {
        SqlState::DatatypeMismatch
    } else {
        SqlState::SyntaxErrorOrAccessRuleViolation
    }
}

fn execution_code(m: &str) -> SqlState {
    let lower = m.to_ascii_lowercase();
    if m == super::semantics::MORE_THAN_ONE_ROW {
        SqlState::CardinalityViolation
    } else if lower.contains("divide by zero") || lower.contains("division by zero") {
        SqlState::DivisionByZero
    } else if lower.contains("overflow") || lower.contains("out of range") {
        SqlState::NumericValueOutOfRange
    } else {
        SqlState::DataException
    }
}

/// DataFusion appends the plan or a backtrace after the first line.
fn first_line(m: &str) -> String {
    m.lines().next().unwrap_or_default().trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_table_is_named_as_postgresql_names_it() {
        use common::UserError;
        let e = query_error(DataFusionError::Plan(
            "table 'eddy.public.nope' not found".into(),
        ));
        assert_eq!(e.sqlstate(), SqlState::UndefinedTable);
        assert_eq!(e.to_string(), "relation \"nope\" does not exist");
        let e = query_error(DataFusionError::Plan(
            "table 'eddy.pg_catalog.pg_operator' not found".into(),
        ));
        assert_eq!(
            e.to_string(),
            "relation \"pg_catalog.pg_operator\" does not exist"
        );
    }

    #[test]
    fn an_eddy_error_inside_a_scan_keeps_its_sqlstate() {
        let ours = Error::ViewUnavailable {
            view: "v".into(),
            partition: 1,
            reason: "no replica".into(),
        };
        let wrapped = DataFusionError::Context(
            "scan".into(),
            Box::new(DataFusionError::External(Box::new(ours.clone()))),
        );
        assert!(matches!(
            query_error(wrapped),
            Error::ViewUnavailable { .. }
        ));
    }

    #[test]
    fn arithmetic_errors_get_postgresql_codes() {
        use common::UserError;
        let e = query_error(DataFusionError::ArrowError(
            Box::new(ArrowError::DivideByZero),
            None,
        ));
        assert_eq!(e.sqlstate(), SqlState::DivisionByZero);
        let e = query_error(DataFusionError::ArrowError(
            Box::new(ArrowError::ArithmeticOverflow(
                "Overflow happened on: 1 + 2".into(),
            )),
            None,
        ));
        assert_eq!(e.sqlstate(), SqlState::NumericValueOutOfRange);
    }
}
