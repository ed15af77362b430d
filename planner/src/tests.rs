//! Binding and execution tests against a small in-memory catalog.

use crate::expr::{BinaryOp, Expr};
use crate::plan::*;
use crate::*;
use common::{Column, SqlType, UserError, Value};

const DEFAULTS: Defaults = Defaults {
    partitions: 4,
    standbys: 0,
};

struct TestCatalog;

fn orders() -> SourceDef {
    SourceDef {
        name: "orders".into(),
        columns: vec![
            Column::new("order_id", SqlType::BigInt),
            Column::new("customer", SqlType::Text),
            Column::new("amount", SqlType::Double),
            Column::new("status", SqlType::Text),
            Column::new("ts", SqlType::Timestamp),
        ],
        primary_key: None,
        topic: "orders".into(),
        format: Format::Json,
        start: StartFrom::Earliest,
        owner: None,
    }
}

fn customers() -> SourceDef {
    SourceDef {
        name: "customers".into(),
        columns: vec![
            Column::new("id", SqlType::Text),
            Column::new("name", SqlType::Text),
            Column::new("region", SqlType::Text),
        ],
        primary_key: Some(0),
        topic: "customers".into(),
        format: Format::Json,
        start: StartFrom::Earliest,
        owner: None,
    }
}

impl Catalog for TestCatalog {
    fn relation(&self, name: &str) -> Option<RelationInfo> {
        let source = |s: SourceDef| RelationInfo {
            kind: RelationKind::Source,
            key_columns: s.primary_key.into_iter().collect(),
            columns: s.columns,
        };
        Some(match name {
            "orders" => source(orders()),
            "customers" => source(customers()),
            "revenue" => RelationInfo {
                kind: RelationKind::View,
                columns: vec![
                    Column::new("customer", SqlType::Text),
                    Column::new("orders", SqlType::BigInt),
                    Column::new("total", SqlType::Double),
                ],
                key_columns: vec![0],
            },
            "by_id" => RelationInfo {
                kind: RelationKind::View,
                columns: vec![
                    Column::new("id", SqlType::BigInt),
                    Column::new("n", SqlType::BigInt),
                ],
                key_columns: vec![0],
            },
            "eddy_catalog.nodes" => RelationInfo {
                kind: RelationKind::System,
                columns: vec![
                    Column::new("node", SqlType::Text),
                    Column::new("address", SqlType::Text),
                ],
                key_columns: vec![],
            },
            _ => return None,
        })
    }

    fn source(&self, name: &str) -> Option<SourceDef> {
        match name {
            "orders" => Some(orders()),
            "customers" => Some(customers()),
            _ => None,
        }
    }
}

fn bind(sql: &str) -> Result<Statement, PlanError> {
    let stmts = parse(sql)?;
    assert_eq!(stmts.len(), 1, "{sql}");
    plan(&stmts[0], sql, &TestCatalog, &DEFAULTS)
}

fn ok(sql: &str) -> Statement {
    bind(sql).unwrap_or_else(|e| panic!("{sql}: {e} ({})", e.sqlstate()))
}

fn err(sql: &str) -> PlanError {
    match bind(sql) {
        Ok(s) => panic!("{sql}: expected an error, got {s:?}"),
        Err(e) => e,
    }
}

fn code(sql: &str) -> &'static str {
    err(sql).sqlstate().code()
}

fn read(sql: &str) -> ReadPlan {
    match ok(sql) {
        Statement::Select(p) => p,
        other => panic!("{sql}: not a select: {other:?}"),
    }
}

fn view(sql: &str) -> ViewDef {
    match ok(sql) {
        Statement::CreateView(v) => v,
        other => panic!("{sql}: not a view: {other:?}"),
    }
}

fn text(s: &str) -> Value {
    Value::Text(s.into())
}

#[test]
fn create_source_with_options_types_and_defaults() {
    let Statement::CreateSource(s) = ok("CREATE SOURCE orders (
            order_id BIGINT, customer TEXT, amount DOUBLE PRECISION, status VARCHAR(10), ts TIMESTAMP,
            d DATE, tz TIMESTAMP WITH TIME ZONE, n NUMERIC(10, 2), f FLOAT, r REAL, i INT, s SMALLINT, b BOOL
        ) WITH (topic = 'orders-v1', format = 'json', start = 'latest');")
    else {
        panic!()
    };
    assert_eq!(s.name, "orders");
    assert_eq!(s.topic, "orders-v1");
    assert_eq!(s.start, StartFrom::Latest);
    assert_eq!(s.primary_key, None);
    let types: Vec<SqlType> = s.columns.iter().map(|c| c.ty).collect();
    use SqlType::*;
    assert_eq!(
        types,
        vec![
            BigInt,
            Text,
            Double,
            Varchar(Some(10)),
            Timestamp,
            Date,
            TimestampTz,
            Numeric,
            Double,
            Real,
            Integer,
            SmallInt,
            Boolean
        ]
    );

    let Statement::CreateSource(s) =
        ok("create source Customers (ID text primary key, name text) with (format = 'json')")
    else {
        panic!()
    };
    assert_eq!(
        (s.name.as_str(), s.topic.as_str(), s.primary_key, s.start),
        ("customers", "customers", Some(0), StartFrom::Earliest)
    );
    assert_eq!(s.columns[0].name, "id");
    let Statement::CreateSource(s) = ok("CREATE SOURCE c (a TEXT, b INT8, PRIMARY KEY (b))") else {
        panic!()
    };
    assert_eq!(s.primary_key, Some(1));
}

