//! Statement handlers: one file per statement kind; this file holds the
//! [`Database`] (the [`Backend`] the pgwire layer calls) and the dispatch.

mod access;
mod copy;
mod create_source;
mod create_view;
mod cursor;
mod drop;
mod explain;
pub(crate) mod select;
mod set;
mod show;

use async_trait::async_trait;
use common::{Column, SqlType, Value};
use planner::plan::{RelationInfo, RelationKind, SourceDef};
use planner::{Defaults, Statement};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::catalog::{Catalog, CatalogState};
use crate::cluster::Cluster;
use crate::config::NodeConfig;
use crate::error::Error;
use crate::session::cursors::Block;
use crate::session::vars::SessionVars;
use crate::session::{Backend, Description, Outcome, RowStream, WireError};
use crate::system;
use dataflow::Dataflow;
use futures::{StreamExt, TryStreamExt};

pub use select::replica_rows;

pub struct Database {
    pub config: NodeConfig,
    pub catalog: Arc<Catalog>,
    pub dataflow: Arc<Dataflow>,
    pub cluster: Arc<Cluster>,
    pub started: Instant,
    /// Reads planned before, by SQL text, with the catalog version they were
    /// planned against: a prepared statement is parsed and bound once, not on
    /// every Execute. Any DDL changes the version and so invalidates them.
    pub plans: Mutex<HashMap<String, (i64, Arc<Planned>)>>,
    /// Scans and the work on their rows run on the blocking pool, this many
    /// at a time, never on the threads that answer point lookups.
    pub scans: Arc<tokio::sync::Semaphore>,
    /// DataFusion, for the reads Eddy's planner does not take.
    pub engine: crate::query::Engine,
    /// This database, for the reads that outlive a call (DataFusion's scans).
    pub me: std::sync::Weak<Database>,
}

/// Plans kept at most; the cache starts over when full.
const PLAN_CACHE_SIZE: usize = 1024;

/// The catalog as the binder sees it: sources, views and system tables.
struct Binder<'a>(&'a CatalogState);

impl planner::plan::Catalog for Binder<'_> {
    fn relation(&self, name: &str) -> Option<RelationInfo> {
        if let Some(columns) = system::columns(name) {
            return Some(RelationInfo {
                kind: RelationKind::System,
                columns,
                key_columns: Vec::new(),
            });
        }
        if let Some(v) = self.0.views.get(name) {
            return Some(RelationInfo {
                kind: RelationKind::View,
                columns: v.def.columns.clone(),
                key_columns: v.def.key_columns.clone(),
            });
        }
        self.0.sources.get(name).map(|s| RelationInfo {
            kind: RelationKind::Source,
            columns: s.columns.clone(),
            key_columns: s.primary_key.into_iter().collect(),
        })
    }

    fn source(&self, name: &str) -> Option<SourceDef> {
        self.0.sources.get(name).cloned()
    }
}

impl Database {
    /// How many scans may run at once: the cores the lookup workers leave.
    pub fn scan_slots(worker_threads: usize) -> Arc<tokio::sync::Semaphore> {
        Arc::new(tokio::sync::Semaphore::new(Self::sql_threads(
            worker_threads,
        )))
    }

    /// How many threads DataFusion computes on: the cores the lookup
    /// workers leave, at least one.
    pub fn sql_threads(worker_threads: usize) -> usize {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        cores.saturating_sub(worker_threads).max(1)
    }

    /// Runs `f` (a scan, or sorting and aggregating its rows) off the
    /// threads that answer point lookups, so a burst of scans delays other
    /// scans, never lookups (DESIGN §3 reads; issue: scans starved lookups).
    pub async fn off_lookup_threads<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, Error> {
        let _slot = self
            .scans
            .clone()
            .acquire_owned()
            .await
            .map_err(Error::internal)?;
        tokio::task::spawn_blocking(f)
            .await
            .map_err(Error::internal)
    }

    fn defaults(&self) -> Defaults {
        Defaults {
            partitions: self.config.partitions,
            standbys: self.config.standbys,
        }
    }

