//! The TCP transport end to end: three openraft nodes in one process, each on its own
//! 127.0.0.1 listener, elect a leader, replicate writes, and elect a new one when the
//! leader goes away; and a server that is sent damaged frames counts them, drops the
//! connection, and keeps serving.
//!
//! Every wait polls with a deadline; no sleep stands in for an assertion.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use cluster::harness::test_config;
use cluster::memstore::{MemLogStore, MemStateMachine};
use cluster::tcp::{self, Kind, TcpNetwork, TcpServer, FRAME_BYTES_MAX, KIND_FORWARD_WRITE};
use cluster::types::{NodeId, Outcome, Raft, RegisterCommand};
use openraft::error::RPCError;
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::VoteRequest;
use openraft::{BasicNode, ServerState, Vote};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How long a fresh cluster may take to elect its first leader, in milliseconds.
const FIRST_ELECTION_MS_MAX: u64 = 3_000;
/// How long the survivors may take to elect a new leader, in milliseconds: a few election
/// timeouts, plus the backoff after the old leader's port refuses.
const FAILOVER_MS_MAX: u64 = 3_000;
/// How long a write may take to commit and apply everywhere, in milliseconds.
const APPLY_MS_MAX: u64 = 3_000;
/// How long the server may take to close a connection after a bad frame, in milliseconds.
const CLOSE_MS_MAX: u64 = 2_000;
/// The deadline of a single test RPC, in milliseconds.
const RPC_MS: u64 = 2_000;
/// How often waits poll, in milliseconds.
const POLL_MS: u64 = 10;

/// Polls `check` until it returns `Some`, or panics naming `what` after `wait_ms_max`.
async fn wait_for<T>(what: &str, wait_ms_max: u64, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + Duration::from_millis(wait_ms_max);
    loop {
        if let Some(value) = check() {
            return value;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!("{what}: not within {wait_ms_max} ms");
        }
        tokio::time::sleep(Duration::from_millis(POLL_MS)).await;
    }
}

/// Runs `fut`, or panics naming `what` after `wait_ms_max`.
async fn bounded<T>(what: &str, wait_ms_max: u64, fut: impl Future<Output = T>) -> T {
    match tokio::time::timeout(Duration::from_millis(wait_ms_max), fut).await {
        Ok(value) => value,
        Err(_) => panic!("{what}: not within {wait_ms_max} ms"),
    }
}

struct Node {
    raft: Raft,
    state_machine: MemStateMachine,
    network: TcpNetwork,
    server: Option<TcpServer>,
}

/// Starts node `id` serving on `listener`.
async fn start_node(id: NodeId, listener: TcpListener) -> Node {
    let network = TcpNetwork::new(id);
    let state_machine = MemStateMachine::new();
    let raft = Raft::new(id, test_config(), network.clone(), MemLogStore::new(), state_machine.clone())
        .await
        .expect("a fresh in-memory raft node starts");
    let server = tcp::serve(listener, raft.clone()).expect("serve");
    Node { raft, state_machine, network, server: Some(server) }
}

async fn listen() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0")
}

/// Starts nodes `ids`, each on its own port, and initialises them as one cluster.
async fn start_cluster(ids: &[NodeId]) -> BTreeMap<NodeId, Node> {
    let mut members = BTreeMap::new();
    let mut nodes = BTreeMap::new();
    for &id in ids {
        let listener = listen().await;
        let addr = listener.local_addr().expect("local addr");
        members.insert(id, BasicNode::new(addr.to_string()));
        nodes.insert(id, start_node(id, listener).await);
    }
    nodes[&ids[0]].raft.initialize(members).await.expect("initialize");
    nodes
}

/// The leader that every node in `among` agrees on, if there is one.
fn agreed_leader(nodes: &BTreeMap<NodeId, Node>, among: &[NodeId]) -> Option<NodeId> {
    let leader = nodes[&among[0]].raft.metrics().borrow().current_leader?;
    let agreed = among.iter().all(|id| nodes[id].raft.metrics().borrow().current_leader == Some(leader));
    let leads = among.contains(&leader) && nodes[&leader].raft.metrics().borrow().state == ServerState::Leader;
    (agreed && leads).then_some(leader)
}

