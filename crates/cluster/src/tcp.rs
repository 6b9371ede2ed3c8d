//! The peer transport over TCP: Raft's three RPCs between nodes, as checksummed frames.
//!
//! ```text
//!   node 1                                             node 2
//!   openraft ─▶ TcpNetwork::new_client(2) ─▶ TcpPeer ──frames──▶ TcpServer ─▶ Raft::append_entries
//!                 (pool of idle connections                       (accept loop,    Raft::vote
//!                  per peer, shared by clients)                    one task per    Raft::install_snapshot
//!                                                                  connection)
//!            ◀──────────────── reply frame ◀───────────────────────────┘
//! ```
//!
//! A connection carries one request at a time: the client writes a request frame and
//! reads the reply frame before it sends anything else on that connection. That keeps the
//! protocol free of request ids and reordering: a reply always answers the last request.
//!
//! # Frame
//!
//! All integers little-endian.
//!
//! ```text
//!   offset  size  field
//!        0     4  len    u32, bytes after the header (kind + body), 1..=FRAME_BYTES_MAX (64 MiB)
//!        4     4  crc    u32, CRC-32C (Castagnoli) of kind ‖ body
//!        8     1  kind   u8, what the body is (below)
//!        9  len-1 body
//! ```
//!
//! A frame with a bad checksum, a length of 0 or over [`FRAME_BYTES_MAX`], or a kind the
//! receiver does not know closes the connection: after a bad checksum or length nothing
//! says where the next frame starts, and a peer that sends an unknown kind speaks another
//! protocol. Each is counted in [`Counters`]; none panics. A well-framed body that does not decode (a newer peer, a bug) is answered
//! with a `failed` reply naming the problem and counted; the connection stays open, since the
//! frame boundaries are intact.
//!
//! # Kinds
//!
//! ```text
//!   kind  request              reply kind = request kind | 0x80
//!   0x01  AppendEntries        0x81
//!   0x02  Vote                 0x82
//!   0x03  InstallSnapshot      0x83
//!   0x04  (reserved) forward a client write to the leader
//!   0x10  Status               0x90  (a peer's SQL and HTTP addresses and wall clock)
//!   0x11  (reserved) admin: add voter
//!   0x12  (reserved) admin: add learner
//!   0x13  (reserved) admin: remove node
//!   0x14  TimeoutNow           0x94  (from the leader in a switchover: stand now; body: term u64)
//! ```
//!
//! This version answers a reserved kind with a `failed` reply ("not served"), so an older
//! node tells a newer one what it lacks instead of dropping the connection. Any other kind
//! is unknown.
//!
//! # Bodies
//!
//! Built from the values of [`crate::codec`] (log ids, votes, entries, snapshot metadata),
//! nested without their own version byte: the body carries one.
//!
//! ```text
//!   request body     version u8 (PROTOCOL_VERSION = 1) | from u64 | to u64 | message
//!     AppendEntries    vote | prev_log_id Option<LogId> | leader_commit Option<LogId>
//!                      | count u32 | count × Entry
//!     Vote             vote | last_log_id Option<LogId>
//!     InstallSnapshot  vote | meta SnapshotMeta | offset u64 | done u8 | data bytes
//!
//!   reply body       version u8 | status u8 | ...
//!     status 0 ok               the response:
//!       AppendEntries             tag u8: 0 success, 1 partial success + Option<LogId>,
//!                                 2 conflict, 3 higher vote + Vote
//!       Vote                      vote | granted u8 | last_log_id Option<LogId>
//!       InstallSnapshot           vote
//!     status 1 stopped          the remote Raft has shut down     → RemoteError(Fatal::Stopped)
//!     status 2 panicked         the remote Raft panicked          → RemoteError(Fatal::Panicked)
//!     status 3 snapshot mismatch  expect id string | expect offset u64 | got id string
//!                                 | got offset u64                → RemoteError(SnapshotMismatch)
//!     status 4 failed           message string (at most ERROR_MESSAGE_BYTES_MAX)
//!                               a remote storage error, a body that did not decode, a request
//!                               meant for another node, a reserved kind → RPCError::Network
//! ```
//!
//! `to` is the node the sender means to reach. The server refuses a request for any other
//! id: after an address is reused, a vote meant for node 2 must not be counted by node 3
//! (openraft's guide, "ensure connection to the correct node").
//!
//! # Client
//!
//! [`TcpNetwork`] is a node's [`RaftNetworkFactory`]. openraft asks it for a client per
//! replication stream and, in 0.9, a fresh one for every heartbeat and vote round, so the
//! clients share a pool of idle connections per peer (keyed by id and address). An RPC takes
//! an idle connection or dials a new one, and puts it back only after a complete, valid
//! reply; any error drops it, and the next RPC dials again. So a peer has as many
//! connections as it has concurrent RPCs from this node (in practice one or two: the
//! replication stream and a heartbeat), never a heartbeat stuck behind a snapshot chunk.
//!
//! - Dialing is bounded by [`CONNECT_MS_MAX`] and the RPC's deadline; a refused or timed-out
//!   dial is [`RPCError::Unreachable`], so openraft backs off ([`UNREACHABLE_BACKOFF_MS`]).
//! - The whole exchange is bounded by `RPCOption::soft_ttl()` (3/4 of the `hard_ttl()` after
//!   which openraft drops the call itself), so the transport sees its own timeout first,
//!   counts it and returns [`RPCError::Timeout`]. If openraft drops the call anyway, the
//!   connection is dropped with it: a connection is owned by the call while in use.
//! - An error on an open connection (reset, end of stream, a bad reply frame) is
//!   [`RPCError::Network`]: the peer may be back at the next attempt.
//! - A request that would not fit a frame is [`RPCError::PayloadTooLarge`] with a hint of
//!   half the entries, so openraft splits it.
//! - Idle connections older than [`POOL_IDLE_MS_MAX`] are closed rather than reused, since
//!   the server closes connections idle for [`PEER_IDLE_MS_MAX`], which is longer; one the
//!   peer has already closed (it restarted) is noticed by a non-blocking read before reuse.
//!
//! # Server
//!
//! [`serve`] runs an accept loop on a listener and one task per connection. At most
//! [`PEER_CONNECTIONS_MAX`] connections are served at once; one past that is closed at
//! once and counted. A connection waits at most [`PEER_IDLE_MS_MAX`] for a request; once a
//! frame has begun, the rest must arrive within [`FRAME_READ_MS_MAX`]; a Raft call is
//! bounded by [`RAFT_CALL_MS_MAX`] and writing the reply by [`REPLY_WRITE_MS_MAX`].
//! [`TcpServer::shutdown`] stops accepting, closes the listener and every connection, and
//! waits for them.
//!
//! # What it leaves out
//!
//! - No TLS and no authentication: any process that can reach the port can speak Raft to
//!   the node. Bind to a private network.
//! - No pipelining: one request in flight per connection. openraft 0.9 keeps one append in
//!   flight per follower anyway.
//! - Entries larger than a frame (or than a heartbeat's deadline can carry) cannot
//!   replicate: openraft cannot split a single entry. The proposer must bound commands well
//!   below [`FRAME_BYTES_MAX`].
//! - No streaming of snapshots: they go as openraft's chunks (`snapshot_max_chunk_size`,
//!   3 MiB by default), each a frame.
//! - The kinds reserved above.

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use openraft::error::{
    Fatal, Infallible, InstallSnapshotError, NetworkError, PayloadTooLarge, RPCError, RaftError, RemoteError,
    SnapshotMismatch, Timeout, Unreachable,
};
use openraft::network::{Backoff, RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest,
    VoteResponse,
};
use openraft::{BasicNode, RPCTypes, SnapshotSegmentId};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

use crate::codec::{self, CodecError, Reader};
use crate::types::{NodeId, Raft, TypeConfig};

