//! Isolation scripts: concurrent transactions written down as a transcript, one file per
//! scenario, in the manner of toyDB's goldenscripts and Hermitage's anomaly tests.
//!
//! # The format
//!
//! A script in `tests/scripts/` is a list of commands, each for a named session, and under
//! each command the output it must produce:
//!
//! ```text
//!   # A comment. Blank lines are ignored.
//!   a: begin repeatable read
//!   > ok
//!   a: get x
//!   > x = 10
//!   b: put x 11            <- b waits for a's row lock
//!   > blocked
//!   a: commit
//!   > ok
//!   > (b) error 40001: could not serialize access due to concurrent update
//! ```
//!
//! Commands: `begin [read committed|repeatable read|serializable] [read only]`, `get KEY`,
//! `put KEY VALUE`, `delete KEY`, `scan [LO] [HI]` (keys in `[LO, HI)`), `lock KEY
//! update|share [nowait|skip locked]`, `statement`, `commit`, `rollback`. A data command of a
//! session with no open transaction runs in a transaction of its own (autocommit, READ
//! COMMITTED), as a PostgreSQL statement outside `BEGIN` does. Every command of a READ
//! COMMITTED transaction starts a new statement (a new snapshot), as every SQL statement
//! does; `statement` does only that.
//!
//! Errors print as `error SQLSTATE`, and for 40001 also the kind of conflict.
//!
//! # How blocking is observed
//!
//! Each session runs in its own thread. The runner hands it a command and waits: for the
//! output, or, once the engine's lock-wait counter shows the command waiting on a row lock,
//! a grace period long enough for deadlock detection (`deadlock_timeout` is 100 ms) to end
//! it. A command still waiting then prints `blocked`. After every command the runner gives
//! the blocked sessions a moment to finish and prints what they printed as `(SESSION) ...`,
//! in session order, so the transcript does not depend on thread scheduling.
//!
//! On a mismatch the test shows a diff; `UPDATE_SCRIPTS=1` rewrites the files with the
//! actual output (read every rewrite before keeping it: the expected outputs are what
//! PostgreSQL does, not what the engine happens to do).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use storage::vfs::{SimVfs, Vfs};
use storage::StoreOptions;
use txn::{Engine, EngineOptions, Error, IsolationLevel, LockMode, LockSettings, Txn, TxnOptions, WaitPolicy};

/// The seed of every script's simulated disk.
const SIM_SEED: u64 = 0x5c41_9715;
/// The engine's deadlock_timeout: the runner's waits below are sized against it.
const DEADLOCK_TIMEOUT_MS: u64 = 100;
/// The engine's lock_timeout: bounds how long a forgotten waiter can hang a script.
const LOCK_TIMEOUT_MS: u64 = 5_000;
/// How long a command that waits on a row lock may still finish before it counts as
/// blocked: enough for deadlock detection to pick it as the victim.
const LOCK_WAIT_GRACE_MS: u64 = 4 * DEADLOCK_TIMEOUT_MS;
/// After a command, how long blocked sessions get to finish before they count as still
/// blocked.
const UNBLOCK_WAIT_MS: u64 = 3 * DEADLOCK_TIMEOUT_MS;
/// The longest a command may run without waiting on a lock before the runner gives up on it.
const COMMAND_MS_MAX: u64 = 2 * LOCK_TIMEOUT_MS;
/// How often the runner looks at a running command.
const POLL_MS: u64 = 5;

fn engine_options() -> EngineOptions {
    EngineOptions {
        store: StoreOptions { checkpoint_interval: None, checkpoint_log_bytes: None, ..Default::default() },
        locks: LockSettings {
            lock_timeout: Some(Duration::from_millis(LOCK_TIMEOUT_MS)),
            deadlock_timeout: Duration::from_millis(DEADLOCK_TIMEOUT_MS),
        },
        ..Default::default()
    }
}

// ---- commands -----------------------------------------------------------------------

/// One session command, parsed.
#[derive(Debug, Clone)]
enum Op {
    Begin(TxnOptions),
    Get(String),
    Put(String, String),
    Delete(String),
    Scan(Option<String>, Option<String>),
    Lock(String, LockMode, WaitPolicy),
    Statement,
    Commit,
    Rollback,
}

