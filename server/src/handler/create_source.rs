//! `CREATE SOURCE`: checks the topic exists, then logs the source.

use planner::plan::SourceDef;

use super::{command, Database};
use crate::catalog::command::Command;
use crate::error::Error;
use crate::session::Outcome;

pub async fn run(db: &Database, def: SourceDef) -> Result<Outcome, Error> {
    let kafka = db.dataflow.kafka().clone();
    let topic = def.topic.clone();
    let partitions = tokio::task::spawn_blocking(move || kafka.partition_count(&topic))
        .await
        .map_err(Error::internal)??;
    if partitions.is_none() {
        return Err(Error::MissingTopic { topic: def.topic });
    }
    db.catalog.submit(Command::CreateSource(def)).await?;
    Ok(command("CREATE SOURCE"))
}
