//! Drivers other than libpq's tools against `bulwark start`: Python's psycopg 3, asyncpg and
//! SQLAlchemy's ORM (CI installs them with pip). Each client script asserts what it gets and
//! exits non-zero on a mismatch; `python3 tests/clients/NAME.py PORT postgres` runs one
//! against PostgreSQL.

mod common;

use common::{stderr, stdout, ServerProcess, TempDir};
use std::process::Command;

/// Runs `tests/clients/<name>_client.py` against a fresh server; it must print "<name> ok".
fn run_client(name: &str, needs: &str) {
    let dir = TempDir::new(name);
    let server = ServerProcess::start(dir.path(), &[]);
    let script = format!("{}/tests/clients/{name}_client.py", env!("CARGO_MANIFEST_DIR"));
    let out = Command::new("python3")
        .arg(&script)
        .arg(server.port.to_string())
        .output()
        .unwrap_or_else(|e| panic!("python3 must be installed, with {needs}: {e}"));
    assert!(out.status.success(), "{name} client failed:\nstdout: {}\nstderr: {}", stdout(&out), stderr(&out));
    assert_eq!(stdout(&out).trim(), format!("{name} ok"));
}

#[test]
fn psycopg3_parameters_binary_results_transactions_copy_and_errors() {
    run_client("psycopg", "psycopg 3 (pip install 'psycopg[binary]')");
}

#[test]
fn asyncpg_pool_resets_sessions_on_release() {
    run_client("asyncpg", "asyncpg (pip install asyncpg)");
}

#[test]
fn sqlalchemy_orm_creates_flushes_queries_and_reflects() {
    run_client("sqlalchemy", "SQLAlchemy and psycopg 3 (pip install SQLAlchemy)");
}
