//! High availability with three real `eddy` processes and `standbys = 1`
//! (DESIGN §3): a standby answers at once when the active is killed; a
//! paused standby's lag grows, reads bound to less staleness avoid it or fail
//! with EY001 naming every replica, and it catches up when resumed. Results
//! stay exact throughout (DESIGN §4.1).

use anyhow::{bail, ensure, Context, Result};
use eddy_tests::fixtures::{
    check_revenue, create_orders_source, create_revenue_view, expected_revenue, orders,
    produce_in_background, Order,
};
use eddy_tests::{assert_sqlstate, eventually, query_rows, Record, TestCluster, DEADLINE};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_postgres::Client;

const PARTITIONS: u32 = 6;
const KEY: &str = "c7";
const LOOKUP: &str = "SELECT orders FROM revenue WHERE customer = 'c7'";

/// Where `KEY` lives: its partition, the active's node id and the standby's.
async fn key_home(client: &Client) -> Result<(u32, String, String)> {
    let plan = query_rows(client, &format!("EXPLAIN {LOOKUP}")).await?;
    let line = plan
        .iter()
        .map(|r| r[0].as_str())
        .find(|l| l.starts_with("Partition "))
        .with_context(|| format!("EXPLAIN names no partition: {plan:?}"))?;
    // "Partition 3: n2 (active), n1 (standby)"
    let (head, replicas) = line.split_once(": ").context("partition line")?;
    let p: u32 = head.trim_start_matches("Partition ").parse()?;
    let mut active = None;
    let mut standby = None;
    for r in replicas.split(", ") {
        match r.split_once(' ') {
            Some((node, "(active)")) => active = Some(node.to_owned()),
            Some((node, "(standby)")) => standby = Some(node.to_owned()),
            _ => {}
        }
    }
    match (active, standby) {
        (Some(a), Some(s)) => Ok((p, a, s)),
        _ => bail!("{KEY} is not on an active and a standby yet: {line}"),
    }
}

/// Waits until every partition of `revenue` has one active and one standby
/// (on distinct nodes, none behind), as node `asked` sees it.
async fn wait_replicated(cluster: &TestCluster, asked: usize) -> Result<()> {
    eventually(DEADLINE, async || {
        let client = cluster.nodes[asked].client().await?;
        let rows = query_rows(
            &client,
            "SELECT partition, node, role, lag_records FROM eddy_catalog.replicas \
             WHERE view = 'revenue' ORDER BY partition, role",
        )
        .await?;
        let mut roles: BTreeMap<u32, Vec<(String, String)>> = BTreeMap::new();
        for r in &rows {
            ensure!(r[3] == "0", "a replica is behind: {r:?}");
            roles
                .entry(r[0].parse()?)
                .or_default()
                .push((r[2].clone(), r[1].clone()));
        }
        ensure!(roles.len() == PARTITIONS as usize, "{rows:?}");
        for (p, rs) in &roles {
            let kinds: Vec<&str> = rs.iter().map(|(role, _)| role.as_str()).collect();
            ensure!(kinds == ["active", "standby"], "partition {p}: {rs:?}");
            ensure!(rs[0].1 != rs[1].1, "partition {p} twice on one node");
        }
        Ok(())
    })
    .await
}

/// Every node in `asked` answers exactly `all`'s revenue, from the actives
/// and, with `replica_preference = 'any'`, from its own replicas first —
/// which checks the content of every standby those nodes hold.
async fn converges(cluster: &TestCluster, asked: &[usize], all: &[Order]) -> Result<()> {
    let expected = expected_revenue(all);
    for &i in asked {
        for settings in [
            "RESET replica_preference",
            "SET replica_preference = 'any'; SET max_staleness = '1min'",
        ] {
            eventually(DEADLINE, async || {
                let client = cluster.nodes[i].client().await?;
                client.batch_execute(settings).await?;
                check_revenue(&client, "revenue", &expected).await
            })
            .await
            .with_context(|| format!("node n{} ({settings:?})", i + 1))?;
        }
    }
    Ok(())
}

/// What each read of [`LOOKUP`] answered, and when.
type ReadLog = Vec<(Instant, Result<i64, String>)>;

