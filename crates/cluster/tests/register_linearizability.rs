//! A register workload under partitions, lost, duplicated and delayed messages, checked linearizable.
//!
//! Several clients write, compare-and-set and read a few keys through whichever node
//! claims to lead (sometimes any node), while a nemesis isolates nodes, splits the cluster
//! and heals it. Every call is recorded as a `sim::linearizable::Call`: an error or a
//! timeout on a write leaves its outcome unknown (it may still commit), which the checker
//! allows for. Reads alternate between read-index (`ensure_linearizable`) and a `Read`
//! command through the log.
//!
//! A failing seed prints itself; rerun it alone with `BULWARK_SEED=<seed> cargo test -p
//! bulwark-cluster --test register_linearizability`. The router's fault plan replays
//! exactly; openraft's own timers do not (see the crate docs), so a replay is likely but not
//! certain to fail the same way.
//!
//! The test has teeth: with `InProcessCluster::read` answering from the local state
//! machine without `ensure_linearizable`, seed 1 finds a stale read (NotLinearizable).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cluster::harness::{test_config, InProcessCluster};
use cluster::network::{Faults, Rng};
use cluster::types::{Outcome, RegisterCommand};
use sim::linearizable::{check, Call, Op, Verdict};

/// Seeds run by default.
const SEEDS: [u64; 5] = [1, 2, 3, 4, 5];
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
const REPLIES_MIN: usize = 20;
/// Chance in a million that the router loses a message (each way).
const DROP_PER_MILLION: u64 = 20_000;
/// Chance in a million that the router delivers a request twice.
const DUPLICATE_PER_MILLION: u64 = 20_000;
/// The most the router delays a message, in milliseconds.
const DELAY_MS_MAX: u64 = 15;

#[tokio::test]
async fn register_workload_under_partitions_is_linearizable() {
    let seeds: Vec<u64> = match std::env::var("BULWARK_SEED") {
        Ok(s) => vec![s.parse().expect("BULWARK_SEED is a u64")],
        Err(_) => SEEDS.to_vec(),
    };
    for seed in seeds {
        run(seed).await;
    }
}

async fn run(seed: u64) {
    let cluster = Arc::new(InProcessCluster::start(seed, &[1, 2, 3], test_config()).await);
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
    let history = Arc::new(Mutex::new(Vec::new()));
    let mut clients = Vec::new();
    for client in 0..CLIENTS {
        let (cluster, history) = (cluster.clone(), history.clone());
        let rng = Rng::new(seed.wrapping_mul(1_000).wrapping_add(client));
        clients.push(tokio::spawn(client_loop(client, rng, cluster, history, start)));
    }
    let nemesis = tokio::spawn(nemesis(cluster.clone(), Rng::new(!seed), start));
    for c in clients {
        c.await.expect("client task");
    }
    nemesis.await.expect("nemesis task");
    cluster.router.heal();

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
    let cluster = Arc::try_unwrap(cluster).unwrap_or_else(|_| panic!("cluster still shared"));
    cluster.shutdown().await;
}

fn micros(start: Instant) -> u64 {
    start.elapsed().as_micros() as u64
}

async fn client_loop(
    client: u64,
    mut rng: Rng,
    cluster: Arc<InProcessCluster>,
    history: Arc<Mutex<Vec<Call>>>,
    start: Instant,
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
        let invoked = micros(start);
        let (op, replied) = match rng.below(4) {
            0 => {
                let result = cluster.read(node, key).await;
                if let Ok(Some(v)) = result {
                    last_seen[key as usize] = v;
                }
                (Op::Read(result.clone().unwrap_or(None)), result.is_ok())
            }
            1 => {
                let result = cluster.propose(node, RegisterCommand::Read { key }).await;
                match result {
                    Ok((Outcome::Read(v), _)) => {
                        last_seen[key as usize] = v.unwrap_or(0);
                        (Op::Read(v), true)
                    }
                    Ok((other, _)) => panic!("read through the log gave {other:?}"),
                    Err(_) => (Op::Read(None), false),
                }
            }
            2 => {
                let result = cluster.propose(node, RegisterCommand::Write { key, value }).await;
                match result {
                    Ok((Outcome::Written, _)) => (Op::Write(value), true),
                    Ok((other, _)) => panic!("write gave {other:?}"),
                    Err(_) => (Op::Write(value), false),
                }
            }
            _ => {
                let expect = last_seen[key as usize];
                let cas = RegisterCommand::Cas { key, expect, new: value };
                match cluster.propose(node, cas).await {
                    Ok((Outcome::Cas { ok, .. }, _)) => (Op::Cas { expect, new: value, ok }, true),
                    Ok((other, _)) => panic!("cas gave {other:?}"),
                    Err(_) => (Op::Cas { expect, new: value, ok: false }, false),
                }
            }
        };
        let completed = replied.then(|| micros(start));
        history.lock().expect("history").push(Call { key, op, invoked, completed });
        if !replied {
            tokio::time::sleep(Duration::from_millis(CLIENT_BACKOFF_MS)).await;
        }
    }
}

/// Isolates a node, splits the cluster one way or another, or heals, until the workload
/// ends; leaves the network healed.
async fn nemesis(cluster: Arc<InProcessCluster>, mut rng: Rng, start: Instant) {
    let ids = cluster.ids();
    while start.elapsed() < Duration::from_millis(WORKLOAD_MS_MAX) {
        let pause = NEMESIS_PERIOD_MS_MAX / 2 + rng.below(NEMESIS_PERIOD_MS_MAX / 2 + 1);
        tokio::time::sleep(Duration::from_millis(pause)).await;
        match rng.below(3) {
            0 => cluster.router.isolate(ids[rng.below(ids.len() as u64) as usize]),
            1 => {
                let lonely = ids[rng.below(ids.len() as u64) as usize];
                cluster.router.split(&[lonely]);
            }
            _ => cluster.router.heal(),
        }
    }
    cluster.router.heal();
}
