//! PostgreSQL spellings DataFusion does not plan, rewritten on the parsed
//! query before it is handed over — what psql, pgjdbc and SQLAlchemy send
//! when they introspect:
//!
//! - `pg_catalog.f(...)` calls `f` (DataFusion has no schema-qualified
//!   functions; every function Eddy has lives in `pg_catalog`);
//! - `x::regclass` / `x::regtype` become the oid the name stands for (a
//!   number, where PostgreSQL would print the name), `::oid`,
//!   `::regproc`, `::regnamespace` and `::regrole` an integer cast, and
//!   `::name` / `::"char"` a text cast;
//! - `OPERATOR(pg_catalog.~)` is the operator it names;
//! - `COLLATE` is dropped: text compares bytewise (the `C` collation).

use sqlparser::ast::helpers::attached_token::AttachedToken;
use sqlparser::ast::{
    visit_expressions, visit_expressions_mut, visit_relations_mut, AccessExpr, BinaryOperator,
    CaseWhen, CastKind, DataType, Expr, Function, FunctionArg, FunctionArgExpr,
    FunctionArgumentList, FunctionArguments, GroupByExpr, Ident, ObjectName, Query, SelectItem,
    SetExpr, Statement, TableFactor, Value, VisitMut, VisitorMut,
};
use std::collections::HashSet;
use std::ops::ControlFlow;

use super::subquery;
use crate::error::Error;

pub fn for_datafusion(mut query: Statement) -> Result<Statement, Error> {
    // Named first, while the expressions are still as the client wrote them.
    let _ = query.visit(&mut NameColumns);
    let _ = query.visit(&mut EmptySelects);
    let _ = visit_expressions_mut(&mut query, |e| {
        rewrite(e);
        ControlFlow::<()>::Continue(())
    });
    // `FROM pg_catalog.unnest(...)`: table functions are unqualified too.
    let _ = visit_relations_mut(&mut query, |name| {
        let qualified = name.0.len() == 2
            && name.0[0]
                .as_ident()
                .is_some_and(|i| i.value.eq_ignore_ascii_case("pg_catalog"))
            && name.0[1]
                .as_ident()
                .is_some_and(|i| TABLE_FUNCTIONS.contains(&i.value.to_ascii_lowercase().as_str()));
        if qualified {
            name.0.remove(0);
        }
        ControlFlow::<()>::Continue(())
    });
    let _ = query.visit(&mut SeriesBounds);
    Ok(query)
}

const TABLE_FUNCTIONS: &[&str] = &["unnest", "generate_series", "range"];

/// A cast in an aggregate's argument as `coalesce(cast)`, which is the
/// same value. DataFusion names a cast after what it casts, so `max(x)`
/// and `max(x::int)` in one query would be two aggregates of one name,
/// which it refuses; PostgreSQL names both `max` (see [`NameColumns`]).
fn named_cast(e: &mut Expr) {
    if matches!(e, Expr::Cast { .. }) {
        let cast = std::mem::replace(e, Expr::value(Value::Null));
        *e = call_with("coalesce", vec![cast]);
    }
}

/// `name`, or when a select list has it already, `name` made unique.
fn unique(seen: &HashSet<String>, name: &str) -> String {
    let mut unique = name.to_owned();
    let mut n = 0;
    while seen.contains(&unique) {
        n += 1;
        unique = format!("{name}{SAME_NAME}{n}");
    }
    unique
}

/// Marks a name made unique within its select list (see [`NameColumns`]);
/// what follows it is not part of the name a client sees.
pub const SAME_NAME: char = '\u{1}';

/// The name a client sees for result column `name`.
pub fn client_name(name: &str) -> &str {
    name.split(SAME_NAME).next().unwrap_or(name)
}

/// Names every select-list expression without an alias as PostgreSQL
/// does (`count`, `?column?`, `case`, `int4`, ...) rather than by
/// DataFusion's rendering of it (`count(*)`, `Int64(1) + Int64(1)`). A name
/// a select list already has gets [`SAME_NAME`] and a number, which the
/// client does not see: PostgreSQL allows two columns of one name,
/// DataFusion does not.
struct NameColumns;

impl VisitorMut for NameColumns {
    type Break = ();

    fn post_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
        name_columns(&mut query.body);
        ControlFlow::Continue(())
    }
}

