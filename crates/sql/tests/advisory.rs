//! Advisory locks between sessions of one database: pg_advisory_lock waits for the holder
//! (bounded by lock_timeout), pg_try_advisory_lock does not wait, transaction-level locks
//! end with their transaction, and a session's locks end with it.

use sql::{Database, Session, Value};
use std::path::Path;
use std::sync::Arc;
use storage::vfs::SimVfs;
use txn::EngineOptions;

fn one(s: &mut Session, sql: &str) -> Value {
    let mut last = None;
    for r in s.execute(sql) {
        last = Some(r.unwrap_or_else(|e| panic!("{sql}: {e}")));
    }
    last.expect("a statement").rows.remove(0).remove(0)
}

fn code(s: &mut Session, sql: &str) -> &'static str {
    match s.execute(sql).pop().expect("a statement") {
        Ok(_) => panic!("{sql} succeeded"),
        Err(e) => e.code,
    }
}

#[test]
fn advisory_locks_exclude_other_sessions_until_released() {
    let db = Database::open(Arc::new(SimVfs::new(7)), Path::new("/db"), EngineOptions::default()).unwrap();
    let (mut a, mut b) = (db.session(), db.session());

    assert_eq!(one(&mut a, "SELECT pg_advisory_lock(42)"), Value::Text(String::new()));
    assert_eq!(one(&mut a, "SELECT pg_try_advisory_lock(42)"), Value::Bool(true), "re-entrant");
    assert_eq!(one(&mut b, "SELECT pg_try_advisory_lock(42)"), Value::Bool(false));
    assert_eq!(one(&mut b, "SELECT pg_try_advisory_lock(1, 42)"), Value::Bool(true), "(1, 42) is another key");

    // A wait ends at lock_timeout, with 55P03.
    one(&mut b, "SELECT 1");
    b.execute("SET lock_timeout = '50ms'");
    assert_eq!(code(&mut b, "SELECT pg_advisory_lock(42)"), "55P03");

    // Held twice, released twice.
    assert_eq!(one(&mut a, "SELECT pg_advisory_unlock(42)"), Value::Bool(true));
    assert_eq!(one(&mut b, "SELECT pg_try_advisory_lock(42)"), Value::Bool(false));
    assert_eq!(one(&mut a, "SELECT pg_advisory_unlock(42)"), Value::Bool(true));
    assert_eq!(one(&mut a, "SELECT pg_advisory_unlock(42)"), Value::Bool(false), "not held any more");
    assert_eq!(one(&mut b, "SELECT pg_try_advisory_lock(42)"), Value::Bool(true));

    // A waiter gets the lock when its holder's session ends.
    let waiter = std::thread::spawn({
        let db = db.clone();
        move || {
            let mut c = db.session();
            one(&mut c, "SELECT pg_advisory_lock(42)");
            one(&mut c, "SELECT pg_advisory_unlock(42)")
        }
    });
    std::thread::sleep(std::time::Duration::from_millis(100));
    assert!(!waiter.is_finished(), "the waiter waits while b holds the lock");
    drop(b);
    assert_eq!(waiter.join().unwrap(), Value::Bool(true));

    // A transaction-level lock ends with its transaction, COMMIT or ROLLBACK.
    let mut b = db.session();
    b.execute("BEGIN");
    assert_eq!(one(&mut b, "SELECT pg_try_advisory_xact_lock(9)"), Value::Bool(true));
    assert_eq!(one(&mut a, "SELECT pg_try_advisory_lock(9)"), Value::Bool(false));
    b.execute("COMMIT");
    assert_eq!(one(&mut a, "SELECT pg_try_advisory_lock(9)"), Value::Bool(true));
    // pg_advisory_unlock_all (what connection pools run on release) lets go of everything.
    one(&mut a, "SELECT pg_advisory_unlock_all()");
    assert_eq!(one(&mut b, "SELECT pg_try_advisory_xact_lock(9)"), Value::Bool(true));
    // Outside a block the statement is the transaction: the lock is gone after it.
    assert_eq!(one(&mut a, "SELECT pg_try_advisory_lock(9)"), Value::Bool(true));
}
