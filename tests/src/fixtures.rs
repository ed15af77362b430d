//! Deterministic order records and the answer the `revenue` view must converge to,
//! computed here from the same records (the test's oracle).
//!
//! Amounts are multiples of 0.25, so every sum is exact in f64 whatever the order of
//! addition: a recovered view must match to the last bit, not within a tolerance.

use std::collections::BTreeMap;

use anyhow::{bail, Context, Result};
use tokio_postgres::Client;

use crate::broker::{Producer, Record};
use crate::cluster::TestCluster;
use crate::sql::query_maps;

/// The column list of an `orders`-shaped source (DESIGN §2).
pub const ORDERS_COLUMNS: &str =
    "order_id BIGINT, customer TEXT, amount DOUBLE PRECISION, status TEXT, ts TIMESTAMP";

/// `CREATE SOURCE <name> (...) WITH (topic = '<topic>', format = 'json', start = 'earliest')`.
/// The setup most tests share: a fresh `orders` topic with `topic_partitions`
/// partitions, source `orders` over it and view `revenue` (with
/// `view_partitions`) over the source. Returns a client and the topic's name.
pub async fn orders_and_revenue(
    cluster: &TestCluster,
    topic_partitions: i32,
    view_partitions: u32,
) -> Result<(Client, String)> {
    let topic = cluster.create_topic("orders", topic_partitions).await?;
    let client = cluster.client().await?;
    client
        .batch_execute(&create_orders_source("orders", &topic))
        .await?;
    client
        .batch_execute(&create_revenue_view("revenue", "orders", view_partitions))
        .await?;
    Ok((client, topic))
}

pub fn create_orders_source(name: &str, topic: &str) -> String {
    format!(
        "CREATE SOURCE {name} ({ORDERS_COLUMNS}) \
         WITH (topic = '{topic}', format = 'json', start = 'earliest')"
    )
}

/// The `revenue` view of DESIGN §2 over `source`, sharded over `partitions`.
pub fn create_revenue_view(name: &str, source: &str, partitions: u32) -> String {
    format!(
        "CREATE MATERIALIZED VIEW {name} WITH (partitions = {partitions}) AS \
         SELECT customer, COUNT(*) AS orders, SUM(amount) AS total, \
         AVG(amount) AS avg_amount, MIN(amount) AS smallest, MAX(amount) AS largest \
         FROM {source} WHERE status <> 'cancelled' GROUP BY customer"
    )
}

/// One order record.
#[derive(Clone, Debug, PartialEq)]
pub struct Order {
    pub order_id: i64,
    pub customer: String,
    pub amount: f64,
    pub status: &'static str,
    pub ts: String,
}

impl Order {
    pub fn json(&self) -> String {
        serde_json::json!({
            "order_id": self.order_id,
            "customer": self.customer,
            "amount": self.amount,
            "status": self.status,
            "ts": self.ts,
        })
        .to_string()
    }

    /// An unkeyed record carrying this order.
    pub fn record(&self) -> Record {
        Record::value(self.json())
    }
}

/// A small deterministic PRNG (splitmix64): same seed, same orders, every run.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// `count` orders with ids `first_id..`, customers `c0..c{customers-1}`, amounts in
/// 0.25..=250.00 (multiples of 0.25), one in five cancelled.
pub fn orders(seed: u64, first_id: i64, count: usize, customers: u64) -> Vec<Order> {
    let mut rng = Rng::new(seed);
    (0..count)
        .map(|i| {
            let status = match rng.below(5) {
                0 => "cancelled",
                1 => "shipped",
                _ => "paid",
            };
            let second = i as u64 % 86_400;
            Order {
                order_id: first_id + i as i64,
                customer: format!("c{}", rng.below(customers)),
                amount: (rng.below(1000) + 1) as f64 * 0.25,
                status,
                ts: format!(
                    "2026-11-05T{:02}:{:02}:{:02}",
                    second / 3600,
                    second / 60 % 60,
                    second % 60
                ),
            }
        })
        .collect()
}

/// One row of the `revenue` view.
#[derive(Clone, Debug, PartialEq)]
pub struct Revenue {
    pub orders: i64,
    pub total: f64,
    pub avg_amount: f64,
    pub smallest: f64,
    pub largest: f64,
}

