//! COPY FROM STDIN and COPY TO STDOUT through the session API: data cut anywhere, both
//! formats, defaults, constraint failures that keep nothing, COPY inside a block, and output
//! that reads back as the same rows.

use sql::session::CopyResponse;
use sql::{Database, Session, Value};
use std::path::Path;
use std::sync::Arc;
use storage::vfs::SimVfs;
use txn::EngineOptions;

fn db() -> Database {
    let opts = EngineOptions { vacuum_interval: None, ..Default::default() };
    Database::open(Arc::new(SimVfs::new(7)), Path::new("/db"), opts).expect("open")
}

fn exec(s: &mut Session, sql: &str) -> Result<sql::QueryResult, sql::Error> {
    let mut last = None;
    for r in s.execute(sql) {
        last = Some(r?);
    }
    Ok(last.expect("a statement"))
}

fn rows(s: &mut Session, sql: &str) -> Vec<Vec<Value>> {
    exec(s, sql).unwrap().rows
}

/// Runs COPY FROM STDIN with `data` sent in chunks of `chunk` bytes.
fn copy_in(s: &mut Session, sql: &str, data: &[u8], chunk: usize) -> Result<String, sql::Error> {
    let r = exec(s, sql)?;
    assert!(matches!(r.copy, Some(CopyResponse::In { .. })), "{sql} starts a COPY FROM");
    assert!(s.copy_in_progress());
    for part in data.chunks(chunk.max(1)) {
        s.copy_data(part)?;
    }
    Ok(s.copy_done()?.tag)
}

fn copy_out(s: &mut Session, sql: &str) -> String {
    match exec(s, sql).unwrap().copy {
        Some(CopyResponse::Out { lines, .. }) => String::from_utf8(lines.concat()).unwrap(),
        other => panic!("{sql} gave {other:?}"),
    }
}

fn text(v: &str) -> Value {
    Value::Text(v.into())
}

#[test]
fn text_and_csv_load_with_defaults_whatever_the_chunking() {
    for chunk in [1, 3, 7, 1 << 20] {
        let mut s = db().session();
        exec(&mut s, "CREATE TABLE t (id INT PRIMARY KEY, name TEXT, note TEXT DEFAULT 'none', n NUMERIC(6,2))")
            .unwrap();
        let tag =
            copy_in(&mut s, "COPY t (id, name, n) FROM STDIN", b"1\tAnn\t1.5\n2\t\\N\t\\N\n3\ta\\tb\t-2\n", chunk);
        assert_eq!(tag.unwrap(), "COPY 3");
        let csv = b"id,name,n\n4,\"x, \"\"y\"\"\",7\n5,\"two\nlines\",\n";
        let tag = copy_in(&mut s, "COPY t (id, name, n) FROM STDIN WITH (FORMAT csv, HEADER true)", csv, chunk);
        assert_eq!(tag.unwrap(), "COPY 2");
        let got = rows(&mut s, "SELECT id, name, note, n::text FROM t ORDER BY id");
        assert_eq!(
            got,
            vec![
                vec![Value::Int4(1), text("Ann"), text("none"), text("1.50")],
                vec![Value::Int4(2), Value::Null, text("none"), Value::Null],
                vec![Value::Int4(3), text("a\tb"), text("none"), text("-2.00")],
                vec![Value::Int4(4), text("x, \"y\""), text("none"), text("7.00")],
                vec![Value::Int4(5), text("two\nlines"), text("none"), Value::Null],
            ],
            "chunk {chunk}"
        );
    }
}

#[test]
fn a_bad_row_keeps_nothing_and_names_its_line() {
    let mut s = db().session();
    exec(&mut s, "CREATE TABLE t (id INT PRIMARY KEY, v INT CHECK (v > 0))").unwrap();
    let e = copy_in(&mut s, "COPY t FROM STDIN", b"1\t1\n2\tx\n3\t3\n", 4).unwrap_err();
    assert_eq!(e.code, "22P02");
    assert_eq!(e.context.as_deref(), Some("COPY t, line 2, column v"));
    assert!(!s.copy_in_progress());
    let e = copy_in(&mut s, "COPY t FROM STDIN", b"1\t1\n1\t2\n", 100).unwrap_err();
    assert_eq!(e.code, "23505");
    let e = copy_in(&mut s, "COPY t FROM STDIN (FORMAT csv)", b"5,-1\n", 100).unwrap_err();
    assert_eq!(e.code, "23514");
    let e = copy_in(&mut s, "COPY t FROM STDIN", b"1\t2\t3\n", 100).unwrap_err();
    assert_eq!(e.code, "22P04");
    assert_eq!(rows(&mut s, "SELECT count(*) FROM t"), vec![vec![Value::Int8(0)]]);
}