    fn plan(&self, stmt: &sqlparser::ast::Statement, sql: &str) -> Result<Statement, Error> {
        let catalog = self.catalog.read();
        let mut planned = planner::plan(stmt, sql, &Binder(&catalog), &self.defaults())?;
        if let Statement::Select(plan) = &mut planned {
            crate::query::origin::of_read(&catalog, plan);
        }
        Ok(planned)
    }

    /// Plans one statement: with Eddy's planner when it takes it (every
    /// statement but reads it cannot express), else — a read — with
    /// DataFusion (see [`crate::query`]).
    async fn plan_any(
        &self,
        stmt: &sqlparser::ast::Statement,
        sql: &str,
    ) -> Result<Planned, Error> {
        if let Some(access) = access::parse(stmt)? {
            return Ok(Planned::Access(access));
        }
        let Some(copy) = copy::parse(stmt) else {
            return self.plan_read(stmt, sql).await;
        };
        let (query, format) = copy?;
        let read = parse_one(&query)?.ok_or_else(|| Error::internal("COPY without a query"))?;
        Ok(Planned::Copy {
            read: Box::new(self.plan_read(&read, &query).await?),
            format,
        })
    }

    async fn plan_read(
        &self,
        stmt: &sqlparser::ast::Statement,
        sql: &str,
    ) -> Result<Planned, Error> {
        let own = match self.plan(stmt, sql) {
            Ok(planned) => return Ok(Planned::Eddy(Box::new(planned))),
            Err(Error::Plan(e)) if is_query(stmt) && datafusion_may_take(&e) => e,
            Err(e) => return Err(e),
        };
        match self.engine.plan(stmt.clone()).await {
            Ok(query) => Ok(Planned::Query(query)),
            // When both found the same mistake (a name that does not
            // exist), Eddy's planner says it better; otherwise DataFusion
            // went further and its error is the one to show.
            Err(theirs) => {
                use common::{SqlState, UserError};
                // Both may miss a relation, but not the same one: Eddy's
                // planner stops at the first of a join.
                if let planner::PlanError::UnknownRelation { name, .. } = &own {
                    let relation = name.rsplit('.').next().unwrap_or(name).to_lowercase();
                    if !theirs.to_string().to_lowercase().contains(&relation) {
                        return Err(theirs);
                    }
                }
                let same_kind = matches!(
                    (&own, theirs.sqlstate()),
                    (
                        planner::PlanError::UnknownRelation { .. },
                        SqlState::UndefinedTable
                    ) | (
                        planner::PlanError::UnknownColumn { .. },
                        SqlState::UndefinedColumn
                    ) | (
                        planner::PlanError::UnknownFunction { .. },
                        SqlState::UndefinedFunction
                    )
                );
                Err(if same_kind { Error::Plan(own) } else { theirs })
            }
        }
    }

    /// Plans with `f`; when it names a relation this node does not know,
    /// catches up with the catalog log first and tries once more — another
    /// node may have just created it.
    async fn plan_synced<T, F: std::future::Future<Output = Result<T, Error>>>(
        &self,
        f: impl Fn() -> F,
    ) -> Result<T, Error> {
        match f().await {
            Err(Error::Plan(planner::PlanError::UnknownRelation { .. })) => {
                self.catalog.sync().await?;
                f().await
            }
            other => other,
        }
    }

    /// The plan of a one-statement query, from the cache when the catalog has
    /// not changed since it was made. `None` for an empty query.
    async fn prepared(&self, sql: &str) -> Result<Option<Arc<Planned>>, Error> {
        let version = self.catalog.version();
        if let Some((v, stmt)) = self.plans.lock().expect("plan cache lock").get(sql) {
            if *v == version {
                return Ok(Some(stmt.clone()));
            }
        }
        let Some(ast) = parse_one(sql)? else {
            return Ok(None);
        };
        let planned = Arc::new(self.plan_any(&ast, sql).await?);
        if planned.is_read() {
            let mut plans = self.plans.lock().expect("plan cache lock");
            if plans.len() >= PLAN_CACHE_SIZE {
                plans.clear();
            }
            plans.insert(sql.to_owned(), (version, planned.clone()));
        }
        Ok(Some(planned))
    }

