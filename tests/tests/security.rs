//! Authentication, roles, privileges and TLS, end to end: psql, tokio-postgres,
//! psycopg and pgjdbc against real nodes; privilege errors checked against a real
//! PostgreSQL; the internal service and membership against processes without the
//! cluster's key. Every key, certificate and password here is made at test time.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use eddy_tests::fixtures::{create_orders_source, create_revenue_view};
use eddy_tests::terminal::Terminal;
use eddy_tests::{eventually, query_rows, Node, Postgres, TestCluster};
use tokio_postgres::{Client, NoTls};

/// A client of `node` as `user`; the error as the driver reports it.
async fn connect_as(
    node: &Node,
    user: &str,
    password: &str,
) -> Result<Client, tokio_postgres::Error> {
    let addr = node.pg_addr();
    let (host, port) = addr.rsplit_once(':').unwrap_or(("127.0.0.1", "6875"));
    let conn = format!(
        "host={host} port={port} user={user} password='{password}' dbname=eddy connect_timeout=10"
    );
    let (client, connection) = tokio_postgres::connect(&conn, NoTls).await?;
    tokio::spawn(connection);
    Ok(client)
}

/// The SQLSTATE of a failed connection or statement.
fn code(e: &tokio_postgres::Error) -> String {
    e.as_db_error().map_or_else(
        || format!("no SQLSTATE: {e}"),
        |d| d.code().code().to_owned(),
    )
}

async fn refused(node: &Node, user: &str, password: &str) -> Result<String> {
    match connect_as(node, user, password).await {
        Ok(_) => bail!("{user} connected with a wrong password"),
        Err(e) => Ok(code(&e)),
    }
}

/// psql with `env`, one command; its output whatever the exit status.
fn psql(
    port: u16,
    user: &str,
    env: &[(&str, &str)],
    conn_extra: &str,
    sql: &str,
) -> Result<Output> {
    let mut cmd = Command::new("psql");
    cmd.arg(format!(
        "host=127.0.0.1 port={port} user={user} dbname=eddy connect_timeout=10 {conn_extra}"
    ))
    .args(["-X", "-At", "-v", "ON_ERROR_STOP=1", "-c", sql])
    .env_remove("PGPASSWORD");
    for (k, v) in env {
        cmd.env(k, v);
    }
    Ok(cmd.output()?)
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).trim().to_owned()
}

/// `\password` in psql as `user`, typing `new` twice at its prompts (psql
/// reads them from a terminal: `script` gives it one).
fn password_with_psql(port: u16, user: &str, old: &str, new: &str) -> Result<()> {
    let mut term = Terminal::spawn(
        &format!("psql -X -h 127.0.0.1 -p {port} -U {user} -d eddy -c '\\password'"),
        &[("PGPASSWORD", old)],
    )?;
    term.wait_for("Enter new password")?;
    term.type_keys(&format!("{new}\n"))?;
    term.wait_for("Enter it again")?;
    term.type_keys(&format!("{new}\n"))?;
    ensure!(term.finish()?, "psql \\password failed");
    Ok(())
}

/// The error a statement fails with, as (SQLSTATE, message).
async fn error_of(client: &Client, sql: &str) -> Result<(String, String)> {
    match client.simple_query(sql).await {
        Ok(_) => bail!("{sql:?} succeeded"),
        Err(e) => {
            let db = e.as_db_error().with_context(|| format!("{sql:?}: {e}"))?;
            Ok((db.code().code().to_owned(), db.message().to_owned()))
        }
    }
}

async fn one(client: &Client, sql: &str) -> Result<String> {
    let rows = query_rows(client, sql).await?;
    rows.first()
        .and_then(|r| r.first())
        .cloned()
        .with_context(|| format!("{sql}: no row"))
}

