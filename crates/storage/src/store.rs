//! The store: the log and the tree together, with checkpoints and recovery.
//!
//! ```text
//!  commit(batch) ──► wal.append (group commit, fsync) ──► apply in log order ──► tree (memory)
//!                                                                                   │
//!             checkpoint: dirty pages ──► data.db, fsync ──► meta slot, fsync ──► purge log
//! ```
//!
//! A data directory holds `data.db` (pages, see [`crate::page`]) and `wal/` (log segments,
//! see [`crate::wal`]). A write batch is durable once its log record is; the tree in memory
//! is brought up to date right after, in log order, and reaches `data.db` at the next
//! checkpoint.
//!
//! # Checkpoints
//!
//! A checkpoint writes every page changed since the previous one to page numbers that no
//! durable checkpoint references (copy-on-write), plus the free list, fsyncs, then writes the
//! meta slot *not* holding the newest durable checkpoint (each slot has its own checksum and
//! an epoch number) and fsyncs again. A crash at any instant leaves the previous meta slot
//! and every page it references untouched. Only the hand-over of the dirty pages and the
//! bookkeeping at the end take the tree's write lock; the page writes and fsyncs run while
//! readers and writers go on. Checkpoints run when the log since the last one passes
//! `checkpoint_log_bytes`, when `checkpoint_interval` passes, when dirty pages pass
//! `dirty_bytes_max`, and on request.
//!
//! # Recovery
//!
//! [`Store::open`] reads both meta slots and takes the newest valid one, loads its free list,
//! then replays every log record after its `applied_index`. The log itself cuts a torn tail
//! and refuses a corrupt middle (see [`crate::wal`]). A log that no longer reaches back to the
//! checkpoint is reported as corruption.
//!
//! # Failures
//!
//! - ENOSPC while logging fails that commit with [`Error::DiskFull`]; nothing is applied, and
//!   commits work again once space returns. ENOSPC during a checkpoint leaves the previous
//!   checkpoint in force; the pages are written by the next one.
//! - A failed fsync (log or data file) fences the store: every later write fails with
//!   [`Error::Poisoned`] naming the original error. Reads go on from memory and disk.
//! - A failure while applying a durable record cannot be retried deterministically, so it
//!   fences the store too; recovery on the next start replays the record.

use crate::btree::{encode_freelist, CheckpointPlan, Meta, Pager, Tree, DATA_FILE, FIRST_TREE_PAGE};
use crate::error::{Error, Result};
use crate::page::{Page, PageId, PAGE_BYTES};
use crate::pool::{BufferPool, PoolStats};
use crate::vfs::{Vfs, VfsFile};
use crate::wal::{Wal, WalOptions, WalStats};
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The log directory inside the data directory.
pub const WAL_DIR: &str = "wal";
/// Entries fetched per lock acquisition by a [`Scan`].
pub const SCAN_CHUNK_ENTRIES: usize = 256;
/// The largest piece [`Store::copy_checkpoint`] reads and hands on at a time.
pub const COPY_CHUNK_BYTES: usize = 1 << 20;
/// How often the background checkpointer looks at its triggers.
const CHECKPOINT_POLL: Duration = Duration::from_millis(50);
/// The longest write batch accepted, in operations (a transaction's writes apply as one
/// batch: a rewrite of a 4-million-row table fits).
pub const BATCH_OPS_MAX: usize = 8 << 20;

/// Settings of a store.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// The buffer pool's budget for clean pages.
    pub pool_bytes: usize,
    /// Dirty pages allowed before a commit runs a checkpoint itself.
    pub dirty_bytes_max: usize,
    /// Checkpoint when the log has grown this much since the last checkpoint (None: never).
    pub checkpoint_log_bytes: Option<u64>,
    /// Checkpoint at least this often when there are changes (None: never).
    pub checkpoint_interval: Option<Duration>,
    /// The log's settings.
    pub wal: WalOptions,
    /// Whether a checkpoint purges the log records it made unnecessary for recovery. A
    /// replication layer that needs older records for lagging replicas turns this off and
    /// purges through [`Wal::purge_before`] itself (never past the durable checkpoint).
    pub purge_log_at_checkpoint: bool,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            pool_bytes: 128 << 20,
            dirty_bytes_max: 256 << 20,
            checkpoint_log_bytes: Some(64 << 20),
            checkpoint_interval: Some(Duration::from_secs(60)),
            wal: WalOptions::default(),
            purge_log_at_checkpoint: true,
        }
    }
}

/// One change in a [`WriteBatch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOp {
    /// Store a value under a key.
    Put(Vec<u8>, Vec<u8>),
    /// Remove a key.
    Delete(Vec<u8>),
}

/// Changes applied together at one log index: all of them or none.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteBatch {
    /// The changes, applied in order.
    pub ops: Vec<WriteOp>,
}

const BATCH_FORMAT: u8 = 1;

impl WriteBatch {
    /// An empty batch.
    pub fn new() -> WriteBatch {
        WriteBatch::default()
    }

