//! Reads on Apache DataFusion: the queries Eddy's own read planner does not
//! take — joins, subqueries, CTEs, set operations, DISTINCT, window
//! functions, set-returning functions, the Postgres catalog — are planned
//! and run by DataFusion over Eddy's relations (see [`tables`]).
//!
//! A read first goes to Eddy's planner (`planner::plan`): a read of one
//! relation keeps its exact PostgreSQL semantics and an equality on a
//! view's key stays a point lookup with a cached plan. What that planner
//! does not support comes here. DataFusion's work runs on its own threads
//! ("eddy-sql"), never on the ones that answer point lookups.

pub mod convert;
mod errors;
mod functions;
pub mod origin;
pub mod pg_catalog;
mod pushdown;
mod rewrite;
mod semantics;
mod subquery;
pub mod tables;

use common::{Column, Row, SqlType, Value};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::DataFusionError;
use datafusion::execution::context::SessionState;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::execution::FunctionRegistry;
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_plan::execute_stream;
use datafusion::prelude::SessionConfig;
use futures::stream::BoxStream;
use futures::StreamExt;
use std::sync::Arc;

use crate::catalog::Catalog;
use crate::error::Error;
use crate::session::vars::SessionVars;
pub use errors::query_error;
pub use tables::ReadContext;

/// The name of the one catalog (PostgreSQL's database).
pub const DATABASE: &str = "eddy";

/// A read DataFusion planned: its logical plan (parameters still open),
/// the types of its parameters and its result columns.
#[derive(Debug)]
pub struct QueryPlan {
    logical: LogicalPlan,
    param_types: Vec<Option<DataType>>,
    pub columns: Vec<Column>,
}

impl QueryPlan {
    /// The SQL type of every `$n`, for Describe.
    pub fn params(&self) -> Vec<SqlType> {
        self.param_types
            .iter()
            .map(|t| convert::param_type(t.as_ref()))
            .collect()
    }
}

/// DataFusion as this node runs it: one session state every read starts
/// from, and the threads reads run on.
pub struct Engine {
    state: SessionState,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Engine {
    /// An engine over `catalog` computing on `threads` threads.
    pub fn new(catalog: Arc<Catalog>, threads: usize) -> Result<Engine, Error> {
        let mut config = SessionConfig::new()
            .with_default_catalog_and_schema(DATABASE, tables::PUBLIC)
            .with_create_default_catalog_and_schema(false)
            .with_information_schema(false)
            .with_target_partitions(threads.max(1));
        let options = config.options_mut();
        // As PostgreSQL: `1.5` is numeric, strings are text.
        options.sql_parser.parse_float_as_decimal = true;
        options.sql_parser.map_string_types_to_utf8view = false;
        options.execution.time_zone = Some("+00:00".into());
        let mut state = SessionStateBuilder::new()
            .with_config(config)
            .with_default_features()
            .build();
        for f in functions::all(catalog.clone()) {
            state.register_udf(f).map_err(query_error)?;
        }
        for f in [
            semantics::PgTyped::sum(),
            semantics::PgTyped::avg(),
            semantics::Single::udaf(),
        ] {
            state.register_udaf(Arc::new(f)).map_err(query_error)?;
        }
        state.add_analyzer_rule(Arc::new(semantics::CheckedArithmetic::new()));
        state
            .catalog_list()
            .register_catalog(DATABASE.into(), Arc::new(tables::EddyCatalog { catalog }));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads.max(1))
            .thread_name("eddy-sql")
            .thread_stack_size(planner::NODE_THREAD_STACK)
            .enable_all()
            .build()
            .map_err(Error::internal)?;
        Ok(Engine {
            state,
            runtime: Some(runtime),
        })
    }

    fn handle(&self) -> Result<tokio::runtime::Handle, Error> {
        self.runtime
            .as_ref()
            .map(|r| r.handle().clone())
            .ok_or_else(|| Error::internal("the query engine has stopped"))
    }

