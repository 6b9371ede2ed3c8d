//! Running other programs with a bound on every wait.
//!
//! Every external program (pgbench, psql, initdb, pg_ctl, `bulwark check`) runs through
//! [`run_bounded`]: its output goes to files (a pipe could fill and stall it), and the wait
//! polls until a deadline, after which the program is killed and the run fails by name.
//! The helpers for sizes of directories and for signals live here too.

use crate::Result;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How often a bounded wait looks at the program again.
pub const POLL_INTERVAL_MS: u64 = 20;

/// Numbers the output files of successive programs.
static NEXT_OUTPUT: AtomicU64 = AtomicU64::new(0);

/// What a finished program left behind.
#[derive(Debug)]
pub struct Finished {
    /// Its exit status.
    pub status: ExitStatus,
    /// Its standard output.
    pub stdout: String,
    /// Its standard error.
    pub stderr: String,
}

impl Finished {
    /// Standard output, then standard error.
    pub fn text(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

/// A program started by [`spawn_logged`], with its output files.
pub struct Running {
    child: std::process::Child,
    what: String,
    out: PathBuf,
    err: PathBuf,
}

/// Starts `cmd` with its output in files under `scratch`.
pub fn spawn_logged(cmd: &mut Command, scratch: &Path) -> Result<Running> {
    let n = NEXT_OUTPUT.fetch_add(1, Ordering::Relaxed);
    let out = scratch.join(format!("cmd-{n}.out"));
    let err = scratch.join(format!("cmd-{n}.err"));
    let what = format!("{cmd:?}");
    let stdout = std::fs::File::create(&out).map_err(|e| format!("creating {}: {e}", out.display()))?;
    let stderr = std::fs::File::create(&err).map_err(|e| format!("creating {}: {e}", err.display()))?;
    let child = cmd
        .stdin(std::process::Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .spawn()
        .map_err(|e| format!("starting {what}: {e}"))?;
    Ok(Running { child, what, out, err })
}

impl Running {
    /// Waits at most `limit` for the program to exit; past it, kills it and fails.
    pub fn wait(mut self, limit: Duration) -> Result<Finished> {
        let deadline = Instant::now() + limit;
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() >= deadline => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    return Err(format!("{} did not finish within {} s; killed", self.what, limit.as_secs()));
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(POLL_INTERVAL_MS)),
                Err(e) => return Err(format!("waiting for {}: {e}", self.what)),
            }
        };
        let stdout = std::fs::read_to_string(&self.out).unwrap_or_default();
        let stderr = std::fs::read_to_string(&self.err).unwrap_or_default();
        let _ = std::fs::remove_file(&self.out);
        let _ = std::fs::remove_file(&self.err);
        Ok(Finished { status, stdout, stderr })
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // Only a program that was not waited for is still running here.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs `cmd` to its end, at most `limit`.
pub fn run_bounded(cmd: &mut Command, scratch: &Path, limit: Duration) -> Result<Finished> {
    spawn_logged(cmd, scratch)?.wait(limit)
}

/// Runs `cmd` to its end, at most `limit`, and fails unless it exits with 0.
pub fn run_ok(cmd: &mut Command, scratch: &Path, limit: Duration) -> Result<Finished> {
    let what = format!("{cmd:?}");
    let done = run_bounded(cmd, scratch, limit)?;
    if !done.status.success() {
        return Err(format!("{what} failed ({}):\n{}", done.status, done.text()));
    }
    Ok(done)
}

/// Sends `signal` (a name such as "KILL" or "TERM") to the process `pid`.
pub fn signal(pid: u32, signal: &str) -> Result<()> {
    let status = Command::new("kill")
        .args([format!("-{signal}"), pid.to_string()])
        .stderr(std::process::Stdio::null())
        .status()
        .map_err(|e| format!("running kill: {e}"))?;
    if !status.success() {
        return Err(format!("kill -{signal} {pid} failed ({status})"));
    }
    Ok(())
}

/// Whether the process `pid` exists (a zombie counts as gone).
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat_fields(&stat).is_some_and(|(state, _)| state != "Z"),
        Err(_) => false,
    }
}

/// The processes whose parent is `pid`.
pub fn children(pid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let Some(child) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
        if stat_fields(&stat).is_some_and(|(_, ppid)| ppid == pid) {
            out.push(child);
        }
    }
    out
}

/// The state and parent pid from /proc/PID/stat (the command name, in parentheses, may
/// hold spaces, so the fields are read after its closing parenthesis).
fn stat_fields(stat: &str) -> Option<(&str, u32)> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some((state, ppid))
}

/// Waits at most `limit` until none of `pids` exists, not even as a zombie (an orphan's
/// zombie lasts until init reaps it, and PostgreSQL's lock file check takes a zombie
/// postmaster for a live one); returns whether they are all gone.
pub fn wait_gone(pids: &[u32], limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if !pids.iter().any(|&p| Path::new(&format!("/proc/{p}")).exists()) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(POLL_INTERVAL_MS));
    }
}

/// The bytes of all files under `dir` (0 if it does not exist).
pub fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    let mut total = 0;
    for entry in entries.flatten() {
        match entry.metadata() {
            Ok(m) if m.is_dir() => total += dir_bytes(&entry.path()),
            Ok(m) => total += m.len(),
            Err(_) => {}
        }
    }
    total
}

/// A free loopback port (free when asked; another program may take it before it is used).
pub fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| format!("binding a loopback port: {e}"))?;
    Ok(listener.local_addr().map_err(|e| format!("reading a bound port: {e}"))?.port())
}
