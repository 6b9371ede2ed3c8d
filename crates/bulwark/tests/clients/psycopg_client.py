"""psycopg 3 against a running Bulwark: parameters, binary results, transactions (with
savepoints), COPY, and a unique violation caught by its SQLSTATE. Exits non-zero on any
mismatch. Usage: python3 psycopg_client.py PORT [USER]"""

import sys
from datetime import date, datetime, timezone
from decimal import Decimal

import psycopg
from psycopg import errors

port = int(sys.argv[1])
user = sys.argv[2] if len(sys.argv) > 2 else "bulwark"
conn = psycopg.connect(host="127.0.0.1", port=port, user=user, dbname=user, autocommit=True)
conn.execute(
    "CREATE TABLE items (id BIGINT PRIMARY KEY, name TEXT NOT NULL, price NUMERIC(10,2),"
    " seen TIMESTAMPTZ, born DATE, ok BOOLEAN, ratio DOUBLE PRECISION)"
)

# Parameters of several types, bound server-side (psycopg 3 uses the extended protocol).
seen = datetime(2024, 1, 2, 3, 4, 5, 678000, tzinfo=timezone.utc)
conn.execute(
    "INSERT INTO items VALUES (%s, %s, %s, %s, %s, %s, %s)",
    (1, "apple", Decimal("1.25"), seen, date(2020, 2, 29), True, 0.5),
)
with conn.cursor() as cur:
    cur.executemany("INSERT INTO items (id, name) VALUES (%s, %s)", [(2, "pear"), (3, "plum")])

# Binary results, decoded by psycopg's binary loaders.
expected = (1, "apple", Decimal("1.25"), seen, date(2020, 2, 29), True, 0.5)
for binary in (False, True):
    with conn.cursor(binary=binary) as cur:
        cur.execute("SELECT id, name, price, seen, born, ok, ratio FROM items WHERE id = %s", (1,))
        row = cur.fetchone()
        assert row == expected, (binary, row)
        cur.execute("SELECT name FROM items WHERE price IS NULL ORDER BY id")
        assert [r[0] for r in cur.fetchall()] == ["pear", "plum"], binary

# Transactions: commit, rollback on exception, and a savepoint inside a block.
with conn.transaction():
    conn.execute("INSERT INTO items (id, name) VALUES (4, 'fig')")
try:
    with conn.transaction():
        conn.execute("INSERT INTO items (id, name) VALUES (5, 'kiwi')")
        raise RuntimeError("roll it back")
except RuntimeError:
    pass
with conn.transaction():
    conn.execute("INSERT INTO items (id, name) VALUES (6, 'lime')")
    try:
        with conn.transaction():  # SAVEPOINT
            conn.execute("INSERT INTO items (id, name) VALUES (6, 'again')")
    except errors.UniqueViolation:
        pass  # ROLLBACK TO SAVEPOINT: the block goes on
    conn.execute("INSERT INTO items (id, name) VALUES (7, 'date')")
ids = [r[0] for r in conn.execute("SELECT id FROM items ORDER BY id").fetchall()]
assert ids == [1, 2, 3, 4, 6, 7], ids

# A unique violation, caught by its class and its SQLSTATE.
try:
    conn.execute("INSERT INTO items (id, name) VALUES (1, 'dup')")
    raise AssertionError("duplicate key accepted")
except errors.UniqueViolation as e:
    assert e.sqlstate == "23505", e.sqlstate
    assert "items_pkey" in str(e), str(e)
try:
    conn.execute("INSERT INTO items (id) VALUES (100)")
    raise AssertionError("NULL accepted")
except errors.NotNullViolation as e:
    assert e.sqlstate == "23502"

# COPY both ways.
with conn.cursor() as cur:
    with cur.copy("COPY items (id, name) FROM STDIN") as copy:
        for i in range(10, 20):
            copy.write_row((i, f"n{i}"))
    assert conn.execute("SELECT count(*) FROM items WHERE id >= 10").fetchone()[0] == 10
    with cur.copy("COPY (SELECT id, name FROM items WHERE id < 4 ORDER BY id) TO STDOUT") as copy:
        rows = [tuple(r) for r in copy.rows()]
    assert rows == [("1", "apple"), ("2", "pear"), ("3", "plum")], rows

conn.close()
print("psycopg ok")