/// Writes `key = value` through `leader`; returns the entry's log index.
async fn write(nodes: &BTreeMap<NodeId, Node>, leader: NodeId, key: u64, value: i64) -> u64 {
    let command = RegisterCommand::Write { key, value }.encode();
    let response = bounded("client write", APPLY_MS_MAX, nodes[&leader].raft.client_write(command))
        .await
        .unwrap_or_else(|e| panic!("write {key} = {value} through node {leader}: {e}"));
    assert_eq!(response.data, Outcome::Written);
    response.log_id.index
}

/// Waits until every node in `among` has applied through `index`.
async fn wait_applied(nodes: &BTreeMap<NodeId, Node>, among: &[NodeId], index: u64) {
    for id in among {
        let sm = &nodes[id].state_machine;
        wait_for(&format!("node {id} applies {index}"), APPLY_MS_MAX, || (sm.applied_index() >= index).then_some(()))
            .await;
    }
}

async fn stop(node: &mut Node) {
    bounded("raft shutdown", APPLY_MS_MAX, node.raft.shutdown()).await.expect("raft shuts down");
    if let Some(server) = node.server.take() {
        bounded("server shutdown", APPLY_MS_MAX, server.shutdown()).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_replicate_and_fail_over_over_tcp() {
    let all = [1, 2, 3];
    let mut nodes = start_cluster(&all).await;
    let old = wait_for("a first leader", FIRST_ELECTION_MS_MAX, || agreed_leader(&nodes, &all)).await;

    let mut last = 0;
    for key in 1..=5 {
        last = write(&nodes, old, key, key as i64 * 10).await;
    }
    wait_applied(&nodes, &all, last).await;
    for id in all {
        let registers = nodes[&id].state_machine.registers();
        assert_eq!(registers, (1..=5).map(|k| (k, k as i64 * 10)).collect(), "node {id}");
    }

    // The leader goes away: its Raft stops and its port closes.
    stop(nodes.get_mut(&old).expect("the old leader")).await;
    let survivors: Vec<NodeId> = all.into_iter().filter(|&id| id != old).collect();
    let new = wait_for("a new leader among the survivors", FAILOVER_MS_MAX, || agreed_leader(&nodes, &survivors)).await;
    assert_ne!(new, old);

    let index = write(&nodes, new, 6, 60).await;
    wait_applied(&nodes, &survivors, index).await;
    for &id in &survivors {
        assert_eq!(nodes[&id].state_machine.get(6), Some(60), "node {id}");
        assert_eq!(nodes[&id].state_machine.get(1), Some(10), "node {id}");
        let server = nodes[&id].server.as_ref().expect("a survivor serves").counters();
        assert!(server.frames_received > 0, "node {id} was sent nothing: {server:?}");
        assert_eq!((server.checksum_failures, server.oversize_frames, server.unknown_kinds), (0, 0, 0), "{server:?}");
    }
    // A leader sends; a follower that never stood for election only answers.
    let client = nodes[&new].network.counters();
    assert!(client.frames_sent > 0 && client.frames_received > 0, "node {new}: {client:?}");
    assert_eq!(client.checksum_failures, 0, "{client:?}");

    for id in survivors {
        stop(nodes.get_mut(&id).expect("a survivor")).await;
    }
}

/// A single, uninitialised node: enough to answer votes.
async fn lone_node(id: NodeId) -> (Node, String) {
    let listener = listen().await;
    let addr = listener.local_addr().expect("local addr").to_string();
    (start_node(id, listener).await, addr)
}

/// Sends `bytes` on a fresh connection and waits for the server to close it.
async fn send_and_expect_close(addr: &str, bytes: &[u8]) {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.write_all(bytes).await.expect("write");
    let mut buf = [0u8; 64];
    // End of stream, or a reset if the server left bytes unread: either way, closed.
    match bounded("the server closes the connection", CLOSE_MS_MAX, stream.read(&mut buf)).await {
        Ok(0) | Err(_) => {}
        Ok(n) => panic!("the server answered a bad frame with {n} bytes"),
    }
}

/// Asks node `target` at `addr` for a vote through a fresh TCP client of node 2.
async fn vote(addr: &str, target: NodeId) -> Result<openraft::raft::VoteResponse<NodeId>, String> {
    let mut network = TcpNetwork::new(2);
    let mut client = network.new_client(target, &BasicNode::new(addr)).await;
    let rpc = VoteRequest::new(Vote::new(1, 2), None);
    client.vote(rpc, RPCOption::new(Duration::from_millis(RPC_MS))).await.map_err(|e| match e {
        RPCError::Network(e) => format!("network: {e}"),
        RPCError::Unreachable(e) => format!("unreachable: {e}"),
        other => format!("other: {other}"),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flipped_bit_is_counted_and_the_server_stays_up() {
    let (mut node, addr) = lone_node(1).await;
    let server = || node.server.as_ref().expect("serving").counters();

    let mut frame = tcp::encode_frame(Kind::Vote.request(), b"any body: the checksum is checked first");
    let last = frame.len() - 1;
    frame[last] ^= 0x08;
    send_and_expect_close(&addr, &frame).await;
    assert_eq!(server().checksum_failures, 1);

    // An unknown kind (well framed) closes the connection too.
    send_and_expect_close(&addr, &tcp::encode_frame(0x7f, b"")).await;
    assert_eq!(server().unknown_kinds, 1);

    // The server still answers a good request on a new connection.
    let response = vote(&addr, 1).await.expect("a vote after the bad frames");
    assert_eq!(response.vote.leader_id.term, 1);
    // The server counts a reply once written, which may be just after the client read it.
    wait_for("the vote reply counted", CLOSE_MS_MAX, || (server().frames_sent == 1).then_some(())).await;
    assert_eq!(server().frames_received, 2, "the bad-kind frame and the vote: {:?}", server());

    // A request meant for another node id is refused, not served.
    let refused = vote(&addr, 9).await.expect_err("node 1 must not answer for node 9");
    assert!(refused.starts_with("network:") && refused.contains("not node 9"), "{refused}");

    // A reserved kind gets a reply saying it is not served, on a connection that stays open.
    let mut stream = TcpStream::connect(&addr).await.expect("connect");
    stream.write_all(&tcp::encode_frame(KIND_FORWARD_WRITE, b"")).await.expect("write");
    let mut header = [0u8; tcp::FRAME_HEADER_BYTES + 1];
    bounded("a reply to a reserved kind", CLOSE_MS_MAX, stream.read_exact(&mut header)).await.expect("a reply");
    assert_eq!(header[tcp::FRAME_HEADER_BYTES], KIND_FORWARD_WRITE | tcp::KIND_REPLY_BIT);

    stop(&mut node).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversize_length_is_rejected() {
    let (mut node, addr) = lone_node(1).await;
    let mut header = ((FRAME_BYTES_MAX + 1) as u32).to_le_bytes().to_vec();
    header.extend_from_slice(&0u32.to_le_bytes());
    send_and_expect_close(&addr, &header).await;
    let counters = node.server.as_ref().expect("serving").counters();
    assert_eq!((counters.oversize_frames, counters.frames_received), (1, 0), "{counters:?}");

    vote(&addr, 1).await.expect("the server still answers");
    stop(&mut node).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_port_is_unreachable() {
    let listener = listen().await;
    let addr = listener.local_addr().expect("local addr").to_string();
    drop(listener);
    let mut network = TcpNetwork::new(2);
    let mut client = network.new_client(1, &BasicNode::new(&addr)).await;
    let rpc = VoteRequest::new(Vote::new(1, 2), None);
    let result = client.vote(rpc, RPCOption::new(Duration::from_millis(RPC_MS))).await;
    assert!(matches!(result, Err(RPCError::Unreachable(_))), "{result:?}");
    assert_eq!(network.counters().connect_failures, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_peer_is_reached_on_the_first_try() {
    let (mut node, addr) = lone_node(1).await;
    let mut network = TcpNetwork::new(2);
    let mut client = network.new_client(1, &BasicNode::new(&addr)).await;
    let option = || RPCOption::new(Duration::from_millis(RPC_MS));
    client.vote(VoteRequest::new(Vote::new(1, 2), None), option()).await.expect("first vote");
    // The connection is now idle in the pool; the peer restarts on the same port.
    stop(&mut node).await;
    let listener = TcpListener::bind(&addr).await.expect("rebind the same port");
    let mut node = start_node(1, listener).await;
    let mut client = network.new_client(1, &BasicNode::new(&addr)).await;
    client
        .vote(VoteRequest::new(Vote::new(2, 2), None), option())
        .await
        .expect("the pool noticed the closed connection and dialed again");
    stop(&mut node).await;
}
