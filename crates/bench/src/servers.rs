//! The two servers under test, as child processes: `bulwark start` and a PostgreSQL 15
//! cluster made with initdb and run with pg_ctl.
//!
//! Both listen on free loopback ports and trust local connections. Both are killed when
//! their value is dropped (also while a panic unwinds), so a failed run leaves no server
//! behind. Each can be started in two ways:
//!
//! - `start`: for the measurements that follow; waits for readiness (Bulwark's
//!   "metrics at:" line, `pg_ctl -w`).
//! - `start_timed`: for the recovery and cold-start rows; starts the server and returns the
//!   time until it answers `SELECT 1` through [`crate::wire`], measured the same way for
//!   both.
//!
//! PostgreSQL refuses to run as root, so its files belong to a system user ([`PG_OS_USER`],
//! created if missing) and its programs run through `runuser`.

use crate::cmd::{self, run_ok};
use crate::Result;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// PostgreSQL 15's server programs.
pub const PG_BIN: &str = "/usr/lib/postgresql/15/bin";
/// The system user that owns and runs the PostgreSQL cluster.
pub const PG_OS_USER: &str = "bulwarkpg";
/// PostgreSQL's connections allowed at once (pgbench's 32 clients and the probes fit).
pub const PG_MAX_CONNECTIONS: usize = 120;
/// How long a server may take to become ready, including crash recovery.
pub const START_WAIT_MS_MAX: u64 = 300_000;
/// Bulwark starts tried before giving up (each with new ports: one may be taken meanwhile).
pub const START_ATTEMPTS: usize = 5;
/// How long a server may take to stop cleanly before it is killed.
pub const STOP_WAIT_MS_MAX: u64 = 60_000;
/// How long killed processes may take to disappear.
pub const KILL_WAIT_MS_MAX: u64 = 10_000;
/// How long initdb may take.
pub const INITDB_WAIT_MS_MAX: u64 = 300_000;
/// How long a pg_ctl or runuser call that returns at once may take.
pub const PG_CTL_WAIT_MS_MAX: u64 = 30_000;

/// Who connects to a server, and to which database.
#[derive(Debug, Clone)]
pub struct Target {
    /// "Bulwark" or "PostgreSQL".
    pub name: &'static str,
    /// The loopback port.
    pub port: u16,
    /// The user to connect as.
    pub user: &'static str,
    /// The database to connect to.
    pub database: &'static str,
}

/// A `bulwark start` child process.
pub struct Bulwark {
    bin: PathBuf,
    /// The data directory.
    pub dir: PathBuf,
    port: u16,
    http_port: u16,
    /// Standard error of every start, appended.
    log: PathBuf,
    child: Option<Child>,
}

impl Bulwark {
    /// A server for `dir` (not started), run from the binary `bin`.
    pub fn new(bin: &Path, dir: &Path, log: &Path) -> Result<Bulwark> {
        Ok(Bulwark {
            bin: bin.to_path_buf(),
            dir: dir.to_path_buf(),
            port: cmd::free_port()?,
            http_port: cmd::free_port()?,
            log: log.to_path_buf(),
            child: None,
        })
    }

    /// How to connect to it.
    pub fn target(&self) -> Target {
        Target { name: "Bulwark", port: self.port, user: "bulwark", database: "bulwark" }
    }

    /// Starts it and waits for its readiness line; tries new ports if it exits at once (a
    /// port was taken).
    pub fn start(&mut self) -> Result<()> {
        for _ in 0..START_ATTEMPTS {
            let ready = self.spawn()?;
            let deadline = Instant::now() + Duration::from_millis(START_WAIT_MS_MAX);
            loop {
                if ready.recv_timeout(Duration::from_millis(cmd::POLL_INTERVAL_MS)).is_ok() {
                    return Ok(());
                }
                if !self.running() {
                    break;
                }
                if Instant::now() >= deadline {
                    return Err(format!(
                        "bulwark did not start within {START_WAIT_MS_MAX} ms; see {}",
                        self.log.display()
                    ));
                }
            }
            self.child = None;
            self.port = cmd::free_port()?;
            self.http_port = cmd::free_port()?;
        }
        Err(format!("bulwark exited at start {START_ATTEMPTS} times; see {}", self.log.display()))
    }