    /// Adds a put.
    pub fn put(&mut self, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> &mut Self {
        self.ops.push(WriteOp::Put(key.into(), value.into()));
        self
    }

    /// Appends another batch's operations, in order.
    pub fn extend(&mut self, other: WriteBatch) -> &mut Self {
        self.ops.extend(other.ops);
        self
    }

    /// Adds a delete.
    pub fn delete(&mut self, key: impl Into<Vec<u8>>) -> &mut Self {
        self.ops.push(WriteOp::Delete(key.into()));
        self
    }

    /// The log record: `format u8 | count u32 | (tag u8 | key_len u32 | key | [val_len u32 | val])*`.
    pub fn encode(&self) -> Vec<u8> {
        let size: usize = self
            .ops
            .iter()
            .map(|op| match op {
                WriteOp::Put(k, v) => 9 + k.len() + 4 + v.len(),
                WriteOp::Delete(k) => 9 + k.len(),
            })
            .sum();
        let mut out = Vec::with_capacity(5 + size);
        out.push(BATCH_FORMAT);
        out.extend_from_slice(&(self.ops.len() as u32).to_le_bytes());
        for op in &self.ops {
            let (tag, key, val) = match op {
                WriteOp::Put(k, v) => (1u8, k, Some(v)),
                WriteOp::Delete(k) => (2u8, k, None),
            };
            out.push(tag);
            out.extend_from_slice(&(key.len() as u32).to_le_bytes());
            out.extend_from_slice(key);
            if let Some(v) = val {
                out.extend_from_slice(&(v.len() as u32).to_le_bytes());
                out.extend_from_slice(v);
            }
        }
        out
    }

    /// Decodes the log record at `index`.
    pub fn decode(bytes: &[u8], index: u64) -> Result<WriteBatch> {
        let bad = || Error::corrupted(WAL_DIR, format!("log record {index}: malformed write batch"));
        let mut r = crate::page::Reader { buf: bytes };
        if r.u8() != Some(BATCH_FORMAT) {
            return Err(bad());
        }
        let count = r.u32().ok_or_else(bad)? as usize;
        if count > BATCH_OPS_MAX {
            return Err(bad());
        }
        let mut ops = Vec::with_capacity(count);
        for _ in 0..count {
            let tag = r.u8().ok_or_else(bad)?;
            let klen = r.u32().ok_or_else(bad)? as usize;
            let key = r.bytes(klen).ok_or_else(bad)?.to_vec();
            ops.push(match tag {
                1 => {
                    let vlen = r.u32().ok_or_else(bad)? as usize;
                    WriteOp::Put(key, r.bytes(vlen).ok_or_else(bad)?.to_vec())
                }
                2 => WriteOp::Delete(key),
                _ => return Err(bad()),
            });
        }
        if !r.buf.is_empty() {
            return Err(bad());
        }
        Ok(WriteBatch { ops })
    }

    fn validate(&self) -> Result<()> {
        if self.ops.len() > BATCH_OPS_MAX {
            return Err(Error::Invalid(format!("batch of {} operations exceeds {BATCH_OPS_MAX}", self.ops.len())));
        }
        for op in &self.ops {
            match op {
                WriteOp::Put(k, v) => crate::btree::check_sizes(k, Some(v))?,
                WriteOp::Delete(k) => crate::btree::check_sizes(k, None)?,
            }
        }
        Ok(())
    }
}

/// Counters and gauges of a store.
#[derive(Debug, Clone, Default)]
pub struct StoreStats {
    /// The last log index applied to the tree.
    pub applied_index: u64,
    /// The applied index of the newest durable checkpoint.
    pub checkpoint_applied_index: u64,
    /// Checkpoints completed.
    pub checkpoints: u64,
    /// Checkpoints that failed.
    pub checkpoint_failures: u64,
    /// Duration of the last checkpoint, microseconds.
    pub checkpoint_last_micros: u64,
    /// Longest checkpoint, microseconds.
    pub checkpoint_max_micros: u64,
    /// Longest time a checkpoint held the tree's write lock (the longest reader pause),
    /// microseconds.
    pub checkpoint_pause_max_micros: u64,
    /// Pages written by checkpoints.
    pub pages_written: u64,
    /// Dirty pages now.
    pub dirty_pages: u64,
    /// Pages in the data file.
    pub page_count: u64,
    /// Free pages (reusable now or after the next checkpoint).
    pub free_pages: u64,
    /// Log records replayed by the last recovery.
    pub replayed_records: u64,
    /// Log payload bytes replayed by the last recovery.
    pub replayed_bytes: u64,
    /// Time the last recovery spent replaying, microseconds.
    pub replay_micros: u64,
    /// The buffer pool's counters.
    pub pool: PoolStats,
    /// The log's counters.
    pub wal: WalStats,
    /// Bytes in the log's segment files.
    pub wal_bytes: u64,
    /// The reason writes are refused, if they are.
    pub poisoned: Option<String>,
}

#[derive(Default)]
struct Counters {
    checkpoints: AtomicU64,
    checkpoint_failures: AtomicU64,
    checkpoint_last_micros: AtomicU64,
    checkpoint_max_micros: AtomicU64,
    pause_max_micros: AtomicU64,
    pages_written: AtomicU64,
    replayed_records: AtomicU64,
    replayed_bytes: AtomicU64,
    replay_micros: AtomicU64,
}

struct CheckpointState {
    /// The meta slot holding the newest durable checkpoint.
    durable_slot: PageId,
    durable_applied_index: u64,
    wal_bytes_at: u64,
    at: Instant,
}

struct Inner {
    opts: StoreOptions,
    dir: PathBuf,
    pager: Pager,
    tree: RwLock<Tree>,
    wal: Wal,
    /// The last index applied; commits wait here for their turn so that apply follows log order.
    apply_turn: Mutex<u64>,
    apply_cv: Condvar,
    /// Appliers waiting on `apply_cv`, counted under `apply_turn`: with none, the notify
    /// (a futex system call even then) is skipped.
    apply_waiting: AtomicUsize,
    checkpoint: Mutex<CheckpointState>,
    /// `CheckpointState::durable_applied_index`, readable without waiting for a checkpoint
    /// or a copy ([`Store::copy_checkpoint`]) that holds `checkpoint`.
    durable_applied: AtomicU64,
    /// Set while [`Store::copy_checkpoint`] runs: an apply over the dirty budget does not
    /// wait for it to write a checkpoint (the background checkpointer catches up after).
    copying: std::sync::atomic::AtomicBool,
    poisoned: Mutex<Option<String>>,
    counters: Counters,
    /// Set when applying a durable record failed: the tree may be half changed.
    apply_failed: std::sync::atomic::AtomicBool,
    shutdown: Mutex<bool>,
    shutdown_cv: Condvar,
}

/// A durable ordered key-value store: the bottom of Bulwark.
pub struct Store {
    inner: Arc<Inner>,
    checkpointer: Option<JoinHandle<()>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Store {
    /// Opens (creating if needed) the store in `dir` and recovers it: newest valid meta
    /// slot, then the log after its applied index.
    pub fn open(vfs: Arc<dyn Vfs>, dir: &Path, opts: StoreOptions) -> Result<Store> {
        Store::open_with_replay(vfs, dir, opts, &mut |_, index, payload| WriteBatch::decode(payload, index))
    }

    /// Like [`Store::open`], for callers whose log records are not plain write batches (the
    /// transaction layer logs commands that are validated on apply). `replay` turns each
    /// record after the checkpoint into the write batch to apply at its index, reading the
    /// state as of the record before it through the given [`KvRead`]. It must decide exactly
    /// as the caller did when the record was first applied.
    pub fn open_with_replay(
        vfs: Arc<dyn Vfs>,
        dir: &Path,
        opts: StoreOptions,
        replay: &mut ReplayFn<'_>,
    ) -> Result<Store> {
        Store::open_inner(vfs, dir, opts, (replay, u64::MAX))
    }

    /// Like [`Store::open_with_replay`], replaying only the records up to index `upto`: for
    /// a log whose later records may not be committed yet (a replication layer's), which
    /// that layer applies itself (through [`Store::apply`]) once it knows they are.
    pub fn open_with_replay_upto(
        vfs: Arc<dyn Vfs>,
        dir: &Path,
        opts: StoreOptions,
        replay: &mut ReplayFn<'_>,
        upto: u64,
    ) -> Result<Store> {
        Store::open_inner(vfs, dir, opts, (replay, upto))
    }

    fn open_inner(
        vfs: Arc<dyn Vfs>,
        dir: &Path,
        opts: StoreOptions,
        replay: (&mut ReplayFn<'_>, u64),
    ) -> Result<Store> {
        vfs.create_dir_all(dir).map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
        let path = dir.join(DATA_FILE);
        if !vfs.exists(&path) {
            // A new store: the first meta slot is written and synced under a temporary name,
            // then renamed, so a crash leaves either no data file or a valid one.
            let tmp = dir.join(format!("{DATA_FILE}.new"));
            let file = vfs.open(&tmp, true).map_err(|e| Error::io(format!("creating {}", tmp.display()), e))?;
            let meta = Meta { page_count: FIRST_TREE_PAGE, ..Meta::default() };
            file.set_len(0).map_err(|e| Error::io("truncating the new data file", e))?;
            file.write_at(&meta.encode(0)[..], 0).map_err(|e| Error::io("writing the first meta page", e))?;
            file.sync_data().map_err(|e| Error::io("syncing the first meta page", e))?;
            vfs.rename(&tmp, &path).map_err(|e| Error::io("renaming the new data file", e))?;
            vfs.sync_dir(dir).map_err(|e| Error::io(format!("syncing {}", dir.display()), e))?;
        }
        let file = vfs.open(&path, false).map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
        let (meta, slot) = read_meta(file.as_ref())?;
        let pager = Pager { file, pool: BufferPool::new(opts.pool_bytes), epoch_max: AtomicU64::new(meta.epoch) };
        let mut tree = Tree {
            root: meta.root,
            epoch: meta.epoch + 1,
            applied_index: meta.applied_index,
            page_count: meta.page_count,
            ..Tree::default()
        };
        load_freelist(&pager, &meta, &mut tree)?;

        let wal = Wal::open(vfs.clone(), &dir.join(WAL_DIR), meta.applied_index + 1, opts.wal.clone())?;
        if wal.first_index() > meta.applied_index + 1 || wal.next_index() < meta.applied_index + 1 {
            return Err(Error::corrupted(
                WAL_DIR,
                format!(
                    "the log holds records {}..{} but the checkpoint needs every record after {}",
                    wal.first_index(),
                    wal.next_index(),
                    meta.applied_index
                ),
            ));
        }
        let wal_bytes = wal.size_bytes();
        let inner = Inner {
            opts,
            dir: dir.to_path_buf(),
            pager,
            tree: RwLock::new(tree),
            wal,
            apply_turn: Mutex::new(meta.applied_index),
            apply_cv: Condvar::new(),
            apply_waiting: AtomicUsize::new(0),
            checkpoint: Mutex::new(CheckpointState {
                durable_slot: slot,
                durable_applied_index: meta.applied_index,
                wal_bytes_at: wal_bytes,
                at: Instant::now(),
            }),
            durable_applied: AtomicU64::new(meta.applied_index),
            copying: std::sync::atomic::AtomicBool::new(false),
            poisoned: Mutex::new(None),
            counters: Counters::default(),
            apply_failed: std::sync::atomic::AtomicBool::new(false),
            shutdown: Mutex::new(false),
            shutdown_cv: Condvar::new(),
        };
        inner.replay(replay.0, replay.1)?;
        let inner = Arc::new(inner);
        let checkpointer = if inner.opts.checkpoint_interval.is_some() || inner.opts.checkpoint_log_bytes.is_some() {
            let bg = inner.clone();
            Some(
                std::thread::Builder::new()
                    .name("bulwark-checkpoint".into())
                    .spawn(move || bg.checkpoint_loop())
                    .map_err(|e| Error::io("starting the checkpoint thread", e))?,
            )
        } else {
            None
        };
        Ok(Store { inner, checkpointer })
    }

    /// Logs `batch` durably (group commit with concurrent callers), applies it, and returns
    /// its log index. When this returns Ok, the batch survives any crash.
    pub fn commit(&self, batch: &WriteBatch) -> Result<u64> {
        self.inner.check_writable()?;
        batch.validate()?;
        let index = self.inner.wal.append(&batch.encode())?;
        self.inner.apply_in_order(index, batch.clone())?;
        self.inner.checkpoint_if_dirty_over_budget();
        Ok(index)
    }

    /// Applies a batch that the caller has already made durable in [`Store::log`] at
    /// `index`. Batches are applied in index order: this waits for `index - 1`.
    pub fn apply(&self, index: u64, batch: WriteBatch) -> Result<()> {
        self.inner.check_writable()?;
        self.inner.apply_in_order(index, batch)?;
        self.inner.checkpoint_if_dirty_over_budget();
        Ok(())
    }

    /// The value under `key` in the current state.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.inner.check_readable()?;
        let tree = self.inner.read_tree();
        tree.get(&self.inner.pager, key)
    }

    /// The entries with keys in `range`, in key order (descending if `reverse`). The scan
    /// reads in chunks, taking the tree's lock once per chunk, so it never blocks writers
    /// for long; each chunk is consistent, and a key changed between chunks is seen as of
    /// the later chunk.
    pub fn scan(&self, lo: Bound<Vec<u8>>, hi: Bound<Vec<u8>>, reverse: bool) -> Scan<'_> {
        Scan { store: self, lo, hi, reverse, buf: std::collections::VecDeque::new(), done: false }
    }

