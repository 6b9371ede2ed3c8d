//! The planner through the session API, where slt cannot reach: parameters as range bounds
//! (as the wire protocol sends them), and EXPLAIN ANALYZE, whose times vary from run to run.

use sql::{Database, Session, Value};
use std::path::Path;
use std::sync::Arc;
use storage::vfs::SimVfs;
use txn::EngineOptions;

fn db() -> Database {
    let opts = EngineOptions { vacuum_interval: None, ..Default::default() };
    Database::open(Arc::new(SimVfs::new(11)), Path::new("/db"), opts).expect("open")
}

fn exec_with(s: &mut Session, sql: &str, params: &[Value]) -> Result<sql::QueryResult, sql::Error> {
    let mut last = None;
    for r in s.execute_with(sql, params) {
        last = Some(r?);
    }
    Ok(last.expect("a statement"))
}

fn texts(s: &mut Session, sql: &str, params: &[Value]) -> Vec<String> {
    exec_with(s, sql, params)
        .unwrap()
        .rows
        .iter()
        .map(|r| r.iter().map(|v| sql::eval::to_text(v).unwrap_or_else(|| "NULL".into())).collect::<Vec<_>>().join(" "))
        .collect()
}

fn setup() -> Session {
    let mut s = db().session();
    exec_with(&mut s, "CREATE TABLE nums (n INT PRIMARY KEY, sq INT)", &[]).unwrap();
    exec_with(&mut s, "INSERT INTO nums SELECT g, g * g FROM generate_series(1, 50) AS g", &[]).unwrap();
    exec_with(&mut s, "CREATE INDEX nums_sq ON nums (sq)", &[]).unwrap();
    s
}

#[test]
fn parameters_bound_range_scans() {
    let mut s = setup();
    let q = "SELECT n FROM nums WHERE n BETWEEN $1 AND $2";
    assert_eq!(texts(&mut s, q, &[Value::Int4(20), Value::Int4(22)]), ["20", "21", "22"]);
    // Untyped parameters arrive as text.
    assert_eq!(texts(&mut s, q, &[Value::Text("49".into()), Value::Text("60".into())]), ["49", "50"]);
    assert!(texts(&mut s, q, &[Value::Null, Value::Int4(3)]).is_empty());
    let q = "SELECT n FROM nums WHERE sq > $1 ORDER BY n";
    assert_eq!(texts(&mut s, q, &[Value::Int8(2401)]), ["50"]);
    let plan = texts(&mut s, &format!("EXPLAIN (COSTS OFF) {q}"), &[Value::Int8(2401)]);
    assert_eq!(plan, ["Sort", "  ->  Index Scan using nums_sq on nums", "        Index Cond: (sq > $1)"]);
}

/// `text` with every `time=A..B` range and `Time: X ms` figure replaced by `T`.
fn without_times(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find("time=").or_else(|| rest.find("Time: ")) {
        let skip = if rest[at..].starts_with("time=") { 5 } else { 6 };
        out += &rest[..at + skip];
        let tail = &rest[at + skip..];
        let end = tail.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(tail.len());
        assert!(end > 0, "a time follows in {text}");
        out += "T";
        rest = &tail[end..];
    }
    out + rest
}

#[test]
fn explain_analyze_reports_rows_loops_and_times() {
    let mut s = setup();
    let lines = texts(&mut s, "EXPLAIN ANALYZE SELECT n FROM nums WHERE n <= 10 ORDER BY sq DESC", &[]);
    let shown: Vec<String> = lines.iter().map(|l| without_times(l)).collect();
    assert_eq!(
        shown,
        [
            "Sort  (rows=333) (actual time=T rows=10 loops=1)",
            "  ->  Index Scan using nums_pkey on nums  (rows=333) (actual time=T rows=10 loops=1)",
            "        Index Cond: (n <= 10)",
            "Execution Time: T ms",
        ]
    );
    // Each node's time includes its input's.
    let time = |line: &str| -> f64 {
        let at = line.find("..").unwrap() + 2;
        line[at..].split(' ').next().unwrap().parse().unwrap()
    };
    assert!(time(&lines[0]) >= time(&lines[1]));
    // The statement really runs: one that fails, fails.
    assert!(exec_with(&mut s, "EXPLAIN ANALYZE SELECT 1 / 0 FROM nums", &[]).is_err());
}
