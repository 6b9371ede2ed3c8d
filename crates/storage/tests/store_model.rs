//! Property tests of the store against a BTreeMap model, under the simulated disk: random
//! writes, checkpoints, reopenings and power cuts at random points (including in the middle
//! of a checkpoint or a group commit). After every crash the recovered state must equal the
//! model at the last acknowledged commit, plus at most the one commit that was in flight
//! when the power went, applied whole or not at all.

use proptest::prelude::*;
use std::collections::BTreeMap;
use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;
use storage::store::check_tree;
use storage::vfs::{SimVfs, Vfs};
use storage::wal::WalOptions;
use storage::{Error, Store, StoreOptions, WriteBatch, WriteOp};

type Model = BTreeMap<Vec<u8>, Vec<u8>>;

#[derive(Debug, Clone)]
enum Op {
    Write(Vec<(u8, Option<usize>)>),
    Checkpoint,
    Reopen,
    /// Lose power after this many more mutating disk calls, then try to write and
    /// checkpoint until something fails, then crash.
    PowerCut(u16),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        12 => prop::collection::vec((0u8..60, prop::option::weighted(0.8, 0usize..1500)), 1..4).prop_map(Op::Write),
        2 => Just(Op::Checkpoint),
        1 => Just(Op::Reopen),
        2 => (1u16..40).prop_map(Op::PowerCut),
    ]
}

fn key(k: u8) -> Vec<u8> {
    format!("key-{k:03}").into_bytes()
}

fn value(k: u8, len: usize, salt: usize) -> Vec<u8> {
    (0..len).map(|i| (i + k as usize * 7 + salt * 13) as u8).collect()
}

fn options() -> StoreOptions {
    StoreOptions {
        pool_bytes: 64 << 10,
        dirty_bytes_max: 1 << 20,
        checkpoint_log_bytes: None,
        checkpoint_interval: None,
        wal: WalOptions { segment_bytes_max: 16 << 10, ..WalOptions::default() },
        purge_log_at_checkpoint: true,
    }
}

fn open(vfs: &SimVfs) -> Store {
    let vfs: Arc<dyn Vfs> = Arc::new(vfs.clone());
    Store::open(vfs, Path::new("/db"), options()).expect("store opens after a crash")
}

fn batch_of(ops: &[(u8, Option<usize>)], salt: usize) -> WriteBatch {
    let mut b = WriteBatch::new();
    for &(k, v) in ops {
        match v {
            Some(len) => b.put(key(k), value(k, len, salt)),
            None => b.delete(key(k)),
        };
    }
    b
}

fn apply(model: &mut Model, batch: &WriteBatch) {
    for op in &batch.ops {
        match op {
            WriteOp::Put(k, v) => {
                model.insert(k.clone(), v.clone());
            }
            WriteOp::Delete(k) => {
                model.remove(k);
            }
        }
    }
}

fn contents(store: &Store) -> Model {
    store.scan(Bound::Unbounded, Bound::Unbounded, false).map(|r| r.expect("scan")).collect()
}

fn assert_matches(store: &Store, model: &Model) {
    assert_eq!(&contents(store), model);
    let reversed: Vec<_> = store.scan(Bound::Unbounded, Bound::Unbounded, true).map(|r| r.unwrap()).collect();
    assert!(reversed.iter().rev().eq(model.iter().map(|(k, v)| (k.clone(), v.clone())).collect::<Vec<_>>().iter()));
    let (lo, hi) = (key(10), key(40));
    let ranged: Vec<_> =
        store.scan(Bound::Included(lo.clone()), Bound::Excluded(hi.clone()), false).map(|r| r.unwrap()).collect();
    let expect: Vec<_> = model.range(lo..hi).map(|(k, v)| (k.clone(), v.clone())).collect();
    assert_eq!(ranged, expect);
    for k in 0..60u8 {
        assert_eq!(store.get(&key(k)).unwrap().as_ref(), model.get(&key(k)));
    }
    check_tree(store).expect("tree is well formed");
}

