//! The session interface: what the pgwire layer may ask of the database.
//!
//! The pgwire layer never touches RocksDB or Kafka; it holds a [`Backend`] and
//! a [`vars::SessionVars`] per connection and calls these methods.

pub mod cursors;
pub mod vars;

use async_trait::async_trait;
use common::{Column, Row, SqlState, SqlType, UserError, Value};

/// A user-visible error as it goes on the wire.
#[derive(Debug, Clone, PartialEq)]
pub struct WireError {
    pub code: SqlState,
    pub message: String,
    pub detail: Option<String>,
    pub hint: Option<String>,
    /// 1-based character position in the query text.
    pub position: Option<u32>,
}

impl WireError {
    pub fn new(code: SqlState, message: impl Into<String>) -> WireError {
        WireError {
            code,
            message: message.into(),
            detail: None,
            hint: None,
            position: None,
        }
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> WireError {
        self.hint = Some(hint.into());
        self
    }

    pub fn with_detail(mut self, detail: impl Into<String>) -> WireError {
        self.detail = Some(detail.into());
        self
    }

    pub fn from_user_error(e: &dyn UserError) -> WireError {
        WireError {
            code: e.sqlstate(),
            message: e.to_string(),
            detail: e.detail(),
            hint: e.hint(),
            position: e.position(),
        }
    }
}

/// The result of one statement.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Rows {
        columns: Vec<Column>,
        rows: Vec<Row>,
    },
    /// A command: `tag` is the command tag (`CREATE SOURCE`, `SET`, ...);
    /// `rows` is appended to the tag when present (`SELECT 3`, `INSERT 0 1`).
    Command { tag: String, rows: Option<usize> },
    /// `BEGIN` (`open`) or `COMMIT` / `ROLLBACK`: the session's transaction
    /// status changes, which ReadyForQuery reports (`T` / `I`).
    Transaction { tag: String, open: bool },
    /// `COPY ... TO STDOUT`: `columns` per row, and the COPY data, one
    /// message per row (a header, when asked for, leads the first: pgwire
    /// counts messages for the `COPY n` tag).
    CopyOut { columns: usize, data: Vec<String> },
    /// `FETCH` from a cursor: like `Rows`, but tagged `FETCH n`.
    Fetch {
        columns: Vec<Column>,
        rows: Vec<Row>,
        /// A `BINARY` cursor: the simple protocol sends binary fields.
        binary: bool,
    },
    /// `FETCH` or `MOVE` forward through a name that is none of the
    /// session's SQL cursors. It may be a protocol-level portal (Bind),
    /// which PostgreSQL lets SQL move too — asyncpg binds its cursors so
    /// and skips rows with `MOVE FORWARD n portal` — and only the wire
    /// layer holds those; when it has none either, the answer is 34000.
    PortalFetch {
        name: String,
        /// `None` for ALL.
        count: Option<u64>,
        /// `MOVE`: count the rows, send none.
        discard: bool,
    },
}

/// What Describe needs before execution.
#[derive(Debug, Clone, PartialEq)]
pub struct Description {
    /// The type of every `$n` parameter, in order.
    pub params: Vec<SqlType>,
    /// Result columns; `None` for a statement that returns no rows.
    pub columns: Option<Vec<Column>>,
}

/// The database as a session sees it. One instance serves every connection;
/// per-connection state lives in the `SessionVars` passed in.
#[async_trait]
pub trait Backend: Send + Sync + 'static {
    /// Runs every statement of a simple-protocol query string in order,
    /// stopping after the first error (which is the last element).
    async fn simple_query(
        &self,
        vars: &mut vars::SessionVars,
        sql: &str,
    ) -> Vec<Result<Outcome, WireError>>;

    /// Plans one statement without running it. `param_types` are the types the
    /// client declared in Parse (`None` = let the server infer).
    async fn describe(
        &self,
        vars: &vars::SessionVars,
        sql: &str,
        param_types: &[Option<SqlType>],
    ) -> Result<Description, WireError>;

    /// Runs one statement with bound parameter values.
    async fn execute(
        &self,
        vars: &mut vars::SessionVars,
        sql: &str,
        params: &[Value],
    ) -> Result<Outcome, WireError>;
}