    /// Plans one query; parameters stay open until [`Engine::run`].
    pub async fn plan(&self, query: sqlparser::ast::Statement) -> Result<QueryPlan, Error> {
        let query = rewrite::for_datafusion(query)?;
        let logical = self
            .state
            .statement_to_plan(datafusion::sql::parser::Statement::Statement(Box::new(
                query,
            )))
            .await
            .map_err(query_error)?;
        let logical = typed_parameters(empty_catalog_tables(logical)?)?;
        let mut by_name = logical.get_parameter_types().map_err(query_error)?;
        let count = by_name
            .keys()
            .filter_map(|k| k.strip_prefix('$')?.parse::<usize>().ok())
            .max()
            .unwrap_or(0);
        let param_types = (1..=count)
            .map(|i| by_name.remove(&format!("${i}")).flatten())
            .collect();
        let mut columns = convert::columns(logical.schema().as_arrow());
        for c in &mut columns {
            c.name = rewrite::client_name(&c.name).to_owned();
        }
        origin::of_query(&logical, &mut columns);
        Ok(QueryPlan {
            logical,
            param_types,
            columns,
        })
    }

    /// Runs `plan` with `params` for the session in `ctx`: its rows as
    /// DataFusion computes them, a batch at a time, a couple of batches
    /// ahead of the reader. An error before the first batch (planning, the
    /// first scans) is returned as such; a later one ends the stream.
    /// Dropping the stream stops the read at its next await.
    ///
    /// `set_config(..)` calls change `vars` before the read starts.
    pub async fn stream(
        &self,
        plan: &QueryPlan,
        db: Arc<crate::handler::Database>,
        vars: &mut SessionVars,
        params: &[Value],
    ) -> Result<RowBatches, Error> {
        let mut logical = plan.logical.clone();
        if !plan.param_types.is_empty() {
            let values = params
                .iter()
                .zip(&plan.param_types)
                .map(|(v, ty)| convert::scalar(v, ty.as_ref()))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| query_error(e.into()))?;
            logical = logical.with_param_values(values).map_err(query_error)?;
        }
        // After the parameters: `current_setting($1)` names a literal now.
        let logical = session_settings(logical, vars)?;
        let ctx = ReadContext {
            db,
            vars: vars.clone(),
        };
        let mut state = self.state.clone();
        state.config_mut().set_extension(Arc::new(ctx));
        self.ahead(move |tx| async move {
            let physical = state
                .create_physical_plan(&logical)
                .await
                .map_err(query_error)?;
            let mut batches = execute_stream(physical, state.task_ctx()).map_err(query_error)?;
            while let Some(batch) = batches.next().await {
                let mut rows = Vec::new();
                convert::rows(&batch.map_err(query_error)?, &mut rows)
                    .map_err(|e| query_error(e.into()))?;
                if tx.send(Ok(rows)).await.is_err() {
                    break; // nobody reads on
                }
            }
            Ok(())
        })
        .await
    }

    /// Runs `work` on this engine's threads, a few batches of rows ahead of
    /// whoever reads the stream it returns; dropping the stream stops the
    /// work. The first batch is awaited here, so an error before any row is
    /// the statement's error (sent before RowDescription, as PostgreSQL does).
    pub async fn ahead<W, F>(&self, work: W) -> Result<RowBatches, Error>
    where
        W: FnOnce(RowSender) -> F,
        F: std::future::Future<Output = Result<(), Error>> + Send + 'static,
    {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Vec<Row>, Error>>(AHEAD);
        let failed = tx.clone();
        let work = work(tx);
        let task = AbortOnDrop(self.handle()?.spawn(async move {
            if let Err(e) = work.await {
                let _ = failed.send(Err(e)).await;
            }
        }));
        let first = match rx.recv().await {
            Some(Err(e)) => return Err(e),
            first => first,
        };
        let rest = futures::stream::poll_fn(move |cx| {
            let _running = &task;
            rx.poll_recv(cx)
        });
        Ok(futures::stream::iter(first).chain(rest).boxed())
    }
}

/// Where work computing a read sends its batches of rows.
pub type RowSender = tokio::sync::mpsc::Sender<Result<Vec<Row>, Error>>;

/// Batches of rows as a read computes them, or the error that ended it.
pub type RowBatches = BoxStream<'static, Result<Vec<Row>, Error>>;

/// Batches a read computes ahead of the client.
const AHEAD: usize = 2;

