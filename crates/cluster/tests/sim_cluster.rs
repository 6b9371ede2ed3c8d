//! Seeded whole-cluster runs over the real engine: three `Node`s, each on its own
//! simulated disk, talking through the in-process router (seeded message loss, delay,
//! duplication and partitions), while a client moves money between accounts through
//! whichever node leads, and nodes crash (losing their unsynced writes) and restart.
//!
//! Each transfer also writes a marker naming itself. At the end the network heals, every
//! node restarts, and on every node:
//!
//! - the total of all balances is what it was at the start;
//! - every acknowledged transfer's marker is there, and no refused one's (57P03 means not
//!   committed);
//! - the balances are exactly what the markers present add up to (no partial transfer);
//! - all nodes hold the same balances.
//!
//! Other steps run SERIALIZABLE list-append transactions (read a few lists, append unique
//! values), and the history, with the lists every node holds at the end, is checked by
//! the list-append checker (`sim::history`) for isolation anomalies. A transaction whose
//! outcome was unknown (08007) counts as committed if its values are in the final lists.
//!
//! Wall clocks jump too (sometimes past the clock-offset guard's bound, so that a node
//! refuses to lead: the guard reads the peers' clocks through the router), and are set
//! right before the end. Checkpoints (with Raft's snapshot and the log purge after it)
//! happen when the plan says, and a node that received a checkpoint image restarts to
//! install it.
//!
//! This first workload replays a seed exactly ([`a_seed_of_the_engine_runs_replays_exactly`]
//! runs seeds twice and compares everything they did and ended with): the three nodes' Raft
//! tasks run on one single-threaded tokio runtime with a paused clock and seeded scheduler
//! choices (`PeerOptions::driven`), which the test's one thread drives whenever it waits (a
//! commit, a read barrier, a pause); the nodes' wall clocks are that clock; disks, router,
//! Raft's draws and the plan come from the seed.
//!
//! A second workload, [`register_workload_over_the_engine_is_linearizable`], runs several
//! client threads at once against the same kind of cluster, reading, writing and
//! compare-and-setting registers through whichever node serves, while a nemesis thread
//! crashes and restarts nodes, cuts them off and skews their clocks; the history is checked
//! with the linearizability checker (`sim::linearizable`).
//!
//! A third, [`concurrent_bank_and_list_append_clients_keep_the_invariants`], runs the bank
//! and list-append workloads from several client threads at once under the same nemesis,
//! with the same checks at the end; its transfers run at REPEATABLE READ, so a lost update
//! between two clients would break the total.
//!
//! The two concurrent workloads run each node on its own threads and the clients on
//! theirs, on the real clock: there a seed fixes the plan and Raft's draws, not every
//! interleaving.
//!
//! `BULWARK_SEED=N` replays one seed; `BULWARK_SIM_SEEDS=N` runs seeds 0..N of every
//! workload (defaults: 1,000 exact single-client runs, 30 and 20 concurrent ones; the long
//! mode runs tens of thousands).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

mod sim_common;

use cluster::network::{Faults, Rng, Router};
use cluster::node::{Node, NodeOptions, PeerOptions, WallClock};
use sim::history::{self, Op};
use sim::linearizable;
use storage::vfs::{SimVfs, Vfs};
use txn::{EngineOptions, IsolationLevel, TxnOptions};

const NODES: u64 = 3;
const ACCOUNTS: u64 = 5;
const START_BALANCE: i64 = 100;
const STEPS: usize = 60;
const SEEDS_DEFAULT: u64 = 1_000;
/// Keys of the list-append workload.
const LISTS: u64 = 4;
/// How long the end of a run may wait for a leader and for every node to catch up.
const SETTLE_MAX: Duration = Duration::from_secs(30);

fn seeds() -> Vec<u64> {
    if let Ok(s) = std::env::var("BULWARK_SEED") {
        return vec![s.parse().expect("BULWARK_SEED is a number")];
    }
    let n = std::env::var("BULWARK_SIM_SEEDS").map_or(SEEDS_DEFAULT, |s| s.parse().expect("a number"));
    (0..n).collect()
}

fn account(a: u64) -> Vec<u8> {
    format!("acct{a}").into_bytes()
}

fn marker(t: u64) -> Vec<u8> {
    format!("xfer{t:06}").into_bytes()
}

struct Sim {
    /// The shared single-threaded runtime with a paused clock that drives the nodes of an
    /// exact run (see [`Sim::funded_driven`]); None: each node runs its own threads.
    driven: Option<Arc<tokio::runtime::Runtime>>,
    router: Router,
    vfs: Vec<SimVfs>,
    nodes: Vec<Option<Node>>,
    /// Each node's wall-clock offset from the system clock, in microseconds (the clock the
    /// clock-offset guard compares).
    clock_offsets: Vec<Arc<AtomicI64>>,
    seed: u64,
    /// Starts so far, per node: with the seed, what seeds Raft's draws at the next one.
    starts: Vec<u64>,
    /// When a driven run's clocks started (its simulated time zero).
    clock_start: Option<tokio::time::Instant>,
    /// Restarts of nodes that received a checkpoint image (see
    /// [`Sim::restart_where_required`]).
    image_restarts: usize,
}

/// A driven run's wall clocks start here (microseconds since the Unix epoch: 2026-01-01).
const DRIVEN_EPOCH_MICROS: i64 = 1_767_225_600_000_000;

