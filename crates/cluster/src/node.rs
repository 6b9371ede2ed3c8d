//! A Bulwark node: the transaction engine behind Raft, with the write-ahead log as Raft's
//! log and the MVCC store as its state machine. One write path: a single node is a Raft
//! group of one voter.
//!
//! ```text
//!   Txn::commit ──Command──▶ RaftProposer::propose ──client_write──▶ RaftCore (leader)
//!                                                                      │ append
//!                                ┌─────────────────────────────────────┘
//!                                ▼
//!   WalLog: entry cache ──append_batch──▶ Wal (one write, one fsync per entry batch)
//!                                │ LogFlushed only after the fsync
//!                                ▼
//!   committed by a quorum ──▶ EngineStateMachine::apply ──▶ Engine::apply_logged
//!                                (decide: validate, install versions at commit index)
//!                                │
//!   Txn::commit ◀──Outcome───────┘
//! ```
//!
//! # Indices
//!
//! openraft numbers its log from 0 (the first membership entry of a new cluster); the
//! write-ahead log and the MVCC store number from 1. Raft index `i` is stored as log record
//! `i + 1`, and a transaction committed at Raft index `i` has commit index `i + 1`. Every
//! entry, blank and membership entries too, takes a record and advances the store's applied
//! index, so the two numberings never drift apart.
//!
//! # What is on disk
//!
//! - The log's records are encoded Raft entries ([`crate::codec`], documented in
//!   docs/format.md): term, leader node, index and payload. The log is purged through
//!   openraft (`WalLog::purge`), after snapshots: every new durable checkpoint of the store
//!   becomes openraft's snapshot (`snapshot_after_checkpoints`), and openraft purges up to
//!   `max_in_snapshot_log_to_keep` entries behind it. Whole segments go; the first record
//!   left names the last purged entry.
//! - `raft-vote`: the vote, replaced atomically (written to `raft-vote.new`, fsynced,
//!   renamed, directory fsynced) before openraft is told it is saved. A vote that fails its
//!   checksum stops the node: forgetting a vote could let it vote twice in one term.
//! - `raft-committed`: a hint of the highest committed entry, overwritten in place without
//!   fsync. A torn or stale hint only means re-applying less at startup; the leader's next
//!   commit brings the rest.
//! - The membership in force is stored in the store under [`MEMBERSHIP_KEY`], written in
//!   the same batch as the entry that changed it.
//!
//! # Recovery
//!
//! The engine is opened with [`Engine::open_replicated`]: the store comes back at its
//! checkpoint and replays the entries up to the committed hint under one lock, deciding
//! them as the state machine does; openraft re-applies the committed entries after those
//! (once a leader commits them). [`Node::open_single`]
//! waits until everything in the log is applied before it returns, so a restarted single
//! node serves exactly what it acknowledged.
//!
//! # Snapshots
//!
//! A snapshot is the store's newest durable checkpoint. `build_snapshot` only names it;
//! `get_current_snapshot`, called when a node is behind the purged log, copies the data
//! file into a checkpoint image ([`crate::snapshot`]). The receiving node saves the image
//! and asks to be restarted ([`Node::restart_required`]); it installs the image as it
//! next opens. It tells openraft the image is installed, so that the leader goes on from
//! the image's last entry when the node is back (openraft 0.9's search for the entry a
//! follower holds would otherwise fall below the leader's purged log and send an image
//! again); until the restart its log and state machine refuse every change
//! ([`LogShared::image_pending`]), so nothing is applied on the old state, and the node
//! neither votes nor campaigns.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::path::{Path, PathBuf};
use std::sync::mpsc::SyncSender;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use openraft::error::{ClientWriteError, InstallSnapshotError, RPCError, RaftError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest,
    VoteResponse,
};
use openraft::storage::{LogFlushed, LogState, RaftLogStorage, RaftStateMachine, Snapshot};
use openraft::{
    BasicNode, Config, Entry, EntryPayload, LogId, OptionalSend, RaftLogReader, RaftSnapshotBuilder, SnapshotMeta,
    SnapshotPolicy, StorageError, StorageIOError, StoredMembership, Vote,
};
use storage::vfs::Vfs;
use storage::wal::WalOptions;
use txn::{Engine, EngineOptions};

use crate::codec;
use crate::types::{Command, NodeId, Outcome, Raft, TypeConfig};

/// Where the store keeps the membership in force (outside the versioned key space).
pub const MEMBERSHIP_KEY: &[u8] = b"Rm";
/// The membership before it, kept so that a checkpoint taken before the latest change
/// can still name the membership in force at it (a checkpoint image's metadata).
pub const MEMBERSHIP_PREV_KEY: &[u8] = b"Rp";
/// The vote file in the data directory.
pub const VOTE_FILE: &str = "raft-vote";
/// The committed-index hint in the data directory.
pub const COMMITTED_FILE: &str = "raft-committed";
/// Recent entries kept decoded in memory, so that replication and apply do not read them
/// back from the log file.
pub const LOG_CACHE_ENTRIES_MAX: usize = 16_384;
/// Bytes of commands in that cache.
pub const LOG_CACHE_BYTES_MAX: usize = 64 << 20;
/// Most bytes read from the log file per read when entries are not cached.
const LOG_READ_BYTES: usize = 8 << 20;
/// Fewest bytes read from the log file per read.
const LOG_READ_BYTES_MIN: usize = 64 << 10;
/// Bytes read per entry asked for (a guess at an entry's size; reads go on until the range
/// is covered).
const LOG_READ_BYTES_PER_ENTRY: usize = 2 << 10;
/// Most bytes of commands one replication request carries (always at least one entry). A
/// follower far behind gets the log in requests of about this size, and the leader reads no
/// more than this (plus one entry) from its log per request: asked for a range of big
/// entries, it used to read and encode all of them, hundreds of megabytes, for each probe.
pub const REPLICATION_BYTES_MAX: usize = 8 << 20;
/// How long a commit waits for Raft to apply it before its outcome is reported unknown.
pub const COMMIT_WAIT_MAX: Duration = Duration::from_secs(30);
/// How long [`Node::open_single`] waits to become leader and apply its log.
pub const STARTUP_WAIT_MAX: Duration = Duration::from_secs(60);

const VOTE_MAGIC: &[u8; 8] = b"BLWKVOTE";
const VOTE_BYTES: usize = 8 + 4 + 8 + 8 + 1 + 4;
const COMMITTED_BYTES: usize = 8 + 8 + 8 + 4;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn io_err(what: impl Into<String>) -> std::io::Error {
    std::io::Error::other(what.into())
}

/// The Raft log index of a write-ahead-log record.
fn raft_index(wal_index: u64) -> u64 {
    wal_index - 1
}

/// The write-ahead-log record of a Raft log index.
fn wal_index(raft_index: u64) -> u64 {
    raft_index + 1
}

struct LogMem {
    /// Recent entries by Raft index (a suffix of the log).
    cache: BTreeMap<u64, Entry<TypeConfig>>,
    cache_bytes: usize,
    /// The last entry appended (handed to the writer), if any.
    last: Option<LogId<NodeId>>,
    vote: Option<Vote<NodeId>>,
}

struct LogShared {
    engine: Engine,
    vfs: Arc<dyn Vfs>,
    dir: PathBuf,
    mem: Mutex<LogMem>,
    committed_file: Arc<dyn storage::vfs::VfsFile>,
    /// Set once Raft has started: until then `get_current_snapshot` (which openraft also
    /// calls while starting) does not copy the data file.
    serve_images: std::sync::atomic::AtomicBool,
    /// Why this node must be restarted, once it has saved a checkpoint image to install.
    restart: Mutex<Option<String>>,
    /// Set once a checkpoint image is saved and openraft was told it is installed: see
    /// [`LogShared::image_pending`].
    image_saved: std::sync::atomic::AtomicBool,
    /// Checkpoint images this process handed openraft to send, and began to receive.
    images_sent: std::sync::atomic::AtomicU64,
    images_received: std::sync::atomic::AtomicU64,
    /// The highest entry this node has heard is committed (Raft index), and since when it
    /// has known of committed entries it had not applied (see [`Node::replication_lag`]).
    committed_seen: Mutex<(u64, Option<Instant>)>,
}

impl LogShared {
    /// An error if this node saved a checkpoint image that it installs when it restarts:
    /// openraft was told the image is installed, but the store still holds the state
    /// before it and the log cannot follow on from the image's last entry, so every
    /// change to the log, the vote or the state machine is refused (openraft stops this
    /// node's Raft) until the restart.
    fn image_pending(&self) -> Result<(), std::io::Error> {
        if self.image_saved.load(std::sync::atomic::Ordering::Acquire) {
            return Err(io_err(
                "a checkpoint image from the leader is saved and waits for the restart that installs it",
            ));
        }
        Ok(())
    }
}

/// Raft's log and vote, kept in the store's write-ahead log and the vote file.
///
/// Cloning shares the same log (openraft reads it through clones).
#[derive(Clone)]
pub struct WalLog {
    shared: Arc<LogShared>,
}

impl WalLog {
    /// Opens the log of `engine` (opened with [`Engine::open_replicated`] in `dir`) and
    /// starts its writer thread.
    pub fn open(engine: Engine, vfs: Arc<dyn Vfs>, dir: &Path) -> std::io::Result<WalLog> {
        let vote = read_vote(vfs.as_ref(), dir)?;
        let committed_file = vfs.open(&dir.join(COMMITTED_FILE), true)?;
        let log = WalLog {
            shared: Arc::new(LogShared {
                engine: engine.clone(),
                vfs,
                dir: dir.to_path_buf(),
                mem: Mutex::new(LogMem { cache: BTreeMap::new(), cache_bytes: 0, last: None, vote }),
                committed_file,
                serve_images: std::sync::atomic::AtomicBool::new(false),
                restart: Mutex::new(None),
                image_saved: std::sync::atomic::AtomicBool::new(false),
                images_sent: Default::default(),
                images_received: Default::default(),
                committed_seen: Mutex::new((0, None)),
            }),
        };
        let last = log.read_last()?;
        lock(&log.shared.mem).last = last;
        Ok(log)
    }

    fn wal(&self) -> &storage::wal::Wal {
        self.shared.engine.store().log()
    }

    /// The id of the last entry in the log file (or the last purged one), read at open.
    fn read_last(&self) -> std::io::Result<Option<LogId<NodeId>>> {
        let wal = self.wal();
        let next = wal.next_index();
        if next <= wal.first_index() {
            return Ok(None);
        }
        Ok(Some(self.read_entry(next - 1)?.log_id))
    }

    /// The id of the record before the first one Raft may read: the log's first record
    /// (kept by the store's purge for exactly this), or None if nothing was ever purged.
    fn last_purged(&self) -> std::io::Result<Option<LogId<NodeId>>> {
        let wal = self.wal();
        let first = wal.first_index();
        if first <= 1 || first >= wal.next_index() {
            // Nothing purged yet (the log starts at record 1), or the log is empty.
            return Ok(None);
        }
        Ok(Some(self.read_entry(first)?.log_id))
    }

    /// Decodes the entry in log record `wal_index` from the cache or the file.
    fn read_entry(&self, wal_index: u64) -> std::io::Result<Entry<TypeConfig>> {
        if let Some(e) = lock(&self.shared.mem).cache.get(&raft_index(wal_index)) {
            return Ok(e.clone());
        }
        let records = self.wal().read(wal_index, 1).map_err(|e| io_err(e.to_string()))?;
        match records.first() {
            Some((i, payload)) if *i == wal_index => decode_record(*i, payload),
            _ => Err(io_err(format!("log record {wal_index} is not in the log"))),
        }
    }

    fn cache_insert(mem: &mut LogMem, entry: Entry<TypeConfig>) {
        mem.cache_bytes += entry_bytes(&entry);
        mem.cache.insert(entry.log_id.index, entry);
        while mem.cache.len() > LOG_CACHE_ENTRIES_MAX || mem.cache_bytes > LOG_CACHE_BYTES_MAX {
            let Some((_, old)) = mem.cache.pop_first() else { break };
            mem.cache_bytes -= entry_bytes(&old);
        }
    }
}

fn entry_bytes(e: &Entry<TypeConfig>) -> usize {
    match &e.payload {
        EntryPayload::Normal(c) => c.0.len() + 64,
        _ => 256,
    }
}

fn decode_record(index: u64, payload: &[u8]) -> std::io::Result<Entry<TypeConfig>> {
    let entry = codec::decode_entry(payload).map_err(|e| io_err(format!("log record {index}: {e}")))?;
    if wal_index(entry.log_id.index) != index {
        return Err(io_err(format!("log record {index} holds Raft entry {}", entry.log_id)));
    }
    Ok(entry)
}

