//! The engine: transactions over the store, the commit seam, vacuum.

use crate::command::{
    self, decide, for_each_version, newest_version, parse_version_key, read_at, show, store_range, Command,
    IsolationLevel, KeyRange, Outcome,
};
use crate::error::{Error, Result};
use crate::lock::{Acquired, LockMode, LockSettings, LockStats, LockTable, TxnId, WaitPolicy};
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock};
use storage::vfs::Vfs;
use storage::{KvRead, Store, StoreOptions};

/// The most transactions open at once.
pub const TXN_OPEN_MAX: usize = 10_000;
/// The most bytes (keys plus values) one transaction may write by default; a commit is one
/// log record, so this stays below `storage::wal::WAL_RECORD_BYTES_MAX` with room for the
/// record's framing. Past it a write fails with 54000 and the transaction can roll back.
pub const WRITE_SET_BYTES_MAX: usize = 512 << 20;
/// The most rows locked at once (a bulk load locks every row it writes until it commits).
pub const LOCK_ENTRIES_MAX: usize = 4_000_000;
/// Dead versions removed per vacuum command.
pub const VACUUM_DELETES_PER_COMMAND: usize = 10_000;
/// The most keys the background vacuum remembers as written since its last round (see
/// [`VacuumDue`]); past it, the next round scans the whole store instead.
pub const VACUUM_TRACKED_KEYS_MAX: usize = 1 << 18;

/// Settings of an [`Engine`].
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// The store's settings.
    pub store: StoreOptions,
    /// Bound on open transactions.
    pub txn_open_max: usize,
    /// Bound on one transaction's writes, in bytes.
    pub write_set_bytes_max: usize,
    /// Bound on locked rows.
    pub lock_entries_max: usize,
    /// lock_timeout and deadlock_timeout.
    pub locks: LockSettings,
    /// Run vacuum in the background this often (None: only on demand).
    pub vacuum_interval: Option<std::time::Duration>,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            store: StoreOptions::default(),
            txn_open_max: TXN_OPEN_MAX,
            write_set_bytes_max: WRITE_SET_BYTES_MAX,
            lock_entries_max: LOCK_ENTRIES_MAX,
            locks: LockSettings::default(),
            vacuum_interval: Some(std::time::Duration::from_secs(10)),
        }
    }
}

/// How a transaction starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxnOptions {
    /// Its isolation level.
    pub isolation: IsolationLevel,
    /// READ ONLY: writes fail with 25006, and it never aborts for conflicts.
    pub read_only: bool,
}

impl Default for TxnOptions {
    fn default() -> Self {
        TxnOptions { isolation: IsolationLevel::ReadCommitted, read_only: false }
    }
}

/// The commit seam: turns a command into a durable, applied log record and reports the
/// outcome. Either the engine's own log (an engine opened with [`Engine::open`]) or a
/// replication layer installed with [`Engine::set_proposer`] on an engine opened with
/// [`Engine::open_replicated`]: Raft appends the command to the same write-ahead log,
/// and its state machine hands it back through [`Engine::apply_logged`].
pub trait Propose: Send + Sync {
    /// Makes `cmd` durable, applies it in log order, and returns how it ended.
    fn propose(&self, cmd: &Command) -> Result<Outcome>;
}

/// Counters of the engine.
#[derive(Debug, Clone, Default)]
pub struct EngineStats {
    /// Transactions committed with writes.
    pub commits: u64,
    /// Read-only commits (no log record).
    pub read_only_commits: u64,
    /// Rollbacks.
    pub rollbacks: u64,
    /// Commits rejected by validation (40001 at commit).
    pub conflicts_at_commit: u64,
    /// 40001 raised before commit (a locked row changed since the snapshot).
    pub conflicts_at_write: u64,
    /// Open transactions now.
    pub open_transactions: u64,
    /// The oldest snapshot still in use (vacuum's horizon).
    pub oldest_snapshot: u64,
    /// How far vacuum is held back: applied index minus the oldest snapshot.
    pub vacuum_held_back_by: u64,
    /// Dead versions found by vacuum, in total.
    pub dead_versions_found: u64,
    /// Dead versions removed by vacuum, in total.
    pub dead_versions_reclaimed: u64,
    /// Keys the next background vacuum round will look at (see [`Engine::vacuum_round`]).
    pub vacuum_keys_due: u64,
    /// Whether the next background vacuum round scans the whole store.
    pub vacuum_full_due: bool,
    /// The lock table's counters.
    pub locks: LockStats,
    /// The storage engine's counters.
    pub storage: storage::StoreStats,
}

#[derive(Default)]
struct Counters {
    commits: AtomicU64,
    read_only_commits: AtomicU64,
    rollbacks: AtomicU64,
    conflicts_at_commit: AtomicU64,
    conflicts_at_write: AtomicU64,
    dead_found: AtomicU64,
    dead_reclaimed: AtomicU64,
}

struct ApplyState {
    applied: u64,
    failed: Option<String>,
    /// The keys the next background vacuum round must look at.
    vacuum_due: VacuumDue,
    /// Commits waiting on `applied_cv` for their turn. With none (always, on a replicated
    /// engine, whose state machine applies in order), the notify and its futex system call
    /// are skipped.
    waiting: usize,
}

/// What a vacuum pass looks at.
enum VacuumScope<'a> {
    /// The whole store (VACUUM).
    Full,
    /// The keys written since the last round (a background round).
    Due,
    /// These user-key ranges only (VACUUM of named tables).
    Ranges(&'a [KeyRange]),
}

/// Which keys the next background vacuum round must look at. A version becomes dead only
/// when a newer version of its key (or a tombstone) is visible to every snapshot, so a round
/// needs to look only at the keys written since the last one, and at the keys whose newest
/// versions were still too new then. `full` sends the next round over the whole store
/// instead: after open (what the log replayed or an installed image wrote was not
/// recorded), and once more than [`VACUUM_TRACKED_KEYS_MAX`] keys were due.
struct VacuumDue {
    keys: std::collections::HashSet<Vec<u8>>,
    full: bool,
}

impl VacuumDue {
    fn all() -> VacuumDue {
        VacuumDue { keys: Default::default(), full: true }
    }

    fn add(&mut self, key: &[u8]) {
        if self.full || self.keys.contains(key) {
            return;
        }
        if self.keys.len() >= VACUUM_TRACKED_KEYS_MAX {
            *self = VacuumDue::all();
            return;
        }
        self.keys.insert(key.to_vec());
    }

