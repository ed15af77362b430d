//! (e) Scans on three nodes: whole-view reads — a sort with `LIMIT 10`, a join
//! of two views, a `GROUP BY` — on Eddy against PostgreSQL 15 holding the same
//! rows in tables of the same names.
//!
//! On a fresh sqlite broker (a 3-node cluster rebalances, and the memory engine
//! skips records when a consumer starts inside a produced batch), `--scan-rows`
//! orders feed two views, created one after the other, each partitioned over the
//! three nodes:
//! - `all_orders`: one row per order (`GROUP BY order_id, customer, status` with
//!   `SUM(amount) AS amount`), the view the scans read in full;
//! - `revenue`: the per-customer GROUP BY view of the other phases.
//!
//! PostgreSQL gets `all_orders` from the same deterministic generator (loaded
//! with `\copy`) and computes its own `revenue` from it, so the two engines only
//! share the input. Each query runs once on each engine to compare the answers
//! (row by row, numbers as numbers), then `--scan-runs` timed runs each, against
//! the node the views were created on; the figure is the median.

use super::{connect, first_cell, generate, one_line, orders, Args};
use anyhow::{bail, Context, Result};
use eddy_examples::kafka::ensure_topic;
use eddy_examples::orders::{create_orders_source, create_revenue_view};
use eddy_examples::procs::{run, Eddy, Tansu};
use eddy_tests::Postgres;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};
use tokio_postgres::{Client, SimpleQueryMessage};

const TOPIC: &str = "scan_orders";
const NODES: usize = 3;
/// A query's timed runs stop early once they have taken this long (at least
/// three runs are kept), so one slow query cannot eat the phase.
const QUERY_BUDGET: Duration = Duration::from_secs(40);
/// One run of one query, on either engine.
const RUN_DEADLINE: Duration = Duration::from_secs(120);

/// The queries, identical text on both engines.
const QUERIES: [(&str, &str, RowOrder); 3] = [
    (
        "sort: `ORDER BY amount DESC, order_id LIMIT 10` over `all_orders`",
        "SELECT order_id, customer, amount, status FROM all_orders \
         ORDER BY amount DESC, order_id LIMIT 10",
        RowOrder::AsReturned,
    ),
    (
        "join: `all_orders JOIN revenue ON customer`, grouped by status",
        "SELECT o.status, COUNT(*) AS orders, SUM(o.amount) AS amount, \
         SUM(r.orders) AS customer_orders, MAX(r.total) AS best_customer_total \
         FROM all_orders o JOIN revenue r ON o.customer = r.customer \
         GROUP BY o.status ORDER BY o.status",
        RowOrder::AsReturned,
    ),
    (
        "`GROUP BY customer` over `all_orders` (every group returned)",
        "SELECT customer, COUNT(*) AS orders, SUM(amount) AS total, MAX(amount) AS largest \
         FROM all_orders WHERE status <> 'cancelled' GROUP BY customer",
        RowOrder::Unordered,
    ),
];

/// Whether the rows of an answer are compared in the order they came.
#[derive(Clone, Copy)]
enum RowOrder {
    AsReturned,
    /// No ORDER BY: compared as sorted lists.
    Unordered,
}

/// What the scan phase measured.
pub struct ScanFigures {
    rows: u64,
    customers: u64,
    partitions: u32,
    /// Producing the orders, then both views becoming exact on three nodes.
    ingest: Result<(f64, f64)>,
    /// Per view, the nodes holding its active partitions.
    placement: Vec<(String, usize)>,
    /// Loading PostgreSQL (`\copy` + its own `revenue` + VACUUM ANALYZE), seconds;
    /// or why the phase stopped between the ingestion and the queries.
    pg_load: Result<f64>,
    queries: Vec<QueryFigures>,
}

pub struct QueryFigures {
    label: &'static str,
    sql: &'static str,
    eddy: Result<Timing>,
    postgres: Result<Timing>,
    /// Rows in the answer, and whether the two engines gave the same answer.
    check: Result<(usize, bool)>,
}

#[derive(Clone, Debug)]
struct Timing {
    median_ms: f64,
    runs: usize,
}

fn not_reached<T>() -> Result<T> {
    Err(anyhow::anyhow!("not reached"))
}

pub async fn scan_bench(args: &Args, work: &Path, deadline: Duration) -> ScanFigures {
    let mut figures = ScanFigures {
        rows: args.scan_rows,
        customers: args.customers,
        partitions: args.partitions,
        ingest: not_reached(),
        placement: Vec::new(),
        pg_load: not_reached(),
        queries: Vec::new(),
    };
    if let Err(e) = run_phase(args, work, deadline, &mut figures).await {
        println!("bench: scan phase stopped: {e:#}");
        let e = anyhow::anyhow!("{}", one_line(&format!("{e:#}")));
        if figures.ingest.is_err() {
            figures.ingest = Err(e);
        } else if figures.pg_load.is_err() {
            figures.pg_load = Err(e);
        }
    }
    figures
}

