//! bench: how fast Eddy ingests compared with a bare Kafka consumer, and how fast it
//! answers point lookups and whole-view scans compared with PostgreSQL 15; writes
//! BENCHMARKS.md.
//!
//!     scripts/setup.sh --bench
//!     cargo run --release -p eddy-examples --bin bench
//!
//! 1. Starts a Tansu broker (memory engine by default) and produces `--records` JSON
//!    orders into a topic of `--partitions` partitions, counting the non-cancelled ones
//!    and the per-customer answer while generating (the memory engine's end offsets
//!    are wrong after batches, so nothing here trusts them: records are counted).
//! 2. (a) A bare rdkafka `BaseConsumer` reads every record and decodes it with
//!    serde_json: the ceiling for any consumer on this machine.
//! 3. (b) An Eddy node creates the source and the `revenue` view; the clock stops when
//!    `SELECT SUM(orders) FROM revenue` equals the non-cancelled count.
//! 4. (c) pgbench `-M prepared` point lookups on `revenue` against Eddy; the same
//!    again while 20 more clients scan the whole view (sort, LIMIT 50) — lookups
//!    must keep their latency; then against a PostgreSQL 15 instance started here
//!    with the same rows in an indexed table.
//!
//! 5. (d) On a second broker with the sqlite engine (the memory engine skips
//!    records when a consumer starts inside a produced batch, which any
//!    rebalance does) and `--cluster-records` orders: a bare consumer, then
//!    clusters of one, two and three nodes ingest the same topic; then one
//!    node of the three is killed with SIGKILL and the clock runs until a scan
//!    of every partition answers exactly again; then a node with an empty
//!    disk takes every partition over, and its changelog restore rate is
//!    compared with a bare consumer reading the same changelog topic.
//!
//! 6. (e) Scans on three nodes (see [`scan`]): a sort with `LIMIT 10`, a join of
//!    two views and a `GROUP BY` over a view of `--scan-rows` rows, against
//!    PostgreSQL 15 holding the same rows; the answers are compared.
//!
//! 7. (f) High availability (see [`ha`]): the failover window with standbys
//!    and without, over a view of `--ha-rows` rows; point reads with
//!    `replica_preference = 'any'` against `'active'`.
//!
//! Each phase has a deadline; a phase that fails is reported as such in BENCHMARKS.md
//! and the others still run.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

mod ha;
mod scan;
mod security;

use anyhow::{bail, Context, Result};
use clap::Parser;
use eddy_examples::kafka::{ensure_topic, producer, Pipeline};
use eddy_examples::orders::{create_orders_source, create_revenue_view, Order, Rng};
use eddy_examples::procs::{run, Eddy, Tansu};
use eddy_tests::Postgres;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use serde::Deserialize;
use tokio_postgres::{Client, NoTls, SimpleQueryMessage};

#[derive(Parser, Debug, Clone)]
#[command(about = "Eddy ingestion vs a bare consumer; point lookups and scans vs PostgreSQL 15")]
struct Args {
    /// Order records to produce.
    #[arg(long, default_value_t = 1_000_000)]
    records: u64,
    /// Distinct customers (view rows); keys are the digits 1..=N.
    #[arg(long, default_value_t = 10_000)]
    customers: u64,
    /// Partitions of the topic, of `eddy serve --partitions` and of the view.
    #[arg(long, default_value_t = 4)]
    partitions: u32,
    /// Tansu storage engine: memory or sqlite.
    #[arg(long, default_value = "memory")]
    engine: String,
    /// pgbench duration per target, seconds.
    #[arg(long, default_value_t = 20)]
    seconds: u32,
    /// pgbench clients (-c).
    #[arg(long, default_value_t = 4)]
    clients: u32,
    /// pgbench threads (-j).
    #[arg(long, default_value_t = 2)]
    threads: u32,
    /// Deadline for each ingestion phase, seconds.
    #[arg(long, default_value_t = 900)]
    timeout: u64,
    /// Order records for the cluster phase (its own broker, sqlite engine).
    #[arg(long, default_value_t = 50_000)]
    cluster_records: u64,
    /// `--session-timeout-ms` of the cluster phase's nodes. Tansu's sqlite
    /// engine, saturated by the ingestion on 2 cores, answers group heartbeats
    /// late; the 3 s default then expels members again and again.
    #[arg(long, default_value_t = 10_000)]
    cluster_session_ms: u64,
    /// Rows of the HA phase's view (one order each; its own sqlite broker);
    /// 0 skips the phase.
    #[arg(long, default_value_t = 1_000_000)]
    ha_rows: u64,
    /// Run the HA phase alone and print its report instead of writing
    /// BENCHMARKS.md.
    #[arg(long)]
    only_ha: bool,
    /// Orders (and rows of the `all_orders` view) of the scan phase (its own
    /// sqlite broker, three nodes); 0 skips the phase. The two views over
    /// this broker take about 280 s to ingest 1,000,000 orders on 2 cores.
    #[arg(long, default_value_t = 1_000_000)]
    scan_rows: u64,
    /// Timed runs per query and engine in the scan phase (the median is
    /// reported; fewer when a query's runs pass 40 s, at least three).
    #[arg(long, default_value_t = 5)]
    scan_runs: usize,
    /// Run the scan phase alone and print its report instead of writing
    /// BENCHMARKS.md.
    #[arg(long)]
    only_scan: bool,
    /// pgbench seconds per run of the authentication and TLS phase (seven
    /// runs, on their own memory broker); 0 skips the phase.
    #[arg(long, default_value_t = 10)]
    security_seconds: u32,
    /// Run the authentication and TLS phase alone and print its report
    /// instead of writing BENCHMARKS.md.
    #[arg(long)]
    only_security: bool,
    /// Where to write the report (default: BENCHMARKS.md at the repo root).
    #[arg(long)]
    out: Option<PathBuf>,
}

