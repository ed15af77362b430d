//! `CREATE MATERIALIZED VIEW`: logs the view, then waits until this node's
//! task for it is running, so the next statement can read it.

use planner::plan::ViewDef;
use std::time::Duration;

use super::{command, Database};
use crate::catalog::command::Command;
use crate::catalog::Effect;
use crate::error::Error;
use crate::session::Outcome;
use dataflow::TaskState;

/// How long CREATE waits for the view's task to start.
const START_DEADLINE: Duration = Duration::from_secs(60);

pub async fn run(db: &Database, def: ViewDef) -> Result<Outcome, Error> {
    let name = def.name.clone();
    let Effect::ViewCreated { view, .. } = db
        .catalog
        .submit(Command::CreateView(Box::new(def)))
        .await?
    else {
        return Err(Error::internal(
            "CREATE MATERIALIZED VIEW applied as something else",
        ));
    };
    let Some(status) = db.dataflow.status(view.id) else {
        return Err(Error::internal(format!("view {name} has no task")));
    };
    match status.wait_restored(START_DEADLINE).await {
        TaskState::Running => Ok(command("CREATE MATERIALIZED VIEW")),
        TaskState::Failed(reason) => Err(Error::ViewUnavailable {
            view: name,
            partition: 0,
            reason,
        }),
        other => Err(Error::ViewUnavailable {
            view: name,
            partition: 0,
            reason: format!(
                "still {} after {START_DEADLINE:?}",
                crate::system::state_name(Some(other))
            ),
        }),
    }
}
