//! Table definitions are decoded once per catalog version and shared between sessions, and
//! repeated statement texts reuse their plans: what each session sees must still be what it
//! would read from the catalog at its snapshot. DDL in another session, DDL rolled back
//! (whole or to a savepoint), a REPEATABLE READ snapshot older than the DDL, and DROP then
//! CREATE under the same name.

use sql::{Database, Session, Value};
use std::path::Path;
use std::sync::Arc;
use storage::vfs::SimVfs;
use txn::EngineOptions;

fn db() -> Database {
    let opts = EngineOptions { vacuum_interval: None, ..Default::default() };
    Database::open(Arc::new(SimVfs::new(11)), Path::new("/db"), opts).expect("open")
}

fn exec(s: &mut Session, sql: &str) -> Result<sql::QueryResult, sql::Error> {
    let mut last = None;
    for r in s.execute(sql) {
        last = Some(r?);
    }
    Ok(last.expect("a statement"))
}

/// The column names and rows of `SELECT * FROM t` (always the same text, so a plan cache
/// keyed by text would serve it).
fn select_all(s: &mut Session) -> (Vec<String>, Vec<Vec<Value>>) {
    let r = exec(s, "SELECT * FROM t ORDER BY 1").expect("select");
    (r.columns.unwrap().into_iter().map(|c| c.name).collect(), r.rows)
}

fn names(s: &mut Session) -> Vec<String> {
    select_all(s).0
}

#[test]
fn ddl_of_another_session_is_seen_at_the_next_statement() {
    let db = db();
    let (mut a, mut b) = (db.session(), db.session());
    exec(&mut a, "CREATE TABLE t (id INT PRIMARY KEY, v TEXT)").unwrap();
    exec(&mut a, "INSERT INTO t VALUES (1, 'x')").unwrap();
    assert_eq!(names(&mut a), ["id", "v"]);
    assert_eq!(names(&mut b), ["id", "v"]);
    exec(&mut b, "ALTER TABLE t ADD COLUMN w INT DEFAULT 7").unwrap();
    assert_eq!(
        select_all(&mut a),
        (
            vec!["id".into(), "v".into(), "w".into()],
            vec![vec![Value::Int4(1), Value::Text("x".into()), Value::Int4(7)]]
        )
    );
    exec(&mut b, "DROP TABLE t").unwrap();
    assert_eq!(exec(&mut a, "SELECT * FROM t ORDER BY 1").unwrap_err().code, "42P01");
    exec(&mut b, "CREATE TABLE t (k TEXT PRIMARY KEY)").unwrap();
    assert_eq!(names(&mut a), ["k"]);
    exec(&mut b, "CREATE INDEX t_k ON t (k)").unwrap();
    exec(&mut a, "INSERT INTO t VALUES ('a'), ('b')").unwrap();
    let r = exec(&mut a, "SELECT k FROM t WHERE k = $1");
    assert!(r.is_err(), "no value for $1");
    let got = a.execute_with("SELECT k FROM t WHERE k = $1", &[Value::Text("b".into())]).pop().unwrap().unwrap();
    assert_eq!(got.rows, [[Value::Text("b".into())]]);
}

#[test]
fn repeatable_read_keeps_the_definition_of_its_snapshot() {
    let db = db();
    let (mut a, mut b) = (db.session(), db.session());
    exec(&mut a, "CREATE TABLE t (id INT PRIMARY KEY)").unwrap();
    exec(&mut a, "BEGIN ISOLATION LEVEL REPEATABLE READ").unwrap();
    assert_eq!(names(&mut a), ["id"]);
    exec(&mut b, "ALTER TABLE t ADD COLUMN w INT").unwrap();
    assert_eq!(names(&mut b), ["id", "w"]);
    assert_eq!(names(&mut a), ["id"], "the snapshot predates the ALTER");
    exec(&mut a, "COMMIT").unwrap();
    assert_eq!(names(&mut a), ["id", "w"]);

    // READ COMMITTED inside a block: each statement sees the newest definition.
    exec(&mut a, "BEGIN").unwrap();
    assert_eq!(names(&mut a), ["id", "w"]);
    exec(&mut b, "ALTER TABLE t DROP COLUMN w").unwrap();
    assert_eq!(names(&mut a), ["id"]);
    exec(&mut a, "COMMIT").unwrap();
}

#[test]
fn rolled_back_ddl_is_forgotten() {
    let db = db();
    let (mut a, mut b) = (db.session(), db.session());
    exec(&mut a, "CREATE TABLE t (id INT PRIMARY KEY)").unwrap();
    assert_eq!(names(&mut a), ["id"]);
    exec(&mut a, "BEGIN").unwrap();
    exec(&mut a, "ALTER TABLE t ADD COLUMN w INT").unwrap();
    assert_eq!(names(&mut a), ["id", "w"], "a transaction sees its own DDL");
    exec(&mut a, "ROLLBACK").unwrap();
    assert_eq!(names(&mut a), ["id"]);
    assert_eq!(names(&mut b), ["id"]);

    exec(&mut a, "BEGIN").unwrap();
    exec(&mut a, "SAVEPOINT s").unwrap();
    exec(&mut a, "ALTER TABLE t ADD COLUMN w INT").unwrap();
    assert_eq!(names(&mut a), ["id", "w"]);
    exec(&mut a, "ROLLBACK TO SAVEPOINT s").unwrap();
    assert_eq!(names(&mut a), ["id"]);
    exec(&mut a, "ALTER TABLE t ADD COLUMN z INT").unwrap();
    assert_eq!(names(&mut a), ["id", "z"]);
    assert_eq!(names(&mut b), ["id"], "not committed yet");
    exec(&mut a, "COMMIT").unwrap();
    assert_eq!(names(&mut b), ["id", "z"]);
}