/// The answer `revenue` must hold for one customer.
#[derive(Clone, Debug, Default)]
struct Expected {
    orders: i64,
    total: f64,
    smallest: f64,
    largest: f64,
}

struct Generated {
    records: u64,
    counted: i64,
    per_customer: HashMap<String, Expected>,
    seconds: f64,
}

#[derive(Deserialize)]
#[allow(dead_code)] // decoded to measure decoding, not read
struct Row {
    order_id: i64,
    customer: String,
    amount: f64,
    status: String,
    ts: i64,
}

struct Rate {
    records: u64,
    seconds: f64,
}

impl Rate {
    fn per_sec(&self) -> f64 {
        self.records as f64 / self.seconds
    }
}

#[derive(Debug, Default, Clone)]
struct Pgbench {
    tps: f64,
    avg_ms: f64,
    p50_ms: f64,
    p99_ms: f64,
    transactions: u64,
    failed: u64,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let engine = match args.engine.as_str() {
        "memory" => "memory://tansu/",
        "sqlite" => "sqlite://tansu.db",
        other => bail!("--engine must be memory or sqlite, not {other}"),
    };
    let deadline = Duration::from_secs(args.timeout);
    let work = tempfile::Builder::new().prefix("eddy-bench-").tempdir()?;
    if args.only_ha {
        let figures = ha::ha_bench(&args, work.path(), deadline).await;
        let mut md = String::new();
        ha::markdown(&mut md, &figures);
        println!("{md}");
        return Ok(());
    }
    if args.only_security {
        let figures = security::security_bench(&args, work.path()).await;
        let mut md = String::new();
        security::markdown(&mut md, &figures);
        println!("{md}");
        return Ok(());
    }
    if args.only_scan {
        let figures = scan::scan_bench(&args, work.path(), deadline).await;
        let mut md = String::new();
        scan::markdown(&mut md, &figures);
        println!("{md}");
        return Ok(());
    }

    println!("bench: starting tansu ({engine})");
    let tansu = Tansu::start(engine)?;
    let brokers = tansu.brokers();
    let topic = "bench_orders";
    ensure_topic(&brokers, topic, args.partitions as i32).await?;

    println!(
        "bench: producing {} orders over {} customers",
        args.records, args.customers
    );
    let generated = generate(&brokers, topic, &args).await?;
    println!(
        "bench: produced {} records in {:.1} s ({:.0}/s); {} not cancelled",
        generated.records,
        generated.seconds,
        generated.records as f64 / generated.seconds,
        generated.counted
    );

    println!("bench: (a) bare consumer");
    let bare = {
        let brokers = brokers.clone();
        let records = generated.records;
        let partitions = args.partitions as i32;
        tokio::task::spawn_blocking(move || {
            bare_consume(&brokers, topic, partitions, records, deadline)
        })
        .await?
    };
    match &bare {
        Ok(r) => println!("bench: bare consumer {:.0} records/s", r.per_sec()),
        Err(e) => println!("bench: bare consumer failed: {e:#}"),
    }

    println!("bench: (b) eddy ingestion");
    let eddy = Eddy::start(&brokers, "bench", args.partitions);
    let mut eddy_client = None;
    let ingest = match &eddy {
        Ok(node) => match eddy_ingest(node, topic, &args, &generated, deadline).await {
            Ok((rate, client, verified)) => {
                println!("bench: eddy {:.0} records/s ({verified})", rate.per_sec());
                eddy_client = Some(client);
                Ok((rate, verified))
            }
            Err(e) => {
                println!("bench: eddy ingestion failed: {e:#}");
                Err(e)
            }
        },
        Err(e) => {
            println!("bench: eddy did not start: {e:#}");
            Err(anyhow::anyhow!("{e:#}"))
        }
    };

    let script = work.path().join("lookup.sql");
    lookup_script(&script, "revenue", "customer", args.customers)?;

    println!("bench: (c) pgbench against eddy");
    let eddy_lookups = match (&eddy, &eddy_client) {
        (Ok(node), Some(_)) => pgbench(
            &args,
            &script,
            work.path(),
            "eddy",
            node.pg_port,
            "eddy",
            "eddy",
            "",
        ),
        _ => Err(anyhow::anyhow!("skipped: eddy ingestion did not complete")),
    };
    report_pgbench("eddy", &eddy_lookups);

    println!("bench: (c) pgbench against eddy while {SCANNERS} clients scan");
    let scanning = match (&eddy, &eddy_client) {
        (Ok(node), Some(_)) => lookups_while_scanning(&args, &script, work.path(), node.pg_port),
        _ => Err(anyhow::anyhow!("skipped: eddy ingestion did not complete")),
    };
    match &scanning {
        Ok((p, scans)) => println!(
            "bench: eddy while scanning: {:.0} tps, p99 {:.3} ms; {scans:.0} scans/s",
            p.tps, p.p99_ms
        ),
        Err(e) => println!("bench: eddy while scanning: {e:#}"),
    }

