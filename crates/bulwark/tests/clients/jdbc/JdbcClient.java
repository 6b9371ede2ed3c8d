// The PostgreSQL JDBC driver (pgjdbc) against a running Bulwark: DatabaseMetaData (product
// version, getTables, getColumns), typed PreparedStatement parameters and ResultSet getters, batches, generated keys, transactions
// with commit, rollback and savepoints, SQLSTATEs of errors (the connection goes on after
// each), and a statement run past prepareThreshold (5), when the driver switches to a named
// server-side statement and binary results. Exits non-zero on any mismatch.
// Usage: javac -cp /usr/share/java/postgresql.jar -d OUT JdbcClient.java &&
//        java -cp OUT:/usr/share/java/postgresql.jar JdbcClient PORT [USER]

import java.math.BigDecimal;
import java.sql.Connection;
import java.sql.DatabaseMetaData;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Savepoint;
import java.sql.Statement;
import java.sql.Timestamp;
import java.sql.Types;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Objects;

public class JdbcClient {
    static void check(boolean ok, String what) {
        if (!ok) {
            throw new AssertionError(what);
        }
    }

    static void checkEq(Object actual, Object expected, String what) {
        if (!Objects.equals(actual, expected)) {
            throw new AssertionError(what + ": expected <" + expected + "> but got <" + actual + ">");
        }
    }

    /** The rows of a query, each column as getString gives it. */
    static List<List<String>> rows(Connection conn, String sql) throws SQLException {
        List<List<String>> out = new ArrayList<>();
        try (Statement st = conn.createStatement(); ResultSet rs = st.executeQuery(sql)) {
            int n = rs.getMetaData().getColumnCount();
            while (rs.next()) {
                List<String> row = new ArrayList<>();
                for (int i = 1; i <= n; i++) {
                    row.add(rs.getString(i));
                }
                out.add(row);
            }
        }
        return out;
    }

    /** Runs `sql`, which must fail with `sqlState`; the connection must then still answer. */
    static void expectError(Connection conn, String sql, String sqlState) throws SQLException {
        try (Statement st = conn.createStatement()) {
            st.execute(sql);
            throw new AssertionError(sql + " succeeded; expected SQLSTATE " + sqlState);
        } catch (SQLException e) {
            checkEq(e.getSQLState(), sqlState, sql + " (" + e.getMessage() + ")");
        }
        checkEq(rows(conn, "SELECT 1"), List.of(List.of("1")), "the connection after " + sqlState);
    }

    public static void main(String[] args) throws Exception {
        String port = args[0];
        String user = args.length > 1 ? args[1] : "bulwark";
        String url = "jdbc:postgresql://127.0.0.1:" + port + "/" + user + "?user=" + user;
        try (Connection conn = DriverManager.getConnection(url)) {
            run(conn);
        }
        System.out.println("jdbc ok");
    }