/// Which tables refer to a table is worked out once per catalog version and shared: a
/// foreign key added by another session, or earlier in the same transaction, must still
/// hold when a referenced row is deleted, and one rolled back must no longer.
#[test]
fn foreign_keys_added_since_the_last_delete_are_enforced() {
    let db = db();
    let (mut a, mut b) = (db.session(), db.session());
    exec(&mut a, "CREATE TABLE p (id INT PRIMARY KEY)").unwrap();
    exec(&mut a, "INSERT INTO p VALUES (1), (2), (3), (4)").unwrap();
    // Nothing refers to p yet, and this DELETE caches that.
    exec(&mut a, "DELETE FROM p WHERE id = 4").unwrap();

    exec(&mut b, "CREATE TABLE c (pid INT REFERENCES p (id))").unwrap();
    exec(&mut b, "INSERT INTO c VALUES (1)").unwrap();
    assert_eq!(exec(&mut a, "DELETE FROM p WHERE id = 1").unwrap_err().code, "23503");
    assert_eq!(exec(&mut a, "UPDATE p SET id = 10 WHERE id = 1").unwrap_err().code, "23503");

    exec(&mut a, "BEGIN").unwrap();
    exec(&mut a, "CREATE TABLE c2 (pid INT REFERENCES p (id))").unwrap();
    exec(&mut a, "INSERT INTO c2 VALUES (2)").unwrap();
    assert_eq!(exec(&mut a, "DELETE FROM p WHERE id = 2").unwrap_err().code, "23503");
    exec(&mut a, "ROLLBACK").unwrap();
    exec(&mut a, "DELETE FROM p WHERE id = 2").unwrap();
    exec(&mut b, "DELETE FROM p WHERE id = 3").unwrap();
    let r = exec(&mut b, "SELECT id FROM p ORDER BY 1").unwrap();
    assert_eq!(r.rows, vec![vec![Value::Int4(1)]]);
}

/// UPDATE and DELETE keep their plans per statement text too: the same texts, run again
/// after another session's DDL, must maintain a new index, return a new column, and use
/// the new layout after DROP and CREATE under the same name.
#[test]
fn updates_and_deletes_run_again_after_ddl_use_the_new_definition() {
    use Value::Int4;
    let db = db();
    let (mut a, mut b) = (db.session(), db.session());
    exec(&mut a, "CREATE TABLE t (id INT PRIMARY KEY, v INT)").unwrap();
    exec(&mut a, "INSERT INTO t VALUES (1, 10), (2, 20), (3, 30)").unwrap();
    let upd = "UPDATE t SET v = $2 WHERE id = $1 RETURNING *";
    let del = "DELETE FROM t WHERE id = $1 RETURNING *";
    let run = |s: &mut Session, sql: &str, params: &[Value]| s.execute_with(sql, params).pop().expect("a result");
    assert_eq!(run(&mut a, upd, &[Int4(1), Int4(11)]).unwrap().rows, [[Int4(1), Int4(11)]]);
    assert_eq!(run(&mut a, upd, &[Int4(1), Int4(12)]).unwrap().rows, [[Int4(1), Int4(12)]]);

    exec(&mut b, "CREATE UNIQUE INDEX t_v ON t (v)").unwrap();
    assert_eq!(run(&mut a, upd, &[Int4(1), Int4(20)]).unwrap_err().code, "23505", "the new index is maintained");
    exec(&mut b, "ALTER TABLE t ADD COLUMN w INT DEFAULT 7").unwrap();
    assert_eq!(run(&mut a, upd, &[Int4(1), Int4(13)]).unwrap().rows, [[Int4(1), Int4(13), Int4(7)]]);
    assert_eq!(run(&mut a, del, &[Int4(3)]).unwrap().rows, [[Int4(3), Int4(30), Int4(7)]]);

    exec(&mut b, "DROP TABLE t").unwrap();
    assert_eq!(run(&mut a, upd, &[Int4(1), Int4(14)]).unwrap_err().code, "42P01");
    assert_eq!(run(&mut a, del, &[Int4(1)]).unwrap_err().code, "42P01");
    exec(&mut b, "CREATE TABLE t (v INT, id INT PRIMARY KEY)").unwrap();
    exec(&mut b, "INSERT INTO t VALUES (5, 1), (6, 2)").unwrap();
    assert_eq!(run(&mut a, upd, &[Int4(2), Int4(60)]).unwrap().rows, [[Int4(60), Int4(2)]]);
    assert_eq!(run(&mut a, del, &[Int4(1)]).unwrap().rows, [[Int4(5), Int4(1)]]);
    let r = exec(&mut b, "SELECT v, id FROM t ORDER BY id").unwrap();
    assert_eq!(r.rows, [[Int4(60), Int4(2)]]);
}