async fn run_phase(
    args: &Args,
    work: &Path,
    deadline: Duration,
    figures: &mut ScanFigures,
) -> Result<()> {
    let tansu = Tansu::start("sqlite://tansu.db")?;
    let brokers = tansu.brokers();
    ensure_topic(&brokers, TOPIC, args.partitions as i32).await?;
    let rows = Args {
        records: args.scan_rows,
        ..args.clone()
    };
    println!("bench: (e) producing {} orders for the scans", rows.records);
    let generated = generate(&brokers, TOPIC, &rows).await?;
    let mut nodes = Vec::new();
    for i in 1..=NODES {
        nodes.push(Eddy::start_node(
            &brokers,
            "scan",
            &format!("n{i}"),
            args.partitions,
            "warn",
            Some(args.cluster_session_ms),
        )?);
    }
    let eddy = connect(&nodes[0].conn_str()).await?;
    // Every node a member before the views exist, so their partitions spread.
    super::ha::members(&eddy, NODES, deadline).await?;
    eddy.batch_execute(&create_orders_source("orders", TOPIC))
        .await?;
    // One view after the other: on the sqlite engine, whose fetch reads from the
    // requested offset to the end of the partition, two views created together
    // ingested under 1,000 orders/s in trial runs. (The memory engine is fast but
    // lost 8,303 of 1M records in `all_orders`; a skip the counts below catch.)
    let start = Instant::now();
    eddy.batch_execute(&format!(
        "CREATE MATERIALIZED VIEW all_orders WITH (partitions = {}) AS \
         SELECT order_id, customer, status, SUM(amount) AS amount FROM orders \
         GROUP BY order_id, customer, status",
        args.partitions
    ))
    .await?;
    super::ha::ingested(&eddy, "all_orders", args.scan_rows, deadline).await?;
    println!(
        "bench: all_orders exact after {:.1} s",
        start.elapsed().as_secs_f64()
    );
    eddy.batch_execute(&create_revenue_view("revenue", "orders", args.partitions))
        .await?;
    let want = generated.counted.to_string();
    loop {
        if first_cell(&eddy, "SELECT SUM(orders) FROM revenue")
            .await
            .ok()
            .flatten()
            .as_deref()
            == Some(want.as_str())
        {
            break;
        }
        if start.elapsed() > deadline {
            bail!("revenue did not reach SUM(orders) = {want} within {deadline:?}");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let ingest_s = start.elapsed().as_secs_f64();
    println!(
        "bench: scan views exact over {} orders on {NODES} nodes in {ingest_s:.1} s",
        args.scan_rows
    );
    figures.ingest = Ok((generated.seconds, ingest_s));
    for view in ["all_orders", "revenue"] {
        let holders = first_cell(
            &eddy,
            &format!(
                "SELECT COUNT(DISTINCT node) FROM eddy_catalog.replicas \
                 WHERE view = '{view}' AND role = 'active'"
            ),
        )
        .await?
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
        figures.placement.push((view.to_owned(), holders));
    }

    let pg = Postgres::start()?;
    let load_start = Instant::now();
    let postgres = load_postgres(&pg, args, work).await;
    figures.pg_load = postgres
        .as_ref()
        .map(|_| load_start.elapsed().as_secs_f64())
        .map_err(|e| anyhow::anyhow!("{e:#}"));
    let postgres = postgres?;
    println!(
        "bench: postgresql loaded in {:.1} s",
        load_start.elapsed().as_secs_f64()
    );

    for (label, sql, order) in QUERIES {
        let q = measure(&eddy, &postgres, (label, sql, order), args.scan_runs).await;
        print_query(&q);
        figures.queries.push(q);
    }
    drop(postgres);
    drop(pg);
    drop(eddy);
    drop(nodes);
    drop(tansu);
    Ok(())
}

/// `all_orders` from the generator (`\copy` of a CSV), `revenue` computed by
/// PostgreSQL from it with the view's own query.
async fn load_postgres(pg: &Postgres, args: &Args, work: &Path) -> Result<Client> {
    let csv = work.join("scan_orders.csv");
    {
        let mut out = std::io::BufWriter::new(std::fs::File::create(&csv)?);
        for o in orders(args.scan_rows, args.customers) {
            writeln!(
                out,
                "{},{},{},{}",
                o.order_id, o.customer, o.status, o.amount
            )?;
        }
        out.flush()?;
    }
    let client = connect(&pg.conn_str()).await?;
    client
        .batch_execute(
            "CREATE TABLE all_orders (order_id BIGINT PRIMARY KEY, customer TEXT, \
             status TEXT, amount DOUBLE PRECISION); \
             CREATE TABLE revenue (customer TEXT PRIMARY KEY, orders BIGINT, \
             total DOUBLE PRECISION, avg_amount DOUBLE PRECISION, \
             smallest DOUBLE PRECISION, largest DOUBLE PRECISION)",
        )
        .await?;
    let conn = pg.conn_str();
    let copy = format!(
        "\\copy all_orders FROM '{}' WITH (FORMAT csv)",
        csv.display()
    );
    run(Command::new("psql").args([
        "-v",
        "ON_ERROR_STOP=1",
        "-X",
        "-q",
        "-d",
        &conn,
        "-c",
        &copy,
    ]))
    .context("loading all_orders into PostgreSQL")?;
    client
        .batch_execute(
            "INSERT INTO revenue SELECT customer, COUNT(*), SUM(amount), AVG(amount), \
             MIN(amount), MAX(amount) FROM all_orders WHERE status <> 'cancelled' \
             GROUP BY customer",
        )
        .await?;
    // One statement per call: VACUUM refuses the implicit transaction of a batch.
    for table in ["all_orders", "revenue"] {
        client
            .batch_execute(&format!("VACUUM ANALYZE {table}"))
            .await?;
    }
    let loaded = first_cell(&client, "SELECT COUNT(*) FROM all_orders").await?;
    if loaded != Some(args.scan_rows.to_string()) {
        bail!("PostgreSQL holds {loaded:?} orders, not {}", args.scan_rows);
    }
    let _ = std::fs::remove_file(&csv);
    Ok(client)
}

/// One run of `sql`: the rows as text, and the milliseconds it took.
async fn timed(client: &Client, sql: &str) -> Result<(Vec<Vec<String>>, f64)> {
    let start = Instant::now();
    let messages = tokio::time::timeout(RUN_DEADLINE, client.simple_query(sql))
        .await
        .with_context(|| format!("no answer within {RUN_DEADLINE:?}"))??;
    let ms = start.elapsed().as_secs_f64() * 1000.0;
    let rows = messages
        .iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => Some(
                (0..r.len())
                    .map(|i| r.get(i).unwrap_or("NULL").to_owned())
                    .collect(),
            ),
            _ => None,
        })
        .collect();
    Ok((rows, ms))
}

