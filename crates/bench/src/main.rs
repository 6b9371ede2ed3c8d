//! `bulwark-bench compare`: Bulwark side by side with PostgreSQL 15 and SQLite, in one run.
//!
//! # What one run does
//!
//! ```text
//!   start bulwark (release binary beside this one)   start PostgreSQL 15 (initdb, pg_ctl)
//!              \                                      /
//!               pgbench -i -s 10 on each, then for every workload:
//!                 Bulwark row, then PostgreSQL row
//!                   tpcb-like, 1 / 8 / 32 clients, -M prepared
//!                   select-only, 8 clients
//!                   single-row INSERTs into a BIGSERIAL table, 1 / 16 clients
//!               crash: tpcb-like load, kill -9, restart, time to the first SELECT 1
//!               stop both
//!   cold start: empty directory to the first answered query (PostgreSQL: initdb + start)
//!   embedded: Bulwark in process against SQLite (rusqlite): point reads, durable inserts
//! ```
//!
//! Then it prints one table (see [`report`]) and, with `--out`, writes it into
//! docs/benchmarks.md with the machine's description and the exact command. `--runs N`
//! repeats everything N times and adds the spread of each row. `--quick` is a smoke test
//! of the program itself: short runs at scale 1.
//!
//! # Fairness
//!
//! Both servers run at once on the same machine and disk, on loopback ports, durable on
//! every commit (PostgreSQL: fsync=on, synchronous_commit=on, full_page_writes=on), with
//! PostgreSQL's shared_buffers and SQLite's page cache equal to Bulwark's buffer pool.
//! The same pgbench binary drives both.
//!
//! # Left out
//!
//! Pinning servers and clients to CPUs, warm-up runs, and statistics beyond min-max over
//! runs: on a 2-core machine the client shares the CPUs with the server, for both servers
//! alike.

mod cmd;
mod embedded;
mod pgbench;
mod report;
mod servers;
mod stats;
mod wire;

use clap::{Parser, Subcommand};

/// The same allocator as the `bulwark` binary (jemalloc), so that the embedded rows measure
/// Bulwark as it runs in the server. SQLite allocates through libc's malloc either way.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;
use report::{Figure, Row};
use servers::{Bulwark, Postgres, Target};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

/// Errors are messages that say what failed.
pub type Result<T> = std::result::Result<T, String>;

#[derive(Parser)]
#[command(name = "bulwark-bench", version, about = "Bulwark side by side with PostgreSQL 15 and SQLite")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run every workload on Bulwark and on PostgreSQL 15 / SQLite; print one table.
    Compare(CompareArgs),
}

#[derive(clap::Args)]
struct CompareArgs {
    /// A smoke test of this program: 3-second pgbench runs at scale 1, 100,000 embedded rows.
    #[arg(long)]
    quick: bool,
    /// Write the table, the machine and the command into this Markdown file (its section
    /// "Side by side with PostgreSQL 15 and SQLite" is replaced or appended).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Repeat the whole comparison this many times and report the spread.
    #[arg(long, default_value_t = 1)]
    runs: u32,
    /// Scratch directory for the data directories (created; removed at the end).
    #[arg(long)]
    dir: Option<PathBuf>,
}

/// The most runs `--runs` accepts.
const RUNS_MAX: u32 = 10;
/// pgbench runs a little longer than the crash load, so it is still running at the kill.
const CRASH_PGBENCH_EXTRA_S: u64 = 60;
/// How long pgbench may take to give up after its server was killed.
const CRASH_CLIENT_EXIT_WAIT_S: u64 = 30;
/// How long copying a killed server's data directory may take.
const COPY_WAIT_S_MAX: u64 = 600;
/// How long `bulwark check` may take on that copy.
const CHECK_WAIT_S_MAX: u64 = 900;
/// The pgbench script of the insert rows.
const INSERT_SCRIPT: &str = "\\set v random(1, 1000000000)\n\
    INSERT INTO bench_insert (val, note) VALUES (:v, 'note abcdefghijklmnopqrstuvwxyz0123456789');\n";
/// The table the insert script writes.
const INSERT_TABLE: &str =
    "CREATE TABLE bench_insert (id BIGSERIAL PRIMARY KEY, val BIGINT NOT NULL, note TEXT NOT NULL)";

