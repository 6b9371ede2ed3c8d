//! A node that missed entries the leader has already purged catches up from a snapshot
//! (the state machine's encoded registers, installed through the router).

use std::sync::Arc;

use cluster::harness::{test_config, InProcessCluster};
use cluster::types::RegisterCommand;
use openraft::SnapshotPolicy;

/// The leader snapshots after this many entries, and keeps no log behind the snapshot.
const SNAPSHOT_EVERY_ENTRIES: u64 = 10;
/// Writes made while the lagging node is cut off: several snapshots' worth.
const WRITES_WHILE_AWAY: u64 = 35;
/// How long a fresh cluster may take to elect its first leader, in milliseconds.
const FIRST_ELECTION_MS_MAX: u64 = 3_000;
/// How long the lagging node may take to catch up after healing, in milliseconds.
const CATCH_UP_MS_MAX: u64 = 3_000;

#[tokio::test]
async fn lagging_node_catches_up_from_a_snapshot() {
    let mut config = (*test_config()).clone();
    config.snapshot_policy = SnapshotPolicy::LogsSinceLast(SNAPSHOT_EVERY_ENTRIES);
    config.max_in_snapshot_log_to_keep = 0;
    // One entry per append: openraft purges only logs no replication has in flight, so the
    // lagging node's first (stuck) append must finish before the leader can purge; the next
    // one then finds the log gone and sends the snapshot.
    config.max_payload_entries = 1;
    let config = Arc::new(config.validate().expect("config"));
    let cluster = InProcessCluster::start(21, &[1, 2, 3], config).await;
    cluster.initialize().await.expect("initialize");
    let leader = cluster.wait_for_leader(&[1, 2, 3], FIRST_ELECTION_MS_MAX).await.expect("a leader");
    let lagging = cluster.ids().into_iter().find(|&id| id != leader).expect("a follower");

    cluster.router.isolate(lagging);
    let mut last_index = 0;
    for i in 0..WRITES_WHILE_AWAY {
        let write = RegisterCommand::Write { key: i % 4, value: i as i64 };
        let (_, index) = cluster.propose(leader, write).await.expect("write");
        last_index = index;
    }
    cluster.router.heal();
    assert!(
        cluster.wait_applied(lagging, last_index, CATCH_UP_MS_MAX).await,
        "node {lagging} catches up through {last_index}"
    );
    let installed = cluster.node(lagging).expect("node").state_machine.snapshots_installed();
    assert!(installed >= 1, "node {lagging} caught up without a snapshot");
    let expected = cluster.node(leader).expect("leader").state_machine.registers();
    let got = cluster.node(lagging).expect("node").state_machine.registers();
    assert_eq!(got, expected);
    assert_eq!(got.len(), 4);
    cluster.shutdown().await;
}