#[test]
fn create_source_errors() {
    assert_eq!(code("CREATE SOURCE s (a JSONB)"), "0A000");
    assert!(err("CREATE SOURCE s (a JSONB)")
        .to_string()
        .contains("JSONB"));
    let e = err("CREATE SOURCE s (a INT) WITH (topik = 'x')");
    assert_eq!(e.sqlstate().code(), "22023");
    assert!(e.detail().unwrap().contains("topic, format, start"));
    assert_eq!(
        code("CREATE SOURCE s (a INT) WITH (format = 'avro')"),
        "22023"
    );
    assert_eq!(
        code("CREATE SOURCE s (a INT) WITH (start = 'yesterday')"),
        "22023"
    );
    assert_eq!(code("CREATE SOURCE s (a INT, a TEXT)"), "42710");
    assert_eq!(
        code("CREATE SOURCE s (a INT PRIMARY KEY, b INT, PRIMARY KEY (b))"),
        "42710"
    );
    assert_eq!(code("CREATE TABLE t (a INT)"), "0A000");
    let e = err("CREATE SOURCE s (a INT,)");
    assert_eq!(e.sqlstate().code(), "42601");
}

#[test]
fn create_materialized_view_aggregate() {
    let sql = "CREATE MATERIALIZED VIEW revenue WITH (partitions = 8, standbys = 1) AS
    SELECT customer, COUNT(*) AS orders, SUM(amount) AS total,
           AVG(amount) AS avg_amount, MIN(amount) AS smallest, MAX(amount) AS largest
    FROM orders WHERE status <> 'cancelled'
    GROUP BY customer;";
    let v = view(sql);
    assert_eq!(
        (v.name.as_str(), v.source.as_str(), v.partitions, v.standbys),
        ("revenue", "orders", 8, 1)
    );
    assert!(v.sql.starts_with("SELECT customer, COUNT(*)"), "{}", v.sql);
    assert!(v.sql.ends_with("GROUP BY customer"), "{}", v.sql);
    let cols: Vec<(&str, SqlType)> = v.columns.iter().map(|c| (c.name.as_str(), c.ty)).collect();
    assert_eq!(
        cols,
        vec![
            ("customer", SqlType::Text),
            ("orders", SqlType::BigInt),
            ("total", SqlType::Double),
            ("avg_amount", SqlType::Double),
            ("smallest", SqlType::Double),
            ("largest", SqlType::Double),
        ]
    );
    assert_eq!(v.key_columns, vec![0]);
    let ViewPlan::Aggregate(a) = &v.plan else {
        panic!()
    };
    assert_eq!(a.group_by, vec![Expr::column(1, SqlType::Text)]);
    assert_eq!(a.aggregates.len(), 5);
    assert_eq!(a.aggregates[0].func, AggFunc::CountStar);
    assert_eq!(a.output[0], Expr::column(0, SqlType::Text));
    assert_eq!(a.output[2], Expr::column(2, SqlType::Double));
    assert!(a.filter.is_some());

    // Defaults, PG output names, GROUP BY ordinal and alias, HAVING.
    let v = view("CREATE MATERIALIZED VIEW v AS SELECT lower(customer) AS c, count(*), sum(order_id), count(amount) AS n FROM orders GROUP BY 1 HAVING count(*) > 1");
    assert_eq!((v.partitions, v.standbys), (4, 0));
    let names: Vec<&str> = v.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, vec!["c", "count", "sum", "n"]);
    // sum(bigint) is numeric, as in Postgres.
    assert_eq!(v.columns[2].ty, SqlType::Numeric);
    assert_eq!(v.key_columns, vec![0]);
    let ViewPlan::Aggregate(a) = &v.plan else {
        panic!()
    };
    assert_eq!(
        a.aggregates.len(),
        3,
        "count(*) in HAVING reuses the select list's call"
    );
    assert!(a.having.is_some());
    let v2 = view("CREATE MATERIALIZED VIEW v AS SELECT lower(customer) AS c, count(*) FROM orders GROUP BY c");
    let ViewPlan::Aggregate(a2) = &v2.plan else {
        panic!()
    };
    assert_eq!(a2.group_by, a.group_by);

    // A group key missing from the output: no key lookups.
    let v =
        view("CREATE MATERIALIZED VIEW v AS SELECT count(*) AS n FROM orders GROUP BY customer");
    assert!(v.key_columns.is_empty());
    // Global aggregate: one group with the empty key.
    let v = view("CREATE MATERIALIZED VIEW v AS SELECT count(*), max(ts) FROM orders");
    let ViewPlan::Aggregate(a) = &v.plan else {
        panic!()
    };
    assert!(a.group_by.is_empty());
    assert!(v.key_columns.is_empty());
    assert_eq!(v.columns[1].ty, SqlType::Timestamp);
    // Expressions over group keys and aggregates.
    let v = view("CREATE MATERIALIZED VIEW v AS SELECT customer, sum(amount) / count(*) AS mean FROM orders GROUP BY customer");
    assert_eq!(v.columns[1].ty, SqlType::Double);
}

