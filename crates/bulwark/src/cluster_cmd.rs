//! `bulwark cluster ...`: status and membership changes, over a node's HTTP address (the
//! cluster's admin interface: `GET /status`, `POST /cluster/...`).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::ExitCode;
use std::time::Duration;

/// How long one HTTP exchange with a node may take (membership changes wait for a new
/// member to catch up, so this is long).
const HTTP_WAIT_MAX: Duration = Duration::from_secs(90);

#[derive(clap::Subcommand)]
pub enum ClusterCmd {
    /// Members, roles, leader, term, applied index and each member's replication.
    Status(Target),
    /// Add a voter (it first catches up as a replica). Run against the leader.
    AddVoter(Member),
    /// Add a replica (a Raft learner: it receives the log and never votes). Run against
    /// the leader.
    AddReplica(Member),
    /// Remove a voter or replica. Run against the leader.
    Remove(Id),
    /// Write a checkpoint now and make it Raft's snapshot: the node then purges its log up
    /// to --raft-log-keep entries before it, and lagging or new nodes catch up from a copy
    /// of it.
    Snapshot(Target),
    /// Hand the leadership to a chosen voter. Run against the leader: commits pause (57P03,
    /// retryable) for about the election timeout while the chosen node takes over.
    Switchover(To),
    /// DATA LOSS: make a stopped survivor of a cluster that lost its quorum for good the
    /// only voter of a new cluster. Writes it had not received are lost. Offline: run with
    /// the node stopped, then start it as before (others join it with --join).
    ForceNew(ForceNew),
}

#[derive(clap::Args)]
pub struct ForceNew {
    /// The survivor's data directory.
    #[arg(long)]
    data_dir: std::path::PathBuf,
    /// Its node id.
    #[arg(long)]
    node_id: u64,
    /// Its peer address (its --peer-addr).
    #[arg(long)]
    peer_addr: String,
    /// Required: says you accept losing every write this node had not received.
    #[arg(long)]
    yes_lose_unreplicated_writes: bool,
}

#[derive(clap::Args)]
pub struct To {
    #[command(flatten)]
    target: Target,
    /// The voter to lead.
    #[arg(long)]
    to: u64,
}

#[derive(clap::Args)]
pub struct Target {
    /// The node's HTTP address.
    #[arg(long, default_value = "127.0.0.1:9433")]
    http: String,
}

#[derive(clap::Args)]
pub struct Member {
    #[command(flatten)]
    target: Target,
    /// The new member's node id.
    #[arg(long)]
    id: u64,
    /// The new member's peer address (its --peer-addr).
    #[arg(long)]
    addr: String,
}

#[derive(clap::Args)]
pub struct Id {
    #[command(flatten)]
    target: Target,
    /// The member's node id.
    #[arg(long)]
    id: u64,
}

/// One HTTP/1.1 exchange; returns (status line, body).
pub(crate) fn http(addr: &str, method: &str, path: &str) -> Result<(String, String), String> {
    let mut stream = TcpStream::connect(addr).map_err(|e| format!("cannot reach {addr}: {e}"))?;
    stream.set_read_timeout(Some(HTTP_WAIT_MAX)).map_err(|e| e.to_string())?;
    write!(stream, "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\n\r\n")
        .map_err(|e| e.to_string())?;
    let mut response = String::new();
    stream.read_to_string(&mut response).map_err(|e| format!("reading from {addr}: {e}"))?;
    let (head, body) = response.split_once("\r\n\r\n").ok_or_else(|| format!("{addr}: not an HTTP response"))?;
    Ok((head.lines().next().unwrap_or("").to_string(), body.to_string()))
}

/// The value after `"key":` in a flat JSON object, as text (strings unquoted).
fn field<'a>(json: &'a str, key: &str) -> Option<&'a str> {
    let rest = json.split(&format!("\"{key}\":")).nth(1)?;
    let end = match rest.strip_prefix('"') {
        Some(quoted) => quoted.find('"')? + 2,
        None => rest.find([',', '}', ']'])?,
    };
    Some(rest[..end].trim_matches('"'))
}

fn status_line(body: &str) -> String {
    format!(
        "node {} is {} in term {}; leader: {}; applied index {}, last log index {}",
        field(body, "node_id").unwrap_or("?"),
        field(body, "role").unwrap_or("?"),
        field(body, "term").unwrap_or("?"),
        match field(body, "leader_id") {
            Some("null") | None => "none known".to_string(),
            Some(id) => format!("node {id} at {}", field(body, "leader_addr").unwrap_or("?")),
        },
        field(body, "applied_index").unwrap_or("?"),
        field(body, "last_log_index").unwrap_or("?"),
    )
}