impl Sim {
    fn options(&mut self, id: u64) -> NodeOptions {
        let store = storage::StoreOptions {
            // A driven run checkpoints when its plan says so ([`Sim::checkpoint`]), not on
            // a background thread's schedule.
            checkpoint_log_bytes: if self.driven.is_some() { None } else { Some(256 << 10) },
            checkpoint_interval: None,
            wal: storage::wal::WalOptions { segment_bytes_max: 64 << 10, ..Default::default() },
            ..Default::default()
        };
        let init: BTreeMap<u64, String> = (1..=NODES).map(|i| (i, format!("sim-{i}"))).collect();
        let mut opts = NodeOptions {
            id,
            engine: EngineOptions { store, vacuum_interval: None, ..Default::default() },
            peers: Some(PeerOptions {
                init,
                router: Some(self.router.clone()),
                clock: {
                    let offset = self.clock_offsets[id as usize - 1].clone();
                    match &self.driven {
                        // The runtime's paused clock, from a fixed epoch.
                        Some(rt) => {
                            let handle = rt.handle().clone();
                            let start = {
                                let _inside = handle.enter();
                                tokio::time::Instant::now()
                            };
                            let start = self.clock_start.get_or_insert(start).to_owned();
                            WallClock(Arc::new(move || {
                                let _inside = handle.enter();
                                DRIVEN_EPOCH_MICROS
                                    + tokio::time::Instant::now().duration_since(start).as_micros() as i64
                                    + offset.load(Ordering::Relaxed)
                            }))
                        }
                        None => WallClock(Arc::new(move || {
                            cluster::tcp::system_clock_micros() + offset.load(Ordering::Relaxed)
                        })),
                    }
                },
                driven: self.driven.clone(),
                rng_seed: Some({
                    let starts = &mut self.starts[id as usize - 1];
                    *starts += 1;
                    self.seed.wrapping_mul(0x1_0000_0001) ^ (id << 48) ^ *starts
                }),
                ..PeerOptions::new("127.0.0.1:1".parse().unwrap())
            }),
            ..Default::default()
        };
        opts.raft.heartbeat_interval = 20;
        opts.raft.election_timeout_min = 80;
        opts.raft.election_timeout_max = 160;
        // A driven run's checkpoints purge nearly all the log, so that a node that was down
        // or cut off often catches up from a checkpoint image.
        opts.raft.max_in_snapshot_log_to_keep = if self.driven.is_some() { 2 } else { 20 };
        opts
    }

    fn start(&mut self, i: usize) {
        let id = i as u64 + 1;
        let vfs: Arc<dyn Vfs> = Arc::new(self.vfs[i].clone());
        self.nodes[i] = Some(Node::open(vfs, Path::new("/db"), self.options(id)).expect("a node opens after a crash"));
    }

    fn crash(&mut self, i: usize) {
        drop(self.nodes[i].take());
        self.vfs[i].crash();
    }

    /// The node that leads and may serve linearizable reads (what a SQL session checks
    /// before each statement).
    fn leader(&self) -> Option<&Node> {
        self.nodes.iter().flatten().find(|n| n.status().role == "leader" && n.read_barrier().is_ok())
    }
}

fn balances(node: &Node) -> Vec<i64> {
    let mut t = node.engine().begin(TxnOptions::default()).unwrap();
    let out = (0..ACCOUNTS)
        .map(|a| t.get(&account(a)).unwrap().map_or(0, |v| String::from_utf8(v).unwrap().parse().unwrap()))
        .collect();
    t.rollback();
    out
}

fn markers(node: &Node) -> BTreeMap<u64, (u64, u64, i64)> {
    let mut t = node.engine().begin(TxnOptions::default()).unwrap();
    let rows = t
        .scan(
            std::ops::Bound::Included(b"xfer".to_vec()),
            std::ops::Bound::Excluded(b"xfes".to_vec()),
            false,
            usize::MAX,
        )
        .unwrap();
    t.rollback();
    rows.into_iter()
        .map(|(k, v)| {
            let t: u64 = String::from_utf8(k[4..].to_vec()).unwrap().parse().unwrap();
            let v = String::from_utf8(v).unwrap();
            let f: Vec<&str> = v.split(',').collect();
            (t, (f[0].parse().unwrap(), f[1].parse().unwrap(), f[2].parse().unwrap()))
        })
        .collect()
}

fn list_key(k: u64) -> Vec<u8> {
    format!("list{k}").into_bytes()
}

fn decode_list(v: Option<Vec<u8>>) -> Option<Vec<u64>> {
    v.map(|b| {
        let s = String::from_utf8(b).unwrap();
        s.split(',').filter(|x| !x.is_empty()).map(|x| x.parse().unwrap()).collect()
    })
}

fn encode_list(l: &[u64]) -> Vec<u8> {
    l.iter().map(u64::to_string).collect::<Vec<_>>().join(",").into_bytes()
}

/// A list-append transaction's plan: one to three lists read, some appended to, with values
/// from `next` (unique across the run).
fn list_plan(rng: &mut Rng, mut next: impl FnMut() -> u64) -> Vec<(u64, Option<u64>)> {
    (0..1 + rng.below(3)).map(|_| (rng.below(LISTS), rng.chance(600_000).then(&mut next))).collect()
}

/// Adds a list-append transaction to the history: committed or not if its outcome is known,
/// to be resolved by the final lists if not.
fn record_list(lists: &mut Vec<(history::Txn, bool)>, ops: Vec<Op>, outcome: Result<bool, ()>) {
    let id = lists.len() as u64 + 1;
    match outcome {
        Ok(committed) => lists.push((history::Txn { id, ops, committed }, true)),
        Err(()) => lists.push((history::Txn { id, ops, committed: false }, false)),
    }
}