/// Reads [`LOOKUP`] every 10 ms on node `reader` with `max_staleness =
/// '5s'` until the flag is set; the task returns every answer.
async fn read_in_a_loop(
    cluster: &TestCluster,
    reader: usize,
) -> Result<(Arc<AtomicBool>, tokio::task::JoinHandle<ReadLog>)> {
    let client = cluster.nodes[reader].client().await?;
    client.batch_execute("SET max_staleness = '5s'").await?;
    let stop = Arc::new(AtomicBool::new(false));
    let reads = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut log = ReadLog::new();
            let mut tick = tokio::time::interval(Duration::from_millis(10));
            while !stop.load(Ordering::Relaxed) {
                tick.tick().await;
                let answer = match client.query(LOOKUP, &[]).await {
                    Ok(rows) if rows.len() == 1 => Ok(rows[0].get::<_, i64>(0)),
                    Ok(rows) => Err(format!("{} rows for a key that exists", rows.len())),
                    Err(e) => Err(e.as_db_error().map_or(e.to_string(), |d| {
                        format!("{}: {}", d.code().code(), d.message())
                    })),
                };
                log.push((Instant::now(), answer));
            }
            log
        })
    };
    Ok((stop, reads))
}

/// Waits until node `reader` sees `node` as the active of partition `p`.
async fn active_moves_to(cluster: &TestCluster, reader: usize, p: u32, node: &str) -> Result<()> {
    eventually(DEADLINE, async || {
        let (_, now_active, _) = key_home(&cluster.nodes[reader].client().await?).await?;
        ensure!(
            now_active == node,
            "partition {p} is active on {now_active}"
        );
        Ok(())
    })
    .await
}

fn index_of(id: &str) -> usize {
    id.trim_start_matches('n')
        .parse::<usize>()
        .expect("node id")
        - 1
}