#[test]
fn create_materialized_view_project() {
    let v = view("CREATE MATERIALIZED VIEW big AS SELECT order_id, amount * 2, CASE WHEN amount > 100 THEN 'big' ELSE 'small' END AS size, ts::date FROM orders WHERE amount BETWEEN 1 AND 1000 AND customer LIKE 'a%'");
    let names: Vec<&str> = v.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, vec!["order_id", "?column?", "size", "ts"]);
    assert_eq!(v.columns[3].ty, SqlType::Date);
    assert!(v.key_columns.is_empty(), "append-only source: key hidden");
    assert!(matches!(v.plan, ViewPlan::Project(_)));
    let v = view(
        "CREATE MATERIALIZED VIEW c AS SELECT name, id FROM customers WHERE region IN ('eu', 'us')",
    );
    assert_eq!(v.key_columns, vec![1]);
    let v = view("CREATE MATERIALIZED VIEW c AS SELECT * FROM customers");
    assert_eq!(v.key_columns, vec![0]);
    assert_eq!(v.columns.len(), 3);
    let v = view("CREATE MATERIALIZED VIEW c AS SELECT upper(id) AS id FROM customers");
    assert!(v.key_columns.is_empty());
}

#[test]
fn create_materialized_view_errors() {
    assert_eq!(
        code("CREATE MATERIALIZED VIEW v AS SELECT * FROM revenue"),
        "0A000"
    );
    assert_eq!(code("CREATE MATERIALIZED VIEW v AS SELECT * FROM orders o JOIN customers c ON o.customer = c.id"), "0A000");
    assert!(
        err("CREATE MATERIALIZED VIEW v AS SELECT * FROM orders, customers")
            .to_string()
            .contains("joins")
    );
    assert_eq!(
        code("CREATE MATERIALIZED VIEW v AS SELECT * FROM orders ORDER BY amount"),
        "0A000"
    );
    assert_eq!(
        code("CREATE MATERIALIZED VIEW v AS SELECT * FROM orders LIMIT 5"),
        "0A000"
    );
    assert_eq!(
        code("CREATE MATERIALIZED VIEW v AS SELECT DISTINCT customer FROM orders"),
        "0A000"
    );
    assert_eq!(
        code("CREATE MATERIALIZED VIEW v AS SELECT count(DISTINCT customer) FROM orders"),
        "0A000"
    );
    assert_eq!(
        code("CREATE MATERIALIZED VIEW v AS SELECT * FROM (SELECT 1) t"),
        "0A000"
    );
    assert_eq!(
        code("CREATE MATERIALIZED VIEW v AS SELECT * FROM orders WHERE amount > (SELECT 1)"),
        "0A000"
    );
    assert_eq!(
        code("CREATE MATERIALIZED VIEW v AS SELECT row_number() OVER () FROM orders"),
        "0A000"
    );
    assert_eq!(
        code("CREATE MATERIALIZED VIEW v AS SELECT * FROM orders WHERE amount > $1"),
        "0A000"
    );
    assert_eq!(code("CREATE VIEW v AS SELECT * FROM orders"), "0A000");
    assert_eq!(
        code("CREATE MATERIALIZED VIEW v AS SELECT * FROM nope"),
        "42P01"
    );
    assert_eq!(
        code("CREATE MATERIALIZED VIEW v WITH (replicas = 2) AS SELECT * FROM orders"),
        "22023"
    );
    assert_eq!(
        code("CREATE MATERIALIZED VIEW v WITH (partitions = 0) AS SELECT * FROM orders"),
        "22023"
    );
    let e = err("CREATE MATERIALIZED VIEW v AS SELECT customer, amount, count(*) FROM orders GROUP BY customer");
    assert_eq!(e.sqlstate().code(), "42803");
    assert_eq!(
        e.to_string(),
        "column \"amount\" must appear in the GROUP BY clause or be used in an aggregate function"
    );
    assert_eq!(
        code("CREATE MATERIALIZED VIEW v AS SELECT * FROM orders WHERE count(*) > 1"),
        "42803"
    );
    assert_eq!(
        code("CREATE MATERIALIZED VIEW v AS SELECT sum(count(*)) FROM orders"),
        "42803"
    );
    assert_eq!(
        code("CREATE MATERIALIZED VIEW v AS SELECT sum(customer) FROM orders"),
        "42804"
    );
    assert_eq!(
        code("CREATE MATERIALIZED VIEW v AS SELECT count(*), count(amount) FROM orders"),
        "42710"
    );
}