    /// Writes a checkpoint now. Returns false if there was nothing new to write.
    pub fn checkpoint(&self) -> Result<bool> {
        self.inner.checkpoint()
    }

    /// Hands `sink` the data file as of the newest durable checkpoint (writing one first if
    /// there has been none), in order, in pieces of at most [`COPY_CHUNK_BYTES`], for a
    /// replica to install; returns that checkpoint's applied index and the file's length.
    /// `start` is told both before the first piece (its error ends the copy there).
    /// Checkpoints wait while it is copied, and only checkpoints write to the data file, so
    /// the copy is consistent (its newest meta slot describes a complete tree). Copies
    /// taken between two checkpoints are the same, so a replica that asks again after
    /// installing one is not sent a newer one it does not need.
    pub fn copy_checkpoint(
        &self,
        start: &mut dyn FnMut(u64, u64) -> std::io::Result<()>,
        sink: &mut dyn FnMut(&[u8]) -> std::io::Result<()>,
    ) -> Result<(u64, u64)> {
        let mut state = lock(&self.inner.checkpoint);
        if state.durable_applied_index == 0 {
            self.inner.checkpoint_locked(&mut state)?;
        }
        let _copying = Copying::start(&self.inner.copying);
        let file = &self.inner.pager.file;
        let len = file.len().map_err(|e| Error::io(format!("sizing {DATA_FILE}"), e))?;
        start(state.durable_applied_index, len)
            .map_err(|e| Error::io(format!("starting the copy of {DATA_FILE}"), e))?;
        let mut buf = vec![0u8; COPY_CHUNK_BYTES.min(len as usize)];
        let mut at = 0u64;
        while at < len {
            let n = (len - at).min(COPY_CHUNK_BYTES as u64) as usize;
            file.read_exact_at(&mut buf[..n], at)
                .map_err(|e| Error::io(format!("copying {DATA_FILE} at byte {at}"), e))?;
            sink(&buf[..n]).map_err(|e| Error::io(format!("writing the copy of {DATA_FILE} at byte {at}"), e))?;
            at += n as u64;
        }
        Ok((state.durable_applied_index, len))
    }

