//! The server in-process, spoken to by tokio-postgres and by raw frames: simple-protocol replies, extended-protocol buffering, and shutdown.

use std::sync::Arc;
use tokio_postgres::{NoTls, SimpleQueryMessage};

/// Starts a server on a free loopback port over a fresh data directory; returns its port, a
/// shutdown trigger and the server task.
async fn start(name: &str) -> (u16, tokio::sync::oneshot::Sender<()>, tokio::task::JoinHandle<std::io::Result<()>>) {
    let dir = std::env::temp_dir().join(format!("bulwark-wire-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let db = sql::Database::open(Arc::new(storage::vfs::RealVfs), &dir, txn::EngineOptions::default()).unwrap();
    let config = server::Config { addr: "127.0.0.1:0".into(), ..Default::default() };
    let server = server::Server::bind(db, config).await.unwrap();
    let port = server.local_addr().unwrap().port();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(server.run(async move {
        let _ = stopped.await;
    }));
    (port, stop, task)
}

async fn connect(port: u16) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::Config::new()
        .host("127.0.0.1")
        .port(port)
        .user("bulwark")
        .dbname("bulwark")
        .connect(NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
}

fn tags(messages: &[SimpleQueryMessage]) -> Vec<String> {
    messages
        .iter()
        .map(|m| match m {
            SimpleQueryMessage::Row(r) => format!("row {}", r.get(0).unwrap_or("NULL")),
            SimpleQueryMessage::CommandComplete(n) => format!("complete {n}"),
            SimpleQueryMessage::RowDescription(_) => "description".into(),
            _ => "other".into(),
        })
        .collect()
}

#[tokio::test]
async fn simple_queries_reply_per_statement_and_stop_at_an_error() {
    let (port, stop, task) = start("simple").await;
    let client = connect(port).await;
    let out = client
        .simple_query(
            "CREATE TABLE t (id int primary key); INSERT INTO t VALUES (1), (2); SELECT id FROM t ORDER BY id",
        )
        .await
        .unwrap();
    assert_eq!(tags(&out), ["complete 0", "complete 2", "description", "row 1", "row 2", "complete 2"]);

    // Statements after an error are not run.
    let err = client.simple_query("INSERT INTO t VALUES (3); SELECT 1/0; INSERT INTO t VALUES (4)").await.unwrap_err();
    assert_eq!(err.code().map(|c| c.code()), Some("22012"));
    let out = client.simple_query("SELECT count(*) FROM t").await.unwrap();
    assert_eq!(tags(&out), ["description", "row 3", "complete 1"]);

    // An empty query is answered (EmptyQueryResponse, which tokio-postgres reports as a
    // completion of 0 rows), not run.
    assert_eq!(tags(&client.simple_query("").await.unwrap()), ["complete 0"]);
    assert_eq!(tags(&client.simple_query(" ; ").await.unwrap()), ["complete 0"]);

    // NULL arrives as NULL.
    let out = client.simple_query("SELECT NULL").await.unwrap();
    assert_eq!(tags(&out), ["description", "row NULL", "complete 1"]);

    stop.send(()).unwrap();
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn extended_protocol_checks_parameters_and_statements() {
    let (port, stop, task) = start("extended").await;
    let client = connect(port).await;
    client.batch_execute("CREATE TABLE t (id int primary key, v text)").await.unwrap();

    // Untyped parameters are counted from the text and described as text.
    let st = client.prepare("INSERT INTO t VALUES ($1::int, $2)").await.unwrap();
    assert_eq!(st.params(), [tokio_postgres::types::Type::TEXT, tokio_postgres::types::Type::TEXT]);
    assert!(st.columns().is_empty());
    client.execute(&st, &[&"7", &"seven"]).await.unwrap();

    // One statement per Parse; syntax errors surface at Parse.
    let err = client.prepare("SELECT 1; SELECT 2").await.unwrap_err();
    assert_eq!(err.code().map(|c| c.code()), Some("42601"));
    let err = client.prepare("SELEC 1").await.unwrap_err();
    assert_eq!(err.code().map(|c| c.code()), Some("42601"));
    let err = client.prepare("SELECT * FROM missing").await.unwrap_err();
    assert_eq!(err.code().map(|c| c.code()), Some("42P01"));

    // The connection is still usable after errors.
    let row = client.query_one("SELECT v FROM t WHERE id = 7", &[]).await.unwrap();
    assert_eq!(row.get::<_, String>(0), "seven");

    stop.send(()).unwrap();
    task.await.unwrap().unwrap();
}

/// One frontend message: type byte, length, body.
fn frame(t: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![t];
    out.extend_from_slice(&((body.len() + 4) as i32).to_be_bytes());
    out.extend_from_slice(body);
    out
}

/// Connects a plain socket to `port` and sends the startup message (user and database
/// bulwark); the server's answer is left to read.
async fn raw_startup(port: u16) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt;
    let mut socket = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let mut startup = 196608i32.to_be_bytes().to_vec();
    startup.extend_from_slice(b"user\0bulwark\0database\0bulwark\0\0");
    let mut packet = ((startup.len() + 4) as i32).to_be_bytes().to_vec();
    packet.extend(startup);
    socket.write_all(&packet).await.unwrap();
    socket
}

/// Reads one backend message: its type and body.
async fn read_message(socket: &mut tokio::net::TcpStream) -> (u8, Vec<u8>) {
    use tokio::io::AsyncReadExt;
    let t = socket.read_u8().await.unwrap();
    let len = socket.read_i32().await.unwrap();
    let mut body = vec![0; len as usize - 4];
    socket.read_exact(&mut body).await.unwrap();
    (t, body)
}

/// Reads backend messages until one of type `until` arrives; returns the types seen.
async fn read_until(socket: &mut tokio::net::TcpStream, until: u8) -> Vec<u8> {
    let mut types = Vec::new();
    loop {
        let (t, _) = read_message(socket).await;
        types.push(t);
        if t == until {
            return types;
        }
    }
}

#[tokio::test]
async fn extended_replies_are_buffered_until_flush_or_sync_and_then_all_arrive() {
    use tokio::io::AsyncWriteExt;
    let (port, stop, task) = start("flush").await;
    let mut socket = raw_startup(port).await;
    assert_eq!(read_until(&mut socket, b'Z').await.last(), Some(&b'Z'));

    // Parse, Bind, Describe, Execute, then Flush without Sync: a client that pipelines
    // this way waits for the replies, so Flush must push them out.
    let mut batch = frame(b'P', b"\0SELECT 41 + 1\0\0\0");
    batch.extend(frame(b'B', b"\0\0\0\0\0\0\0\0"));
    batch.extend(frame(b'D', b"P\0"));
    batch.extend(frame(b'E', b"\0\0\0\0\0"));
    batch.extend(frame(b'H', b""));
    socket.write_all(&batch).await.unwrap();
    let flushed = tokio::time::timeout(std::time::Duration::from_secs(10), read_until(&mut socket, b'C'))
        .await
        .expect("Flush must send the buffered replies");
    assert_eq!(
        flushed,
        vec![b'1', b'2', b'T', b'D', b'C'],
        "ParseComplete, BindComplete, RowDescription, DataRow, CommandComplete"
    );

    // Sync ends the batch with ReadyForQuery.
    socket.write_all(&frame(b'S', b"")).await.unwrap();
    let synced = tokio::time::timeout(std::time::Duration::from_secs(10), read_until(&mut socket, b'Z')).await.unwrap();
    assert_eq!(synced, vec![b'Z']);
    let _ = stop.send(());
    task.await.unwrap().unwrap();
}

/// Reads backend messages until ReadyForQuery; returns the ParameterStatus (name, value)
/// pairs among them.
async fn parameter_statuses(socket: &mut tokio::net::TcpStream) -> Vec<(String, String)> {
    let mut statuses = Vec::new();
    loop {
        let (t, body) = read_message(socket).await;
        match t {
            b'S' => {
                let mut parts = body.split(|&b| b == 0).map(|p| String::from_utf8(p.to_vec()).unwrap());
                statuses.push((parts.next().unwrap(), parts.next().unwrap()));
            }
            b'Z' => return statuses,
            _ => {}
        }
    }
}

#[tokio::test]
async fn a_changed_setting_is_reported_once_by_both_protocols() {
    use tokio::io::AsyncWriteExt;
    let (port, stop, task) = start("parameter-status").await;
    let mut socket = raw_startup(port).await;
    let at_start = parameter_statuses(&mut socket).await;
    assert!(at_start.iter().any(|(n, _)| n == "TimeZone"), "{at_start:?}");

    let simple = |sql: &str| frame(b'Q', format!("{sql}\0").as_bytes());
    socket.write_all(&simple("SET TimeZone = 'Asia/Tokyo'")).await.unwrap();
    assert_eq!(parameter_statuses(&mut socket).await, vec![("TimeZone".to_string(), "Asia/Tokyo".to_string())]);
    socket.write_all(&simple("SELECT 1")).await.unwrap();
    assert_eq!(parameter_statuses(&mut socket).await, vec![], "nothing changed");

    // The extended protocol: a SET that succeeds, then a statement that fails.
    let extended = |sql: &str| {
        let mut batch = frame(b'P', format!("\0{sql}\0\0\0").as_bytes());
        batch.extend(frame(b'B', b"\0\0\0\0\0\0\0\0"));
        batch.extend(frame(b'E', b"\0\0\0\0\0"));
        batch.extend(frame(b'S', b""));
        batch
    };
    socket.write_all(&extended("SET application_name = 'wire-test'")).await.unwrap();
    assert_eq!(parameter_statuses(&mut socket).await, vec![("application_name".to_string(), "wire-test".to_string())]);
    socket.write_all(&extended("SELECT 1 / 0")).await.unwrap();
    assert_eq!(parameter_statuses(&mut socket).await, vec![]);
    socket.write_all(&extended("SET TimeZone = 'UTC'")).await.unwrap();
    assert_eq!(parameter_statuses(&mut socket).await, vec![("TimeZone".to_string(), "UTC".to_string())]);
    let _ = stop.send(());
    task.await.unwrap().unwrap();
}
