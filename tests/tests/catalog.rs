//! The catalog as users see it: SHOW / DROP, the `max_staleness` session variable,
//! and the whole path through the real `psql` binary.

use std::process::Command;

use anyhow::{bail, ensure, Context, Result};
use eddy_tests::fixtures::{
    create_orders_source, create_revenue_view, orders, orders_and_revenue, Order,
};
use eddy_tests::{assert_sqlstate, eventually, query_rows, TestCluster, DEADLINE};

/// Whether a SHOW listing names `name` (its first column is the name).
fn lists(rows: &[Vec<String>], name: &str) -> bool {
    rows.iter()
        .any(|r| r.first().is_some_and(|cell| cell == name))
}

#[tokio::test]
async fn show_and_drop_sources_and_views() -> Result<()> {
    let cluster = TestCluster::start().await?;
    let (client, topic) = orders_and_revenue(&cluster, 2, 2).await?;

    ensure!(lists(&query_rows(&client, "SHOW SOURCES").await?, "orders"));
    let views = query_rows(&client, "SHOW MATERIALIZED VIEWS").await?;
    ensure!(
        lists(&views, "revenue"),
        "SHOW MATERIALIZED VIEWS: {views:?}"
    );
    ensure!(
        !lists(&views, "orders"),
        "a source is not a view: {views:?}"
    );

    // Names are taken.
    let err = eddy_tests::sql_error(&client, &create_orders_source("orders", &topic)).await?;
    ensure!(
        ["42P07", "42710"].contains(&err.code().code()),
        "duplicate source: {err:?}"
    );

    assert_sqlstate(&client, "DROP SOURCE orders", "2BP01").await?;
    client
        .batch_execute("DROP MATERIALIZED VIEW revenue")
        .await?;
    let views = query_rows(&client, "SHOW MATERIALIZED VIEWS").await?;
    ensure!(
        !lists(&views, "revenue"),
        "dropped view still listed: {views:?}"
    );
    assert_sqlstate(&client, "SELECT * FROM revenue", "42P01").await?;
    assert_sqlstate(&client, "DROP MATERIALIZED VIEW revenue", "42P01").await?;
    client
        .batch_execute("DROP MATERIALIZED VIEW IF EXISTS revenue")
        .await?;

    client.batch_execute("DROP SOURCE orders").await?;
    ensure!(!lists(
        &query_rows(&client, "SHOW SOURCES").await?,
        "orders"
    ));

    // The names are free again, and the recreated view answers.
    client
        .batch_execute(&create_orders_source("orders", &topic))
        .await?;
    client
        .batch_execute(&create_revenue_view("revenue", "orders", 2))
        .await?;
    let batch = orders(11, 1, 50, 5);
    cluster
        .producer()?
        .produce_batch(&topic, batch.iter().map(Order::record))
        .await?;
    let want = batch
        .iter()
        .filter(|o| o.status != "cancelled")
        .count()
        .to_string();
    eventually(DEADLINE, async || {
        let got = query_rows(&client, "SELECT SUM(orders) FROM revenue").await?;
        ensure!(
            got == vec![vec![want.clone()]],
            "SUM(orders) = {got:?}, want {want}"
        );
        Ok(())
    })
    .await?;
    Ok(())
}

/// `500ms`, `500 ms`, `0.5s` all mean the same bound.
fn millis(shown: &str) -> Option<f64> {
    let s: String = shown.chars().filter(|c| !c.is_whitespace()).collect();
    let split = s.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().ok()?;
    Some(match unit {
        "ms" => n,
        "s" | "sec" | "secs" => n * 1e3,
        "min" | "mins" => n * 60e3,
        _ => return None,
    })
}

#[tokio::test]
async fn max_staleness_set_show_reset() -> Result<()> {
    let cluster = TestCluster::start().await?;
    let client = cluster.client().await?;
    let show = async || -> Result<String> {
        let rows = query_rows(&client, "SHOW max_staleness").await?;
        match rows.as_slice() {
            [row] if row.len() == 1 => Ok(row[0].clone()),
            other => bail!("SHOW max_staleness gave {other:?}"),
        }
    };

    let default = show().await?;
    ensure!(
        default == "0" || millis(&default) == Some(0.0),
        "default max_staleness is 0, got {default:?}"
    );
    for (set, ms) in [("'500ms'", 500.0), ("'2s'", 2000.0), ("'1min'", 60_000.0)] {
        client
            .batch_execute(&format!("SET max_staleness = {set}"))
            .await?;
        let shown = show().await?;
        ensure!(
            millis(&shown) == Some(ms),
            "after SET {set}: SHOW gave {shown:?}"
        );
    }
    client.batch_execute("SET max_staleness = 0").await?;
    let shown = show().await?;
    ensure!(
        shown == "0" || millis(&shown) == Some(0.0),
        "SET 0: {shown:?}"
    );

    client.batch_execute("SET max_staleness TO '2s'").await?;
    client.batch_execute("RESET max_staleness").await?;
    ensure!(show().await? == default, "RESET restores the default");

    let err = assert_sqlstate(&client, "SET max_staleness = 'banana'", "22023").await?;
    ensure!(!err.message().is_empty());
    assert_sqlstate(&client, "SET max_staleness = '-1s'", "22023").await?;
    ensure!(show().await? == default, "a rejected SET changes nothing");
    Ok(())
}

#[tokio::test]
async fn psql_binary_reads_a_view() -> Result<()> {
    let cluster = TestCluster::start().await?;
    let topic = cluster.create_topic("orders", 2).await?;
    let node = cluster.node();
    // Exactly the command the README prints, plus -At -c.
    let url = format!(
        "postgresql://eddy:{}@127.0.0.1:{}/eddy",
        node.password(),
        node.pg_port()
    );
    let psql = |sql: &str| -> Result<String> {
        let out = Command::new("psql")
            .args([&url, "-At", "-v", "ON_ERROR_STOP=1", "-c", sql])
            .env("PGCONNECT_TIMEOUT", "10")
            .output()
            .context("running psql (apt-get install postgresql-client)")?;
        ensure!(
            out.status.success(),
            "psql -c {sql:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(String::from_utf8(out.stdout)?.trim_end().to_owned())
    };

    ensure!(psql("SELECT 1")? == "1");
    psql(&create_orders_source("orders", &topic))?;
    psql(&create_revenue_view("revenue", "orders", 2))?;
    let batch = orders(12, 1, 200, 4);
    cluster
        .producer()?
        .produce_batch(&topic, batch.iter().map(Order::record))
        .await?;
    let expected = eddy_tests::fixtures::expected_revenue(&batch);
    let want: String = expected
        .iter()
        .map(|(c, r)| format!("{c}|{}", r.orders))
        .collect::<Vec<_>>()
        .join("\n");
    let sql = "SELECT customer, orders FROM revenue ORDER BY customer";
    eventually(DEADLINE, async || {
        let got = psql(sql)?;
        ensure!(got == want, "psql printed {got:?}, want {want:?}");
        Ok(())
    })
    .await?;
    Ok(())
}
