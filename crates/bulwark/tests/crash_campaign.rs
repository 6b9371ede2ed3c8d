//! The crash campaign: transfers against the real `bulwark start`, SIGKILLed at random moments.
//!
//! Four clients move money between twenty accounts, each transfer one transaction that
//! debits one account, credits another and logs itself in `transfers` under an id the client
//! chose. Each client keeps a ledger of what it sent and what the server answered:
//!
//! ```text
//!   BEGIN; UPDATE src; UPDATE dst; INSERT transfers(id); COMMIT
//!     error before COMMIT was sent ──► aborted   (must never be visible)
//!     COMMIT answered 40001/40P01  ──► aborted   (must never be visible; retried, new id)
//!     COMMIT answered Ok           ──► acked     (must always be visible)
//!     connection died during COMMIT ─► unknown   (either; resolved at the next restart)
//! ```
//!
//! After a random 50–400 ms of load the server gets SIGKILL. Then, with the server dead,
//! `bulwark check` must pass on the data directory; the server restarts on it, and:
//!
//! 1. every acknowledged transfer is present, and no aborted one is;
//! 2. the balances add up to what they started at (no half transaction is visible);
//! 3. each account's balance equals 1000 plus what the visible transfers moved into it, minus
//!    what they moved out of it: each visible transfer had all of its effects, none had some.
//!
//! An unknown transfer found present becomes acked, one found absent becomes aborted, so a
//! later crash may not change the answer either. At the end the server stops cleanly (SIGTERM,
//! which checkpoints), and the directory is checked and verified the same way once more.
//!
//! On odd kills `bulwark check` runs on a copy of the directory, so the server itself is the
//! first to open what the crash left (a torn log tail, say); on even kills it runs on the
//! directory itself, and the server opens what `check` left.
//!
//! `BULWARK_CRASH_CAMPAIGN_KILLS` (default 20) sets the number of kills;
//! `BULWARK_CRASH_CAMPAIGN_SEED` replays a run's kill delays and transfers (the seed is
//! printed; thread timing still varies). The restart time, from the restarted server's spawn
//! to its first answered query, is printed as min/median/max.
//!
//! Left out: power loss (unsynced writes dropped) is the storage layer's model test; here
//! SIGKILL keeps the page cache.

mod common;

use common::{stderr, stdout, ServerProcess, TempDir};
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::Type;
use tokio_postgres::Client;

/// Accounts money moves between.
const ACCOUNTS: i32 = 20;
/// Each account's balance before the first transfer.
const BALANCE_INITIAL: i64 = 1000;
/// Client tasks running transfers at once.
const CLIENTS: u64 = 4;
/// Largest amount one transfer moves.
const AMOUNT_MAX: u64 = 100;
/// Kills when `BULWARK_CRASH_CAMPAIGN_KILLS` is not set.
const KILLS_DEFAULT: u64 = 20;
/// Shortest and longest load before a kill.
const LOAD_MS_MIN: u64 = 50;
const LOAD_MS_MAX: u64 = 400;
/// How long the clients may take to notice the server is gone.
const CLIENT_STOP_WAIT_MS_MAX: u64 = 30_000;
/// Each client's `deadlock_timeout`: opposite transfers between the same two accounts
/// deadlock, and the default 1 s would outlast most loads, leaving the clients stuck until the
/// kill instead of retrying.
const DEADLOCK_TIMEOUT_MS: u64 = 20;
/// A progress line every this many kills.
const PROGRESS_KILLS: u64 = 50;
/// Client ids are `seq << CLIENT_BITS | client`.
const CLIENT_BITS: u32 = 8;
const _: () = assert!(CLIENTS < 1 << CLIENT_BITS);

/// One transfer as a client sent it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Transfer {
    src: i32,
    dst: i32,
    amount: i64,
}

/// xorshift64: a seeded generator, so a seed replays the kill delays and transfers.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        // splitmix64 spreads nearby seeds apart; xorshift must not start at zero.
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Rng((z ^ (z >> 31)) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number in `lo..=hi`.
    fn between(&mut self, lo: u64, hi: u64) -> u64 {
        assert!(lo <= hi);
        lo + self.next() % (hi - lo + 1)
    }
}

/// What one client sent and learned during one round.
#[derive(Default)]
struct ClientReport {
    next_seq: u64,
    issued: Vec<(i64, Transfer)>,
    acked: Vec<i64>,
    aborted: Vec<i64>,
    unknown: Vec<i64>,
    serialization_failures: u64,
    deadlocks: u64,
}

impl ClientReport {
    fn count_retry(&mut self, deadlock: bool) {
        if deadlock {
            self.deadlocks += 1;
        } else {
            self.serialization_failures += 1;
        }
    }
}

