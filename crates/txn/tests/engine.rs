//! The engine's basic guarantees: snapshots, own writes, commit through the log and
//! recovery replaying the same decisions, vacuum and its metrics, and the bounds.

use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;
use storage::vfs::{SimVfs, Vfs};
use storage::StoreOptions;
use txn::{Engine, EngineOptions, Error, IsolationLevel, TxnOptions};

fn options() -> EngineOptions {
    EngineOptions {
        store: StoreOptions { checkpoint_interval: None, checkpoint_log_bytes: None, ..Default::default() },
        vacuum_interval: None,
        ..Default::default()
    }
}

fn open(vfs: &SimVfs, opts: EngineOptions) -> Engine {
    let vfs: Arc<dyn Vfs> = Arc::new(vfs.clone());
    Engine::open(vfs, Path::new("/db"), opts).expect("open")
}

fn at(level: IsolationLevel) -> TxnOptions {
    TxnOptions { isolation: level, read_only: false }
}

const RR: IsolationLevel = IsolationLevel::RepeatableRead;
const SER: IsolationLevel = IsolationLevel::Serializable;

#[test]
fn snapshots_own_writes_and_visibility() {
    let e = open(&SimVfs::new(1), options());
    let mut t1 = e.begin(at(RR)).unwrap();
    t1.put(b"a", b"1").unwrap();
    assert_eq!(t1.get(b"a").unwrap(), Some(b"1".to_vec()), "reads its own write");
    let mut t2 = e.begin(at(RR)).unwrap();
    assert_eq!(t2.get(b"a").unwrap(), None, "no dirty read");
    let index = t1.commit().unwrap().expect("a writer commits at a log index");
    assert_eq!(t2.get(b"a").unwrap(), None, "snapshot is stable");
    let mut t3 = e.begin(at(RR)).unwrap();
    assert_eq!(t3.get(b"a").unwrap(), Some(b"1".to_vec()));
    assert!(t3.snapshot() >= index);
    t3.delete(b"a").unwrap();
    assert_eq!(t3.scan(Bound::Unbounded, Bound::Unbounded, false, 10).unwrap(), vec![]);
    t3.commit().unwrap();
    assert_eq!(t2.commit().unwrap(), None, "read-only commits need no log record");
}

#[test]
fn scans_merge_own_writes_both_directions() {
    let e = open(&SimVfs::new(2), options());
    let mut t = e.begin(at(SER)).unwrap();
    for k in ["b", "d", "f"] {
        t.put(k.as_bytes(), b"old").unwrap();
    }
    t.commit().unwrap();
    let mut t = e.begin(at(SER)).unwrap();
    t.put(b"c", b"new").unwrap();
    t.delete(b"d").unwrap();
    t.put(b"f", b"new").unwrap();
    let fwd = t.scan(Bound::Included(b"b".to_vec()), Bound::Excluded(b"g".to_vec()), false, 10).unwrap();
    let keys: Vec<&[u8]> = fwd.iter().map(|(k, _)| k.as_slice()).collect();
    assert_eq!(keys, vec![&b"b"[..], b"c", b"f"]);
    assert_eq!(fwd[2].1, b"new");
    let rev = t.scan(Bound::Excluded(b"b".to_vec()), Bound::Unbounded, true, 1).unwrap();
    assert_eq!(rev, vec![(b"f".to_vec(), b"new".to_vec())]);
}