    println!("bench: (c) pgbench against postgresql 15");
    let pg_lookups = postgres_lookups(
        &args,
        &script,
        work.path(),
        eddy_client.as_ref(),
        &generated,
    )
    .await;
    report_pgbench("postgres", &pg_lookups);
    drop(eddy_client);
    drop(eddy);

    println!("bench: (d) clusters (sqlite engine)");
    let cluster = cluster_bench(&args, deadline).await;

    let scans = if args.scan_rows > 0 {
        println!("bench: (e) scans on three nodes (sqlite engine)");
        Some(scan::scan_bench(&args, work.path(), deadline).await)
    } else {
        None
    };

    let ha = if args.ha_rows > 0 {
        println!("bench: (f) high availability (sqlite engine)");
        Some(ha::ha_bench(&args, work.path(), deadline).await)
    } else {
        None
    };

    let security = if args.security_seconds > 0 {
        println!("bench: (g) authentication and TLS");
        Some(security::security_bench(&args, work.path()).await)
    } else {
        None
    };

    let out = args
        .out
        .clone()
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../BENCHMARKS.md"));
    let mut md = markdown(
        &args,
        &generated,
        &bare,
        &ingest,
        &Lookups {
            eddy: eddy_lookups,
            scanning,
            postgres: pg_lookups,
        },
        &cluster,
    );
    if let Some(scans) = &scans {
        scan::markdown(&mut md, scans);
    }
    if let Some(ha) = &ha {
        ha::markdown(&mut md, ha);
    }
    if let Some(security) = &security {
        security::markdown(&mut md, security);
    }
    std::fs::write(&out, md).with_context(|| format!("writing {}", out.display()))?;
    println!("bench: wrote {}", out.display());
    drop(tansu);
    Ok(())
}

/// The orders every phase produces: order ids `1..=records`, customers `1..=customers`,
/// the same sequence for the same arguments (so a phase can regenerate what it
/// produced, e.g. to load PostgreSQL).
fn orders(records: u64, customers: u64) -> impl Iterator<Item = Order> {
    let mut rng = Rng::new(0xEDD1);
    let ts0 = 1_793_000_000_000i64;
    (0..records).map(move |i| {
        let customer = (rng.below(customers) + 1).to_string();
        Order::random(&mut rng, i as i64 + 1, customer, ts0 + i as i64)
    })
}

async fn generate(brokers: &str, topic: &str, args: &Args) -> Result<Generated> {
    let producer = producer(brokers)?;
    let mut pipeline = Pipeline::new(&producer, 200_000);
    let mut per_customer: HashMap<String, Expected> = HashMap::new();
    let mut counted = 0i64;
    let start = Instant::now();
    for order in orders(args.records, args.customers) {
        if order.counts() {
            counted += 1;
            let e = per_customer
                .entry(order.customer.clone())
                .or_insert(Expected {
                    smallest: f64::INFINITY,
                    largest: f64::NEG_INFINITY,
                    ..Expected::default()
                });
            e.orders += 1;
            e.total += order.amount;
            e.smallest = e.smallest.min(order.amount);
            e.largest = e.largest.max(order.amount);
        }
        pipeline.send(topic, None, Some(&order.json())).await?;
    }
    let records = pipeline.finish().await?;
    Ok(Generated {
        records,
        counted,
        per_customer,
        seconds: start.elapsed().as_secs_f64(),
    })
}