/// Everything the clients were told, across all rounds.
#[derive(Default)]
struct Ledger {
    issued: HashMap<i64, Transfer>,
    acked: HashSet<i64>,
    aborted: HashSet<i64>,
    unknown: HashSet<i64>,
    serialization_failures: u64,
    deadlocks: u64,
    unknown_found_present: u64,
    unknown_found_absent: u64,
}

impl Ledger {
    fn merge(&mut self, report: ClientReport) {
        for (id, transfer) in report.issued {
            assert!(self.issued.insert(id, transfer).is_none(), "transfer id {id} issued twice");
        }
        self.acked.extend(report.acked);
        self.aborted.extend(report.aborted);
        self.unknown.extend(report.unknown);
        self.serialization_failures += report.serialization_failures;
        self.deadlocks += report.deadlocks;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_during_transfers_loses_no_acknowledged_commit_and_shows_no_partial_one() {
    let kills: u64 = env_u64("BULWARK_CRASH_CAMPAIGN_KILLS").unwrap_or(KILLS_DEFAULT);
    let seed = env_u64("BULWARK_CRASH_CAMPAIGN_SEED").unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64
    });
    eprintln!("crash campaign: {kills} kills, seed {seed} (replay with BULWARK_CRASH_CAMPAIGN_SEED={seed})");
    assert!(kills >= 1);
    let dir = TempDir::new("crash-campaign");
    let check_copy = TempDir::new("crash-campaign-check");
    let mut rng = Rng::new(seed);

    let mut server = ServerProcess::start(dir.path(), &[]);
    create_schema(&server.connect().await).await;
    let mut ledger = Ledger::default();
    let mut next_seq = vec![0u64; CLIENTS as usize];
    let mut restarts_ms = Vec::new();
    let mut last_check = String::new();

    for kill in 1..=kills {
        let load_ms = rng.between(LOAD_MS_MIN, LOAD_MS_MAX);
        let killed = Arc::new(AtomicBool::new(false));
        let mut clients = Vec::new();
        for (client, seq) in next_seq.iter().enumerate() {
            let client_seed = seed ^ (kill << 16) ^ client as u64;
            let (port, killed) = (server.port, killed.clone());
            clients.push(tokio::spawn(run_client(port, client as u64, *seq, client_seed, killed)));
        }
        tokio::time::sleep(Duration::from_millis(load_ms)).await;
        let exited = server.child.try_wait().expect("poll the server");
        assert!(exited.is_none(), "kill {kill} (seed {seed}): the server exited on its own under load: {exited:?}");
        // The flag goes up before the signal: a client that sees an error with it down has
        // found a real one.
        killed.store(true, Ordering::SeqCst);
        server.child.kill().expect("SIGKILL the server");
        server.child.wait().expect("reap the server");
        drop(server);
        for (client, handle) in clients.into_iter().enumerate() {
            let report = join_client(handle).await;
            next_seq[client] = report.next_seq;
            ledger.merge(report);
        }

        let checked = if kill % 2 == 1 {
            copy_dir(dir.path(), check_copy.path());
            check_copy.path()
        } else {
            dir.path()
        };
        last_check = bulwark_check(checked, &format!("after kill {kill} (seed {seed})"));

        let restart = Instant::now();
        server = ServerProcess::start(dir.path(), &[]);
        let client = server.connect().await;
        client.simple_query("SELECT 1").await.expect("first query after restart");
        restarts_ms.push(restart.elapsed().as_secs_f64() * 1000.0);
        verify(&client, &mut ledger, &format!("after kill {kill} (seed {seed})")).await;
        if kill % PROGRESS_KILLS == 0 {
            eprintln!("crash campaign: {kill}/{kills} kills, {} transfers acknowledged", ledger.acked.len());
        }
    }

    // A clean stop is the campaign's only checkpoint: what it wrote must hold the same state.
    let status = server.terminate();
    assert!(status.success(), "clean shutdown after the campaign failed: {status}");
    bulwark_check(dir.path(), "after the clean shutdown");
    let server = ServerProcess::start(dir.path(), &[]);
    verify(&server.connect().await, &mut ledger, "after the clean shutdown").await;

    assert!(!ledger.acked.is_empty(), "no transfer was acknowledged: the campaign proved nothing");
    restarts_ms.sort_by(f64::total_cmp);
    eprintln!(
        "crash campaign: {kills} kills, {} transfers acknowledged, {} aborted ({} retried after 40001, {} after \
         40P01), {} in flight at a kill ({} found committed, {} not)",
        ledger.acked.len(),
        ledger.aborted.len(),
        ledger.serialization_failures,
        ledger.deadlocks,
        ledger.unknown_found_present + ledger.unknown_found_absent,
        ledger.unknown_found_present,
        ledger.unknown_found_absent,
    );
    eprintln!(
        "crash campaign: restart (spawn to first answered query) min {:.1} ms, median {:.1} ms, max {:.1} ms",
        restarts_ms[0],
        restarts_ms[restarts_ms.len() / 2],
        restarts_ms[restarts_ms.len() - 1],
    );
    eprintln!("crash campaign: last check after a kill: {}", last_check.trim().replace('\n', "; "));
}