#[test]
fn reads_bind_filters_projections_and_key_lookups() {
    let p = read("SELECT * FROM revenue WHERE customer = 'alice'");
    assert_eq!(p.relation, RelationRef::View("revenue".into()));
    assert_eq!(
        p.key_lookup,
        Some(vec![Expr::literal(text("alice"), SqlType::Text)])
    );
    assert_eq!(p.columns.len(), 3);

    let stmt = ok("SELECT customer, total FROM revenue WHERE total > $2 AND $1 = customer");
    assert_eq!(param_types(&stmt), vec![SqlType::Text, SqlType::Double]);
    let Statement::Select(p) = stmt else { panic!() };
    assert_eq!(
        p.key_lookup,
        Some(vec![Expr::Parameter {
            index: 0,
            ty: SqlType::Text
        }])
    );

    assert_eq!(
        read("SELECT * FROM revenue WHERE customer = 'a' OR total > 1").key_lookup,
        None
    );
    assert_eq!(
        read("SELECT * FROM revenue WHERE customer <> 'a'").key_lookup,
        None
    );
    assert_eq!(read("SELECT * FROM revenue").key_lookup, None);
    // The key value is cast to the key column's type.
    let p = read("SELECT * FROM by_id WHERE id = 5");
    assert_eq!(
        p.key_lookup,
        Some(vec![Expr::Cast {
            expr: Box::new(Expr::literal(Value::Int(5), SqlType::Integer)),
            ty: SqlType::BigInt
        }])
    );
    assert_eq!(
        read("SELECT * FROM by_id WHERE id = '5'").key_lookup,
        Some(vec![Expr::literal(Value::Int(5), SqlType::BigInt)])
    );

    // Literals take the column's type.
    let p = read("SELECT * FROM revenue WHERE orders >= '3'");
    let Some(Expr::Binary { right, .. }) = &p.filter else {
        panic!()
    };
    assert_eq!(**right, Expr::literal(Value::Int(3), SqlType::BigInt));

    let p = read("SELECT customer AS who, total * 2 AS double_total FROM public.revenue r WHERE r.total IS NOT NULL ORDER BY 2 DESC, who LIMIT 10 OFFSET $1");
    assert_eq!(
        p.columns
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>(),
        vec!["who", "double_total"]
    );
    assert_eq!(p.order_by.len(), 2);
    assert!(p.order_by[0].descending && p.order_by[0].nulls_first);
    assert!(!p.order_by[1].descending && !p.order_by[1].nulls_first);
    assert_eq!(p.order_by[1].expr, Expr::column(0, SqlType::Text));
    assert_eq!(
        p.offset,
        Some(Expr::Parameter {
            index: 0,
            ty: SqlType::BigInt
        })
    );

    let p = read("SELECT * FROM eddy_catalog.nodes");
    assert_eq!(p.relation, RelationRef::System("eddy_catalog.nodes".into()));
    let p = read("SELECT 1 + 1 AS x, version(), 'a' || 1");
    assert_eq!(p.relation, RelationRef::Nothing);
    assert_eq!(p.columns[0], Column::new("x", SqlType::Integer));
    assert_eq!(p.columns[1].name, "version");
    assert_eq!(p.columns[2].name, "?column?");
    let p = read("SELECT customer, count(*) FROM revenue GROUP BY customer HAVING sum(total) > 10 ORDER BY count(*) DESC");
    let agg = p.aggregate.as_ref().unwrap();
    assert_eq!(agg.aggregates.len(), 2);
    assert_eq!(p.order_by[0].expr, Expr::column(1, SqlType::BigInt));
}

