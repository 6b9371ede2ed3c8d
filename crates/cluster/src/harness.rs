//! An in-process cluster of Raft nodes on one [`Router`], for tests: start, initialise,
//! propose, read linearizably, find the leader, wait for applies, crash a node (losing
//! what its log had not made durable) and restart it. Every wait is bounded.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use openraft::{BasicNode, Config, ServerState};

use crate::memstore::{MemLogStore, MemStateMachine};
use crate::network::{Router, RouterNetworkFactory};
use crate::types::{NodeId, Outcome, Raft, RegisterCommand};

/// Heartbeat interval for in-process tests, in milliseconds.
pub const TEST_HEARTBEAT_MS: u64 = 50;
/// Shortest election timeout for in-process tests, in milliseconds.
pub const TEST_ELECTION_MS_MIN: u64 = 150;
/// Longest election timeout for in-process tests, in milliseconds.
pub const TEST_ELECTION_MS_MAX: u64 = 300;
/// The longest a client call (propose or read) waits for its outcome, in milliseconds.
/// Past it the outcome is unknown: the command may still commit.
pub const CLIENT_WAIT_MS_MAX: u64 = 1_000;
/// How often waits poll the nodes' metrics, in milliseconds.
pub const POLL_MS: u64 = 10;

/// What went wrong with a client call, and what the caller can do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterError {
    /// No outcome within [`CLIENT_WAIT_MS_MAX`]: the command may or may not take effect.
    /// Retry only if the command is idempotent.
    Timeout,
    /// The node is not (or no longer) the leader; retry on `leader` if known. For a
    /// proposal this does not prove the command was not committed.
    NotLeader {
        /// The leader the node knows of.
        leader: Option<NodeId>,
    },
    /// Openraft refused or failed otherwise; the message says why.
    Raft(String),
    /// The caller named a node the cluster does not have: fix the input.
    NoSuchNode(NodeId),
    /// The node is down (crashed and not restarted).
    Down(NodeId),
}

impl fmt::Display for ClusterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClusterError::Timeout => write!(f, "no outcome within {CLIENT_WAIT_MS_MAX} ms"),
            ClusterError::NotLeader { leader } => write!(f, "not the leader (leader: {leader:?})"),
            ClusterError::Raft(why) => write!(f, "raft: {why}"),
            ClusterError::NoSuchNode(id) => write!(f, "no node {id}"),
            ClusterError::Down(id) => write!(f, "node {id} is down"),
        }
    }
}

impl std::error::Error for ClusterError {}

/// One node: its Raft handle and (shared views of) its storage.
#[derive(Clone)]
pub struct ClusterNode {
    /// The running Raft node.
    pub raft: Raft,
    /// Its log (shared with openraft).
    pub log: MemLogStore,
    /// Its state machine (shared with openraft).
    pub state_machine: MemStateMachine,
}

/// Several Raft nodes in one process, talking through one [`Router`].
pub struct InProcessCluster {
    /// The network: partitions and faults.
    pub router: Router,
    /// The seed the router was built from (print it when a test fails).
    pub seed: u64,
    config: Arc<Config>,
    /// Every node, up or down.
    nodes: Mutex<BTreeMap<NodeId, ClusterNode>>,
    /// The nodes crashed and not restarted.
    down: Mutex<BTreeSet<NodeId>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().expect("harness lock poisoned: a holder panicked")
}

/// The Raft config in-process tests use: short timeouts so elections take milliseconds.
pub fn test_config() -> Arc<Config> {
    let config = Config {
        cluster_name: "bulwark-test".to_string(),
        heartbeat_interval: TEST_HEARTBEAT_MS,
        election_timeout_min: TEST_ELECTION_MS_MIN,
        election_timeout_max: TEST_ELECTION_MS_MAX,
        ..Config::default()
    };
    Arc::new(config.validate().expect("test raft config is valid"))
}

async fn bounded<T>(fut: impl std::future::Future<Output = Result<T, ClusterError>>) -> Result<T, ClusterError> {
    match tokio::time::timeout(Duration::from_millis(CLIENT_WAIT_MS_MAX), fut).await {
        Ok(result) => result,
        Err(_) => Err(ClusterError::Timeout),
    }
}

