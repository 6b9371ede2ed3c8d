//! Durable single-row inserts through `Session::execute_with`, one transaction each, as
//! `bulwark-bench compare` measures them against SQLite, without the comparison: prints the
//! rate and latency percentiles of the commit path in process.
//!
//! ```text
//!   cargo run --release -p bulwark-sql --example inserts -- [inserts] [dir]
//! ```
//!
//! Each insert returns once its commit is in the log and fsynced, so the figure is bound by
//! the disk's fsync latency plus the commit path's own hand-offs; to see the hand-offs,
//! `perf sched record` the run and read `perf sched timehist`.

use sql::{Database, Value};
use std::sync::Arc;
use std::time::Instant;

fn main() {
    let mut args = std::env::args().skip(1);
    let inserts: u64 = args.next().map(|a| a.parse().expect("inserts")).unwrap_or(5_000);
    let dir = std::path::PathBuf::from(args.next().unwrap_or_else(|| "/tmp/bulwark-inserts".into()));
    let _ = std::fs::remove_dir_all(&dir);
    let db = Database::open(Arc::new(storage::vfs::RealVfs), &dir, txn::EngineOptions::default()).expect("open");
    let mut session = db.session();
    let run = |session: &mut sql::Session, sql: &str, params: &[Value]| {
        for r in session.execute_with(sql, params) {
            if let Err(e) = r {
                panic!("{} (SQLSTATE {}) in {sql}", e.message, e.code);
            }
        }
    };
    run(&mut session, "CREATE TABLE ins (id BIGSERIAL PRIMARY KEY, val BIGINT NOT NULL, note TEXT NOT NULL)", &[]);
    let mut micros = Vec::with_capacity(inserts as usize);
    let start = Instant::now();
    for i in 0..inserts {
        let t = Instant::now();
        run(
            &mut session,
            "INSERT INTO ins (val, note) VALUES ($1, $2)",
            &[Value::Int8(i as i64), Value::Text(format!("note {i:020}"))],
        );
        micros.push(t.elapsed().as_micros() as u64);
    }
    let secs = start.elapsed().as_secs_f64();
    micros.sort_unstable();
    let pct = |p: f64| micros[((micros.len() - 1) as f64 * p) as usize];
    println!(
        "{inserts} inserts: {:.0} ops/s, p50 {} µs, p90 {} µs, p99 {} µs",
        inserts as f64 / secs,
        pct(0.5),
        pct(0.9),
        pct(0.99)
    );
    drop(session);
    drop(db);
    let _ = std::fs::remove_dir_all(&dir);
}
