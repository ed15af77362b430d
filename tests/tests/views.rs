//! Views over sources, read through tokio-postgres: exact aggregates, point lookups,
//! upsert retractions, views without GROUP BY, and full SELECT over a view.

use std::collections::BTreeMap;

use anyhow::{bail, ensure, Result};
use eddy_tests::fixtures::{
    check_revenue, create_orders_source, expected_revenue, orders, orders_and_revenue, Order,
};
use eddy_tests::{eventually, query_rows, query_rows_sorted, Record, TestCluster, DEADLINE};

#[tokio::test]
async fn group_by_view_converges_to_exact_aggregates() -> Result<()> {
    let cluster = TestCluster::start().await?;
    let (client, topic) = orders_and_revenue(&cluster, 4, 4).await?;
    let batch = orders(1, 1, 2_000, 40);
    cluster
        .producer()?
        .produce_batch(&topic, batch.iter().map(Order::record))
        .await?;

    let expected = expected_revenue(&batch);
    eventually(DEADLINE, async || {
        check_revenue(&client, "revenue", &expected).await
    })
    .await?;

    // Full SELECT over the view: ORDER BY / LIMIT, WHERE, aggregates.
    let mut by_total: Vec<(&String, f64)> = expected.iter().map(|(c, r)| (c, r.total)).collect();
    by_total.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(b.0)));
    let top = query_rows(
        &client,
        "SELECT customer, total FROM revenue ORDER BY total DESC, customer LIMIT 3",
    )
    .await?;
    let top_customers: Vec<&str> = top.iter().map(|r| r[0].as_str()).collect();
    let want: Vec<&str> = by_total.iter().take(3).map(|(c, _)| c.as_str()).collect();
    assert_eq!(top_customers, want);
    assert_eq!(top[0][1].parse::<f64>()?, by_total[0].1);

    let sums = query_rows(&client, "SELECT COUNT(*), SUM(orders) FROM revenue").await?;
    let non_cancelled = batch.iter().filter(|o| o.status != "cancelled").count();
    assert_eq!(
        sums,
        vec![vec![expected.len().to_string(), non_cancelled.to_string()]]
    );

    let threshold = expected.values().map(|r| r.orders).max().unwrap_or(0) - 3;
    let busy = query_rows(
        &client,
        &format!("SELECT customer FROM revenue WHERE orders >= {threshold} ORDER BY customer"),
    )
    .await?;
    let want: Vec<Vec<String>> = expected
        .iter()
        .filter(|(_, r)| r.orders >= threshold)
        .map(|(c, _)| vec![c.clone()])
        .collect();
    assert_eq!(busy, want);

    // Records produced after the first answer keep flowing in.
    let more = orders(2, 10_001, 500, 40);
    cluster
        .producer()?
        .produce_batch(&topic, more.iter().map(Order::record))
        .await?;
    let expected = expected_revenue(batch.iter().chain(&more));
    eventually(DEADLINE, async || {
        check_revenue(&client, "revenue", &expected).await
    })
    .await?;
    Ok(())
}

#[tokio::test]
async fn point_lookup_with_a_prepared_parameter() -> Result<()> {
    let cluster = TestCluster::start().await?;
    let (client, topic) = orders_and_revenue(&cluster, 4, 4).await?;
    let batch = orders(3, 1, 600, 20);
    cluster
        .producer()?
        .produce_batch(&topic, batch.iter().map(Order::record))
        .await?;
    let expected = expected_revenue(&batch);
    eventually(DEADLINE, async || {
        check_revenue(&client, "revenue", &expected).await
    })
    .await?;

    let stmt = client
        .prepare("SELECT * FROM revenue WHERE customer = $1")
        .await?;
    for (customer, want) in expected.iter().take(5) {
        let rows = client.query(&stmt, &[customer]).await?;
        assert_eq!(rows.len(), 1, "one row for {customer}");
        let row = &rows[0];
        assert_eq!(row.get::<_, String>("customer"), *customer);
        assert_eq!(row.get::<_, i64>("orders"), want.orders);
        assert_eq!(row.get::<_, f64>("total"), want.total);
        assert_eq!(row.get::<_, f64>("smallest"), want.smallest);
        assert_eq!(row.get::<_, f64>("largest"), want.largest);
        let avg: f64 = row.get("avg_amount");
        assert!(
            (avg - want.avg_amount).abs() < 1e-9,
            "avg {avg} vs {}",
            want.avg_amount
        );
    }
    let none = client.query(&stmt, &[&"nobody"]).await?;
    assert!(none.is_empty(), "an absent key has no row");

    // An equality on the key is one lookup; any other filter scans.
    let plan = query_rows(
        &client,
        "EXPLAIN SELECT * FROM revenue WHERE customer = 'c1'",
    )
    .await?;
    assert!(
        plan.iter().any(|r| r[0].contains("Key lookup on revenue")),
        "{plan:?}"
    );
    let plan = query_rows(&client, "EXPLAIN SELECT * FROM revenue WHERE orders > 1").await?;
    assert!(
        plan.iter().any(|r| r[0].contains("Scan of revenue")),
        "{plan:?}"
    );

    // A prepared read is planned again once the catalog changes under it.
    client
        .batch_execute("DROP MATERIALIZED VIEW revenue")
        .await?;
    let gone = client
        .query(&stmt, &[&"c1"])
        .await
        .expect_err("the view is gone");
    assert_eq!(gone.code().map(|c| c.code()), Some("42P01"), "{gone:?}");
    client
        .batch_execute(
            "CREATE MATERIALIZED VIEW revenue AS SELECT customer, COUNT(*) AS orders, SUM(amount) AS total, \
             AVG(amount) AS avg_amount, MIN(amount) AS smallest, MAX(amount) AS largest \
             FROM orders WHERE status <> 'cancelled' GROUP BY customer",
        )
        .await?;
    let (customer, want) = expected.iter().next().expect("a customer");
    eventually(DEADLINE, async || {
        let rows = client.query(&stmt, &[customer]).await?;
        ensure!(
            rows.len() == 1 && rows[0].get::<_, i64>("orders") == want.orders,
            "not caught up yet"
        );
        Ok(())
    })
    .await
}