fn run(seed: u64, ops: Vec<Op>) {
    let vfs = SimVfs::new(seed);
    let mut store = open(&vfs);
    let mut model = Model::new();
    for (salt, op) in ops.into_iter().enumerate() {
        match op {
            Op::Write(w) => {
                let b = batch_of(&w, salt);
                store.commit(&b).expect("commit without faults");
                apply(&mut model, &b);
            }
            Op::Checkpoint => {
                store.checkpoint().expect("checkpoint without faults");
            }
            Op::Reopen => {
                store.close().expect("close");
                store = open(&vfs);
                assert_matches(&store, &model);
            }
            Op::PowerCut(after) => {
                vfs.update_faults(|f| f.power_cut_after_ops = Some(after as u64));
                // Keep working until the power goes; the first failed commit is in doubt.
                let mut in_doubt = None;
                for i in 0..50 {
                    let b = batch_of(&[((salt + i) as u8 % 60, Some(i * 37 % 900))], salt + i);
                    if i % 7 == 3 && store.checkpoint().is_err() {
                        break;
                    }
                    match store.commit(&b) {
                        Ok(_) => apply(&mut model, &b),
                        Err(_) => {
                            in_doubt = Some(b);
                            break;
                        }
                    }
                }
                drop(store);
                vfs.crash();
                store = open(&vfs);
                let got = contents(&store);
                if got != model {
                    let b = in_doubt.expect("state differs from the model with no commit in doubt");
                    apply(&mut model, &b);
                }
                assert_matches(&store, &model);
            }
        }
    }
    assert_matches(&store, &model);
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(200),
        ..ProptestConfig::default()
    })]

    #[test]
    fn store_matches_model_across_crashes(seed in any::<u64>(), ops in prop::collection::vec(op(), 1..80)) {
        run(seed, ops);
    }
}

#[test]
fn many_keys_split_and_shrink_the_tree() {
    let vfs = SimVfs::new(7);
    let store = open(&vfs);
    let mut model = Model::new();
    for round in 0..3usize {
        for i in 0..3000u32 {
            let mut b = WriteBatch::new();
            let k = format!("k{:06}", (i * 7919) % 3000).into_bytes();
            if round == 1 && i % 3 == 0 {
                b.delete(k.clone());
                model.remove(&k);
            } else {
                let v = vec![round as u8; (i as usize * 31) % 700];
                b.put(k.clone(), v.clone());
                model.insert(k, v);
            }
            store.commit(&b).unwrap();
            if i % 1000 == 999 {
                store.checkpoint().unwrap();
            }
        }
    }
    assert_eq!(contents(&store), model);
    check_tree(&store).unwrap();
    store.close().unwrap();
    let store = open(&vfs);
    assert_eq!(contents(&store), model);
    // Delete everything: the tree empties and its pages return to the free list.
    for k in model.keys() {
        store.commit(WriteBatch::new().delete(k.clone())).unwrap();
    }
    assert_eq!(contents(&store).len(), 0);
    store.checkpoint().unwrap();
    store.checkpoint().unwrap();
    let s = store.stats();
    assert!(s.free_pages + 10 >= s.page_count - 2, "pages are reclaimed: {s:?}");
}

#[test]
fn limits_are_enforced_with_clear_errors() {
    let vfs = SimVfs::new(1);
    let store = open(&vfs);
    let err = store.commit(WriteBatch::new().put(vec![0u8; 600], b"v".to_vec())).unwrap_err();
    assert!(matches!(err, Error::Invalid(_)), "{err}");
    assert!(err.to_string().contains("key of 600 bytes"));
    let err = store.commit(WriteBatch::new().put(b"k".to_vec(), vec![0u8; 9 << 20])).unwrap_err();
    assert!(matches!(err, Error::Invalid(_)), "{err}");
    // A large value within the limit round-trips through an overflow run.
    let big: Vec<u8> = (0..(3 << 20)).map(|i| (i % 251) as u8).collect();
    store.commit(WriteBatch::new().put(b"big".to_vec(), big.clone())).unwrap();
    store.checkpoint().unwrap();
    drop(store);
    let store = open(&vfs);
    assert_eq!(store.get(b"big").unwrap(), Some(big));
}

#[test]
fn a_crash_while_creating_the_store_leaves_it_openable() {
    for seed in 0..40 {
        for cut in 1..10 {
            let vfs = SimVfs::new(seed);
            vfs.update_faults(|f| f.power_cut_after_ops = Some(cut));
            let created = Store::open(Arc::new(vfs.clone()), Path::new("/db"), options());
            drop(created);
            vfs.crash();
            let store = open(&vfs);
            store.commit(WriteBatch::new().put(b"k".to_vec(), b"v".to_vec())).unwrap();
            assert_eq!(store.get(b"k").unwrap(), Some(b"v".to_vec()));
        }
    }
}

