//! The PostgreSQL functions clients call that DataFusion does not have:
//! catalog helpers (`format_type`, `pg_get_viewdef`, `pg_table_is_visible`,
//! ...), privilege checks (`has_table_privilege` from the catalog's grants;
//! the others allow everything), and
//! session information. Each is evaluated row by row from scalars: they
//! run over catalog-sized inputs.

use datafusion::arrow::array::{Array, ArrayRef};
use datafusion::arrow::datatypes::{DataType, Field, Fields};
use datafusion::common::{DataFusionError, Result, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use super::pg_catalog::{self, OWNER};
use crate::catalog::Catalog;

/// The functions Eddy adds, as `pg_proc` lists them.
pub const NAMES: &[&str] = &[
    "current_schema",
    "current_schemas",
    "current_database",
    "current_setting",
    "set_config",
    "current_user",
    "session_user",
    "version",
    "pg_backend_pid",
    "pg_is_in_recovery",
    "pg_encoding_to_char",
    "pg_table_is_visible",
    "pg_type_is_visible",
    "pg_collation_is_visible",
    "pg_get_serial_sequence",
    "pg_function_is_visible",
    "pg_get_userbyid",
    "format_type",
    "pg_get_expr",
    "pg_get_viewdef",
    "pg_get_indexdef",
    "pg_get_constraintdef",
    "obj_description",
    "pg_get_statisticsobjdef_columns",
    "col_description",
    "shobj_description",
    "to_regtype",
    "to_regclass",
    "eddy_regclass",
    "eddy_regtype",
    "eddy_regnamespace",
    "has_table_privilege",
    "has_schema_privilege",
    "has_database_privilege",
    "has_column_privilege",
    "has_function_privilege",
    "has_any_column_privilege",
    "pg_has_role",
    "quote_ident",
    "eddy_regclass_name",
    "eddy_regtype_name",
    "pg_get_function_result",
    "pg_size_pretty",
    "pg_table_size",
    "pg_relation_size",
    "pg_total_relation_size",
    "pg_indexes_size",
    "pg_get_function_arguments",
    "pg_get_function_identity_arguments",
    "pg_get_partkeydef",
    "pg_relation_is_publishable",
    "json_build_object",
    "array_lower",
    "array_upper",
    "generate_subscripts",
    "eddy_like_pattern",
    "eddy_subscripts",
    "eddy_array_lower",
    "eddy_array_upper",
    "eddy_expandarray",
];

type Eval = dyn Fn(&[ScalarValue]) -> Result<ScalarValue> + Send + Sync;

/// A function of scalars, applied row by row.
struct RowFunction {
    name: &'static str,
    signature: Signature,
    returns: DataType,
    eval: Arc<Eval>,
}

impl fmt::Debug for RowFunction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

impl PartialEq for RowFunction {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}
impl Eq for RowFunction {}
impl Hash for RowFunction {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.name.hash(state);
    }
}

impl ScalarUDFImpl for RowFunction {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(self.returns.clone())
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let scalar = args
            .args
            .iter()
            .all(|a| matches!(a, ColumnarValue::Scalar(_)));
        let rows = if scalar { 1 } else { args.number_rows };
        let arrays: Vec<ArrayRef> = args
            .args
            .iter()
            .map(|a| a.to_array(rows))
            .collect::<Result<_>>()?;
        let mut out = Vec::with_capacity(rows);
        for i in 0..rows {
            let row = arrays
                .iter()
                .map(|a| ScalarValue::try_from_array(a, i))
                .collect::<Result<Vec<_>>>()?;
            let v = (self.eval)(&row)?;
            out.push(if v.data_type() == self.returns {
                v
            } else {
                v.cast_to(&self.returns)?
            });
        }
        if scalar {
            return Ok(ColumnarValue::Scalar(
                out.pop().unwrap_or(ScalarValue::Null),
            ));
        }
        let array = if out.is_empty() {
            datafusion::arrow::array::new_empty_array(&self.returns)
        } else {
            ScalarValue::iter_to_array(out)?
        };
        Ok(ColumnarValue::Array(array))
    }
}