/// The first run of each engine gives the answers compared; then `runs` timed
/// runs each (fewer once [`QUERY_BUDGET`] is spent, at least three).
async fn measure(
    eddy: &Client,
    postgres: &Client,
    (label, sql, order): (&'static str, &'static str, RowOrder),
    runs: usize,
) -> QueryFigures {
    let first_eddy = timed(eddy, sql).await;
    let first_pg = timed(postgres, sql).await;
    let check = match (&first_eddy, &first_pg) {
        (Ok((e, _)), Ok((p, _))) => Ok((p.len(), same_answer(e, p, order))),
        (Err(e), _) => Err(anyhow::anyhow!("Eddy: {e:#}")),
        (_, Err(e)) => Err(anyhow::anyhow!("PostgreSQL: {e:#}")),
    };
    let eddy_timing = match first_eddy {
        Ok(_) => timings(eddy, sql, runs).await,
        Err(e) => Err(e),
    };
    let pg_timing = match first_pg {
        Ok(_) => timings(postgres, sql, runs).await,
        Err(e) => Err(e),
    };
    QueryFigures {
        label,
        sql,
        eddy: eddy_timing,
        postgres: pg_timing,
        check,
    }
}

async fn timings(client: &Client, sql: &str, runs: usize) -> Result<Timing> {
    let start = Instant::now();
    let mut ms = Vec::new();
    while ms.len() < runs.max(1) && (ms.len() < 3 || start.elapsed() < QUERY_BUDGET) {
        ms.push(timed(client, sql).await?.1);
    }
    ms.sort_by(f64::total_cmp);
    let n = ms.len();
    let median_ms = if n % 2 == 1 {
        ms[n / 2]
    } else {
        (ms[n / 2 - 1] + ms[n / 2]) / 2.0
    };
    Ok(Timing { median_ms, runs: n })
}

/// Same rows (in the same order unless `order` says otherwise); a cell is the
/// same when its text is, or when both parse as the same number (PostgreSQL's
/// `SUM(bigint)` is `numeric`, DataFusion's may print differently).
fn same_answer(eddy: &[Vec<String>], pg: &[Vec<String>], order: RowOrder) -> bool {
    let (mut eddy, mut pg) = (eddy.to_vec(), pg.to_vec());
    if let RowOrder::Unordered = order {
        eddy.sort();
        pg.sort();
    }
    eddy.len() == pg.len()
        && eddy.iter().zip(&pg).all(|(a, b)| {
            a.len() == b.len()
                && a.iter().zip(b).all(|(x, y)| {
                    x == y
                        || matches!(
                            (x.parse::<f64>(), y.parse::<f64>()),
                            (Ok(x), Ok(y)) if x == y
                        )
                })
        })
}

