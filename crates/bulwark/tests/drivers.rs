//! Drivers other than libpq's tools against `bulwark start`: Python's psycopg 3, asyncpg,
//! SQLAlchemy's ORM and Django's migrations and ORM (CI installs them with pip), node-postgres (`pg`, pinned in
//! tests/clients/node/package.json; CI runs `npm ci` there) and the PostgreSQL JDBC driver
//! (Debian's libpostgresql-jdbc-java, with javac from default-jdk-headless). Each client
//! script asserts what it gets and exits non-zero on a mismatch. To run one against
//! PostgreSQL (database and user `postgres`), from crates/bulwark:
//! `python3 tests/clients/NAME.py PORT postgres`, `node tests/clients/node/node_client.js PORT
//! postgres`, or `javac -cp /usr/share/java/postgresql.jar -d OUT
//! tests/clients/jdbc/JdbcClient.java` then `java -cp OUT:/usr/share/java/postgresql.jar
//! JdbcClient PORT postgres`.

mod common;

use common::{stderr, stdout, ServerProcess, TempDir};
use std::path::Path;
use std::process::Command;

/// Where Debian's libpostgresql-jdbc-java puts the driver.
const JDBC_JAR: &str = "/usr/share/java/postgresql.jar";

/// The path of `tests/clients/<rel>`.
fn client_path(rel: &str) -> String {
    format!("{}/tests/clients/{rel}", env!("CARGO_MANIFEST_DIR"))
}

/// Runs `program args... PORT` against a fresh server; it must print "<name> ok". `needs`
/// says what to install when `program` is missing.
fn run_against_server(name: &str, program: &str, args: &[&str], needs: &str) {
    let dir = TempDir::new(name);
    let server = ServerProcess::start(dir.path(), &[]);
    let out = Command::new(program)
        .args(args)
        .arg(server.port.to_string())
        .output()
        .unwrap_or_else(|e| panic!("{program} must be installed, with {needs}: {e}"));
    assert!(out.status.success(), "{name} client failed:\nstdout: {}\nstderr: {}", stdout(&out), stderr(&out));
    assert_eq!(stdout(&out).trim(), format!("{name} ok"));
}

/// Runs `tests/clients/<name>_client.py` against a fresh server; it must print "<name> ok".
fn run_client(name: &str, needs: &str) {
    let script = client_path(&format!("{name}_client.py"));
    run_against_server(name, "python3", &[&script], needs);
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

#[test]
fn django_migrates_the_contrib_apps_and_runs_the_orm() {
    run_client("django", "Django and psycopg 3 (pip install Django)");
}

#[test]
fn node_postgres_types_prepared_statements_transactions_errors_and_pool() {
    let needs = "node and npm (apt-get install nodejs npm) and pg (npm ci --prefix crates/bulwark/tests/clients/node)";
    assert!(
        Path::new(&client_path("node/node_modules/pg/package.json")).exists(),
        "node-postgres is missing: install {needs}"
    );
    run_against_server("node", "node", &[&client_path("node/node_client.js")], needs);
}

#[test]
fn jdbc_metadata_prepared_statements_batches_keys_transactions_and_errors() {
    let needs = "a JDK (apt-get install default-jdk-headless) and the PostgreSQL JDBC driver \
                 (apt-get install libpostgresql-jdbc-java)";
    assert!(Path::new(JDBC_JAR).exists(), "{JDBC_JAR} is missing: install {needs}");
    let classes = TempDir::new("jdbc-classes");
    let out = Command::new("javac")
        .args(["-encoding", "UTF-8", "-cp", JDBC_JAR, "-d"])
        .arg(classes.path())
        .arg(client_path("jdbc/JdbcClient.java"))
        .output()
        .unwrap_or_else(|e| panic!("javac must be installed, with {needs}: {e}"));
    assert!(out.status.success(), "javac failed:\nstdout: {}\nstderr: {}", stdout(&out), stderr(&out));
    let classpath = format!("{}:{JDBC_JAR}", classes.path().display());
    run_against_server("jdbc", "java", &["-cp", &classpath, "JdbcClient"], needs);
}
