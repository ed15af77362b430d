//! Nothing a client or a record can send takes a node down, stalls a view or
//! changes an answer (DESIGN §4.2): deep and long SQL, huge and malformed
//! protocol messages, out-of-range parameters, records that cannot be carried
//! or do not fit their columns, internal topics as sources. After each, the
//! node is alive, answers a new connection, and views are exact.
//!
//! Where a test states what PostgreSQL answers, it asks a real PostgreSQL 15.

use anyhow::{bail, ensure, Context, Result};
use eddy_tests::raw::{sqlstate, Raw};
use eddy_tests::{
    assert_sqlstate, eventually, query_maps, query_rows, Node, Postgres, Record, TestCluster,
    DEADLINE,
};
use tokio::io::AsyncWriteExt;
use tokio_postgres::{Client, NoTls};

/// The node still serves: a new connection answers a query.
async fn alive(node: &Node) -> Result<()> {
    let client = node
        .client()
        .await
        .context("a new connection after the abuse")?;
    let rows = query_rows(&client, "SELECT 1 + 1").await?;
    ensure!(
        rows == vec![vec!["2".to_owned()]],
        "SELECT 1 + 1 gave {rows:?}"
    );
    Ok(())
}

fn chain(op: &str, terms: usize) -> String {
    vec!["1"; terms].join(op)
}

#[tokio::test]
async fn deep_and_long_sql_is_refused_with_54001_and_the_node_lives() -> Result<()> {
    let cluster = TestCluster::start().await?;
    let node = cluster.node();
    let client = cluster.client().await?;
    let topic = cluster.create_topic("orders", 2).await?;
    client
        .batch_execute(&eddy_tests::fixtures::create_orders_source(
            "orders", &topic,
        ))
        .await?;

    // Each of these aborted the whole node before (stack overflow).
    for sql in [
        format!("SELECT {}", chain(" + ", 2_000)),
        format!("SELECT {}", chain(" + ", 10_000)),
        format!("SELECT * FROM orders WHERE {}", chain(" = 1 OR 1", 10_000)),
        format!("SELECT {}", chain(" || ", 10_000)),
        format!("SELECT {}", chain(" + ", 100_000)),
        format!(
            "CREATE MATERIALIZED VIEW deep AS SELECT order_id FROM orders WHERE {}",
            (0..10_000)
                .map(|i| format!("order_id = {i}"))
                .collect::<Vec<_>>()
                .join(" OR ")
        ),
    ] {
        let err = assert_sqlstate(&client, &sql, "54001").await?;
        ensure!(err.hint().is_some(), "54001 says what to change");
        alive(node).await?;
    }

    // A view as deep as the limits allow is written to the catalog log, read
    // back by a restarted node and maintained exactly.
    let ors = (0..400)
        .map(|i| format!("order_id = {i}"))
        .collect::<Vec<_>>()
        .join(" OR ");
    client
        .batch_execute(&format!(
            "CREATE MATERIALIZED VIEW picked AS SELECT order_id, customer FROM orders WHERE {ors}"
        ))
        .await?;
    let producer = cluster.producer()?;
    let orders = eddy_tests::fixtures::orders(3, 0, 1_000, 5);
    producer
        .produce_batch(&topic, orders.iter().map(|o| o.record()))
        .await?;
    let want = orders.iter().filter(|o| o.order_id < 400).count();
    let count = async |client: &Client| -> Result<usize> {
        let rows = query_rows(client, "SELECT COUNT(*) FROM picked").await?;
        Ok(rows[0][0].parse()?)
    };
    eventually(DEADLINE, async || {
        let n = count(&client).await?;
        ensure!(n == want, "picked has {n} rows, want {want}");
        Ok(())
    })
    .await?;
    drop(client);
    let mut cluster = cluster;
    cluster.node_mut().restart().await?;
    let client = cluster.client().await?;
    let shown = query_rows(&client, "SHOW MATERIALIZED VIEWS").await?;
    ensure!(
        shown.iter().any(|r| r[0] == "picked"),
        "the deep view survives a restart: {shown:?}"
    );
    eventually(DEADLINE, async || {
        let n = count(&client).await?;
        ensure!(n == want, "after restart picked has {n} rows, want {want}");
        Ok(())
    })
    .await?;
    Ok(())
}