/// The largest frame, counting kind and body (the `len` field), in bytes.
pub const FRAME_BYTES_MAX: usize = 64 << 20;
/// The size of a frame's header (`len` and `crc`), in bytes.
pub const FRAME_HEADER_BYTES: usize = 8;
/// The most entries one AppendEntries request may carry: as many of the smallest entries
/// as fit a frame.
pub const ENTRIES_PER_REQUEST_MAX: usize = FRAME_BYTES_MAX / codec::ENTRY_BYTES_MIN;
/// The version byte every request and reply body starts with.
pub const PROTOCOL_VERSION: u8 = 1;
/// The longest a client waits to establish a connection, in milliseconds (also bounded by
/// the RPC's own deadline).
pub const CONNECT_MS_MAX: u64 = 1_000;
/// How long openraft waits before retrying a peer it could not reach, in milliseconds.
pub const UNREACHABLE_BACKOFF_MS: u64 = 100;
/// The most idle connections a node keeps to one peer.
pub const POOL_IDLE_PER_PEER_MAX: usize = 4;
/// How long an idle pooled connection may be reused, in milliseconds; older ones are
/// closed. Below [`PEER_IDLE_MS_MAX`], so the client lets go before the server does.
pub const POOL_IDLE_MS_MAX: u64 = 30_000;
/// The most peer connections a server serves at once.
pub const PEER_CONNECTIONS_MAX: usize = 64;
/// How long a server keeps a connection that sends no request, in milliseconds.
pub const PEER_IDLE_MS_MAX: u64 = 60_000;
/// How long a server waits for the rest of a frame once it has begun, in milliseconds.
pub const FRAME_READ_MS_MAX: u64 = 10_000;
/// How long a server waits for Raft to answer one request, in milliseconds.
pub const RAFT_CALL_MS_MAX: u64 = 60_000;
/// How long a server waits to write one reply, in milliseconds.
pub const REPLY_WRITE_MS_MAX: u64 = 10_000;
/// How long the accept loop pauses after a failed accept (out of file descriptors, say),
/// in milliseconds, rather than spin.
pub const ACCEPT_RETRY_MS: u64 = 50;
/// The longest error message a reply carries, in bytes (longer ones are cut).
pub const ERROR_MESSAGE_BYTES_MAX: usize = 4096;
/// How much buffer a frame read reserves before its bytes arrive, in bytes: a header that
/// claims a large frame costs memory only as the bytes really come.
const READ_RESERVE_BYTES_MAX: usize = 64 << 10;

/// The bit that turns a request kind into its reply kind.
pub const KIND_REPLY_BIT: u8 = 0x80;
/// Reserved: forward a client write to the leader.
pub const KIND_FORWARD_WRITE: u8 = 0x04;
/// Reserved: admin, add a voter.
pub const KIND_ADMIN_ADD_VOTER: u8 = 0x11;
/// Reserved: admin, add a learner.
pub const KIND_ADMIN_ADD_LEARNER: u8 = 0x12;
/// Reserved: admin, remove a node.
pub const KIND_ADMIN_REMOVE: u8 = 0x13;
/// An AppendEntries request bigger than this is preceded by one without entries, to learn
/// whether the follower's log matches before sending it (see `TcpPeer::append_entries`).
pub const PROBE_ABOVE_BYTES: usize = 1 << 20;
/// Request kinds set aside for later; answered with a `failed` reply.
pub const RESERVED_KINDS: [u8; 4] =
    [KIND_FORWARD_WRITE, KIND_ADMIN_ADD_VOTER, KIND_ADMIN_ADD_LEARNER, KIND_ADMIN_REMOVE];
/// Longest address a `Status` reply carries.
pub const ADDR_BYTES_MAX: usize = 256;

/// What a node tells its peers about itself (the `Status` request): where its clients and
/// its HTTP interface connect, and its wall clock.
#[derive(Clone)]
pub struct LocalInfo {
    /// The SQL and HTTP addresses, empty until the server has bound them.
    pub addrs: Arc<std::sync::Mutex<(String, String)>>,
    /// This node's wall clock, microseconds since the Unix epoch. From outside, so that
    /// tests can give a node a clock that is off.
    pub clock: Arc<dyn Fn() -> i64 + Send + Sync>,
}

impl Default for LocalInfo {
    fn default() -> Self {
        LocalInfo { addrs: Arc::default(), clock: Arc::new(system_clock_micros) }
    }
}

/// The system's wall clock, microseconds since the Unix epoch.
pub fn system_clock_micros() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_micros() as i64)
}

/// A peer's answer to `Status`.
#[derive(Debug, Clone)]
pub struct PeerStatus {
    /// Where its clients connect (empty if not known yet).
    pub sql_addr: String,
    /// Its HTTP interface.
    pub http_addr: String,
    /// Its wall clock when it answered, microseconds since the Unix epoch.
    pub clock_micros: i64,
}

/// The request kinds this version serves (a reply's kind is the request's with
/// [`KIND_REPLY_BIT`] set).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// An AppendEntries request (also the heartbeat).
    AppendEntries = 0x01,
    /// A RequestVote request.
    Vote = 0x02,
    /// One chunk of a snapshot.
    InstallSnapshot = 0x03,
    /// Who are you: the peer's SQL and HTTP addresses and its wall clock.
    Status = 0x10,
    /// From the leader, during a switchover: stand for election now. Body: the leader's
    /// term (u64); ignored unless this node is in that term and follows the sender.
    TimeoutNow = 0x14,
}

impl Kind {
    /// The request kind with this byte, if this version serves it.
    pub fn from_request(kind: u8) -> Option<Kind> {
        match kind {
            0x01 => Some(Kind::AppendEntries),
            0x02 => Some(Kind::Vote),
            0x03 => Some(Kind::InstallSnapshot),
            0x10 => Some(Kind::Status),
            0x14 => Some(Kind::TimeoutNow),
            _ => None,
        }
    }

    /// The request's byte.
    pub fn request(self) -> u8 {
        self as u8
    }

    /// The reply's byte.
    pub fn reply(self) -> u8 {
        self as u8 | KIND_REPLY_BIT
    }
}

const STATUS_OK: u8 = 0;
const STATUS_STOPPED: u8 = 1;
const STATUS_PANICKED: u8 = 2;
const STATUS_SNAPSHOT_MISMATCH: u8 = 3;
const STATUS_FAILED: u8 = 4;

const APPEND_SUCCESS: u8 = 0;
const APPEND_PARTIAL_SUCCESS: u8 = 1;
const APPEND_CONFLICT: u8 = 2;
const APPEND_HIGHER_VOTE: u8 = 3;

/// What went through a transport, counted. Shared by a [`TcpNetwork`]'s clients, or by a
/// [`TcpServer`]'s connections.
#[derive(Debug, Default)]
pub struct Counters {
    frames_sent: AtomicU64,
    frames_received: AtomicU64,
    checksum_failures: AtomicU64,
    oversize_frames: AtomicU64,
    unknown_kinds: AtomicU64,
    malformed_messages: AtomicU64,
    timeouts: AtomicU64,
    connect_failures: AtomicU64,
    connections_refused: AtomicU64,
}

