//! The session interface: what the pgwire layer may ask of the database.
//!
//! The pgwire layer never touches RocksDB or Kafka; it holds a [`Backend`] and
//! a [`vars::SessionVars`] per connection and calls these methods.

pub mod cursors;
pub mod vars;

use async_trait::async_trait;
use common::{Column, Row, SqlState, SqlType, UserError, Value};
use futures::stream::BoxStream;
use futures::StreamExt;
use std::fmt;
use std::sync::{Arc, Mutex};

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

/// Rows a read sends while it computes them, a batch at a time: the
/// client gets the first rows before the last are computed, and a node
/// holds a few batches of a large answer, not all of it. Dropped, the read
/// stops.
#[derive(Clone)]
pub struct RowStream(Arc<Mutex<Option<Batches>>>);

/// Batches of rows, or the error that ended them.
pub type Batches = BoxStream<'static, Result<Vec<Row>, WireError>>;

impl RowStream {
    pub fn new(rows: Batches) -> RowStream {
        RowStream(Arc::new(Mutex::new(Some(rows))))
    }

    /// The stream; `None` once taken (an outcome is sent once).
    pub fn take(&self) -> Option<Batches> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    /// Every row, for the statements that need them all (COPY, cursors).
    pub async fn collect(&self) -> Result<Vec<Row>, WireError> {
        let mut all = Vec::new();
        if let Some(mut rows) = self.take() {
            while let Some(batch) = rows.next().await {
                all.extend(batch?);
            }
        }
        Ok(all)
    }
}

impl fmt::Debug for RowStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RowStream")
    }
}

impl PartialEq for RowStream {
    fn eq(&self, other: &RowStream) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

/// The result of one statement.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Rows {
        columns: Vec<Column>,
        rows: Vec<Row>,
    },
    /// Rows, sent as they are computed.
    Stream {
        columns: Vec<Column>,
        rows: RowStream,
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

impl Outcome {
    /// The outcome with a stream's rows all computed (`Rows`).
    pub async fn collected(self) -> Result<Outcome, WireError> {
        match self {
            Outcome::Stream { columns, rows } => Ok(Outcome::Rows {
                columns,
                rows: rows.collect().await?,
            }),
            other => Ok(other),
        }
    }
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
