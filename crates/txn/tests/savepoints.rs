//! Savepoints: nested rollbacks restore the write set, release keeps it, and an error with a
//! savepoint open can be rolled back to (the transaction then goes on and commits).

use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use storage::vfs::{SimVfs, Vfs};
use storage::StoreOptions;
use txn::{Engine, EngineOptions, Error, IsolationLevel, LockMode, LockSettings, TxnOptions, WaitPolicy};

fn open(seed: u64) -> Engine {
    let opts = EngineOptions {
        store: StoreOptions { checkpoint_interval: None, checkpoint_log_bytes: None, ..Default::default() },
        vacuum_interval: None,
        ..Default::default()
    };
    let vfs: Arc<dyn Vfs> = Arc::new(SimVfs::new(seed));
    Engine::open(vfs, Path::new("/db"), opts).expect("open")
}

fn at(isolation: IsolationLevel) -> TxnOptions {
    TxnOptions { isolation, read_only: false }
}

fn all(t: &mut txn::Txn) -> Vec<(String, String)> {
    t.scan(Bound::Unbounded, Bound::Unbounded, false, usize::MAX)
        .unwrap()
        .into_iter()
        .map(|(k, v)| (String::from_utf8(k).unwrap(), String::from_utf8(v).unwrap()))
        .collect()
}

fn kv(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

#[test]
fn nested_rollback_to_restores_each_level() {
    let e = open(1);
    let mut t = e.begin(at(IsolationLevel::ReadCommitted)).unwrap();
    t.put(b"a", b"1").unwrap();
    let s1 = t.savepoint().unwrap();
    t.put(b"a", b"2").unwrap();
    t.put(b"b", b"1").unwrap();
    let s2 = t.savepoint().unwrap();
    t.delete(b"a").unwrap();
    t.put(b"c", b"1").unwrap();
    assert_eq!(all(&mut t), kv(&[("b", "1"), ("c", "1")]));
    t.rollback_to(s2).unwrap();
    assert_eq!(all(&mut t), kv(&[("a", "2"), ("b", "1")]));
    // s2 stays open: write again and roll back to it a second time.
    t.put(b"d", b"1").unwrap();
    t.rollback_to(s2).unwrap();
    assert_eq!(all(&mut t), kv(&[("a", "2"), ("b", "1")]));
    t.rollback_to(s1).unwrap();
    assert_eq!(all(&mut t), kv(&[("a", "1")]));
    assert!(t.rollback_to(s2).is_err(), "s2 was forgotten by the rollback to s1");
    t.commit().unwrap();
    let mut r = e.begin(TxnOptions::default()).unwrap();
    assert_eq!(all(&mut r), kv(&[("a", "1")]));
}

#[test]
fn release_keeps_writes_and_forgets_later_savepoints() {
    let e = open(2);
    let mut t = e.begin(at(IsolationLevel::RepeatableRead)).unwrap();
    let s1 = t.savepoint().unwrap();
    t.put(b"a", b"1").unwrap();
    let s2 = t.savepoint().unwrap();
    t.put(b"b", b"1").unwrap();
    t.release(s2).unwrap();
    assert!(t.rollback_to(s2).is_err(), "released");
    assert_eq!(all(&mut t), kv(&[("a", "1"), ("b", "1")]));
    t.release(s1).unwrap();
    t.commit().unwrap();
    let mut r = e.begin(TxnOptions::default()).unwrap();
    assert_eq!(all(&mut r), kv(&[("a", "1"), ("b", "1")]));
}

#[test]
fn a_write_conflict_inside_a_savepoint_can_be_rolled_back_to() {
    let e = open(3);
    let mut setup = e.begin(TxnOptions::default()).unwrap();
    setup.put(b"x", b"0").unwrap();
    setup.commit().unwrap();

    let mut t = e.begin(at(IsolationLevel::RepeatableRead)).unwrap();
    t.put(b"a", b"1").unwrap(); // takes the snapshot
    let sp = t.savepoint().unwrap();
    let mut other = e.begin(TxnOptions::default()).unwrap();
    other.put(b"x", b"1").unwrap();
    other.commit().unwrap();
    let err = t.put(b"x", b"2").unwrap_err();
    assert_eq!(err.sqlstate(), "40001");
    assert!(t.is_failed());
    assert!(matches!(t.get(b"a"), Err(Error::Aborted(_))), "failed until rolled back");
    t.rollback_to(sp).unwrap();
    assert!(!t.is_failed());
    assert_eq!(t.get(b"a").unwrap(), Some(b"1".to_vec()));
    t.put(b"b", b"1").unwrap();
    assert!(t.commit().unwrap().is_some(), "commits what was written outside the failed part");
    let mut r = e.begin(TxnOptions::default()).unwrap();
    assert_eq!(all(&mut r), kv(&[("a", "1"), ("b", "1"), ("x", "1")]));
}

#[test]
fn a_lock_timeout_inside_a_savepoint_keeps_earlier_locks() {
    let e = open(4);
    let mut holder = e.begin(TxnOptions::default()).unwrap();
    holder.put(b"busy", b"1").unwrap();

    let mut t = e.begin(TxnOptions::default()).unwrap();
    t.set_lock_settings(LockSettings {
        lock_timeout: Some(Duration::from_millis(20)),
        deadlock_timeout: Duration::from_secs(1),
    });
    t.put(b"mine", b"1").unwrap();
    let sp = t.savepoint().unwrap();
    assert_eq!(t.put(b"busy", b"2").unwrap_err().sqlstate(), "55P03");
    // Still failed, yet the lock on "mine" is held: another writer cannot take it.
    let mut third = e.begin(TxnOptions::default()).unwrap();
    let got = third.lock_row(b"mine", LockMode::Exclusive, WaitPolicy::NoWait);
    assert_eq!(got.unwrap_err().sqlstate(), "55P03", "locks survive a failure under a savepoint");
    drop(third);
    t.rollback_to(sp).unwrap();
    t.put(b"more", b"1").unwrap();
    t.commit().unwrap();
    holder.rollback();
    let mut r = e.begin(TxnOptions::default()).unwrap();
    assert_eq!(all(&mut r), kv(&[("mine", "1"), ("more", "1")]));
}

#[test]
fn without_a_savepoint_a_failure_still_releases_everything() {
    let e = open(5);
    let mut holder = e.begin(TxnOptions::default()).unwrap();
    holder.put(b"h", b"1").unwrap();
    let mut t = e.begin(TxnOptions::default()).unwrap();
    t.put(b"k", b"1").unwrap();
    assert!(t.lock_row(b"h", LockMode::Exclusive, WaitPolicy::NoWait).is_err());
    assert!(t.is_failed());
    assert!(t.savepoint().is_err(), "a failed transaction opens no savepoint");
    let mut again = e.begin(TxnOptions::default()).unwrap();
    assert!(again.lock_row(b"k", LockMode::Exclusive, WaitPolicy::NoWait).is_ok(), "t's locks were released");
}