/// The values of [`Counters`] at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CounterValues {
    /// Frames written whole.
    pub frames_sent: u64,
    /// Frames read whole, with a good checksum.
    pub frames_received: u64,
    /// Frames whose checksum did not match (the connection was closed).
    pub checksum_failures: u64,
    /// Frame headers with a length of 0 or over [`FRAME_BYTES_MAX`] (connection closed).
    pub oversize_frames: u64,
    /// Frames of a kind the receiver does not know, or a reply of the wrong kind
    /// (connection closed).
    pub unknown_kinds: u64,
    /// Well-framed bodies that did not decode.
    pub malformed_messages: u64,
    /// RPCs past their deadline (client), frames or replies too slow (server).
    pub timeouts: u64,
    /// Dials that failed or timed out (the peer was reported unreachable).
    pub connect_failures: u64,
    /// Connections a server closed at once because it already served
    /// [`PEER_CONNECTIONS_MAX`], or after a failed accept.
    pub connections_refused: u64,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl Counters {
    /// The current values.
    pub fn values(&self) -> CounterValues {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        CounterValues {
            frames_sent: get(&self.frames_sent),
            frames_received: get(&self.frames_received),
            checksum_failures: get(&self.checksum_failures),
            oversize_frames: get(&self.oversize_frames),
            unknown_kinds: get(&self.unknown_kinds),
            malformed_messages: get(&self.malformed_messages),
            timeouts: get(&self.timeouts),
            connect_failures: get(&self.connect_failures),
            connections_refused: get(&self.connections_refused),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Frames
// ---------------------------------------------------------------------------------------

/// Whether a body, with its kind byte, fits under [`FRAME_BYTES_MAX`].
fn fits_a_frame(body: &[u8]) -> bool {
    body.len() < FRAME_BYTES_MAX
}

/// Builds a frame: header, kind, body. A frame over [`FRAME_BYTES_MAX`] is the caller's
/// bug (senders check the size first).
pub fn encode_frame(kind: u8, body: &[u8]) -> Vec<u8> {
    let len = 1 + body.len();
    assert!(len <= FRAME_BYTES_MAX, "frame of {len} bytes over FRAME_BYTES_MAX");
    let crc = crc32c::crc32c_append(crc32c::crc32c(&[kind]), body);
    let mut frame = Vec::with_capacity(FRAME_HEADER_BYTES + len);
    frame.extend_from_slice(&(len as u32).to_le_bytes());
    frame.extend_from_slice(&crc.to_le_bytes());
    frame.push(kind);
    frame.extend_from_slice(body);
    frame
}

/// One frame read whole, checksum verified.
#[derive(Debug, PartialEq, Eq)]
struct Frame {
    /// Kind byte, then body.
    bytes: Vec<u8>,
}

impl Frame {
    fn kind(&self) -> u8 {
        self.bytes[0]
    }

    fn body(&self) -> &[u8] {
        &self.bytes[1..]
    }
}

/// Why a frame could not be read. Every one of these ends the connection.
#[derive(Debug)]
enum FrameError {
    /// The stream failed or ended inside a frame.
    Io(io::Error),
    /// A length of 0 or over [`FRAME_BYTES_MAX`].
    Oversize(u32),
    /// The checksum did not match.
    Checksum { stored: u32, computed: u32 },
    /// No request within [`PEER_IDLE_MS_MAX`] (not an error: the peer is quiet).
    Idle,
    /// The rest of a frame did not arrive in time.
    Timeout,
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::Io(e) => write!(f, "reading a frame: {e}"),
            FrameError::Oversize(len) => write!(f, "frame length {len} outside 1..={FRAME_BYTES_MAX}"),
            FrameError::Checksum { stored, computed } => {
                write!(f, "frame checksum {stored:#010x}, computed {computed:#010x}")
            }
            FrameError::Idle => write!(f, "connection idle"),
            FrameError::Timeout => write!(f, "frame did not arrive in time"),
        }
    }
}

impl FrameError {
    /// Counts this failure where it belongs.
    fn count(&self, counters: &Counters) {
        match self {
            FrameError::Oversize(_) => bump(&counters.oversize_frames),
            FrameError::Checksum { .. } => bump(&counters.checksum_failures),
            FrameError::Timeout => bump(&counters.timeouts),
            FrameError::Io(_) | FrameError::Idle => {}
        }
    }
}

/// Reads one frame. `Ok(None)`: the stream ended cleanly between frames. Waits up to
/// `idle` for the frame's first byte, then up to `rest` for the remainder.
async fn read_frame<R: AsyncRead + Unpin>(
    r: &mut R,
    idle: Duration,
    rest: Duration,
) -> Result<Option<Frame>, FrameError> {
    let mut header = [0u8; FRAME_HEADER_BYTES];
    let got = match tokio::time::timeout(idle, r.read(&mut header)).await {
        Err(_) => return Err(FrameError::Idle),
        Ok(Err(e)) => return Err(FrameError::Io(e)),
        Ok(Ok(0)) => return Ok(None),
        Ok(Ok(n)) => n,
    };
    match tokio::time::timeout(rest, read_frame_rest(r, header, got)).await {
        Err(_) => Err(FrameError::Timeout),
        Ok(result) => result.map(Some),
    }
}

async fn read_frame_rest<R: AsyncRead + Unpin>(
    r: &mut R,
    mut header: [u8; FRAME_HEADER_BYTES],
    got: usize,
) -> Result<Frame, FrameError> {
    r.read_exact(&mut header[got..]).await.map_err(FrameError::Io)?;
    let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
    let stored = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    if len == 0 || len as usize > FRAME_BYTES_MAX {
        return Err(FrameError::Oversize(len));
    }
    let len = len as usize;
    let mut bytes = Vec::with_capacity(len.min(READ_RESERVE_BYTES_MAX));
    (&mut *r).take(len as u64).read_to_end(&mut bytes).await.map_err(FrameError::Io)?;
    if bytes.len() < len {
        let why = format!("stream ended {} bytes into a frame of {len}", bytes.len());
        return Err(FrameError::Io(io::Error::new(io::ErrorKind::UnexpectedEof, why)));
    }
    let computed = crc32c::crc32c(&bytes);
    if computed != stored {
        return Err(FrameError::Checksum { stored, computed });
    }
    Ok(Frame { bytes })
}

async fn write_frame<W: AsyncWrite + Unpin>(w: &mut W, frame: &[u8], counters: &Counters) -> io::Result<()> {
    w.write_all(frame).await?;
    bump(&counters.frames_sent);
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Messages
// ---------------------------------------------------------------------------------------

/// Who a request is from and for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Route {
    from: NodeId,
    to: NodeId,
}

fn put_request_header(out: &mut Vec<u8>, route: Route) {
    codec::put_u8(out, PROTOCOL_VERSION);
    codec::put_u64(out, route.from);
    codec::put_u64(out, route.to);
}

fn read_version(r: &mut Reader<'_>) -> Result<(), CodecError> {
    let offset = r.offset();
    match r.u8("protocol version")? {
        PROTOCOL_VERSION => Ok(()),
        value => Err(CodecError::BadTag { what: "protocol version", offset, value }),
    }
}

fn read_request_header(r: &mut Reader<'_>) -> Result<Route, CodecError> {
    read_version(r)?;
    let from = r.u64("request from")?;
    let to = r.u64("request to")?;
    Ok(Route { from, to })
}

fn put_append_entries(out: &mut Vec<u8>, rpc: &AppendEntriesRequest<TypeConfig>) {
    codec::put_vote(out, &rpc.vote);
    codec::put_option_log_id(out, &rpc.prev_log_id);
    codec::put_option_log_id(out, &rpc.leader_commit);
    codec::put_count(out, "entries", rpc.entries.len(), ENTRIES_PER_REQUEST_MAX);
    for entry in &rpc.entries {
        codec::put_entry(out, entry);
    }
}

fn read_append_entries(r: &mut Reader<'_>) -> Result<AppendEntriesRequest<TypeConfig>, CodecError> {
    let vote = codec::read_vote(r)?;
    let prev_log_id = codec::read_option_log_id(r)?;
    let leader_commit = codec::read_option_log_id(r)?;
    let count = r.count("entries", ENTRIES_PER_REQUEST_MAX, codec::ENTRY_BYTES_MIN)?;
    let mut entries = Vec::with_capacity(count);
    for _ in 0..count {
        entries.push(codec::read_entry(r)?);
    }
    Ok(AppendEntriesRequest { vote, prev_log_id, leader_commit, entries })
}

fn put_vote_request(out: &mut Vec<u8>, rpc: &VoteRequest<NodeId>) {
    codec::put_vote(out, &rpc.vote);
    codec::put_option_log_id(out, &rpc.last_log_id);
}

fn read_vote_request(r: &mut Reader<'_>) -> Result<VoteRequest<NodeId>, CodecError> {
    let vote = codec::read_vote(r)?;
    let last_log_id = codec::read_option_log_id(r)?;
    Ok(VoteRequest { vote, last_log_id })
}

fn put_install_snapshot(out: &mut Vec<u8>, rpc: &InstallSnapshotRequest<TypeConfig>) {
    codec::put_vote(out, &rpc.vote);
    codec::put_snapshot_meta(out, &rpc.meta);
    codec::put_u64(out, rpc.offset);
    codec::put_bool(out, rpc.done);
    codec::put_bytes(out, "snapshot chunk", &rpc.data, FRAME_BYTES_MAX);
}

fn read_install_snapshot(r: &mut Reader<'_>) -> Result<InstallSnapshotRequest<TypeConfig>, CodecError> {
    let vote = codec::read_vote(r)?;
    let meta = codec::read_snapshot_meta(r)?;
    let offset = r.u64("snapshot offset")?;
    let done = r.bool("snapshot done")?;
    let data = r.bytes("snapshot chunk", FRAME_BYTES_MAX)?.to_vec();
    Ok(InstallSnapshotRequest { vote, meta, offset, data, done })
}

/// A reply as it travels: the response, or why there is none.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Reply<T> {
    Ok(T),
    Stopped,
    Panicked,
    SnapshotMismatch(SnapshotMismatch),
    Failed(String),
}