#[test]
fn limited_scans_stop_early_yet_see_own_deletes_and_inserts() {
    // A forward scan with a limit stops reading the store early; rows this transaction
    // deleted or inserted must still come out exactly as a full scan would give them.
    let e = open(&SimVfs::new(3), options());
    let mut t = e.begin(at(SER)).unwrap();
    let keys: Vec<Vec<u8>> = (0..50u8).map(|i| vec![b'k', i]).collect();
    for k in &keys {
        t.put(k, b"v").unwrap();
    }
    t.commit().unwrap();
    let mut t = e.begin(at(SER)).unwrap();
    for k in &keys[..10] {
        t.delete(k).unwrap();
    }
    t.put(&[b'k', 10, 0], b"mine").unwrap();
    let full = t.scan(Bound::Unbounded, Bound::Unbounded, false, usize::MAX).unwrap();
    assert_eq!(full.len(), 41);
    for limit in [0, 1, 2, 3, 5, 40, 41, 100] {
        let got = t.scan(Bound::Unbounded, Bound::Unbounded, false, limit).unwrap();
        assert_eq!(got, full[..limit.min(full.len())].to_vec(), "limit {limit}");
    }
    // Paging with a limit, as ANALYZE does, visits every row once.
    let mut paged = Vec::new();
    let mut lo = Bound::Unbounded;
    loop {
        let batch = t.scan(lo.clone(), Bound::Unbounded, false, 7).unwrap();
        let Some((last, _)) = batch.last() else { break };
        lo = Bound::Excluded(last.clone());
        paged.extend(batch);
    }
    assert_eq!(paged, full);
}

#[test]
fn recovery_replays_the_same_decisions() {
    let vfs = SimVfs::new(3);
    {
        let e = open(&vfs, options());
        let mut setup = e.begin(at(RR)).unwrap();
        setup.put(b"x", b"0").unwrap();
        setup.commit().unwrap();
        // Two serializable transactions read x; both write; the second must be rejected.
        let mut a = e.begin(at(SER)).unwrap();
        let mut b = e.begin(at(SER)).unwrap();
        a.get(b"x").unwrap();
        b.get(b"x").unwrap();
        a.put(b"y", b"a").unwrap();
        b.put(b"z", b"b").unwrap();
        let mut c = e.begin(at(RR)).unwrap();
        c.put(b"x", b"1").unwrap();
        c.commit().unwrap();
        let err = a.commit().unwrap_err();
        assert_eq!(err.sqlstate(), "40001", "{err}");
        assert!(err.to_string().contains("read-write conflict"), "{err}");
        assert_eq!(b.commit().unwrap_err().sqlstate(), "40001");
    }
    vfs.crash();
    let e = open(&vfs, options());
    let mut t = e.begin(at(RR)).unwrap();
    assert_eq!(t.get(b"x").unwrap(), Some(b"1".to_vec()));
    assert_eq!(t.get(b"y").unwrap(), None, "a rejected command stays rejected on replay");
    assert_eq!(t.get(b"z").unwrap(), None);
    assert!(e.store().stats().replayed_records >= 4);
}

#[test]
fn vacuum_removes_what_no_snapshot_sees_and_is_held_back_by_old_snapshots() {
    let e = open(&SimVfs::new(4), options());
    for i in 0..10u8 {
        let mut t = e.begin(at(RR)).unwrap();
        t.put(b"k", &[i]).unwrap();
        t.put(b"gone", &[i]).unwrap();
        t.commit().unwrap();
    }
    let mut old = e.begin(at(RR)).unwrap();
    assert_eq!(old.get(b"k").unwrap(), Some(vec![9]));
    let mut t = e.begin(at(RR)).unwrap();
    t.put(b"k", b"new").unwrap();
    t.delete(b"gone").unwrap();
    t.commit().unwrap();
    let before = e.stats();
    assert!(before.vacuum_held_back_by > 0, "the old snapshot holds vacuum back: {before:?}");
    let (found, reclaimed) = e.vacuum().unwrap();
    assert_eq!((found, reclaimed), (18, 18), "9 shadowed versions of each key below the old snapshot");
    assert_eq!(old.get(b"k").unwrap(), Some(vec![9]), "the old snapshot still reads its version");
    assert_eq!(old.get(b"gone").unwrap(), Some(vec![9]));
    old.commit().unwrap();
    let (found, _) = e.vacuum().unwrap();
    assert_eq!(found, 3, "k's version 9, gone's version 9 and gone's tombstone");
    let mut t = e.begin(at(RR)).unwrap();
    assert_eq!(t.get(b"k").unwrap(), Some(b"new".to_vec()));
    assert_eq!(t.get(b"gone").unwrap(), None);
    let s = e.stats();
    assert_eq!(s.dead_versions_reclaimed, 21);
    assert_eq!(s.vacuum_held_back_by, 0);
}

