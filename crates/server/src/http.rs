//! The HTTP endpoint: `/metrics` (Prometheus text format), `/health/live`,
//! `/health/ready` and `/status` (JSON).
//!
//! A deliberately small HTTP/1.1 responder: one request per connection, `GET` only, the
//! request head bounded by [`HTTP_REQUEST_BYTES_MAX`] and read within
//! [`HTTP_REQUEST_TIMEOUT`]. It shares the server's counters ([`Metrics`]) and reads the
//! engine's and the storage engine's own.

use crate::connection::Shared;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::future::Future;
use std::io;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// The most bytes of request head read.
pub const HTTP_REQUEST_BYTES_MAX: usize = 8192;
/// How long a client has to send its request.
pub const HTTP_REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// The default HTTP address.
pub const DEFAULT_HTTP_ADDR: &str = "127.0.0.1:9433";

/// Statement latency histogram bucket bounds, in seconds.
const LATENCY_BUCKETS_SECONDS: [f64; 11] = [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0];

/// Server-level counters.
pub struct Metrics {
    started: Instant,
    /// Connections accepted (including refused ones).
    pub connections_total: AtomicU64,
    /// Connections refused by max_connections (53300).
    pub connections_refused: AtomicU64,
    /// Connections a follower relayed to the leader (see `forward`), counted as they end.
    pub connections_forwarded: AtomicU64,
    /// Connections open now.
    pub connections_open: AtomicI64,
    /// Connections closed for breaking the protocol (FATAL 08P01 or 0A000).
    pub protocol_violations: AtomicU64,
    statements: Mutex<BTreeMap<String, u64>>,
    errors: Mutex<BTreeMap<String, u64>>,
    latency_buckets: [AtomicU64; LATENCY_BUCKETS_SECONDS.len()],
    latency_count: AtomicU64,
    latency_sum_micros: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            started: Instant::now(),
            connections_total: AtomicU64::new(0),
            connections_refused: AtomicU64::new(0),
            connections_forwarded: AtomicU64::new(0),
            connections_open: AtomicI64::new(0),
            protocol_violations: AtomicU64::new(0),
            statements: Mutex::new(BTreeMap::new()),
            errors: Mutex::new(BTreeMap::new()),
            latency_buckets: Default::default(),
            latency_count: AtomicU64::new(0),
            latency_sum_micros: AtomicU64::new(0),
        }
    }
}

impl Metrics {
    /// Records one statement: its kind (the command tag's first word), or its error's
    /// SQLSTATE, and how long it took.
    pub fn statement(&self, outcome: Result<&str, &str>, took: Duration) {
        match outcome {
            Ok(tag) => {
                let kind = tag.split(' ').next().unwrap_or("OTHER").to_string();
                *self.statements.lock().unwrap_or_else(|e| e.into_inner()).entry(kind).or_default() += 1;
            }
            Err(code) => {
                let class = code.get(..2).unwrap_or("XX").to_string();
                *self.errors.lock().unwrap_or_else(|e| e.into_inner()).entry(class).or_default() += 1;
            }
        }
        let secs = took.as_secs_f64();
        for (bucket, bound) in self.latency_buckets.iter().zip(LATENCY_BUCKETS_SECONDS) {
            if secs <= bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.latency_count.fetch_add(1, Ordering::Relaxed);
        self.latency_sum_micros.fetch_add(took.as_micros() as u64, Ordering::Relaxed);
    }

    /// Seconds since the server started.
    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }
}

fn metric(out: &mut String, name: &str, kind: &str, help: &str, samples: &[(String, f64)]) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
    for (labels, value) in samples {
        let _ = writeln!(out, "{name}{labels} {value}");
    }
}

fn one(v: impl Into<f64>) -> Vec<(String, f64)> {
    vec![(String::new(), v.into())]
}

