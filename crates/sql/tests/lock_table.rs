//! LOCK TABLE between two sessions: a SHARE or stronger lock holds writers off until its
//! transaction ends; NOWAIT fails at once; the lighter modes run beside writers.

use sql::{Database, Session, Value};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use storage::vfs::SimVfs;
use txn::EngineOptions;

fn db() -> Database {
    let opts = EngineOptions {
        vacuum_interval: None,
        locks: txn::LockSettings {
            lock_timeout: Some(Duration::from_secs(10)),
            deadlock_timeout: Duration::from_millis(20),
        },
        ..Default::default()
    };
    Database::open(Arc::new(SimVfs::new(7)), Path::new("/db"), opts).expect("open")
}

fn exec(s: &mut Session, sql: &str) -> Result<Vec<Vec<Value>>, sql::Error> {
    let mut rows = vec![];
    for r in s.execute(sql) {
        rows = r?.rows;
    }
    Ok(rows)
}

#[test]
fn an_exclusive_lock_holds_writers_off_until_it_ends() {
    let db = db();
    let (mut a, mut b) = (db.session(), db.session());
    exec(&mut a, "CREATE TABLE t (id int PRIMARY KEY)").unwrap();
    exec(&mut a, "BEGIN").unwrap();
    exec(&mut a, "LOCK TABLE t IN SHARE MODE").unwrap();

    // A writer waits, then gives up at its lock_timeout.
    exec(&mut b, "SET lock_timeout = '200ms'").unwrap();
    let started = Instant::now();
    let e = exec(&mut b, "INSERT INTO t VALUES (1)").unwrap_err();
    assert_eq!(e.code, "55P03", "{e:?}");
    assert!(started.elapsed() >= Duration::from_millis(150), "gave up after {:?}", started.elapsed());

    // NOWAIT fails at once.
    exec(&mut b, "BEGIN").unwrap();
    let started = Instant::now();
    let e = exec(&mut b, "LOCK TABLE t NOWAIT").unwrap_err();
    assert_eq!(e.code, "55P03", "{e:?}");
    assert!(started.elapsed() < Duration::from_millis(150), "NOWAIT waited {:?}", started.elapsed());
    exec(&mut b, "ROLLBACK").unwrap();

    // Readers are not held off (MVCC reads take no table lock).
    assert_eq!(exec(&mut b, "SELECT count(*) FROM t").unwrap(), vec![vec![Value::Int8(0)]]);

    // Once the lock's transaction ends, the writer goes through.
    exec(&mut a, "COMMIT").unwrap();
    exec(&mut b, "INSERT INTO t VALUES (1)").unwrap();
}

#[test]
fn row_exclusive_mode_runs_beside_writers() {
    let db = db();
    let (mut a, mut b) = (db.session(), db.session());
    exec(&mut a, "CREATE TABLE t (id int PRIMARY KEY)").unwrap();
    exec(&mut a, "BEGIN").unwrap();
    exec(&mut a, "LOCK TABLE t IN ROW EXCLUSIVE MODE").unwrap();
    exec(&mut b, "SET lock_timeout = '200ms'").unwrap();
    exec(&mut b, "INSERT INTO t VALUES (1)").unwrap();
    exec(&mut b, "BEGIN").unwrap();
    exec(&mut b, "LOCK TABLE t IN ACCESS SHARE MODE NOWAIT").unwrap();
    exec(&mut b, "COMMIT").unwrap();
    // DDL, which needs the table to itself, waits for the lock.
    let e = exec(&mut b, "ALTER TABLE t ADD COLUMN v int").unwrap_err();
    assert_eq!(e.code, "55P03", "{e:?}");
    exec(&mut a, "COMMIT").unwrap();
    exec(&mut b, "ALTER TABLE t ADD COLUMN v int").unwrap();
}