fn bare_consume(
    brokers: &str,
    topic: &str,
    partitions: i32,
    records: u64,
    deadline: Duration,
) -> Result<Rate> {
    let consumer: BaseConsumer = eddy_examples::kafka::config(brokers)
        .set("group.id", "bench-bare")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create()?;
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)?;
    }
    consumer.assign(&tpl)?;
    let start = Instant::now();
    let mut seen = 0u64;
    let mut checksum = 0i64;
    while seen < records {
        if start.elapsed() > deadline {
            bail!("read {seen} of {records} records before the deadline");
        }
        if let Some(msg) = consumer.poll(Duration::from_millis(100)) {
            let msg = msg?;
            let row: Row = serde_json::from_slice(msg.payload().unwrap_or_default())?;
            checksum = checksum.wrapping_add(row.order_id);
            seen += 1;
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    let n = records as i64;
    if checksum != n * (n + 1) / 2 {
        bail!("order ids do not add up: duplicates or losses in the topic");
    }
    Ok(Rate {
        records: seen,
        seconds,
    })
}

async fn connect(conn: &str) -> Result<Client> {
    let (client, connection) = tokio_postgres::connect(conn, NoTls)
        .await
        .with_context(|| format!("connecting to {conn}"))?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

async fn first_cell(client: &Client, sql: &str) -> Result<Option<String>> {
    for msg in client.simple_query(sql).await? {
        if let SimpleQueryMessage::Row(row) = msg {
            return Ok(row.get(0).map(str::to_owned));
        }
    }
    Ok(None)
}

async fn eddy_ingest(
    node: &Eddy,
    topic: &str,
    args: &Args,
    generated: &Generated,
    deadline: Duration,
) -> Result<(Rate, Client, String)> {
    let client = connect(&node.conn_str()).await?;
    let start = Instant::now();
    client
        .batch_execute(&create_orders_source("orders", topic))
        .await?;
    client
        .batch_execute(&create_revenue_view("revenue", "orders", args.partitions))
        .await?;
    let want = generated.counted.to_string();
    let mut next_report = Duration::from_secs(10);
    loop {
        let last = match first_cell(&client, "SELECT SUM(orders) FROM revenue").await {
            Ok(Some(sum)) if sum == want => break,
            Ok(v) => format!("SUM(orders) = {v:?}"),
            Err(e) => format!("error: {e}"),
        };
        let elapsed = start.elapsed();
        if elapsed > deadline {
            bail!(
                "not caught up after {deadline:?}: {last}; log {}",
                node.log_path().display()
            );
        }
        if elapsed > next_report {
            println!("bench: eddy after {:.0} s: {last}", elapsed.as_secs_f64());
            next_report += Duration::from_secs(10);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let rate = Rate {
        records: generated.records,
        seconds: start.elapsed().as_secs_f64(),
    };
    let verified = verify(&client, generated).await?;
    Ok((rate, client, verified))
}

/// Compares every row of Eddy's view with the answer computed while generating.
async fn verify(client: &Client, generated: &Generated) -> Result<String> {
    let mut rows = 0usize;
    let mut wrong = 0usize;
    for msg in client
        .simple_query("SELECT customer, orders, total FROM revenue")
        .await?
    {
        if let SimpleQueryMessage::Row(row) = msg {
            rows += 1;
            let want = row.get(0).and_then(|c| generated.per_customer.get(c));
            let orders: Option<i64> = row.get(1).and_then(|v| v.parse().ok());
            let total: Option<f64> = row.get(2).and_then(|v| v.parse().ok());
            match want {
                Some(w) if Some(w.orders) == orders && Some(w.total) == total => {}
                _ => wrong += 1,
            }
        }
    }
    Ok(if rows == generated.per_customer.len() && wrong == 0 {
        format!("all {rows} rows verified")
    } else {
        format!(
            "{wrong} of {rows} rows differ from the expected {} rows",
            generated.per_customer.len()
        )
    })
}

/// Runs pgbench with `script`; `options` go to the server as PGOPTIONS
/// (session settings such as `-c replica_preference=any`).
#[allow(clippy::too_many_arguments)]
fn pgbench(
    args: &Args,
    script: &Path,
    dir: &Path,
    label: &str,
    port: u16,
    user: &str,
    db: &str,
    options: &str,
) -> Result<Pgbench> {
    let log_dir = dir.join(format!("pgbench-{label}"));
    std::fs::create_dir_all(&log_dir)?;
    let out = run(
        pgbench_command(args.clients, args.threads, args.seconds, script, port, user)
            .env("PGOPTIONS", options)
            .arg("--log")
            .arg(format!("--log-prefix={}", log_dir.join("tx").display()))
            .arg(db),
    )?;
    let mut latencies_us: Vec<u64> = Vec::new();
    for entry in std::fs::read_dir(&log_dir)? {
        let text = std::fs::read_to_string(entry?.path())?;
        // client_id transaction_no time_us script_no time_epoch time_us
        latencies_us.extend(
            text.lines()
                .filter_map(|l| l.split_whitespace().nth(2)?.parse::<u64>().ok()),
        );
    }
    latencies_us.sort_unstable();
    let pct = |p: f64| -> f64 {
        if latencies_us.is_empty() {
            return f64::NAN;
        }
        let i = ((latencies_us.len() as f64 - 1.0) * p).round() as usize;
        latencies_us[i] as f64 / 1000.0
    };
    Ok(Pgbench {
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
        ..pgbench_summary(&out)?
    })
}

/// What pgbench prints at the end: throughput, average latency and counts
/// (percentiles need its `--log`).
fn pgbench_summary(out: &str) -> Result<Pgbench> {
    let field = |prefix: &str| -> Option<f64> {
        out.lines()
            .find_map(|l| l.trim().strip_prefix(prefix))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|v| v.parse().ok())
    };
    Ok(Pgbench {
        tps: field("tps = ").context("no tps in pgbench output")?,
        avg_ms: field("latency average = ").unwrap_or(f64::NAN),
        p50_ms: f64::NAN,
        p99_ms: f64::NAN,
        transactions: field("number of transactions actually processed: ").unwrap_or(0.0) as u64,
        failed: field("number of failed transactions: ").unwrap_or(0.0) as u64,
    })
}

/// A pgbench script of point reads: `view` by `key`, a random key of 1..=`keys`.
fn lookup_script(path: &Path, view: &str, key: &str, keys: u64) -> Result<()> {
    std::fs::write(
        path,
        format!("\\set k random(1, {keys})\nSELECT * FROM {view} WHERE {key} = :k;\n"),
    )?;
    Ok(())
}

/// `pgbench -n -M prepared` with `script` against 127.0.0.1:`port`; the
/// caller adds the database name last.
fn pgbench_command(
    clients: u32,
    threads: u32,
    seconds: u32,
    script: &Path,
    port: u16,
    user: &str,
) -> Command {
    let mut c = Command::new("pgbench");
    c.args(["-n", "-M", "prepared"])
        .args(["-c", &clients.to_string(), "-j", &threads.to_string()])
        .args(["-T", &seconds.to_string()])
        .arg("-f")
        .arg(script)
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-U", user])
        // Eddy's; PostgreSQL's baseline trusts local connections.
        .env("PGPASSWORD", eddy_examples::procs::password());
    c
}

/// Clients that scan while the lookups of [`lookups_while_scanning`] run.
const SCANNERS: u32 = 20;

/// The lookups of (c) again, while [`SCANNERS`] more clients each scan the
/// whole view, sort it and keep 50 rows, as fast as they can: point lookups
/// must keep their latency while scans run. Returns the lookups and the scans
/// per second.
fn lookups_while_scanning(
    args: &Args,
    script: &Path,
    dir: &Path,
    port: u16,
) -> Result<(Pgbench, f64)> {
    let scan = dir.join("scan.sql");
    std::fs::write(
        &scan,
        "SELECT customer, total FROM revenue ORDER BY total DESC LIMIT 50;\n",
    )?;
    let scanners = pgbench_command(SCANNERS, 1, args.seconds, &scan, port, "eddy")
        .arg("eddy")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .context("starting the scanning pgbench")?;
    let lookups = pgbench(args, script, dir, "eddy-scanning", port, "eddy", "eddy", "");
    let out = scanners.wait_with_output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let scans = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("tps = "))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .with_context(|| format!("no tps from the scanning pgbench: {text}"))?;
    Ok((lookups?, scans))
}

fn report_pgbench(label: &str, r: &Result<Pgbench>) {
    match r {
        Ok(p) => println!(
            "bench: {label}: {:.0} tps, p50 {:.3} ms, p99 {:.3} ms",
            p.tps, p.p50_ms, p.p99_ms
        ),
        Err(e) => println!("bench: {label}: {e:#}"),
    }
}

/// Starts PostgreSQL 15, loads the view's rows (from Eddy when it finished, else the
/// answer computed while generating) into an indexed table and runs pgbench.
async fn postgres_lookups(
    args: &Args,
    script: &Path,
    dir: &Path,
    eddy: Option<&Client>,
    generated: &Generated,
) -> Result<Pgbench> {
    let pg = Postgres::start()?;
    let client = connect(&pg.conn_str()).await?;
    client
        .batch_execute(
            "CREATE TABLE revenue (customer TEXT PRIMARY KEY, orders BIGINT, \
             total DOUBLE PRECISION, avg_amount DOUBLE PRECISION, \
             smallest DOUBLE PRECISION, largest DOUBLE PRECISION)",
        )
        .await?;
    let rows: Vec<Vec<String>> = match eddy {
        Some(eddy) => eddy
            .simple_query(
                "SELECT customer, orders, total, avg_amount, smallest, largest FROM revenue",
            )
            .await?
            .into_iter()
            .filter_map(|m| match m {
                SimpleQueryMessage::Row(r) => Some(
                    (0..6)
                        .map(|i| r.get(i).unwrap_or("NULL").to_owned())
                        .collect(),
                ),
                _ => None,
            })
            .collect(),
        None => generated
            .per_customer
            .iter()
            .map(|(c, e)| {
                let avg = e.total / e.orders as f64;
                vec![
                    c.clone(),
                    e.orders.to_string(),
                    e.total.to_string(),
                    avg.to_string(),
                    e.smallest.to_string(),
                    e.largest.to_string(),
                ]
            })
            .collect(),
    };
    for chunk in rows.chunks(1000) {
        let mut sql = String::from("INSERT INTO revenue VALUES ");
        for (i, row) in chunk.iter().enumerate() {
            let customer = row[0].replace('\'', "''");
            write!(
                sql,
                "{}('{customer}', {}, {}, {}, {}, {})",
                if i > 0 { "," } else { "" },
                row[1],
                row[2],
                row[3],
                row[4],
                row[5]
            )?;
        }
        client.batch_execute(&sql).await?;
    }
    client.batch_execute("VACUUM ANALYZE revenue").await?;
    let result = pgbench(
        args, script, dir, "postgres", pg.port, "postgres", "postgres", "",
    );
    drop(client);
    drop(pg);
    result
}

fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
        .unwrap_or_else(|| "unknown CPU".into());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_kb: f64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0);
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    format!(
        "{cores} cores ({model}), {:.1} GiB RAM",
        mem_kb / 1024.0 / 1024.0
    )
}