/// The Prometheus text exposition of every counter.
pub(crate) fn render_metrics(shared: &Shared) -> String {
    let m = &shared.metrics;
    let e = shared.db.engine().stats();
    let s = &e.storage;
    let mut out = String::new();
    metric(&mut out, "bulwark_up", "gauge", "1 while the server runs.", &one(1u32));
    metric(&mut out, "bulwark_uptime_seconds", "gauge", "Seconds since start.", &one(m.uptime().as_secs_f64()));
    metric(
        &mut out,
        "bulwark_connections_open",
        "gauge",
        "Client connections open.",
        &one(m.connections_open.load(Ordering::Relaxed) as f64),
    );
    metric(
        &mut out,
        "bulwark_connections_total",
        "counter",
        "Client connections accepted.",
        &one(m.connections_total.load(Ordering::Relaxed) as f64),
    );
    metric(
        &mut out,
        "bulwark_connections_refused_total",
        "counter",
        "Connections refused by max_connections (53300).",
        &one(m.connections_refused.load(Ordering::Relaxed) as f64),
    );
    metric(
        &mut out,
        "bulwark_connections_forwarded_total",
        "counter",
        "Sessions this follower relayed to the leader, counted as they end.",
        &one(m.connections_forwarded.load(Ordering::Relaxed) as f64),
    );
    metric(
        &mut out,
        "bulwark_protocol_violations_total",
        "counter",
        "Connections closed for a malformed, oversized or out-of-place message (08P01).",
        &one(m.protocol_violations.load(Ordering::Relaxed) as f64),
    );
    let statements: Vec<(String, f64)> = m
        .statements
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .map(|(k, v)| (format!("{{kind=\"{k}\"}}"), *v as f64))
        .collect();
    metric(&mut out, "bulwark_statements_total", "counter", "Statements completed, by command.", &statements);
    let errors: Vec<(String, f64)> = m
        .errors
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .map(|(k, v)| (format!("{{sqlstate_class=\"{k}\"}}"), *v as f64))
        .collect();
    metric(&mut out, "bulwark_errors_total", "counter", "Statements that failed, by SQLSTATE class.", &errors);
    let mut hist = Vec::new();
    for (bucket, bound) in m.latency_buckets.iter().zip(LATENCY_BUCKETS_SECONDS) {
        hist.push((format!("_bucket{{le=\"{bound}\"}}"), bucket.load(Ordering::Relaxed) as f64));
    }
    let count = m.latency_count.load(Ordering::Relaxed) as f64;
    hist.push(("_bucket{le=\"+Inf\"}".into(), count));
    hist.push(("_sum".into(), m.latency_sum_micros.load(Ordering::Relaxed) as f64 / 1e6));
    hist.push(("_count".into(), count));
    metric(&mut out, "bulwark_statement_duration_seconds", "histogram", "Statement latency.", &hist);
    metric(&mut out, "bulwark_commits_total", "counter", "Transactions committed with writes.", &one(e.commits as f64));
    metric(
        &mut out,
        "bulwark_read_only_commits_total",
        "counter",
        "Transactions committed without writes.",
        &one(e.read_only_commits as f64),
    );
    metric(&mut out, "bulwark_rollbacks_total", "counter", "Transactions rolled back.", &one(e.rollbacks as f64));
    metric(
        &mut out,
        "bulwark_aborts_total",
        "counter",
        "Transactions aborted by the engine, by cause.",
        &[
            ("{cause=\"conflict_at_commit\"}".into(), e.conflicts_at_commit as f64),
            ("{cause=\"conflict_at_write\"}".into(), e.conflicts_at_write as f64),
            ("{cause=\"deadlock\"}".into(), e.locks.deadlocks as f64),
            ("{cause=\"lock_timeout\"}".into(), e.locks.timeouts as f64),
        ],
    );
    metric(
        &mut out,
        "bulwark_lock_waits_total",
        "counter",
        "Row lock requests that waited.",
        &one(e.locks.waits as f64),
    );
    metric(
        &mut out,
        "bulwark_lock_wakeups_total",
        "counter",
        "Times a lock waiter was woken by a release of the row it waits for.",
        &one(e.locks.wakeups as f64),
    );
    metric(
        &mut out,
        "bulwark_deadlocks_total",
        "counter",
        "Deadlocks detected (one victim each).",
        &one(e.locks.deadlocks as f64),
    );
    metric(&mut out, "bulwark_locked_rows", "gauge", "Rows locked now.", &one(e.locks.locked_rows as f64));
    metric(&mut out, "bulwark_open_transactions", "gauge", "Transactions open now.", &one(e.open_transactions as f64));
    metric(
        &mut out,
        "bulwark_dead_versions_found_total",
        "counter",
        "Dead row versions found by vacuum.",
        &one(e.dead_versions_found as f64),
    );
    metric(
        &mut out,
        "bulwark_dead_versions_reclaimed_total",
        "counter",
        "Dead row versions removed by vacuum.",
        &one(e.dead_versions_reclaimed as f64),
    );
    metric(
        &mut out,
        "bulwark_vacuum_held_back_entries",
        "gauge",
        "Log entries between the applied index and the oldest snapshot.",
        &one(e.vacuum_held_back_by as f64),
    );
    metric(
        &mut out,
        "bulwark_vacuum_keys_due",
        "gauge",
        "Keys the next background vacuum round looks at (written since the last round, or still too new then).",
        &one(e.vacuum_keys_due as f64),
    );
    metric(
        &mut out,
        "bulwark_vacuum_full_due",
        "gauge",
        "1 if the next background vacuum round scans the whole store (after open, or when too many keys were due).",
        &one(if e.vacuum_full_due { 1u32 } else { 0 }),
    );
    metric(&mut out, "bulwark_applied_index", "gauge", "The last applied log index.", &one(s.applied_index as f64));
    let n = shared.db.node().status();
    metric(&mut out, "bulwark_raft_term", "gauge", "The node's current Raft term.", &one(n.term as f64));
    metric(
        &mut out,
        "bulwark_raft_leader",
        "gauge",
        "1 while this node is the Raft leader.",
        &one(if n.role == "leader" { 1u32 } else { 0 }),
    );
    metric(
        &mut out,
        "bulwark_raft_last_log_index",
        "gauge",
        "The last index in this node's log.",
        &one(n.last_log_index as f64),
    );
    let last = n.last_log_index;
    let lag_entries: Vec<(String, f64)> = n
        .replication
        .iter()
        .filter(|(id, _)| *id != n.id)
        .map(|(id, m)| (format!("{{member=\"{id}\"}}"), last.saturating_sub(m.unwrap_or(0)) as f64))
        .collect();
    metric(
        &mut out,
        "bulwark_raft_replica_lag_entries",
        "gauge",
        "On the leader: entries each member lacks of the leader's log.",
        &lag_entries,
    );
    let lag_ms: Vec<(String, f64)> = n
        .replication
        .iter()
        .filter(|(id, _)| *id != n.id)
        .map(|(id, _)| {
            let ms = n.lag_ms.iter().find(|(r, _)| r == id).map_or(0, |(_, ms)| *ms);
            (format!("{{member=\"{id}\"}}"), ms as f64)
        })
        .collect();
    metric(
        &mut out,
        "bulwark_raft_replica_lag_seconds",
        "gauge",
        "On the leader: how long each member has lacked part of the leader's log (0: caught up).",
        &lag_ms.into_iter().map(|(l, ms)| (l, ms / 1000.0)).collect::<Vec<_>>(),
    );
    metric(
        &mut out,
        "bulwark_raft_images_sent_total",
        "counter",
        "Checkpoint images this process built to send to members behind its purged log.",
        &one(n.images_sent as f64),
    );
    metric(
        &mut out,
        "bulwark_raft_images_received_total",
        "counter",
        "Checkpoint images this process began to receive from the leader.",
        &one(n.images_received as f64),
    );
    metric(
        &mut out,
        "bulwark_wal_bytes",
        "gauge",
        "Bytes in the write-ahead log's segments.",
        &one(s.wal_bytes as f64),
    );
    metric(
        &mut out,
        "bulwark_wal_appends_total",
        "counter",
        "Records appended to the log.",
        &one(s.wal.appends as f64),
    );
    metric(&mut out, "bulwark_wal_fsyncs_total", "counter", "fdatasync calls on the log.", &one(s.wal.fsyncs as f64));
    metric(
        &mut out,
        "bulwark_wal_fsync_seconds_total",
        "counter",
        "Time spent in log fdatasync.",
        &one(s.wal.fsync_nanos_total as f64 / 1e9),
    );
    metric(
        &mut out,
        "bulwark_wal_fsync_seconds_max",
        "gauge",
        "Longest log fdatasync.",
        &one(s.wal.fsync_nanos_max as f64 / 1e9),
    );
    metric(
        &mut out,
        "bulwark_buffer_pool_hits_total",
        "counter",
        "Page lookups served from memory.",
        &one(s.pool.hits as f64),
    );
    metric(
        &mut out,
        "bulwark_buffer_pool_misses_total",
        "counter",
        "Page lookups that read the disk.",
        &one(s.pool.misses as f64),
    );
    metric(&mut out, "bulwark_buffer_pool_hit_ratio", "gauge", "hits / (hits + misses).", &one(s.pool.hit_ratio()));
    metric(&mut out, "bulwark_checkpoints_total", "counter", "Checkpoints completed.", &one(s.checkpoints as f64));
    metric(
        &mut out,
        "bulwark_checkpoint_failures_total",
        "counter",
        "Checkpoints that failed.",
        &one(s.checkpoint_failures as f64),
    );
    metric(
        &mut out,
        "bulwark_checkpoint_last_seconds",
        "gauge",
        "Duration of the last checkpoint.",
        &one(s.checkpoint_last_micros as f64 / 1e6),
    );
    metric(
        &mut out,
        "bulwark_checkpoint_max_seconds",
        "gauge",
        "Longest checkpoint.",
        &one(s.checkpoint_max_micros as f64 / 1e6),
    );
    metric(
        &mut out,
        "bulwark_storage_fenced",
        "gauge",
        "1 if an fsync failure fenced the store (writes refused).",
        &one(s.poisoned.is_some() as u32),
    );
    out
}

