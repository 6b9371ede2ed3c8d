//! A register workload under partitions, lost, duplicated and delayed messages, checked
//! linearizable, on a simulation that replays a seed exactly.
//!
//! Several clients write, compare-and-set and read a few keys through whichever node
//! claims to lead (sometimes any node), while a nemesis isolates nodes, splits the cluster,
//! heals it, crashes nodes and restarts them. A node's log makes appends durable only after
//! a simulated fsync (up to [`FSYNC_MS_MAX`]), and openraft hears of an append only then;
//! a crash loses what was not yet durable, and the state machine's applies since its last
//! snapshot. Every call is recorded as a `sim::linearizable::Call`: an error or a
//! timeout on a write leaves its outcome unknown (it may still commit), which the checker
//! allows for; a failed read, or a call to a node that is down, had no effect and is left
//! out. Reads alternate between read-index (`ensure_linearizable`) and a `Read`
//! command through the log.
//!
//! # Exact replay
//!
//! A seed fixes the whole run. Everything runs on one thread: three openraft nodes, the
//! router, the clients and the nemesis are tasks of one tokio runtime whose
//!
//! - clock is paused: it stands still while any task can run and jumps to the next timer
//!   when none can, so a timeout fires after the same work every time, however fast the
//!   machine is;
//! - own random choices (which ready branch of a `select!` runs first, openraft's core and
//!   replication loops included) come from the seed (`Builder::rng_seed`, which needs
//!   `--cfg tokio_unstable`, set in .cargo/config.toml);
//!
//! and openraft's election timeouts are drawn from the seed (`runtime::with_raft_seed`
//! around the whole run), the router's faults from the seed, and the clients' and the
//! nemesis's choices from the seed. Call times are a logical clock: the position of the
//! event in the run, so the checker sees the exact real-time order.
//! [`a_seed_replays_exactly`] runs seeds twice and compares everything the runs did.
//!
//! A failing seed prints itself; rerun it alone with `BULWARK_SEED=<seed> cargo test -p
//! bulwark-cluster --test register_linearizability`. `BULWARK_SIM_SEEDS=N` runs seeds
//! `0..N` (default [`SEEDS_DEFAULT`]).
//!
//! The test has teeth: with `InProcessCluster::read` answering from the local state
//! machine without `ensure_linearizable`, it finds a stale read (NotLinearizable).

mod sim_common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use cluster::harness::{test_config, ClusterError, InProcessCluster};
use cluster::network::{Faults, Rng};
use cluster::runtime::with_raft_seed;
use cluster::types::{Outcome, RegisterCommand};
use sim::linearizable::{check, Call, Op, Verdict};

/// Seeds run by default: `0..SEEDS_DEFAULT`.
const SEEDS_DEFAULT: u64 = 1_000;
/// Seeds that [`a_seed_replays_exactly`] runs twice.
const REPLAYED_SEEDS: [u64; 4] = [0, 1, 2, 3];
/// Concurrent clients.
const CLIENTS: u64 = 4;
/// Keys the clients share.
const KEYS: u64 = 3;
/// Calls each client makes at most.
const CLIENT_CALLS_MAX: u64 = 40;
/// Clients stop starting calls this long after the workload starts, in milliseconds.
const WORKLOAD_MS_MAX: u64 = 1_500;
/// The nemesis changes the partitions this often, at most, in milliseconds.
const NEMESIS_PERIOD_MS_MAX: u64 = 400;
/// How long a fresh cluster may take to elect its first leader, in milliseconds.
const FIRST_ELECTION_MS_MAX: u64 = 3_000;
/// A client's pause after a failed call, in milliseconds (no busy retry loop).
const CLIENT_BACKOFF_MS: u64 = 20;
/// Calls per seed that must get replies for the run to test anything.
const REPLIES_MIN: usize = 10;
/// Chance in a million that the router loses a message (each way).
const DROP_PER_MILLION: u64 = 20_000;
/// Chance in a million that the router delivers a request twice.
const DUPLICATE_PER_MILLION: u64 = 20_000;
/// The most the router delays a message, in milliseconds.
const DELAY_MS_MAX: u64 = 15;
/// The longest a simulated fsync of a node's log takes, in milliseconds.
const FSYNC_MS_MAX: u64 = 10;
/// Nodes down at once, at most (two of three: the cluster has no quorum until a restart).
const DOWN_MAX: usize = 2;

