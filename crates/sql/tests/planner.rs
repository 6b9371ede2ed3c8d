//! The planner through the session API, where slt cannot reach: parameters as range bounds
//! (as the wire protocol sends them), EXPLAIN ANALYZE, whose times vary from run to run, and
//! the memory budget's errors by SQLSTATE.

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
    assert_eq!(
        plan,
        ["Sort", "  Sort Key: n", "  ->  Index Scan using nums_sq on nums", "        Index Cond: (sq > $1)"]
    );
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
            "  Sort Key: sq DESC",
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
    assert!(time(&lines[0]) >= time(&lines[2]));
    // The statement really runs: one that fails, fails.
    assert!(exec_with(&mut s, "EXPLAIN ANALYZE SELECT 1 / 0 FROM nums", &[]).is_err());
}

#[test]
fn explain_analyze_of_a_write_performs_it_with_parameters() {
    let mut s = setup();
    let q = "EXPLAIN ANALYZE UPDATE nums SET sq = -sq WHERE n BETWEEN $1 AND $2";
    let lines = texts(&mut s, q, &[Value::Int4(3), Value::Int4(5)]);
    let shown: Vec<String> = lines.iter().map(|l| without_times(l)).collect();
    assert_eq!(
        shown,
        [
            "Update on nums  (rows=0) (actual time=T rows=0 loops=1)",
            "  ->  Index Scan using nums_pkey on nums  (rows=5) (actual time=T rows=3 loops=1)",
            "        Index Cond: ((n >= $1) AND (n <= $2))",
            "Execution Time: T ms",
        ]
    );
    assert_eq!(texts(&mut s, "SELECT sq FROM nums WHERE sq < 0 ORDER BY n", &[]), ["-9", "-16", "-25"]);
    // Plain EXPLAIN writes nothing.
    exec_with(&mut s, "EXPLAIN DELETE FROM nums", &[]).unwrap();
    assert_eq!(texts(&mut s, "SELECT count(*) FROM nums", &[]), ["50"]);
}

#[test]
fn memory_budget_fails_big_operators_and_the_session_goes_on() {
    let mut s = setup();
    exec_with(&mut s, "SET bulwark.statement_mem_max = '1MB'", &[]).unwrap();
    for q in [
        "SELECT count(*) FROM generate_series(1, 10000000) AS a",
        "SELECT count(*) FROM generate_series(1, 5000) AS a, generate_series(1, 5000) AS b",
        "SELECT string_agg(repeat('x', 100), ',') FROM generate_series(1, 20000) AS g",
    ] {
        let e = exec_with(&mut s, q, &[]).unwrap_err();
        assert_eq!(e.code, "53200", "{q}: {e:?}");
    }
    assert_eq!(texts(&mut s, "SELECT count(*) FROM nums", &[]), ["50"]);
    exec_with(&mut s, "RESET bulwark.statement_mem_max", &[]).unwrap();
    let q = "SELECT count(*) FROM generate_series(1, 1000) AS a, generate_series(1, 1000) AS b";
    assert_eq!(texts(&mut s, q, &[]), ["1000000"]);
}