#[tokio::test]
async fn parameters_are_checked_before_anything_is_sized_by_them() -> Result<()> {
    let cluster = TestCluster::start().await?;
    let client = cluster.client().await?;
    // 18 bytes that made the binder allocate 16 GiB.
    for sql in [
        "SELECT $2147483647",
        "SELECT $100000000",
        "SELECT $0",
        "SELECT $99999999999999999999",
    ] {
        let err = client.prepare(sql).await.err().context("must fail")?;
        let db = err.as_db_error().context("a server error")?;
        ensure!(
            db.code().code() == "42P02",
            "{sql}: {} {}",
            db.code().code(),
            db.message()
        );
        assert_sqlstate(&client, sql, "42P02").await?;
    }
    // Panicked the connection's task before: the second use of a parameter
    // whose type the first one fixed.
    let stmt = client
        .prepare_typed(
            "SELECT ($1 + $1)::text",
            &[tokio_postgres::types::Type::INT8],
        )
        .await?;
    let rows = client.query(&stmt, &[&20i64]).await?;
    let sum: String = rows[0].get(0);
    ensure!(sum == "40", "$1 + $1 with 20 gave {sum}");
    let inferred = client.prepare("SELECT $1 + $1").await?;
    ensure!(
        inferred.params() == [tokio_postgres::types::Type::NUMERIC],
        "inferred {:?}",
        inferred.params()
    );
    alive(cluster.node()).await
}

#[tokio::test]
async fn the_postgres_port_has_limits_and_answers_every_message() -> Result<()> {
    let cluster = TestCluster::new()
        .env("EDDY_STARTUP_TIMEOUT_MS", "1500")
        .env("EDDY_MAX_CONNECTIONS", "4")
        .env("EDDY_MAX_MESSAGE_BYTES", "1048576")
        .start()
        .await?;
    let node = cluster.node();

    // A Query announcing 256 MB: refused at its header, before its body.
    let mut raw = Raw::startup(&node.pg_addr(), "eddy", Some(node.password())).await?;
    let mut header = vec![b'Q'];
    header.extend_from_slice(&(256u32 << 20).to_be_bytes());
    raw.0.write_all(&header).await?;
    let got = raw.until(b'E').await?;
    ensure!(
        sqlstate(&got.last().unwrap().1) == "54000",
        "54000 for a huge message"
    );
    ensure!(raw.closed().await?, "the connection ends");

    // Out of context: COPY data outside COPY, a password after startup.
    let mut raw = Raw::startup(&node.pg_addr(), "eddy", Some(node.password())).await?;
    for (kind, body) in [
        (b'f', &b"nope\0"[..]),
        (b'd', b"row"),
        (b'c', b""),
        (b'p', b"secret\0"),
    ] {
        raw.send(kind, body).await?;
        let got = raw.until(b'Z').await?;
        let codes: Vec<String> = got
            .iter()
            .filter(|(t, _)| *t == b'E')
            .map(|(_, b)| sqlstate(b))
            .collect();
        ensure!(codes == ["08P01"], "message {}: {codes:?}", kind as char);
    }
    raw.send(b'Q', b"SELECT 7\0").await?;
    let got = raw.until(b'Z').await?;
    ensure!(got.iter().any(|(t, _)| *t == b'D'), "still answers queries");
    drop(raw);

    // A socket that never sends a startup packet is closed after the timeout.
    let mut silent = Raw::connect(&node.pg_addr()).await?;
    ensure!(silent.closed().await?, "a silent socket is closed");

    // The fifth connection is refused with 53300; closing one lets the next in.
    // Earlier sockets free their places as the node sees them close.
    let mut held = Vec::new();
    while held.len() < 4 {
        held.push(eventually(DEADLINE, async || node.client().await).await?);
    }
    let refused = tokio_postgres::connect(&node.connection_string(), NoTls).await;
    let err = refused.err().context("the fifth connection must fail")?;
    let code = err.as_db_error().map(|e| e.code().code().to_owned());
    ensure!(code.as_deref() == Some("53300"), "got {err}");
    held.pop();
    eventually(DEADLINE, async || alive(node).await).await?;
    // Their places come back as the node sees them close.
    drop(held);
    eventually(DEADLINE, async || alive(node).await).await
}