    async fn run_planned(
        &self,
        vars: &mut SessionVars,
        planned: &Planned,
        params: &[Value],
    ) -> Result<Outcome, Error> {
        Ok(match self.run_opening(vars, planned, params).await? {
            (Outcome::Stream { columns, rows }, Some((deadline, limit))) => Outcome::Stream {
                columns,
                rows: until(deadline, limit, rows),
            },
            (outcome, _) => outcome,
        })
    }

    /// Runs a statement as far as its first rows, within the session's
    /// `statement_timeout`: its outcome, and for a read the deadline and
    /// limit the rest of its rows must keep.
    async fn run_opening(
        &self,
        vars: &mut SessionVars,
        planned: &Planned,
        params: &[Value],
    ) -> Result<(Outcome, Option<(tokio::time::Instant, std::time::Duration)>), Error> {
        let limit = vars.statement_timeout();
        if limit.is_zero() || !planned.is_read() {
            return Ok((self.run_unlimited(vars, planned, params).await?, None));
        }
        let deadline = tokio::time::Instant::now() + limit;
        match tokio::time::timeout_at(deadline, self.run_unlimited(vars, planned, params)).await {
            Ok(outcome) => Ok((outcome?, Some((deadline, limit)))),
            Err(_) => Err(Error::StatementTimeout { limit }),
        }
    }

    async fn run_unlimited(
        &self,
        vars: &mut SessionVars,
        planned: &Planned,
        params: &[Value],
    ) -> Result<Outcome, Error> {
        access::authorize(self, vars.user(), planned)?;
        match planned {
            Planned::Access(stmt) => access::run(self, vars.user(), stmt).await,
            Planned::Copy { read, format } => {
                let read = Box::pin(self.run_unlimited(vars, read, params)).await?;
                match read.collected().await.map_err(Error::Session)? {
                    Outcome::Rows { columns, rows } => Ok(Outcome::CopyOut {
                        columns: columns.len(),
                        data: copy::lines(format, &columns, &rows),
                    }),
                    _ => Err(Error::internal("COPY of a statement without rows")),
                }
            }
            Planned::Eddy(stmt) => self.run(vars, stmt, params).await,
            Planned::Query(query) => {
                let me = self
                    .me
                    .upgrade()
                    .ok_or_else(|| Error::internal("the node is stopping"))?;
                let rows = self.engine.stream(query, me, vars, params).await?;
                Ok(Outcome::Stream {
                    columns: query.columns.clone(),
                    rows: RowStream::new(rows.map_err(WireError::from).boxed()),
                })
            }
        }
    }

    /// Runs one statement of a query string: a cursor statement here, any
    /// other planned and run.
    async fn run_piece(
        &self,
        vars: &mut SessionVars,
        piece: &cursor::Piece,
        params: &[Value],
    ) -> Result<Outcome, Error> {
        if let Some(outcome) = cursor::run(self, vars, piece, params).await {
            return outcome;
        }
        let cursor::Piece::Sql { ast, text } = piece else {
            return Err(Error::internal("a cursor statement was not run as one"));
        };
        let planned = self.plan_synced(|| self.plan_any(ast, text)).await?;
        self.run_planned(vars, &planned, params).await
    }

