//! Drivers other than libpq's tools against `bulwark start`: Python's psycopg 3 (CI installs
//! it with pip). The client script asserts what it gets and exits non-zero on a mismatch.

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
