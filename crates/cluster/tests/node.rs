//! A single node is a Raft group of one: every commit goes through openraft into the
//! write-ahead log, and what was acknowledged survives restarts and crashes that lose
//! unsynced writes (the simulated disk). `BULWARK_SEED=N` replays one seed.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use cluster::node::{Node, NodeOptions};
use storage::vfs::{SimVfs, Vfs};
use txn::{EngineOptions, IsolationLevel, TxnOptions};

const ACCOUNTS: u64 = 8;
const START_BALANCE: i64 = 100;

fn options() -> NodeOptions {
    // Small enough that a run checkpoints and purges the log several times.
    let store = storage::StoreOptions {
        checkpoint_log_bytes: Some(64 << 10),
        checkpoint_interval: None,
        wal: storage::wal::WalOptions { segment_bytes_max: 32 << 10, ..Default::default() },
        ..Default::default()
    };
    let mut opts = NodeOptions {
        engine: EngineOptions { store, vacuum_interval: None, ..Default::default() },
        ..Default::default()
    };
    opts.raft.max_in_snapshot_log_to_keep = 20;
    opts
}

fn open(vfs: &SimVfs) -> Node {
    Node::open_single(Arc::new(vfs.clone()) as Arc<dyn Vfs>, Path::new("/db"), options()).expect("open the node")
}

fn key(account: u64) -> Vec<u8> {
    format!("acct{account:02}").into_bytes()
}

fn balances(node: &Node) -> Vec<i64> {
    let mut t = node.engine().begin(TxnOptions::default()).unwrap();
    let out = (0..ACCOUNTS)
        .map(|a| t.get(&key(a)).unwrap().map_or(0, |v| String::from_utf8(v).unwrap().parse().unwrap()))
        .collect();
    t.rollback();
    out
}

fn seeds() -> Vec<u64> {
    match std::env::var("BULWARK_SEED") {
        Ok(s) => vec![s.parse().expect("BULWARK_SEED is a number")],
        Err(_) => (0..6).collect(),
    }
}