/// `current_setting(name)` of a name no setting has: 42704, as
/// PostgreSQL; NULL for NULL. (Names that exist are answered before it is
/// called: see `query::session_settings`.)
pub fn unknown_setting() -> ScalarUDF {
    udf(
        "eddy_unknown_setting",
        any_args(),
        DataType::Utf8,
        |args| match text_arg(args, 0) {
            None => Ok(null_text()),
            Some(name) => Err(datafusion::common::DataFusionError::External(Box::new(
                crate::error::Error::Session(
                    crate::session::vars::VarError::Unknown { name }.into(),
                ),
            ))),
        },
    )
}

/// A function of the session's settings: replaced before a plan runs (see
/// `query::session_settings`), so it is never called.
fn session_only(name: &'static str) -> ScalarUDF {
    udf(name, any_args(), DataType::Utf8, move |_| {
        Err(datafusion::common::DataFusionError::NotImplemented(
            format!("{name} outside a session"),
        ))
    })
}

/// `has_table_privilege(user, table, privilege)` (the two-argument form
/// gets the session's user in `query::session_settings`): what the catalog's
/// grants say. `table` is a name or an oid, `user` a name or a role oid,
/// `privilege` one or more of SELECT, INSERT, ... separated by commas (true
/// when any is held). Owners and superusers hold every privilege on a
/// source or view; everyone may read the system catalogs.
fn table_privilege(
    state: &crate::catalog::CatalogState,
    args: &[ScalarValue],
) -> Result<ScalarValue> {
    use crate::error::Error;
    use common::SqlState;
    let external = |e: Error| DataFusionError::External(Box::new(e));
    if args.len() != 3 {
        return Err(external(Error::Query {
            code: SqlState::UndefinedFunction,
            message: "has_table_privilege takes (table, privilege) or (user, table, privilege)"
                .into(),
            hint: None,
        }));
    }
    let user = match (int_arg(args, 0), text_arg(args, 0)) {
        (Some(oid), _) => pg_catalog::role_name(state, oid),
        (None, name) => name,
    };
    let table = match (int_arg(args, 1), text_arg(args, 1)) {
        (Some(oid), _) => pg_catalog::relation_name(state, oid),
        (None, Some(name)) => {
            if pg_catalog::relation_oid(state, &name).is_none() {
                return Err(external(Error::Query {
                    code: SqlState::UndefinedTable,
                    message: format!("relation \"{name}\" does not exist"),
                    hint: None,
                }));
            }
            Some(name)
        }
        (None, None) => None,
    };
    let (Some(user), Some(table), Some(privileges)) = (user, table, text_arg(args, 2)) else {
        return Ok(ScalarValue::Boolean(None));
    };
    if state.access.role(&user).is_none() {
        return Err(external(crate::access::unknown_role(&user)));
    }
    let table = table.trim_matches('"');
    let table = table.strip_prefix("public.").unwrap_or(table);
    let superuser = state.access.is_superuser(&user);
    let mut held = false;
    for p in privileges.split(',') {
        let p = p.trim().to_ascii_uppercase();
        let p = p.strip_suffix(" WITH GRANT OPTION").unwrap_or(&p).trim();
        if !matches!(
            p,
            "SELECT"
                | "INSERT"
                | "UPDATE"
                | "DELETE"
                | "TRUNCATE"
                | "REFERENCES"
                | "TRIGGER"
                | "MAINTAIN"
        ) {
            return Err(external(Error::Query {
                code: SqlState::InvalidParameterValue,
                message: format!("unrecognized privilege type: \"{p}\""),
                hint: Some(
                    "Name SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES or TRIGGER.".into(),
                ),
            }));
        }
        held |= match state.owner_of(table) {
            Some(owner) if p == "SELECT" => state.access.may_select(&user, table, owner),
            Some(owner) => state.access.may_drop(&user, owner),
            None => p == "SELECT" || superuser,
        };
    }
    Ok(ScalarValue::Boolean(Some(held)))
}

fn udf(
    name: &'static str,
    signature: Signature,
    returns: DataType,
    eval: impl Fn(&[ScalarValue]) -> Result<ScalarValue> + Send + Sync + 'static,
) -> ScalarUDF {
    ScalarUDF::new_from_impl(RowFunction {
        name,
        signature,
        returns,
        eval: Arc::new(eval),
    })
}

fn text(s: impl Into<String>) -> ScalarValue {
    ScalarValue::Utf8(Some(s.into()))
}
fn null_text() -> ScalarValue {
    ScalarValue::Utf8(None)
}

