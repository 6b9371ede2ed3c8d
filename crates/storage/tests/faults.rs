//! The store under injected faults: bit flips in a closed store's pages and log records,
//! a full disk, and a failing fsync.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use storage::store::check_tree;
use storage::vfs::{SimRng, SimVfs, Vfs};
use storage::wal::WalOptions;
use storage::{Error, Store, StoreOptions, WriteBatch};

type Model = BTreeMap<Vec<u8>, Vec<u8>>;

fn options() -> StoreOptions {
    StoreOptions {
        pool_bytes: 64 << 10,
        checkpoint_log_bytes: None,
        checkpoint_interval: None,
        wal: WalOptions { segment_bytes_max: 32 << 10, ..WalOptions::default() },
        purge_log_at_checkpoint: true,
        ..StoreOptions::default()
    }
}

fn open(vfs: &SimVfs) -> Result<Store, Error> {
    let vfs: Arc<dyn Vfs> = Arc::new(vfs.clone());
    Store::open(vfs, Path::new("/db"), options())
}

fn kv(i: u32) -> (Vec<u8>, Vec<u8>) {
    let k = format!("key-{i:05}").into_bytes();
    let v = format!("value-{i}-").repeat(1 + (i as usize * 13) % 90).into_bytes();
    (k, v)
}

/// Builds the same store every time for a seed: `n` single-key commits, a checkpoint after
/// `checkpoint_at` of them, the rest only in the log. Returns the disk and the model.
fn build(seed: u64, n: u32, checkpoint_at: u32) -> (SimVfs, Model) {
    let vfs = SimVfs::new(seed);
    let store = open(&vfs).unwrap();
    let mut model = Model::new();
    for i in 0..n {
        let (k, v) = kv(i);
        store.commit(WriteBatch::new().put(k.clone(), v.clone())).unwrap();
        model.insert(k, v);
        if i + 1 == checkpoint_at {
            store.checkpoint().unwrap();
        }
    }
    drop(store); // no final checkpoint: the tail lives only in the log
    (vfs, model)
}

fn read_all(store: &Store) -> Result<Model, Error> {
    store.scan(Bound::Unbounded, Bound::Unbounded, false).collect()
}

/// Opens and reads everything; every outcome must be "corruption reported, naming the
/// place" or data that is exactly right (or, for a flip in the log's final group-commit
/// write, right up to the commits of that write).
fn check_after_flip(vfs: &SimVfs, model: &Model, tail_commits: &[Vec<u8>], place: &str) -> &'static str {
    let store = match open(vfs) {
        Ok(s) => s,
        Err(e) => {
            assert!(e.is_corruption(), "{place}: open failed without naming corruption: {e}");
            return "open refused";
        }
    };
    match read_all(&store).and_then(|m| check_tree(&store).map(|_| m)) {
        Err(e) => {
            assert!(e.is_corruption(), "{place}: read failed without naming corruption: {e}");
            let msg = e.to_string();
            assert!(msg.contains("data.db") && msg.contains("page"), "{place}: message names file and page: {msg}");
            "read refused"
        }
        Ok(got) if &got == model => "intact",
        Ok(got) => {
            // Only a torn-looking final write may be cut, and only whole commits of it.
            let mut expect = model.clone();
            for k in tail_commits {
                expect.remove(k);
                if got == expect {
                    return "final write cut";
                }
            }
            panic!("{place}: wrong data served");
        }
    }
}

#[test]
fn bit_flips_in_pages_are_reported_never_served() {
    let (vfs, _) = build(11, 400, 400);
    let path = PathBuf::from("/db/data.db");
    let len = vfs.file_len(&path).unwrap();
    let mut rng = SimRng::new(99);
    let mut outcomes = BTreeMap::new();
    for _ in 0..300 {
        let offset = rng.below(len);
        let bit = rng.below(8) as u8;
        let (vfs, model) = build(11, 400, 400);
        assert!(vfs.flip_bit(&path, offset, bit));
        let what = check_after_flip(&vfs, &model, &[], &format!("data.db byte {offset} bit {bit}"));
        *outcomes.entry(what).or_insert(0) += 1;
    }
    // Most flips land in live pages and must be caught; some land in free pages or the
    // older meta slot, which no read touches.
    eprintln!("page flips: {outcomes:?}");
    assert!(
        outcomes.get("read refused").copied().unwrap_or(0) + outcomes.get("open refused").copied().unwrap_or(0) > 150,
        "{outcomes:?}"
    );
    assert!(!outcomes.contains_key("final write cut"), "{outcomes:?}");
}

#[test]
fn bit_flips_in_log_records_are_reported_never_served() {
    let (vfs, _) = build(12, 120, 20);
    let wal_dir = PathBuf::from("/db/wal");
    let segments = vfs.list(&wal_dir).unwrap();
    assert!(segments.len() > 1, "the test log spans segments: {segments:?}");
    let last_key = kv(119).0;
    let mut rng = SimRng::new(5);
    let mut outcomes = BTreeMap::new();
    for _ in 0..300 {
        let seg = &segments[rng.below(segments.len() as u64) as usize];
        let path = wal_dir.join(seg);
        let len = vfs.file_len(&path).unwrap();
        let offset = rng.below(len);
        let bit = rng.below(8) as u8;
        let (vfs, model) = build(12, 120, 20);
        assert!(vfs.flip_bit(&path, offset, bit));
        let what =
            check_after_flip(&vfs, &model, std::slice::from_ref(&last_key), &format!("{seg} byte {offset} bit {bit}"));
        if what == "open refused" {
            let err = open(&vfs).err().unwrap().to_string();
            assert!(err.contains(".wal") || err.contains("log"), "names the log file: {err}");
        }
        *outcomes.entry(what).or_insert(0) += 1;
    }
    eprintln!("log flips: {outcomes:?}");
    assert!(outcomes.get("open refused").copied().unwrap_or(0) > 200, "{outcomes:?}");
}