fn name_columns(body: &mut SetExpr) {
    match body {
        SetExpr::Select(select) => {
            let mut seen: HashSet<String> = HashSet::new();
            for item in select.projection.iter_mut() {
                let name = match item {
                    SelectItem::ExprWithAlias { alias, .. } if seen.contains(&alias.value) => {
                        alias.value = unique(&seen, &alias.value);
                        alias.value.clone()
                    }
                    SelectItem::ExprWithAlias { alias, .. } => alias.value.clone(),
                    SelectItem::UnnamedExpr(e) => {
                        let plain = matches!(e, Expr::Identifier(_) | Expr::CompoundIdentifier(_));
                        let name = planner::output_name(e);
                        if plain && !seen.contains(&name) {
                            seen.insert(name);
                            continue; // DataFusion names it so too
                        }
                        let name = unique(&seen, &name);
                        *item = SelectItem::ExprWithAlias {
                            expr: e.clone(),
                            alias: Ident::with_quote('"', name.clone()),
                        };
                        name
                    }
                    _ => continue,
                };
                seen.insert(name);
            }
        }
        SetExpr::SetOperation { left, right, .. } => {
            name_columns(left);
            name_columns(right);
        }
        SetExpr::Query(q) => name_columns(&mut q.body),
        _ => {}
    }
}

fn rewrite(e: &mut Expr) {
    client_forms(e);
    match e {
        Expr::Function(f) => {
            if f.name.0.len() == 2
                && f.name.0[0]
                    .as_ident()
                    .is_some_and(|i| i.value.eq_ignore_ascii_case("pg_catalog"))
            {
                f.name.0.remove(0);
            }
            if let (true, FunctionArguments::Subquery(query)) = (is_named(f, "array"), &f.args) {
                *e = subquery::array(query.as_ref().clone());
                return;
            }
            if subquery::AGGREGATES.iter().any(|a| is_named(f, a)) {
                if let FunctionArguments::List(list) = &mut f.args {
                    for arg in &mut list.args {
                        let _ = visit_expressions_mut(arg, |e| {
                            named_cast(e);
                            ControlFlow::<()>::Continue(())
                        });
                    }
                }
            }
        }
        Expr::Subquery(query) => {
            if let Some(scalar) = subquery::scalar(query) {
                *e = scalar;
            }
        }
        Expr::Cast {
            expr, data_type, ..
        } => {
            // `x::regtype::text` is the type's name, `x::regclass::text` the
            // relation's.
            if matches!(data_type, DataType::Text) {
                if let Expr::Function(f) = expr.as_mut() {
                    for (from, to) in [
                        ("eddy_regclass", "eddy_regclass_name"),
                        ("eddy_regtype", "eddy_regtype_name"),
                    ] {
                        if is_named(f, from) {
                            f.name = ObjectName::from(vec![Ident::new(to)]);
                            *e = std::mem::replace(
                                expr.as_mut(),
                                Expr::value(sqlparser::ast::Value::Null),
                            );
                            return;
                        }
                    }
                }
            }
            // `x::pg_catalog.int2[]`: an array of the type it names.
            if let DataType::Array(sqlparser::ast::ArrayElemTypeDef::SquareBracket(element, _)) =
                data_type
            {
                if let DataType::Custom(name, _) = element.as_ref() {
                    let plain = name
                        .0
                        .last()
                        .and_then(|p| p.as_ident())
                        .and_then(|i| builtin_type(&i.value.to_ascii_lowercase()));
                    if let Some(plain) = plain {
                        **element = plain;
                    }
                }
            }
            // `'{a,b}'::text[]`: the literal's elements, not one element.
            if let (DataType::Array(_), Expr::Value(v)) = (&*data_type, expr.as_ref()) {
                if let Some(array) = v
                    .value
                    .clone()
                    .into_string()
                    .and_then(|t| array_of(&t, false))
                {
                    **expr = array;
                    return;
                }
            }
            let name = match data_type {
                DataType::Regclass => "regclass".to_owned(),
                DataType::Custom(name, _) => name
                    .0
                    .last()
                    .and_then(|p| p.as_ident())
                    .map(|i| i.value.to_ascii_lowercase())
                    .unwrap_or_default(),
                _ => return,
            };
            if let Some(plain) = builtin_type(&name) {
                *data_type = plain;
                return;
            }
            let inner = std::mem::replace(expr.as_mut(), Expr::value(sqlparser::ast::Value::Null));
            *e = match name.as_str() {
                "regclass" => call("eddy_regclass", inner),
                "regtype" => call("eddy_regtype", inner),
                "regnamespace" => call("eddy_regnamespace", inner),
                "oid" | "regproc" | "regprocedure" | "regrole" | "xid" => {
                    cast(inner, DataType::BigInt(None))
                }
                "name" | "char" | "bpchar" => cast(inner, DataType::Text),
                _ => {
                    // Not ours: put it back as it was.
                    **expr = inner;
                    return;
                }
            };
        }
        Expr::BinaryOp { op, left, right } => {
            if let BinaryOperator::PGCustomBinaryOperator(parts) = op {
                if let Some(plain) = parts.last().and_then(|o| operator(o)) {
                    *op = plain;
                }
            }
            // `pol.polroles = '{0}'`: an array column against an array
            // literal written as text.
            if matches!(op, BinaryOperator::Eq | BinaryOperator::NotEq) {
                if !matches!(right.as_ref(), Expr::Value(_)) {
                    if let Some(array) = array_literal(left) {
                        **left = array;
                    }
                }
                if !matches!(left.as_ref(), Expr::Value(_)) {
                    if let Some(array) = array_literal(right) {
                        **right = array;
                    }
                }
            }
        }
        Expr::Collate { expr, .. } => {
            let inner = std::mem::replace(expr.as_mut(), Expr::value(sqlparser::ast::Value::Null));
            *e = inner;
        }
        _ => {}
    }
}

