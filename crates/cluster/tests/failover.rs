//! Isolating the leader: the other two elect a new leader within a bound and accept
//! writes; the isolated old leader acknowledges nothing; after healing it follows.

use std::sync::Arc;

use cluster::harness::{test_config, InProcessCluster, TEST_ELECTION_MS_MAX};
use cluster::types::{Outcome, RegisterCommand};

/// How long a fresh cluster may take to elect its first leader, in milliseconds.
const FIRST_ELECTION_MS_MAX: u64 = 3_000;
/// How long the majority may take to elect a new leader after the old one is cut off, in
/// milliseconds: a few election timeouts (a split vote costs one more round).
const FAILOVER_MS_MAX: u64 = 6 * TEST_ELECTION_MS_MAX;
/// How long the healed old leader may take to follow and catch up, in milliseconds.
const REJOIN_MS_MAX: u64 = 3_000;
/// Seeds to run the scenario with.
const SEEDS: [u64; 3] = [11, 12, 13];
/// The key the isolated leader tries to write; nobody else writes it.
const ORPHAN_KEY: u64 = 99;

#[tokio::test]
async fn isolated_leader_is_replaced_and_acknowledges_nothing() {
    for seed in SEEDS {
        run(seed).await;
    }
}

async fn run(seed: u64) {
    let cluster = Arc::new(InProcessCluster::start(seed, &[1, 2, 3], test_config()).await);
    cluster.initialize().await.expect("initialize");
    let old = cluster
        .wait_for_leader(&[1, 2, 3], FIRST_ELECTION_MS_MAX)
        .await
        .unwrap_or_else(|| panic!("seed {seed}: no first leader"));
    cluster
        .propose(old, RegisterCommand::Write { key: 1, value: 1 })
        .await
        .unwrap_or_else(|e| panic!("seed {seed}: first write: {e}"));

    cluster.router.isolate(old);
    let cut_off_at = std::time::Instant::now();
    // The old leader's write: it cannot reach a quorum, so it must never be acknowledged.
    let orphan = {
        let cluster = cluster.clone();
        tokio::spawn(async move {
            let write = RegisterCommand::Write { key: ORPHAN_KEY, value: 666 };
            cluster.propose(old, write).await
        })
    };

    let rest: Vec<u64> = cluster.ids().into_iter().filter(|&id| id != old).collect();
    let new = cluster
        .wait_for_leader(&rest, FAILOVER_MS_MAX)
        .await
        .unwrap_or_else(|| panic!("seed {seed}: no new leader within {FAILOVER_MS_MAX} ms"));
    let failover_ms = cut_off_at.elapsed().as_millis();
    assert_ne!(new, old, "seed {seed}");
    let (outcome, index) = cluster
        .propose(new, RegisterCommand::Write { key: 2, value: 2 })
        .await
        .unwrap_or_else(|e| panic!("seed {seed}: write through the new leader: {e}"));
    assert_eq!(outcome, Outcome::Written, "seed {seed}");
    assert_eq!(cluster.read(new, 2).await, Ok(Some(2)), "seed {seed}");
    assert!(cluster.read(old, 2).await.is_err(), "seed {seed}: the isolated old leader served a linearizable read");

    cluster.router.heal();
    let result = orphan.await.expect("orphan task");
    assert!(result.is_err(), "seed {seed}: the isolated old leader acknowledged a write: {result:?}");

    // The old leader follows the new one and catches up; its orphan write is gone.
    let all = cluster.ids();
    assert_eq!(
        cluster.wait_for_leader(&all, REJOIN_MS_MAX).await,
        Some(new),
        "seed {seed}: all three follow the new leader"
    );
    let (_, index_after) = cluster
        .propose(new, RegisterCommand::Write { key: 3, value: 3 })
        .await
        .unwrap_or_else(|e| panic!("seed {seed}: write after healing: {e}"));
    assert!(index_after > index);
    for id in all {
        assert!(
            cluster.wait_applied(id, index_after, REJOIN_MS_MAX).await,
            "seed {seed}: node {id} applies through {index_after}"
        );
        let registers = cluster.node(id).expect("node").state_machine.registers();
        let expected = [(1, 1), (2, 2), (3, 3)].into_iter().collect();
        assert_eq!(registers, expected, "seed {seed}: node {id}");
    }
    println!("seed {seed}: leader {old} -> {new} in {failover_ms} ms");
    let cluster = Arc::try_unwrap(cluster).unwrap_or_else(|_| panic!("cluster still shared"));
    cluster.shutdown().await;
}