/// What `revenue` must hold after exactly these orders, keyed by customer.
pub fn expected_revenue<'a>(
    orders: impl IntoIterator<Item = &'a Order>,
) -> BTreeMap<String, Revenue> {
    let mut out: BTreeMap<String, Revenue> = BTreeMap::new();
    for o in orders {
        if o.status == "cancelled" {
            continue;
        }
        let r = out.entry(o.customer.clone()).or_insert(Revenue {
            orders: 0,
            total: 0.0,
            avg_amount: 0.0,
            smallest: f64::INFINITY,
            largest: f64::NEG_INFINITY,
        });
        r.orders += 1;
        r.total += o.amount;
        r.smallest = r.smallest.min(o.amount);
        r.largest = r.largest.max(o.amount);
    }
    for r in out.values_mut() {
        r.avg_amount = r.total / r.orders as f64;
    }
    out
}

/// Reads a revenue-shaped view into the same shape as [`expected_revenue`].
pub async fn fetch_revenue(client: &Client, view: &str) -> Result<BTreeMap<String, Revenue>> {
    let sql = format!("SELECT customer, orders, total, avg_amount, smallest, largest FROM {view}");
    let mut out = BTreeMap::new();
    for row in query_maps(client, &sql).await? {
        let text = |col: &str| -> Result<String> {
            row.get(col)
                .cloned()
                .flatten()
                .with_context(|| format!("{view}.{col} is missing or NULL in {row:?}"))
        };
        let float = |col: &str| -> Result<f64> {
            text(col)?
                .parse::<f64>()
                .with_context(|| format!("{view}.{col} is not a number in {row:?}"))
        };
        out.insert(
            text("customer")?,
            Revenue {
                orders: text("orders")?.parse()?,
                total: float("total")?,
                avg_amount: float("avg_amount")?,
                smallest: float("smallest")?,
                largest: float("largest")?,
            },
        );
    }
    Ok(out)
}

/// Ok when the two answers are equal (AVG within a relative 1e-9: it is a division);
/// otherwise an error listing the first differences.
pub fn compare_revenue(
    actual: &BTreeMap<String, Revenue>,
    expected: &BTreeMap<String, Revenue>,
) -> Result<()> {
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0);
    let mut diffs = Vec::new();
    for (customer, want) in expected {
        match actual.get(customer) {
            None => diffs.push(format!("{customer}: missing, want {want:?}")),
            Some(got) => {
                let same = got.orders == want.orders
                    && got.total == want.total
                    && got.smallest == want.smallest
                    && got.largest == want.largest
                    && close(got.avg_amount, want.avg_amount);
                if !same {
                    diffs.push(format!("{customer}: got {got:?}, want {want:?}"));
                }
            }
        }
    }
    for customer in actual.keys().filter(|c| !expected.contains_key(*c)) {
        diffs.push(format!("{customer}: unexpected row {:?}", actual[customer]));
    }
    if diffs.is_empty() {
        return Ok(());
    }
    let total_got: i64 = actual.values().map(|r| r.orders).sum();
    let total_want: i64 = expected.values().map(|r| r.orders).sum();
    bail!(
        "{} of {} groups differ (orders counted {total_got}, want {total_want}); first: {}",
        diffs.len(),
        expected.len(),
        diffs.iter().take(5).cloned().collect::<Vec<_>>().join("; ")
    )
}

/// Fetches `view` and compares it with `expected` (for use inside `eventually`).
pub async fn check_revenue(
    client: &Client,
    view: &str,
    expected: &BTreeMap<String, Revenue>,
) -> Result<()> {
    compare_revenue(&fetch_revenue(client, view).await?, expected)
}

/// Produces `orders` to `topic` in chunks of `chunk` from a background task, so
/// a test can kill or restart nodes while records keep arriving.
pub fn produce_in_background(
    producer: Producer,
    topic: &str,
    orders: &[Order],
    chunk: usize,
) -> tokio::task::JoinHandle<Result<()>> {
    let (orders, topic) = (orders.to_vec(), topic.to_owned());
    tokio::spawn(async move {
        for part in orders.chunks(chunk) {
            producer
                .produce_batch(&topic, part.iter().map(Order::record))
                .await?;
        }
        Ok(())
    })
}