impl InProcessCluster {
    /// Starts nodes `ids` (not yet initialised) on a router seeded with `seed`; their logs
    /// are durable at once.
    pub async fn start(seed: u64, ids: &[NodeId], config: Arc<Config>) -> InProcessCluster {
        Self::start_with_logs(seed, ids, config, |_| MemLogStore::new()).await
    }

    /// Starts nodes `ids` like [`InProcessCluster::start`], with logs whose appends become
    /// durable after a simulated fsync of up to `fsync_ms_max` (seeded by `seed` and the
    /// node), so that [`InProcessCluster::crash`] loses the appends not yet durable.
    pub async fn start_with_fsync(
        seed: u64,
        ids: &[NodeId],
        config: Arc<Config>,
        fsync_ms_max: u64,
    ) -> InProcessCluster {
        Self::start_with_logs(seed, ids, config, |id| MemLogStore::with_fsync(seed ^ (id << 56), fsync_ms_max)).await
    }

    async fn start_with_logs(
        seed: u64,
        ids: &[NodeId],
        config: Arc<Config>,
        new_log: impl Fn(NodeId) -> MemLogStore,
    ) -> InProcessCluster {
        let router = Router::new(seed);
        let mut nodes = BTreeMap::new();
        for &id in ids {
            let log = new_log(id);
            let state_machine = MemStateMachine::new();
            let network = RouterNetworkFactory { from: id, router: router.clone() };
            let raft = Raft::new(id, config.clone(), network, log.clone(), state_machine.clone())
                .await
                .expect("a fresh in-memory raft node starts");
            router.add_node(id, raft.clone());
            nodes.insert(id, ClusterNode { raft, log, state_machine });
        }
        InProcessCluster { router, seed, config, nodes: Mutex::new(nodes), down: Mutex::default() }
    }

    /// Crashes node `id`: stops its Raft, loses what its log had not made durable and its
    /// state machine's applies since its last snapshot. It stays down until
    /// [`InProcessCluster::restart`]. Returns how many log entries it lost.
    pub async fn crash(&self, id: NodeId) -> Result<u64, ClusterError> {
        let node = self.node(id)?;
        lock(&self.down).insert(id);
        node.log.stop_syncing();
        tokio::time::timeout(Duration::from_millis(CLIENT_WAIT_MS_MAX), node.raft.shutdown())
            .await
            .map_err(|_| ClusterError::Timeout)?
            .map_err(|e| ClusterError::Raft(e.to_string()))?;
        Ok(node.log.crash())
    }

    /// Restarts a crashed node `id` on what survived of its log and state machine.
    pub async fn restart(&self, id: NodeId) -> Result<(), ClusterError> {
        if !lock(&self.down).contains(&id) {
            return Err(ClusterError::Raft(format!("node {id} is not down")));
        }
        let old = lock(&self.nodes).get(&id).cloned().ok_or(ClusterError::NoSuchNode(id))?;
        let state_machine = old.state_machine.after_crash();
        let network = RouterNetworkFactory { from: id, router: self.router.clone() };
        let raft = Raft::new(id, self.config.clone(), network, old.log.clone(), state_machine.clone())
            .await
            .map_err(|e| ClusterError::Raft(e.to_string()))?;
        self.router.set_node(id, raft.clone());
        lock(&self.nodes).insert(id, ClusterNode { raft, log: old.log, state_machine });
        lock(&self.down).remove(&id);
        Ok(())
    }

    /// The nodes that are down.
    pub fn down(&self) -> BTreeSet<NodeId> {
        lock(&self.down).clone()
    }

    /// Makes every started node a voter of one new cluster (called on the first node).
    pub async fn initialize(&self) -> Result<(), ClusterError> {
        let members: BTreeMap<NodeId, BasicNode> =
            self.ids().into_iter().map(|id| (id, BasicNode::new(format!("in-process:{id}")))).collect();
        let first = lock(&self.nodes).values().next().cloned().expect("a cluster has nodes");
        first.raft.initialize(members).await.map_err(|e| ClusterError::Raft(e.to_string()))
    }

    /// The node ids, in order (up or down).
    pub fn ids(&self) -> Vec<NodeId> {
        lock(&self.nodes).keys().copied().collect()
    }