/// `'{1,2}'` as `[1, 2]` (`'{a,b}'` as `['a', 'b']`); None for any
/// other expression.
fn array_literal(e: &Expr) -> Option<Expr> {
    use sqlparser::ast::Value;
    let Expr::Value(v) = e else { return None };
    let Value::SingleQuotedString(text) = &v.value else {
        return None;
    };
    if !(text.starts_with('{') && text.ends_with('}')) {
        return None;
    }
    let numbers = common::array::parse(text)?
        .iter()
        .all(|e| e.as_deref().is_none_or(|e| e.parse::<i64>().is_ok()));
    array_of(text, numbers)
}

/// The elements of the array literal `text`, as numbers or as strings.
fn array_of(text: &str, numbers: bool) -> Option<Expr> {
    use sqlparser::ast::Value;
    let elem = common::array::parse(text)?
        .into_iter()
        .map(|e| match e {
            Some(e) if numbers => Expr::value(Value::Number(e, false)),
            Some(e) => Expr::value(Value::SingleQuotedString(e)),
            None => Expr::value(Value::Null),
        })
        .collect();
    Some(Expr::Array(sqlparser::ast::Array { elem, named: true }))
}

fn is_named(f: &Function, name: &str) -> bool {
    f.name.0.len() == 1
        && f.name.0[0]
            .as_ident()
            .is_some_and(|i| i.quote_style.is_none() && i.value.eq_ignore_ascii_case(name))
}

/// A built-in type by its `pg_catalog` name (`pg_catalog.int4`, `text`).
fn builtin_type(name: &str) -> Option<DataType> {
    use sqlparser::ast::{ExactNumberInfo, TimezoneInfo};
    Some(match name {
        "text" => DataType::Text,
        "int2" | "smallint" => DataType::SmallInt(None),
        "int4" | "integer" | "int" => DataType::Integer(None),
        "int8" | "bigint" => DataType::BigInt(None),
        "bool" | "boolean" => DataType::Boolean,
        "float4" | "real" => DataType::Real,
        "float8" => DataType::DoublePrecision,
        "numeric" => DataType::Numeric(ExactNumberInfo::None),
        "varchar" => DataType::Varchar(None),
        "date" => DataType::Date,
        "timestamp" => DataType::Timestamp(None, TimezoneInfo::None),
        "timestamptz" => DataType::Timestamp(None, TimezoneInfo::WithTimeZone),
        _ => return None,
    })
}

fn operator(op: &str) -> Option<BinaryOperator> {
    Some(match op {
        "~" => BinaryOperator::PGRegexMatch,
        "~*" => BinaryOperator::PGRegexIMatch,
        "!~" => BinaryOperator::PGRegexNotMatch,
        "!~*" => BinaryOperator::PGRegexNotIMatch,
        "=" => BinaryOperator::Eq,
        "<>" | "!=" => BinaryOperator::NotEq,
        "<" => BinaryOperator::Lt,
        "<=" => BinaryOperator::LtEq,
        ">" => BinaryOperator::Gt,
        ">=" => BinaryOperator::GtEq,
        "~~" => return None,
        _ => return None,
    })
}

pub(super) fn call(name: &str, arg: Expr) -> Expr {
    call_with(name, vec![arg])
}

fn cast(expr: Expr, data_type: DataType) -> Expr {
    Expr::Cast {
        kind: CastKind::Cast,
        expr: Box::new(expr),
        data_type,
        array: false,
        format: None,
    }
}

