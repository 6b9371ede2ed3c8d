//! In-memory stand-ins for the two things openraft stores: the log and the state machine.
//!
//! ```text
//!   openraft ──append/truncate/purge/vote──▶ MemLogStore      (later: the WAL)
//!            ──apply/snapshot──────────────▶ MemStateMachine  (later: the MVCC store)
//! ```
//!
//! [`MemLogStore`] stands in for Bulwark's write-ahead log (the real one is `node::WalLog`,
//! which tells openraft an append is durable only after the fsync). By default an append is
//! durable at once. [`MemLogStore::with_fsync`] simulates the fsync: an append is durable
//! (and openraft told so) only after a seeded delay, in order, several appends sharing one
//! "fsync"; [`MemLogStore::crash`] then loses whatever was not yet durable, as a power cut
//! loses a page cache. Votes, truncations and purges are durable when they return.
//!
//! [`MemStateMachine`] stands in for the MVCC store: later it validates and installs a
//! transaction's versions at commit_ts = log index. Here it is a map of registers
//! (`key -> i64`) applying [`RegisterCommand`]s, so tests can check linearizability.
//!
//! # What it leaves out
//!
//! - Durability across processes: a "crash" keeps the durable part in memory, for a
//!   restart in the same process (see `InProcessCluster::crash`).
//! - Bounded memory: the log grows until openraft purges it after a snapshot
//!   (`Config::snapshot_policy`); tests run short.
//! - Checksums on snapshots: a snapshot is the register map, little-endian, handed over
//!   in-process.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::io::Cursor;
use std::ops::RangeBounds;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use openraft::storage::{LogFlushed, LogState, RaftLogStorage, RaftStateMachine, Snapshot};
use openraft::{
    Entry, EntryPayload, LogId, OptionalSend, RaftLogReader, RaftSnapshotBuilder, SnapshotMeta, StorageError,
    StorageIOError, StoredMembership, Vote,
};

use crate::network::Rng;
use crate::snapshot::ImageData;
use crate::types::{NodeId, Outcome, RegisterCommand, TypeConfig};

/// Appends waiting for a simulated fsync, at most (an append waits for room).
pub const FSYNC_QUEUE_MAX: usize = 1024;

/// Locks a mutex; a poisoned lock means a thread panicked mid-update, and the state may be
/// wrong: crash rather than limp on.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().expect("memstore lock poisoned: a holder panicked")
}

#[derive(Debug, Default, Clone)]
struct LogInner {
    last_purged: Option<LogId<NodeId>>,
    entries: BTreeMap<u64, Entry<TypeConfig>>,
    vote: Option<Vote<NodeId>>,
    committed: Option<LogId<NodeId>>,
}

/// The Raft log and vote, kept in memory: the stand-in for the write-ahead log.
///
/// Cloning shares the same log (openraft's replication tasks read it through clones).
#[derive(Debug, Clone, Default)]
pub struct MemLogStore {
    /// What openraft sees: everything written.
    inner: Arc<Mutex<LogInner>>,
    /// What survives [`MemLogStore::crash`]: everything made durable.
    durable: Arc<Mutex<LogInner>>,
    /// The simulated fsync; None: an append is durable at once.
    fsync: Option<Arc<Fsync>>,
}

/// An append waiting for the simulated fsync: the incarnation (crash count) that wrote it,
/// and how to tell openraft it is durable.
type Pending = (u64, LogFlushed<TypeConfig>);

/// A simulated fsync: one task per incarnation makes the queued appends durable after a
/// seeded delay and then tells openraft, in append order.
#[derive(Debug)]
struct Fsync {
    delay_ms_max: u64,
    rng: Mutex<Rng>,
    /// Bumped by each crash: a sync of an earlier incarnation makes nothing durable.
    epoch: AtomicU64,
    queue: Mutex<Option<tokio::sync::mpsc::Sender<Pending>>>,
}

impl MemLogStore {
    /// An empty log with no vote, whose appends are durable at once.
    pub fn new() -> MemLogStore {
        MemLogStore::default()
    }

    /// An empty log whose appends become durable after a simulated fsync of up to
    /// `delay_ms_max` milliseconds (drawn from `seed`); [`MemLogStore::crash`] loses the
    /// appends not yet durable.
    pub fn with_fsync(seed: u64, delay_ms_max: u64) -> MemLogStore {
        let fsync =
            Fsync { delay_ms_max, rng: Mutex::new(Rng::new(seed)), epoch: AtomicU64::new(0), queue: Mutex::default() };
        MemLogStore { fsync: Some(Arc::new(fsync)), ..MemLogStore::default() }
    }

