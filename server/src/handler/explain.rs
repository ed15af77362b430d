//! `EXPLAIN`: the plan as text, one row per line.

use common::{Column, SqlType, Value};
use planner::Statement;

use crate::error::Error;
use crate::session::Outcome;

pub fn run(stmt: &Statement) -> Result<Outcome, Error> {
    let rows = planner::explain(stmt)
        .into_iter()
        .map(|line| vec![Value::Text(line)])
        .collect();
    Ok(Outcome::Rows {
        columns: vec![Column::new("QUERY PLAN", SqlType::Text)],
        rows,
    })
}
