//! Eddy's relations as DataFusion tables. Names resolve against the live
//! catalog at planning time (a view another node created a moment ago is
//! there once this node's catalog has it); what a scan needs from the
//! session — its `max_staleness` and `replica_preference` — travels in the
//! [`ReadContext`] the query's session state carries.
//!
//! - `public`: every materialized view, one DataFusion partition per view
//!   partition, each read through the router from one of its replicas.
//! - `eddy_catalog`: the system tables, computed when scanned.
//! - `pg_catalog`, `information_schema`: see [`super::pg_catalog`].

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{CatalogProvider, SchemaProvider, Session, TableProvider};
use datafusion::common::{Constraint, Constraints, DataFusionError};
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown, TableType};
use datafusion::physical_plan::empty::EmptyExec;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::{PartitionStream, StreamingTableExec};
use datafusion::physical_plan::{ExecutionPlan, SendableRecordBatchStream};
use futures::TryStreamExt;
use std::fmt;
use std::sync::Arc;

use super::{convert, pushdown};
use crate::catalog::{Catalog, CatalogView};
use crate::cluster::internal::{self, Filter, Scan};
use crate::handler::{select, Database};
use crate::session::vars::SessionVars;
use crate::system;
use common::Column;

/// The schema views live in, the one unqualified names resolve to.
pub const PUBLIC: &str = "public";
pub const EDDY_CATALOG: &str = "eddy_catalog";

/// Who is reading: the node, and the session whose settings route the scan.
pub struct ReadContext {
    pub db: Arc<Database>,
    pub vars: SessionVars,
}

impl fmt::Debug for ReadContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReadContext")
            .field("node", &self.db.config.node_id)
            .finish()
    }
}

fn read_context(state: &dyn Session) -> datafusion::common::Result<Arc<ReadContext>> {
    state
        .config()
        .get_extension::<ReadContext>()
        .ok_or_else(|| DataFusionError::Internal("a read without its session".into()))
}

/// The one catalog: Eddy's schemas.
pub struct EddyCatalog {
    pub catalog: Arc<Catalog>,
}

impl fmt::Debug for EddyCatalog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EddyCatalog")
    }
}

impl CatalogProvider for EddyCatalog {
    fn schema_names(&self) -> Vec<String> {
        let mut names = vec![PUBLIC.to_owned(), EDDY_CATALOG.to_owned()];
        names.extend(super::pg_catalog::SCHEMAS.iter().map(|s| s.to_string()));
        names
    }

    fn schema(&self, name: &str) -> Option<Arc<dyn SchemaProvider>> {
        match name {
            PUBLIC => Some(Arc::new(Views {
                catalog: self.catalog.clone(),
            })),
            EDDY_CATALOG => Some(Arc::new(SystemTables)),
            other => super::pg_catalog::schema(other),
        }
    }
}

/// `public`: the materialized views. An unqualified name that is no view
/// may name a `pg_catalog` table, as PostgreSQL's search path has it.
struct Views {
    catalog: Arc<Catalog>,
}

impl fmt::Debug for Views {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("public")
    }
}

#[async_trait]
impl SchemaProvider for Views {
    fn table_names(&self) -> Vec<String> {
        self.catalog.read().views.keys().cloned().collect()
    }

    async fn table(
        &self,
        name: &str,
    ) -> datafusion::common::Result<Option<Arc<dyn TableProvider>>> {
        if let Some(view) = self.catalog.read().views.get(name) {
            return Ok(Some(Arc::new(ViewTable::new(view.as_ref().clone()))));
        }
        Ok(super::pg_catalog::table(name))
    }

    fn table_exist(&self, name: &str) -> bool {
        self.catalog.read().views.contains_key(name)
    }
}

/// A materialized view as a table: one partition per view partition.
#[derive(Debug)]
pub struct ViewTable {
    view: CatalogView,
    schema: SchemaRef,
    constraints: Constraints,
}

impl ViewTable {
    /// The view this table reads.
    pub fn view(&self) -> &CatalogView {
        &self.view
    }

    fn new(view: CatalogView) -> ViewTable {
        let schema = convert::schema(&view.def.columns);
        let constraints = if view.def.key_columns.is_empty() {
            Constraints::default()
        } else {
            Constraints::new_unverified(vec![Constraint::PrimaryKey(view.def.key_columns.clone())])
        };
        ViewTable {
            view,
            schema,
            constraints,
        }
    }
}