#[tokio::test]
async fn internal_topics_cannot_be_sources() -> Result<()> {
    let cluster = TestCluster::start().await?;
    let client = cluster.client().await?;
    let commands = format!("_eddy_{}_commands", cluster.node().cluster());
    let err = assert_sqlstate(
        &client,
        &format!("CREATE SOURCE c (secret TEXT) WITH (topic = '{commands}', format = 'json')"),
        "42501",
    )
    .await?;
    ensure!(
        err.message().contains(&commands),
        "names the topic: {}",
        err.message()
    );
    Ok(())
}

#[tokio::test]
async fn records_that_cannot_be_carried_are_bad_records_and_the_view_goes_on() -> Result<()> {
    let cluster = TestCluster::start().await?;
    let client = cluster.client().await?;
    let topic = cluster.create_topic("things", 1).await?;
    client
        .batch_execute(&format!(
            "CREATE SOURCE things (id BIGINT, d DOUBLE PRECISION, n NUMERIC, t TEXT, ts TIMESTAMP, day DATE, \
             m NUMERIC(6,2)) WITH (topic = '{topic}', format = 'json', start = 'earliest'); \
             CREATE MATERIALIZED VIEW all_things AS SELECT id, d, n, t, ts, day, m FROM things; \
             CREATE MATERIALIZED VIEW sums AS SELECT COUNT(*) AS c, SUM(n) AS total FROM things"
        ))
        .await?;
    // Larger than Eddy's own topics take (about 1 MB). Not 10 MB: Tansu 0.6.0
    // never returns a record batch over about 5 MB to any consumer (checked
    // with librdkafka 2.12 and 2.16), so no client could read one.
    let big = "x".repeat(3 << 20);
    let bad = [
        format!(r#"{{"id": 100, "t": "{big}"}}"#),
        r#"{"id": -9223372036854775809}"#.to_owned(),
        r#"{"id": 101, "ts": 9000000000000000}"#.to_owned(),
        r#"{"id": 103, "n": 0.12345678901234567890123456789012}"#.to_owned(),
        r#"{"id": 104, "d": 1e400}"#.to_owned(),
        r#"{"id": 105, "m": 12345.6}"#.to_owned(),
    ];
    let good = [
        r#"{"id": 1, "d": 477754489.70793676, "n": 96282070403964.17, "t": "a", "m": 1.005}"#,
        r#"{"id": 2, "d": 0.1, "n": 0.30, "ts": "2026-11-05T07:00:00", "day": "2026-11-05"}"#,
        r#"{"id": 3, "d": 1e-7, "n": 12345678901234567890.12345678, "ts": 1700000000000}"#,
    ];
    let producer = cluster.producer()?;
    let mut records: Vec<Record> = vec![Record::value(good[0])];
    records.extend(bad.iter().map(|b| Record::value(b.clone())));
    records.extend(good[1..].iter().map(|g| Record::value(*g)));
    let delivered = producer.produce_batch(&topic, records).await?;
    let bad_offsets: Vec<String> = delivered[1..1 + bad.len()]
        .iter()
        .map(|d| d.offset.to_string())
        .collect();

    // Compared with PostgreSQL reading the same JSON: numbers from their
    // text, and a number in a TIMESTAMP column as epoch milliseconds.
    let pg = Postgres::start()?;
    let (reference, conn) = tokio_postgres::connect(&pg.conn_str(), NoTls).await?;
    tokio::spawn(conn);
    let mut want = Vec::new();
    for g in good {
        let rows = query_rows(
            &reference,
            &format!(
                "SELECT (j->>'id')::bigint, (j->>'d')::float8, (j->>'n')::numeric, j->>'t', \
                 CASE WHEN json_typeof(j->'ts') = 'number' \
                      THEN to_timestamp((j->>'ts')::bigint / 1000.0) AT TIME ZONE 'UTC' \
                      ELSE (j->>'ts')::timestamp END, \
                 (j->>'day')::date, (j->>'m')::numeric(6,2) FROM (SELECT '{g}'::json AS j) x"
            ),
        )
        .await?;
        want.extend(rows);
    }
    eventually(DEADLINE, async || {
        let got = query_rows(
            &client,
            "SELECT id, d, n, t, ts, day, m FROM all_things ORDER BY id",
        )
        .await?;
        ensure!(got == want, "all_things\n got {got:?}\nwant {want:?}");
        Ok(())
    })
    .await?;
    eventually(DEADLINE, async || {
        let rows = query_maps(&client, "SELECT * FROM eddy_catalog.source_errors").await?;
        // Each view's shuffle lists the records it skipped: offsets repeat.
        let offsets: std::collections::BTreeSet<i64> = rows
            .iter()
            .filter_map(|r| r["offset"].as_deref()?.parse().ok())
            .collect();
        let offsets: Vec<String> = offsets.iter().map(i64::to_string).collect();
        ensure!(
            offsets == bad_offsets,
            "source_errors at {offsets:?}, want {bad_offsets:?}"
        );
        let too_large = rows
            .iter()
            .any(|r| r["reason"].as_deref().unwrap_or("").contains("bytes"));
        ensure!(
            too_large,
            "the 3 MB record is listed as too large: {rows:?}"
        );
        Ok(())
    })
    .await?;
    let total = query_rows(&client, "SELECT c, total FROM sums").await?;
    let sum = query_rows(
        &reference,
        "SELECT 3, 96282070403964.17 + 0.30 + 12345678901234567890.12345678",
    )
    .await?;
    ensure!(total == sum, "sums {total:?}, PostgreSQL {sum:?}");
    alive(cluster.node()).await
}

#[tokio::test]
async fn an_overflow_in_one_aggregate_changes_no_other() -> Result<()> {
    let cluster = TestCluster::start().await?;
    let client = cluster.client().await?;
    let topic = cluster.create_topic("amounts", 1).await?;
    client
        .batch_execute(&format!(
            "CREATE SOURCE amounts (k TEXT, n NUMERIC) WITH (topic = '{topic}', format = 'json'); \
             CREATE MATERIALIZED VIEW per_k AS SELECT k, COUNT(*) AS c, SUM(n) AS s, MAX(n) AS top \
             FROM amounts GROUP BY k"
        ))
        .await?;
    let huge = "70000000000000000000000000000";
    let records = [
        format!(r#"{{"k": "a", "n": {huge}}}"#),
        r#"{"k": "a", "n": 1}"#.to_owned(),
        // Overflows SUM: skipped whole, COUNT and MAX untouched.
        format!(r#"{{"k": "a", "n": {huge}}}"#),
        r#"{"k": "b", "n": 2}"#.to_owned(),
    ];
    cluster
        .producer()?
        .produce_batch(&topic, records.iter().map(|r| Record::value(r.clone())))
        .await?;
    eventually(DEADLINE, async || {
        let rows = query_rows(&client, "SELECT k, c, s, top FROM per_k ORDER BY k").await?;
        let want = vec![
            vec![
                "a".to_owned(),
                "2".to_owned(),
                "70000000000000000000000000001".to_owned(),
                huge.to_owned(),
            ],
            vec![
                "b".to_owned(),
                "1".to_owned(),
                "2".to_owned(),
                "2".to_owned(),
            ],
        ];
        ensure!(rows == want, "per_k {rows:?}, want {want:?}");
        let errors = query_rows(&client, "SELECT reason FROM eddy_catalog.source_errors").await?;
        ensure!(errors.len() == 1, "one bad record: {errors:?}");
        Ok(())
    })
    .await
}

/// Over an upsert source, a row whose insert an aggregate refused is still
/// the key's latest value upstream: its update or delete must retract
/// nothing that was never added.
#[tokio::test]
async fn a_refused_upsert_is_never_retracted() -> Result<()> {
    let cluster = TestCluster::start().await?;
    let client = cluster.client().await?;
    let topic = cluster.create_topic("accounts", 1).await?;
    client
        .batch_execute(&format!(
            "CREATE SOURCE accounts (id TEXT PRIMARY KEY, k TEXT, n NUMERIC) \
             WITH (topic = '{topic}', format = 'json'); \
             CREATE MATERIALIZED VIEW per_k AS SELECT k, COUNT(*) AS c, SUM(n) AS s \
             FROM accounts GROUP BY k"
        ))
        .await?;
    let huge = "70000000000000000000000000000";
    let producer = cluster.producer()?;
    let expect = async |want: Vec<Vec<&str>>| -> Result<()> {
        let want: Vec<Vec<String>> = want
            .into_iter()
            .map(|r| r.into_iter().map(str::to_owned).collect())
            .collect();
        eventually(DEADLINE, async || {
            let rows = query_rows(&client, "SELECT k, c, s FROM per_k ORDER BY k").await?;
            ensure!(rows == want, "per_k {rows:?}, want {want:?}");
            Ok(())
        })
        .await
    };
    let put = |id: &str, k: &str, n: &str| {
        Record::keyed(id, format!(r#"{{"id": "{id}", "k": "{k}", "n": {n}}}"#))
    };
    // a2's insert overflows SUM: refused, listed, the group keeps a1 only.
    producer
        .produce_batch(
            &topic,
            [
                put("a1", "a", huge),
                put("a2", "a", huge),
                put("b1", "b", "2"),
            ],
        )
        .await?;
    expect(vec![vec!["a", "1", huge], vec!["b", "1", "2"]]).await?;
    // Deleting a2 retracts nothing: a1 is still counted.
    producer
        .produce_batch(&topic, [Record::tombstone("a2")])
        .await?;
    producer
        .produce_batch(&topic, [put("b2", "b", "3")])
        .await?;
    expect(vec![vec!["a", "1", huge], vec!["b", "2", "5"]]).await?;
    // Moving a1 to another group works as for any row.
    producer
        .produce_batch(&topic, [put("a1", "c", "1")])
        .await?;
    expect(vec![vec!["b", "2", "5"], vec!["c", "1", "1"]]).await
}

#[tokio::test]
async fn casts_and_result_types_follow_postgres() -> Result<()> {
    let cluster = TestCluster::start().await?;
    let client = cluster.client().await?;
    let pg = Postgres::start()?;
    let (reference, conn) = tokio_postgres::connect(&pg.conn_str(), NoTls).await?;
    tokio::spawn(conn);

    // Scalars: the text and the type of each answer.
    for expr in [
        "CAST('abcdef' AS VARCHAR(3))",
        "CAST(2.5 AS NUMERIC)::integer",
        "CAST(-2.5 AS NUMERIC)::integer",
        "CAST(3.5 AS NUMERIC)::bigint",
        "2.5::float8::integer",
        "3.5::float8::integer",
        "1::numeric / 3",
        "10::numeric / 4",
        "7.50::numeric / 2",
        "1.50::numeric + 1",
        "0.1::real",
        "1e15::float8",
        "0.00001234::float8",
        "CAST(0.1 AS REAL) * 3",
        "123.456::numeric(5,2)",
        "7::numeric(5,2)",
        "CAST(-2.5 AS NUMERIC(3,0))",
        "CAST(1.005 AS DECIMAL(4,2)) + 1",
    ] {
        let sql = format!("SELECT {expr}");
        let ours = client.query(&sql, &[]).await.with_context(|| sql.clone())?;
        let theirs = reference
            .query(&sql, &[])
            .await
            .with_context(|| sql.clone())?;
        let ty = |rows: &[tokio_postgres::Row]| rows[0].columns()[0].type_().clone();
        ensure!(
            ty(&ours) == ty(&theirs),
            "{sql}: type {} vs PostgreSQL {}",
            ty(&ours),
            ty(&theirs)
        );
        let text_ours = query_rows(&client, &sql).await?;
        let text_theirs = query_rows(&reference, &sql).await?;
        ensure!(
            text_ours == text_theirs,
            "{sql}: {text_ours:?} vs PostgreSQL {text_theirs:?}"
        );
    }

    // A value past NUMERIC(p,s)'s precision is an error in both.
    for sql in [
        "SELECT 1234.5::numeric(5,2)",
        "SELECT 999.995::numeric(5,2)",
    ] {
        assert_sqlstate(&client, sql, "22003").await?;
        assert_sqlstate(&reference, sql, "22003").await?;
    }

    // Aggregates over the same rows: a view in Eddy, a table in PostgreSQL.
    let topic = cluster.create_topic("nums", 1).await?;
    client
        .batch_execute(&format!(
            "CREATE SOURCE nums (g TEXT, i INTEGER, b BIGINT, n NUMERIC, r REAL) \
             WITH (topic = '{topic}', format = 'json'); \
             CREATE MATERIALIZED VIEW agg AS SELECT g, SUM(i) AS si, SUM(b) AS sb, AVG(i) AS ai, \
             AVG(b) AS ab, SUM(n) AS sn, AVG(n) AS an, SUM(r) AS sr, AVG(r) AS ar, COUNT(*) AS c \
             FROM nums GROUP BY g"
        ))
        .await?;
    reference
        .batch_execute("CREATE TABLE nums (g TEXT, i INTEGER, b BIGINT, n NUMERIC, r REAL)")
        .await?;
    let rows = [
        ("x", 1, 9223372036854775807i64, "1.25", "0.5"),
        ("x", 2, 9223372036854775807, "2.50", "1.5"),
        ("x", 4, 5, "0.333", "2"),
        ("y", 7, -3, "10", "0.1"),
    ];
    let producer = cluster.producer()?;
    for (g, i, b, n, r) in rows {
        producer
            .produce_json(
                &topic,
                None,
                Some(&format!(
                    r#"{{"g": "{g}", "i": {i}, "b": {b}, "n": {n}, "r": {r}}}"#
                )),
            )
            .await?;
        reference
            .execute(
                &format!("INSERT INTO nums VALUES ('{g}', {i}, {b}, {n}, {r})"),
                &[],
            )
            .await?;
    }
    let query = "SELECT g, SUM(i) AS si, SUM(b) AS sb, AVG(i) AS ai, AVG(b) AS ab, SUM(n) AS sn, \
                 AVG(n) AS an, SUM(r) AS sr, AVG(r) AS ar, COUNT(*) AS c FROM nums GROUP BY g ORDER BY g";
    let want = query_rows(&reference, query).await?;
    let want_types: Vec<String> = reference.query(query, &[]).await?[0]
        .columns()
        .iter()
        .map(|c| c.type_().to_string())
        .collect();
    eventually(DEADLINE, async || {
        let got = query_rows(
            &client,
            "SELECT g, si, sb, ai, ab, sn, an, sr, ar, c FROM agg ORDER BY g",
        )
        .await?;
        ensure!(got == want, "agg\n got {got:?}\nwant {want:?}");
        Ok(())
    })
    .await?;
    let got_types: Vec<String> = client
        .query(
            "SELECT g, si, sb, ai, ab, sn, an, sr, ar, c FROM agg ORDER BY g",
            &[],
        )
        .await?[0]
        .columns()
        .iter()
        .map(|c| c.type_().to_string())
        .collect();
    if got_types != want_types {
        bail!("result types {got_types:?}, PostgreSQL {want_types:?}");
    }
    Ok(())
}

#[tokio::test]
async fn a_session_timeout_over_15_seconds_still_creates_views() -> Result<()> {
    let cluster = TestCluster::new()
        .session_timeout_ms(20_000)
        .start()
        .await?;
    let (client, _topic) = eddy_tests::fixtures::orders_and_revenue(&cluster, 2, 2).await?;
    let shown = query_rows(&client, "SHOW MATERIALIZED VIEWS").await?;
    ensure!(shown.iter().any(|r| r[0] == "revenue"), "{shown:?}");
    Ok(())
}
