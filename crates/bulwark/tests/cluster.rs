//! Three real `bulwark start` processes on loopback ports form a cluster; the leader is
//! killed with SIGKILL under write load, again and again.
//!
//! A writer inserts rows with ids it chooses, always into the node that `/status` calls the
//! leader, and keeps the ids whose COMMIT was acknowledged. For each kill:
//!
//! 1. the time from the SIGKILL to the next acknowledged insert (on the new leader) is the
//!    write unavailability, printed for every kill and summarised (p50, max);
//! 2. the killed node restarts on its data directory and peer port, and rejoins as a
//!    follower.
//!
//! At the end every acknowledged id is present on every node (followers once they have
//! applied as far as the leader), and no two nodes ever said they led in the same term.
//!
//! A second test stops the leader with SIGSTOP (alive but silent, a gray failure): the
//! others elect a new leader that accepts writes; after SIGCONT the old leader hears of the
//! newer term, steps down and follows, and no two nodes ever led in the same term.
//!
//! `BULWARK_CLUSTER_KILLS` sets the number of kills (default 10).

mod common;

use common::{free_port, ServerProcess, TempDir};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Kills when `BULWARK_CLUSTER_KILLS` is not set.
const KILLS_DEFAULT: usize = 10;
/// How long a leader may take to appear (first election, or after a kill).
const LEADER_WAIT_MAX: Duration = Duration::from_secs(20);
/// Load before each kill.
const LOAD_BEFORE_KILL: Duration = Duration::from_millis(300);
/// How long the writer waits for one insert.
const INSERT_WAIT_MAX: Duration = Duration::from_secs(5);

struct Node {
    id: u64,
    dir: TempDir,
    peer_port: u16,
    process: Option<ServerProcess>,
}

fn http_get(port: u16, path: &str) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    // Short: a stopped (SIGSTOP) node accepts the connection but never answers.
    stream.set_read_timeout(Some(Duration::from_millis(300))).ok()?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    response.split_once("\r\n\r\n").map(|(_, body)| body.to_string())
}

/// The number after `"key":` in a flat JSON object (None for null or missing).
fn json_u64(body: &str, key: &str) -> Option<u64> {
    let rest = body.split(&format!("\"{key}\":")).nth(1)?;
    rest.split([',', '}']).next()?.trim().parse().ok()
}

fn role(body: &str) -> Option<String> {
    let rest = body.split("\"role\":\"").nth(1)?;
    Some(rest.split('"').next()?.to_string())
}

impl Node {
    fn start(&mut self, init: &str) {
        self.start_with(init, &[]);
    }

    fn start_with(&mut self, init: &str, more: &[&str]) {
        let mut extra = vec![
            "--node-id".to_string(),
            self.id.to_string(),
            "--peer-addr".to_string(),
            format!("127.0.0.1:{}", self.peer_port),
            "--init-cluster".to_string(),
            init.to_string(),
        ];
        extra.extend(more.iter().map(|s| s.to_string()));
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        self.process = Some(ServerProcess::start(self.dir.path(), &extra));
    }

    fn status(&self) -> Option<String> {
        http_get(self.process.as_ref()?.http_port, "/status")
    }
}

