//! Exactly-once results across restarts, SIGKILL and broker restarts (DESIGN §4.1):
//! every view converges to exactly the answer computed here from all records.

use anyhow::{ensure, Result};
use eddy_tests::fixtures::{
    check_revenue, expected_revenue, fetch_revenue, orders, orders_and_revenue,
    produce_in_background, Order,
};
use eddy_tests::{eventually, query_rows, TestCluster, DEADLINE};

/// A one-node cluster with source `orders` and view `revenue` over a 4-partition topic.
async fn setup() -> Result<(TestCluster, String)> {
    let cluster = TestCluster::start().await?;
    let (_client, topic) = orders_and_revenue(&cluster, 4, 4).await?;
    Ok((cluster, topic))
}

async fn produce(cluster: &TestCluster, topic: &str, batch: &[Order]) -> Result<()> {
    cluster
        .producer()?
        .produce_batch(topic, batch.iter().map(Order::record))
        .await?;
    Ok(())
}

async fn converges(cluster: &TestCluster, all: &[Order]) -> Result<()> {
    let expected = expected_revenue(all);
    // A fresh client per attempt: the node may have restarted since the last one.
    eventually(DEADLINE, async || {
        let client = cluster.client().await?;
        check_revenue(&client, "revenue", &expected).await
    })
    .await
}

#[tokio::test]
async fn restart_on_the_same_data_dir_keeps_answers_and_ingests_exactly_once() -> Result<()> {
    let (mut cluster, topic) = setup().await?;
    let mut all = orders(21, 1, 3_000, 30);
    produce(&cluster, &topic, &all).await?;
    converges(&cluster, &all).await?;
    let before = fetch_revenue(&cluster.client().await?, "revenue").await?;

    cluster.node_mut().restart().await?;
    converges(&cluster, &all).await?;
    let after = fetch_revenue(&cluster.client().await?, "revenue").await?;
    assert_eq!(before, after, "the same answers after a restart");

    // The catalog survived too, and ingestion resumes where it stopped.
    let client = cluster.client().await?;
    let views = query_rows(&client, "SHOW MATERIALIZED VIEWS").await?;
    ensure!(
        views.iter().any(|r| r.iter().any(|c| c == "revenue")),
        "{views:?}"
    );
    let more = orders(22, 100_000, 1_000, 30);
    produce(&cluster, &topic, &more).await?;
    all.extend(more);
    converges(&cluster, &all).await
}

#[tokio::test]
async fn restart_with_an_empty_data_dir_rebuilds_from_the_changelog() -> Result<()> {
    let (mut cluster, topic) = setup().await?;
    let mut all = orders(31, 1, 3_000, 30);
    produce(&cluster, &topic, &all).await?;
    converges(&cluster, &all).await?;
    let before = fetch_revenue(&cluster.client().await?, "revenue").await?;

    let node = cluster.node_mut();
    node.stop().await?;
    node.wipe_data_dir()?;
    node.start().await?;
    converges(&cluster, &all).await?;
    let after = fetch_revenue(&cluster.client().await?, "revenue").await?;
    assert_eq!(before, after, "the same answers after a rebuild");

    let more = orders(32, 100_000, 1_000, 30);
    produce(&cluster, &topic, &more).await?;
    all.extend(more);
    converges(&cluster, &all).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_during_ingestion_converges_exactly_once() -> Result<()> {
    const TOTAL: usize = 20_000;
    let (mut cluster, topic) = setup().await?;
    let all = orders(41, 1, TOTAL, 50);
    let non_cancelled = all.iter().filter(|o| o.status != "cancelled").count() as i64;

    // The producer runs beside the node, in chunks, while the node ingests.
    let producer = cluster.producer()?;
    let feed = produce_in_background(producer, &topic, &all, 500);

    // Kill once a part of the records is counted, before all of them are.
    let client = cluster.client().await?;
    let counted = eventually(DEADLINE, async || {
        let rows = query_rows(&client, "SELECT SUM(orders) FROM revenue").await?;
        let n: i64 = rows
            .first()
            .and_then(|r| r.first())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        ensure!(n >= non_cancelled / 5, "only {n} orders counted so far");
        Ok(n)
    })
    .await?;
    cluster.node_mut().kill9();
    eprintln!("killed with {counted} of {non_cancelled} orders counted");

    cluster.node_mut().start().await?;
    feed.await??;
    converges(&cluster, &all).await?;

    // A second SIGKILL right after a restart, before anything new arrives.
    cluster.node_mut().kill9();
    cluster.node_mut().start().await?;
    converges(&cluster, &all).await
}

#[tokio::test]
async fn broker_restart_under_a_running_node_loses_and_duplicates_nothing() -> Result<()> {
    let (mut cluster, topic) = setup().await?;
    let mut all = orders(51, 1, 2_000, 20);
    produce(&cluster, &topic, &all).await?;
    converges(&cluster, &all).await?;

    cluster.broker.restart().await?;
    let more = orders(52, 100_000, 2_000, 20);
    produce(&cluster, &topic, &more).await?;
    all.extend(more);
    converges(&cluster, &all).await?;

    // And a node restart after the broker restart still agrees.
    cluster.node_mut().restart().await?;
    converges(&cluster, &all).await
}