#[test]
fn read_errors_have_postgres_codes() {
    let e = err("SELECT * FROM orders");
    assert_eq!(e.sqlstate().code(), "42809");
    assert!(e
        .hint()
        .unwrap()
        .contains("CREATE MATERIALIZED VIEW v AS SELECT ... FROM orders"));
    let e = err("SELECT * FROM nowhere");
    assert_eq!((e.sqlstate().code(), e.position()), ("42P01", Some(15)));
    let e = err("SELECT custmer FROM revenue");
    assert_eq!((e.sqlstate().code(), e.position()), ("42703", Some(8)));
    assert!(e.hint().unwrap().contains("\"customer\""), "{:?}", e.hint());
    assert_eq!(code("SELECT 'abc' + 1"), "42804");
    assert_eq!(code("SELECT * FROM revenue WHERE total = true"), "42804");
    assert_eq!(code("SELECT * FROM revenue WHERE total"), "42804");
    assert_eq!(code("SELECT sum(customer) FROM revenue"), "42804");
    assert_eq!(
        code("SELECT customer || 1, - customer FROM revenue"),
        "42804"
    );
    assert_eq!(code("SELECT * FROM revenue WHERE orders = 'abc'"), "22P02");
    assert_eq!(code("SELECT customer, count(*) FROM revenue"), "42803");
    assert_eq!(code("SELECT * FROM revenue ORDER BY 9"), "42703");
    assert_eq!(
        code("SELECT * FROM revenue a JOIN revenue b ON true"),
        "0A000"
    );
    assert_eq!(
        code("SELECT * FROM revenue UNION SELECT * FROM revenue"),
        "0A000"
    );
    assert_eq!(code("WITH x AS (SELECT 1) SELECT * FROM x"), "0A000");
    assert_eq!(code("SELECT nosuchfn(1)"), "0A000");
    let e = err("INSERT INTO revenue VALUES ('a', 1, 2.0)");
    assert_eq!(e.sqlstate().code(), "0A000");
    assert!(e.to_string().contains("read-only"));
    assert!(e.hint().unwrap().contains("Kafka topic"));
    assert_eq!(code("DELETE FROM revenue"), "0A000");
    assert_eq!(code("UPDATE revenue SET total = 0"), "0A000");

    let e = parse("SELECT * FROM revenue WHERE").unwrap_err();
    assert_eq!((e.sqlstate().code(), e.position()), ("42601", Some(28)));
    let e = parse("SELECT 1;\nSELEC 2").unwrap_err();
    assert_eq!((e.sqlstate().code(), e.position()), ("42601", Some(11)));
    let e = parse("SELECT 'abc").unwrap_err();
    assert_eq!(e.position(), Some(8));
}

#[test]
fn session_and_catalog_statements() {
    assert_eq!(
        ok("SET max_staleness = '500ms'"),
        Statement::SetVariable {
            name: "max_staleness".into(),
            value: Some("500ms".into()),
            local: false,
        }
    );
    assert_eq!(
        ok("SET max_staleness TO 0"),
        Statement::SetVariable {
            name: "max_staleness".into(),
            value: Some("0".into()),
            local: false,
        }
    );
    assert_eq!(
        ok("set MAX_STALENESS to default"),
        Statement::SetVariable {
            name: "max_staleness".into(),
            value: None,
            local: false,
        }
    );
    assert_eq!(
        ok("SET LOCAL statement_timeout = 10"),
        Statement::SetVariable {
            name: "statement_timeout".into(),
            value: Some("10".into()),
            local: true,
        }
    );
    assert_eq!(
        ok("SHOW max_staleness"),
        Statement::ShowVariable {
            name: "max_staleness".into()
        }
    );
    assert_eq!(
        ok("RESET max_staleness"),
        Statement::ResetVariable {
            name: "max_staleness".into()
        }
    );
    assert_eq!(
        ok("RESET ALL"),
        Statement::ResetVariable { name: "all".into() }
    );
    assert_eq!(ok("SHOW SOURCES"), Statement::ShowSources);
    assert_eq!(ok("show materialized views"), Statement::ShowViews);
    assert_eq!(
        ok("DROP MATERIALIZED VIEW IF EXISTS Revenue"),
        Statement::DropView {
            name: "revenue".into(),
            if_exists: true
        }
    );
    assert_eq!(
        ok("drop source orders"),
        Statement::DropSource {
            name: "orders".into(),
            if_exists: false
        }
    );
    assert_eq!(
        ok("DROP SOURCE IF EXISTS orders;"),
        Statement::DropSource {
            name: "orders".into(),
            if_exists: true
        }
    );
    assert_eq!(ok("BEGIN"), Statement::Begin);
    assert_eq!(ok("START TRANSACTION"), Statement::Begin);
    assert_eq!(ok("COMMIT"), Statement::Commit);
    assert_eq!(ok("ROLLBACK"), Statement::Rollback);
    for (sql, tag) in [
        ("SAVEPOINT a", "SAVEPOINT"),
        ("RELEASE SAVEPOINT a", "RELEASE"),
        ("ROLLBACK TO SAVEPOINT a", "ROLLBACK"),
        ("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ", "SET"),
        (
            "SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY",
            "SET",
        ),
    ] {
        assert_eq!(ok(sql), Statement::TransactionNoOp { tag }, "{sql}");
    }
    let Statement::Explain(inner) = ok("EXPLAIN SELECT * FROM revenue WHERE customer = $1") else {
        panic!()
    };
    assert!(matches!(*inner, Statement::Select(_)));

    // Several statements, comments, odd case and spacing.
    let sql =
        "-- make things\n  Create   Source s1 (a INT) ; /* block */ SHOW SOURCES;; DROP SOURCE s1";
    let stmts = parse(sql).unwrap();
    assert_eq!(stmts.len(), 3);
    let bound: Vec<Statement> = stmts
        .iter()
        .map(|s| plan(s, sql, &TestCatalog, &DEFAULTS).unwrap())
        .collect();
    assert!(matches!(&bound[0], Statement::CreateSource(s) if s.name == "s1"));
    assert_eq!(bound[1], Statement::ShowSources);
    assert_eq!(
        bound[2],
        Statement::DropSource {
            name: "s1".into(),
            if_exists: false
        }
    );
    assert!(parse("").unwrap().is_empty());
    assert!(parse(" ; -- nothing\n").unwrap().is_empty());
}