/// The PostgreSQL forms client introspection sends that have no DataFusion
/// spelling, in terms of Eddy's functions (see `functions.rs`):
///
/// - `LIKE p ESCAPE 'e'` (SQLAlchemy escapes with `/`): DataFusion runs only
///   the backslash escape, so `p` is rewritten into that form when it is
///   evaluated (`eddy_like_pattern`);
/// - `array_lower` / `array_upper` / `generate_subscripts`: with the lower
///   bound made explicit, 0 for the `int2vector` and `oidvector` columns of
///   the catalog (`pg_index.indkey`), 1 for every other array; the
///   set-returning one becomes an `unnest`, which DataFusion runs in step
///   with the select list's other `unnest`s as PostgreSQL does;
/// - `information_schema._pg_expandarray(a)` (pgjdbc): `unnest` of the
///   `(x, n)` records, and `(record).field` a field access;
/// - a scalar subquery whose select list calls a function on an outer
///   column (SQLAlchemy's `json_build_object('always', a.attidentity = 'a',
///   ...)`): DataFusion does not run an outer column in a subquery's select
///   list, so such arguments move out (see [`hoist_outer_arguments`]).
fn client_forms(e: &mut Expr) {
    match e {
        Expr::Like {
            any: false,
            pattern,
            escape_char,
            ..
        }
        | Expr::ILike {
            any: false,
            pattern,
            escape_char,
            ..
        } => {
            let Some(escape) = escape_char.take() else {
                return;
            };
            if matches!(&escape.value, Value::SingleQuotedString(s) if s == "\\") {
                *escape_char = Some(escape);
                return;
            }
            let p = std::mem::replace(pattern.as_mut(), Expr::value(Value::Null));
            **pattern = call_with("eddy_like_pattern", vec![p, Expr::Value(escape)]);
        }
        Expr::Function(f) => {
            let Some(name) = pg_function_name(f) else {
                return;
            };
            let Some(mut args) = plain_args(f) else {
                return;
            };
            *e = match (name.as_str(), args.len()) {
                ("array_lower" | "array_upper", 2) => {
                    args.push(lower_bound(&args[0]));
                    call_with(&format!("eddy_{name}"), args)
                }
                ("generate_subscripts", 2) => {
                    args.push(lower_bound(&args[0]));
                    call("unnest", call_with("eddy_subscripts", args))
                }
                ("_pg_expandarray", 1) => call("unnest", call_with("eddy_expandarray", args)),
                _ => return,
            };
        }
        // `(f(x)).n`, `(result.keys).x`: a field of a record.
        Expr::CompoundFieldAccess { root, access_chain } if matches!(**root, Expr::Nested(_)) => {
            for access in access_chain.iter_mut() {
                if let AccessExpr::Dot(Expr::Identifier(field)) = access {
                    let name = if field.quote_style.is_some() {
                        field.value.clone()
                    } else {
                        field.value.to_ascii_lowercase()
                    };
                    *access = AccessExpr::Dot(Expr::value(Value::SingleQuotedString(name)));
                }
            }
        }
        Expr::Subquery(query) => {
            if let Some(hoisted) = hoist_outer_arguments(query) {
                *e = hoisted;
            }
        }
        // `'pg_catalog.array_in'::regproc` (pgjdbc): `pg_type`'s
        // `typinput` and the like hold the function's name.
        Expr::Cast {
            expr,
            data_type: DataType::Custom(type_name, _),
            ..
        } => {
            let Expr::Value(v) = expr.as_ref() else {
                return;
            };
            let Value::SingleQuotedString(proc) = &v.value else {
                return;
            };
            let is_regproc = type_name
                .0
                .last()
                .and_then(|p| p.as_ident())
                .is_some_and(|i| {
                    i.value.eq_ignore_ascii_case("regproc")
                        || i.value.eq_ignore_ascii_case("regprocedure")
                });
            if is_regproc {
                let name = proc.split('(').next().unwrap_or_default();
                let name = name.strip_prefix("pg_catalog.").unwrap_or(name);
                *e = Expr::value(Value::SingleQuotedString(name.trim().to_owned()));
            }
        }
        _ => {}
    }
}

/// A select that joins a catalog table Eddy never has rows in (policies,
/// publications, triggers, ...; `pg_catalog::always_empty`) has no rows:
/// it becomes `SELECT NULL AS <name>, .. WHERE false`. What psql's `\d`
/// footers compute per row of such tables — a set-returning function of an
/// outer column, a subquery correlated through an array — is more than
/// DataFusion plans, and there is no row to compute it for. Selects that
/// aggregate (one row even over none) or outer-join the table keep their
/// form.
struct EmptySelects;

impl VisitorMut for EmptySelects {
    type Break = ();

    fn post_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
        // Its ORDER BY may name the tables' columns: no rows, no order.
        if empty_selects(&mut query.body) && matches!(*query.body, SetExpr::Select(_)) {
            query.order_by = None;
        }
        ControlFlow::Continue(())
    }
}