#[tokio::test]
async fn passwords_roles_and_privileges_as_postgresql_has_them() -> Result<()> {
    let cluster = TestCluster::start().await?;
    let node = cluster.node();
    let topic = cluster.create_topic("orders", 2).await?;
    let eddy = cluster.client().await?;
    eddy.batch_execute(&create_orders_source("orders", &topic))
        .await?;
    eddy.batch_execute(&create_revenue_view("v", "orders", 2))
        .await?;

    // Wrong password, unknown user: 28P01 alike; the log names the user, never
    // the password tried.
    let wrong = "not-the-password-4711";
    assert_eq!(refused(node, "eddy", wrong).await?, "28P01");
    assert_eq!(refused(node, "nobody", wrong).await?, "28P01");
    let out = psql(
        node.pg_port(),
        "eddy",
        &[("PGPASSWORD", wrong)],
        "",
        "SELECT 1",
    )?;
    ensure!(
        !out.status.success(),
        "psql with a wrong password connected"
    );
    ensure!(
        stderr(&out).contains("password authentication failed for user \"eddy\""),
        "psql says why: {}",
        stderr(&out)
    );
    let out = psql(
        node.pg_port(),
        "eddy",
        &[("PGPASSWORD", node.password())],
        "",
        "SELECT current_user",
    )?;
    ensure!(out.status.success(), "psql: {}", stderr(&out));
    assert_eq!(stdout(&out), "eddy");
    let log = std::fs::read_to_string(node.stderr_path())?;
    ensure!(
        log.contains("authentication failed"),
        "failed attempts are logged"
    );
    ensure!(!log.contains(wrong), "the log never holds a password tried");

    // Nonsense in the SASL exchange ends that connection with an error, and
    // nothing else.
    let sasl = |mech: &str, data: &[u8]| {
        let mut m = format!("{mech}\0").into_bytes();
        m.extend_from_slice(&(data.len() as i32).to_be_bytes());
        m.extend_from_slice(data);
        m
    };
    let garbage: [(Vec<u8>, Option<Vec<u8>>); 6] = [
        (Vec::new(), None),
        (b"SCRAM-SHA-256\0\xff\xff".to_vec(), None),
        (sasl("NOT-A-MECHANISM", b"n,,n=,r=abc"), None),
        (sasl("SCRAM-SHA-256", b"garbage"), None),
        (
            sasl("SCRAM-SHA-256-PLUS", b"p=tls-server-end-point,,n=,r=abc"),
            None,
        ),
        (
            sasl("SCRAM-SHA-256", b"n,,n=,r=abc"),
            Some(b"c=biws,r=abc,p=!!!".to_vec()),
        ),
    ];
    for (first, last) in garbage {
        let mut raw = eddy_tests::raw::Raw::connect(&node.pg_addr()).await?;
        raw.send_startup("eddy").await?;
        ensure!(raw.next().await?.0 == b'R', "asked for SASL");
        raw.send(b'p', &first).await?;
        let (mut kind, mut body) = raw.next().await?;
        if let Some(last) = last {
            ensure!(
                kind == b'R',
                "SASLContinue: {}",
                eddy_tests::raw::sqlstate(&body)
            );
            raw.send(b'p', &last).await?;
            (kind, body) = raw.next().await?;
        }
        ensure!(kind == b'E', "an error, not {}", kind as char);
        let code = eddy_tests::raw::sqlstate(&body);
        ensure!(code.starts_with("28") || code.starts_with("08"), "{code}");
        ensure!(raw.closed().await?, "the connection closes");
    }
    connect_as(node, "eddy", node.password()).await?;
    let log = std::fs::read_to_string(node.stderr_path())?;
    ensure!(!log.contains("panicked"), "no connection task panicked");

    // Roles: created by the superuser, stored as SCRAM verifiers, shown
    // without secrets.
    eddy.batch_execute("CREATE ROLE alice LOGIN PASSWORD 'alice-pw-1'")
        .await?;
    eddy.batch_execute("CREATE USER bob PASSWORD 'bob-pw'")
        .await?;
    eddy.batch_execute("CREATE ROLE readers").await?;
    let roles = query_rows(
        &eddy,
        "SELECT rolname, rolsuper, rolcanlogin, rolpassword FROM pg_roles ORDER BY rolname",
    )
    .await?;
    assert_eq!(
        roles,
        [
            ["alice", "f", "t", "********"],
            ["bob", "f", "t", "********"],
            ["eddy", "t", "t", "********"],
            ["readers", "f", "f", "********"],
        ]
    );
    let du = psql(
        node.pg_port(),
        "eddy",
        &[("PGPASSWORD", node.password())],
        "",
        "\\du",
    )?;
    ensure!(du.status.success(), "\\du: {}", stderr(&du));
    ensure!(
        stdout(&du).contains("alice|") && stdout(&du).contains("eddy|Superuser"),
        "\\du lists the roles: {}",
        stdout(&du)
    );
    assert_eq!(error_of(&eddy, "CREATE ROLE alice").await?.0, "42710");
    let alice = connect_as(node, "alice", "alice-pw-1").await?;
    assert_eq!(one(&alice, "SELECT current_user").await?, "alice");
    assert_eq!(
        refused(node, "readers", "").await?,
        "28P01",
        "no password, no login"
    );

    // The same statements in PostgreSQL, for the messages and answers to match.
    let pg = Postgres::start()?;
    let (pg_admin, conn) = tokio_postgres::connect(&pg.conn_str(), NoTls).await?;
    tokio::spawn(conn);
    pg_admin
        .batch_execute(
            "CREATE ROLE alice LOGIN; \
             CREATE MATERIALIZED VIEW v AS SELECT 'a'::text AS customer, 1::bigint AS orders",
        )
        .await?;
    let (pg_alice, conn) = tokio_postgres::connect(
        &format!("host=127.0.0.1 port={} user=alice dbname=postgres", pg.port),
        NoTls,
    )
    .await?;
    tokio::spawn(conn);

    // Denied, then granted, then revoked: each answer as PostgreSQL's.
    let both = [("PostgreSQL", &pg_alice), ("Eddy", &alice)];
    for (engine, c) in both {
        let (code, message) = error_of(c, "SELECT * FROM v").await?;
        assert_eq!(
            (code.as_str(), message.as_str()),
            ("42501", "permission denied for materialized view v"),
            "{engine}"
        );
        assert_eq!(
            one(c, "SELECT has_table_privilege('v', 'SELECT')").await?,
            "f",
            "{engine}"
        );
        let (code, message) = error_of(c, "DROP MATERIALIZED VIEW v").await?;
        assert_eq!(
            (code.as_str(), message.as_str()),
            ("42501", "must be owner of materialized view v"),
            "{engine}"
        );
        let (code, message) = error_of(c, "CREATE ROLE mallory SUPERUSER").await?;
        assert_eq!(
            code, "42501",
            "{engine}: only a superuser creates roles ({message})"
        );
    }
    // DDL needs CREATE on schema public, in both.
    let pg_denied = error_of(&pg_alice, "CREATE TABLE t (x int)").await?;
    let eddy_denied = error_of(&alice, &create_orders_source("mine", &topic)).await?;
    assert_eq!(pg_denied, eddy_denied);
    assert_eq!(eddy_denied.1, "permission denied for schema public");
    for (c, engine) in [(&pg_admin, "PostgreSQL"), (&eddy, "Eddy")] {
        c.batch_execute("GRANT SELECT ON v TO alice")
            .await
            .with_context(|| engine)?;
    }
    for (engine, c) in both {
        assert_eq!(
            one(c, "SELECT count(*) >= 0 FROM v").await?,
            "t",
            "{engine}"
        );
        assert_eq!(
            one(c, "SELECT has_table_privilege('v', 'select')").await?,
            "t",
            "{engine}"
        );
        assert_eq!(
            one(c, "SELECT has_table_privilege('v', 'INSERT')").await?,
            "f",
            "{engine}"
        );
    }
    for (engine, c) in [("PostgreSQL", &pg_admin), ("Eddy", &eddy)] {
        assert_eq!(
            one(c, "SELECT has_table_privilege('alice', 'v', 'SELECT')").await?,
            "t",
            "{engine}"
        );
        let acl = one(c, "SELECT relacl::text FROM pg_class WHERE relname = 'v'").await?;
        ensure!(acl.contains("alice=r/"), "{engine}: relacl {acl}");
        c.batch_execute("REVOKE SELECT ON v FROM alice").await?;
    }
    for (engine, c) in both {
        assert_eq!(error_of(c, "SELECT * FROM v").await?.0, "42501", "{engine}");
    }
    // A cursor and COPY read too.
    assert_eq!(
        error_of(&alice, "COPY (SELECT * FROM v) TO STDOUT")
            .await?
            .0,
        "42501"
    );
    // ON ALL TABLES IN SCHEMA, and CREATE for DDL.
    eddy.batch_execute("GRANT SELECT ON ALL TABLES IN SCHEMA public TO alice")
        .await?;
    assert_eq!(
        one(&alice, "SELECT has_table_privilege('orders', 'SELECT')").await?,
        "t"
    );
    eddy.batch_execute("GRANT CREATE ON SCHEMA public TO alice")
        .await?;
    alice
        .batch_execute(&create_revenue_view("alices", "orders", 2))
        .await?;
    assert_eq!(
        one(
            &eddy,
            "SELECT pg_get_userbyid(relowner) FROM pg_class WHERE relname = 'alices'"
        )
        .await?,
        "alice"
    );
    // bob may not read alice's view until she grants it.
    let bob = connect_as(node, "bob", "bob-pw").await?;
    assert_eq!(error_of(&bob, "SELECT * FROM alices").await?.0, "42501");
    alice.batch_execute("GRANT SELECT ON alices TO bob").await?;
    eventually(Duration::from_secs(30), async || {
        ensure!(
            one(&bob, "SELECT count(*) FROM alices")
                .await?
                .parse::<i64>()?
                >= 0
        );
        Ok(())
    })
    .await?;
    assert_eq!(
        error_of(&bob, "GRANT SELECT ON alices TO bob").await?.0,
        "42501",
        "only the owner grants"
    );

    // A role changes its own password; others' only a superuser does.
    alice
        .batch_execute("ALTER ROLE alice PASSWORD 'alice-pw-2'")
        .await?;
    assert_eq!(refused(node, "alice", "alice-pw-1").await?, "28P01");
    connect_as(node, "alice", "alice-pw-2").await?;
    assert_eq!(
        error_of(&alice, "ALTER ROLE bob PASSWORD 'x'").await?.0,
        "42501"
    );
    // psql's \password computes the verifier itself and sends only that.
    password_with_psql(node.pg_port(), "alice", "alice-pw-2", "alice-pw-3")?;
    assert_eq!(refused(node, "alice", "alice-pw-2").await?, "28P01");
    connect_as(node, "alice", "alice-pw-3").await?;
    let log = std::fs::read_to_string(node.stderr_path())?;
    ensure!(
        !log.contains("alice-pw-3"),
        "the new password is never logged"
    );
    eddy.batch_execute("ALTER ROLE bob NOLOGIN").await?;
    assert_eq!(
        refused(node, "bob", "bob-pw").await?,
        "28000",
        "a role without LOGIN is refused"
    );

    // A role that owns something cannot be dropped; once it owns nothing, it can.
    assert_eq!(error_of(&eddy, "DROP ROLE alice").await?.0, "2BP01");
    eddy.batch_execute("DROP MATERIALIZED VIEW alices; DROP ROLE alice, bob")
        .await?;
    assert_eq!(refused(node, "alice", "alice-pw-2").await?, "28P01");
    assert_eq!(error_of(&eddy, "DROP ROLE alice").await?.0, "42704");
    eddy.batch_execute("DROP ROLE IF EXISTS alice").await?;
    Ok(())
}

