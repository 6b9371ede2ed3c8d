//! A cluster initialises and elects a leader; writes through the leader reach every node.

use cluster::harness::{test_config, InProcessCluster};
use cluster::types::{Outcome, RegisterCommand};

/// How long a fresh cluster may take to elect its first leader, in milliseconds.
const FIRST_ELECTION_MS_MAX: u64 = 3_000;
/// How long a follower may take to apply a committed entry, in milliseconds.
const APPLY_WAIT_MS_MAX: u64 = 2_000;

#[tokio::test]
async fn single_node_is_a_group_of_one_voter() {
    let cluster = InProcessCluster::start(1, &[1], test_config()).await;
    cluster.initialize().await.expect("initialize");
    let leader = cluster.wait_for_leader(&[1], FIRST_ELECTION_MS_MAX).await;
    assert_eq!(leader, Some(1));
    let (outcome, _) = cluster.propose(1, RegisterCommand::Write { key: 1, value: 10 }).await.expect("write");
    assert_eq!(outcome, Outcome::Written);
    let cas = RegisterCommand::Cas { key: 1, expect: 10, new: 11 };
    let (outcome, _) = cluster.propose(1, cas).await.expect("cas");
    assert_eq!(outcome, Outcome::Cas { ok: true, current: Some(11) });
    assert_eq!(cluster.read(1, 1).await, Ok(Some(11)));
    let (outcome, _) = cluster.propose(1, RegisterCommand::Read { key: 1 }).await.expect("read through the log");
    assert_eq!(outcome, Outcome::Read(Some(11)));
    cluster.shutdown().await;
}

#[tokio::test]
async fn three_nodes_elect_a_leader_and_apply_its_writes_everywhere() {
    let cluster = InProcessCluster::start(2, &[1, 2, 3], test_config()).await;
    cluster.initialize().await.expect("initialize");
    let leader = cluster.wait_for_leader(&[1, 2, 3], FIRST_ELECTION_MS_MAX).await.expect("a leader is elected");
    assert_eq!(cluster.leader_claims().len(), 1, "one leader");

    let mut last_index = 0;
    for key in 0..5u64 {
        let value = key as i64 * 100;
        let (outcome, index) =
            cluster.propose(leader, RegisterCommand::Write { key, value }).await.expect("write through the leader");
        assert_eq!(outcome, Outcome::Written);
        last_index = index;
    }
    for id in cluster.ids() {
        assert!(
            cluster.wait_applied(id, last_index, APPLY_WAIT_MS_MAX).await,
            "node {id} applies through {last_index}"
        );
        let registers = cluster.node(id).expect("node").state_machine.registers();
        let expected = (0..5u64).map(|k| (k, k as i64 * 100)).collect();
        assert_eq!(registers, expected, "node {id}");
    }
    cluster.shutdown().await;
}