    /// Records the keys a committed command wrote.
    fn record(&mut self, cmd: &Command, outcome: &Outcome) {
        if let (Command::Commit { writes, .. }, Outcome::Committed(_)) = (cmd, outcome) {
            for (k, _) in writes {
                self.add(k);
            }
        }
    }
}

/// Changes recorded after a commit that wrote [`WATCH_CHANGES_MAX`] more are forgotten.
pub const WATCH_CHANGES_MAX: usize = 64;

/// The recent commits that wrote a key under `prefix`, newest last.
struct Watch {
    prefix: Vec<u8>,
    /// The keys under `prefix` are as of this index for every snapshot from here up to the
    /// first of `changes` (the applied index when watching began, or the newest change
    /// forgotten since).
    base: u64,
    changes: std::collections::VecDeque<u64>,
}

impl Watch {
    fn record(&mut self, index: u64, writes: &[(Vec<u8>, Option<Vec<u8>>)]) {
        if !writes.iter().any(|(k, _)| k.starts_with(&self.prefix)) {
            return;
        }
        if self.changes.len() >= WATCH_CHANGES_MAX {
            self.base = self.changes.pop_front().expect("full");
        }
        self.changes.push_back(index);
    }

    /// The index of the newest change a snapshot at `snapshot` sees (or `base`), None if
    /// that is older than what is remembered.
    fn version(&self, snapshot: u64) -> Option<u64> {
        if snapshot < self.base {
            return None;
        }
        Some(self.changes.iter().rev().find(|&&c| c <= snapshot).copied().unwrap_or(self.base))
    }
}

struct Inner {
    opts: EngineOptions,
    store: Store,
    locks: LockTable,
    /// Open transactions and their snapshots.
    active: Mutex<BTreeMap<TxnId, u64>>,
    apply: Mutex<ApplyState>,
    /// `apply.applied`, stored after each apply, so that taking a snapshot does not wait
    /// for the apply in progress to release `apply` (under tpcb-like with 8 clients, every
    /// statement of every connection queued there behind the commits being applied).
    applied_now: AtomicU64,
    /// Commits that changed the watched keys (see [`Engine::watch_prefix`]). Recorded by
    /// the apply (which holds `apply`, then this), read by every catalog lookup (this
    /// alone, so a lookup does not wait for an apply in progress).
    watch: Mutex<Option<Watch>>,
    applied_cv: Condvar,
    next_txn: AtomicU64,
    counters: Counters,
    /// Decoded values of watched keys, by watched version then key (see [`Txn::get_decoded`]).
    decoded: Mutex<DecodedCache>,
    /// Set on a replicated engine: where commits go (see [`Engine::set_proposer`]).
    proposer: RwLock<Option<Arc<dyn Propose>>>,
    /// Whether the log holds a replication layer's entries rather than commands.
    replicated: bool,
}

/// A decoded value: None for a key that is not there.
type Decoded = Option<Arc<dyn std::any::Any + Send + Sync>>;

/// Decoded values kept in [`Txn::get_decoded`]'s cache; all are dropped when it fills.
pub const DECODED_ENTRIES_MAX: usize = 1024;

#[derive(Default)]
struct DecodedCache {
    by_version: std::collections::HashMap<u64, std::collections::HashMap<Vec<u8>, Decoded>>,
    entries: usize,
}