    /// The write-ahead log.
    pub fn log(&self) -> &Wal {
        &self.inner.wal
    }

    /// The last log index applied.
    pub fn applied_index(&self) -> u64 {
        self.inner.read_tree().applied_index
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// Counters and gauges.
    pub fn stats(&self) -> StoreStats {
        let c = &self.inner.counters;
        let (applied_index, dirty_pages, page_count, free_pages) = {
            let t = self.inner.read_tree();
            (t.applied_index, t.dirty.len() as u64, t.page_count, (t.reusable.len() + t.pending.len()) as u64)
        };
        StoreStats {
            applied_index,
            checkpoint_applied_index: self.inner.durable_applied.load(Ordering::Acquire),
            checkpoints: c.checkpoints.load(Ordering::Relaxed),
            checkpoint_failures: c.checkpoint_failures.load(Ordering::Relaxed),
            checkpoint_last_micros: c.checkpoint_last_micros.load(Ordering::Relaxed),
            checkpoint_max_micros: c.checkpoint_max_micros.load(Ordering::Relaxed),
            checkpoint_pause_max_micros: c.pause_max_micros.load(Ordering::Relaxed),
            pages_written: c.pages_written.load(Ordering::Relaxed),
            dirty_pages,
            page_count,
            free_pages,
            replayed_records: c.replayed_records.load(Ordering::Relaxed),
            replayed_bytes: c.replayed_bytes.load(Ordering::Relaxed),
            replay_micros: c.replay_micros.load(Ordering::Relaxed),
            pool: self.inner.pager.pool.stats(),
            wal: self.inner.wal.stats(),
            wal_bytes: self.inner.wal.size_bytes(),
            poisoned: lock(&self.inner.poisoned).clone().or_else(|| self.inner.wal.poisoned()),
        }
    }

    /// Checkpoints and stops the background checkpointer.
    pub fn close(mut self) -> Result<()> {
        self.stop_checkpointer();
        if self.inner.check_writable().is_ok() {
            self.inner.checkpoint()?;
        }
        Ok(())
    }

    fn stop_checkpointer(&mut self) {
        *lock(&self.inner.shutdown) = true;
        self.inner.shutdown_cv.notify_all();
        if let Some(h) = self.checkpointer.take() {
            let _ = h.join();
        }
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        self.stop_checkpointer();
    }
}

/// The applied index of a data file's newest valid meta slot, read from a copy of its
/// first bytes (at least its two meta pages) and the file's length: to check a
/// checkpoint copy ([`Store::copy_checkpoint`]) received from another node.
pub fn image_applied_index(data: &[u8], file_len: u64) -> Result<u64> {
    let mut best: Option<Meta> = None;
    let mut errors = Vec::new();
    for slot in 0..2u64 {
        let at = slot as usize * PAGE_BYTES;
        let Some(bytes) = data.get(at..at + PAGE_BYTES) else {
            errors.push(format!("meta page {slot}: missing"));
            continue;
        };
        let mut buf = Box::new([0u8; PAGE_BYTES]);
        buf.copy_from_slice(bytes);
        match Meta::decode(&buf, slot) {
            Ok(m) if best.as_ref().is_none_or(|b| m.epoch > b.epoch) => best = Some(m),
            Ok(_) => {}
            Err(e) => errors.push(e.to_string()),
        }
    }
    match best {
        Some(m) if m.page_count.saturating_mul(PAGE_BYTES as u64) <= file_len => Ok(m.applied_index),
        Some(m) => Err(Error::corrupted(
            DATA_FILE,
            format!("the file holds {file_len} bytes but its meta names {} pages", m.page_count),
        )),
        None => Err(Error::corrupted(DATA_FILE, format!("no valid meta page: {}", errors.join("; ")))),
    }
}

/// Reads both meta slots; returns the newest valid one and its slot.
fn read_meta(file: &dyn VfsFile) -> Result<(Meta, PageId)> {
    let mut best: Option<(Meta, PageId)> = None;
    let mut errors = Vec::new();
    for slot in 0..2 {
        let mut buf = Box::new([0u8; PAGE_BYTES]);
        let meta = match file.read_exact_at(&mut buf[..], slot * PAGE_BYTES as u64) {
            Ok(()) => Meta::decode(&buf, slot),
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                Err(Error::corrupted(DATA_FILE, format!("meta page {slot}: missing")))
            }
            Err(e) => return Err(Error::io(format!("reading meta page {slot}"), e)),
        };
        match meta {
            Ok(m) if best.is_none_or(|(b, _)| m.epoch > b.epoch) => best = Some((m, slot)),
            Ok(_) => {}
            Err(e) => errors.push(e.to_string()),
        }
    }
    best.ok_or_else(|| Error::corrupted(DATA_FILE, format!("no valid meta page: {}", errors.join("; "))))
}

fn load_freelist(pager: &Pager, meta: &Meta, tree: &mut Tree) -> Result<()> {
    let mut next = meta.freelist_head;
    let mut seen = 0u64;
    while next != 0 {
        if next < FIRST_TREE_PAGE || next >= meta.page_count || tree.freelist_pages.len() as u64 > meta.page_count {
            return Err(Error::corrupted(DATA_FILE, format!("free list: bad page number {next}")));
        }
        tree.freelist_pages.push(next);
        let (after, entries) = pager.read_freelist(next)?;
        for (page, _) in entries {
            if page < FIRST_TREE_PAGE || page >= meta.page_count {
                return Err(Error::corrupted(DATA_FILE, format!("free list page {next}: entry {page} out of range")));
            }
            tree.reusable.insert(page);
            seen += 1;
        }
        next = after;
    }
    if seen != meta.freelist_len {
        return Err(Error::corrupted(
            DATA_FILE,
            format!("free list holds {seen} entries, the meta page says {}", meta.freelist_len),
        ));
    }
    Ok(())
}

fn apply_batch(tree: &mut Tree, pager: &Pager, index: u64, batch: WriteBatch) -> Result<()> {
    assert_eq!(index, tree.applied_index + 1, "log records are applied in order");
    for op in batch.ops {
        match op {
            WriteOp::Put(k, v) => tree.put_owned(pager, k, v)?,
            WriteOp::Delete(k) => {
                tree.delete(pager, &k)?;
            }
        }
    }
    tree.applied_index = index;
    Ok(())
}

impl Inner {
    fn read_tree(&self) -> RwLockReadGuard<'_, Tree> {
        self.tree.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write_tree(&self) -> RwLockWriteGuard<'_, Tree> {
        self.tree.write().unwrap_or_else(|e| e.into_inner())
    }

