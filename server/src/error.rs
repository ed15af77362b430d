//! The server's errors, each mapped to a SQLSTATE in one place.

use common::{SqlState, UserError};
use planner::{EvalError, PlanError};

use crate::session::WireError;

#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    Eval(#[from] EvalError),
    #[error("{0}")]
    Dataflow(String),
    #[error("{kind} \"{name}\" already exists")]
    DuplicateObject { kind: &'static str, name: String },
    #[error("{kind} \"{name}\" does not exist")]
    UnknownObject { kind: &'static str, name: String },
    #[error("\"{name}\" is a {is}, not a {wanted}")]
    WrongKind {
        name: String,
        is: &'static str,
        wanted: &'static str,
    },
    #[error("cannot drop source \"{source_name}\" because materialized views depend on it")]
    DependentViews {
        source_name: String,
        views: Vec<String>,
    },
    #[error("topic \"{topic}\" does not exist on the brokers")]
    MissingTopic { topic: String },
    #[error("materialized view \"{view}\" partition {partition} cannot answer: {reason}")]
    ViewUnavailable {
        view: String,
        partition: u32,
        reason: String,
    },
    /// A node a read was forwarded to failed it, with this SQLSTATE
    /// (`EY001` when it stopped answering midway).
    #[error("node {node} answered: {message}")]
    Peer {
        node: String,
        message: String,
        sqlstate: SqlState,
    },
    #[error("cannot prepare {count} statements at once")]
    MultipleStatements { count: usize },
    #[error("Kafka: {0}")]
    Kafka(String),
    /// A session-variable error, already in wire form.
    #[error("{}", .0.message)]
    Session(WireError),
    /// An error DataFusion raised, with the SQLSTATE PostgreSQL gives it.
    #[error("{message}")]
    Query {
        code: SqlState,
        message: String,
        hint: Option<String>,
    },
    #[error("canceling statement due to statement timeout")]
    StatementTimeout { limit: std::time::Duration },
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    pub fn internal(e: impl std::fmt::Display) -> Error {
        Error::Internal(e.to_string())
    }

    pub fn kafka(e: impl std::fmt::Display) -> Error {
        Error::Kafka(e.to_string())
    }
}

impl From<storage::StorageError> for Error {
    fn from(e: storage::StorageError) -> Error {
        Error::Internal(e.to_string())
    }
}

impl From<dataflow::DataflowError> for Error {
    fn from(e: dataflow::DataflowError) -> Error {
        Error::Dataflow(e.to_string())
    }
}

impl UserError for Error {
    fn sqlstate(&self) -> SqlState {
        match self {
            Error::Plan(e) => e.sqlstate(),
            Error::Eval(e) => e.sqlstate(),
            Error::DuplicateObject { .. } => SqlState::DuplicateObject,
            Error::UnknownObject { .. } => SqlState::UndefinedTable,
            Error::WrongKind { .. } => SqlState::WrongObjectType,
            Error::DependentViews { .. } => SqlState::DependentObjectsStillExist,
            Error::MissingTopic { .. } => SqlState::UndefinedObject,
            Error::ViewUnavailable { .. } => SqlState::ReplicaUnavailable,
            Error::Session(w) => w.code,
            Error::Query { code, .. } => *code,
            Error::StatementTimeout { .. } => SqlState::QueryCanceled,
            Error::MultipleStatements { .. } => SqlState::SyntaxError,
            Error::Peer { sqlstate, .. } => *sqlstate,
            Error::Dataflow(_) | Error::Kafka(_) | Error::Internal(_) => SqlState::Internal,
        }
    }

    fn detail(&self) -> Option<String> {
        match self {
            Error::Plan(e) => e.detail(),
            Error::Eval(e) => e.detail(),
            Error::Session(w) => w.detail.clone(),
            Error::DependentViews { views, .. } => {
                Some(format!("materialized views {} read from it", quoted(views)))
            }
            _ => None,
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            Error::Plan(e) => e.hint(),
            Error::Eval(e) => e.hint(),
            Error::Session(w) => w.hint.clone(),
            Error::Query { hint, .. } => hint.clone(),
            Error::StatementTimeout { limit } => Some(format!(
                "the read ran longer than statement_timeout ({} ms); SET statement_timeout = 0 lifts the limit",
                limit.as_millis()
            )),
            Error::DuplicateObject { .. } => Some("choose another name, or drop the existing object first".into()),
            Error::UnknownObject { kind, .. } => Some(format!("SHOW {}S lists what exists; use IF EXISTS to ignore a missing one", kind.to_uppercase())),
            Error::WrongKind { wanted, .. } => Some(format!("use the statement for a {wanted}'s kind, e.g. DROP {}", if *wanted == "source" { "MATERIALIZED VIEW" } else { "SOURCE" })),
            Error::DependentViews { views, .. } => Some(format!("drop {} first with DROP MATERIALIZED VIEW", quoted(views))),
            Error::MissingTopic { topic } => Some(format!("create topic \"{topic}\" on the brokers first, or name an existing one with WITH (topic = '...')")),
            Error::ViewUnavailable { .. } | Error::Peer { sqlstate: SqlState::ReplicaUnavailable, .. } => Some("retry shortly; SELECT * FROM eddy_catalog.replicas shows each partition's state".into()),
            Error::MultipleStatements { .. } => Some("send one statement per Parse message, or use the simple query protocol".into()),
            Error::Kafka(_) => Some("check that the brokers given by --brokers are reachable".into()),
            _ => None,
        }
    }

    fn position(&self) -> Option<u32> {
        match self {
            Error::Plan(e) => e.position(),
            _ => None,
        }
    }
}

fn quoted(names: &[String]) -> String {
    names
        .iter()
        .map(|n| format!("\"{n}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

impl From<Error> for WireError {
    fn from(e: Error) -> WireError {
        WireError::from_user_error(&e)
    }
}
