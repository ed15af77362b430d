//! Several real `eddy` processes against one real Tansu: partitions spread
//! over the nodes, move when a node is killed, added or stopped, and every
//! node answers every read identically and exactly (DESIGN §1, §4.1).

use anyhow::{ensure, Context, Result};
use eddy_tests::fixtures::{
    check_revenue, create_orders_source, create_revenue_view, expected_revenue, orders,
    produce_in_background, Order,
};
use eddy_tests::{
    assert_sqlstate, eventually, query_rows, query_rows_sorted, TestCluster, DEADLINE,
};
use std::collections::{BTreeMap, BTreeSet};

/// `(partition → node)` of the active replicas of `view`, as `node_index`'s
/// `eddy_catalog.replicas` reports them; fails while any partition has no
/// active owner.
async fn owners(
    cluster: &TestCluster,
    node_index: usize,
    view: &str,
) -> Result<BTreeMap<u32, String>> {
    let client = cluster.nodes[node_index].client().await?;
    let rows = query_rows(
        &client,
        &format!(
            "SELECT partition, node, role FROM eddy_catalog.replicas WHERE view = '{view}' ORDER BY partition"
        ),
    )
    .await?;
    let mut out = BTreeMap::new();
    for r in &rows {
        ensure!(
            r[2] == "active",
            "partition {} is {} on {}",
            r[0],
            r[2],
            r[1]
        );
        ensure!(
            out.insert(r[0].parse()?, r[1].clone()).is_none(),
            "partition {} has two actives: {rows:?}",
            r[0]
        );
    }
    Ok(out)
}

/// Waits until every partition of `view` is active on one of `expected`
/// nodes, each of which owns at least one, as every node in `asked` sees it.
async fn wait_spread(
    cluster: &TestCluster,
    asked: &[usize],
    view: &str,
    partitions: u32,
    expected: &[&str],
) -> Result<BTreeMap<u32, String>> {
    eventually(DEADLINE, async || {
        let mut seen = None;
        for &i in asked {
            let owners = owners(cluster, i, view).await?;
            ensure!(
                owners.len() == partitions as usize,
                "owners so far: {owners:?}"
            );
            let nodes: BTreeSet<&str> = owners.values().map(String::as_str).collect();
            let want: BTreeSet<&str> = expected.iter().copied().collect();
            ensure!(nodes == want, "partitions on {nodes:?}, want {want:?}");
            seen = Some(owners);
        }
        seen.context("no node asked")
    })
    .await
}

/// Waits until the revenue view on each node in `asked` equals the SQL's
/// answer over `all`.
async fn converges_everywhere(cluster: &TestCluster, asked: &[usize], all: &[Order]) -> Result<()> {
    let expected = expected_revenue(all);
    for &i in asked {
        eventually(DEADLINE, async || {
            let client = cluster.nodes[i].client().await?;
            check_revenue(&client, "revenue", &expected).await
        })
        .await
        .with_context(|| format!("node n{}", i + 1))?;
    }
    Ok(())
}