/// One SERIALIZABLE list-append transaction through `node`: (what it did and saw, its
/// outcome as [`transfer`] gives it).
fn list_append(node: &Node, plan: &[(u64, Option<u64>)]) -> (Vec<Op>, Result<bool, ()>) {
    let mut ops = Vec::new();
    let result = (|| -> txn::Result<Option<u64>> {
        let mut t = node.engine().begin(TxnOptions { isolation: IsolationLevel::Serializable, read_only: false })?;
        for &(key, append) in plan {
            let list = decode_list(t.get(&list_key(key))?);
            ops.push(Op::Read { key, list: list.clone() });
            if let Some(value) = append {
                ops.push(Op::Append { key, value });
                let mut list = list.unwrap_or_default();
                list.push(value);
                t.put(&list_key(key), &encode_list(&list))?;
            }
        }
        t.commit()
    })();
    let outcome = match result {
        Ok(_) => Ok(true),
        Err(txn::Error::CommitUnknown(_)) => Err(()),
        Err(_) => Ok(false),
    };
    (ops, outcome)
}

/// One transfer through `node`: Ok(true) acknowledged, Ok(false) refused (not committed),
/// Err(()) outcome unknown.
fn transfer(node: &Node, t: u64, from: u64, to: u64, amount: i64, isolation: IsolationLevel) -> Result<bool, ()> {
    let run = || -> txn::Result<Option<u64>> {
        let mut tx = node.engine().begin(TxnOptions { isolation, read_only: false })?;
        let read = |tx: &mut txn::Txn, a: u64| -> txn::Result<i64> {
            Ok(tx.get(&account(a))?.map_or(0, |v| String::from_utf8(v).unwrap().parse().unwrap()))
        };
        let (fb, tb) = (read(&mut tx, from)?, read(&mut tx, to)?);
        tx.put(&account(from), (fb - amount).to_string().as_bytes())?;
        tx.put(&account(to), (tb + amount).to_string().as_bytes())?;
        tx.put(&marker(t), format!("{from},{to},{amount}").as_bytes())?;
        tx.commit()
    };
    match run() {
        Ok(_) => Ok(true),
        Err(txn::Error::CommitUnknown(_)) => Err(()),
        Err(_) => Ok(false),
    }
}

impl Sim {
    /// Three nodes started on fresh simulated disks, each on its own threads.
    fn started(seed: u64) -> Sim {
        Sim::started_on(seed, None)
    }

    fn started_on(seed: u64, driven: Option<Arc<tokio::runtime::Runtime>>) -> Sim {
        let mut sim = Sim {
            driven,
            clock_start: None,
            image_restarts: 0,
            router: Router::new(seed),
            vfs: (0..NODES).map(|i| SimVfs::new(seed * 16 + i)).collect(),
            nodes: (0..NODES).map(|_| None).collect(),
            clock_offsets: (0..NODES).map(|_| Arc::new(AtomicI64::new(0))).collect(),
            seed,
            starts: vec![0; NODES as usize],
        };
        for i in 0..NODES as usize {
            sim.start(i);
        }
        sim
    }

    /// Three nodes started on fresh simulated disks, the accounts funded through the leader.
    fn funded(seed: u64) -> Sim {
        Sim::fund(Sim::started(seed))
    }

    /// Like [`Sim::funded`], for an exact run: every node's Raft runs on one
    /// single-threaded runtime with a paused clock and tokio's choices seeded, which this
    /// thread drives whenever it waits (a commit, a read barrier, [`Sim::pause`]); the
    /// nodes' wall clocks are that clock, and checkpoints happen when the plan says. With
    /// the seeded router, disks and Raft draws, a seed replays exactly.
    fn funded_driven(seed: u64) -> Sim {
        let rt = sim_common::sim_runtime(seed);
        Sim::fund(Sim::started_on(seed, Some(Arc::new(rt))))
    }

    /// Waits `d`: on the simulated clock in a driven run (the nodes run meanwhile), else
    /// on the real one.
    fn pause(&self, d: Duration) {
        match &self.driven {
            Some(rt) => rt.block_on(async { tokio::time::sleep(d).await }),
            None => std::thread::sleep(d),
        }
    }

    /// Now, on the run's clock.
    fn now(&self) -> Instant {
        match &self.driven {
            Some(rt) => {
                let _inside = rt.enter();
                tokio::time::Instant::now().into_std()
            }
            None => Instant::now(),
        }
    }

    /// Checkpoints live node `i` and makes Raft's snapshot of it (the log before it may
    /// then be purged).
    fn checkpoint(&self, i: usize) {
        if let Some(node) = &self.nodes[i] {
            let _ = node.snapshot_now();
        }
    }

    /// Restarts the nodes that must restart: each saved a checkpoint image from the leader,
    /// which it installs when it opens (a real node re-executes itself).
    fn restart_where_required(&mut self) {
        for i in 0..NODES as usize {
            if self.nodes[i].as_ref().is_some_and(|n| n.restart_required().is_some()) {
                drop(self.nodes[i].take());
                self.start(i);
                self.image_restarts += 1;
            }
        }
    }

    fn fund(sim: Sim) -> Sim {
        let seed = sim.seed;
        let deadline = sim.now() + SETTLE_MAX;
        loop {
            if let Some(l) = sim.leader() {
                let mut tx = l.engine().begin(TxnOptions::default()).unwrap();
                for a in 0..ACCOUNTS {
                    tx.put(&account(a), START_BALANCE.to_string().as_bytes()).unwrap();
                }
                if tx.commit().is_ok() {
                    return sim;
                }
            }
            assert!(sim.now() < deadline, "seed {seed}: no leader to fund the accounts");
            sim.pause(Duration::from_millis(10));
        }
    }

