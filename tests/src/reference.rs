//! One dataset in two engines: Eddy's views over Kafka topics and, in a
//! real PostgreSQL 15, tables of the same names holding what those views
//! must hold (PostgreSQL computes them from the same records with the
//! same SELECT). Conformance files and client checks run against both, so
//! every expectation is what PostgreSQL itself answers.
//!
//! - `revenue`: per customer, orders that were not cancelled (DESIGN §2);
//! - `order_status`: orders per status;
//! - `big_orders`: orders of 200.00 or more (a view without a visible key);
//! - `customer_info`: the latest row per customer of an upsert source,
//!   some regions NULL.

use anyhow::{ensure, Result};
use tokio_postgres::{Client, NoTls};

use crate::fixtures::{self, Order};
use crate::sql::query_rows;
use crate::{eventually, Postgres, Record, TestCluster, DEADLINE};

pub const CUSTOMERS: u64 = 8;
pub const ORDERS: usize = 300;

/// The views, each with the SELECT that defines it over the `orders` /
/// `customers` sources (the same text creates the PostgreSQL table).
pub const VIEWS: &[(&str, &str)] = &[
    (
        "revenue",
        "SELECT customer, COUNT(*) AS orders, SUM(amount) AS total, AVG(amount) AS avg_amount, \
         MIN(amount) AS smallest, MAX(amount) AS largest \
         FROM orders WHERE status <> 'cancelled' GROUP BY customer",
    ),
    (
        "order_status",
        "SELECT status, COUNT(*) AS n, SUM(amount) AS total FROM orders GROUP BY status",
    ),
    (
        "big_orders",
        "SELECT order_id, customer, amount, ts FROM orders WHERE amount >= 200",
    ),
    (
        "customer_info",
        "SELECT customer, region, tier FROM customers",
    ),
];

/// The customers source's rows: (customer, region, tier); the last one
/// per customer wins.
pub fn customers() -> Vec<(String, Option<&'static str>, i32)> {
    let regions = [Some("north"), Some("south"), None, Some("east")];
    let mut rows: Vec<_> = (0..CUSTOMERS)
        .map(|i| {
            (
                format!("c{i}"),
                regions[i as usize % regions.len()],
                i32::try_from(i % 3).unwrap_or(0) + 1,
            )
        })
        .collect();
    // An update: c1 moves region and tier.
    rows.push(("c1".into(), Some("west"), 3));
    rows
}

pub struct Reference {
    pub cluster: TestCluster,
    pub pg: Postgres,
    pub eddy: Client,
    pub postgres: Client,
    pub orders: Vec<Order>,
}

impl Reference {
    /// A one-node cluster and a PostgreSQL, both holding the dataset.
    pub async fn start() -> Result<Reference> {
        let cluster = TestCluster::start().await?;
        let pg = Postgres::start()?;
        let (postgres, connection) = tokio_postgres::connect(&pg.conn_str(), NoTls).await?;
        tokio::spawn(connection);
        let eddy = cluster.client().await?;
        let orders = fixtures::orders(11, 1, ORDERS, CUSTOMERS);

        // Eddy: sources over topics, views over sources, records produced.
        let orders_topic = cluster.create_topic("orders", 3).await?;
        let customers_topic = cluster.create_topic("customers", 2).await?;
        eddy.batch_execute(&fixtures::create_orders_source("orders", &orders_topic))
            .await?;
        eddy.batch_execute(&format!(
            "CREATE SOURCE customers (customer TEXT PRIMARY KEY, region TEXT, tier INT) \
             WITH (topic = '{customers_topic}', format = 'json', start = 'earliest')"
        ))
        .await?;
        for (name, select) in VIEWS {
            eddy.batch_execute(&format!(
                "CREATE MATERIALIZED VIEW {name} WITH (partitions = 3) AS {select}"
            ))
            .await?;
        }
        let producer = cluster.producer()?;
        producer
            .produce_batch(&orders_topic, orders.iter().map(|o| o.record()))
            .await?;
        producer
            .produce_batch(
                &customers_topic,
                customers().into_iter().map(|(c, region, tier)| {
                    Record::keyed(
                        c.clone(),
                        serde_json::json!({"customer": c, "region": region, "tier": tier})
                            .to_string(),
                    )
                }),
            )
            .await?;

        // PostgreSQL: the same records in tables, the views as tables.
        postgres
            .batch_execute(&format!(
                "CREATE TABLE orders ({}); \
                 CREATE TABLE customers (customer TEXT PRIMARY KEY, region TEXT, tier INT);",
                fixtures::ORDERS_COLUMNS
            ))
            .await?;
        for o in &orders {
            postgres
                .execute(
                    "INSERT INTO orders VALUES ($1, $2, $3, $4, $5::text::timestamp)",
                    &[&o.order_id, &o.customer, &o.amount, &o.status, &o.ts],
                )
                .await?;
        }
        for (c, region, tier) in customers() {
            postgres
                .execute(
                    "INSERT INTO customers VALUES ($1, $2, $3) ON CONFLICT (customer) \
                     DO UPDATE SET region = EXCLUDED.region, tier = EXCLUDED.tier",
                    &[&c, &region, &tier],
                )
                .await?;
        }
        for (name, select) in VIEWS {
            postgres
                .batch_execute(&format!("CREATE TABLE {name}_v AS {select}"))
                .await?;
        }
        // The sources' names belong to the views' tables only in Eddy's
        // namespace; in PostgreSQL the base tables step aside.
        postgres
            .batch_execute(
                "ALTER TABLE orders RENAME TO orders_records; \
                 ALTER TABLE customers RENAME TO customer_records;",
            )
            .await?;
        for (name, _) in VIEWS {
            postgres
                .batch_execute(&format!("ALTER TABLE {name}_v RENAME TO {name}"))
                .await?;
        }
        postgres
            .batch_execute(
                "ALTER TABLE revenue ADD PRIMARY KEY (customer); \
                 ALTER TABLE order_status ADD PRIMARY KEY (status); \
                 ALTER TABLE customer_info ADD PRIMARY KEY (customer);",
            )
            .await?;

        let reference = Reference {
            cluster,
            pg,
            eddy,
            postgres,
            orders,
        };
        reference.converged().await?;
        Ok(reference)
    }

    /// Waits until every Eddy view holds what its PostgreSQL table holds.
    async fn converged(&self) -> Result<()> {
        for (name, _) in VIEWS {
            let sql = format!("SELECT * FROM {name} ORDER BY 1, 2");
            let want = query_rows(&self.postgres, &sql).await?;
            eventually(DEADLINE, async || {
                let got = query_rows(&self.eddy, &sql).await?;
                ensure!(got == want, "{name}: Eddy has {got:?}, PostgreSQL {want:?}");
                Ok(())
            })
            .await?;
        }
        Ok(())
    }
}