    async fn run(
        &self,
        vars: &mut SessionVars,
        stmt: &Statement,
        params: &[Value],
    ) -> Result<Outcome, Error> {
        match stmt {
            Statement::CreateSource(def) => {
                let mut def = def.clone();
                def.owner = Some(vars.user().to_owned());
                create_source::run(self, def).await
            }
            Statement::CreateView(def) => {
                let mut def = def.clone();
                def.owner = Some(vars.user().to_owned());
                create_view::run(self, def).await
            }
            Statement::DropView { name, if_exists } => {
                drop::view(self, name.clone(), *if_exists).await
            }
            Statement::DropSource { name, if_exists } => {
                drop::source(self, name.clone(), *if_exists).await
            }
            Statement::ShowSources => show::sources(self),
            Statement::ShowViews => show::views(self),
            Statement::Select(plan) => select::run(self, vars, plan, params).await,
            Statement::Explain(inner) => explain::run(self, inner),
            Statement::SetVariable { name, value, local } => {
                set::set(vars, name, value.as_deref(), *local)
            }
            Statement::ShowVariable { name } => set::show(vars, name),
            Statement::ResetVariable { name } => set::reset(vars, name),
            Statement::Begin => {
                vars.begin(false);
                Ok(Outcome::Transaction {
                    tag: "BEGIN".into(),
                    open: true,
                })
            }
            Statement::Commit | Statement::Rollback => {
                if matches!(stmt, Statement::Commit) {
                    vars.commit();
                } else {
                    vars.rollback();
                }
                Ok(Outcome::Transaction {
                    tag: stmt.command_tag().into(),
                    open: false,
                })
            }
            Statement::TransactionNoOp { tag } => Ok(command(tag)),
        }
    }

    /// The result columns of a planned statement, for Describe.
    fn columns(&self, vars: &SessionVars, stmt: &Statement) -> Option<Vec<Column>> {
        match stmt {
            Statement::Select(plan) => Some(plan.columns.clone()),
            Statement::ShowSources => Some(show::source_columns()),
            Statement::ShowViews => Some(show::view_columns()),
            Statement::Explain(_) => Some(vec![Column::new("QUERY PLAN", SqlType::Text)]),
            Statement::ShowVariable { name } => Some(set::show_columns(vars, name)),
            _ => None,
        }
    }
}

/// `rows`, ended with 57014 when `deadline` passes before the last row
/// (`statement_timeout` covers sending the rows too).
fn until(deadline: tokio::time::Instant, limit: std::time::Duration, rows: RowStream) -> RowStream {
    let Some(rows) = rows.take() else {
        return rows;
    };
    let timed = futures::stream::unfold(Some(rows), move |rows| async move {
        let mut rows = rows?;
        match tokio::time::timeout_at(deadline, rows.next()).await {
            Ok(Some(batch)) => Some((batch, Some(rows))),
            Ok(None) => None,
            Err(_) => Some((
                Err(WireError::from(Error::StatementTimeout { limit })),
                None,
            )),
        }
    });
    RowStream::new(timed.boxed())
}

pub(crate) fn command(tag: &str) -> Outcome {
    Outcome::Command {
        tag: tag.to_owned(),
        rows: None,
    }
}

/// A statement planned by Eddy's planner or, for a read it cannot
/// express, by DataFusion.
#[derive(Debug)]
pub enum Planned {
    /// Boxed: a statement is several times the size of the other plans.
    Eddy(Box<Statement>),
    Query(crate::query::QueryPlan),
    /// `COPY ... TO STDOUT` of a read.
    Copy {
        read: Box<Planned>,
        format: copy::CopyFormat,
    },
    /// A role or privilege statement.
    Access(access::AccessStatement),
}

impl Planned {
    /// The type of every `$n` parameter, in order.
    fn params(&self) -> Vec<SqlType> {
        match self {
            Planned::Eddy(stmt) => planner::param_types(stmt),
            Planned::Query(query) => query.params(),
            Planned::Copy { .. } | Planned::Access(_) => Vec::new(),
        }
    }

    /// Reads are cached by their text; DDL and SET are planned each time.
    fn is_read(&self) -> bool {
        match self {
            Planned::Query(_) | Planned::Copy { .. } => true,
            Planned::Eddy(stmt) => matches!(**stmt, Statement::Select(_)),
            Planned::Access(_) => false,
        }
    }
}

fn is_query(stmt: &sqlparser::ast::Statement) -> bool {
    matches!(stmt, sqlparser::ast::Statement::Query(_))
}