/// Cuts `s` to at most [`ERROR_MESSAGE_BYTES_MAX`] bytes, on a character boundary.
fn cut_message(s: &str) -> &str {
    let mut end = s.len().min(ERROR_MESSAGE_BYTES_MAX);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn put_reply<T>(out: &mut Vec<u8>, reply: &Reply<T>, put_ok: fn(&mut Vec<u8>, &T)) {
    codec::put_u8(out, PROTOCOL_VERSION);
    match reply {
        Reply::Ok(t) => {
            codec::put_u8(out, STATUS_OK);
            put_ok(out, t);
        }
        Reply::Stopped => codec::put_u8(out, STATUS_STOPPED),
        Reply::Panicked => codec::put_u8(out, STATUS_PANICKED),
        Reply::SnapshotMismatch(m) => {
            codec::put_u8(out, STATUS_SNAPSHOT_MISMATCH);
            for segment in [&m.expect, &m.got] {
                codec::put_str(out, "snapshot id", &segment.id, codec::SNAPSHOT_ID_BYTES_MAX);
                codec::put_u64(out, segment.offset);
            }
        }
        Reply::Failed(why) => {
            codec::put_u8(out, STATUS_FAILED);
            codec::put_str(out, "error message", cut_message(why), ERROR_MESSAGE_BYTES_MAX);
        }
    }
}

fn read_segment(r: &mut Reader<'_>) -> Result<SnapshotSegmentId, CodecError> {
    let id = r.string("snapshot id", codec::SNAPSHOT_ID_BYTES_MAX)?;
    let offset = r.u64("snapshot offset")?;
    Ok(SnapshotSegmentId { id, offset })
}

/// Decodes a whole reply body.
fn decode_reply<T>(body: &[u8], read_ok: fn(&mut Reader<'_>) -> Result<T, CodecError>) -> Result<Reply<T>, CodecError> {
    let mut r = Reader::new(body);
    read_version(&mut r)?;
    let offset = r.offset();
    let reply = match r.u8("reply status")? {
        STATUS_OK => Reply::Ok(read_ok(&mut r)?),
        STATUS_STOPPED => Reply::Stopped,
        STATUS_PANICKED => Reply::Panicked,
        STATUS_SNAPSHOT_MISMATCH => {
            let expect = read_segment(&mut r)?;
            let got = read_segment(&mut r)?;
            Reply::SnapshotMismatch(SnapshotMismatch { expect, got })
        }
        STATUS_FAILED => Reply::Failed(r.string("error message", ERROR_MESSAGE_BYTES_MAX)?),
        value => return Err(CodecError::BadTag { what: "reply status", offset, value }),
    };
    r.finish("reply")?;
    Ok(reply)
}

fn put_append_entries_response(out: &mut Vec<u8>, resp: &AppendEntriesResponse<NodeId>) {
    match resp {
        AppendEntriesResponse::Success => codec::put_u8(out, APPEND_SUCCESS),
        AppendEntriesResponse::PartialSuccess(matching) => {
            codec::put_u8(out, APPEND_PARTIAL_SUCCESS);
            codec::put_option_log_id(out, matching);
        }
        AppendEntriesResponse::Conflict => codec::put_u8(out, APPEND_CONFLICT),
        AppendEntriesResponse::HigherVote(vote) => {
            codec::put_u8(out, APPEND_HIGHER_VOTE);
            codec::put_vote(out, vote);
        }
    }
}

fn read_append_entries_response(r: &mut Reader<'_>) -> Result<AppendEntriesResponse<NodeId>, CodecError> {
    let offset = r.offset();
    match r.u8("append entries response")? {
        APPEND_SUCCESS => Ok(AppendEntriesResponse::Success),
        APPEND_PARTIAL_SUCCESS => Ok(AppendEntriesResponse::PartialSuccess(codec::read_option_log_id(r)?)),
        APPEND_CONFLICT => Ok(AppendEntriesResponse::Conflict),
        APPEND_HIGHER_VOTE => Ok(AppendEntriesResponse::HigherVote(codec::read_vote(r)?)),
        value => Err(CodecError::BadTag { what: "append entries response", offset, value }),
    }
}

fn put_vote_response(out: &mut Vec<u8>, resp: &VoteResponse<NodeId>) {
    codec::put_vote(out, &resp.vote);
    codec::put_bool(out, resp.vote_granted);
    codec::put_option_log_id(out, &resp.last_log_id);
}

fn read_vote_response(r: &mut Reader<'_>) -> Result<VoteResponse<NodeId>, CodecError> {
    let vote = codec::read_vote(r)?;
    let vote_granted = r.bool("vote granted")?;
    let last_log_id = codec::read_option_log_id(r)?;
    Ok(VoteResponse { vote, vote_granted, last_log_id })
}

fn put_install_snapshot_response(out: &mut Vec<u8>, resp: &InstallSnapshotResponse<NodeId>) {
    codec::put_vote(out, &resp.vote);
}

fn read_install_snapshot_response(r: &mut Reader<'_>) -> Result<InstallSnapshotResponse<NodeId>, CodecError> {
    Ok(InstallSnapshotResponse { vote: codec::read_vote(r)? })
}

/// The wire form of a remote Raft error. `api` turns the API error, if the RPC has one
/// that travels, into a reply.
fn reply_of_error<T, E: fmt::Display>(e: RaftError<NodeId, E>, api: fn(E) -> Reply<T>) -> Reply<T> {
    match e {
        RaftError::Fatal(Fatal::Stopped) => Reply::Stopped,
        RaftError::Fatal(Fatal::Panicked) => Reply::Panicked,
        RaftError::Fatal(Fatal::StorageError(s)) => Reply::Failed(format!("storage error: {s}")),
        RaftError::APIError(e) => api(e),
    }
}

fn no_api_error<T>(e: Infallible) -> Reply<T> {
    match e {}
}

fn snapshot_api_error<T>(e: InstallSnapshotError) -> Reply<T> {
    match e {
        InstallSnapshotError::SnapshotMismatch(m) => Reply::SnapshotMismatch(m),
    }
}

// ---------------------------------------------------------------------------------------
// Client
// ---------------------------------------------------------------------------------------

/// Why the transport itself failed: the source of openraft's `Unreachable` and `Network`
/// errors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TransportError(pub String);

/// How a call failed before a reply could be decoded.
enum CallError {
    /// Could not connect: openraft should back off.
    Unreachable(String),
    /// Past the deadline.
    Timeout,
    /// The connection or the reply failed; the next call dials again.
    Network(String),
}

struct IdleConnection {
    stream: TcpStream,
    since: Instant,
}

/// Idle connections, per peer (id and address), shared by every client of one node.
#[derive(Default)]
struct Pool {
    idle: Mutex<HashMap<(NodeId, String), Vec<IdleConnection>>>,
}

impl Pool {
    fn lock(&self) -> MutexGuard<'_, HashMap<(NodeId, String), Vec<IdleConnection>>> {
        self.idle.lock().expect("connection pool lock poisoned: a holder panicked")
    }

    /// The most recently used idle connection to the peer that is young enough and still
    /// open.
    fn take(&self, to: NodeId, addr: &str) -> Option<TcpStream> {
        let mut idle = self.lock();
        let list = idle.get_mut(&(to, addr.to_string()))?;
        let max = Duration::from_millis(POOL_IDLE_MS_MAX);
        while let Some(c) = list.pop() {
            if c.since.elapsed() < max && still_open(&c.stream) {
                return Some(c.stream);
            }
        }
        None
    }

    fn put(&self, to: NodeId, addr: &str, stream: TcpStream) {
        let mut idle = self.lock();
        let list = idle.entry((to, addr.to_string())).or_default();
        if list.len() < POOL_IDLE_PER_PEER_MAX {
            list.push(IdleConnection { stream, since: Instant::now() });
        }
    }
}

/// Whether an idle connection looks usable: a live peer has nothing to say between
/// requests, while one that closed it (a restart, its idle timeout) left it readable at end
/// of stream. A cheap probe, not a guarantee: a close that has not arrived yet still costs
/// one RPC a `Network` error.
fn still_open(stream: &TcpStream) -> bool {
    let mut probe = [0u8; 1];
    matches!(stream.try_read(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
}

/// A node's TCP network: hands openraft a [`TcpPeer`] per target. Cloning shares the
/// connection pool and the counters.
#[derive(Clone)]
pub struct TcpNetwork {
    id: NodeId,
    pool: Arc<Pool>,
    counters: Arc<Counters>,
}

impl fmt::Debug for TcpNetwork {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpNetwork").field("id", &self.id).field("counters", &self.counters.values()).finish()
    }
}

impl TcpNetwork {
    /// The network of node `id` (the id is sent with every request).
    pub fn new(id: NodeId) -> TcpNetwork {
        TcpNetwork { id, pool: Arc::default(), counters: Arc::default() }
    }

    /// The clients' counters, all peers together.
    pub fn counters(&self) -> CounterValues {
        self.counters.values()
    }
}

impl RaftNetworkFactory<TypeConfig> for TcpNetwork {
    type Network = TcpPeer;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> TcpPeer {
        TcpPeer {
            route: Route { from: self.id, to: target },
            node: node.clone(),
            pool: self.pool.clone(),
            counters: self.counters.clone(),
        }
    }
}

/// One node's client for one peer, at the address its membership gives.
pub struct TcpPeer {
    route: Route,
    node: BasicNode,
    pool: Arc<Pool>,
    counters: Arc<Counters>,
}

impl fmt::Debug for TcpPeer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpPeer").field("route", &self.route).field("addr", &self.node.addr).finish()
    }
}