/// Empties the selects of `body` that can have no rows; whether any was.
fn empty_selects(body: &mut SetExpr) -> bool {
    use sqlparser::ast::JoinOperator as J;
    match body {
        SetExpr::Select(select) => {
            let empty = |f: &TableFactor| match f {
                TableFactor::Table {
                    name, args: None, ..
                } => super::pg_catalog::always_empty(name),
                TableFactor::Table {
                    name,
                    args: Some(args),
                    ..
                } => unnests_never_set(name, args),
                _ => false,
            };
            let no_rows = select.from.iter().any(|t| {
                let inner = |j: &sqlparser::ast::Join| {
                    matches!(j.join_operator, J::Join(_) | J::Inner(_) | J::CrossJoin(_))
                };
                let outer_right = |j: &sqlparser::ast::Join| {
                    !inner(j) && !matches!(j.join_operator, J::Left(_) | J::LeftOuter(_))
                };
                !t.joins.iter().any(outer_right)
                    && (empty(&t.relation)
                        || t.joins.iter().any(|j| inner(j) && empty(&j.relation)))
            });
            let grouped = !matches!(&select.group_by, GroupByExpr::Expressions(e, _) if e.is_empty())
                || select.having.is_some()
                || select.projection.iter().any(aggregates);
            if !no_rows || grouped {
                return false;
            }
            let names: Option<Vec<Ident>> = select
                .projection
                .iter()
                .map(|item| match item {
                    SelectItem::ExprWithAlias { alias, .. } => Some(alias.clone()),
                    SelectItem::UnnamedExpr(e) => {
                        Some(Ident::with_quote('"', planner::output_name(e)))
                    }
                    _ => None,
                })
                .collect();
            let Some(names) = names else {
                return false; // `*`: the names are the tables'
            };
            select.projection = names
                .into_iter()
                .map(|alias| SelectItem::ExprWithAlias {
                    expr: Expr::value(Value::Null),
                    alias,
                })
                .collect();
            select.from.clear();
            select.selection = Some(Expr::value(Value::Boolean(false)));
            true
        }
        SetExpr::SetOperation { left, right, .. } => {
            let l = empty_selects(left);
            empty_selects(right) || l
        }
        SetExpr::Query(q) => empty_selects(&mut q.body),
        _ => false,
    }
}

/// `unnest(t.c)` or `pg_options_to_table(t.c)` over a catalog array column
/// Eddy never sets (`pg_catalog::never_set`): no rows.
fn unnests_never_set(name: &ObjectName, args: &sqlparser::ast::TableFunctionArgs) -> bool {
    let unnest = name.0.last().and_then(|p| p.as_ident()).is_some_and(|i| {
        i.value.eq_ignore_ascii_case("unnest")
            || i.value.eq_ignore_ascii_case("pg_options_to_table")
    });
    let column = match args.args.as_slice() {
        [FunctionArg::Unnamed(FunctionArgExpr::Expr(e))] => column_name(e),
        _ => None,
    };
    unnest && column.is_some_and(|c| super::pg_catalog::never_set(&c.value))
}

/// Whether a select-list item calls an aggregate function (of its own
/// select, not of a subquery in it).
fn aggregates(item: &SelectItem) -> bool {
    struct Finder {
        depth: usize,
        found: bool,
    }
    impl sqlparser::ast::Visitor for Finder {
        type Break = ();
        fn pre_visit_query(&mut self, _: &Query) -> ControlFlow<()> {
            self.depth += 1;
            ControlFlow::Continue(())
        }
        fn post_visit_query(&mut self, _: &Query) -> ControlFlow<()> {
            self.depth -= 1;
            ControlFlow::Continue(())
        }
        fn pre_visit_expr(&mut self, e: &Expr) -> ControlFlow<()> {
            if let (0, Expr::Function(f)) = (self.depth, e) {
                let name = f.name.0.last().and_then(|p| p.as_ident());
                self.found |= name.is_some_and(|n| {
                    subquery::AGGREGATES
                        .iter()
                        .any(|a| n.value.eq_ignore_ascii_case(a))
                });
            }
            ControlFlow::Continue(())
        }
    }
    let mut finder = Finder {
        depth: 0,
        found: false,
    };
    let _ = sqlparser::ast::Visit::visit(item, &mut finder);
    finder.found
}

/// Functions in FROM, as PostgreSQL has them:
/// - a function returning one column, given a table alias and no column
///   aliases, names its column after the alias (`generate_series(1, 3) g`
///   has a column `g`; `unnest(a) x` one named `x`);
/// - `unnest(...)` written as a table function (`pg_catalog.unnest(...)`)
///   is DataFusion's UNNEST;
/// - `generate_series(1, array_upper(a, 1))`: DataFusion's series take
///   `bigint` bounds only, and PostgreSQL's array functions return `integer`.
struct SeriesBounds;

impl VisitorMut for SeriesBounds {
    type Break = ();