#[test]
fn copy_in_a_block_commits_or_aborts_with_it() {
    let mut s = db().session();
    exec(&mut s, "CREATE TABLE t (id INT PRIMARY KEY)").unwrap();
    exec(&mut s, "BEGIN").unwrap();
    assert_eq!(copy_in(&mut s, "COPY t FROM STDIN", b"1\n2\n", 1).unwrap(), "COPY 2");
    assert_eq!(rows(&mut s, "SELECT count(*) FROM t"), vec![vec![Value::Int8(2)]]);
    exec(&mut s, "ROLLBACK").unwrap();
    assert_eq!(rows(&mut s, "SELECT count(*) FROM t"), vec![vec![Value::Int8(0)]]);

    exec(&mut s, "BEGIN").unwrap();
    exec(&mut s, "INSERT INTO t VALUES (10)").unwrap();
    let e = copy_in(&mut s, "COPY t FROM STDIN", b"11\n10\n", 100).unwrap_err();
    assert_eq!(e.code, "23505");
    assert_eq!(exec(&mut s, "SELECT 1").unwrap_err().code, "25P02", "the block is aborted");
    exec(&mut s, "ROLLBACK").unwrap();

    // CopyFail: the client gives up; nothing is kept.
    exec(&mut s, "COPY t FROM STDIN").unwrap();
    s.copy_data(b"20\n21\n").unwrap();
    assert_eq!(s.copy_fail("user cancelled").code, "57014");
    assert_eq!(rows(&mut s, "SELECT count(*) FROM t"), vec![vec![Value::Int8(0)]]);
}

#[test]
fn copy_out_writes_what_copy_in_reads() {
    let mut s = db().session();
    exec(&mut s, "CREATE TABLE t (id INT PRIMARY KEY, name TEXT, b BOOLEAN, d DATE)").unwrap();
    exec(
        &mut s,
        "INSERT INTO t VALUES (1, 'tab\there', true, '2024-02-29'), (2, NULL, false, NULL), (3, 'q\"uote,comma', NULL, '1999-12-31')",
    )
    .unwrap();
    let out = copy_out(&mut s, "COPY t TO STDOUT");
    assert_eq!(out, "1\ttab\\there\tt\t2024-02-29\n2\t\\N\tf\t\\N\n3\tq\"uote,comma\t\\N\t1999-12-31\n");
    let csv = copy_out(&mut s, "COPY (SELECT id, name FROM t ORDER BY id DESC) TO STDOUT WITH CSV HEADER");
    assert_eq!(csv, "id,name\n3,\"q\"\"uote,comma\"\n2,\n1,tab\there\n");

    exec(&mut s, "CREATE TABLE u (id INT PRIMARY KEY, name TEXT, b BOOLEAN, d DATE)").unwrap();
    for (out_sql, in_sql) in [
        ("COPY t TO STDOUT", "COPY u FROM STDIN"),
        ("COPY t TO STDOUT (FORMAT csv, DELIMITER ';')", "COPY u FROM STDIN (FORMAT csv, DELIMITER ';')"),
    ] {
        exec(&mut s, "TRUNCATE u").unwrap();
        let data = copy_out(&mut s, out_sql);
        assert_eq!(copy_in(&mut s, in_sql, data.as_bytes(), 5).unwrap(), "COPY 3");
        assert_eq!(
            rows(&mut s, "SELECT * FROM u ORDER BY id"),
            rows(&mut s, "SELECT * FROM t ORDER BY id"),
            "{out_sql}"
        );
    }
}