#[test]
fn view_sql_text_is_cut_from_the_statement() {
    let sql = "CREATE MATERIALIZED VIEW a AS SELECT customer FROM orders; CREATE MATERIALIZED VIEW b AS SELECT 'x;y' AS s FROM orders ;";
    let stmts = parse(sql).unwrap();
    let texts: Vec<String> = stmts
        .iter()
        .map(|s| match plan(s, sql, &TestCatalog, &DEFAULTS).unwrap() {
            Statement::CreateView(v) => v.sql,
            _ => panic!(),
        })
        .collect();
    assert_eq!(
        texts,
        vec![
            "SELECT customer FROM orders",
            "SELECT 'x;y' AS s FROM orders"
        ]
    );
}

fn run(sql: &str, rows: Vec<Vec<Value>>, params: &[Value]) -> Vec<Vec<Value>> {
    execute(&read(sql), rows.into_iter(), params).unwrap_or_else(|e| panic!("{sql}: {e}"))
}

fn revenue_rows() -> Vec<Vec<Value>> {
    vec![
        vec![text("alice"), Value::Int(2), Value::Float(30.0)],
        vec![text("bob"), Value::Int(1), Value::Null],
        vec![text("carol"), Value::Int(5), Value::Float(100.0)],
        vec![text("dave"), Value::Int(1), Value::Float(30.0)],
    ]
}

#[test]
fn executor_orders_limits_and_projects() {
    let rows = run(
        "SELECT customer FROM revenue ORDER BY total DESC",
        revenue_rows(),
        &[],
    );
    assert_eq!(
        rows,
        vec![
            vec![text("bob")],
            vec![text("carol")],
            vec![text("alice")],
            vec![text("dave")]
        ]
    );
    let rows = run("SELECT customer FROM revenue ORDER BY total DESC NULLS LAST, customer DESC LIMIT 2 OFFSET 1", revenue_rows(), &[]);
    assert_eq!(rows, vec![vec![text("dave")], vec![text("alice")]]);
    let rows = run(
        "SELECT customer, total * 2 AS t FROM revenue WHERE total >= $1 ORDER BY t LIMIT $2",
        revenue_rows(),
        &[Value::Float(30.0), Value::Int(1)],
    );
    assert_eq!(rows, vec![vec![text("alice"), Value::Float(60.0)]]);
    let rows = run(
        "SELECT customer FROM revenue ORDER BY total",
        revenue_rows(),
        &[],
    );
    assert_eq!(
        rows.last().unwrap(),
        &vec![text("bob")],
        "NULLS LAST by default for ASC"
    );
    let rows = run("SELECT 1 + 1 AS x, upper('a')", vec![], &[]);
    assert_eq!(rows, vec![vec![Value::Int(2), text("A")]]);
    let e = execute(
        &read("SELECT * FROM revenue LIMIT $1"),
        revenue_rows().into_iter(),
        &[Value::Int(-1)],
    )
    .unwrap_err();
    assert_eq!(e.sqlstate().code(), "22023");
    let e = execute(
        &read("SELECT orders / 0 FROM revenue"),
        revenue_rows().into_iter(),
        &[],
    )
    .unwrap_err();
    assert_eq!(e.sqlstate().code(), "22012");
}

