//! pgbench and psql against either server, and what their reports say.
//!
//! Throughput is pgbench's own "tps = ... (without initial connection time)". Latency
//! percentiles come from its per-transaction log (`-l --log-prefix`), one line per
//! transaction whose third field is the transaction's latency in microseconds; the files
//! are read, sorted and removed after each run.

use crate::cmd::{run_bounded, run_ok};
use crate::servers::Target;
use crate::stats::Latencies;
use crate::Result;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// How long `pgbench -i` may take (scale 10 writes a million rows through COPY).
pub const INIT_WAIT_S_MAX: u64 = 1_800;
/// How much longer than its `-T` a pgbench run may take (connections, the final vacuum).
pub const RUN_GRACE_S: u64 = 120;
/// How long one psql call may take.
pub const PSQL_WAIT_S_MAX: u64 = 300;
/// How long a client waits to connect.
pub const CONNECT_TIMEOUT_S: &str = "10";
/// Latencies kept from one run's log (past this, the rest of the log is not read).
pub const LOG_LINES_MAX: usize = 20_000_000;

/// What one pgbench run measured.
#[derive(Debug, Clone)]
pub struct Report {
    /// Transactions per second, without connection time.
    pub tps: f64,
    /// The latencies of the logged transactions.
    pub latencies: Latencies,
    /// Transactions that failed.
    pub failed: u64,
    /// Anything unusual: a non-zero exit, aborted clients.
    pub note: String,
}

/// The connection options every client program gets.
fn client(program: &str, t: &Target) -> Command {
    let mut c = Command::new(program);
    c.args(["-h", "127.0.0.1", "-p", &t.port.to_string(), "-U", t.user]).env("PGCONNECT_TIMEOUT", CONNECT_TIMEOUT_S);
    c
}

/// Runs SQL through psql; fails on any error.
pub fn psql(t: &Target, sql: &str, scratch: &Path) -> Result<String> {
    let mut c = client("psql", t);
    c.args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql, t.database]);
    Ok(run_ok(&mut c, scratch, Duration::from_secs(PSQL_WAIT_S_MAX))?.stdout)
}

/// `pgbench -i -s scale`.
pub fn init(t: &Target, scale: u32, scratch: &Path) -> Result<()> {
    let mut c = client("pgbench", t);
    c.args(["-i", "-s", &scale.to_string(), t.database]);
    run_ok(&mut c, scratch, Duration::from_secs(INIT_WAIT_S_MAX))?;
    Ok(())
}

/// Starts a pgbench run in the background (for the crash rows); its end is the caller's.
pub fn spawn(t: &Target, args: &[&str], scratch: &Path) -> Result<crate::cmd::Running> {
    let mut c = client("pgbench", t);
    c.args(args).arg(t.database);
    crate::cmd::spawn_logged(&mut c, scratch)
}

/// One measured run: `args` plus `-T seconds` and the per-transaction log.
pub fn run(t: &Target, args: &[&str], seconds: u64, scratch: &Path) -> Result<Report> {
    let log_dir = scratch.join("pgbench-log");
    let _ = std::fs::remove_dir_all(&log_dir);
    std::fs::create_dir_all(&log_dir).map_err(|e| format!("creating {}: {e}", log_dir.display()))?;
    let prefix = log_dir.join("tx");
    let mut c = client("pgbench", t);
    c.args(args).args(["-T", &seconds.to_string(), "-l"]).arg(format!("--log-prefix={}", prefix.display()));
    c.arg(t.database);
    let what = format!("pgbench {} on {}", args.join(" "), t.name);
    let done = run_bounded(&mut c, scratch, Duration::from_secs(seconds + RUN_GRACE_S))?;
    let text = done.text();
    let Some(tps) = figure(&text, "tps = ") else {
        return Err(format!("{what} reported no tps ({}):\n{text}", done.status));
    };
    let failed = figure(&text, "number of failed transactions: ").unwrap_or(0.0) as u64;
    let mut note = String::new();
    if !done.status.success() {
        note = format!("pgbench exited with {}", done.status.code().unwrap_or(-1));
        if let Some(line) = text.lines().find(|l| l.contains("aborted")) {
            note.push_str(&format!(": {}", line.trim()));
        }
    }
    let latencies = read_log(&log_dir)?;
    let _ = std::fs::remove_dir_all(&log_dir);
    Ok(Report { tps, latencies, failed, note })
}

/// The number after `label` on the first line that holds it.
fn figure(report: &str, label: &str) -> Option<f64> {
    let line = report.lines().find(|l| l.contains(label))?;
    let rest = &line[line.find(label)? + label.len()..];
    rest.split_whitespace().next()?.parse().ok()
}

/// The latencies of every logged transaction in `dir` (one file per pgbench thread).
fn read_log(dir: &Path) -> Result<Latencies> {
    let mut lat = Latencies::default();
    let entries = std::fs::read_dir(dir).map_err(|e| format!("reading {}: {e}", dir.display()))?;
    for entry in entries.flatten() {
        let text = std::fs::read_to_string(entry.path()).map_err(|e| format!("reading {:?}: {e}", entry.path()))?;
        for line in text.lines() {
            if lat.len() >= LOG_LINES_MAX {
                return Ok(lat);
            }
            // client_id transaction_no time script_no time_epoch time_us; a failed or skipped
            // transaction has a word instead of a time.
            if let Some(Ok(us)) = line.split_whitespace().nth(2).map(str::parse::<u64>) {
                lat.push(Duration::from_micros(us));
            }
        }
    }
    Ok(lat)
}

#[cfg(test)]
mod tests {
    use super::figure;

    #[test]
    fn figures_are_read_after_their_label() {
        let report = "number of failed transactions: 0 (0.000%)\nlatency average = 1.234 ms\n\
                      tps = 812.345678 (without initial connection time)\n";
        assert_eq!(figure(report, "tps = "), Some(812.345678));
        assert_eq!(figure(report, "number of failed transactions: "), Some(0.0));
        assert_eq!(figure(report, "nothing"), None);
    }
}