    /// A power cut: everything not yet durable is lost, and syncs in flight make nothing
    /// durable. Call it after the node's Raft has stopped; a restart opens the same store.
    /// Without a simulated fsync nothing is lost. Returns how many entries were lost.
    pub fn crash(&self) -> u64 {
        self.stop_syncing();
        let Some(_) = &self.fsync else { return 0 };
        let durable = lock(&self.durable).clone();
        let mut inner = lock(&self.inner);
        let lost = inner.entries.keys().filter(|i| durable.entries.get(i) != inner.entries.get(i)).count();
        *inner = durable;
        lost as u64
    }

    /// The first instant of a power cut: no fsync in flight or to come completes. Call it
    /// before stopping the node's Raft (which takes simulated time), then
    /// [`MemLogStore::crash`].
    pub fn stop_syncing(&self) {
        if let Some(fsync) = &self.fsync {
            fsync.epoch.fetch_add(1, Ordering::SeqCst);
            lock(&fsync.queue).take();
        }
    }

    /// Makes everything written so far durable (what an fsync does). Without a simulated
    /// fsync everything is durable already, and no copy is kept.
    fn sync(&self) {
        if self.fsync.is_none() {
            return;
        }
        let now = lock(&self.inner).clone();
        *lock(&self.durable) = now;
    }

    /// Queues `callback` behind the appends before it; the fsync task makes them durable
    /// after a seeded delay and then calls it.
    async fn sync_later(&self, fsync: &Arc<Fsync>, callback: LogFlushed<TypeConfig>) {
        let epoch = fsync.epoch.load(Ordering::SeqCst);
        let queue = {
            let mut queue = lock(&fsync.queue);
            queue
                .get_or_insert_with(|| {
                    let (tx, rx) = tokio::sync::mpsc::channel(FSYNC_QUEUE_MAX);
                    tokio::spawn(fsync_task(self.clone(), fsync.clone(), rx));
                    tx
                })
                .clone()
        };
        // A closed queue means the incarnation crashed: its openraft is gone.
        let _ = queue.send((epoch, callback)).await;
    }
}

/// Makes queued appends durable, in order: waits a seeded delay, syncs everything written
/// by then (every append queued meanwhile shares that sync), and tells openraft.
async fn fsync_task(log: MemLogStore, fsync: Arc<Fsync>, mut rx: tokio::sync::mpsc::Receiver<Pending>) {
    while let Some(first) = rx.recv().await {
        let delay = lock(&fsync.rng).below(fsync.delay_ms_max + 1);
        tokio::time::sleep(Duration::from_millis(delay)).await;
        let mut done = vec![first];
        while let Ok(next) = rx.try_recv() {
            done.push(next);
        }
        let current = fsync.epoch.load(Ordering::SeqCst);
        if done.iter().any(|(epoch, _)| *epoch != current) {
            return; // crashed: nothing of this incarnation becomes durable
        }
        log.sync();
        for (_, callback) in done {
            callback.log_io_completed(Ok(()));
        }
    }
}

impl RaftLogReader<TypeConfig> for MemLogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<TypeConfig>>, StorageError<NodeId>> {
        let inner = lock(&self.inner);
        Ok(inner.entries.range(range).map(|(_, e)| e.clone()).collect())
    }
}