fn read_vote(vfs: &dyn Vfs, dir: &Path) -> std::io::Result<Option<Vote<NodeId>>> {
    let path = dir.join(VOTE_FILE);
    if !vfs.exists(&path) {
        return Ok(None);
    }
    let file = vfs.open(&path, false)?;
    let mut buf = [0u8; VOTE_BYTES];
    file.read_exact_at(&mut buf, 0)
        .map_err(|e| io_err(format!("{}: {e} (the vote file is damaged)", path.display())))?;
    let crc = u32::from_le_bytes(buf[VOTE_BYTES - 4..].try_into().expect("4 bytes"));
    if &buf[..8] != VOTE_MAGIC || crc32c::crc32c(&buf[..VOTE_BYTES - 4]) != crc || file.len()? != VOTE_BYTES as u64 {
        return Err(io_err(format!(
            "{}: checksum or header mismatch: the vote is corrupted; this node must not vote until it is restored \
             (see docs/runbooks/cluster-node-lost.md)",
            path.display()
        )));
    }
    let word = |at: usize| u64::from_le_bytes(buf[at..at + 8].try_into().expect("8 bytes"));
    let (term, node, committed) = (word(12), word(20), buf[28] == 1);
    let mut vote = Vote::new(term, node);
    if committed {
        vote.commit();
    }
    Ok(Some(vote))
}

fn write_vote(vfs: &dyn Vfs, dir: &Path, vote: &Vote<NodeId>) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(VOTE_BYTES);
    buf.extend_from_slice(VOTE_MAGIC);
    buf.extend_from_slice(&1u32.to_le_bytes());
    buf.extend_from_slice(&vote.leader_id.term.to_le_bytes());
    buf.extend_from_slice(&vote.leader_id.node_id.to_le_bytes());
    buf.push(vote.committed as u8);
    let crc = crc32c::crc32c(&buf);
    buf.extend_from_slice(&crc.to_le_bytes());
    let tmp = dir.join(format!("{VOTE_FILE}.new"));
    let file = vfs.open(&tmp, true)?;
    file.set_len(0)?;
    file.write_at(&buf, 0)?;
    file.sync_data()?;
    vfs.rename(&tmp, &dir.join(VOTE_FILE))?;
    vfs.sync_dir(dir)
}

fn encode_committed(log_id: &LogId<NodeId>) -> [u8; COMMITTED_BYTES] {
    let mut buf = [0u8; COMMITTED_BYTES];
    buf[0..8].copy_from_slice(&log_id.leader_id.term.to_le_bytes());
    buf[8..16].copy_from_slice(&log_id.leader_id.node_id.to_le_bytes());
    buf[16..24].copy_from_slice(&log_id.index.to_le_bytes());
    let crc = crc32c::crc32c(&buf[..24]);
    buf[24..].copy_from_slice(&crc.to_le_bytes());
    buf
}

fn decode_committed(buf: &[u8; COMMITTED_BYTES]) -> Option<LogId<NodeId>> {
    let crc = u32::from_le_bytes(buf[24..].try_into().expect("4 bytes"));
    if crc32c::crc32c(&buf[..24]) != crc {
        return None;
    }
    let word = |at: usize| u64::from_le_bytes(buf[at..at + 8].try_into().expect("8 bytes"));
    Some(LogId::new(openraft::CommittedLeaderId::new(word(0), word(8)), word(16)))
}

/// The committed hint in `dir`, if it is there and whole.
fn read_committed_hint(vfs: &dyn Vfs, dir: &Path) -> Option<LogId<NodeId>> {
    let path = dir.join(COMMITTED_FILE);
    if !vfs.exists(&path) {
        return None;
    }
    let file = vfs.open(&path, false).ok()?;
    let mut buf = [0u8; COMMITTED_BYTES];
    file.read_exact_at(&mut buf, 0).ok()?;
    decode_committed(&buf)
}

/// The write batch that applying `entry` at log record `index` installs: exactly what
/// [`EngineStateMachine::apply`] does through the engine, for recovery's replay.
fn apply_batch_of(kv: &dyn storage::KvRead, index: u64, entry: &Entry<TypeConfig>) -> txn::Result<storage::WriteBatch> {
    match &entry.payload {
        EntryPayload::Blank => Ok(storage::WriteBatch::new()),
        EntryPayload::Normal(Command(bytes)) => match decode_commands(bytes, index) {
            Ok(cmds) => Ok(txn::command::decide_batch(kv, index, &cmds)?.0),
            Err(_) => Ok(storage::WriteBatch::new()),
        },
        EntryPayload::Membership(m) => {
            let mut batch = storage::WriteBatch::new();
            if let Some(old) = kv.get(MEMBERSHIP_KEY)? {
                batch.put(MEMBERSHIP_PREV_KEY.to_vec(), old);
            }
            batch.put(MEMBERSHIP_KEY.to_vec(), membership_bytes(entry.log_id, m));
            Ok(batch)
        }
    }
}

fn membership_bytes(log_id: LogId<NodeId>, m: &openraft::Membership<NodeId, BasicNode>) -> Vec<u8> {
    let mut bytes = Vec::new();
    codec::encode_stored_membership(&StoredMembership::new(Some(log_id), m.clone()), &mut bytes);
    bytes
}

impl WalLog {
    /// The entries from `start` up to `end` (exclusive) that the log holds, in order,
    /// stopping once they add up to `bytes_max` (at least one entry if any is held): the
    /// cache's, else the log file's. (The error is openraft's own type.)
    #[allow(clippy::result_large_err)]
    fn read_entries(
        &self,
        start: u64,
        end: u64,
        bytes_max: usize,
    ) -> Result<Vec<Entry<TypeConfig>>, StorageError<NodeId>> {
        let mut out = Vec::new();
        let mut bytes = 0usize;
        let full = |bytes: usize| bytes >= bytes_max;
        let take_cached = |mem: &LogMem, from: u64, out: &mut Vec<Entry<TypeConfig>>, bytes: &mut usize| {
            for (_, e) in mem.cache.range(from..end) {
                if !out.is_empty() && full(*bytes) {
                    break;
                }
                *bytes += entry_bytes(e);
                out.push(e.clone());
            }
        };
        {
            let mem = lock(&self.shared.mem);
            if mem.cache.first_key_value().is_some_and(|(&first, _)| first <= start) {
                take_cached(&mem, start, &mut out, &mut bytes);
                return Ok(out);
            }
        }
        // Older than the cache: read the file, then the cache for the rest.
        let mut at = start;
        let wal = self.wal();
        while at < end && wal_index(at) < wal.next_index() && (out.is_empty() || !full(bytes)) {
            let mem = lock(&self.shared.mem);
            if mem.cache.first_key_value().is_some_and(|(&first, _)| first <= at) {
                take_cached(&mem, at, &mut out, &mut bytes);
                break;
            }
            drop(mem);
            // Read about what was asked for, not a fixed amount: openraft re-applies a log
            // 64 entries at a time at startup.
            let budget = usize::try_from(end - at)
                .unwrap_or(usize::MAX)
                .saturating_mul(LOG_READ_BYTES_PER_ENTRY)
                .clamp(LOG_READ_BYTES_MIN, LOG_READ_BYTES)
                .min(bytes_max.saturating_sub(bytes).max(1));
            let records =
                wal.read(wal_index(at), budget).map_err(|e| StorageIOError::read_logs(&io_err(e.to_string())))?;
            if records.is_empty() {
                break;
            }
            for (i, payload) in records {
                if raft_index(i) >= end || (!out.is_empty() && full(bytes)) {
                    break;
                }
                let entry = decode_record(i, &payload).map_err(|e| StorageIOError::read_logs(&e))?;
                bytes += entry_bytes(&entry);
                out.push(entry);
                at = raft_index(i) + 1;
            }
        }
        Ok(out)
    }
}

impl RaftLogReader<TypeConfig> for WalLog {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<TypeConfig>>, StorageError<NodeId>> {
        let start = match range.start_bound() {
            Bound::Included(&i) => i,
            Bound::Excluded(&i) => i + 1,
            Bound::Unbounded => 0,
        };
        let end = match range.end_bound() {
            Bound::Included(&i) => i + 1,
            Bound::Excluded(&i) => i,
            Bound::Unbounded => u64::MAX,
        };
        self.read_entries(start, end, usize::MAX)
    }

    /// What replication sends: at most [`REPLICATION_BYTES_MAX`] of entries. Entries no
    /// longer cached are read from the file off the Raft worker (`block_in_place`), so
    /// that its other tasks, commits included, go on meanwhile.
    #[allow(clippy::result_large_err)]
    async fn limited_get_log_entries(
        &mut self,
        start: u64,
        end: u64,
    ) -> Result<Vec<Entry<TypeConfig>>, StorageError<NodeId>> {
        let cached = lock(&self.shared.mem).cache.first_key_value().is_some_and(|(&first, _)| first <= start);
        let worker_pool = tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
        if cached || !worker_pool {
            // A simulation's single-threaded runtime cannot hand its thread over.
            return self.read_entries(start, end, REPLICATION_BYTES_MAX);
        }
        tokio::task::block_in_place(|| self.read_entries(start, end, REPLICATION_BYTES_MAX))
    }
}