fn env_u64(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    Some(value.parse().unwrap_or_else(|_| panic!("{name}={value:?} is not a number")))
}

async fn create_schema(client: &Client) {
    let rows: Vec<String> = (0..ACCOUNTS).map(|id| format!("({id}, {BALANCE_INITIAL})")).collect();
    client
        .batch_execute(&format!(
            "CREATE TABLE accounts (id INT PRIMARY KEY, balance BIGINT NOT NULL);
             CREATE TABLE transfers (id BIGINT PRIMARY KEY, src INT NOT NULL, dst INT NOT NULL, amount BIGINT NOT NULL);
             INSERT INTO accounts VALUES {};",
            rows.join(", ")
        ))
        .await
        .expect("create the schema");
}

/// Waits for a client task; a panic in it is this test's panic.
async fn join_client(handle: tokio::task::JoinHandle<ClientReport>) -> ClientReport {
    match tokio::time::timeout(Duration::from_millis(CLIENT_STOP_WAIT_MS_MAX), handle).await {
        Err(_) => panic!("a client did not stop within {CLIENT_STOP_WAIT_MS_MAX} ms of the kill"),
        Ok(Err(e)) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Ok(Err(e)) => panic!("client task failed: {e}"),
        Ok(Ok(report)) => report,
    }
}

/// How a statement's error is taken.
enum Failure {
    /// 40001 or 40P01: the transaction was rolled back; retry it.
    Retry { deadlock: bool },
    /// The server is gone (it was killed): stop.
    Gone,
}

/// Sorts an error into a [`Failure`], or panics: anything else is a bug in the server.
fn classify(e: &tokio_postgres::Error, killed: &AtomicBool, what: &str) -> Failure {
    match e.code() {
        Some(code) if *code == SqlState::T_R_SERIALIZATION_FAILURE => Failure::Retry { deadlock: false },
        Some(code) if *code == SqlState::T_R_DEADLOCK_DETECTED => Failure::Retry { deadlock: true },
        None if killed.load(Ordering::SeqCst) => Failure::Gone,
        _ => panic!("{what} failed with an unexpected error: {e:?}"),
    }
}

/// One client's loop: transfers until the server dies under it.
async fn run_client(port: u16, client: u64, mut seq: u64, seed: u64, killed: Arc<AtomicBool>) -> ClientReport {
    let mut report = ClientReport::default();
    let mut rng = Rng::new(seed);
    let db = match connect(port).await {
        Ok(db) => db,
        Err(e) if killed.load(Ordering::SeqCst) && e.code().is_none() => {
            report.next_seq = seq;
            return report;
        }
        Err(e) => panic!("client {client}: connect failed: {e:?}"),
    };
    if let Err(e) = db.batch_execute(&format!("SET deadlock_timeout = '{DEADLOCK_TIMEOUT_MS}ms'")).await {
        assert!(matches!(classify(&e, &killed, "SET"), Failure::Gone), "SET deadlock_timeout: {e:?}");
        report.next_seq = seq;
        return report;
    }
    let prepared = tokio::try_join!(
        db.prepare_typed("UPDATE accounts SET balance = balance - $1 WHERE id = $2", &[Type::INT8, Type::INT4]),
        db.prepare_typed("UPDATE accounts SET balance = balance + $1 WHERE id = $2", &[Type::INT8, Type::INT4]),
        db.prepare_typed(
            "INSERT INTO transfers VALUES ($1, $2, $3, $4)",
            &[Type::INT8, Type::INT4, Type::INT4, Type::INT8]
        ),
    );
    let (debit, credit, log) = match prepared {
        Ok(statements) => statements,
        Err(e) => {
            assert!(matches!(classify(&e, &killed, "prepare"), Failure::Gone), "prepare: {e:?}");
            report.next_seq = seq;
            return report;
        }
    };
    'transfers: loop {
        let src = rng.between(0, ACCOUNTS as u64 - 1) as i32;
        let dst = (src + rng.between(1, ACCOUNTS as u64 - 1) as i32) % ACCOUNTS;
        let transfer = Transfer { src, dst, amount: rng.between(1, AMOUNT_MAX) as i64 };
        // Retries of a transfer get new ids: each id is one attempt with one fate.
        loop {
            let id = ((seq << CLIENT_BITS) | client) as i64;
            seq += 1;
            report.issued.push((id, transfer));
            let body = async {
                db.batch_execute("BEGIN").await?;
                db.execute(&debit, &[&transfer.amount, &transfer.src]).await?;
                db.execute(&credit, &[&transfer.amount, &transfer.dst]).await?;
                db.execute(&log, &[&id, &transfer.src, &transfer.dst, &transfer.amount]).await
            };
            if let Err(e) = body.await {
                report.aborted.push(id); // COMMIT was never sent
                match classify(&e, &killed, "a transfer") {
                    Failure::Gone => break 'transfers,
                    Failure::Retry { deadlock } => report.count_retry(deadlock),
                }
            } else {
                match db.batch_execute("COMMIT").await {
                    Ok(()) => {
                        report.acked.push(id);
                        continue 'transfers;
                    }
                    Err(e) => match classify(&e, &killed, "COMMIT") {
                        Failure::Gone => {
                            report.unknown.push(id);
                            break 'transfers;
                        }
                        Failure::Retry { deadlock } => {
                            report.aborted.push(id);
                            report.count_retry(deadlock);
                        }
                    },
                }
            }
            if let Err(e) = db.batch_execute("ROLLBACK").await {
                assert!(matches!(classify(&e, &killed, "ROLLBACK"), Failure::Gone), "ROLLBACK: {e:?}");
                break 'transfers;
            }
        }
    }
    report.next_seq = seq;
    report
}