fn print_query(q: &QueryFigures) {
    let label = q.label;
    match (&q.eddy, &q.postgres) {
        (Ok(e), Ok(p)) => println!(
            "bench: scan {label}: eddy {:.1} ms, postgres {:.1} ms ({:.2}x); answers {}",
            e.median_ms,
            p.median_ms,
            e.median_ms / p.median_ms,
            match &q.check {
                Ok((_, true)) => "match".to_owned(),
                Ok((_, false)) => "DIFFER".to_owned(),
                Err(e) => format!("not compared: {e:#}"),
            }
        ),
        (e, p) => println!(
            "bench: scan {label}: eddy {:?}, postgres {:?}",
            e.as_ref().map(|t| t.median_ms),
            p.as_ref().map(|t| t.median_ms)
        ),
    }
}

pub fn markdown(md: &mut String, s: &ScanFigures) {
    let _ = writeln!(
        md,
        "\n## Scans on three nodes\n\nOn a fresh sqlite broker, {} orders over {} customers \
         feed two views of {} partitions each on a 3-node cluster (no standbys): \
         `all_orders` (`SELECT order_id, customer, status, SUM(amount) AS amount FROM orders \
         GROUP BY order_id, customer, status`: one row per order, so {} rows) and `revenue` (the per-customer GROUP BY view above). \
         PostgreSQL 15 (default settings, `fsync=off`) holds the same orders in a table \
         `all_orders` (primary key `order_id`) and computes its own `revenue` table from it \
         with the view's query; the engines share only the input. Every query is sent, as \
         text, to one node of the cluster and to PostgreSQL over loopback, first once on \
         each to compare the answers (row by row; numbers compared as numbers), then \
         timed: the median of the timed runs, client-side, including the transfer of the \
         answer.\n",
        s.rows, s.customers, s.partitions, s.rows
    );
    let _ = match &s.ingest {
        Ok((produce, ingest)) => writeln!(
            md,
            "Producing the orders: {produce:.1} s. Then, one after the other (created \
             together, the two views ingested under 1,000 orders/s from this broker in trial \
             runs), \
             `all_orders` and `revenue` until exact (`COUNT(*)` and `SUM(orders)`): \
             {ingest:.1} s for both ({:.0} orders/s per view).{}\n",
            2.0 * s.rows as f64 / ingest,
            if s.placement.is_empty() {
                String::new()
            } else {
                format!(
                    " Active partitions on {}.",
                    s.placement
                        .iter()
                        .map(|(v, n)| format!("{n} nodes for `{v}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
        ),
        Err(e) => writeln!(md, "Ingestion failed: {}\n", one_line(&format!("{e:#}"))),
    };
    match &s.pg_load {
        Ok(secs) => {
            let _ = writeln!(
                md,
                "Loading PostgreSQL (`\\copy`, its `revenue`, VACUUM ANALYZE): {secs:.1} s.\n"
            );
        }
        Err(e) if s.ingest.is_ok() => {
            let _ = writeln!(
                md,
                "Stopped before the queries: {}\n",
                one_line(&format!("{e:#}"))
            );
        }
        Err(_) => {}
    }
    if s.queries.is_empty() {
        return;
    }
    let _ = writeln!(
        md,
        "| query | rows returned | Eddy ms | PostgreSQL ms | Eddy / PostgreSQL | same answer |\n\
         |---|---:|---:|---:|---:|---|"
    );
    for q in &s.queries {
        let ms = |t: &Result<Timing>| match t {
            Ok(t) => format!("{:.1} (median of {})", t.median_ms, t.runs),
            Err(e) => format!("failed: {}", one_line(&format!("{e:#}"))),
        };
        let ratio = match (&q.eddy, &q.postgres) {
            (Ok(e), Ok(p)) => format!("**{:.2}×**", e.median_ms / p.median_ms),
            _ => String::new(),
        };
        let (rows, same) = match &q.check {
            Ok((rows, same)) => (
                rows.to_string(),
                if *same { "yes" } else { "**no**" }.to_owned(),
            ),
            Err(e) => (
                String::new(),
                format!("not compared: {}", one_line(&format!("{e:#}"))),
            ),
        };
        let _ = writeln!(
            md,
            "| {} | {rows} | {} | {} | {ratio} | {same} |",
            q.label,
            ms(&q.eddy),
            ms(&q.postgres)
        );
    }
    let _ = writeln!(
        md,
        "\nThe queries, the same text on both engines:\n\n```sql"
    );
    for q in &s.queries {
        let _ = writeln!(md, "{};", q.sql);
    }
    let _ = writeln!(md, "```");
}
