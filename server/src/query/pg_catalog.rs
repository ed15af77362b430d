//! `pg_catalog` and `information_schema`: the tables PostgreSQL clients and
//! BI tools introspect, with real rows for Eddy's objects. Each table is
//! computed from the catalog when scanned.
//!
//! What Eddy's objects are, as PostgreSQL sees them:
//! - a materialized view is a materialized view (`relkind = 'm'`) in
//!   `public`; its key is a unique index `<view>_pkey` and a primary key;
//! - a source is a foreign table (`'f'`): its rows come from outside and
//!   it cannot be read directly;
//! - a system table is a view (`'v'`) in `eddy_catalog`, and so are the
//!   tables of `pg_catalog` and `information_schema`.
//!
//! OIDs: fixed for schemas and types (PostgreSQL's own for those it has),
//! from the view id for a view and its index, constraint and row type, and
//! from a hash of the name for a source.

use common::{Column, Row, SqlType, Value};
use sqlparser::ast::ObjectName;
use std::sync::Arc;

use super::tables::{Rows, RowsTable};
use crate::catalog::CatalogState;
use crate::error::Error;
use crate::handler::Database;
use crate::session::vars::SessionVars;
use crate::system;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::{SchemaProvider, TableProvider};

pub const PG_CATALOG: &str = "pg_catalog";
pub const INFORMATION_SCHEMA: &str = "information_schema";
pub const SCHEMAS: [&str; 2] = [PG_CATALOG, INFORMATION_SCHEMA];

pub const PG_CATALOG_OID: i64 = 11;
pub const PUBLIC_OID: i64 = 2200;
pub const INFORMATION_SCHEMA_OID: i64 = 13_000;
pub const EDDY_CATALOG_OID: i64 = 16_385;
pub const DATABASE_OID: i64 = 16_384;
/// The owner of everything (PostgreSQL's bootstrap superuser).
pub const OWNER_OID: i64 = 10;
pub const OWNER: &str = "eddy";
const HEAP_AM: i64 = 2;
const BTREE_AM: i64 = 403;
const DEFAULT_COLLATION: i64 = 100;
/// The foreign-data wrapper and server every source (a foreign table, to
/// clients) belongs to: both named `kafka`.
const KAFKA_FDW_OID: i64 = 16_386;
const KAFKA_SERVER_OID: i64 = 16_387;

/// A view's oid and the three objects beside it.
pub(crate) fn view_oid(id: u64) -> i64 {
    100_000 + 4 * i64::try_from(id).unwrap_or(0)
}
fn index_oid(id: u64) -> i64 {
    view_oid(id) + 1
}
fn constraint_oid(id: u64) -> i64 {
    view_oid(id) + 2
}
fn rowtype_oid(id: u64) -> i64 {
    view_oid(id) + 3
}
/// A source's oid: stable across nodes and restarts, from its name.
fn source_oid(name: &str) -> i64 {
    let h = name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    1_000_000 + i64::try_from(h % 1_000_000_000).unwrap_or(0)
}
/// A catalog table's oid, by its position in [`TABLES`] (system tables
/// after them).
fn catalog_table_oid(i: usize) -> i64 {
    12_000 + i64::try_from(i).unwrap_or(0)
}

/// A PostgreSQL built-in type: oid, name, length, category, element (for
/// an array), array type, and the name `format_type` gives it.
pub struct PgType {
    pub oid: i64,
    pub name: &'static str,
    pub len: i16,
    pub category: &'static str,
    pub elem: i64,
    pub array: i64,
    pub display: &'static str,
}

macro_rules! types {
    ($(($oid:expr, $name:expr, $len:expr, $cat:expr, $elem:expr, $array:expr, $display:expr)),* $(,)?) => {
        &[$(PgType { oid: $oid, name: $name, len: $len, category: $cat, elem: $elem, array: $array, display: $display }),*]
    };
}

/// Every built-in type a client may meet.
pub static TYPES: &[PgType] = types![
    (16, "bool", 1, "B", 0, 1000, "boolean"),
    (17, "bytea", -1, "U", 0, 1001, "bytea"),
    (18, "char", 1, "Z", 0, 1002, "\"char\""),
    (19, "name", 64, "S", 0, 1003, "name"),
    (20, "int8", 8, "N", 0, 1016, "bigint"),
    (21, "int2", 2, "N", 0, 1005, "smallint"),
    (22, "int2vector", -1, "A", 21, 1006, "int2vector"),
    (23, "int4", 4, "N", 0, 1007, "integer"),
    (24, "regproc", 4, "N", 0, 1008, "regproc"),
    (25, "text", -1, "S", 0, 1009, "text"),
    (26, "oid", 4, "N", 0, 1028, "oid"),
    (30, "oidvector", -1, "A", 26, 1013, "oidvector"),
    (114, "json", -1, "U", 0, 199, "json"),
    (700, "float4", 4, "N", 0, 1021, "real"),
    (701, "float8", 8, "N", 0, 1022, "double precision"),
    (705, "unknown", -2, "X", 0, 0, "unknown"),
    (1042, "bpchar", -1, "S", 0, 1014, "character"),
    (1043, "varchar", -1, "S", 0, 1015, "character varying"),
    (1082, "date", 4, "D", 0, 1182, "date"),
    (1083, "time", 8, "D", 0, 1183, "time without time zone"),
    (
        1114,
        "timestamp",
        8,
        "D",
        0,
        1115,
        "timestamp without time zone"
    ),
    (
        1184,
        "timestamptz",
        8,
        "D",
        0,
        1185,
        "timestamp with time zone"
    ),
    (1186, "interval", 16, "T", 0, 1187, "interval"),
    (1266, "timetz", 12, "D", 0, 1270, "time with time zone"),
    (1700, "numeric", -1, "N", 0, 1231, "numeric"),
    (2205, "regclass", 4, "N", 0, 2210, "regclass"),
    (2206, "regtype", 4, "N", 0, 2211, "regtype"),
    (2249, "record", -1, "P", 0, 2287, "record"),
    (2278, "void", 4, "P", 0, 0, "void"),
    (2950, "uuid", 16, "U", 0, 2951, "uuid"),
    (3802, "jsonb", -1, "U", 0, 3807, "jsonb"),
    (1000, "_bool", -1, "A", 16, 0, "boolean[]"),
    (1001, "_bytea", -1, "A", 17, 0, "bytea[]"),
    (1002, "_char", -1, "A", 18, 0, "\"char\"[]"),
    (1003, "_name", -1, "A", 19, 0, "name[]"),
    (1005, "_int2", -1, "A", 21, 0, "smallint[]"),
    (1006, "_int2vector", -1, "A", 22, 0, "int2vector[]"),
    (1007, "_int4", -1, "A", 23, 0, "integer[]"),
    (1008, "_regproc", -1, "A", 24, 0, "regproc[]"),
    (1009, "_text", -1, "A", 25, 0, "text[]"),
    (1013, "_oidvector", -1, "A", 30, 0, "oidvector[]"),
    (1014, "_bpchar", -1, "A", 1042, 0, "character[]"),
    (1015, "_varchar", -1, "A", 1043, 0, "character varying[]"),
    (1016, "_int8", -1, "A", 20, 0, "bigint[]"),
    (1021, "_float4", -1, "A", 700, 0, "real[]"),
    (1022, "_float8", -1, "A", 701, 0, "double precision[]"),
    (1028, "_oid", -1, "A", 26, 0, "oid[]"),
    (
        1115,
        "_timestamp",
        -1,
        "A",
        1114,
        0,
        "timestamp without time zone[]"
    ),
    (1182, "_date", -1, "A", 1082, 0, "date[]"),
    (1183, "_time", -1, "A", 1083, 0, "time without time zone[]"),
    (
        1185,
        "_timestamptz",
        -1,
        "A",
        1184,
        0,
        "timestamp with time zone[]"
    ),
    (1187, "_interval", -1, "A", 1186, 0, "interval[]"),
    (1231, "_numeric", -1, "A", 1700, 0, "numeric[]"),
    (1270, "_timetz", -1, "A", 1266, 0, "time with time zone[]"),
    (199, "_json", -1, "A", 114, 0, "json[]"),
    (2210, "_regclass", -1, "A", 2205, 0, "regclass[]"),
    (2211, "_regtype", -1, "A", 2206, 0, "regtype[]"),
    (2287, "_record", -1, "A", 2249, 0, "record[]"),
    (2951, "_uuid", -1, "A", 2950, 0, "uuid[]"),
    (3807, "_jsonb", -1, "A", 3802, 0, "jsonb[]"),
];

