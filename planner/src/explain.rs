//! `EXPLAIN`: a statement's plan as readable lines, outermost step first.

use crate::expr::Expr;
use crate::plan::{AggCall, AggFunc, ReadPlan, RelationRef, SortKey, ViewDef, ViewPlan};
use crate::statement::Statement;

/// The plan of `stmt` as text lines (the inner statement's for EXPLAIN).
pub fn explain(stmt: &Statement) -> Vec<String> {
    match stmt {
        Statement::Explain(inner) => explain(inner),
        Statement::Select(p) => tree(read_steps(p)),
        Statement::CreateView(v) => tree(view_steps(v)),
        other => vec![format!("Utility statement: {}", other.command_tag())],
    }
}

/// Steps in execution order → lines with the last step at the top.
fn tree(steps: Vec<String>) -> Vec<String> {
    steps
        .into_iter()
        .rev()
        .enumerate()
        .map(|(depth, s)| {
            if depth == 0 {
                s
            } else {
                format!("{}-> {s}", "  ".repeat(depth))
            }
        })
        .collect()
}

fn call_text(c: &AggCall, names: &[String]) -> String {
    let func = match c.func {
        AggFunc::CountStar => return "count(*)".into(),
        AggFunc::Count => "count",
        AggFunc::Sum => "sum",
        AggFunc::Avg => "avg",
        AggFunc::Min => "min",
        AggFunc::Max => "max",
    };
    let arg = c
        .arg
        .as_ref()
        .map(|a| a.display(names).to_string())
        .unwrap_or_default();
    format!("{func}({arg})")
}

fn list(exprs: &[Expr], names: &[String]) -> String {
    exprs
        .iter()
        .map(|e| e.display(names).to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Names of a group row's columns: the keys, then the aggregates.
fn group_names(keys: &[Expr], calls: &[AggCall], input: &[String]) -> Vec<String> {
    keys.iter()
        .map(|k| k.display(input).to_string())
        .chain(calls.iter().map(|c| call_text(c, input)))
        .collect()
}

fn sort_text(keys: &[SortKey], names: &[String]) -> String {
    keys.iter()
        .map(|k| {
            let dir = if k.descending { " DESC" } else { "" };
            let nulls = match (k.descending, k.nulls_first) {
                (false, true) => " NULLS FIRST",
                (true, false) => " NULLS LAST",
                _ => "",
            };
            format!("{}{dir}{nulls}", k.expr.display(names))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn read_steps(p: &ReadPlan) -> Vec<String> {
    let input: Vec<String> = p.relation_columns.iter().map(|c| c.name.clone()).collect();
    let mut steps = vec![match (&p.relation, &p.key_lookup) {
        (RelationRef::Nothing, _) => "Result (no FROM)".to_owned(),
        (RelationRef::View(v), Some(key)) => {
            let pins: Vec<String> = p
                .key_columns
                .iter()
                .zip(key)
                .map(|(k, e)| {
                    format!(
                        "{} = {}",
                        input.get(*k).map_or("?", String::as_str),
                        e.display(&input)
                    )
                })
                .collect();
            format!("Key lookup on {v} ({})", pins.join(", "))
        }
        (RelationRef::View(v), None) => format!("Scan of {v} (all partitions)"),
        (RelationRef::System(t), _) => format!("Scan of system table {t}"),
    }];
    if let Some(f) = &p.filter {
        steps.push(format!("Filter: {}", f.display(&input)));
    }
    let row_names = match &p.aggregate {
        Some(a) => {
            let mut s = format!(
                "Aggregate: {}",
                a.aggregates
                    .iter()
                    .map(|c| call_text(c, &input))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            if !a.group_by.is_empty() {
                s.push_str(&format!(" group by {}", list(&a.group_by, &input)));
            }
            steps.push(s);
            let names = group_names(&a.group_by, &a.aggregates, &input);
            if let Some(h) = &a.having {
                steps.push(format!("Having: {}", h.display(&names)));
            }
            names
        }
        None => input,
    };
    if !p.order_by.is_empty() {
        steps.push(format!("Sort: {}", sort_text(&p.order_by, &row_names)));
    }
    if let Some(o) = &p.offset {
        steps.push(format!("Offset: {}", o.display(&row_names)));
    }
    if let Some(l) = &p.limit {
        steps.push(format!("Limit: {}", l.display(&row_names)));
    }
    let out: Vec<String> = p
        .projection
        .iter()
        .zip(&p.columns)
        .map(|(e, c)| {
            let text = e.display(&row_names).to_string();
            if text == c.name {
                text
            } else {
                format!("{text} AS {}", c.name)
            }
        })
        .collect();
    steps.push(format!("Output: {}", out.join(", ")));
    steps
}

fn view_steps(v: &ViewDef) -> Vec<String> {
    // A view's expressions index the source's columns, which the ViewDef does
    // not carry: they print as #0, #1, ...
    let none: Vec<String> = Vec::new();
    let mut steps = vec![format!(
        "Source {} (partitions: {}, standbys: {})",
        v.source, v.partitions, v.standbys
    )];
    let (filter, outputs, row_names) = match &v.plan {
        ViewPlan::Aggregate(a) => (a.filter.as_ref(), &a.output, Some(a)),
        ViewPlan::Project(p) => (p.filter.as_ref(), &p.output, None),
    };
    if let Some(f) = filter {
        steps.push(format!("Filter: {}", f.display(&none)));
    }
    let names = match row_names {
        Some(a) => {
            steps.push(format!(
                "Incremental aggregate: {} group by [{}]",
                a.aggregates
                    .iter()
                    .map(|c| call_text(c, &none))
                    .collect::<Vec<_>>()
                    .join(", "),
                list(&a.group_by, &none)
            ));
            let names = group_names(&a.group_by, &a.aggregates, &none);
            if let Some(h) = &a.having {
                steps.push(format!("Having: {}", h.display(&names)));
            }
            names
        }
        None => none.clone(),
    };
    let key: Vec<&str> = v
        .key_columns
        .iter()
        .filter_map(|k| v.columns.get(*k))
        .map(|c| c.name.as_str())
        .collect();
    steps.push(format!(
        "Materialize {} ({}) keyed by {}",
        v.name,
        outputs
            .iter()
            .zip(&v.columns)
            .map(|(e, c)| format!("{} AS {}", e.display(&names), c.name))
            .collect::<Vec<_>>()
            .join(", "),
        if key.is_empty() {
            "source offset".to_owned()
        } else {
            key.join(", ")
        }
    ));
    steps
}
