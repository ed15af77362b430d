//! Text-row helpers over the simple query protocol, and SQLSTATE assertions.

use std::collections::BTreeMap;

use anyhow::{anyhow, bail, Result};
use tokio_postgres::error::DbError;
use tokio_postgres::{Client, SimpleQueryMessage};

/// How a SQL NULL appears in text rows.
pub const NULL: &str = "NULL";

/// Runs `sql` (simple query protocol) and returns the rows of its last result as text,
/// NULL as `"NULL"`, in the server's order.
pub async fn query_rows(client: &Client, sql: &str) -> Result<Vec<Vec<String>>> {
    let mut rows = Vec::new();
    for msg in client.simple_query(sql).await? {
        if let SimpleQueryMessage::Row(row) = msg {
            rows.push(
                (0..row.len())
                    .map(|i| row.get(i).unwrap_or(NULL).to_owned())
                    .collect(),
            );
        }
    }
    Ok(rows)
}

/// [`query_rows`], sorted: for comparing answers whose order SQL leaves open.
pub async fn query_rows_sorted(client: &Client, sql: &str) -> Result<Vec<Vec<String>>> {
    let mut rows = query_rows(client, sql).await?;
    rows.sort();
    Ok(rows)
}

/// Rows as maps column name → text value (`None` for NULL).
pub async fn query_maps(
    client: &Client,
    sql: &str,
) -> Result<Vec<BTreeMap<String, Option<String>>>> {
    let mut rows = Vec::new();
    for msg in client.simple_query(sql).await? {
        if let SimpleQueryMessage::Row(row) = msg {
            let mut map = BTreeMap::new();
            for (i, col) in row.columns().iter().enumerate() {
                map.insert(col.name().to_owned(), row.get(i).map(str::to_owned));
            }
            rows.push(map);
        }
    }
    Ok(rows)
}

/// Runs `sql`, which must fail with a server error; returns that error.
pub async fn sql_error(client: &Client, sql: &str) -> Result<DbError> {
    match client.simple_query(sql).await {
        Ok(_) => bail!("expected an error from {sql:?}, but it succeeded"),
        Err(err) => err
            .as_db_error()
            .cloned()
            .ok_or_else(|| anyhow!("expected a server error from {sql:?}, got {err}")),
    }
}

/// Runs `sql`, which must fail with SQLSTATE `code`; returns the error for further
/// checks (message, hint, position).
pub async fn assert_sqlstate(client: &Client, sql: &str, code: &str) -> Result<DbError> {
    let err = sql_error(client, sql).await?;
    if err.code().code() != code {
        bail!(
            "{sql:?}: expected SQLSTATE {code}, got {} ({}; hint: {:?})",
            err.code().code(),
            err.message(),
            err.hint()
        );
    }
    Ok(err)
}
