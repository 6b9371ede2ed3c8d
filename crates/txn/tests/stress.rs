//! Bank transfers under contention: money is neither created nor lost, and a transfer is
//! in the database exactly when its commit was acknowledged.
//!
//! ```text
//!   8 threads × TRANSFERS_PER_THREAD:  begin ─► read from, to ─► put from - x, to + x,
//!                                      put xfer/{id} = "from,to,x" ─► commit
//!                                      40001 / 40P01 ─► retry with a new id
//!   1 auditor thread:                  a one-statement scan of every account sums to the total
//!   at the end:                        total; xfer/ ids == acknowledged ids; every balance ==
//!                                      initial + what acknowledged transfers moved
//! ```
//!
//! Every attempt gets a fresh id, so an attempt that failed (and must have left nothing)
//! is told apart from its retry. Amounts are clamped to the balance, so no balance goes
//! below zero. Variants: REPEATABLE READ and SERIALIZABLE with plain reads, and READ
//! COMMITTED with `SELECT ... FOR UPDATE` (`lock_row`) before each read-modify-write; each
//! with many accounts (low contention) and few (high contention). Seeds choose the
//! transfers; thread scheduling is not seeded.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;
use storage::vfs::{SimRng, SimVfs};
use storage::StoreOptions;
use txn::{Engine, EngineOptions, IsolationLevel, LockMode, LockSettings, TxnOptions, WaitPolicy};

/// Threads making transfers at once.
const THREADS: u64 = 8;
/// Transfers each thread commits per seed.
const TRANSFERS_PER_THREAD: u64 = 50;
/// Seeds per variant (each a fresh engine).
const SEEDS: u64 = 3;
/// Every account's opening balance.
const BALANCE_INITIAL: u64 = 1_000;
/// The largest amount one transfer asks to move.
const AMOUNT_MAX: u64 = 300;
/// Accounts in the low- and high-contention variants.
const ACCOUNTS_LOW_CONTENTION: u64 = 100;
const ACCOUNTS_HIGH_CONTENTION: u64 = 4;
/// Attempts of one transfer before the test gives up (a livelock is a bug).
const ATTEMPTS_MAX: u64 = 10_000;
/// Ids of thread t are t * ID_STRIDE + n.
const ID_STRIDE: u64 = 1_000_000;

#[derive(Debug, Clone, Copy)]
struct Variant {
    isolation: IsolationLevel,
    accounts: u64,
    /// Lock both rows (FOR UPDATE) and read them through the lock, as READ COMMITTED needs.
    for_update: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Transfer {
    from: u64,
    to: u64,
    amount: u64,
}

fn open_engine(seed: u64) -> Engine {
    let opts = EngineOptions {
        store: StoreOptions { checkpoint_interval: None, checkpoint_log_bytes: None, ..Default::default() },
        // Deadlocks are frequent under high contention: find them fast.
        locks: LockSettings { lock_timeout: None, deadlock_timeout: Duration::from_millis(5) },
        ..Default::default()
    };
    Engine::open(Arc::new(SimVfs::new(seed)), Path::new("/db"), opts).expect("open engine")
}

fn account_key(i: u64) -> Vec<u8> {
    format!("acct/{i:04}").into_bytes()
}

fn xfer_key(id: u64) -> Vec<u8> {
    format!("xfer/{id:020}").into_bytes()
}

fn prefix_range(prefix: &str) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
    let mut end = prefix.as_bytes().to_vec();
    *end.last_mut().expect("non-empty prefix") += 1;
    (Bound::Included(prefix.as_bytes().to_vec()), Bound::Excluded(end))
}

fn number(bytes: &[u8]) -> u64 {
    std::str::from_utf8(bytes).expect("text").parse().expect("a number")
}

fn balances(t: &mut txn::Txn) -> txn::Result<Vec<u64>> {
    let (lo, hi) = prefix_range("acct/");
    Ok(t.scan(lo, hi, false, usize::MAX)?.iter().map(|(_, v)| number(v)).collect())
}

