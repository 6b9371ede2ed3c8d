//! Bulwark in process against SQLite (through rusqlite), one thread each.
//!
//! Both get the same table and the same rows:
//!
//! ```text
//!   kv  (id BIGINT PRIMARY KEY, val BIGINT NOT NULL, note TEXT NOT NULL)   rows 1..=N
//!   ins (id BIGSERIAL PRIMARY KEY, val BIGINT NOT NULL, note TEXT NOT NULL) empty
//! ```
//!
//! (SQLite's `id INTEGER PRIMARY KEY` is its rowid, assigned on insert like a BIGSERIAL.)
//! Bulwark loads through multi-row INSERTs of [`LOAD_ROWS_PER_STATEMENT`] rows,
//! [`LOAD_STATEMENTS_PER_TXN`] to a transaction; SQLite through one prepared INSERT in one
//! transaction. Then, alternating between the two:
//!
//! - point reads: `SELECT val, note FROM kv WHERE id = ?` for keys from a seeded xorshift,
//!   the same sequence for both;
//! - durable inserts: one row per transaction into `ins`, each commit on disk before the
//!   next starts (Bulwark: every commit waits for its log fsync; SQLite: WAL mode with
//!   synchronous=FULL, which syncs the WAL at every commit).
//!
//! Each operation is timed on its own. SQLite's page cache is set to Bulwark's buffer pool
//! size, as PostgreSQL's shared_buffers is; SQLite's statements are prepared once (its
//! usual API); Bulwark's API takes the statement text each time and its session keeps the
//! parse and the plan of each text it has seen (invalidated by catalog changes), so both
//! sides plan once.

use crate::stats::{Latencies, XorShift};
use crate::Result;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Rows in one multi-row INSERT of Bulwark's load.
pub const LOAD_ROWS_PER_STATEMENT: u64 = 1_000;
/// Statements in one transaction of Bulwark's load.
pub const LOAD_STATEMENTS_PER_TXN: u64 = 10;
/// The seed of the point reads' keys.
pub const KEY_SEED: u64 = 0x9E37_79B9_7F4A_7C15;

/// One side of the comparison.
trait Embedded {
    /// Creates the tables and loads rows 1..=rows into kv.
    fn load(&mut self, rows: u64) -> Result<()>;
    /// Reads the row with this key; fails unless it is there.
    fn get(&mut self, key: u64) -> Result<()>;
    /// Inserts one row into ins in a transaction of its own.
    fn insert(&mut self, val: u64) -> Result<()>;
}

fn note(k: u64) -> String {
    format!("note {k:020} abcdefghijklmnopqrstuvwx")
}

/// Bulwark through `sql::Session`.
struct BulwarkDb {
    session: sql::Session,
    _db: sql::Database,
}

impl BulwarkDb {
    fn open(dir: &Path) -> Result<BulwarkDb> {
        let db = sql::Database::open(Arc::new(storage::vfs::RealVfs), dir, txn::EngineOptions::default())
            .map_err(|e| format!("opening Bulwark in {}: {e}", dir.display()))?;
        Ok(BulwarkDb { session: db.session(), _db: db })
    }

    /// Runs `sql`; returns the last statement's rows.
    fn exec(&mut self, sql: &str, params: &[sql::Value]) -> Result<Vec<Vec<sql::Value>>> {
        let mut last = Vec::new();
        for r in self.session.execute_with(sql, params) {
            match r {
                Ok(q) => last = q.rows,
                Err(e) => return Err(format!("Bulwark: {} (SQLSTATE {}) in {:.80}", e.message, e.code, sql)),
            }
        }
        Ok(last)
    }
}

impl Embedded for BulwarkDb {
    fn load(&mut self, rows: u64) -> Result<()> {
        self.exec("CREATE TABLE kv (id BIGINT PRIMARY KEY, val BIGINT NOT NULL, note TEXT NOT NULL)", &[])?;
        self.exec("CREATE TABLE ins (id BIGSERIAL PRIMARY KEY, val BIGINT NOT NULL, note TEXT NOT NULL)", &[])?;
        let per_txn = LOAD_ROWS_PER_STATEMENT * LOAD_STATEMENTS_PER_TXN;
        let mut next = 1;
        while next <= rows {
            let txn_end = (next + per_txn).min(rows + 1);
            self.exec("BEGIN", &[])?;
            while next < txn_end {
                let end = (next + LOAD_ROWS_PER_STATEMENT).min(txn_end);
                let mut stmt = String::from("INSERT INTO kv (id, val, note) VALUES ");
                for k in next..end {
                    if k > next {
                        stmt.push(',');
                    }
                    stmt.push_str(&format!("({k},{},'{}')", k * 7, note(k)));
                }
                self.exec(&stmt, &[])?;
                next = end;
            }
            self.exec("COMMIT", &[])?;
        }
        Ok(())
    }

    fn get(&mut self, key: u64) -> Result<()> {
        let rows = self.exec("SELECT val, note FROM kv WHERE id = $1", &[sql::Value::Int8(key as i64)])?;
        if rows.len() != 1 {
            return Err(format!("Bulwark: key {key} gave {} rows", rows.len()));
        }
        Ok(())
    }

    fn insert(&mut self, val: u64) -> Result<()> {
        let params = [sql::Value::Int8(val as i64), sql::Value::Text(note(val))];
        self.exec("INSERT INTO ins (val, note) VALUES ($1, $2)", &params)?;
        Ok(())
    }
}

/// SQLite through rusqlite.
struct SqliteDb {
    conn: rusqlite::Connection,
}