pub fn type_by_oid(oid: i64) -> Option<&'static PgType> {
    TYPES.iter().find(|t| t.oid == oid)
}

/// The type a name given to `::regtype` or `to_regtype` means: its SQL
/// spelling (`integer`, `double precision`, `int4`, `varchar(10)`, `text[]`).
pub fn type_by_name(name: &str) -> Option<&'static PgType> {
    let name = name.trim().to_ascii_lowercase();
    let name = name.strip_prefix("pg_catalog.").unwrap_or(&name);
    let (base, array) = match name.strip_suffix("[]") {
        Some(b) => (b.trim(), true),
        None => (name, false),
    };
    let base = base.split('(').next().unwrap_or(base).trim();
    let canonical = match base {
        "boolean" => "bool",
        "smallint" => "int2",
        "integer" | "int" => "int4",
        "bigint" => "int8",
        "real" => "float4",
        "double precision" | "float" => "float8",
        "decimal" => "numeric",
        "character varying" => "varchar",
        "character" => "bpchar",
        "timestamp without time zone" => "timestamp",
        "timestamp with time zone" => "timestamptz",
        "time without time zone" => "time",
        "time with time zone" => "timetz",
        other => other,
    };
    let t = TYPES
        .iter()
        .find(|t| t.name == canonical || t.display == canonical)?;
    if array {
        type_by_oid(t.array)
    } else {
        Some(t)
    }
}

/// `format_type(oid, typmod)`.
pub fn format_type(oid: i64, typmod: Option<i64>) -> Option<String> {
    let t = type_by_oid(oid)?;
    let typmod = typmod.filter(|m| *m >= 0);
    Some(match (t.name, typmod) {
        ("varchar" | "bpchar", Some(m)) => format!("{}({})", t.display, m - 4),
        ("numeric", Some(m)) => format!("numeric({},{})", (m - 4) >> 16, (m - 4) & 0xffff),
        _ => t.display.to_owned(),
    })
}

/// The PostgreSQL type oid and typmod of an Eddy column.
fn column_type(c: &Column) -> (i64, i64) {
    let oid = i64::from(c.ty.pg_oid());
    let typmod = match (c.ty, c.typmod) {
        (SqlType::Varchar(Some(n)), _) => i64::from(n) + 4,
        (SqlType::Numeric, Some(t)) => ((i64::from(t.precision) << 16) | i64::from(t.scale)) + 4,
        _ => -1,
    };
    (oid, typmod)
}

/// The table of `schema` named `name`, if there is one.
pub fn schema(name: &str) -> Option<Arc<dyn SchemaProvider>> {
    SCHEMAS.contains(&name).then(|| {
        Arc::new(PgSchema {
            schema: if name == PG_CATALOG {
                PG_CATALOG
            } else {
                INFORMATION_SCHEMA
            },
        }) as Arc<dyn SchemaProvider>
    })
}

/// A `pg_catalog` table by its unqualified name (PostgreSQL searches
/// `pg_catalog` before anything else).
pub fn table(name: &str) -> Option<Arc<dyn TableProvider>> {
    lookup(PG_CATALOG, name)
}

/// Whether `[pg_catalog.]name` is a catalog table with no rows in Eddy
/// by construction (see [`PgTable::always_empty`]).
pub fn always_empty(name: &ObjectName) -> bool {
    let parts: Vec<String> = name
        .0
        .iter()
        .filter_map(|p| p.as_ident().map(|i| i.value.to_ascii_lowercase()))
        .collect();
    match parts.as_slice() {
        [schema, table] if schema == PG_CATALOG => EMPTY.contains(&table.as_str()),
        [table] => EMPTY.contains(&table.as_str()),
        _ => false,
    }
}

/// Whether `column` is one of the catalog's array columns that no row of
/// Eddy's ever sets (storage options, access lists: Eddy has neither), so
/// that `unnest` over it has no rows.
pub fn never_set(column: &str) -> bool {
    NEVER_SET.contains(&column.to_ascii_lowercase().as_str())
}

const NEVER_SET: &[&str] = &[
    "reloptions",
    "attoptions",
    "attfdwoptions",
    "relacl",
    "attacl",
    "nspacl",
    "typacl",
    "datacl",
    "spcoptions",
    "spcacl",
    "ftoptions",
    "srvoptions",
    "srvacl",
    "fdwoptions",
    "fdwacl",
];

fn lookup(schema: &str, name: &str) -> Option<Arc<dyn TableProvider>> {
    let table = TABLES
        .iter()
        .position(|(s, n)| *s == schema && *n == name)?;
    let t = PgTable(table);
    Some(Arc::new(RowsTable::with_schema(
        t.schema(),
        t.columns(),
        Rows::Pg(t),
    )))
}

/// The element type of a catalog column PostgreSQL types as an array
/// (`aclitem[]`, `text[]`, `int2vector`, `oidvector`, ...); its rows hold
/// the array's text form.
fn array_element(column: &str) -> Option<DataType> {
    Some(match column {
        "nspacl" | "relacl" | "reloptions" | "attacl" | "attoptions" | "attfdwoptions"
        | "typacl" | "datacl" | "rolconfig" | "useconfig" | "proargnames" | "spcacl"
        | "spcoptions" | "ftoptions" | "srvacl" | "srvoptions" | "fdwacl" | "fdwoptions"
        | "stxkind" | "enumvals" => DataType::Utf8,
        "indkey" | "indoption" | "conkey" | "confkey" | "stxkeys" | "prattrs" => DataType::Int16,
        "indcollation" | "indclass" | "proargtypes" | "polroles" => DataType::Int64,
        _ => return None,
    })
}

#[derive(Debug)]
struct PgSchema {
    schema: &'static str,
}

#[async_trait::async_trait]
impl SchemaProvider for PgSchema {
    fn table_names(&self) -> Vec<String> {
        TABLES
            .iter()
            .filter(|(s, _)| *s == self.schema)
            .map(|(_, n)| n.to_string())
            .collect()
    }

    async fn table(
        &self,
        name: &str,
    ) -> datafusion::common::Result<Option<Arc<dyn TableProvider>>> {
        Ok(lookup(self.schema, name))
    }

    fn table_exist(&self, name: &str) -> bool {
        TABLES.iter().any(|(s, n)| *s == self.schema && *n == name)
    }
}