    fn set_clocks_right(&self) {
        for offset in &self.clock_offsets {
            offset.store(0, Ordering::Relaxed);
        }
    }

    /// Waits (bounded) for a node that leads and may serve; its index.
    fn wait_leader(&self, what: &str) -> usize {
        let deadline = self.now() + SETTLE_MAX;
        loop {
            if let Some(l) = self.leader() {
                return self.nodes.iter().position(|n| n.as_ref().is_some_and(|n| std::ptr::eq(n, l))).unwrap();
            }
            assert!(self.now() < deadline, "{what}: no leader");
            self.pause(Duration::from_millis(10));
        }
    }
}

/// The bank invariant on one node: the total is unchanged and the balances are exactly what
/// the transfers whose markers are present add up to.
fn check_bank(node: &Node, what: &str) {
    let b = balances(node);
    let mut expect = vec![START_BALANCE; ACCOUNTS as usize];
    for (from, to, amount) in markers(node).values() {
        expect[*from as usize] -= amount;
        expect[*to as usize] += amount;
    }
    assert_eq!(b.iter().sum::<i64>(), ACCOUNTS as i64 * START_BALANCE, "{what}: total {b:?}");
    assert_eq!(b, expect, "{what}: balances are not what the transfers present add up to");
}

/// One exact run of the single-client workload: everything it did and ended with (see
/// [`settle_and_check`]), which a replay of the seed must repeat; the steps at which a node
/// refused to lead because of its clock; the restarts to install a checkpoint image.
fn run_seed(seed: u64) -> (String, usize, usize) {
    let mut rng = Rng::new(seed);
    let mut sim = Sim::funded_driven(seed);
    let (mut acked, mut refused, mut unknown) = (BTreeSet::new(), BTreeSet::new(), 0);
    // The list-append history: (transaction, outcome known?).
    let mut lists: Vec<(history::Txn, bool)> = Vec::new();
    let mut next_value = 0u64;
    let mut crashes = 0;
    let mut clock_refusals = 0;
    for step in 0..STEPS {
        let began = Instant::now();
        sim.restart_where_required();
        if sim.nodes.iter().flatten().any(|n| n.clock_refusal().is_some()) {
            clock_refusals += 1;
        }
        let action = rng.below(23);
        match action {
            22 => sim.checkpoint(rng.below(NODES) as usize),
            20 => {
                // A node's wall clock jumps, sometimes past the clock-offset guard's bound.
                let ms = rng.below(2_000) as i64 * if rng.chance(500_000) { 1 } else { -1 };
                sim.clock_offsets[rng.below(NODES) as usize].store(ms * 1_000, Ordering::Relaxed);
            }
            21 => sim.set_clocks_right(),
            0 | 1 => {
                // Crash a live node, keeping a quorum's worth alive most of the time.
                let live: Vec<usize> = (0..NODES as usize).filter(|&i| sim.nodes[i].is_some()).collect();
                if live.len() > 1 {
                    sim.crash(live[rng.below(live.len() as u64) as usize]);
                    crashes += 1;
                }
            }
            2 | 3 => {
                let down: Vec<usize> = (0..NODES as usize).filter(|&i| sim.nodes[i].is_none()).collect();
                if let Some(&i) = down.first() {
                    sim.start(i);
                }
            }
            4 => sim.router.isolate(rng.below(NODES) + 1),
            5 => sim.router.heal(),
            6 => sim.router.set_faults(Faults {
                drop_per_million: rng.below(50_000),
                duplicate_per_million: rng.below(50_000),
                delay_ms_max: rng.below(20),
            }),
            7 => sim.router.set_faults(Faults::default()),
            8..=11 => {
                let plan = list_plan(&mut rng, || {
                    next_value += 1;
                    next_value
                });
                if let Some(l) = sim.leader() {
                    let (ops, outcome) = list_append(l, &plan);
                    record_list(&mut lists, ops, outcome);
                } else {
                    sim.pause(Duration::from_millis(20));
                }
            }
            _ => {
                let t = step as u64;
                let from = rng.below(ACCOUNTS);
                let to = (from + 1 + rng.below(ACCOUNTS - 1)) % ACCOUNTS;
                let amount = rng.below(20) as i64 + 1;
                if let Some(l) = sim.leader() {
                    let r = transfer(l, t, from, to, amount, IsolationLevel::RepeatableRead);
                    if std::env::var("BULWARK_SIM_TRACE").is_ok() {
                        eprintln!(
                            "TRACE step {step}: transfer {t} {from}->{to} {amount} via node {} term {:?} applied {}: {r:?}; balances after {:?}",
                            l.status().id,
                            l.status().term,
                            l.engine().applied_index(),
                            balances(l)
                        );
                    }
                    match r {
                        Ok(true) => {
                            acked.insert(t);
                        }
                        Ok(false) => {
                            refused.insert(t);
                        }
                        Err(()) => unknown += 1,
                    }
                } else {
                    sim.pause(Duration::from_millis(20));
                }
            }
        }
        if std::env::var("BULWARK_SIM_TRACE").is_ok() && !(8..20).contains(&action) {
            let clocks: Vec<i64> = sim.clock_offsets.iter().map(|o| o.load(Ordering::Relaxed) / 1_000).collect();
            eprintln!("TRACE step {step}: clock offsets (ms) {clocks:?}");
            let st: Vec<String> = sim
                .nodes
                .iter()
                .flatten()
                .map(|n| {
                    let s = n.status();
                    format!("{}:{}/t{}/a{}/l{}", s.id, s.role, s.term, s.applied_index, s.last_log_index)
                })
                .collect();
            eprintln!("TRACE step {step}: action {action}; live {st:?}");
        }
        if began.elapsed() > Duration::from_secs(1) {
            eprintln!("seed {seed}: step {step} (action {action}) took {:?}", began.elapsed());
        }
    }

    let (trace, image_restarts) = settle_and_check(seed, sim, Outcomes { acked, refused, unknown, lists, crashes });
    (
        format!("{trace}\nclock refusals at {clock_refusals} steps, {image_restarts} image installs"),
        clock_refusals,
        image_restarts,
    )
}