/// Argument `i` as an integer (an oid, a typmod), if it is one.
fn int_arg(args: &[ScalarValue], i: usize) -> Option<i64> {
    match args.get(i)? {
        v if v.is_null() => None,
        ScalarValue::Utf8(Some(s)) | ScalarValue::LargeUtf8(Some(s)) => s.trim().parse().ok(),
        v => v.cast_to(&DataType::Int64).ok().and_then(|v| match v {
            ScalarValue::Int64(i) => i,
            _ => None,
        }),
    }
}

/// Argument 0 as an oid: a number is one, a name is looked up by `by_name`
/// (what `::regclass`, `::regtype` and `::regnamespace` accept).
fn oid_arg(args: &[ScalarValue], by_name: impl FnOnce(&str) -> Option<i64>) -> Option<i64> {
    match (int_arg(args, 0), text_arg(args, 0)) {
        (Some(oid), _) => Some(oid),
        (None, Some(name)) => by_name(&name),
        _ => None,
    }
}

/// Argument `i` as text, if it is not null.
fn text_arg(args: &[ScalarValue], i: usize) -> Option<String> {
    match args.get(i)? {
        v if v.is_null() => None,
        ScalarValue::Utf8(Some(s))
        | ScalarValue::LargeUtf8(Some(s))
        | ScalarValue::Utf8View(Some(s)) => Some(s.clone()),
        v => Some(v.to_string()),
    }
}

fn any_args() -> Signature {
    Signature::variadic_any(Volatility::Stable)
}

fn no_args() -> Signature {
    Signature::nullary(Volatility::Stable)
}

