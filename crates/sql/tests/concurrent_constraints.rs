//! Constraints under concurrency: sessions on threads try to break a unique key and a
//! foreign key at the same time. Whatever interleaving happens, the database never ends up
//! violating a constraint, and every failure is a constraint violation (23505/23503) or a
//! retryable conflict (40001/40P01), never silent.

use sql::{Database, Session, Value};
use std::path::Path;
use std::sync::{Arc, Barrier};
use storage::vfs::SimVfs;
use txn::EngineOptions;

fn db(seed: u64) -> Database {
    let opts = EngineOptions {
        vacuum_interval: None,
        locks: txn::LockSettings {
            lock_timeout: Some(std::time::Duration::from_secs(10)),
            deadlock_timeout: std::time::Duration::from_millis(20),
        },
        ..Default::default()
    };
    Database::open(Arc::new(SimVfs::new(seed)), Path::new("/db"), opts).expect("open")
}

fn exec(s: &mut Session, sql: &str) -> Result<Vec<Vec<Value>>, sql::Error> {
    let mut rows = vec![];
    for r in s.execute(sql) {
        rows = r?.rows;
    }
    Ok(rows)
}

fn count(s: &mut Session, sql: &str) -> i64 {
    match exec(s, sql).unwrap()[0][0] {
        Value::Int8(n) => n,
        ref other => panic!("count returned {other:?}"),
    }
}

#[test]
fn concurrent_inserts_of_one_unique_key_admit_exactly_one() {
    for level in ["read committed", "repeatable read", "serializable"] {
        for round in 0..10 {
            let db = db(round);
            let mut setup = db.session();
            exec(&mut setup, "CREATE TABLE u (id INT PRIMARY KEY, email TEXT UNIQUE)").unwrap();
            let threads = 4;
            let barrier = Arc::new(Barrier::new(threads));
            let handles: Vec<_> = (0..threads)
                .map(|t| {
                    let (db, barrier) = (db.clone(), barrier.clone());
                    let level = level.to_string();
                    std::thread::spawn(move || {
                        let mut s = db.session();
                        exec(&mut s, &format!("BEGIN ISOLATION LEVEL {level}")).unwrap();
                        barrier.wait();
                        let r = exec(&mut s, &format!("INSERT INTO u VALUES ({t}, 'same@example.com')"))
                            .and_then(|_| exec(&mut s, "COMMIT"));
                        if r.is_err() {
                            let _ = exec(&mut s, "ROLLBACK");
                        }
                        r.err().map(|e| e.code)
                    })
                })
                .collect();
            let errors: Vec<Option<&str>> = handles.into_iter().map(|h| h.join().unwrap()).collect();
            let committed = errors.iter().filter(|e| e.is_none()).count();
            assert_eq!(committed, 1, "{level}: exactly one insert wins: {errors:?}");
            for e in errors.into_iter().flatten() {
                assert!(["23505", "40001", "40P01"].contains(&e), "{level}: unexpected error {e}");
            }
            assert_eq!(count(&mut setup, "SELECT count(*) FROM u WHERE email = 'same@example.com'"), 1);
        }
    }
}

#[test]
fn a_parent_cannot_vanish_under_a_new_child() {
    for level in ["read committed", "repeatable read", "serializable"] {
        for round in 0..10 {
            let db = db(100 + round);
            let mut setup = db.session();
            exec(&mut setup, "CREATE TABLE parent (id INT PRIMARY KEY)").unwrap();
            exec(&mut setup, "CREATE TABLE child (id INT PRIMARY KEY, pid INT REFERENCES parent (id))").unwrap();
            exec(&mut setup, "INSERT INTO parent VALUES (1)").unwrap();
            let barrier = Arc::new(Barrier::new(2));
            let spawn = |sql: &'static str| {
                let (db, barrier) = (db.clone(), barrier.clone());
                let level = level.to_string();
                std::thread::spawn(move || {
                    let mut s = db.session();
                    exec(&mut s, &format!("BEGIN ISOLATION LEVEL {level}")).unwrap();
                    barrier.wait();
                    let r = exec(&mut s, sql).and_then(|_| exec(&mut s, "COMMIT"));
                    if r.is_err() {
                        let _ = exec(&mut s, "ROLLBACK");
                    }
                    r.err().map(|e| e.code)
                })
            };
            let insert = spawn("INSERT INTO child VALUES (1, 1)");
            let delete = spawn("DELETE FROM parent WHERE id = 1");
            let (ie, de) = (insert.join().unwrap(), delete.join().unwrap());
            for e in [ie, de].into_iter().flatten() {
                assert!(["23503", "40001", "40P01"].contains(&e), "{level}: unexpected error {e}");
            }
            let orphans = count(&mut setup, "SELECT count(*) FROM child WHERE pid NOT IN (SELECT id FROM parent)");
            assert_eq!(orphans, 0, "{level}: no child without its parent (insert {ie:?}, delete {de:?})");
        }
    }
}

#[test]
fn alter_table_and_concurrent_writers_never_mix_row_layouts() {
    for round in 0..5 {
        let db = db(200 + round);
        let mut setup = db.session();
        exec(&mut setup, "CREATE TABLE w (id INT PRIMARY KEY, v INT)").unwrap();
        let writer = {
            let db = db.clone();
            std::thread::spawn(move || {
                let mut s = db.session();
                let mut ok = 0;
                for i in 0..200 {
                    match exec(&mut s, &format!("INSERT INTO w (id, v) VALUES ({i}, {i})")) {
                        Ok(_) => ok += 1,
                        Err(e) => assert!(["40001", "40P01"].contains(&e.code), "insert failed: {e}"),
                    }
                }
                ok
            })
        };
        std::thread::sleep(std::time::Duration::from_millis(2));
        let mut alter = db.session();
        exec(&mut alter, "ALTER TABLE w ADD COLUMN c INT DEFAULT 7").unwrap();
        let inserted = writer.join().unwrap();
        let rows = exec(&mut setup, "SELECT count(*), count(c), min(c), max(c) FROM w").unwrap();
        assert_eq!(rows[0][0], Value::Int8(inserted), "every acknowledged insert is there");
        assert_eq!(rows[0][1], Value::Int8(inserted), "every row has the new column: {rows:?}");
        if inserted > 0 {
            assert_eq!((&rows[0][2], &rows[0][3]), (&Value::Int4(7), &Value::Int4(7)));
        }
    }
}
