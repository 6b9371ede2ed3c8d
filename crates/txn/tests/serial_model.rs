//! SERIALIZABLE against a serial model: proptest chooses a few transactions and how their
//! steps interleave; whatever commits must be explainable by running the committed
//! transactions one after another, in some order, against a `BTreeMap`.
//!
//! ```text
//!   programs (2..=4): begin, then gets, puts, deletes, scans over 4 keys, then commit or
//!                     rollback; a transaction begins at its first step, so snapshots differ
//!   schedule:         which transaction takes the next step; the rest then run round robin
//!   check:            for some permutation of the committed transactions, every read they
//!                     made (gets and scans, own writes included) and the final state equal
//!                     what the model gives
//! ```
//!
//! Everything runs on one thread, so a step that would wait for a row lock would wait
//! forever: a put or delete of a row another open transaction has written is skipped (the
//! transaction's program simply does not contain it). A 40001 from a write or from commit
//! ends the transaction as aborted; the model leaves it out.

use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;
use storage::vfs::SimVfs;
use storage::StoreOptions;
use txn::{Engine, EngineOptions, IsolationLevel, TxnOptions};

/// Keys the transactions work on.
const KEYS: u8 = 4;
/// The most transactions in one case; the model tries all their orders (4! = 24).
const TXNS_MAX: usize = 4;
/// The most actions in one transaction's program.
const ACTIONS_MAX: usize = 6;
/// The longest chosen schedule, in steps.
const SCHEDULE_STEPS_MAX: usize = 40;

#[derive(Debug, Clone, Copy)]
enum Action {
    Get(u8),
    Put(u8, u8),
    Delete(u8),
    Scan,
}

#[derive(Debug, Clone)]
struct Program {
    actions: Vec<Action>,
    commit: bool,
}

/// What a transaction did and saw.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Done {
    Get(u8, Option<u8>),
    Put(u8, u8),
    Delete(u8),
    Scan(Vec<(u8, u8)>),
}

enum Phase {
    NotStarted,
    Open(Box<txn::Txn>),
    Ended,
}

struct Runner {
    program: Program,
    next: usize,
    phase: Phase,
    done: Vec<Done>,
    committed: bool,
}

fn key(k: u8) -> Vec<u8> {
    vec![b'k', k]
}

fn open_engine() -> Engine {
    let opts = EngineOptions {
        store: StoreOptions { checkpoint_interval: None, checkpoint_log_bytes: None, ..Default::default() },
        ..Default::default()
    };
    Engine::open(Arc::new(SimVfs::new(0)), Path::new("/db"), opts).expect("open engine")
}

fn scan_all(t: &mut txn::Txn) -> txn::Result<Vec<(u8, u8)>> {
    let rows = t.scan(Bound::Unbounded, Bound::Unbounded, false, usize::MAX)?;
    Ok(rows.into_iter().map(|(k, v)| (k[1], v[0])).collect())
}

/// Takes one step of transaction `i`. Returns false if it had nothing left to do.
fn step(engine: &Engine, runners: &mut [Runner], i: usize) -> bool {
    // Rows written by other open transactions: writing one of them would wait forever.
    let locked: BTreeSet<u8> = runners
        .iter()
        .enumerate()
        .filter(|(j, r)| *j != i && matches!(r.phase, Phase::Open(_)))
        .flat_map(|(_, r)| {
            r.done.iter().filter_map(|d| if let Done::Put(k, _) | Done::Delete(k) = d { Some(*k) } else { None })
        })
        .collect();
    let r = &mut runners[i];
    let t = match &mut r.phase {
        Phase::Ended => return false,
        Phase::NotStarted => {
            let opts = TxnOptions { isolation: IsolationLevel::Serializable, read_only: false };
            r.phase = Phase::Open(Box::new(engine.begin(opts).expect("begin")));
            return true;
        }
        Phase::Open(t) => t,
    };
    let Some(&action) = r.program.actions.get(r.next) else {
        let Phase::Open(t) = std::mem::replace(&mut r.phase, Phase::Ended) else { unreachable!() };
        if r.program.commit {
            match t.commit() {
                Ok(_) => r.committed = true,
                Err(e) => assert_eq!(e.sqlstate(), "40001", "commit failed: {e}"),
            }
        } else {
            t.rollback();
        }
        return true;
    };
    r.next += 1;
    let result = match action {
        Action::Get(k) => t.get(&key(k)).map(|v| Some(Done::Get(k, v.map(|v| v[0])))),
        Action::Scan => scan_all(t).map(|rows| Some(Done::Scan(rows))),
        Action::Put(k, _) | Action::Delete(k) if locked.contains(&k) => Ok(None), // would wait
        Action::Put(k, v) => t.put(&key(k), &[v]).map(|()| Some(Done::Put(k, v))),
        Action::Delete(k) => t.delete(&key(k)).map(|()| Some(Done::Delete(k))),
    };
    match result {
        Ok(done) => r.done.extend(done),
        Err(e) => {
            assert_eq!(e.sqlstate(), "40001", "{action:?} failed: {e}");
            r.phase = Phase::Ended; // dropping the transaction rolls it back
        }
    }
    true
}

