"""The Python side of the client matrix (tests/tests/clients.rs).

    python_clients.py FAMILY HOST PORT USER DBNAME RELATIONS

FAMILY is psycopg2, psycopg, asyncpg or sqlalchemy; RELATIONS is a
comma-separated list of the relations the two engines share (Eddy's
materialized views, PostgreSQL's tables of the same names). Prints one JSON
object per line and per check: {"check": name, "result": ...}, or
{"check": name, "error": "SQLSTATE message"} when the check failed, so one
failure hides no other. The test runs this against PostgreSQL and against
Eddy and compares the lines; every result is ordered, so equal answers print
equal lines.

Each check opens its own connection: a failed statement cannot leave a
transaction aborted under the next check.
"""

import asyncio
import contextlib
import datetime
import decimal
import io
import json
import sys

FAMILY, HOST, PORT, USER, DBNAME, RELATIONS = sys.argv[1:7]
PORT = int(PORT)
RELATIONS = sorted(RELATIONS.split(","))

# Eddy's own catalog schema; PostgreSQL has no such schema, and which system
# schemas an engine has is not what the shared dataset is about.
ENGINE_SCHEMAS = {"eddy_catalog"}

BIG_ORDERS = "SELECT order_id, customer, amount, ts FROM big_orders ORDER BY order_id"
REVENUE_FROM = (
    "SELECT customer, orders, total FROM revenue WHERE orders >= {} AND customer <> {} "
    "ORDER BY customer"
)
COPY_CSV = (
    "COPY (SELECT customer, orders, total FROM revenue ORDER BY customer) "
    "TO STDOUT WITH CSV HEADER"
)
COPY_TEXT = "COPY (SELECT customer, region, tier FROM customer_info ORDER BY customer) TO STDOUT"
# numeric (SUM of bigint; a cast with a typmod), timestamp, double precision.
TYPED = (
    "SELECT (SELECT SUM(orders) FROM revenue) AS orders, "
    "(SELECT CAST(SUM(total) AS NUMERIC(12,2)) FROM revenue) AS total, "
    "(SELECT MIN(ts) FROM big_orders) AS first_ts, "
    "(SELECT MAX(amount) FROM big_orders) AS largest"
)
CUSTOMERS = ["c1", "c2", "c7", "nobody"]


def typed(value):
    """A JSON value that keeps the Python type: a driver that returns a
    string where PostgreSQL's returns a Decimal must not compare equal."""
    if isinstance(value, (list, tuple)):
        return [typed(v) for v in value]
    if isinstance(value, dict):
        return {str(k): typed(v) for k, v in value.items()}
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, float)):
        return [type(value).__name__, value]
    if isinstance(value, decimal.Decimal):
        return ["Decimal", str(value)]
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return [type(value).__name__, value.isoformat()]
    if isinstance(value, (bytes, bytearray, memoryview)):
        return ["bytes", bytes(value).decode("utf-8", "replace")]
    if hasattr(value, "item"):  # a numpy scalar from pandas
        return typed(value.item())
    if hasattr(value, "isoformat"):  # a pandas Timestamp
        return [type(value).__name__, value.isoformat()]
    return [type(value).__name__, str(value)]


def describe(err):
    """SQLSTATE and message of a database error, whichever driver raised it
    (SQLAlchemy wraps the driver's in .orig); the type and text otherwise."""
    orig = getattr(err, "orig", None) or err
    code = (
        getattr(orig, "sqlstate", None)  # psycopg 3, asyncpg
        or getattr(orig, "pgcode", None)  # psycopg2
    )
    message = (
        getattr(getattr(orig, "diag", None), "message_primary", None)
        or getattr(orig, "pgerror", None)
        or str(orig)
    )
    message = message.strip()
    if code:
        return f"{code} {message}"
    return f"{type(orig).__name__}: {message}"


def check(name, run):
    try:
        result = run()
        if asyncio.iscoroutine(result):
            result = asyncio.run(result)
        line = {"check": name, "result": typed(result)}
    except Exception as err:  # every failure is a reported answer
        line = {"check": name, "error": describe(err)}
    print(json.dumps(line, sort_keys=True), flush=True)


