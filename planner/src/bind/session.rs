//! The small statements: DROP, SHOW, SET, RESET, transactions.

use super::scalar::ident_name;
use super::{object_name, option_value};
use crate::error::PlanError;
use crate::statement::Statement;
use sqlparser::ast::{self, Ident, ObjectName, ObjectType, Reset, Set};

pub(crate) fn drop(
    object_type: ObjectType,
    if_exists: bool,
    names: &[ObjectName],
    cascade: bool,
) -> Result<Statement, PlanError> {
    let [name] = names else {
        return Err(PlanError::unsupported(
            "dropping several objects in one statement",
            None,
        ));
    };
    if cascade {
        return Err(PlanError::unsupported("DROP ... CASCADE", None)
            .with_hint("Drop the dependent views first."));
    }
    let name = object_name(name)?;
    match object_type {
        ObjectType::MaterializedView | ObjectType::View => {
            Ok(Statement::DropView { name, if_exists })
        }
        ObjectType::Stream => Ok(Statement::DropSource { name, if_exists }),
        ObjectType::Table => Err(PlanError::unsupported("DROP TABLE", None).with_hint(
            "Eddy has sources and materialized views: DROP SOURCE or DROP MATERIALIZED VIEW.",
        )),
        other => Err(PlanError::unsupported(format!("DROP {other}"), None)),
    }
}

pub(crate) fn show(variable: &[Ident]) -> Statement {
    let name = variable
        .iter()
        .map(ident_name)
        .collect::<Vec<_>>()
        .join(" ");
    match name.as_str() {
        "sources" => Statement::ShowSources,
        "views" | "materialized views" => Statement::ShowViews,
        "transaction isolation level" => Statement::ShowVariable {
            name: "transaction_isolation".into(),
        },
        "time zone" => Statement::ShowVariable {
            name: "timezone".into(),
        },
        _ => Statement::ShowVariable { name },
    }
}

pub(crate) fn set(set: &Set) -> Result<Statement, PlanError> {
    match set {
        Set::SingleAssignment {
            variable,
            values,
            scope,
            ..
        } => {
            let local = matches!(scope, Some(ast::ContextModifier::Local));
            let name = object_name(variable)?;
            let value = match values.as_slice() {
                [ast::Expr::Identifier(id)]
                    if id.quote_style.is_none() && id.value.eq_ignore_ascii_case("default") =>
                {
                    None
                }
                vals => Some(vals.iter().map(option_value).collect::<Vec<_>>().join(", ")),
            };
            Ok(Statement::SetVariable { name, value, local })
        }
        Set::SetTimeZone { value, local } => Ok(Statement::SetVariable {
            name: "timezone".into(),
            value: Some(option_value(value)),
            local: *local,
        }),
        other => Err(PlanError::unsupported(format!("{other}"), None)),
    }
}

pub(crate) fn reset(reset: &Reset) -> Result<Statement, PlanError> {
    Ok(Statement::ResetVariable {
        name: match reset {
            Reset::ALL => "all".into(),
            Reset::ConfigurationParameter(name) => object_name(name)?,
        },
    })
}