/// A transactional key-value engine: MVCC over the store.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Engine {
    /// Opens (creating if needed) an engine in `dir`, recovering the store and replaying the
    /// log's commands through the same deterministic validation.
    pub fn open(vfs: Arc<dyn Vfs>, dir: &Path, opts: EngineOptions) -> Result<Engine> {
        let mut replay = |kv: &dyn KvRead, index: u64, payload: &[u8]| -> storage::Result<storage::WriteBatch> {
            let cmd = Command::decode(payload, index)?;
            decide(kv, index, &cmd).map(|(batch, _)| batch).map_err(|e| match e {
                Error::Storage(s) => s,
                other => storage::Error::Invalid(format!("replaying log record {index}: {other}")),
            })
        };
        let store = Store::open_with_replay(vfs, dir, opts.store.clone(), &mut replay)?;
        Engine::start(store, opts, false)
    }

    /// Opens an engine whose log belongs to a replication layer (Raft): the log's records
    /// are that layer's entries, not commands. The store recovers to its checkpoint, then
    /// replays the records up to `upto` (which the layer knows to be committed) through
    /// `replay`, under one lock; `replay` must decide exactly as [`Engine::apply_logged_batch`]
    /// does (see [`command::decide_batch`]). The layer applies the committed records after
    /// `upto` itself, through [`Engine::apply_logged_batch`], before any transaction begins.
    /// Until [`Engine::set_proposer`] installs the layer, commits fail with 57P03.
    pub fn open_replicated(
        vfs: Arc<dyn Vfs>,
        dir: &Path,
        opts: EngineOptions,
        replay: &mut storage::store::ReplayFn<'_>,
        upto: u64,
    ) -> Result<Engine> {
        let store = Store::open_with_replay_upto(vfs, dir, opts.store.clone(), replay, upto)?;
        Engine::start(store, opts, true)
    }

    fn start(store: Store, opts: EngineOptions, replicated: bool) -> Result<Engine> {
        let applied = store.applied_index();
        let locks = LockTable::new(opts.lock_entries_max);
        let vacuum_interval = opts.vacuum_interval;
        let engine = Engine {
            inner: Arc::new(Inner {
                opts,
                store,
                locks,
                active: Mutex::new(BTreeMap::new()),
                apply: Mutex::new(ApplyState { applied, failed: None, vacuum_due: VacuumDue::all(), waiting: 0 }),
                applied_now: AtomicU64::new(applied),
                watch: Mutex::new(None),
                applied_cv: Condvar::new(),
                next_txn: AtomicU64::new(1),
                counters: Counters::default(),
                decoded: Mutex::new(DecodedCache::default()),
                proposer: RwLock::new(None),
                replicated,
            }),
        };
        if let Some(every) = vacuum_interval {
            let weak = Arc::downgrade(&engine.inner);
            std::thread::Builder::new()
                .name("bulwark-vacuum".into())
                .spawn(move || background_vacuum(weak, every))
                .map_err(|e| storage::Error::io("starting the vacuum thread", e))?;
        }
        Ok(engine)
    }

    /// Starts a transaction.
    pub fn begin(&self, opts: TxnOptions) -> Result<Txn> {
        let id = self.inner.next_txn.fetch_add(1, Ordering::Relaxed);
        let snapshot = {
            let mut active = lock(&self.inner.active);
            if active.len() >= self.inner.opts.txn_open_max {
                return Err(Error::Resources(format!(
                    "too many open transactions (the limit is {})",
                    self.inner.opts.txn_open_max
                )));
            }
            let snapshot = self.inner.applied();
            active.insert(id, snapshot);
            snapshot
        };
        Ok(Txn {
            engine: self.inner.clone(),
            id,
            opts,
            snapshot,
            writes: BTreeMap::new(),
            write_bytes: 0,
            reads: BTreeSet::new(),
            ranges: Vec::new(),
            failed: None,
            done: false,
            snapshot_taken: false,
            lock_settings: self.inner.opts.locks,
            sp: Savepoints::default(),
        })
    }

    /// Removes versions that no open snapshot can see, looking at the whole store (what
    /// VACUUM runs); returns (found, reclaimed).
    pub fn vacuum(&self) -> Result<(u64, u64)> {
        self.inner.vacuum(VacuumScope::Full)
    }

    /// Removes versions that no open snapshot can see, looking only at the user keys in
    /// `ranges` (what `VACUUM table` runs: a table's rows and index entries); returns
    /// (found, reclaimed). The background rounds' bookkeeping is left as it was.
    pub fn vacuum_ranges(&self, ranges: &[KeyRange]) -> Result<(u64, u64)> {
        self.inner.vacuum(VacuumScope::Ranges(ranges))
    }

    /// One round of the background vacuum: removes the dead versions of the keys written
    /// since the last round, and of the keys whose versions were too new for some snapshot
    /// then (the whole store on the first round after open, or when more than
    /// [`VACUUM_TRACKED_KEYS_MAX`] keys were due); returns (found, reclaimed).
    pub fn vacuum_round(&self) -> Result<(u64, u64)> {
        self.inner.vacuum(VacuumScope::Due)
    }

    /// The underlying store.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// Starts recording which commits write keys under `prefix` (one prefix per engine; a
    /// second call replaces the first), for [`Txn::watched_version`]: a cache of what is
    /// stored there can then tell which snapshots see the same contents.
    pub fn watch_prefix(&self, prefix: &[u8]) {
        let st = lock(&self.inner.apply);
        let base = st.applied;
        *lock(&self.inner.watch) = Some(Watch { prefix: prefix.to_vec(), base, changes: Default::default() });
    }

    /// The last applied log index (a new snapshot sees everything up to it).
    pub fn applied_index(&self) -> u64 {
        self.inner.applied()
    }

    /// Installs (or, with None, removes) the replication layer that commits go through.
    /// Only for an engine opened with [`Engine::open_replicated`]. The layer usually holds
    /// the engine (its state machine applies to it): removing it at shutdown breaks the
    /// cycle.
    pub fn set_proposer(&self, proposer: Option<Arc<dyn Propose>>) {
        assert!(self.inner.replicated, "a proposer is only for an engine opened with open_replicated");
        *self.inner.proposer.write().unwrap_or_else(|e| e.into_inner()) = proposer;
    }

    /// Applies the log record at `index`, which the replication layer has made durable and
    /// committed: `Some(cmd)` for a command, `None` for an entry that carries none (a
    /// leader's blank entry, a membership change), which only advances the applied index.
    /// `extra` is written in the same batch, outside the versioned key space (the
    /// replication layer's own state, such as its membership). Records must come in
    /// index order, each exactly once.
    pub fn apply_logged(&self, index: u64, cmd: Option<&Command>, extra: &[(Vec<u8>, Vec<u8>)]) -> Result<Outcome> {
        match cmd {
            None => self.apply_logged_batch(index, &[], extra).map(|_| Outcome::Committed(index)),
            Some(cmd) => {
                let mut outcomes = self.apply_logged_batch(index, std::slice::from_ref(cmd), extra)?;
                Ok(outcomes.pop().expect("one outcome per command"))
            }
        }
    }

    /// Applies a log record holding several commands, all at commit index `index`: each is
    /// decided against the state before the record, and one whose footprint overlaps an
    /// earlier one's in the record (see [`command::Footprint`]; a correct proposer never
    /// puts such commands together) is rejected, the same way on every replica. Returns
    /// one outcome per command.
    pub fn apply_logged_batch(
        &self,
        index: u64,
        cmds: &[Command],
        extra: &[(Vec<u8>, Vec<u8>)],
    ) -> Result<Vec<Outcome>> {
        let inner = &self.inner;
        let mut st = lock(&inner.apply);
        if let Some(reason) = &st.failed {
            return Err(Error::Storage(storage::Error::Poisoned(reason.clone())));
        }
        if st.applied + 1 != index {
            return Err(Error::Storage(storage::Error::Invalid(format!(
                "log record {index} handed to apply after record {}",
                st.applied
            ))));
        }
        let decided = (|| -> Result<Vec<Outcome>> {
            let (mut batch, outcomes) = command::decide_batch(&inner.store, index, cmds)?;
            for (k, v) in extra {
                batch.put(k.clone(), v.clone());
            }
            inner.store.apply(index, batch)?;
            Ok(outcomes)
        })();
        let result = match decided {
            Ok(outcomes) => {
                st.applied = index;
                for (cmd, outcome) in cmds.iter().zip(&outcomes) {
                    st.vacuum_due.record(cmd, outcome);
                }
                if let Some(w) = lock(&inner.watch).as_mut() {
                    for (cmd, outcome) in cmds.iter().zip(&outcomes) {
                        if let (Outcome::Committed(_), Command::Commit { writes, .. }) = (outcome, cmd) {
                            w.record(index, writes);
                        }
                    }
                }
                // Last: a snapshot at `index` must find its catalog changes recorded.
                inner.applied_now.store(index, Ordering::Release);
                Ok(outcomes)
            }
            Err(e) => {
                st.failed = Some(format!("applying log record {index} failed: {e}"));
                Err(e)
            }
        };
        let wake = st.waiting > 0;
        drop(st);
        if wake {
            inner.applied_cv.notify_all();
        }
        result
    }

    /// Counters and gauges.
    pub fn stats(&self) -> EngineStats {
        let c = &self.inner.counters;
        let (open, oldest) = {
            let active = lock(&self.inner.active);
            (active.len() as u64, self.inner.horizon_locked(&active))
        };
        let (vacuum_keys_due, vacuum_full_due) = {
            let st = lock(&self.inner.apply);
            (st.vacuum_due.keys.len(), st.vacuum_due.full)
        };
        EngineStats {
            commits: c.commits.load(Ordering::Relaxed),
            read_only_commits: c.read_only_commits.load(Ordering::Relaxed),
            rollbacks: c.rollbacks.load(Ordering::Relaxed),
            conflicts_at_commit: c.conflicts_at_commit.load(Ordering::Relaxed),
            conflicts_at_write: c.conflicts_at_write.load(Ordering::Relaxed),
            open_transactions: open,
            oldest_snapshot: oldest,
            vacuum_held_back_by: self.inner.applied().saturating_sub(oldest),
            dead_versions_found: c.dead_found.load(Ordering::Relaxed),
            dead_versions_reclaimed: c.dead_reclaimed.load(Ordering::Relaxed),
            vacuum_keys_due: vacuum_keys_due as u64,
            vacuum_full_due,
            locks: self.inner.locks.stats(),
            storage: self.inner.store.stats(),
        }
    }
}