    /// After a failed apply the tree in memory may be half changed: refuse reads too.
    fn check_readable(&self) -> Result<()> {
        if self.apply_failed.load(Ordering::Relaxed) {
            let reason = lock(&self.poisoned).clone().unwrap_or_default();
            return Err(Error::Poisoned(reason));
        }
        Ok(())
    }

    fn check_writable(&self) -> Result<()> {
        if let Some(reason) = lock(&self.poisoned).clone() {
            return Err(Error::Poisoned(reason));
        }
        if let Some(reason) = self.wal.poisoned() {
            return Err(Error::Poisoned(reason));
        }
        Ok(())
    }

    fn poison(&self, reason: String) {
        let mut p = lock(&self.poisoned);
        if p.is_none() {
            *p = Some(reason);
        }
        drop(p);
        self.apply_cv.notify_all();
    }

    /// Replays the log after the checkpoint's applied index.
    fn replay(&self, decide: &mut ReplayFn<'_>, upto: u64) -> Result<()> {
        let start = Instant::now();
        let (mut records, mut bytes) = (0u64, 0u64);
        let mut tree = self.write_tree();
        'replay: loop {
            let from = tree.applied_index + 1;
            if from >= self.wal.next_index() || from > upto {
                break;
            }
            for (index, payload) in self.wal.read(from, 8 << 20)? {
                if index > upto {
                    break 'replay;
                }
                let batch = decide(&TreeView { tree: &tree, pager: &self.pager }, index, &payload)?;
                apply_batch(&mut tree, &self.pager, index, batch)?;
                records += 1;
                bytes += payload.len() as u64;
            }
        }
        *lock(&self.apply_turn) = tree.applied_index;
        let c = &self.counters;
        c.replayed_records.store(records, Ordering::Relaxed);
        c.replayed_bytes.store(bytes, Ordering::Relaxed);
        c.replay_micros.store(start.elapsed().as_micros() as u64, Ordering::Relaxed);
        Ok(())
    }

    fn apply_in_order(&self, index: u64, batch: WriteBatch) -> Result<()> {
        let mut turn = lock(&self.apply_turn);
        while *turn + 1 != index {
            assert!(*turn < index, "log index {index} applied twice");
            self.check_writable()?;
            self.apply_waiting.fetch_add(1, Ordering::Relaxed);
            turn = self.apply_cv.wait(turn).unwrap_or_else(|e| e.into_inner());
            self.apply_waiting.fetch_sub(1, Ordering::Relaxed);
        }
        let result = {
            let mut tree = self.write_tree();
            apply_batch(&mut tree, &self.pager, index, batch)
        };
        if let Err(e) = &result {
            self.poison(format!("applying log record {index} failed: {e}"));
            self.apply_failed.store(true, Ordering::Relaxed);
        }
        *turn = index;
        // Read under the lock: a waiter counts itself under it before it waits.
        let wake = self.apply_waiting.load(Ordering::Relaxed) > 0;
        drop(turn);
        if wake {
            self.apply_cv.notify_all();
        }
        result
    }

    /// Runs a checkpoint if dirty pages passed their budget. Its failure is not the
    /// caller's: the batch that triggered it is already durable and applied, so the error
    /// is only counted (`checkpoint_failures`) and the previous checkpoint stays in force.
    fn checkpoint_if_dirty_over_budget(&self) {
        if self.copying.load(Ordering::Acquire) {
            return;
        }
        let dirty_bytes = self.read_tree().dirty.len() * PAGE_BYTES;
        if dirty_bytes > self.opts.dirty_bytes_max {
            let _ = self.checkpoint();
        }
    }

    fn checkpoint(&self) -> Result<bool> {
        let mut state = lock(&self.checkpoint); // one checkpoint at a time
        self.checkpoint_locked(&mut state)
    }

    fn checkpoint_locked(&self, state: &mut CheckpointState) -> Result<bool> {
        self.check_writable()?;
        let start = Instant::now();
        let plan = {
            let mut tree = self.write_tree();
            if tree.dirty.is_empty() && tree.applied_index == state.durable_applied_index && tree.pending.is_empty() {
                state.at = Instant::now();
                return Ok(false);
            }
            tree.begin_checkpoint()
        };
        self.record_pause(start);
        let slot = 1 - state.durable_slot;
        let written = self.write_checkpoint(&plan, slot);
        if written.is_ok() {
            // Into the pool before they leave the in-flight set, so a reader always finds
            // the newest content of a page number, and without the tree's lock, so readers
            // do not wait for it. A page freed meanwhile may enter the pool too; the tree no
            // longer references it, and its number is reused only after the next checkpoint,
            // which puts the new content here first.
            for (&id, page) in plan.pages.iter() {
                self.pager.pool.insert(id, page.clone());
            }
        }
        let pause = Instant::now();
        self.write_tree().finish_checkpoint(&plan, written.is_ok());
        self.record_pause(pause);
        let c = &self.counters;
        match written {
            Ok(()) => {
                state.durable_slot = slot;
                state.durable_applied_index = plan.meta.applied_index;
                self.durable_applied.store(plan.meta.applied_index, Ordering::Release);
                state.at = Instant::now();
                let micros = start.elapsed().as_micros() as u64;
                c.checkpoints.fetch_add(1, Ordering::Relaxed);
                c.checkpoint_last_micros.store(micros, Ordering::Relaxed);
                c.checkpoint_max_micros.fetch_max(micros, Ordering::Relaxed);
                c.pages_written.fetch_add((plan.pages.len() + plan.chain.len()) as u64, Ordering::Relaxed);
                // The log before the checkpoint is no longer needed for recovery. The
                // record at the checkpoint's own index is kept: a replication layer reads
                // from it what it needs to know about the last record it no longer has
                // (Raft's last purged log id).
                if self.opts.purge_log_at_checkpoint {
                    self.wal.purge_before(plan.meta.applied_index)?;
                }
                state.wal_bytes_at = self.wal.size_bytes();
                Ok(true)
            }
            Err(e) => {
                c.checkpoint_failures.fetch_add(1, Ordering::Relaxed);
                Err(e)
            }
        }
    }

    fn record_pause(&self, since: Instant) {
        let micros = since.elapsed().as_micros() as u64;
        self.counters.pause_max_micros.fetch_max(micros, Ordering::Relaxed);
    }

    /// Writes the plan's pages and free list, fsyncs, writes the meta slot, fsyncs. A failed
    /// fsync fences the store.
    fn write_checkpoint(&self, plan: &CheckpointPlan, slot: PageId) -> Result<()> {
        let file = &self.pager.file;
        let epoch = plan.meta.epoch;
        let mut ids: Vec<PageId> = plan.pages.keys().copied().collect();
        ids.sort_unstable();
        // Consecutive pages go out in one write.
        let mut run: Vec<u8> = Vec::new();
        let mut run_start = 0;
        let flush = |start: PageId, run: &mut Vec<u8>| -> Result<()> {
            if !run.is_empty() {
                file.write_at(run, start * PAGE_BYTES as u64)
                    .map_err(|e| Error::io(format!("writing {DATA_FILE} pages from {start}"), e))?;
                run.clear();
            }
            Ok(())
        };
        for &id in &ids {
            if !run.is_empty() && id != run_start + (run.len() / PAGE_BYTES) as u64 {
                flush(run_start, &mut run)?;
            }
            if run.is_empty() {
                run_start = id;
            }
            run.extend_from_slice(&plan.pages[&id].encode(id, epoch)[..]);
            if run.len() >= 1 << 20 {
                flush(run_start, &mut run)?;
            }
        }
        flush(run_start, &mut run)?;
        let mut entries = plan.freelist.chunks(crate::page::FREELIST_ENTRIES_PER_PAGE);
        for (i, &id) in plan.chain.iter().enumerate() {
            let next = plan.chain.get(i + 1).copied().unwrap_or(0);
            let page = encode_freelist(id, epoch, next, entries.next().unwrap_or(&[]));
            file.write_at(&page[..], id * PAGE_BYTES as u64)
                .map_err(|e| Error::io(format!("writing {DATA_FILE} free-list page {id}"), e))?;
        }
        self.sync_or_poison("syncing checkpoint pages")?;
        // Any failure from here on fences the store: a meta page that reached the page cache
        // despite an error could otherwise be made durable by a later checkpoint's fsync,
        // after that checkpoint has changed the pages it references.
        self.pager.epoch_max.fetch_max(epoch, Ordering::Relaxed);
        if let Err(e) = file.write_at(&plan.meta.encode(slot)[..], slot * PAGE_BYTES as u64) {
            let reason = format!("writing {DATA_FILE} meta page {slot} failed: {e}");
            self.poison(reason.clone());
            return Err(Error::Poisoned(reason));
        }
        self.sync_or_poison("syncing the meta page")
    }

    fn sync_or_poison(&self, what: &str) -> Result<()> {
        self.pager.file.sync_data().map_err(|e| {
            let reason = format!("{what} of {DATA_FILE} failed: {e}");
            self.poison(reason.clone());
            Error::Poisoned(reason)
        })
    }

    fn checkpoint_loop(&self) {
        let mut stop = lock(&self.shutdown);
        loop {
            stop = self.shutdown_cv.wait_timeout(stop, CHECKPOINT_POLL).unwrap_or_else(|e| e.into_inner()).0;
            if *stop {
                return;
            }
            let due = {
                let st = lock(&self.checkpoint);
                let by_log = self
                    .opts
                    .checkpoint_log_bytes
                    .is_some_and(|max| self.wal.size_bytes().saturating_sub(st.wal_bytes_at) >= max);
                let by_time = self.opts.checkpoint_interval.is_some_and(|every| st.at.elapsed() >= every);
                by_log || by_time
            };
            if due && self.check_writable().is_ok() {
                drop(stop);
                if self.checkpoint().is_err() {
                    // Counted in checkpoint_failures; the previous checkpoint stays in force.
                    // Back off until the next trigger instead of spinning.
                    lock(&self.checkpoint).at = Instant::now();
                }
                stop = lock(&self.shutdown);
            }
        }
    }
}