/// `quote_ident`: the name as an identifier, quoted when it has to be.
pub fn quote_ident(name: &str) -> String {
    let plain = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if plain {
        name.to_owned()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}

/// `pg_size_pretty`: bytes in the largest unit that keeps four digits,
/// rounded half up, as PostgreSQL prints them.
pub fn size_pretty(bytes: i64) -> String {
    const LIMIT: i64 = 10 * 1024;
    const LIMIT2: i64 = LIMIT * 2 - 1;
    let half_rounded = |x: i64| (x + if x < 0 { -1 } else { 1 }) / 2;
    if bytes.abs() < LIMIT {
        return format!("{bytes} bytes");
    }
    // One extra bit kept for rounding.
    let mut size = bytes >> 9;
    for unit in ["kB", "MB", "GB", "TB"] {
        if size.abs() < LIMIT2 || unit == "TB" {
            return format!("{} {unit}", half_rounded(size));
        }
        size >>= 10;
    }
    unreachable!("the loop returns at TB")
}

/// Every function Eddy adds, those needing the catalog reading `catalog`.
pub fn all(catalog: Arc<Catalog>) -> Vec<Arc<ScalarUDF>> {
    let utf8 = DataType::Utf8;
    let list = DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)));
    let int_list = DataType::List(Arc::new(Field::new_list_field(DataType::Int32, true)));
    let allowed = |name| {
        udf(name, any_args(), DataType::Boolean, |_| {
            Ok(ScalarValue::Boolean(Some(true)))
        })
    };
    let none = |name| udf(name, any_args(), DataType::Utf8, |_| Ok(null_text()));
    let cat = catalog.clone();
    let viewdef = move |args: &[ScalarValue]| {
        let state = cat.read();
        let oid = oid_arg(args, |name| pg_catalog::relation_oid(&state, name));
        Ok(match oid.and_then(|o| pg_catalog::view_by_oid(&state, o)) {
            Some(v) => text(format!(" {};", v.def.sql.trim_end_matches(';'))),
            None => null_text(),
        })
    };
    let cat = catalog.clone();
    let indexdef = move |args: &[ScalarValue]| {
        Ok(int_arg(args, 0)
            .and_then(|o| pg_catalog::index_definition(&cat.read(), o))
            .map_or_else(null_text, text))
    };
    let cat = catalog.clone();
    let constraintdef = move |args: &[ScalarValue]| {
        Ok(int_arg(args, 0)
            .and_then(|o| pg_catalog::constraint_definition(&cat.read(), o))
            .map_or_else(null_text, text))
    };
    let cat = catalog.clone();
    let regclass = move |args: &[ScalarValue]| {
        Ok(ScalarValue::Int64(oid_arg(args, |name| {
            pg_catalog::relation_oid(&cat.read(), name)
        })))
    };
    let cat = catalog.clone();
    let regclass_name = move |args: &[ScalarValue]| {
        let state = cat.read();
        Ok(match (int_arg(args, 0), text_arg(args, 0)) {
            (Some(oid), _) => {
                pg_catalog::relation_name(&state, oid).map_or_else(|| text(oid.to_string()), text)
            }
            (None, Some(name)) => text(name),
            _ => null_text(),
        })
    };
    let cat = catalog.clone();
    let userbyid = move |args: &[ScalarValue]| {
        // PostgreSQL prints an unknown oid as `unknown (OID=n)`.
        Ok(int_arg(args, 0).map_or_else(null_text, |oid| {
            text(
                pg_catalog::role_name(&cat.read(), oid)
                    .unwrap_or_else(|| format!("unknown (OID={oid})")),
            )
        }))
    };
    let cat = catalog.clone();
    let table_privilege = move |args: &[ScalarValue]| table_privilege(&cat.read(), args);
    let cat = catalog.clone();
    // Visible: in a schema of the search path (`public`) or `pg_catalog`.
    let visible = move |args: &[ScalarValue]| {
        Ok(ScalarValue::Boolean(
            int_arg(args, 0).map(|oid| pg_catalog::relation_visible(&cat.read(), oid)),
        ))
    };
    let cat = catalog;
    let to_regclass = move |args: &[ScalarValue]| {
        Ok(ScalarValue::Int64(
            text_arg(args, 0).and_then(|n| pg_catalog::relation_oid(&cat.read(), &n)),
        ))
    };
    let functions = vec![
        udf("current_schema", no_args(), utf8.clone(), |_| {
            Ok(text("public"))
        }),
        udf("current_schemas", any_args(), list.clone(), |args| {
            let implicit = matches!(args.first(), Some(ScalarValue::Boolean(Some(true))));
            let mut names = Vec::new();
            if implicit {
                names.push(text("pg_catalog"));
            }
            names.push(text("public"));
            Ok(ScalarValue::List(ScalarValue::new_list_nullable(
                &names,
                &DataType::Utf8,
            )))
        }),
        session_only("current_setting"),
        session_only("set_config"),
        udf("current_database", no_args(), utf8.clone(), |_| {
            Ok(text(super::DATABASE))
        }),
        udf("current_user", no_args(), utf8.clone(), |_| Ok(text(OWNER))),
        udf("session_user", no_args(), utf8.clone(), |_| Ok(text(OWNER))),
        udf("version", no_args(), utf8.clone(), |_| {
            Ok(text(format!(
                "PostgreSQL 15.0 (Eddy {}) on x86_64-pc-linux-gnu",
                env!("CARGO_PKG_VERSION")
            )))
        }),
        udf("pg_backend_pid", no_args(), DataType::Int32, |_| {
            Ok(ScalarValue::Int32(Some(
                i32::try_from(std::process::id()).unwrap_or(0),
            )))
        }),
        udf("pg_is_in_recovery", no_args(), DataType::Boolean, |_| {
            Ok(ScalarValue::Boolean(Some(false)))
        }),
        udf("pg_encoding_to_char", any_args(), utf8.clone(), |_| {
            Ok(text("UTF8"))
        }),
        udf(
            "pg_table_is_visible",
            any_args(),
            DataType::Boolean,
            visible,
        ),
        allowed("pg_type_is_visible"),
        allowed("pg_collation_is_visible"),
        none("pg_get_serial_sequence"),
        allowed("pg_function_is_visible"),
        udf("pg_get_userbyid", any_args(), utf8.clone(), userbyid),
        udf("format_type", any_args(), utf8.clone(), |args| {
            Ok(int_arg(args, 0)
                .and_then(|oid| pg_catalog::format_type(oid, int_arg(args, 1)))
                .map_or_else(null_text, text))
        }),
        udf("pg_get_expr", any_args(), utf8.clone(), |args| {
            Ok(text_arg(args, 0).map_or_else(null_text, text))
        }),
        udf("pg_get_viewdef", any_args(), utf8.clone(), viewdef),
        udf("pg_get_indexdef", any_args(), utf8.clone(), indexdef),
        udf(
            "pg_get_constraintdef",
            any_args(),
            utf8.clone(),
            constraintdef,
        ),
        none("obj_description"),
        none("col_description"),
        none("shobj_description"),
        none("pg_get_partkeydef"),
        none("pg_get_statisticsobjdef_columns"),
        udf("to_regtype", any_args(), DataType::Int64, |args| {
            Ok(ScalarValue::Int64(
                text_arg(args, 0)
                    .and_then(|n| pg_catalog::type_by_name(&n))
                    .map(|t| t.oid),
            ))
        }),
        udf("to_regclass", any_args(), DataType::Int64, to_regclass),
        udf("eddy_regclass", any_args(), DataType::Int64, regclass),
        udf("eddy_regtype", any_args(), DataType::Int64, |args| {
            Ok(ScalarValue::Int64(oid_arg(args, |name| {
                pg_catalog::type_by_name(name).map(|t| t.oid)
            })))
        }),
        udf(
            "eddy_regclass_name",
            any_args(),
            utf8.clone(),
            regclass_name,
        ),
        udf("eddy_regtype_name", any_args(), utf8.clone(), |args| {
            Ok(match (int_arg(args, 0), text_arg(args, 0)) {
                (Some(oid), _) => {
                    pg_catalog::format_type(oid, None).map_or_else(|| text(oid.to_string()), text)
                }
                (None, Some(name)) => text(name),
                _ => null_text(),
            })
        }),
        none("pg_get_function_result"),
        udf("pg_size_pretty", any_args(), utf8.clone(), |args| {
            Ok(int_arg(args, 0).map_or_else(null_text, |b| text(size_pretty(b))))
        }),
        // Sizes of a view's state are not known to the catalog yet.
        udf("pg_table_size", any_args(), DataType::Int64, |_| {
            Ok(ScalarValue::Int64(None))
        }),
        udf("pg_relation_size", any_args(), DataType::Int64, |_| {
            Ok(ScalarValue::Int64(None))
        }),
        udf(
            "pg_total_relation_size",
            any_args(),
            DataType::Int64,
            |_| Ok(ScalarValue::Int64(None)),
        ),
        udf("pg_indexes_size", any_args(), DataType::Int64, |_| {
            Ok(ScalarValue::Int64(None))
        }),
        none("pg_get_function_arguments"),
        none("pg_get_function_identity_arguments"),
        udf("eddy_regnamespace", any_args(), DataType::Int64, |args| {
            Ok(ScalarValue::Int64(oid_arg(
                args,
                pg_catalog::namespace_by_name,
            )))
        }),
        udf(
            "has_table_privilege",
            any_args(),
            DataType::Boolean,
            table_privilege,
        ),
        allowed("has_schema_privilege"),
        allowed("has_database_privilege"),
        allowed("has_column_privilege"),
        allowed("has_function_privilege"),
        allowed("has_any_column_privilege"),
        allowed("pg_has_role"),
        allowed("pg_relation_is_publishable"),
        udf("quote_ident", any_args(), utf8.clone(), |args| {
            Ok(text_arg(args, 0).map_or_else(null_text, |n| text(quote_ident(&n))))
        }),
        udf("json_build_object", any_args(), utf8.clone(), json_object),
        // The rewrite's forms of PostgreSQL's array functions (see
        // `rewrite::arrays`): `(array, dimension, lower bound)`.
        udf("eddy_array_lower", any_args(), DataType::Int32, |args| {
            Ok(ScalarValue::Int32(subscripts(args).map(|r| *r.start())))
        }),
        udf("eddy_array_upper", any_args(), DataType::Int32, |args| {
            Ok(ScalarValue::Int32(subscripts(args).map(|r| *r.end())))
        }),
        udf(
            "eddy_subscripts",
            any_args(),
            int_list.clone(),
            move |args| {
                if list_len(args.first().unwrap_or(&ScalarValue::Null)).is_none() {
                    return ScalarValue::try_from(&int_list);
                }
                let all: Vec<ScalarValue> = subscripts(args)
                    .into_iter()
                    .flatten()
                    .map(|i| ScalarValue::Int32(Some(i)))
                    .collect();
                Ok(ScalarValue::List(ScalarValue::new_list_nullable(
                    &all,
                    &DataType::Int32,
                )))
            },
        ),
        udf("eddy_like_pattern", any_args(), utf8, |args| {
            match (text_arg(args, 0), text_arg(args, 1)) {
                (Some(pattern), Some(escape)) => Ok(text(like_pattern(&pattern, &escape)?)),
                _ => Ok(null_text()),
            }
        }),
    ];
    functions
        .into_iter()
        .chain([ScalarUDF::new_from_impl(ExpandArray {
            signature: Signature::any(1, Volatility::Immutable),
        })])
        .map(Arc::new)
        .collect()
}