/// Vacuums every `every` until the engine is dropped. Errors are counted by the store's
/// own counters (a failed vacuum changes nothing) and retried at the next round.
fn background_vacuum(engine: std::sync::Weak<Inner>, every: std::time::Duration) {
    const POLL: std::time::Duration = std::time::Duration::from_millis(100);
    let mut waited = std::time::Duration::ZERO;
    loop {
        std::thread::sleep(POLL);
        waited += POLL;
        let Some(inner) = engine.upgrade() else { return };
        if waited >= every {
            waited = std::time::Duration::ZERO;
            if inner.store.stats().poisoned.is_none() {
                let _ = inner.vacuum(VacuumScope::Due);
            }
        }
    }
}

impl Propose for Inner {
    fn propose(&self, cmd: &Command) -> Result<Outcome> {
        if self.replicated {
            let proposer = self.proposer.read().unwrap_or_else(|e| e.into_inner()).clone();
            return match proposer {
                Some(p) => p.propose(cmd),
                None => Err(Error::Unavailable("the replication layer is not running".into())),
            };
        }
        let index = self.store.log().append(&cmd.encode())?;
        // Apply in log order: wait for the record before this one.
        let mut st = lock(&self.apply);
        while st.applied + 1 != index {
            if let Some(reason) = &st.failed {
                return Err(Error::Storage(storage::Error::Poisoned(reason.clone())));
            }
            st.waiting += 1;
            st = self.applied_cv.wait(st).unwrap_or_else(|e| e.into_inner());
            st.waiting -= 1;
        }
        let result = decide(&self.store, index, cmd).and_then(|(batch, outcome)| {
            self.store.apply(index, batch)?;
            Ok(outcome)
        });
        match &result {
            Ok(outcome) => {
                st.applied = index;
                st.vacuum_due.record(cmd, outcome);
                if let (Some(w), Outcome::Committed(_), Command::Commit { writes, .. }) =
                    (lock(&self.watch).as_mut(), outcome, cmd)
                {
                    w.record(index, writes);
                }
                // Last: a snapshot at `index` must find its catalog changes recorded.
                self.applied_now.store(index, Ordering::Release);
            }
            Err(e) => {
                // Not deterministic (I/O): this node must stop applying; recovery replays.
                st.failed = Some(format!("applying log record {index} failed: {e}"));
            }
        }
        let wake = st.waiting > 0;
        drop(st);
        if wake {
            self.applied_cv.notify_all();
        }
        result
    }
}

impl Inner {
    /// The last applied index. Its store writes are complete: the index is stored after
    /// them (Release), and read here with Acquire.
    fn applied(&self) -> u64 {
        self.applied_now.load(Ordering::Acquire)
    }

    fn horizon_locked(&self, active: &BTreeMap<TxnId, u64>) -> u64 {
        active.values().copied().min().unwrap_or_else(|| self.applied())
    }

    fn end(&self, id: TxnId) {
        lock(&self.active).remove(&id);
        self.locks.release_all(id);
    }

    /// Removes the versions no snapshot can see, over what `scope` names: the whole store,
    /// the keys due (see [`VacuumDue`]; a round that finds the set marked full scans
    /// everything anyway), or some key ranges. Keys whose versions are still too new for
    /// some snapshot become due for the next round. Returns (dead versions found, removed).
    fn vacuum(&self, scope: VacuumScope) -> Result<(u64, u64)> {
        let horizon = {
            let active = lock(&self.active);
            self.horizon_locked(&active)
        };
        let mut dead = Vec::new();
        let mut again: Vec<Vec<u8>> = Vec::new();
        let scanned = match scope {
            VacuumScope::Ranges(ranges) => ranges.iter().try_for_each(|(lo, hi)| {
                let (lo, hi) = store_range(lo, hi);
                self.find_dead(lo, hi, horizon, &mut dead, &mut again)
            }),
            VacuumScope::Full | VacuumScope::Due => {
                let due = std::mem::replace(
                    &mut lock(&self.apply).vacuum_due,
                    VacuumDue { keys: Default::default(), full: false },
                );
                if matches!(scope, VacuumScope::Full) || due.full {
                    let (lo, hi) = store_range(&Bound::Unbounded, &Bound::Unbounded);
                    self.find_dead(lo, hi, horizon, &mut dead, &mut again)
                } else {
                    // In key order: neighbouring keys share the pages the walk reads.
                    let mut keys: Vec<Vec<u8>> = due.keys.into_iter().collect();
                    keys.sort_unstable();
                    keys.iter().try_for_each(|key| {
                        let (lo, hi) = store_range(&Bound::Included(key.clone()), &Bound::Included(key.clone()));
                        self.find_dead(lo, hi, horizon, &mut dead, &mut again)
                    })
                }
            }
        };
        self.reclaim(scanned, dead, again)
    }

    /// Proposes the removal of the versions a scan found `dead`, and records the keys it
    /// found too new (`again`) for the next background round.
    fn reclaim(&self, scanned: Result<()>, dead: Vec<Vec<u8>>, again: Vec<Vec<u8>>) -> Result<(u64, u64)> {
        if let Err(e) = scanned {
            // Look at everything again next round: this one may have stopped anywhere.
            lock(&self.apply).vacuum_due = VacuumDue::all();
            return Err(e);
        }
        {
            let mut st = lock(&self.apply);
            for key in &again {
                st.vacuum_due.add(key);
            }
        }
        let found = dead.len() as u64;
        self.counters.dead_found.fetch_add(found, Ordering::Relaxed);
        let mut reclaimed = 0;
        for chunk in dead.chunks(VACUUM_DELETES_PER_COMMAND) {
            if let Err(e) = self.propose(&Command::Vacuum { deletes: chunk.to_vec() }) {
                // The versions not removed are found again by the next full round.
                lock(&self.apply).vacuum_due = VacuumDue::all();
                return Err(e);
            }
            reclaimed += chunk.len() as u64;
        }
        self.counters.dead_reclaimed.fetch_add(reclaimed, Ordering::Relaxed);
        Ok((found, reclaimed))
    }