/// Every catalog table, by schema and name; a [`PgTable`] is an index here.
static TABLES: &[(&str, &str)] = &[
    (PG_CATALOG, "pg_namespace"),
    (PG_CATALOG, "pg_class"),
    (PG_CATALOG, "pg_attribute"),
    (PG_CATALOG, "pg_type"),
    (PG_CATALOG, "pg_index"),
    (PG_CATALOG, "pg_constraint"),
    (PG_CATALOG, "pg_database"),
    (PG_CATALOG, "pg_roles"),
    (PG_CATALOG, "pg_user"),
    (PG_CATALOG, "pg_settings"),
    (PG_CATALOG, "pg_matviews"),
    (PG_CATALOG, "pg_views"),
    (PG_CATALOG, "pg_tables"),
    (PG_CATALOG, "pg_am"),
    (PG_CATALOG, "pg_proc"),
    (PG_CATALOG, "pg_description"),
    (PG_CATALOG, "pg_inherits"),
    (PG_CATALOG, "pg_attrdef"),
    (PG_CATALOG, "pg_collation"),
    (PG_CATALOG, "pg_tablespace"),
    (PG_CATALOG, "pg_trigger"),
    (PG_CATALOG, "pg_rewrite"),
    (PG_CATALOG, "pg_extension"),
    (PG_CATALOG, "pg_enum"),
    (PG_CATALOG, "pg_range"),
    (PG_CATALOG, "pg_depend"),
    (PG_CATALOG, "pg_foreign_table"),
    (PG_CATALOG, "pg_foreign_server"),
    (PG_CATALOG, "pg_foreign_data_wrapper"),
    (PG_CATALOG, "pg_policy"),
    (PG_CATALOG, "pg_statistic_ext"),
    (PG_CATALOG, "pg_publication"),
    (PG_CATALOG, "pg_publication_rel"),
    (PG_CATALOG, "pg_publication_namespace"),
    (PG_CATALOG, "pg_sequence"),
    (PG_CATALOG, "pg_auth_members"),
    (PG_CATALOG, "pg_opclass"),
    (INFORMATION_SCHEMA, "schemata"),
    (INFORMATION_SCHEMA, "tables"),
    (INFORMATION_SCHEMA, "columns"),
    (INFORMATION_SCHEMA, "views"),
    (INFORMATION_SCHEMA, "table_constraints"),
    (INFORMATION_SCHEMA, "key_column_usage"),
];

/// One table of [`TABLES`].
#[derive(Debug, Clone, Copy)]
pub struct PgTable(usize);

fn cols(list: &[(&str, SqlType)]) -> Vec<Column> {
    list.iter().map(|(n, t)| Column::new(*n, *t)).collect()
}

fn int(i: impl Into<i64>) -> Value {
    Value::Int(i.into())
}
fn text(s: impl Into<String>) -> Value {
    Value::Text(s.into())
}
fn flag(b: bool) -> Value {
    Value::Bool(b)
}
const NULL: Value = Value::Null;

/// A relation as `pg_class` lists it.
struct Relation {
    oid: i64,
    name: String,
    namespace: i64,
    kind: &'static str,
    rowtype: i64,
    am: i64,
    columns: Vec<Column>,
    /// Key columns (0-based), for a view with a key.
    key: Vec<usize>,
    /// For an index: the relation it indexes.
    indexes: Option<i64>,
    definition: Option<String>,
    owner_table: Option<u64>,
}

/// Every relation there is, in oid order of kind: views, their key
/// indexes, sources, system tables, catalog tables.
fn relations(state: &CatalogState) -> Vec<Relation> {
    let mut out = Vec::new();
    for v in state.views.values() {
        let id = v.id.0;
        out.push(Relation {
            oid: view_oid(id),
            name: v.def.name.clone(),
            namespace: PUBLIC_OID,
            kind: "m",
            rowtype: rowtype_oid(id),
            am: HEAP_AM,
            columns: v.def.columns.clone(),
            key: v.def.key_columns.clone(),
            indexes: None,
            definition: Some(v.def.sql.clone()),
            owner_table: Some(id),
        });
        if !v.def.key_columns.is_empty() {
            out.push(Relation {
                oid: index_oid(id),
                name: format!("{}_pkey", v.def.name),
                namespace: PUBLIC_OID,
                kind: "i",
                rowtype: 0,
                am: BTREE_AM,
                columns: v
                    .def
                    .key_columns
                    .iter()
                    .map(|&i| v.def.columns[i].clone())
                    .collect(),
                key: Vec::new(),
                indexes: Some(view_oid(id)),
                definition: None,
                owner_table: Some(id),
            });
        }
    }
    for s in state.sources.values() {
        out.push(Relation {
            oid: source_oid(&s.name),
            name: s.name.clone(),
            namespace: PUBLIC_OID,
            kind: "f",
            rowtype: 0,
            am: 0,
            columns: s.columns.clone(),
            key: Vec::new(),
            indexes: None,
            definition: None,
            owner_table: None,
        });
    }
    let catalog_tables = TABLES.iter().map(|(s, n)| (s.to_string(), n.to_string()));
    let system_tables = system::names().into_iter().filter_map(|n| {
        let (s, t) = n.split_once('.')?;
        Some((s.to_owned(), t.to_owned()))
    });
    for (i, (schema, name)) in catalog_tables.chain(system_tables).enumerate() {
        let columns = if schema == super::tables::EDDY_CATALOG {
            system::columns(&format!("{schema}.{name}")).unwrap_or_default()
        } else {
            TABLES
                .iter()
                .position(|(s, n)| *s == schema && *n == name)
                .map(|t| PgTable(t).columns())
                .unwrap_or_default()
        };
        out.push(Relation {
            oid: catalog_table_oid(i),
            namespace: namespace_oid(&schema),
            name,
            kind: "v",
            rowtype: 0,
            am: 0,
            columns,
            key: Vec::new(),
            indexes: None,
            definition: None,
            owner_table: None,
        });
    }
    out
}

fn namespace_oid(schema: &str) -> i64 {
    match schema {
        PG_CATALOG => PG_CATALOG_OID,
        INFORMATION_SCHEMA => INFORMATION_SCHEMA_OID,
        super::tables::EDDY_CATALOG => EDDY_CATALOG_OID,
        _ => PUBLIC_OID,
    }
}

/// The oid of schema `name`, for `::regnamespace`.
pub fn namespace_by_name(name: &str) -> Option<i64> {
    let name = name.trim().trim_matches('"');
    [
        PG_CATALOG_OID,
        PUBLIC_OID,
        INFORMATION_SCHEMA_OID,
        EDDY_CATALOG_OID,
    ]
    .into_iter()
    .find(|&o| namespace_name(o) == name)
}

fn namespace_name(oid: i64) -> &'static str {
    match oid {
        PG_CATALOG_OID => PG_CATALOG,
        INFORMATION_SCHEMA_OID => INFORMATION_SCHEMA,
        EDDY_CATALOG_OID => super::tables::EDDY_CATALOG,
        _ => "public",
    }
}

/// The view with oid `oid` (or whose index or constraint it is).
pub fn view_by_oid(state: &CatalogState, oid: i64) -> Option<&crate::catalog::CatalogView> {
    state
        .views
        .values()
        .find(|v| (view_oid(v.id.0)..=rowtype_oid(v.id.0)).contains(&oid))
        .map(|v| v.as_ref())
}

/// The oid of the role owning `r`: its creator for sources and views, the
/// bootstrap superuser for everything else.
fn relation_owner(state: &CatalogState, r: &Relation) -> i64 {
    let own = matches!(r.kind, "m" | "f") && r.namespace == PUBLIC_OID;
    own.then(|| state.owner_of(&r.name))
        .flatten()
        .and_then(|owner| state.access.role(owner))
        .map_or(OWNER_OID, |role| role.oid)
}