/// Moves money between accounts from several threads; a crash cuts the run short at a
/// seeded moment. After restart: every acknowledged transfer is there, the total never
/// changed, and the node commits again.
#[test]
fn acknowledged_commits_survive_a_crash_and_the_total_holds() {
    for seed in seeds() {
        eprintln!("seed {seed} (replay with BULWARK_SEED={seed})");
        let vfs = SimVfs::new(seed);
        let acked: Arc<Mutex<Vec<(u64, u64)>>> = Arc::default(); // (commit index, transfer id)
        {
            let node = open(&vfs);
            let mut t = node.engine().begin(TxnOptions::default()).unwrap();
            for a in 0..ACCOUNTS {
                t.put(&key(a), START_BALANCE.to_string().as_bytes()).unwrap();
            }
            t.commit().unwrap();
            let node = Arc::new(node);
            let stop = Arc::new(AtomicBool::new(false));
            let workers: Vec<_> = (0..4u64)
                .map(|w| {
                    let (node, acked, stop) = (node.clone(), acked.clone(), stop.clone());
                    std::thread::spawn(move || {
                        let mut n = 0u64;
                        while !stop.load(Ordering::Relaxed) {
                            n += 1;
                            let id = w << 32 | n;
                            let (from, to) = ((seed + w + n) % ACCOUNTS, (seed + w + 3 * n + 1) % ACCOUNTS);
                            if from == to {
                                continue;
                            }
                            let opts = TxnOptions { isolation: IsolationLevel::RepeatableRead, read_only: false };
                            let Ok(mut t) = node.engine().begin(opts) else { return };
                            let read = |t: &mut txn::Txn, a| -> txn::Result<i64> {
                                Ok(t.get(&key(a))?.map_or(0, |v| String::from_utf8(v).unwrap().parse().unwrap()))
                            };
                            let moved = (|| -> txn::Result<Option<u64>> {
                                let (f, g) = (read(&mut t, from)?, read(&mut t, to)?);
                                t.put(&key(from), (f - 1).to_string().as_bytes())?;
                                t.put(&key(to), (g + 1).to_string().as_bytes())?;
                                t.put(format!("done{id:016x}").as_bytes(), b"1")?;
                                Ok(None)
                            })();
                            match moved {
                                Ok(_) => match t.commit() {
                                    Ok(Some(index)) => acked.lock().unwrap().push((index, id)),
                                    Ok(None) => unreachable!("a transfer writes"),
                                    Err(e) if e.sqlstate() == "40001" => {}
                                    Err(_) => return, // the disk is gone
                                },
                                Err(e) if e.sqlstate() == "40001" => t.rollback(),
                                Err(_) => return,
                            }
                        }
                    })
                })
                .collect();
            let target = 20 + seed * 7 % 60;
            while (acked.lock().unwrap().len() as u64) < target {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            // Power cut: unsynced writes are lost or torn; the old handles fail from now on.
            vfs.crash();
            stop.store(true, Ordering::Relaxed);
            for w in workers {
                w.join().unwrap();
            }
        }
        let node = open(&vfs);
        let acked = acked.lock().unwrap().clone();
        let applied = node.engine().applied_index();
        let mut t = node.engine().begin(TxnOptions::default()).unwrap();
        for (index, id) in &acked {
            assert!(*index <= applied, "seed {seed}: commit {index} acknowledged, applied only {applied}");
            assert_eq!(
                t.get(format!("done{id:016x}").as_bytes()).unwrap(),
                Some(b"1".to_vec()),
                "seed {seed}: acknowledged transfer {id:x} (commit {index}) lost"
            );
        }
        t.rollback();
        let total: i64 = balances(&node).iter().sum();
        assert_eq!(total, START_BALANCE * ACCOUNTS as i64, "seed {seed}: money appeared or vanished");
        // And it commits again, after everything it recovered.
        let mut t = node.engine().begin(TxnOptions::default()).unwrap();
        t.put(b"after", b"1").unwrap();
        let index = t.commit().unwrap().unwrap();
        assert!(index > applied, "seed {seed}: a new commit at {index} after applied {applied}");
    }
}

/// A clean restart keeps everything and goes on numbering after the old log, through
/// several checkpoints that purge it.
#[test]
fn restarts_keep_data_and_the_log_numbering() {
    let vfs = SimVfs::new(42);
    let mut last = 0;
    for round in 0..4u64 {
        let node = open(&vfs);
        let mut t = node.engine().begin(TxnOptions::default()).unwrap();
        for r in 0..round {
            assert_eq!(t.get(format!("round{r}").as_bytes()).unwrap(), Some(r.to_string().into_bytes()));
        }
        t.rollback();
        for i in 0..300u64 {
            let mut t = node.engine().begin(TxnOptions::default()).unwrap();
            t.put(format!("round{round}").as_bytes(), round.to_string().as_bytes()).unwrap();
            t.put(format!("k{i}").as_bytes(), vec![b'x'; 200].as_slice()).unwrap();
            let index = t.commit().unwrap().unwrap();
            assert!(index > last, "commit indices grow: {index} after {last}");
            last = index;
        }
        // A snapshot (a checkpoint) lets Raft purge the log before it.
        node.snapshot_now().unwrap();
    }
    let node = open(&vfs);
    assert!(node.engine().store().log().first_index() > 1, "checkpoints purged the start of the log");
    assert!(node.engine().applied_index() >= last);
}

/// Concurrent commits share entries (group commit above Raft), and sharing never loses an
/// update: threads increment counters under REPEATABLE READ, retrying on 40001; every
/// acknowledged increment is in the final counts.
#[test]
fn concurrent_commits_share_entries_without_losing_updates() {
    const THREADS: u64 = 12;
    const INCREMENTS: u64 = 150;
    const COUNTERS: u64 = 3;
    let vfs = SimVfs::new(7);
    let node = Arc::new(open(&vfs));
    let appends_before = node.engine().store().stats().wal.appends;
    let acked: Arc<Mutex<Vec<u64>>> = Arc::default();
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let (node, acked) = (node.clone(), acked.clone());
            std::thread::spawn(move || {
                for i in 0..INCREMENTS {
                    // Half the commits touch a shared counter, half a key of their own.
                    let key = if i % 2 == 0 { format!("counter{}", (t + i) % COUNTERS) } else { format!("own{t}-{i}") };
                    loop {
                        let opts = TxnOptions { isolation: IsolationLevel::RepeatableRead, read_only: false };
                        let mut txn = node.engine().begin(opts).unwrap();
                        let step = || -> txn::Result<()> {
                            let v = txn
                                .get(key.as_bytes())?
                                .map_or(0u64, |v| String::from_utf8(v).unwrap().parse().unwrap());
                            txn.put(key.as_bytes(), (v + 1).to_string().as_bytes())
                        };
                        let mut step = step;
                        match step() {
                            Ok(()) => {}
                            Err(e) if e.sqlstate() == "40001" => continue,
                            Err(e) => panic!("{e}"),
                        }
                        match txn.commit() {
                            Ok(_) => {
                                if key.starts_with("counter") {
                                    acked.lock().unwrap().push((t + i) % COUNTERS);
                                }
                                break;
                            }
                            Err(e) if e.sqlstate() == "40001" => continue,
                            Err(e) => panic!("{e}"),
                        }
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let mut t = node.engine().begin(TxnOptions::default()).unwrap();
    let acked = acked.lock().unwrap().clone();
    for c in 0..COUNTERS {
        let want = acked.iter().filter(|&&a| a == c).count() as u64;
        let got: u64 = t
            .get(format!("counter{c}").as_bytes())
            .unwrap()
            .map_or(0, |v| String::from_utf8(v).unwrap().parse().unwrap());
        assert_eq!(got, want, "counter {c}: {got} stored, {want} increments acknowledged");
    }
    t.rollback();
    let commits = THREADS * INCREMENTS;
    let appends = node.engine().store().stats().wal.appends - appends_before;
    eprintln!("{commits} commits (and their retries) took {appends} log appends");
    assert!(appends < commits, "commits arriving together share entries: {appends} appends for {commits} commits");
}

/// A commit made from inside a tokio task whose cooperative budget is spent (a server's
/// connection task that read many messages in one poll, as a large COPY does) still sees
/// Raft's answer: a commit must not wait on a budgeted tokio future from such a task.
#[test]
fn commits_from_a_task_that_spent_its_budget_are_answered() {
    let vfs = SimVfs::new(0);
    let node = open(&vfs);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        use std::future::Future;
        // Spend the task's budget: poll ready channels until one says "not yet" although
        // its value is there, which tokio does only when the budget is gone.
        let mut spent = false;
        for _ in 0..10_000 {
            let (tx, rx) = tokio::sync::oneshot::channel();
            tx.send(()).unwrap();
            let mut rx = std::pin::pin!(rx);
            if std::future::poll_fn(|cx| std::task::Poll::Ready(rx.as_mut().poll(cx))).await.is_pending() {
                spent = true;
                break;
            }
        }
        assert!(spent, "the budget was never spent");
        let started = std::time::Instant::now();
        for i in 0..3 {
            let mut t = node.engine().begin(TxnOptions::default()).unwrap();
            t.put(&key(i), b"1").unwrap();
            t.commit().expect("the commit is answered");
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(10), "answers took {:?}", started.elapsed());
    });
}