fn parse_begin(words: &[&str]) -> Result<TxnOptions, String> {
    let mut opts = TxnOptions::default();
    let mut rest = words;
    loop {
        rest = match rest {
            [] => return Ok(opts),
            ["read", "committed", tail @ ..] => {
                opts.isolation = IsolationLevel::ReadCommitted;
                tail
            }
            ["repeatable", "read", tail @ ..] => {
                opts.isolation = IsolationLevel::RepeatableRead;
                tail
            }
            ["serializable", tail @ ..] => {
                opts.isolation = IsolationLevel::Serializable;
                tail
            }
            ["read", "only", tail @ ..] => {
                opts.read_only = true;
                tail
            }
            other => return Err(format!("unknown begin option {:?}", other.join(" "))),
        }
    }
}

fn parse_op(text: &str) -> Result<Op, String> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let s = |w: &&str| w.to_string();
    Ok(match words.as_slice() {
        ["begin", opts @ ..] => Op::Begin(parse_begin(opts)?),
        ["get", k] => Op::Get(s(k)),
        ["put", k, v] => Op::Put(s(k), s(v)),
        ["delete", k] => Op::Delete(s(k)),
        ["scan"] => Op::Scan(None, None),
        ["scan", lo] => Op::Scan(Some(s(lo)), None),
        ["scan", lo, hi] => Op::Scan(Some(s(lo)), Some(s(hi))),
        ["lock", k, mode, policy @ ..] => {
            let mode = match *mode {
                "update" => LockMode::Exclusive,
                "share" => LockMode::Shared,
                other => return Err(format!("unknown lock mode {other:?}")),
            };
            let policy = match policy {
                [] => WaitPolicy::Wait,
                ["nowait"] => WaitPolicy::NoWait,
                ["skip", "locked"] => WaitPolicy::SkipLocked,
                other => return Err(format!("unknown lock policy {:?}", other.join(" "))),
            };
            Op::Lock(s(k), mode, policy)
        }
        ["statement"] => Op::Statement,
        ["commit"] => Op::Commit,
        ["rollback"] => Op::Rollback,
        _ => return Err(format!("unknown command {text:?}")),
    })
}

/// A command's output lines, or a mistake in the script (not an engine error).
type Reply = Result<Vec<String>, String>;

fn show_value(key: &str, value: Option<Vec<u8>>) -> String {
    match value {
        Some(v) => format!("{key} = {}", String::from_utf8_lossy(&v)),
        None => format!("{key} = NULL"),
    }
}

/// `error SQLSTATE`, and for a serialization failure the kind of conflict (the words
/// before the first colon), which is what tells a write-time failure from a commit-time one.
fn show_error(e: &Error) -> String {
    match e {
        Error::Serialization(why) => format!("error {}: {}", e.sqlstate(), why.split(':').next().unwrap_or(why)),
        _ => format!("error {}", e.sqlstate()),
    }
}

// ---- sessions -----------------------------------------------------------------------

/// What a session thread owns: the engine and its open transaction, if any.
struct SessionState {
    engine: Engine,
    txn: Option<Txn>,
}

impl SessionState {
    fn run(&mut self, op: Op) -> Reply {
        match op {
            Op::Begin(opts) => {
                if self.txn.is_some() {
                    return Err("begin inside a transaction".into());
                }
                match self.engine.begin(opts) {
                    Ok(t) => {
                        self.txn = Some(t);
                        Ok(vec!["ok".into()])
                    }
                    Err(e) => Ok(vec![show_error(&e)]),
                }
            }
            Op::Statement => {
                let txn = self.txn.as_mut().ok_or("statement outside a transaction")?;
                txn.new_statement();
                Ok(vec!["ok".into()])
            }
            Op::Commit => {
                let txn = self.txn.take().ok_or("commit outside a transaction")?;
                Ok(vec![txn.commit().map_or_else(|e| show_error(&e), |_| "ok".into())])
            }
            Op::Rollback => {
                self.txn.take().ok_or("rollback outside a transaction")?.rollback();
                Ok(vec!["ok".into()])
            }
            data => match self.txn.as_mut() {
                Some(txn) => {
                    // Every SQL statement of a READ COMMITTED transaction takes a snapshot.
                    txn.new_statement();
                    Ok(vec![data_op(txn, &data)])
                }
                None => Ok(vec![self.autocommit(&data)]),
            },
        }
    }