/// A test CA and what it signs, as PEM files in `dir`.
struct Ca {
    dir: tempfile::TempDir,
    params: rcgen::CertificateParams,
    key: rcgen::KeyPair,
}

impl Ca {
    fn new() -> Result<Ca> {
        let dir = tempfile::tempdir()?;
        let key = rcgen::KeyPair::generate()?;
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new())?;
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Eddy test CA");
        let cert = params.self_signed(&key)?;
        std::fs::write(dir.path().join("ca.pem"), cert.pem())?;
        Ok(Ca { dir, params, key })
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A certificate for `names` (DNS names or IPs) and its key, as
    /// `<stem>.pem` and `<stem>.key` (mode 0600, as libpq wants keys).
    fn issue(&self, stem: &str, names: &[&str], common_name: &str) -> Result<(PathBuf, PathBuf)> {
        let key = rcgen::KeyPair::generate()?;
        let mut params =
            rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())?;
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, common_name);
        let issuer = rcgen::Issuer::from_params(&self.params, &self.key);
        let cert = params.signed_by(&key, &issuer)?;
        let (cert_path, key_path) = (
            self.path(&format!("{stem}.pem")),
            self.path(&format!("{stem}.key")),
        );
        std::fs::write(&cert_path, cert.pem())?;
        std::fs::write(&key_path, key.serialize_pem())?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o600))?;
        Ok((cert_path, key_path))
    }
}

