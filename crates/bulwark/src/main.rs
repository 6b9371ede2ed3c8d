//! The `bulwark` command.
//!
//! `bulwark start` serves SQL over the PostgreSQL wire protocol. The engine's tools:
//! `bulwark bench storage` and `bulwark bench txn` (benchmarks that print a table) and
//! `bulwark check` (an offline integrity check of a data directory), and `bulwark sql`, a shell.

mod bench;
mod bench_txn;
mod cluster_cmd;
mod config;
mod shell;

use config::StartArgs;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

/// jemalloc, not the system allocator: with a thread per connection, glibc's malloc and free
/// took about a third of the connection threads' own CPU time under pgbench. Measured on 2
/// cores, alternating runs: tpcb-like with 8 clients 5,089-5,824 tps with glibc, 5,403-6,311
/// with jemalloc (mimalloc between the two); single-row inserts with 16 clients 35.1k-35.9k
/// against 38.3k-38.7k (docs/architecture.md, "Memory allocator").
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Parser)]
#[command(name = "bulwark", version, about = "A PostgreSQL-compatible database that treats failure as the normal case")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve SQL over the PostgreSQL wire protocol until SIGINT or SIGTERM.
    Start(Box<StartArgs>),
    /// A cluster's status and membership changes, over a node's HTTP address.
    Cluster {
        #[command(subcommand)]
        what: cluster_cmd::ClusterCmd,
    },
    /// Run a benchmark and print a table.
    Bench {
        #[command(subcommand)]
        what: BenchWhat,
    },
    /// A SQL shell connected to a running server (-c SQL runs and exits).
    Sql(shell::SqlArgs),
    /// Check a data directory offline: meta pages, log records, every tree page's checksum
    /// and the B-tree's order; then every row against its table's definition, every index
    /// entry against its row and back, and every foreign key. Exits non-zero and names each
    /// problem.
    Check {
        /// The data directory.
        #[arg(long, default_value = "./bulwark-data")]
        data_dir: PathBuf,
    },
}