/// Types the parameters DataFusion leaves untyped where PostgreSQL types
/// them: `$1::t` is a `t` (`$1::text[]` too), and in `x = ANY($1)`, `$1`
/// is an array of `x`'s type (planned as `array_has($1, x)`).
fn typed_parameters(plan: LogicalPlan) -> Result<LogicalPlan, Error> {
    use datafusion::arrow::datatypes::Field;
    use datafusion::common::tree_node::{Transformed, TreeNode};
    use datafusion::logical_expr::expr::Placeholder;
    use datafusion::logical_expr::{Expr, ExprSchemable};
    plan.transform_up_with_subqueries(|p| {
        let schema = match p.inputs().as_slice() {
            [input] => Arc::clone(input.schema()),
            _ => return Ok(Transformed::no(p)),
        };
        p.map_expressions(|e| {
            e.transform_up(|e| {
                if let Expr::Cast(cast) = &e {
                    if let Expr::Placeholder(Placeholder { id, field: None }) = cast.expr.as_ref() {
                        let mut cast = cast.clone();
                        cast.expr = Box::new(Expr::Placeholder(Placeholder {
                            id: id.clone(),
                            field: Some(Arc::clone(&cast.field)),
                        }));
                        return Ok(Transformed::yes(Expr::Cast(cast)));
                    }
                }
                let Expr::ScalarFunction(f) = &e else {
                    return Ok(Transformed::no(e));
                };
                let untyped = match f.args.as_slice() {
                    [Expr::Placeholder(Placeholder { id, field: None }), needle]
                        if f.name() == "array_has" =>
                    {
                        Some((id.clone(), needle.get_type(&schema)?))
                    }
                    _ => None,
                };
                let Some((id, element)) = untyped else {
                    return Ok(Transformed::no(e));
                };
                let mut f = f.clone();
                let list = DataType::List(Arc::new(Field::new_list_field(element, true)));
                f.args[0] = Expr::Placeholder(Placeholder {
                    id,
                    field: Some(Arc::new(Field::new("", list, true))),
                });
                Ok(Transformed::yes(Expr::ScalarFunction(f)))
            })
        })
    })
    .map(|t| t.data)
    .map_err(query_error)
}

/// Scans of catalog tables that are empty by construction as empty
/// relations: DataFusion's optimizer then drops what reads them, such as
/// psql's `\d` policy footer, whose per-row subquery correlates through
/// an array (`oid = ANY(pol.polroles)`) and could not be planned.
fn empty_catalog_tables(plan: LogicalPlan) -> Result<LogicalPlan, Error> {
    use datafusion::common::tree_node::Transformed;
    use datafusion::datasource::source_as_provider;
    use datafusion::logical_expr::EmptyRelation;
    plan.transform_up_with_subqueries(|p| {
        let LogicalPlan::TableScan(scan) = &p else {
            return Ok(Transformed::no(p));
        };
        let empty = source_as_provider(&scan.source).is_ok_and(|provider| {
            (provider.as_ref() as &dyn std::any::Any)
                .downcast_ref::<tables::RowsTable>()
                .is_some_and(tables::RowsTable::always_empty)
        });
        if !empty {
            return Ok(Transformed::no(p));
        }
        Ok(Transformed::yes(LogicalPlan::EmptyRelation(
            EmptyRelation {
                produce_one_row: false,
                schema: Arc::clone(&scan.projected_schema),
            },
        )))
    })
    .map(|t| t.data)
    .map_err(query_error)
}

/// The relations of schema `public` (sources and views) `query` reads,
/// subqueries included: what its privilege check looks at.
pub fn relations_read(query: &QueryPlan) -> Vec<String> {
    use datafusion::common::tree_node::TreeNodeRecursion;
    let mut names = Vec::new();
    let _ = query.logical.apply_with_subqueries(|p| {
        if let LogicalPlan::TableScan(scan) = p {
            let r = &scan.table_name;
            let public = r.schema().is_none_or(|s| s == tables::PUBLIC);
            let ours = r.catalog().is_none_or(|c| c == DATABASE);
            if public && ours && !names.iter().any(|n| n == r.table()) {
                names.push(r.table().to_owned());
            }
        }
        Ok(TreeNodeRecursion::Continue)
    });
    names
}