fn status(target: &Target) -> Result<(), String> {
    let (code, body) = http(&target.http, "GET", "/status")?;
    if !code.contains("200") {
        return Err(format!("{code}: {body}"));
    }
    println!("{}", status_line(&body));
    let last: u64 = field(&body, "last_log_index").and_then(|v| v.parse().ok()).unwrap_or(0);
    let members = body.split("\"members\":[").nth(1).and_then(|r| r.split(']').next()).unwrap_or("");
    println!(
        "{:>6}  {:<22}  {:<8}  {:>14}  {:>13}  {:>8}  {:<22}  {:>12}",
        "member", "peer address", "kind", "matched index", "lag (entries)", "lag (ms)", "SQL address", "clock (ms)"
    );
    for m in members.split("},").filter(|m| !m.trim().is_empty()).map(|m| format!("{}}}", m.trim_end_matches('}'))) {
        let m = m.as_str();
        let matched = field(m, "matched_index").filter(|v| *v != "null");
        println!(
            "{:>6}  {:<22}  {:<8}  {:>14}  {:>13}  {:>8}  {:<22}  {:>12}",
            field(m, "id").unwrap_or("?"),
            field(m, "addr").unwrap_or("?"),
            if field(m, "voter") == Some("true") { "voter" } else { "replica" },
            matched.unwrap_or("-"),
            matched.and_then(|v| v.parse::<u64>().ok()).map_or("-".to_string(), |v| last.saturating_sub(v).to_string()),
            field(m, "lag_ms").filter(|v| *v != "null").unwrap_or("-"),
            field(m, "sql_addr").filter(|v| *v != "null" && !v.is_empty()).unwrap_or("-"),
            field(m, "clock_offset_ms").filter(|v| *v != "null").unwrap_or("-"),
        );
    }
    if let Some(why) = field(&body, "clock_refusal").filter(|v| *v != "null") {
        println!("this node refuses to lead: {why}");
    }
    Ok(())
}

fn post(target: &Target, path: &str) -> Result<(), String> {
    let (code, body) = http(&target.http, "POST", path)?;
    if code.contains("200") {
        print!("{body}");
        Ok(())
    } else {
        Err(body.trim().to_string())
    }
}

fn force_new(f: &ForceNew) -> Result<(), String> {
    if !f.yes_lose_unreplicated_writes {
        return Err("force-new loses every write this node had not received, and must never run while the old \
             cluster may come back; add --yes-lose-unreplicated-writes to go ahead"
            .into());
    }
    if f.peer_addr.parse::<std::net::SocketAddr>().is_err() {
        return Err(format!("--peer-addr: \"{}\" is not host:port", f.peer_addr));
    }
    let vfs: std::sync::Arc<dyn storage::vfs::Vfs> = std::sync::Arc::new(storage::vfs::RealVfs);
    let done = cluster::node::force_new_cluster(
        vfs,
        &f.data_dir,
        f.node_id,
        &f.peer_addr,
        storage::wal::WalOptions::default(),
    )
    .map_err(|e| e.to_string())?;
    println!("{done}");
    println!("start it as before (with --node-id {} --peer-addr {}); add members with --join", f.node_id, f.peer_addr);
    Ok(())
}

pub fn run(cmd: &ClusterCmd) -> ExitCode {
    let result = match cmd {
        ClusterCmd::Status(t) => status(t),
        ClusterCmd::AddVoter(m) => post(&m.target, &format!("/cluster/add-voter?id={}&addr={}", m.id, m.addr)),
        ClusterCmd::AddReplica(m) => post(&m.target, &format!("/cluster/add-replica?id={}&addr={}", m.id, m.addr)),
        ClusterCmd::Remove(i) => post(&i.target, &format!("/cluster/remove?id={}", i.id)),
        ClusterCmd::Snapshot(t) => post(t, "/cluster/snapshot"),
        ClusterCmd::Switchover(t) => post(&t.target, &format!("/cluster/switchover?to={}", t.to)),
        ClusterCmd::ForceNew(f) => force_new(f),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bulwark cluster: {e}");
            ExitCode::FAILURE
        }
    }
}
