//! The SELECT core shared by views and reads: select list, WHERE, GROUP BY,
//! aggregates, HAVING and ORDER BY, bound against one relation's columns.
//!
//! A query aggregates when it has GROUP BY or HAVING, or an aggregate appears
//! in its select list or ORDER BY; its select list, HAVING and ORDER BY are
//! then bound against the group row (keys, then aggregate values).

use super::scalar::{ident_name, output_name, Binder, Grouping, Mode};
use crate::error::PlanError;
use crate::expr::Expr;
use crate::plan::{AggCall, SortKey};
use sqlparser::ast::{self, GroupByExpr, OrderByKind, SelectItem, SelectItemQualifiedWildcardKind};

pub(crate) struct BoundSelect {
    pub filter: Option<Expr>,
    pub grouping: Option<BoundGrouping>,
    pub projection: Vec<Expr>,
    pub names: Vec<String>,
    pub order_by: Vec<SortKey>,
}

pub(crate) struct BoundGrouping {
    pub keys: Vec<Expr>,
    pub calls: Vec<AggCall>,
    pub having: Option<Expr>,
}

/// A select-list entry after `*` expansion.
enum Item<'q> {
    Ast(&'q ast::Expr),
    Column(usize),
}

/// Rejects the parts of a SELECT that neither views nor reads support.
pub(crate) fn check_select(select: &ast::Select, context: Option<&str>) -> Result<(), PlanError> {
    let unsupported = |what: &str| Err(PlanError::unsupported(what, context));
    if select.top.is_some() {
        return unsupported("TOP");
    }
    if select.into.is_some() {
        return unsupported("SELECT INTO");
    }
    if !select.lateral_views.is_empty() {
        return unsupported("LATERAL VIEW");
    }
    if select.prewhere.is_some() || !select.connect_by.is_empty() || select.qualify.is_some() {
        return unsupported("PREWHERE / CONNECT BY / QUALIFY");
    }
    if !select.cluster_by.is_empty()
        || !select.distribute_by.is_empty()
        || !select.sort_by.is_empty()
    {
        return unsupported("CLUSTER BY / DISTRIBUTE BY / SORT BY");
    }
    if !select.named_window.is_empty() {
        return Err(PlanError::unsupported_plural("window functions", context));
    }
    Ok(())
}

fn ordinal(e: &ast::Expr) -> Option<i64> {
    match e {
        ast::Expr::Value(v) => match &v.value {
            ast::Value::Number(s, _) => s.parse().ok(),
            _ => None,
        },
        _ => None,
    }
}