#[derive(Subcommand)]
enum BenchWhat {
    /// The storage engine: durable appends, point reads, checkpoints, recovery.
    Storage(bench::StorageArgs),
    /// Transactions: transfers at three thread counts and two contention levels, vacuum.
    Txn(bench_txn::TxnArgs),
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Bench { what: BenchWhat::Storage(args) } => match bench::storage(&args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("bench failed: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Bench { what: BenchWhat::Txn(args) } => match bench_txn::run(&args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("bench failed: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Check { data_dir } => check(&data_dir),
        Command::Sql(args) => shell::run(&args),
        Command::Start(args) => start(&args),
        Command::Cluster { what } => cluster_cmd::run(&what),
    }
}

/// How long shutdown waits for the runtime's threads after the checkpoint.
const RUNTIME_SHUTDOWN_MS: u64 = 1000;

fn start(args: &StartArgs) -> ExitCode {
    let settings = match config::resolve(args) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("bulwark: {e}");
            return ExitCode::FAILURE;
        }
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(settings.log_level)
        .with_target(false)
        .with_ansi(false)
        .init();
    // Refuse a bad address before touching the data directory.
    if let Err(e) = server::listen_addrs(&settings.pg_addr, settings.auth) {
        eprintln!("bulwark: {e}");
        return ExitCode::FAILURE;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let opened = std::time::Instant::now();
    let mut node = cluster::node::NodeOptions { id: settings.node_id, ..Default::default() };
    node.raft.heartbeat_interval = settings.raft_heartbeat_ms;
    node.raft.election_timeout_min = settings.raft_election_timeout_ms;
    node.raft.election_timeout_max = 2 * settings.raft_election_timeout_ms;
    node.raft.max_in_snapshot_log_to_keep = settings.raft_log_keep;
    node.peers = settings.peers.clone().map(|(listen, init)| cluster::node::PeerOptions {
        init,
        clock_offset_max: std::time::Duration::from_millis(settings.max_clock_offset_ms),
        ..cluster::node::PeerOptions::new(listen)
    });
    let db = match sql::Database::open_node(Arc::new(storage::vfs::RealVfs), &settings.data_dir, node) {
        Ok(db) => db,
        Err(e) => {
            eprintln!("cannot open {}: {e}", settings.data_dir.display());
            return ExitCode::FAILURE;
        }
    };
    let stats = db.engine().store().stats();
    let replayed = db.node().replayed_at_open();
    tracing::info!(
        data_dir = %settings.data_dir.display(),
        applied_index = stats.applied_index,
        replayed_records = replayed,
        open_ms = opened.elapsed().as_millis() as u64,
        "data directory opened"
    );
    // End-of-recovery checkpoint (as PostgreSQL takes one): a server that crashes again soon
    // replays from here, not from wherever the log began.
    if replayed > 0 {
        let started = std::time::Instant::now();
        if let Err(e) = db.engine().store().checkpoint() {
            eprintln!("bulwark: checkpoint after recovery failed: {e}");
            return ExitCode::FAILURE;
        }
        tracing::info!(checkpoint_ms = started.elapsed().as_millis() as u64, "checkpointed after recovery");
    }
    for (name, value) in &settings.session {
        if let Err(e) = db.set_session_default(name, value) {
            eprintln!("bulwark: setting {name}: {}", e.message);
            return ExitCode::FAILURE;
        }
    }
    let mut status_settings = vec![
        ("data_dir", settings.data_dir.display().to_string()),
        ("pg_addr", settings.pg_addr.clone()),
        ("http_addr", settings.http_addr.clone()),
        ("max_connections", settings.max_connections.to_string()),
        ("auth", if settings.auth == server::AuthMethod::Trust { "trust" } else { "scram-sha-256" }.to_string()),
        ("tls", settings.tls.is_some().to_string()),
        ("log_connections", settings.log_connections.to_string()),
        (
            "log_min_duration_statement",
            settings.log_min_duration_statement.map_or("-1".into(), |d| d.as_millis().to_string()),
        ),
    ];
    for name in config::SESSION_SETTINGS {
        if let Some(v) = db.session().setting(name) {
            status_settings.push((name, v.to_string()));
        }
    }
    let config = server::Config {
        auth: settings.auth,
        tls: settings.tls.clone(),
        addr: settings.pg_addr.clone(),
        max_connections: settings.max_connections,
        http_addr: Some(settings.http_addr.clone()),
        status_settings,
        log_min_duration_statement: settings.log_min_duration_statement,
        log_connections: settings.log_connections,
        ..Default::default()
    };
    if let Some((listen, _)) = &settings.peers {
        if !settings.join.is_empty() && !db.node().status().members.iter().any(|(id, _, _)| *id == settings.node_id) {
            let (join, id, addr) = (settings.join.clone(), settings.node_id, listen.to_string());
            std::thread::spawn(move || join_cluster(&join, id, &addr));
        }
    }
    let restart: Arc<std::sync::Mutex<Option<String>>> = Arc::default();
    let stop = {
        let (db, restart) = (db.clone(), restart.clone());
        async move {
            tokio::select! {
                _ = shutdown_signal() => {}
                reason = restart_required(db) => {
                    eprintln!("bulwark: restarting: {reason}");
                    *restart.lock().unwrap_or_else(|e| e.into_inner()) = Some(reason);
                }
            }
        }
    };
    let served = runtime.block_on(async {
        let server = server::Server::bind(db.clone(), config).await?;
        let addr = server.local_addr()?;
        db.node().advertise(&addr.to_string(), &server.http_addr().map(|a| a.to_string()).unwrap_or_default());
        println!("bulwark: serving {} on {addr}", settings.data_dir.display());
        println!("connect with: psql -h {} -p {} -U bulwark bulwark", addr.ip(), addr.port());
        if let Some(http) = server.http_addr() {
            println!("metrics at: http://{http}/metrics (also /health/live, /health/ready, /status)");
        }
        server.run(stop).await
    });
    if let Err(e) = served {
        eprintln!("bulwark: {e}");
        return ExitCode::FAILURE;
    }
    runtime.shutdown_timeout(std::time::Duration::from_millis(RUNTIME_SHUTDOWN_MS));
    if restart.lock().unwrap_or_else(|e| e.into_inner()).is_some() {
        // The same program with the same arguments, in this process (same pid): the node
        // installs the checkpoint image it saved as it opens. The store needs no checkpoint
        // first; it recovers from its log like after any stop.
        drop(db);
        use std::os::unix::process::CommandExt;
        let exe = std::env::current_exe().unwrap_or_else(|_| std::path::PathBuf::from("bulwark"));
        let err = std::process::Command::new(exe).args(std::env::args_os().skip(1)).exec();
        eprintln!("bulwark: cannot restart itself: {err}");
        return ExitCode::FAILURE;
    }
    let started = std::time::Instant::now();
    match db.engine().store().checkpoint() {
        Ok(_) => {
            tracing::info!(checkpoint_ms = started.elapsed().as_millis() as u64, "checkpointed at shutdown");
            println!("bulwark: checkpointed, stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            tracing::error!(error = %e, "checkpoint at shutdown failed");
            eprintln!("bulwark: checkpoint at shutdown failed: {e}");
            ExitCode::FAILURE
        }
    }
}

/// How long a joining node keeps asking to be added.
const JOIN_WAIT_MAX: std::time::Duration = std::time::Duration::from_secs(600);
/// The pause between rounds of asking.
const JOIN_RETRY_MS: u64 = 500;

/// Asks the members at `http` in turn to add this node as a voter, until one (the leader)
/// does. The leader first adds it as a replica and waits for it to catch up.
fn join_cluster(http: &[String], id: u64, peer_addr: &str) {
    let deadline = std::time::Instant::now() + JOIN_WAIT_MAX;
    let path = format!("/cluster/add-voter?id={id}&addr={peer_addr}");
    loop {
        for addr in http {
            match cluster_cmd::http(addr, "POST", &path) {
                Ok((code, body)) if code.contains("200") => {
                    println!("bulwark: joined the cluster through {addr}: {}", body.trim());
                    return;
                }
                Ok((code, body)) => tracing::info!(%addr, %code, answer = body.trim(), "join: not added here"),
                Err(e) => tracing::info!(%addr, error = %e, "join: cannot ask"),
            }
        }
        if std::time::Instant::now() >= deadline {
            eprintln!("bulwark: no member of {} added this node within {JOIN_WAIT_MAX:?}", http.join(", "));
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(JOIN_RETRY_MS));
    }
}

/// How often a server checks whether its node must restart.
const RESTART_POLL_MS: u64 = 100;

/// Completes, with the reason, when the node must restart (it saved a checkpoint image
/// from the leader to install).
async fn restart_required(db: sql::Database) -> String {
    loop {
        if let Some(reason) = db.node().restart_required() {
            return reason;
        }
        tokio::time::sleep(std::time::Duration::from_millis(RESTART_POLL_MS)).await;
    }
}

/// Completes at SIGINT or SIGTERM.
async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("bulwark: cannot listen for SIGTERM ({e}); stop with Ctrl-C");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    println!("bulwark: shutting down");
}

fn check(dir: &std::path::Path) -> ExitCode {
    if !dir.join(storage::btree::DATA_FILE).is_file() {
        eprintln!("{}: no Bulwark data directory here (no {})", dir.display(), storage::btree::DATA_FILE);
        return ExitCode::FAILURE;
    }
    // Open through the transaction layer: the log holds its commands, replayed the way they
    // were first applied.
    let opts = txn::EngineOptions {
        store: storage::StoreOptions { checkpoint_interval: None, checkpoint_log_bytes: None, ..Default::default() },
        vacuum_interval: None,
        ..Default::default()
    };
    let opened = std::time::Instant::now();
    let db = match sql::Database::open(Arc::new(storage::vfs::RealVfs), dir, opts) {
        Ok(db) => db,
        Err(e) => {
            eprintln!("problem: {}", e.message);
            return ExitCode::FAILURE;
        }
    };
    let store = db.engine().store();
    let pages = match storage::store::check_tree(store) {
        Ok(pages) => pages,
        Err(e) => {
            eprintln!("problem: {e}");
            return ExitCode::FAILURE;
        }
    };
    let s = store.stats();
    println!(
        "storage ok: {pages} tree pages checked, applied index {}, {} pages in file; recovery re-applied {} log records in {:.1} ms ({} of them, {:.1} MB, replayed in {:.1} ms as the store opened)",
        s.applied_index,
        s.page_count,
        db.node().replayed_at_open(),
        opened.elapsed().as_secs_f64() * 1000.0,
        s.replayed_records,
        s.replayed_bytes as f64 / 1e6,
        s.replay_micros as f64 / 1000.0
    );
    let report = match sql::check::check_database(&db) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("problem: the tables cannot be read: {}", e.message);
            return ExitCode::FAILURE;
        }
    };
    for p in &report.problems {
        eprintln!("problem: {p}");
    }
    if report.problem_count > report.problems.len() as u64 {
        eprintln!("... and {} more problems", report.problem_count - report.problems.len() as u64);
    }
    let summary = format!(
        "{} tables, {} rows, {} index entries, {} foreign key references",
        report.tables, report.rows, report.index_entries, report.references
    );
    if report.problem_count > 0 {
        eprintln!("{} problems in {summary}", report.problem_count);
        return ExitCode::FAILURE;
    }
    println!("tables ok: {summary}");
    ExitCode::SUCCESS
}
