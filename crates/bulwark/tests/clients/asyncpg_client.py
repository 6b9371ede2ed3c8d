"""asyncpg against a running Bulwark: a connection pool (whose release runs asyncpg's reset
query: pg_advisory_unlock_all(), CLOSE ALL, UNLISTEN *, RESET ALL), typed parameters,
executemany, fetch in a transaction with a savepoint, prepared statements kept across
acquisitions, errors caught by SQLSTATE, and an enum type (whose oid asyncpg looks up in
pg_type before it binds or reads a value of it). Exits non-zero on any mismatch.
Usage: python3 asyncpg_client.py PORT [USER]"""

import asyncio
import sys
from decimal import Decimal

import asyncpg

port = int(sys.argv[1])
user = sys.argv[2] if len(sys.argv) > 2 else "bulwark"


async def main():
    pool = await asyncpg.create_pool(
        host="127.0.0.1", port=port, user=user, database=user, min_size=1, max_size=1
    )
    async with pool.acquire() as conn:
        await conn.execute("CREATE TABLE acct (id BIGINT PRIMARY KEY, owner TEXT NOT NULL, bal NUMERIC(12,2))")
        await conn.executemany(
            "INSERT INTO acct VALUES ($1, $2, $3)",
            [(i, f"owner{i}", Decimal(100)) for i in range(1, 11)],
        )
        # A session setting, which the pool's reset on release must undo.
        await conn.execute("SET statement_timeout = '7s'")
        assert await conn.fetchval("SHOW statement_timeout") == "7s"

    # The same (only) connection, reset by the release above.
    for _ in range(3):
        async with pool.acquire() as conn:
            assert await conn.fetchval("SHOW statement_timeout") == "0"
            total = await conn.fetchval("SELECT sum(bal) FROM acct")
            assert total == Decimal(1000), total
            await conn.execute("SET application_name = 'borrowed'")

    # Transfers in transactions; a failing one rolls back; a savepoint keeps the block going.
    async with pool.acquire() as conn:
        async with conn.transaction():
            await conn.execute("UPDATE acct SET bal = bal - $1 WHERE id = $2", Decimal(30), 1)
            await conn.execute("UPDATE acct SET bal = bal + $1 WHERE id = $2", Decimal(30), 2)
        try:
            async with conn.transaction():
                await conn.execute("UPDATE acct SET bal = bal - 5 WHERE id = 3")
                await conn.execute("INSERT INTO acct VALUES (1, 'dup', 0)")
            raise AssertionError("duplicate key accepted")
        except asyncpg.UniqueViolationError as e:
            assert e.sqlstate == "23505", e.sqlstate
        async with conn.transaction():
            await conn.execute("UPDATE acct SET bal = bal - 1 WHERE id = 4")
            try:
                async with conn.transaction():  # SAVEPOINT
                    await conn.execute("UPDATE acct SET bal = bal / 0 WHERE id = 5")
            except asyncpg.DivisionByZeroError:
                pass
            await conn.execute("UPDATE acct SET bal = bal + 1 WHERE id = 5")
        # Computed RETURNING columns carry their types (asyncpg decodes by them).
        row = await conn.fetchrow("UPDATE acct SET bal = bal WHERE id = 6 RETURNING id * 2, bal + 1, owner || '!'")
        assert tuple(row) == (12, Decimal(101), "owner6!"), row
        rows = await conn.fetch("SELECT id, bal FROM acct WHERE id <= 5 ORDER BY id")
        got = [(r["id"], r["bal"]) for r in rows]
        want = [(1, Decimal(70)), (2, Decimal(130)), (3, Decimal(100)), (4, Decimal(99)), (5, Decimal(101))]
        assert got == want, got
        assert await conn.fetchval("SELECT sum(bal) FROM acct") == Decimal(1000)
        # array_agg of text is a text[] (binary, decoded by asyncpg into a list).
        owners = await conn.fetchval("SELECT array_agg(owner ORDER BY id DESC) FROM acct WHERE id <= 3")
        assert owners == ["owner3", "owner2", "owner1"], owners
        # Arrays of other types: asyncpg looks their codecs up with an oid[] parameter, and
        # sends and reads them in binary.
        ids = await conn.fetchval("SELECT array_agg(id ORDER BY id) FROM acct WHERE id <= 3")
        assert ids == [1, 2, 3], ids
        assert await conn.fetchval("SELECT $1::int[]", [4, None, 5]) == [4, None, 5]
        await conn.execute("CREATE TABLE tagged (id INT PRIMARY KEY, tags TEXT[], nums BIGINT[])")
        await conn.execute("INSERT INTO tagged VALUES ($1, $2, $3)", 1, ["a", "b c"], [7, 8])
        row = await conn.fetchrow("SELECT tags, nums FROM tagged WHERE 8 = ANY (nums)")
        assert (row["tags"], row["nums"]) == (["a", "b c"], [7, 8]), row

    # An enum type: parameters and results of it, compared in the labels' order.
    async with pool.acquire() as conn:
        await conn.execute("DROP TABLE IF EXISTS painted; DROP TYPE IF EXISTS color")
        await conn.execute("CREATE TYPE color AS ENUM ('red', 'green', 'blue')")
        await conn.execute("CREATE TABLE painted (id int PRIMARY KEY, c color)")
        await conn.executemany("INSERT INTO painted VALUES ($1, $2)", [(1, "green"), (2, "blue"), (3, "red")])
        rows = await conn.fetch("SELECT id, c FROM painted WHERE c >= $1 ORDER BY c", "green")
        assert [tuple(r) for r in rows] == [(1, "green"), (2, "blue")], rows
        try:
            await conn.execute("INSERT INTO painted VALUES ($1, $2)", 4, "mauve")
            raise AssertionError("an unknown label was stored")
        except asyncpg.InvalidTextRepresentationError as e:
            assert e.sqlstate == "22P02", e.sqlstate
        await conn.execute("DROP TABLE painted; DROP TYPE color")

    # Prepared statements survive release and reuse (the pool does not deallocate them).
    async with pool.acquire() as conn:
        stmt = await conn.prepare("SELECT owner FROM acct WHERE id = $1")
        assert await stmt.fetchval(7) == "owner7"
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT owner FROM acct WHERE id = $1", 8) == "owner8"
        # DEALLOCATE ALL drops them under asyncpg's statement cache: its next use fails with
        # 26000, as on PostgreSQL; a statement not cached is prepared afresh.
        await conn.execute("DEALLOCATE ALL")
        try:
            await conn.fetchval("SELECT owner FROM acct WHERE id = $1", 9)
            raise AssertionError("a deallocated statement ran")
        except asyncpg.InvalidSQLStatementNameError as e:
            assert e.sqlstate == "26000", e.sqlstate
        assert await conn.fetchval("SELECT owner FROM acct WHERE id = $1 + 0", 9) == "owner9"

    await pool.close()
    print("asyncpg ok")


asyncio.run(main())
