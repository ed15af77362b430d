//! Protocol behaviours clients rely on, each checked against Eddy and
//! against a real PostgreSQL 15 holding the same rows (see
//! [`eddy_tests::reference`]): the transaction status in ReadyForQuery,
//! savepoints and transaction settings, `COPY ... TO STDOUT` in text and
//! CSV (also through psql's `\copy`), `statement_timeout`, and SQL
//! cursors (`DECLARE`, `FETCH`, `MOVE`, `CLOSE`).

use anyhow::{ensure, Context, Result};
use eddy_tests::raw::Raw;
use eddy_tests::reference::Reference;
use eddy_tests::terminal::Terminal;
use futures::TryStreamExt;
use tokio_postgres::Client;

/// The two engines of one check: a name, a client, a raw address, user
/// and password.
fn engines(r: &Reference) -> [(&'static str, &Client, String, &'static str, Option<&str>); 2] {
    [
        (
            "PostgreSQL",
            &r.postgres,
            format!("127.0.0.1:{}", r.pg.port),
            "postgres",
            None,
        ),
        (
            "Eddy",
            &r.eddy,
            r.cluster.node().pg_addr(),
            "eddy",
            Some(r.cluster.password()),
        ),
    ]
}

/// Runs `script` on one session of each engine, answering each statement
/// with `answer`; fails at the first statement the engines answer
/// differently, else returns PostgreSQL's answers.
async fn answered_alike<T: PartialEq + std::fmt::Debug>(
    r: &Reference,
    script: &[&str],
    mut answer: impl AsyncFnMut(&mut Raw, &str) -> Result<T>,
) -> Result<Vec<T>> {
    let mut answers = Vec::new();
    for (_, _, addr, user, password) in engines(r) {
        let mut raw = Raw::startup(&addr, user, password).await?;
        let mut seen = Vec::new();
        for sql in script {
            seen.push(answer(&mut raw, sql).await?);
        }
        answers.push(seen);
    }
    let eddy = answers.pop().context("two engines")?;
    let pg = answers.pop().context("two engines")?;
    for ((sql, pg), eddy) in script.iter().zip(&pg).zip(&eddy) {
        ensure!(
            pg == eddy,
            "{sql}\nPostgreSQL: {pg:?}\nEddy:       {eddy:?}"
        );
    }
    Ok(pg)
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
    // Per statement: the status and the error, if any.
    let pg = answered_alike(&r, &script, async |raw, sql| raw.status_after(sql).await).await?;
    ensure!(
        pg.iter().map(|(s, _)| *s).collect::<String>() == "ITTTTTTIITEEITI",
        "statuses {pg:?}"
    );

    // Settings follow the transaction block: SET LOCAL and set_config(..,
    // true) last until its end, ROLLBACK undoes SET, and set_config returns
    // the value as SHOW prints it. (Read with current_setting: SHOW's
    // answer differs in its tag only, `SHOW 1` from pgwire, `SHOW` from
    // PostgreSQL.)
    let script = [
        "SELECT set_config('statement_timeout', '5000', false), current_setting('statement_timeout')",
        "SELECT current_setting('statement_timeout')",
        "BEGIN",
        "SET LOCAL statement_timeout = '7s'",
        "SELECT set_config('application_name', 'local', true)",
        "SELECT current_setting('statement_timeout'), current_setting('application_name')",
        "COMMIT",
        "SELECT current_setting('statement_timeout'), current_setting('application_name')",
        "BEGIN",
        "SET statement_timeout = '9s'",
        "RESET application_name",
        "ROLLBACK",
        "SELECT current_setting('statement_timeout')",
        "BEGIN",
        "SET statement_timeout = '8s'",
        "SET LOCAL statement_timeout = '1min'",
        "COMMIT",
        "SELECT current_setting('statement_timeout')",
        "SELECT set_config('statement_timeout', '2s', true)",
        "SELECT current_setting('statement_timeout')",
        "SET LOCAL statement_timeout = '3s'; SELECT current_setting('statement_timeout')",
        "SELECT current_setting('statement_timeout')",
        "SELECT current_setting(x) FROM (VALUES ('statement_timeout'), ('STATEMENT_TIMEOUT'), (NULL)) t(x)",
        "SELECT current_setting(x, true) FROM (VALUES ('no_such_setting')) t(x)",
        "SELECT current_setting(x) FROM (VALUES ('no_such_setting')) t(x)",
        "SELECT set_config('no_such_setting', '1', false)",
        "SELECT set_config('statement_timeout', 'soon', false)",
        "SET statement_timeout = 0",
    ];
    // A failed statement's answer is its SQLSTATE: PostgreSQL may have
    // described its columns first, as it fails while running it.
    answered_alike(&r, &script, async |raw, sql| {
        let lines = transcript(raw, sql).await?;
        let failed = lines.iter().any(|l| l.starts_with("error "));
        Ok(lines
            .into_iter()
            .filter(|l| !(failed && l.starts_with("columns ")))
            .collect::<Vec<_>>())
    })
    .await?;

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
    for (name, client, _, _, _) in engines(&r) {
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

    // Rows stream: the first of an answer far too large to gather arrive at
    // once, and a CancelRequest or statement_timeout stops the read while
    // it is sending, with 57014.
    // (A recursive CTE: both engines compute it lazily, unlike a set-
    // returning function in FROM, which PostgreSQL materializes first.)
    let endless =
        "WITH RECURSIVE s(g) AS (SELECT g::bigint FROM generate_series(1, 10000) AS t(g) \
                   UNION ALL SELECT g + 10000 FROM s) SELECT g, repeat('x', 100) AS pad FROM s";
    for (name, client, _, _, _) in engines(&r) {
        for stop in ["cancel", "timeout"] {
            if stop == "timeout" {
                client
                    .batch_execute("SET statement_timeout = '1500ms'")
                    .await?;
            }
            let rows = tokio::time::timeout(
                std::time::Duration::from_secs(20),
                client.query_raw(endless, std::iter::empty::<i32>()),
            )
            .await
            .with_context(|| format!("{name}: no rows within 20 s"))??;
            futures::pin_mut!(rows);
            let first = rows.try_next().await?.context("no first row")?;
            ensure!(first.get::<_, i64>(0) == 1, "{name}: first row");
            if stop == "cancel" {
                client
                    .cancel_token()
                    .cancel_query(tokio_postgres::NoTls)
                    .await?;
            }
            let ended = tokio::time::timeout(std::time::Duration::from_secs(30), async {
                loop {
                    match rows.try_next().await {
                        Ok(Some(_)) => continue,
                        Ok(None) => return None,
                        Err(e) => return e.as_db_error().map(|e| e.code().code().to_owned()),
                    }
                }
            })
            .await
            .with_context(|| format!("{name}: {stop} did not stop the read"))?;
            ensure!(
                ended.as_deref() == Some("57014"),
                "{name} {stop}: {ended:?}"
            );
            client.batch_execute("SET statement_timeout = 0").await?;
        }
    }
    Ok(())
}

#[tokio::test]
async fn psql_copies_and_describes_like_postgresql() -> Result<()> {
    let r = Reference::start().await?;
    let psql_with = |port: u16, user: &str, flags: &[&str], command: &str| -> Result<String> {
        let out = std::process::Command::new("psql")
            .args(flags)
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
            .env("PGPASSWORD", r.cluster.password())
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
    let psql = |port: u16, user: &str, command: &str| psql_with(port, user, &[], command);
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
    for command in [
        "\\l",
        "\\dn",
        "\\du",
        "\\df",
        "\\dm+",
        "\\d",
        "\\dt",
        "\\dt+",
        "\\dconfig",
    ] {
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
    // `\d view` answers whole: its columns and its key as an index. (Its
    // footers read catalog tables Eddy never has rows in — policies,
    // publications, inheritance — through per-row subqueries.)
    for (view, _) in eddy_tests::reference::VIEWS {
        let out = psql(eddy_port, "eddy", &format!("\\d {view}"))?;
        ensure!(
            out.contains(&format!("Materialized view \"public.{view}\"")),
            "\\d {view}: {out}"
        );
    }
    let out = psql(eddy_port, "eddy", "\\d revenue")?;
    ensure!(
        out.contains("\"revenue_pkey\" PRIMARY KEY, btree (customer)"),
        "\\d revenue shows its key: {out}"
    );
    // `\\d+ view` adds storage, the definition and the access method.
    for (view, definition) in eddy_tests::reference::VIEWS {
        let out = psql(eddy_port, "eddy", &format!("\\d+ {view}"))?;
        let first_words: String = definition
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ");
        ensure!(
            out.contains(&format!("Materialized view \"public.{view}\""))
                && out.contains("View definition:")
                && out.contains(&first_words)
                && out.contains("Access method: heap"),
            "\\d+ {view}: {out}"
        );
    }
    // A source is a foreign table of the server `kafka`, to psql.
    for command in ["\\d orders", "\\d+ customers"] {
        let out = psql(eddy_port, "eddy", command)?;
        ensure!(
            out.contains("Foreign table \"public.") && out.contains("Server: kafka"),
            "{command}: {out}"
        );
    }
    let servers = psql(eddy_port, "eddy", "\\des")?;
    ensure!(servers.contains("kafka"), "\\des: {servers}");
    // Tab completion: psql asks the catalog for the relations a prefix
    // starts, through a terminal (`script`), and runs the completed line on
    // both engines alike.
    let completed = |port: u16, user: &str| -> Result<String> {
        let mut term = Terminal::spawn(
            &format!("psql -X -P pager=off -h 127.0.0.1 -p {port} -U {user} -d {user}"),
            &[("PGPASSWORD", r.cluster.password())],
        )?;
        // Typed at the prompt, as a user would: the TAB completes the
        // name, and the line then runs.
        term.wait_for(&format!("{user}="))?;
        term.type_keys("SELECT count(*) FROM customer_in\t")?;
        term.wait_for("customer_info")?;
        term.type_keys(";\n")?;
        let text = term.wait_for("(1 row)")?;
        term.type_keys("\\q\n")?;
        term.finish()?;
        let line = text
            .lines()
            .find(|l| l.contains("SELECT count(*) FROM customer_info"))
            .context("psql echoed the completed line")?;
        let count = text
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_digit()))
            .context("psql printed the count")?;
        Ok(format!(
            "{} => {count}",
            &line[line.find("SELECT").unwrap_or(0)..]
        ))
    };
    let (pg, eddy) = (
        completed(r.pg.port, "postgres")?,
        completed(eddy_port, "eddy")?,
    );
    ensure!(
        eddy.contains("FROM customer_info") && pg == eddy,
        "tab completion: PostgreSQL {pg:?}, Eddy {eddy:?}"
    );
    // Result columns are named as PostgreSQL names them, and share names
    // as it lets them.
    let script = [
        "SELECT count(*), max(r.orders), 1 + 1, NULL, NULL, r.orders::text, 1::bigint, \
         CASE WHEN r.orders > 0 THEN 1 END, coalesce(NULL, 1), (SELECT max(orders) FROM revenue), \
         r.customer, r.customer, 1 AS a, 2 AS a \
         FROM revenue r JOIN customer_info c USING (customer) \
         GROUP BY r.orders, r.customer ORDER BY r.customer LIMIT 2",
        "SELECT g FROM generate_series(1, 3) g",
        "SELECT x FROM pg_catalog.unnest(ARRAY['a', 'b']) x ORDER BY 1",
        "SELECT count(*) FROM pg_catalog.pg_policy",
    ];
    answered_alike(&r, &script, async |raw, sql| transcript(raw, sql).await).await?;
    // `\d view`'s column query (psql 15's, verbatim but for the oid): the
    // same rows as PostgreSQL's for its table.
    for (view, _) in eddy_tests::reference::VIEWS {
        let columns = format!(
            "SELECT a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod), \
             (SELECT pg_catalog.pg_get_expr(d.adbin, d.adrelid, true) FROM pg_catalog.pg_attrdef d \
              WHERE d.adrelid = a.attrelid AND d.adnum = a.attnum AND a.atthasdef), \
             a.attnotnull, \
             (SELECT c.collname FROM pg_catalog.pg_collation c, pg_catalog.pg_type t \
              WHERE c.oid = a.attcollation AND t.oid = a.atttypid AND a.attcollation <> t.typcollation) AS attcollation, \
             a.attidentity, a.attgenerated \
             FROM pg_catalog.pg_attribute a \
             WHERE a.attrelid = '{view}'::regclass AND a.attnum > 0 AND NOT a.attisdropped \
             ORDER BY a.attnum"
        );
        // Rows only (-A -t): a column's title is not part of the answer.
        let rows = |port: u16, user: &str| psql_with(port, user, &["-t", "-A"], &columns);
        let (pg, eddy) = (rows(r.pg.port, "postgres")?, rows(eddy_port, "eddy")?);
        ensure!(
            pg.lines().count() > 1 && pg == eddy,
            "\\d {view} columns: PostgreSQL\n{pg}\nEddy\n{eddy}"
        );
    }
    Ok(())
}

/// What a client sees for one simple query, one line per message:
/// column names, rows as text, command tags, SQLSTATEs, and the status of
/// the closing ReadyForQuery.
async fn transcript(raw: &mut Raw, sql: &str) -> Result<Vec<String>> {
    fn int16(b: &[u8], at: usize) -> usize {
        b.get(at..at + 2)
            .map_or(0, |s| u16::from_be_bytes([s[0], s[1]]) as usize)
    }
    let mut body = sql.as_bytes().to_vec();
    body.push(0);
    raw.send(b'Q', &body).await?;
    let mut lines = Vec::new();
    for (kind, body) in raw.until(b'Z').await? {
        let line = match kind {
            b'T' => {
                let mut names = Vec::new();
                let mut at = 2;
                for _ in 0..int16(&body, 0) {
                    let end = body[at..].iter().position(|b| *b == 0).unwrap_or(0) + at;
                    names.push(String::from_utf8_lossy(&body[at..end]).into_owned());
                    at = end + 1 + 18;
                }
                format!("columns {}", names.join(","))
            }
            b'D' => {
                let mut values = Vec::new();
                let mut at = 2;
                for _ in 0..int16(&body, 0) {
                    let len = i32::from_be_bytes(body[at..at + 4].try_into()?);
                    at += 4;
                    if len < 0 {
                        values.push("NULL".to_owned());
                    } else {
                        let end = at + len as usize;
                        values.push(String::from_utf8_lossy(&body[at..end]).into_owned());
                        at = end;
                    }
                }
                format!("row {}", values.join("|"))
            }
            b'C' => format!(
                "tag {}",
                String::from_utf8_lossy(&body).trim_end_matches('\0')
            ),
            b'E' => format!("error {}", eddy_tests::raw::sqlstate(&body)),
            b'Z' => format!("status {}", body.first().map_or('?', |b| *b as char)),
            _ => continue,
        };
        lines.push(line);
    }
    Ok(lines)
}

#[tokio::test]
async fn cursors_declare_fetch_move_and_close_as_in_postgresql() -> Result<()> {
    let r = Reference::start().await?;

    // One session's statements, each answered the same by both engines.
    let script = [
        "DECLARE c CURSOR FOR SELECT 1",
        "FETCH NEXT FROM nope",
        "CLOSE nope",
        "MOVE nope",
        "BEGIN",
        // A view, read by Eddy's planner.
        "DECLARE \"BIG\" SCROLL CURSOR FOR SELECT order_id, customer, amount FROM big_orders ORDER BY order_id",
        "FETCH 3 FROM \"BIG\"",
        "FETCH \"BIG\"",
        "FETCH PRIOR FROM \"BIG\"",
        "MOVE FORWARD 2 IN \"BIG\"",
        "FETCH RELATIVE 0 FROM \"BIG\"",
        "FETCH ABSOLUTE -1 FROM \"BIG\"",
        "FETCH FORWARD ALL FROM \"BIG\"",
        "FETCH BACKWARD 2 FROM \"BIG\"",
        "MOVE BACKWARD ALL FROM \"BIG\"",
        "FETCH FIRST IN \"BIG\"",
        "FETCH -1 \"BIG\"",
        "MOVE ABSOLUTE 4 \"BIG\"",
        "FETCH RELATIVE -2 \"BIG\"",
        // A join, which DataFusion plans.
        "DECLARE joined CURSOR FOR SELECT r.customer, c.region FROM revenue r \
         JOIN customer_info c USING (customer) ORDER BY 1",
        "FETCH FORWARD 2 IN joined",
        "MOVE ALL IN joined",
        "FETCH joined",
        // A system catalog.
        "DECLARE types NO SCROLL CURSOR WITHOUT HOLD FOR \
         SELECT typname FROM pg_catalog.pg_type WHERE typname IN ('int8', 'text', 'bool') ORDER BY 1",
        "FETCH ALL FROM types",
        "CLOSE types",
        "CLOSE \"BIG\"",
        "FETCH 1 FROM \"BIG\"",
        "ROLLBACK",
        // Duplicate names and backward moves of a NO SCROLL cursor.
        "BEGIN",
        "DECLARE d CURSOR FOR SELECT customer FROM revenue ORDER BY customer",
        "DECLARE d CURSOR FOR SELECT 1",
        "ROLLBACK",
        "BEGIN",
        "DECLARE d NO SCROLL CURSOR FOR SELECT customer FROM revenue ORDER BY customer",
        "FETCH 2 d",
        "FETCH PRIOR FROM d",
        "ROLLBACK",
        // WITH HOLD survives COMMIT; the others do not.
        "BEGIN",
        "DECLARE held CURSOR WITH HOLD FOR SELECT customer, tier FROM customer_info ORDER BY customer",
        "DECLARE gone CURSOR WITHOUT HOLD FOR SELECT 1",
        "COMMIT",
        "FETCH 2 FROM held",
        "FETCH gone",
        "CLOSE held",
        "FETCH held",
        // A query string is one transaction: its cursors end with it.
        "DECLARE m CURSOR FOR SELECT customer FROM revenue ORDER BY 1; FETCH 2 m; MOVE 1 m; FETCH m",
        "FETCH m",
        "BEGIN; DECLARE a CURSOR FOR SELECT 1 AS x; DECLARE b CURSOR FOR SELECT 2 AS y; CLOSE ALL",
        "FETCH a",
        "ROLLBACK",
    ];
    let pg = answered_alike(&r, &script, async |raw, sql| transcript(raw, sql).await).await?;
    ensure!(
        pg[6].iter().filter(|l| l.starts_with("row ")).count() == 3
            && pg[6].contains(&"tag FETCH 3".to_owned()),
        "the reference fetched three orders: {:?}",
        pg[6]
    );

    // The extended protocol: Describe of a FETCH gives the cursor's
    // columns, and DECLARE takes parameters.
    let mut answers = Vec::new();
    for (name, client, _, _, _) in engines(&r) {
        client.batch_execute("BEGIN").await?;
        client
            .execute(
                "DECLARE p CURSOR FOR SELECT customer, orders FROM revenue WHERE orders >= $1 ORDER BY customer",
                &[&1i64],
            )
            .await
            .with_context(|| format!("{name}: DECLARE with a parameter"))?;
        let fetch = client.prepare("FETCH FORWARD 3 FROM p").await?;
        let columns: Vec<_> = fetch
            .columns()
            .iter()
            .map(|c| c.name().to_owned())
            .collect();
        let rows = client.query(&fetch, &[]).await?;
        let first: Vec<(String, i64)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
        let moved = client.execute("MOVE FORWARD 2 IN p", &[]).await?;
        let rows = client.query("FETCH NEXT FROM p", &[]).await?;
        let next: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
        client.batch_execute("COMMIT").await?;
        answers.push((name, (columns, first, moved, next)));
    }
    let (pg, eddy) = (&answers[0].1, &answers[1].1);
    ensure!(pg == eddy, "PostgreSQL: {pg:?}\nEddy:       {eddy:?}");
    ensure!(pg.1.len() == 3 && pg.2 == 2 && pg.3.len() == 1, "{pg:?}");
    Ok(())
}
