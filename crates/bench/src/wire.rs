//! The smallest PostgreSQL client there is: connect, `SELECT 1`, disconnect.
//!
//! The recovery and cold-start rows time how long a server takes until it answers a query.
//! Starting psql for every attempt would add its own start-up (milliseconds) to each poll,
//! so the probe speaks the wire protocol itself, over a plain TCP socket:
//!
//! ```text
//!   client                          server
//!   StartupMessage(user, database) ->
//!                                   <- AuthenticationOk, ParameterStatus..., ReadyForQuery
//!   Query("SELECT 1")              ->
//!                                   <- RowDescription, DataRow, CommandComplete, ReadyForQuery
//!   Terminate                      ->
//! ```
//!
//! Only trust authentication is handled (both servers run that way here). Any
//! ErrorResponse, such as PostgreSQL's "the database system is starting up", is a failed
//! attempt, as is a refused connection.

use crate::Result;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// How long one attempt may wait to connect, or for one message.
pub const PROBE_IO_TIMEOUT_MS: u64 = 2_000;
/// The pause between two attempts.
pub const PROBE_INTERVAL_MS: u64 = 5;
/// The longest server message the probe accepts, in bytes.
const MESSAGE_BYTES_MAX: usize = 1 << 20;
/// The protocol version 3.0 as the start-up message carries it.
const PROTOCOL_3_0: i32 = 196_608;

/// Tries `SELECT 1` until it is answered or `limit` passes; returns the time it took.
/// `still_running` is asked between attempts, so a server that exited fails at once.
pub fn wait_for_select1(
    port: u16,
    user: &str,
    database: &str,
    limit: Duration,
    mut still_running: impl FnMut() -> bool,
) -> Result<Duration> {
    let start = Instant::now();
    let mut last_error = String::from("no attempt made");
    while start.elapsed() < limit {
        match select1(port, user, database) {
            Ok(()) => return Ok(start.elapsed()),
            Err(e) => last_error = e,
        }
        if !still_running() {
            return Err(format!("the server on port {port} exited before it answered (last attempt: {last_error})"));
        }
        std::thread::sleep(Duration::from_millis(PROBE_INTERVAL_MS));
    }
    Err(format!("no answer to SELECT 1 on port {port} within {} s (last attempt: {last_error})", limit.as_secs()))
}

/// One attempt: connects, runs `SELECT 1`, checks the answer is one row, disconnects.
pub fn select1(port: u16, user: &str, database: &str) -> Result<()> {
    let io = Duration::from_millis(PROBE_IO_TIMEOUT_MS);
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut s = TcpStream::connect_timeout(&addr, io).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(io)).and_then(|_| s.set_write_timeout(Some(io))).map_err(|e| e.to_string())?;
    s.set_nodelay(true).map_err(|e| e.to_string())?;

    let mut body = PROTOCOL_3_0.to_be_bytes().to_vec();
    for part in ["user", user, "database", database, ""] {
        body.extend_from_slice(part.as_bytes());
        body.push(0);
    }
    let mut startup = ((body.len() + 4) as i32).to_be_bytes().to_vec();
    startup.extend_from_slice(&body);
    s.write_all(&startup).map_err(|e| format!("send start-up: {e}"))?;
    read_until_ready(&mut s)?;

    let query = b"SELECT 1\0";
    let mut msg = vec![b'Q'];
    msg.extend_from_slice(&((query.len() + 4) as i32).to_be_bytes());
    msg.extend_from_slice(query);
    s.write_all(&msg).map_err(|e| format!("send query: {e}"))?;
    let rows = read_until_ready(&mut s)?;
    let _ = s.write_all(&[b'X', 0, 0, 0, 4]);
    if rows != 1 {
        return Err(format!("SELECT 1 returned {rows} rows"));
    }
    Ok(())
}

/// Reads messages up to ReadyForQuery; returns the DataRows seen. An ErrorResponse or an
/// authentication request other than "ok" fails.
fn read_until_ready(s: &mut TcpStream) -> Result<usize> {
    let mut rows = 0;
    loop {
        let mut head = [0u8; 5];
        s.read_exact(&mut head).map_err(|e| format!("read: {e}"))?;
        let len = i32::from_be_bytes([head[1], head[2], head[3], head[4]]);
        let len = usize::try_from(len).ok().filter(|&l| (4..=MESSAGE_BYTES_MAX).contains(&l));
        let Some(len) = len else { return Err(format!("bad message length in {:?}", head)) };
        let mut body = vec![0u8; len - 4];
        s.read_exact(&mut body).map_err(|e| format!("read: {e}"))?;
        match head[0] {
            b'Z' => return Ok(rows),
            b'D' => rows += 1,
            b'R' if body.get(..4) != Some(&[0, 0, 0, 0]) => return Err("the server asks for a password".into()),
            b'E' => return Err(format!("server error: {}", error_message(&body))),
            _ => {}
        }
    }
}

/// The 'M' (message) field of an ErrorResponse.
fn error_message(body: &[u8]) -> String {
    for field in body.split(|&b| b == 0) {
        if let Some((&b'M', text)) = field.split_first() {
            return String::from_utf8_lossy(text).into_owned();
        }
    }
    String::from("(no message)")
}
