//! Drivers other than libpq's tools against `bulwark start`: Python's psycopg 3, asyncpg and
//! SQLAlchemy's ORM (CI installs them with pip). Each client script asserts what it gets and
//! exits non-zero on a mismatch; `python3 tests/clients/NAME.py PORT postgres` runs one
//! against PostgreSQL.

mod common;

use common::{stderr, stdout, ServerProcess, TempDir};
use std::process::Command;

#[test]
fn psycopg3_parameters_binary_results_transactions_copy_and_errors() {
    let dir = TempDir::new("psycopg");
    let server = ServerProcess::start(dir.path(), &[]);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/psycopg_client.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(server.port.to_string())
        .output()
        .expect("python3 must be installed, with psycopg 3 (pip install 'psycopg[binary]')");
    assert!(out.status.success(), "psycopg client failed:\nstdout: {}\nstderr: {}", stdout(&out), stderr(&out));
    assert_eq!(stdout(&out).trim(), "psycopg ok");
}

#[test]
fn asyncpg_pool_resets_sessions_on_release() {
    let dir = TempDir::new("asyncpg");
    let server = ServerProcess::start(dir.path(), &[]);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/asyncpg_client.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(server.port.to_string())
        .output()
        .expect("python3 must be installed, with asyncpg (pip install asyncpg)");
    assert!(out.status.success(), "asyncpg client failed:\nstdout: {}\nstderr: {}", stdout(&out), stderr(&out));
    assert_eq!(stdout(&out).trim(), "asyncpg ok");
}

#[test]
fn sqlalchemy_orm_creates_flushes_queries_and_reflects() {
    let dir = TempDir::new("sqlalchemy");
    let server = ServerProcess::start(dir.path(), &[]);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/sqlalchemy_client.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(server.port.to_string())
        .output()
        .expect("python3 must be installed, with SQLAlchemy and psycopg 3");
    assert!(out.status.success(), "SQLAlchemy client failed:\nstdout: {}\nstderr: {}", stdout(&out), stderr(&out));
    assert_eq!(stdout(&out).trim(), "sqlalchemy ok");
}
