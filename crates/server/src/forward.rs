//! Sessions that reach a follower run on the leader.
//!
//! A client may connect to any node of a cluster. On a follower (or learner) that knows
//! the leader and its SQL address, the connection is relayed, from its first byte, to the
//! leader's SQL port: the startup, authentication, TLS if the client asks for it, and
//! every statement run on the leader, so writes and linearizable reads work wherever the
//! client connected. The follower only looks at the first message to choose:
//!
//! - a startup message whose `options` set `bulwark.read_consistency` (for example
//!   `PGOPTIONS='-c bulwark.read_consistency=stale'`) stays here: the client asked for
//!   this node's own, possibly stale, reads;
//! - any other startup message goes to the leader, and so does a cancel request, unless
//!   it names a session kept on this node (its process id and secret key);
//! - an SSL request (libpq sends one first unless `sslmode=disable`) is answered here with
//!   `N` when this node serves no TLS, and the startup message after it decides; when this
//!   node serves TLS, the request and everything after it go to the leader (the startup is
//!   then encrypted, so such a session cannot ask to stay). A GSSAPI request is always
//!   answered `N` here, as the local handler would;
//! - anything this module cannot read stays here, for the local handler to reject.
//!
//! If the leader cannot be reached within [`LEADER_CONNECT_MS_MAX`], the session stays
//! here, where statements that need the leader are refused with 57P03 naming it. A relayed
//! session ends when either side closes; when the leader changes, its sessions end with
//! it, and the client reconnects (to any node).

use std::io;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::protocol::{CANCEL_REQUEST_CODE as CANCEL_REQUEST, STARTUP_PACKET_BYTES_MAX as STARTUP_BYTES_MAX};

/// How long a follower waits for a new connection's first message before it serves the
/// connection itself.
pub const STARTUP_WAIT_MS_MAX: u64 = 2_000;
/// How long a follower waits to connect to the leader before it serves the session itself.
pub const LEADER_CONNECT_MS_MAX: u64 = 1_000;

/// PostgreSQL's SSLRequest code.
const SSL_REQUEST: u32 = 80_877_103;
/// PostgreSQL's GSSENCRequest code.
const GSS_REQUEST: u32 = 80_877_104;
/// Protocol 3.0.
const PROTOCOL_3: u32 = 196_608;

/// Where a new connection's session runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// On this node.
    Local,
    /// On the leader.
    Leader,
    /// Not yet known: the first message is an encryption request this node declines
    /// (answer `N`, take the request off the socket, and look at the next message).
    Decline,
}

/// Whether a cancel request's process id and secret key name a session kept on this node.
pub type LocalCancel<'a> = &'a dyn Fn(i32, &[u8]) -> bool;

/// Where the connection whose first message starts with `first` goes, on a node that
/// serves TLS if `tls`; None while more bytes are needed to tell.
pub fn route(first: &[u8], tls: bool, local_cancel: LocalCancel) -> Option<Route> {
    if first.len() < 8 {
        return None;
    }
    let len = u32::from_be_bytes(first[0..4].try_into().expect("4 bytes")) as usize;
    let code = u32::from_be_bytes(first[4..8].try_into().expect("4 bytes"));
    if !(8..=STARTUP_BYTES_MAX).contains(&len) {
        return Some(Route::Local);
    }
    match code {
        SSL_REQUEST if tls => Some(Route::Leader),
        SSL_REQUEST | GSS_REQUEST if len == 8 => Some(Route::Decline),
        CANCEL_REQUEST if len >= 12 => {
            let message = first.get(..len)?;
            let pid = i32::from_be_bytes(message[8..12].try_into().expect("4 bytes"));
            Some(if local_cancel(pid, &message[12..]) { Route::Local } else { Route::Leader })
        }
        PROTOCOL_3 => {
            let message = first.get(..len)?;
            Some(if asks_for_local_reads(&message[8..]) { Route::Local } else { Route::Leader })
        }
        _ => Some(Route::Local),
    }
}

/// Whether a startup message's parameters (name, value, ..., each NUL-terminated) set
/// `bulwark.read_consistency` through `options`.
fn asks_for_local_reads(params: &[u8]) -> bool {
    let mut fields = params.split(|&b| b == 0);
    while let (Some(name), Some(value)) = (fields.next(), fields.next()) {
        if name.is_empty() {
            break;
        }
        if name == b"options" && String::from_utf8_lossy(value).contains(crate::READ_CONSISTENCY_OPTION) {
            return true;
        }
    }
    false
}

