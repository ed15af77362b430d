//! The wire layer alone: a real Postgres client (tokio-postgres) against
//! `pgwire::serve` over a fake backend that answers a handful of fixed
//! statements. End-to-end tests with the real engine live elsewhere.

use async_trait::async_trait;
use chrono::NaiveDateTime;
use common::{Column, SqlState, SqlType, Value};
use eddy_server::access::login::{Login, Method, Roles};
use eddy_server::access::RoleDef;
use eddy_server::session::vars::{SessionVars, VarDefaults};
use eddy_server::session::{Backend, Description, Outcome, WireError};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{oneshot, Notify};
use tokio::task::JoinHandle;
use tokio_postgres::types::Type;
use tokio_postgres::{Client, NoTls, SimpleQueryMessage};

/// Answers:
/// - `SELECT 1`: one row, one bigint column.
/// - `SELECT rows`: five rows `0..5`.
/// - `SELECT echo $1`: the bigint parameter, plus one column of every other kind.
/// - `SET name = value` / `SHOW name` / `RESET name` / `SHOW ALL`, on the session vars.
/// - `BEGIN` / `START TRANSACTION` / `COMMIT`: commands.
/// - `FAIL`: an error with a detail, a hint and a position.
/// - `WAIT`: never finishes; tells `waiting` when it starts.
struct FakeBackend {
    waiting: Arc<Notify>,
}

const TS: &str = "2026-11-05T07:00:00.25";

fn echo_columns() -> Vec<Column> {
    vec![
        Column::new("n", SqlType::BigInt),
        Column::new("label", SqlType::Text),
        Column::new("amount", SqlType::Double),
        Column::new("ok", SqlType::Boolean),
        Column::new("ts", SqlType::Timestamp),
        Column::new("small", SqlType::Integer),
    ]
}

fn statement(vars: &mut SessionVars, sql: &str, params: &[Value]) -> Result<Outcome, WireError> {
    let sql = sql.trim();
    let upper = sql.to_ascii_uppercase();
    let rows = |name: &str, ty: SqlType, rows: Vec<Value>| Outcome::Rows {
        columns: vec![Column::new(name, ty)],
        rows: rows.into_iter().map(|v| vec![v]).collect(),
    };
    if upper == "SELECT 1" {
        Ok(rows("?column?", SqlType::BigInt, vec![Value::Int(1)]))
    } else if upper == "SELECT ROWS" {
        Ok(rows("i", SqlType::BigInt, (0..5).map(Value::Int).collect()))
    } else if upper.starts_with("SELECT ECHO") {
        let ts = common::value::parse_timestamp(TS).expect("valid timestamp");
        Ok(Outcome::Rows {
            columns: echo_columns(),
            rows: vec![vec![
                params.first().cloned().unwrap_or(Value::Null),
                Value::Text("héllo".into()),
                Value::Float(2.5),
                Value::Bool(true),
                Value::Timestamp(ts),
                // A value of another kind than its column: the wire layer casts.
                Value::Int(7),
            ]],
        })
    } else if upper == "SHOW ALL" {
        let all = vars.show_all();
        Ok(Outcome::Rows {
            columns: vec![
                Column::new("name", SqlType::Text),
                Column::new("setting", SqlType::Text),
            ],
            rows: all
                .into_iter()
                .map(|r| vec![Value::Text(r.name.into()), Value::Text(r.setting)])
                .collect(),
        })
    } else if let Some(name) = upper.strip_prefix("SHOW ") {
        let name = name.trim();
        let value = vars.get(name)?;
        let column = SessionVars::canonical_name(name).unwrap_or(name);
        Ok(rows(column, SqlType::Text, vec![Value::Text(value)]))
    } else if upper.starts_with("SET ") {
        let (name, value) = sql[4..].split_once('=').expect("SET name = value");
        vars.set(name.trim(), value.trim().trim_matches('\''))?;
        Ok(Outcome::Command {
            tag: "SET".into(),
            rows: None,
        })
    } else if let Some(name) = upper.strip_prefix("RESET ") {
        vars.reset(name.trim())?;
        Ok(Outcome::Command {
            tag: "RESET".into(),
            rows: None,
        })
    } else if upper == "BEGIN" || upper == "START TRANSACTION" || upper == "COMMIT" {
        Ok(Outcome::Command {
            tag: upper.replace("START TRANSACTION", "BEGIN"),
            rows: None,
        })
    } else if upper == "FAIL" {
        let mut e = WireError::new(
            SqlState::ReplicaUnavailable,
            "no replica of revenue/3 is within max_staleness",
        )
        .with_detail("node 2: 1200ms behind")
        .with_hint("SET max_staleness = '2s'");
        e.position = Some(1);
        Err(e)
    } else {
        Err(WireError::new(
            SqlState::SyntaxError,
            format!("unknown statement {sql:?}"),
        ))
    }
}