/// Three nodes; source created on n1, view on n2.
async fn three_nodes(view_partitions: u32) -> Result<(TestCluster, String)> {
    let cluster = TestCluster::new().nodes(3).start().await?;
    let topic = cluster.create_topic("orders", 6).await?;
    let c1 = cluster.nodes[0].client().await?;
    c1.batch_execute(&create_orders_source("orders", &topic))
        .await?;
    let c2 = cluster.nodes[1].client().await?;
    c2.batch_execute(&create_revenue_view("revenue", "orders", view_partitions))
        .await?;
    Ok((cluster, topic))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_spread_and_every_node_answers_every_read_identically() -> Result<()> {
    let (cluster, topic) = three_nodes(6).await?;
    let all = orders(71, 1, 6_000, 30);
    cluster
        .producer()?
        .produce_batch(&topic, all.iter().map(Order::record))
        .await?;
    wait_spread(&cluster, &[0, 1, 2], "revenue", 6, &["n1", "n2", "n3"]).await?;
    converges_everywhere(&cluster, &[0, 1, 2], &all).await?;

    // Membership: every node lists all three, with their addresses.
    for node in &cluster.nodes {
        let rows = query_rows_sorted(
            &node.client().await?,
            "SELECT node_id, pg_address FROM eddy_catalog.nodes",
        )
        .await?;
        let want: Vec<Vec<String>> = cluster
            .nodes
            .iter()
            .map(|n| vec![n.node_id().to_owned(), n.pg_addr()])
            .collect();
        ensure!(rows == want, "{} lists {rows:?}", node.node_id());
    }

    // The internal service answers only this cluster's nodes.
    let internal = query_rows(
        &cluster.nodes[0].client().await?,
        "SELECT internal_address FROM eddy_catalog.nodes WHERE node_id = 'n2'",
    )
    .await?;
    strangers_are_refused(&internal[0][0]).await?;

    // Point reads (prepared, forwarded to the key's owner) and scatter-gather
    // reads with ORDER BY, LIMIT and aggregates: the same on every node.
    // The last ones run on DataFusion, their filters, columns and limits
    // sent to the replicas over the internal service.
    let queries = [
        "SELECT customer, orders, total FROM revenue ORDER BY total DESC, customer LIMIT 5",
        "SELECT COUNT(*), SUM(orders), MIN(smallest), MAX(largest) FROM revenue",
        // Each replica aggregates its own rows; the reader merges the states.
        "SELECT orders % 3 AS k, COUNT(*), SUM(orders), AVG(orders), MIN(customer), MAX(total) \
         FROM revenue WHERE orders > 0 GROUP BY orders % 3 HAVING COUNT(*) > 1 ORDER BY k",
        "SELECT customer FROM revenue WHERE orders > 150 ORDER BY customer",
        "SELECT a.customer, a.total, b.orders FROM revenue a JOIN revenue b USING (customer) \
         WHERE a.customer IN ('c1', 'c2', 'c29') AND b.orders >= 0 ORDER BY 1",
        "SELECT DISTINCT orders > 150 FROM revenue WHERE customer = 'c7' OR customer = 'c8' ORDER BY 1",
        "WITH t AS (SELECT customer FROM revenue WHERE customer = 'c3') SELECT COUNT(*) FROM t",
        "SELECT COUNT(*) FROM (SELECT customer FROM revenue LIMIT 7) AS s",
        "SELECT customer FROM revenue WHERE customer >= 'c2' AND total IS NOT NULL \
         EXCEPT SELECT 'c25' ORDER BY 1",
    ];
    let mut answers: Vec<Vec<Vec<Vec<String>>>> = Vec::new();
    for node in &cluster.nodes {
        let client = node.client().await?;
        let mut per_node = Vec::new();
        for q in queries {
            per_node.push(query_rows(&client, q).await?);
        }
        let lookup = client
            .prepare("SELECT orders, total FROM revenue WHERE customer = $1")
            .await?;
        let mut points = Vec::new();
        for c in 0..30 {
            let customer = format!("c{c}");
            for row in client.query(&lookup, &[&customer]).await? {
                points.push(vec![
                    customer.clone(),
                    row.get::<_, i64>(0).to_string(),
                    row.get::<_, f64>(1).to_string(),
                ]);
            }
        }
        per_node.push(points);
        answers.push(per_node);
    }
    ensure!(
        !answers[0][queries.len()].is_empty(),
        "point reads found nothing"
    );
    for (i, a) in answers.iter().enumerate().skip(1) {
        ensure!(
            a == &answers[0],
            "node n{} answers differently from n1",
            i + 1
        );
    }

    // What DataFusion answers from pushed-down scans is what the plain
    // reads answer.
    let same = [
        (
            "SELECT a.customer, a.total, b.orders FROM revenue a JOIN revenue b USING (customer) \
             WHERE a.customer IN ('c1', 'c2', 'c29') AND b.orders >= 0 ORDER BY 1",
            "SELECT customer, total, orders FROM revenue WHERE customer IN ('c1', 'c2', 'c29') \
             ORDER BY 1",
        ),
        (
            "WITH t AS (SELECT customer FROM revenue WHERE customer = 'c3') SELECT COUNT(*) FROM t",
            "SELECT COUNT(*) FROM revenue WHERE customer = 'c3'",
        ),
        (
            "SELECT COUNT(*) FROM (SELECT customer FROM revenue LIMIT 7) AS s",
            "SELECT LEAST(COUNT(*), 7) FROM revenue",
        ),
        // DataFusion aggregates every row; Eddy's planner merges the
        // replicas' partial states.
        (
            "WITH r AS (SELECT * FROM revenue) SELECT orders % 3 AS k, COUNT(*), SUM(orders), \
             MIN(customer), MAX(total) FROM r WHERE orders > 0 GROUP BY orders % 3 ORDER BY k",
            "SELECT orders % 3 AS k, COUNT(*), SUM(orders), MIN(customer), MAX(total) \
             FROM revenue WHERE orders > 0 GROUP BY orders % 3 ORDER BY k",
        ),
    ];
    let client = cluster.nodes[2].client().await?;
    for (theirs, ours) in same {
        let (a, b) = (
            query_rows(&client, theirs).await?,
            query_rows(&client, ours).await?,
        );
        ensure!(a == b && !a.is_empty(), "{theirs}: {a:?}, want {b:?}");
    }

    // EXPLAIN still sees a key lookup; the lookup runs where the key lives.
    let explain = query_rows(
        &cluster.nodes[2].client().await?,
        "EXPLAIN SELECT * FROM revenue WHERE customer = 'c1'",
    )
    .await?;
    ensure!(format!("{explain:?}").contains("Key lookup"), "{explain:?}");
    Ok(())
}

/// Calls to the internal service at `addr` without the cluster's TLS
/// credentials are refused, whatever they carry (tests/security.rs tries TLS
/// clients without them).
async fn strangers_are_refused(addr: &str) -> Result<()> {
    use arrow_flight::flight_service_client::FlightServiceClient;
    let Ok(channel) = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))?
        .connect()
        .await
    else {
        return Ok(());
    };
    let mut client = FlightServiceClient::new(channel);
    let ticket = arrow_flight::Ticket::new(
        r#"{"Scan":{"view":1,"max_lag_ms":0,"partitions":[0],"projection":null,"filters":[],"limit":null}}"#,
    );
    for secret in [None, Some("Bearer not-the-secret"), Some("not-even-bearer")] {
        let mut call = tonic::Request::new(ticket.clone());
        if let Some(s) = secret {
            call.metadata_mut().insert("authorization", s.parse()?);
        }
        if client.do_get(call).await.is_ok() {
            anyhow::bail!("the internal service answered a stranger ({secret:?})");
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ddl_from_any_node_applies_everywhere_and_races_have_one_winner() -> Result<()> {
    let (cluster, topic) = three_nodes(4).await?;
    let (c1, c3) = (
        cluster.nodes[0].client().await?,
        cluster.nodes[2].client().await?,
    );
    // Two nodes race to create the same name: one wins, one gets 42710.
    let sql = create_orders_source("twin", &topic);
    let (a, b) = tokio::join!(c1.batch_execute(&sql), c3.batch_execute(&sql));
    let errors: Vec<_> = [a, b].into_iter().filter_map(Result::err).collect();
    ensure!(
        errors.len() == 1,
        "want exactly one failure, got {errors:?}"
    );
    let code = errors[0].as_db_error().map(|e| e.code().code());
    ensure!(code == Some("42710"), "the loser got {:?}", errors[0]);

    // A view created on n3 is visible on n1 and n2; a drop on n1 everywhere.
    c3.batch_execute(
        "CREATE MATERIALIZED VIEW by_status AS SELECT status, COUNT(*) AS n FROM twin GROUP BY status",
    )
    .await?;
    for node in &cluster.nodes {
        let views = query_rows_sorted(&node.client().await?, "SHOW MATERIALIZED VIEWS").await?;
        let names: Vec<&str> = views.iter().map(|r| r[0].as_str()).collect();
        ensure!(
            names == ["by_status", "revenue"],
            "{}: {names:?}",
            node.node_id()
        );
    }
    c1.batch_execute("DROP MATERIALIZED VIEW by_status").await?;
    for node in &cluster.nodes {
        eventually(DEADLINE, async || {
            let client = node.client().await?;
            assert_sqlstate(&client, "SELECT * FROM by_status", "42P01")
                .await
                .map(|_| ())
        })
        .await?;
    }

    // A node that joins late catches up on the whole catalog before ready.
    let late = cluster.start_node("n4").await?;
    let sources = query_rows_sorted(&late.client().await?, "SHOW SOURCES").await?;
    let names: Vec<&str> = sources.iter().map(|r| r[0].as_str()).collect();
    ensure!(names == ["orders", "twin"], "late node sees {names:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_of_a_node_during_ingestion_moves_its_partitions_and_loses_nothing() -> Result<()> {
    let (mut cluster, topic) = three_nodes(6).await?;
    let before = wait_spread(&cluster, &[0], "revenue", 6, &["n1", "n2", "n3"]).await?;
    let all = orders(72, 1, 24_000, 40);
    let feed = produce_in_background(cluster.producer()?, &topic, &all, 400);

    // Kill n3 once a part of the stream is in.
    eventually(DEADLINE, async || {
        let client = cluster.nodes[0].client().await?;
        let n: i64 = query_rows(&client, "SELECT SUM(orders) FROM revenue")
            .await?
            .first()
            .and_then(|r| r[0].parse().ok())
            .unwrap_or(0);
        ensure!(n >= 4_000, "{n} counted so far");
        Ok(())
    })
    .await?;
    cluster.nodes[2].kill9();
    feed.await??;

    let after = wait_spread(&cluster, &[0, 1], "revenue", 6, &["n1", "n2"]).await?;
    let moved: Vec<u32> = before
        .iter()
        .filter(|(_, n)| n.as_str() == "n3")
        .map(|(p, _)| *p)
        .collect();
    ensure!(!moved.is_empty(), "n3 owned nothing before: {before:?}");
    for p in &moved {
        ensure!(after[p] != "n3", "partition {p} still on n3");
    }
    converges_everywhere(&cluster, &[0, 1], &all).await?;

    // The dead node drops out of membership.
    eventually(DEADLINE, async || {
        let rows = query_rows_sorted(
            &cluster.nodes[1].client().await?,
            "SELECT node_id FROM eddy_catalog.nodes",
        )
        .await?;
        ensure!(rows == [["n1"], ["n2"]], "{rows:?}");
        Ok(())
    })
    .await?;

    // It comes back on its old disk, takes partitions again, and agrees.
    cluster.nodes[2].start().await?;
    wait_spread(&cluster, &[2], "revenue", 6, &["n1", "n2", "n3"]).await?;
    converges_everywhere(&cluster, &[2], &all).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_added_node_takes_partitions_and_a_stopped_one_hands_them_over() -> Result<()> {
    let mut cluster = TestCluster::new().nodes(2).start().await?;
    let topic = cluster.create_topic("orders", 4).await?;
    let client = cluster.nodes[0].client().await?;
    client
        .batch_execute(&create_orders_source("orders", &topic))
        .await?;
    client
        .batch_execute(&create_revenue_view("revenue", "orders", 6))
        .await?;
    let mut all = orders(73, 1, 5_000, 25);
    let producer = cluster.producer()?;
    producer
        .produce_batch(&topic, all.iter().map(Order::record))
        .await?;
    wait_spread(&cluster, &[0, 1], "revenue", 6, &["n1", "n2"]).await?;
    converges_everywhere(&cluster, &[0, 1], &all).await?;

    // Add n3 while records keep coming: it takes some partitions.
    let more = orders(74, 100_000, 8_000, 25);
    let feed = produce_in_background(cluster.producer()?, &topic, &more, 400);
    let n3 = cluster.start_node("n3").await?;
    cluster.nodes.push(n3);
    feed.await??;
    all.extend(more);
    wait_spread(&cluster, &[0, 2], "revenue", 6, &["n1", "n2", "n3"]).await?;
    converges_everywhere(&cluster, &[0, 1, 2], &all).await?;

    // Stop n1 gracefully: its partitions go to n2 and n3 at once.
    cluster.nodes[0].stop().await?;
    let last = orders(75, 200_000, 3_000, 25);
    producer
        .produce_batch(&topic, last.iter().map(Order::record))
        .await?;
    all.extend(last);
    wait_spread(&cluster, &[1, 2], "revenue", 6, &["n2", "n3"]).await?;
    converges_everywhere(&cluster, &[1, 2], &all).await
}