/// Runs `txns` serially in `order` from `initial`: the final state if every read matches.
fn replay(initial: &BTreeMap<u8, u8>, txns: &[&[Done]], order: &[usize]) -> Option<BTreeMap<u8, u8>> {
    let mut state = initial.clone();
    for &i in order {
        for d in txns[i] {
            match *d {
                Done::Get(k, v) if state.get(&k).copied() != v => return None,
                Done::Scan(ref rows) if !state.iter().map(|(k, v)| (*k, *v)).eq(rows.iter().copied()) => return None,
                Done::Get(..) | Done::Scan(_) => {}
                Done::Put(k, v) => {
                    state.insert(k, v);
                }
                Done::Delete(k) => {
                    state.remove(&k);
                }
            }
        }
    }
    Some(state)
}

/// Every order of `0..n`.
fn permutations(n: usize) -> Vec<Vec<usize>> {
    if n == 0 {
        return vec![Vec::new()];
    }
    let mut out = Vec::new();
    for p in permutations(n - 1) {
        for at in 0..=p.len() {
            let mut q = p.clone();
            q.insert(at, n - 1);
            out.push(q);
        }
    }
    out
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        3 => (0..KEYS).prop_map(Action::Get),
        3 => (0..KEYS, any::<u8>()).prop_map(|(k, v)| Action::Put(k, v)),
        1 => (0..KEYS).prop_map(Action::Delete),
        1 => Just(Action::Scan),
    ]
}

fn program() -> impl Strategy<Value = Program> {
    (vec(action(), 1..=ACTIONS_MAX), prop::bool::weighted(0.85))
        .prop_map(|(actions, commit)| Program { actions, commit })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2048, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn serializable_interleavings_match_a_serial_order(
        initial in vec(option::of(any::<u8>()), KEYS as usize),
        programs in vec(program(), 2..=TXNS_MAX),
        schedule in vec(0..TXNS_MAX, 0..=SCHEDULE_STEPS_MAX),
    ) {
        let engine = open_engine();
        let initial: BTreeMap<u8, u8> =
            initial.iter().enumerate().filter_map(|(k, v)| v.map(|v| (k as u8, v))).collect();
        let mut t = engine.begin(TxnOptions::default()).expect("begin");
        for (k, v) in &initial {
            t.put(&key(*k), &[*v]).expect("put");
        }
        t.commit().expect("commit the initial state");

        let mut runners: Vec<Runner> = programs
            .into_iter()
            .map(|program| Runner { program, next: 0, phase: Phase::NotStarted, done: Vec::new(), committed: false })
            .collect();
        let n = runners.len();
        for i in schedule {
            step(&engine, &mut runners, i % n);
        }
        // Then round robin, so that every transaction ends.
        while (0..n).fold(false, |any, i| step(&engine, &mut runners, i) | any) {}

        let mut t = engine.begin(TxnOptions::default()).expect("begin");
        let final_state: BTreeMap<u8, u8> = scan_all(&mut t).expect("scan").into_iter().collect();
        t.commit().expect("commit");

        let committed: Vec<&[Done]> = runners.iter().filter(|r| r.committed).map(|r| r.done.as_slice()).collect();
        let serial = permutations(committed.len())
            .into_iter()
            .find(|order| replay(&initial, &committed, order).as_ref() == Some(&final_state));
        prop_assert!(
            serial.is_some(),
            "no serial order explains the committed transactions\ninitial {:?}\nfinal {:?}\n{}",
            initial,
            final_state,
            runners
                .iter()
                .enumerate()
                .map(|(i, r)| format!("T{i} committed={} did {:?}", r.committed, r.done))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}

#[test]
fn permutations_are_all_orders() {
    let p = permutations(4);
    assert_eq!(p.len(), 24);
    assert_eq!(p.iter().collect::<BTreeSet<_>>().len(), 24);
}
