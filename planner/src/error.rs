//! The planner's errors: [`PlanError`] for statements that cannot be planned,
//! [`EvalError`] for expressions that fail on a row. Each variant maps to one
//! SQLSTATE here and nowhere else; messages say what to change.

use common::{CastError, SqlState, SqlType, UserError};

/// A statement Eddy cannot plan. Variants carry facts, not formatted text.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PlanError {
    #[error("syntax error: {message}")]
    Syntax {
        message: String,
        position: Option<u32>,
    },

    #[error("relation \"{name}\" does not exist")]
    UnknownRelation { name: String, position: Option<u32> },

    #[error("column \"{name}\" does not exist")]
    UnknownColumn {
        name: String,
        available: Vec<String>,
        position: Option<u32>,
    },

    #[error("column reference \"{name}\" is ambiguous")]
    AmbiguousColumn { name: String, position: Option<u32> },

    #[error("operator does not exist: {left} {op} {right}")]
    OperatorTypes {
        op: String,
        left: SqlType,
        right: SqlType,
    },

    #[error("operator does not exist: {op} {operand}")]
    UnaryOperatorType { op: String, operand: SqlType },

    #[error("function {name}({}) does not exist", join_types(.args))]
    FunctionTypes { name: String, args: Vec<SqlType> },

    #[error("function {name} does not exist")]
    UnknownFunction { name: String },

    #[error("argument of {context} must be type {expected}, not type {found}")]
    ExpectedType {
        context: String,
        expected: SqlType,
        found: SqlType,
    },

    #[error("{context} types {left} and {right} cannot be matched")]
    CannotMatch {
        context: String,
        left: SqlType,
        right: SqlType,
    },

    #[error("cannot cast type {from} to {to}")]
    CannotCast { from: SqlType, to: SqlType },

    #[error("{source}")]
    InvalidLiteral { source: CastError },

    #[error("type \"{name}\" is not supported")]
    UnsupportedType { name: String },

    #[error("{feature} {} not supported{}", if *.plural { "are" } else { "is" }, .context.as_ref().map(|c| format!(" in {c}")).unwrap_or_default())]
    Unsupported {
        feature: String,
        plural: bool,
        context: Option<String>,
        hint: Option<String>,
    },

    #[error("Eddy is read-only: {statement} is not supported")]
    ReadOnly { statement: String },

    #[error("\"{name}\" is a {found}, not a {expected}")]
    WrongObjectType {
        name: String,
        found: &'static str,
        expected: &'static str,
    },

    #[error("column \"{column}\" must appear in the GROUP BY clause or be used in an aggregate function")]
    Grouping {
        column: String,
        position: Option<u32>,
    },

    #[error("aggregate functions are not allowed in {clause}")]
    AggregateNotAllowed { clause: &'static str },

    #[error("aggregate function calls cannot be nested")]
    NestedAggregate,

    #[error("{clause} position {ordinal} is not in select list")]
    BadOrdinal { clause: &'static str, ordinal: i64 },

    #[error("unrecognized {object} option \"{option}\"")]
    UnknownOption {
        object: &'static str,
        option: String,
        accepted: &'static [&'static str],
    },

    #[error("invalid value for option \"{option}\": {value}")]
    InvalidOptionValue {
        option: String,
        value: String,
        expected: String,
    },

    #[error("{what} \"{name}\" specified more than once")]
    Duplicate { what: &'static str, name: String },

    #[error("multiple primary keys for source \"{source_name}\" are not allowed")]
    MultiplePrimaryKeys { source_name: String },

    #[error("could not determine the type of parameter ${index}")]
    ParameterType { index: usize },

    #[error("statement too complex: {found} {what}, at most {limit}")]
    TooComplex {
        what: &'static str,
        found: usize,
        limit: usize,
    },

    #[error("there is no parameter ${index}")]
    NoSuchParameter { index: String },

    #[error("{message}")]
    InvalidTypmod { message: String },

    #[error("permission denied for topic \"{topic}\": topics starting with _eddy_ are Eddy's own")]
    InternalTopic { topic: String },

    #[error("internal planner error: {message}")]
    Internal { message: String },
}

fn join_types(types: &[SqlType]) -> String {
    types
        .iter()
        .map(|t| t.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

impl PlanError {
    /// `feature` is not supported; `context` names where (e.g. "materialized views").
    pub fn unsupported(feature: impl Into<String>, context: Option<&str>) -> PlanError {
        PlanError::Unsupported {
            feature: feature.into(),
            plural: false,
            context: context.map(str::to_owned),
            hint: None,
        }
    }

    /// Like [`PlanError::unsupported`] for a plural noun ("joins", "subqueries").
    pub fn unsupported_plural(feature: impl Into<String>, context: Option<&str>) -> PlanError {
        PlanError::Unsupported {
            feature: feature.into(),
            plural: true,
            context: context.map(str::to_owned),
            hint: None,
        }
    }

    pub fn with_hint(self, text: impl Into<String>) -> PlanError {
        match self {
            PlanError::Unsupported {
                feature,
                plural,
                context,
                ..
            } => PlanError::Unsupported {
                feature,
                plural,
                context,
                hint: Some(text.into()),
            },
            other => other,
        }
    }

    pub fn internal(message: impl Into<String>) -> PlanError {
        PlanError::Internal {
            message: message.into(),
        }
    }
}

impl UserError for PlanError {
    fn sqlstate(&self) -> SqlState {
        use PlanError::*;
        match self {
            Syntax { .. } => SqlState::SyntaxError,
            UnknownRelation { .. } => SqlState::UndefinedTable,
            UnknownColumn { .. } | BadOrdinal { .. } => SqlState::UndefinedColumn,
            AmbiguousColumn { .. } => SqlState::AmbiguousColumn,
            OperatorTypes { .. }
            | UnaryOperatorType { .. }
            | FunctionTypes { .. }
            | ExpectedType { .. }
            | CannotMatch { .. }
            | CannotCast { .. }
            | ParameterType { .. } => SqlState::DatatypeMismatch,
            InvalidLiteral { source } => cast_state(source),
            UnknownFunction { .. }
            | UnsupportedType { .. }
            | Unsupported { .. }
            | ReadOnly { .. } => SqlState::FeatureNotSupported,
            WrongObjectType { .. } => SqlState::WrongObjectType,
            Grouping { .. } | AggregateNotAllowed { .. } | NestedAggregate => {
                SqlState::GroupingError
            }
            UnknownOption { .. } | InvalidOptionValue { .. } => SqlState::InvalidParameterValue,
            Duplicate { .. } | MultiplePrimaryKeys { .. } => SqlState::DuplicateObject,
            TooComplex { .. } => SqlState::StatementTooComplex,
            NoSuchParameter { .. } => SqlState::UndefinedParameter,
            InternalTopic { .. } => SqlState::InsufficientPrivilege,
            InvalidTypmod { .. } => SqlState::InvalidParameterValue,
            Internal { .. } => SqlState::Internal,
        }
    }

    fn detail(&self) -> Option<String> {
        match self {
            PlanError::UnknownOption { accepted, .. } => {
                Some(format!("Accepted options: {}.", accepted.join(", ")))
            }
            PlanError::InvalidOptionValue { expected, .. } => Some(format!("Expected {expected}.")),
            _ => None,
        }
    }

    fn hint(&self) -> Option<String> {
        use PlanError::*;
        match self {
            UnknownColumn { name, available, .. } if !available.is_empty() => {
                let similar: Vec<&String> =
                    available.iter().filter(|a| similar(a, name)).collect();
                Some(if let [one] = similar.as_slice() {
                    format!("Perhaps you meant to reference the column \"{one}\".")
                } else {
                    format!("Available columns: {}.", available.join(", "))
                })
            }
            UnknownRelation { .. } => Some(
                "SHOW MATERIALIZED VIEWS and SHOW SOURCES list what exists; names are lower-cased unless quoted."
                    .into(),
            ),
            OperatorTypes { .. } | FunctionTypes { .. } | CannotMatch { .. } | ExpectedType { .. } => {
                Some("Add an explicit cast, e.g. CAST(x AS bigint) or x::text.".into())
            }
            Unsupported { hint, .. } => hint.clone(),
            ReadOnly { .. } => Some(
                "Write to the Kafka topic instead; sources and materialized views follow it.".into(),
            ),
            WrongObjectType { name, found: "source", .. } => Some(format!(
                "Sources are streams; create a materialized view over it, e.g. CREATE MATERIALIZED VIEW v AS SELECT ... FROM {name}"
            )),
            Grouping { .. } => {
                Some("Add the column to GROUP BY, or wrap it in an aggregate such as MIN(..) or COUNT(..).".into())
            }
            AggregateNotAllowed { clause: "WHERE" } => {
                Some("Filter on aggregates with HAVING instead of WHERE.".into())
            }
            UnsupportedType { .. } => Some(
                "Supported types: boolean, smallint, integer, bigint, real, double precision, numeric, text, varchar(n), date, timestamp, timestamptz."
                    .into(),
            ),
            TooComplex { .. } => Some(
                "Split the statement, or write long chains of OR / AND as IN (...) lists or a CASE.".into(),
            ),
            InternalTopic { .. } => Some(
                "Read a view's rows with SELECT, and the cluster's state from eddy_catalog.*.".into(),
            ),
            NoSuchParameter { .. } => {
                Some("Parameters are numbered $1, $2, ... up to $65535, in the order the client binds them.".into())
            }
            Duplicate { what: "column", .. } => {
                Some("Give each output column a distinct name with AS.".into())
            }
            _ => None,
        }
    }

    fn position(&self) -> Option<u32> {
        match self {
            PlanError::Syntax { position, .. }
            | PlanError::UnknownRelation { position, .. }
            | PlanError::UnknownColumn { position, .. }
            | PlanError::AmbiguousColumn { position, .. }
            | PlanError::Grouping { position, .. } => *position,
            _ => None,
        }
    }
}

/// Names close enough to suggest: same letters ignoring case and `_`, or one edit apart.
fn similar(a: &str, b: &str) -> bool {
    let norm = |s: &str| s.to_lowercase().replace('_', "");
    if norm(a) == norm(b) {
        return true;
    }
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()] <= 2 && a.len().min(b.len()) > 2
}

fn cast_state(e: &CastError) -> SqlState {
    e.sqlstate()
}

/// An expression failed on a row (or a read's LIMIT/OFFSET was invalid).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EvalError {
    #[error("division by zero")]
    DivisionByZero,
    #[error("{ty} out of range")]
    Overflow { ty: SqlType },
    #[error("{0}")]
    Cast(#[from] CastError),
    #[error("cannot apply {op} to {found}")]
    Kind {
        op: &'static str,
        found: &'static str,
    },
    #[error("{clause} must not be negative")]
    NegativeLimit { clause: &'static str },
    #[error("there is no parameter ${index}")]
    MissingParameter { index: usize },
    #[error("invalid escape string in LIKE pattern")]
    BadLikeEscape,
}

impl UserError for EvalError {
    fn sqlstate(&self) -> SqlState {
        match self {
            EvalError::DivisionByZero => SqlState::DivisionByZero,
            EvalError::Overflow { .. } => SqlState::NumericValueOutOfRange,
            EvalError::Cast(c) => cast_state(c),
            EvalError::Kind { .. } => SqlState::DatatypeMismatch,
            EvalError::NegativeLimit { .. } | EvalError::BadLikeEscape => {
                SqlState::InvalidParameterValue
            }
            EvalError::MissingParameter { .. } => SqlState::ProtocolViolation,
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            EvalError::Overflow { ty } if ty.is_integer() => {
                Some("Cast an operand to bigint or numeric, e.g. x::bigint.".into())
            }
            EvalError::DivisionByZero => {
                Some("Guard the divisor, e.g. NULLIF(x, 0) or CASE WHEN x <> 0 ...".into())
            }
            _ => None,
        }
    }
}