/// One attempt of a transfer; returns the amount it moved.
fn attempt(engine: &Engine, variant: Variant, id: u64, want: Transfer) -> txn::Result<u64> {
    let mut t = engine.begin(TxnOptions { isolation: variant.isolation, read_only: false })?;
    let (from_key, to_key) = (account_key(want.from), account_key(want.to));
    let read = |t: &mut txn::Txn, key: &[u8]| -> txn::Result<u64> {
        let value = if variant.for_update {
            t.lock_row(key, LockMode::Exclusive, WaitPolicy::Wait)?.expect("Wait never skips")
        } else {
            t.get(key)?
        };
        Ok(number(&value.expect("accounts exist")))
    };
    let from = read(&mut t, &from_key)?;
    thread::yield_now();
    let to = read(&mut t, &to_key)?;
    let amount = want.amount.min(from);
    t.put(&from_key, (from - amount).to_string().as_bytes())?;
    t.put(&to_key, (to + amount).to_string().as_bytes())?;
    t.put(&xfer_key(id), format!("{},{},{amount}", want.from, want.to).as_bytes())?;
    t.commit()?;
    Ok(amount)
}

/// What one thread's transfers did.
#[derive(Default)]
struct Log {
    acknowledged: BTreeMap<u64, Transfer>,
    failed: BTreeSet<u64>,
    retries: BTreeMap<&'static str, u64>,
}

fn client(engine: &Engine, seed: u64, thread: u64, variant: Variant) -> Log {
    let mut rng = SimRng::new(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ thread);
    let mut log = Log::default();
    let mut next_id = thread * ID_STRIDE;
    for _ in 0..TRANSFERS_PER_THREAD {
        let from = rng.below(variant.accounts);
        let to = (from + 1 + rng.below(variant.accounts - 1)) % variant.accounts;
        let want = Transfer { from, to, amount: 1 + rng.below(AMOUNT_MAX) };
        for attempt_no in 0.. {
            assert!(attempt_no < ATTEMPTS_MAX, "seed {seed}: thread {thread} could not commit {want:?}");
            next_id += 1;
            match attempt(engine, variant, next_id, want) {
                Ok(amount) => {
                    log.acknowledged.insert(next_id, Transfer { amount, ..want });
                    break;
                }
                Err(e) if e.is_retryable() => {
                    log.failed.insert(next_id);
                    *log.retries.entry(e.sqlstate()).or_insert(0) += 1;
                }
                Err(e) => panic!("seed {seed}: {variant:?}: transfer {next_id}: {e} ({})", e.sqlstate()),
            }
        }
    }
    log
}

/// Scans every account in one statement until told to stop; returns how many sums it
/// checked. Each scan reads one snapshot, so it must see the total at every isolation.
fn auditor(engine: &Engine, variant: Variant, total: u64, stop: &AtomicBool) -> u64 {
    let read_only = variant.isolation != IsolationLevel::ReadCommitted;
    let mut audits = 0;
    while !stop.load(Ordering::Relaxed) {
        let mut t = engine.begin(TxnOptions { isolation: variant.isolation, read_only }).expect("begin");
        let b = balances(&mut t).expect("scan");
        assert_eq!(b.iter().sum::<u64>(), total, "{variant:?}: an audit saw {b:?}");
        t.commit().expect("read-only commit");
        audits += 1;
        thread::sleep(Duration::from_micros(200));
    }
    audits
}

