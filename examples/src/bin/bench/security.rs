//! (g) What authentication and TLS cost: connection setup (connect, `SELECT
//! 1`, close — `pgbench -C`) under trust, SCRAM-SHA-256, and SCRAM over TLS,
//! and point lookups over TLS; each beside PostgreSQL 15 configured the same
//! way in the same run. Certificates are made here, for 127.0.0.1.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result};
use eddy_examples::kafka::{ensure_topic, producer, Pipeline};
use eddy_examples::orders::{create_orders_source, create_revenue_view, Order, Rng};
use eddy_examples::procs::{password, Eddy, Tansu};
use eddy_tests::Postgres;

use super::{connect, first_cell, pgbench_command, Args, Pgbench};

/// One configuration measured on both engines.
pub struct Pair {
    pub label: &'static str,
    pub eddy: Result<Pgbench>,
    pub postgres: Result<Pgbench>,
}

pub struct SecurityFigures {
    pub connections: Vec<Pair>,
    pub lookups: Pair,
    pub seconds: u32,
    pub customers: u64,
}

/// PostgreSQL's role for SCRAM runs (the `postgres` role stays `trust`).
const PG_SCRAM_ROLE: &str = "bench_scram";

pub async fn security_bench(args: &Args, dir: &Path) -> SecurityFigures {
    let seconds = args.security_seconds;
    let failed = |label, e: &anyhow::Error| Pair {
        label,
        eddy: Err(anyhow::anyhow!("{e:#}")),
        postgres: Err(anyhow::anyhow!("{e:#}")),
    };
    match run(args, dir).await {
        Ok(figures) => figures,
        Err(e) => {
            println!("bench: security phase failed: {e:#}");
            SecurityFigures {
                connections: vec![failed("setup", &e)],
                lookups: failed("lookups", &e),
                seconds,
                customers: args.customers,
            }
        }
    }
}

async fn run(args: &Args, dir: &Path) -> Result<SecurityFigures> {
    let seconds = args.security_seconds;
    let (cert, key) = certificates(dir)?;
    let tansu = Tansu::start("memory://tansu/")?;
    let brokers = tansu.brokers();
    let env = |auth: &str| {
        vec![
            ("EDDY_AUTH", auth.to_owned()),
            ("EDDY_TLS_CERT", cert.display().to_string()),
            ("EDDY_TLS_KEY", key.display().to_string()),
        ]
    };
    let trust = Eddy::start_node_env(&brokers, "sec_trust", "n1", 4, "warn", None, &env("trust"))?;
    let scram = Eddy::start_node_env(&brokers, "sec_scram", "n1", 4, "warn", None, &env("scram"))?;

    // Rows to look up: one order per customer, in a view on the SCRAM node.
    let topic = "sec_orders";
    ensure_topic(&brokers, topic, 4).await?;
    let p = producer(&brokers)?;
    let mut pipeline = Pipeline::new(&p, 100_000);
    let mut rng = Rng::new(7);
    let mut groups = 0u64;
    for c in 1..=args.customers {
        let order = Order::random(&mut rng, c as i64, c.to_string(), 0);
        groups += u64::from(order.counts());
        pipeline.send(topic, None, Some(&order.json())).await?;
    }
    pipeline.finish().await?;
    let client = connect(&scram.conn_str()).await?;
    client
        .batch_execute(&create_orders_source("orders", topic))
        .await?;
    client
        .batch_execute(&create_revenue_view("revenue", "orders", 4))
        .await?;
    let deadline = std::time::Instant::now() + Duration::from_secs(args.timeout);
    loop {
        let n = first_cell(&client, "SELECT count(*) FROM revenue").await?;
        if n.as_deref() == Some(groups.to_string().as_str()) {
            break;
        }
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "revenue holds {n:?} rows, not {groups}, after {} s",
            args.timeout
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    println!("bench: (g) configuring PostgreSQL for SCRAM and TLS");
    let pg = Postgres::start()?;
    let pg_client = connect(&pg.conn_str()).await?;
    postgres_scram_and_tls(&pg, &pg_client, &cert, &key).await?;
    copy_revenue(&client, &pg_client).await?;

    let select1 = dir.join("select1.sql");
    std::fs::write(&select1, "SELECT 1;\n")?;
    let lookup = dir.join("sec_lookup.sql");
    super::lookup_script(&lookup, "revenue", "customer", args.customers)?;
    // PostgreSQL's SCRAM role has the nodes' password, so one PGPASSWORD
    // (pgbench_command's) serves both.
    let bench = |script: &Path, port: u16, user: &str, db: &str, ssl: &str, connect_each: bool| {
        let mut cmd = pgbench_command(args.clients, args.threads, seconds, script, port, user);
        if connect_each {
            cmd.arg("-C");
        }
        cmd.env("PGSSLMODE", ssl).arg(db);
        pgbench_figures(&mut cmd)
    };
    let mut connections = Vec::new();
    for (label, eddy_port, pg_user, ssl) in [
        ("trust", trust.pg_port, "postgres", "disable"),
        ("SCRAM-SHA-256", scram.pg_port, PG_SCRAM_ROLE, "disable"),
        (
            "SCRAM-SHA-256 over TLS",
            scram.pg_port,
            PG_SCRAM_ROLE,
            "require",
        ),
    ] {
        println!("bench: (g) connection setup, {label}");
        connections.push(Pair {
            label,
            eddy: bench(&select1, eddy_port, "eddy", "eddy", ssl, true),
            postgres: bench(&select1, pg.port, pg_user, "postgres", ssl, true),
        });
    }
    println!("bench: (g) point lookups, SCRAM over TLS");
    let lookups = Pair {
        label: "point lookups, SCRAM over TLS",
        eddy: bench(&lookup, scram.pg_port, "eddy", "eddy", "require", false),
        postgres: bench(
            &lookup,
            pg.port,
            PG_SCRAM_ROLE,
            "postgres",
            "require",
            false,
        ),
    };
    drop((trust, scram, tansu));
    Ok(SecurityFigures {
        connections,
        lookups,
        seconds,
        customers: args.customers,
    })
}

/// A CA and a server certificate for 127.0.0.1 and localhost, as PEM files.
fn certificates(dir: &Path) -> Result<(std::path::PathBuf, std::path::PathBuf)> {
    let ca_key = rcgen::KeyPair::generate()?;
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "Eddy bench CA");
    let key = rcgen::KeyPair::generate()?;
    let mut server = rcgen::CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()])?;
    server
        .distinguished_name
        .push(rcgen::DnType::CommonName, "localhost");
    let cert = server.signed_by(&key, &rcgen::Issuer::new(ca, ca_key))?;
    let (cert_path, key_path) = (dir.join("server.crt"), dir.join("server.key"));
    std::fs::write(&cert_path, cert.pem())?;
    std::fs::write(&key_path, key.serialize_pem())?;
    Ok((cert_path, key_path))
}