impl RaftLogStorage<TypeConfig> for WalLog {
    type LogReader = WalLog;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError<NodeId>> {
        let last_purged = self.last_purged().map_err(|e| StorageIOError::read_logs(&e))?;
        let last = lock(&self.shared.mem).last;
        Ok(LogState { last_purged_log_id: last_purged, last_log_id: last.or(last_purged) })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError<NodeId>> {
        self.shared.image_pending().map_err(|e| StorageIOError::write_vote(&e))?;
        write_vote(self.shared.vfs.as_ref(), &self.shared.dir, vote).map_err(|e| StorageIOError::write_vote(&e))?;
        lock(&self.shared.mem).vote = Some(*vote);
        Ok(())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError<NodeId>> {
        Ok(lock(&self.shared.mem).vote)
    }

    async fn save_committed(&mut self, committed: Option<LogId<NodeId>>) -> Result<(), StorageError<NodeId>> {
        if let Some(c) = committed {
            {
                let mut seen = lock(&self.shared.committed_seen);
                seen.0 = seen.0.max(c.index);
                if seen.1.is_none() && raft_index(self.shared.engine.applied_index().max(1)) < c.index {
                    seen.1 = Some(Instant::now());
                }
            }
            // A hint, not fsynced: see the module docs.
            self.shared.committed_file.write_at(&encode_committed(&c), 0).map_err(|e| StorageIOError::write(&e))?;
        }
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<NodeId>>, StorageError<NodeId>> {
        let mut buf = [0u8; COMMITTED_BYTES];
        if self.shared.committed_file.read_exact_at(&mut buf, 0).is_err() {
            return Ok(None);
        }
        let Some(hint) = decode_committed(&buf) else { return Ok(None) };
        // Never past what this node's log holds, and only if the entry there is the same.
        let wal = self.wal();
        if wal_index(hint.index) >= wal.next_index() || wal_index(hint.index) < wal.first_index() {
            return Ok(None);
        }
        match self.read_entry(wal_index(hint.index)) {
            Ok(e) if e.log_id == hint => Ok(Some(hint)),
            _ => Ok(None),
        }
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> Result<(), StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        self.shared.image_pending().map_err(|e| StorageIOError::write_logs(&e))?;
        let mut payloads = Vec::new();
        let mut first = None;
        {
            let mut mem = lock(&self.shared.mem);
            for entry in entries {
                let expected = mem.last.map_or(0, |l| l.index + 1);
                if entry.log_id.index != expected {
                    return Err(StorageIOError::write_logs(&io_err(format!(
                        "log hole: appending {} after {:?}",
                        entry.log_id, mem.last
                    )))
                    .into());
                }
                first.get_or_insert(wal_index(entry.log_id.index));
                let mut buf = Vec::new();
                codec::encode_entry(&entry, &mut buf);
                payloads.push(buf);
                mem.last = Some(entry.log_id);
                WalLog::cache_insert(&mut mem, entry);
            }
        }
        let Some(first) = first else {
            callback.log_io_completed(Ok(()));
            return Ok(());
        };
        // openraft 0.9 waits for this append to be durable before it does anything else,
        // so the fsync runs here, on its task, with no hand-off to another thread. Commits
        // that arrive meanwhile share the next entry (see RaftProposer).
        let slices: Vec<&[u8]> = payloads.iter().map(|p| p.as_slice()).collect();
        let result = match self.wal().append_batch(&slices) {
            Ok(at) if at == first => Ok(()),
            Ok(at) => Err(io_err(format!("the log wrote records from {at}, Raft expected {first}"))),
            Err(e) => Err(io_err(e.to_string())),
        };
        callback.log_io_completed(result);
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        self.shared.image_pending().map_err(|e| StorageIOError::write_logs(&e))?;
        // Raft entries from log_id.index on go: log records after wal_index(index) - 1.
        self.wal().truncate_after(log_id.index).map_err(|e| StorageIOError::write_logs(&io_err(e.to_string())))?;
        let mut mem = lock(&self.shared.mem);
        let removed = mem.cache.split_off(&log_id.index);
        mem.cache_bytes -= removed.values().map(entry_bytes).sum::<usize>();
        mem.last = match log_id.index {
            0 => None,
            i => Some(match mem.cache.get(&(i - 1)) {
                Some(e) => e.log_id,
                None => {
                    drop(mem);
                    let id = self.read_entry(wal_index(i - 1)).map_err(|e| StorageIOError::read_logs(&e))?.log_id;
                    mem = lock(&self.shared.mem);
                    id
                }
            }),
        };
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        // openraft purges only entries in a snapshot, and a snapshot is a durable checkpoint
        // (see `build_snapshot`); the bound is checked again, because the store recovers from
        // its checkpoint with the records after it. Whole segments go; the record for
        // `log_id` stays when its segment does, and the first record left names the last
        // purged entry after a restart.
        if self.shared.image_pending().is_err() {
            // openraft purges up to an image it was told is installed: the restart does.
            return Ok(());
        }
        let checkpoint = self.shared.engine.store().stats().checkpoint_applied_index;
        let upto = wal_index(log_id.index).min(checkpoint);
        self.wal().purge_before(upto).map_err(|e| StorageIOError::write_logs(&io_err(e.to_string())))?;
        Ok(())
    }
}

/// Forces a new cluster of one voter, node `id` at peer address `addr`, from the data
/// directory of a survivor whose cluster lost its quorum for good. **Every write this node
/// had not received is lost**, and entries it holds but were never committed become
/// committed. Run only with the node stopped, and never while the old cluster may come
/// back: the old members must be wiped or kept down for ever.
///
/// It appends to the log a membership entry naming only this node, in a term above any it
/// has seen, and records its vote for itself in that term. At the next start the node is
/// the only voter: it elects itself, commits the entry, and serves; others join it as new
/// members (`--join`). Returns what it did.
pub fn force_new_cluster(
    vfs: Arc<dyn Vfs>,
    dir: &Path,
    id: NodeId,
    addr: &str,
    wal: WalOptions,
) -> std::io::Result<String> {
    if !vfs.exists(&dir.join(storage::btree::DATA_FILE)) {
        return Err(io_err(format!("{}: no Bulwark data directory here", dir.display())));
    }
    let log = storage::wal::Wal::open(vfs.clone(), &dir.join(storage::store::WAL_DIR), 1, wal)
        .map_err(|e| io_err(e.to_string()))?;
    let next = log.next_index();
    if next <= log.first_index() {
        return Err(io_err("the log is empty: this node never joined a cluster"));
    }
    let records = log.read(next - 1, 1).map_err(|e| io_err(e.to_string()))?;
    let (at, payload) = records.first().ok_or_else(|| io_err("cannot read the last log record"))?;
    let last = decode_record(*at, payload)?;
    let vote = read_vote(vfs.as_ref(), dir)?;
    let term = vote.map_or(0, |v| v.leader_id.term).max(last.log_id.leader_id.term) + 1;
    let membership = openraft::Membership::new(
        vec![std::collections::BTreeSet::from([id])],
        BTreeMap::from([(id, BasicNode { addr: addr.to_string() })]),
    );
    let entry: Entry<TypeConfig> = Entry {
        log_id: LogId::new(openraft::CommittedLeaderId::new(term, id), last.log_id.index + 1),
        payload: EntryPayload::Membership(membership),
    };
    let mut buf = Vec::new();
    codec::encode_entry(&entry, &mut buf);
    let written = log.append(&buf).map_err(|e| io_err(e.to_string()))?;
    if written != wal_index(entry.log_id.index) {
        return Err(io_err(format!("the log wrote record {written}, expected {}", wal_index(entry.log_id.index))));
    }
    write_vote(vfs.as_ref(), dir, &Vote::new(term, id))?;
    Ok(format!(
        "node {id} ({addr}) is now the only voter, from term {term}; its log ends at entry {} (written by node {} in term {}); \
         writes it had not received are lost",
        entry.log_id.index,
        last.log_id.leader_id.node_id,
        last.log_id.leader_id.term
    ))
}

/// The MVCC store as Raft's state machine.
#[derive(Clone)]
pub struct EngineStateMachine {
    engine: Engine,
    log: WalLog,
    /// Whether checkpoint images are copied on a thread of their own
    /// ([`crate::snapshot::start_outgoing`]); a simulation's nodes copy them in place, so
    /// that a seed replays exactly.
    copy_in_background: bool,
}

impl EngineStateMachine {
    /// The state machine over `engine`, whose log `log` is; it copies checkpoint images on
    /// a thread of their own if `copy_in_background`.
    pub fn new(engine: Engine, log: WalLog, copy_in_background: bool) -> EngineStateMachine {
        EngineStateMachine { engine, log, copy_in_background }
    }

    fn applied_log_id(&self) -> std::io::Result<Option<LogId<NodeId>>> {
        match self.engine.applied_index() {
            0 => Ok(None),
            i => Ok(Some(self.log.read_entry(i)?.log_id)),
        }
    }

    fn membership(&self) -> std::io::Result<StoredMembership<NodeId, BasicNode>> {
        self.stored_membership(MEMBERSHIP_KEY)
    }

    fn stored_membership(&self, key: &[u8]) -> std::io::Result<StoredMembership<NodeId, BasicNode>> {
        match self.engine.store().get(key).map_err(|e| io_err(e.to_string()))? {
            None => Ok(StoredMembership::default()),
            Some(bytes) => codec::decode_stored_membership(&bytes)
                .map_err(|e| io_err(format!("the stored membership is damaged: {e}"))),
        }
    }

    /// The snapshot meta of the store's checkpoint at `checkpoint` (a log record index).
    /// The membership is the one in force there (the latest, or the one before it): if it
    /// changed twice since the checkpoint, None.
    fn meta_at(&self, checkpoint: u64) -> std::io::Result<Option<SnapshotMeta<NodeId, BasicNode>>> {
        let last_log_id = match checkpoint {
            0 => None,
            i => Some(self.log.read_entry(i)?.log_id),
        };
        let at = last_log_id.map(|l| l.index);
        let mut membership = self.membership()?;
        if membership.log_id().as_ref().map(|l| l.index) > at {
            membership = self.stored_membership(MEMBERSHIP_PREV_KEY)?;
            if membership.log_id().as_ref().map(|l| l.index) > at {
                return Ok(None);
            }
        }
        let snapshot_id = match last_log_id {
            Some(l) => format!("checkpoint-{}-{}", l.leader_id, l.index),
            None => "checkpoint-empty".to_string(),
        };
        Ok(Some(SnapshotMeta { last_log_id, last_membership: membership, snapshot_id }))
    }

    /// Writes a checkpoint now: off Raft's thread, unless this node copies in place (a
    /// simulation's).
    async fn checkpoint(&self) -> std::io::Result<()> {
        let engine = self.engine.clone();
        let run = move || engine.store().checkpoint().map(|_| ()).map_err(|e| io_err(e.to_string()));
        if !self.copy_in_background {
            return run();
        }
        tokio::task::spawn_blocking(run).await.map_err(|e| io_err(format!("the checkpoint stopped: {e}")))?
    }

    /// The log record at `a` (the applied index of a checkpoint being copied).
    fn record_at(&self, a: u64) -> std::io::Result<Vec<u8>> {
        let records = self.log.wal().read(a, 1).map_err(|e| io_err(e.to_string()))?;
        match records.into_iter().next() {
            Some((i, record)) if i == a => Ok(record),
            _ => Err(io_err(format!("log record {a}, at the checkpoint, is not in the log"))),
        }
    }

    /// Builds the checkpoint image a lagging or new node installs (see [`crate::snapshot`])
    /// in place.
    fn build_image(&self) -> std::io::Result<Snapshot<TypeConfig>> {
        for _ in 0..IMAGE_ATTEMPTS_MAX {
            let store = self.engine.store();
            let image = crate::snapshot::build_outgoing(
                &self.log.shared.vfs,
                &self.log.shared.dir,
                |start, sink| store.copy_checkpoint(start, sink).map_err(|e| io_err(e.to_string())),
                |a| self.record_at(a),
            )?;
            let a = image.applied_index();
            let Some(meta) = self.meta_at(a)? else {
                // The membership changed twice since that checkpoint: take a newer one.
                store.checkpoint().map_err(|e| io_err(e.to_string()))?;
                continue;
            };
            tracing::info!(applied_index = a, bytes = image.len(), "built a checkpoint image to send");
            return Ok(Snapshot { meta, snapshot: Box::new(crate::snapshot::ImageData::Outgoing(image)) });
        }
        Err(io_err("the membership kept changing while a checkpoint image was built"))
    }

    /// As [`EngineStateMachine::build_image`], but the data file is copied on a thread of
    /// its own, and the image is answered as soon as the copy has started: neither this
    /// task (openraft's state machine worker, which applies commits) nor Raft's thread
    /// waits for the copy.
    async fn start_image(&self) -> std::io::Result<Snapshot<TypeConfig>> {
        for _ in 0..IMAGE_ATTEMPTS_MAX {
            let (engine, sm, checker) = (self.engine.clone(), self.clone(), self.clone());
            let started = crate::snapshot::start_outgoing(
                &self.log.shared.vfs,
                &self.log.shared.dir,
                move |start, sink| engine.store().copy_checkpoint(start, sink).map_err(|e| io_err(e.to_string())),
                move |a| sm.record_at(a),
                move |a| checker.meta_at(a),
            )
            .await
            .map_err(|_| io_err("the thread copying a checkpoint image stopped without an answer"))??;
            if let Some((image, meta)) = started {
                tracing::info!(
                    applied_index = image.applied_index(),
                    bytes = image.len(),
                    "copying a checkpoint image to send"
                );
                return Ok(Snapshot { meta, snapshot: Box::new(crate::snapshot::ImageData::Outgoing(image)) });
            }
            // The membership changed twice since that checkpoint: take a newer one.
            self.checkpoint().await?;
        }
        Err(io_err("the membership kept changing while a checkpoint image was built"))
    }
}

/// Attempts at building a checkpoint image whose membership is the one in force at it.
const IMAGE_ATTEMPTS_MAX: usize = 3;

impl RaftSnapshotBuilder<TypeConfig> for EngineStateMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError<NodeId>> {
        // openraft records the snapshot's meta and may then purge the log up to it, so the
        // snapshot is the newest *durable* checkpoint: the store recovers from it with the
        // records after it. No data is copied here; `get_current_snapshot` copies the file
        // when a node needs it.
        let err = |e: std::io::Error| StorageIOError::write_snapshot(None, &e);
        for _ in 0..IMAGE_ATTEMPTS_MAX {
            let checkpoint = self.engine.store().stats().checkpoint_applied_index;
            if let Some(meta) = self.meta_at(checkpoint).map_err(err)? {
                return Ok(Snapshot { meta, snapshot: Box::new(crate::snapshot::ImageData::empty()) });
            }
            self.checkpoint().await.map_err(err)?;
        }
        Err(err(io_err("the membership kept changing while a snapshot was taken")).into())
    }
}

impl RaftStateMachine<TypeConfig> for EngineStateMachine {
    type SnapshotBuilder = EngineStateMachine;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<NodeId>>, StoredMembership<NodeId, BasicNode>), StorageError<NodeId>> {
        let applied = self.applied_log_id().map_err(|e| StorageIOError::read_state_machine(&e))?;
        let membership = self.membership().map_err(|e| StorageIOError::read_state_machine(&e))?;
        Ok((applied, membership))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Outcome>, StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut outcomes = Vec::new();
        for entry in entries {
            if let Err(e) = self.log.shared.image_pending() {
                return Err(StorageIOError::apply(entry.log_id, &e).into());
            }
            let index = wal_index(entry.log_id.index);
            let failed = |e: txn::Error| StorageIOError::apply(entry.log_id, &io_err(e.to_string()));
            let outcome = match &entry.payload {
                EntryPayload::Blank => {
                    self.engine.apply_logged(index, None, &[]).map_err(failed)?;
                    Outcome::None
                }
                EntryPayload::Normal(Command(bytes)) => match decode_commands(bytes, index) {
                    Ok(cmds) => Outcome::Txns(self.engine.apply_logged_batch(index, &cmds, &[]).map_err(failed)?),
                    Err(e) => {
                        // Every replica rejects the same bytes the same way.
                        self.engine.apply_logged(index, None, &[]).map_err(failed)?;
                        Outcome::Rejected(e)
                    }
                },
                EntryPayload::Membership(m) => {
                    let bytes = membership_bytes(entry.log_id, m);
                    let mut writes = vec![(MEMBERSHIP_KEY.to_vec(), bytes)];
                    let old = self.engine.store().get(MEMBERSHIP_KEY).map_err(|e| failed(txn::Error::Storage(e)))?;
                    if let Some(old) = old {
                        writes.push((MEMBERSHIP_PREV_KEY.to_vec(), old));
                    }
                    self.engine.apply_logged(index, None, &writes).map_err(failed)?;
                    Outcome::None
                }
            };
            outcomes.push(outcome);
        }
        Ok(outcomes)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<crate::snapshot::ImageData>, StorageError<NodeId>> {
        self.log.shared.images_received.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let incoming = crate::snapshot::Incoming::start(&self.log.shared.vfs, &self.log.shared.dir)
            .map_err(|e| StorageIOError::write_snapshot(None, &e))?;
        Ok(Box::new(crate::snapshot::ImageData::Incoming(incoming)))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, BasicNode>,
        snapshot: Box<crate::snapshot::ImageData>,
    ) -> Result<(), StorageError<NodeId>> {
        // The image is checked and saved; it is installed when the node next opens (the
        // data file of a running store is never swapped), so this node must restart. A
        // saved image is reported installed, so that the leader goes on from its last
        // entry; until the restart nothing changes here (`LogShared::image_pending`). A
        // refused one is reported failed, which stops this node's Raft.
        let outcome = match *snapshot {
            crate::snapshot::ImageData::Incoming(incoming) => {
                let last_log_id = meta.last_log_id;
                let save = move || {
                    incoming.save(|applied_index, record| {
                        let entry = decode_record(applied_index, record).map_err(|e| e.to_string())?;
                        if Some(entry.log_id) != last_log_id {
                            return Err(format!(
                                "the image ends at entry {}, the leader said {last_log_id:?}",
                                entry.log_id
                            ));
                        }
                        Ok(())
                    })
                };
                // The check reads the whole data file once: not on Raft's thread.
                if self.copy_in_background {
                    tokio::task::spawn_blocking(save).await.unwrap_or_else(|e| Err(format!("the check stopped: {e}")))
                } else {
                    save()
                }
            }
            _ => Err("the image was not received into a file".to_string()),
        };
        let (reason, saved) = match outcome {
            Ok((a, len)) => (
                format!(
                    "a checkpoint image from the leader (applied index {a}, {len} bytes) is saved; the node restarts to install it"
                ),
                true,
            ),
            Err(e) => (format!("a checkpoint image from the leader was refused ({e}); the node restarts to ask again"), false),
        };
        tracing::warn!("{reason}");
        self.log.shared.image_saved.fetch_or(saved, std::sync::atomic::Ordering::AcqRel);
        *lock(&self.log.shared.restart) = Some(reason.clone());
        if saved {
            return Ok(());
        }
        Err(StorageIOError::write_snapshot(Some(meta.signature()), &io_err(reason)).into())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError<NodeId>> {
        if !self.log.shared.serve_images.load(std::sync::atomic::Ordering::Relaxed) {
            // Raft is starting: it takes the meta from `build_snapshot` instead.
            return Ok(None);
        }
        let image = if self.copy_in_background { self.start_image().await } else { self.build_image() };
        match image {
            Ok(image) => {
                self.log.shared.images_sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                Ok(Some(image))
            }
            Err(e) => {
                // openraft 0.9 stops a leader whose state machine fails here. It is handed
                // an image whose first read fails instead, under the newest checkpoint's
                // meta: the transports answer that as the target being unreachable, and
                // openraft asks again after a pause (`snapshot::send_in_chunks`).
                tracing::warn!(error = %e, "could not build a checkpoint image; another is tried after a pause");
                let checkpoint = self.engine.store().stats().checkpoint_applied_index;
                let meta = match self.meta_at(checkpoint) {
                    Ok(Some(meta)) => meta,
                    _ => return Err(StorageIOError::read_snapshot(None, &e).into()),
                };
                let why = format!("the checkpoint image could not be built: {e}");
                Ok(Some(Snapshot { meta, snapshot: Box::new(crate::snapshot::ImageData::Failed(why)) }))
            }
        }
    }
}

/// The network of a group of one: there is nobody to reach.
pub struct NoPeers;

/// A connection to nobody.
pub struct NoPeer(NodeId);

impl RaftNetworkFactory<TypeConfig> for NoPeers {
    type Network = NoPeer;

    async fn new_client(&mut self, target: NodeId, _node: &BasicNode) -> NoPeer {
        NoPeer(target)
    }
}

fn unreachable<E: std::error::Error>(to: NodeId) -> RPCError<NodeId, BasicNode, E> {
    RPCError::Unreachable(Unreachable::new(&io_err(format!("node {to}: this node has no peer network"))))
}

impl RaftNetwork<TypeConfig> for NoPeer {
    async fn append_entries(
        &mut self,
        _rpc: AppendEntriesRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        Err(unreachable(self.0))
    }

    async fn install_snapshot(
        &mut self,
        _rpc: InstallSnapshotRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<InstallSnapshotResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId, InstallSnapshotError>>>
    {
        Err(unreachable(self.0))
    }

    async fn vote(
        &mut self,
        _rpc: VoteRequest<NodeId>,
        _option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        Err(unreachable(self.0))
    }
}

/// The first byte of an entry's command bytes that hold several transaction commands:
/// `ENTRY_BATCH_TAG | count u32 | (len u32 | command)*` (little-endian). The transaction
/// layer's own command encoding starts with its format byte, 1.
pub const ENTRY_BATCH_TAG: u8 = 0xB7;
/// Most commands one entry carries.
pub const ENTRY_COMMANDS_MAX: usize = 1024;
/// Most command bytes one entry carries (a single bigger command goes alone).
pub const ENTRY_BATCH_BYTES_MAX: usize = 4 << 20;
/// Entries handed to Raft and not yet answered. openraft 0.9 makes each append durable
/// before it takes the next, so a second entry in flight lets the next batch be appended as
/// soon as the previous one's fsync returns.
pub const ENTRIES_IN_FLIGHT_MAX: usize = 2;

fn encode_batch(commands: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(5 + commands.iter().map(|c| c.len() + 4).sum::<usize>());
    out.push(ENTRY_BATCH_TAG);
    out.extend_from_slice(&(commands.len() as u32).to_le_bytes());
    for c in commands {
        out.extend_from_slice(&(c.len() as u32).to_le_bytes());
        out.extend_from_slice(c);
    }
    out
}

/// The transaction commands in an entry's command bytes (a batch, or one bare command).
fn decode_commands(bytes: &[u8], index: u64) -> Result<Vec<txn::command::Command>, String> {
    if bytes.first() != Some(&ENTRY_BATCH_TAG) {
        return txn::command::Command::decode(bytes, index).map(|c| vec![c]).map_err(|e| e.to_string());
    }
    let mut r = codec::Reader::new(&bytes[1..]);
    let count = r.count("batch count", ENTRY_COMMANDS_MAX, 4).map_err(|e| e.to_string())?;
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        let c = r.bytes("batch command", codec::COMMAND_BYTES_MAX).map_err(|e| e.to_string())?;
        out.push(txn::command::Command::decode(c, index).map_err(|e| e.to_string())?);
    }
    r.finish("batch").map_err(|e| e.to_string())?;
    Ok(out)
}

type Reply = SyncSender<txn::Result<txn::command::Outcome>>;

struct Pending {
    cmd: txn::command::Command,
    bytes: Vec<u8>,
    reply: Reply,
}

#[derive(Default)]
struct ProposalQueue {
    queue: Mutex<std::collections::VecDeque<Pending>>,
    ready: tokio::sync::Notify,
}

/// How a caller outside Raft's runtime waits for it: on the real clock, or by driving a
/// simulation's shared runtime on its (paused) clock.
#[derive(Clone)]
enum Waiter {
    Real,
    Driven(Arc<tokio::runtime::Runtime>),
}

impl Waiter {
    fn now(&self) -> Instant {
        match self {
            Waiter::Real => Instant::now(),
            Waiter::Driven(rt) => {
                let _inside = rt.enter();
                tokio::time::Instant::now().into_std()
            }
        }
    }

    fn sleep(&self, d: Duration) {
        match self {
            Waiter::Real => std::thread::sleep(d),
            // Timers are made inside the runtime, which the caller is not yet.
            Waiter::Driven(rt) => rt.block_on(async { tokio::time::sleep(d).await }),
        }
    }
}

/// Where a node's Raft tasks run.
enum NodeRuntime {
    /// Its own threads (every real node).
    Own(tokio::runtime::Runtime),
    /// A simulation's shared single-threaded runtime ([`PeerOptions::driven`]).
    Driven(Arc<tokio::runtime::Runtime>),
}

impl NodeRuntime {
    fn get(&self) -> &tokio::runtime::Runtime {
        match self {
            NodeRuntime::Own(rt) => rt,
            NodeRuntime::Driven(rt) => rt,
        }
    }

    fn handle(&self) -> &tokio::runtime::Handle {
        self.get().handle()
    }

    fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.get().block_on(f)
    }

    fn spawn<F>(&self, f: F) -> tokio::task::AbortHandle
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.get().spawn(f).abort_handle()
    }

    fn waiter(&self) -> Waiter {
        match self {
            NodeRuntime::Own(_) => Waiter::Real,
            NodeRuntime::Driven(rt) => Waiter::Driven(rt.clone()),
        }
    }
}

/// How often a commit waiting on a driven runtime looks for its answer (simulated time).
const DRIVEN_POLL: Duration = Duration::from_millis(1);

/// Commits through Raft: the [`txn::Propose`] a replicated engine uses. Commits that arrive
/// together share one entry (group commit above Raft), as long as none writes what another
/// writes or reads ([`txn::command::Footprint`]); a batcher task hands the entries to Raft.
pub struct RaftProposer {
    raft: Raft,
    queue: Arc<ProposalQueue>,
    wait_max: Duration,
    command_bytes_max: usize,
    /// A leader of several voters that has heard from no quorum for this long stops
    /// committing (check-quorum): the election timeout's upper end.
    quorum_silence_max: Duration,
    /// Set while this leader hands its leadership to another node: new commits are refused
    /// (57P03, retryable) so that the new leader holds every entry when it stands.
    switching: Arc<std::sync::atomic::AtomicBool>,
    /// The clock-offset guard's verdict (see [`watch_peers`]).
    peers: Arc<PeerWatch>,
    waiter: Waiter,
}

/// How often a waiting commit looks at whether its leader still hears from a quorum.
const QUORUM_CHECK_EVERY: Duration = Duration::from_millis(20);

impl RaftProposer {
    /// Starts the batcher on `runtime` and returns the proposer that feeds it, and the
    /// batcher's task.
    fn start(
        raft: Raft,
        runtime: &NodeRuntime,
        wait_max: Duration,
        command_bytes_max: usize,
        quorum_silence_max: Duration,
        switching: Arc<std::sync::atomic::AtomicBool>,
        peers: Arc<PeerWatch>,
    ) -> (RaftProposer, tokio::task::AbortHandle) {
        let queue = Arc::new(ProposalQueue::default());
        let task = runtime.spawn(batcher(raft.clone(), queue.clone(), peers.clone()));
        let waiter = runtime.waiter();
        (RaftProposer { raft, queue, wait_max, command_bytes_max, quorum_silence_max, switching, peers, waiter }, task)
    }

