//! An in-process network for Raft: every node's RPCs go through one [`Router`], which can
//! partition nodes, drop messages and delay them, all decided by a seeded RNG.
//!
//! ```text
//!   node 1 ─RouterNetwork─┐                     ┌─▶ node 2's Raft::append_entries
//!   node 2 ─RouterNetwork─┼─▶ Router ─(faults)──┼─▶ node 3's Raft::vote
//!   node 3 ─RouterNetwork─┘   seed, partitions  └─▶ ...
//! ```
//!
//! An RPC is a call on the target's `Raft` handle. On the way it can be:
//!
//! - refused: the nodes are in different partitions (openraft sees `Unreachable` and backs
//!   off for [`UNREACHABLE_BACKOFF_MS`]);
//! - delayed: by up to [`Faults::delay_ms_max`] each way;
//! - lost: the request before delivery or the reply after it (so the target may have acted
//!   on a request whose sender saw an error), each with probability
//!   [`Faults::drop_per_million`];
//! - duplicated: the target gets the request twice, with probability
//!   [`Faults::duplicate_per_million`] (the sender sees the second reply).
//!
//! Reordering comes only from random delays of concurrent RPCs; openraft 0.9 keeps one
//! append in flight per follower, so appends to one follower are not reordered.
//!
//! # Determinism
//!
//! The router's choices come from one seeded RNG, so a seed fixes the sequence of fault
//! decisions. On a single-threaded tokio runtime with a paused clock and seeded scheduler
//! choices, with openraft's draws seeded too, the whole run replays exactly (see
//! `tests/register_linearizability.rs`). Over real nodes, each with its own threads and
//! the real clock (`tests/sim_cluster.rs`), a seed fixes the plan, not every interleaving.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use openraft::error::{InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable};
use openraft::network::{Backoff, RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest,
    VoteResponse,
};
use openraft::BasicNode;

use crate::types::{NodeId, Raft, TypeConfig};

/// How long openraft waits before retrying a node it could not reach, in milliseconds.
/// Short, so that a healed partition is noticed within a few heartbeats.
pub const UNREACHABLE_BACKOFF_MS: u64 = 20;
/// The longest delay the router may add to one message, in milliseconds.
pub const DELAY_MS_MAX: u64 = 100;
/// One million: the unit of [`Faults::drop_per_million`].
pub const PER_MILLION: u64 = 1_000_000;

/// A small, seeded, deterministic RNG (SplitMix64): no dependency, same stream on every
/// platform.
#[derive(Debug, Clone)]
pub struct Rng {
    state: u64,
}

impl Rng {
    /// An RNG whose stream is fixed by `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        assert!(n > 0, "Rng::below(0)");
        self.next_u64() % n
    }

    /// True with probability `per_million / 1_000_000`.
    pub fn chance(&mut self, per_million: u64) -> bool {
        self.below(PER_MILLION) < per_million
    }
}

/// Message faults the router injects, beyond partitions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Faults {
    /// Chance that a request, and separately its reply, is lost, per million.
    pub drop_per_million: u64,
    /// Chance that a request is delivered twice, per million.
    pub duplicate_per_million: u64,
    /// Each message is delayed by a uniform `0..=delay_ms_max` milliseconds (at most
    /// [`DELAY_MS_MAX`]).
    pub delay_ms_max: u64,
}

struct RouterState {
    nodes: BTreeMap<NodeId, Raft>,
    /// Partition each node is in; two nodes talk only if they share one. Absent: 0.
    partition: BTreeMap<NodeId, u32>,
    faults: Faults,
    rng: Rng,
    /// Each node's wall clock (microseconds since the epoch), for the clock-offset guard.
    clocks: BTreeMap<NodeId, NodeClock>,
}

/// A node's wall clock, microseconds since the Unix epoch.
pub type NodeClock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// The in-process network all nodes share. Cloning shares it.
#[derive(Clone)]
pub struct Router {
    state: Arc<Mutex<RouterState>>,
}

impl fmt::Debug for Router {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.lock();
        f.debug_struct("Router")
            .field("nodes", &s.nodes.keys().collect::<Vec<_>>())
            .field("partition", &s.partition)
            .field("faults", &s.faults)
            .finish()
    }
}

/// Why the router did not deliver: shown to openraft as the error's source.
#[derive(Debug)]
struct Undelivered(String);