/// Marks a [`Store::copy_checkpoint`] in progress while it lives.
struct Copying<'a>(&'a std::sync::atomic::AtomicBool);

impl<'a> Copying<'a> {
    fn start(flag: &'a std::sync::atomic::AtomicBool) -> Copying<'a> {
        flag.store(true, Ordering::Release);
        Copying(flag)
    }
}

impl Drop for Copying<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

/// Decides, during recovery, the write batch for a log record: `(state, index, payload)`.
pub type ReplayFn<'a> = dyn FnMut(&dyn KvRead, u64, &[u8]) -> Result<WriteBatch> + 'a;

/// Reads of the current state, shared by a live [`Store`] and the state under replay.
pub trait KvRead {
    /// The value under `key`.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>>;
    /// Up to `limit` entries in `(lo, hi)`, ascending or descending.
    fn scan_range(
        &self,
        lo: Bound<&[u8]>,
        hi: Bound<&[u8]>,
        reverse: bool,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>>;
    /// The value of the first entry at or after `lo` and inside `hi`: what
    /// `scan_range(Included(lo), hi, false, 1)` finds, without its key or its vectors (the
    /// point read of an MVCC version).
    fn first_value(&self, lo: &[u8], hi: Bound<&[u8]>) -> Result<Option<Vec<u8>>> {
        Ok(self.scan_range(Bound::Included(lo), hi, false, 1)?.pop().map(|(_, v)| v))
    }
}

struct TreeView<'a> {
    tree: &'a Tree,
    pager: &'a Pager,
}

impl KvRead for TreeView<'_> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.tree.get(self.pager, key)
    }
    fn scan_range(
        &self,
        lo: Bound<&[u8]>,
        hi: Bound<&[u8]>,
        reverse: bool,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        self.tree.scan(self.pager, lo, hi, reverse, limit)
    }
    fn first_value(&self, lo: &[u8], hi: Bound<&[u8]>) -> Result<Option<Vec<u8>>> {
        self.tree.first_value(self.pager, lo, hi)
    }
}