    /// A statement outside BEGIN: its own READ COMMITTED transaction.
    fn autocommit(&self, op: &Op) -> String {
        let mut txn = match self.engine.begin(TxnOptions::default()) {
            Ok(t) => t,
            Err(e) => return show_error(&e),
        };
        let out = data_op(&mut txn, op);
        if out.starts_with("error") {
            txn.rollback();
            return out;
        }
        match txn.commit() {
            Ok(_) => out,
            Err(e) => show_error(&e),
        }
    }
}

fn data_op(txn: &mut Txn, op: &Op) -> String {
    let result = match op {
        Op::Get(k) => txn.get(k.as_bytes()).map(|v| show_value(k, v)),
        Op::Put(k, v) => txn.put(k.as_bytes(), v.as_bytes()).map(|()| "ok".into()),
        Op::Delete(k) => txn.delete(k.as_bytes()).map(|()| "ok".into()),
        Op::Scan(lo, hi) => {
            let lo = lo.as_ref().map_or(Bound::Unbounded, |k| Bound::Included(k.as_bytes().to_vec()));
            let hi = hi.as_ref().map_or(Bound::Unbounded, |k| Bound::Excluded(k.as_bytes().to_vec()));
            txn.scan(lo, hi, false, usize::MAX).map(|rows| {
                if rows.is_empty() {
                    return "(empty)".into();
                }
                let rows: Vec<String> = rows
                    .iter()
                    .map(|(k, v)| format!("{}={}", String::from_utf8_lossy(k), String::from_utf8_lossy(v)))
                    .collect();
                rows.join(" ")
            })
        }
        Op::Lock(k, mode, policy) => txn.lock_row(k.as_bytes(), *mode, *policy).map(|got| match got {
            Some(v) => show_value(k, v),
            None => "skipped".into(),
        }),
        Op::Begin(_) | Op::Statement | Op::Commit | Op::Rollback => unreachable!("not a data command"),
    };
    result.unwrap_or_else(|e| show_error(&e))
}

/// The runner's handle on a session thread.
struct Session {
    ops: Sender<Op>,
    replies: Receiver<Reply>,
    thread: JoinHandle<()>,
    blocked: bool,
}

impl Session {
    fn spawn(engine: Engine) -> Session {
        let (ops, op_rx) = mpsc::channel::<Op>();
        let (reply_tx, replies) = mpsc::channel::<Reply>();
        let thread = std::thread::spawn(move || {
            let mut state = SessionState { engine, txn: None };
            for op in op_rx {
                if reply_tx.send(state.run(op)).is_err() {
                    break;
                }
            }
            // An open transaction rolls back as the state drops.
        });
        Session { ops, replies, thread, blocked: false }
    }
}

// ---- the runner ---------------------------------------------------------------------

/// Runs one script and returns its actual transcript.
struct Runner {
    name: String,
    engine: Engine,
    sessions: BTreeMap<String, Session>,
}

impl Runner {
    fn new(name: &str) -> Runner {
        let vfs: Arc<dyn Vfs> = Arc::new(SimVfs::new(SIM_SEED));
        let engine = Engine::open(vfs, Path::new("/db"), engine_options()).expect("open the engine");
        Runner { name: name.into(), engine, sessions: BTreeMap::new() }
    }

    fn lock_waits(&self) -> u64 {
        self.engine.stats().locks.waits
    }