#[test]
fn disk_full_refuses_writes_keeps_reads_and_recovers() {
    let vfs = SimVfs::new(3);
    let store = open(&vfs).unwrap();
    let mut model = Model::new();
    for i in 0..50 {
        let (k, v) = kv(i);
        store.commit(WriteBatch::new().put(k.clone(), v.clone())).unwrap();
        model.insert(k, v);
    }
    store.checkpoint().unwrap();
    let used = vfs.used_bytes();
    vfs.update_faults(|f| f.disk_bytes_max = Some(used + 2000));
    let mut full = 0;
    for i in 50..200 {
        let (k, v) = kv(i);
        match store.commit(WriteBatch::new().put(k.clone(), v.clone())) {
            Ok(_) => {
                model.insert(k, v);
            }
            Err(e) => {
                assert!(matches!(e, Error::DiskFull(_)), "disk full is named: {e}");
                full += 1;
            }
        }
    }
    assert!(full > 100, "writes were refused once the disk filled");
    // A checkpoint needs space too; it fails cleanly and the old one stays in force.
    assert!(matches!(store.checkpoint(), Err(Error::DiskFull(_)) | Ok(_)));
    assert_eq!(read_all(&store).unwrap(), model, "reads go on while the disk is full");
    vfs.update_faults(|f| f.disk_bytes_max = None);
    for i in 200..260 {
        let (k, v) = kv(i);
        store.commit(WriteBatch::new().put(k.clone(), v.clone())).unwrap();
        model.insert(k, v);
    }
    store.checkpoint().unwrap();
    assert_eq!(read_all(&store).unwrap(), model);
    drop(store);
    vfs.crash();
    let store = open(&vfs).unwrap();
    assert_eq!(read_all(&store).unwrap(), model, "nothing acknowledged lost, nothing corrupt");
    check_tree(&store).unwrap();
}

#[test]
fn log_fsync_failure_fences_the_store() {
    let vfs = SimVfs::new(4);
    let store = open(&vfs).unwrap();
    store.commit(WriteBatch::new().put(b"a".to_vec(), b"1".to_vec())).unwrap();
    vfs.update_faults(|f| f.fsync_fail_next = 1);
    let err = store.commit(WriteBatch::new().put(b"b".to_vec(), b"2".to_vec())).unwrap_err();
    assert!(matches!(err, Error::Poisoned(_) | Error::Io { .. }), "{err}");
    vfs.clear_faults();
    let err = store.commit(WriteBatch::new().put(b"c".to_vec(), b"3".to_vec())).unwrap_err();
    assert!(matches!(err, Error::Poisoned(_)), "later writes are refused: {err}");
    assert!(err.to_string().contains("fsync") || err.to_string().contains("sync"), "says why: {err}");
    assert!(store.checkpoint().is_err(), "checkpoints are refused too");
    assert_eq!(store.get(b"a").unwrap(), Some(b"1".to_vec()), "reads go on");
    assert!(store.stats().poisoned.is_some());
    drop(store);
    vfs.crash();
    let store = open(&vfs).unwrap();
    assert_eq!(store.get(b"a").unwrap(), Some(b"1".to_vec()));
    assert_eq!(store.get(b"c").unwrap(), None);
}

#[test]
fn data_file_fsync_failure_fences_the_store() {
    let vfs = SimVfs::new(5);
    let store = open(&vfs).unwrap();
    for i in 0..30 {
        let (k, v) = kv(i);
        store.commit(WriteBatch::new().put(k, v)).unwrap();
    }
    vfs.update_faults(|f| f.fsync_fail_next = 1);
    let err = store.checkpoint().unwrap_err();
    assert!(matches!(err, Error::Poisoned(_)), "{err}");
    assert!(err.to_string().contains("data.db"), "{err}");
    vfs.clear_faults();
    let err = store.commit(WriteBatch::new().put(b"x".to_vec(), b"y".to_vec())).unwrap_err();
    assert!(matches!(err, Error::Poisoned(_)), "{err}");
    drop(store);
    vfs.crash();
    let store = open(&vfs).unwrap();
    for i in 0..30 {
        assert_eq!(store.get(&kv(i).0).unwrap(), Some(kv(i).1), "acknowledged data survives via the log");
    }
}

#[test]
fn eio_on_read_is_an_error_not_data() {
    let (vfs, _model) = build(6, 200, 200);
    let store = open(&vfs).unwrap();
    vfs.update_faults(|f| f.eio_on = Some((storage::vfs::SimOp::Read, 1)));
    let err = read_all(&store).unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err}");
    assert_eq!(read_all(&store).unwrap().len(), 200, "the next read works");
}