    /// Waits for the answer on `rx`, driving the simulation's runtime meanwhile (see
    /// [`PeerOptions::driven`]); the same checks as the plain wait.
    fn wait_driven(
        &self,
        rx: &std::sync::mpsc::Receiver<txn::Result<txn::command::Outcome>>,
    ) -> txn::Result<txn::command::Outcome> {
        let started = self.waiter.now();
        loop {
            match rx.try_recv() {
                Ok(result) => return result,
                Err(std::sync::mpsc::TryRecvError::Disconnected) => {
                    return Err(txn::Error::CommitUnknown(
                        "Raft stopped before answering; the commit may have been applied".into(),
                    ))
                }
                Err(std::sync::mpsc::TryRecvError::Empty) => {}
            }
            if let Some(why) = self.quorum_lost() {
                return Err(txn::Error::CommitUnknown(format!("{why}; the commit may still be applied")));
            }
            if self.waiter.now().duration_since(started) >= self.wait_max {
                return Err(txn::Error::CommitUnknown(format!(
                    "no answer from Raft within {} s; the commit may still be applied",
                    self.wait_max.as_secs()
                )));
            }
            self.waiter.sleep(DRIVEN_POLL);
        }
    }

    /// Why this node, a leader among several voters, must not acknowledge commits now: no
    /// quorum has answered it for longer than the election timeout, so another leader may
    /// have been elected. None if it may (or if it is not the leader: Raft refuses then).
    fn quorum_lost(&self) -> Option<String> {
        // Read in place: cloning the metrics (maps and all) on every commit costs more than
        // the check.
        let quorum_ack = {
            let metrics = self.raft.metrics();
            let m = metrics.borrow();
            if m.state != openraft::ServerState::Leader || at_most_one_voter(m.membership_config.membership()) {
                return None;
            }
            m.millis_since_quorum_ack
        };
        match quorum_ack {
            Some(ms) if ms > self.quorum_silence_max.as_millis() as u64 => Some(format!(
                "this leader has heard from no quorum for {ms} ms (more than the election timeout, {} ms)",
                self.quorum_silence_max.as_millis()
            )),
            _ => None,
        }
    }
}

/// Whether `membership` has at most one voter across its joint configurations, read in
/// place (`voter_ids` builds a set on every call, and commits ask this every time).
fn at_most_one_voter(membership: &openraft::Membership<NodeId, BasicNode>) -> bool {
    let mut ids = membership.get_joint_config().iter().flatten();
    match ids.next() {
        None => true,
        Some(&first) => ids.all(|&v| v == first),
    }
}

/// Takes the longest run of queued commits from the front that may share an entry.
fn take_batch(queue: &ProposalQueue) -> Vec<Pending> {
    let mut q = lock(&queue.queue);
    let mut footprint = txn::command::Footprint::default();
    let mut bytes = 0;
    let mut batch = Vec::new();
    while let Some(p) = q.front() {
        let fits =
            batch.is_empty() || (batch.len() < ENTRY_COMMANDS_MAX && bytes + p.bytes.len() <= ENTRY_BATCH_BYTES_MAX);
        if !fits || !footprint.admits(&p.cmd) {
            break;
        }
        let p = q.pop_front().expect("front exists");
        footprint.add(&p.cmd);
        bytes += p.bytes.len();
        batch.push(p);
    }
    batch
}

async fn batcher(raft: Raft, queue: Arc<ProposalQueue>, peers: Arc<PeerWatch>) {
    let in_flight = Arc::new(tokio::sync::Semaphore::new(ENTRIES_IN_FLIGHT_MAX));
    loop {
        let Ok(permit) = in_flight.clone().acquire_owned().await else { return };
        let batch = loop {
            let batch = take_batch(&queue);
            if !batch.is_empty() {
                break batch;
            }
            queue.ready.notified().await;
        };
        let raft = raft.clone();
        let peers = peers.clone();
        tokio::spawn(async move {
            let payload: Vec<Vec<u8>> = batch.iter().map(|p| p.bytes.clone()).collect();
            let result = raft.client_write(Command(encode_batch(&payload))).await;
            drop(permit);
            match result {
                Ok(resp) => match resp.data {
                    Outcome::Txns(outcomes) if outcomes.len() == batch.len() => {
                        for (p, o) in batch.into_iter().zip(outcomes) {
                            let _ = p.reply.send(Ok(o));
                        }
                    }
                    other => {
                        for p in batch {
                            let _ = p
                                .reply
                                .send(Err(txn::Error::CommitUnknown(format!("Raft answered a commit with {other:?}"))));
                        }
                    }
                },
                // Never appended, or removed from the log by a new leader: not committed.
                Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => {
                    let sql = f.leader_id.and_then(|id| lock(&peers.views).get(&id).map(|v| v.sql_addr.clone()));
                    let why = match (f.leader_id, f.leader_node, sql.filter(|a| !a.is_empty())) {
                        (Some(id), _, Some(sql)) => {
                            format!("this node is not the leader; node {id} is: connect to {sql}")
                        }
                        (Some(id), Some(node), None) => {
                            format!("this node is not the leader; node {id} at peer address {} is", node.addr)
                        }
                        _ => "this node is not the leader, and no leader is known".to_string(),
                    };
                    for p in batch {
                        let _ = p.reply.send(Err(txn::Error::Unavailable(why.clone())));
                    }
                }
                Err(e) => {
                    for p in batch {
                        let _ = p.reply.send(Err(txn::Error::CommitUnknown(format!("Raft failed: {e}"))));
                    }
                }
            }
        });
    }
}

impl txn::Propose for RaftProposer {
    fn propose(&self, cmd: &txn::command::Command) -> txn::Result<txn::command::Outcome> {
        let bytes = cmd.encode();
        if bytes.len() > self.command_bytes_max {
            return Err(txn::Error::TooLarge(format!(
                "the commit is {} bytes, over the {} bytes one log entry may hold; commit in smaller transactions",
                bytes.len(),
                self.command_bytes_max
            )));
        }
        if self.switching.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(txn::Error::Unavailable(
                "this node is handing its leadership to another (a switchover); retry on the new leader".into(),
            ));
        }
        if let Some(why) = lock(&self.peers.clock_refusal).clone() {
            return Err(txn::Error::Unavailable(why));
        }
        if let Some(why) = self.quorum_lost() {
            return Err(txn::Error::Unavailable(why));
        }
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        lock(&self.queue.queue).push_back(Pending { cmd: cmd.clone(), bytes, reply: tx });
        self.queue.ready.notify_one();
        if matches!(self.waiter, Waiter::Driven(_)) {
            return self.wait_driven(&rx);
        }
        // A plain blocking wait (the caller may be on a connection's own runtime thread), in
        // slices, to give up early once the leader is cut off from its quorum: the entry
        // may yet be committed by a new leader, so the outcome is unknown, never "done".
        let started = Instant::now();
        loop {
            match rx.recv_timeout(QUORUM_CHECK_EVERY) {
                Ok(result) => return result,
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    if let Some(why) = self.quorum_lost() {
                        return Err(txn::Error::CommitUnknown(format!("{why}; the commit may still be applied")));
                    }
                    if started.elapsed() >= self.wait_max {
                        return Err(txn::Error::CommitUnknown(format!(
                            "no answer from Raft within {} s; the commit may still be applied",
                            self.wait_max.as_secs()
                        )));
                    }
                }
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(txn::Error::CommitUnknown(
                        "Raft stopped before answering; the commit may have been applied".into(),
                    ))
                }
            }
        }
    }
}