impl fmt::Display for Undelivered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Undelivered {}

/// What the router decided for one message: deliver after a delay, or lose it.
enum Fate {
    Deliver(Duration),
    Refuse,
    Drop,
}

impl Router {
    /// A router with no nodes, no partitions and no faults, whose choices follow `seed`.
    pub fn new(seed: u64) -> Router {
        Router {
            state: Arc::new(Mutex::new(RouterState {
                nodes: BTreeMap::new(),
                partition: BTreeMap::new(),
                faults: Faults::default(),
                rng: Rng::new(seed),
                clocks: BTreeMap::new(),
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, RouterState> {
        self.state.lock().expect("router lock poisoned: a holder panicked")
    }

    /// Makes `raft` reachable as node `id`.
    pub fn add_node(&self, id: NodeId, raft: Raft) {
        let previous = self.lock().nodes.insert(id, raft);
        assert!(previous.is_none(), "node {id} added twice");
    }

    /// Makes `raft` reachable as node `id`, replacing a previous incarnation (a restart).
    pub fn set_node(&self, id: NodeId, raft: Raft) {
        self.lock().nodes.insert(id, raft);
    }

    /// Sets node `id`'s wall clock, which [`Router::clock_of`] reads.
    pub fn set_clock(&self, id: NodeId, clock: NodeClock) {
        self.lock().clocks.insert(id, clock);
    }

    /// Asks node `to`, from `from`, for its wall clock: the question and the answer each go
    /// through the partitions and faults. None if either does not arrive or `to` has no
    /// clock.
    pub async fn clock_of(&self, from: NodeId, to: NodeId) -> Option<i64> {
        self.pass::<Undelivered>(from, to, "status").await.ok()?;
        let clock = self.lock().clocks.get(&to).cloned()?;
        let micros = clock();
        self.pass::<Undelivered>(to, from, "status reply").await.ok()?;
        Some(micros)
    }

    /// Sets the message faults (delays are capped at [`DELAY_MS_MAX`]).
    pub fn set_faults(&self, faults: Faults) {
        assert!(faults.drop_per_million <= PER_MILLION, "drop chance {} per million", faults.drop_per_million);
        assert!(faults.delay_ms_max <= DELAY_MS_MAX, "delay {} ms over DELAY_MS_MAX", faults.delay_ms_max);
        self.lock().faults = faults;
    }

    /// Cuts `id` off from every other node.
    pub fn isolate(&self, id: NodeId) {
        let mut s = self.lock();
        let lonely = s.partition.values().copied().max().unwrap_or(0) + 1;
        s.partition.insert(id, lonely);
    }

    /// Splits the nodes: those in `side` talk only among themselves, the rest likewise.
    pub fn split(&self, side: &[NodeId]) {
        let mut s = self.lock();
        s.partition.clear();
        for id in side {
            s.partition.insert(*id, 1);
        }
    }

    /// Removes every partition.
    pub fn heal(&self) {
        self.lock().partition.clear();
    }

    fn fate(&self, from: NodeId, to: NodeId) -> Fate {
        let mut s = self.lock();
        let part = |id| s.partition.get(&id).copied().unwrap_or(0);
        if part(from) != part(to) {
            return Fate::Refuse;
        }
        let faults = s.faults;
        if s.rng.chance(faults.drop_per_million) {
            return Fate::Drop;
        }
        let delay_ms = if faults.delay_ms_max == 0 { 0 } else { s.rng.below(faults.delay_ms_max + 1) };
        Fate::Deliver(Duration::from_millis(delay_ms))
    }

    /// Decides one leg of an RPC, waits out its delay, and says whether it arrives.
    async fn pass<E: std::error::Error>(
        &self,
        from: NodeId,
        to: NodeId,
        leg: &str,
    ) -> Result<(), RPCError<NodeId, BasicNode, E>> {
        match self.fate(from, to) {
            Fate::Refuse => {
                Err(RPCError::Unreachable(Unreachable::new(&Undelivered(format!("{leg} {from}->{to}: partitioned")))))
            }
            Fate::Drop => Err(RPCError::Network(NetworkError::new(&Undelivered(format!("{leg} {from}->{to}: lost"))))),
            Fate::Deliver(delay) => {
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                Ok(())
            }
        }
    }

    /// Whether to deliver the next request twice.
    fn duplicate(&self) -> bool {
        let mut s = self.lock();
        let chance = s.faults.duplicate_per_million;
        chance > 0 && s.rng.chance(chance)
    }

    fn target(&self, to: NodeId) -> Option<Raft> {
        self.lock().nodes.get(&to).cloned()
    }
}

/// Hands each node a [`RouterNetwork`] per peer.
#[derive(Debug, Clone)]
pub struct RouterNetworkFactory {
    /// The node these connections send from.
    pub from: NodeId,
    /// The shared router.
    pub router: Router,
}

/// One node's connection to one peer, through the router.
#[derive(Debug, Clone)]
pub struct RouterNetwork {
    from: NodeId,
    to: NodeId,
    router: Router,
}

impl RaftNetworkFactory<TypeConfig> for RouterNetworkFactory {
    type Network = RouterNetwork;

    async fn new_client(&mut self, target: NodeId, _node: &BasicNode) -> RouterNetwork {
        RouterNetwork { from: self.from, to: target, router: self.router.clone() }
    }
}

/// Sends a request leg, calls the target, sends the reply leg; a remote error is wrapped
/// as openraft expects.
macro_rules! rpc {
    ($self:ident, $name:literal, $call:ident, $rpc:ident) => {{
        let Some(raft) = $self.router.target($self.to) else {
            return Err(RPCError::Unreachable(Unreachable::new(&Undelivered(format!(
                "node {} is not on the router",
                $self.to
            )))));
        };
        $self.router.pass($self.from, $self.to, $name).await?;
        if $self.router.duplicate() {
            // The first copy's reply is lost; the target must cope with the second copy.
            let _ = raft.$call($rpc.clone()).await;
        }
        let reply = raft.$call($rpc).await.map_err(|e| RPCError::RemoteError(RemoteError::new($self.to, e)))?;
        $self.router.pass($self.to, $self.from, concat!($name, " reply")).await?;
        Ok(reply)
    }};
}

impl RaftNetwork<TypeConfig> for RouterNetwork {
    /// openraft's chunks, with a failure to read the image answered as unreachable
    /// ([`crate::snapshot::send_in_chunks`]).
    async fn full_snapshot(
        &mut self,
        vote: openraft::Vote<NodeId>,
        snapshot: openraft::Snapshot<TypeConfig>,
        cancel: impl std::future::Future<Output = openraft::error::ReplicationClosed> + Send + 'static,
        option: RPCOption,
    ) -> Result<
        openraft::raft::SnapshotResponse<NodeId>,
        openraft::error::StreamingError<TypeConfig, openraft::error::Fatal<NodeId>>,
    > {
        crate::snapshot::send_in_chunks(self, vote, snapshot, cancel, option).await
    }

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        rpc!(self, "append_entries", append_entries, rpc)
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<InstallSnapshotResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId, InstallSnapshotError>>>
    {
        rpc!(self, "install_snapshot", install_snapshot, rpc)
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        _option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        rpc!(self, "vote", vote, rpc)
    }

    fn backoff(&self) -> Backoff {
        Backoff::new(std::iter::repeat(Duration::from_millis(UNREACHABLE_BACKOFF_MS)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rng_is_a_function_of_its_seed() {
        let a: Vec<u64> = (0..8).scan(Rng::new(7), |r, _| Some(r.next_u64())).collect();
        let b: Vec<u64> = (0..8).scan(Rng::new(7), |r, _| Some(r.next_u64())).collect();
        let c: Vec<u64> = (0..8).scan(Rng::new(8), |r, _| Some(r.next_u64())).collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn partitions_refuse_and_healing_delivers() {
        let router = Router::new(1);
        assert!(matches!(router.fate(1, 2), Fate::Deliver(d) if d.is_zero()));
        router.isolate(1);
        assert!(matches!(router.fate(1, 2), Fate::Refuse));
        assert!(matches!(router.fate(2, 3), Fate::Deliver(_)));
        router.split(&[1, 2]);
        assert!(matches!(router.fate(1, 2), Fate::Deliver(_)));
        assert!(matches!(router.fate(2, 3), Fate::Refuse));
        router.heal();
        assert!(matches!(router.fate(1, 3), Fate::Deliver(_)));
    }
}
