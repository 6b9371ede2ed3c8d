//! Helpers shared by the tests that run `Node`s over loopback TCP.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use cluster::node::Node;

/// How long any wait of these tests may take.
pub const WAIT_MAX: Duration = Duration::from_secs(30);

/// Polls `check` until it returns `Some`, or panics naming `what` after [`WAIT_MAX`].
pub fn wait_for<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + WAIT_MAX;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}: not within {WAIT_MAX:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A loopback address no one listens on now.
pub fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap()
}

/// The position of the node that leads and may serve linearizable reads, once one does.
pub fn leader_of(nodes: &[&Node]) -> usize {
    wait_for("a leader", || nodes.iter().position(|n| n.status().role == "leader" && n.read_barrier().is_ok()))
}