/// An error with PostgreSQL's SQLSTATE, raised from inside a function.
fn user_error(code: common::SqlState, message: &str, hint: Option<&str>) -> DataFusionError {
    DataFusionError::External(Box::new(crate::error::Error::Query {
        code,
        message: message.to_owned(),
        hint: hint.map(str::to_owned),
    }))
}

/// The length of a list value; None for NULL or a value that is no list.
fn list_len(v: &ScalarValue) -> Option<usize> {
    let array: &dyn Array = match v {
        ScalarValue::List(a) => a.as_ref(),
        ScalarValue::LargeList(a) => a.as_ref(),
        ScalarValue::FixedSizeList(a) => a.as_ref(),
        _ => return None,
    };
    if array.is_empty() || array.is_null(0) {
        return None;
    }
    Some(match v {
        ScalarValue::List(a) => a.value_length(0) as usize,
        ScalarValue::LargeList(a) => a.value_length(0) as usize,
        ScalarValue::FixedSizeList(a) => a.value_length() as usize,
        _ => return None,
    })
}

/// `(array, dimension, lower bound)`: the array's subscripts along the
/// dimension, None when it has none there (Eddy's arrays have one
/// dimension; `int2vector` and `oidvector` count from 0, others from 1).
fn subscripts(args: &[ScalarValue]) -> Option<std::ops::RangeInclusive<i32>> {
    let len = i32::try_from(list_len(args.first()?)?).ok()?;
    let lower = i32::try_from(int_arg(args, 2).unwrap_or(1)).ok()?;
    (int_arg(args, 1)? == 1 && len > 0).then(|| lower..=lower + len - 1)
}