impl TcpPeer {
    async fn connect(&self, deadline: Instant) -> Result<TcpStream, CallError> {
        let to = self.route.to;
        let addr = &self.node.addr;
        let wait = Duration::from_millis(CONNECT_MS_MAX).min(deadline.saturating_duration_since(Instant::now()));
        let why = match tokio::time::timeout(wait, TcpStream::connect(addr.as_str())).await {
            Ok(Ok(stream)) => match stream.set_nodelay(true) {
                Ok(()) => return Ok(stream),
                Err(e) => format!("set TCP_NODELAY to node {to} at {addr}: {e}"),
            },
            Ok(Err(e)) => format!("connect to node {to} at {addr}: {e}"),
            Err(_) => format!("connect to node {to} at {addr}: no answer within {} ms", wait.as_millis()),
        };
        bump(&self.counters.connect_failures);
        Err(CallError::Unreachable(why))
    }

    /// Sends one request frame and decodes its reply, within `ttl`. The connection goes
    /// back to the pool only after a valid reply.
    async fn call<T>(
        &self,
        kind: Kind,
        body: &[u8],
        ttl: Duration,
        read_ok: fn(&mut Reader<'_>) -> Result<T, CodecError>,
    ) -> Result<Reply<T>, CallError> {
        let deadline = Instant::now() + ttl;
        let frame = encode_frame(kind.request(), body);
        let mut stream = match self.pool.take(self.route.to, &self.node.addr) {
            Some(stream) => stream,
            None => self.connect(deadline).await?,
        };
        let exchange = async {
            write_frame(&mut stream, &frame, &self.counters).await.map_err(FrameError::Io)?;
            // The deadline bounds the whole exchange; these waits only need to be longer.
            let wait = Duration::from_millis(PEER_IDLE_MS_MAX);
            read_frame(&mut stream, wait, wait).await
        };
        let to = self.route.to;
        let frame = match tokio::time::timeout_at(deadline, exchange).await {
            Err(_) => {
                bump(&self.counters.timeouts);
                return Err(CallError::Timeout);
            }
            Ok(Err(e)) => {
                e.count(&self.counters);
                return Err(CallError::Network(format!("node {to}: {e}")));
            }
            Ok(Ok(None)) => return Err(CallError::Network(format!("node {to} closed the connection"))),
            Ok(Ok(Some(frame))) => frame,
        };
        bump(&self.counters.frames_received);
        if frame.kind() != kind.reply() {
            bump(&self.counters.unknown_kinds);
            let why = format!("node {to} replied with kind {:#04x} to kind {:#04x}", frame.kind(), kind.request());
            return Err(CallError::Network(why));
        }
        match decode_reply(frame.body(), read_ok) {
            Ok(reply) => {
                self.pool.put(to, &self.node.addr, stream);
                Ok(reply)
            }
            Err(e) => {
                bump(&self.counters.malformed_messages);
                Err(CallError::Network(format!("reply from node {to}: {e}")))
            }
        }
    }

    /// Asks this peer, which follows this node in `term`, to stand for election now (a
    /// switchover). Ok once it has started its election.
    pub async fn timeout_now(&mut self, term: u64, ttl: Duration) -> Result<(), String> {
        let mut body = self.request_body();
        codec::put_u64(&mut body, term);
        match self.call(Kind::TimeoutNow, &body, ttl, |_| Ok(())).await {
            Ok(Reply::Ok(())) => Ok(()),
            Ok(Reply::Failed(why)) => Err(why),
            Ok(Reply::Stopped) | Ok(Reply::Panicked) => Err(format!("node {}: Raft is not running", self.route.to)),
            Ok(Reply::SnapshotMismatch(_)) => Err(format!("node {}: unexpected reply", self.route.to)),
            Err(CallError::Unreachable(why)) | Err(CallError::Network(why)) => Err(why),
            Err(CallError::Timeout) => Err(format!("node {}: no answer within {ttl:?}", self.route.to)),
        }
    }

    /// Asks this peer for its addresses and wall clock.
    pub async fn status(&mut self, ttl: Duration) -> Result<PeerStatus, String> {
        let body = self.request_body();
        let read = |r: &mut Reader<'_>| -> Result<PeerStatus, CodecError> {
            Ok(PeerStatus {
                sql_addr: r.string("sql address", ADDR_BYTES_MAX)?,
                http_addr: r.string("http address", ADDR_BYTES_MAX)?,
                clock_micros: r.u64("clock")? as i64,
            })
        };
        match self.call(Kind::Status, &body, ttl, read).await {
            Ok(Reply::Ok(status)) => Ok(status),
            Ok(Reply::Failed(why)) => Err(why),
            Ok(_) => Err(format!("node {}: unexpected reply", self.route.to)),
            Err(CallError::Unreachable(why)) | Err(CallError::Network(why)) => Err(why),
            Err(CallError::Timeout) => Err(format!("node {}: no answer within {ttl:?}", self.route.to)),
        }
    }

