//! Real client programs against `bulwark start`: pgbench unmodified (initialisation through
//! COPY, VACUUM and ALTER TABLE ADD PRIMARY KEY, then its TPC-B-like script in both query
//! modes), and psql's `\copy` to and from files.
//!
//! pgbench and psql come with postgresql-client (CI installs it).

mod common;

use common::{figure, stderr, stdout, ServerProcess, TempDir};
use std::process::Command;

/// Seconds each pgbench run lasts.
const PGBENCH_SECONDS: &str = "10";
/// pgbench clients.
const PGBENCH_CLIENTS: &str = "4";

fn pgbench(server: &ServerProcess, args: &[&str]) -> String {
    let port = server.port.to_string();
    let out = Command::new("pgbench")
        .args(["-h", "127.0.0.1", "-p", &port, "-U", "bulwark"])
        .args(args)
        .arg("bulwark")
        .env("PGCONNECT_TIMEOUT", "10")
        .output()
        .expect("pgbench must be installed (apt-get install postgresql-client)");
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert!(out.status.success(), "pgbench {args:?} failed:\n{text}");
    text
}

#[test]
fn pgbench_initialises_and_runs_tpcb_without_failures_and_balances_agree() {
    let dir = TempDir::new("pgbench");
    let server = ServerProcess::start(dir.path(), &[]);
    let init = pgbench(&server, &["-i", "-s", "1"]);
    assert!(init.contains("creating primary keys"), "{init}");
    assert_eq!(server.query("SELECT count(*) FROM pgbench_accounts"), "100000");
    assert_eq!(server.query("SELECT count(*) FROM pgbench_tellers"), "10");

    for mode in ["simple", "prepared"] {
        let report = pgbench(&server, &["-c", PGBENCH_CLIENTS, "-T", PGBENCH_SECONDS, "-M", mode]);
        let done = figure(&report, "number of transactions actually processed:");
        let failed = figure(&report, "number of failed transactions:");
        let tps = figure(&report, "tps =");
        eprintln!("pgbench -M {mode}: {done} transactions, {failed} failed, {tps:.0} tps");
        assert!(done > 0.0, "{report}");
        assert_eq!(failed, 0.0, "{report}");
        // pgbench empties pgbench_history before each run; after it, every table's balances
        // add up to the deltas the run recorded.
        let parts = server.pgbench_sums();
        let sums = format!("{parts:?}");
        assert_eq!(parts[4] as f64, done, "one history row per transaction: {sums}");
        // Balances accumulate over both runs; history holds this run's deltas only.
        if mode == "simple" {
            assert!(parts[..3].iter().all(|&p| p == parts[3]), "balances and deltas differ: {sums}");
        } else {
            assert!(parts[0] == parts[1] && parts[1] == parts[2], "balances differ: {sums}");
        }
    }
    // The select-only script uses the same tables through the primary key.
    let report = pgbench(&server, &["-c", PGBENCH_CLIENTS, "-T", "2", "-S", "-M", "prepared"]);
    assert_eq!(figure(&report, "number of failed transactions:"), 0.0, "{report}");
}

#[test]
fn psql_copies_from_and_to_files() {
    let dir = TempDir::new("psql-copy");
    let server = ServerProcess::start(dir.path(), &[]);
    let csv = dir.path().join("in.csv");
    std::fs::write(&csv, "id,name,score\n1,Ann,9.5\n2,\"Lee, Jr.\",\n3,\"multi\nline\",7\n").unwrap();
    server.query("CREATE TABLE people (id INT PRIMARY KEY, name TEXT NOT NULL, score NUMERIC(4,1))");
    let out = server.psql(&["-c", &format!("\\copy people FROM '{}' WITH (FORMAT csv, HEADER)", csv.display())]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(server.query("SELECT count(*) FROM people WHERE score IS NULL"), "1");
    assert_eq!(server.query("SELECT name FROM people WHERE id = 2"), "Lee, Jr.");

    // A bad row: the error names the line, and nothing of the file is kept.
    let bad = dir.path().join("bad.txt");
    std::fs::write(&bad, "10\tok\t1\n11\t\\N\t2\n").unwrap();
    let out = server.psql(&["-c", &format!("\\copy people FROM '{}'", bad.display())]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("null value in column \"name\"") && err.contains("line 2"), "{err}");
    assert_eq!(server.query("SELECT count(*) FROM people"), "3");

    let dump = dir.path().join("out.txt");
    let out = server.psql(&["-c", &format!("\\copy (SELECT * FROM people ORDER BY id) TO '{}'", dump.display())]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&dump).unwrap(), "1\tAnn\t9.5\n2\tLee, Jr.\t\\N\n3\tmulti\\nline\t7.0\n");
    let out = server.psql(&["-c", "COPY people TO STDOUT WITH (FORMAT csv)"]);
    assert_eq!(stdout(&out), "1,Ann,9.5\n2,\"Lee, Jr.\",\n3,\"multi\nline\",7.0\n");
}
