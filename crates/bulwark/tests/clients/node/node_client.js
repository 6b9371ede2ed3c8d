// node-postgres (`pg`) against a running Bulwark: a parameterized INSERT ... RETURNING * and
// the JavaScript types pg parses (bigint and numeric as strings, Date, Buffer), named
// prepared statements, rowMode 'array', transactions with a savepoint, errors by SQLSTATE
// (the connection stays usable after each), a Pool of 4 running 16 concurrent queries, a
// multi-statement simple query, and pg's parsing of array results. Exits non-zero on any
// mismatch. Usage: node node_client.js PORT [USER] (after `npm ci` in this folder)

'use strict';

const assert = require('node:assert/strict');
const { Client, Pool } = require('pg');

const port = Number(process.argv[2]);
const user = process.argv[3] || 'bulwark';
const config = { host: '127.0.0.1', port, user, database: user };

// Fails with a SQLSTATE `code`; the same connection must then still answer.
async function expectError(client, query, code, values) {
  let err;
  try {
    await client.query(query, values);
  } catch (e) {
    err = e;
  }
  assert.ok(err, `${JSON.stringify(query)} succeeded; expected SQLSTATE ${code}`);
  assert.equal(err.code, code, `${JSON.stringify(query)}: ${err.message}`);
  const after = await client.query('SELECT 1 AS one');
  assert.deepEqual(after.rows, [{ one: 1 }], `the connection after ${code}`);
  return err;
}

