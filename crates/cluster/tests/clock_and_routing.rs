//! Three nodes over loopback TCP on real files, each with a wall clock the test controls:
//!
//! - a follower tells a client where the leader's clients connect (its SQL address, learned
//!   from the leader over the peer protocol), not just its peer address;
//! - the clock-offset guard: when the leader's clock jumps 2 s ahead of the others', it
//!   refuses commits and linearizable reads and says why, another node is elected and
//!   commits, and once the clock is back the node is allowed to lead again.
//!
//! Every wait polls with a deadline; no sleep stands in for an assertion.

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cluster::node::{Node, NodeOptions, PeerOptions, WallClock};
use common::{free_addr, leader_of, wait_for};
use storage::vfs::{RealVfs, Vfs};
use txn::{EngineOptions, TxnOptions};

struct Cluster {
    dirs: Vec<PathBuf>,
    addrs: Vec<SocketAddr>,
    init: BTreeMap<u64, String>,
    /// Each node's clock offset from the system clock, microseconds.
    offsets: Vec<Arc<AtomicI64>>,
}

impl Cluster {
    fn open(&self, id: u64) -> Node {
        let i = (id - 1) as usize;
        let offset = self.offsets[i].clone();
        let clock = WallClock(Arc::new(move || cluster::tcp::system_clock_micros() + offset.load(Ordering::Relaxed)));
        let mut opts = NodeOptions {
            id,
            engine: EngineOptions { vacuum_interval: None, ..Default::default() },
            peers: Some(PeerOptions {
                init: self.init.clone(),
                clock_offset_max: Duration::from_millis(500),
                clock,
                ..PeerOptions::new(self.addrs[i])
            }),
            ..Default::default()
        };
        opts.raft.heartbeat_interval = 50;
        opts.raft.election_timeout_min = 150;
        opts.raft.election_timeout_max = 300;
        let node = Node::open(Arc::new(RealVfs) as Arc<dyn Vfs>, &self.dirs[i], opts).expect("open a node");
        node.advertise(&format!("sql-of-node-{id}:5432"), &format!("http-of-node-{id}:9433"));
        node
    }
}

fn commit(node: &Node, key: &str) -> txn::Result<Option<u64>> {
    let mut t = node.engine().begin(TxnOptions::default())?;
    t.put(key.as_bytes(), b"v")?;
    t.commit()
}

#[test]
fn followers_name_the_leaders_sql_address_and_a_leader_with_a_wrong_clock_stops_leading() {
    let base = std::env::temp_dir().join(format!("bulwark-clock-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let addrs: Vec<SocketAddr> = (0..3).map(|_| free_addr()).collect();
    let cluster = Cluster {
        dirs: (1..=3).map(|i| base.join(format!("n{i}"))).collect(),
        init: (1..=3u64).map(|i| (i, addrs[(i - 1) as usize].to_string())).collect(),
        addrs,
        offsets: (0..3).map(|_| Arc::new(AtomicI64::new(0))).collect(),
    };
    let nodes = [cluster.open(1), cluster.open(2), cluster.open(3)];
    let all: Vec<&Node> = nodes.iter().collect();
    let l = leader_of(&all);
    let leader_id = nodes[l].status().id;
    commit(&nodes[l], "before").expect("the leader commits");

    // A follower names the leader's SQL address once it has heard from it.
    let f = (l + 1) % 3;
    let said = wait_for("the follower names the leader's SQL address", || {
        let why = nodes[f].read_barrier().expect_err("a follower refuses linearizable reads");
        why.contains(&format!("sql-of-node-{leader_id}:5432")).then_some(why)
    });
    eprintln!("follower: {said}");
    match commit(&nodes[f], "on-follower") {
        Err(txn::Error::Unavailable(why)) => {
            assert!(why.contains(&format!("connect to sql-of-node-{leader_id}:5432")), "{why}")
        }
        other => panic!("a commit on a follower: {other:?}"),
    }
    assert!(nodes[f].status().clock_refusal.is_none());

    // The leader's clock jumps 2 s ahead: it refuses to lead.
    cluster.offsets[l].store(2_000_000, Ordering::Relaxed);
    let why = wait_for("the leader refuses commits for its clock", || match commit(&nodes[l], "during") {
        Err(txn::Error::Unavailable(why)) if why.contains("clock") => Some(why),
        _ => None,
    });
    eprintln!("old leader: {why}");
    assert!(nodes[l].read_barrier().expect_err("no linearizable reads").contains("clock-offset guard"));
    assert!(nodes[l].status().clock_refusal.is_some());
    // Another node is elected and commits; the others' clocks agree, so they do not refuse.
    let others: Vec<&Node> = nodes.iter().enumerate().filter(|(i, _)| *i != l).map(|(_, n)| n).collect();
    let new = leader_of(&others);
    assert_ne!(others[new].status().id, leader_id);
    commit(others[new], "after").expect("the new leader commits");
    wait_for("the old leader follows", || (nodes[l].status().role == "follower").then_some(()));
    assert!(others.iter().all(|n| n.clock_refusal().is_none()));

    // The clock is corrected: the node may lead again.
    cluster.offsets[l].store(0, Ordering::Relaxed);
    wait_for("the refusal is lifted", || nodes[l].clock_refusal().is_none().then_some(()));
    drop(nodes);
    let _ = std::fs::remove_dir_all(&base);
}