    fn pre_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
        let unnest = match factor {
            TableFactor::Table {
                name,
                args: Some(args),
                alias,
                ..
            } if name.0.len() == 1
                && name.0[0]
                    .as_ident()
                    .is_some_and(|i| i.value.eq_ignore_ascii_case("unnest")) =>
            {
                let arrays: Option<Vec<Expr>> = args
                    .args
                    .iter()
                    .map(|a| match a {
                        FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Some(e.clone()),
                        _ => None,
                    })
                    .collect();
                arrays.map(|array_exprs| TableFactor::UNNEST {
                    alias: alias.take(),
                    array_exprs,
                    with_offset: false,
                    with_offset_alias: None,
                    with_ordinality: false,
                })
            }
            _ => None,
        };
        if let Some(unnest) = unnest {
            *factor = unnest;
        }
        match factor {
            TableFactor::UNNEST {
                alias: Some(alias),
                array_exprs,
                with_ordinality: false,
                ..
            } if array_exprs.len() == 1 => name_the_column(alias),
            TableFactor::Table {
                name,
                args: Some(args),
                alias,
                ..
            } => {
                let series = name.0.last().and_then(|p| p.as_ident()).is_some_and(|i| {
                    i.value.eq_ignore_ascii_case("generate_series")
                        || i.value.eq_ignore_ascii_case("range")
                });
                if !series {
                    return ControlFlow::Continue(());
                }
                if let Some(alias) = alias {
                    name_the_column(alias);
                }
                for arg in &mut args.args {
                    if let FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) = arg {
                        let int4 = matches!(e, Expr::Function(f)
                            if is_named(f, "eddy_array_upper") || is_named(f, "eddy_array_lower"));
                        if int4 {
                            let inner = std::mem::replace(e, Expr::value(Value::Null));
                            *e = cast(inner, DataType::BigInt(None));
                        }
                    }
                }
            }
            _ => {}
        }
        ControlFlow::Continue(())
    }
}

/// `f(..) AS t`, for a function of one column: the column is `t` too.
fn name_the_column(alias: &mut sqlparser::ast::TableAlias) {
    if alias.columns.is_empty() {
        alias.columns = vec![sqlparser::ast::TableAliasColumnDef::from_name(
            alias.name.value.clone(),
        )];
        alias.columns[0].name.quote_style = alias.name.quote_style;
    }
}

/// The name of a function PostgreSQL keeps in `pg_catalog` or
/// `information_schema`, lowercase, when `f` calls one.
fn pg_function_name(f: &Function) -> Option<String> {
    let parts: Vec<&Ident> = f
        .name
        .0
        .iter()
        .map(|p| p.as_ident())
        .collect::<Option<_>>()?;
    let (last, schema) = parts.split_last()?;
    let in_catalog = match schema {
        [] => true,
        [s] => {
            s.value.eq_ignore_ascii_case("pg_catalog")
                || s.value.eq_ignore_ascii_case("information_schema")
        }
        _ => false,
    };
    (in_catalog && last.quote_style.is_none()).then(|| last.value.to_ascii_lowercase())
}

/// The arguments of a call without `DISTINCT`, `ORDER BY`, `FILTER`,
/// `OVER` or named arguments.
fn plain_args(f: &Function) -> Option<Vec<Expr>> {
    let FunctionArguments::List(list) = &f.args else {
        return None;
    };
    if list.duplicate_treatment.is_some()
        || !list.clauses.is_empty()
        || f.filter.is_some()
        || f.over.is_some()
        || !f.within_group.is_empty()
    {
        return None;
    }
    list.args
        .iter()
        .map(|a| match a {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Some(e.clone()),
            _ => None,
        })
        .collect()
}

/// The catalog's `int2vector` and `oidvector` columns, whose subscripts
/// start at 0.
const ZERO_BASED: &[&str] = &[
    "indkey",
    "indclass",
    "indcollation",
    "indoption",
    "stxkeys",
    "proargtypes",
    "partattrs",
    "partclass",
    "partcollation",
];

/// The column `e` reads (`c`, `t.c`), when it is a bare column.
fn column_name(e: &Expr) -> Option<&Ident> {
    match e {
        Expr::Identifier(i) => Some(i),
        Expr::CompoundIdentifier(parts) => parts.last(),
        _ => None,
    }
}

/// The lower bound of the array `e`, as PostgreSQL has it.
fn lower_bound(e: &Expr) -> Expr {
    let column = column_name(e);
    let zero = column.is_some_and(|c| ZERO_BASED.contains(&c.value.to_ascii_lowercase().as_str()));
    Expr::value(Value::Number(if zero { "0" } else { "1" }.into(), false))
}