async function main() {
  const client = new Client(config);
  await client.connect();

  await client.query('DROP TABLE IF EXISTS node_items');
  await client.query(
    'CREATE TABLE node_items (id SERIAL PRIMARY KEY, n INT, big BIGINT, f FLOAT8, amount NUMERIC(12,3),' +
      ' ok BOOL, at TIMESTAMPTZ, day DATE, raw BYTEA, note TEXT)',
  );

  // Parameters (the extended protocol) and the types pg parses the returned row into.
  const at = new Date(Date.UTC(2024, 0, 2, 3, 4, 5, 678));
  const raw = Buffer.from([0, 1, 2, 127, 128, 255]);
  const inserted = await client.query(
    'INSERT INTO node_items (n, big, f, amount, ok, at, day, raw, note)' +
      ' VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING *',
    // pg sends a Buffer in binary format without a type: the column's type reads it.
    [42, '9007199254740993', 1.5, '12345.678', true, at, '2020-02-29', raw, 'héllo, wörld'],
  );
  assert.equal(inserted.command, 'INSERT');
  assert.equal(inserted.rowCount, 1);
  assert.deepEqual(
    inserted.fields.map((f) => f.name),
    ['id', 'n', 'big', 'f', 'amount', 'ok', 'at', 'day', 'raw', 'note'],
  );
  const row = inserted.rows[0];
  assert.equal(row.id, 1); // serial: int4, a number
  assert.equal(row.n, 42);
  assert.equal(row.big, '9007199254740993'); // int8: a string (beyond Number's precision)
  assert.equal(row.f, 1.5);
  assert.equal(row.amount, '12345.678'); // numeric: a string
  assert.equal(row.ok, true);
  assert.ok(row.at instanceof Date, `timestamptz: ${row.at}`);
  assert.equal(row.at.getTime(), at.getTime());
  assert.ok(row.day instanceof Date, `date: ${row.day}`); // local midnight of that day
  assert.deepEqual([row.day.getFullYear(), row.day.getMonth() + 1, row.day.getDate()], [2020, 2, 29]);
  assert.ok(Buffer.isBuffer(row.raw), `bytea: ${row.raw}`);
  assert.ok(row.raw.equals(raw), `bytea: ${row.raw.toString('hex')}`);
  assert.equal(row.note, 'héllo, wörld');

  // NULLs both ways, and the serial going on.
  const nulls = await client.query(
    'INSERT INTO node_items (n, big, amount, at, raw, note) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id, n, big, amount, at, raw, note',
    [null, '-5', '-0.5', null, null, 'second'],
  );
  assert.deepEqual(nulls.rows, [{ id: 2, n: null, big: '-5', amount: '-0.500', at: null, raw: null, note: 'second' }]);
  await client.query("INSERT INTO node_items (n, note) VALUES (7, 'third')");

  // A named prepared statement: parsed once, executed twice with other values.
  const byId = 'SELECT note, big FROM node_items WHERE id = $1';
  const first = await client.query({ name: 'node-by-id', text: byId, values: [1] });
  assert.deepEqual(first.rows, [{ note: 'héllo, wörld', big: '9007199254740993' }]);
  const second = await client.query({ name: 'node-by-id', text: byId, values: [2] });
  assert.deepEqual(second.rows, [{ note: 'second', big: '-5' }]);
  const none = await client.query({ name: 'node-by-id', text: byId, values: [99] });
  assert.equal(none.rowCount, 0);

  // rowMode 'array': rows as arrays, names still in fields.
  const arrays = await client.query({ text: 'SELECT id, note FROM node_items ORDER BY id', rowMode: 'array' });
  assert.deepEqual(arrays.rows, [[1, 'héllo, wörld'], [2, 'second'], [3, 'third']]);
  assert.deepEqual(arrays.fields.map((f) => f.name), ['id', 'note']);

  // A transaction rolled back leaves nothing.
  await client.query('BEGIN');
  await client.query("INSERT INTO node_items (n, note) VALUES (100, 'rolled back')");
  await client.query('UPDATE node_items SET note = $1 WHERE id = $2', ['changed', 1]);
  await client.query('DELETE FROM node_items WHERE id = 3');
  assert.equal((await client.query('SELECT count(*)::int AS c FROM node_items')).rows[0].c, 3);
  await client.query('ROLLBACK');
  const afterRollback = await client.query('SELECT id, note FROM node_items ORDER BY id');
  assert.deepEqual(afterRollback.rows, [
    { id: 1, note: 'héllo, wörld' },
    { id: 2, note: 'second' },
    { id: 3, note: 'third' },
  ]);

  // A savepoint: the statements after it are undone, those before it committed, and a
  // failed statement inside it does not abort the transaction once rolled back to it.
  await client.query('BEGIN');
  await client.query("INSERT INTO node_items (id, note) VALUES (10, 'kept')");
  await client.query('SAVEPOINT s1');
  await client.query("INSERT INTO node_items (id, note) VALUES (11, 'undone')");
  await client.query('ROLLBACK TO SAVEPOINT s1');
  await client.query('SAVEPOINT s2');
  const dup = await client.query("INSERT INTO node_items (id, note) VALUES (10, 'duplicate')").catch((e) => e);
  assert.equal(dup.code, '23505', String(dup));
  const aborted = await client.query('SELECT 1').catch((e) => e);
  assert.equal(aborted.code, '25P02', String(aborted)); // in failed transaction
  await client.query('ROLLBACK TO SAVEPOINT s2');
  await client.query("INSERT INTO node_items (id, note) VALUES (12, 'also kept')");
  await client.query('RELEASE SAVEPOINT s2');
  await client.query('COMMIT');
  const ids = await client.query({ text: 'SELECT id FROM node_items WHERE id >= 10 ORDER BY id', rowMode: 'array' });
  assert.deepEqual(ids.rows, [[10], [12]]);

  // Errors carry their SQLSTATE, and the connection goes on after each (simple and
  // extended protocol alike).
  await expectError(client, 'SELECT * FROM node_missing_table', '42P01');
  await expectError(client, 'SELEC 1', '42601');
  await expectError(client, 'SELECT 1 / 0', '22012');
  await expectError(client, 'SELECT $1::int / 0', '22012', [1]);
  const unique = await expectError(client, 'INSERT INTO node_items (id, note) VALUES ($1, $2)', '23505', [1, 'dup']);
  assert.equal(unique.constraint, 'node_items_pkey');
  assert.equal(unique.table, 'node_items');
  assert.equal(unique.schema, 'public');
  await expectError(client, 'INSERT INTO node_items (id, note) VALUES (1, $1)', '23505', ['dup']);
  // An error inside a transaction, then ROLLBACK.
  await client.query('BEGIN');
  const inTx = await client.query('SELECT 1 / 0').catch((e) => e);
  assert.equal(inTx.code, '22012', String(inTx));
  const refused = await client.query('SELECT 1', []).catch((e) => e);
  assert.equal(refused.code, '25P02', String(refused));
  await client.query('ROLLBACK');
  assert.deepEqual((await client.query('SELECT 2 AS two')).rows, [{ two: 2 }]);

  // A multi-statement simple query: one result for each statement.
  const multi = await client.query('SELECT 1 AS a; SELECT 2 AS b');
  assert.ok(Array.isArray(multi), 'a multi-statement query gives an array of results');
  assert.equal(multi.length, 2);
  assert.deepEqual(multi[0].rows, [{ a: 1 }]);
  assert.deepEqual(multi[1].rows, [{ b: 2 }]);
  const mixed = await client.query("INSERT INTO node_items (id, note) VALUES (20, 'multi'); SELECT note FROM node_items WHERE id = 20");
  assert.deepEqual(mixed.map((r) => r.command), ['INSERT', 'SELECT']);
  assert.deepEqual(mixed[1].rows, [{ note: 'multi' }]);

  // Arrays from ARRAY[...] expressions, parsed by pg-types.
  const arr = await client.query(
    "SELECT ARRAY[1.5::float8, -2.25, 0] AS f8, ARRAY['a', 'b c', NULL, 'd\"e', '', 'x,y', '{}'] AS t",
  );
  assert.deepEqual(arr.rows, [{ f8: [1.5, -2.25, 0], t: ['a', 'b c', null, 'd"e', '', 'x,y', '{}'] }]);
  const arrParam = await client.query('SELECT ARRAY[$1::text, $2::text, NULL] AS t', ['p', 'q "r"']);
  assert.deepEqual(arrParam.rows, [{ t: ['p', 'q "r"', null] }]);
  // Arrays typed by their elements, so pg parses the elements too.
  const typed = await client.query(
    'SELECT ARRAY[1,2,3] AS i4, ARRAY[1::int8, 9007199254740993] AS i8, ARRAY[true,false] AS b,' +
      " ARRAY[]::int[] AS e, ARRAY[$1::float8, $2::float8] AS f, '{4, 05}'::int[] AS c",
    [0.25, -1],
  );
  assert.deepEqual(typed.fields.map((f) => f.dataTypeID), [1007, 1016, 1000, 1007, 1022, 1007]);
  assert.deepEqual(typed.rows, [{ i4: [1, 2, 3], i8: ['1', '9007199254740993'], b: [true, false], e: [], f: [0.25, -1], c: [4, 5] }]);
  const agg = await client.query('SELECT array_agg(n ORDER BY n) AS ns FROM (VALUES (3), (1), (2)) v(n)');
  assert.deepEqual(agg.rows, [{ ns: [1, 2, 3] }]);
  // A Buffer parameter whose bytes are not UTF-8, and one that looks like bytea's hex form.
  const bytes = await client.query('SELECT $1::bytea AS a, $2::bytea AS b', [raw, Buffer.from('\\x41')]);
  assert.ok(bytes.rows[0].a.equals(raw));
  assert.deepEqual([...bytes.rows[0].b], [92, 120, 52, 49]);

  // jsonb: pg sends an object as its JSON text and parses jsonb results back into objects.
  await client.query('CREATE TABLE node_docs (id INT PRIMARY KEY, doc JSONB)');
  await client.query('INSERT INTO node_docs VALUES ($1, $2), ($3, $4)', [1, { a: [1, 2], s: 'x' }, 2, { s: 'y' }]);
  const docs = await client.query(
    "SELECT doc, doc -> 'a' AS a, doc ->> 's' AS s, jsonb_build_object('k', id) AS o FROM node_docs WHERE doc @> $1",
    [{ s: 'x' }],
  );
  assert.deepEqual(docs.rows, [{ doc: { a: [1, 2], s: 'x' }, a: [1, 2], s: 'x', o: { k: 1 } }]);
  assert.deepEqual(docs.fields.map((f) => f.dataTypeID), [3802, 3802, 25, 3802]);

  await client.end();

  // A Pool of at most 4 connections running 16 queries at once.
  const pool = new Pool({ ...config, max: 4 });
  let connects = 0;
  pool.on('connect', () => {
    connects += 1;
  });
  const results = await Promise.all(
    Array.from({ length: 16 }, (_, i) =>
      pool.query('SELECT $1::int AS i, count(*)::int AS c FROM node_items WHERE id <= $1', [i]),
    ),
  );
  assert.deepEqual(
    results.map((r) => r.rows[0].i),
    Array.from({ length: 16 }, (_, i) => i),
  );
  assert.deepEqual(
    results.map((r) => r.rows[0].c),
    [0, 1, 2, 3, 3, 3, 3, 3, 3, 3, 4, 4, 5, 5, 5, 5],
  );
  assert.equal(connects, 4, 'the pool opened 4 connections');
  assert.equal(pool.totalCount, 4);
  // A transaction on one pooled client while others query.
  const pooled = await pool.connect();
  await pooled.query('BEGIN');
  await pooled.query("INSERT INTO node_items (id, note) VALUES (30, 'pooled')");
  const outside = await pool.query('SELECT count(*)::int AS c FROM node_items WHERE id = 30');
  assert.equal(outside.rows[0].c, 0, 'an uncommitted row is not seen by another connection');
  await pooled.query('COMMIT');
  pooled.release();
  const seen = await pool.query('SELECT note FROM node_items WHERE id = 30');
  assert.deepEqual(seen.rows, [{ note: 'pooled' }]);
  await pool.end();

  console.log('node ok');
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