    /// Adds to `dead` the store keys of the versions in `lo..hi` no snapshot at `horizon`
    /// or later can see, and to `again` the user keys with a version newer than `horizon`
    /// (their older versions may die once every snapshot sees it).
    fn find_dead(
        &self,
        lo: Bound<Vec<u8>>,
        hi: Bound<Vec<u8>>,
        horizon: u64,
        dead: &mut Vec<Vec<u8>>,
        again: &mut Vec<Vec<u8>>,
    ) -> Result<()> {
        let mut current: Option<Vec<u8>> = None;
        let mut kept_visible = false;
        let mut too_new = false;
        for_each_version(&self.store, lo, hi, |k, v| {
            let (key, ts) = parse_version_key(k)?;
            if current.as_deref() != Some(key.as_slice()) {
                current = Some(key);
                kept_visible = false;
                too_new = false;
            }
            if ts > horizon {
                // Some snapshot may need it; look again next round.
                if !too_new {
                    too_new = true;
                    again.push(current.clone().expect("set above"));
                }
                return Ok(true);
            }
            if kept_visible {
                dead.push(k.to_vec()); // shadowed by a newer version every snapshot sees
            } else {
                kept_visible = true;
                if command::decode_value(v)?.is_none() {
                    dead.push(k.to_vec()); // a tombstone every snapshot sees: the key is gone
                }
            }
            Ok(true)
        })
    }
}

/// The most savepoints open at once in one transaction.
pub const SAVEPOINTS_MAX: usize = 10_000;

/// A point inside a transaction that [`Txn::rollback_to`] returns to. Savepoints nest: the
/// id is the savepoint's depth, and rolling back to or releasing one forgets the deeper
/// ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct SavepointId(usize);

/// A write undone by [`Txn::rollback_to`]: the key and its previous entry in the write set
/// (None: it had none; Some(None): a delete).
type UndoEntry = (Vec<u8>, Option<Option<Vec<u8>>>);

/// What a savepoint captured: how long the undo log was and the write-set size.
#[derive(Debug, Clone, Copy)]
struct SavepointMark {
    undo_len: usize,
    write_bytes: usize,
}

/// A transaction's open savepoints and the undo log they need.
#[derive(Default)]
struct Savepoints {
    /// Open savepoints, outermost first.
    marks: Vec<SavepointMark>,
    /// While a savepoint is open: every write's key and previous entry, oldest first.
    undo: Vec<UndoEntry>,
}

/// A transaction. Dropping it without [`Txn::commit`] rolls it back.
///
/// # Savepoints
///
/// While a savepoint is open every write logs the key's previous entry in the write set
/// (`undo`); [`Txn::rollback_to`] replays that log backwards to the savepoint's mark. What
/// it does not undo, on purpose:
///
/// - Reads and ranges recorded for SERIALIZABLE validation stay recorded, as PostgreSQL
///   keeps the predicate locks of a rolled-back subtransaction (what it read may have
///   shaped what the transaction did next). This can only add aborts, never lose one.
/// - Row locks taken after the savepoint stay held until the transaction ends. PostgreSQL
///   releases a subtransaction's locks at ROLLBACK TO; keeping them is safe (no anomaly),
///   only less concurrent.
/// - The snapshot: REPEATABLE READ and SERIALIZABLE keep theirs, as in PostgreSQL.
///
/// An error while a savepoint is open marks the transaction failed but does not release its
/// locks or its snapshot, so [`Txn::rollback_to`] can bring it back; without a savepoint a
/// failure releases them at once.
pub struct Txn {
    engine: Arc<Inner>,
    id: TxnId,
    opts: TxnOptions,
    snapshot: u64,
    writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    write_bytes: usize,
    reads: BTreeSet<Vec<u8>>,
    ranges: Vec<KeyRange>,
    failed: Option<String>,
    done: bool,
    snapshot_taken: bool,
    lock_settings: LockSettings,
    /// Savepoint state (two empty vectors, no allocation, until a savepoint opens).
    sp: Savepoints,
}

impl Txn {
    /// This transaction's number (as named in deadlock messages).
    pub fn id(&self) -> TxnId {
        self.id
    }

    /// The applied index its current snapshot sees.
    pub fn snapshot(&self) -> u64 {
        self.snapshot
    }

    /// Its options.
    pub fn options(&self) -> TxnOptions {
        self.opts
    }

    /// Sets lock_timeout and deadlock_timeout for this transaction.
    pub fn set_lock_settings(&mut self, settings: LockSettings) {
        self.lock_settings = settings;
    }

    /// Starts a new statement: READ COMMITTED takes a new snapshot.
    pub fn new_statement(&mut self) {
        if self.opts.isolation == IsolationLevel::ReadCommitted && !self.done && self.failed.is_none() {
            self.snapshot_taken = true;
            let mut active = lock(&self.engine.active);
            self.snapshot = self.engine.applied();
            active.insert(self.id, self.snapshot);
        }
    }

    fn check_usable(&self) -> Result<()> {
        if self.done {
            return Err(Error::Aborted("the transaction has ended".into()));
        }
        if let Some(why) = &self.failed {
            return Err(Error::Aborted(format!(
                "current transaction is aborted, commands ignored until end of transaction block ({why})"
            )));
        }
        Ok(())
    }

    /// Every operation starts here: refuse if the transaction ended or failed, and take the
    /// snapshot at the first statement (as PostgreSQL does for REPEATABLE READ and
    /// SERIALIZABLE; READ COMMITTED takes one per statement through `new_statement`).
    fn begin_statement(&mut self) -> Result<()> {
        self.check_usable()?;
        if !self.snapshot_taken {
            self.snapshot_taken = true;
            let mut active = lock(&self.engine.active);
            self.snapshot = self.engine.applied();
            active.insert(self.id, self.snapshot);
        }
        Ok(())
    }

    /// Any error aborts the transaction, as in PostgreSQL.
    fn after<T>(&mut self, r: Result<T>) -> Result<T> {
        match r {
            Err(e) if self.failed.is_none() => self.fail(e),
            other => other,
        }
    }