/// Three nodes with one standby per partition, the orders source and the
/// revenue view over six partitions, a first load in and replicated.
async fn replicated_cluster(session_timeout_ms: u64) -> Result<(TestCluster, String, Vec<Order>)> {
    let cluster = TestCluster::new()
        .nodes(3)
        .standbys(1)
        .session_timeout_ms(session_timeout_ms)
        .start()
        .await?;
    let topic = cluster.create_topic("orders", 6).await?;
    let c1 = cluster.nodes[0].client().await?;
    c1.batch_execute(&create_orders_source("orders", &topic))
        .await?;
    c1.batch_execute(&create_revenue_view("revenue", "orders", PARTITIONS))
        .await?;
    let first = orders(81, 1, 3_000, 30);
    cluster
        .producer()?
        .produce_batch(&topic, first.iter().map(Order::record))
        .await?;
    wait_replicated(&cluster, 0).await?;
    converges(&cluster, &[0, 1, 2], &first).await?;
    Ok((cluster, topic, first))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_of_an_active_is_bridged_by_its_standby_at_once() -> Result<()> {
    let session_timeout_ms = 3_000;
    let (mut cluster, topic, mut all) = replicated_cluster(session_timeout_ms).await?;
    let (p, active, standby) = key_home(&cluster.nodes[0].client().await?).await?;
    let reader = (0..3)
        .find(|i| ![index_of(&active), index_of(&standby)].contains(i))
        .expect("a third node");

    // Read the key in a loop from the node that holds no replica of it.
    let (stop, reads) = read_in_a_loop(&cluster, reader).await?;

    let more = orders(82, 100_000, 16_000, 30);
    let feed = produce_in_background(cluster.producer()?, &topic, &more, 400);
    eventually(DEADLINE, async || {
        let rows = query_rows(
            &cluster.nodes[reader].client().await?,
            "SELECT SUM(orders) FROM revenue",
        )
        .await?;
        let n: i64 = rows[0][0].parse().unwrap_or(0);
        ensure!(n >= 5_000, "{n} counted so far");
        Ok(())
    })
    .await?;
    let killed_at = Instant::now();
    cluster.nodes[index_of(&active)].kill9();

    // The standby takes over as the active after the failure timeout, and a
    // new standby is built on the reader's node.
    active_moves_to(&cluster, reader, p, &standby).await?;
    feed.await??;
    all.extend(more);
    stop.store(true, Ordering::Relaxed);
    let log = reads.await?;

    // The longest stretch without an answer, from a little before the kill.
    let from = killed_at - Duration::from_millis(500);
    let mut last_ok = from;
    let mut longest = Duration::ZERO;
    let mut failures = Vec::new();
    for (at, answer) in log.iter().filter(|(at, _)| *at >= from) {
        match answer {
            Ok(_) => {
                longest = longest.max(at.duration_since(last_ok));
                last_ok = *at;
            }
            Err(e) => failures.push(e.clone()),
        }
    }
    println!(
        "kill -9 of {active} (active of partition {p}): longest gap without an answer \
         {} ms over {} reads; failed: {failures:?}",
        longest.as_millis(),
        log.len(),
    );
    ensure!(
        longest < Duration::from_millis(session_timeout_ms),
        "reads waited {} ms — as long as a takeover — instead of going to the standby; \
         failures: {failures:?}",
        longest.as_millis()
    );
    ensure!(
        failures.iter().all(|e| e.starts_with("EY001")),
        "unexpected errors: {failures:?}"
    );

    let survivors: Vec<usize> = (0..3).filter(|i| *i != index_of(&active)).collect();
    converges(&cluster, &survivors, &all).await?;
    // Two nodes left: every partition is back to an active and a standby.
    wait_replicated(&cluster, reader).await
}

/// DESIGN §3: while some replica of the partition is within the bound, reads
/// keep answering — through a kill -9 of the active (the standby answers,
/// then takes over) and through the killed node's return (it restores, then
/// takes its partitions back from the survivor). Not one read may fail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_on_a_survivor_never_fail_through_a_kill_and_a_return() -> Result<()> {
    const CYCLES: usize = 3;
    let (mut cluster, topic, mut all) = replicated_cluster(3_000).await?;
    let (p, active, standby) = key_home(&cluster.nodes[0].client().await?).await?;
    let reader = (0..3)
        .find(|i| ![index_of(&active), index_of(&standby)].contains(i))
        .expect("a third node");
    let (stop, reads) = read_in_a_loop(&cluster, reader).await?;
    let more = orders(83, 200_000, 12_000, 30);
    let feed = produce_in_background(cluster.producer()?, &topic, &more, 400);

    for _ in 0..CYCLES {
        cluster.nodes[index_of(&active)].kill9();
        active_moves_to(&cluster, reader, p, &standby).await?;
        // The killed node returns on its disk and takes its partitions back.
        cluster.nodes[index_of(&active)].start().await?;
        active_moves_to(&cluster, reader, p, &active).await?;
    }
    feed.await??;
    all.extend(more);
    stop.store(true, Ordering::Relaxed);
    let log = reads.await?;
    let failures: Vec<&String> = log.iter().filter_map(|(_, a)| a.as_ref().err()).collect();
    println!(
        "{CYCLES} × kill -9 and return of {active}: {} reads of partition {p}, {} failed",
        log.len(),
        failures.len()
    );
    ensure!(
        failures.is_empty(),
        "{} of {} reads failed: {failures:?}",
        failures.len(),
        log.len()
    );
    converges(&cluster, &[0, 1, 2], &all).await?;
    wait_replicated(&cluster, reader).await
}