#[test]
fn bounds_give_clear_errors() {
    let opts = EngineOptions { txn_open_max: 2, write_set_bytes_max: 100, ..options() };
    let e = open(&SimVfs::new(5), opts);
    let _a = e.begin(at(RR)).unwrap();
    let mut b = e.begin(at(RR)).unwrap();
    let err = e.begin(at(RR)).err().unwrap();
    assert!(matches!(err, Error::Resources(_)) && err.to_string().contains("too many open transactions"), "{err}");
    let err = b.put(b"k", &[0u8; 200]).unwrap_err();
    assert_eq!(err.sqlstate(), "54000", "{err}");
    let mut ro = {
        drop(b);
        e.begin(TxnOptions { isolation: RR, read_only: true }).unwrap()
    };
    assert_eq!(ro.put(b"k", b"v").unwrap_err().sqlstate(), "25006");
}

#[test]
fn a_failed_transaction_refuses_further_work() {
    let e = open(&SimVfs::new(6), options());
    let mut setup = e.begin(at(RR)).unwrap();
    setup.put(b"k", b"0").unwrap();
    setup.commit().unwrap();
    let mut a = e.begin(at(RR)).unwrap();
    a.get(b"k").unwrap();
    let mut b = e.begin(at(RR)).unwrap();
    b.put(b"k", b"1").unwrap();
    b.commit().unwrap();
    let err = a.put(b"k", b"2").unwrap_err();
    assert_eq!(err.sqlstate(), "40001", "{err}");
    assert!(err.to_string().contains("concurrent update"), "{err}");
    assert_eq!(a.get(b"k").unwrap_err().sqlstate(), "25P02");
    a.rollback();
    assert_eq!(e.stats().locks.locked_rows, 0, "locks are released");
}