/// Settings of a [`Node`].
#[derive(Debug, Clone)]
pub struct NodeOptions {
    /// This node's id.
    pub id: NodeId,
    /// The engine's settings.
    pub engine: EngineOptions,
    /// Raft's settings.
    pub raft: Config,
    /// Peers over TCP; None for a single node (a group of one).
    pub peers: Option<PeerOptions>,
}

/// How a node of a cluster reaches its peers.
#[derive(Debug, Clone)]
pub struct PeerOptions {
    /// Where this node listens for its peers.
    pub listen: std::net::SocketAddr,
    /// The members of a new cluster, id to peer address, this node included: used when the
    /// data directory is new, ignored afterwards (the membership is in the log). The member
    /// with the lowest id forms the cluster: until it is up, the others wait.
    pub init: BTreeMap<NodeId, String>,
    /// The clock-offset guard: a node whose wall clock differs from more than half of the
    /// other voters' by more than this refuses to lead (see [`Node::clock_refusal`]).
    pub clock_offset_max: Duration,
    /// This node's wall clock (the system's, unless a test sets one).
    pub clock: WallClock,
    /// In-process simulation only: reach the peers through this router (seeded message
    /// faults and partitions) instead of TCP; `listen` is then unused, peers exchange no
    /// addresses, and switchover is off. The clock-offset guard reads the peers' `clock`s
    /// through the router.
    pub router: Option<crate::network::Router>,
    /// The seed of Raft's random draws at this start (the election timeout; see
    /// [`crate::runtime`]); None draws from the OS. Simulations set it from their seed.
    pub rng_seed: Option<u64>,
    /// In-process simulation only: run Raft's tasks on this shared single-threaded runtime
    /// instead of the node's own threads. Whoever waits on Raft (a commit, a read barrier)
    /// then drives it (`block_on`) while it waits, and time is the runtime's clock, paused
    /// in a simulation: with the router and a seed, a run replays exactly.
    pub driven: Option<Arc<tokio::runtime::Runtime>>,
}

impl PeerOptions {
    /// Listening on `listen`, no initial members, the default clock-offset bound and the
    /// system clock.
    pub fn new(listen: std::net::SocketAddr) -> PeerOptions {
        PeerOptions {
            listen,
            init: BTreeMap::new(),
            clock_offset_max: CLOCK_OFFSET_MAX_DEFAULT,
            clock: WallClock::default(),
            router: None,
            rng_seed: None,
            driven: None,
        }
    }
}

/// A wall clock: microseconds since the Unix epoch.
#[derive(Clone)]
pub struct WallClock(pub Arc<dyn Fn() -> i64 + Send + Sync>);

impl Default for WallClock {
    fn default() -> Self {
        WallClock(Arc::new(crate::tcp::system_clock_micros))
    }
}

impl std::fmt::Debug for WallClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WallClock({} µs)", (self.0)())
    }
}

/// Default bound of the clock-offset guard: well above what NTP keeps machines within, well
/// below the leader lease's margin for error over a few seconds of drift.
pub const CLOCK_OFFSET_MAX_DEFAULT: Duration = Duration::from_millis(500);
/// How often a node asks each peer for its addresses and wall clock.
pub const PEER_STATUS_EVERY: Duration = Duration::from_millis(500);
/// How long one such question may take.
const PEER_STATUS_WAIT: Duration = Duration::from_millis(1000);
/// A peer's answer older than this does not count towards the clock-offset guard.
const PEER_STATUS_FRESH: Duration = Duration::from_secs(5);

/// What this node last heard from a peer's `Status` answer.
#[derive(Debug, Clone)]
pub struct PeerView {
    /// Where its clients connect.
    pub sql_addr: String,
    /// Its HTTP interface.
    pub http_addr: String,
    /// Its wall clock minus this node's, milliseconds (estimated at the middle of the
    /// round trip).
    pub clock_offset_ms: i64,
    /// The round trip, milliseconds (the estimate's uncertainty is half of it).
    pub round_trip_ms: i64,
    at: tokio::time::Instant,
}

/// How [`watch_peers`] asks a peer for its wall clock (and addresses).
#[derive(Clone)]
enum PeerStatusVia {
    Tcp(crate::tcp::TcpNetwork),
    /// A simulation's router: the answer is the peer's simulated clock, through the
    /// router's partitions and faults; no addresses.
    Router(crate::network::Router),
}

/// Shared between the node and its peer watcher.
#[derive(Default)]
struct PeerWatch {
    views: Mutex<BTreeMap<NodeId, PeerView>>,
    /// Why this node refuses to lead now (its clock), if it does.
    clock_refusal: Mutex<Option<String>>,
}

/// Asks every other member for its addresses and wall clock, every [`PEER_STATUS_EVERY`],
/// and applies the clock-offset guard: if this node's clock differs from more than half of
/// the other voters that answered by more than `bound` (beyond half the round trip), it
/// refuses to lead: it stops standing for election and sending heartbeats (so that another
/// node is elected), and refuses commits and linearizable reads, until its clock agrees
/// again.
async fn watch_peers(raft: Raft, via: PeerStatusVia, clock: WallClock, bound: Duration, watch: Arc<PeerWatch>) {
    use openraft::network::RaftNetworkFactory;
    let bound_ms = bound.as_millis() as i64;
    loop {
        tokio::time::sleep(PEER_STATUS_EVERY).await;
        let m = raft.metrics().borrow().clone();
        if m.running_state.is_err() {
            return;
        }
        let membership = m.membership_config.membership().clone();
        for (id, node) in membership.nodes() {
            if *id == m.id {
                continue;
            }
            let t0 = (clock.0)();
            let (sql_addr, http_addr, clock_micros) = match &via {
                PeerStatusVia::Tcp(network) => {
                    let mut peer = network.clone().new_client(*id, node).await;
                    let Ok(Ok(status)) = tokio::time::timeout(PEER_STATUS_WAIT, peer.status(PEER_STATUS_WAIT)).await
                    else {
                        continue;
                    };
                    (status.sql_addr, status.http_addr, status.clock_micros)
                }
                PeerStatusVia::Router(router) => {
                    let Ok(Some(micros)) = tokio::time::timeout(PEER_STATUS_WAIT, router.clock_of(m.id, *id)).await
                    else {
                        continue;
                    };
                    (String::new(), String::new(), micros)
                }
            };
            let t1 = (clock.0)();
            let view = PeerView {
                sql_addr,
                http_addr,
                clock_offset_ms: (clock_micros - (t0 + t1) / 2) / 1000,
                round_trip_ms: (t1 - t0) / 1000,
                at: tokio::time::Instant::now(),
            };
            lock(&watch.views).insert(*id, view);
        }
        let verdict = {
            let views = lock(&watch.views);
            let voters: Vec<&PeerView> = membership
                .voter_ids()
                .filter(|v| *v != m.id)
                .filter_map(|v| views.get(&v))
                .filter(|v| v.at.elapsed() < PEER_STATUS_FRESH)
                .collect();
            let off: Vec<i64> = voters
                .iter()
                .filter(|v| v.clock_offset_ms.abs() - v.round_trip_ms / 2 > bound_ms)
                .map(|v| v.clock_offset_ms)
                .collect();
            (!voters.is_empty() && off.len() * 2 > voters.len()).then(|| {
                format!(
                    "this node's clock differs from {} of the {} other voters it hears by more than the {bound_ms} ms \
                     the clock-offset guard allows (their clocks minus this one's: {off:?} ms); it refuses to lead \
                     until its clock is corrected",
                    off.len(),
                    voters.len()
                )
            })
        };
        let was = lock(&watch.clock_refusal).clone();
        match (&was, &verdict) {
            (None, Some(why)) => tracing::error!("{why}"),
            (Some(_), None) => tracing::warn!("this node's clock agrees with its peers again; it may lead"),
            _ => {}
        }
        if verdict.is_some() {
            raft.runtime_config().elect(false);
            raft.runtime_config().heartbeat(false);
        } else if was.is_some() {
            raft.runtime_config().elect(true);
            raft.runtime_config().heartbeat(true);
        }
        *lock(&watch.clock_refusal) = verdict;
    }
}

/// The biggest command a cluster replicates: one entry must fit one peer frame, with room
/// for the frame's and the request's own bytes.
pub const CLUSTER_COMMAND_BYTES_MAX: usize = crate::tcp::FRAME_BYTES_MAX - (1 << 20);

/// What a node knows of itself and its cluster (`/status`, `bulwark cluster status`).
#[derive(Debug, Clone)]
pub struct NodeStatus {
    /// This node.
    pub id: NodeId,
    /// leader, follower, candidate, learner or shutdown.
    pub role: &'static str,
    /// The current term.
    pub term: u64,
    /// The leader this node knows of, and its peer address.
    pub leader: Option<(NodeId, String)>,
    /// The store's applied index (a new snapshot sees everything up to it).
    pub applied_index: u64,
    /// The last index in this node's log.
    pub last_log_index: u64,
    /// The log index of the last entry purged from this node's log (0: none), in the
    /// store's numbering; a node that needs an entry at or before it gets a checkpoint image.
    pub purged_index: u64,
    /// What each peer said of itself: (id, SQL address, HTTP address, its clock minus
    /// this node's in ms).
    pub peers: Vec<(NodeId, String, String, i64)>,
    /// Why this node refuses to lead (the clock-offset guard), if it does.
    pub clock_refusal: Option<String>,
    /// Members: id, peer address, voter (false: learner).
    pub members: Vec<(NodeId, String, bool)>,
    /// On the leader: each member's last log index known to be replicated to it.
    pub replication: Vec<(NodeId, Option<u64>)>,
    /// On the leader: for each other member, milliseconds since it last held the leader's
    /// whole log (0 while it does).
    pub lag_ms: Vec<(NodeId, u64)>,
    /// Checkpoint images this process built to send to members behind its purged log.
    pub images_sent: u64,
    /// Checkpoint images this process began to receive (whether it then needed them or not).
    pub images_received: u64,
}