/// `relacl` as PostgreSQL prints it (`{owner=arwdDxt/owner,alice=r/owner}`);
/// NULL while nothing was granted (the default privileges).
fn relation_acl(state: &CatalogState, r: &Relation) -> Value {
    if !matches!(r.kind, "m" | "f") || r.namespace != PUBLIC_OID {
        return NULL;
    }
    let readers = state.access.readers(&r.name);
    if readers.is_empty() {
        return NULL;
    }
    let owner = state.owner_of(&r.name).unwrap_or(OWNER);
    let mut items = vec![format!("{owner}=arwdDxt/{owner}")];
    items.extend(
        readers
            .iter()
            .map(|(role, grantor)| format!("{role}=r/{grantor}")),
    );
    text(format!("{{{}}}", items.join(",")))
}

/// The name of the role with oid `oid`.
pub fn role_name(state: &CatalogState, oid: i64) -> Option<String> {
    state
        .access
        .roles
        .values()
        .find(|r| r.oid == oid)
        .map(|r| r.def.name.clone())
}

/// The oid of the relation `name` (optionally schema-qualified) names, for
/// `::regclass` and `to_regclass`.
pub fn relation_oid(state: &CatalogState, name: &str) -> Option<i64> {
    let name = name.trim().trim_matches('"');
    let (schema, rel) = match name.split_once('.') {
        Some((s, r)) => (Some(s.trim_matches('"')), r.trim_matches('"')),
        None => (None, name),
    };
    relations(state)
        .into_iter()
        .find(|r| r.name == rel && schema.is_none_or(|s| namespace_name(r.namespace) == s))
        .map(|r| r.oid)
}

/// The name of the relation with oid `oid`, schema-qualified outside
/// `public` and `pg_catalog` (as `::regclass` prints it).
pub fn relation_name(state: &CatalogState, oid: i64) -> Option<String> {
    relations(state)
        .into_iter()
        .find(|r| r.oid == oid)
        .map(|r| match r.namespace {
            PUBLIC_OID | PG_CATALOG_OID => r.name,
            ns => format!("{}.{}", namespace_name(ns), r.name),
        })
}

/// Whether relation `oid` is found by an unqualified name: it is in
/// `public` (the search path) or `pg_catalog`.
pub fn relation_visible(state: &CatalogState, oid: i64) -> bool {
    relations(state)
        .iter()
        .any(|r| r.oid == oid && matches!(r.namespace, PUBLIC_OID | PG_CATALOG_OID))
}

/// `pg_get_indexdef` of a view's key index.
pub fn index_definition(state: &CatalogState, oid: i64) -> Option<String> {
    let v = view_by_oid(state, oid)?;
    Some(format!(
        "CREATE UNIQUE INDEX {}_pkey ON public.{} USING btree ({})",
        v.def.name,
        v.def.name,
        key_names(&v.def.columns, &v.def.key_columns)
    ))
}

/// `pg_get_constraintdef` of a view's primary key.
pub fn constraint_definition(state: &CatalogState, oid: i64) -> Option<String> {
    let v = view_by_oid(state, oid)?;
    Some(format!(
        "PRIMARY KEY ({})",
        key_names(&v.def.columns, &v.def.key_columns)
    ))
}