fn json_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `/status`: the node's Raft role and cluster, applied index, uptime, settings.
pub(crate) fn render_status(shared: &Shared, settings: &[(&str, String)]) -> String {
    let e = shared.db.engine().stats();
    let n = shared.db.node().status();
    let mut out = String::from("{");
    let _ = write!(out, "\"node_id\":{},\"role\":\"{}\",\"term\":{},", n.id, n.role, n.term);
    match &n.leader {
        Some((id, addr)) => {
            let _ = write!(out, "\"leader_id\":{id},\"leader_addr\":{},", json_string(addr));
        }
        None => out.push_str("\"leader_id\":null,\"leader_addr\":null,"),
    }
    let _ = write!(
        out,
        "\"applied_index\":{},\"last_log_index\":{},\"purged_index\":{},\"images_sent\":{},\"images_received\":{},",
        n.applied_index, n.last_log_index, n.purged_index, n.images_sent, n.images_received
    );
    out.push_str("\"members\":[");
    for (i, (id, addr, voter)) in n.members.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let matched = n.replication.iter().find(|(r, _)| r == id).and_then(|(_, m)| *m);
        let lag_ms = match (&n.replication.is_empty(), n.lag_ms.iter().find(|(r, _)| r == id)) {
            (true, _) => "null".to_string(),
            (false, Some((_, ms))) => ms.to_string(),
            (false, None) => "0".to_string(),
        };
        let peer = n.peers.iter().find(|(p, ..)| p == id);
        let _ = write!(
            out,
            "{{\"id\":{id},\"addr\":{},\"voter\":{voter},\"matched_index\":{},\"lag_ms\":{lag_ms},\
             \"sql_addr\":{},\"http_addr\":{},\"clock_offset_ms\":{}}}",
            json_string(addr),
            matched.map_or("null".to_string(), |m| m.to_string()),
            peer.map_or("null".to_string(), |(_, sql, _, _)| json_string(sql)),
            peer.map_or("null".to_string(), |(_, _, http, _)| json_string(http)),
            peer.map_or("null".to_string(), |(.., off)| off.to_string()),
        );
    }
    out.push_str("],");
    let _ = write!(out, "\"clock_refusal\":{},", n.clock_refusal.as_deref().map_or("null".to_string(), json_string));
    let _ = write!(out, "\"uptime_seconds\":{:.3},", shared.metrics.uptime().as_secs_f64());
    let _ = write!(out, "\"connections_open\":{},", shared.metrics.connections_open.load(Ordering::Relaxed));
    let _ = write!(out, "\"storage_fenced\":{},", json_string(e.storage.poisoned.as_deref().unwrap_or("")));
    out.push_str("\"settings\":{");
    for (i, (k, v)) in settings.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "{}:{}", json_string(k), json_string(v));
    }
    out.push_str("}}");
    out
}