/// Everything a run did that a replay must repeat: the history (with logical times), how
/// long the run took on the simulated clock, and each node's final term, last log index
/// and applied index, and the crashes (node, log entries lost).
#[derive(Debug, PartialEq, Eq)]
struct Trace {
    history: Vec<Call>,
    crashes: Vec<(u64, u64)>,
    simulated_micros: u64,
    nodes: Vec<(u64, Option<u64>, Option<u64>)>,
}

/// The logical clock of a run: each event takes the next number, so numbers order events
/// exactly as they happened on the run's one thread.
#[derive(Default)]
struct Ticks(AtomicU64);

impl Ticks {
    fn next(&self) -> u64 {
        self.0.fetch_add(1, Ordering::Relaxed)
    }
}

fn seeds() -> Vec<u64> {
    if let Ok(s) = std::env::var("BULWARK_SEED") {
        return vec![s.parse().expect("BULWARK_SEED is a u64")];
    }
    let n = std::env::var("BULWARK_SIM_SEEDS").map_or(SEEDS_DEFAULT, |s| s.parse().expect("a number"));
    (0..n).collect()
}

/// Runs seed `seed` on its own one-thread runtime with a paused clock and seeded
/// scheduler choices; returns what it did.
fn simulate(seed: u64) -> Trace {
    let runtime = sim_common::sim_runtime(seed);
    with_raft_seed(Some(seed), || runtime.block_on(run(seed)))
}

#[test]
fn register_workload_under_partitions_is_linearizable() {
    let seeds = seeds();
    let (mut calls, mut replies, mut crashes, mut lost) = (0, 0, 0, 0);
    for &seed in &seeds {
        let trace = simulate(seed);
        calls += trace.history.len();
        replies += trace.history.iter().filter(|c| c.completed.is_some()).count();
        crashes += trace.crashes.len();
        lost += trace.crashes.iter().map(|&(_, lost)| lost).sum::<u64>();
    }
    println!(
        "{} seeds: {calls} calls, {replies} with replies, {crashes} crashes losing {lost} log entries not yet durable, all linearizable",
        seeds.len()
    );
    if seeds.len() >= 20 {
        assert!(
            crashes > 0 && lost > 0,
            "the nemesis crashed nodes ({crashes}) and crashes lost unsynced entries ({lost})"
        );
    }
}

#[test]
fn a_seed_replays_exactly() {
    let mut traces = Vec::new();
    for seed in REPLAYED_SEEDS {
        let first = simulate(seed);
        let again = simulate(seed);
        assert!(first == again, "seed {seed} did not replay exactly:\nfirst: {first:?}\nagain: {again:?}");
        traces.push(first);
    }
    // The trace is fine enough to tell runs apart: different seeds, different runs.
    for (i, a) in traces.iter().enumerate() {
        for b in &traces[i + 1..] {
            assert_ne!(a.history, b.history, "two seeds ran the same history");
        }
    }
}

