//! `bulwark bench txn`: the transaction layer's benchmark. Transfers between accounts at
//! 1, 8 and 64 threads, with low contention (many accounts) and high contention (few),
//! at REPEATABLE READ and SERIALIZABLE, retrying 40001/40P01 (a transfer reads both
//! balances, then writes them in account order); then the cost of vacuum. By default the
//! engine logs its commits itself; `--raft` commits through a single-node Raft group, the
//! write path `bulwark start` uses, so the two runs compare the paths head to head.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use storage::vfs::{RealVfs, SimRng};
use storage::StoreOptions;
use txn::{Engine, EngineOptions, IsolationLevel, TxnOptions};

/// Options of `bulwark bench txn`.
#[derive(clap::Args)]
pub struct TxnArgs {
    /// Scratch directory (created, and emptied before each run).
    #[arg(long, default_value = "./bench-data")]
    dir: PathBuf,
    /// Seconds per measured run.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Commit through a single-node Raft group (what `bulwark start` runs) instead of the
    /// engine's own log.
    #[arg(long)]
    raft: bool,
}

/// The engine under test, and what keeps it running.
enum Opened {
    Direct(Engine),
    Raft(Box<cluster::node::Node>),
}

impl Opened {
    fn engine(&self) -> &Engine {
        match self {
            Opened::Direct(e) => e,
            Opened::Raft(n) => n.engine(),
        }
    }
}

type BenchResult<T> = Result<T, Box<dyn std::error::Error>>;

fn account(i: u64) -> Vec<u8> {
    format!("account/{i:08}").into_bytes()
}

fn open(dir: &Path, raft: bool) -> BenchResult<Opened> {
    let _ = std::fs::remove_dir_all(dir);
    let opts =
        EngineOptions { store: StoreOptions { checkpoint_interval: None, ..Default::default() }, ..Default::default() };
    Ok(if raft {
        let opts = cluster::node::NodeOptions { engine: opts, ..Default::default() };
        Opened::Raft(Box::new(cluster::node::Node::open_single(Arc::new(RealVfs), dir, opts)?))
    } else {
        Opened::Direct(Engine::open(Arc::new(RealVfs), dir, opts)?)
    })
}

fn load(engine: &Engine, accounts: u64) -> BenchResult<()> {
    for chunk in (0..accounts).collect::<Vec<_>>().chunks(1000) {
        let mut t = engine.begin(TxnOptions { isolation: IsolationLevel::RepeatableRead, read_only: false })?;
        for &i in chunk {
            t.put(&account(i), &1000u64.to_le_bytes())?;
        }
        t.commit()?;
    }
    Ok(())
}

fn balance(v: Option<Vec<u8>>) -> u64 {
    v.map_or(0, |b| u64::from_le_bytes(b.try_into().expect("8-byte balance")))
}

/// One transfer: read both balances, write both. Returns Ok(true) on commit, Ok(false) on
/// a retryable abort.
fn transfer(engine: &Engine, iso: IsolationLevel, from: u64, to: u64) -> BenchResult<bool> {
    let mut t = engine.begin(TxnOptions { isolation: iso, read_only: false })?;
    let step = (|| -> txn::Result<()> {
        let a = balance(t.get(&account(from))?);
        let b = balance(t.get(&account(to))?);
        let amount = a.min(10);
        // Write (and so lock) in account order, as applications do to avoid deadlocks.
        let mut writes = [(from, a - amount), (to, b + amount)];
        writes.sort_unstable();
        for (acct, bal) in writes {
            t.put(&account(acct), &bal.to_le_bytes())?;
        }
        Ok(())
    })();
    let result = step.and_then(|()| t.commit().map(|_| ()));
    match result {
        Ok(()) => Ok(true),
        Err(e) if e.is_retryable() => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Prints the table.
pub fn run(args: &TxnArgs) -> BenchResult<()> {
    std::fs::create_dir_all(&args.dir)?;
    let path = if args.raft { "through a single-node Raft group" } else { "the engine's own log" };
    println!(
        "Bulwark transaction benchmark: transfers, commits {path}, dir {}, {} s per run",
        args.dir.display(),
        args.seconds
    );
    println!();
    println!("| isolation | contention | threads | commits/s | abort rate | p99 ms |");
    println!("|---|---|---|---|---|---|");
    let dir = args.dir.join("txn");
    for iso in [IsolationLevel::RepeatableRead, IsolationLevel::Serializable] {
        for (contention, accounts) in [("low (10,000 accounts)", 10_000u64), ("high (10 accounts)", 10)] {
            for threads in [1usize, 8, 64] {
                let opened = Arc::new(open(&dir, args.raft)?);
                load(opened.engine(), accounts)?;
                let stop = Arc::new(AtomicBool::new(false));
                let (commits, aborts) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
                let start = Instant::now();
                let handles: Vec<_> = (0..threads)
                    .map(|t| {
                        let (opened, stop, commits, aborts) =
                            (opened.clone(), stop.clone(), commits.clone(), aborts.clone());
                        std::thread::spawn(move || -> Vec<u64> {
                            let mut rng = SimRng::new(t as u64 + 1);
                            let mut lat = Vec::new();
                            while !stop.load(Ordering::Relaxed) {
                                let from = rng.below(accounts);
                                let to = (from + 1 + rng.below(accounts - 1)) % accounts;
                                let t0 = Instant::now();
                                match transfer(opened.engine(), iso, from, to) {
                                    Ok(true) => {
                                        commits.fetch_add(1, Ordering::Relaxed);
                                        lat.push(t0.elapsed().as_micros() as u64);
                                    }
                                    Ok(false) => {
                                        aborts.fetch_add(1, Ordering::Relaxed);
                                    }
                                    Err(e) => panic!("transfer failed: {e}"),
                                }
                            }
                            lat
                        })
                    })
                    .collect();
                std::thread::sleep(Duration::from_secs(args.seconds));
                stop.store(true, Ordering::Relaxed);
                let mut lat: Vec<u64> = handles.into_iter().flat_map(|h| h.join().expect("worker")).collect();
                let secs = start.elapsed().as_secs_f64();
                lat.sort_unstable();
                let p99 = lat.get(lat.len() * 99 / 100).copied().unwrap_or(0) as f64 / 1000.0;
                let (c, a) = (commits.load(Ordering::Relaxed), aborts.load(Ordering::Relaxed));
                println!(
                    "| {iso:?} | {contention} | {threads} | {:.0} | {:.1}% | {p99:.2} |",
                    c as f64 / secs,
                    100.0 * a as f64 / (c + a).max(1) as f64
                );
            }
        }
    }
    // Vacuum: 10,000 keys each updated 10 times, then one vacuum pass.
    let opened = open(&dir, args.raft)?;
    let engine = opened.engine();
    for round in 0..10u64 {
        for chunk in (0..10_000u64).collect::<Vec<_>>().chunks(1000) {
            let mut t = engine.begin(TxnOptions { isolation: IsolationLevel::RepeatableRead, read_only: false })?;
            for &i in chunk {
                t.put(&account(i), &round.to_le_bytes())?;
            }
            t.commit()?;
        }
    }
    let start = Instant::now();
    let (found, reclaimed) = engine.vacuum()?;
    let ms = start.elapsed().as_secs_f64() * 1000.0;
    println!();
    println!(
        "vacuum: {found} dead versions found, {reclaimed} reclaimed in {ms:.0} ms ({:.0} versions/s)",
        reclaimed as f64 / (ms / 1000.0)
    );
    let _ = std::fs::remove_dir_all(&args.dir);
    Ok(())
}