    static void run(Connection conn) throws Exception {
        check(conn.isValid(5), "isValid");
        check(conn.getAutoCommit(), "autocommit is on by default");
        try (Statement st = conn.createStatement()) {
            st.execute("DROP TABLE IF EXISTS jdbc_items");
            st.execute(
                    "CREATE TABLE jdbc_items (id SERIAL PRIMARY KEY, n INT, big BIGINT, name TEXT NOT NULL,"
                            + " price NUMERIC(10,2), at TIMESTAMPTZ, ok BOOLEAN, raw BYTEA)");
        }

        // DatabaseMetaData: the product, and the new table through pg_catalog queries.
        DatabaseMetaData md = conn.getMetaData();
        checkEq(md.getDatabaseProductName(), "PostgreSQL", "getDatabaseProductName");
        String version = md.getDatabaseProductVersion();
        check(version.matches("\\d+\\.\\d+.*"), "getDatabaseProductVersion: " + version);
        check(md.getDatabaseMajorVersion() >= 9, "getDatabaseMajorVersion: " + md.getDatabaseMajorVersion());
        try (ResultSet rs = md.getTables(null, "public", "jdbc_items", new String[] {"TABLE"})) {
            check(rs.next(), "getTables finds jdbc_items");
            checkEq(List.of(rs.getString("TABLE_SCHEM"), rs.getString("TABLE_NAME"), rs.getString("TABLE_TYPE")),
                    List.of("public", "jdbc_items", "TABLE"), "getTables");
            check(!rs.next(), "getTables: one table");
        }
        try (ResultSet rs = md.getTables(null, "public", "jdbc_no_such_table", null)) {
            check(!rs.next(), "getTables of a missing table");
        }
        List<String> columns = new ArrayList<>();
        try (ResultSet rs = md.getColumns(null, "public", "jdbc_items", null)) {
            while (rs.next()) {
                columns.add(rs.getInt("ORDINAL_POSITION") + " " + rs.getString("COLUMN_NAME") + " "
                        + rs.getString("TYPE_NAME") + " " + rs.getInt("DATA_TYPE") + " " + rs.getInt("NULLABLE") + " "
                        + rs.getString("IS_AUTOINCREMENT"));
            }
        }
        checkEq(columns, List.of(
                "1 id serial " + Types.INTEGER + " " + DatabaseMetaData.columnNoNulls + " YES",
                "2 n int4 " + Types.INTEGER + " " + DatabaseMetaData.columnNullable + " NO",
                "3 big int8 " + Types.BIGINT + " " + DatabaseMetaData.columnNullable + " NO",
                "4 name text " + Types.VARCHAR + " " + DatabaseMetaData.columnNoNulls + " NO",
                "5 price numeric " + Types.NUMERIC + " " + DatabaseMetaData.columnNullable + " NO",
                "6 at timestamptz " + Types.TIMESTAMP + " " + DatabaseMetaData.columnNullable + " NO",
                "7 ok bool " + Types.BIT + " " + DatabaseMetaData.columnNullable + " NO",
                "8 raw bytea " + Types.BINARY + " " + DatabaseMetaData.columnNullable + " NO"), "getColumns");
        try (ResultSet rs = md.getColumns(null, "public", "jdbc_items", "price")) {
            check(rs.next(), "getColumns of one column");
            checkEq(List.of(rs.getInt("COLUMN_SIZE"), rs.getInt("DECIMAL_DIGITS")), List.of(10, 2), "numeric(10,2)");
        }

        // PreparedStatement parameters of several types, and executeUpdate's count.
        Timestamp at = Timestamp.from(Instant.parse("2024-01-02T03:04:05.678Z"));
        try (PreparedStatement ps = conn.prepareStatement(
                "INSERT INTO jdbc_items (n, big, name, price, at, ok) VALUES (?, ?, ?, ?, ?, ?)")) {
            ps.setInt(1, 42);
            ps.setLong(2, 9007199254740993L);
            ps.setString(3, "héllo, wörld");
            ps.setBigDecimal(4, new BigDecimal("1234.50"));
            ps.setTimestamp(5, at);
            ps.setBoolean(6, true);
            checkEq(ps.executeUpdate(), 1, "executeUpdate");
            ps.setNull(1, Types.INTEGER);
            ps.setNull(2, Types.BIGINT);
            ps.setString(3, "nulls");
            ps.setNull(4, Types.NUMERIC);
            ps.setNull(5, Types.TIMESTAMP_WITH_TIMEZONE);
            ps.setNull(6, Types.BOOLEAN);
            checkEq(ps.executeUpdate(), 1, "executeUpdate with NULLs");
        }

        // ResultSet getters.
        try (PreparedStatement ps = conn.prepareStatement(
                "SELECT id, n, big, name, price, at, ok, raw FROM jdbc_items WHERE name = ?")) {
            ps.setString(1, "héllo, wörld");
            try (ResultSet rs = ps.executeQuery()) {
                check(rs.next(), "the row is there");
                checkEq(rs.getInt("id"), 1, "getInt(id)");
                checkEq(rs.getInt("n"), 42, "getInt(n)");
                checkEq(rs.getLong("big"), 9007199254740993L, "getLong");
                checkEq(rs.getString("name"), "héllo, wörld", "getString");
                checkEq(rs.getBigDecimal("price"), new BigDecimal("1234.50"), "getBigDecimal");
                checkEq(rs.getTimestamp("at").toInstant(), at.toInstant(), "getTimestamp");
                checkEq(rs.getBoolean("ok"), true, "getBoolean");
                checkEq(rs.getBytes("raw"), null, "getBytes of NULL");
                check(rs.wasNull(), "wasNull");
                checkEq(rs.getObject("n").getClass(), Integer.class, "getObject(int4)");
                checkEq(rs.getObject("big").getClass(), Long.class, "getObject(int8)");
                checkEq(rs.getObject("price").getClass(), BigDecimal.class, "getObject(numeric)");
                checkEq(rs.getObject("ok").getClass(), Boolean.class, "getObject(bool)");
                checkEq(rs.getMetaData().getColumnTypeName(3), "int8", "getColumnTypeName");
                checkEq(rs.getMetaData().getColumnType(5), Types.NUMERIC, "getColumnType");
                check(!rs.next(), "one row");
            }
            ps.setString(1, "nulls");
            try (ResultSet rs = ps.executeQuery()) {
                check(rs.next(), "the NULL row is there");
                checkEq(rs.getInt("n"), 0, "getInt of NULL");
                check(rs.wasNull(), "wasNull after getInt");
                checkEq(rs.getObject("big"), null, "getObject of NULL");
                checkEq(rs.getBigDecimal("price"), null, "getBigDecimal of NULL");
                checkEq(rs.getTimestamp("at"), null, "getTimestamp of NULL");
            }
        }

        // bytea: setBytes (sent in binary), read back with getBytes; a backslash is no escape.
        byte[] raw = {0, 1, 2, 127, (byte) 128, (byte) 255};
        try (PreparedStatement ps = conn.prepareStatement("UPDATE jdbc_items SET raw = ? WHERE id = ?")) {
            ps.setBytes(1, raw);
            ps.setInt(2, 1);
            checkEq(ps.executeUpdate(), 1, "UPDATE count");
            ps.setBytes(1, "\\x41".getBytes(java.nio.charset.StandardCharsets.US_ASCII));
            ps.setInt(2, 2);
            checkEq(ps.executeUpdate(), 1, "UPDATE count");
        }
        try (Statement st = conn.createStatement();
                ResultSet rs = st.executeQuery("SELECT raw, length(raw) FROM jdbc_items ORDER BY id")) {
            check(rs.next(), "bytea row");
            check(Arrays.equals(rs.getBytes(1), raw), "getBytes: " + Arrays.toString(rs.getBytes(1)));
            checkEq(rs.getInt(2), 6, "length(bytea)");
            check(rs.next(), "second bytea row");
            checkEq(rs.getString(1), "\\x5c783431", "bytea as text");
        }

        // A batch of inserts.
        try (PreparedStatement ps = conn.prepareStatement("INSERT INTO jdbc_items (n, name) VALUES (?, ?)")) {
            for (int i = 0; i < 5; i++) {
                ps.setInt(1, 100 + i);
                ps.setString(2, "batch" + i);
                ps.addBatch();
            }
            int[] counts = ps.executeBatch();
            checkEq(Arrays.toString(counts), "[1, 1, 1, 1, 1]", "executeBatch counts");
        }
        checkEq(rows(conn, "SELECT count(*), sum(n) FROM jdbc_items WHERE name LIKE 'batch%'"),
                List.of(List.of("5", "510")), "the batch's rows");

        // Generated keys (the driver appends RETURNING *).
        try (PreparedStatement ps = conn.prepareStatement(
                "INSERT INTO jdbc_items (n, name) VALUES (?, ?)", Statement.RETURN_GENERATED_KEYS)) {
            ps.setInt(1, 7);
            ps.setString(2, "keyed");
            checkEq(ps.executeUpdate(), 1, "executeUpdate with generated keys");
            try (ResultSet keys = ps.getGeneratedKeys()) {
                check(keys.next(), "a generated key");
                checkEq(keys.getInt("id"), 8, "the generated id");
                checkEq(keys.getString("name"), "keyed", "the returned row");
                check(!keys.next(), "one generated key");
            }
        }
        try (PreparedStatement ps = conn.prepareStatement(
                "INSERT INTO jdbc_items (n, name) VALUES (?, ?)", new String[] {"id"})) {
            ps.setInt(1, 8);
            ps.setString(2, "keyed by name");
            ps.executeUpdate();
            try (ResultSet keys = ps.getGeneratedKeys()) {
                check(keys.next(), "a generated key by column name");
                checkEq(keys.getLong(1), 9L, "the generated id by column name");
                checkEq(keys.getMetaData().getColumnCount(), 1, "only the named column");
            }
        }

        // Transactions: rollback leaves nothing, commit keeps.
        conn.setAutoCommit(false);
        try (Statement st = conn.createStatement()) {
            st.executeUpdate("INSERT INTO jdbc_items (n, name) VALUES (200, 'rolled back')");
            st.executeUpdate("DELETE FROM jdbc_items WHERE id = 1");
        }
        checkEq(rows(conn, "SELECT count(*) FROM jdbc_items WHERE id = 1 OR n = 200"), List.of(List.of("1")),
                "inside the transaction");
        conn.rollback();
        checkEq(rows(conn, "SELECT count(*) FROM jdbc_items WHERE id = 1 OR n = 200"), List.of(List.of("1")),
                "after rollback");
        checkEq(rows(conn, "SELECT name FROM jdbc_items WHERE n = 200"), List.of(), "the rolled back row");
        try (Statement st = conn.createStatement()) {
            st.executeUpdate("INSERT INTO jdbc_items (n, name) VALUES (201, 'committed')");
        }
        conn.commit();

        // Savepoints, including one rolled back to after a failed statement.
        try (Statement st = conn.createStatement()) {
            st.executeUpdate("INSERT INTO jdbc_items (id, name) VALUES (50, 'kept')");
            Savepoint sp1 = conn.setSavepoint("sp1");
            st.executeUpdate("INSERT INTO jdbc_items (id, name) VALUES (51, 'undone')");
            conn.rollback(sp1);
            Savepoint sp2 = conn.setSavepoint();
            try {
                st.executeUpdate("INSERT INTO jdbc_items (id, name) VALUES (50, 'duplicate')");
                throw new AssertionError("duplicate key accepted");
            } catch (SQLException e) {
                checkEq(e.getSQLState(), "23505", "duplicate inside a savepoint: " + e.getMessage());
            }
            try {
                st.executeQuery("SELECT 1").close();
                throw new AssertionError("a statement in an aborted transaction ran");
            } catch (SQLException e) {
                checkEq(e.getSQLState(), "25P02", "in failed transaction: " + e.getMessage());
            }
            conn.rollback(sp2);
            st.executeUpdate("INSERT INTO jdbc_items (id, name) VALUES (52, 'also kept')");
            Savepoint sp3 = conn.setSavepoint("sp3");
            st.executeUpdate("INSERT INTO jdbc_items (id, name) VALUES (53, 'released')");
            conn.releaseSavepoint(sp3);
        }
        conn.commit();
        conn.setAutoCommit(true);
        checkEq(rows(conn, "SELECT id FROM jdbc_items WHERE id >= 50 ORDER BY id"),
                List.of(List.of("50"), List.of("52"), List.of("53")), "savepoints");
        checkEq(rows(conn, "SELECT name FROM jdbc_items WHERE n = 201"), List.of(List.of("committed")), "commit");

        // Errors by SQLSTATE; the connection goes on after each.
        expectError(conn, "SELECT * FROM jdbc_missing_table", "42P01");
        expectError(conn, "SELEC 1", "42601");
        expectError(conn, "SELECT 1 / 0", "22012");
        expectError(conn, "INSERT INTO jdbc_items (id, name) VALUES (1, 'dup')", "23505");
        try (PreparedStatement ps = conn.prepareStatement("INSERT INTO jdbc_items (id, name) VALUES (?, ?)")) {
            ps.setInt(1, 1);
            ps.setString(2, "dup");
            ps.executeUpdate();
            throw new AssertionError("duplicate key accepted");
        } catch (SQLException e) {
            checkEq(e.getSQLState(), "23505", e.getMessage());
            check(e.getMessage().contains("jdbc_items_pkey"), e.getMessage());
        }
        // An error in a batch.
        try (PreparedStatement ps = conn.prepareStatement("INSERT INTO jdbc_items (id, name) VALUES (?, ?)")) {
            ps.setInt(1, 60);
            ps.setString(2, "fine");
            ps.addBatch();
            ps.setInt(1, 60);
            ps.setString(2, "dup");
            ps.addBatch();
            ps.executeBatch();
            throw new AssertionError("a batch with a duplicate key succeeded");
        } catch (java.sql.BatchUpdateException e) {
            checkEq(e.getSQLState(), "23505", e.getMessage());
        }
        checkEq(rows(conn, "SELECT 2"), List.of(List.of("2")), "the connection after a failed batch");

        // A PreparedStatement run past prepareThreshold (5): from then on the driver uses a
        // named server-side statement (and binary results for the types it can read).
        try (PreparedStatement ps = conn.prepareStatement(
                "SELECT id, n, big, name, price, at, ok FROM jdbc_items WHERE id = ?")) {
            for (int run = 0; run < 12; run++) {
                ps.setInt(1, 1);
                try (ResultSet rs = ps.executeQuery()) {
                    check(rs.next(), "run " + run);
                    checkEq(rs.getInt(1), 1, "id, run " + run);
                    checkEq(rs.getInt(2), 42, "n, run " + run);
                    checkEq(rs.getLong(3), 9007199254740993L, "big, run " + run);
                    checkEq(rs.getString(4), "héllo, wörld", "name, run " + run);
                    checkEq(rs.getBigDecimal(5), new BigDecimal("1234.50"), "price, run " + run);
                    checkEq(rs.getTimestamp(6).toInstant(), at.toInstant(), "at, run " + run);
                    checkEq(rs.getBoolean(7), true, "ok, run " + run);
                    check(!rs.next(), "one row, run " + run);
                }
            }
        }
        try (PreparedStatement ps = conn.prepareStatement("INSERT INTO jdbc_items (n, name, price) VALUES (?, ?, ?)")) {
            for (int run = 0; run < 8; run++) {
                ps.setInt(1, 300 + run);
                ps.setString(2, "repeat");
                ps.setBigDecimal(3, new BigDecimal(run + ".25"));
                checkEq(ps.executeUpdate(), 1, "repeated insert " + run);
            }
        }
        checkEq(rows(conn, "SELECT count(*), sum(n), sum(price) FROM jdbc_items WHERE name = 'repeat'"),
                List.of(List.of("8", "2428", "30.00")), "the repeated inserts");

        // Arrays: a parameter made with createArrayOf (sent in binary), and typed results.
        try (PreparedStatement ps = conn.prepareStatement("SELECT ?::int[], ARRAY[1::int8, 2], ARRAY['a', 'b']")) {
            ps.setArray(1, conn.createArrayOf("int4", new Object[] {1, null, 3}));
            try (ResultSet rs = ps.executeQuery()) {
                check(rs.next(), "array row");
                java.sql.Array a = rs.getArray(1);
                checkEq(a.getBaseTypeName(), "int4", "int[] element type");
                checkEq(Arrays.asList((Object[]) a.getArray()), Arrays.asList(1, null, 3), "int[] elements");
                checkEq(rs.getArray(2).getBaseTypeName(), "int8", "bigint[] element type");
                checkEq(Arrays.asList((Object[]) rs.getArray(2).getArray()), Arrays.asList(1L, 2L), "bigint[] elements");
                checkEq(Arrays.asList((Object[]) rs.getArray(3).getArray()), Arrays.asList("a", "b"), "text[] elements");
            }
        }
    }
}