async fn run(seed: u64) -> Trace {
    let cluster = Arc::new(InProcessCluster::start_with_fsync(seed, &[1, 2, 3], test_config(), FSYNC_MS_MAX).await);
    cluster.initialize().await.expect("initialize");
    cluster
        .wait_for_leader(&[1, 2, 3], FIRST_ELECTION_MS_MAX)
        .await
        .unwrap_or_else(|| panic!("seed {seed}: no first leader"));
    cluster.router.set_faults(Faults {
        drop_per_million: DROP_PER_MILLION,
        duplicate_per_million: DUPLICATE_PER_MILLION,
        delay_ms_max: DELAY_MS_MAX,
    });

    let start = Instant::now();
    let ticks = Arc::new(Ticks::default());
    let history = Arc::new(Mutex::new(Vec::new()));
    let mut clients = Vec::new();
    for client in 0..CLIENTS {
        let (cluster, history) = (cluster.clone(), history.clone());
        let rng = Rng::new(seed.wrapping_mul(1_000).wrapping_add(client));
        let ticks = ticks.clone();
        clients.push(tokio::spawn(client_loop(client, rng, cluster, history, start, ticks)));
    }
    let nemesis = tokio::spawn(nemesis(cluster.clone(), Rng::new(!seed), start));
    for c in clients {
        c.await.expect("client task");
    }
    let crashes = nemesis.await.expect("nemesis task");
    cluster.router.heal();
    // Every node still runs (openraft stops a node on a fatal error, a broken storage
    // promise among them), and the healed cluster elects a leader.
    for id in cluster.ids() {
        let state = cluster.node(id).expect("every node is up").raft.metrics().borrow().running_state.clone();
        assert!(state.is_ok(), "seed {seed} (rerun with BULWARK_SEED={seed}): node {id} stopped: {state:?}");
    }
    assert!(
        cluster.wait_for_leader(&cluster.ids(), FIRST_ELECTION_MS_MAX).await.is_some(),
        "seed {seed} (rerun with BULWARK_SEED={seed}): no leader after the network healed and every node restarted"
    );

    let history = history.lock().expect("history").clone();
    let completed = history.iter().filter(|c| c.completed.is_some()).count();
    let cas_ok = history.iter().filter(|c| c.completed.is_some() && matches!(c.op, Op::Cas { ok: true, .. })).count();
    let verdict = check(&history);
    println!("seed {seed}: {} calls, {completed} with replies, {cas_ok} successful cas, {verdict:?}", history.len());
    assert!(
        completed >= REPLIES_MIN,
        "seed {seed}: too few calls got replies ({completed} of {}) to test anything",
        history.len()
    );
    assert_eq!(verdict, Verdict::Linearizable, "seed {seed} (rerun with BULWARK_SEED={seed}): history {history:#?}");
    let nodes = cluster
        .ids()
        .iter()
        .map(|&id| {
            let m = cluster.node(id).expect("a node of the cluster").raft.metrics().borrow().clone();
            (m.current_term, m.last_log_index, m.last_applied.map(|l| l.index))
        })
        .collect();
    let simulated_micros = start.elapsed().as_micros() as u64;
    let cluster = Arc::try_unwrap(cluster).unwrap_or_else(|_| panic!("cluster still shared"));
    cluster.shutdown().await;
    Trace { history, crashes, simulated_micros, nodes }
}

