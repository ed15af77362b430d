//! SQLSTATE codes Eddy returns, named once. Every user-visible error maps to
//! one of these in exactly one place (its crate's error enum).

use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SqlState {
    SyntaxError,
    UndefinedTable,
    UndefinedColumn,
    UndefinedObject,
    DatatypeMismatch,
    FeatureNotSupported,
    DuplicateObject,
    DependentObjectsStillExist,
    WrongObjectType,
    InvalidParameterValue,
    InvalidTextRepresentation,
    InvalidBinaryRepresentation,
    NumericValueOutOfRange,
    DivisionByZero,
    /// A LIKE escape string or an escape at a pattern's end.
    InvalidEscapeSequence,
    AmbiguousColumn,
    GroupingError,
    ProtocolViolation,
    /// No replica of a needed partition can answer within the session's bound.
    ReplicaUnavailable,
    ObjectNotInPrerequisiteState,
    /// Dropping the role the session is logged in as.
    ObjectInUse,
    InvalidAuthorization,
    /// A wrong password, or a user that does not exist (PostgreSQL does not
    /// tell the two apart).
    InvalidPassword,
    /// A statement or message larger than a node accepts.
    ProgramLimitExceeded,
    /// An expression nested deeper than a node evaluates.
    StatementTooComplex,
    TooManyConnections,
    UndefinedParameter,
    InsufficientPrivilege,
    StringDataRightTruncation,
    UndefinedFunction,
    /// A semantic error DataFusion found that has no narrower code.
    SyntaxErrorOrAccessRuleViolation,
    /// A value-dependent error at run time with no narrower code.
    DataException,
    QueryCanceled,
    OutOfMemory,
    CardinalityViolation,
    InFailedTransaction,
    /// `FETCH`, `MOVE` or `CLOSE` of a cursor the session does not have.
    InvalidCursorName,
    /// `DECLARE` of a cursor name the session already uses.
    DuplicateCursor,
    /// A statement that needs a transaction block ran outside one.
    NoActiveSqlTransaction,
    Internal,
}

impl SqlState {
    pub fn code(self) -> &'static str {
        match self {
            SqlState::SyntaxError => "42601",
            SqlState::UndefinedTable => "42P01",
            SqlState::UndefinedColumn => "42703",
            SqlState::UndefinedObject => "42704",
            SqlState::DatatypeMismatch => "42804",
            SqlState::FeatureNotSupported => "0A000",
            SqlState::DuplicateObject => "42710",
            SqlState::DependentObjectsStillExist => "2BP01",
            SqlState::WrongObjectType => "42809",
            SqlState::InvalidParameterValue => "22023",
            SqlState::InvalidTextRepresentation => "22P02",
            SqlState::InvalidBinaryRepresentation => "22P03",
            SqlState::NumericValueOutOfRange => "22003",
            SqlState::DivisionByZero => "22012",
            SqlState::InvalidEscapeSequence => "22025",
            SqlState::AmbiguousColumn => "42702",
            SqlState::GroupingError => "42803",
            SqlState::ProtocolViolation => "08P01",
            SqlState::ReplicaUnavailable => "EY001",
            SqlState::ObjectNotInPrerequisiteState => "55000",
            SqlState::ObjectInUse => "55006",
            SqlState::InvalidAuthorization => "28000",
            SqlState::InvalidPassword => "28P01",
            SqlState::ProgramLimitExceeded => "54000",
            SqlState::StatementTooComplex => "54001",
            SqlState::TooManyConnections => "53300",
            SqlState::UndefinedParameter => "42P02",
            SqlState::InsufficientPrivilege => "42501",
            SqlState::StringDataRightTruncation => "22001",
            SqlState::UndefinedFunction => "42883",
            SqlState::SyntaxErrorOrAccessRuleViolation => "42000",
            SqlState::DataException => "22000",
            SqlState::QueryCanceled => "57014",
            SqlState::OutOfMemory => "53200",
            SqlState::CardinalityViolation => "21000",
            SqlState::InFailedTransaction => "25P02",
            SqlState::InvalidCursorName => "34000",
            SqlState::DuplicateCursor => "42P03",
            SqlState::NoActiveSqlTransaction => "25P01",
            SqlState::Internal => "XX000",
        }
    }
}

impl fmt::Display for SqlState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// What every user-facing error offers the wire layer.
pub trait UserError: std::error::Error {
    fn sqlstate(&self) -> SqlState;
    fn detail(&self) -> Option<String> {
        None
    }
    fn hint(&self) -> Option<String> {
        None
    }
    /// 1-based character position in the statement, for syntax errors.
    fn position(&self) -> Option<u32> {
        None
    }
}