# --- psycopg2 ---------------------------------------------------------------


def psycopg2_checks():
    import psycopg2

    @contextlib.contextmanager
    def connect():
        # psycopg2's own `with conn` ends the transaction but keeps the
        # connection open.
        conn = psycopg2.connect(host=HOST, port=PORT, user=USER, dbname=DBNAME)
        try:
            with conn:
                yield conn
        finally:
            conn.close()

    def run(sql, params=None):
        with connect() as conn, conn.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall()

    check(
        "psycopg2.query_params",
        lambda: run(REVENUE_FROM.format("%s", "%s"), (30, "c0")),
    )
    check(
        "psycopg2.list_param",
        lambda: run(
            "SELECT customer, region, tier FROM customer_info WHERE customer = ANY(%s) "
            "ORDER BY customer",
            (CUSTOMERS,),
        ),
    )
    check(
        "psycopg2.tuple_param",
        lambda: run(
            "SELECT customer, orders FROM revenue WHERE customer IN %s ORDER BY customer",
            (tuple(CUSTOMERS),),
        ),
    )

    def named_cursor():
        # A named cursor is DECLARE ... CURSOR and FETCH FORWARD n, inside
        # the transaction psycopg2 opens.
        with connect() as conn:
            with conn.cursor(name="big") as cur:
                cur.execute(BIG_ORDERS)
                first = cur.fetchmany(5)
                second = cur.fetchmany(5)
                rest = cur.fetchall()
                description = [(d.name, d.type_code) for d in cur.description]
            return {
                "first": first,
                "second": second,
                "rest": len(rest),
                "last": rest[-1] if rest else None,
                "description": description,
            }

    check("psycopg2.named_cursor", named_cursor)

    def copy_expert(sql):
        def go():
            buf = io.StringIO()
            with connect() as conn, conn.cursor() as cur:
                cur.copy_expert(sql, buf)
            return buf.getvalue()

        return go

    check("psycopg2.copy_csv_header", copy_expert(COPY_CSV))
    check("psycopg2.copy_text", copy_expert(COPY_TEXT))

    def description():
        out = {}
        with connect() as conn, conn.cursor() as cur:
            for rel in RELATIONS:
                cur.execute(f"SELECT * FROM {rel} LIMIT 0")
                out[rel] = [
                    (d.name, d.type_code, d.internal_size, d.precision, d.scale)
                    for d in cur.description
                ]
            cur.execute(TYPED)
            out["typed"] = [
                (d.name, d.type_code, d.internal_size, d.precision, d.scale)
                for d in cur.description
            ]
        return out

    check("psycopg2.description", description)
    check("psycopg2.typed_values", lambda: run(TYPED))


# --- psycopg 3 --------------------------------------------------------------