impl RaftLogStorage<TypeConfig> for MemLogStore {
    type LogReader = MemLogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError<NodeId>> {
        let inner = lock(&self.inner);
        let last = inner.entries.values().next_back().map(|e| e.log_id);
        Ok(LogState { last_purged_log_id: inner.last_purged, last_log_id: last.or(inner.last_purged) })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError<NodeId>> {
        lock(&self.inner).vote = Some(*vote);
        self.sync();
        Ok(())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError<NodeId>> {
        Ok(lock(&self.inner).vote)
    }

    async fn save_committed(&mut self, committed: Option<LogId<NodeId>>) -> Result<(), StorageError<NodeId>> {
        lock(&self.inner).committed = committed;
        self.sync();
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<NodeId>>, StorageError<NodeId>> {
        Ok(lock(&self.inner).committed)
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> Result<(), StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        {
            let mut inner = lock(&self.inner);
            for entry in entries {
                // Logs are consecutive: openraft truncates before it overwrites.
                let expected =
                    inner.entries.keys().next_back().map(|i| i + 1).or(inner.last_purged.map(|l| l.index + 1));
                assert!(
                    expected.is_none() || expected == Some(entry.log_id.index),
                    "log hole: appending {} after {:?}",
                    entry.log_id,
                    expected
                );
                inner.entries.insert(entry.log_id.index, entry);
            }
        }
        match &self.fsync {
            Some(fsync) => {
                let fsync = fsync.clone();
                self.sync_later(&fsync, callback).await;
            }
            None => {
                self.sync();
                callback.log_io_completed(Ok(()));
            }
        }
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        lock(&self.inner).entries.split_off(&log_id.index);
        self.sync();
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        let mut inner = lock(&self.inner);
        assert!(inner.last_purged <= Some(log_id), "purge goes backwards: {log_id} after {:?}", inner.last_purged);
        inner.last_purged = Some(log_id);
        let keep = inner.entries.split_off(&(log_id.index + 1));
        inner.entries = keep;
        drop(inner);
        self.sync();
        Ok(())
    }
}

/// The register map and what Raft needs to know about it.
#[derive(Debug, Default)]
struct SmInner {
    last_applied: Option<LogId<NodeId>>,
    membership: StoredMembership<NodeId, openraft::BasicNode>,
    registers: BTreeMap<u64, i64>,
    snapshot: Option<(SnapshotMeta<NodeId, openraft::BasicNode>, Vec<u8>)>,
    snapshots_built: u64,
    snapshots_installed: u64,
}

/// The state machine, kept in memory: the stand-in for the MVCC store. Applies
/// [`RegisterCommand`]s to a map of registers.
///
/// Cloning shares the same state; the node keeps a clone to serve linearizable reads
/// after openraft confirms leadership (see `InProcessCluster::read`).
#[derive(Debug, Clone, Default)]
pub struct MemStateMachine {
    inner: Arc<Mutex<SmInner>>,
}

impl MemStateMachine {
    /// An empty register map.
    pub fn new() -> MemStateMachine {
        MemStateMachine::default()
    }

    /// The value of `key` as applied so far (no freshness promise on its own).
    pub fn get(&self, key: u64) -> Option<i64> {
        lock(&self.inner).registers.get(&key).copied()
    }

    /// The index of the last applied entry (0 before any).
    pub fn applied_index(&self) -> u64 {
        lock(&self.inner).last_applied.map_or(0, |l| l.index)
    }

    /// How many snapshots from a leader this state machine has installed.
    pub fn snapshots_installed(&self) -> u64 {
        lock(&self.inner).snapshots_installed
    }

    /// All registers, in key order.
    pub fn registers(&self) -> BTreeMap<u64, i64> {
        lock(&self.inner).registers.clone()
    }

    /// What a crash leaves of this state machine: its last snapshot (durable), nothing
    /// applied since. openraft re-applies the committed entries after it on restart.
    pub fn after_crash(&self) -> MemStateMachine {
        let inner = lock(&self.inner);
        let mut fresh = SmInner::default();
        if let Some((meta, data)) = &inner.snapshot {
            fresh.registers = decode_registers(data).expect("a snapshot this state machine encoded decodes");
            fresh.last_applied = meta.last_log_id;
            fresh.membership = meta.last_membership.clone();
            fresh.snapshot = Some((meta.clone(), data.clone()));
        }
        MemStateMachine { inner: Arc::new(Mutex::new(fresh)) }
    }
}

/// Applies one command to the registers. Pure and deterministic: every replica gets the
/// same outcome from the same map and command.
fn apply_command(registers: &mut BTreeMap<u64, i64>, bytes: &[u8]) -> Outcome {
    match RegisterCommand::decode(bytes) {
        Err(why) => Outcome::Rejected(why),
        Ok(RegisterCommand::Write { key, value }) => {
            registers.insert(key, value);
            Outcome::Written
        }
        Ok(RegisterCommand::Cas { key, expect, new }) => {
            let ok = registers.get(&key) == Some(&expect);
            if ok {
                registers.insert(key, new);
            }
            Outcome::Cas { ok, current: registers.get(&key).copied() }
        }
        Ok(RegisterCommand::Read { key }) => Outcome::Read(registers.get(&key).copied()),
    }
}

/// Encodes registers for a snapshot: count u64, then (key u64, value i64) pairs, all
/// little-endian, in key order.
fn encode_registers(registers: &BTreeMap<u64, i64>) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + registers.len() * 16);
    out.extend_from_slice(&(registers.len() as u64).to_le_bytes());
    for (k, v) in registers {
        out.extend_from_slice(&k.to_le_bytes());
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

fn decode_registers(bytes: &[u8]) -> Result<BTreeMap<u64, i64>, String> {
    let word = |at: usize| -> Result<[u8; 8], String> {
        bytes
            .get(at..at + 8)
            .and_then(|s| s.try_into().ok())
            .ok_or_else(|| format!("snapshot truncated at byte {at} of {}", bytes.len()))
    };
    let count = u64::from_le_bytes(word(0)?);
    let expected_len = count.checked_mul(16).and_then(|n| n.checked_add(8)).ok_or("snapshot count overflows")?;
    if expected_len != bytes.len() as u64 {
        return Err(format!("snapshot of {count} registers is {} bytes, expected {expected_len}", bytes.len()));
    }
    let mut registers = BTreeMap::new();
    for i in 0..count as usize {
        let at = 8 + i * 16;
        registers.insert(u64::from_le_bytes(word(at)?), i64::from_le_bytes(word(at + 8)?));
    }
    Ok(registers)
}

impl RaftSnapshotBuilder<TypeConfig> for MemStateMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError<NodeId>> {
        let mut inner = lock(&self.inner);
        let data = encode_registers(&inner.registers);
        inner.snapshots_built += 1;
        let snapshot_id = match inner.last_applied {
            Some(l) => format!("{}-{}-{}", l.leader_id, l.index, inner.snapshots_built),
            None => format!("none-{}", inner.snapshots_built),
        };
        let meta =
            SnapshotMeta { last_log_id: inner.last_applied, last_membership: inner.membership.clone(), snapshot_id };
        inner.snapshot = Some((meta.clone(), data.clone()));
        Ok(Snapshot { meta, snapshot: Box::new(ImageData::Memory(Cursor::new(data))) })
    }
}

impl RaftStateMachine<TypeConfig> for MemStateMachine {
    type SnapshotBuilder = MemStateMachine;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<NodeId>>, StoredMembership<NodeId, openraft::BasicNode>), StorageError<NodeId>> {
        let inner = lock(&self.inner);
        Ok((inner.last_applied, inner.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Outcome>, StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut inner = lock(&self.inner);
        let mut outcomes = Vec::new();
        for entry in entries {
            assert!(
                inner.last_applied < Some(entry.log_id),
                "apply out of order: {} after {:?}",
                entry.log_id,
                inner.last_applied
            );
            inner.last_applied = Some(entry.log_id);
            let outcome = match entry.payload {
                EntryPayload::Blank => Outcome::None,
                EntryPayload::Normal(command) => apply_command(&mut inner.registers, &command.0),
                EntryPayload::Membership(m) => {
                    inner.membership = StoredMembership::new(Some(entry.log_id), m);
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

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<ImageData>, StorageError<NodeId>> {
        Ok(Box::new(ImageData::empty()))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, openraft::BasicNode>,
        snapshot: Box<ImageData>,
    ) -> Result<(), StorageError<NodeId>> {
        let data = snapshot.into_memory();
        let registers = data.and_then(|data| decode_registers(&data)).map_err(|why| StorageError::IO {
            source: StorageIOError::read_snapshot(
                Some(meta.signature()),
                &std::io::Error::new(std::io::ErrorKind::InvalidData, why),
            ),
        })?;
        let mut inner = lock(&self.inner);
        inner.last_applied = meta.last_log_id;
        inner.membership = meta.last_membership.clone();
        inner.snapshot = Some((meta.clone(), encode_registers(&registers)));
        inner.registers = registers;
        inner.snapshots_installed += 1;
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError<NodeId>> {
        let inner = lock(&self.inner);
        Ok(inner.snapshot.as_ref().map(|(meta, data)| Snapshot {
            meta: meta.clone(),
            snapshot: Box::new(ImageData::Memory(Cursor::new(data.clone()))),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registers_apply_write_cas_read() {
        let mut r = BTreeMap::new();
        let cmd = |c: RegisterCommand| c.encode().0;
        assert_eq!(apply_command(&mut r, &cmd(RegisterCommand::Read { key: 1 })), Outcome::Read(None));
        assert_eq!(apply_command(&mut r, &cmd(RegisterCommand::Write { key: 1, value: 5 })), Outcome::Written);
        assert_eq!(
            apply_command(&mut r, &cmd(RegisterCommand::Cas { key: 1, expect: 4, new: 9 })),
            Outcome::Cas { ok: false, current: Some(5) }
        );
        assert_eq!(
            apply_command(&mut r, &cmd(RegisterCommand::Cas { key: 1, expect: 5, new: 9 })),
            Outcome::Cas { ok: true, current: Some(9) }
        );
        assert!(matches!(apply_command(&mut r, &[0xff]), Outcome::Rejected(_)));
    }

    #[test]
    fn snapshot_encoding_round_trips_and_rejects_truncation() {
        let r: BTreeMap<u64, i64> = [(1, -1), (u64::MAX, i64::MIN)].into_iter().collect();
        let bytes = encode_registers(&r);
        assert_eq!(decode_registers(&bytes), Ok(r));
        for cut in 0..bytes.len() {
            assert!(decode_registers(&bytes[..cut]).is_err(), "cut at {cut}");
        }
    }
}