/// `LIKE p ESCAPE e`'s pattern `p` rewritten for a backslash escape: what
/// `e` escapes gets a backslash, a backslash that `e` does not escape
/// becomes a literal one. `e` empty means no escape at all.
pub fn like_pattern(pattern: &str, escape: &str) -> Result<String> {
    let mut chars = escape.chars();
    let escape = match (chars.next(), chars.next()) {
        (None, _) => None,
        (Some(c), None) => Some(c),
        _ => {
            return Err(user_error(
                common::SqlState::InvalidEscapeSequence,
                "invalid escape string",
                Some("Escape string must be empty or one character."),
            ))
        }
    };
    let mut out = String::with_capacity(pattern.len() + 4);
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        if Some(c) == escape {
            let Some(next) = chars.next() else {
                return Err(user_error(
                    common::SqlState::InvalidEscapeSequence,
                    "LIKE pattern must not end with escape character",
                    None,
                ));
            };
            out.push('\\');
            out.push(next);
        } else if c == '\\' {
            out.push_str("\\\\");
        } else {
            out.push(c);
        }
    }
    Ok(out)
}

/// `json_build_object`'s text: `{"k" : v, ...}`, spaced as PostgreSQL
/// spaces it.
fn json_object(args: &[ScalarValue]) -> Result<ScalarValue> {
    if !args.len().is_multiple_of(2) {
        return Err(user_error(
            common::SqlState::InvalidParameterValue,
            "argument list must have even number of elements",
            Some(
                "The arguments of json_build_object() must consist of alternating keys and values.",
            ),
        ));
    }
    let mut out = String::from("{");
    for (i, pair) in args.chunks(2).enumerate() {
        if pair[0].is_null() {
            return Err(user_error(
                common::SqlState::InvalidParameterValue,
                &format!("argument {} cannot be null", 2 * i + 1),
                Some("Object keys should be text."),
            ));
        }
        let key = pair[0].to_array_of_size(1)?;
        if matches!(
            key.data_type(),
            DataType::List(_)
                | DataType::LargeList(_)
                | DataType::FixedSizeList(..)
                | DataType::Struct(_)
        ) {
            return Err(user_error(
                common::SqlState::InvalidParameterValue,
                "key value must be scalar, not array, composite, or json",
                None,
            ));
        }
        if i > 0 {
            out.push_str(", ");
        }
        match super::convert::value(&key, 0)?.to_pg_text() {
            Some(k) => json_string(&k, &mut out),
            None => out.push_str("null"),
        }
        out.push_str(" : ");
        json_value(&pair[1].to_array_of_size(1)?, 0, &mut out)?;
    }
    out.push('}');
    Ok(text(out))
}