/// Keys loaded in ascending order (a bulk load, a serial key) fill their pages: a split
/// caused by an append keeps the full node and starts a new one, instead of leaving every
/// page half empty behind the load. Other orders still split in the middle; every order
/// reads back exactly what was written, in order, and the tree checks out.
#[test]
fn ascending_loads_fill_their_pages_and_every_order_reads_back() {
    const ROWS: u32 = 20_000;
    const VALUE_BYTES: usize = 100;
    let row_key = |i: u32| format!("row{i:08}").into_bytes();
    let orders: [(&str, Vec<u32>); 3] = [
        ("ascending", (0..ROWS).collect()),
        ("descending", (0..ROWS).rev().collect()),
        // A fixed permutation (multiplication by a number coprime to ROWS).
        ("shuffled", (0..ROWS).map(|i| (i * 7_919) % ROWS).collect()),
    ];
    let mut pages_by_order = Vec::new();
    for (name, order) in orders {
        let vfs = SimVfs::new(7);
        let store = open(&vfs);
        for (n, chunk) in order.chunks(500).enumerate() {
            let mut batch = WriteBatch::new();
            for &i in chunk {
                batch.put(row_key(i), vec![(i % 251) as u8; VALUE_BYTES]);
            }
            store.commit(&batch).unwrap_or_else(|e| panic!("{name}: batch {n}: {e}"));
        }
        let pages = check_tree(&store).unwrap_or_else(|e| panic!("{name}: {e}"));
        let all: Vec<(Vec<u8>, Vec<u8>)> =
            store.scan(Bound::Unbounded, Bound::Unbounded, false).map(|r| r.unwrap()).collect();
        assert_eq!(all.len(), ROWS as usize, "{name}: rows read back");
        for (i, (k, v)) in all.iter().enumerate() {
            assert_eq!(k, &row_key(i as u32), "{name}: key {i}");
            assert_eq!(v, &vec![(i as u32 % 251) as u8; VALUE_BYTES], "{name}: value {i}");
        }
        pages_by_order.push((name, pages));
    }
    // 20,000 entries of about 115 bytes: about 570 full 4 KiB pages of leaves.
    let ideal = (ROWS as usize * (11 + VALUE_BYTES + 4)).div_ceil(storage::page::PAGE_BODY_BYTES) as u64;
    let ascending = pages_by_order[0].1;
    assert!(
        ascending <= ideal * 11 / 10,
        "an ascending load took {ascending} pages, more than 10% over the {ideal} it fills ({pages_by_order:?})"
    );
    let shuffled = pages_by_order[2].1;
    assert!(ascending * 13 / 10 < shuffled, "an ascending load is not denser than a shuffled one: {pages_by_order:?}");
}

/// `first_value` (the point read of an MVCC version) finds what a one-entry scan finds, for
/// bounds that fall on keys, between them, at leaf ends and past the last key, with inline
/// and overflow values, before and after deletes.
#[test]
fn first_value_agrees_with_a_one_entry_scan() {
    use storage::KvRead;
    let vfs = SimVfs::new(11);
    let store = open(&vfs);
    let key = |i: u32| format!("k{i:06}").into_bytes();
    let val = |i: u32| vec![(i % 251) as u8; if i.is_multiple_of(97) { 3_000 } else { 40 + (i % 60) as usize }];
    let mut batch = WriteBatch::new();
    for i in (0..6_000).step_by(3) {
        batch.put(key(i), val(i));
    }
    store.commit(&batch).unwrap();
    let check = |store: &Store, round: &str| {
        for j in 0..6_010 {
            let lo = key(j);
            for hi in
                [Bound::Unbounded, Bound::Excluded(key(j + 4)), Bound::Included(key(j + 1)), Bound::Excluded(key(j))]
            {
                let want = store.scan_range(Bound::Included(&lo), hi.as_ref().map(|h| h.as_slice()), false, 1).unwrap();
                let got = store.first_value(&lo, hi.as_ref().map(|h| h.as_slice())).unwrap();
                assert_eq!(got, want.into_iter().next().map(|(_, v)| v), "{round}: lo {j}, hi {hi:?}");
            }
        }
    };
    check(&store, "loaded");
    let mut batch = WriteBatch::new();
    for i in (0..6_000).step_by(7) {
        batch.delete(key(i));
    }
    store.commit(&batch).unwrap();
    check(&store, "after deletes");
}