fn ssl(mode: &str, root: &Path) -> String {
    format!("sslmode={mode} sslrootcert={}", root.display())
}

/// tokio-postgres over rustls, verifying the server against `root`.
async fn connect_tls(node: &Node, host: &str, root: &Path) -> Result<Client> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::pem::PemObject::pem_file_iter(root)? {
        roots.add(cert?)?;
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tls = tokio_postgres_rustls::MakeRustlsConnect::new(config);
    let conn = format!(
        "host={host} port={} user=eddy password={} dbname=eddy sslmode=require connect_timeout=10",
        node.pg_port(),
        node.password()
    );
    let (client, connection) = tokio_postgres::connect(&conn, tls).await?;
    tokio::spawn(connection);
    Ok(client)
}

#[tokio::test]
async fn tls_with_psql_and_drivers() -> Result<()> {
    let ca = Ca::new()?;
    let (cert, key) = ca.issue("server", &["localhost", "127.0.0.1"], "localhost")?;
    let root = ca.path("ca.pem");
    let cluster = TestCluster::new()
        .env("EDDY_TLS_CERT", cert.to_string_lossy())
        .env("EDDY_TLS_KEY", key.to_string_lossy())
        .start()
        .await?;
    let node = cluster.node();
    let pw = [("PGPASSWORD", node.password())];

    // psql: require, verify-ca and verify-full against the test CA.
    for mode in ["require", "verify-ca", "verify-full"] {
        let info = psql(
            node.pg_port(),
            "eddy",
            &pw,
            &format!("{} host=localhost", ssl(mode, &root)),
            "\\conninfo",
        )?;
        ensure!(
            info.status.success(),
            "psql sslmode={mode}: {}",
            stderr(&info)
        );
        ensure!(
            stdout(&info).contains("SSL connection (protocol: TLSv1.3"),
            "psql sslmode={mode} is encrypted: {}",
            stdout(&info)
        );
    }
    // SCRAM bound to the TLS session (SCRAM-SHA-256-PLUS): no one in between.
    let bound = psql(
        node.pg_port(),
        "eddy",
        &pw,
        &format!(
            "{} host=localhost channel_binding=require",
            ssl("verify-full", &root)
        ),
        "SELECT 5",
    )?;
    ensure!(
        bound.status.success(),
        "channel_binding=require: {}",
        stderr(&bound)
    );
    assert_eq!(stdout(&bound), "5");
    // A server another CA signed is refused.
    let other = Ca::new()?;
    let out = psql(
        node.pg_port(),
        "eddy",
        &pw,
        &ssl("verify-full", &other.path("ca.pem")),
        "SELECT 1",
    )?;
    ensure!(
        !out.status.success(),
        "a server signed by another CA is refused"
    );

    // tokio-postgres with rustls, verifying the server.
    let client = connect_tls(node, "localhost", &root).await?;
    assert_eq!(one(&client, "SELECT 1 + 1").await?, "2");
    // psycopg (libpq) and pgjdbc, from the client matrix.
    let clients = std::env::var_os("EDDY_CLIENTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(&std::env::var("HOME").unwrap_or_default()).join(".cache/eddy-clients")
        });
    let python = clients.join("venv/bin/python");
    let out = Command::new(&python)
        .args([
            "-c",
            "import sys, psycopg; c = psycopg.connect(sys.argv[1]); \
             print(c.execute('SELECT 40 + 2').fetchone()[0], c.pgconn.ssl_in_use)",
            &format!(
                "host=localhost port={} user=eddy password={} dbname=eddy sslmode=verify-full sslrootcert={}",
                node.pg_port(),
                node.password(),
                root.display()
            ),
        ])
        .output()
        .with_context(|| format!("running {} (scripts/setup.sh --clients)", python.display()))?;
    ensure!(out.status.success(), "psycopg: {}", stderr(&out));
    assert_eq!(stdout(&out), "42 True");
    let jdbc = Path::new(env!("CARGO_MANIFEST_DIR")).join("clients/JdbcTls.java");
    let out = Command::new("java")
        .args(["-cp", "/usr/share/java/postgresql.jar"])
        .arg(&jdbc)
        .arg(format!(
            "jdbc:postgresql://localhost:{}/eddy?sslmode=verify-full&sslrootcert={}",
            node.pg_port(),
            root.display()
        ))
        .env("PGPASSWORD", node.password())
        .output()?;
    ensure!(
        out.status.success(),
        "pgjdbc: {} {}",
        stdout(&out),
        stderr(&out)
    );
    assert_eq!(stdout(&out), "42 ssl");

    // --tls-required: a client without TLS is refused with 28000.
    let strict = cluster
        .node_builder("strict")
        .env("EDDY_TLS_CERT", cert.to_string_lossy())
        .env("EDDY_TLS_KEY", key.to_string_lossy())
        .env("EDDY_TLS_REQUIRED", "true")
        .start()
        .await?;
    let plain = connect_as(&strict, "eddy", strict.password()).await;
    assert_eq!(
        code(&plain.err().context("a plain client connected")?),
        "28000"
    );
    let out = psql(
        strict.pg_port(),
        "eddy",
        &[("PGPASSWORD", strict.password())],
        "sslmode=disable",
        "SELECT 1",
    )?;
    ensure!(
        stderr(&out).contains("this server accepts only TLS connections"),
        "psql is told why: {}",
        stderr(&out)
    );
    assert_eq!(
        one(&connect_tls(&strict, "localhost", &root).await?, "SELECT 1").await?,
        "1"
    );

    // --tls-client-ca: a TLS client must present a certificate the CA signed.
    let (client_cert, client_key) = ca.issue("client", &["eddy"], "eddy")?;
    let mutual = cluster
        .node_builder("mutual")
        .env("EDDY_TLS_CERT", cert.to_string_lossy())
        .env("EDDY_TLS_KEY", key.to_string_lossy())
        .env("EDDY_TLS_CLIENT_CA", root.to_string_lossy())
        .env("EDDY_TLS_REQUIRED", "true")
        .start()
        .await?;
    let mpw = [("PGPASSWORD", mutual.password())];
    let without = psql(
        mutual.pg_port(),
        "eddy",
        &mpw,
        &format!("{} host=localhost", ssl("verify-full", &root)),
        "SELECT 1",
    )?;
    ensure!(
        !without.status.success(),
        "no client certificate, no session"
    );
    let with = psql(
        mutual.pg_port(),
        "eddy",
        &mpw,
        &format!(
            "{} host=localhost sslcert={} sslkey={}",
            ssl("verify-full", &root),
            client_cert.display(),
            client_key.display()
        ),
        "SELECT 7",
    )?;
    ensure!(
        with.status.success(),
        "with a client certificate: {}",
        stderr(&with)
    );
    assert_eq!(stdout(&with), "7");
    Ok(())
}