def psycopg_checks():
    import psycopg

    def connect(**kwargs):
        return psycopg.connect(host=HOST, port=PORT, user=USER, dbname=DBNAME, **kwargs)

    def run(sql, params=None, **kwargs):
        with connect() as conn, conn.cursor(**kwargs) as cur:
            cur.execute(sql, params)
            return cur.fetchall()

    # psycopg 3 binds parameters on the server ($1, $2: Parse/Bind).
    check(
        "psycopg.query_params",
        lambda: run(REVENUE_FROM.format("%s", "%s"), (30, "c0")),
    )
    check(
        "psycopg.list_param",
        lambda: run(
            "SELECT customer, region, tier FROM customer_info WHERE customer = ANY(%s) "
            "ORDER BY customer",
            (CUSTOMERS,),
        ),
    )
    check("psycopg.typed_values", lambda: run(TYPED))
    check("psycopg.binary_results", lambda: run(TYPED, binary=True))
    check(
        "psycopg.binary_rows",
        lambda: run(REVENUE_FROM.format("%s", "%s"), (30, "c0"), binary=True),
    )

    def named_cursor():
        with connect() as conn:
            with conn.cursor(name="big") as cur:
                cur.execute(BIG_ORDERS)
                first = cur.fetchmany(5)
                second = cur.fetchmany(5)
                rest = cur.fetchall()
            return {
                "first": first,
                "second": second,
                "rest": len(rest),
                "last": rest[-1] if rest else None,
            }

    check("psycopg.named_cursor", named_cursor)

    def copy(sql):
        def go():
            data = bytearray()
            with connect() as conn, conn.cursor() as cur:
                with cur.copy(sql) as cp:
                    for chunk in cp:
                        data += chunk
            return data.decode()

        return go

    check("psycopg.copy_text", copy(COPY_TEXT))
    check("psycopg.copy_csv_header", copy(COPY_CSV))

    def copy_rows():
        with connect() as conn, conn.cursor() as cur:
            with cur.copy(COPY_TEXT) as cp:
                return list(cp.rows())

    check("psycopg.copy_rows", copy_rows)

    def description():
        with connect() as conn, conn.cursor() as cur:
            out = {}
            for rel, sql in [(r, f"SELECT * FROM {r} LIMIT 0") for r in RELATIONS] + [
                ("typed", TYPED)
            ]:
                cur.execute(sql)
                out[rel] = [
                    (d.name, d.type_code, d.internal_size, d.precision, d.scale)
                    for d in cur.description
                ]
            return out

    check("psycopg.description", description)

    def prepared():
        # prepare=True: a named server-side statement, executed again with
        # new parameters.
        with connect() as conn, conn.cursor() as cur:
            out = []
            for n in (30, 31, 34):
                cur.execute(REVENUE_FROM.format("%s", "%s"), (n, "c0"), prepare=True)
                out.append(cur.fetchall())
            return out

    check("psycopg.prepared", prepared)


# --- asyncpg ----------------------------------------------------------------


def asyncpg_checks():
    import asyncpg

    async def connect():
        return await asyncpg.connect(host=HOST, port=PORT, user=USER, database=DBNAME)

    def with_conn(body):
        async def go():
            conn = await connect()
            try:
                return await body(conn)
            finally:
                await conn.close()

        return go

    def records(rows):
        return [list(r.items()) for r in rows]

    async def fetch_params(conn):
        return records(await conn.fetch(REVENUE_FROM.format("$1", "$2"), 30, "c0"))

    check("asyncpg.fetch_params", with_conn(fetch_params))

    async def list_param(conn):
        return records(
            await conn.fetch(
                "SELECT customer, region, tier FROM customer_info "
                "WHERE customer = ANY($1::text[]) ORDER BY customer",
                CUSTOMERS,
            )
        )

    check("asyncpg.list_param", with_conn(list_param))

    async def typed_values(conn):
        return records(await conn.fetch(TYPED))

    check("asyncpg.typed_values", with_conn(typed_values))

    async def cursor_iter(conn):
        async with conn.transaction():
            return records([r async for r in conn.cursor(BIG_ORDERS, prefetch=4)])

    check("asyncpg.cursor_iterate", with_conn(cursor_iter))

    async def cursor_fetch(conn):
        async with conn.transaction():
            cur = await conn.cursor(
                "SELECT order_id, amount FROM big_orders WHERE amount >= $1 "
                "ORDER BY order_id",
                240,
            )
            first = await cur.fetch(3)
            skipped = await cur.forward(2)
            row = await cur.fetchrow()
            return {"first": records(first), "skipped": skipped, "next": list(row.items())}

    check("asyncpg.cursor_fetch", with_conn(cursor_fetch))

    async def attributes(conn):
        out = {}
        for rel in RELATIONS:
            stmt = await conn.prepare(f"SELECT * FROM {rel}")
            out[rel] = [
                (a.name, a.type.oid, a.type.name, a.type.kind, a.type.schema)
                for a in stmt.get_attributes()
            ]
        stmt = await conn.prepare(
            "SELECT customer, orders FROM revenue WHERE orders >= $1 AND customer = ANY($2)"
        )
        out["parameters"] = [
            (t.oid, t.name, t.kind, t.schema) for t in stmt.get_parameters()
        ]
        return out

    check("asyncpg.prepared_attributes", with_conn(attributes))

    async def row_type(conn):
        # A relation's row type is not one asyncpg knows: decoding it makes
        # asyncpg introspect pg_type and pg_attribute.
        row = await conn.fetchrow(
            "SELECT c FROM customer_info c WHERE customer = $1", "c1"
        )
        return list(row["c"].items())

    check("asyncpg.row_type_introspection", with_conn(row_type))

    async def copy_out(conn):
        buf = io.BytesIO()
        await conn.copy_from_query(
            "SELECT customer, orders, total FROM revenue ORDER BY customer",
            output=buf,
            format="csv",
            header=True,
        )
        return buf.getvalue().decode()

    check("asyncpg.copy_from_query", with_conn(copy_out))