fn key_names(columns: &[Column], key: &[usize]) -> String {
    key.iter()
        .map(|&i| columns[i].name.clone())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Catalog tables that have no rows in Eddy by construction: it has no
/// comments, defaults, triggers, rules, policies, extensions, enums,
/// ranges, sequences, extended statistics, publications or inheritance.
const EMPTY: &[&str] = &[
    "pg_description",
    "pg_inherits",
    "pg_attrdef",
    "pg_trigger",
    "pg_rewrite",
    "pg_extension",
    "pg_enum",
    "pg_range",
    "pg_policy",
    "pg_statistic_ext",
    "pg_publication",
    "pg_publication_rel",
    "pg_publication_namespace",
    "pg_sequence",
    "pg_auth_members",
];

impl PgTable {
    fn name(self) -> &'static str {
        TABLES[self.0].1
    }

    /// Whether the table has no rows whatever the catalog holds: a read
    /// plans it as an empty relation, so work over it (a correlated
    /// subquery per row, say) is planned away.
    pub fn always_empty(self) -> bool {
        TABLES[self.0].0 == PG_CATALOG && EMPTY.contains(&self.name())
    }

    /// The Arrow schema: the columns' types, arrays as lists.
    pub fn schema(self) -> SchemaRef {
        let base = super::convert::schema(&self.columns());
        Arc::new(Schema::new(
            base.fields()
                .iter()
                .map(|f| match array_element(f.name()) {
                    Some(element) => Field::new(
                        f.name(),
                        DataType::List(Arc::new(Field::new_list_field(element, true))),
                        true,
                    ),
                    None => f.as_ref().clone(),
                })
                .collect::<Vec<_>>(),
        ))
    }

    pub fn columns(self) -> Vec<Column> {
        use SqlType::*;
        let oid = BigInt;
        match (TABLES[self.0].0, self.name()) {
            (PG_CATALOG, "pg_namespace") => cols(&[
                ("oid", oid),
                ("nspname", Text),
                ("nspowner", oid),
                ("nspacl", Text),
            ]),
            (PG_CATALOG, "pg_class") => cols(&[
                ("oid", oid),
                ("relname", Text),
                ("relnamespace", oid),
                ("reltype", oid),
                ("reloftype", oid),
                ("relowner", oid),
                ("relam", oid),
                ("relfilenode", oid),
                ("reltablespace", oid),
                ("relpages", Integer),
                ("reltuples", Real),
                ("relallvisible", Integer),
                ("reltoastrelid", oid),
                ("relhasindex", Boolean),
                ("relisshared", Boolean),
                ("relpersistence", Text),
                ("relkind", Text),
                ("relnatts", SmallInt),
                ("relchecks", SmallInt),
                ("relhasrules", Boolean),
                ("relhastriggers", Boolean),
                ("relhassubclass", Boolean),
                ("relrowsecurity", Boolean),
                ("relforcerowsecurity", Boolean),
                ("relispopulated", Boolean),
                ("relreplident", Text),
                ("relispartition", Boolean),
                ("relrewrite", oid),
                ("relacl", Text),
                ("reloptions", Text),
                ("relpartbound", Text),
            ]),
            (PG_CATALOG, "pg_attribute") => cols(&[
                ("attrelid", oid),
                ("attname", Text),
                ("atttypid", oid),
                ("attstattarget", Integer),
                ("attlen", SmallInt),
                ("attnum", SmallInt),
                ("attndims", Integer),
                ("attcacheoff", Integer),
                ("atttypmod", Integer),
                ("attbyval", Boolean),
                ("attalign", Text),
                ("attstorage", Text),
                ("attcompression", Text),
                ("attnotnull", Boolean),
                ("atthasdef", Boolean),
                ("atthasmissing", Boolean),
                ("attidentity", Text),
                ("attgenerated", Text),
                ("attisdropped", Boolean),
                ("attislocal", Boolean),
                ("attinhcount", Integer),
                ("attcollation", oid),
                ("attacl", Text),
                ("attoptions", Text),
                ("attfdwoptions", Text),
            ]),
            (PG_CATALOG, "pg_type") => cols(&[
                ("oid", oid),
                ("typname", Text),
                ("typnamespace", oid),
                ("typowner", oid),
                ("typlen", SmallInt),
                ("typbyval", Boolean),
                ("typtype", Text),
                ("typcategory", Text),
                ("typispreferred", Boolean),
                ("typisdefined", Boolean),
                ("typdelim", Text),
                ("typrelid", oid),
                ("typsubscript", Text),
                ("typelem", oid),
                ("typarray", oid),
                ("typinput", Text),
                ("typoutput", Text),
                ("typreceive", Text),
                ("typsend", Text),
                ("typmodin", Text),
                ("typmodout", Text),
                ("typanalyze", Text),
                ("typalign", Text),
                ("typstorage", Text),
                ("typnotnull", Boolean),
                ("typbasetype", oid),
                ("typtypmod", Integer),
                ("typndims", Integer),
                ("typcollation", oid),
                ("typdefaultbin", Text),
                ("typdefault", Text),
                ("typacl", Text),
            ]),
            (PG_CATALOG, "pg_index") => cols(&[
                ("indexrelid", oid),
                ("indrelid", oid),
                ("indnatts", SmallInt),
                ("indnkeyatts", SmallInt),
                ("indisunique", Boolean),
                ("indnullsnotdistinct", Boolean),
                ("indisprimary", Boolean),
                ("indisexclusion", Boolean),
                ("indimmediate", Boolean),
                ("indisclustered", Boolean),
                ("indisvalid", Boolean),
                ("indcheckxmin", Boolean),
                ("indisready", Boolean),
                ("indislive", Boolean),
                ("indisreplident", Boolean),
                ("indkey", Text),
                ("indcollation", Text),
                ("indclass", Text),
                ("indoption", Text),
                ("indexprs", Text),
                ("indpred", Text),
            ]),
            (PG_CATALOG, "pg_constraint") => cols(&[
                ("oid", oid),
                ("conname", Text),
                ("connamespace", oid),
                ("contype", Text),
                ("condeferrable", Boolean),
                ("condeferred", Boolean),
                ("convalidated", Boolean),
                ("conrelid", oid),
                ("contypid", oid),
                ("conindid", oid),
                ("conparentid", oid),
                ("confrelid", oid),
                ("confupdtype", Text),
                ("confdeltype", Text),
                ("confmatchtype", Text),
                ("conislocal", Boolean),
                ("coninhcount", Integer),
                ("connoinherit", Boolean),
                ("conkey", Text),
                ("confkey", Text),
                ("conbin", Text),
            ]),
            (PG_CATALOG, "pg_database") => cols(&[
                ("oid", oid),
                ("datname", Text),
                ("datdba", oid),
                ("encoding", Integer),
                ("datlocprovider", Text),
                ("datistemplate", Boolean),
                ("datallowconn", Boolean),
                ("datconnlimit", Integer),
                ("datfrozenxid", oid),
                ("datminmxid", oid),
                ("dattablespace", oid),
                ("datcollate", Text),
                ("datctype", Text),
                ("daticulocale", Text),
                ("datcollversion", Text),
                ("datacl", Text),
            ]),
            (PG_CATALOG, "pg_roles") => cols(&[
                ("oid", oid),
                ("rolname", Text),
                ("rolsuper", Boolean),
                ("rolinherit", Boolean),
                ("rolcreaterole", Boolean),
                ("rolcreatedb", Boolean),
                ("rolcanlogin", Boolean),
                ("rolreplication", Boolean),
                ("rolconnlimit", Integer),
                ("rolpassword", Text),
                ("rolvaliduntil", TimestampTz),
                ("rolbypassrls", Boolean),
                ("rolconfig", Text),
            ]),
            (PG_CATALOG, "pg_user") => cols(&[
                ("usename", Text),
                ("usesysid", oid),
                ("usecreatedb", Boolean),
                ("usesuper", Boolean),
                ("userepl", Boolean),
                ("usebypassrls", Boolean),
                ("passwd", Text),
                ("valuntil", TimestampTz),
                ("useconfig", Text),
            ]),
            (PG_CATALOG, "pg_settings") => cols(&[
                ("name", Text),
                ("setting", Text),
                ("unit", Text),
                ("category", Text),
                ("short_desc", Text),
                ("extra_desc", Text),
                ("context", Text),
                ("vartype", Text),
                ("source", Text),
                ("min_val", Text),
                ("max_val", Text),
                ("enumvals", Text),
                ("boot_val", Text),
                ("reset_val", Text),
                ("sourcefile", Text),
                ("sourceline", Integer),
                ("pending_restart", Boolean),
            ]),
            (PG_CATALOG, "pg_matviews") => cols(&[
                ("schemaname", Text),
                ("matviewname", Text),
                ("matviewowner", Text),
                ("tablespace", Text),
                ("hasindexes", Boolean),
                ("ispopulated", Boolean),
                ("definition", Text),
            ]),
            (PG_CATALOG, "pg_views") => cols(&[
                ("schemaname", Text),
                ("viewname", Text),
                ("viewowner", Text),
                ("definition", Text),
            ]),
            (PG_CATALOG, "pg_tables") => cols(&[
                ("schemaname", Text),
                ("tablename", Text),
                ("tableowner", Text),
                ("tablespace", Text),
                ("hasindexes", Boolean),
                ("hasrules", Boolean),
                ("hastriggers", Boolean),
                ("rowsecurity", Boolean),
            ]),
            (PG_CATALOG, "pg_am") => cols(&[
                ("oid", oid),
                ("amname", Text),
                ("amhandler", Text),
                ("amtype", Text),
            ]),
            (PG_CATALOG, "pg_proc") => cols(&[
                ("oid", oid),
                ("proname", Text),
                ("pronamespace", oid),
                ("proowner", oid),
                ("prolang", oid),
                ("prokind", Text),
                ("proretset", Boolean),
                ("pronargs", SmallInt),
                ("prorettype", oid),
                ("proargtypes", Text),
                ("proargnames", Text),
                ("prosrc", Text),
            ]),
            (PG_CATALOG, "pg_description") => cols(&[
                ("objoid", oid),
                ("classoid", oid),
                ("objsubid", Integer),
                ("description", Text),
            ]),
            (PG_CATALOG, "pg_inherits") => cols(&[
                ("inhrelid", oid),
                ("inhparent", oid),
                ("inhseqno", Integer),
                ("inhdetachpending", Boolean),
            ]),
            (PG_CATALOG, "pg_attrdef") => cols(&[
                ("oid", oid),
                ("adrelid", oid),
                ("adnum", SmallInt),
                ("adbin", Text),
            ]),
            (PG_CATALOG, "pg_collation") => cols(&[
                ("oid", oid),
                ("collname", Text),
                ("collnamespace", oid),
                ("collowner", oid),
                ("collprovider", Text),
                ("collisdeterministic", Boolean),
                ("collencoding", Integer),
                ("collcollate", Text),
                ("collctype", Text),
            ]),
            (PG_CATALOG, "pg_tablespace") => cols(&[
                ("oid", oid),
                ("spcname", Text),
                ("spcowner", oid),
                ("spcacl", Text),
                ("spcoptions", Text),
            ]),
            (PG_CATALOG, "pg_trigger") => cols(&[
                ("oid", oid),
                ("tgrelid", oid),
                ("tgparentid", oid),
                ("tgname", Text),
                ("tgfoid", oid),
                ("tgtype", SmallInt),
                ("tgenabled", Text),
                ("tgisinternal", Boolean),
                ("tgconstrrelid", oid),
                ("tgconstrindid", oid),
                ("tgconstraint", oid),
            ]),
            (PG_CATALOG, "pg_rewrite") => cols(&[
                ("oid", oid),
                ("rulename", Text),
                ("ev_class", oid),
                ("ev_type", Text),
                ("ev_enabled", Text),
                ("is_instead", Boolean),
            ]),
            (PG_CATALOG, "pg_extension") => cols(&[
                ("oid", oid),
                ("extname", Text),
                ("extowner", oid),
                ("extnamespace", oid),
                ("extrelocatable", Boolean),
                ("extversion", Text),
            ]),
            (PG_CATALOG, "pg_enum") => cols(&[
                ("oid", oid),
                ("enumtypid", oid),
                ("enumsortorder", Real),
                ("enumlabel", Text),
            ]),
            (PG_CATALOG, "pg_range") => cols(&[
                ("rngtypid", oid),
                ("rngsubtype", oid),
                ("rngmultitypid", oid),
            ]),
            (PG_CATALOG, "pg_depend") => cols(&[
                ("classid", oid),
                ("objid", oid),
                ("objsubid", Integer),
                ("refclassid", oid),
                ("refobjid", oid),
                ("refobjsubid", Integer),
                ("deptype", Text),
            ]),
            (PG_CATALOG, "pg_foreign_server") => cols(&[
                ("oid", oid),
                ("srvname", Text),
                ("srvowner", oid),
                ("srvfdw", oid),
                ("srvtype", Text),
                ("srvversion", Text),
                ("srvacl", Text),
                ("srvoptions", Text),
            ]),
            (PG_CATALOG, "pg_foreign_data_wrapper") => cols(&[
                ("oid", oid),
                ("fdwname", Text),
                ("fdwowner", oid),
                ("fdwhandler", oid),
                ("fdwvalidator", oid),
                ("fdwacl", Text),
                ("fdwoptions", Text),
            ]),
            (PG_CATALOG, "pg_foreign_table") => {
                cols(&[("ftrelid", oid), ("ftserver", oid), ("ftoptions", Text)])
            }
            (PG_CATALOG, "pg_policy") => cols(&[
                ("oid", oid),
                ("polname", Text),
                ("polrelid", oid),
                ("polcmd", Text),
                ("polpermissive", Boolean),
                ("polroles", Text),
                ("polqual", Text),
                ("polwithcheck", Text),
            ]),
            (PG_CATALOG, "pg_statistic_ext") => cols(&[
                ("oid", oid),
                ("stxrelid", oid),
                ("stxname", Text),
                ("stxnamespace", oid),
                ("stxowner", oid),
                ("stxstattarget", Integer),
                ("stxkeys", Text),
                ("stxkind", Text),
            ]),
            (PG_CATALOG, "pg_publication") => cols(&[
                ("oid", oid),
                ("pubname", Text),
                ("pubowner", oid),
                ("puballtables", Boolean),
                ("pubinsert", Boolean),
                ("pubupdate", Boolean),
                ("pubdelete", Boolean),
                ("pubtruncate", Boolean),
                ("pubviaroot", Boolean),
            ]),
            (PG_CATALOG, "pg_publication_rel") => cols(&[
                ("oid", oid),
                ("prpubid", oid),
                ("prrelid", oid),
                ("prqual", Text),
                ("prattrs", Text),
            ]),
            (PG_CATALOG, "pg_publication_namespace") => {
                cols(&[("oid", oid), ("pnpubid", oid), ("pnnspid", oid)])
            }
            (PG_CATALOG, "pg_sequence") => cols(&[
                ("seqrelid", oid),
                ("seqtypid", oid),
                ("seqstart", BigInt),
                ("seqincrement", BigInt),
                ("seqmax", BigInt),
                ("seqmin", BigInt),
                ("seqcache", BigInt),
                ("seqcycle", Boolean),
            ]),
            (PG_CATALOG, "pg_auth_members") => cols(&[
                ("oid", oid),
                ("roleid", oid),
                ("member", oid),
                ("grantor", oid),
                ("admin_option", Boolean),
            ]),
            (PG_CATALOG, "pg_opclass") => cols(&[
                ("oid", oid),
                ("opcmethod", oid),
                ("opcname", Text),
                ("opcnamespace", oid),
                ("opcowner", oid),
                ("opcfamily", oid),
                ("opcintype", oid),
                ("opcdefault", Boolean),
                ("opckeytype", oid),
            ]),
            (_, "schemata") => cols(&[
                ("catalog_name", Text),
                ("schema_name", Text),
                ("schema_owner", Text),
                ("default_character_set_catalog", Text),
                ("default_character_set_schema", Text),
                ("default_character_set_name", Text),
                ("sql_path", Text),
            ]),
            (_, "tables") => cols(&[
                ("table_catalog", Text),
                ("table_schema", Text),
                ("table_name", Text),
                ("table_type", Text),
                ("self_referencing_column_name", Text),
                ("reference_generation", Text),
                ("user_defined_type_catalog", Text),
                ("user_defined_type_schema", Text),
                ("user_defined_type_name", Text),
                ("is_insertable_into", Text),
                ("is_typed", Text),
                ("commit_action", Text),
            ]),
            (_, "columns") => cols(&[
                ("table_catalog", Text),
                ("table_schema", Text),
                ("table_name", Text),
                ("column_name", Text),
                ("ordinal_position", Integer),
                ("column_default", Text),
                ("is_nullable", Text),
                ("data_type", Text),
                ("character_maximum_length", Integer),
                ("character_octet_length", Integer),
                ("numeric_precision", Integer),
                ("numeric_precision_radix", Integer),
                ("numeric_scale", Integer),
                ("datetime_precision", Integer),
                ("interval_type", Text),
                ("udt_catalog", Text),
                ("udt_schema", Text),
                ("udt_name", Text),
                ("is_identity", Text),
                ("is_generated", Text),
                ("is_updatable", Text),
            ]),
            (_, "views") => cols(&[
                ("table_catalog", Text),
                ("table_schema", Text),
                ("table_name", Text),
                ("view_definition", Text),
                ("check_option", Text),
                ("is_updatable", Text),
                ("is_insertable_into", Text),
            ]),
            (_, "table_constraints") => cols(&[
                ("constraint_catalog", Text),
                ("constraint_schema", Text),
                ("constraint_name", Text),
                ("table_catalog", Text),
                ("table_schema", Text),
                ("table_name", Text),
                ("constraint_type", Text),
                ("is_deferrable", Text),
                ("initially_deferred", Text),
                ("enforced", Text),
            ]),
            (_, "key_column_usage") => cols(&[
                ("constraint_catalog", Text),
                ("constraint_schema", Text),
                ("constraint_name", Text),
                ("table_catalog", Text),
                ("table_schema", Text),
                ("table_name", Text),
                ("column_name", Text),
                ("ordinal_position", Integer),
                ("position_in_unique_constraint", Integer),
            ]),
            _ => Vec::new(),
        }
    }

    /// The table's rows now, as session `vars` sees them.
    pub fn rows(self, db: &Database, vars: &SessionVars) -> Result<Vec<Row>, Error> {
        let state = db.catalog.read();
        let rels = relations(&state);
        let views = || rels.iter().filter(|r| r.kind == "m");
        let database = super::DATABASE;
        Ok(match (TABLES[self.0].0, self.name()) {
            (PG_CATALOG, "pg_namespace") => [
                PG_CATALOG_OID,
                PUBLIC_OID,
                INFORMATION_SCHEMA_OID,
                EDDY_CATALOG_OID,
            ]
            .iter()
            .map(|&o| vec![int(o), text(namespace_name(o)), int(OWNER_OID), NULL])
            .collect(),
            (PG_CATALOG, "pg_class") => rels
                .iter()
                .map(|r| {
                    vec![
                        int(r.oid),
                        text(&r.name),
                        int(r.namespace),
                        int(r.rowtype),
                        int(0),
                        int(relation_owner(&state, r)),
                        int(r.am),
                        int(if r.kind == "m" || r.kind == "i" {
                            r.oid
                        } else {
                            0
                        }),
                        int(0),
                        int(0),
                        Value::Float(-1.0),
                        int(0),
                        int(0),
                        flag(!r.key.is_empty()),
                        flag(false),
                        text("p"),
                        text(r.kind),
                        int(i64::try_from(r.columns.len()).unwrap_or(0)),
                        int(0),
                        flag(false),
                        flag(false),
                        flag(false),
                        flag(false),
                        flag(false),
                        flag(true),
                        text(if r.kind == "m" { "d" } else { "n" }),
                        flag(false),
                        int(0),
                        relation_acl(&state, r),
                        NULL,
                        NULL,
                    ]
                })
                .collect(),
            (PG_CATALOG, "pg_attribute") => rels
                .iter()
                .flat_map(|r| {
                    r.columns.iter().enumerate().map(move |(i, c)| {
                        let (ty, typmod) = column_type(c);
                        let len = type_by_oid(ty).map_or(-1, |t| t.len);
                        let key = r.key.contains(&i) || r.kind == "i";
                        vec![
                            int(r.oid),
                            text(&c.name),
                            int(ty),
                            int(-1),
                            int(len),
                            int(i64::try_from(i + 1).unwrap_or(0)),
                            int(0),
                            int(-1),
                            int(typmod),
                            flag(len > 0),
                            text(if len == 8 { "d" } else { "i" }),
                            text(if len > 0 { "p" } else { "x" }),
                            text(""),
                            flag(key),
                            flag(false),
                            flag(false),
                            text(""),
                            text(""),
                            flag(false),
                            flag(true),
                            int(0),
                            int(if c.ty.is_text() { DEFAULT_COLLATION } else { 0 }),
                            NULL,
                            NULL,
                            NULL,
                        ]
                    })
                })
                .collect(),
            (PG_CATALOG, "pg_type") => {
                let mut rows: Vec<Row> = TYPES
                    .iter()
                    .map(|t| {
                        let array = t.category == "A";
                        let pseudo = t.category == "P" || t.name == "unknown";
                        vec![
                            int(t.oid),
                            text(t.name),
                            int(PG_CATALOG_OID),
                            int(OWNER_OID),
                            int(t.len),
                            flag((1..=8).contains(&t.len)),
                            text(if pseudo { "p" } else { "b" }),
                            text(t.category),
                            flag(matches!(
                                t.name,
                                "bool" | "float8" | "text" | "timestamptz" | "oid"
                            )),
                            flag(true),
                            text(","),
                            int(0),
                            text(if array {
                                "array_subscript_handler"
                            } else {
                                "-"
                            }),
                            int(t.elem),
                            int(t.array),
                            text(if array {
                                "array_in".into()
                            } else {
                                format!("{}in", t.name)
                            }),
                            text(if array {
                                "array_out".into()
                            } else {
                                format!("{}out", t.name)
                            }),
                            text(if array {
                                "array_recv".into()
                            } else {
                                format!("{}recv", t.name)
                            }),
                            text(if array {
                                "array_send".into()
                            } else {
                                format!("{}send", t.name)
                            }),
                            text("-"),
                            text("-"),
                            text("-"),
                            text(if t.len == 8 { "d" } else { "i" }),
                            text(if t.len > 0 { "p" } else { "x" }),
                            flag(false),
                            int(0),
                            int(-1),
                            int(0),
                            int(
                                if matches!(t.name, "text" | "varchar" | "bpchar" | "name") {
                                    DEFAULT_COLLATION
                                } else {
                                    0
                                },
                            ),
                            NULL,
                            NULL,
                            NULL,
                        ]
                    })
                    .collect();
                // Each view's row type, as PostgreSQL gives every relation one.
                for r in views() {
                    let mut row = rows[0].clone();
                    row[0] = int(r.rowtype);
                    row[1] = text(&r.name);
                    row[2] = int(r.namespace);
                    row[4] = int(-1);
                    row[5] = flag(false);
                    row[6] = text("c");
                    row[7] = text("C");
                    row[8] = flag(false);
                    row[11] = int(r.oid);
                    row[12] = text("-");
                    row[13] = int(0);
                    row[14] = int(0);
                    row[15] = text("record_in");
                    row[16] = text("record_out");
                    row[17] = text("record_recv");
                    row[18] = text("record_send");
                    row[22] = text("d");
                    row[23] = text("x");
                    rows.push(row);
                }
                rows
            }
            (PG_CATALOG, "pg_index") => rels
                .iter()
                .filter_map(|r| {
                    let table = r.indexes?;
                    let parent = rels.iter().find(|p| p.oid == table)?;
                    let keys = parent
                        .key
                        .iter()
                        .map(|k| (k + 1).to_string())
                        .collect::<Vec<_>>();
                    let n = i64::try_from(keys.len()).unwrap_or(0);
                    Some(vec![
                        int(r.oid),
                        int(table),
                        int(n),
                        int(n),
                        flag(true),
                        flag(false),
                        flag(true),
                        flag(false),
                        flag(true),
                        flag(false),
                        flag(true),
                        flag(false),
                        flag(true),
                        flag(true),
                        flag(false),
                        text(keys.join(" ")),
                        text(vec!["0"; keys.len()].join(" ")),
                        text(vec!["0"; keys.len()].join(" ")),
                        text(vec!["0"; keys.len()].join(" ")),
                        NULL,
                        NULL,
                    ])
                })
                .collect(),
            (PG_CATALOG, "pg_constraint") => views()
                .filter(|r| !r.key.is_empty())
                .filter_map(|r| {
                    let id = r.owner_table?;
                    let keys = r
                        .key
                        .iter()
                        .map(|k| (k + 1).to_string())
                        .collect::<Vec<_>>();
                    Some(vec![
                        int(constraint_oid(id)),
                        text(format!("{}_pkey", r.name)),
                        int(PUBLIC_OID),
                        text("p"),
                        flag(false),
                        flag(false),
                        flag(true),
                        int(r.oid),
                        int(0),
                        int(index_oid(id)),
                        int(0),
                        int(0),
                        text(" "),
                        text(" "),
                        text(" "),
                        flag(true),
                        int(0),
                        flag(true),
                        text(format!("{{{}}}", keys.join(","))),
                        NULL,
                        NULL,
                    ])
                })
                .collect(),
            (PG_CATALOG, "pg_database") => vec![vec![
                int(DATABASE_OID),
                text(database),
                int(OWNER_OID),
                int(6),
                text("c"),
                flag(false),
                flag(true),
                int(-1),
                int(0),
                int(0),
                int(1663),
                text("C.UTF-8"),
                text("C.UTF-8"),
                NULL,
                NULL,
                NULL,
            ]],
            (PG_CATALOG, "pg_roles") => state
                .access
                .roles
                .values()
                .map(|r| {
                    let s = r.def.superuser;
                    vec![
                        int(r.oid),
                        text(&r.def.name),
                        flag(s),
                        flag(true),
                        flag(s),
                        flag(s),
                        flag(r.def.login),
                        flag(s),
                        int(-1),
                        // Never the verifier: PostgreSQL shows this too.
                        text("********"),
                        NULL,
                        flag(s),
                        NULL,
                    ]
                })
                .collect(),
            (PG_CATALOG, "pg_user") => state
                .access
                .roles
                .values()
                .filter(|r| r.def.login)
                .map(|r| {
                    let s = r.def.superuser;
                    vec![
                        text(&r.def.name),
                        int(r.oid),
                        flag(s),
                        flag(s),
                        flag(s),
                        flag(s),
                        text("********"),
                        NULL,
                        NULL,
                    ]
                })
                .collect(),
            (PG_CATALOG, "pg_settings") => vars
                .show_all()
                .into_iter()
                .map(|s| {
                    vec![
                        text(s.name),
                        text(s.setting.clone()),
                        NULL,
                        text("Eddy"),
                        text(s.description),
                        NULL,
                        text("user"),
                        text("string"),
                        text("session"),
                        NULL,
                        NULL,
                        NULL,
                        text(s.setting.clone()),
                        text(s.setting),
                        NULL,
                        NULL,
                        flag(false),
                    ]
                })
                .collect(),
            (PG_CATALOG, "pg_matviews") => views()
                .map(|r| {
                    vec![
                        text("public"),
                        text(&r.name),
                        text(OWNER),
                        NULL,
                        flag(!r.key.is_empty()),
                        flag(true),
                        text(r.definition.clone().unwrap_or_default()),
                    ]
                })
                .collect(),
            (PG_CATALOG, "pg_views") => rels
                .iter()
                .filter(|r| r.kind == "v")
                .map(|r| {
                    vec![
                        text(namespace_name(r.namespace)),
                        text(&r.name),
                        text(OWNER),
                        NULL,
                    ]
                })
                .collect(),
            (PG_CATALOG, "pg_am") => vec![
                vec![
                    int(HEAP_AM),
                    text("heap"),
                    text("heap_tableam_handler"),
                    text("t"),
                ],
                vec![int(BTREE_AM), text("btree"), text("bthandler"), text("i")],
            ],
            (PG_CATALOG, "pg_collation") => vec![vec![
                int(DEFAULT_COLLATION),
                text("default"),
                int(PG_CATALOG_OID),
                int(OWNER_OID),
                text("d"),
                flag(true),
                int(-1),
                NULL,
                NULL,
            ]],
            (PG_CATALOG, "pg_tablespace") => vec![vec![
                int(1663),
                text("pg_default"),
                int(OWNER_OID),
                NULL,
                NULL,
            ]],
            (PG_CATALOG, "pg_foreign_table") => rels
                .iter()
                .filter(|r| r.kind == "f")
                .map(|r| vec![int(r.oid), int(KAFKA_SERVER_OID), NULL])
                .collect(),
            (PG_CATALOG, "pg_foreign_server") => vec![vec![
                int(KAFKA_SERVER_OID),
                text("kafka"),
                int(OWNER_OID),
                int(KAFKA_FDW_OID),
                NULL,
                NULL,
                NULL,
                NULL,
            ]],
            (PG_CATALOG, "pg_foreign_data_wrapper") => vec![vec![
                int(KAFKA_FDW_OID),
                text("kafka"),
                int(OWNER_OID),
                int(0),
                int(0),
                NULL,
                NULL,
            ]],
            (PG_CATALOG, "pg_proc") => super::functions::NAMES
                .iter()
                .enumerate()
                .map(|(i, name)| {
                    vec![
                        int(20_000 + i64::try_from(i).unwrap_or(0)),
                        text(*name),
                        int(PG_CATALOG_OID),
                        int(OWNER_OID),
                        int(12),
                        text("f"),
                        flag(false),
                        int(0),
                        int(25),
                        text(""),
                        NULL,
                        text(*name),
                    ]
                })
                .collect(),
            (_, "schemata") => ["pg_catalog", "public", "information_schema", "eddy_catalog"]
                .iter()
                .map(|s| {
                    vec![
                        text(database),
                        text(*s),
                        text(OWNER),
                        NULL,
                        NULL,
                        NULL,
                        NULL,
                    ]
                })
                .collect(),
            // Materialized views are not in information_schema, as in
            // PostgreSQL; system tables are views.
            (_, "tables") => rels
                .iter()
                .filter(|r| matches!(r.kind, "v" | "f"))
                .map(|r| {
                    vec![
                        text(database),
                        text(namespace_name(r.namespace)),
                        text(&r.name),
                        text(if r.kind == "f" { "FOREIGN" } else { "VIEW" }),
                        NULL,
                        NULL,
                        NULL,
                        NULL,
                        NULL,
                        text("NO"),
                        text("NO"),
                        NULL,
                    ]
                })
                .collect(),
            (_, "columns") => rels
                .iter()
                .filter(|r| matches!(r.kind, "v" | "f"))
                .flat_map(|r| {
                    r.columns.iter().enumerate().map(move |(i, c)| {
                        let (ty, typmod) = column_type(c);
                        let t = type_by_oid(ty);
                        let (precision, radix, scale) = match c.ty {
                            SqlType::SmallInt => (int(16), int(2), int(0)),
                            SqlType::Integer => (int(32), int(2), int(0)),
                            SqlType::BigInt => (int(64), int(2), int(0)),
                            SqlType::Real => (int(24), int(2), NULL),
                            SqlType::Double => (int(53), int(2), NULL),
                            SqlType::Numeric => match c.typmod {
                                Some(t) => (int(t.precision), int(10), int(t.scale)),
                                None => (NULL, int(10), NULL),
                            },
                            _ => (NULL, NULL, NULL),
                        };
                        vec![
                            text(database),
                            text(namespace_name(r.namespace)),
                            text(&r.name),
                            text(&c.name),
                            int(i64::try_from(i + 1).unwrap_or(0)),
                            NULL,
                            text("YES"),
                            text(t.map_or("text", |t| t.display)),
                            if typmod > 0 && c.ty.is_text() {
                                int(typmod - 4)
                            } else {
                                NULL
                            },
                            if c.ty.is_text() {
                                int(1_073_741_824)
                            } else {
                                NULL
                            },
                            precision,
                            radix,
                            scale,
                            if matches!(
                                c.ty,
                                SqlType::Date | SqlType::Timestamp | SqlType::TimestampTz
                            ) {
                                int(if c.ty == SqlType::Date { 0 } else { 6 })
                            } else {
                                NULL
                            },
                            NULL,
                            text(database),
                            text(PG_CATALOG),
                            text(t.map_or("text", |t| t.name)),
                            text("NO"),
                            text("NEVER"),
                            text("NO"),
                        ]
                    })
                })
                .collect(),
            (_, "views") => rels
                .iter()
                .filter(|r| r.kind == "v")
                .map(|r| {
                    vec![
                        text(database),
                        text(namespace_name(r.namespace)),
                        text(&r.name),
                        NULL,
                        text("NONE"),
                        text("NO"),
                        text("NO"),
                    ]
                })
                .collect(),
            _ => Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_catalog_table_has_columns() {
        for (i, (s, n)) in TABLES.iter().enumerate() {
            assert!(!PgTable(i).columns().is_empty(), "{s}.{n}");
        }
    }

    #[test]
    fn types_are_named_as_format_type_names_them() {
        assert_eq!(format_type(23, None).as_deref(), Some("integer"));
        assert_eq!(
            format_type(1043, Some(14)).as_deref(),
            Some("character varying(10)")
        );
        assert_eq!(
            format_type(1700, Some((10 << 16 | 2) + 4)).as_deref(),
            Some("numeric(10,2)")
        );
        assert_eq!(type_by_name("double precision").map(|t| t.oid), Some(701));
        assert_eq!(type_by_name("int4").map(|t| t.oid), Some(23));
        assert_eq!(type_by_name("text[]").map(|t| t.oid), Some(1009));
        for t in TYPES {
            if t.array != 0 {
                assert_eq!(
                    type_by_oid(t.array).map(|a| a.elem),
                    Some(t.oid),
                    "{}",
                    t.name
                );
            }
        }
    }
}