    /// Records an error that aborts the transaction: it releases its locks and its snapshot
    /// at once (so waiters go on), and refuses everything but rollback (25P02).
    ///
    /// With a savepoint open it only marks the transaction failed: [`Txn::rollback_to`] may
    /// still bring it back, so it keeps its locks and snapshot until then.
    fn fail<T>(&mut self, e: Error) -> Result<T> {
        if self.failed.is_none() {
            self.failed = Some(e.to_string());
            if self.sp.marks.is_empty() {
                self.engine.end(self.id);
            }
        }
        Err(e)
    }

    /// The index of the newest commit that wrote a key under the watched prefix (see
    /// [`Engine::watch_prefix`]) that this transaction's snapshot sees: two snapshots with
    /// the same version see the same keys under the prefix. None when that does not hold
    /// for this transaction's reads: it has written under the prefix itself, a SERIALIZABLE
    /// writer must record what it reads (so it reads), nothing is watched, or the snapshot
    /// is older than the changes remembered. Takes the snapshot if no statement has yet.
    pub fn watched_version(&mut self) -> Result<Option<u64>> {
        self.version_of(None)
    }

    /// [`Txn::watched_version`], and None as well for a `key` not under the prefix.
    fn version_of(&mut self, key: Option<&[u8]>) -> Result<Option<u64>> {
        self.begin_statement()?;
        if self.opts.isolation == IsolationLevel::Serializable && !self.opts.read_only {
            return Ok(None);
        }
        let watch = lock(&self.engine.watch);
        let Some(w) = watch.as_ref() else { return Ok(None) };
        if key.is_some_and(|k| !k.starts_with(&w.prefix)) {
            return Ok(None);
        }
        let from = (Bound::Included(w.prefix.as_slice()), Bound::Unbounded);
        let own = self.writes.range::<[u8], _>(from).next().is_some_and(|(k, _)| k.starts_with(&w.prefix));
        Ok(if own { None } else { w.version(self.snapshot) })
    }

    /// A value computed from what this transaction sees under the watched prefix, named by
    /// `name` (under the prefix, and no key the store holds): computed once per watched
    /// version and shared like [`Txn::get_decoded`]'s values, or computed each time for a
    /// transaction without a watched version (its own writes under the prefix, or
    /// SERIALIZABLE read-write). `compute` must read only keys under the prefix.
    pub fn derived<T: std::any::Any + Send + Sync, E: From<Error>>(
        &mut self,
        name: &[u8],
        compute: impl FnOnce(&mut Txn) -> std::result::Result<T, E>,
    ) -> std::result::Result<Arc<T>, E> {
        let watched = self.version_of(Some(name))?;
        if let Some(v) = watched {
            let cache = lock(&self.engine.decoded);
            if let Some(Some(hit)) = cache.by_version.get(&v).and_then(|m| m.get(name)) {
                if let Ok(value) = hit.clone().downcast::<T>() {
                    return Ok(value);
                }
            }
        }
        let value = Arc::new(compute(self)?);
        if let Some(v) = watched {
            let mut cache = lock(&self.engine.decoded);
            if cache.entries >= DECODED_ENTRIES_MAX {
                *cache = DecodedCache::default();
            }
            let erased: Decoded = Some(value.clone() as Arc<dyn std::any::Any + Send + Sync>);
            if cache.by_version.entry(v).or_default().insert(name.to_vec(), erased).is_none() {
                cache.entries += 1;
            }
        }
        Ok(value)
    }

    /// The value of `key` as [`Txn::get`] sees it, through `decode`: for a key under the
    /// watched prefix, decoded once per watched version and shared by every transaction
    /// whose snapshot sees that version (the read itself is skipped). Keys elsewhere, and
    /// transactions without a watched version, read and decode each time.
    pub fn get_decoded<T: std::any::Any + Send + Sync, E: From<Error>>(
        &mut self,
        key: &[u8],
        decode: impl FnOnce(&[u8]) -> std::result::Result<T, E>,
    ) -> std::result::Result<Option<Arc<T>>, E> {
        let watched = self.version_of(Some(key))?;
        if let Some(v) = watched {
            let cache = lock(&self.engine.decoded);
            if let Some(hit) = cache.by_version.get(&v).and_then(|m| m.get(key)) {
                // A type other than T under the same key is a programmer error: read afresh.
                if let Ok(value) = hit.clone().map(|a| a.downcast::<T>()).transpose() {
                    return Ok(value);
                }
            }
        }
        let value = match self.get(key)? {
            Some(bytes) => Some(Arc::new(decode(&bytes)?)),
            None => None,
        };
        if let Some(v) = watched {
            let mut cache = lock(&self.engine.decoded);
            if cache.entries >= DECODED_ENTRIES_MAX {
                *cache = DecodedCache::default();
            }
            let erased: Decoded = value.clone().map(|a| a as Arc<dyn std::any::Any + Send + Sync>);
            if cache.by_version.entry(v).or_default().insert(key.to_vec(), erased).is_none() {
                cache.entries += 1;
            }
        }
        Ok(value)
    }

    /// True if this transaction has written (or deleted) `key` and not rolled that back.
    pub fn has_written(&self, key: &[u8]) -> bool {
        self.writes.contains_key(key)
    }

    /// True if an error has aborted the transaction (only [`Txn::rollback_to`] or a
    /// rollback can follow).
    pub fn is_failed(&self) -> bool {
        self.failed.is_some()
    }

    /// Opens a savepoint: a later [`Txn::rollback_to`] undoes every write made after it.
    pub fn savepoint(&mut self) -> Result<SavepointId> {
        self.check_usable()?;
        if self.sp.marks.len() >= SAVEPOINTS_MAX {
            return Err(Error::Resources(format!(
                "too many savepoints in one transaction (the limit is {SAVEPOINTS_MAX})"
            )));
        }
        self.sp.marks.push(SavepointMark { undo_len: self.sp.undo.len(), write_bytes: self.write_bytes });
        Ok(SavepointId(self.sp.marks.len() - 1))
    }

    /// Undoes every write made since savepoint `id` and forgets the savepoints opened after
    /// it; `id` itself stays open (PostgreSQL's ROLLBACK TO SAVEPOINT). Clears a failure,
    /// so the transaction goes on.
    pub fn rollback_to(&mut self, id: SavepointId) -> Result<()> {
        if self.done {
            return Err(Error::Aborted("the transaction has ended".into()));
        }
        let Some(&mark) = self.sp.marks.get(id.0) else {
            return Err(Error::Aborted(format!("savepoint {} is no longer open", id.0)));
        };
        assert!(mark.undo_len <= self.sp.undo.len(), "undo log shorter than a savepoint's mark");
        while self.sp.undo.len() > mark.undo_len {
            let (key, previous) = self.sp.undo.pop().expect("checked above");
            match previous {
                Some(v) => self.writes.insert(key, v),
                None => self.writes.remove(&key),
            };
        }
        self.write_bytes = mark.write_bytes;
        self.sp.marks.truncate(id.0 + 1);
        self.failed = None;
        Ok(())
    }