/// What the clients of a run saw: transfers acknowledged, refused (not committed) and of
/// unknown outcome; the list-append history, each transaction with whether its outcome is
/// known; the crashes the run injected.
#[derive(Default)]
struct Outcomes {
    acked: BTreeSet<u64>,
    refused: BTreeSet<u64>,
    unknown: usize,
    lists: Vec<(history::Txn, bool)>,
    crashes: usize,
}

/// Heals the network, sets the clocks right, restarts every node, lets the cluster settle,
/// and checks on every node the bank invariant, the acknowledged and refused transfers, and
/// the list-append history against the lists every node holds. Returns what the run did
/// and ended with (the outcomes, the history, and each node's balances, markers and
/// applied index), and how many times a node restarted to install a checkpoint image.
fn settle_and_check(seed: u64, mut sim: Sim, outcomes: Outcomes) -> (String, usize) {
    let Outcomes { acked, refused, unknown, lists, crashes } = outcomes;
    let mut trace = format!("acked {acked:?} refused {refused:?} unknown {unknown} crashes {crashes} lists {lists:?}");
    // Heal, right the clocks, restart everyone, let the cluster settle.
    sim.router.heal();
    sim.set_clocks_right();
    sim.router.set_faults(Faults::default());
    for i in 0..NODES as usize {
        if sim.nodes[i].is_none() {
            sim.start(i);
        }
    }
    let deadline = sim.now() + SETTLE_MAX;
    let target = loop {
        // A commit through the leader makes everything before it committed.
        if let Some(l) = sim.leader() {
            let mut tx = l.engine().begin(TxnOptions::default()).unwrap();
            tx.put(b"settle", b"1").unwrap();
            if let Ok(Some(index)) = tx.commit() {
                break index;
            }
        }
        assert!(sim.now() < deadline, "seed {seed}: no leader after healing");
        sim.pause(Duration::from_millis(10));
    };
    for i in 0..NODES as usize {
        while sim.nodes[i].as_ref().unwrap().engine().applied_index() < target {
            assert!(sim.now() < deadline, "seed {seed}: node {} did not catch up to {target}", i + 1);
            sim.pause(Duration::from_millis(10));
            sim.restart_where_required();
        }
    }
    // The lists as every node holds them at the end: the same everywhere; unknown outcomes
    // are resolved by them; then the history is checked.
    let final_lists = |node: &Node| -> Vec<(u64, Option<Vec<u64>>)> {
        let mut t = node.engine().begin(TxnOptions::default()).unwrap();
        let out = (0..LISTS).map(|k| (k, decode_list(t.get(&list_key(k)).unwrap()))).collect();
        t.rollback();
        out
    };
    let end = final_lists(sim.nodes[0].as_ref().unwrap());
    for (i, node) in sim.nodes.iter().enumerate().skip(1) {
        assert_eq!(final_lists(node.as_ref().unwrap()), end, "seed {seed}: node {} lists differ from node 1", i + 1);
    }
    let present: BTreeSet<u64> = end.iter().flat_map(|(_, l)| l.clone().unwrap_or_default()).collect();
    let mut txns: Vec<history::Txn> = lists
        .into_iter()
        .map(|(mut t, known)| {
            if !known {
                t.committed = t.ops.iter().any(|op| matches!(op, Op::Append { value, .. } if present.contains(value)));
            }
            t
        })
        .collect();
    txns.push(history::Txn {
        id: 0,
        ops: end.into_iter().map(|(key, list)| Op::Read { key, list }).collect(),
        committed: true,
    });
    let list_committed = txns.iter().filter(|t| t.committed).count() - 1;
    let list_appends = present.len();
    let result = history::check(&txns);
    assert!(result.is_valid(), "seed {seed}: list-append anomalies: {:?}", result.anomalies);
    if std::env::var("BULWARK_SIM_TRACE").is_ok() {
        for (i, node) in sim.nodes.iter().enumerate() {
            let node = node.as_ref().unwrap();
            let m = markers(node);
            let mut expect = vec![START_BALANCE; ACCOUNTS as usize];
            for (from, to, amount) in m.values() {
                expect[*from as usize] -= amount;
                expect[*to as usize] += amount;
            }
            eprintln!(
                "TRACE node {}: applied {} balances {:?} expect {:?} markers {:?}",
                i + 1,
                node.engine().applied_index(),
                balances(node),
                expect,
                m
            );
        }
        eprintln!("TRACE acked {acked:?} refused {refused:?}");
    }
    let mut first: Option<Vec<i64>> = None;
    for (i, node) in sim.nodes.iter().enumerate() {
        let node = node.as_ref().unwrap();
        let b = balances(node);
        let m = markers(node);
        let id = i + 1;
        check_bank(node, &format!("seed {seed}: node {id}"));
        let missing: Vec<&u64> = acked.iter().filter(|t| !m.contains_key(t)).collect();
        assert!(missing.is_empty(), "seed {seed}: node {id}: acknowledged transfers missing: {missing:?}");
        let present: Vec<&u64> = refused.iter().filter(|t| m.contains_key(t)).collect();
        assert!(present.is_empty(), "seed {seed}: node {id}: refused (57P03) transfers present: {present:?}");
        trace += &format!(
            "\nnode {id}: balances {b:?} markers {m:?} applied {} status {:?}",
            node.engine().applied_index(),
            node.status().term
        );
        match &first {
            None => first = Some(b),
            Some(f) => assert_eq!(&b, f, "seed {seed}: node {id} disagrees with node 1"),
        }
    }
    eprintln!(
        "seed {seed}: {} acknowledged, {} refused, {unknown} unknown, {crashes} crashes; \
         {list_committed} list-append transactions committed, {list_appends} values in the final lists",
        acked.len(),
        refused.len()
    );
    (trace, sim.image_restarts)
}