    /// Node `id`, if it is up.
    pub fn node(&self, id: NodeId) -> Result<ClusterNode, ClusterError> {
        if lock(&self.down).contains(&id) {
            return Err(ClusterError::Down(id));
        }
        lock(&self.nodes).get(&id).cloned().ok_or(ClusterError::NoSuchNode(id))
    }

    /// Nodes that currently believe they lead (more than one is possible: a deposed leader
    /// that has not heard of the new term yet). Each with its term.
    pub fn leader_claims(&self) -> Vec<(NodeId, u64)> {
        let down = self.down();
        lock(&self.nodes)
            .iter()
            .filter(|(id, _)| !down.contains(id))
            .filter_map(|(&id, n)| {
                let m = n.raft.metrics().borrow().clone();
                (m.state == ServerState::Leader).then_some((id, m.current_term))
            })
            .collect()
    }

    /// The leader with the highest term among `among`, if one of them claims to lead.
    pub fn leader_among(&self, among: &[NodeId]) -> Option<NodeId> {
        let among: BTreeSet<NodeId> = among.iter().copied().collect();
        self.leader_claims()
            .into_iter()
            .filter(|(id, _)| among.contains(id))
            .max_by_key(|&(_, term)| term)
            .map(|(id, _)| id)
    }

    /// Waits up to `wait_ms_max` for a node in `among` to lead, with every node of
    /// `among` agreeing on it; returns it.
    pub async fn wait_for_leader(&self, among: &[NodeId], wait_ms_max: u64) -> Option<NodeId> {
        let polls = wait_ms_max / POLL_MS + 1;
        for _ in 0..polls {
            if let Some(leader) = self.leader_among(among) {
                let agreed = among
                    .iter()
                    .all(|&id| self.node(id).is_ok_and(|n| n.raft.metrics().borrow().current_leader == Some(leader)));
                if agreed {
                    return Some(leader);
                }
            }
            tokio::time::sleep(Duration::from_millis(POLL_MS)).await;
        }
        None
    }

    /// Waits up to `wait_ms_max` for node `id` to apply through `index`.
    pub async fn wait_applied(&self, id: NodeId, index: u64, wait_ms_max: u64) -> bool {
        let polls = wait_ms_max / POLL_MS + 1;
        for _ in 0..polls {
            if self.node(id).is_ok_and(|n| n.state_machine.applied_index() >= index) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(POLL_MS)).await;
        }
        false
    }

    /// Proposes `command` through node `id`; returns its outcome and log index once it is
    /// committed and applied there.
    pub async fn propose(&self, id: NodeId, command: RegisterCommand) -> Result<(Outcome, u64), ClusterError> {
        let raft = self.node(id)?.raft;
        bounded(async move {
            match raft.client_write(command.encode()).await {
                Ok(response) => Ok((response.data, response.log_id.index)),
                Err(e) => match e.forward_to_leader() {
                    Some(f) => Err(ClusterError::NotLeader { leader: f.leader_id }),
                    None => Err(ClusterError::Raft(e.to_string())),
                },
            }
        })
        .await
    }

    /// Reads `key` linearizably through node `id`: openraft confirms with a quorum that `id`
    /// still leads (read-index) and waits until it has applied through that index; then
    /// the local state machine answers.
    pub async fn read(&self, id: NodeId, key: u64) -> Result<Option<i64>, ClusterError> {
        let node = self.node(id)?;
        bounded(async move {
            match node.raft.ensure_linearizable().await {
                Ok(_) => Ok(node.state_machine.get(key)),
                Err(e) => match e.forward_to_leader() {
                    Some(f) => Err(ClusterError::NotLeader { leader: f.leader_id }),
                    None => Err(ClusterError::Raft(e.to_string())),
                },
            }
        })
        .await
    }

    /// Stops every node that is up (bounded: a node that does not stop in time is left
    /// behind).
    pub async fn shutdown(self) {
        let down = self.down();
        let up: Vec<ClusterNode> =
            lock(&self.nodes).iter().filter(|(id, _)| !down.contains(id)).map(|(_, n)| n.clone()).collect();
        for node in &up {
            let _ = tokio::time::timeout(Duration::from_millis(CLIENT_WAIT_MS_MAX), node.raft.shutdown()).await;
        }
    }
}