/// Where the connection on `socket` goes (on a node that serves TLS if `tls`): its first
/// message is read without being taken off the socket, waiting at most
/// [`STARTUP_WAIT_MS_MAX`] for it; an encryption request this node declines is answered
/// and taken off, and the next message decides. Runs on the connection's own thread (it
/// blocks).
pub fn route_socket(socket: &TcpStream, tls: bool, local_cancel: LocalCancel) -> io::Result<Route> {
    use std::io::{Read, Write};
    let deadline = Instant::now() + Duration::from_millis(STARTUP_WAIT_MS_MAX);
    let mut buf = vec![0u8; STARTUP_BYTES_MAX];
    let mut declined = 0;
    socket.set_nonblocking(true)?;
    loop {
        match socket.peek(&mut buf) {
            Ok(0) => return Ok(Route::Local),
            Ok(n) => match route(&buf[..n], tls, local_cancel) {
                // One decline each for SSL and GSSAPI at most, as the protocol allows.
                Some(Route::Decline) if declined < 2 => {
                    declined += 1;
                    let mut request = [0u8; 8];
                    let mut socket = socket;
                    socket.set_nonblocking(false)?;
                    socket.read_exact(&mut request)?;
                    socket.write_all(b"N")?;
                    socket.set_nonblocking(true)?;
                    continue;
                }
                Some(Route::Decline) => return Ok(Route::Local),
                Some(route) => return Ok(route),
                None => {}
            },
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
        if Instant::now() >= deadline {
            return Ok(Route::Local);
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Relays `client` to the leader at `leader` until either side closes. Err if the leader
/// cannot be reached (nothing was relayed: the caller may serve the session itself).
pub async fn relay(client: TcpStream, leader: &str) -> io::Result<Relayed> {
    let wait = Duration::from_millis(LEADER_CONNECT_MS_MAX);
    let mut upstream = match tokio::time::timeout(wait, tokio::net::TcpStream::connect(leader)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return Err(e),
        Err(_) => {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("no connection to the leader at {leader} within {LEADER_CONNECT_MS_MAX} ms"),
            ))
        }
    };
    upstream.set_nodelay(true)?;
    client.set_nonblocking(true)?;
    let mut client = tokio::net::TcpStream::from_std(client)?;
    client.set_nodelay(true)?;
    Ok(match tokio::io::copy_bidirectional(&mut client, &mut upstream).await {
        Ok((to_leader, to_client)) => Relayed::Closed { to_leader, to_client },
        Err(e) => Relayed::Failed(e),
    })
}

/// How a relayed session ended.
#[derive(Debug)]
pub enum Relayed {
    /// One side closed; the bytes relayed each way.
    Closed { to_leader: u64, to_client: u64 },
    /// A read or write failed.
    Failed(io::Error),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::tests::startup;

    fn no_local(_: i32, _: &[u8]) -> bool {
        false
    }

    #[test]
    fn sessions_go_to_the_leader_unless_they_ask_for_local_reads() {
        let plain = startup(&[("user", "bulwark"), ("database", "bulwark")]);
        assert_eq!(route(&plain, false, &no_local), Some(Route::Leader));
        let local = startup(&[("user", "bulwark"), ("options", "-c bulwark.read_consistency=stale")]);
        assert_eq!(route(&local, false, &no_local), Some(Route::Local));
        let other_options = startup(&[("user", "bulwark"), ("options", "-c statement_timeout=5s")]);
        assert_eq!(route(&other_options, false, &no_local), Some(Route::Leader));
        // A value that names the setting in another parameter does not count.
        let elsewhere = startup(&[("application_name", "bulwark.read_consistency")]);
        assert_eq!(route(&elsewhere, false, &no_local), Some(Route::Leader));
        // Cut anywhere: more bytes are needed.
        for cut in 0..local.len() {
            assert_eq!(route(&local[..cut], true, &no_local), None, "cut at {cut}");
        }
    }

    #[test]
    fn requests_go_to_the_leader_and_what_cannot_be_read_stays_here() {
        let request = |code: u32, len: u32| {
            let mut m = len.to_be_bytes().to_vec();
            m.extend(code.to_be_bytes());
            m.resize(len as usize, 0);
            m
        };
        assert_eq!(route(&request(CANCEL_REQUEST, 16), false, &no_local), Some(Route::Leader));
        assert_eq!(route(&request(SSL_REQUEST, 8), true, &no_local), Some(Route::Leader), "TLS is the leader's");
        assert_eq!(route(&request(SSL_REQUEST, 8), false, &no_local), Some(Route::Decline));
        assert_eq!(route(&request(GSS_REQUEST, 8), true, &no_local), Some(Route::Decline));
        assert_eq!(route(&request(GSS_REQUEST, 9), false, &no_local), Some(Route::Local), "a malformed request");
        let mut too_long = ((STARTUP_BYTES_MAX + 1) as u32).to_be_bytes().to_vec();
        too_long.extend(PROTOCOL_3.to_be_bytes());
        assert_eq!(route(&too_long, false, &no_local), Some(Route::Local));
        let mut old_protocol = 8u32.to_be_bytes().to_vec();
        old_protocol.extend(131_072u32.to_be_bytes());
        assert_eq!(route(&old_protocol, false, &no_local), Some(Route::Local));
        assert_eq!(route(&[0, 0, 0, 4, 0, 3, 0, 0], false, &no_local), Some(Route::Local), "a length under 8");
    }
}