fn shell(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "unknown".into())
}

fn markdown(
    args: &Args,
    generated: &Generated,
    bare: &Result<Rate>,
    ingest: &Result<(Rate, String)>,
    lookups: &Lookups,
    cluster: &ClusterFigures,
) -> String {
    let Lookups {
        eddy: eddy_lookups,
        scanning,
        postgres: pg_lookups,
    } = lookups;
    let mut md = String::new();
    let repo = env!("CARGO_MANIFEST_DIR");
    let commit = shell("git", &["-C", repo, "rev-parse", "--short", "HEAD"]);
    let tansu = shell(
        &eddy_examples::tansu_bin().to_string_lossy(),
        &["--version"],
    );
    let date = shell("date", &["-u", "+%Y-%m-%d %H:%M UTC"]);
    let _ = writeln!(md, "# Benchmarks\n");
    let _ = writeln!(md, "Reproduce with:\n\n```sh\nscripts/setup.sh --bench\ncargo run --release -p eddy-examples --bin bench\n```\n");
    let _ = writeln!(md, "- Run: {date}, commit {commit}");
    let _ = writeln!(md, "- Machine: {}, {}", machine(), shell("uname", &["-sr"]));
    let _ = writeln!(
        md,
        "- Data: {} JSON orders ({} not cancelled) over {} customers; {} partitions for the topic, \
         `eddy serve --partitions` and the view; broker {tansu}, {} engine",
        generated.records, generated.counted, args.customers, args.partitions, args.engine
    );
    let _ = writeln!(
        md,
        "- Lookups: `pgbench -n -M prepared -c {} -j {} -T {}` with `\\set k random(1, {})` and \
         `SELECT * FROM revenue WHERE customer = :k;` (customer keys are digit strings); latency \
         percentiles from pgbench's per-transaction `--log`\n",
        args.clients, args.threads, args.seconds, args.customers
    );

    let _ = writeln!(
        md,
        "## Ingestion\n\n| reader | seconds | records/s |\n|---|---:|---:|"
    );
    let rate_row = |md: &mut String, name: &str, r: Result<&Rate, String>| {
        let _ = match r {
            Ok(r) => writeln!(md, "| {name} | {:.1} | {:.0} |", r.seconds, r.per_sec()),
            Err(e) => writeln!(md, "| {name} | failed: {} | |", one_line(&e)),
        };
    };
    rate_row(
        &mut md,
        "bare rdkafka `BaseConsumer` + serde_json decode",
        bare.as_ref().map_err(|e| format!("{e:#}")),
    );
    rate_row(
        &mut md,
        "Eddy: CREATE SOURCE + `revenue` view until `SUM(orders)` is exact",
        ingest
            .as_ref()
            .map(|(r, _)| r)
            .map_err(|e| format!("{e:#}")),
    );
    if let (Ok(b), Ok((e, verified))) = (bare, ingest) {
        let _ = writeln!(
            md,
            "\nEddy / bare consumer: **{:.2}**. The view's rows were checked against the answer \
             computed while generating: {verified}.",
            e.per_sec() / b.per_sec()
        );
    }
    let _ = writeln!(
        md,
        "\nProducing the records took {:.1} s ({:.0} records/s).\n",
        generated.seconds,
        generated.records as f64 / generated.seconds
    );

    let _ = writeln!(
        md,
        "## Point lookups\n\n| server | tps | avg ms | p50 ms | p99 ms | transactions | failed |\n|---|---:|---:|---:|---:|---:|---:|"
    );
    let while_scanning = scanning
        .as_ref()
        .map(|(p, _)| p.clone())
        .map_err(|e| anyhow::anyhow!("{e:#}"));
    let scanning_name = format!(
        "Eddy, while {SCANNERS} more clients scan (`ORDER BY total DESC LIMIT 50` over the whole view{})",
        scanning.as_ref().map(|(_, s)| format!(": {s:.0} scans/s")).unwrap_or_default()
    );
    for (name, r) in [
        ("Eddy", eddy_lookups),
        (scanning_name.as_str(), &while_scanning),
        ("PostgreSQL 15 (indexed table, same rows)", pg_lookups),
    ] {
        let _ = match r {
            Ok(p) => writeln!(
                md,
                "| {name} | {:.0} | {:.3} | {:.3} | {:.3} | {} | {} |",
                p.tps, p.avg_ms, p.p50_ms, p.p99_ms, p.transactions, p.failed
            ),
            Err(e) => writeln!(
                md,
                "| {name} | failed: {} | | | | | |",
                one_line(&format!("{e:#}"))
            ),
        };
    }
    let _ =
        writeln!(
        md,
        "\nThe broker, Eddy, PostgreSQL and pgbench share the same {} cores, so every figure is \
         a lower bound for a machine where they do not.",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0)
    );
    cluster_markdown(&mut md, cluster);
    md
}

