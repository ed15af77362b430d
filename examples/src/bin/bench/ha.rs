//! (f) High availability: the failover window with standbys and without,
//! and point reads spread over replicas against reads from the active only.
//!
//! On a fresh sqlite broker (the memory engine skips records when a reader
//! starts inside a produced batch, which every standby and restore does),
//! `--ha-rows` orders with distinct ids feed views keyed by order id, so the
//! view holds that many rows:
//! 1. three nodes ingest `by_order WITH (standbys = 1)`; once every standby
//!    has caught up, a trickle of new orders starts, the active of one key's
//!    partition is killed with SIGKILL, and a reader on another node
//!    (`max_staleness = '5s'`) times kill → first answer;
//! 2. on the two survivors, once every partition has its standby again,
//!    pgbench point reads with `replica_preference = 'active'` and `'any'`;
//! 3. the same failover for `by_order_cold WITH (standbys = 0)`: the
//!    partition is restored from the changelog by the survivor.

use super::{connect, first_cell, generate, one_line, pgbench, Args, Pgbench, Rate};
use anyhow::{bail, Context, Result};
use eddy_examples::kafka::{ensure_topic, producer, Pipeline};
use eddy_examples::orders::{create_orders_source, Order, Rng};
use eddy_examples::procs::{Eddy, Tansu};
use std::fmt::Write as _;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_postgres::Client;

const TOPIC: &str = "ha_orders";
const STALENESS: &str = "5s";

/// What the HA phase measured.
pub struct HaFigures {
    rows: u64,
    partitions: u32,
    session_ms: u64,
    /// Ingesting the view with one standby per partition (three nodes).
    ingest: Result<Rate>,
    /// Each standby's `lag_ms` as its node reported it, sampled during that
    /// ingestion, sorted.
    standby_lag_ms: Vec<i64>,
    with_standbys: Result<Failover>,
    without_standbys: Result<Failover>,
    reads_active: Result<Pgbench>,
    reads_any: Result<Pgbench>,
}

pub struct Failover {
    /// From SIGKILL to the first answer of a read issued after it.
    window_ms: f64,
    /// Reads that failed meanwhile (EY001: no replica within the bound).
    failed: u64,
    partition: u32,
    killed: String,
}

fn not_reached<T>() -> Result<T> {
    Err(anyhow::anyhow!("not reached"))
}

pub async fn ha_bench(args: &Args, work: &Path, deadline: Duration) -> HaFigures {
    let mut figures = HaFigures {
        rows: args.ha_rows,
        partitions: args.partitions,
        session_ms: args.cluster_session_ms,
        ingest: not_reached(),
        standby_lag_ms: Vec::new(),
        with_standbys: not_reached(),
        without_standbys: not_reached(),
        reads_active: not_reached(),
        reads_any: not_reached(),
    };
    if let Err(e) = run(args, work, deadline, &mut figures).await {
        println!("bench: HA phase stopped: {e:#}");
        let e = one_line(&format!("{e:#}"));
        for slot in [&mut figures.with_standbys, &mut figures.without_standbys] {
            if slot.as_ref().is_err_and(|x| x.to_string() == "not reached") {
                *slot = Err(anyhow::anyhow!("{e}"));
            }
        }
    }
    figures
}