/// `set_config(name, value, is_local)` applied to the session, then
/// `current_setting('name')` as the session's value now: plans are shared
/// between sessions, so the values go in when a plan runs. Both take
/// constants (parameters are constants by now); PostgreSQL calls
/// `set_config` once per row, and Eddy once per statement, before the
/// read starts, so that its rows see the new value.
fn session_settings(plan: LogicalPlan, vars: &mut SessionVars) -> Result<LogicalPlan, Error> {
    use datafusion::common::tree_node::{Transformed, TreeNode};
    use datafusion::common::ScalarValue;
    use datafusion::logical_expr::{lit, Expr};
    let session_error = |e: crate::session::vars::VarError| {
        DataFusionError::External(Box::new(Error::Session(e.into())))
    };
    let constant = |f: &str, what: &str, e: Option<&Expr>| {
        e.and_then(literal_text).ok_or_else(|| {
            DataFusionError::NotImplemented(format!(
                "{f} with a {what} computed per row: give it a constant or a parameter, or use SET"
            ))
        })
    };
    let plan = plan
        .transform_up_with_subqueries(|p| {
            p.map_expressions(|e| {
                e.transform_up(|e| {
                    let Expr::ScalarFunction(f) = &e else {
                        return Ok(Transformed::no(e));
                    };
                    if f.name() != "set_config" {
                        return Ok(Transformed::no(e));
                    }
                    let name = constant("set_config", "name", f.args.first())?;
                    let value = constant("set_config", "value", f.args.get(1))?;
                    let local = match f.args.get(2) {
                        Some(Expr::Literal(ScalarValue::Boolean(Some(b)), _)) => *b,
                        _ => constant("set_config", "is_local", f.args.get(2))? == "true",
                    };
                    let shown = vars
                        .set_scoped(&name, &value, local)
                        .map_err(session_error)?;
                    Ok(Transformed::yes(lit(shown)))
                })
            })
        })
        .map_err(query_error)?
        .data;
    let setting = |e: Expr| -> datafusion::common::Result<Transformed<Expr>> {
        let Expr::ScalarFunction(f) = &e else {
            return Ok(Transformed::no(e));
        };
        match f.name() {
            // Who the session is: its user, and the privilege checks that
            // default to it.
            "current_user" | "session_user" | "current_role" => {
                return Ok(Transformed::yes(lit(vars.user().to_owned())))
            }
            "has_table_privilege" if f.args.len() == 2 => {
                let mut args = vec![lit(vars.user().to_owned())];
                args.extend(f.args.iter().cloned());
                return Ok(Transformed::yes(Expr::ScalarFunction(
                    datafusion::logical_expr::expr::ScalarFunction::new_udf(f.func.clone(), args),
                )));
            }
            "current_setting" => {}
            _ => return Ok(Transformed::no(e)),
        }
        let missing_ok = matches!(
            f.args.get(1),
            Some(Expr::Literal(ScalarValue::Boolean(Some(true)), _))
        );
        let Some(name) = f.args.first().and_then(literal_text) else {
            // A name per row (psql's `\dconfig` reads pg_settings' names):
            // a CASE over every setting of the session.
            let Some(arg) = f.args.first().cloned() else {
                return Ok(Transformed::no(e));
            };
            let unknown = if missing_ok {
                lit(ScalarValue::Utf8(None))
            } else {
                Expr::ScalarFunction(datafusion::logical_expr::expr::ScalarFunction::new_udf(
                    Arc::new(functions::unknown_setting()),
                    vec![arg.clone()],
                ))
            };
            let when_then = vars
                .show_all()
                .into_iter()
                .map(|r| {
                    (
                        Box::new(lit(r.name.to_ascii_lowercase())),
                        Box::new(lit(r.setting)),
                    )
                })
                .collect();
            return Ok(Transformed::yes(Expr::Case(
                datafusion::logical_expr::expr::Case::new(
                    Some(Box::new(datafusion::functions::expr_fn::lower(arg))),
                    when_then,
                    Some(Box::new(unknown)),
                ),
            )));
        };
        match vars.get(&name) {
            Ok(value) => Ok(Transformed::yes(lit(value))),
            Err(_) if missing_ok => Ok(Transformed::yes(lit(ScalarValue::Utf8(None)))),
            Err(e) => Err(session_error(e)),
        }
    };
    plan.transform_up_with_subqueries(|p| p.map_expressions(|e| e.transform_up(setting)))
        .map(|t| t.data)
        .map_err(query_error)
}

/// The text `e` stands for when it is a literal (a bound parameter is one
/// by now), under any casts.
fn literal_text(e: &datafusion::logical_expr::Expr) -> Option<String> {
    use datafusion::logical_expr::Expr;
    match e {
        Expr::Literal(v, _) => v.try_as_str().flatten().map(str::to_owned),
        Expr::Cast(c) => literal_text(&c.expr),
        Expr::TryCast(c) => literal_text(&c.expr),
        Expr::Alias(a) => literal_text(&a.expr),
        _ => None,
    }
}

struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        // Dropping a runtime blocks; a node stops from async code.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}