#[test]
fn seeded_cluster_runs_keep_every_acknowledged_transfer_and_the_total() {
    let seeds = seeds();
    let (mut clock_refusals, mut image_restarts) = (0, 0);
    for &seed in &seeds {
        eprintln!("seed {seed} (replay with BULWARK_SEED={seed})");
        let started = Instant::now();
        let (_, refusals, restarts) = run_seed(seed);
        (clock_refusals, image_restarts) = (clock_refusals + refusals, image_restarts + restarts);
        eprintln!("seed {seed}: {:?}", started.elapsed());
    }
    eprintln!(
        "{} seeds: a node refused to lead for its clock at {clock_refusals} steps; {image_restarts} nodes \
         restarted to install a checkpoint image",
        seeds.len()
    );
    if seeds.len() >= 100 {
        assert!(clock_refusals > 0, "no clock jump made a node refuse to lead: the guard went untested");
        assert!(image_restarts > 0, "no node caught up from a checkpoint image: images went untested");
    }
}

/// Seeds [`a_seed_of_the_engine_runs_replays_exactly`] runs twice.
const REPLAYED_SEEDS: [u64; 3] = [0, 1, 2];

#[test]
fn a_seed_of_the_engine_runs_replays_exactly() {
    let mut traces = Vec::new();
    for seed in REPLAYED_SEEDS {
        let first = run_seed(seed).0;
        let again = run_seed(seed).0;
        assert!(first == again, "seed {seed} did not replay exactly:\nfirst: {first}\nagain: {again}");
        traces.push(first);
    }
    for (i, a) in traces.iter().enumerate() {
        for b in &traces[i + 1..] {
            assert_ne!(a, b, "two seeds ran the same run");
        }
    }
}

/// A leader that restarts keeps its term: openraft starts it as leader again, with no new
/// blank entry, and it knows its log's commit index only as far as its last saved hint. It
/// must apply its whole log before it serves: the first read after the restart must see the
/// transfer acknowledged just before the crash.
#[test]
fn a_leader_restarted_in_its_term_applies_its_log_before_serving() {
    const ROUNDS: u64 = 60;
    let mut same_term = 0;
    for round in 0..ROUNDS {
        let seed = 10_000 + round;
        let what = format!("round {round}");
        let mut sim = Sim::funded(seed);
        let l = sim.wait_leader(&what);
        let term = sim.nodes[l].as_ref().unwrap().status().term;
        assert_eq!(
            transfer(sim.nodes[l].as_ref().unwrap(), 1, 0, 1, 10, IsolationLevel::ReadCommitted),
            Ok(true),
            "{what}: the first transfer"
        );
        // The crash may lose the last save of the committed hint (it is not synced), so the
        // node comes back knowing less committed than its log holds.
        sim.crash(l);
        sim.start(l);
        // Read the moment a leader may serve (no sleep between tries).
        let deadline = Instant::now() + SETTLE_MAX;
        let now = loop {
            if let Some(n) = sim.leader() {
                break sim.nodes.iter().position(|m| m.as_ref().is_some_and(|m| std::ptr::eq(m, n))).unwrap();
            }
            assert!(Instant::now() < deadline, "{what}: no leader after the restart");
        };
        let node = sim.nodes[now].as_ref().unwrap();
        let (b, m) = (balances(node), markers(node));
        if now == l && node.status().term == term {
            same_term += 1;
        }
        assert!(m.contains_key(&1), "{what}: node {} served a read without the acknowledged transfer: {b:?}", now + 1);
        check_bank(node, &what);
        // A transfer that reads the account the first one changed (it may fail or end
        // unknown if the leadership moves meanwhile; the balances must add up either way).
        let _ = transfer(node, 2, 1, 2, 5, IsolationLevel::ReadCommitted);
        check_bank(node, &what);
    }
    eprintln!("{same_term} of {ROUNDS} rounds restarted the leader in its own term");
    assert!(same_term > 0, "no round restarted the leader in its own term: the case this test is for did not occur");
}

/// Register keys of the linearizability workload.
const REGISTERS: u64 = 4;
/// Client threads of the linearizability workload.
const REGISTER_CLIENTS: u64 = 3;
/// Calls each client makes at most.
const REGISTER_CALLS_MAX: u64 = 200;
/// Clients stop starting calls this long after the workload starts.
const REGISTER_WORKLOAD: Duration = Duration::from_millis(1_500);
/// Seeds the linearizability workload runs by default (`BULWARK_SIM_SEEDS` scales both
/// workloads).
const REGISTER_SEEDS_DEFAULT: u64 = 30;
/// Calls per seed that must get replies for a run to test anything.
const REGISTER_REPLIES_MIN: usize = 10;