    /// Waits for `session`'s reply to the command just sent; None if it is blocked on a lock.
    fn await_reply(&self, session: &str, waits_before: u64, line: usize) -> Option<Reply> {
        let start = Instant::now();
        let mut waiting_since: Option<Instant> = None;
        let s = &self.sessions[session];
        loop {
            match s.replies.recv_timeout(Duration::from_millis(POLL_MS)) {
                Ok(reply) => return Some(reply),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    panic!("{}:{line}: session {session} panicked", self.name)
                }
            }
            if waiting_since.is_none() && self.lock_waits() > waits_before {
                waiting_since = Some(Instant::now());
            }
            let grace_over = waiting_since.is_some_and(|t| t.elapsed() >= Duration::from_millis(LOCK_WAIT_GRACE_MS));
            if grace_over || start.elapsed() >= Duration::from_millis(COMMAND_MS_MAX) {
                return None;
            }
        }
    }

    /// Gives blocked sessions a moment to finish; returns their output, by session.
    fn collect_unblocked(&mut self, line: usize) -> Vec<(String, Reply)> {
        let deadline = Instant::now() + Duration::from_millis(UNBLOCK_WAIT_MS);
        let mut done = Vec::new();
        while self.sessions.values().any(|s| s.blocked) && Instant::now() < deadline {
            for (name, s) in self.sessions.iter_mut().filter(|(_, s)| s.blocked) {
                match s.replies.try_recv() {
                    Ok(reply) => {
                        s.blocked = false;
                        done.push((name.clone(), reply));
                    }
                    Err(mpsc::TryRecvError::Empty) => {}
                    Err(mpsc::TryRecvError::Disconnected) => panic!("{}:{line}: session {name} panicked", self.name),
                }
            }
            std::thread::sleep(Duration::from_millis(POLL_MS));
        }
        done.sort_by(|a, b| a.0.cmp(&b.0));
        done
    }

    /// Runs one command line and returns its output lines (without the `> `).
    fn command(&mut self, session: &str, text: &str, line: usize) -> Vec<String> {
        let op = parse_op(text).unwrap_or_else(|e| panic!("{}:{line}: {e}", self.name));
        if !self.sessions.contains_key(session) {
            let s = Session::spawn(self.engine.clone());
            self.sessions.insert(session.to_string(), s);
        }
        assert!(!self.sessions[session].blocked, "{}:{line}: session {session} is blocked", self.name);
        let waits_before = self.lock_waits();
        self.sessions[session].ops.send(op).expect("session alive");
        let mut out = match self.await_reply(session, waits_before, line) {
            Some(reply) => reply.unwrap_or_else(|e| panic!("{}:{line}: {e}", self.name)),
            None => {
                self.sessions.get_mut(session).expect("session").blocked = true;
                vec!["blocked".into()]
            }
        };
        for (name, reply) in self.collect_unblocked(line) {
            for l in reply.unwrap_or_else(|e| panic!("{}:{line}: {e}", self.name)) {
                out.push(format!("({name}) {l}"));
            }
        }
        out
    }

    /// Ends every session: idle ones roll back, which lets blocked ones finish.
    fn finish(self) {
        let mut threads = Vec::new();
        for (_, s) in self.sessions {
            drop(s.ops);
            drop(s.replies);
            threads.push(s.thread);
        }
        for t in threads {
            t.join().expect("session thread");
        }
    }
}

/// Runs `script` and returns the transcript it should have been.
fn run(name: &str, script: &str) -> String {
    let mut runner = Runner::new(name);
    let mut out = String::new();
    for (i, line) in script.lines().enumerate() {
        let trimmed = line.trim();
        if trimmed.starts_with('>') {
            continue; // expected output: replaced by the actual one
        }
        out.push_str(line);
        out.push('\n');
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let (session, text) =
            trimmed.split_once(':').unwrap_or_else(|| panic!("{name}:{}: expected `SESSION: command`", i + 1));
        for l in runner.command(session.trim(), text.trim(), i + 1) {
            let _ = writeln!(out, "> {l}");
        }
    }
    runner.finish();
    out
}

// ---- comparing ----------------------------------------------------------------------