/// How often the leader samples its members' replication for their lag in milliseconds.
const LAG_SAMPLE_EVERY: Duration = Duration::from_millis(10);

/// Since when each member has not held the leader's whole log (absent: it does).
type LagClock = Arc<Mutex<BTreeMap<NodeId, Instant>>>;

/// Samples the leader's replication: a member behind the leader's last log index gets the
/// instant it fell behind; one caught up loses it.
async fn track_lag(raft: Raft, lag: LagClock) {
    let mut metrics = raft.metrics();
    loop {
        tokio::time::sleep(LAG_SAMPLE_EVERY).await;
        if metrics.has_changed().is_err() {
            return; // Raft stopped
        }
        let m = metrics.borrow_and_update().clone();
        let mut lag = lock(&lag);
        let Some(replication) = m.replication.as_ref() else {
            lag.clear();
            continue;
        };
        let last = m.last_log_index;
        let now = Instant::now();
        lag.retain(|id, _| replication.contains_key(id));
        for (id, matched) in replication.iter() {
            if *id == m.id || matched.map(|l| l.index) >= last {
                lag.remove(id);
            } else {
                lag.entry(*id).or_insert(now);
            }
        }
    }
}

impl Default for NodeOptions {
    fn default() -> Self {
        NodeOptions {
            id: 1,
            engine: EngineOptions::default(),
            raft: Config {
                cluster_name: "bulwark".to_string(),
                snapshot_policy: SnapshotPolicy::Never,
                max_in_snapshot_log_to_keep: LOG_KEEP_BEHIND_SNAPSHOT,
                install_snapshot_timeout: IMAGE_CHUNK_WAIT_MAX_MS,
                ..Config::default()
            },
            peers: None,
        }
    }
}

/// A change to the cluster's membership (`bulwark cluster ...`). (A switchover is
/// [`Node::switchover`].)
#[derive(Debug, Clone)]
pub enum AdminOp {
    /// Add a replica (a Raft learner: it receives the log, never votes), and wait until it
    /// has caught up. On the leader.
    AddReplica {
        /// Its node id.
        id: NodeId,
        /// Its peer address.
        addr: String,
    },
    /// Add a voter (as a replica first, then promoted once caught up). On the leader.
    AddVoter {
        /// Its node id.
        id: NodeId,
        /// Its peer address.
        addr: String,
    },
    /// Remove a voter or replica. On the leader.
    Remove {
        /// Its node id.
        id: NodeId,
    },
}

/// How long a membership change may take before the command gives up waiting (the change
/// itself goes on).
pub const ADMIN_WAIT_MAX: Duration = Duration::from_secs(60);

/// Why a linearizable read may not run now.
enum Barrier {
    /// A new leader is still applying its predecessor's entries: worth a short wait.
    CatchingUp(String),
    /// Not the leader, lease lapsed, clock off: the client must go elsewhere or retry.
    Refused(String),
}

/// How long a read waits for a just-elected leader to apply its predecessor's entries.
const LEADER_CATCH_UP_WAIT: Duration = Duration::from_millis(500);

/// How long a switchover may take before it gives up (heartbeats resume; an election may
/// still follow).
pub const SWITCHOVER_WAIT_MAX: Duration = Duration::from_secs(10);
/// Waited past the followers' lease before the chosen node stands, for the last messages
/// the leader sent to arrive.
const SWITCHOVER_LEASE_MARGIN: Duration = Duration::from_millis(30);