/// What phase (c) measured.
struct Lookups {
    eddy: Result<Pgbench>,
    /// The lookups while scans ran, and the scans per second.
    scanning: Result<(Pgbench, f64)>,
    postgres: Result<Pgbench>,
}

/// What the cluster phase measured.
struct ClusterFigures {
    records: u64,
    session_ms: u64,
    /// A bare consumer over the cluster phase's topic.
    bare: Result<Rate>,
    /// Ingestion with 1, 2 and 3 nodes.
    ingest: Vec<(usize, Result<Rate>)>,
    /// From SIGKILL of one node of three to a full scan answering exactly.
    kill_to_read: Result<f64>,
    /// Changelog records replayed by a node with an empty disk, and the
    /// seconds its restores took (summed over partitions).
    restore: Result<Rate>,
    /// A bare consumer reading the same changelog topic.
    bare_changelog: Result<Rate>,
}

async fn cluster_bench(args: &Args, deadline: Duration) -> ClusterFigures {
    let mut figures = ClusterFigures {
        records: args.cluster_records,
        session_ms: args.cluster_session_ms,
        bare: Err(anyhow::anyhow!("not reached")),
        ingest: Vec::new(),
        kill_to_read: Err(anyhow::anyhow!("not reached")),
        restore: Err(anyhow::anyhow!("not reached")),
        bare_changelog: Err(anyhow::anyhow!("not reached")),
    };
    for n in [1usize, 2, 3] {
        // A fresh broker per cluster size: Tansu's sqlite engine slows down
        // as its tables grow, which would penalise the later sizes.
        let prepared = async {
            let tansu = Tansu::start("sqlite://tansu.db")?;
            let brokers = tansu.brokers();
            ensure_topic(&brokers, "cluster_orders", args.partitions as i32).await?;
            let small = Args {
                records: args.cluster_records,
                ..args.clone()
            };
            let generated = generate(&brokers, "cluster_orders", &small).await?;
            Ok::<_, anyhow::Error>((tansu, brokers, small, generated))
        }
        .await;
        let (_tansu, brokers, small, generated) = match prepared {
            Ok(p) => p,
            Err(e) => {
                figures.ingest.push((n, Err(e)));
                continue;
            }
        };
        let topic = "cluster_orders";
        if n == 1 {
            figures.bare = {
                let (brokers, records, partitions) =
                    (brokers.clone(), generated.records, args.partitions as i32);
                tokio::task::spawn_blocking(move || {
                    bare_consume(&brokers, topic, partitions, records, deadline)
                })
                .await
                .map_err(anyhow::Error::from)
                .and_then(|r| r)
            };
            if let Ok(r) = &figures.bare {
                println!("bench: sqlite bare consumer {:.0} records/s", r.per_sec());
            }
        }
        let cluster = format!("bench{n}");
        let nodes: Result<Vec<Eddy>> = (1..=n)
            .map(|i| {
                Eddy::start_node(
                    &brokers,
                    &cluster,
                    &format!("n{i}"),
                    args.partitions,
                    "warn",
                    Some(args.cluster_session_ms),
                )
            })
            .collect();
        let mut nodes = match nodes {
            Ok(nodes) => nodes,
            Err(e) => {
                figures.ingest.push((n, Err(e)));
                continue;
            }
        };
        let ingest = eddy_ingest(&nodes[0], topic, &small, &generated, deadline).await;
        let client = match ingest {
            Ok((rate, client, verified)) => {
                println!(
                    "bench: {n} nodes {:.0} records/s ({verified})",
                    rate.per_sec()
                );
                figures.ingest.push((n, Ok(rate)));
                client
            }
            Err(e) => {
                println!("bench: {n} nodes failed: {e:#}");
                figures.ingest.push((n, Err(e)));
                continue;
            }
        };
        if n == 3 {
            figures.kill_to_read = kill_to_read(&mut nodes, &client, &generated, deadline).await;
            let (restore, bare) = restore_rate(
                &brokers, &cluster, &mut nodes, &client, &small, &generated, deadline,
            )
            .await;
            figures.restore = restore;
            figures.bare_changelog = bare;
        }
    }
    figures
}