#[async_trait]
impl TableProvider for ViewTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn constraints(&self) -> Option<&Constraints> {
        Some(&self.constraints)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn get_table_definition(&self) -> Option<&str> {
        Some(&self.view.def.sql)
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> datafusion::common::Result<Vec<TableProviderFilterPushDown>> {
        Ok(filters
            .iter()
            .map(|f| match pushdown::filter(f, &self.schema) {
                Some(_) => TableProviderFilterPushDown::Inexact,
                None => TableProviderFilterPushDown::Unsupported,
            })
            .collect())
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> datafusion::common::Result<Arc<dyn ExecutionPlan>> {
        let ctx = read_context(state)?;
        let schema = match projection {
            Some(p) => Arc::new(self.schema.project(p)?),
            None => self.schema.clone(),
        };
        let filters: Vec<Filter> = filters
            .iter()
            .filter_map(|f| pushdown::filter(f, &self.schema))
            .collect();
        // An equality on the whole key reads one partition, with one get.
        let partitions: Vec<u32> = match internal::pinned_key(&self.view, &filters) {
            Some(key) => dataflow::read::locate(&self.view.def, &key)
                .map(|(p, _)| p.0)
                .into_iter()
                .collect(),
            None => (0..self.view.def.partitions).collect(),
        };
        if partitions.is_empty() {
            return Ok(Arc::new(EmptyExec::new(schema)));
        }
        let partitions = partitions
            .into_iter()
            .map(|p| {
                Arc::new(PartitionScan {
                    ctx: ctx.clone(),
                    view: self.view.clone(),
                    scan: Scan {
                        view: self.view.id.0,
                        max_lag_ms: 0,
                        partitions: vec![p],
                        projection: projection.cloned(),
                        filters: filters.clone(),
                        limit,
                        stages: None,
                    },
                    schema: schema.clone(),
                }) as Arc<dyn PartitionStream>
            })
            .collect();
        Ok(Arc::new(StreamingTableExec::try_new(
            schema,
            partitions,
            None,
            [],
            false,
            limit,
        )?))
    }
}

/// One partition of a view, read from the replica the router picks, with
/// the read's projection, filters and limit applied there.
struct PartitionScan {
    ctx: Arc<ReadContext>,
    view: CatalogView,
    /// `max_lag_ms` is the session's, filled in when it runs.
    scan: Scan,
    schema: SchemaRef,
}

impl fmt::Debug for PartitionScan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}[{}]", self.view.def.name, self.scan.partitions[0])
    }
}

impl PartitionStream for PartitionScan {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, _task: Arc<TaskContext>) -> SendableRecordBatchStream {
        let (ctx, view, mut scan) = (self.ctx.clone(), self.view.clone(), self.scan.clone());
        scan.max_lag_ms = select::bound_ms(&ctx.vars);
        let batches = async move {
            select::partition_batches::<datafusion::arrow::record_batch::RecordBatch>(
                &ctx.db, &view, scan, &ctx.vars,
            )
            .await
            .map(|batches| batches.map_err(|e| DataFusionError::External(Box::new(e))))
            .map_err(|e| DataFusionError::External(Box::new(e)))
        };
        Box::pin(RecordBatchStreamAdapter::new(
            self.schema.clone(),
            futures::stream::once(batches).try_flatten(),
        ))
    }
}

/// `eddy_catalog`: the system tables.
#[derive(Debug)]
struct SystemTables;

fn system_name(name: &str) -> String {
    format!("{EDDY_CATALOG}.{name}")
}

#[async_trait]
impl SchemaProvider for SystemTables {
    fn table_names(&self) -> Vec<String> {
        system::names()
            .iter()
            .filter_map(|n| n.strip_prefix("eddy_catalog."))
            .map(str::to_owned)
            .collect()
    }

    async fn table(
        &self,
        name: &str,
    ) -> datafusion::common::Result<Option<Arc<dyn TableProvider>>> {
        let full = system_name(name);
        Ok(system::columns(&full).map(|columns| {
            Arc::new(RowsTable::new(columns, Rows::System(full))) as Arc<dyn TableProvider>
        }))
    }

    fn table_exist(&self, name: &str) -> bool {
        system::columns(&system_name(name)).is_some()
    }
}

/// Where a table computed at scan time gets its rows.
#[derive(Debug, Clone)]
pub enum Rows {
    /// A system table, by its full name.
    System(String),
    /// A `pg_catalog` or `information_schema` table, from the catalog.
    Pg(super::pg_catalog::PgTable),
}

/// A table whose rows are computed when it is scanned.
#[derive(Debug)]
pub struct RowsTable {
    columns: Vec<Column>,
    schema: SchemaRef,
    rows: Rows,
}

impl RowsTable {
    pub fn new(columns: Vec<Column>, rows: Rows) -> RowsTable {
        RowsTable::with_schema(convert::schema(&columns), columns, rows)
    }

    /// Whether it has no rows whatever the catalog holds.
    pub fn always_empty(&self) -> bool {
        matches!(&self.rows, Rows::Pg(t) if t.always_empty())
    }

    /// A table whose Arrow types differ from its columns' (array columns
    /// of the catalog, held as PostgreSQL array literals).
    pub fn with_schema(schema: SchemaRef, columns: Vec<Column>, rows: Rows) -> RowsTable {
        RowsTable {
            schema,
            columns,
            rows,
        }
    }
}

#[async_trait]
impl TableProvider for RowsTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> datafusion::common::Result<Arc<dyn ExecutionPlan>> {
        let ctx = read_context(state)?;
        let rows = match &self.rows {
            Rows::System(name) => system::rows(&ctx.db, name).await,
            Rows::Pg(table) => table.rows(&ctx.db, &ctx.vars),
        }
        .map_err(|e| DataFusionError::External(Box::new(e)))?;
        let all: Vec<usize> = (0..self.columns.len()).collect();
        let batch = convert::to_batch(&self.schema, &self.columns, &all, &rows)?;
        Ok(MemorySourceConfig::try_new_exec(
            &[vec![batch]],
            self.schema.clone(),
            projection.cloned(),
        )?)
    }
}