    fn request_body(&self) -> Vec<u8> {
        let mut body = Vec::new();
        put_request_header(&mut body, self.route);
        body
    }

    /// Turns a call's outcome into what openraft expects. `api` turns a snapshot mismatch
    /// into the RPC's API error, if it has one.
    // The error type is the one RaftNetwork's methods return; its size is openraft's.
    #[allow(clippy::result_large_err)]
    fn outcome<T, E: std::error::Error>(
        &self,
        result: Result<Reply<T>, CallError>,
        action: RPCTypes,
        ttl: Duration,
        api: fn(SnapshotMismatch) -> Option<E>,
    ) -> Result<T, RPCError<NodeId, BasicNode, RaftError<NodeId, E>>> {
        let to = self.route.to;
        let remote =
            |e: RaftError<NodeId, E>| RPCError::RemoteError(RemoteError::new_with_node(to, self.node.clone(), e));
        let network = |why: String| RPCError::Network(NetworkError::new(&TransportError(why)));
        match result {
            Ok(Reply::Ok(t)) => Ok(t),
            Ok(Reply::Stopped) => Err(remote(RaftError::Fatal(Fatal::Stopped))),
            Ok(Reply::Panicked) => Err(remote(RaftError::Fatal(Fatal::Panicked))),
            Ok(Reply::SnapshotMismatch(m)) => match api(m.clone()) {
                Some(e) => Err(remote(RaftError::APIError(e))),
                None => Err(network(format!("node {to} replied to {action} with a snapshot mismatch: {m}"))),
            },
            Ok(Reply::Failed(why)) => Err(network(format!("node {to}: {why}"))),
            Err(CallError::Unreachable(why)) => Err(RPCError::Unreachable(Unreachable::new(&TransportError(why)))),
            Err(CallError::Timeout) => {
                Err(RPCError::Timeout(Timeout { action, id: self.route.from, target: to, timeout: ttl }))
            }
            Err(CallError::Network(why)) => Err(network(why)),
        }
    }
}

/// For AppendEntries and Vote, which have no API error: a snapshot mismatch reply to them
/// is a confused peer (reported as a network error).
fn mismatch_is_not_expected<E>(_: SnapshotMismatch) -> Option<E> {
    None
}

impl RaftNetwork<TypeConfig> for TcpPeer {
    /// openraft's chunks, with a failure to read the image answered as unreachable
    /// ([`crate::snapshot::send_in_chunks`]).
    async fn full_snapshot(
        &mut self,
        vote: openraft::Vote<NodeId>,
        snapshot: openraft::Snapshot<TypeConfig>,
        cancel: impl std::future::Future<Output = openraft::error::ReplicationClosed> + Send + 'static,
        option: RPCOption,
    ) -> Result<
        openraft::raft::SnapshotResponse<NodeId>,
        openraft::error::StreamingError<TypeConfig, openraft::error::Fatal<NodeId>>,
    > {
        crate::snapshot::send_in_chunks(self, vote, snapshot, cancel, option).await
    }

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        if rpc.entries.len() > ENTRIES_PER_REQUEST_MAX {
            let hint = ENTRIES_PER_REQUEST_MAX as u64;
            return Err(RPCError::PayloadTooLarge(PayloadTooLarge::new_entries_hint(hint)));
        }
        let mut body = self.request_body();
        put_append_entries(&mut body, &rpc);
        if !fits_a_frame(&body) {
            // openraft retries with at most this many entries; one entry it cannot split.
            let hint = (rpc.entries.len() as u64 / 2).max(1);
            return Err(RPCError::PayloadTooLarge(PayloadTooLarge::new_entries_hint(hint)));
        }
        let ttl = option.soft_ttl();
        if body.len() > PROBE_ABOVE_BYTES && !rpc.entries.is_empty() {
            // openraft 0.9 gives every AppendEntries one heartbeat interval, however big. A
            // request of many megabytes to a follower whose log does not match would time
            // out before the follower could say so, again and again, and the follower would
            // never be sent the checkpoint it needs. So ask first, with no entries: the
            // follower answers a mismatch at once, and a match changes nothing there.
            let probe = AppendEntriesRequest {
                vote: rpc.vote,
                prev_log_id: rpc.prev_log_id,
                leader_commit: rpc.leader_commit,
                entries: Vec::new(),
            };
            let mut probe_body = self.request_body();
            put_append_entries(&mut probe_body, &probe);
            let result = self.call(Kind::AppendEntries, &probe_body, ttl, read_append_entries_response).await;
            match self.outcome(result, RPCTypes::AppendEntries, ttl, mismatch_is_not_expected)? {
                AppendEntriesResponse::Success | AppendEntriesResponse::PartialSuccess(_) => {}
                other => return Ok(other),
            }
        }
        let result = self.call(Kind::AppendEntries, &body, ttl, read_append_entries_response).await;
        self.outcome(result, RPCTypes::AppendEntries, ttl, mismatch_is_not_expected)
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<InstallSnapshotResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId, InstallSnapshotError>>>
    {
        let mut body = self.request_body();
        let fits = rpc.data.len() <= FRAME_BYTES_MAX && {
            put_install_snapshot(&mut body, &rpc);
            fits_a_frame(&body)
        };
        if !fits {
            // Only a snapshot_max_chunk_size near FRAME_BYTES_MAX makes a chunk this big.
            let why = format!("a snapshot chunk of {} bytes does not fit a frame", rpc.data.len());
            return Err(RPCError::Network(NetworkError::new(&TransportError(why))));
        }
        let ttl = option.soft_ttl();
        let result = self.call(Kind::InstallSnapshot, &body, ttl, read_install_snapshot_response).await;
        self.outcome(result, RPCTypes::InstallSnapshot, ttl, |m| Some(InstallSnapshotError::SnapshotMismatch(m)))
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        let mut body = self.request_body();
        put_vote_request(&mut body, &rpc);
        let ttl = option.soft_ttl();
        let result = self.call(Kind::Vote, &body, ttl, read_vote_response).await;
        self.outcome(result, RPCTypes::Vote, ttl, mismatch_is_not_expected)
    }

    fn backoff(&self) -> Backoff {
        Backoff::new(std::iter::repeat(Duration::from_millis(UNREACHABLE_BACKOFF_MS)))
    }
}

// ---------------------------------------------------------------------------------------
// Server
// ---------------------------------------------------------------------------------------

/// A running server: the accept loop and its connections. Dropping it stops the server
/// too (without waiting); [`TcpServer::shutdown`] stops it and waits.
pub struct TcpServer {
    local_addr: SocketAddr,
    counters: Arc<Counters>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl fmt::Debug for TcpServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpServer")
            .field("local_addr", &self.local_addr)
            .field("counters", &self.counters.values())
            .finish()
    }
}

/// Serves Raft's RPCs for `raft` to peers connecting to `listener`, until the returned
/// handle is shut down or dropped. Must be called inside a tokio runtime.
pub fn serve(listener: TcpListener, raft: Raft) -> io::Result<TcpServer> {
    serve_with(listener, raft, LocalInfo::default())
}

/// Like [`serve`], answering `Status` with `info`.
pub fn serve_with(listener: TcpListener, raft: Raft, info: LocalInfo) -> io::Result<TcpServer> {
    let local_addr = listener.local_addr()?;
    let counters = Arc::new(Counters::default());
    let (stop, stopped) = watch::channel(false);
    let me = raft.metrics().borrow().id;
    let task = tokio::spawn(accept_loop(listener, raft, info, me, counters.clone(), stopped));
    Ok(TcpServer { local_addr, counters, stop, task })
}

impl TcpServer {
    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The server's counters, all connections together.
    pub fn counters(&self) -> CounterValues {
        self.counters.values()
    }

    /// Stops accepting, closes the listener and every connection, and waits until they
    /// are gone.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        // The task ends by itself; a panic in it has nothing left to clean up.
        let _ = self.task.await;
    }
}