fn response(status: &str, content_type: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

async fn handle(mut socket: tokio::net::TcpStream, shared: Arc<Shared>, settings: Arc<Vec<(&'static str, String)>>) {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    let read = tokio::time::timeout(HTTP_REQUEST_TIMEOUT, async {
        while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < HTTP_REQUEST_BYTES_MAX {
            let n = socket.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            head.extend_from_slice(&buf[..n]);
        }
        io::Result::Ok(())
    })
    .await;
    if !matches!(read, Ok(Ok(()))) {
        return;
    }
    let line = String::from_utf8_lossy(head.split(|&b| b == b'\r').next().unwrap_or(b""));
    let mut parts = line.split(' ');
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let reply = if method == "POST" && path.starts_with("/cluster/") {
        cluster_admin(&shared, path).await
    } else if method != "GET" {
        response("405 Method Not Allowed", "text/plain", "only GET, and POST to /cluster/...\n")
    } else {
        match path {
            "/metrics" => response("200 OK", "text/plain; version=0.0.4", &render_metrics(&shared)),
            "/health/live" => response("200 OK", "text/plain", "ok\n"),
            "/health/ready" => {
                let fenced = shared.db.engine().stats().storage.poisoned;
                let shutting_down = shared.shutting_down.load(Ordering::SeqCst);
                match (fenced, shutting_down) {
                    (None, false) => response("200 OK", "text/plain", "ready\n"),
                    (Some(why), _) => {
                        response("503 Service Unavailable", "text/plain", &format!("storage fenced: {why}\n"))
                    }
                    (None, true) => response("503 Service Unavailable", "text/plain", "shutting down\n"),
                }
            }
            "/status" => response("200 OK", "application/json", &render_status(&shared, &settings)),
            _ => response("404 Not Found", "text/plain", "not found\n"),
        }
    };
    let _ = socket.write_all(reply.as_bytes()).await;
    let _ = socket.shutdown().await;
}