/// `(SELECT f(o, i) FROM t WHERE w)`, where `o` reads only outer columns
/// and `i` only the subquery's own, is `CASE WHEN (SELECT true FROM t
/// WHERE w) THEN f(o, (SELECT i FROM t WHERE w)) END`: NULL without a row,
/// an error with more than one (as `eddy_single` has it), `f` of that row
/// otherwise. None when the subquery is not of that shape (an outer column
/// is told from an inner one by its qualifier; an unqualified column counts
/// as inner).
fn hoist_outer_arguments(query: &Query) -> Option<Expr> {
    let SetExpr::Select(select) = query.body.as_ref() else {
        return None;
    };
    let grouped =
        !matches!(&select.group_by, GroupByExpr::Expressions(e, m) if e.is_empty() && m.is_empty());
    if query.with.is_some()
        || query.limit_clause.is_some()
        || query.fetch.is_some()
        || select.projection.len() != 1
        || select.distinct.is_some()
        || select.having.is_some()
        || grouped
    {
        return None;
    }
    let (SelectItem::UnnamedExpr(Expr::Function(f))
    | SelectItem::ExprWithAlias {
        expr: Expr::Function(f),
        ..
    }) = &select.projection[0]
    else {
        return None;
    };
    let name = f.name.0.last()?.as_ident()?.value.to_ascii_lowercase();
    if subquery::AGGREGATES.contains(&name.as_str()) {
        return None;
    }
    let args = plain_args(f)?;
    let inner = subquery::from_names(select)?;
    let sides: Vec<Side> = args.iter().map(|a| side(a, &inner)).collect();
    if sides.contains(&Side::Both) || !sides.contains(&Side::Outer) {
        return None;
    }
    // The subquery with `item` as its select list, made runnable.
    let with_projection = |item: Expr| {
        let mut q = query.clone();
        if let SetExpr::Select(s) = q.body.as_mut() {
            s.projection = vec![SelectItem::UnnamedExpr(item)];
        }
        let mut sub = Expr::Subquery(Box::new(q));
        rewrite(&mut sub);
        sub
    };
    let hoisted = args
        .into_iter()
        .zip(sides)
        .map(|(a, s)| {
            let a = if s == Side::Inner {
                with_projection(a)
            } else {
                a
            };
            FunctionArg::Unnamed(FunctionArgExpr::Expr(a))
        })
        .collect();
    let mut call = f.clone();
    if let FunctionArguments::List(list) = &mut call.args {
        list.args = hoisted;
    }
    Some(Expr::Case {
        case_token: AttachedToken::empty(),
        end_token: AttachedToken::empty(),
        operand: None,
        conditions: vec![CaseWhen {
            condition: with_projection(Expr::value(Value::Boolean(true))),
            result: Expr::Function(call),
        }],
        else_result: None,
    })
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Side {
    /// Constants only.
    Neither,
    Inner,
    Outer,
    Both,
}

/// Which query's columns `e` reads, given the names the subquery's `FROM`
/// binds; a nested subquery counts as the subquery's own.
fn side(e: &Expr, inner: &HashSet<String>) -> Side {
    let mut outer = false;
    let mut own = false;
    let _ = visit_expressions(e, |x| {
        match x {
            Expr::Identifier(_)
            | Expr::Subquery(_)
            | Expr::Exists { .. }
            | Expr::InSubquery { .. } => own = true,
            Expr::CompoundIdentifier(parts) if parts.len() >= 2 => {
                let table = parts[parts.len() - 2].value.to_ascii_lowercase();
                if inner.contains(&table) {
                    own = true;
                } else {
                    outer = true;
                }
            }
            _ => {}
        }
        ControlFlow::<()>::Continue(())
    });
    match (outer, own) {
        (false, false) => Side::Neither,
        (false, true) => Side::Inner,
        (true, false) => Side::Outer,
        (true, true) => Side::Both,
    }
}

fn call_with(name: &str, args: Vec<Expr>) -> Expr {
    Expr::Function(Function {
        name: ObjectName::from(vec![Ident::new(name)]),
        uses_odbc_syntax: false,
        parameters: FunctionArguments::None,
        args: FunctionArguments::List(FunctionArgumentList {
            duplicate_treatment: None,
            args: args
                .into_iter()
                .map(|a| FunctionArg::Unnamed(FunctionArgExpr::Expr(a)))
                .collect(),
            clauses: Vec::new(),
        }),
        filter: None,
        null_treatment: None,
        over: None,
        within_group: Vec::new(),
    })
}

/// `stmt` without the names [`NameColumns`] gave, for tests of the other
/// rewrites.
#[cfg(test)]
pub fn without_names(mut stmt: Statement) -> Statement {
    struct Unname;
    impl VisitorMut for Unname {
        type Break = ();
        fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
            if let SetExpr::Select(select) = query.body.as_mut() {
                for item in select.projection.iter_mut() {
                    if let SelectItem::ExprWithAlias { expr, alias } = item {
                        if alias.quote_style == Some('"') {
                            *item = SelectItem::UnnamedExpr(expr.clone());
                        }
                    }
                }
            }
            ControlFlow::Continue(())
        }
    }
    let _ = stmt.visit(&mut Unname);
    stmt
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewritten(sql: &str) -> String {
        let stmt = planner::parse(sql).unwrap().pop().unwrap();
        without_names(for_datafusion(stmt).unwrap()).to_string()
    }

    #[test]
    fn catalog_spellings_become_plain_sql() {
        assert_eq!(
            rewritten("SELECT pg_catalog.format_type(a.atttypid, NULL) FROM t"),
            "SELECT format_type(a.atttypid, NULL) FROM t"
        );
        assert_eq!(
            rewritten("SELECT 'v'::regclass, c.oid::pg_catalog.oid FROM c"),
            "SELECT eddy_regclass('v'), CAST(c.oid AS BIGINT) FROM c"
        );
        assert_eq!(
            rewritten("SELECT 1 FROM c WHERE c.relname OPERATOR(pg_catalog.~) '^(v)$' COLLATE pg_catalog.default"),
            "SELECT 1 FROM c WHERE c.relname ~ '^(v)$'"
        );
    }

    #[test]
    fn unnest_of_an_option_list_eddy_never_sets_has_no_rows() {
        // psql's `\d+`: the toast table's options, per row.
        let sql = "SELECT array(select 'toast.' || x from pg_catalog.unnest(tc.reloptions) x) \
                   FROM c LEFT JOIN c tc ON c.reltoastrelid = tc.oid";
        let out = rewritten(sql);
        assert!(
            out.contains("WHERE false") && !out.contains("unnest"),
            "{out}"
        );
        // Other arrays keep their elements.
        let out = rewritten("SELECT x FROM unnest(i.indkey) x");
        assert!(out.contains("UNNEST(i.indkey)"), "{out}");
    }

    #[test]
    fn like_with_another_escape_is_rewritten_to_the_backslash_one() {
        assert_eq!(
            rewritten("SELECT 1 FROM n WHERE n.nspname NOT LIKE 'pg/_' || '%' ESCAPE '/'"),
            "SELECT 1 FROM n WHERE n.nspname NOT LIKE eddy_like_pattern('pg/_' || '%', '/')"
        );
        assert_eq!(
            rewritten("SELECT 1 FROM n WHERE n.nspname ILIKE $1 ESCAPE '!'"),
            "SELECT 1 FROM n WHERE n.nspname ILIKE eddy_like_pattern($1, '!')"
        );
        // The backslash is DataFusion's own escape: left as it is.
        assert_eq!(
            rewritten("SELECT 1 FROM n WHERE n.nspname LIKE 'a\\_' ESCAPE '\\'"),
            "SELECT 1 FROM n WHERE n.nspname LIKE 'a\\_' ESCAPE '\\'"
        );
    }

    #[test]
    fn array_subscripts_start_where_postgresql_starts_them() {
        assert_eq!(
            rewritten("SELECT generate_subscripts(i.indkey, 1) AS ord, array_upper(a, 1) FROM i"),
            "SELECT unnest(eddy_subscripts(i.indkey, 1, 0)) AS ord, eddy_array_upper(a, 1, 1) FROM i"
        );
        assert_eq!(
            rewritten("SELECT pg_catalog.array_lower(current_schemas(false), 1)"),
            "SELECT eddy_array_lower(current_schemas(false), 1, 1)"
        );
    }

    #[test]
    fn pgjdbc_type_info_query_plans() {
        assert_eq!(
            rewritten(
                "SELECT typinput = 'pg_catalog.array_in'::regproc, s.r \
                 FROM generate_series(1, array_upper(current_schemas(false), 1)) AS s(r)"
            ),
            "SELECT typinput = 'array_in', s.r \
             FROM generate_series(1, CAST(eddy_array_upper(current_schemas(false), 1, 1) AS BIGINT)) AS s (r)"
        );
    }

    #[test]
    fn pgjdbc_expandarray_is_an_unnest_of_records() {
        assert_eq!(
            rewritten(
                "SELECT (information_schema._pg_expandarray(i.indkey)).n AS key_seq, \
                 information_schema._pg_expandarray(i.indkey) AS KEYS FROM i"
            ),
            "SELECT (unnest(eddy_expandarray(i.indkey))).'n' AS key_seq, \
             unnest(eddy_expandarray(i.indkey)) AS KEYS FROM i"
        );
        assert_eq!(
            rewritten("SELECT 1 FROM r WHERE r.a = (r.KEYS).x"),
            "SELECT 1 FROM r WHERE r.a = (r.KEYS).'x'"
        );
    }

    #[test]
    fn outer_arguments_of_a_subquery_call_move_out_of_it() {
        let sql = "SELECT (SELECT json_build_object('always', a.attidentity = 'a', \
                   'start', s.seqstart) FROM sequences s WHERE s.seqrelid = a.attrelid) \
                   FROM pg_attribute a";
        let out = rewritten(sql);
        assert!(
            out.starts_with("SELECT CASE WHEN (SELECT eddy_single(true) FROM sequences s"),
            "{out}"
        );
        assert!(
            out.contains(
                "THEN json_build_object('always', a.attidentity = 'a', 'start', \
                 (SELECT eddy_single(s.seqstart) FROM sequences s"
            ),
            "{out}"
        );
        // Inner arguments only: nothing to move.
        let inner = "SELECT (SELECT concat(s.a, 'x') FROM s WHERE s.id = t.id) FROM t";
        assert!(!rewritten(inner).starts_with("SELECT CASE"));
    }
}