/// A writer that dies mid-batch leaves changelog records no commit names.
/// The next active settles them, so the standby rebuilt after the failover
/// is not behind by them forever — even on a partition with no new input.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_a_dead_writer_left_uncommitted_are_settled_by_the_next_active() -> Result<()> {
    let (mut cluster, _topic, all) = replicated_cluster(3_000).await?;
    let c1 = cluster.nodes[0].client().await?;
    let (p, active, standby) = key_home(&c1).await?;
    let id = &query_rows(
        &c1,
        "SELECT id FROM eddy_catalog.views WHERE name = 'revenue'",
    )
    .await?[0][0];
    let changelog = format!(
        "_eddy_{}_revenue_{id}_changelog",
        cluster.nodes[0].cluster()
    );
    // The records of a batch whose writer died before its commit.
    cluster
        .producer()?
        .produce_batch(
            &changelog,
            (0..3).map(|i| Record {
                key: Some(format!("unknown table {i}")),
                value: Some("never committed".into()),
                partition: Some(p as i32),
            }),
        )
        .await?;
    let standby_at = cluster.nodes[index_of(&standby)].client().await?;
    let lag = format!(
        "SELECT lag_records FROM eddy_catalog.replicas \
         WHERE view = 'revenue' AND partition = {p} AND node = '{standby}'"
    );
    eventually(DEADLINE, async || {
        let rows = query_rows(&standby_at, &lag).await?;
        ensure!(
            rows == [["3"]],
            "standby {standby} of partition {p}: {rows:?}"
        );
        Ok(())
    })
    .await?;

    cluster.nodes[index_of(&active)].kill9();
    let survivor = index_of(&standby);
    eventually(DEADLINE, async || {
        let (_, now_active, now_standby) =
            key_home(&cluster.nodes[survivor].client().await?).await?;
        ensure!(
            now_active == standby && now_standby != active,
            "partition {p}: active {now_active}, standby {now_standby}"
        );
        Ok(())
    })
    .await?;
    // The standby took over and settled the three records: the new standby,
    // built from the changelog, is caught up although no input arrived.
    wait_replicated(&cluster, survivor).await?;
    let survivors: Vec<usize> = (0..3).filter(|i| *i != index_of(&active)).collect();
    converges(&cluster, &survivors, &all).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_standby_falls_behind_is_avoided_and_catches_up() -> Result<()> {
    // A long failure timeout keeps the paused node a member, so its lag is
    // what the readers judge it by.
    let (mut cluster, topic, mut all) = replicated_cluster(15_000).await?;
    let (p, active, standby) = key_home(&cluster.nodes[0].client().await?).await?;
    let reader = (0..3)
        .find(|i| ![index_of(&active), index_of(&standby)].contains(i))
        .expect("a third node");
    let client = cluster.nodes[reader].client().await?;
    let lag_sql = format!(
        "SELECT lag_ms FROM eddy_catalog.replicas \
         WHERE view = 'revenue' AND partition = {p} AND node = '{standby}'"
    );
    let standby_lag = async |client: &Client| -> Result<i64> {
        let rows = query_rows(client, &lag_sql).await?;
        Ok(rows.first().context("no standby row")?[0].parse()?)
    };

    let more = orders(83, 100_000, 12_000, 30);
    let feed = produce_in_background(cluster.producer()?, &topic, &more, 300);
    cluster.nodes[index_of(&standby)].pause()?;

    // Its lag grows while it is paused.
    let mut first = 0;
    eventually(DEADLINE, async || {
        first = standby_lag(&client).await?;
        ensure!(first >= 1_500, "lag_ms {first}");
        Ok(())
    })
    .await?;
    eventually(DEADLINE, async || {
        let later = standby_lag(&client).await?;
        ensure!(later >= first + 1_000, "lag_ms {later}, was {first}");
        Ok(())
    })
    .await?;

    // Reads that accept 1 s of staleness and any replica avoid it: the
    // active answers each at once (none waits for the paused node).
    client
        .batch_execute("SET max_staleness = '1s'; SET replica_preference = 'any'")
        .await?;
    let started = Instant::now();
    for _ in 0..20 {
        ensure!(client.query(LOOKUP, &[]).await?.len() == 1, "no row");
    }
    ensure!(
        started.elapsed() < Duration::from_secs(2),
        "20 lookups took {:?}: some went to the paused standby",
        started.elapsed()
    );

    // With the active killed too, no replica is within the bound: EY001
    // names the view, the partition, each replica with its lag, and the bound.
    cluster.nodes[index_of(&active)].kill9();
    let err = assert_sqlstate(&client, LOOKUP, "EY001").await?;
    let message = err.message();
    for needle in [
        "\"revenue\"".to_owned(),
        format!("partition {p}"),
        format!("{standby} (standby, lag "),
        active.clone(),
        "max_staleness = 1s".to_owned(),
    ] {
        ensure!(message.contains(&needle), "{needle:?} not in {message:?}");
    }
    ensure!(err.hint().is_some(), "no hint");

    // Resumed, it catches up and answers within the bound again.
    cluster.nodes[index_of(&standby)].resume()?;
    eventually(DEADLINE, async || {
        ensure!(client.query(LOOKUP, &[]).await?.len() == 1, "no row");
        Ok(())
    })
    .await?;
    eventually(DEADLINE, async || {
        // Its row, as a standby or (if it took over by now) the active.
        let lag = standby_lag(&client).await?;
        ensure!(lag == 0, "lag_ms {lag}");
        Ok(())
    })
    .await?;

    cluster.nodes[index_of(&active)].start().await?;
    feed.await??;
    all.extend(more);
    converges(&cluster, &[0, 1, 2], &all).await
}
