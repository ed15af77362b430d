// node-postgres' side of the client matrix (tests/tests/clients.rs).
//
//     node node_pg.js HOST PORT USER DBNAME RELATIONS
//
// RELATIONS is a comma-separated list of the relations both engines hold.
// Prints one JSON object per line and per check: {"check", "result"}, or
// {"check", "error": "SQLSTATE message"} when the check failed, so one
// failure hides no other. Each check has its own connection.
'use strict';

// node-postgres reads a timestamp without time zone as local time: one zone
// for both engines' runs keeps the ISO strings comparable.
process.env.TZ = 'UTC';

const { Client } = require('pg');

const [host, port, user, database, relationList] = process.argv.slice(2);
const relations = relationList.split(',').sort();

const REVENUE_FROM =
  'SELECT customer, orders, total FROM revenue WHERE orders >= $1 AND customer <> $2 ' +
  'ORDER BY customer';

// A value with its JavaScript type: numeric arrives as a string, bigint as a
// string, timestamp as a Date; a driver-visible type change must show.
function typed(value) {
  if (value === null) return null;
  if (Array.isArray(value)) return value.map(typed);
  if (value instanceof Date) return ['Date', value.toISOString()];
  if (typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, typed(v)]));
  }
  return [typeof value, value];
}

// What the client sees of each RowDescription field. The table's OID is
// the engine's own numbering (a PostgreSQL table and an Eddy view never
// share it), so only whether there is one is compared.
function fields(result) {
  return result.fields.map((f) => ({
    name: f.name,
    dataTypeID: f.dataTypeID,
    dataTypeSize: f.dataTypeSize,
    dataTypeModifier: f.dataTypeModifier,
    format: f.format,
    fromTable: f.tableID !== 0,
    columnID: f.columnID,
  }));
}

async function check(name, body) {
  const client = new Client({ host, port: Number(port), user, database });
  let line;
  try {
    await client.connect();
    line = { check: name, result: await body(client) };
  } catch (err) {
    line = { check: name, error: err.code ? `${err.code} ${err.message}` : `${err.name}: ${err.message}` };
  } finally {
    await client.end().catch(() => {});
  }
  process.stdout.write(JSON.stringify(line) + '\n');
}

async function main() {
  await check('node-pg.query_params', async (c) => {
    const r = await c.query(REVENUE_FROM, [30, 'c0']);
    return { rows: typed(r.rows), fields: fields(r) };
  });

  await check('node-pg.list_param', async (c) => {
    // A JavaScript array is sent as an array literal of unspecified type.
    const r = await c.query(
      'SELECT customer, region, tier FROM customer_info WHERE customer = ANY($1) ORDER BY customer',
      [['c1', 'c2', 'c7', 'nobody']],
    );
    return typed(r.rows);
  });

  await check('node-pg.typed_values', async (c) => {
    const r = await c.query(
      'SELECT (SELECT SUM(orders) FROM revenue) AS orders, ' +
        '(SELECT CAST(SUM(total) AS NUMERIC(12,2)) FROM revenue) AS total, ' +
        '(SELECT MIN(ts) FROM big_orders) AS first_ts, ' +
        '(SELECT MAX(amount) FROM big_orders) AS largest',
    );
    return { rows: typed(r.rows), fields: fields(r) };
  });

  await check('node-pg.timestamps', async (c) => {
    const r = await c.query(
      'SELECT order_id, amount, ts FROM big_orders WHERE ts < $1 ORDER BY order_id',
      ['2026-11-05 00:01:00'],
    );
    return typed(r.rows);
  });

  await check('node-pg.row_description', async (c) => {
    const out = {};
    for (const rel of relations) {
      out[rel] = fields(await c.query(`SELECT * FROM ${rel} LIMIT 0`));
    }
    return out;
  });

  await check('node-pg.array_rows', async (c) => {
    const r = await c.query({
      text: 'SELECT status, n, total FROM order_status ORDER BY status',
      rowMode: 'array',
    });
    return typed(r.rows);
  });

  await check('node-pg.simple_multi_statement', async (c) => {
    // No parameters: the simple query protocol, two results in one call.
    const results = await c.query(
      'SELECT count(*) AS n FROM big_orders; SELECT customer FROM customer_info ORDER BY 1 LIMIT 2',
    );
    return results.map((r) => ({ command: r.command, rows: typed(r.rows) }));
  });

  await check('node-pg.prepared_named', async (c) => {
    // A named statement is parsed once and bound again with new values.
    const out = [];
    for (const n of [30, 31, 34]) {
      const r = await c.query({ name: 'revenue_from', text: REVENUE_FROM, values: [n, 'c0'] });
      out.push(typed(r.rows));
    }
    return out;
  });
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
