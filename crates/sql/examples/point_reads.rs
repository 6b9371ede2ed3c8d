//! Point reads by primary key through `Session::execute_with`, as `bulwark-bench compare`
//! measures them against SQLite, without the comparison: prints one table of ops/s.
//!
//! ```text
//!   cargo run --release -p bulwark-sql --example point_reads -- [rows] [reads] [dir]
//! ```
//!
//! Loads `rows` rows (100,000) into `kv (id BIGINT PRIMARY KEY, val BIGINT, note TEXT)`, then
//! times `reads` (1,000,000) reads of `SELECT val, note FROM kv WHERE id = $1` for keys from
//! a seeded xorshift, in three rounds (the first warms the buffer pool and caches).
//!
//! On a shared machine wall time is noisy; instructions per read are not:
//!
//! ```text
//!   valgrind --tool=callgrind --toggle-collect='*read_round*' \
//!     target/release/examples/point_reads 100000 10000
//! ```
//!
//! (the total `Ir` divided by 3 × reads).

use sql::{Database, Value};
use std::sync::Arc;
use std::time::Instant;

/// Rows in one INSERT of the load.
const LOAD_ROWS_PER_STATEMENT: u64 = 1_000;
/// Timed rounds.
const ROUNDS: usize = 3;

fn run(session: &mut sql::Session, sql: &str, params: &[Value]) -> Vec<Vec<Value>> {
    let mut last = Vec::new();
    for r in session.execute_with(sql, params) {
        match r {
            Ok(q) => last = q.rows,
            Err(e) => panic!("{} (SQLSTATE {}) in {:.80}", e.message, e.code, sql),
        }
    }
    last
}

/// The timed reads (a function of its own, so `valgrind --tool=callgrind
/// --toggle-collect='*read_round*'` counts their instructions alone).
#[inline(never)]
fn read_round(session: &mut sql::Session, rows: u64, reads: u64) {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for _ in 0..reads {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let k = x % rows + 1;
        let got = run(session, "SELECT val, note FROM kv WHERE id = $1", &[Value::Int8(k as i64)]);
        assert!(matches!(got.as_slice(), [r] if r[0] == Value::Int8(k as i64 * 7)), "key {k}");
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let rows: u64 = args.next().map(|a| a.parse().expect("rows")).unwrap_or(100_000);
    let reads: u64 = args.next().map(|a| a.parse().expect("reads")).unwrap_or(1_000_000);
    let dir = std::path::PathBuf::from(args.next().unwrap_or_else(|| "/tmp/bulwark-point-reads".into()));
    let _ = std::fs::remove_dir_all(&dir);
    let db = Database::open(Arc::new(storage::vfs::RealVfs), &dir, txn::EngineOptions::default()).expect("open");
    let mut session = db.session();
    run(&mut session, "CREATE TABLE kv (id BIGINT PRIMARY KEY, val BIGINT NOT NULL, note TEXT NOT NULL)", &[]);
    let mut next = 1;
    while next <= rows {
        let end = (next + LOAD_ROWS_PER_STATEMENT).min(rows + 1);
        let values: Vec<String> =
            (next..end).map(|k| format!("({k},{},'note {k:020} abcdefghijklmnopqrstuvwx')", k * 7)).collect();
        run(&mut session, &format!("INSERT INTO kv (id, val, note) VALUES {}", values.join(",")), &[]);
        next = end;
    }
    println!("{:>6} {:>10} {:>12} {:>10}", "round", "reads", "ops/s", "ns/op");
    for round in 1..=ROUNDS {
        let start = Instant::now();
        read_round(&mut session, rows, reads);
        let secs = start.elapsed().as_secs_f64();
        println!("{round:>6} {reads:>10} {:>12.0} {:>10.0}", reads as f64 / secs, secs * 1e9 / reads as f64);
    }
    drop(session);
    drop(db);
    let _ = std::fs::remove_dir_all(&dir);
}