    /// Starts it and returns the time until it answers `SELECT 1`.
    pub fn start_timed(&mut self) -> Result<Duration> {
        let started = Instant::now();
        self.spawn()?;
        let target = self.target();
        let limit = Duration::from_millis(START_WAIT_MS_MAX);
        crate::wire::wait_for_select1(target.port, target.user, target.database, limit, || self.running())?;
        Ok(started.elapsed())
    }

    /// Starts the process; the receiver gets a message when it prints its readiness line.
    fn spawn(&mut self) -> Result<mpsc::Receiver<()>> {
        assert!(self.child.is_none(), "bulwark is already running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .map_err(|e| format!("opening {}: {e}", self.log.display()))?;
        let mut child = Command::new(&self.bin)
            .arg("start")
            .arg("--data-dir")
            .arg(&self.dir)
            .arg("--pg-addr")
            .arg(format!("127.0.0.1:{}", self.port))
            .arg("--http-addr")
            .arg(format!("127.0.0.1:{}", self.http_port))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("starting {}: {e}", self.bin.display()))?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let (tx, rx) = mpsc::channel();
        // Reads to the end, so the server never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if line.starts_with("metrics at:") {
                    let _ = tx.send(());
                }
            }
        });
        self.child = Some(child);
        Ok(rx)
    }

    /// Whether the process is still running.
    fn running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// SIGKILL, as a crash would.
    pub fn kill9(&mut self) -> Result<()> {
        let mut child = self.child.take().ok_or("bulwark is not running")?;
        child.kill().map_err(|e| format!("kill -9 bulwark: {e}"))?;
        child.wait().map_err(|e| format!("waiting for the killed bulwark: {e}"))?;
        Ok(())
    }

    /// SIGTERM (running statements finish, then a checkpoint), bounded; SIGKILL past it.
    pub fn stop(&mut self) -> Result<()> {
        let Some(mut child) = self.child.take() else { return Ok(()) };
        cmd::signal(child.id(), "TERM")?;
        let deadline = Instant::now() + Duration::from_millis(STOP_WAIT_MS_MAX);
        loop {
            match child.try_wait() {
                Ok(Some(_)) => return Ok(()),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(cmd::POLL_INTERVAL_MS));
                }
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(format!("bulwark did not stop within {STOP_WAIT_MS_MAX} ms of SIGTERM; killed"));
                }
            }
        }
    }
}

impl Drop for Bulwark {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A PostgreSQL 15 cluster in a directory of its own.
pub struct Postgres {
    /// The directory (owned by [`PG_OS_USER`]): data/, the server log, the socket.
    dir: PathBuf,
    data: PathBuf,
    log: PathBuf,
    port: u16,
    /// Where output files of pg_ctl and friends go.
    scratch: PathBuf,
    /// Whether a postmaster may be running (set by a start, cleared by a stop or a kill).
    running: bool,
}

impl Postgres {
    /// Makes a cluster in `dir` with initdb (which fsyncs its files) and writes the
    /// benchmark's settings into its postgresql.conf; returns it and the time initdb took.
    pub fn init(dir: &Path, scratch: &Path, shared_buffers_bytes: usize) -> Result<(Postgres, Duration)> {
        if !Path::new(PG_BIN).join("initdb").exists() {
            return Err(format!("PostgreSQL 15 is missing in {PG_BIN} (apt-get install postgresql-15)"));
        }
        ensure_os_user(scratch)?;
        std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        run_ok(Command::new("chown").args([PG_OS_USER]).arg(dir), scratch, pg_ctl_wait())?;
        let pg = Postgres {
            dir: dir.to_path_buf(),
            data: dir.join("data"),
            log: dir.join("server.log"),
            port: cmd::free_port()?,
            scratch: scratch.to_path_buf(),
            running: false,
        };
        let started = Instant::now();
        run_ok(
            pg.as_user("initdb").arg("-D").arg(&pg.data).args(["-U", "postgres", "-A", "trust", "-E", "UTF8"]),
            scratch,
            Duration::from_millis(INITDB_WAIT_MS_MAX),
        )?;
        let initdb = started.elapsed();
        let settings = format!(
            "\n# bulwark-bench\nport = {}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\n\
             fsync = on\nsynchronous_commit = on\nfull_page_writes = on\nshared_buffers = '{}kB'\n\
             max_connections = {PG_MAX_CONNECTIONS}\n",
            pg.port,
            pg.dir.display(),
            shared_buffers_bytes >> 10
        );
        let conf = pg.data.join("postgresql.conf");
        let mut text = std::fs::read_to_string(&conf).map_err(|e| format!("reading {}: {e}", conf.display()))?;
        text.push_str(&settings);
        std::fs::write(&conf, text).map_err(|e| format!("writing {}: {e}", conf.display()))?;
        Ok((pg, initdb))
    }

