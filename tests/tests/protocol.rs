//! Protocol behaviours clients rely on, each checked against Eddy and
//! against a real PostgreSQL 15 holding the same rows (see
//! [`eddy_tests::reference`]): the transaction status in ReadyForQuery,
//! savepoints and transaction settings, `COPY ... TO STDOUT` in text and
//! CSV (also through psql's `\copy`), and `statement_timeout`.

use anyhow::{ensure, Context, Result};
use eddy_tests::raw::Raw;
use eddy_tests::reference::Reference;
use futures::TryStreamExt;
use tokio_postgres::Client;

/// The two engines of one check: a name, a client, a raw address and user.
fn engines(r: &Reference) -> [(&'static str, &Client, String, &'static str); 2] {
    [
        (
            "PostgreSQL",
            &r.postgres,
            format!("127.0.0.1:{}", r.pg.port),
            "postgres",
        ),
        ("Eddy", &r.eddy, r.cluster.node().pg_addr(), "eddy"),
    ]
}

async fn copy_out(client: &Client, sql: &str) -> Result<String> {
    let stream = client.copy_out(sql).await.with_context(|| sql.to_owned())?;
    let chunks: Vec<bytes::Bytes> = stream.try_collect().await?;
    Ok(chunks.iter().map(|c| String::from_utf8_lossy(c)).collect())
}

#[tokio::test]
async fn transactions_copy_and_timeouts_behave_as_in_postgresql() -> Result<()> {
    let r = Reference::start().await?;

    // ReadyForQuery's status through a transaction, an error inside it and
    // its end: what every driver's transaction handling reads.
    let script = [
        "SELECT 1",
        "BEGIN",
        "SAVEPOINT a",
        "SELECT customer FROM revenue WHERE customer = 'c1'",
        "RELEASE SAVEPOINT a",
        "SAVEPOINT b",
        "ROLLBACK TO SAVEPOINT b",
        "COMMIT",
        "SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL READ COMMITTED",
        "START TRANSACTION READ ONLY",
        "SELECT r.orders / (c.tier - c.tier) FROM revenue r JOIN customer_info c USING (customer)",
        "SELECT 1",
        "ROLLBACK",
        "BEGIN",
        "ROLLBACK",
    ];
    let mut answers = Vec::new();
    for (name, _, addr, user) in engines(&r) {
        let mut raw = Raw::startup(&addr, user).await?;
        let mut seen = Vec::new();
        for sql in script {
            seen.push(raw.status_after(sql).await?);
        }
        answers.push((name, seen));
    }
    let (pg, eddy) = (&answers[0].1, &answers[1].1);
    for (i, sql) in script.iter().enumerate() {
        ensure!(
            pg[i] == eddy[i],
            "after {sql:?}: PostgreSQL gives status and error {:?}, Eddy {:?}",
            pg[i],
            eddy[i]
        );
    }
    ensure!(
        pg.iter().map(|(s, _)| *s).collect::<String>() == "ITTTTTTIITEEITI",
        "statuses {pg:?}"
    );

    // COPY ... TO STDOUT: the same bytes from both, text and CSV.
    for sql in [
        "COPY (SELECT customer, orders, total FROM revenue ORDER BY customer) TO STDOUT WITH CSV HEADER",
        "COPY (SELECT customer, region, tier FROM customer_info ORDER BY customer) TO STDOUT",
        "COPY (SELECT customer, region FROM customer_info ORDER BY customer) TO STDOUT (FORMAT csv, HEADER true, DELIMITER ';')",
        "COPY (SELECT r.customer, c.region FROM revenue r JOIN customer_info c USING (customer) ORDER BY 1) TO STDOUT",
    ] {
        let pg = copy_out(&r.postgres, sql).await?;
        let eddy = copy_out(&r.eddy, sql).await?;
        ensure!(!pg.is_empty(), "PostgreSQL copied nothing for {sql}");
        ensure!(pg == eddy, "{sql}\nPostgreSQL:\n{pg}\nEddy:\n{eddy}");
    }
    // `COPY view TO STDOUT` copies the whole view; the row count is right.
    let eddy = copy_out(&r.eddy, "COPY order_status TO STDOUT").await?;
    ensure!(eddy.lines().count() == 3, "three statuses: {eddy}");

    // statement_timeout cancels a long read with 57014, and 0 lifts it.
    for (name, client, _, _) in engines(&r) {
        client
            .batch_execute("SET statement_timeout = '5ms'")
            .await?;
        let slow = "SELECT count(*) FROM generate_series(1, 50000000) g JOIN customer_info c ON c.tier = 1";
        let err = client
            .simple_query(slow)
            .await
            .err()
            .with_context(|| format!("{name}: the slow read finished"))?;
        let code = err.as_db_error().map(|e| e.code().code().to_owned());
        ensure!(code.as_deref() == Some("57014"), "{name}: {err}");
        client.batch_execute("SET statement_timeout = 0").await?;
        let rows = client
            .simple_query("SELECT count(*) FROM customer_info")
            .await?;
        ensure!(rows.len() >= 2, "{name}: reads work again");
    }
    Ok(())
}

#[tokio::test]
async fn psql_copies_and_describes_like_postgresql() -> Result<()> {
    let r = Reference::start().await?;
    let psql = |port: u16, user: &str, command: &str| -> Result<String> {
        let out = std::process::Command::new("psql")
            .args([
                "-X",
                "-h",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-U",
                user,
                "-d",
                user,
            ])
            .args(["-v", "ON_ERROR_STOP=1", "-c", command])
            .output()?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        ensure!(
            out.status.success() && !stderr.contains("ERROR"),
            "psql {command}: {stderr}"
        );
        // psql reports an empty listing ("Did not find any relations.") on
        // stderr; both streams together are what the user sees.
        Ok(format!("{}{stderr}", String::from_utf8_lossy(&out.stdout)))
    };
    let dir = tempfile::tempdir()?;
    let eddy_port = r.cluster.node().pg_port();
    for (name, port, user) in [("pg", r.pg.port, "postgres"), ("eddy", eddy_port, "eddy")] {
        let file = dir.path().join(format!("{name}.csv"));
        psql(
            port,
            user,
            &format!(
                "\\copy (SELECT customer, orders FROM revenue ORDER BY 1) to '{}' csv header",
                file.display()
            ),
        )?;
    }
    let pg = std::fs::read_to_string(dir.path().join("pg.csv"))?;
    let eddy = std::fs::read_to_string(dir.path().join("eddy.csv"))?;
    ensure!(pg == eddy, "\\copy: PostgreSQL\n{pg}\nEddy\n{eddy}");

    // The \d family: every command answers, and names what PostgreSQL names.
    for command in ["\\l", "\\dn", "\\du", "\\df", "\\dm+", "\\d"] {
        let out = psql(eddy_port, "eddy", command)?;
        ensure!(!out.is_empty(), "{command} printed nothing");
    }
    // Eddy has no plain views, and neither has the reference database.
    let (pg, eddy) = (
        psql(r.pg.port, "postgres", "\\dv")?,
        psql(eddy_port, "eddy", "\\dv")?,
    );
    ensure!(pg == eddy, "\\dv: PostgreSQL {pg:?}, Eddy {eddy:?}");
    let views = psql(eddy_port, "eddy", "\\dm")?;
    for (view, _) in eddy_tests::reference::VIEWS {
        ensure!(views.contains(view), "\\dm lists {view}: {views}");
    }
    let schemas = psql(eddy_port, "eddy", "\\dn")?;
    ensure!(
        schemas.contains("public") && schemas.contains("eddy_catalog"),
        "\\dn: {schemas}"
    );
    Ok(())
}