/// PostgreSQL with TLS on, and a role that logs in with SCRAM-SHA-256.
async fn postgres_scram_and_tls(
    pg: &Postgres,
    client: &tokio_postgres::Client,
    cert: &Path,
    key: &Path,
) -> Result<()> {
    let data = pg.dir.path().join("data");
    std::fs::copy(cert, data.join("server.crt"))?;
    std::fs::copy(key, data.join("server.key"))?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            data.join("server.key"),
            std::fs::Permissions::from_mode(0o600),
        )?;
    }
    // As root, the server runs as `postgres`, which must own its key.
    let _ = Command::new("chown")
        .args(["postgres:postgres"])
        .arg(data.join("server.crt"))
        .arg(data.join("server.key"))
        .status();
    let hba = data.join("pg_hba.conf");
    let rules = std::fs::read_to_string(&hba)?;
    std::fs::write(
        &hba,
        format!("host all {PG_SCRAM_ROLE} 127.0.0.1/32 scram-sha-256\n{rules}"),
    )?;
    for sql in [
        "ALTER SYSTEM SET ssl = on",
        "ALTER SYSTEM SET password_encryption = 'scram-sha-256'",
        "SELECT pg_reload_conf()",
    ] {
        client
            .batch_execute(sql)
            .await
            .with_context(|| sql.to_owned())?;
    }
    client
        .batch_execute(&format!(
            "CREATE ROLE {PG_SCRAM_ROLE} LOGIN PASSWORD '{}'",
            password()
        ))
        .await?;
    Ok(())
}

/// The view's rows into a PostgreSQL table of the same name, readable by the
/// SCRAM role.
async fn copy_revenue(eddy: &tokio_postgres::Client, pg: &tokio_postgres::Client) -> Result<()> {
    pg.batch_execute(&format!(
        "CREATE TABLE revenue (customer TEXT PRIMARY KEY, orders BIGINT, \
         total DOUBLE PRECISION, avg_amount DOUBLE PRECISION, \
         smallest DOUBLE PRECISION, largest DOUBLE PRECISION); \
         GRANT SELECT ON revenue TO {PG_SCRAM_ROLE}"
    ))
    .await?;
    let rows = eddy
        .query(
            "SELECT customer, orders, total, avg_amount, smallest, largest FROM revenue",
            &[],
        )
        .await?;
    let insert = pg
        .prepare("INSERT INTO revenue VALUES ($1, $2, $3, $4, $5, $6)")
        .await?;
    for r in rows {
        let (c, o, t, a, s, l): (String, i64, f64, f64, f64, f64) =
            (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5));
        pg.execute(&insert, &[&c, &o, &t, &a, &s, &l]).await?;
    }
    pg.batch_execute("VACUUM ANALYZE revenue").await?;
    Ok(())
}

/// Runs pgbench: its throughput and average latency.
fn pgbench_figures(cmd: &mut Command) -> Result<Pgbench> {
    super::pgbench_summary(&eddy_examples::procs::run(cmd)?)
}

/// The section of BENCHMARKS.md.
pub fn markdown(md: &mut String, f: &SecurityFigures) {
    let _ = writeln!(
        md,
        "\n## Authentication and TLS\n\n\
         Reproduce with `cargo run --release -p eddy-examples --bin bench -- --only-security`. \
         Connection setup is `pgbench -C` (a new connection per transaction: connect, \
         `SELECT 1`, close) for {} s with the lookups' clients and threads; lookups are \
         the lookup phase's prepared point reads over {} keys. Eddy: one node per \
         method; PostgreSQL 15 configured the same (a `scram-sha-256` pg_hba rule, \
         `ssl = on`) in the same run, with the same certificate (ECDSA P-256).\n\n\
         | what | Eddy | PostgreSQL | ratio |\n|---|---:|---:|---:|",
        f.seconds, f.customers
    );
    let cell = |r: &Result<Pgbench>| match r {
        Ok(p) => format!("{:.0} /s ({:.2} ms)", p.tps, p.avg_ms),
        Err(e) => format!("failed: {}", super::one_line(&format!("{e:#}"))),
    };
    for pair in f.connections.iter().chain([&f.lookups]) {
        let ratio = match (&pair.eddy, &pair.postgres) {
            (Ok(e), Ok(p)) if p.tps > 0.0 => format!("{:.2}×", e.tps / p.tps),
            _ => "–".into(),
        };
        let _ = writeln!(
            md,
            "| {} | {} | {} | {ratio} |",
            pair.label,
            cell(&pair.eddy),
            cell(&pair.postgres)
        );
    }
}