#[test]
fn executor_aggregates_over_views() {
    let rows = run(
        "SELECT total, count(*) AS n, sum(orders), min(customer) FROM revenue GROUP BY total HAVING count(*) >= 1 ORDER BY n DESC, total",
        revenue_rows(),
        &[],
    );
    assert_eq!(
        rows,
        vec![
            vec![
                Value::Float(30.0),
                Value::Int(2),
                Value::Numeric(3.into()),
                text("alice")
            ],
            vec![
                Value::Float(100.0),
                Value::Int(1),
                Value::Numeric(5.into()),
                text("carol")
            ],
            vec![
                Value::Null,
                Value::Int(1),
                Value::Numeric(1.into()),
                text("bob")
            ],
        ]
    );
    let rows = run(
        "SELECT count(*), sum(total), avg(orders), max(total) FROM revenue",
        revenue_rows(),
        &[],
    );
    assert_eq!(
        rows,
        vec![vec![
            Value::Int(4),
            Value::Float(160.0),
            // avg(bigint) is numeric with Postgres' scale.
            Value::Numeric(rust_decimal::Decimal::new(22_500_000_000_000_000, 16)),
            Value::Float(100.0)
        ]]
    );
    let rows = run(
        "SELECT count(*), sum(total) FROM revenue WHERE customer = 'zed'",
        revenue_rows(),
        &[],
    );
    assert_eq!(
        rows,
        vec![vec![Value::Int(0), Value::Null]],
        "a global aggregate over no rows is one row"
    );
    let rows = run(
        "SELECT customer FROM revenue GROUP BY customer HAVING sum(total) > 50",
        revenue_rows(),
        &[],
    );
    assert_eq!(rows, vec![vec![text("carol")]]);
}

#[test]
fn key_values_and_explain() {
    let stmt =
        ok("SELECT customer, total FROM revenue WHERE customer = $1 ORDER BY total DESC LIMIT 10");
    let Statement::Select(p) = &stmt else {
        panic!()
    };
    let key = p.key_lookup.as_ref().unwrap();
    assert_eq!(
        key_values(key, &[text("alice")]).unwrap(),
        Some(vec![text("alice")])
    );
    assert_eq!(key_values(key, &[Value::Null]).unwrap(), None);
    let lines = explain(&Statement::Explain(Box::new(stmt.clone())));
    assert_eq!(lines[0], "Output: customer, total");
    assert!(lines.iter().any(|l| l.contains("Limit: 10")), "{lines:?}");
    assert!(
        lines.iter().any(|l| l.contains("Sort: total DESC")),
        "{lines:?}"
    );
    assert!(
        lines
            .last()
            .unwrap()
            .contains("Key lookup on revenue (customer = $1)"),
        "{lines:?}"
    );
    let lines = explain(&ok("EXPLAIN CREATE MATERIALIZED VIEW v AS SELECT customer, count(*) FROM orders GROUP BY customer"));
    assert!(lines[0].contains("keyed by customer"), "{lines:?}");
}

#[test]
fn expressions_bind_with_postgres_typing() {
    let p = read("SELECT orders / 2, orders % 2, total + orders, orders::text, CAST(total AS INT) FROM revenue");
    let types: Vec<SqlType> = p.columns.iter().map(|c| c.ty).collect();
    assert_eq!(
        types,
        vec![
            SqlType::BigInt,
            SqlType::BigInt,
            SqlType::Double,
            SqlType::Text,
            SqlType::Integer
        ]
    );
    let rows = execute(
        &p,
        vec![vec![text("a"), Value::Int(7), Value::Float(0.5)]].into_iter(),
        &[],
    )
    .unwrap();
    assert_eq!(
        rows[0],
        vec![
            Value::Int(3),
            Value::Int(1),
            Value::Float(7.5),
            text("7"),
            Value::Int(0)
        ]
    );
    let p = read("SELECT coalesce(total, 0), CASE customer WHEN 'a' THEN 1 ELSE 2 END, customer ILIKE 'A%', round(total), abs(-orders) FROM revenue WHERE customer NOT IN ('x', 'y') AND total IS NOT NULL");
    let rows = execute(
        &p,
        vec![vec![text("a"), Value::Int(7), Value::Float(2.5)]].into_iter(),
        &[],
    )
    .unwrap();
    assert_eq!(
        rows[0],
        vec![
            Value::Float(2.5),
            Value::Int(1),
            Value::Bool(true),
            Value::Float(2.0),
            Value::Int(7)
        ]
    );
    let p = read("SELECT * FROM revenue WHERE total > 1 AND NOT (customer = 'a')");
    assert!(matches!(
        &p.filter,
        Some(Expr::Binary {
            op: BinaryOp::And,
            ..
        })
    ));
}