#[test]
fn vacuum_runs_in_the_background() {
    let opts = EngineOptions { vacuum_interval: Some(std::time::Duration::from_millis(100)), ..options() };
    let e = open(&SimVfs::new(7), opts);
    for i in 0..5u8 {
        let mut t = e.begin(at(RR)).unwrap();
        t.put(b"k", &[i]).unwrap();
        t.commit().unwrap();
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while e.stats().dead_versions_reclaimed < 4 {
        assert!(std::time::Instant::now() < deadline, "background vacuum never ran: {:?}", e.stats());
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let mut t = e.begin(at(RR)).unwrap();
    assert_eq!(t.get(b"k").unwrap(), Some(vec![4]));
}

#[test]
fn a_paged_serializable_scan_still_guards_its_whole_range() {
    // Pages of one scan are recorded as one range; a key committed past the first page's
    // rows, inside the scanned range, must still fail the scanning transaction's commit.
    let e = open(&SimVfs::new(4), options());
    let mut t = e.begin(at(SER)).unwrap();
    for i in 0..6u8 {
        t.put(&[b'p', i * 2], b"v").unwrap();
    }
    t.commit().unwrap();
    let mut scanner = e.begin(at(SER)).unwrap();
    let mut lo = Bound::Included(vec![b'p']);
    let mut seen = 0;
    loop {
        let page = scanner.scan(lo.clone(), Bound::Excluded(vec![b'q']), false, 2).unwrap();
        let Some((last, _)) = page.last() else { break };
        lo = Bound::Excluded(last.clone());
        seen += page.len();
    }
    assert_eq!(seen, 6);
    let mut writer = e.begin(at(SER)).unwrap();
    writer.put(&[b'p', 11], b"late").unwrap();
    writer.commit().unwrap();
    scanner.put(b"elsewhere", b"x").unwrap();
    assert_eq!(scanner.commit().unwrap_err().sqlstate(), "40001");
}

/// The background round looks only at the keys written since the last round (and the keys
/// whose versions were too new for some snapshot then), yet leaves nothing a full pass
/// would find: random writes and deletes over a few keys, snapshots held open across
/// rounds, then a full pass must find no dead version, and every read matches a model.
#[test]
fn a_round_over_the_written_keys_leaves_nothing_for_a_full_pass() {
    for seed in 0..20u64 {
        let e = open(&SimVfs::new(seed), options());
        let (found, _) = e.vacuum_round().unwrap();
        assert_eq!(found, 0, "an empty store has nothing to vacuum");
        let mut model = std::collections::BTreeMap::new();
        let mut held: Vec<(txn::Txn, std::collections::BTreeMap<u8, u8>)> = Vec::new();
        let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for step in 0..300u32 {
            let r = next();
            match r % 10 {
                0 => {
                    e.vacuum_round().unwrap();
                }
                1 if held.len() < 3 => {
                    let mut t = e.begin(at(RR)).unwrap();
                    t.get(&[0]).unwrap(); // the first read takes the snapshot
                    held.push((t, model.clone()));
                }
                2 if !held.is_empty() => {
                    let (mut t, seen) = held.remove((r / 10) as usize % held.len());
                    for k in 0..8u8 {
                        assert_eq!(t.get(&[k]).unwrap(), seen.get(&k).map(|v| vec![*v]), "seed {seed} step {step}");
                    }
                    t.rollback();
                }
                _ => {
                    let mut t = e.begin(at(RR)).unwrap();
                    let k = (r / 10 % 8) as u8;
                    if r / 100 % 4 == 0 {
                        t.delete(&[k]).unwrap();
                        model.remove(&k);
                    } else {
                        t.put(&[k], &[step as u8]).unwrap();
                        model.insert(k, step as u8);
                    }
                    t.commit().unwrap();
                }
            }
        }
        for (t, _) in held.drain(..) {
            t.rollback();
        }
        e.vacuum_round().unwrap();
        let (found, _) = e.vacuum().unwrap();
        assert_eq!(found, 0, "seed {seed}: the rounds left dead versions for the full pass");
        let mut t = e.begin(at(RR)).unwrap();
        for k in 0..8u8 {
            assert_eq!(t.get(&[k]).unwrap(), model.get(&k).map(|v| vec![*v]), "seed {seed}");
        }
        t.rollback();
    }
}

/// Versions written before the engine opened were not recorded as due: the first round
/// after open scans everything.
#[test]
fn the_first_round_after_open_scans_everything() {
    let vfs = SimVfs::new(9);
    {
        let e = open(&vfs, options());
        for i in 0..4u8 {
            let mut t = e.begin(at(RR)).unwrap();
            t.put(b"k", &[i]).unwrap();
            t.commit().unwrap();
        }
    }
    let e = open(&vfs, options());
    assert_eq!(e.vacuum_round().unwrap(), (3, 3), "three shadowed versions from before the reopen");
    let mut t = e.begin(at(RR)).unwrap();
    t.put(b"other", b"1").unwrap();
    t.commit().unwrap();
    assert_eq!(e.vacuum_round().unwrap(), (0, 0));
    assert_eq!(e.stats().vacuum_keys_due, 0);
}

#[test]
fn vacuum_of_key_ranges_looks_only_inside_them() {
    let e = open(&SimVfs::new(4), options());
    for i in 0..5u8 {
        let mut t = e.begin(at(RR)).unwrap();
        for k in [&b"a1"[..], b"a2", b"b1"] {
            t.put(k, &[i]).unwrap();
        }
        t.commit().unwrap();
    }
    let a = (Bound::Included(b"a".to_vec()), Bound::Excluded(b"b".to_vec()));
    assert_eq!(e.vacuum_ranges(std::slice::from_ref(&a)).unwrap(), (8, 8), "4 shadowed versions of a1 and of a2");
    assert_eq!(e.vacuum_ranges(&[a]).unwrap(), (0, 0));
    let b1 = (Bound::Included(b"b1".to_vec()), Bound::Included(b"b1".to_vec()));
    assert_eq!(e.vacuum_ranges(&[b1]).unwrap(), (4, 4));
    assert_eq!(e.vacuum().unwrap(), (0, 0), "nothing left anywhere");
    let mut t = e.begin(at(RR)).unwrap();
    assert_eq!(t.get(b"a2").unwrap(), Some(vec![4]));
    assert_eq!(t.get(b"b1").unwrap(), Some(vec![4]));
}