impl SqliteDb {
    fn open(path: &Path, cache_bytes: usize) -> Result<SqliteDb> {
        let err = |e: rusqlite::Error| format!("SQLite: {e}");
        let conn = rusqlite::Connection::open(path).map_err(err)?;
        let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0)).map_err(err)?;
        conn.execute_batch(&format!("PRAGMA synchronous = FULL; PRAGMA cache_size = -{};", cache_bytes >> 10))
            .map_err(err)?;
        let sync: i64 = conn.query_row("PRAGMA synchronous", [], |r| r.get(0)).map_err(err)?;
        // Operating checks: a build of SQLite that ignored these would measure something else.
        if mode != "wal" || sync != 2 {
            return Err(format!("SQLite runs with journal_mode={mode}, synchronous={sync}; wanted wal and 2 (FULL)"));
        }
        Ok(SqliteDb { conn })
    }
}

impl Embedded for SqliteDb {
    fn load(&mut self, rows: u64) -> Result<()> {
        let err = |e: rusqlite::Error| format!("SQLite load: {e}");
        self.conn
            .execute_batch(
                "CREATE TABLE kv (id INTEGER PRIMARY KEY, val INTEGER NOT NULL, note TEXT NOT NULL);
                 CREATE TABLE ins (id INTEGER PRIMARY KEY, val INTEGER NOT NULL, note TEXT NOT NULL);",
            )
            .map_err(err)?;
        let tx = self.conn.transaction().map_err(err)?;
        {
            let mut stmt = tx.prepare("INSERT INTO kv (id, val, note) VALUES (?1, ?2, ?3)").map_err(err)?;
            for k in 1..=rows {
                stmt.execute(rusqlite::params![k as i64, (k * 7) as i64, note(k)]).map_err(err)?;
            }
        }
        tx.commit().map_err(err)
    }

    fn get(&mut self, key: u64) -> Result<()> {
        let mut stmt = self.conn.prepare_cached("SELECT val, note FROM kv WHERE id = ?1").map_err(|e| e.to_string())?;
        let row: (i64, String) = stmt
            .query_row([key as i64], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(|e| format!("SQLite: key {key}: {e}"))?;
        debug_assert_eq!(row.0, (key * 7) as i64);
        Ok(())
    }

    fn insert(&mut self, val: u64) -> Result<()> {
        let mut stmt =
            self.conn.prepare_cached("INSERT INTO ins (val, note) VALUES (?1, ?2)").map_err(|e| e.to_string())?;
        stmt.execute(rusqlite::params![val as i64, note(val)]).map_err(|e| format!("SQLite insert: {e}"))?;
        Ok(())
    }
}

/// What a timed loop measured.
#[derive(Debug, Clone)]
pub struct Measured {
    /// Operations per second.
    pub per_s: f64,
    /// Each operation's latency.
    pub latencies: Latencies,
}

/// Runs `op(i)` for i = 0, 1, ... until `limit` has passed (or the samples are full).
fn timed(limit: Duration, mut op: impl FnMut(u64) -> Result<()>) -> Result<Measured> {
    let mut latencies = Latencies::default();
    let start = Instant::now();
    let mut i = 0;
    let elapsed = loop {
        let t = Instant::now();
        op(i)?;
        let done = Instant::now();
        i += 1;
        if !latencies.push(done - t) || done - start >= limit {
            break done - start;
        }
    };
    Ok(Measured { per_s: i as f64 / elapsed.as_secs_f64(), latencies })
}

/// The embedded rows: each pair is (Bulwark, SQLite).
pub struct Results {
    /// The time each took to load the rows.
    pub load: (Duration, Duration),
    /// Point reads.
    pub reads: (Measured, Measured),
    /// Durable single-row inserts.
    pub inserts: (Measured, Measured),
}

/// Loads `rows` rows into each, then measures reads and inserts for `seconds` each.
pub fn run(dir: &Path, rows: u64, seconds: u64, cache_bytes: usize) -> Result<Results> {
    let bulwark_dir = dir.join("embedded-bulwark");
    let sqlite_dir = dir.join("embedded-sqlite");
    for d in [&bulwark_dir, &sqlite_dir] {
        let _ = std::fs::remove_dir_all(d);
        std::fs::create_dir_all(d).map_err(|e| format!("creating {}: {e}", d.display()))?;
    }
    let mut b = BulwarkDb::open(&bulwark_dir)?;
    let mut s = SqliteDb::open(&sqlite_dir.join("bench.db"), cache_bytes)?;
    let limit = Duration::from_secs(seconds);

    eprintln!("embedded: loading {rows} rows into Bulwark, then SQLite");
    let load_b = time(|| b.load(rows))?;
    let load_s = time(|| s.load(rows))?;

    let reads = |db: &mut dyn Embedded| {
        let mut keys = XorShift::new(KEY_SEED);
        timed(limit, |_| db.get(keys.key(rows)))
    };
    eprintln!("embedded: point reads");
    let reads_b = reads(&mut b)?;
    let reads_s = reads(&mut s)?;

    eprintln!("embedded: durable inserts");
    let inserts_b = timed(limit, |i| b.insert(i))?;
    let inserts_s = timed(limit, |i| s.insert(i))?;

    drop((b, s));
    for d in [&bulwark_dir, &sqlite_dir] {
        let _ = std::fs::remove_dir_all(d);
    }
    Ok(Results { load: (load_b, load_s), reads: (reads_b, reads_s), inserts: (inserts_b, inserts_s) })
}

fn time(f: impl FnOnce() -> Result<()>) -> Result<Duration> {
    let start = Instant::now();
    f()?;
    Ok(start.elapsed())
}