/// The sizes of one run.
#[derive(Debug, Clone, Copy)]
struct Plan {
    quick: bool,
    /// Seconds per pgbench run.
    pgbench_seconds: u64,
    /// pgbench's scale factor (100,000 accounts each).
    scale: u32,
    /// Rows loaded for the embedded point reads.
    embedded_rows: u64,
    /// Seconds of each embedded measurement.
    embedded_seconds: u64,
    /// Seconds of tpcb-like load before the kill.
    crash_load_seconds: u64,
}

impl Plan {
    fn new(quick: bool) -> Plan {
        if quick {
            Plan {
                quick,
                pgbench_seconds: 3,
                scale: 1,
                embedded_rows: 100_000,
                embedded_seconds: 2,
                crash_load_seconds: 3,
            }
        } else {
            Plan {
                quick,
                pgbench_seconds: 20,
                scale: 10,
                embedded_rows: 1_000_000,
                embedded_seconds: 10,
                crash_load_seconds: 10,
            }
        }
    }
}

fn main() -> ExitCode {
    let Cmd::Compare(args) = Cli::parse().command;
    match compare(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bulwark-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn compare(args: &CompareArgs) -> Result<()> {
    if args.runs == 0 || args.runs > RUNS_MAX {
        return Err(format!("--runs must be 1 to {RUNS_MAX}"));
    }
    let plan = Plan::new(args.quick);
    let exe = std::env::current_exe().map_err(|e| format!("finding this program: {e}"))?;
    let bin = exe.with_file_name("bulwark");
    if !bin.is_file() {
        return Err(format!("{} is missing: cargo build --release -p bulwark", bin.display()));
    }
    let work = args.dir.clone().unwrap_or_else(|| std::env::temp_dir().join("bulwark-bench-compare"));
    std::fs::create_dir_all(&work).map_err(|e| format!("creating {}: {e}", work.display()))?;
    if report::fs_type(&work).as_deref() == Some("tmpfs") {
        return Err(format!("{} is on tmpfs, where fsync costs nothing: pass --dir on a disk", work.display()));
    }
    let machine = report::machine(&work);
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let date = report::now_utc();
    eprintln!("machine: {machine}");

    let mut runs = Vec::new();
    for n in 1..=args.runs {
        let run_dir = work.join(format!("run-{n}"));
        let _ = std::fs::remove_dir_all(&run_dir);
        std::fs::create_dir_all(&run_dir).map_err(|e| format!("creating {}: {e}", run_dir.display()))?;
        // A failed run's directory stays, with the servers' logs.
        let rows = run_once(&plan, &bin, &run_dir).map_err(|e| format!("{e}\n(logs kept in {})", run_dir.display()))?;
        let _ = std::fs::remove_dir_all(&run_dir);
        println!("\nRun {n} of {}:\n\n{}", args.runs, report::table(&rows));
        runs.push(rows);
    }
    if runs.len() > 1 {
        println!("Spread over {} runs:\n\n{}", runs.len(), report::spread(&runs));
    }
    let _ = std::fs::remove_dir(&work);
    if let Some(out) = &args.out {
        report::write_section(out, &section(&plan, &machine, &command, &date, &runs))?;
        eprintln!("wrote the section \"{}\" of {}", report::SECTION_HEADING, out.display());
    }
    Ok(())
}

/// One whole comparison in `dir`.
fn run_once(plan: &Plan, bin: &Path, dir: &Path) -> Result<Vec<Row>> {
    let pool_bytes = storage::StoreOptions::default().pool_bytes;
    let scratch = dir.join("scratch");
    std::fs::create_dir_all(&scratch).map_err(|e| format!("creating {}: {e}", scratch.display()))?;
    let mut rows = Vec::new();
    {
        let mut b = Bulwark::new(bin, &dir.join("bulwark"), &dir.join("bulwark.log"))?;
        b.start()?;
        let (mut pg, _) = Postgres::init(&dir.join("postgres"), &scratch, pool_bytes)?;
        pg.start()?;
        let targets = [b.target(), pg.target()];
        for t in &targets {
            eprintln!("{}: pgbench -i -s {}", t.name, plan.scale);
            pgbench::init(t, plan.scale, &scratch)?;
        }
        rows.extend(pgbench_rows(plan, &targets, &scratch)?);
        rows.push(crash_row(plan, bin, &mut b, &mut pg, dir, &scratch));
        stop(b.stop());
        stop(pg.stop());
    }
    rows.push(cold_start_row(bin, dir, &scratch, pool_bytes)?);
    rows.extend(embedded_rows(plan, dir, pool_bytes)?);
    Ok(rows)
}

/// A clean stop that fails is reported, not fatal: the server is killed when dropped.
fn stop(result: Result<()>) {
    if let Err(e) = result {
        eprintln!("warning: {e}");
    }
}

/// Every pgbench workload, Bulwark then PostgreSQL.
fn pgbench_rows(plan: &Plan, targets: &[Target; 2], scratch: &Path) -> Result<Vec<Row>> {
    let script = scratch.join("insert.sql");
    std::fs::write(&script, INSERT_SCRIPT).map_err(|e| format!("writing {}: {e}", script.display()))?;
    let script = script.to_string_lossy().into_owned();
    let mut workloads: Vec<(String, Vec<String>)> = Vec::new();
    let owned = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let clients = |c: &str| if c == "1" { "1 client".to_string() } else { format!("{c} clients") };
    for c in ["1", "8", "32"] {
        workloads.push((format!("pgbench tpcb-like, {}", clients(c)), owned(&["-M", "prepared", "-c", c])));
    }
    workloads.push(("pgbench select-only (-S), 8 clients".into(), owned(&["-S", "-M", "prepared", "-c", "8"])));
    for c in ["1", "16"] {
        let args = owned(&["-n", "-f", &script, "-M", "prepared", "-c", c]);
        workloads.push((format!("pgbench single-row INSERT (BIGSERIAL key), {}", clients(c)), args));
    }
    let mut rows = Vec::new();
    let mut table_made = false;
    for (label, args) in workloads {
        if args.contains(&script) && !table_made {
            for t in targets {
                pgbench::psql(t, INSERT_TABLE, scratch)?;
            }
            table_made = true;
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut figures = Vec::new();
        let mut notes = Vec::new();
        for t in targets {
            eprintln!("{}: {label}", t.name);
            match pgbench::run(t, &args, plan.pgbench_seconds, scratch) {
                Ok(r) => {
                    eprintln!("  {:.0} tps, {} transactions logged", r.tps, r.latencies.len());
                    if r.failed > 0 || !r.note.is_empty() {
                        notes.push(format!("{}: {} failed {}", t.name, r.failed, r.note));
                    }
                    figures.push(Figure::rate(r.tps, "tps", &r.latencies));
                }
                Err(e) => {
                    eprintln!("  {e}");
                    figures.push(Figure::Failed(e));
                }
            }
        }
        let theirs = figures.pop().expect("two targets");
        let bulwark = figures.pop().expect("two targets");
        rows.push(Row { workload: label, other: "PostgreSQL", bulwark, theirs, note: notes.join("; ") });
    }
    Ok(rows)
}

/// tpcb-like load on each server, kill -9, and the time until it answers again.
fn crash_row(plan: &Plan, bin: &Path, b: &mut Bulwark, pg: &mut Postgres, dir: &Path, scratch: &Path) -> Row {
    let (bulwark, b_note) = match crash_bulwark(plan, bin, b, dir, scratch) {
        Ok((t, note)) => (Figure::Time(t), note),
        Err(e) => (Figure::Failed(e), String::new()),
    };
    let (theirs, pg_note) = match crash_postgres(plan, pg, scratch) {
        Ok((t, note)) => (Figure::Time(t), note),
        Err(e) => (Figure::Failed(e), String::new()),
    };
    Row {
        workload: format!(
            "crash: kill -9 after {} s of tpcb-like, 8 clients; restart to first SELECT 1",
            plan.crash_load_seconds
        ),
        other: "PostgreSQL",
        bulwark,
        theirs,
        note: format!("Bulwark: {b_note}; PostgreSQL: {pg_note}"),
    }
}

/// Runs tpcb-like load at `t` for the crash load time; then `kill` runs while pgbench is
/// still connected; then pgbench is left to notice.
fn under_load<T>(plan: &Plan, t: &Target, scratch: &Path, kill: impl FnOnce() -> Result<T>) -> Result<T> {
    eprintln!("{}: crash after {} s of load", t.name, plan.crash_load_seconds);
    let seconds = (plan.crash_load_seconds + CRASH_PGBENCH_EXTRA_S).to_string();
    let load = pgbench::spawn(t, &["-M", "prepared", "-c", "8", "-T", &seconds], scratch)?;
    std::thread::sleep(Duration::from_secs(plan.crash_load_seconds));
    let out = kill();
    // pgbench fails once its connections are gone; its report does not matter here.
    let _ = load.wait(Duration::from_secs(CRASH_CLIENT_EXIT_WAIT_S));
    out
}

fn crash_bulwark(plan: &Plan, bin: &Path, b: &mut Bulwark, dir: &Path, scratch: &Path) -> Result<(Duration, String)> {
    let wal = under_load(plan, &b.target(), scratch, || {
        let wal = cmd::dir_bytes(&b.dir.join(storage::store::WAL_DIR));
        b.kill9()?;
        Ok(wal)
    })?;
    // A copy of the killed directory, for `bulwark check` to replay afterwards: it reports
    // the log replayed, which `bulwark start` does not print.
    let copy = dir.join("bulwark-killed-copy");
    let _ = std::fs::remove_dir_all(&copy);
    cmd::run_ok(
        std::process::Command::new("cp").arg("-a").arg(&b.dir).arg(&copy),
        scratch,
        Duration::from_secs(COPY_WAIT_S_MAX),
    )?;
    let took = b.start_timed()?;
    let check = cmd::run_bounded(
        std::process::Command::new(bin).arg("check").arg("--data-dir").arg(&copy),
        scratch,
        Duration::from_secs(CHECK_WAIT_S_MAX),
    );
    let _ = std::fs::remove_dir_all(&copy);
    let replayed = match check {
        Ok(done) if done.status.success() => replayed_from_check(&done.stdout).unwrap_or_else(|| "?".into()),
        Ok(done) => format!("bulwark check failed: {}", done.text().trim()),
        Err(e) => e,
    };
    Ok((took, format!("wal/ {} MB at the kill, replayed {replayed}", mb(wal))))
}

/// "N log records" from `bulwark check`'s report.
fn replayed_from_check(out: &str) -> Option<String> {
    let at = out.find("recovery re-applied ")? + "recovery re-applied ".len();
    let rest = &out[at..];
    Some(rest[..rest.find(" in ")?].to_string())
}

fn crash_postgres(plan: &Plan, pg: &mut Postgres, scratch: &Path) -> Result<(Duration, String)> {
    let wal = under_load(plan, &pg.target(), scratch, || {
        let wal = pg.wal_bytes();
        pg.kill9()?;
        Ok(wal)
    })?;
    let log_from = pg.log_len();
    let took = pg.start_timed()?;
    let redo = pg.redo_bytes(log_from).map_or("?".into(), |r| format!("{} MB", mb(r)));
    Ok((took, format!("pg_wal/ {} MB at the kill, redo replayed {redo}", mb(wal))))
}

fn mb(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / 1e6)
}

/// From an empty directory to the first answered query.
fn cold_start_row(bin: &Path, dir: &Path, scratch: &Path, pool_bytes: usize) -> Result<Row> {
    eprintln!("cold start");
    let bulwark = {
        let mut b = Bulwark::new(bin, &dir.join("cold-bulwark"), &dir.join("cold-bulwark.log"))?;
        let t = b.start_timed();
        stop(b.stop());
        t.map_or_else(Figure::Failed, Figure::Time)
    };
    let (theirs, note) = {
        let (mut pg, initdb) = Postgres::init(&dir.join("cold-postgres"), scratch, pool_bytes)?;
        let start = pg.start_timed();
        stop(pg.stop());
        match start {
            Ok(start) => (
                Figure::Reference(initdb + start),
                format!(
                    "PostgreSQL, for reference only (not the same task): initdb {:.3} s + start {:.3} s",
                    initdb.as_secs_f64(),
                    start.as_secs_f64()
                ),
            ),
            Err(e) => (Figure::Failed(e), String::new()),
        }
    };
    Ok(Row {
        workload: "cold start: empty directory to first SELECT 1 (PostgreSQL: initdb + start)".into(),
        other: "PostgreSQL",
        bulwark,
        theirs,
        note,
    })
}

/// Bulwark in process against SQLite.
fn embedded_rows(plan: &Plan, dir: &Path, pool_bytes: usize) -> Result<Vec<Row>> {
    let r = embedded::run(dir, plan.embedded_rows, plan.embedded_seconds, pool_bytes)?;
    let rows = plan.embedded_rows;
    Ok(vec![
        Row {
            workload: format!("embedded: point reads by primary key, {rows} rows, 1 thread"),
            other: "SQLite",
            bulwark: Figure::rate(r.reads.0.per_s, "ops/s", &r.reads.0.latencies),
            theirs: Figure::rate(r.reads.1.per_s, "ops/s", &r.reads.1.latencies),
            note: format!("load: Bulwark {:.1} s, SQLite {:.1} s", r.load.0.as_secs_f64(), r.load.1.as_secs_f64()),
        },
        Row {
            workload: "embedded: durable single-row inserts, 1 transaction each, 1 thread".into(),
            other: "SQLite",
            bulwark: Figure::rate(r.inserts.0.per_s, "ops/s", &r.inserts.0.latencies),
            theirs: Figure::rate(r.inserts.1.per_s, "ops/s", &r.inserts.1.latencies),
            note: String::new(),
        },
    ])
}

/// The section of docs/benchmarks.md.
fn section(plan: &Plan, machine: &str, command: &str, date: &str, runs: &[Vec<Row>]) -> String {
    let pool_mib = storage::StoreOptions::default().pool_bytes >> 20;
    let mut s = format!(
        "{}\n\nCommand (release build), run {date}:\n\n```sh\ncargo build --release -p bulwark -p bulwark-bench\n{command}\n```\n\n\
         **Machine**: {machine}\n\n",
        report::SECTION_HEADING
    );
    if plan.quick {
        s.push_str(&format!(
            "**This is a `--quick` smoke run** ({}-second pgbench runs at scale {}, {} embedded rows, on a \
             machine that may have been busy): it shows that the program works, not how fast anything is. \
             A full run replaces it.\n\n",
            plan.pgbench_seconds, plan.scale, plan.embedded_rows
        ));
    }
    s.push_str(&format!(
        "Settings: Bulwark's defaults (buffer pool {pool_mib} MiB, the default of `StoreOptions::pool_bytes`; \
         every commit waits for its log fsync). PostgreSQL 15: fsync=on, synchronous_commit=on, \
         full_page_writes=on, shared_buffers={pool_mib}MB, max_connections={}, otherwise initdb's defaults. \
         SQLite: WAL mode, synchronous=FULL, cache_size {pool_mib} MiB. All data directories on the same \
         filesystem; both servers run at once on loopback ports, trust authentication.\n\n\
         How each row is measured:\n\n\
         - pgbench rows: the same pgbench drives both servers, one pgbench thread, `-M prepared`, {} s per \
         run, scale {} (`pgbench -i -s {}` on each first); Bulwark's run, then PostgreSQL's. TPS is \
         pgbench's (without connection time); p50 and p99 are computed from its per-transaction log \
         (`-l`). The insert rows run `-n -f` with one `INSERT INTO bench_insert (val, note) VALUES (...)` \
         per transaction into a table with a BIGSERIAL key.\n\
         - crash: tpcb-like load with 8 clients, SIGKILL after {} s (Bulwark: the process; PostgreSQL: \
         the postmaster, then at once the backends it had started, which would otherwise keep a restart \
         waiting), then the time from starting the server again until a `SELECT 1` is answered, polled \
         every 5 ms by a minimal wire-protocol client (PostgreSQL starts through runuser and pg_ctl, \
         which adds some milliseconds to its time; the wait until the killed processes are reaped comes \
         before the clock starts). Log: for Bulwark the size of `wal/` at the kill \
         and the log replayed (from `bulwark check` on a copy of the killed directory); for PostgreSQL \
         the size of `pg_wal/` at the kill and the WAL between \"redo starts at\" and \"redo done at\" in \
         its log.\n\
         - cold start: from starting `bulwark start` on an empty directory to the first answered \
         `SELECT 1`. PostgreSQL's figure is initdb (which fsyncs) plus start to the first answered \
         query, as a reference only.\n\
         - embedded: Bulwark's `sql::Session::execute_with` in process (the session keeps each statement text's parse and plan) \
         against SQLite through rusqlite (statements prepared once), one thread each, {} s each; point \
         reads use keys from a seeded xorshift, the same for both; inserts are one row per \
         transaction, each durable before the next.\n\n\
         Ratio: Bulwark ÷ other for rates, other ÷ Bulwark for times: above 1.00 Bulwark is ahead.\n",
        servers::PG_MAX_CONNECTIONS,
        plan.pgbench_seconds,
        plan.scale,
        plan.scale,
        plan.crash_load_seconds,
        plan.embedded_seconds,
    ));
    for (i, rows) in runs.iter().enumerate() {
        s.push_str(&format!("\n### Run {}\n\n{}", i + 1, report::table(rows)));
    }
    if runs.len() > 1 {
        s.push_str(&format!("\n### Spread over {} runs\n\n{}", runs.len(), report::spread(runs)));
    }
    s
}