impl KvRead for Store {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Store::get(self, key)
    }
    /// One consistent read under the tree's lock (so keep `limit` modest).
    fn scan_range(
        &self,
        lo: Bound<&[u8]>,
        hi: Bound<&[u8]>,
        reverse: bool,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        self.inner.check_readable()?;
        self.inner.read_tree().scan(&self.inner.pager, lo, hi, reverse, limit)
    }
    fn first_value(&self, lo: &[u8], hi: Bound<&[u8]>) -> Result<Option<Vec<u8>>> {
        self.inner.check_readable()?;
        self.inner.read_tree().first_value(&self.inner.pager, lo, hi)
    }
}

/// An iterator over a key range (see [`Store::scan`]).
pub struct Scan<'a> {
    store: &'a Store,
    lo: Bound<Vec<u8>>,
    hi: Bound<Vec<u8>>,
    reverse: bool,
    buf: std::collections::VecDeque<(Vec<u8>, Vec<u8>)>,
    done: bool,
}

impl Iterator for Scan<'_> {
    type Item = Result<(Vec<u8>, Vec<u8>)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.buf.is_empty() && !self.done {
            if let Err(e) = self.store.inner.check_readable() {
                self.done = true;
                return Some(Err(e));
            }
            let chunk = {
                let tree = self.store.inner.read_tree();
                tree.scan(&self.store.inner.pager, as_ref(&self.lo), as_ref(&self.hi), self.reverse, SCAN_CHUNK_ENTRIES)
            };
            match chunk {
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
                Ok(chunk) => {
                    self.done = chunk.len() < SCAN_CHUNK_ENTRIES;
                    if let Some((last, _)) = chunk.last() {
                        let next = Bound::Excluded(last.clone());
                        if self.reverse {
                            self.hi = next;
                        } else {
                            self.lo = next;
                        }
                    }
                    self.buf.extend(chunk);
                }
            }
        }
        self.buf.pop_front().map(Ok)
    }
}