async fn handover(
    raft: &Raft,
    network: crate::tcp::TcpNetwork,
    to: NodeId,
    node: BasicNode,
    term: u64,
    lease: Duration,
) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + SWITCHOVER_WAIT_MAX;
    let within = |what: &'static str| move |_| format!("{what} within {SWITCHOVER_WAIT_MAX:?}");
    // Commits already queued finish; then the chosen node must hold the whole log.
    tokio::time::sleep(Duration::from_millis(20)).await;
    tokio::time::timeout_at(deadline, caught_up(raft, to)).await.map_err(within("node did not catch up"))??;
    raft.runtime_config().heartbeat(false);
    tokio::time::timeout_at(deadline, caught_up(raft, to)).await.map_err(within("node did not catch up"))??;
    tokio::time::sleep(lease + SWITCHOVER_LEASE_MARGIN).await;
    let mut peer = {
        use openraft::network::RaftNetworkFactory;
        let mut network = network;
        network.new_client(to, &node).await
    };
    peer.timeout_now(term, Duration::from_secs(2)).await?;
    loop {
        let m = raft.metrics().borrow().clone();
        match m.current_leader {
            Some(l) if l == to => return Ok(()),
            Some(l) if l != m.id && m.current_term > term => {
                return Err(format!("node {l} won the election instead of node {to}"));
            }
            _ => {}
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(format!("node {to} did not take over within {SWITCHOVER_WAIT_MAX:?}"));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Waits until the leader has replicated to `id` everything in its log when the wait
/// began. (openraft 0.9's blocking `add_learner` counts a learner within
/// `replication_lag_threshold`, 5000 entries by default, as caught up, even one that has
/// nothing yet.)
async fn caught_up(raft: &Raft, id: NodeId) -> Result<(), String> {
    let target = raft.metrics().borrow().last_log_index;
    loop {
        let m = raft.metrics().borrow().clone();
        if m.membership_config.membership().get_node(&id).is_none() {
            return Err(format!("node {id} was removed while it caught up"));
        }
        let Some(replication) = m.replication.as_ref() else {
            return Err("this node stopped leading while the new member caught up; retry on the leader".into());
        };
        if replication.get(&id).is_some_and(|matched| matched.map(|l| l.index) >= target) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn run_admin(raft: Raft, op: AdminOp) -> Result<String, String> {
    let voters = || -> std::collections::BTreeSet<NodeId> {
        raft.metrics().borrow().membership_config.membership().voter_ids().collect()
    };
    match op {
        AdminOp::AddReplica { id, addr } => {
            raft.add_learner(id, BasicNode { addr: addr.clone() }, false).await.map_err(|e| e.to_string())?;
            caught_up(&raft, id).await?;
            Ok(format!("node {id} at {addr} replicates as a replica"))
        }
        AdminOp::AddVoter { id, addr } => {
            raft.add_learner(id, BasicNode { addr: addr.clone() }, false).await.map_err(|e| e.to_string())?;
            caught_up(&raft, id).await?;
            let mut v = voters();
            v.insert(id);
            raft.change_membership(v, false).await.map_err(|e| e.to_string())?;
            Ok(format!("node {id} at {addr} is a voter"))
        }
        AdminOp::Remove { id } => {
            let mut v = voters();
            if v.remove(&id) {
                if v.is_empty() {
                    return Err("cannot remove the last voter".to_string());
                }
                // retain = false: it is removed as a node too, not kept as a replica.
                raft.change_membership(v, false).await.map_err(|e| e.to_string())?;
            } else {
                raft.change_membership(openraft::ChangeMembers::RemoveNodes([id].into_iter().collect()), false)
                    .await
                    .map_err(|e| e.to_string())?;
            }
            Ok(format!("node {id} is no longer a member"))
        }
    }
}

/// A running node: the engine, Raft, and the runtime Raft runs on.
pub struct Node {
    id: NodeId,
    /// Since when each member has lagged (see [`track_lag`]).
    lag: LagClock,
    /// How long after a quorum's acknowledgement the leader may serve linearizable reads.
    lease: Duration,
    /// Log records applied while opening, after the checkpoint.
    replayed: u64,
    engine: Engine,
    raft: Raft,
    log: WalLog,
    /// Set during a switchover (see [`RaftProposer`]).
    switching: Arc<std::sync::atomic::AtomicBool>,
    /// The leadership this process last served reads under, and the last log index it held
    /// when it first saw it: every entry up to there came from before (another leader, or
    /// this node before a restart) and holds no row locks here, so it must be applied
    /// before a transaction may start (see [`Node::read_barrier`]).
    leader_floor: std::sync::Mutex<Option<(openraft::LeaderId<NodeId>, u64)>>,
    /// The peer network (None for a single node).
    network: Option<crate::tcp::TcpNetwork>,
    /// What the peers said of themselves, and the clock-offset guard's verdict.
    peer_watch: Arc<PeerWatch>,
    /// What this node tells its peers about itself.
    info: crate::tcp::LocalInfo,
    /// openraft's leader lease: a follower refuses to vote for another node until this long
    /// after it last heard from its leader (the election timeout's upper end).
    lease_max: Duration,
    server: Option<crate::tcp::TcpServer>,
    runtime: Option<NodeRuntime>,
    /// The node's own tasks, stopped at shutdown (a driven runtime outlives the node).
    tasks: Vec<tokio::task::AbortHandle>,
    waiter: Waiter,
}

/// How long [`Node::snapshot_now`] waits for openraft to take the snapshot.
const SNAPSHOT_WAIT_MAX: Duration = Duration::from_secs(30);
/// How often a node looks for a new durable checkpoint to make Raft's snapshot.
const SNAPSHOT_POLL: Duration = Duration::from_millis(500);
/// How long the leader waits for a node's answer to one chunk of a checkpoint image, in
/// milliseconds (openraft's `install_snapshot_timeout`; its default is 200). The answer to
/// the last chunk comes after the receiver has checked and saved the whole image, or
/// decided it does not need it, which takes longer than that on a data file of hundreds of
/// megabytes; a leader that gave up would send the whole image again, and again.
pub const IMAGE_CHUNK_WAIT_MAX_MS: u64 = 10_000;
/// Log entries kept behind the newest snapshot, so that a node a little behind catches up
/// from the log rather than from a checkpoint image.
pub const LOG_KEEP_BEHIND_SNAPSHOT: u64 = 1000;

/// Tells openraft of each new durable checkpoint (a snapshot), after which it purges the
/// log up to [`LOG_KEEP_BEHIND_SNAPSHOT`] entries before it.
async fn snapshot_after_checkpoints(raft: Raft, engine: Engine) {
    let mut last = engine.store().stats().checkpoint_applied_index;
    loop {
        tokio::time::sleep(SNAPSHOT_POLL).await;
        let now = engine.store().stats().checkpoint_applied_index;
        if now > last {
            if raft.trigger().snapshot().await.is_err() {
                return; // Raft stopped
            }
            last = now;
        }
    }
}

/// How long shutdown waits for Raft's tasks to stop.
const SHUTDOWN_WAIT_MAX: Duration = Duration::from_secs(5);

/// Raft's worker threads: its core loop, the state machine's apply and the peer network.
/// One: the log's fsync runs on the core's task, and while it runs the commits that arrive
/// queue up and share the next entry, instead of a second thread taking the CPU the
/// connections need (measured: single-row inserts with 16 clients 16.4k to 18.4k tps,
/// tpcb-like with 8 clients 3.4k-3.5k to 3.7k-3.9k, on 2 cores; docs/benchmarks.md).
const RAFT_THREADS: usize = 1;

impl Node {
    /// Opens (creating if needed) a single-node database in `dir`: a Raft group of one
    /// voter, initialized on first start. Returns once the node leads and has applied every
    /// entry in its log.
    pub fn open_single(vfs: Arc<dyn Vfs>, dir: &Path, opts: NodeOptions) -> txn::Result<Node> {
        assert!(opts.peers.is_none(), "open_single is for a node without peers");
        Node::open(vfs, dir, opts)
    }

    /// Opens a node: a single node when `opts.peers` is None (see [`Node::open_single`]),
    /// else a member of a cluster that talks to its peers over TCP. A cluster member
    /// returns at once, as a follower; it commits once a leader is elected (writes sent to
    /// a follower fail with 57P03, naming the leader).
    pub fn open(vfs: Arc<dyn Vfs>, dir: &Path, opts: NodeOptions) -> txn::Result<Node> {
        // On a thread of its own: opening blocks on Raft's runtime, which is not allowed on
        // a thread that is already driving another runtime (an async caller).
        let dir = dir.to_path_buf();
        std::thread::Builder::new()
            .name("bulwark-open".into())
            .spawn(move || Node::open_here(vfs, &dir, opts))
            .map_err(|e| txn::Error::Storage(storage::Error::Invalid(format!("starting the open thread: {e}"))))?
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    }

    fn open_here(vfs: Arc<dyn Vfs>, dir: &Path, mut opts: NodeOptions) -> txn::Result<Node> {
        // The log is purged through Raft, after snapshots, so that lagging nodes can catch
        // up from it (see `WalLog::purge`), not by the store's checkpoints.
        opts.engine.store.purge_log_at_checkpoint = false;
        // A checkpoint image received before a restart is installed first.
        crate::snapshot::finish_install(&vfs, dir, &opts.engine.store.wal).map_err(|e| {
            txn::Error::Storage(storage::Error::Invalid(format!("installing a received checkpoint: {e}")))
        })?;
        // The entries up to the committed hint are replayed as the store recovers (fast, one
        // lock); openraft re-applies whatever is committed after them.
        let hint = read_committed_hint(vfs.as_ref(), dir);
        let upto = hint.map_or(0, |h| wal_index(h.index));
        let mut replay =
            |kv: &dyn storage::KvRead, index: u64, payload: &[u8]| -> storage::Result<storage::WriteBatch> {
                let entry =
                    decode_record(index, payload).map_err(|e| storage::Error::corrupted("wal", e.to_string()))?;
                if index == upto && Some(entry.log_id) != hint {
                    return Err(storage::Error::corrupted(
                        "wal",
                        format!(
                            "{COMMITTED_FILE} names entry {:?} as committed, but the log holds {} there",
                            hint, entry.log_id
                        ),
                    ));
                }
                apply_batch_of(kv, index, &entry).map_err(|e| match e {
                    txn::Error::Storage(s) => s,
                    other => storage::Error::Invalid(format!("replaying log record {index}: {other}")),
                })
            };
        let engine = Engine::open_replicated(vfs.clone(), dir, opts.engine.clone(), &mut replay, upto)?;
        let checkpointed = engine.applied_index().min(engine.store().stats().checkpoint_applied_index);
        let storage_err = |what: &str, e: &dyn std::fmt::Display| {
            txn::Error::Storage(storage::Error::Invalid(format!("{what}: {e}")))
        };
        let log = WalLog::open(engine.clone(), vfs, dir).map_err(|e| storage_err("opening the Raft log", &e))?;
        let driven = opts.peers.as_ref().and_then(|p| p.driven.clone());
        let sm = EngineStateMachine::new(engine.clone(), log.clone(), driven.is_none());
        let runtime = match driven {
            Some(shared) => NodeRuntime::Driven(shared),
            None => NodeRuntime::Own(
                tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(RAFT_THREADS)
                    .thread_name("bulwark-raft")
                    .enable_all()
                    .build()
                    .map_err(|e| storage_err("starting Raft's runtime", &e))?,
            ),
        };
        let waiter = runtime.waiter();
        let mut tasks = Vec::new();
        let config = Arc::new(opts.raft.validate().map_err(|e| storage_err("the Raft settings", &e))?);
        let quorum_silence_max = Duration::from_millis(config.election_timeout_max);
        let lease = Duration::from_millis(config.election_timeout_min.saturating_sub(config.heartbeat_interval));
        let id = opts.id;
        let switching: Arc<std::sync::atomic::AtomicBool> = Arc::default();
        let peer_watch: Arc<PeerWatch> = Arc::default();
        let info = crate::tcp::LocalInfo {
            addrs: Arc::default(),
            clock: opts.peers.as_ref().map_or_else(WallClock::default, |p| p.clock.clone()).0,
        };
        let fresh = lock(&log.shared.mem).last.is_none();
        if let Some(peers) = &opts.peers {
            let network = crate::tcp::TcpNetwork::new(id);
            let (raft, server) = match &peers.router {
                // In-process simulation: the router delivers every message; no listener.
                Some(router) => {
                    let factory = crate::network::RouterNetworkFactory { from: id, router: router.clone() };
                    let raft = crate::runtime::with_raft_seed(peers.rng_seed, || {
                        runtime
                            .block_on(Raft::new(id, config.clone(), factory, log.clone(), sm))
                            .map_err(|e| storage_err("starting Raft", &e))
                    })?;
                    router.set_node(id, raft.clone());
                    (raft, None)
                }
                None => {
                    let raft = crate::runtime::with_raft_seed(peers.rng_seed, || {
                        runtime
                            .block_on(Raft::new(id, config.clone(), network.clone(), log.clone(), sm))
                            .map_err(|e| storage_err("starting Raft", &e))
                    })?;
                    let server = runtime
                        .block_on(async {
                            let listener = tokio::net::TcpListener::bind(peers.listen).await?;
                            crate::tcp::serve_with(listener, raft.clone(), info.clone())
                        })
                        .map_err(|e| storage_err(&format!("listening for peers on {}", peers.listen), &e))?;
                    (raft, Some(server))
                }
            };
            log.shared.serve_images.store(true, std::sync::atomic::Ordering::Relaxed);
            tasks.push(runtime.spawn(snapshot_after_checkpoints(raft.clone(), engine.clone())));
            if fresh && !peers.init.is_empty() {
                let members: BTreeMap<NodeId, BasicNode> =
                    peers.init.iter().map(|(&n, addr)| (n, BasicNode { addr: addr.clone() })).collect();
                if !members.contains_key(&id) {
                    return Err(storage_err("--init-cluster", &format!("the members do not include this node, {id}")));
                }
                // The member with the lowest id writes the first membership entry and starts
                // the first election; the others learn the membership from it. (If every
                // member initialized, all would stand in term 1 at once and split the vote.)
                if members.keys().next() == Some(&id) {
                    if let Err(e) = runtime.block_on(raft.initialize(members)) {
                        tracing::info!(error = %e, "not initializing the cluster here");
                    }
                }
            }
            let lag = LagClock::default();
            tasks.push(runtime.spawn(track_lag(raft.clone(), lag.clone())));
            let via = match &peers.router {
                Some(router) => {
                    router.set_clock(id, peers.clock.0.clone());
                    PeerStatusVia::Router(router.clone())
                }
                None => PeerStatusVia::Tcp(network.clone()),
            };
            tasks.push(runtime.spawn(watch_peers(
                raft.clone(),
                via,
                peers.clock.clone(),
                peers.clock_offset_max,
                peer_watch.clone(),
            )));
            let (proposer, batcher) = RaftProposer::start(
                raft.clone(),
                &runtime,
                COMMIT_WAIT_MAX,
                CLUSTER_COMMAND_BYTES_MAX,
                quorum_silence_max,
                switching.clone(),
                peer_watch.clone(),
            );
            tasks.push(batcher);
            engine.set_proposer(Some(Arc::new(proposer)));
            let replayed = engine.applied_index() - checkpointed;
            return Ok(Node {
                id,
                lag,
                lease,
                replayed,
                engine,
                raft,
                log,
                switching,
                leader_floor: Default::default(),
                peer_watch,
                info,
                network: peers.router.is_none().then_some(network),
                lease_max: quorum_silence_max,
                server,
                runtime: Some(runtime),
                tasks,
                waiter,
            });
        }
        let raft = runtime
            .block_on(Raft::new(id, config, NoPeers, log.clone(), sm))
            .map_err(|e| storage_err("starting Raft", &e))?;
        tasks.push(runtime.spawn(snapshot_after_checkpoints(raft.clone(), engine.clone())));
        if fresh {
            let members = BTreeMap::from([(id, BasicNode { addr: String::new() })]);
            runtime.block_on(raft.initialize(members)).map_err(|e| storage_err("initializing the group", &e))?;
        }
        let target = lock(&log.shared.mem).last.map_or(0, |l| wal_index(l.index));
        let deadline = Instant::now() + STARTUP_WAIT_MAX;
        runtime.block_on(async {
            loop {
                let m = raft.metrics().borrow().clone();
                if m.current_leader == Some(id) && engine.applied_index() >= target {
                    return Ok(());
                }
                // The directory of a cluster member opened without its peers (`bulwark
                // check`): it cannot lead; it serves what its committed hint re-applied.
                if m.membership_config.membership().voter_ids().any(|v| v != id) {
                    return Ok(());
                }
                if Instant::now() >= deadline {
                    return Err(storage_err(
                        "startup",
                        &format!(
                            "not leader with the log applied after {} s (applied {}, log end {target})",
                            STARTUP_WAIT_MAX.as_secs(),
                            engine.applied_index()
                        ),
                    ));
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })?;
        let lag = LagClock::default();
        let (proposer, batcher) = RaftProposer::start(
            raft.clone(),
            &runtime,
            COMMIT_WAIT_MAX,
            codec::COMMAND_BYTES_MAX,
            quorum_silence_max,
            switching.clone(),
            peer_watch.clone(),
        );
        tasks.push(batcher);
        engine.set_proposer(Some(Arc::new(proposer)));
        let replayed = engine.applied_index() - checkpointed;
        Ok(Node {
            id,
            lag,
            lease,
            replayed,
            engine,
            raft,
            log,
            switching,
            leader_floor: Default::default(),
            peer_watch,
            info,
            network: None,
            lease_max: quorum_silence_max,
            server: None,
            runtime: Some(runtime),
            tasks,
            waiter,
        })
    }

    /// Whether a read here now sees every commit acknowledged anywhere before it began
    /// (a linearizable read). Always on a single node. In a cluster only on the leader,
    /// and only while its lease holds: a quorum acknowledged it more recently than the
    /// shortest election timeout less a heartbeat interval (no other node can have been
    /// elected since; this assumes the nodes' clocks run at about the same rate). Else the
    /// reason, naming the leader if one is known.
    pub fn read_barrier(&self) -> Result<(), String> {
        // A leader just elected applies its predecessor's last entries within milliseconds:
        // wait for that (bounded) rather than send the client away.
        let deadline = self.waiter.now() + LEADER_CATCH_UP_WAIT;
        loop {
            match self.read_barrier_now() {
                Err(Barrier::CatchingUp(_)) if self.waiter.now() < deadline => {
                    self.waiter.sleep(Duration::from_millis(1));
                }
                Err(Barrier::CatchingUp(why)) | Err(Barrier::Refused(why)) => return Err(why),
                Ok(()) => return Ok(()),
            }
        }
    }

    fn read_barrier_now(&self) -> Result<(), Barrier> {
        let refused = Barrier::Refused;
        // What the barrier needs, read in place: it runs before every statement, and cloning
        // the metrics (maps and all) cost a tenth of a point read.
        let (state, leader, last_applied, leader_id, last_log_index, quorum_ack) = {
            let metrics = self.raft.metrics();
            let m = metrics.borrow();
            let membership = m.membership_config.membership();
            // A group whose only voter is this node (read in place: see at_most_one_voter).
            if membership.get_joint_config().iter().flatten().all(|&v| v == self.id) {
                return Ok(());
            }
            let leader = m.current_leader.and_then(|l| membership.get_node(&l).map(|n| (l, n.addr.clone())));
            (m.state, leader, m.last_applied, *m.vote.leader_id(), m.last_log_index, m.millis_since_quorum_ack)
        };
        let stale = "reads here may be stale; SET bulwark.read_consistency = 'stale' to read here anyway";
        if let Some(why) = self.clock_refusal() {
            return Err(refused(format!("{why} ({stale})")));
        }
        if state != openraft::ServerState::Leader {
            return Err(refused(match leader {
                Some((l, peer)) => match self.peer_view(l).filter(|v| !v.sql_addr.is_empty()) {
                    Some(v) => format!(
                        "this node is not the leader ({stale}); node {l} is: connect to {} (its peer address is {peer})",
                        v.sql_addr
                    ),
                    None => format!("this node is not the leader ({stale}); node {l} at peer address {peer} is"),
                },
                None => format!("this node is not the leader and no leader is known ({stale})"),
            }));
        }
        // A leader cut off from the quorum is refused at once: it may never catch up.
        let lease = self.lease.as_millis() as u64;
        match quorum_ack {
            Some(ms) if ms < lease => {}
            Some(ms) => {
                return Err(refused(format!(
                    "this leader last heard from a quorum {ms} ms ago, past its {lease} ms lease ({stale})"
                )))
            }
            None => return Err(refused(format!("this leader has not yet heard from a quorum ({stale})"))),
        }
        // A new leader may hold entries its predecessor committed that it has not applied
        // yet; it serves once it has applied an entry of its own term (its first, blank
        // entry), which comes after all of them. A leader that restarted keeps its term
        // (openraft starts it as leader again, with no new blank entry), so it also waits
        // until it has applied every entry its log held when this process first led: those
        // entries hold no row locks here, and a transaction that started before they were
        // applied would neither see them nor conflict with them (a lost update).
        let floor = {
            let mut f = self.leader_floor.lock().expect("leader floor lock");
            match *f {
                Some((id, floor)) if id == leader_id => floor,
                _ => {
                    let floor = last_log_index.unwrap_or(0);
                    *f = Some((leader_id, floor));
                    floor
                }
            }
        };
        if last_applied.map(|l| l.leader_id) != Some(leader_id) || last_applied.map_or(0, |l| l.index) < floor {
            return Err(Barrier::CatchingUp(format!(
                "this leader has not yet applied the entries committed before it led ({stale})"
            )));
        }
        Ok(())
    }

    /// Runs a membership change (`bulwark cluster ...`) on Raft's runtime;
    /// the future may be awaited on any runtime. Ok carries what was done.
    pub fn admin(&self, op: AdminOp) -> impl std::future::Future<Output = Result<String, String>> + Send + 'static {
        let raft = self.raft.clone();
        let handle = self.runtime.as_ref().map(|rt| rt.handle().clone());
        async move {
            let Some(handle) = handle else { return Err("the node is shutting down".to_string()) };
            let task = handle.spawn(async move { run_admin(raft, op).await });
            match tokio::time::timeout(ADMIN_WAIT_MAX, task).await {
                Ok(Ok(result)) => result,
                Ok(Err(e)) => Err(format!("the change failed: {e}")),
                Err(_) => {
                    Err(format!("no answer within {} s; check `bulwark cluster status`", ADMIN_WAIT_MAX.as_secs()))
                }
            }
        }
    }

    /// Hands the leadership to voter `to` (run on the leader): new commits are refused
    /// (57P03) until it is done; once `to` holds the whole log, the leader stops its
    /// heartbeats, waits out the followers' leader lease, and tells `to` to stand for
    /// election now (a `TimeoutNow` message). `to` wins, being the only candidate with the
    /// whole log before the others' election timers run out; the old leader follows it.
    /// Commits pause for about the lease (the election timeout's upper end) plus one
    /// election. If another node wins instead, or none within [`SWITCHOVER_WAIT_MAX`], the
    /// answer says so; no acknowledged commit is lost either way.
    pub fn switchover(&self, to: NodeId) -> impl std::future::Future<Output = Result<String, String>> + Send + 'static {
        let raft = self.raft.clone();
        let handle = self.runtime.as_ref().map(|rt| rt.handle().clone());
        let (switching, network, lease) = (self.switching.clone(), self.network.clone(), self.lease_max);
        async move {
            let Some(handle) = handle else { return Err("the node is shutting down".to_string()) };
            let Some(network) = network else { return Err("a single node has no one to hand over to".to_string()) };
            let task = handle.spawn(async move {
                let m = raft.metrics().borrow().clone();
                if m.current_leader != Some(m.id) {
                    return Err(format!("this node does not lead; run it on the leader (node {:?})", m.current_leader));
                }
                if to == m.id {
                    return Ok(format!("node {to} already leads"));
                }
                let membership = m.membership_config.membership().clone();
                if !membership.voter_ids().any(|v| v == to) {
                    return Err(format!("node {to} is not a voter"));
                }
                let node = membership.get_node(&to).cloned().ok_or_else(|| format!("node {to} has no address"))?;
                if switching.swap(true, std::sync::atomic::Ordering::SeqCst) {
                    return Err("a switchover is already running".to_string());
                }
                let started = Instant::now();
                let result = handover(&raft, network, to, node, m.current_term, lease).await;
                raft.runtime_config().heartbeat(true);
                switching.store(false, std::sync::atomic::Ordering::SeqCst);
                result.map(|()| format!("node {to} leads; commits paused for {} ms", started.elapsed().as_millis()))
            });
            match tokio::time::timeout(SWITCHOVER_WAIT_MAX + Duration::from_secs(1), task).await {
                Ok(Ok(result)) => result,
                Ok(Err(e)) => Err(format!("the switchover failed: {e}")),
                Err(_) => Err("no answer; check `bulwark cluster status`".to_string()),
            }
        }
    }

    /// What this node knows of itself and its cluster.
    pub fn status(&self) -> NodeStatus {
        let m = self.raft.metrics().borrow().clone();
        let role = match m.state {
            openraft::ServerState::Leader => "leader",
            openraft::ServerState::Follower => "follower",
            openraft::ServerState::Candidate => "candidate",
            openraft::ServerState::Learner => "learner",
            openraft::ServerState::Shutdown => "shutdown",
        };
        let membership = m.membership_config.membership();
        let voters: std::collections::BTreeSet<NodeId> = membership.voter_ids().collect();
        let members = membership.nodes().map(|(&id, n)| (id, n.addr.clone(), voters.contains(&id))).collect();
        let leader = m.current_leader.map(|l| (l, membership.get_node(&l).map(|n| n.addr.clone()).unwrap_or_default()));
        let replication = m
            .replication
            .as_ref()
            .map(|r| r.iter().map(|(&id, matched)| (id, matched.map(|l| wal_index(l.index)))).collect())
            .unwrap_or_default();
        let now = Instant::now();
        let lag_ms =
            lock(&self.lag).iter().map(|(&id, &since)| (id, now.duration_since(since).as_millis() as u64)).collect();
        NodeStatus {
            lag_ms,
            id: self.id,
            role,
            term: m.current_term,
            leader,
            applied_index: self.engine.applied_index(),
            last_log_index: m.last_log_index.map_or(0, wal_index),
            purged_index: m.purged.map_or(0, |l| wal_index(l.index)),
            peers: lock(&self.peer_watch.views)
                .iter()
                .map(|(&id, v)| (id, v.sql_addr.clone(), v.http_addr.clone(), v.clock_offset_ms))
                .collect(),
            clock_refusal: self.clock_refusal(),
            members,
            replication,
            images_sent: self.log.shared.images_sent.load(std::sync::atomic::Ordering::Relaxed),
            images_received: self.log.shared.images_received.load(std::sync::atomic::Ordering::Relaxed),
        }
    }

    /// How many log records opening applied after the checkpoint (recovery's work).
    pub fn replayed_at_open(&self) -> u64 {
        self.replayed
    }

    /// The transaction engine; commits go through Raft.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Writes a checkpoint and makes it Raft's snapshot now (rather than at the next poll),
    /// and waits until openraft has taken it; openraft then purges the log up to
    /// `max_in_snapshot_log_to_keep` entries before it. Returns the snapshot's Raft index.
    pub fn snapshot_now(&self) -> Result<u64, String> {
        self.engine.store().checkpoint().map_err(|e| e.to_string())?;
        let checkpoint = self.engine.store().stats().checkpoint_applied_index;
        let want = raft_index(checkpoint.max(1));
        let raft = self.raft.clone();
        let taken = async move {
            raft.trigger().snapshot().await.map_err(|e| e.to_string())?;
            let deadline = tokio::time::Instant::now() + SNAPSHOT_WAIT_MAX;
            loop {
                let taken = raft.metrics().borrow().snapshot.map(|l| l.index);
                if taken >= Some(want) {
                    return Ok(want);
                }
                if tokio::time::Instant::now() >= deadline {
                    return Err(format!("Raft did not take the snapshot at {want} within {SNAPSHOT_WAIT_MAX:?}"));
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        };
        match self.runtime.as_ref().ok_or("the node is stopped")? {
            NodeRuntime::Driven(rt) => rt.block_on(taken),
            NodeRuntime::Own(rt) => {
                let handle = rt.handle().clone();
                // On a thread of its own: the caller may be inside another runtime.
                std::thread::spawn(move || handle.block_on(taken))
                    .join()
                    .map_err(|_| "the snapshot thread panicked".to_string())?
            }
        }
    }

    /// How far this node's applied state is behind what it knows to be committed: entries,
    /// and milliseconds since it first knew of a committed entry it has not applied (0 and
    /// 0 when it has applied everything it knows of). The leader knows every commit; a
    /// follower learns of commits from the leader's messages, so entries the leader has not
    /// sent yet are not counted here (the leader's `bulwark cluster status` shows those).
    pub fn replication_lag(&self) -> (u64, u64) {
        let applied = raft_index(self.engine.applied_index().max(1));
        let mut seen = lock(&self.log.shared.committed_seen);
        if applied >= seen.0 {
            seen.1 = None;
            return (0, 0);
        }
        let since = *seen.1.get_or_insert_with(Instant::now);
        (seen.0 - applied, since.elapsed().as_millis() as u64)
    }

    /// Tells the peers where this node's clients and HTTP interface connect (answered to
    /// their `Status` requests, and named to clients of theirs that must go to the leader).
    pub fn advertise(&self, sql_addr: &str, http_addr: &str) {
        *self.info.addrs.lock().unwrap_or_else(|e| e.into_inner()) = (sql_addr.to_string(), http_addr.to_string());
    }

    /// Where a client session that reached this node should run instead: the leader's SQL
    /// address, when this node is a follower (or learner) of a cluster whose leader is
    /// known, is another node, and has told this node its SQL address. None on the leader,
    /// on a single node, and while no leader is known.
    pub fn leader_sql_addr(&self) -> Option<String> {
        let leader = {
            let metrics = self.raft.metrics();
            let m = metrics.borrow();
            if m.state == openraft::ServerState::Leader {
                return None;
            }
            m.current_leader.filter(|&l| l != self.id)?
        };
        let own = self.info.addrs.lock().unwrap_or_else(|e| e.into_inner()).0.clone();
        // Never this node's own address (a view not yet refreshed): that would relay to itself.
        self.peer_view(leader).map(|v| v.sql_addr).filter(|a| !a.is_empty() && *a != own)
    }

    /// What this node last heard from peer `id` (addresses, clock offset).
    pub fn peer_view(&self, id: NodeId) -> Option<PeerView> {
        lock(&self.peer_watch.views).get(&id).cloned()
    }

    /// Why this node refuses to lead (its clock is off from its peers'), if it does.
    pub fn clock_refusal(&self) -> Option<String> {
        lock(&self.peer_watch.clock_refusal).clone()
    }

    /// Why this node must be restarted, if it must: it saved a checkpoint image from the
    /// leader, which it installs when it next opens (see [`crate::snapshot`]). Raft has
    /// stopped on this node meanwhile.
    pub fn restart_required(&self) -> Option<String> {
        lock(&self.log.shared.restart).clone()
    }

    /// The Raft handle.
    pub fn raft(&self) -> &Raft {
        &self.raft
    }

    /// Stops Raft; commits fail afterwards with 57P03. The engine stays readable.
    pub fn shutdown(&mut self) {
        self.engine.set_proposer(None);
        for task in self.tasks.drain(..) {
            task.abort();
        }
        match self.runtime.take() {
            None => {}
            // The simulation's runtime runs on: stop this node's part of it.
            Some(NodeRuntime::Driven(rt)) => {
                let raft = self.raft.clone();
                let _ = rt.block_on(async move { tokio::time::timeout(SHUTDOWN_WAIT_MAX, raft.shutdown()).await });
            }
            Some(NodeRuntime::Own(rt)) => {
                // On a thread of its own: the caller may be inside another runtime, where
                // blocking on (or dropping) a runtime is not allowed.
                let raft = self.raft.clone();
                let server = self.server.take();
                let stopper = std::thread::spawn(move || {
                    if let Some(server) = server {
                        rt.block_on(server.shutdown());
                    }
                    let _ = rt.block_on(raft.shutdown());
                    rt.shutdown_timeout(SHUTDOWN_WAIT_MAX);
                });
                let _ = stopper.join();
            }
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.shutdown();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn total_bytes(entries: &[Entry<TypeConfig>]) -> usize {
        entries.iter().map(entry_bytes).sum()
    }

    /// Replication asks for ranges of up to 300 entries; with big entries that was hundreds
    /// of megabytes read and encoded per request. It gets at most REPLICATION_BYTES_MAX
    /// (plus the entry that crosses it), from the cache and from the file alike.
    #[test]
    fn replication_reads_stop_at_a_byte_budget_from_the_cache_and_from_the_file() {
        let dir = std::env::temp_dir().join(format!("bulwark-limited-read-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let vfs: Arc<dyn Vfs> = Arc::new(storage::vfs::RealVfs);
        let mut node = Node::open_single(vfs, &dir, NodeOptions::default()).unwrap();
        let entry_mib = 1usize << 20;
        let commits = 20;
        let first = lock(&node.log.shared.mem).last.expect("a started node has entries").index + 1;
        for i in 0..commits {
            let mut t = node.engine().begin(txn::TxnOptions::default()).unwrap();
            t.put(format!("big{i:02}").as_bytes(), &vec![i as u8; entry_mib]).unwrap();
            t.commit().unwrap();
        }
        let end = lock(&node.log.shared.mem).last.unwrap().index + 1;
        assert!(end - first >= commits as u64);
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).build().unwrap();
        let mut log = node.log.clone();

        let all = runtime.block_on(log.try_get_log_entries(first..end)).unwrap();
        assert_eq!(all.len() as u64, end - first, "an unlimited read returns the whole range");
        assert!(total_bytes(&all) > 2 * REPLICATION_BYTES_MAX);

        let check = |limited: &[Entry<TypeConfig>], from: &str| {
            assert!(!limited.is_empty(), "{from}: at least one entry");
            assert!(limited.len() < all.len(), "{from}: {} of {} entries", limited.len(), all.len());
            let bytes = total_bytes(limited);
            let before_last = bytes - entry_bytes(limited.last().unwrap());
            assert!(before_last < REPLICATION_BYTES_MAX, "{from}: {bytes} bytes, {before_last} before the last");
            assert!(bytes >= REPLICATION_BYTES_MAX, "{from}: stopped early, at {bytes} bytes");
            for (a, b) in limited.iter().zip(&all) {
                assert_eq!(a.log_id, b.log_id, "{from}");
                assert_eq!(entry_bytes(a), entry_bytes(b), "{from}");
            }
        };
        let cached = runtime.block_on(log.limited_get_log_entries(first, end)).unwrap();
        check(&cached, "cache");

        // Not cached any more: read from the log file, off the runtime's worker.
        {
            let mut mem = lock(&node.log.shared.mem);
            mem.cache.clear();
            mem.cache_bytes = 0;
        }
        let from_file = runtime.block_on(log.limited_get_log_entries(first, end)).unwrap();
        check(&from_file, "file");
        // The next request goes on from where this one stopped.
        let next_start = from_file.last().unwrap().log_id.index + 1;
        let next = runtime.block_on(log.limited_get_log_entries(next_start, end)).unwrap();
        assert_eq!(next.first().unwrap().log_id.index, next_start);

        drop(runtime);
        node.shutdown();
        drop(node);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
