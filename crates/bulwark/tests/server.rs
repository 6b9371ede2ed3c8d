//! `bulwark start` end to end: the real binary, spoken to by psql and by tokio-postgres.
//!
//! Each test starts its own server on a free loopback port with a fresh data directory, and
//! kills it at the end. psql must be installed (CI installs postgresql-client).

mod common;

use common::{stderr, stdout, ServerProcess, TempDir};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::Type;
use tokio_postgres::{NoTls, SimpleQueryMessage};

#[test]
fn psql_runs_statements_reports_errors_and_transactions() {
    let dir = TempDir::new("psql");
    let server = ServerProcess::start(&dir.0, &[]);

    let out = server.psql(&[
        "-d",
        "bulwark",
        "-c",
        "CREATE TABLE t (id int primary key, v text); INSERT INTO t VALUES (1,'a'),(2,'b'); SELECT v FROM t ORDER BY id",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "a\nb\n");

    let out = server.psql(&["-d", "bulwark", "-v", "VERBOSITY=verbose", "-c", "INSERT INTO t VALUES (1, 'again')"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("23505"), "{}", stderr(&out));
    assert!(stderr(&out).contains("duplicate key"), "{}", stderr(&out));

    let script = "BEGIN;\nINSERT INTO t VALUES (3, 'c');\nINSERT INTO t VALUES (4, 'd');\nCOMMIT;\n\
                  BEGIN;\nINSERT INTO t VALUES (5, 'e');\nROLLBACK;\nSELECT string_agg(v, ',') FROM t;\n";
    let out = server.psql(&["-d", "bulwark", "-v", "ON_ERROR_STOP=1", "-c", script]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = server.psql(&["-d", "bulwark", "-c", "SELECT v FROM t ORDER BY id"]);
    assert_eq!(stdout(&out), "a\nb\nc\nd\n");

    // A failed statement inside a block aborts the block until ROLLBACK.
    let out = server.psql(&[
        "-d",
        "bulwark",
        "-v",
        "VERBOSITY=verbose",
        "-c",
        "BEGIN; SELECT 1/0;",
        "-c",
        "SELECT 1;",
        "-c",
        "ROLLBACK;",
    ]);
    assert!(stderr(&out).contains("22012"), "{}", stderr(&out));

    let out = server.psql(&["-d", "other", "-c", "SELECT 1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("database \"other\" does not exist"), "{}", stderr(&out));
}

/// libpq's PGOPTIONS (the startup message's `options`) sets session settings, as in
/// PostgreSQL; a bad value ends the startup with FATAL and the setting's error.
#[test]
fn startup_options_set_session_settings() {
    let dir = TempDir::new("options");
    let server = ServerProcess::start(&dir.0, &[]);
    let out = server.psql_options(
        "-c statement_timeout=5s --lock-timeout=2s",
        &["-c", "SHOW statement_timeout", "-c", "SHOW lock_timeout"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "5s\n2s\n");
    let out = server.psql_options("-c bulwark.read_consistency=sometimes", &["-c", "SELECT 1"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("FATAL") && err.contains("invalid value for parameter"), "{err}");
    // The server is still up for the next client.
    assert_eq!(server.query("SELECT 1"), "1");
}

#[tokio::test]
async fn tokio_postgres_prepared_statements_and_transactions() {
    let dir = TempDir::new("tokio-postgres");
    let server = ServerProcess::start(&dir.0, &[]);
    let client = server.connect().await;

    client
        .batch_execute(
            "CREATE TABLE items (id int primary key, big bigint, name text not null, ok boolean, price double precision)",
        )
        .await
        .unwrap();
    let insert = client
        .prepare_typed(
            "INSERT INTO items VALUES ($1, $2, $3, $4, $5)",
            &[Type::INT4, Type::INT8, Type::TEXT, Type::BOOL, Type::FLOAT8],
        )
        .await
        .unwrap();
    assert_eq!(client.execute(&insert, &[&1i32, &10_000_000_000i64, &"one", &true, &1.5f64]).await.unwrap(), 1);
    assert_eq!(client.execute(&insert, &[&2i32, &20i64, &"two", &false, &-2.25f64]).await.unwrap(), 1);

    // Binary results, read by the described column types.
    let by_id =
        client.prepare_typed("SELECT id, big, name, ok, price FROM items WHERE id = $1", &[Type::INT4]).await.unwrap();
    let rows = client.query(&by_id, &[&1i32]).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].get::<_, i32>(0), 1);
    assert_eq!(rows[0].get::<_, i64>(1), 10_000_000_000);
    assert_eq!(rows[0].get::<_, String>(2), "one");
    assert!(rows[0].get::<_, bool>(3));
    assert_eq!(rows[0].get::<_, f64>(4), 1.5);

    // An untyped parameter is described as text.
    let rows = client.query("SELECT id FROM items WHERE name = $1", &[&"two"]).await.unwrap();
    assert_eq!(rows.iter().map(|r| r.get::<_, i32>(0)).collect::<Vec<_>>(), vec![2]);
    let rows = client.query("SELECT id, name FROM items ORDER BY id", &[]).await.unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[1].get::<_, String>("name"), "two");

    // NULLs, and a NULL parameter.
    client.execute(&insert, &[&3i32, &None::<i64>, &"three", &None::<bool>, &None::<f64>]).await.unwrap();
    let row = client.query_one(&by_id, &[&3i32]).await.unwrap();
    assert_eq!(row.get::<_, Option<i64>>(1), None);
    assert_eq!(row.get::<_, Option<bool>>(3), None);

    let err = client.execute(&insert, &[&1i32, &1i64, &"dup", &true, &0.0f64]).await.unwrap_err();
    assert_eq!(err.code(), Some(&SqlState::UNIQUE_VIOLATION), "{err}");
    let err = client.batch_execute("SELECT * FROM missing").await.unwrap_err();
    assert_eq!(err.code(), Some(&SqlState::UNDEFINED_TABLE), "{err}");

    // Transactions: committed work stays, rolled-back work does not.
    let mut client = client;
    let tx = client.transaction().await.unwrap();
    tx.execute("INSERT INTO items (id, name) VALUES (10, 'committed')", &[]).await.unwrap();
    tx.commit().await.unwrap();
    let tx = client.transaction().await.unwrap();
    tx.execute("INSERT INTO items (id, name) VALUES (11, 'rolled back')", &[]).await.unwrap();
    tx.rollback().await.unwrap();
    // Computed columns are typed as PostgreSQL types them: count(*) is bigint.
    let count: i64 = client.query_one("SELECT count(*) FROM items WHERE id >= 10", &[]).await.unwrap().get(0);
    assert_eq!(count, 1);
    let row =
        client.query_one("SELECT 1 + 2, 2.5 * 2, 'a' || 'b', 1 < 2, sum(id), avg(id) FROM items", &[]).await.unwrap();
    assert_eq!(row.get::<_, i32>(0), 3);
    assert_eq!(row.get::<_, String>(2), "ab");
    assert!(row.get::<_, bool>(3));
    assert_eq!(row.columns()[1].type_(), &tokio_postgres::types::Type::NUMERIC);
    assert_eq!(row.columns()[4].type_(), &tokio_postgres::types::Type::INT8);
    assert_eq!(row.columns()[5].type_(), &tokio_postgres::types::Type::NUMERIC);

    // A failed transaction reports 25P02 until it ends.
    let tx = client.transaction().await.unwrap();
    assert!(tx.batch_execute("SELECT 1/0").await.is_err());
    let err = tx.batch_execute("SELECT 1").await.unwrap_err();
    assert_eq!(err.code(), Some(&SqlState::IN_FAILED_SQL_TRANSACTION), "{err}");
    tx.rollback().await.unwrap();
    assert_eq!(client.query_one("SELECT 1 + 1", &[]).await.unwrap().get::<_, i32>(0), 2);

    let err = server.connect_to("other").await.expect_err("database other is refused");
    assert_eq!(err.code(), Some(&SqlState::INVALID_CATALOG_NAME), "{err}");
}

#[tokio::test]
async fn max_connections_refuses_the_next_client() {
    let dir = TempDir::new("max-connections");
    let server = ServerProcess::start(&dir.0, &["--max-connections", "2"]);
    let first = server.connect().await;
    let second = server.connect().await;
    let err = server.connect_to("bulwark").await.expect_err("a third connection is refused");
    assert_eq!(err.code(), Some(&SqlState::TOO_MANY_CONNECTIONS), "{err}");
    for client in [&first, &second] {
        let messages = client.simple_query("SELECT 41 + 1").await.unwrap();
        let value = messages.iter().find_map(|m| match m {
            SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
            _ => None,
        });
        assert_eq!(value.as_deref(), Some("42"));
    }
    // A slot frees when a client leaves.
    drop(first);
    let deadline = Instant::now() + Duration::from_secs(5);
    let third = loop {
        match server.connect_to("bulwark").await {
            Ok(c) => break c,
            Err(e) if Instant::now() < deadline => {
                assert_eq!(e.code(), Some(&SqlState::TOO_MANY_CONNECTIONS), "{e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("slot never freed: {e}"),
        }
    };
    third.batch_execute("SELECT 1").await.unwrap();
}

#[tokio::test]
async fn sigterm_stops_cleanly_and_keeps_committed_data() {
    let dir = TempDir::new("sigterm");
    let server = ServerProcess::start(&dir.0, &[]);
    let client = server.connect().await;
    client
        .batch_execute("CREATE TABLE kept (id int primary key, v text); INSERT INTO kept VALUES (1, 'x')")
        .await
        .unwrap();
    // An idle connection must not hold shutdown up.
    let status = server.terminate();
    assert!(status.success(), "exit status {status}");
    drop(client);

    let server = ServerProcess::start(&dir.0, &[]);
    let client = server.connect().await;
    let row = client.query_one("SELECT v FROM kept WHERE id = 1", &[]).await.unwrap();
    assert_eq!(row.get::<_, String>(0), "x");
}

/// Clients committing inserts while SIGTERM arrives.
const SIGTERM_LOAD_CLIENTS: i64 = 4;
/// How long the load runs before SIGTERM.
const SIGTERM_LOAD_MS: u64 = 1_500;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_exits_cleanly_and_keeps_every_acknowledged_commit() {
    let dir = TempDir::new("sigterm-load");
    let server = ServerProcess::start(&dir.0, &[]);
    server.connect().await.batch_execute("CREATE TABLE acked (id bigint primary key, client bigint)").await.unwrap();

    // Each client commits ids c, c + CLIENTS, c + 2 * CLIENTS, ..., alternating single-row
    // autocommit inserts and two-row transactions, and records the ids whose commit was
    // acknowledged. It stops at its first error (the shutdown refusing or closing).
    let mut clients = Vec::new();
    for c in 0..SIGTERM_LOAD_CLIENTS {
        let client = server.connect().await;
        clients.push(tokio::spawn(async move {
            let mut client = client;
            let mut acked = Vec::new();
            let mut next = c;
            let insert = "INSERT INTO acked VALUES ($1, $2)";
            loop {
                let ids = [next, next + SIGTERM_LOAD_CLIENTS];
                next += 2 * SIGTERM_LOAD_CLIENTS;
                if (ids[0] / SIGTERM_LOAD_CLIENTS) % 4 == 0 {
                    let Ok(tx) = client.transaction().await else { break };
                    if tx.execute(insert, &[&ids[0], &c]).await.is_err()
                        || tx.execute(insert, &[&ids[1], &c]).await.is_err()
                        || tx.commit().await.is_err()
                    {
                        break;
                    }
                    acked.extend(ids);
                } else {
                    if client.execute(insert, &[&ids[0], &c]).await.is_err() {
                        break;
                    }
                    acked.push(ids[0]);
                    if client.execute(insert, &[&ids[1], &c]).await.is_err() {
                        break;
                    }
                    acked.push(ids[1]);
                }
            }
            acked
        }));
    }
    tokio::time::sleep(Duration::from_millis(SIGTERM_LOAD_MS)).await;
    // terminate() bounds the exit by SHUTDOWN_WAIT_MS_MAX.
    let started = Instant::now();
    let status = tokio::task::spawn_blocking(move || server.terminate()).await.unwrap();
    assert!(status.success(), "exit status {status} under load");
    eprintln!("exited {} ms after SIGTERM", started.elapsed().as_millis());
    let mut acked = Vec::new();
    for c in clients {
        acked.extend(c.await.unwrap());
    }
    assert!(acked.len() as i64 > SIGTERM_LOAD_CLIENTS, "the load hardly ran: {} commits", acked.len());

    let out = Command::new(env!("CARGO_BIN_EXE_bulwark")).arg("check").arg("--data-dir").arg(&dir.0).output().unwrap();
    assert!(
        out.status.success() && stderr(&out).trim().is_empty() && !stdout(&out).contains("problem"),
        "bulwark check after SIGTERM under load ({}):\nstdout: {}\nstderr: {}",
        out.status,
        stdout(&out),
        stderr(&out)
    );

    let server = ServerProcess::start(&dir.0, &[]);
    let client = server.connect().await;
    let present: std::collections::BTreeSet<i64> =
        client.query("SELECT id FROM acked", &[]).await.unwrap().iter().map(|r| r.get(0)).collect();
    let missing: Vec<i64> = acked.iter().copied().filter(|id| !present.contains(id)).collect();
    assert!(missing.is_empty(), "{} of {} acknowledged ids lost: {missing:?}", missing.len(), acked.len());
    eprintln!("{} acknowledged commits, {} rows after restart", acked.len(), present.len());
}

/// A NUMERIC column's raw binary value, to check the wire encoding byte by byte.
struct RawNumeric(Vec<u8>);

impl<'a> tokio_postgres::types::FromSql<'a> for RawNumeric {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(RawNumeric(raw.to_vec()))
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::NUMERIC
    }
}

#[tokio::test]
async fn binary_results_for_each_type_and_portals_with_row_limits() {
    let dir = TempDir::new("types");
    let server = ServerProcess::start(&dir.0, &[]);
    let mut client = server.connect().await;
    client
        .batch_execute(
            "CREATE TABLE v (id smallint primary key, r real, b bytea, ts timestamptz, vc varchar(10), c char(3), \
             n numeric(10,3)); \
             INSERT INTO v VALUES (1, 0.5, '\\x00ff', '2000-01-01 00:00:01+00', 'hi', 'x', 12345.678)",
        )
        .await
        .unwrap();
    let row = client.query_one("SELECT id, r, b, ts, vc, c, n FROM v", &[]).await.unwrap();
    assert_eq!(row.get::<_, i16>(0), 1);
    assert_eq!(row.get::<_, f32>(1), 0.5);
    assert_eq!(row.get::<_, Vec<u8>>(2), vec![0, 255]);
    let ts: std::time::SystemTime = row.get(3);
    assert_eq!(ts.duration_since(std::time::UNIX_EPOCH).unwrap(), Duration::from_secs(946_684_801));
    assert_eq!(row.get::<_, String>(4), "hi");
    assert_eq!(row.get::<_, String>(5), "x  ");
    // PostgreSQL's numeric_send of 12345.678: 3 digits [1, 2345, 6780], weight 1, dscale 3.
    assert_eq!(row.get::<_, RawNumeric>(6).0, vec![0, 3, 0, 1, 0, 0, 0, 3, 0, 1, 0x09, 0x29, 0x1a, 0x7c]);

    // Binary parameters of each type round-trip through a typed statement.
    let echo = client
        .prepare_typed(
            "SELECT id FROM v WHERE b = $1 AND ts = $2 AND r = $3",
            &[Type::BYTEA, Type::TIMESTAMPTZ, Type::FLOAT4],
        )
        .await
        .unwrap();
    let rows = client.query(&echo, &[&vec![0u8, 255], &ts, &0.5f32]).await.unwrap();
    assert_eq!(rows.len(), 1);

    // Execute with a row limit: the portal hands out the rest on the next Execute.
    client.batch_execute("INSERT INTO v (id) VALUES (2), (3), (4), (5)").await.unwrap();
    let tx = client.transaction().await.unwrap();
    let all = tx.prepare("SELECT id FROM v ORDER BY id").await.unwrap();
    let portal = tx.bind(&all, &[]).await.unwrap();
    let mut seen = Vec::new();
    loop {
        let batch = tx.query_portal(&portal, 2).await.unwrap();
        if batch.is_empty() {
            break;
        }
        assert!(batch.len() <= 2);
        seen.extend(batch.iter().map(|r| r.get::<_, i16>(0)));
    }
    assert_eq!(seen, vec![1, 2, 3, 4, 5]);
    tx.commit().await.unwrap();
}

/// One HTTP GET to the server's endpoint: (status line, body).
fn http_get(port: u16, path: &str) -> (String, String) {
    use std::io::{Read, Write};
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to the HTTP endpoint");
    write!(stream, "GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").expect("an HTTP response");
    (head.lines().next().unwrap_or("").to_string(), body.to_string())
}

#[test]
fn http_endpoint_serves_metrics_health_and_status() {
    let dir = TempDir::new("http");
    let server = ServerProcess::start(&dir.0, &[]);
    let out = server.psql(&["-c", "CREATE TABLE m (id int primary key)", "-c", "INSERT INTO m VALUES (1)"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = server.psql(&["-c", "INSERT INTO m VALUES (1)"]);
    assert!(!out.status.success());

    let (status, body) = http_get(server.http_port, "/metrics");
    assert!(status.contains("200"), "{status}");
    for needle in [
        "bulwark_statements_total{kind=\"INSERT\"} 1",
        "bulwark_errors_total{sqlstate_class=\"23\"} 1",
        "bulwark_commits_total 2",
        "bulwark_wal_fsync_seconds_total",
        "bulwark_buffer_pool_hit_ratio",
        "bulwark_checkpoints_total",
        "bulwark_deadlocks_total 0",
        "bulwark_lock_wakeups_total 0",
        "bulwark_dead_versions_found_total",
        "bulwark_vacuum_keys_due",
        "bulwark_vacuum_full_due",
        "bulwark_statement_duration_seconds_bucket{le=\"+Inf\"} 3",
    ] {
        assert!(body.contains(needle), "/metrics lacks {needle}:\n{body}");
    }
    let connections = body
        .lines()
        .find_map(|l| l.strip_prefix("bulwark_connections_total "))
        .and_then(|v| v.parse::<f64>().ok())
        .expect("bulwark_connections_total");
    assert!(connections >= 2.0, "two psql runs connected: {connections}");
    let (status, body) = http_get(server.http_port, "/health/live");
    assert!(status.contains("200") && body.contains("ok"), "{status} {body}");
    let (status, _) = http_get(server.http_port, "/health/ready");
    assert!(status.contains("200"), "{status}");
    let (status, body) = http_get(server.http_port, "/status");
    assert!(status.contains("200"), "{status}");
    // Two commits, after the Raft group's first membership entry and its leader's blank entry.
    let applied = body
        .split("\"applied_index\":")
        .nth(1)
        .and_then(|r| r.split(',').next())
        .and_then(|v| v.parse::<u64>().ok())
        .expect("applied_index in /status");
    assert!(body.contains("\"role\":\"leader\"") && applied >= 2, "{body}");
    let (status, _) = http_get(server.http_port, "/nope");
    assert!(status.contains("404"), "{status}");
}

#[test]
fn check_is_clean_after_sigkill() {
    let dir = TempDir::new("check");
    let mut server = ServerProcess::start(&dir.0, &[]);
    let out = server.psql(&[
        "-c",
        "CREATE TABLE k (id serial primary key, v text unique)",
        "-c",
        "INSERT INTO k (v) VALUES ('row1'), ('row2'), ('row3')",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    server.child.kill().unwrap(); // SIGKILL: nothing checkpointed, everything in the log
    server.child.wait().unwrap();
    let check = Command::new(env!("CARGO_BIN_EXE_bulwark")).args(["check", "--data-dir"]).arg(&dir.0).output().unwrap();
    assert!(check.status.success(), "bulwark check failed: {}{}", stdout(&check), stderr(&check));
    assert!(stdout(&check).contains("ok:"), "{}", stdout(&check));
    let server = ServerProcess::start(&dir.0, &[]);
    let out = server.psql(&["-c", "SELECT count(*) FROM k"]);
    assert_eq!(stdout(&out).trim(), "3", "{}", stderr(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_request_stops_the_running_statement() {
    let dir = TempDir::new("cancel");
    let server = ServerProcess::start(&dir.0, &[]);
    let client = server.connect().await;
    client.batch_execute("CREATE TABLE c (n INT)").await.unwrap();
    let values: Vec<String> = (1..=60).map(|i| format!("({i})")).collect();
    client.batch_execute(&format!("INSERT INTO c VALUES {}", values.join(","))).await.unwrap();
    let token = client.cancel_token();
    let canceller = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        token.cancel_query(NoTls).await
    });
    let started = Instant::now();
    // 60^4 = 13 million joined rows: far longer than the 300 ms before the cancel.
    let err = client.query("SELECT count(*) FROM c a, c b, c d, c e", &[]).await.unwrap_err();
    canceller.await.unwrap().expect("cancel request sent");
    assert_eq!(err.code(), Some(&tokio_postgres::error::SqlState::QUERY_CANCELED), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(10), "cancelled promptly: {:?}", started.elapsed());
    // The session goes on.
    let row = client.query_one("SELECT count(*) FROM c", &[]).await.unwrap();
    assert_eq!(row.get::<_, i64>(0), 60);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn untyped_parameters_take_their_types_from_the_statement() {
    let dir = TempDir::new("params");
    let server = ServerProcess::start(&dir.0, &[]);
    let client = server.connect().await;
    client
        .batch_execute("CREATE TABLE p (id INT PRIMARY KEY, big BIGINT, name TEXT, score DOUBLE PRECISION, ok BOOLEAN)")
        .await
        .unwrap();
    // No types given: Describe infers them from the columns they meet.
    let n = client
        .execute(
            "INSERT INTO p (id, big, name, score, ok) VALUES ($1, $2, $3, $4, $5)",
            &[&1i32, &9_000_000_000i64, &"ann", &2.5f64, &true],
        )
        .await
        .unwrap();
    assert_eq!(n, 1);
    let row =
        client.query_one("SELECT name, big FROM p WHERE id = $1 AND score > $2", &[&1i32, &1.0f64]).await.unwrap();
    assert_eq!(row.get::<_, String>(0), "ann");
    assert_eq!(row.get::<_, i64>(1), 9_000_000_000);
    let n = client.execute("UPDATE p SET name = $1 WHERE id IN ($2, $3)", &[&"bob", &1i32, &2i32]).await.unwrap();
    assert_eq!(n, 1);
    let rows = client.query("SELECT id FROM p ORDER BY id LIMIT $1", &[&5i64]).await.unwrap();
    assert_eq!(rows.len(), 1);
    let stmt = client.prepare("SELECT id FROM p WHERE ok = $1 AND name = $2").await.unwrap();
    assert_eq!(stmt.params(), &[tokio_postgres::types::Type::BOOL, tokio_postgres::types::Type::TEXT]);
}

#[test]
fn bulwark_sql_shell_runs_statements_and_reports_errors() {
    let dir = TempDir::new("shell");
    let server = ServerProcess::start(&dir.0, &[]);
    let url = format!("postgres://bulwark@127.0.0.1:{}/bulwark", server.port);
    let shell = |sql: &str| {
        Command::new(env!("CARGO_BIN_EXE_bulwark")).args(["sql", "--url", &url, "-c", sql]).output().unwrap()
    };
    let out =
        shell("CREATE TABLE s (id int primary key, v text); INSERT INTO s VALUES (1, 'a'); SELECT v AS value FROM s");
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains(" value") && text.contains(" a") && text.contains("(1 row)"), "{text}");
    let out = shell("INSERT INTO s VALUES (1, 'b')");
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("SQLSTATE 23505"), "{}", stdout(&out));
}

#[tokio::test]
async fn idle_in_transaction_timeout_ends_the_session_and_releases_its_locks() {
    let dir = TempDir::new("idle-timeout");
    let server = ServerProcess::start(dir.path(), &[]);
    let setup = server.connect().await;
    setup.batch_execute("CREATE TABLE t (id INT PRIMARY KEY, v INT); INSERT INTO t VALUES (1, 0)").await.unwrap();

    let idle = server.connect().await;
    idle.batch_execute("SET idle_in_transaction_session_timeout = '300ms'; BEGIN; UPDATE t SET v = 1 WHERE id = 1")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    // The session was ended: its next statement fails (FATAL 25P03, or the closed connection).
    let err = idle.simple_query("SELECT 1").await.unwrap_err();
    if let Some(db) = err.as_db_error() {
        assert_eq!(db.code().code(), "25P03", "{db:?}");
    }
    // Its update was rolled back and its row lock released: another session writes at once.
    let other = server.connect().await;
    other.batch_execute("SET lock_timeout = '2s'; UPDATE t SET v = 2 WHERE id = 1").await.unwrap();
    let v: i32 = other.query_one("SELECT v FROM t WHERE id = 1", &[]).await.unwrap().get(0);
    assert_eq!(v, 2);

    // Outside a block, idling is fine.
    let calm = server.connect().await;
    calm.batch_execute("SET idle_in_transaction_session_timeout = '200ms'").await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    calm.simple_query("SELECT 1").await.unwrap();
}

#[tokio::test]
async fn settings_come_from_flags_over_the_config_file() {
    let dir = TempDir::new("config-file");
    let config = dir.path().join("bulwark.toml");
    std::fs::write(&config, "statement_timeout = \"7s\"\nlock_timeout = \"3s\"\nlog_min_duration_statement = 0\n")
        .unwrap();
    let data = dir.path().join("data");
    let server = ServerProcess::start(&data, &["--config", config.to_str().unwrap(), "--lock-timeout", "4s"]);
    let c = server.connect().await;
    let show = |name: &'static str| {
        let c = &c;
        async move {
            let row = c.query_one(&format!("SHOW {name}"), &[]).await.unwrap();
            row.get::<_, String>(0)
        }
    };
    assert_eq!(show("statement_timeout").await, "7s");
    assert_eq!(show("lock_timeout").await, "4s", "the flag wins over the file");
    // RESET returns to the configured default, not the built-in one.
    c.batch_execute("SET statement_timeout = '1s'; RESET statement_timeout").await.unwrap();
    assert_eq!(show("statement_timeout").await, "7s");

    // A misspelt key stops the start and names the key.
    std::fs::write(&config, "statment_timeout = \"7s\"\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_bulwark"))
        .args(["start", "--config", config.to_str().unwrap(), "--data-dir"])
        .arg(dir.path().join("data2"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(stderr(&out).contains("unknown setting \"statment_timeout\""), "{}", stderr(&out));
}

/// psql against `server` as `user` with `password` and `sslmode`.
fn psql_as(server: &ServerProcess, user: &str, password: &str, sslmode: &str, sql: &str) -> std::process::Output {
    Command::new("psql")
        .args(["-h", "127.0.0.1", "-p", &server.port.to_string(), "-U", user, "-d", "bulwark", "-X", "-A", "-t"])
        .args(["-c", sql])
        .env("PGPASSWORD", password)
        .env("PGSSLMODE", sslmode)
        .env("PGCONNECT_TIMEOUT", "10")
        .output()
        .expect("psql")
}

#[tokio::test]
async fn scram_passwords_and_tls_from_psql_and_tokio_postgres() {
    let dir = TempDir::new("scram-tls");
    let data = dir.path().join("data");
    // Under trust (loopback), give the roles passwords.
    let server = ServerProcess::start(&data, &[]);
    let c = server.connect().await;
    c.batch_execute(
        "ALTER ROLE bulwark PASSWORD 'root secret';
         CREATE ROLE app LOGIN PASSWORD 'app pw';
         CREATE ROLE locked PASSWORD 'x';
         CREATE USER plain;
         CREATE TABLE t (id INT PRIMARY KEY)",
    )
    .await
    .unwrap();
    let err = c.batch_execute("CREATE ROLE app").await.unwrap_err();
    assert_eq!(err.code(), Some(&SqlState::DUPLICATE_OBJECT));
    assert!(server.terminate().success());

    // A throwaway certificate.
    let cert = dir.path().join("server.crt");
    let key = dir.path().join("server.key");
    let made = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl must be installed");
    assert!(made.status.success(), "{}", stderr(&made));

    let server = ServerProcess::start(
        &data,
        &["--auth", "scram-sha-256", "--tls-cert", cert.to_str().unwrap(), "--tls-key", key.to_str().unwrap()],
    );
    // psql over TLS with the right password.
    let ok = psql_as(&server, "app", "app pw", "require", "SELECT count(*) FROM t");
    assert!(ok.status.success(), "{}", stderr(&ok));
    assert_eq!(stdout(&ok).trim(), "0");
    let root = psql_as(&server, "bulwark", "root secret", "require", "SHOW session_authorization");
    assert_eq!(stdout(&root).trim(), "bulwark", "{}", stderr(&root));
    // Wrong password, unknown role, no LOGIN, no password: all 28P01, the same words.
    for (user, password) in [("app", "wrong"), ("nobody", "x"), ("locked", "x"), ("plain", "anything")] {
        let bad = psql_as(&server, user, password, "prefer", "SELECT 1");
        assert!(!bad.status.success(), "{user} got in");
        let err = stderr(&bad);
        assert!(err.contains(&format!("password authentication failed for user \"{user}\"")), "{user}: {err}");
    }
    // A non-superuser cannot manage roles.
    let denied = psql_as(&server, "app", "app pw", "require", "CREATE ROLE sneaky SUPERUSER");
    assert!(stderr(&denied).contains("permission denied to create role"), "{}", stderr(&denied));
    // tokio-postgres authenticates with SCRAM too (without TLS: it is optional here).
    let (client, conn) = tokio_postgres::Config::new()
        .host("127.0.0.1")
        .port(server.port)
        .user("app")
        .password("app pw")
        .dbname("bulwark")
        .connect(NoTls)
        .await
        .expect("scram login");
    tokio::spawn(conn);
    client.batch_execute("INSERT INTO t VALUES (1)").await.unwrap();
    let wrong = tokio_postgres::Config::new()
        .host("127.0.0.1")
        .port(server.port)
        .user("app")
        .password("nope")
        .dbname("bulwark")
        .connect(NoTls)
        .await;
    assert_eq!(wrong.err().and_then(|e| e.code().cloned()), Some(SqlState::INVALID_PASSWORD));
}

#[test]
fn trust_refuses_non_loopback_addresses_and_says_how_to_fix_it() {
    let dir = TempDir::new("non-loopback");
    let out = Command::new(env!("CARGO_BIN_EXE_bulwark"))
        .args(["start", "--pg-addr", "0.0.0.0:0", "--data-dir"])
        .arg(dir.path().join("data"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("trust authentication is only allowed on loopback") && err.contains("--auth scram-sha-256"),
        "{err}"
    );
    assert!(!dir.path().join("data").exists(), "refused before touching the data directory");
}

#[test]
fn psql_lists_and_describes_tables() {
    let dir = TempDir::new("psql-describe");
    let server = ServerProcess::start(dir.path(), &[]);
    let ddl = server.psql(&[
        "-c",
        "CREATE TABLE parent (id SERIAL PRIMARY KEY, code TEXT UNIQUE NOT NULL, n INT DEFAULT 5 CHECK (n > 0));
         CREATE TABLE child (id BIGINT PRIMARY KEY, parent INT REFERENCES parent(id) ON DELETE CASCADE, note VARCHAR(20));
         CREATE INDEX child_parent ON child (parent);",
    ]);
    assert!(ddl.status.success(), "{}", stderr(&ddl));
    let list = server.psql(&["-c", "\\dt"]);
    assert!(list.status.success(), "{}", stderr(&list));
    assert_eq!(stdout(&list), "public|child|table|bulwark\npublic|parent|table|bulwark\n");

    // \d NAME runs psql's own catalog queries; its output is PostgreSQL's, line for line.
    let out = Command::new("psql")
        .args(["-h", "127.0.0.1", "-p", &server.port.to_string(), "-U", "bulwark", "-X", "-c", "\\d parent"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let described = stdout(&out);
    for line in [
        "Table \"public.parent\"",
        " id     | integer |           | not null | nextval('parent_id_seq'::regclass)",
        " code   | text    |           | not null | ",
        " n      | integer |           |          | 5",
        "    \"parent_pkey\" PRIMARY KEY, btree (id)",
        "    \"parent_code_key\" UNIQUE CONSTRAINT, btree (code)",
        "    \"parent_n_check\" CHECK (n > 0)",
        "    TABLE \"child\" CONSTRAINT \"child_parent_fkey\" FOREIGN KEY (parent) REFERENCES parent(id) ON DELETE CASCADE",
    ] {
        assert!(described.contains(line), "missing {line:?} in:\n{described}");
    }
    let columns = stdout(&server.psql(&["-c", "\\d child"]));
    assert_eq!(columns, "id|bigint||not null|\nparent|integer|||\nnote|character varying(20)|||\n");
    let out = Command::new("psql")
        .args(["-h", "127.0.0.1", "-p", &server.port.to_string(), "-U", "bulwark", "-X", "-c", "\\d child"])
        .output()
        .unwrap();
    let child = stdout(&out);
    assert!(child.contains("    \"child_parent\" btree (parent)"), "{child}");
    assert!(child.contains("Foreign-key constraints:"), "{child}");
    let missing = Command::new("psql")
        .args(["-h", "127.0.0.1", "-p", &server.port.to_string(), "-U", "bulwark", "-X", "-c", "\\d nosuch"])
        .output()
        .unwrap();
    assert!(stderr(&missing).contains("Did not find any relation named \"nosuch\""), "{}", stderr(&missing));
}

/// Long operator chains: an ORM's `id = 1 OR id = 2 OR ...` with 20,000 terms runs, a
/// 990-term sum runs, and deeper or longer chains get 54001 (statement_too_complex) while
/// the server stays up. A chain this long once overflowed the connection thread's stack
/// and aborted the whole server.
#[test]
fn long_operator_chains_run_or_get_54001_and_never_crash_the_server() {
    let dir = TempDir::new("chains");
    let server = ServerProcess::start(&dir.0, &[]);
    server.query("CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1), (2), (3)");
    let run_file = |name: &str, sql: String| {
        let path = dir.0.join(name);
        std::fs::write(&path, sql).unwrap();
        server.psql(&["-v", "ON_ERROR_STOP=1", "-v", "VERBOSITY=verbose", "-f", path.to_str().unwrap()])
    };
    let chain = |terms: usize, op: &str| vec!["1"; terms].join(op);

    let ors = (1..=20_000).map(|i| format!("id = {i}")).collect::<Vec<_>>().join(" OR ");
    let out = run_file("ors.sql", format!("SELECT count(*) FROM t WHERE {ors}"));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "3");
    let ands = (1..=5_000).map(|i| format!("id <> {}", i + 2)).collect::<Vec<_>>().join(" AND ");
    let out = run_file("ands.sql", format!("SELECT id FROM t WHERE {ands}"));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "1\n2");

    let out = run_file("sum.sql", format!("SELECT {}", chain(990, " + ")));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "990");

    for (name, sql) in [
        ("deep.sql", format!("SELECT {}", chain(5_000, " + "))),
        ("concat.sql", format!("SELECT {}", vec!["'a'"; 5_000].join(" || "))),
        ("long.sql", format!("SELECT {}", chain(60_000, " + "))),
    ] {
        let out = run_file(name, sql);
        assert_eq!(out.status.code(), Some(3), "{name}: {}", stdout(&out));
        assert!(stderr(&out).contains("54001"), "{name}: {}", stderr(&out));
        assert_eq!(server.query("SELECT count(*) FROM t"), "3", "the server answers after {name}");
    }
}
