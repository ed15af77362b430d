//! demo-feed: sets up the demo (topics `orders` and `customers`, their sources, the
//! `revenue` and `customers_by_region` views) if absent, then produces a few random
//! orders per second until stopped, or `--count N` orders and exits.
//!
//!     cargo run --release -p eddy-examples --bin demo-feed -- --count 1000

use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;
use eddy_examples::kafka::{ensure_topic, producer, Pipeline};
use eddy_examples::orders::{create_orders_source, create_revenue_view, now_ms, Order, Rng};
use tokio_postgres::{Client, NoTls, SimpleQueryMessage};

const CUSTOMERS: [(&str, &str, &str); 6] = [
    ("alice", "Alice Archer", "eu"),
    ("bob", "Bob Baker", "us"),
    ("carol", "Carol Chen", "apac"),
    ("dave", "Dave Duarte", "eu"),
    ("erin", "Erin Evans", "us"),
    ("frank", "Frank Fischer", "eu"),
];

#[derive(Parser, Debug)]
#[command(about = "Feeds the Eddy demo: topics, sources, views, then a trickle of orders")]
struct Args {
    /// Kafka bootstrap servers.
    #[arg(long, env = "EDDY_BROKERS", default_value = "127.0.0.1:9092")]
    brokers: String,
    /// Connection string of an Eddy node.
    #[arg(long, default_value = "host=127.0.0.1 port=6875 user=eddy dbname=eddy")]
    pg: String,
    /// Produce this many orders as fast as possible, then exit (default: forever).
    #[arg(long)]
    count: Option<u64>,
    /// Orders per second when running forever.
    #[arg(long, default_value_t = 5)]
    rate: u32,
    /// Partitions of the topics and of the view.
    #[arg(long, default_value_t = 4)]
    partitions: u32,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();

    for topic in ["orders", "customers"] {
        if ensure_topic(&args.brokers, topic, args.partitions as i32).await? {
            println!(
                "demo-feed: created topic {topic} ({} partitions)",
                args.partitions
            );
        }
    }
    let (client, connection) = tokio_postgres::connect(&args.pg, NoTls)
        .await
        .with_context(|| format!("connecting to eddy ({})", args.pg))?;
    tokio::spawn(async move {
        if let Err(err) = connection.await {
            eprintln!("demo-feed: eddy connection closed: {err}");
        }
    });
    create_if_absent(&client, &args).await?;

    let producer = producer(&args.brokers)?;
    let mut pipeline = Pipeline::new(&producer, 10_000);
    for (id, name, region) in CUSTOMERS {
        let json = serde_json::json!({"id": id, "name": name, "region": region}).to_string();
        pipeline.send("customers", Some(id), Some(&json)).await?;
    }

    let mut rng = Rng::from_time();
    let mut next_id = now_ms() * 1000; // distinct across runs
    let mut make = move |rng: &mut Rng| {
        let customer = CUSTOMERS[rng.below(CUSTOMERS.len() as u64) as usize].0;
        next_id += 1;
        Order::random(rng, next_id, customer.to_owned(), now_ms())
    };

    if let Some(count) = args.count {
        for _ in 0..count {
            let order = make(&mut rng);
            pipeline.send("orders", None, Some(&order.json())).await?;
        }
        let n = pipeline.finish().await?;
        println!("demo-feed: produced {count} orders ({n} records with customers)");
        return Ok(());
    }

    println!(
        "demo-feed: producing {} orders/s to topic orders (Ctrl-C stops)",
        args.rate
    );
    let mut tick = tokio::time::interval(Duration::from_secs(1) / args.rate.max(1));
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut produced = 0u64;
    let mut next_report = 100u64;
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let order = make(&mut rng);
                pipeline.send("orders", None, Some(&order.json())).await?;
                produced += 1;
                if produced == next_report {
                    next_report += 100;
                    println!("demo-feed: {produced} orders produced");
                }
            }
            _ = tokio::signal::ctrl_c() => break,
            _ = term.recv() => break,
        }
    }
    pipeline.finish().await?;
    println!("demo-feed: stopped after {produced} orders");
    Ok(())
}

/// First-column names listed by a SHOW statement.
async fn listed(client: &Client, show: &str) -> Result<Vec<String>> {
    Ok(client
        .simple_query(show)
        .await?
        .into_iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(row) => row.get(0).map(str::to_owned),
            _ => None,
        })
        .collect())
}

async fn create_if_absent(client: &Client, args: &Args) -> Result<()> {
    let sources = listed(client, "SHOW SOURCES").await?;
    if !sources.iter().any(|s| s == "orders") {
        client
            .batch_execute(&create_orders_source("orders", "orders"))
            .await?;
        println!("demo-feed: created source orders");
    }
    if !sources.iter().any(|s| s == "customers") {
        client
            .batch_execute(
                "CREATE SOURCE customers (id TEXT PRIMARY KEY, name TEXT, region TEXT) \
                 WITH (topic = 'customers', format = 'json')",
            )
            .await?;
        println!("demo-feed: created source customers");
    }
    let views = listed(client, "SHOW MATERIALIZED VIEWS").await?;
    if !views.iter().any(|v| v == "revenue") {
        client
            .batch_execute(&create_revenue_view("revenue", "orders", args.partitions))
            .await?;
        println!("demo-feed: created materialized view revenue");
    }
    if !views.iter().any(|v| v == "customers_by_region") {
        client
            .batch_execute(
                "CREATE MATERIALIZED VIEW customers_by_region AS \
                 SELECT region, COUNT(*) AS customers FROM customers GROUP BY region",
            )
            .await?;
        println!("demo-feed: created materialized view customers_by_region");
    }
    Ok(())
}