async fn run(args: &Args, work: &Path, deadline: Duration, figures: &mut HaFigures) -> Result<()> {
    let tansu = Tansu::start("sqlite://tansu.db")?;
    let brokers = tansu.brokers();
    ensure_topic(&brokers, TOPIC, args.partitions as i32).await?;
    let rows = Args {
        records: args.ha_rows,
        ..args.clone()
    };
    println!(
        "bench: (f) producing {} orders for the HA phase",
        rows.records
    );
    generate(&brokers, TOPIC, &rows).await?;
    let mut nodes: Vec<(String, Eddy)> = Vec::new();
    for i in 1..=3 {
        let id = format!("n{i}");
        let node = Eddy::start_node(
            &brokers,
            "ha",
            &id,
            args.partitions,
            "warn",
            Some(args.cluster_session_ms),
        )?;
        nodes.push((id, node));
    }
    let admin = connect(&nodes[0].1.conn_str()).await?;
    admin
        .batch_execute(&create_orders_source("orders", TOPIC))
        .await?;
    let start = Instant::now();
    admin
        .batch_execute(&view_sql("by_order", args.partitions, 1))
        .await?;
    let sampler = LagSampler::start(&nodes, "by_order").await?;
    ingested(&admin, "by_order", args.ha_rows, deadline).await?;
    figures.standby_lag_ms = sampler.stop().await?;
    figures.ingest = Ok(Rate {
        records: args.ha_rows,
        seconds: start.elapsed().as_secs_f64(),
    });
    println!(
        "bench: HA view ingested {} rows in {:.1} s",
        args.ha_rows,
        start.elapsed().as_secs_f64()
    );
    replicated(&admin, "by_order", 1, nodes.len(), deadline).await?;
    every_replica_complete(&nodes, "by_order", args.ha_rows).await?;

    let key = (args.ha_rows / 2).max(1) as i64;
    let trickle = Trickle::start(&brokers, args.ha_rows as i64 + 1);
    let failover = kill_and_read(&mut nodes, "by_order", key, deadline).await;
    print_failover("with standbys", &failover);
    figures.with_standbys = failover;

    // Point reads on a survivor, once every partition has its standby again.
    let survivor = &nodes[0].1;
    let client = connect(&survivor.conn_str()).await?;
    replicated(&client, "by_order", 1, nodes.len(), deadline).await?;
    let script = work.join("ha_lookup.sql");
    super::lookup_script(&script, "by_order", "order_id", args.ha_rows)?;
    for (slot, preference) in [
        (&mut figures.reads_active, "active"),
        (&mut figures.reads_any, "any"),
    ] {
        *slot = pgbench(
            args,
            &script,
            work,
            &format!("ha-{preference}"),
            survivor.pg_port,
            "eddy",
            "eddy",
            &format!("-c replica_preference={preference} -c max_staleness={STALENESS}"),
        );
        super::report_pgbench(&format!("replica_preference = {preference}"), slot);
    }

    // The same failover with no standby: a cold restore from the changelog.
    client
        .batch_execute(&view_sql("by_order_cold", args.partitions, 0))
        .await?;
    ingested(&client, "by_order_cold", args.ha_rows, deadline).await?;
    replicated(&client, "by_order_cold", 0, nodes.len(), deadline).await?;
    let failover = kill_and_read(&mut nodes, "by_order_cold", key, deadline).await;
    print_failover("without standbys", &failover);
    figures.without_standbys = failover;
    trickle.stop().await?;
    drop(nodes);
    drop(tansu);
    Ok(())
}

fn view_sql(name: &str, partitions: u32, standbys: u32) -> String {
    format!(
        "CREATE MATERIALIZED VIEW {name} WITH (partitions = {partitions}, standbys = {standbys}) \
         AS SELECT order_id, COUNT(*) AS n, SUM(amount) AS amount FROM orders GROUP BY order_id"
    )
}

/// Samples every standby's own `lag_ms` report, four times a second.
struct LagSampler {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<Result<Vec<i64>>>,
}

