//! SIGKILL at many moments, on append-only and upsert sources, ending with a
//! restart on a wiped disk: whatever batches were cut short by a kill, the
//! views converge to exactly the answer computed here (DESIGN §4.1).

use anyhow::{ensure, Result};
use eddy_tests::fixtures::{
    check_revenue, expected_revenue, orders, orders_and_revenue, produce_in_background,
};
use eddy_tests::{eventually, query_rows, query_rows_sorted, Record, TestCluster, DEADLINE};
use std::collections::BTreeMap;

/// Reads one integer from the first cell of `sql`'s answer (0 when empty).
async fn scalar(cluster: &TestCluster, sql: &str) -> Result<i64> {
    let client = cluster.client().await?;
    let rows = query_rows(&client, sql).await?;
    Ok(rows
        .first()
        .and_then(|r| r.first())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0))
}

/// Waits until `sql` reports at least `at_least`, so a kill lands mid-stream.
async fn wait_until_counted(cluster: &TestCluster, sql: &str, at_least: i64) -> Result<i64> {
    eventually(DEADLINE, async || {
        let n = scalar(cluster, sql).await?;
        ensure!(n >= at_least, "{n} counted so far, waiting for {at_least}");
        Ok(n)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_kill9_then_a_wiped_disk_converges_exactly_once() -> Result<()> {
    const TOTAL: usize = 30_000;
    let mut cluster = TestCluster::start().await?;
    let (_client, topic) = orders_and_revenue(&cluster, 4, 4).await?;
    let all = orders(61, 1, TOTAL, 40);
    let counted_total = all.iter().filter(|o| o.status != "cancelled").count() as i64;

    let producer = cluster.producer()?;
    let feed = produce_in_background(producer, &topic, &all, 300);

    // Three kills at growing counts; the last restart starts from an empty disk,
    // so state comes back from the changelog with any cut-short batch skipped.
    for (i, fraction) in [10, 35, 60].into_iter().enumerate() {
        let n = wait_until_counted(
            &cluster,
            "SELECT SUM(orders) FROM revenue",
            counted_total * fraction / 100,
        )
        .await?;
        cluster.node_mut().kill9();
        eprintln!("kill {} with {n} of {counted_total} counted", i + 1);
        if i == 2 {
            cluster.node_mut().wipe_data_dir()?;
        }
        cluster.node_mut().start().await?;
    }
    feed.await??;
    let expected = expected_revenue(&all);
    eventually(DEADLINE, async || {
        let client = cluster.client().await?;
        check_revenue(&client, "revenue", &expected).await
    })
    .await
}

/// One account update: a new balance for `id` in `region`, or a delete.
#[derive(Clone)]
struct Update {
    id: String,
    change: Option<(String, i64)>,
}

fn updates(count: usize) -> Vec<Update> {
    let mut rng = eddy_tests::fixtures::Rng::new(7);
    (0..count)
        .map(|_| {
            let id = format!("acct-{}", rng.below(300));
            let change = (rng.below(10) != 0).then(|| {
                let region = ["emea", "apac", "amer", "latam"][rng.below(4) as usize].to_owned();
                (region, rng.below(10_000) as i64 - 2_000)
            });
            Update { id, change }
        })
        .collect()
}

/// `region|count|sum|min|max` per region of the latest balance of every live account.
fn expected_regions(all: &[Update]) -> Vec<Vec<String>> {
    let mut latest: BTreeMap<&str, Option<&(String, i64)>> = BTreeMap::new();
    for u in all {
        latest.insert(&u.id, u.change.as_ref());
    }
    let mut regions: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
    for (region, balance) in latest.values().flatten() {
        regions.entry(region).or_default().push(*balance);
    }
    regions
        .into_iter()
        .map(|(region, b)| {
            let (min, max) = (b.iter().min().unwrap(), b.iter().max().unwrap());
            vec![
                region.to_owned(),
                b.len().to_string(),
                b.iter().sum::<i64>().to_string(),
                min.to_string(),
                max.to_string(),
            ]
        })
        .collect()
}

/// Source `accounts` (upsert) over a fresh topic and view `regions`, a GROUP
/// BY on a column the primary key does not determine: updates move accounts
/// between groups.
async fn accounts_and_regions(cluster: &TestCluster, partitions: u32) -> Result<String> {
    let topic = cluster.create_topic("accounts", 3).await?;
    cluster
        .client()
        .await?
        .batch_execute(&format!(
            "CREATE SOURCE accounts (id TEXT PRIMARY KEY, region TEXT, balance BIGINT) WITH (topic = '{topic}');
             CREATE MATERIALIZED VIEW regions WITH (partitions = {partitions}) AS
                 SELECT region, COUNT(*) AS accounts, SUM(balance) AS total, MIN(balance) AS lowest, MAX(balance) AS highest
                 FROM accounts GROUP BY region;"
        ))
        .await?;
    Ok(topic)
}

/// Produces `all` (keyed; deletes as tombstones) from a background task.
fn feed_updates(
    cluster: &TestCluster,
    topic: &str,
    all: &[Update],
) -> Result<tokio::task::JoinHandle<Result<()>>> {
    let records = |part: &[Update]| -> Vec<Record> {
        part.iter()
            .map(|u| match &u.change {
                Some((region, balance)) => Record::keyed(
                    &u.id,
                    format!(
                        r#"{{"id": "{}", "region": "{region}", "balance": {balance}}}"#,
                        u.id
                    ),
                ),
                None => Record::tombstone(&u.id),
            })
            .collect()
    };
    let producer = cluster.producer()?;
    let (all, topic) = (all.to_vec(), topic.to_owned());
    Ok(tokio::spawn(async move {
        for chunk in all.chunks(200) {
            producer.produce_batch(&topic, records(chunk)).await?;
        }
        anyhow::Ok(())
    }))
}

/// Waits until `regions` read through node `node` is the SQL's answer over `all`.
async fn regions_converge(cluster: &TestCluster, node: usize, all: &[Update]) -> Result<()> {
    let expected = expected_regions(all);
    let sql = "SELECT region, accounts, total, lowest, highest FROM regions";
    eventually(DEADLINE, async || {
        let client = cluster.nodes[node].client().await?;
        let got = query_rows_sorted(&client, sql).await?;
        ensure!(
            got == expected,
            "regions on node {} differ:\n got      {got:?}\n expected {expected:?}",
            node + 1
        );
        Ok(())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upsert_retractions_survive_kill9_and_a_wiped_disk() -> Result<()> {
    let mut cluster = TestCluster::start().await?;
    let topic = accounts_and_regions(&cluster, 3).await?;
    let all = updates(12_000);
    let feed = feed_updates(&cluster, &topic, &all)?;
    let progress = "SELECT records FROM eddy_catalog.views WHERE name = 'regions'";
    wait_until_counted(&cluster, progress, 3_000).await?;
    cluster.node_mut().kill9();
    cluster.node_mut().start().await?;
    wait_until_counted(&cluster, progress, 1_000).await?;
    cluster.node_mut().kill9();
    cluster.node_mut().wipe_data_dir()?;
    cluster.node_mut().start().await?;
    feed.await??;
    regions_converge(&cluster, 0, &all).await
}

/// The same over three nodes: the `resolve` stage (latest row per key) and
/// the aggregating stage live on different nodes, retractions cross between
/// them through the regroup topic, and one node dies mid-stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upsert_group_by_across_three_nodes_survives_a_kill9() -> Result<()> {
    let mut cluster = TestCluster::new().nodes(3).start().await?;
    let topic = accounts_and_regions(&cluster, 6).await?;
    let all = updates(12_000);
    let feed = feed_updates(&cluster, &topic, &all)?;
    wait_until_counted(
        &cluster,
        "SELECT COUNT(*) FROM regions WHERE accounts > 0",
        3,
    )
    .await?;
    cluster.nodes[1].kill9();
    feed.await??;
    regions_converge(&cluster, 0, &all).await?;
    regions_converge(&cluster, 2, &all).await
}