/// Row `i` of `array` as JSON, the way PostgreSQL's `to_json` writes it.
fn json_value(array: &ArrayRef, i: usize, out: &mut String) -> Result<()> {
    use common::Value;
    use datafusion::arrow::array::AsArray;
    // A NullArray (an untyped NULL) has no null buffer.
    if array.is_null(i) || array.data_type() == &DataType::Null {
        out.push_str("null");
        return Ok(());
    }
    let elements = match array.data_type() {
        DataType::List(_) => Some(array.as_list::<i32>().value(i)),
        DataType::LargeList(_) => Some(array.as_list::<i64>().value(i)),
        DataType::FixedSizeList(..) => Some(array.as_fixed_size_list().value(i)),
        _ => None,
    };
    if let Some(elements) = elements {
        out.push('[');
        for j in 0..elements.len() {
            if j > 0 {
                out.push(',');
            }
            json_value(&elements, j, out)?;
        }
        out.push(']');
        return Ok(());
    }
    if let DataType::Struct(fields) = array.data_type() {
        let row = array.as_struct();
        out.push('{');
        for (j, field) in fields.iter().enumerate() {
            if j > 0 {
                out.push(',');
            }
            json_string(field.name(), out);
            out.push(':');
            json_value(row.column(j), i, out)?;
        }
        out.push('}');
        return Ok(());
    }
    match super::convert::value(array, i)? {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if b { "true" } else { "false" }),
        Value::Int(n) => out.push_str(&n.to_string()),
        Value::Numeric(d) => out.push_str(&d.to_string()),
        // NaN and the infinities are no JSON numbers: PostgreSQL quotes them.
        v @ Value::Float(f) => {
            let t = v.to_pg_text().unwrap_or_default();
            if f.is_finite() {
                out.push_str(&t);
            } else {
                json_string(&t, out);
            }
        }
        // ISO 8601, as `to_json` writes timestamps.
        v @ Value::Timestamp(_) => json_string(
            &v.to_pg_text().unwrap_or_default().replacen(' ', "T", 1),
            out,
        ),
        v @ Value::TimestampTz(_) => {
            let t = v.to_pg_text().unwrap_or_default().replacen(' ', "T", 1);
            json_string(&t.replacen("+00", "+00:00", 1), out)
        }
        v => json_string(&v.to_pg_text().unwrap_or_default(), out),
    }
    Ok(())
}

/// `s` as a JSON string, escaped as PostgreSQL's `escape_json` escapes.
fn json_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// `information_schema._pg_expandarray(a)`: per element, the element `x`
/// and its 1-based position `n`, as a list of records the rewrite unnests.
#[derive(Debug, PartialEq, Eq, Hash)]
struct ExpandArray {
    signature: Signature,
}

impl ExpandArray {
    fn element_field(list: &DataType) -> Result<DataType> {
        let element = match list {
            DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => {
                f.data_type().clone()
            }
            DataType::Null => DataType::Null,
            other => {
                return Err(user_error(
                    common::SqlState::UndefinedFunction,
                    &format!(
                        "function information_schema._pg_expandarray({}) does not exist",
                        super::convert::sql_type(other)
                    ),
                    Some("_pg_expandarray takes an array."),
                ))
            }
        };
        Ok(DataType::Struct(Fields::from(vec![
            Field::new("x", element, true),
            Field::new("n", DataType::Int32, false),
        ])))
    }
}