/// `POST /cluster/add-replica?id=N&addr=HOST:PORT`,
/// `/cluster/add-voter?id=N&addr=HOST:PORT`, `/cluster/remove?id=N`: membership changes;
/// `/cluster/snapshot`: a checkpoint now, made Raft's snapshot; `/cluster/switchover?to=N`:
/// hand the leadership to voter N (`bulwark cluster ...`). Served on the HTTP address, loopback by
/// default: whoever reaches it administers the cluster.
async fn cluster_admin(shared: &Shared, path: &str) -> String {
    let (route, query) = path.split_once('?').unwrap_or((path, ""));
    let arg = |name: &str| {
        query.split('&').find_map(|kv| kv.split_once('=').filter(|(k, _)| *k == name).map(|(_, v)| v.to_string()))
    };
    if route == "/cluster/snapshot" {
        let db = shared.db.clone();
        return match tokio::task::spawn_blocking(move || db.node().snapshot_now()).await {
            Ok(Ok(index)) => response(
                "200 OK",
                "text/plain",
                &format!("checkpoint written; Raft's snapshot is at entry {index}, and the log before it is purged\n"),
            ),
            Ok(Err(why)) => response("409 Conflict", "text/plain", &format!("{why}\n")),
            Err(e) => response("500 Internal Server Error", "text/plain", &format!("{e}\n")),
        };
    }
    let id = arg("id").and_then(|v| v.parse::<u64>().ok());
    if route == "/cluster/switchover" {
        let Some(to) = arg("to").and_then(|v| v.parse::<u64>().ok()) else {
            return response("400 Bad Request", "text/plain", "usage: POST /cluster/switchover?to=N\n");
        };
        return match shared.db.node().switchover(to).await {
            Ok(done) => response("200 OK", "text/plain", &format!("{done}\n")),
            Err(why) => response("409 Conflict", "text/plain", &format!("{why}\n")),
        };
    }
    let op = match (route, id, arg("addr")) {
        ("/cluster/add-replica", Some(id), Some(addr)) => Some(cluster::node::AdminOp::AddReplica { id, addr }),
        ("/cluster/add-voter", Some(id), Some(addr)) => Some(cluster::node::AdminOp::AddVoter { id, addr }),
        ("/cluster/remove", Some(id), _) => Some(cluster::node::AdminOp::Remove { id }),
        _ => None,
    };
    let Some(op) = op else {
        return response(
            "400 Bad Request",
            "text/plain",
            "usage: POST /cluster/add-replica?id=N&addr=HOST:PORT | add-voter?id=N&addr=HOST:PORT | remove?id=N | snapshot | switchover?to=N\n",
        );
    };
    match shared.db.node().admin(op).await {
        Ok(done) => response("200 OK", "text/plain", &format!("{done}\n")),
        Err(why) => response("409 Conflict", "text/plain", &format!("{why}\n")),
    }
}

/// Serves HTTP on `listener` until `shutdown` completes.
pub(crate) async fn serve_http(
    listener: TcpListener,
    shared: Arc<Shared>,
    settings: Vec<(&'static str, String)>,
    shutdown: impl Future<Output = ()>,
) {
    let settings = Arc::new(settings);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => return,
            accepted = listener.accept() => {
                if let Ok((socket, _)) = accepted {
                    tokio::spawn(handle(socket, shared.clone(), settings.clone()));
                }
            }
        }
    }
}