    /// How to connect to it.
    pub fn target(&self) -> Target {
        Target { name: "PostgreSQL", port: self.port, user: "postgres", database: "postgres" }
    }

    /// A PostgreSQL program run as [`PG_OS_USER`].
    fn as_user(&self, program: &str) -> Command {
        let mut c = Command::new("runuser");
        c.args(["-u", PG_OS_USER, "--"]).arg(Path::new(PG_BIN).join(program));
        c
    }

    /// Starts it and waits until pg_ctl reports it ready.
    pub fn start(&mut self) -> Result<()> {
        self.running = true;
        let wait_s = (START_WAIT_MS_MAX / 1000).to_string();
        let mut c = self.as_user("pg_ctl");
        c.arg("-D").arg(&self.data).arg("-l").arg(&self.log).args(["-w", "-t", &wait_s, "start"]);
        run_ok(&mut c, &self.scratch, Duration::from_millis(START_WAIT_MS_MAX + PG_CTL_WAIT_MS_MAX))?;
        Ok(())
    }

    /// Starts it (pg_ctl without waiting) and returns the time until it answers `SELECT 1`.
    pub fn start_timed(&mut self) -> Result<Duration> {
        let started = Instant::now();
        self.running = true;
        let mut c = self.as_user("pg_ctl");
        c.arg("-D").arg(&self.data).arg("-l").arg(&self.log).arg("start");
        run_ok(&mut c, &self.scratch, pg_ctl_wait())?;
        let t = self.target();
        let limit = Duration::from_millis(START_WAIT_MS_MAX);
        let pid_file = self.data.join("postmaster.pid");
        let mut seen_pid = false;
        // Until the postmaster has written its pid file, it counts as starting.
        let still_running = || match read_pid(&pid_file) {
            Some(pid) => {
                seen_pid = true;
                cmd::alive(pid)
            }
            None => !seen_pid,
        };
        crate::wire::wait_for_select1(t.port, t.user, t.database, limit, still_running)?;
        Ok(started.elapsed())
    }

    /// The postmaster's process id, from its pid file.
    fn postmaster_pid(&self) -> Result<u32> {
        read_pid(&self.data.join("postmaster.pid")).ok_or_else(|| "no postmaster.pid: is PostgreSQL running?".into())
    }

    /// SIGKILL to the postmaster, then at once to the processes it had started (left alone,
    /// they would exit by themselves when they notice; until they do, a restart is refused).
    pub fn kill9(&mut self) -> Result<()> {
        let pid = self.postmaster_pid()?;
        let backends = cmd::children(pid);
        cmd::signal(pid, "KILL")?;
        for &b in &backends {
            let _ = cmd::signal(b, "KILL");
        }
        self.running = false;
        let mut all = backends;
        all.push(pid);
        if !cmd::wait_gone(&all, Duration::from_millis(KILL_WAIT_MS_MAX)) {
            return Err(format!("PostgreSQL's processes still exist {KILL_WAIT_MS_MAX} ms after SIGKILL"));
        }
        Ok(())
    }