fn register_key(k: u64) -> Vec<u8> {
    format!("reg{k}").into_bytes()
}

fn register_value(v: Option<Vec<u8>>) -> Option<i64> {
    v.map(|b| String::from_utf8(b).unwrap().parse().unwrap())
}

/// One call through `node`, which passed the read barrier: the operation as the checker
/// sees it and whether it got a reply; None if it certainly had no effect (refused before
/// it was proposed, or rejected as a conflict).
fn register_call(node: &Node, key: u64, kind: u64, value: i64, expect: i64) -> Option<(linearizable::Op, bool)> {
    use linearizable::Op;
    let k = register_key(key);
    match kind {
        0 => {
            let mut t =
                node.engine().begin(TxnOptions { isolation: IsolationLevel::RepeatableRead, read_only: true }).ok()?;
            let v = register_value(t.get(&k).ok()?);
            t.rollback();
            Some((Op::Read(v), true))
        }
        1 => {
            let mut t = node.engine().begin(TxnOptions::default()).ok()?;
            t.put(&k, value.to_string().as_bytes()).ok()?;
            match t.commit() {
                Ok(_) => Some((Op::Write(value), true)),
                Err(txn::Error::CommitUnknown(_)) => Some((Op::Write(value), false)),
                Err(_) => None,
            }
        }
        _ => {
            let mut t =
                node.engine().begin(TxnOptions { isolation: IsolationLevel::RepeatableRead, read_only: false }).ok()?;
            if register_value(t.get(&k).ok()?) != Some(expect) {
                t.rollback();
                return Some((Op::Cas { expect, new: value, ok: false }, true));
            }
            t.put(&k, value.to_string().as_bytes()).ok()?;
            match t.commit() {
                Ok(_) => Some((Op::Cas { expect, new: value, ok: true }, true)),
                Err(txn::Error::CommitUnknown(_)) => Some((Op::Cas { expect, new: value, ok: true }, false)),
                Err(_) => None,
            }
        }
    }
}

/// The nemesis of the concurrent workloads, until `REGISTER_WORKLOAD` after `start`: crashes
/// and restarts, cut-off nodes, clock jumps, at seeded moments. Returns the crashes.
fn nemesis(sim: &RwLock<Sim>, seed: u64, start: Instant) -> usize {
    let mut rng = Rng::new(!seed);
    let mut crashes = 0;
    while start.elapsed() < REGISTER_WORKLOAD {
        std::thread::sleep(Duration::from_millis(50 + rng.below(150)));
        let mut sim = sim.write().unwrap();
        match rng.below(7) {
            0 => {
                let live: Vec<usize> = (0..NODES as usize).filter(|&i| sim.nodes[i].is_some()).collect();
                if live.len() > 1 {
                    sim.crash(live[rng.below(live.len() as u64) as usize]);
                    crashes += 1;
                }
            }
            1 | 2 => {
                if let Some(i) = (0..NODES as usize).find(|&i| sim.nodes[i].is_none()) {
                    sim.start(i);
                }
            }
            3 => sim.router.isolate(rng.below(NODES) + 1),
            4 => sim.router.heal(),
            5 => {
                let ms = rng.below(2_000) as i64 * if rng.chance(500_000) { 1 } else { -1 };
                sim.clock_offsets[rng.below(NODES) as usize].store(ms * 1_000, Ordering::Relaxed);
            }
            _ => sim.set_clocks_right(),
        }
    }
    crashes
}

fn run_register_seed(seed: u64) {
    let sim = Sim::started(seed);
    sim.wait_leader(&format!("seed {seed}"));
    sim.router.set_faults(Faults { drop_per_million: 20_000, duplicate_per_million: 20_000, delay_ms_max: 10 });
    let sim = Arc::new(RwLock::new(sim));
    let history: Arc<Mutex<Vec<linearizable::Call>>> = Arc::default();
    let start = Instant::now();
    let micros = move || start.elapsed().as_micros() as u64;
    let clients: Vec<_> = (0..REGISTER_CLIENTS)
        .map(|client| {
            let (sim, history) = (sim.clone(), history.clone());
            std::thread::spawn(move || {
                let mut rng = Rng::new(seed.wrapping_mul(1_000).wrapping_add(client));
                let mut last_seen = [0i64; REGISTERS as usize];
                for seq in 0..REGISTER_CALLS_MAX {
                    if start.elapsed() >= REGISTER_WORKLOAD {
                        break;
                    }
                    let (key, kind) = (rng.below(REGISTERS), rng.below(3));
                    // Values are unique per call, which keeps the checker's search small.
                    let value = ((client + 1) * 1_000 + seq) as i64;
                    let expect = last_seen[key as usize];
                    let invoked = micros();
                    let result = {
                        let sim = sim.read().unwrap();
                        sim.leader().map(|node| register_call(node, key, kind, value, expect))
                    };
                    match result {
                        Some(Some((op, replied))) => {
                            if let linearizable::Op::Read(Some(v)) = op {
                                last_seen[key as usize] = v;
                            }
                            let completed = replied.then(&micros);
                            history.lock().unwrap().push(linearizable::Call { key, op, invoked, completed });
                        }
                        _ => std::thread::sleep(Duration::from_millis(10)),
                    }
                    // Spread the calls over the nemesis's window.
                    std::thread::sleep(Duration::from_millis(rng.below(8)));
                }
            })
        })
        .collect();
    let crashes = nemesis(&sim, seed, start);
    for c in clients {
        c.join().expect("client thread");
    }
    let history = history.lock().unwrap().clone();
    let completed = history.iter().filter(|c| c.completed.is_some()).count();
    let verdict = linearizable::check(&history);
    eprintln!("seed {seed}: {} calls, {completed} with replies, {crashes} crashes: {verdict:?}", history.len());
    assert_eq!(
        verdict,
        linearizable::Verdict::Linearizable,
        "seed {seed} (replay with BULWARK_SEED={seed}): history {history:#?}"
    );
    assert!(
        completed >= REGISTER_REPLIES_MIN,
        "seed {seed}: only {completed} calls got replies: the run tested little"
    );
}