/// Whether a read Eddy's planner refused may be one DataFusion plans:
/// it used something that planner lacks, or named a relation, column or
/// function only DataFusion's catalog has.
fn datafusion_may_take(e: &planner::PlanError) -> bool {
    use planner::PlanError as P;
    matches!(
        e,
        P::Unsupported { .. }
            | P::UnsupportedType { .. }
            | P::UnknownRelation { .. }
            | P::UnknownColumn { .. }
            | P::UnknownFunction { .. }
            | P::FunctionTypes { .. }
            | P::OperatorTypes { .. }
            | P::CannotCast { .. }
    )
}

/// The one statement of a query string Parse was given; `None` when empty.
fn one_piece(sql: &str) -> Result<Option<cursor::Piece>, Error> {
    let mut pieces = cursor::split(sql)?;
    match pieces.len() {
        0 | 1 => Ok(pieces.pop()),
        n => Err(Error::MultipleStatements { count: n }),
    }
}

fn parse_one(sql: &str) -> Result<Option<sqlparser::ast::Statement>, Error> {
    let mut stmts = planner::parse(sql)?;
    match stmts.len() {
        0 => Ok(None),
        1 => Ok(stmts.pop()),
        n => Err(Error::MultipleStatements { count: n }),
    }
}

#[async_trait]
impl Backend for Database {
    async fn simple_query(
        &self,
        vars: &mut SessionVars,
        sql: &str,
    ) -> Vec<Result<Outcome, WireError>> {
        let pieces = match cursor::split(sql) {
            Ok(p) => p,
            Err(e) => return vec![Err(e.into())],
        };
        let mut out = Vec::with_capacity(pieces.len());
        let mut failed = false;
        for piece in &pieces {
            // PostgreSQL runs the statements of one query string as one
            // transaction when no BEGIN is open: cursors may be declared
            // in it and close with it.
            if pieces.len() > 1 {
                vars.begin(true);
            }
            let mut result = self.run_piece(vars, piece, &[]).await;
            // Statements after this one run once its rows are all read.
            if pieces.len() > 1 {
                if let Ok(outcome @ Outcome::Stream { .. }) = result {
                    result = outcome.collected().await.map_err(Error::Session);
                }
            }
            failed = result.is_err();
            out.push(result.map_err(WireError::from));
            if failed {
                break;
            }
        }
        if vars.cursors().block() == Block::Implicit {
            if failed {
                vars.rollback();
            } else {
                vars.commit();
            }
        }
        out
    }

    async fn describe(
        &self,
        vars: &SessionVars,
        sql: &str,
        _param_types: &[Option<SqlType>],
    ) -> Result<Description, WireError> {
        if cursor::leads_with_cursor_statement(sql) {
            if let Some(piece) = one_piece(sql)? {
                if let Some(described) = cursor::describe(self, vars, &piece).await {
                    return Ok(described?);
                }
            }
        }
        let Some(planned) = self.plan_synced(|| self.prepared(sql)).await? else {
            return Ok(Description {
                params: Vec::new(),
                columns: None,
            });
        };
        Ok(Description {
            params: planned.params(),
            columns: match planned.as_ref() {
                Planned::Eddy(stmt) => self.columns(vars, stmt),
                Planned::Query(query) => Some(query.columns.clone()),
                Planned::Copy { .. } | Planned::Access(_) => None,
            },
        })
    }

    async fn execute(
        &self,
        vars: &mut SessionVars,
        sql: &str,
        params: &[Value],
    ) -> Result<Outcome, WireError> {
        if cursor::leads_with_cursor_statement(sql) {
            if let Some(piece) = one_piece(sql)? {
                return Ok(self.run_piece(vars, &piece, params).await?);
            }
        }
        let Some(planned) = self.plan_synced(|| self.prepared(sql)).await? else {
            return Ok(Outcome::Command {
                tag: String::new(),
                rows: None,
            });
        };
        Ok(self.run_planned(vars, &planned, params).await?)
    }
}