    /// A fast shutdown (rolls back sessions, checkpoints), bounded.
    pub fn stop(&mut self) -> Result<()> {
        if !self.running {
            return Ok(());
        }
        let wait_s = (STOP_WAIT_MS_MAX / 1000).to_string();
        let mut c = self.as_user("pg_ctl");
        c.arg("-D").arg(&self.data).args(["-m", "fast", "-w", "-t", &wait_s, "stop"]);
        // Still running if this fails: the drop then stops it the hard way.
        run_ok(&mut c, &self.scratch, Duration::from_millis(STOP_WAIT_MS_MAX + PG_CTL_WAIT_MS_MAX))?;
        self.running = false;
        Ok(())
    }

    /// The bytes in pg_wal/.
    pub fn wal_bytes(&self) -> u64 {
        cmd::dir_bytes(&self.data.join("pg_wal"))
    }

    /// The server log's length, to read only what a later start adds.
    pub fn log_len(&self) -> u64 {
        std::fs::metadata(&self.log).map(|m| m.len()).unwrap_or(0)
    }

    /// The WAL replayed by crash recovery, in bytes: "redo done at" minus "redo starts at",
    /// from the log written after `log_from`. None if the log shows no redo.
    pub fn redo_bytes(&self, log_from: u64) -> Option<u64> {
        let log = std::fs::read(&self.log).ok()?;
        let text = String::from_utf8_lossy(log.get(log_from as usize..)?);
        let lsn_after = |label: &str| {
            let line = text.lines().rev().find(|l| l.contains(label))?;
            let rest = &line[line.find(label)? + label.len()..];
            parse_lsn(rest.split_whitespace().next()?)
        };
        let start = lsn_after("redo starts at ")?;
        let done = lsn_after("redo done at ")?;
        done.checked_sub(start)
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if !self.running {
            return;
        }
        let mut c = self.as_user("pg_ctl");
        c.arg("-D").arg(&self.data).args(["-m", "immediate", "stop"]);
        let _ = cmd::run_bounded(&mut c, &self.scratch, pg_ctl_wait());
        if let Ok(pid) = self.postmaster_pid() {
            if cmd::alive(pid) {
                let _ = cmd::signal(pid, "KILL");
            }
        }
    }
}

fn pg_ctl_wait() -> Duration {
    Duration::from_millis(PG_CTL_WAIT_MS_MAX)
}

/// The first line of a pid file.
fn read_pid(path: &Path) -> Option<u32> {
    std::fs::read_to_string(path).ok()?.lines().next()?.trim().parse().ok()
}

/// A log sequence number written as PostgreSQL does, "hi/lo" in hexadecimal.
fn parse_lsn(text: &str) -> Option<u64> {
    let text = text.trim_end_matches(|c: char| !c.is_ascii_hexdigit());
    let (hi, lo) = text.split_once('/')?;
    Some((u64::from_str_radix(hi, 16).ok()? << 32) | u64::from_str_radix(lo, 16).ok()?)
}

/// Creates the system user that runs PostgreSQL, unless it exists.
fn ensure_os_user(scratch: &Path) -> Result<()> {
    let exists = Command::new("id").args(["-u", PG_OS_USER]).stdout(Stdio::null()).stderr(Stdio::null()).status();
    if exists.map_err(|e| format!("running id: {e}"))?.success() {
        return Ok(());
    }
    let mut c = Command::new("useradd");
    c.args(["--system", "--no-create-home", "--shell", "/bin/false", PG_OS_USER]);
    run_ok(&mut c, scratch, pg_ctl_wait())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_lsn;

    #[test]
    fn lsn_is_high_and_low_halves() {
        assert_eq!(parse_lsn("0/1A2B3C"), Some(0x1A2B3C));
        assert_eq!(parse_lsn("1/0,"), Some(1 << 32));
        assert_eq!(parse_lsn("nonsense"), None);
    }
}
