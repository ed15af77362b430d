//! Bad input never stops a view (DESIGN §4.2): bad records are skipped and listed,
//! bad SQL gets a Postgres error with the right SQLSTATE.

use anyhow::{ensure, Result};
use eddy_tests::fixtures::{check_revenue, expected_revenue, orders, orders_and_revenue, Order};
use eddy_tests::{
    assert_sqlstate, eventually, query_maps, sql_error, Record, TestCluster, DEADLINE,
};

#[tokio::test]
async fn bad_records_are_skipped_and_listed_in_source_errors() -> Result<()> {
    let cluster = TestCluster::start().await?;
    // One partition: offsets are known from the delivery reports.
    let (client, topic) = orders_and_revenue(&cluster, 1, 2).await?;

    let good = orders(7, 1, 10, 3);
    let bad = [
        ("malformed JSON", r#"{"order_id": 1, "customer": "#.to_owned()),
        (
            "wrong type",
            r#"{"order_id": "abc", "customer": "c1", "amount": 1.0, "status": "paid"}"#.to_owned(),
        ),
        (
            "out-of-range BIGINT",
            r#"{"order_id": 9223372036854775808, "customer": "c1", "amount": 1.0, "status": "paid"}"#
                .to_owned(),
        ),
        (
            "bad timestamp",
            r#"{"order_id": 5, "customer": "c1", "amount": 1.0, "status": "paid", "ts": "yesterday"}"#
                .to_owned(),
        ),
    ];
    let producer = cluster.producer()?;
    let mut records: Vec<Record> = good[..5].iter().map(Order::record).collect();
    records.extend(bad.iter().map(|(_, json)| Record::value(json.clone())));
    records.extend(good[5..].iter().map(Order::record));
    let delivered = producer.produce_batch(&topic, records).await?;
    let bad_offsets: Vec<i64> = delivered[5..5 + bad.len()]
        .iter()
        .map(|d| d.offset)
        .collect();

    let expected = expected_revenue(&good);
    eventually(DEADLINE, async || {
        check_revenue(&client, "revenue", &expected).await
    })
    .await?;

    eventually(DEADLINE, async || {
        let rows = query_maps(&client, "SELECT * FROM eddy_catalog.source_errors").await?;
        let mut offsets = Vec::new();
        for row in &rows {
            let col = |c: &str| row.get(c).cloned().flatten().unwrap_or_default();
            ensure!(col("source") == "orders", "source column in {row:?}");
            ensure!(col("partition") == "0", "partition column in {row:?}");
            ensure!(!col("reason").is_empty(), "a reason in {row:?}");
            offsets.push(col("offset").parse::<i64>()?);
        }
        offsets.sort();
        ensure!(
            offsets == bad_offsets,
            "source_errors offsets {offsets:?}, want {bad_offsets:?}"
        );
        Ok(())
    })
    .await?;

    // The view keeps going after bad records.
    let more = orders(8, 100, 10, 3);
    producer
        .produce_batch(&topic, more.iter().map(Order::record))
        .await?;
    let expected = expected_revenue(good.iter().chain(&more));
    eventually(DEADLINE, async || {
        check_revenue(&client, "revenue", &expected).await
    })
    .await?;
    Ok(())
}

#[tokio::test]
async fn bad_sql_gets_the_right_sqlstate() -> Result<()> {
    let cluster = TestCluster::start().await?;
    let (client, _topic) = orders_and_revenue(&cluster, 1, 2).await?;

    // syntax_error, with the position of the offending token.
    let err = assert_sqlstate(&client, "SELEC 1", "42601").await?;
    assert!(
        err.position().is_some(),
        "42601 carries a position: {err:?}"
    );
    let err = assert_sqlstate(&client, "SELECT customer FROM revenue WHERE", "42601").await?;
    assert!(
        err.position().is_some(),
        "42601 carries a position: {err:?}"
    );

    // undefined_table
    assert_sqlstate(&client, "SELECT * FROM no_such_view", "42P01").await?;
    assert_sqlstate(
        &client,
        "CREATE MATERIALIZED VIEW v1 AS SELECT customer FROM no_such_source",
        "42P01",
    )
    .await?;
    // undefined_column
    assert_sqlstate(&client, "SELECT no_such_column FROM revenue", "42703").await?;
    assert_sqlstate(
        &client,
        "CREATE MATERIALIZED VIEW v2 AS SELECT nope FROM orders",
        "42703",
    )
    .await?;
    // datatype_mismatch: WHERE needs a boolean.
    assert_sqlstate(
        &client,
        "CREATE MATERIALIZED VIEW v3 AS SELECT customer FROM orders WHERE customer",
        "42804",
    )
    .await?;
    // feature_not_supported: window functions.
    assert_sqlstate(
        &client,
        "CREATE MATERIALIZED VIEW v4 AS SELECT customer, ROW_NUMBER() OVER () FROM orders",
        "0A000",
    )
    .await?;

    // A source is a stream, not a table: the hint says what to do instead.
    let err = sql_error(&client, "SELECT * FROM orders").await?;
    let hint = err.hint().unwrap_or_default();
    assert!(
        hint.to_uppercase().contains("CREATE MATERIALIZED VIEW"),
        "hint for SELECT from a source: {err:?}"
    );

    // dependent_objects_still_exist
    assert_sqlstate(&client, "DROP SOURCE orders", "2BP01").await?;

    // None of the failures above left anything behind, and the session still works.
    let views = query_maps(&client, "SHOW MATERIALIZED VIEWS").await?;
    assert_eq!(views.len(), 1, "only revenue: {views:?}");
    Ok(())
}