#[test]
fn a_read_without_order_or_aggregates_answers_each_row_as_it_comes_and_stops_at_its_limit() {
    let plan = read("SELECT customer FROM revenue WHERE orders > 1 LIMIT 1 OFFSET 1");
    let mut run = crate::exec::Execution::new(&plan, &[]).unwrap();
    let mut rows = revenue_rows().into_iter();
    assert_eq!(run.push(rows.next().unwrap()).unwrap(), None, "skipped");
    assert!(!run.is_done());
    assert_eq!(run.push(rows.next().unwrap()).unwrap(), None, "filtered");
    assert_eq!(
        run.push(rows.next().unwrap()).unwrap(),
        Some(vec![text("carol")])
    );
    assert!(run.is_done(), "the LIMIT is reached: no more rows needed");
    assert!(run.finish().unwrap().is_empty());
}

#[test]
fn a_sorted_read_with_a_limit_keeps_only_what_can_reach_the_output_and_stays_stable() {
    // Many rows equal on the sort key, arriving in order: the first ones
    // that arrived win, as a stable sort of all of them would give.
    let plan = read("SELECT customer, orders FROM revenue ORDER BY orders DESC LIMIT 3 OFFSET 2");
    let mut run = crate::exec::Execution::new(&plan, &[]).unwrap();
    for i in 0..10_000i64 {
        let row = vec![text(&format!("c{i}")), Value::Int(i % 7), Value::Null];
        assert_eq!(run.push(row).unwrap(), None);
    }
    assert!(!run.is_done());
    let rows = run.finish().unwrap();
    let all: Vec<Vec<Value>> = {
        let mut all: Vec<(i64, i64)> = (0..10_000i64).map(|i| (i % 7, i)).collect();
        all.sort_by_key(|b| std::cmp::Reverse(b.0));
        all.into_iter()
            .skip(2)
            .take(3)
            .map(|(o, i)| vec![text(&format!("c{i}")), Value::Int(o)])
            .collect()
    };
    assert_eq!(rows, all);
}

#[test]
fn an_aggregate_read_folds_rows_as_they_come() {
    let plan = read("SELECT orders, count(*) AS n FROM revenue GROUP BY orders HAVING count(*) > 1 ORDER BY orders");
    let mut run = crate::exec::Execution::new(&plan, &[]).unwrap();
    for row in revenue_rows() {
        assert_eq!(run.push(row).unwrap(), None);
    }
    assert_eq!(
        run.finish().unwrap(),
        vec![vec![Value::Int(1), Value::Int(2)]]
    );
}

#[test]
fn partial_aggregates_merged_give_the_answer_of_the_whole_read() {
    use crate::exec::{Execution, Phase};
    let rows: Vec<Vec<Value>> = (0..300i64)
        .map(|i| {
            vec![
                text(&format!("c{}", i % 7)),
                Value::Int(i % 11),
                if i % 13 == 0 {
                    Value::Null
                } else {
                    Value::Float(i as f64 / 4.0)
                },
            ]
        })
        .collect();
    for sql in [
        "SELECT customer, count(*), sum(orders), avg(orders), min(total), max(total), avg(total) \
         FROM revenue WHERE orders > 2 GROUP BY customer HAVING count(*) > 3 ORDER BY customer",
        "SELECT count(*), sum(orders), max(customer) FROM revenue",
        "SELECT count(*), sum(orders) FROM revenue WHERE orders > 100",
        "SELECT orders % 3 AS k, count(total) FROM revenue GROUP BY orders % 3 ORDER BY 2 DESC, 1 LIMIT 2",
    ] {
        let plan = read(sql);
        let whole = execute(&plan, rows.clone().into_iter(), &[]).unwrap();
        let mut merge = Execution::phase(&plan, &[], Phase::Merge).unwrap();
        // Three replicas, one of them with no rows.
        for part in [&rows[..100], &rows[100..], &[]] {
            let mut partial = Execution::phase(&plan, &[], Phase::Partial).unwrap();
            for row in part {
                assert_eq!(partial.push(row.clone()).unwrap(), None);
            }
            for row in partial.finish().unwrap() {
                assert_eq!(merge.push(row).unwrap(), None);
            }
        }
        assert_eq!(merge.finish().unwrap(), whole, "{sql}");
    }
}