pub(crate) fn bind_select(
    b: &mut Binder<'_>,
    select: &ast::Select,
    order_by: Option<&ast::OrderBy>,
) -> Result<BoundSelect, PlanError> {
    let mut items: Vec<(Item<'_>, String)> = Vec::new();
    for item in &select.projection {
        match item {
            SelectItem::UnnamedExpr(e) => items.push((Item::Ast(e), output_name(e))),
            SelectItem::ExprWithAlias { expr, alias } => {
                items.push((Item::Ast(expr), ident_name(alias)))
            }
            SelectItem::ExprWithAliases { .. } => {
                return Err(PlanError::unsupported("multiple aliases", None))
            }
            SelectItem::Wildcard(_) => items.extend(
                b.columns
                    .iter()
                    .enumerate()
                    .map(|(i, c)| (Item::Column(i), c.name.clone())),
            ),
            SelectItem::QualifiedWildcard(kind, _) => {
                let name = match kind {
                    SelectItemQualifiedWildcardKind::ObjectName(n) => n.to_string().to_lowercase(),
                    SelectItemQualifiedWildcardKind::Expr(e) => e.to_string().to_lowercase(),
                };
                if !b.qualifiers.contains(&name) {
                    return Err(PlanError::UnknownRelation {
                        name,
                        position: None,
                    });
                }
                items.extend(
                    b.columns
                        .iter()
                        .enumerate()
                        .map(|(i, c)| (Item::Column(i), c.name.clone())),
                );
            }
        }
    }

    let filter = select
        .selection
        .as_ref()
        .map(|w| b.bind_condition(w, Mode::Row("WHERE"), "WHERE"))
        .transpose()?;

    let group_exprs = match &select.group_by {
        GroupByExpr::Expressions(exprs, modifiers) if modifiers.is_empty() => exprs,
        GroupByExpr::Expressions(..) => {
            return Err(PlanError::unsupported(
                "GROUP BY modifiers (ROLLUP, CUBE, TOTALS)",
                None,
            ))
        }
        GroupByExpr::All(_) => return Err(PlanError::unsupported("GROUP BY ALL", None)),
    };
    let mut keys = Vec::new();
    for g in group_exprs {
        let key = if let Some(k) = ordinal(g) {
            match usize::try_from(k)
                .ok()
                .and_then(|k| k.checked_sub(1))
                .and_then(|k| items.get(k))
            {
                Some((Item::Ast(e), _)) => b.bind(e, Mode::Row("GROUP BY"))?,
                Some((Item::Column(i), _)) => Expr::column(*i, b.columns[*i].ty),
                None => {
                    return Err(PlanError::BadOrdinal {
                        clause: "GROUP BY",
                        ordinal: k,
                    })
                }
            }
        } else {
            // Postgres resolves a GROUP BY name to an input column first, then to an output alias.
            let alias_of = |name: &str| {
                items.iter().find_map(|(it, n)| match it {
                    Item::Ast(e) if n == name => Some(*e),
                    _ => None,
                })
            };
            match g {
                ast::Expr::Identifier(id)
                    if !b.columns.iter().any(|c| c.name == ident_name(id)) =>
                {
                    match alias_of(&ident_name(id)) {
                        Some(e) => b.bind(e, Mode::Row("GROUP BY"))?,
                        None => b.bind(g, Mode::Row("GROUP BY"))?,
                    }
                }
                _ => b.bind(g, Mode::Row("GROUP BY"))?,
            }
        };
        keys.push(key);
    }

    let sort_exprs: Vec<&ast::OrderByExpr> = match order_by.map(|o| &o.kind) {
        None => vec![],
        Some(OrderByKind::Expressions(v)) => v.iter().collect(),
        Some(OrderByKind::All(_)) => return Err(PlanError::unsupported("ORDER BY ALL", None)),
    };

    let aggregated =
        !keys.is_empty() || select.having.is_some() || probe_aggregates(b, &items, &sort_exprs);
    let mode = if aggregated {
        b.group = Some(Grouping {
            keys,
            calls: vec![],
        });
        Mode::Group
    } else {
        Mode::Row("SELECT")
    };

    let mut projection = Vec::with_capacity(items.len());
    for (item, _) in &items {
        projection.push(match item {
            Item::Ast(e) => b.bind(e, mode)?,
            Item::Column(i) => {
                let col = Expr::column(*i, b.columns[*i].ty);
                match &b.group {
                    None => col,
                    Some(g) => match g.keys.iter().position(|k| *k == col) {
                        Some(k) => Expr::column(k, col.ty()),
                        None => {
                            return Err(PlanError::Grouping {
                                column: b.columns[*i].name.clone(),
                                position: None,
                            })
                        }
                    },
                }
            }
        });
    }
    let names: Vec<String> = items.into_iter().map(|(_, n)| n).collect();

    let having = select
        .having
        .as_ref()
        .map(|h| b.bind_condition(h, Mode::Group, "HAVING"))
        .transpose()?;

    let mut order = Vec::new();
    for o in sort_exprs {
        if o.with_fill.is_some() {
            return Err(PlanError::unsupported("WITH FILL", None));
        }
        let descending = o.options.asc == Some(false);
        let expr = if let Some(k) = ordinal(&o.expr) {
            let i = usize::try_from(k)
                .ok()
                .and_then(|k| k.checked_sub(1))
                .filter(|i| *i < projection.len());
            projection[i.ok_or(PlanError::BadOrdinal {
                clause: "ORDER BY",
                ordinal: k,
            })?]
            .clone()
        } else {
            // An output column name wins over an input column of the same name.
            let alias = match &o.expr {
                ast::Expr::Identifier(id) => {
                    let name = ident_name(id);
                    let hits: Vec<usize> = (0..names.len()).filter(|j| names[*j] == name).collect();
                    match hits.as_slice() {
                        [j] => Some(projection[*j].clone()),
                        [_, _, ..] => {
                            return Err(PlanError::AmbiguousColumn {
                                name,
                                position: None,
                            })
                        }
                        [] => None,
                    }
                }
                _ => None,
            };
            match alias {
                Some(e) => e,
                None => b.bind(
                    &o.expr,
                    if aggregated {
                        Mode::Group
                    } else {
                        Mode::Row("ORDER BY")
                    },
                )?,
            }
        };
        order.push(SortKey {
            expr,
            descending,
            nulls_first: o.options.nulls_first.unwrap_or(descending),
        });
    }

    let grouping = b.group.take().map(|g| BoundGrouping {
        keys: g.keys,
        calls: g.calls,
        having,
    });
    Ok(BoundSelect {
        filter,
        grouping,
        projection,
        names,
        order_by: order,
    })
}

/// Whether an aggregate appears in the select list or ORDER BY: binds them
/// row-wise and watches for the aggregate the row binding refuses.
fn probe_aggregates(
    b: &mut Binder<'_>,
    items: &[(Item<'_>, String)],
    sorts: &[&ast::OrderByExpr],
) -> bool {
    let params = b.params.clone();
    b.saw_aggregate = false;
    for (item, _) in items {
        if let Item::Ast(e) = item {
            let _ = b.bind(e, Mode::Row("SELECT"));
        }
    }
    for o in sorts {
        if ordinal(&o.expr).is_none() {
            let _ = b.bind(&o.expr, Mode::Row("ORDER BY"));
        }
    }
    b.params = params;
    std::mem::take(&mut b.saw_aggregate)
}