async fn connect(port: u16) -> Result<Client, tokio_postgres::Error> {
    let (client, connection) = tokio_postgres::Config::new()
        .host("127.0.0.1")
        .port(port)
        .user("bulwark")
        .dbname("bulwark")
        .connect(tokio_postgres::NoTls)
        .await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

/// Runs `bulwark check` on a dead server's directory; it must pass and name no problem.
fn bulwark_check(dir: &Path, at: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_bulwark")).arg("check").arg("--data-dir").arg(dir).output().unwrap();
    assert!(
        out.status.success() && stderr(&out).trim().is_empty() && !stdout(&out).contains("problem"),
        "{at}: bulwark check failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        stdout(&out),
        stderr(&out)
    );
    stdout(&out)
}

/// Replaces `to` with a copy of the directory tree at `from`.
fn copy_dir(from: &Path, to: &Path) {
    let _ = std::fs::remove_dir_all(to);
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Checks the restarted server against the ledger, then settles the unknown transfers.
async fn verify(client: &Client, ledger: &mut Ledger, at: &str) {
    let total = client.simple_query("SELECT sum(balance) FROM accounts").await.expect("sum balances");
    let total: Vec<String> = total
        .iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(row) => Some(row.get(0).unwrap_or("NULL").to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(total, [(i64::from(ACCOUNTS) * BALANCE_INITIAL).to_string()], "{at}: the total of all balances changed");

    let mut expected: Vec<i64> = vec![BALANCE_INITIAL; ACCOUNTS as usize];
    let mut present = HashSet::new();
    for row in client.query("SELECT id, src, dst, amount FROM transfers", &[]).await.expect("read transfers") {
        let id: i64 = row.get(0);
        let found = Transfer { src: row.get(1), dst: row.get(2), amount: row.get(3) };
        assert_eq!(ledger.issued.get(&id), Some(&found), "{at}: transfer {id} is not what a client sent");
        assert!(!ledger.aborted.contains(&id), "{at}: transfer {id} was rolled back but is visible");
        assert!(present.insert(id), "{at}: transfer {id} appears twice");
        expected[found.src as usize] -= found.amount;
        expected[found.dst as usize] += found.amount;
    }
    let missing: Vec<_> = ledger.acked.iter().filter(|id| !present.contains(id)).collect();
    assert!(missing.is_empty(), "{at}: {} acknowledged transfers are lost: {missing:?}", missing.len());
    for id in &present {
        assert!(ledger.acked.contains(id) || ledger.unknown.contains(id), "{at}: transfer {id} was never committed");
    }

    let rows = client.query("SELECT id, balance FROM accounts ORDER BY id", &[]).await.expect("read accounts");
    let balances: Vec<(i32, i64)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    let wanted: Vec<(i32, i64)> = (0..ACCOUNTS).zip(expected).collect();
    assert_eq!(balances, wanted, "{at}: balances disagree with the visible transfers (a partial transaction)");

    for id in std::mem::take(&mut ledger.unknown) {
        if present.contains(&id) {
            ledger.unknown_found_present += 1;
            ledger.acked.insert(id);
        } else {
            ledger.unknown_found_absent += 1;
            ledger.aborted.insert(id);
        }
    }
}