fn as_ref(b: &Bound<Vec<u8>>) -> Bound<&[u8]> {
    match b {
        Bound::Included(v) => Bound::Included(v.as_slice()),
        Bound::Excluded(v) => Bound::Excluded(v.as_slice()),
        Bound::Unbounded => Bound::Unbounded,
    }
}

/// Reads every page reachable from the newest checkpoint and checks it (used by tests and
/// `bulwark check`): checksums, ordering inside pages and against separators.
pub fn check_tree(store: &Store) -> Result<u64> {
    let tree = store.inner.read_tree();
    let pager = &store.inner.pager;
    let mut pages = 0;
    if tree.root != 0 {
        check_node(&tree, pager, tree.root, None, None, &mut pages)?;
    }
    Ok(pages)
}

fn check_node(
    tree: &Tree,
    pager: &Pager,
    id: PageId,
    lo: Option<&[u8]>,
    hi: Option<&[u8]>,
    pages: &mut u64,
) -> Result<()> {
    *pages += 1;
    let bad = |what: String| Error::corrupted(DATA_FILE, format!("page {id}: {what}"));
    if *pages > tree.page_count {
        return Err(bad("more tree pages reachable than the file holds (a cycle of child pointers?)".into()));
    }
    let page = tree.load(pager, id)?;
    let keys: Vec<&[u8]> = match &*page {
        Page::Leaf(entries) => entries.iter().map(|(k, _)| k.as_slice()).collect(),
        Page::Branch { keys, .. } => keys.iter().map(|k| k.as_slice()).collect(),
        Page::Overflow(_) => return Err(bad("overflow page where a node belongs".into())),
    };
    for k in &keys {
        if lo.is_some_and(|l| *k < l) || hi.is_some_and(|h| *k >= h) {
            return Err(bad("key outside the range its parent gives".into()));
        }
    }
    if keys.windows(2).any(|w| w[0] >= w[1]) {
        return Err(bad("keys out of order".into()));
    }
    match &*page {
        Page::Branch { keys, children } => {
            for (i, &child) in children.iter().enumerate() {
                let clo = if i == 0 { lo } else { Some(keys[i - 1].as_slice()) };
                let chi = if i == keys.len() { hi } else { Some(keys[i].as_slice()) };
                check_node(tree, pager, child, clo, chi, pages)?;
            }
        }
        Page::Leaf(entries) => {
            for (_, v) in entries {
                tree.read_value(pager, v)?;
            }
        }
        Page::Overflow(_) => {}
    }
    Ok(())
}