fn run(seed: u64, variant: Variant) {
    let engine = open_engine(seed);
    let total = variant.accounts * BALANCE_INITIAL;
    let mut t = engine.begin(TxnOptions::default()).expect("begin");
    for i in 0..variant.accounts {
        t.put(&account_key(i), BALANCE_INITIAL.to_string().as_bytes()).expect("put");
    }
    t.commit().expect("commit opening balances");

    let stop = Arc::new(AtomicBool::new(false));
    let audit = {
        let (engine, stop) = (engine.clone(), stop.clone());
        thread::spawn(move || auditor(&engine, variant, total, &stop))
    };
    let start = Arc::new(Barrier::new(THREADS as usize));
    let clients: Vec<_> = (1..=THREADS)
        .map(|thread| {
            let (engine, start) = (engine.clone(), start.clone());
            thread::spawn(move || {
                start.wait();
                client(&engine, seed, thread, variant)
            })
        })
        .collect();
    let mut log = Log::default();
    for handle in clients {
        let l = handle.join().expect("client thread");
        log.acknowledged.extend(l.acknowledged);
        log.failed.extend(l.failed);
        for (code, n) in l.retries {
            *log.retries.entry(code).or_insert(0) += n;
        }
    }
    stop.store(true, Ordering::Relaxed);
    let audits = audit.join().expect("auditor thread");

    let mut t = engine.begin(TxnOptions { isolation: IsolationLevel::Serializable, read_only: true }).expect("begin");
    let b = balances(&mut t).expect("scan accounts");
    let (lo, hi) = prefix_range("xfer/");
    let logged = t.scan(lo, hi, false, usize::MAX).expect("scan transfers");
    t.commit().expect("read-only commit");

    let context = format!("seed {seed}, {variant:?}");
    assert_eq!(b.len() as u64, variant.accounts, "{context}: accounts");
    assert_eq!(b.iter().sum::<u64>(), total, "{context}: the total changed: {b:?}");
    let mut expected: Vec<i64> = vec![BALANCE_INITIAL as i64; variant.accounts as usize];
    for x in log.acknowledged.values() {
        expected[x.from as usize] -= x.amount as i64;
        expected[x.to as usize] += x.amount as i64;
    }
    let actual: Vec<i64> = b.iter().map(|&v| v as i64).collect();
    assert_eq!(actual, expected, "{context}: balances differ from what acknowledged transfers moved");

    let mut seen = BTreeSet::new();
    for (k, v) in &logged {
        let id = number(&k[b"xfer/".len()..]);
        assert!(!log.failed.contains(&id), "{context}: transfer {id} failed, yet it is in the database");
        let ack = log.acknowledged.get(&id);
        let ack = ack.unwrap_or_else(|| panic!("{context}: transfer {id} is in the database but was never attempted"));
        let text = String::from_utf8(v.clone()).expect("text");
        assert_eq!(text, format!("{},{},{}", ack.from, ack.to, ack.amount), "{context}: transfer {id}");
        assert!(seen.insert(id), "{context}: transfer {id} is logged twice");
    }
    let missing: Vec<_> = log.acknowledged.keys().filter(|id| !seen.contains(id)).collect();
    assert!(missing.is_empty(), "{context}: acknowledged transfers missing: {missing:?}");
    println!(
        "{context}: {} transfers, retries {:?}, {audits} audits, balances {}",
        log.acknowledged.len(),
        log.retries,
        if b.len() <= 10 { format!("{b:?}") } else { format!("(sum {})", b.iter().sum::<u64>()) }
    );
}

fn run_seeds(variant: Variant) {
    for seed in 1..=SEEDS {
        run(seed, variant);
    }
}

#[test]
fn repeatable_read_low_contention() {
    run_seeds(Variant {
        isolation: IsolationLevel::RepeatableRead,
        accounts: ACCOUNTS_LOW_CONTENTION,
        for_update: false,
    });
}

#[test]
fn repeatable_read_high_contention() {
    run_seeds(Variant {
        isolation: IsolationLevel::RepeatableRead,
        accounts: ACCOUNTS_HIGH_CONTENTION,
        for_update: false,
    });
}

#[test]
fn serializable_low_contention() {
    run_seeds(Variant {
        isolation: IsolationLevel::Serializable,
        accounts: ACCOUNTS_LOW_CONTENTION,
        for_update: false,
    });
}

#[test]
fn serializable_high_contention() {
    run_seeds(Variant {
        isolation: IsolationLevel::Serializable,
        accounts: ACCOUNTS_HIGH_CONTENTION,
        for_update: false,
    });
}

#[test]
fn read_committed_for_update_low_contention() {
    run_seeds(Variant {
        isolation: IsolationLevel::ReadCommitted,
        accounts: ACCOUNTS_LOW_CONTENTION,
        for_update: true,
    });
}

#[test]
fn read_committed_for_update_high_contention() {
    run_seeds(Variant {
        isolation: IsolationLevel::ReadCommitted,
        accounts: ACCOUNTS_HIGH_CONTENTION,
        for_update: true,
    });
}