#[tokio::test]
async fn upsert_source_updates_and_deletes_retract_from_aggregates() -> Result<()> {
    let cluster = TestCluster::start().await?;
    let topic = cluster.create_topic("accounts", 2).await?;
    let client = cluster.client().await?;
    client
        .batch_execute(&format!(
            "CREATE SOURCE accounts (id TEXT PRIMARY KEY, region TEXT, score BIGINT) \
             WITH (topic = '{topic}', format = 'json')"
        ))
        .await?;
    client
        .batch_execute(
            "CREATE MATERIALIZED VIEW region_stats AS \
             SELECT region, COUNT(*) AS n, SUM(score) AS total, MIN(score) AS lo, MAX(score) AS hi \
             FROM accounts GROUP BY region",
        )
        .await?;
    let producer = cluster.producer()?;
    let account = |id: &str, region: &str, score: i64| {
        Record::keyed(
            id,
            format!(r#"{{"id":"{id}","region":"{region}","score":{score}}}"#),
        )
    };
    let expect = async |want: &[[&str; 5]]| -> Result<()> {
        let want: Vec<Vec<String>> = want
            .iter()
            .map(|r| r.iter().map(|s| s.to_string()).collect())
            .collect();
        eventually(DEADLINE, async || {
            let got =
                query_rows_sorted(&client, "SELECT region, n, total, lo, hi FROM region_stats")
                    .await?;
            ensure!(got == want, "region_stats is {got:?}, want {want:?}");
            Ok(())
        })
        .await
    };

    producer
        .produce_batch(
            &topic,
            [
                account("a", "eu", 10),
                account("b", "eu", 5),
                account("c", "eu", 7),
                account("d", "us", 3),
            ],
        )
        .await?;
    expect(&[["eu", "3", "22", "5", "10"], ["us", "1", "3", "3", "3"]]).await?;

    // An update replaces the old value: MIN retracts 5 and falls to the next smallest.
    producer
        .produce_batch(&topic, [account("b", "eu", 20)])
        .await?;
    expect(&[["eu", "3", "37", "7", "20"], ["us", "1", "3", "3", "3"]]).await?;

    // A tombstone deletes the key.
    producer
        .produce_batch(&topic, [Record::tombstone("a")])
        .await?;
    expect(&[["eu", "2", "27", "7", "20"], ["us", "1", "3", "3", "3"]]).await?;

    // Moving a key between groups retracts from one and adds to the other.
    producer
        .produce_batch(&topic, [account("c", "us", 7)])
        .await?;
    expect(&[["eu", "1", "20", "20", "20"], ["us", "2", "10", "3", "7"]]).await?;

    // The last key of a group leaves: the group disappears; MAX retracts to 3.
    producer
        .produce_batch(&topic, [Record::tombstone("b"), Record::tombstone("c")])
        .await?;
    expect(&[["us", "1", "3", "3", "3"]]).await?;

    // A tombstone for an absent key changes nothing; a re-insert comes back.
    producer
        .produce_batch(&topic, [Record::tombstone("zz"), account("a", "eu", 1)])
        .await?;
    expect(&[["eu", "1", "1", "1", "1"], ["us", "1", "3", "3", "3"]]).await?;
    Ok(())
}

#[tokio::test]
async fn views_without_group_by_over_upsert_and_append_only_sources() -> Result<()> {
    let cluster = TestCluster::start().await?;
    let customers_topic = cluster.create_topic("customers", 2).await?;
    let orders_topic = cluster.create_topic("orders", 2).await?;
    let client = cluster.client().await?;
    client
        .batch_execute(&format!(
            "CREATE SOURCE customers (id TEXT PRIMARY KEY, name TEXT, region TEXT) \
             WITH (topic = '{customers_topic}', format = 'json'); \
             {}; \
             CREATE MATERIALIZED VIEW eu_customers AS \
               SELECT id, name FROM customers WHERE region = 'eu'; \
             CREATE MATERIALIZED VIEW big_orders AS \
               SELECT order_id, customer FROM orders WHERE amount > 100",
            create_orders_source("orders", &orders_topic)
        ))
        .await?;

    let producer = cluster.producer()?;
    let customer = |id: &str, name: &str, region: &str| {
        Record::keyed(
            id,
            format!(r#"{{"id":"{id}","name":"{name}","region":"{region}"}}"#),
        )
    };
    producer
        .produce_batch(
            &customers_topic,
            [
                customer("1", "ada", "eu"),
                customer("2", "bob", "us"),
                customer("3", "cy", "eu"),
                customer("4", "di", "eu"),
                customer("1", "ada lovelace", "eu"), // update in place
                customer("3", "cy", "us"),           // leaves the filter
                Record::tombstone("4"),              // deleted
            ],
        )
        .await?;
    let batch = orders(4, 1, 300, 10);
    producer
        .produce_batch(&orders_topic, batch.iter().map(Order::record))
        .await?;

    let want_customers = vec![vec!["1".to_owned(), "ada lovelace".to_owned()]];
    let mut want_orders: Vec<Vec<String>> = batch
        .iter()
        .filter(|o| o.amount > 100.0)
        .map(|o| vec![o.order_id.to_string(), o.customer.clone()])
        .collect();
    want_orders.sort();
    eventually(DEADLINE, async || {
        let got = query_rows_sorted(&client, "SELECT id, name FROM eu_customers").await?;
        ensure!(got == want_customers, "eu_customers is {got:?}");
        let got = query_rows_sorted(&client, "SELECT order_id, customer FROM big_orders").await?;
        ensure!(
            got == want_orders,
            "big_orders has {} rows, want {}",
            got.len(),
            want_orders.len()
        );
        Ok(())
    })
    .await?;

    // Duplicates are rows too: the same order twice is two rows.
    let dup = batch
        .iter()
        .find(|o| o.amount > 100.0)
        .expect("some big order");
    producer
        .produce_batch(&orders_topic, [dup.record()])
        .await?;
    let sql = format!(
        "SELECT COUNT(*) FROM big_orders WHERE order_id = {}",
        dup.order_id
    );
    eventually(DEADLINE, async || {
        let got = query_rows(&client, &sql).await?;
        ensure!(got == vec![vec!["2".to_owned()]], "{sql} gave {got:?}");
        Ok(())
    })
    .await?;
    Ok(())
}

#[tokio::test]
async fn plain_statements_a_client_sends() -> Result<()> {
    let cluster = TestCluster::start().await?;
    let client = cluster.client().await?;

    assert_eq!(
        query_rows(&client, "SELECT 1").await?,
        vec![vec!["1".to_owned()]]
    );
    let version = query_rows(&client, "SELECT version()").await?;
    match version.as_slice() {
        [row] if row.len() == 1 && !row[0].is_empty() => {}
        other => bail!("SELECT version() gave {other:?}"),
    }
    let one: i32 = client.query_one("SELECT 1", &[]).await?.get(0);
    assert_eq!(one, 1);

    // Transaction control is accepted (as no-ops) so drivers and BI tools work.
    client.batch_execute("BEGIN").await?;
    assert_eq!(
        query_rows(&client, "SELECT 1").await?,
        vec![vec!["1".to_owned()]]
    );
    client.batch_execute("COMMIT").await?;
    client.batch_execute("BEGIN; ROLLBACK").await?;
    let mut client = client;
    let tx = client.transaction().await?;
    tx.batch_execute("SELECT 1").await?;
    tx.commit().await?;

    // An empty catalog lists nothing.
    let shown: BTreeMap<String, usize> = [
        (
            "SHOW SOURCES",
            query_rows(&client, "SHOW SOURCES").await?.len(),
        ),
        (
            "SHOW MATERIALIZED VIEWS",
            query_rows(&client, "SHOW MATERIALIZED VIEWS").await?.len(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    assert!(
        shown.values().all(|n| *n == 0),
        "fresh cluster lists {shown:?}"
    );
    Ok(())
}