async fn accept_loop(
    listener: TcpListener,
    raft: Raft,
    info: LocalInfo,
    me: NodeId,
    counters: Arc<Counters>,
    mut stopped: watch::Receiver<bool>,
) {
    let permits = Arc::new(Semaphore::new(PEER_CONNECTIONS_MAX));
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            // A stop, or the handle dropped.
            _ = stopped.changed() => break,
            // Reap finished connections so the set stays as small as the live ones.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => match permits.clone().try_acquire_owned() {
                    Ok(permit) => {
                        connections.spawn(serve_connection(
                            stream,
                            raft.clone(),
                            info.clone(),
                            me,
                            counters.clone(),
                            permit,
                        ));
                    }
                    Err(_) => bump(&counters.connections_refused),
                },
                Err(_) => {
                    bump(&counters.connections_refused);
                    tokio::time::sleep(Duration::from_millis(ACCEPT_RETRY_MS)).await;
                }
            },
        }
    }
    drop(listener);
    connections.shutdown().await;
}

async fn serve_connection(
    mut stream: TcpStream,
    raft: Raft,
    info: LocalInfo,
    me: NodeId,
    counters: Arc<Counters>,
    _permit: OwnedSemaphorePermit,
) {
    // Replies are small and latency-bound: do not let Nagle hold them back.
    if stream.set_nodelay(true).is_err() {
        return;
    }
    let idle = Duration::from_millis(PEER_IDLE_MS_MAX);
    let rest = Duration::from_millis(FRAME_READ_MS_MAX);
    loop {
        let frame = match read_frame(&mut stream, idle, rest).await {
            Ok(Some(frame)) => frame,
            Ok(None) => return,
            Err(e) => {
                e.count(&counters);
                return;
            }
        };
        bump(&counters.frames_received);
        let body = match Kind::from_request(frame.kind()) {
            Some(kind) => handle(kind, frame.body(), &raft, &info, me, &counters).await,
            None if RESERVED_KINDS.contains(&frame.kind()) => {
                let why = format!("request kind {:#04x} is reserved, not served by this node", frame.kind());
                failed_reply(why)
            }
            None => {
                bump(&counters.unknown_kinds);
                return;
            }
        };
        let reply = encode_frame(frame.kind() | KIND_REPLY_BIT, &body);
        let wait = Duration::from_millis(REPLY_WRITE_MS_MAX);
        match tokio::time::timeout(wait, write_frame(&mut stream, &reply, &counters)).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return,
            Err(_) => {
                bump(&counters.timeouts);
                return;
            }
        }
    }
}

fn failed_reply(why: String) -> Vec<u8> {
    let mut out = Vec::new();
    put_reply::<()>(&mut out, &Reply::Failed(why), |_, _| {});
    out
}

/// Decodes one request, asks Raft, and encodes its answer (or why there is none).
async fn handle(kind: Kind, body: &[u8], raft: &Raft, info: &LocalInfo, me: NodeId, counters: &Counters) -> Vec<u8> {
    let mut r = Reader::new(body);
    let decoded = read_request_header(&mut r).and_then(|route| {
        let request = match kind {
            Kind::AppendEntries => read_append_entries(&mut r).map(Request::AppendEntries),
            Kind::Vote => read_vote_request(&mut r).map(Request::Vote),
            Kind::InstallSnapshot => read_install_snapshot(&mut r).map(Request::InstallSnapshot),
            Kind::TimeoutNow => r.u64("term").map(Request::TimeoutNow),
            Kind::Status => Ok(Request::Status),
        }?;
        r.finish("request")?;
        Ok((route, request))
    });
    let (request, from) = match decoded {
        Ok((route, _)) if route.to != me => {
            return failed_reply(format!("this is node {me}, not node {} (from node {})", route.to, route.from));
        }
        Ok((route, request)) => (request, route.from),
        Err(e) => {
            bump(&counters.malformed_messages);
            return failed_reply(format!("{kind:?} request: {e}"));
        }
    };
    let wait = Duration::from_millis(RAFT_CALL_MS_MAX);
    let too_slow = || format!("raft did not answer within {RAFT_CALL_MS_MAX} ms");
    let mut out = Vec::new();
    match request {
        Request::AppendEntries(rpc) => {
            let reply = match tokio::time::timeout(wait, raft.append_entries(rpc)).await {
                Ok(Ok(resp)) => Reply::Ok(resp),
                Ok(Err(e)) => reply_of_error(e, no_api_error),
                Err(_) => Reply::Failed(too_slow()),
            };
            put_reply(&mut out, &reply, put_append_entries_response);
        }
        Request::Vote(rpc) => {
            let reply = match tokio::time::timeout(wait, raft.vote(rpc)).await {
                Ok(Ok(resp)) => Reply::Ok(resp),
                Ok(Err(e)) => reply_of_error(e, no_api_error),
                Err(_) => Reply::Failed(too_slow()),
            };
            put_reply(&mut out, &reply, put_vote_response);
        }
        Request::InstallSnapshot(rpc) => {
            let reply = match tokio::time::timeout(wait, raft.install_snapshot(rpc)).await {
                Ok(Ok(resp)) => Reply::Ok(resp),
                Ok(Err(e)) => reply_of_error(e, snapshot_api_error),
                Err(_) => Reply::Failed(too_slow()),
            };
            put_reply(&mut out, &reply, put_install_snapshot_response);
        }
        Request::Status => {
            let (sql, http) = info.addrs.lock().unwrap_or_else(|e| e.into_inner()).clone();
            let status = PeerStatus { sql_addr: sql, http_addr: http, clock_micros: (info.clock)() };
            put_reply(&mut out, &Reply::Ok(status), |out, s| {
                codec::put_str(out, "sql address", &s.sql_addr, ADDR_BYTES_MAX);
                codec::put_str(out, "http address", &s.http_addr, ADDR_BYTES_MAX);
                codec::put_u64(out, s.clock_micros as u64);
            });
        }
        Request::TimeoutNow(term) => {
            let m = raft.metrics().borrow().clone();
            let reply = if m.current_term != term || m.current_leader != Some(from) {
                Reply::Failed(format!(
                    "node {me} is in term {} following {:?}, not in term {term} following node {from}",
                    m.current_term, m.current_leader
                ))
            } else {
                match raft.trigger().elect().await {
                    Ok(()) => Reply::Ok(()),
                    Err(e) => Reply::Failed(e.to_string()),
                }
            };
            put_reply(&mut out, &reply, |_, _| {});
        }
    }
    out
}

enum Request {
    AppendEntries(AppendEntriesRequest<TypeConfig>),
    Vote(VoteRequest<NodeId>),
    InstallSnapshot(InstallSnapshotRequest<TypeConfig>),
    TimeoutNow(u64),
    Status,
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use openraft::{Entry, EntryPayload, LeaderId, LogId, Membership, SnapshotMeta, StoredMembership, Vote};

    use super::*;
    use crate::types::Command;

    fn log_id(term: u64, node: u64, index: u64) -> LogId<NodeId> {
        LogId::new(LeaderId::new(term, node), index)
    }

    fn membership() -> Membership<NodeId, BasicNode> {
        let nodes: BTreeMap<NodeId, BasicNode> =
            [1, 2, 3, 4].into_iter().map(|id| (id, BasicNode::new(format!("127.0.0.1:{}", 7000 + id)))).collect();
        Membership::new(vec![BTreeSet::from([1, 2, 3])], nodes)
    }

    fn append_request() -> AppendEntriesRequest<TypeConfig> {
        AppendEntriesRequest {
            vote: Vote::new_committed(3, 1),
            prev_log_id: Some(log_id(2, 1, 9)),
            leader_commit: None,
            entries: vec![
                Entry { log_id: log_id(3, 1, 10), payload: EntryPayload::Blank },
                Entry { log_id: log_id(3, 1, 11), payload: EntryPayload::Normal(Command(vec![1, 2, 3])) },
                Entry { log_id: log_id(3, 1, 12), payload: EntryPayload::Membership(membership()) },
            ],
        }
    }