/// The node that says it leads, once exactly one does; checks that no two nodes claim the
/// same term as leaders.
fn leader(nodes: &[Node], terms: &mut BTreeMap<u64, u64>) -> usize {
    let deadline = Instant::now() + LEADER_WAIT_MAX;
    loop {
        let mut leaders = Vec::new();
        for (i, n) in nodes.iter().enumerate() {
            if let Some(body) = n.status() {
                if role(&body).as_deref() == Some("leader") {
                    let term = json_u64(&body, "term").expect("term in /status");
                    let before = terms.insert(term, n.id);
                    assert!(
                        before.is_none() || before == Some(n.id),
                        "two leaders in term {term}: nodes {before:?} and {}",
                        n.id
                    );
                    leaders.push(i);
                }
            }
        }
        if leaders.len() == 1 {
            return leaders[0];
        }
        assert!(Instant::now() < deadline, "no single leader within {LEADER_WAIT_MAX:?}: {leaders:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

async fn insert(node: &ServerProcess, id: i64) -> Result<(), String> {
    let client = tokio::time::timeout(INSERT_WAIT_MAX, node.connect_to("bulwark"))
        .await
        .map_err(|_| "connect timed out".to_string())?
        .map_err(|e| e.to_string())?;
    tokio::time::timeout(INSERT_WAIT_MAX, client.execute("INSERT INTO acked VALUES ($1)", &[&id]))
        .await
        .map_err(|_| "insert timed out".to_string())?
        .map(|_| ())
        .map_err(|e| {
            format!("{e}: {:?}", e.as_db_error().map(|d| (d.code().code().to_string(), d.message().to_string())))
        })
}

/// Waits until every node has applied as far as the leader, then checks that each holds
/// every acknowledged id (read by a session that starts with `stale` consistency, so it
/// stays on the node it reached and a follower answers from its own copy). Returns the
/// leader.
fn assert_everywhere(nodes: &[Node], terms: &mut BTreeMap<u64, u64>, acked: &BTreeSet<i64>) -> usize {
    let l = leader(nodes, terms);
    let target = json_u64(&nodes[l].status().unwrap(), "applied_index").unwrap();
    for n in nodes {
        let deadline = Instant::now() + LEADER_WAIT_MAX;
        while json_u64(&n.status().unwrap_or_default(), "applied_index").unwrap_or(0) < target {
            assert!(Instant::now() < deadline, "node {} did not catch up to {target}", n.id);
            std::thread::sleep(Duration::from_millis(10));
        }
        let present: BTreeSet<i64> = n
            .process
            .as_ref()
            .unwrap()
            .query_here("SELECT id FROM acked ORDER BY id")
            .lines()
            .map(|l| l.parse().unwrap())
            .collect();
        let missing: Vec<&i64> = acked.difference(&present).collect();
        assert!(missing.is_empty(), "node {}: acknowledged ids missing: {missing:?}", n.id);
    }
    l
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn start_cluster(name: &str) -> (Vec<Node>, String) {
    start_cluster_with(name, &[])
}

/// Three nodes started with `more` flags each.
fn start_cluster_with(name: &str, more: &[&str]) -> (Vec<Node>, String) {
    let mut nodes: Vec<Node> = (1..=3u64)
        .map(|id| Node { id, dir: TempDir::new(&format!("{name}-{id}")), peer_port: free_port(), process: None })
        .collect();
    let init = nodes.iter().map(|n| format!("{}=127.0.0.1:{}", n.id, n.peer_port)).collect::<Vec<_>>().join(",");
    for n in nodes.iter_mut() {
        n.start_with(&init, more);
    }
    (nodes, init)
}

fn create_table(nodes: &[Node], terms: &mut BTreeMap<u64, u64>) {
    // The first leader may still change while the cluster forms: retry on whoever leads.
    let deadline = Instant::now() + LEADER_WAIT_MAX;
    loop {
        let l = leader(nodes, terms);
        let out = nodes[l].process.as_ref().unwrap().psql(&["-c", "CREATE TABLE acked (id BIGINT PRIMARY KEY)"]);
        if out.status.success() {
            return;
        }
        assert!(Instant::now() < deadline, "CREATE TABLE failed: {}", common::stderr(&out));
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn signal(node: &Node, sig: &str) {
    let pid = node.process.as_ref().unwrap().child.id().to_string();
    assert!(std::process::Command::new("kill").args([sig, &pid]).status().unwrap().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_leader_is_replaced_and_rejoins_as_a_follower_without_two_leaders_in_a_term() {
    let (nodes, _init) = start_cluster("gray");
    let mut terms = BTreeMap::new();
    create_table(&nodes, &mut terms);
    let old = leader(&nodes, &mut terms);
    let old_term = json_u64(&nodes[old].status().unwrap(), "term").unwrap();
    insert(nodes[old].process.as_ref().unwrap(), 1).await.expect("insert on the leader");
    signal(&nodes[old], "-STOP");
    let stopped_at = Instant::now();
    // The other two elect a leader in a later term, which accepts writes.
    let others: Vec<usize> = (0..3).filter(|&i| i != old).collect();
    let (new, new_term) = loop {
        assert!(stopped_at.elapsed() < LEADER_WAIT_MAX, "no new leader while node {} is stopped", nodes[old].id);
        let found = others.iter().find_map(|&i| {
            let body = nodes[i].status()?;
            (role(&body).as_deref() == Some("leader")).then(|| (i, json_u64(&body, "term").unwrap()))
        });
        if let Some(found) = found {
            break found;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    assert!(new_term > old_term, "the new leader's term {new_term} is after {old_term}");
    assert_eq!(terms.insert(new_term, nodes[new].id), None, "two leaders in term {new_term}");
    // A leader elected a moment ago may refuse (57P03, retryable) until a quorum has
    // acknowledged it; a client retries.
    loop {
        match insert(nodes[new].process.as_ref().unwrap(), 2).await {
            Ok(()) => break,
            Err(e) if e.contains("57P03") && stopped_at.elapsed() < LEADER_WAIT_MAX => {
                tokio::time::sleep(Duration::from_millis(10)).await
            }
            Err(e) => panic!("insert on the new leader: {e}"),
        }
    }
    eprintln!(
        "leader stopped: node {} leads term {new_term} after {} ms",
        nodes[new].id,
        stopped_at.elapsed().as_millis()
    );
    // SIGCONT: the old leader hears of the newer term, steps down and follows.
    signal(&nodes[old], "-CONT");
    let deadline = Instant::now() + LEADER_WAIT_MAX;
    loop {
        let body = nodes[old].status().unwrap_or_default();
        if role(&body).as_deref() == Some("follower") && json_u64(&body, "term") >= Some(new_term) {
            break;
        }
        assert!(Instant::now() < deadline, "the old leader did not step down: {body}");
        std::thread::sleep(Duration::from_millis(10));
    }
    let l = leader(&nodes, &mut terms);
    insert(nodes[l].process.as_ref().unwrap(), 3).await.expect("insert after the old leader rejoined");
    // The old leader has every row once it has caught up.
    let target = json_u64(&nodes[l].status().unwrap(), "applied_index").unwrap();
    let deadline = Instant::now() + LEADER_WAIT_MAX;
    while json_u64(&nodes[old].status().unwrap_or_default(), "applied_index").unwrap_or(0) < target {
        assert!(Instant::now() < deadline, "the old leader did not catch up");
        std::thread::sleep(Duration::from_millis(10));
    }
    // A session that reaches a follower runs on the leader: writes and linearizable
    // reads work wherever the client connected.
    let follower = nodes[old].process.as_ref().unwrap();
    let leader_process = nodes[l].process.as_ref().unwrap();
    let forwarded_before = metric(follower, "bulwark_connections_forwarded_total");
    follower.query("INSERT INTO acked VALUES (4)");
    assert_eq!(follower.query("SELECT id FROM acked ORDER BY id"), "1\n2\n3\n4", "read through the follower");
    assert_eq!(leader_process.query("SELECT count(*) FROM acked WHERE id = 4"), "1", "written through the follower");
    assert!(metric(follower, "bulwark_connections_forwarded_total") >= forwarded_before + 2);
    // A session that starts with stale reads stays on the follower and reads its copy; one
    // that starts linearizable but local is refused there, naming the leader (57P03).
    let deadline = Instant::now() + LEADER_WAIT_MAX;
    while follower.query_here("SELECT count(*) FROM acked") != "4" {
        assert!(Instant::now() < deadline, "the follower never applied the forwarded insert");
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = follower.psql_options("-c bulwark.read_consistency=linearizable", &["-c", "SELECT count(*) FROM acked"]);
    let err = common::stderr(&out);
    assert!(!out.status.success() && err.contains("not the leader") && err.contains("read_consistency"), "{err}");
    // Other startup options travel with the forwarded session and are applied there.
    let out = follower.psql_options("-c statement_timeout=5s", &["-c", "SHOW statement_timeout"]);
    assert_eq!(common::stdout(&out).trim(), "5s", "{}", common::stderr(&out));
    // A cancel request sent to the follower reaches the session it names: one relayed to
    // the leader, and one kept on the follower.
    let values: Vec<String> = (1..=60).map(|i| format!("({i})")).collect();
    leader_process.query(&format!("CREATE TABLE c (n INT); INSERT INTO c VALUES {}", values.join(",")));
    let deadline = Instant::now() + LEADER_WAIT_MAX;
    while follower.psql_options("-c bulwark.read_consistency=stale", &["-c", "SELECT count(*) FROM c"]).stdout
        != b"60\n"
    {
        assert!(Instant::now() < deadline, "the follower never applied table c");
        std::thread::sleep(Duration::from_millis(10));
    }
    for options in ["", "-c bulwark.read_consistency=stale"] {
        let mut config = tokio_postgres::Config::new();
        config.host("127.0.0.1").port(follower.port).user("bulwark").dbname("bulwark").options(options);
        let (client, connection) = config.connect(tokio_postgres::NoTls).await.expect("connect to the follower");
        tokio::spawn(connection);
        let token = client.cancel_token();
        let canceller = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            token.cancel_query(tokio_postgres::NoTls).await
        });
        let started = Instant::now();
        // 60^4 = 13 million joined rows: far longer than the 300 ms before the cancel.
        let err = client.query("SELECT count(*) FROM c a, c b, c d, c e", &[]).await.unwrap_err();
        canceller.await.unwrap().expect("cancel request sent");
        assert_eq!(err.code(), Some(&tokio_postgres::error::SqlState::QUERY_CANCELED), "options {options:?}: {err:?}");
        assert!(started.elapsed() < Duration::from_secs(10), "cancelled promptly: {:?}", started.elapsed());
    }
}

/// A counter from a node's /metrics.
fn metric(node: &ServerProcess, name: &str) -> u64 {
    let body = http_get(node.http_port, "/metrics").expect("metrics");
    body.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse::<f64>().ok()))
        .unwrap_or_else(|| panic!("{name} not in /metrics")) as u64
}

/// The SQLSTATE of a failed insert.
fn sqlstate(err: &str) -> Option<String> {
    err.split("Some((\"").nth(1).map(|r| r.chars().take(5).collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_cut_off_from_its_quorum_stops_acknowledging_within_the_election_timeout() {
    let (nodes, _init) = start_cluster("quorum");
    let mut terms = BTreeMap::new();
    create_table(&nodes, &mut terms);
    let l = leader(&nodes, &mut terms);
    insert(nodes[l].process.as_ref().unwrap(), 1).await.expect("insert with a quorum");
    let followers: Vec<usize> = (0..3).filter(|&i| i != l).collect();
    for &f in &followers {
        signal(&nodes[f], "-STOP");
    }
    // A commit sent as the quorum goes silent is not acknowledged: it fails with its
    // outcome unknown (08007) if it was handed to Raft, or is refused (57P03) if the
    // leader's read lease had already run out when the statement began.
    let sent = Instant::now();
    let err = insert(nodes[l].process.as_ref().unwrap(), 2).await.expect_err("no quorum, no acknowledgement");
    let took = sent.elapsed();
    let first = sqlstate(&err);
    assert!(matches!(first.as_deref(), Some("08007" | "57P03")), "{err}");
    assert!(took < Duration::from_secs(2), "refused after {took:?}");
    eprintln!("without a quorum the leader gave up on a commit after {} ms: {err}", took.as_millis());
    // A new commit is refused outright: nothing was appended.
    let err = insert(nodes[l].process.as_ref().unwrap(), 3).await.expect_err("still no quorum");
    assert_eq!(sqlstate(&err).as_deref(), Some("57P03"), "{err}");
    for &f in &followers {
        signal(&nodes[f], "-CONT");
    }
    // The cluster heals and commits again; the refused row never appears.
    let deadline = Instant::now() + LEADER_WAIT_MAX;
    loop {
        let l = leader(&nodes, &mut terms);
        if insert(nodes[l].process.as_ref().unwrap(), 4).await.is_ok() {
            let rows =
                nodes[l].process.as_ref().unwrap().query("SELECT id FROM acked WHERE id IN (1, 3, 4) ORDER BY id");
            assert_eq!(rows, "1\n4");
            if first.as_deref() == Some("57P03") {
                let two = nodes[l].process.as_ref().unwrap().query("SELECT count(*) FROM acked WHERE id = 2");
                assert_eq!(two, "0", "a refused commit appeared");
            }
            break;
        }
        assert!(Instant::now() < deadline, "the cluster did not heal");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_leader_loses_no_acknowledged_write_and_a_new_leader_takes_over() {
    let kills = std::env::var("BULWARK_CLUSTER_KILLS").map_or(KILLS_DEFAULT, |v| v.parse().expect("a number"));
    let (mut nodes, init) = start_cluster("kill");
    let mut terms = BTreeMap::new();
    create_table(&nodes, &mut terms);

    let mut acked: BTreeSet<i64> = BTreeSet::new();
    let mut next_id = 0i64;
    let mut unavailable = Vec::new();
    for kill in 0..kills {
        // Load on the current leader.
        let l = leader(&nodes, &mut terms);
        let until = Instant::now() + LOAD_BEFORE_KILL;
        while Instant::now() < until {
            next_id += 1;
            if insert(nodes[l].process.as_ref().unwrap(), next_id).await.is_ok() {
                acked.insert(next_id);
            }
        }
        // SIGKILL the leader (ServerProcess's drop kills with SIGKILL and reaps it).
        let victim = l;
        drop(nodes[victim].process.take());
        let killed_at = Instant::now();
        // Write until an insert is acknowledged by whichever node leads now.
        let recovered_at = loop {
            assert!(killed_at.elapsed() < LEADER_WAIT_MAX, "no write accepted {LEADER_WAIT_MAX:?} after kill {kill}");
            let mut wrote = None;
            for n in nodes.iter().filter(|n| n.process.is_some()) {
                if let Some(body) = n.status() {
                    if role(&body).as_deref() == Some("leader") {
                        next_id += 1;
                        if insert(n.process.as_ref().unwrap(), next_id).await.is_ok() {
                            acked.insert(next_id);
                            wrote = Some(Instant::now());
                        }
                        break;
                    }
                }
            }
            if let Some(at) = wrote {
                break at;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        };
        let gap = recovered_at - killed_at;
        eprintln!("kill {kill}: node {} killed; writes accepted again after {} ms", nodes[victim].id, gap.as_millis());
        unavailable.push(gap);
        // The killed node comes back on its directory and peer port, as a follower.
        nodes[victim].start(&init);
    }

    // Every acknowledged write is on every node, once each has applied as far as the leader.
    let l = assert_everywhere(&nodes, &mut terms, &acked);
    for n in &nodes {
        let role = role(&n.status().unwrap()).unwrap();
        assert!(n.id == nodes[l].id || role == "follower", "node {} is {role}", n.id);
    }
    unavailable.sort();
    eprintln!(
        "write unavailability over {kills} leader kills: p50 {} ms, p99 {} ms, max {} ms; {} acknowledged writes, all present on all 3 nodes",
        percentile(&unavailable, 0.5).as_millis(),
        percentile(&unavailable, 0.99).as_millis(),
        unavailable.last().unwrap().as_millis(),
        acked.len()
    );
}

async fn insert_at(port: u16, id: i64) -> Result<(), String> {
    let mut config = tokio_postgres::Config::new();
    config.host("127.0.0.1").port(port).user("bulwark").dbname("bulwark");
    let (client, connection) = tokio::time::timeout(INSERT_WAIT_MAX, config.connect(tokio_postgres::NoTls))
        .await
        .map_err(|_| "connect timed out".to_string())?
        .map_err(|e| e.to_string())?;
    tokio::spawn(connection);
    tokio::time::timeout(INSERT_WAIT_MAX, client.execute("INSERT INTO acked VALUES ($1)", &[&id]))
        .await
        .map_err(|_| "insert timed out".to_string())?
        .map(|_| ())
        .map_err(|e| e.to_string())
}

fn bulwark_cluster(args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_bulwark")).arg("cluster").args(args).output().unwrap();
    (out.status.success(), format!("{}{}", common::stdout(&out), common::stderr(&out)))
}

/// Inserts ids 1, 2, ... into whichever node `/status` calls the leader until `stop` is
/// set; returns the ids whose COMMIT was acknowledged.
fn spawn_leader_writer(
    ports: Vec<(u16, u16)>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> tokio::task::JoinHandle<Vec<i64>> {
    tokio::spawn(async move {
        let mut acked = Vec::new();
        let mut next = 0i64;
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            let leader =
                ports.iter().find(|(_, h)| http_get(*h, "/status").and_then(|b| role(&b)).as_deref() == Some("leader"));
            if let Some((pg, _)) = leader {
                next += 1;
                if insert_at(*pg, next).await.is_ok() {
                    acked.push(next);
                }
            } else {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        acked
    })
}

/// Stops the writer of [`spawn_leader_writer`], checks it kept writing, and checks that
/// every id it had acknowledged is on every node; returns those ids.
async fn stop_writer(
    writer: tokio::task::JoinHandle<Vec<i64>>,
    stop: &std::sync::atomic::AtomicBool,
    nodes: &[Node],
    terms: &mut BTreeMap<u64, u64>,
) -> BTreeSet<i64> {
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let acked: BTreeSet<i64> = writer.await.unwrap().into_iter().collect();
    assert!(acked.len() > 10, "the writer kept writing: {} acknowledged", acked.len());
    assert_everywhere(nodes, terms, &acked);
    acked
}

/// Under write load: `bulwark cluster add-voter` brings a fourth node in (it catches up
/// from the log) and `remove` takes it out again; no acknowledged write is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn membership_changes_under_load_lose_no_write() {
    let (nodes, _init) = start_cluster("members");
    let mut terms = BTreeMap::new();
    create_table(&nodes, &mut terms);
    let ports: Vec<(u16, u16)> =
        nodes.iter().map(|n| (n.process.as_ref().unwrap().port, n.process.as_ref().unwrap().http_port)).collect();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = spawn_leader_writer(ports.clone(), stop.clone());
    tokio::time::sleep(Duration::from_millis(300)).await;

    let to = leader(&nodes, &mut terms);
    // A fourth node joins as a voter, then leaves.
    let leader_http = format!("127.0.0.1:{}", ports[to].1);
    let mut fourth = Node { id: 4, dir: TempDir::new("members-4"), peer_port: free_port(), process: None };
    let extra = ["--node-id".to_string(), "4".into(), "--peer-addr".into(), format!("127.0.0.1:{}", fourth.peer_port)];
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    fourth.process = Some(ServerProcess::start(fourth.dir.path(), &extra));
    let addr = format!("127.0.0.1:{}", fourth.peer_port);
    let (ok, out) = bulwark_cluster(&["add-voter", "--id", "4", "--addr", &addr, "--http", &leader_http]);
    assert!(ok, "{out}");
    let (ok, status) = bulwark_cluster(&["status", "--http", &leader_http]);
    assert!(ok && status.contains(&addr) && status.contains("voter"), "{status}");
    eprintln!("after add-voter:\n{status}");
    let deadline = Instant::now() + LEADER_WAIT_MAX;
    while fourth.status().and_then(|b| role(&b)).as_deref() != Some("follower") {
        assert!(Instant::now() < deadline, "node 4 did not become a follower: {:?}", fourth.status());
        std::thread::sleep(Duration::from_millis(10));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (ok, out) = bulwark_cluster(&["remove", "--id", "4", "--http", &leader_http]);
    assert!(ok, "{out}");
    let (_, status) = bulwark_cluster(&["status", "--http", &leader_http]);
    assert!(!status.contains(&addr), "node 4 is gone: {status}");
    tokio::time::sleep(Duration::from_millis(300)).await;

    let acked = stop_writer(writer, &stop, &nodes, &mut terms).await;
    eprintln!("{} writes acknowledged across the membership changes, all on all 3 nodes", acked.len());
}

/// A node that joins a running cluster whose logs are purged (a new node, or the
/// replacement of one whose disk died) catches up from a copy of a checkpoint: it starts
/// with `--join`, the leader adds it, finds its log too short and sends a checkpoint
/// image; the node saves it, re-executes itself to install it, and then follows the log.
/// It holds every acknowledged row, and writes after it joined reach it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_joining_node_catches_up_from_a_checkpoint_image() {
    let (mut nodes, _init) = start_cluster_with("join", &["--raft-log-keep", "10"]);
    let mut terms = BTreeMap::new();
    create_table(&nodes, &mut terms);
    let mut acked = BTreeSet::new();
    let l = leader(&nodes, &mut terms);
    for id in 1..=150 {
        insert(nodes[l].process.as_ref().unwrap(), id).await.expect("insert on the leader");
        acked.insert(id);
    }
    // A checkpoint on every node, made Raft's snapshot: the logs are purged to 10 entries
    // behind it, so a new node cannot catch up from the log.
    for n in &nodes {
        let http = format!("127.0.0.1:{}", n.process.as_ref().unwrap().http_port);
        let (ok, out) = bulwark_cluster(&["snapshot", "--http", &http]);
        assert!(ok, "{out}");
    }

    // The leader purges once no replication is reading the entries.
    let deadline = Instant::now() + LEADER_WAIT_MAX;
    while json_u64(&nodes[l].status().unwrap_or_default(), "purged_index").unwrap_or(0) < 100 {
        assert!(Instant::now() < deadline, "the leader did not purge its log: {:?}", nodes[l].status());
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut fourth = Node { id: 4, dir: TempDir::new("join-4"), peer_port: free_port(), process: None };
    let join = nodes
        .iter()
        .map(|n| format!("127.0.0.1:{}", n.process.as_ref().unwrap().http_port))
        .collect::<Vec<_>>()
        .join(",");
    let addr = format!("127.0.0.1:{}", fourth.peer_port);
    let log = fourth.dir.path().join("stderr.log");
    let extra = ["--node-id", "4", "--peer-addr", &addr, "--join", &join];
    let data = fourth.dir.path().join("data");
    fourth.process = Some(ServerProcess::start_logging_to(&data, &extra, &log));
    let leader_http = format!("127.0.0.1:{}", nodes[l].process.as_ref().unwrap().http_port);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, status) = bulwark_cluster(&["status", "--http", &leader_http]);
        if status.lines().any(|line| line.contains(&addr) && line.contains("voter")) {
            eprintln!("node 4 joined:\n{status}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "node 4 did not join: {status}\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let stderr = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(stderr.contains("checkpoint image"), "node 4 caught up from an image and restarted: {stderr}");
    let saved = stderr.matches("bulwark: restarting: a checkpoint image from the leader").count();
    assert_eq!(saved, 1, "node 4 saved and installed exactly one image: {stderr}");
    for id in 151..=170 {
        let l = leader(&nodes, &mut terms);
        insert(nodes[l].process.as_ref().unwrap(), id).await.expect("insert on the leader");
        acked.insert(id);
    }
    nodes.push(fourth);
    assert_everywhere(&nodes, &mut terms, &acked);
    // One image in all: the leader goes on from the image's last entry once node 4 is
    // back, instead of searching below its purged log and sending another.
    let sent: Vec<u64> = nodes[..3].iter().map(|n| json_u64(&n.status().unwrap(), "images_sent").unwrap()).collect();
    let received_since_restart = json_u64(&nodes[3].status().unwrap(), "images_received").unwrap();
    assert_eq!(
        (sent.iter().sum::<u64>(), received_since_restart),
        (1, 0),
        "images sent by nodes 1-3: {sent:?}; received by node 4 after its restart: {received_since_restart}"
    );
    // A session that stays on a follower (it starts with its own read consistency) and
    // asks for linearizable reads is sent to the leader's SQL address (57P03).
    let l = leader(&nodes, &mut terms);
    let leader_pg = format!("127.0.0.1:{}", nodes[l].process.as_ref().unwrap().port);
    let f = (l + 1) % nodes.len();
    let deadline = Instant::now() + LEADER_WAIT_MAX;
    loop {
        let out = nodes[f]
            .process
            .as_ref()
            .unwrap()
            .psql_options("-c bulwark.read_consistency=linearizable", &["-c", "SELECT 1"]);
        let err = common::stderr(&out);
        assert!(!out.status.success(), "a follower answered a linearizable read");
        if err.contains(&format!("connect to {leader_pg}")) {
            break;
        }
        assert!(Instant::now() < deadline, "the follower never named the leader's SQL address: {err}");
        std::thread::sleep(Duration::from_millis(100));
    }
    // Every node has applied what it knows to be committed, and says so.
    for n in &nodes {
        let lag = n.process.as_ref().unwrap().query_here("SHOW bulwark.replication_lag");
        assert_eq!(lag, "0 entries, 0 ms", "node {}", n.id);
    }
}

/// Under write load, `bulwark cluster switchover --to N` hands the leadership to node N:
/// the command reports N leads, `/status` agrees, no two nodes led in one term, and every
/// acknowledged insert is on all three nodes. The pause is printed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switchover_under_load_moves_the_leadership_and_loses_no_write() {
    let (nodes, _init) = start_cluster("switch");
    let mut terms = BTreeMap::new();
    create_table(&nodes, &mut terms);
    let ports: Vec<(u16, u16)> =
        nodes.iter().map(|n| (n.process.as_ref().unwrap().port, n.process.as_ref().unwrap().http_port)).collect();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = spawn_leader_writer(ports.clone(), stop.clone());
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let from = leader(&nodes, &mut terms);
        let to = (from + 1) % nodes.len();
        let http = format!("127.0.0.1:{}", ports[from].1);
        let target = nodes[to].id.to_string();
        let (ok, out) = bulwark_cluster(&["switchover", "--to", &target, "--http", &http]);
        assert!(ok, "switchover from node {} to node {target}: {out}", nodes[from].id);
        eprintln!("switchover from node {} to node {target}: {}", nodes[from].id, out.trim());
        assert_eq!(leader(&nodes, &mut terms), to, "node {target} leads after the switchover");
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let acked = stop_writer(writer, &stop, &nodes, &mut terms).await;
    eprintln!("{} writes acknowledged across 3 switchovers, all on all 3 nodes", acked.len());
}

/// Two of three nodes are lost for good: `bulwark cluster force-new` refuses without its
/// data-loss flag, then makes the stopped survivor the only voter of a new cluster; started
/// again with the same arguments it leads alone, holds every row it had, and takes writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn force_new_makes_a_survivor_a_cluster_of_one() {
    let (mut nodes, init) = start_cluster("force");
    let mut terms = BTreeMap::new();
    create_table(&nodes, &mut terms);
    let l = leader(&nodes, &mut terms);
    let mut acked = BTreeSet::new();
    for id in 1..=20 {
        insert(nodes[l].process.as_ref().unwrap(), id).await.expect("insert on the leader");
        acked.insert(id);
    }
    assert_everywhere(&nodes, &mut terms, &acked);
    for n in nodes.iter_mut() {
        signal(n, "-KILL");
        let mut p = n.process.take().unwrap();
        let _ = p.child.wait();
    }
    let survivor = &mut nodes[2];
    let data = survivor.dir.path().to_string_lossy().to_string();
    let peer = format!("127.0.0.1:{}", survivor.peer_port);
    let args = ["force-new", "--data-dir", &data, "--node-id", "3", "--peer-addr", &peer];
    let (ok, out) = bulwark_cluster(&args);
    assert!(!ok && out.contains("--yes-lose-unreplicated-writes"), "{out}");
    let mut with_flag = args.to_vec();
    with_flag.push("--yes-lose-unreplicated-writes");
    let (ok, out) = bulwark_cluster(&with_flag);
    assert!(ok && out.contains("only voter"), "{out}");
    survivor.start(&init);
    let survivor = nodes.remove(2);
    let alone = [survivor];
    let l = leader(&alone, &mut BTreeMap::new());
    for id in 21..=25 {
        insert(alone[l].process.as_ref().unwrap(), id).await.expect("insert on the new cluster");
        acked.insert(id);
    }
    let present: BTreeSet<i64> = alone[0]
        .process
        .as_ref()
        .unwrap()
        .query("SELECT id FROM acked ORDER BY id")
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    assert_eq!(present, acked);
    let status = alone[0].status().unwrap();
    assert_eq!(status.matches("\"voter\":true").count(), 1, "{status}");
}