# --- SQLAlchemy 2 and pandas -------------------------------------------------


def sqlalchemy_checks():
    import pandas
    import sqlalchemy
    from sqlalchemy import MetaData, Table, inspect, select, text

    for driver in ("psycopg2", "psycopg"):
        prefix = f"sqlalchemy+{driver}"
        engine = sqlalchemy.create_engine(
            f"postgresql+{driver}://{USER}@{HOST}:{PORT}/{DBNAME}", poolclass=sqlalchemy.NullPool
        )

        def connect():
            # The first connection runs the dialect's initialize queries.
            with engine.connect() as conn:
                return conn.execute(text("SELECT customer FROM revenue ORDER BY 1")).scalars().all()

        check(f"{prefix}.connect", connect)

        def schema_names():
            names = inspect(engine).get_schema_names()
            return sorted(set(names) - ENGINE_SCHEMAS)

        check(f"{prefix}.schema_names", schema_names)

        def relation_names():
            # A view is a table in PostgreSQL and a materialized view in
            # Eddy: only the union of the three kinds compares. Sources, and
            # PostgreSQL's base tables, are not part of the shared dataset.
            insp = inspect(engine)
            names = (
                set(insp.get_table_names())
                | set(insp.get_view_names())
                | set(insp.get_materialized_view_names())
            )
            return sorted(names & set(RELATIONS))

        check(f"{prefix}.relation_names", relation_names)

        def has_table():
            insp = inspect(engine)
            return {rel: insp.has_table(rel) for rel in RELATIONS}

        check(f"{prefix}.has_table", has_table)

        def columns():
            insp = inspect(engine)
            return {
                rel: [
                    (c["name"], str(c["type"]), c["nullable"], c.get("default"))
                    for c in insp.get_columns(rel)
                ]
                for rel in RELATIONS
            }

        check(f"{prefix}.columns", columns)

        def pk():
            insp = inspect(engine)
            return {rel: insp.get_pk_constraint(rel) for rel in RELATIONS}

        check(f"{prefix}.pk_constraint", pk)

        def autoload():
            out = {}
            for rel in RELATIONS:
                table = Table(rel, MetaData(), autoload_with=engine)
                with engine.connect() as conn:
                    rows = conn.execute(
                        select(table).order_by(*table.c).limit(3)
                    ).all()
                out[rel] = {
                    "columns": [
                        (c.name, str(c.type), c.nullable, c.primary_key) for c in table.c
                    ],
                    "rows": [list(r) for r in rows],
                }
            return out

        check(f"{prefix}.autoload", autoload)

        def read_sql():
            with engine.connect() as conn:
                frame = pandas.read_sql(
                    text(
                        "SELECT customer, orders, total, avg_amount FROM revenue "
                        "WHERE orders >= :n ORDER BY customer"
                    ),
                    conn,
                    params={"n": 30},
                )
            return frame_json(frame)

        check(f"{prefix}.pandas_read_sql", read_sql)

        def read_sql_query_ts():
            with engine.connect() as conn:
                frame = pandas.read_sql(BIG_ORDERS, conn)
            return frame_json(frame.head(5))

        check(f"{prefix}.pandas_read_sql_timestamps", read_sql_query_ts)


def frame_json(frame):
    return {
        "columns": list(frame.columns),
        "dtypes": [str(t) for t in frame.dtypes],
        "rows": [list(r) for r in frame.itertuples(index=False)],
    }


FAMILIES = {
    "psycopg2": psycopg2_checks,
    "psycopg": psycopg_checks,
    "asyncpg": asyncpg_checks,
    "sqlalchemy": sqlalchemy_checks,
}

if __name__ == "__main__":
    FAMILIES[FAMILY]()