    fn snapshot_request() -> InstallSnapshotRequest<TypeConfig> {
        InstallSnapshotRequest {
            vote: Vote::new_committed(3, 1),
            meta: SnapshotMeta {
                last_log_id: Some(log_id(3, 1, 12)),
                last_membership: StoredMembership::new(Some(log_id(3, 1, 12)), membership()),
                snapshot_id: "s-1".to_string(),
            },
            offset: 4096,
            data: vec![7; 100],
            done: true,
        }
    }

    fn request(kind: Kind, put: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
        let mut body = Vec::new();
        put_request_header(&mut body, Route { from: 1, to: 2 });
        put(&mut body);
        encode_frame(kind.request(), &body)
    }

    async fn read(bytes: &[u8]) -> Result<Option<Frame>, FrameError> {
        let wait = Duration::from_secs(1);
        read_frame(&mut &bytes[..], wait, wait).await
    }

    #[tokio::test]
    async fn frames_round_trip_and_end_cleanly() {
        let frame = encode_frame(0x42, b"hello");
        assert_eq!(&frame[..4], &6u32.to_le_bytes());
        let mut two = frame.clone();
        two.extend_from_slice(&encode_frame(0x43, b""));
        let mut r = &two[..];
        let wait = Duration::from_secs(1);
        let first = read_frame(&mut r, wait, wait).await.expect("first").expect("a frame");
        assert_eq!((first.kind(), first.body()), (0x42, &b"hello"[..]));
        let second = read_frame(&mut r, wait, wait).await.expect("second").expect("a frame");
        assert_eq!((second.kind(), second.body()), (0x43, &b""[..]));
        assert!(matches!(read_frame(&mut r, wait, wait).await, Ok(None)));
    }

    #[tokio::test]
    async fn every_flipped_bit_and_every_cut_is_an_error() {
        let frame = request(Kind::Vote, |out| put_vote_request(out, &VoteRequest::new(Vote::new(4, 1), None)));
        for bit in 0..frame.len() * 8 {
            let mut bad = frame.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            let result = read(&bad).await;
            assert!(result.is_err(), "bit {bit} flipped: {result:?}");
        }
        for cut in 1..frame.len() {
            let result = read(&frame[..cut]).await;
            assert!(matches!(result, Err(FrameError::Io(_))), "cut at {cut}: {result:?}");
        }
    }

    #[tokio::test]
    async fn bad_lengths_are_oversize() {
        for len in [0u32, FRAME_BYTES_MAX as u32 + 1, u32::MAX] {
            let mut bytes = len.to_le_bytes().to_vec();
            bytes.extend_from_slice(&[0; 12]);
            assert!(matches!(read(&bytes).await, Err(FrameError::Oversize(l)) if l == len));
        }
    }

    #[test]
    fn requests_round_trip() {
        let rpc = append_request();
        let mut body = Vec::new();
        put_request_header(&mut body, Route { from: 1, to: 2 });
        put_append_entries(&mut body, &rpc);
        let mut r = Reader::new(&body);
        assert_eq!(read_request_header(&mut r), Ok(Route { from: 1, to: 2 }));
        let back = read_append_entries(&mut r).expect("decodes");
        r.finish("request").expect("no trailing bytes");
        assert_eq!(
            (back.vote, back.prev_log_id, back.leader_commit, &back.entries),
            (rpc.vote, rpc.prev_log_id, rpc.leader_commit, &rpc.entries)
        );

        let rpc = VoteRequest::new(Vote::new(5, 2), Some(log_id(4, 1, 30)));
        let mut body = Vec::new();
        put_vote_request(&mut body, &rpc);
        let mut r = Reader::new(&body);
        assert_eq!(read_vote_request(&mut r), Ok(rpc));
        assert_eq!(r.left(), 0);

        let rpc = snapshot_request();
        let mut body = Vec::new();
        put_install_snapshot(&mut body, &rpc);
        let mut r = Reader::new(&body);
        assert_eq!(read_install_snapshot(&mut r), Ok(rpc));
        assert_eq!(r.left(), 0);
        for cut in 0..body.len() {
            assert!(read_install_snapshot(&mut Reader::new(&body[..cut])).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn replies_round_trip() {
        let appends = [
            AppendEntriesResponse::Success,
            AppendEntriesResponse::PartialSuccess(None),
            AppendEntriesResponse::PartialSuccess(Some(log_id(1, 2, 3))),
            AppendEntriesResponse::Conflict,
            AppendEntriesResponse::HigherVote(Vote::new_committed(9, 3)),
        ];
        for resp in appends {
            let mut out = Vec::new();
            let reply = Reply::Ok(resp);
            put_reply(&mut out, &reply, put_append_entries_response);
            assert_eq!(decode_reply(&out, read_append_entries_response), Ok(reply));
        }
        let vote = Reply::Ok(VoteResponse::new(Vote::new(3, 3), Some(log_id(2, 2, 2)), true));
        let mut out = Vec::new();
        put_reply(&mut out, &vote, put_vote_response);
        assert_eq!(decode_reply(&out, read_vote_response), Ok(vote));

        let mismatch = SnapshotMismatch {
            expect: SnapshotSegmentId { id: "a".to_string(), offset: 0 },
            got: SnapshotSegmentId { id: "a".to_string(), offset: 4096 },
        };
        let long = "é".repeat(ERROR_MESSAGE_BYTES_MAX);
        let errors: [Reply<InstallSnapshotResponse<NodeId>>; 5] = [
            Reply::Ok(InstallSnapshotResponse { vote: Vote::new(1, 1) }),
            Reply::Stopped,
            Reply::Panicked,
            Reply::SnapshotMismatch(mismatch),
            Reply::Failed("no".to_string()),
        ];
        for reply in errors {
            let mut out = Vec::new();
            put_reply(&mut out, &reply, put_install_snapshot_response);
            assert_eq!(decode_reply(&out, read_install_snapshot_response), Ok(reply));
            for cut in 0..out.len() {
                assert!(decode_reply(&out[..cut], read_install_snapshot_response).is_err(), "cut at {cut}");
            }
        }
        // A long message is cut on a character boundary, under the bound.
        let mut out = Vec::new();
        put_reply::<()>(&mut out, &Reply::Failed(long), |_, _| {});
        match decode_reply(&out, |_| Ok(())) {
            Ok(Reply::Failed(why)) => assert!(why.len() <= ERROR_MESSAGE_BYTES_MAX && why.starts_with('é')),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn remote_errors_map_to_replies() {
        let stopped: RaftError<NodeId> = RaftError::Fatal(Fatal::Stopped);
        assert_eq!(reply_of_error::<(), _>(stopped, no_api_error), Reply::Stopped);
        let mismatch = SnapshotMismatch { expect: SnapshotSegmentId::default(), got: SnapshotSegmentId::default() };
        let e: RaftError<NodeId, InstallSnapshotError> =
            RaftError::APIError(InstallSnapshotError::SnapshotMismatch(mismatch.clone()));
        assert_eq!(reply_of_error::<(), _>(e, snapshot_api_error), Reply::SnapshotMismatch(mismatch));
    }

    #[test]
    fn kinds_are_distinct_and_replies_set_the_bit() {
        for kind in [Kind::AppendEntries, Kind::Vote, Kind::InstallSnapshot, Kind::Status, Kind::TimeoutNow] {
            assert_eq!(Kind::from_request(kind.request()), Some(kind));
            assert_eq!(Kind::from_request(kind.reply()), None);
            assert!(!RESERVED_KINDS.contains(&kind.request()));
        }
        for reserved in RESERVED_KINDS {
            assert_eq!(reserved & KIND_REPLY_BIT, 0);
            assert_eq!(Kind::from_request(reserved), None);
        }
    }
}
