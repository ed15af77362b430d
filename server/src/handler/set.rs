//! `SET`, `SHOW` and `RESET` of session variables (declared in
//! `session::vars`).

use common::{Column, SqlType, Value};

use super::command;
use crate::error::Error;
use crate::session::vars::SessionVars;
use crate::session::{Outcome, WireError};

pub fn set(
    vars: &mut SessionVars,
    name: &str,
    value: Option<&str>,
    local: bool,
) -> Result<Outcome, Error> {
    match value {
        Some(v) => vars.set_scoped(name, v, local).map(|_| ()),
        None => vars.reset_scoped(name, local),
    }
    .map_err(var_error)?;
    Ok(command("SET"))
}

pub fn reset(vars: &mut SessionVars, name: &str) -> Result<Outcome, Error> {
    if name.eq_ignore_ascii_case("all") {
        vars.reset_all();
    } else {
        vars.reset(name).map_err(var_error)?;
    }
    Ok(command("RESET"))
}

pub fn show(vars: &SessionVars, name: &str) -> Result<Outcome, Error> {
    if name.eq_ignore_ascii_case("all") {
        let rows = vars
            .show_all()
            .into_iter()
            .map(|r| {
                vec![
                    Value::Text(r.name.into()),
                    Value::Text(r.setting),
                    Value::Text(r.description.into()),
                ]
            })
            .collect();
        return Ok(Outcome::Rows {
            columns: show_columns(vars, name),
            rows,
        });
    }
    let value = vars.get(name).map_err(var_error)?;
    Ok(Outcome::Rows {
        columns: show_columns(vars, name),
        rows: vec![vec![Value::Text(value)]],
    })
}

pub fn show_columns(_vars: &SessionVars, name: &str) -> Vec<Column> {
    if name.eq_ignore_ascii_case("all") {
        return ["name", "setting", "description"]
            .iter()
            .map(|n| Column::new(*n, SqlType::Text))
            .collect();
    }
    let name = SessionVars::canonical_name(name).unwrap_or(name);
    vec![Column::new(name, SqlType::Text)]
}

fn var_error(e: crate::session::vars::VarError) -> Error {
    Error::Session(WireError::from(e))
}