#[test]
fn register_workload_over_the_engine_is_linearizable() {
    let seeds = match (std::env::var("BULWARK_SEED"), std::env::var("BULWARK_SIM_SEEDS")) {
        (Ok(_), _) | (_, Ok(_)) => seeds(),
        _ => (0..REGISTER_SEEDS_DEFAULT).collect(),
    };
    for seed in seeds {
        eprintln!("register seed {seed} (replay with BULWARK_SEED={seed})");
        run_register_seed(seed);
    }
}

/// Client threads of the concurrent bank and list-append workload.
const CONCURRENT_CLIENTS: u64 = 3;
/// Seeds the concurrent bank and list-append workload runs by default (`BULWARK_SIM_SEEDS`
/// scales it too).
const CONCURRENT_SEEDS_DEFAULT: u64 = 20;
/// Calls per client thread at most in one seed.
const CONCURRENT_CALLS_MAX: u64 = 150;
/// Transactions per seed that must commit for a run to test anything.
const CONCURRENT_COMMITS_MIN: usize = 10;

/// The bank and list-append workloads with several clients at once, while a nemesis thread
/// crashes and restarts nodes, cuts them off, and skews their clocks. Transfers run at
/// REPEATABLE READ, so that two transfers from one account conflict (40001) instead of one
/// overwriting the other's balance: a lost update would break the total.
fn run_concurrent_seed(seed: u64) {
    let sim = Sim::funded(seed);
    sim.router.set_faults(Faults { drop_per_million: 20_000, duplicate_per_million: 20_000, delay_ms_max: 10 });
    let sim = Arc::new(RwLock::new(sim));
    let outcomes: Arc<Mutex<Outcomes>> = Arc::default();
    let start = Instant::now();
    let clients: Vec<_> = (0..CONCURRENT_CLIENTS)
        .map(|client| {
            let (sim, outcomes) = (sim.clone(), outcomes.clone());
            std::thread::spawn(move || {
                let mut rng = Rng::new(seed.wrapping_mul(1_000).wrapping_add(client));
                let mut next_value = (client + 1) * 1_000_000;
                for seq in 0..CONCURRENT_CALLS_MAX {
                    if start.elapsed() >= REGISTER_WORKLOAD {
                        break;
                    }
                    let served = {
                        let sim = sim.read().unwrap();
                        let Some(l) = sim.leader() else {
                            drop(sim);
                            std::thread::sleep(Duration::from_millis(10));
                            continue;
                        };
                        if rng.chance(600_000) {
                            // Transfer ids are unique across clients.
                            let t = (client + 1) * 1_000 + seq;
                            let from = rng.below(ACCOUNTS);
                            let to = (from + 1 + rng.below(ACCOUNTS - 1)) % ACCOUNTS;
                            let amount = rng.below(20) as i64 + 1;
                            let r = transfer(l, t, from, to, amount, IsolationLevel::RepeatableRead);
                            let mut o = outcomes.lock().unwrap();
                            match r {
                                Ok(true) => o.acked.insert(t),
                                Ok(false) => o.refused.insert(t),
                                Err(()) => {
                                    o.unknown += 1;
                                    true
                                }
                            };
                        } else {
                            let plan = list_plan(&mut rng, || {
                                next_value += 1;
                                next_value
                            });
                            let (ops, outcome) = list_append(l, &plan);
                            record_list(&mut outcomes.lock().unwrap().lists, ops, outcome);
                        }
                        true
                    };
                    if served {
                        std::thread::sleep(Duration::from_millis(rng.below(5)));
                    }
                }
            })
        })
        .collect();
    let crashes = nemesis(&sim, seed, start);
    for c in clients {
        c.join().expect("client thread");
    }
    let sim = Arc::try_unwrap(sim).ok().expect("the clients are done").into_inner().unwrap();
    let mut outcomes = std::mem::take(&mut *outcomes.lock().unwrap());
    outcomes.crashes = crashes;
    let committed = outcomes.acked.len() + outcomes.lists.iter().filter(|(t, known)| *known && t.committed).count();
    assert!(
        committed >= CONCURRENT_COMMITS_MIN,
        "seed {seed}: only {committed} transactions committed: the run tested little"
    );
    settle_and_check(seed, sim, outcomes);
}

#[test]
fn concurrent_bank_and_list_append_clients_keep_the_invariants() {
    let seeds = match (std::env::var("BULWARK_SEED"), std::env::var("BULWARK_SIM_SEEDS")) {
        (Ok(_), _) | (_, Ok(_)) => seeds(),
        _ => (0..CONCURRENT_SEEDS_DEFAULT).collect(),
    };
    for seed in seeds {
        eprintln!("concurrent seed {seed} (replay with BULWARK_SEED={seed})");
        let started = Instant::now();
        run_concurrent_seed(seed);
        eprintln!("concurrent seed {seed}: {:?}", started.elapsed());
    }
}
