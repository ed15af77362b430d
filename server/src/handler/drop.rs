//! `DROP MATERIALIZED VIEW` and `DROP SOURCE`.

use super::{command, Database};
use crate::catalog::command::Command;
use crate::error::Error;
use crate::session::Outcome;

pub async fn view(db: &Database, name: String, if_exists: bool) -> Result<Outcome, Error> {
    drop(
        db,
        Command::DropView { name },
        if_exists,
        "DROP MATERIALIZED VIEW",
    )
    .await
}

pub async fn source(db: &Database, name: String, if_exists: bool) -> Result<Outcome, Error> {
    drop(db, Command::DropSource { name }, if_exists, "DROP SOURCE").await
}

async fn drop(db: &Database, cmd: Command, if_exists: bool, tag: &str) -> Result<Outcome, Error> {
    match db.catalog.submit(cmd).await {
        Ok(_) => Ok(command(tag)),
        Err(Error::UnknownObject { .. }) if if_exists => Ok(command(tag)),
        Err(e) => Err(e),
    }
}