#[test]
fn bad_options_and_misuse_are_clear_errors() {
    let mut s = db().session();
    exec(&mut s, "CREATE TABLE t (id INT PRIMARY KEY)").unwrap();
    let code = |s: &mut Session, sql: &str| exec(s, sql).unwrap_err().code;
    assert_eq!(code(&mut s, "COPY t FROM '/etc/passwd'"), "0A000");
    assert_eq!(code(&mut s, "COPY t FROM STDIN (FORMAT binary)"), "0A000");
    assert_eq!(code(&mut s, "COPY t FROM STDIN (QUOTE '''')"), "0A000");
    assert_eq!(code(&mut s, "COPY nope FROM STDIN"), "42P01");
    assert_eq!(code(&mut s, "COPY t (nope) TO STDOUT"), "42703");
    assert_eq!(code(&mut s, "COPY t FROM STDIN; SELECT 1"), "0A000");
    assert_eq!(s.copy_data(b"1\n").unwrap_err().code, "08P01", "no COPY in progress");
    // pgbench's spelling.
    exec(&mut s, "COPY t FROM STDIN WITH (FREEZE on)").unwrap();
    s.copy_data(b"1\n\\.\n").unwrap();
    assert_eq!(s.copy_done().unwrap().tag, "COPY 1");
}

#[test]
fn vacuum_and_analyze_run_outside_blocks() {
    let mut s = db().session();
    exec(&mut s, "CREATE TABLE t (id INT PRIMARY KEY)").unwrap();
    exec(&mut s, "INSERT INTO t VALUES (1), (2)").unwrap();
    exec(&mut s, "DELETE FROM t WHERE id = 1").unwrap();
    assert_eq!(exec(&mut s, "VACUUM").unwrap().tag, "VACUUM");
    assert_eq!(exec(&mut s, "VACUUM (ANALYZE, VERBOSE) t").unwrap().tag, "VACUUM");
    assert_eq!(exec(&mut s, "VACUUM FULL ANALYZE t").unwrap().tag, "VACUUM");
    assert_eq!(exec(&mut s, "ANALYZE t").unwrap().tag, "ANALYZE");
    assert_eq!(exec(&mut s, "VACUUM nope").unwrap_err().code, "42P01");
    exec(&mut s, "BEGIN").unwrap();
    assert_eq!(exec(&mut s, "VACUUM t").unwrap_err().code, "25001");
    exec(&mut s, "ROLLBACK").unwrap();
    assert_eq!(rows(&mut s, "SELECT id FROM t"), vec![vec![Value::Int4(2)]]);
}

#[test]
fn vacuum_of_a_table_reclaims_only_its_rows_and_index_entries() {
    let db = db();
    let mut s = db.session();
    for t in ["t", "u"] {
        exec(&mut s, &format!("CREATE TABLE {t} (id INT PRIMARY KEY, v INT)")).unwrap();
        exec(&mut s, &format!("CREATE INDEX {t}_v ON {t} (v)")).unwrap();
        exec(&mut s, &format!("INSERT INTO {t} VALUES (1, 0), (2, 0)")).unwrap();
        for v in 1..=3 {
            exec(&mut s, &format!("UPDATE {t} SET v = {v} WHERE id = 1")).unwrap();
        }
        exec(&mut s, &format!("DELETE FROM {t} WHERE id = 2")).unwrap();
    }
    exec(&mut s, "VACUUM").unwrap_or_else(|e| panic!("{e:?}"));
    let reclaimed = || db.engine().stats().dead_versions_reclaimed;
    // The same writes again, after a full pass: each table now holds the same dead versions.
    for t in ["t", "u"] {
        exec(&mut s, &format!("INSERT INTO {t} VALUES (2, 0)")).unwrap();
        for v in 4..=6 {
            exec(&mut s, &format!("UPDATE {t} SET v = {v} WHERE id = 1")).unwrap();
        }
        exec(&mut s, &format!("DELETE FROM {t} WHERE id = 2")).unwrap();
    }
    let before = reclaimed();
    exec(&mut s, "VACUUM t").unwrap();
    let of_t = reclaimed() - before;
    // Row 1: three shadowed versions; row 2: its version and tombstone; each index entry
    // replaced or deleted: its version and tombstone.
    assert!(of_t >= 3 + 2 + 2 * 4, "VACUUM t reclaimed {of_t}");
    let before = reclaimed();
    exec(&mut s, "VACUUM ANALYZE u").unwrap();
    assert_eq!(reclaimed() - before, of_t, "u's dead versions were left for VACUUM u, and only they were reclaimed");
    assert_eq!(rows(&mut s, "SELECT id, v FROM t"), vec![vec![Value::Int4(1), Value::Int4(6)]]);
    assert_eq!(rows(&mut s, "SELECT id, v FROM u WHERE v = 6"), vec![vec![Value::Int4(1), Value::Int4(6)]]);
}