impl ScalarUDFImpl for ExpandArray {
    fn name(&self) -> &str {
        "eddy_expandarray"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        let record = Self::element_field(args.first().unwrap_or(&DataType::Null))?;
        Ok(DataType::List(Arc::new(Field::new_list_field(
            record, true,
        ))))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        use datafusion::arrow::array::{AsArray, Int32Array, ListArray, StructArray};
        let [arg] = args.args.as_slice() else {
            return Err(DataFusionError::Plan(
                "_pg_expandarray takes one argument".into(),
            ));
        };
        let scalar = matches!(arg, ColumnarValue::Scalar(_));
        let input = arg.to_array(if scalar { 1 } else { args.number_rows })?;
        let DataType::Struct(fields) = Self::element_field(input.data_type())? else {
            return Err(DataFusionError::Internal("_pg_expandarray's record".into()));
        };
        let element = fields[0].data_type().clone();
        let list_type = DataType::List(Arc::new(Field::new_list_field(element.clone(), true)));
        let input = if matches!(input.data_type(), DataType::Null) {
            datafusion::arrow::array::new_null_array(&list_type, input.len())
        } else {
            datafusion::arrow::compute::cast(&input, &list_type)?
        };
        let list = input.as_list::<i32>();
        let offsets = list.offsets();
        let mut n = vec![0i32; list.values().len()];
        for w in offsets.windows(2) {
            let (start, end) = (w[0] as usize, w[1] as usize);
            for (k, slot) in n[start..end].iter_mut().enumerate() {
                *slot = i32::try_from(k + 1).unwrap_or(i32::MAX);
            }
        }
        let records = StructArray::try_new(
            fields.clone(),
            vec![list.values().clone(), Arc::new(Int32Array::from(n))],
            None,
        )?;
        let out: ArrayRef = Arc::new(ListArray::try_new(
            Arc::new(Field::new_list_field(DataType::Struct(fields), true)),
            offsets.clone(),
            Arc::new(records),
            list.nulls().cloned(),
        )?);
        Ok(if scalar {
            ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?)
        } else {
            ColumnarValue::Array(out)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_print_as_postgresql_prints_them() {
        assert_eq!(size_pretty(0), "0 bytes");
        assert_eq!(size_pretty(10_239), "10239 bytes");
        assert_eq!(size_pretty(10_240), "10 kB");
        assert_eq!(size_pretty(1_000_000), "977 kB");
        assert_eq!(size_pretty(100_000_000), "95 MB");
    }

    #[test]
    fn identifiers_are_quoted_only_when_they_must_be() {
        assert_eq!(quote_ident("orders"), "orders");
        assert_eq!(quote_ident("Orders"), "\"Orders\"");
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(quote_ident("1x"), "\"1x\"");
    }

    #[test]
    fn like_patterns_take_the_backslash_escape() {
        assert_eq!(like_pattern("pg/_%", "/").unwrap(), "pg\\_%");
        assert_eq!(like_pattern("a//b", "/").unwrap(), "a\\/b");
        // A backslash the escape does not escape is a literal one.
        assert_eq!(like_pattern("a\\b", "/").unwrap(), "a\\\\b");
        assert_eq!(like_pattern("a\\%", "").unwrap(), "a\\\\%");
        let end = like_pattern("a/", "/").unwrap_err();
        let two = like_pattern("a", "ab").unwrap_err();
        for (e, code) in [(end, "22025"), (two, "22025")] {
            let e = super::super::query_error(e);
            assert_eq!(common::UserError::sqlstate(&e).code(), code);
        }
    }

    #[test]
    fn json_objects_print_as_postgresql_prints_them() {
        let args = [
            text("a"),
            ScalarValue::Int64(Some(1)),
            text("b"),
            text("q\"\\z\t"),
            text("c"),
            ScalarValue::Utf8(None),
            text("d"),
            ScalarValue::Boolean(Some(true)),
            ScalarValue::Int32(Some(7)),
            ScalarValue::Float64(Some(1e20)),
            text("nan"),
            ScalarValue::Float64(Some(f64::NAN)),
        ];
        assert_eq!(
            json_object(&args).unwrap(),
            text(
                "{\"a\" : 1, \"b\" : \"q\\\"\\\\z\\t\", \"c\" : null, \"d\" : true, \
                 \"7\" : 1e+20, \"nan\" : \"NaN\"}"
            )
        );
        assert_eq!(json_object(&[]).unwrap(), text("{}"));
        assert!(json_object(&[text("a")]).is_err());
        assert!(json_object(&[ScalarValue::Utf8(None), text("a")]).is_err());
    }
}