fn describe_statement(sql: &str, declared: &[Option<SqlType>]) -> Result<Description, WireError> {
    let upper = sql.trim().to_ascii_uppercase();
    if upper.starts_with("SELECT ECHO") {
        Ok(Description {
            params: vec![declared
                .first()
                .copied()
                .flatten()
                .unwrap_or(SqlType::BigInt)],
            columns: Some(echo_columns()),
        })
    } else if upper == "SELECT ROWS" {
        Ok(Description {
            params: vec![],
            columns: Some(vec![Column::new("i", SqlType::BigInt)]),
        })
    } else if upper.starts_with("SET") || upper == "BEGIN" || upper == "COMMIT" {
        Ok(Description {
            params: vec![],
            columns: None,
        })
    } else {
        // Run it to learn its shape; enough for a fake.
        let mut vars = SessionVars::new(VarDefaults::default());
        match statement(&mut vars, sql, &[])? {
            Outcome::Rows { columns, .. } | Outcome::Fetch { columns, .. } => Ok(Description {
                params: vec![],
                columns: Some(columns),
            }),
            _ => Ok(Description {
                params: vec![],
                columns: None,
            }),
        }
    }
}

#[async_trait]
impl Backend for FakeBackend {
    async fn simple_query(
        &self,
        vars: &mut SessionVars,
        sql: &str,
    ) -> Vec<Result<Outcome, WireError>> {
        if sql == "WAIT" {
            self.waiting.notify_one();
            std::future::pending::<()>().await;
        }
        let mut out = Vec::new();
        for stmt in sql.split(';').filter(|s| !s.trim().is_empty()) {
            let result = statement(vars, stmt, &[]);
            let failed = result.is_err();
            out.push(result);
            if failed {
                break;
            }
        }
        out
    }

    async fn describe(
        &self,
        _vars: &SessionVars,
        sql: &str,
        param_types: &[Option<SqlType>],
    ) -> Result<Description, WireError> {
        describe_statement(sql, param_types)
    }

    async fn execute(
        &self,
        vars: &mut SessionVars,
        sql: &str,
        params: &[Value],
    ) -> Result<Outcome, WireError> {
        statement(vars, sql, params)
    }
}

struct Server {
    port: u16,
    waiting: Arc<Notify>,
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

/// Every user is a role that may log in (the wire layer's tests need no
/// catalog).
struct AnyRole;

impl Roles for AnyRole {
    fn role(&self, name: &str) -> Option<RoleDef> {
        Some(RoleDef {
            name: name.to_owned(),
            superuser: true,
            login: true,
            verifier: None,
        })
    }
}

async fn start() -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("local addr").port();
    let (stop, stopped) = oneshot::channel::<()>();
    let defaults = VarDefaults {
        max_staleness: Duration::from_millis(250),
    };
    let waiting = Arc::new(Notify::new());
    let backend = Arc::new(FakeBackend {
        waiting: waiting.clone(),
    });
    let task = tokio::spawn(eddy_server::pgwire::serve(
        listener,
        backend,
        defaults,
        eddy_server::pgwire::Limits::default(),
        eddy_server::pgwire::Security {
            login: Arc::new(Login::new(Method::Trust, false, Arc::new(AnyRole), None)),
            tls: None,
        },
        async {
            let _ = stopped.await;
        },
    ));
    Server {
        port,
        waiting,
        stop,
        task,
    }
}