/// A line diff (longest common subsequence): `-` expected, `+` actual, with a few lines of
/// context and the line numbers of the expected file.
fn diff(expected: &str, actual: &str) -> String {
    const CONTEXT_LINES: usize = 3;
    let a: Vec<&str> = expected.lines().collect();
    let b: Vec<&str> = actual.lines().collect();
    let mut lcs = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] { lcs[i + 1][j + 1] + 1 } else { lcs[i + 1][j].max(lcs[i][j + 1]) };
        }
    }
    // (line number in the expected file, marker, text)
    let mut rows: Vec<(usize, char, &str)> = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            rows.push((i + 1, ' ', a[i]));
            i += 1;
            j += 1;
        } else if j < b.len() && (i == a.len() || lcs[i][j + 1] >= lcs[i + 1][j]) {
            rows.push((i + 1, '+', b[j]));
            j += 1;
        } else {
            rows.push((i + 1, '-', a[i]));
            i += 1;
        }
    }
    let changed: Vec<usize> = rows.iter().enumerate().filter(|(_, r)| r.1 != ' ').map(|(n, _)| n).collect();
    let near = |n: usize| changed.iter().any(|&c| c.abs_diff(n) <= CONTEXT_LINES);
    let mut out = String::new();
    let mut skipped = false;
    for (n, (line, marker, text)) in rows.iter().enumerate() {
        if near(n) {
            let _ = writeln!(out, "{line:>4} {marker} {text}");
            skipped = false;
        } else if !skipped {
            out.push_str("   ...\n");
            skipped = true;
        }
    }
    out
}

fn scripts_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("scripts")
}

fn run_script(name: &str) {
    let path = scripts_dir().join(format!("{name}.txt"));
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let actual = run(&format!("{name}.txt"), &expected);
    if actual == expected {
        return;
    }
    if std::env::var_os("UPDATE_SCRIPTS").is_some_and(|v| v == "1") {
        std::fs::write(&path, &actual).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        return;
    }
    panic!(
        "{}: the transcript differs (- expected, + actual; line numbers of the file):\n{}",
        path.display(),
        diff(&expected, &actual)
    );
}

macro_rules! scripts {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                run_script(stringify!($name));
            }
        )*
        /// Every script this file runs.
        const SCRIPTS: &[&str] = &[$(stringify!($name)),*];
    };
}

scripts! {
    g0_dirty_write_read_committed,
    g0_dirty_write_repeatable_read,
    g0_dirty_write_serializable,
    g1a_aborted_read_read_committed,
    g1a_aborted_read_repeatable_read,
    g1a_aborted_read_serializable,
    g1b_intermediate_read_read_committed,
    g1b_intermediate_read_repeatable_read,
    g1b_intermediate_read_serializable,
    g1c_circular_information_flow_read_committed,
    g1c_circular_information_flow_repeatable_read,
    g1c_circular_information_flow_serializable,
    otv_observed_transaction_vanishes_read_committed,
    otv_observed_transaction_vanishes_repeatable_read,
    otv_observed_transaction_vanishes_serializable,
    pmp_predicate_many_preceders_read_committed,
    pmp_predicate_many_preceders_repeatable_read,
    pmp_predicate_many_preceders_serializable,
    p4_lost_update_read_committed,
    p4_lost_update_repeatable_read,
    p4_lost_update_serializable,
    g_single_read_skew_read_committed,
    g_single_read_skew_repeatable_read,
    g_single_read_skew_serializable,
    g2_item_write_skew_read_committed,
    g2_item_write_skew_repeatable_read,
    g2_item_write_skew_serializable,
    g2_predicate_anti_dependency_read_committed,
    g2_predicate_anti_dependency_repeatable_read,
    g2_predicate_anti_dependency_serializable,
    deadlock_two_way,
    deadlock_three_way,
    lock_nowait,
    lock_skip_locked,
    read_only_rejects_writes,
    read_only_rejects_for_share,
    failed_transaction_releases_its_locks,
    errors_abort_the_transaction,
}

#[test]
fn every_script_file_runs() {
    let files: BTreeSet<String> = std::fs::read_dir(scripts_dir())
        .expect("tests/scripts")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "txt"))
        .map(|p| p.file_stem().expect("name").to_string_lossy().into_owned())
        .collect();
    let listed: BTreeSet<String> = SCRIPTS.iter().map(|s| s.to_string()).collect();
    assert_eq!(files, listed, "tests/scripts/*.txt and the scripts! list in tests/scripts.rs must match");
}