    /// Forgets savepoint `id` and those opened after it, keeping their writes
    /// (RELEASE SAVEPOINT).
    pub fn release(&mut self, id: SavepointId) -> Result<()> {
        self.check_usable()?;
        if id.0 >= self.sp.marks.len() {
            return Err(Error::Aborted(format!("savepoint {} is no longer open", id.0)));
        }
        self.sp.marks.truncate(id.0);
        if self.sp.marks.is_empty() {
            self.sp.undo.clear();
        }
        Ok(())
    }

    /// The value of `key` as this transaction sees it: its own write, else its snapshot.
    pub fn get(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.begin_statement()?;
        let r = self.get_inner(key);
        self.after(r)
    }

    fn get_inner(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.check_usable()?;
        if let Some(v) = self.writes.get(key) {
            return Ok(v.clone());
        }
        if self.opts.isolation == IsolationLevel::Serializable && !self.opts.read_only {
            self.reads.insert(key.to_vec());
        }
        match read_at(&self.engine.store, key, self.snapshot) {
            Ok(v) => Ok(v),
            Err(e) => self.fail(e),
        }
    }

    /// The entries with keys in `(lo, hi)` as this transaction sees them, ascending or
    /// descending, at most `limit` of them.
    pub fn scan(
        &mut self,
        lo: Bound<Vec<u8>>,
        hi: Bound<Vec<u8>>,
        reverse: bool,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        self.begin_statement()?;
        let r = self.scan_inner(lo, hi, reverse, limit);
        self.after(r)
    }

