//! What the integration tests share: a real `bulwark start` process on free loopback ports,
//! temporary data directories, and output helpers.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};
use tokio_postgres::{Client, NoTls};

/// How long a server may take to start accepting connections.
pub const STARTUP_WAIT_MS_MAX: u64 = 30_000;
/// Starts tried before giving up (each with new ports).
pub const START_ATTEMPTS: usize = 5;
/// How long a server may take to exit after SIGTERM.
pub const SHUTDOWN_WAIT_MS_MAX: u64 = 10_000;

/// A running `bulwark start`, killed on drop.
pub struct ServerProcess {
    pub child: Child,
    pub port: u16,
    pub http_port: u16,
}

impl ServerProcess {
    /// Starts the server on free ports. It is ready once it prints its HTTP address (both
    /// listeners are bound by then); if a port was taken meanwhile by another test's server,
    /// it exits, and this tries again with new ports.
    pub fn start(dir: &Path, extra: &[&str]) -> ServerProcess {
        for _ in 0..START_ATTEMPTS {
            if let Some(server) = ServerProcess::try_start(dir, extra) {
                return server;
            }
        }
        panic!("bulwark did not start in {START_ATTEMPTS} attempts");
    }

    /// Starts the server as [`start`](Self::start) does, with its stderr (logs, and any
    /// panic message) appended to `stderr_file`.
    pub fn start_logging_to(dir: &Path, extra: &[&str], stderr_file: &Path) -> ServerProcess {
        for _ in 0..START_ATTEMPTS {
            if let Some(server) = ServerProcess::try_start_with(dir, extra, Some(stderr_file)) {
                return server;
            }
        }
        panic!("bulwark did not start in {START_ATTEMPTS} attempts");
    }

    pub fn try_start(dir: &Path, extra: &[&str]) -> Option<ServerProcess> {
        ServerProcess::try_start_with(dir, extra, None)
    }

    fn try_start_with(dir: &Path, extra: &[&str], stderr_file: Option<&Path>) -> Option<ServerProcess> {
        use std::io::{BufRead, BufReader};
        let stderr = match stderr_file {
            Some(path) => Stdio::from(
                std::fs::OpenOptions::new().create(true).append(true).open(path).expect("open the stderr file"),
            ),
            None => Stdio::inherit(),
        };
        let port = free_port();
        let http_port = free_port();
        let mut child = Command::new(env!("CARGO_BIN_EXE_bulwark"))
            .arg("start")
            .arg("--data-dir")
            .arg(dir)
            .arg("--pg-addr")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--http-addr")
            .arg(format!("127.0.0.1:{http_port}"))
            .args(["--log-level", "warn"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("start bulwark");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if line.starts_with("metrics at:") {
                    let _ = tx.send(());
                }
            }
        });
        let mut server = ServerProcess { child, port, http_port };
        let deadline = Instant::now() + Duration::from_millis(STARTUP_WAIT_MS_MAX);
        loop {
            if rx.recv_timeout(Duration::from_millis(50)).is_ok() {
                return Some(server);
            }
            if server.child.try_wait().unwrap().is_some() {
                return None; // a port was taken: try others
            }
            assert!(Instant::now() < deadline, "bulwark did not start listening on port {port}");
        }
    }

    /// One psql `-c` statement's unaligned output, trimmed; panics if psql fails.
    pub fn query(&self, sql: &str) -> String {
        let out = self.psql(&["-c", sql]);
        assert!(out.status.success(), "{sql}: {}", stderr(&out));
        stdout(&out).trim().to_string()
    }

    /// pgbench's tables after a run: the sums of account, teller and branch balances, of the
    /// history's deltas, and the number of history rows.
    pub fn pgbench_sums(&self) -> [i64; 5] {
        let sums = self.query(
            "SELECT (SELECT sum(abalance) FROM pgbench_accounts) || ' ' || \
                    (SELECT sum(tbalance) FROM pgbench_tellers) || ' ' || \
                    (SELECT sum(bbalance) FROM pgbench_branches) || ' ' || \
                    (SELECT sum(delta) FROM pgbench_history) || ' ' || \
                    (SELECT count(*) FROM pgbench_history)",
        );
        let parts: Vec<i64> = sums.split(' ').map(|p| p.parse().unwrap_or_else(|_| panic!("sums: {sums}"))).collect();
        parts.try_into().unwrap_or_else(|_| panic!("sums: {sums}"))
    }

    pub fn psql(&self, args: &[&str]) -> Output {
        self.psql_with(args, &[])
    }

    /// [`ServerProcess::psql`] with `PGOPTIONS` set to `options` (settings the session
    /// starts with).
    pub fn psql_options(&self, options: &str, args: &[&str]) -> Output {
        self.psql_with(args, &[("PGOPTIONS", options)])
    }

    /// One statement's output from a session that stays on this node even on a follower
    /// (it starts with stale reads, which a follower serves itself); panics if psql fails.
    pub fn query_here(&self, sql: &str) -> String {
        let out = self.psql_options("-c bulwark.read_consistency=stale", &["-c", sql]);
        assert!(out.status.success(), "{sql}: {}", stderr(&out));
        stdout(&out).trim().to_string()
    }

    fn psql_with(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let port = self.port.to_string();
        Command::new("psql")
            .args(["-h", "127.0.0.1", "-p", &port, "-U", "bulwark", "-X", "-A", "-t", "-q"])
            .args(args)
            .env("PGCONNECT_TIMEOUT", "10")
            .envs(env.iter().copied())
            .output()
            .expect("psql must be installed (apt-get install postgresql-client)")
    }

    pub async fn connect(&self) -> Client {
        self.connect_to("bulwark").await.expect("connect")
    }

    pub async fn connect_to(&self, dbname: &str) -> Result<Client, tokio_postgres::Error> {
        let (client, connection) = tokio_postgres::Config::new()
            .host("127.0.0.1")
            .port(self.port)
            .user("bulwark")
            .dbname(dbname)
            .connect(NoTls)
            .await?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(client)
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let killed = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        assert!(killed.success());
        let deadline = Instant::now() + Duration::from_millis(SHUTDOWN_WAIT_MS_MAX);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "bulwark did not exit within {SHUTDOWN_WAIT_MS_MAX} ms of SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A fresh data directory, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("bulwark-server-test-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The number after `label` on its line of pgbench's report.
pub fn figure(report: &str, label: &str) -> f64 {
    let line = report.lines().find(|l| l.starts_with(label)).unwrap_or_else(|| panic!("no {label:?} in:\n{report}"));
    let value = line[label.len()..].split_whitespace().next().unwrap();
    value.parse().unwrap_or_else(|_| panic!("bad figure in {line:?}"))
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

impl TempDir {
    /// The directory's path.
    pub fn path(&self) -> &Path {
        &self.0
    }
}