/// Accepts any server certificate: a stranger that only wants to talk.
#[derive(Debug)]
struct AnyServer;

impl rustls::client::danger::ServerCertVerifier for AnyServer {
    fn verify_server_cert(
        &self,
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &[rustls::pki_types::CertificateDer<'_>],
        _: &rustls::pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
    }

    fn verify_tls13_signature(
        &self,
        _: &[u8],
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        rustls::crypto::ring::default_provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// A TLS session with the internal service at `addr`, presenting `identity`
/// (or no certificate), then one HTTP/2 preface: whether the node answered.
async fn stranger_talks(addr: &str, identity: Option<(&Path, &Path)>) -> Result<bool> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .dangerous()
    .with_custom_certificate_verifier(Arc::new(AnyServer));
    let mut config = match identity {
        Some((cert, key)) => {
            let certs = rustls::pki_types::pem::PemObject::pem_file_iter(cert)?
                .collect::<Result<Vec<_>, _>>()?;
            let key = rustls::pki_types::pem::PemObject::from_pem_file(key)?;
            builder.with_client_auth_cert(certs, key)?
        }
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let name = rustls::pki_types::ServerName::try_from("eddy-cluster")?;
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let Ok(mut tls) = connector.connect(name, tcp).await else {
        return Ok(false);
    };
    // TLS 1.3: a refused client certificate shows on the first read.
    if tls
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0")
        .await
        .is_err()
    {
        return Ok(false);
    }
    let mut buf = [0u8; 9];
    let read = tokio::time::timeout(Duration::from_secs(10), tls.read(&mut buf)).await;
    Ok(matches!(read, Ok(Ok(n)) if n > 0))
}

#[tokio::test]
async fn the_cluster_key_keeps_strangers_out_and_grants_reach_every_node() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let key_file = dir.path().join("cluster.key");
    let out = Command::new(eddy_tests::eddy_bin())
        .arg("cluster-key")
        .output()?;
    ensure!(out.status.success(), "eddy cluster-key: {}", stderr(&out));
    std::fs::write(&key_file, &out.stdout)?;
    let cluster = TestCluster::new()
        .nodes(3)
        .standbys(1)
        .env("EDDY_CLUSTER_KEY_FILE", key_file.to_string_lossy())
        .start()
        .await?;
    let topic = cluster.create_topic("orders", 2).await?;
    let eddy = cluster.client().await?;
    eddy.batch_execute(&create_orders_source("orders", &topic))
        .await?;
    eddy.batch_execute(&create_revenue_view("v", "orders", 6))
        .await?;
    let producer = cluster.producer()?;
    let orders = eddy_tests::fixtures::orders(7, 1, 200, 10);
    producer
        .produce_batch(&topic, orders.iter().map(|o| o.record()))
        .await?;

    // A grant made on n1 holds on n3, whose reads cross nodes over mutual TLS.
    eddy.batch_execute("CREATE ROLE carol LOGIN PASSWORD 'carol-pw'")
        .await?;
    let n3 = &cluster.nodes[2];
    let carol = eventually(Duration::from_secs(30), async || {
        Ok(connect_as(n3, "carol", "carol-pw").await?)
    })
    .await?;
    assert_eq!(error_of(&carol, "SELECT * FROM v").await?.0, "42501");
    eddy.batch_execute("GRANT SELECT ON v TO carol").await?;
    let expected = eddy_tests::fixtures::expected_revenue(&orders);
    eventually(Duration::from_secs(60), async || {
        let got = eddy_tests::fixtures::fetch_revenue(&carol, "v").await?;
        ensure!(
            got.len() == expected.len(),
            "{} of {} groups",
            got.len(),
            expected.len()
        );
        Ok(())
    })
    .await?;
    eddy.batch_execute("REVOKE SELECT ON v FROM carol").await?;
    eventually(Duration::from_secs(30), async || {
        ensure!(error_of(&carol, "SELECT * FROM v").await?.0 == "42501");
        Ok(())
    })
    .await?;

    // The internal service: no plain client, no TLS client without the
    // cluster's certificate, even one a CA of its own signed.
    let internal = one(
        &eddy,
        "SELECT internal_address FROM eddy_catalog.nodes WHERE node_id = 'n2'",
    )
    .await?;
    let plain = tonic::transport::Endpoint::from_shared(format!("http://{internal}"))?
        .connect()
        .await;
    if let Ok(channel) = plain {
        let mut client = arrow_flight::flight_service_client::FlightServiceClient::new(channel);
        let got = client
            .do_get(arrow_flight::Ticket::new(b"{\"Errors\":null}".to_vec()))
            .await;
        ensure!(got.is_err(), "a plain gRPC call was answered");
    }
    ensure!(
        !stranger_talks(&internal, None).await?,
        "a TLS client without a certificate was answered"
    );
    let ca = Ca::new()?;
    let (cert, key) = ca.issue("stranger", &["eddy-cluster"], "eddy-cluster")?;
    ensure!(
        !stranger_talks(&internal, Some((&cert, &key))).await?,
        "a TLS client with a stranger's certificate was answered"
    );
    let log = std::fs::read_to_string(cluster.nodes[1].stderr_path())?;
    let key_text = std::fs::read_to_string(&key_file)?;
    ensure!(!log.contains(key_text.trim()), "the key is never logged");

    // A node with another key does not become a member.
    let other_key = dir.path().join("other.key");
    let out = Command::new(eddy_tests::eddy_bin())
        .arg("cluster-key")
        .output()?;
    std::fs::write(&other_key, &out.stdout)?;
    let mut stranger = cluster
        .node_builder("stranger")
        .env("EDDY_CLUSTER_KEY_FILE", other_key.to_string_lossy())
        .start()
        .await?;
    let n1_log = cluster.nodes[0].stderr_path();
    eventually(Duration::from_secs(30), async || {
        let log = std::fs::read_to_string(&n1_log)?;
        ensure!(log.contains("ignoring heartbeats not signed with this cluster's key"));
        Ok(())
    })
    .await?;
    let members = query_rows(&eddy, "SELECT node_id FROM eddy_catalog.nodes ORDER BY 1").await?;
    assert_eq!(members, [["n1"], ["n2"], ["n3"]]);
    stranger.kill9();

    // The cluster still answers exactly.
    eventually(Duration::from_secs(60), async || {
        let got = eddy_tests::fixtures::fetch_revenue(&eddy, "v").await?;
        eddy_tests::fixtures::compare_revenue(&got, &expected)
    })
    .await?;
    Ok(())
}

#[tokio::test]
async fn a_new_cluster_needs_the_superuser_password_unless_it_trusts() -> Result<()> {
    let cluster = TestCluster::new().nodes(0).start().await?;
    // SCRAM (the default) without EDDY_PASSWORD: the node says how to set it.
    let started = cluster.node_builder("n1").password("").start().await;
    let why = format!("{:#}", started.err().context("started without a password")?);
    ensure!(
        why.contains("EDDY_PASSWORD") && why.contains("--auth trust"),
        "the node says how to set the password: {why}"
    );
    // trust: the role must exist, no password asked.
    let mut node = cluster
        .node_builder("n1")
        .password("")
        .env("EDDY_AUTH", "trust")
        .start()
        .await?;
    assert_eq!(
        one(&connect_as(&node, "eddy", "").await?, "SELECT current_user").await?,
        "eddy"
    );
    let err = connect_as(&node, "nobody", "")
        .await
        .err()
        .context("nobody connected")?;
    assert_eq!(code(&err), "28000");
    let message = err.as_db_error().map(|d| d.message().to_owned());
    assert_eq!(message.as_deref(), Some("role \"nobody\" does not exist"));
    node.stop().await?;
    // Back to SCRAM with a password: eddy gets it, and md5 answers with SCRAM.
    let pw = eddy_tests::test_password();
    for auth in ["scram", "md5"] {
        let mut node = cluster
            .node_builder("n1")
            .password(&pw)
            .env("EDDY_AUTH", auth)
            .start()
            .await?;
        connect_as(&node, "eddy", &pw).await?;
        assert_eq!(refused(&node, "eddy", "wrong").await?, "28P01", "{auth}");
        node.stop().await?;
    }
    Ok(())
}
