//! SQL conformance: every `.slt` file under `tests/slt` runs against Eddy
//! and against a real PostgreSQL 15 holding the same rows (see
//! [`eddy_tests::reference`]), and must pass on both — so each expected
//! answer in those files is PostgreSQL's.
//!
//! `EDDY_SLT_COMPLETE=1` rewrites the files' expected results from
//! PostgreSQL's answers first (for writing new cases; review the diff).

use std::path::PathBuf;

use anyhow::{bail, Result};
use async_trait::async_trait;
use eddy_tests::reference::Reference;
use sqllogictest::{
    default_column_validator, default_normalizer, default_validator, AsyncDB, DBOutput,
    DefaultColumnType, Runner,
};
use tokio_postgres::{Client, NoTls, SimpleQueryMessage};

/// One connection of a conformance run, over the simple query protocol
/// (text results, as psql shows them).
struct Connection {
    client: Client,
}

async fn connect(conn: String) -> Result<Connection, tokio_postgres::Error> {
    let (client, connection) = tokio_postgres::connect(&conn, NoTls).await?;
    tokio::spawn(connection);
    Ok(Connection { client })
}

#[async_trait]
impl AsyncDB for Connection {
    type Error = tokio_postgres::Error;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, Self::Error> {
        let mut rows = Vec::new();
        let mut columns = None;
        let mut count = 0;
        for message in self.client.simple_query(sql).await? {
            match message {
                SimpleQueryMessage::RowDescription(c) => columns = Some(c.len()),
                SimpleQueryMessage::Row(row) => rows.push(
                    (0..row.len())
                        .map(|i| match row.get(i) {
                            None => "NULL".to_owned(),
                            Some("") => "(empty)".to_owned(),
                            Some(s) => s.to_owned(),
                        })
                        .collect(),
                ),
                SimpleQueryMessage::CommandComplete(n) => count = n,
                _ => {}
            }
        }
        Ok(match columns {
            Some(n) => DBOutput::Rows {
                types: vec![DefaultColumnType::Any; n],
                rows,
            },
            None => DBOutput::StatementComplete(count),
        })
    }

    async fn shutdown(&mut self) {}

    fn engine_name(&self) -> &str {
        "postgres-wire"
    }

    fn error_sql_state(err: &Self::Error) -> Option<String> {
        err.code().map(|c| c.code().to_owned())
    }
}

fn files() -> Result<Vec<PathBuf>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("slt");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)?
        .filter_map(|e| Some(e.ok()?.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "slt"))
        .collect();
    files.sort();
    if files.is_empty() {
        bail!("no .slt files in {}", dir.display());
    }
    Ok(files)
}

#[tokio::test]
async fn conformance_files_pass_on_eddy_and_on_postgresql() -> Result<()> {
    let reference = Reference::start().await?;
    let files = files()?;
    let engines = [
        ("PostgreSQL", reference.pg.conn_str()),
        ("Eddy", reference.cluster.node().connection_string()),
    ];
    if std::env::var_os("EDDY_SLT_COMPLETE").is_some() {
        for file in &files {
            let conn = engines[0].1.clone();
            let mut runner = Runner::new(move || connect(conn.clone()));
            if let Err(e) = runner
                .update_test_file(
                    file,
                    " ",
                    default_validator,
                    default_normalizer,
                    default_column_validator,
                )
                .await
            {
                bail!("completing {}: {e}", file.display());
            }
        }
    }
    let mut failures = Vec::new();
    for (engine, conn) in &engines {
        for file in &files {
            let conn = conn.clone();
            let mut runner = Runner::new(move || connect(conn.clone()));
            if let Err(e) = runner.run_file_async(file).await {
                failures.push(format!("{engine}: {}", e.display(false)));
            }
        }
    }
    if !failures.is_empty() {
        bail!(
            "{} conformance failures:\n\n{}",
            failures.len(),
            failures.join("\n\n")
        );
    }
    Ok(())
}