    /// The entries in `(lo, hi)` as of the newest committed state (plus this transaction's
    /// own writes), whatever the snapshot: for constraint checks, which must see rows that
    /// concurrent transactions committed (lock what you find with [`Txn::lock_row`] to turn
    /// a row this snapshot cannot see into 40001 under REPEATABLE READ and SERIALIZABLE).
    pub fn scan_latest(&mut self, lo: Bound<Vec<u8>>, hi: Bound<Vec<u8>>) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        self.begin_statement()?;
        let r = self.scan_at(lo, hi, false, usize::MAX, u64::MAX);
        self.after(r)
    }

    fn scan_inner(
        &mut self,
        lo: Bound<Vec<u8>>,
        hi: Bound<Vec<u8>>,
        reverse: bool,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        self.check_usable()?;
        if self.opts.isolation == IsolationLevel::Serializable && !self.opts.read_only {
            // A paging scan's later pages lie inside its first page's range: record it once,
            // or commit validation would re-read the table's rest for every page.
            let covered = self.ranges.last().is_some_and(|(plo, phi)| *phi == hi && starts_within(plo, &lo));
            if !covered {
                self.ranges.push((lo.clone(), hi.clone()));
            }
        }
        self.scan_at(lo, hi, reverse, limit, self.snapshot)
    }

    fn scan_at(
        &mut self,
        lo: Bound<Vec<u8>>,
        hi: Bound<Vec<u8>>,
        reverse: bool,
        limit: usize,
        snapshot: u64,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let (slo, shi) = store_range(&lo, &hi);
        // A forward scan stops reading the store once it holds `limit` live committed rows
        // more than this transaction's writes up to that key could delete: the first
        // `limit` rows of the merged result are then all among them. (Without this a scan
        // read its whole range for every page, and ANALYZE of a million rows took minutes.)
        // Own writes up to the current key are counted as the store is read (a cursor over
        // the write set), so a page of a big transaction's scan costs its page, not its
        // whole write set.
        let mut own = self.writes.range((lo.clone(), hi.clone())).peekable();
        let mut own_upto = 0usize;
        let mut live = 0usize;
        let mut merged: BTreeMap<Vec<u8>, Option<Vec<u8>>> = BTreeMap::new();
        let mut last: Option<Vec<u8>> = None;
        let result = for_each_version(&self.engine.store, slo, shi, |k, v| {
            let (key, ts) = parse_version_key(k)?;
            if ts <= snapshot && last.as_ref() != Some(&key) {
                last = Some(key.clone());
                let value = command::decode_value(v)?;
                live += usize::from(value.is_some());
                while own.next_if(|(w, _)| **w <= key).is_some() {
                    own_upto += 1;
                }
                merged.insert(key, value);
                if !reverse && live >= limit.saturating_add(own_upto) {
                    return Ok(false);
                }
            }
            Ok(true)
        });
        if let Err(e) = result {
            return self.fail(e);
        }
        for (k, v) in self.writes.range((lo, hi)) {
            merged.insert(k.clone(), v.clone());
        }
        let live = merged.into_iter().filter_map(|(k, v)| v.map(|v| (k, v)));
        Ok(if reverse { live.rev().take(limit).collect() } else { live.take(limit).collect() })
    }

    /// Locks `key` (SELECT ... FOR UPDATE / FOR SHARE) and returns its value: the newest
    /// committed one under READ COMMITTED, the snapshot's otherwise. `Ok(None)` means SKIP
    /// LOCKED skipped it. Under REPEATABLE READ and SERIALIZABLE, a row changed since the
    /// snapshot fails with 40001, as in PostgreSQL.
    pub fn lock_row(&mut self, key: &[u8], mode: LockMode, policy: WaitPolicy) -> Result<Option<Option<Vec<u8>>>> {
        self.begin_statement()?;
        let r = self.lock_row_inner(key, mode, policy);
        self.after(r)
    }

    fn lock_row_inner(&mut self, key: &[u8], mode: LockMode, policy: WaitPolicy) -> Result<Option<Option<Vec<u8>>>> {
        if self.opts.read_only {
            let what = if mode == LockMode::Exclusive { "SELECT FOR UPDATE" } else { "SELECT FOR SHARE" };
            return Err(Error::ReadOnly(what.into()));
        }
        match self.take_lock(key, mode, policy)? {
            Acquired::Skipped => Ok(None),
            Acquired::Granted => {
                if let Some(v) = self.writes.get(key) {
                    return Ok(Some(v.clone()));
                }
                let at = if self.opts.isolation == IsolationLevel::ReadCommitted { u64::MAX } else { self.snapshot };
                if self.opts.isolation == IsolationLevel::Serializable {
                    self.reads.insert(key.to_vec());
                }
                match read_at(&self.engine.store, key, at) {
                    Ok(v) => Ok(Some(v)),
                    Err(e) => self.fail(e),
                }
            }
        }
    }

    /// Locks `key` and returns its newest committed value (or this transaction's own
    /// write), whatever the isolation level, without the serialization check of
    /// [`Txn::lock_row`]. For constraint checks, which PostgreSQL makes against the latest
    /// committed state: a unique key inserted and committed concurrently is a unique
    /// violation, not a serialization failure. `Ok(None)` means SKIP LOCKED skipped it.
    pub fn lock_row_latest(
        &mut self,
        key: &[u8],
        mode: LockMode,
        policy: WaitPolicy,
    ) -> Result<Option<Option<Vec<u8>>>> {
        self.begin_statement()?;
        let r = self.lock_row_latest_inner(key, mode, policy);
        self.after(r)
    }

    fn lock_row_latest_inner(
        &mut self,
        key: &[u8],
        mode: LockMode,
        policy: WaitPolicy,
    ) -> Result<Option<Option<Vec<u8>>>> {
        if self.opts.read_only && mode == LockMode::Exclusive {
            return Err(Error::ReadOnly("a write".into()));
        }
        match self.engine.locks.acquire(self.id, key, mode, policy, self.lock_settings)? {
            Acquired::Skipped => Ok(None),
            Acquired::Granted => {
                if let Some(v) = self.writes.get(key) {
                    return Ok(Some(v.clone()));
                }
                Ok(Some(read_at(&self.engine.store, key, u64::MAX)?))
            }
        }
    }

    fn take_lock(&mut self, key: &[u8], mode: LockMode, policy: WaitPolicy) -> Result<Acquired> {
        let got = match self.engine.locks.acquire(self.id, key, mode, policy, self.lock_settings) {
            Ok(got) => got,
            Err(e @ Error::Deadlock(_)) => return self.fail(e),
            Err(e) => return Err(e),
        };
        if got == Acquired::Granted && self.opts.isolation != IsolationLevel::ReadCommitted {
            let newest = match newest_version(&self.engine.store, key) {
                Ok(n) => n,
                Err(e) => return self.fail(e),
            };
            if let Some(ts) = newest.filter(|&ts| ts > self.snapshot) {
                self.engine.counters.conflicts_at_write.fetch_add(1, Ordering::Relaxed);
                return self.fail(Error::Serialization(format!(
                    "could not serialize access due to concurrent update: key {} was changed by a transaction that committed at {ts}, after this one's snapshot {}",
                    show(key),
                    self.snapshot
                )));
            }
        }
        Ok(got)
    }

    /// Writes `value` under `key` (locking the row first).
    pub fn put(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        self.begin_statement()?;
        let r = self.write(key, Some(value));
        self.after(r)
    }

    /// Deletes `key` (locking the row first).
    pub fn delete(&mut self, key: &[u8]) -> Result<()> {
        self.begin_statement()?;
        let r = self.write(key, None);
        self.after(r)
    }

    fn write(&mut self, key: &[u8], value: Option<&[u8]>) -> Result<()> {
        self.check_usable()?;
        if self.opts.read_only {
            return Err(Error::ReadOnly(if value.is_some() { "a write" } else { "a delete" }.into()));
        }
        let size = key.len() + value.map_or(0, <[u8]>::len);
        if self.write_bytes + size > self.engine.opts.write_set_bytes_max {
            return Err(Error::TooLarge(format!(
                "transaction writes exceed {} bytes (write_set_bytes_max)",
                self.engine.opts.write_set_bytes_max
            )));
        }
        storage::btree::check_sizes(&command::version_key(key, 0), Some(&command::encode_value(value)))?;
        self.take_lock(key, LockMode::Exclusive, WaitPolicy::Wait)?;
        self.write_bytes += size;
        let previous = self.writes.insert(key.to_vec(), value.map(<[u8]>::to_vec));
        if !self.sp.marks.is_empty() {
            self.sp.undo.push((key.to_vec(), previous));
        }
        Ok(())
    }

    /// Commits: hands the writes (and for SERIALIZABLE the reads) to the log, which
    /// validates and applies them. Returns the commit index, or None for a transaction that
    /// wrote nothing (it needs no log record). A conflict is 40001 with the reason.
    pub fn commit(mut self) -> Result<Option<u64>> {
        self.check_usable()?;
        self.done = true;
        let c = &self.engine.counters;
        if self.writes.is_empty() {
            c.read_only_commits.fetch_add(1, Ordering::Relaxed);
            self.engine.end(self.id);
            return Ok(None);
        }
        let cmd = Command::Commit {
            snapshot: self.snapshot,
            isolation: self.opts.isolation,
            writes: std::mem::take(&mut self.writes).into_iter().collect(),
            reads: std::mem::take(&mut self.reads).into_iter().collect(),
            ranges: std::mem::take(&mut self.ranges),
        };
        let result = self.engine.propose(&cmd);
        self.engine.end(self.id);
        match result? {
            Outcome::Committed(index) => {
                c.commits.fetch_add(1, Ordering::Relaxed);
                Ok(Some(index))
            }
            Outcome::Rejected(reason) => {
                c.conflicts_at_commit.fetch_add(1, Ordering::Relaxed);
                Err(Error::Serialization(reason))
            }
        }
    }

    /// Rolls back: nothing it wrote is kept, its locks are released.
    pub fn rollback(mut self) {
        self.finish_rollback();
    }

    fn finish_rollback(&mut self) {
        if !self.done {
            self.done = true;
            self.engine.counters.rollbacks.fetch_add(1, Ordering::Relaxed);
            self.engine.end(self.id);
        }
    }
}

impl Drop for Txn {
    fn drop(&mut self) {
        self.finish_rollback();
    }
}

/// Whether a range starting at `lo` starts at or after one starting at `outer`.
fn starts_within(outer: &Bound<Vec<u8>>, lo: &Bound<Vec<u8>>) -> bool {
    match (outer, lo) {
        (Bound::Unbounded, _) => true,
        (_, Bound::Unbounded) => false,
        (Bound::Included(a), Bound::Included(b) | Bound::Excluded(b)) => b >= a,
        (Bound::Excluded(a), Bound::Excluded(b)) => b >= a,
        (Bound::Excluded(a), Bound::Included(b)) => b > a,
    }
}