async fn client_loop(
    client: u64,
    mut rng: Rng,
    cluster: Arc<InProcessCluster>,
    history: Arc<Mutex<Vec<Call>>>,
    start: Instant,
    ticks: Arc<Ticks>,
) {
    let ids = cluster.ids();
    let mut last_seen = [0i64; KEYS as usize];
    for seq in 0..CLIENT_CALLS_MAX {
        if start.elapsed() >= Duration::from_millis(WORKLOAD_MS_MAX) {
            break;
        }
        // Mostly the node that claims to lead; sometimes any node, to exercise refusals.
        let node = match cluster.leader_among(&ids) {
            Some(leader) if !rng.chance(100_000) => leader,
            _ => ids[rng.below(ids.len() as u64) as usize],
        };
        let key = rng.below(KEYS);
        // Values are unique per call, which keeps the checker's search small.
        let value = ((client + 1) * 1_000 + seq) as i64;
        let invoked = ticks.next();
        let fate = match rng.below(4) {
            0 => match cluster.read(node, key).await {
                Ok(v) => {
                    if let Some(v) = v {
                        last_seen[key as usize] = v;
                    }
                    Fate::Replied(Op::Read(v))
                }
                Err(_) => Fate::NoEffect,
            },
            1 => match cluster.propose(node, RegisterCommand::Read { key }).await {
                Ok((Outcome::Read(v), _)) => {
                    last_seen[key as usize] = v.unwrap_or(0);
                    Fate::Replied(Op::Read(v))
                }
                Ok((other, _)) => panic!("read through the log gave {other:?}"),
                Err(_) => Fate::NoEffect,
            },
            2 => match cluster.propose(node, RegisterCommand::Write { key, value }).await {
                Ok((Outcome::Written, _)) => Fate::Replied(Op::Write(value)),
                Ok((other, _)) => panic!("write gave {other:?}"),
                Err(e) => Fate::failed(Op::Write(value), &e),
            },
            _ => {
                let expect = last_seen[key as usize];
                let cas = RegisterCommand::Cas { key, expect, new: value };
                match cluster.propose(node, cas).await {
                    Ok((Outcome::Cas { ok, .. }, _)) => Fate::Replied(Op::Cas { expect, new: value, ok }),
                    Ok((other, _)) => panic!("cas gave {other:?}"),
                    Err(e) => Fate::failed(Op::Cas { expect, new: value, ok: false }, &e),
                }
            }
        };
        let replied = matches!(fate, Fate::Replied(_));
        let call = match fate {
            Fate::Replied(op) => Some(Call { key, op, invoked, completed: Some(ticks.next()) }),
            Fate::Unknown(op) => Some(Call { key, op, invoked, completed: None }),
            Fate::NoEffect => None,
        };
        history.lock().expect("history").extend(call);
        if !replied {
            tokio::time::sleep(Duration::from_millis(CLIENT_BACKOFF_MS)).await;
        }
    }
}

/// What became of a call.
enum Fate {
    /// A reply: the call took effect as it says.
    Replied(Op),
    /// No reply: the write may or may not take effect (the checker allows both).
    Unknown(Op),
    /// No reply and certainly no effect: a read, or a call to a node that is down. It
    /// constrains nothing, and is left out of the history (each unknown call multiplies
    /// the checker's search).
    NoEffect,
}

impl Fate {
    fn failed(op: Op, e: &ClusterError) -> Fate {
        match e {
            ClusterError::Down(_) | ClusterError::NoSuchNode(_) => Fate::NoEffect,
            _ => Fate::Unknown(op),
        }
    }
}

/// Isolates a node, splits the cluster one way or another, heals, crashes a node or
/// restarts one, until the workload ends; leaves the network healed and every node up.
async fn nemesis(cluster: Arc<InProcessCluster>, mut rng: Rng, start: Instant) -> Vec<(u64, u64)> {
    let ids = cluster.ids();
    let mut crashes = Vec::new();
    while start.elapsed() < Duration::from_millis(WORKLOAD_MS_MAX) {
        let pause = NEMESIS_PERIOD_MS_MAX / 2 + rng.below(NEMESIS_PERIOD_MS_MAX / 2 + 1);
        tokio::time::sleep(Duration::from_millis(pause)).await;
        let down: Vec<u64> = cluster.down().into_iter().collect();
        let up: Vec<u64> = ids.iter().copied().filter(|id| !down.contains(id)).collect();
        match rng.below(5) {
            0 => cluster.router.isolate(ids[rng.below(ids.len() as u64) as usize]),
            1 => {
                let lonely = ids[rng.below(ids.len() as u64) as usize];
                cluster.router.split(&[lonely]);
            }
            2 => cluster.router.heal(),
            3 if down.len() < DOWN_MAX => {
                let victim = up[rng.below(up.len() as u64) as usize];
                let lost = cluster.crash(victim).await.expect("a node crashes");
                crashes.push((victim, lost));
            }
            _ if !down.is_empty() => {
                let back = down[rng.below(down.len() as u64) as usize];
                cluster.restart(back).await.expect("a crashed node restarts");
            }
            _ => {}
        }
    }
    for id in cluster.down() {
        cluster.restart(id).await.expect("a crashed node restarts");
    }
    cluster.router.heal();
    crashes
}