impl LagSampler {
    async fn start(nodes: &[(String, Eddy)], view: &str) -> Result<LagSampler> {
        let mut asks = Vec::new();
        for (id, node) in nodes {
            asks.push((
                connect(&node.conn_str()).await?,
                format!(
                    "SELECT lag_ms FROM eddy_catalog.replicas \
                     WHERE view = '{view}' AND role = 'standby' AND node = '{id}'"
                ),
            ));
        }
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let task = tokio::spawn(async move {
            let mut lags = Vec::new();
            while !stopped.load(Ordering::Relaxed) {
                for (client, sql) in &asks {
                    // A sample that fails is a sample missed, not a failed phase.
                    for row in text_rows(client, sql).await.unwrap_or_default() {
                        lags.extend(row.first().and_then(|v| v.parse::<i64>().ok()));
                    }
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            lags.sort_unstable();
            Ok(lags)
        });
        Ok(LagSampler { stop, task })
    }

    async fn stop(self) -> Result<Vec<i64>> {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await?
    }
}

/// Waits until `view` holds every one of `rows` orders.
pub(super) async fn ingested(
    client: &Client,
    view: &str,
    rows: u64,
    deadline: Duration,
) -> Result<()> {
    let start = Instant::now();
    let sql = format!("SELECT COUNT(*) FROM {view} WHERE order_id <= {rows}");
    loop {
        // The cheap counter first; the exact scan once it says done. A read
        // that fails while partitions move (EY001) is asked again.
        let applied = first_cell(
            client,
            &format!("SELECT records FROM eddy_catalog.views WHERE name = '{view}'"),
        )
        .await
        .ok()
        .flatten()
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
        if applied >= rows
            && first_cell(client, &sql).await.ok().flatten().as_deref() == Some(&rows.to_string())
        {
            return Ok(());
        }
        if start.elapsed() > deadline {
            bail!("{view} did not reach {rows} rows within {deadline:?} ({applied} applied)");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Waits until `live` nodes are members and every partition of `view` has
/// an active and `standbys` standbys, none of them behind.
pub(super) async fn replicated(
    client: &Client,
    view: &str,
    standbys: u32,
    live: usize,
    deadline: Duration,
) -> Result<()> {
    let start = Instant::now();
    members(client, live, deadline).await?;
    let partitions = first_cell(
        client,
        &format!("SELECT partitions FROM eddy_catalog.views WHERE name = '{view}'"),
    )
    .await?
    .context("no such view")?
    .parse::<u64>()?;
    let want = (partitions * (1 + u64::from(standbys))).to_string();
    let sql = format!(
        "SELECT COUNT(*) FROM eddy_catalog.replicas WHERE view = '{view}' \
         AND role IN ('active', 'standby') AND lag_records = 0"
    );
    while first_cell(client, &sql).await?.as_deref() != Some(want.as_str()) {
        if start.elapsed() > deadline {
            bail!("{view} did not get {standbys} caught-up standby per partition in time");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(())
}

/// Waits until `live` nodes are members of the cluster.
pub(super) async fn members(client: &Client, live: usize, deadline: Duration) -> Result<()> {
    let start = Instant::now();
    while first_cell(client, "SELECT COUNT(*) FROM eddy_catalog.nodes").await?
        != Some(live.to_string())
    {
        if start.elapsed() > deadline {
            let seen = client
                .simple_query("SELECT node_id, last_heard_ms FROM eddy_catalog.nodes")
                .await
                .map(|m| m.len());
            bail!("the cluster did not settle on {live} nodes in time ({seen:?} rows)");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(())
}

/// Checks that every node, reading its own replicas first
/// (`replica_preference = 'any'`), sees all `rows` orders: with one standby
/// per partition over three nodes, that reads every standby in full.
async fn every_replica_complete(nodes: &[(String, Eddy)], view: &str, rows: u64) -> Result<()> {
    for (id, node) in nodes {
        let client = connect(&node.conn_str()).await?;
        client
            .batch_execute(&format!(
                "SET replica_preference = 'any'; SET max_staleness = '{STALENESS}'"
            ))
            .await?;
        let count = first_cell(
            &client,
            &format!("SELECT COUNT(*) FROM {view} WHERE order_id <= {rows}"),
        )
        .await?;
        if count != Some(rows.to_string()) {
            let replicas = text_rows(
                &client,
                &format!(
                    "SELECT partition, node, role, applied_offset, end_offset, lag_ms \
                     FROM eddy_catalog.replicas WHERE view = '{view}'"
                ),
            )
            .await?;
            bail!("{id}'s replicas hold {count:?} of {rows} orders; replicas: {replicas:?}");
        }
    }
    Ok(())
}

/// Kills the active of `key`'s partition of `view` and times, from another
/// node, kill → the first answer to a lookup of `key` sent after the kill.
async fn kill_and_read(
    nodes: &mut Vec<(String, Eddy)>,
    view: &str,
    key: i64,
    deadline: Duration,
) -> Result<Failover> {
    let asker = connect(&nodes[0].1.conn_str()).await?;
    let lookup = format!("SELECT n FROM {view} WHERE order_id = {key}");
    let line = partition_line(&asker, &lookup).await?;
    // "Partition 3: n2 (active), n1 (standby)"
    let (head, replicas) = line.split_once(": ").context("partition line")?;
    let partition: u32 = head.trim_start_matches("Partition ").parse()?;
    let killed = replicas
        .split(", ")
        .find_map(|r| r.strip_suffix(" (active)"))
        .with_context(|| format!("no active: {line}"))?
        .to_owned();
    let victim = nodes
        .iter()
        .position(|(id, _)| *id == killed)
        .context("the active is not a node of this run")?;
    let reader_at = (0..nodes.len())
        .find(|i| *i != victim)
        .context("one node")?;
    let reader = connect(&nodes[reader_at].1.conn_str()).await?;
    reader
        .batch_execute(&format!("SET max_staleness = '{STALENESS}'"))
        .await?;
    let statement = reader.prepare(&lookup).await?;
    reader
        .query(&statement, &[])
        .await
        .context("before the kill")?;

    nodes.remove(victim).1.kill9();
    let killed_at = Instant::now();
    let mut failed = 0u64;
    loop {
        match reader.query(&statement, &[]).await {
            Ok(rows) if rows.len() == 1 => break,
            Ok(rows) => {
                let where_now = partition_line(&reader, &lookup).await.ok();
                let replicas: Vec<String> = text_rows(
                    &reader,
                    &format!(
                        "SELECT node, role, applied_offset, end_offset, lag_ms \
                         FROM eddy_catalog.replicas WHERE view = '{view}' AND partition = {partition}"
                    ),
                )
                .await
                .map(|rows| rows.iter().map(|r| r.join(" ")).collect())
                .unwrap_or_default();
                bail!(
                    "{lookup} found {} rows on the node at {} after the kill of {killed} \
                     (before: {line}; now: {where_now:?}; replicas: {replicas:?})",
                    rows.len(),
                    reader_at
                )
            }
            Err(_) => failed += 1,
        }
        if killed_at.elapsed() > deadline {
            bail!("no answer within {deadline:?} of the kill");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let window_ms = killed_at.elapsed().as_secs_f64() * 1000.0;
    Ok(Failover {
        window_ms,
        failed,
        partition,
        killed,
    })
}

/// Every row of `sql`'s answer, as text.
async fn text_rows(client: &Client, sql: &str) -> Result<Vec<Vec<String>>> {
    Ok(client
        .simple_query(sql)
        .await?
        .iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => Some(
                (0..r.len())
                    .map(|i| r.get(i).unwrap_or("").to_owned())
                    .collect(),
            ),
            _ => None,
        })
        .collect())
}

/// The line of `EXPLAIN <lookup>` that names the key's partition and where its
/// replicas are: "Partition 3: n2 (active), n1 (standby)".
async fn partition_line(client: &Client, lookup: &str) -> Result<String> {
    text_rows(client, &format!("EXPLAIN {lookup}"))
        .await?
        .into_iter()
        .filter_map(|r| r.into_iter().next())
        .find(|l| l.starts_with("Partition "))
        .context("EXPLAIN names no partition")
}

fn print_failover(label: &str, f: &Result<Failover>) {
    match f {
        Ok(f) => println!(
            "bench: failover {label}: {:.1} ms ({} reads failed meanwhile)",
            f.window_ms, f.failed
        ),
        Err(e) => println!("bench: failover {label} failed: {e:#}"),
    }
}

/// New orders, five per 100 ms, so failovers happen under ingestion (more
/// would saturate Tansu's single-threaded sqlite engine, which every read
/// and write of both views goes through).
struct Trickle {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<Result<()>>,
}

impl Trickle {
    fn start(brokers: &str, first_id: i64) -> Trickle {
        let stop = Arc::new(AtomicBool::new(false));
        let brokers = brokers.to_owned();
        let flag = stop.clone();
        let task = tokio::spawn(async move {
            let producer = producer(&brokers)?;
            let mut rng = Rng::new(0x7A1);
            let mut id = first_id;
            while !flag.load(Ordering::Relaxed) {
                let mut pipeline = Pipeline::new(&producer, 100);
                for _ in 0..5 {
                    let order = Order::random(&mut rng, id, "trickle".into(), id);
                    pipeline.send(TOPIC, None, Some(&order.json())).await?;
                    id += 1;
                }
                pipeline.finish().await?;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Ok(())
        });
        Trickle { stop, task }
    }

    async fn stop(self) -> Result<()> {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await?
    }
}

pub fn markdown(md: &mut String, h: &HaFigures) {
    let _ = writeln!(
        md,
        "\n## High availability\n\nOn a fresh sqlite broker, {} orders with distinct ids feed a view \
         keyed by order id (`SELECT order_id, COUNT(*), SUM(amount) ... GROUP BY order_id`), \
         so it holds {} rows over {} partitions. Three nodes, `--session-timeout-ms {}`; \
         while a trickle of new orders arrives, the active of one key's partition is killed \
         with SIGKILL and a reader on another node (`max_staleness = '{STALENESS}'`) times \
         the kill → the first answer to a lookup of that key sent after the kill.\n",
        h.rows, h.rows, h.partitions, h.session_ms
    );
    let _ = match &h.ingest {
        Ok(r) => writeln!(
            md,
            "Ingesting the view with one standby per partition (3 nodes): {:.1} s, {:.0} rows/s.\n",
            r.seconds,
            r.per_sec()
        ),
        Err(e) => writeln!(md, "Ingestion failed: {}\n", one_line(&format!("{e:#}"))),
    };
    let lags = &h.standby_lag_ms;
    if let Some(max) = lags.last() {
        let at = |q: f64| lags[((lags.len() - 1) as f64 * q) as usize];
        let _ = writeln!(
            md,
            "Standby lag during that ingestion (`lag_ms` of every standby as its node \
             reports it in `eddy_catalog.replicas`, {} samples, four a second): median \
             **{} ms**, p99 {} ms, max {} ms.\n",
            lags.len(),
            at(0.5),
            at(0.99),
            max
        );
    }
    let _ = writeln!(
        md,
        "| failover | window (kill → answer) | reads failed meanwhile | partition, killed node |\n|---|---:|---:|---|"
    );
    for (name, f) in [
        (
            "`standbys = 1`: a standby answers, then takes over",
            &h.with_standbys,
        ),
        (
            "`standbys = 0`: failure timeout, then a cold restore",
            &h.without_standbys,
        ),
    ] {
        let _ = match f {
            Ok(f) => writeln!(
                md,
                "| {name} | **{:.1} ms** | {} | {} on {} |",
                f.window_ms, f.failed, f.partition, f.killed
            ),
            Err(e) => writeln!(
                md,
                "| {name} | failed: {} | | |",
                one_line(&format!("{e:#}"))
            ),
        };
    }
    let _ = writeln!(
        md,
        "\nPoint reads on one of the two survivors, which between them hold an active and a \
         standby of every partition (pgbench `-M prepared`, random order ids, \
         `max_staleness = '{STALENESS}'`):\n\n| replica_preference | tps | p50 ms | p99 ms |\n|---|---:|---:|---:|"
    );
    for (name, r) in [("active", &h.reads_active), ("any", &h.reads_any)] {
        let _ = match r {
            Ok(p) => writeln!(
                md,
                "| `{name}` | {:.0} | {:.3} | {:.3} |",
                p.tps, p.p50_ms, p.p99_ms
            ),
            Err(e) => writeln!(
                md,
                "| `{name}` | failed: {} | | |",
                one_line(&format!("{e:#}"))
            ),
        };
    }
    if let (Ok(a), Ok(b)) = (&h.reads_active, &h.reads_any) {
        let _ = writeln!(
            md,
            "\n`any` / `active`: **{:.2}×** — with `any` a node answers from its own replica \
             when it holds one within the bound instead of forwarding to the active.",
            b.tps / a.tps
        );
    }
}