async fn connect(port: u16, options: &str) -> (Client, JoinHandle<Option<String>>) {
    let config = format!("host=127.0.0.1 port={port} user=tester dbname=eddy application_name=smoke options='{options}'");
    let (client, mut connection) = tokio_postgres::connect(&config, NoTls)
        .await
        .expect("connect");
    // Drive the connection ourselves so the last application_name the server
    // announced can be read once the client hangs up.
    let conn = tokio::spawn(async move {
        // Ends when the client hangs up, or with an error when the server does.
        while let Some(Ok(_)) = futures::future::poll_fn(|cx| connection.poll_message(cx)).await {}
        connection.parameter("application_name").map(str::to_owned)
    });
    (client, conn)
}

fn simple_rows(messages: &[SimpleQueryMessage]) -> Vec<Vec<Option<String>>> {
    messages
        .iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(row) => Some(
                (0..row.len())
                    .map(|i| row.get(i).map(str::to_owned))
                    .collect(),
            ),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn wire_layer_smoke() {
    let server = start().await;
    let (client, conn) = connect(server.port, "-c max_staleness=2s").await;

    // Startup options reached the session.
    let shown = client
        .simple_query("SHOW max_staleness")
        .await
        .expect("show");
    assert_eq!(simple_rows(&shown), vec![vec![Some("2s".to_owned())]]);

    // Simple query: rows, command tags, several statements, empty query.
    let messages = client
        .simple_query("SELECT 1; SET max_staleness = '500ms'; SHOW max_staleness")
        .await
        .expect("simple");
    assert_eq!(
        simple_rows(&messages),
        vec![vec![Some("1".to_owned())], vec![Some("500ms".to_owned())]]
    );
    assert!(messages
        .iter()
        .any(|m| matches!(m, SimpleQueryMessage::CommandComplete(1))));
    assert!(client
        .simple_query("")
        .await
        .expect("empty query")
        .iter()
        .all(|m| !matches!(m, SimpleQueryMessage::Row(_))));
    client
        .simple_query("RESET max_staleness")
        .await
        .expect("reset");
    let shown = client
        .simple_query("SHOW max_staleness")
        .await
        .expect("show");
    assert_eq!(simple_rows(&shown), vec![vec![Some("250ms".to_owned())]]);

    // A prepared statement with an int8 parameter, results in binary.
    let stmt = client.prepare("SELECT echo $1").await.expect("prepare");
    assert_eq!(stmt.params(), &[Type::INT8]);
    let types: Vec<_> = stmt.columns().iter().map(|c| c.type_().clone()).collect();
    assert_eq!(
        types,
        [
            Type::INT8,
            Type::TEXT,
            Type::FLOAT8,
            Type::BOOL,
            Type::TIMESTAMP,
            Type::INT4
        ]
    );
    for n in [42i64, -1, i64::MAX] {
        let row = client.query_one(&stmt, &[&n]).await.expect("query");
        assert_eq!(row.get::<_, i64>("n"), n);
        assert_eq!(row.get::<_, String>("label"), "héllo");
        assert_eq!(row.get::<_, f64>("amount"), 2.5);
        assert!(row.get::<_, bool>("ok"));
        let expected = NaiveDateTime::parse_from_str(TS, "%Y-%m-%dT%H:%M:%S%.f").unwrap();
        assert_eq!(row.get::<_, NaiveDateTime>("ts"), expected);
        assert_eq!(row.get::<_, i32>("small"), 7);
    }
    let row = client
        .query_one(&stmt, &[&None::<i64>])
        .await
        .expect("null param");
    assert_eq!(row.get::<_, Option<i64>>("n"), None);
    // A client-declared parameter type is honoured.
    let typed = client
        .prepare_typed("SELECT echo $1", &[Type::INT4])
        .await
        .expect("prepare typed");
    assert_eq!(typed.params(), &[Type::INT4]);
    assert_eq!(
        client
            .query_one(&typed, &[&5i32])
            .await
            .expect("typed")
            .get::<_, i64>("n"),
        5
    );

    // Errors carry their SQLSTATE, detail, hint and position, in both protocols,
    // and leave the connection usable.
    let err = client.simple_query("FAIL").await.expect_err("simple error");
    let db = err.as_db_error().expect("a server error");
    assert_eq!(db.code().code(), "EY001");
    assert_eq!(db.hint(), Some("SET max_staleness = '2s'"));
    assert_eq!(db.detail(), Some("node 2: 1200ms behind"));
    assert!(matches!(
        db.position(),
        Some(tokio_postgres::error::ErrorPosition::Original(1))
    ));
    let err = client.query("FAIL", &[]).await.expect_err("extended error");
    assert_eq!(err.code().map(|c| c.code()), Some("EY001"));
    let err = client
        .simple_query("SET max_staleness = 'soon'")
        .await
        .expect_err("bad value");
    assert_eq!(err.code().map(|c| c.code()), Some("22023"));
    let err = client
        .simple_query("SHOW nonsense")
        .await
        .expect_err("unknown variable");
    assert_eq!(err.code().map(|c| c.code()), Some("42704"));
    assert_eq!(
        client
            .query_one(&stmt, &[&1i64])
            .await
            .expect("still usable")
            .get::<_, i64>(0),
        1
    );

    // Portals with a row limit (PortalSuspended), inside BEGIN/COMMIT.
    let mut client = client;
    let tx = client.transaction().await.expect("begin");
    let rows_stmt = tx.prepare("SELECT rows").await.expect("prepare rows");
    let portal = tx.bind(&rows_stmt, &[]).await.expect("bind");
    let mut seen = Vec::new();
    loop {
        let batch = tx.query_portal(&portal, 2).await.expect("fetch");
        assert!(batch.len() <= 2);
        seen.extend(batch.iter().map(|r| r.get::<_, i64>(0)));
        if batch.len() < 2 {
            break;
        }
    }
    assert_eq!(seen, [0, 1, 2, 3, 4]);
    tx.commit().await.expect("commit");

    // A CancelRequest interrupts a running statement.
    let cancel = client.cancel_token();
    let running = tokio::spawn(async move {
        let result = client.simple_query("WAIT").await;
        (client, result)
    });
    tokio::time::timeout(Duration::from_secs(10), server.waiting.notified())
        .await
        .expect("WAIT started");
    cancel.cancel_query(NoTls).await.expect("cancel request");
    let (client, result) = tokio::time::timeout(Duration::from_secs(10), running)
        .await
        .expect("WAIT ends")
        .expect("task");
    assert_eq!(
        result.expect_err("canceled").code().map(|c| c.code()),
        Some("57014")
    );

    // SET of a reported variable is announced with ParameterStatus.
    client
        .simple_query("SET application_name = 'renamed'")
        .await
        .expect("set application_name");
    drop(client);
    let announced = tokio::time::timeout(Duration::from_secs(10), conn)
        .await
        .expect("connection ends")
        .expect("task");
    assert_eq!(announced.as_deref(), Some("renamed"));

    // Shutdown closes open connections and returns.
    let (_open, open_conn) = connect(server.port, "").await;
    server.stop.send(()).expect("server running");
    tokio::time::timeout(Duration::from_secs(10), server.task)
        .await
        .expect("serve returns")
        .expect("serve task");
    tokio::time::timeout(Duration::from_secs(10), open_conn)
        .await
        .expect("open connection closed")
        .expect("task");
}

#[tokio::test]
async fn bad_startup_options_are_fatal() {
    let server = start().await;
    let config = format!(
        "host=127.0.0.1 port={} user=tester options='-c max_staleness=soon'",
        server.port
    );
    let err = tokio_postgres::connect(&config, NoTls)
        .await
        .err()
        .expect("connection refused");
    let db = err.as_db_error().expect("a server error");
    assert_eq!(db.code().code(), "22023");
    assert!(db
        .hint()
        .unwrap_or_default()
        .contains("'500ms', '2s', '1min', or 0"));
    let _ = server.stop.send(());
}