/// Kills the last node and times until a scan of every partition, from the
/// first node, is exact again.
async fn kill_to_read(
    nodes: &mut [Eddy],
    client: &Client,
    generated: &Generated,
    deadline: Duration,
) -> Result<f64> {
    let want = generated.counted.to_string();
    let last = nodes.len() - 1;
    nodes[last].kill9();
    let start = Instant::now();
    loop {
        if let Ok(Some(sum)) = first_cell(client, "SELECT SUM(orders) FROM revenue").await {
            if sum == want {
                let s = start.elapsed().as_secs_f64();
                println!("bench: kill -9 to exact reads: {s:.2} s");
                return Ok(s);
            }
        }
        if start.elapsed() > deadline {
            bail!("reads did not recover within {deadline:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Stops the cluster's nodes, then starts one with an empty disk, which
/// restores every partition of `revenue` from the changelog; also reads that
/// changelog with a bare consumer.
async fn restore_rate(
    brokers: &str,
    cluster: &str,
    nodes: &mut Vec<Eddy>,
    client: &Client,
    args: &Args,
    generated: &Generated,
    deadline: Duration,
) -> (Result<Rate>, Result<Rate>) {
    let id = match first_cell(
        client,
        "SELECT id FROM eddy_catalog.views WHERE name = 'revenue'",
    )
    .await
    {
        Ok(Some(id)) => id,
        other => {
            let e = anyhow::anyhow!("no view id: {other:?}");
            return (Err(anyhow::anyhow!("{e}")), Err(e));
        }
    };
    let changelog = format!("_eddy_{cluster}_revenue_{id}_changelog");
    let bare = {
        let (brokers, changelog, partitions) = (
            brokers.to_owned(),
            changelog.clone(),
            args.partitions as i32,
        );
        tokio::task::spawn_blocking(move || bare_drain(&brokers, &changelog, partitions, deadline))
            .await
            .map_err(anyhow::Error::from)
            .and_then(|r| r)
    };
    if let Ok(r) = &bare {
        println!(
            "bench: bare consumer over the changelog: {:.0} records/s",
            r.per_sec()
        );
    }
    let restore = async {
        // The new node joins while the survivors still serve; then they stop
        // gracefully and hand it every partition, which it restores from the
        // changelog onto its empty disk.
        let node = Eddy::start_node(
            brokers,
            cluster,
            "n9",
            args.partitions,
            "warn,eddy_dataflow=info",
            Some(args.cluster_session_ms),
        )?;
        nodes.clear();
        // Ready means joined, not owning: wait until every partition answers.
        let c = connect(&node.conn_str()).await?;
        let want = generated.counted.to_string();
        let start = Instant::now();
        loop {
            if let Ok(Some(sum)) = first_cell(&c, "SELECT SUM(orders) FROM revenue").await {
                if sum == want {
                    break;
                }
            }
            if start.elapsed() > deadline {
                bail!("the restored node did not answer SUM(orders) = {want} in time");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let log = std::fs::read_to_string(node.log_path())?;
        let (mut records, mut ms) = (0u64, 0u64);
        for line in log.lines().filter(|l| l.contains("partition taken over")) {
            let field = |name: &str| -> Option<u64> {
                let at = line.find(name)? + name.len();
                line[at..]
                    .split(|c: char| !c.is_ascii_digit())
                    .next()?
                    .parse()
                    .ok()
            };
            records += field("replayed=").unwrap_or(0) + field("commits=").unwrap_or(0);
            ms += field("elapsed_ms=").unwrap_or(0);
        }
        Ok(Rate {
            records,
            seconds: ms.max(1) as f64 / 1000.0,
        })
    }
    .await;
    if let Ok(r) = &restore {
        println!(
            "bench: eddy restore {:.0} records/s ({} records)",
            r.per_sec(),
            r.records
        );
    }
    (restore, bare)
}

/// Reads every record of `topic` from the beginning to its end offsets
/// (correct on the sqlite engine) with a bare consumer.
fn bare_drain(brokers: &str, topic: &str, partitions: i32, deadline: Duration) -> Result<Rate> {
    let consumer: BaseConsumer = eddy_examples::kafka::config(brokers)
        .set("group.id", "bench-bare-changelog")
        .set("enable.auto.commit", "false")
        .create()?;
    let mut ends = HashMap::new();
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        let (_, high) = consumer.fetch_watermarks(topic, p, Duration::from_secs(10))?;
        if high > 0 {
            ends.insert(p, high);
            tpl.add_partition_offset(topic, p, Offset::Beginning)?;
        }
    }
    consumer.assign(&tpl)?;
    let start = Instant::now();
    let mut seen = 0u64;
    while !ends.is_empty() {
        if start.elapsed() > deadline {
            bail!("read {seen} records of {topic} before the deadline");
        }
        if let Some(msg) = consumer.poll(Duration::from_millis(100)) {
            let msg = msg?;
            std::hint::black_box(msg.payload());
            seen += 1;
            if ends
                .get(&msg.partition())
                .is_some_and(|end| msg.offset() + 1 >= *end)
            {
                ends.remove(&msg.partition());
            }
        }
    }
    Ok(Rate {
        records: seen,
        seconds: start.elapsed().as_secs_f64(),
    })
}

fn cluster_markdown(md: &mut String, c: &ClusterFigures) {
    let _ = writeln!(
        md,
        "\n## Cluster\n\nOn brokers with the **sqlite** engine, a fresh one per cluster size (the memory \
         engine skips records when a consumer starts inside a produced batch, which every \
         rebalance does), {} orders, ingested by a bare \
         consumer and by clusters of one, two and three nodes. Every node, the \
         broker and the load share this machine's cores, so more nodes add coordination, not \
         speed, here: the figures show the overhead of the repartition topic, the consumer \
         groups and the scatter-gather reads of the final check.\n\n| reader | seconds | records/s | × bare consumer |\n|---|---:|---:|---:|",
        c.records
    );
    let bare_rate = c.bare.as_ref().ok().map(Rate::per_sec);
    let mut rows: Vec<(String, Result<&Rate, String>)> = vec![(
        "bare rdkafka consumer + serde_json".into(),
        c.bare.as_ref().map_err(|e| format!("{e:#}")),
    )];
    rows.extend(c.ingest.iter().map(|(n, r)| {
        (
            format!("Eddy, {n} node{}", if *n == 1 { "" } else { "s" }),
            r.as_ref().map_err(|e| format!("{e:#}")),
        )
    }));
    for (name, r) in rows {
        let _ = match r {
            Ok(r) => writeln!(
                md,
                "| {name} | {:.1} | {:.0} | {} |",
                r.seconds,
                r.per_sec(),
                bare_rate.map_or("".into(), |b| format!("{:.2}", r.per_sec() / b))
            ),
            Err(e) => writeln!(md, "| {name} | failed: {} | | |", one_line(&e)),
        };
    }
    let _ = match &c.kill_to_read {
        Ok(s) => writeln!(
            md,
            "\n**Failover:** `kill -9` of one node of three → a scan of every partition answers \
             exactly again from a survivor: **{s:.2} s** (session timeout {} ms, then the \
             survivors, which this phase gives no standbys, restore the dead node's partitions).",
            c.session_ms
        ),
        Err(e) => writeln!(
            md,
            "\n**Failover:** failed: {}",
            one_line(&format!("{e:#}"))
        ),
    };
    let _ = writeln!(
        md,
        "\n**Restore:** a node with an empty disk takes over every partition of the 3-node \
         cluster's `revenue` and replays it: the commit log (each commit judged) and the \
         changelog records of accepted batches, counted together; the bare consumer reads \
         the changelog topic alone, from the beginning to its end offsets.\n\n| reader | records | seconds | records/s |\n|---|---:|---:|---:|"
    );
    for (name, r) in [
        (
            "bare rdkafka consumer over the changelog topic",
            &c.bare_changelog,
        ),
        ("Eddy restore (all partitions, summed)", &c.restore),
    ] {
        let _ = match r {
            Ok(r) => writeln!(
                md,
                "| {name} | {} | {:.2} | {:.0} |",
                r.records,
                r.seconds,
                r.per_sec()
            ),
            Err(e) => writeln!(
                md,
                "| {name} | failed: {} | | |",
                one_line(&format!("{e:#}"))
            ),
        };
    }
    if let (Ok(e), Ok(b)) = (&c.restore, &c.bare_changelog) {
        let _ = writeln!(
            md,
            "\nEddy restore / bare consumer: **{:.2}**.",
            e.per_sec() / b.per_sec()
        );
    }
}

fn one_line(s: &str) -> String {
    let s = s.replace(['\n', '|'], " ");
    if s.len() > 200 {
        format!(
            "{}…",
            &s[..s.char_indices().nth(200).map(|(i, _)| i).unwrap_or(s.len())]
        )
    } else {
        s
    }
}
