//! The write-ahead log: Bulwark's one write path.
//!
//! Every change Bulwark makes is first appended here as a record, and only acknowledged once
//! that record is durable. The store replays the log after a crash, and Raft will use the
//! same log for its entries. A record is an opaque byte string (a payload) with a `u64`
//! index; indices are consecutive, with no gaps, starting from the index the log was opened
//! with.
//!
//! ```text
//!   append ──► queue ──► flusher: ONE write_at + ONE sync_data ──► durable, waiters woken
//!              (indices          (one group-commit write, never
//!               assigned here)    straddling two segment files)
//! ```
//!
//! # Segments
//!
//! The log is a directory of segment files. Each holds a run of consecutive records and is
//! named by the index of its first record, zero-padded to 20 digits so that the names sort
//! like the indices: `00000000000000000001.wal`, `00000000000000004097.wal`, ... The newest
//! segment is the active one; appends go to its end. Before a group-commit write that would
//! push the active segment past `segment_bytes_max`, the log starts a new segment (a write
//! larger than that on its own goes alone into a fresh segment). Old segments are deleted
//! whole by [`Wal::purge_before`] once the store has checkpointed past them.
//!
//! # File format
//!
//! All integers are little-endian. A segment file is a 32-byte header followed by record
//! frames, back to back, with nothing between them, and after the last one nothing or only
//! zeros (see "Zeroing ahead" below):
//!
//! ```text
//!   segment header (32 bytes)
//!   offset  size  field
//!        0     8  magic        b"BLWKWAL\0"
//!        8     4  version      u32 = 1
//!       12     4  reserved     u32 = 0
//!       16     8  first_index  u64, the index of the segment's first record (= file name)
//!       24     4  reserved     u32 = 0
//!       28     4  crc          u32, CRC-32C (Castagnoli) of bytes 0..28
//!
//!   record frame (24 bytes + payload)
//!   offset  size  field
//!        0     4  len          u32, payload length, at most WAL_RECORD_BYTES_MAX (640 MiB)
//!        4     4  crc          u32, CRC-32C of: payload ‖ bytes 0..4 ‖ bytes 8..24
//!        8     8  index        u64, the record's index
//!       16     8  batch_first  u64, index of the first record of the same group-commit write
//!       24   len  payload
//! ```
//!
//! The frame checksum covers every byte of the frame except itself. It is computed over the
//! payload first and then the header fields (`len`, then `index` and `batch_first`, exactly
//! as stored), so that appenders can checksum their payloads in parallel and the flusher
//! only extends that checksum by 20 bytes once it knows `index` and `batch_first`.
//!
//! Within a segment, index `i` follows index `i - 1`, and `batch_first` is either the
//! record's own index (it starts a group-commit write) or the `batch_first` of the record
//! before it (it continues one). The first record of a segment always starts a write, since
//! a write never straddles segments. Across segments, each segment's `first_index` is one
//! past the last index of the segment before it.
//!
//! A new segment is made durable before any record goes into it: write the header,
//! `sync_data`, then `sync_dir` on the log directory.
//!
//! # Group commit
//!
//! An `fsync` costs about as much for one record as for a thousand, so appenders share
//! them. An appender checksums its payloads, then under the log's mutex takes the next
//! indices and puts its frames at the back of a queue; queue order is index order. If no
//! one is flushing, it becomes the flusher: it takes frames from the front of the queue (up
//! to `batch_bytes_max`, but always at least one append), stamps `index`, `batch_first` and
//! the checksum, writes them with one `write_at` and makes them durable with one
//! `sync_data`, all without holding the mutex, so that more appenders can queue meanwhile.
//! Then it marks the records durable and wakes every waiter (a `Condvar`, no spinning).
//! An appender whose records were flushed by someone else returns as soon as it wakes; one
//! whose records are still queued may become the next flusher. The queue holds at most
//! `queue_bytes_max` bytes of frames; appenders beyond that wait for room.
//!
//! Failures:
//!
//! - A failed `sync_data` poisons the log. After a failed fsync the kernel may have dropped
//!   the dirty pages and marked them clean, so a retry would "succeed" and prove nothing
//!   (see the [`vfs`](crate::vfs) simulator). The batch and everything queued behind it
//!   fail, and every later write returns [`Error::Poisoned`] naming the file and the OS
//!   error. Restarting the process runs recovery from what is really on disk.
//! - A failed `write_at` (ENOSPC above all) happens before anything was acknowledged: the
//!   batch and every append queued behind it (they have later indices) fail, the segment is
//!   cut back to its durable end (`set_len`, then `sync_data`), and the next index goes back
//!   to one past the last durable record, so indices stay gapless. The log stays usable:
//!   once space returns, appends work again. If the rollback itself fails, the log is
//!   poisoned.
//!
//! # Zeroing ahead
//!
//! An `fdatasync` after a write that grows a file must also write the file's inode: a
//! second device write that each commit waits for. So a write that ends past the part of the
//! file already zeroed also writes [`WalOptions::preallocate_bytes`] (1 MiB) of zeros after
//! its frames, in the same `write_at`, never past `segment_bytes_max`; the commits after it
//! overwrite zeros and the file keeps its length. The zeros are best effort: if the disk
//! has room for the frames but not for them, the frames are written alone. Recovery reads a
//! run of zeros that reaches the end of a file as the end of its records.
//!
//! # Recovery: torn tail or corruption
//!
//! [`Wal::open`] reads every segment in index order and checks every header and frame:
//! length bound, checksum, index, `batch_first`, and that segments neither overlap nor leave
//! a gap. A bad header or frame in any segment but the newest is corruption
//! ([`Error::Corrupted`] naming the file and byte offset), unless everything from it to the
//! end of the file is zero: the zeroed space after the segment's last write. (A zeroed-out
//! record there leaves a gap before the next segment, which is reported.) In the newest
//! segment, zeros to the end are likewise the end of the records. Any other bad frame at
//! offset `X` of the newest segment is either a torn tail, left by a crash in the middle of the final write,
//! or a damaged record that had been made durable. The rule that tells them apart:
//!
//! > The flusher starts a write only after the previous write's fsync succeeded. So after a
//! > crash, only the final group-commit write can be incomplete; every write before it is
//! > whole.
//!
//! Recovery therefore scans the rest of the segment, at every byte offset after `X`, for any
//! frame that checks out (plausible length, index within `[expected, expected + 2^20)`,
//! checksum good) and has `batch_first > expected`, where `expected` is the index the bad
//! record should have had. Such a frame belongs to a later write, which proves that the bad
//! record's write had been fsynced: the record was durable and is now damaged, and open
//! fails with [`Error::Corrupted`] naming the file and offset `X`. If there is none, the bad
//! bytes are the torn final write: recovery cuts the file at `X` (`set_len`, `sync_data`)
//! and carries on. Those records were never acknowledged, since their fsync never returned.
//!
//! A newest segment whose header is torn and which holds nothing else is what a crash while
//! creating it leaves behind; recovery rewrites its header. If the log holds no record at
//! all, it is restarted at the `first_index` the caller passes.
//!
//! # What it leaves out
//!
//! - Damage to the final group-commit write cannot be told from a torn tail: a bit flip in
//!   a record of the last write before a crash drops that record and the ones after it,
//!   though they were acknowledged. Replicas (Raft) repair that; a single node cannot.
//! - The scan for a later write could be fooled by a payload that itself contains a valid
//!   frame of this log (a log stored inside the log): open would then report corruption
//!   where there is only a torn tail. It never drops data that way; it refuses to open.
//! - No compression, no encryption, no direct I/O. Segment files are zeroed ahead of their
//!   records, not created at full size or recycled.
//! - No reader-side caching: every [`Wal::read`] reads the files (the OS page cache helps).
//! - One process owns the directory; there is no lock file.

use crate::error::{Error, Result};
use crate::vfs::{Vfs, VfsFile};
use std::collections::VecDeque;
use std::io;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError, RwLock};
use std::thread::Thread;
use std::time::Instant;

/// The largest payload one record may have, in bytes. Bigger ones are [`Error::Invalid`].
/// A transaction commits as one record, so this bounds the largest transaction (a bulk load
/// such as `pgbench -i -s 10` writes ~150 MB in one); it also bounds what a corrupt length
/// field can make recovery allocate before the checksum rejects the frame.
pub const WAL_RECORD_BYTES_MAX: usize = 640 << 20;

/// The most frame bytes (headers plus payloads) one [`Wal::append_batch`] call may add.
pub const WAL_APPEND_BATCH_BYTES_MAX: usize = WAL_RECORD_BYTES_MAX + (64 << 20);

/// The size of a segment file's header, in bytes.
pub const WAL_SEGMENT_HEADER_BYTES: usize = 32;

/// The size of a record frame's header (the bytes before the payload).
pub const WAL_FRAME_HEADER_BYTES: usize = 24;

/// The first 8 bytes of every segment file.
pub const WAL_MAGIC: [u8; 8] = *b"BLWKWAL\0";

/// The segment format version this code writes and reads.
pub const WAL_FORMAT_VERSION: u32 = 1;

/// The default of [`WalOptions::preallocate_bytes`]: how far ahead of its records a segment
/// file is kept zero-filled, in bytes. A write that ends past the zeroed part also writes
/// up to this many zeros after itself, in the same `write_at`. An fdatasync after a write
/// inside the file's length only flushes data blocks; one after a write that grows the file
/// must also write the inode, a second device write each commit waits for (about 40 µs of a
/// 140 µs fdatasync on ext4 here). Zeroing ahead pays that once per this many bytes instead
/// of once per commit.
pub const WAL_PREALLOCATE_BYTES: u64 = 1 << 20;

/// How far past the expected index the torn-tail scan accepts a frame's index.
const TORN_TAIL_INDEX_WINDOW: u64 = 1 << 20;

/// The file name of the segment whose first record has index `first_index`.
pub fn segment_file_name(first_index: u64) -> String {
    format!("{first_index:020}.wal")
}

/// Tuning knobs of a [`Wal`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalOptions {
    /// Start a new segment before a write that would make the active one larger than this
    /// many bytes. Default 64 MiB.
    pub segment_bytes_max: u64,
    /// The most frame bytes one group-commit write takes from the queue (at least one
    /// append is always taken). Default 4 MiB.
    pub batch_bytes_max: usize,
    /// The most frame bytes waiting in the queue; appenders beyond it wait for room (an
    /// append into an empty queue is always admitted). Default 64 MiB.
    pub queue_bytes_max: usize,
    /// Zeros written after a write that ends past the file's zeroed part (never past
    /// `segment_bytes_max`), so that the commits after it do not grow the file. Default
    /// [`WAL_PREALLOCATE_BYTES`]; 0 turns it off. Best effort: if the disk has room for the
    /// records but not for the zeros, the records are written alone.
    pub preallocate_bytes: u64,
}

impl Default for WalOptions {
    fn default() -> WalOptions {
        WalOptions {
            segment_bytes_max: 64 << 20,
            batch_bytes_max: 4 << 20,
            queue_bytes_max: 64 << 20,
            preallocate_bytes: WAL_PREALLOCATE_BYTES,
        }
    }
}

impl WalOptions {
    fn validate(&self) -> Result<()> {
        if self.segment_bytes_max <= WAL_SEGMENT_HEADER_BYTES as u64 {
            return Err(Error::Invalid(format!(
                "segment_bytes_max {} must exceed the {WAL_SEGMENT_HEADER_BYTES}-byte header",
                self.segment_bytes_max
            )));
        }
        if self.batch_bytes_max == 0 || self.queue_bytes_max == 0 {
            return Err(Error::Invalid("batch_bytes_max and queue_bytes_max must be positive".into()));
        }
        Ok(())
    }
}

/// Counters of a [`Wal`] since it was opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WalStats {
    /// Records made durable.
    pub appends: u64,
    /// Group-commit writes made durable.
    pub batches: u64,
    /// `sync_data` calls on segment files (group-commit writes and new segment headers).
    pub fsyncs: u64,
    /// Time spent in those calls, in nanoseconds.
    pub fsync_nanos_total: u64,
    /// The longest of those calls, in nanoseconds.
    pub fsync_nanos_max: u64,
    /// Bytes written to segment files: new segment headers and group-commit writes.
    pub bytes_written: u64,
}

/// The write-ahead log. Shared by many threads through `&Wal` or `Arc<Wal>`.
///
/// Lock order: `files` before `state`. The flusher takes only `state`, and never holds it
/// during I/O.
pub struct Wal {
    vfs: Arc<dyn Vfs>,
    dir: PathBuf,
    opts: WalOptions,
    state: Mutex<State>,
    /// Signalled whenever a flush ends, the queue shrinks, or an exclusive operation ends.
    changed: Condvar,
    /// Held shared by reads during their I/O and exclusively by `truncate_after` and
    /// `purge_before`, which shrink and delete files under them.
    files: RwLock<()>,
}

/// Everything behind the mutex.
struct State {
    /// Oldest first; never empty. The last one is the active segment.
    segments: Vec<Segment>,
    /// The index the next append gets (counts queued appends).
    next_index: u64,
    /// One past the last durable record.
    durable_next: u64,
    /// Appends waiting for a flusher, in index order.
    queue: VecDeque<Entry>,
    /// Frame bytes in `queue`.
    queue_bytes: usize,
    /// True while a flusher does its I/O.
    flushing: bool,
    /// True while `truncate_after` waits for the log to go idle: appenders hold back.
    exclusive: bool,
    /// Why the log refuses writes, once an fsync (or a rollback) failed.
    poisoned: Option<String>,
    /// Threads waiting on `changed` now. Notifying with none waiting is skipped: a
    /// `notify_all` is a futex system call even then, and a flush makes two.
    waiting: usize,
    stats: WalStats,
}

/// One segment file and the offsets of its durable records.
struct Segment {
    first_index: u64,
    name: String,
    file: Arc<dyn VfsFile>,
    /// The byte offset of each durable record's frame: record `first_index + i` at `offsets[i]`.
    offsets: Vec<u64>,
    /// The durable length: header plus durable frames. Nothing valid lies beyond it.
    len: u64,
    /// How far the file is known to extend (zeros past `len`): writes that end within it
    /// do not grow the file.
    allocated: u64,
}

impl Segment {
    fn next_index(&self) -> u64 {
        self.first_index + self.offsets.len() as u64
    }

    /// The byte offset where record number `i` of this segment ends.
    fn frame_end(&self, i: usize) -> u64 {
        self.offsets.get(i + 1).copied().unwrap_or(self.len)
    }
}

/// How an append ended, set once by the flusher that wrote (or failed) it.
type Outcome = std::result::Result<(), Arc<Error>>;

/// An append's outcome and its place in the group of appenders settled together. Waking a
/// whole group from the flusher would put one syscall per appender on the flusher's path;
/// instead the flusher wakes the group's first appender, and appender `i` wakes `2i + 1`
/// and `2i + 2`, so a group of `n` is awake after about `log2 n` steps.
struct Settled {
    result: Outcome,
    group: Arc<[Thread]>,
    pos: usize,
}

impl Settled {
    fn wake_children(&self) {
        for child in [2 * self.pos + 1, 2 * self.pos + 2] {
            if let Some(thread) = self.group.get(child) {
                thread.unpark();
            }
        }
    }
}

/// Sets the outcome of every entry and returns the group's first thread (to wake).
fn settle_group(entries: Vec<Entry>, result: impl Fn() -> Outcome) -> Option<Thread> {
    let group: Arc<[Thread]> = entries.iter().map(|e| e.waiter.clone()).collect();
    for (pos, entry) in entries.into_iter().enumerate() {
        let settled = Settled { result: result(), group: group.clone(), pos };
        if entry.outcome.set(settled).is_err() {
            panic!("an append is settled once");
        }
    }
    group.first().cloned()
}

/// One append waiting in the queue.
struct Entry {
    first_index: u64,
    count: u64,
    /// Frames with `len` and the payload's CRC in the `crc` field; `index`, `batch_first`
    /// and the final checksum are filled in by the flusher.
    frames: Vec<u8>,
    outcome: Arc<OnceLock<Settled>>,
    /// The appender's thread, parked until its outcome is set or it is handed the flush.
    waiter: Thread,
}

/// Where a flusher writes its batch.
enum Target {
    Active { file: Arc<dyn VfsFile>, name: String, offset: u64, allocated: u64 },
    NewSegment,
}

/// A failed step of a flush; `poison` is set when the log must refuse further writes.
struct Failure {
    error: Error,
    poison: Option<String>,
}

impl Failure {
    fn plain(error: Error) -> Failure {
        Failure { error, poison: None }
    }

    fn poisoned(reason: String) -> Failure {
        Failure { error: Error::Poisoned(reason.clone()), poison: Some(reason) }
    }
}

/// What a flusher's I/O did.
struct Flushed {
    new_segment: Option<Segment>,
    syncs: SyncTiming,
    bytes_written: u64,
    /// The frames' offsets, the segment's new durable length and how far its file now
    /// extends, or why it failed.
    result: std::result::Result<(Vec<u64>, u64, u64), Failure>,
}

/// `sync_data` calls and their durations.
#[derive(Default)]
struct SyncTiming {
    count: u64,
    nanos_total: u64,
    nanos_max: u64,
}

impl SyncTiming {
    fn sync(&mut self, file: &dyn VfsFile) -> io::Result<()> {
        let start = Instant::now();
        let result = file.sync_data();
        let nanos = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.count += 1;
        self.nanos_total = self.nanos_total.saturating_add(nanos);
        self.nanos_max = self.nanos_max.max(nanos);
        result
    }
}

/// A run of records to read from one segment, planned under the mutex.
struct ReadChunk {
    file: Arc<dyn VfsFile>,
    name: String,
    first_index: u64,
    offsets: Vec<u64>,
    end: u64,
}

impl Wal {
    /// Opens the log in `dir` (created if missing), recovering it as the module doc
    /// describes. `first_index` is the index the first record gets if the log holds no
    /// record (the store passes its applied index + 1); it must be at least 1, so that
    /// index 0 can mean "nothing". A log that holds records ignores it.
    pub fn open(vfs: Arc<dyn Vfs>, dir: &Path, first_index: u64, opts: WalOptions) -> Result<Wal> {
        opts.validate()?;
        if first_index == 0 {
            return Err(Error::Invalid("the first index of a log must be at least 1".into()));
        }
        let segments = recover(&*vfs, dir, first_index)?;
        let next_index = segments.last().expect("recovery leaves a segment").next_index();
        let state = State {
            segments,
            next_index,
            durable_next: next_index,
            queue: VecDeque::new(),
            queue_bytes: 0,
            flushing: false,
            exclusive: false,
            poisoned: None,
            waiting: 0,
            stats: WalStats::default(),
        };
        Ok(Wal {
            vfs,
            dir: dir.to_path_buf(),
            opts,
            state: Mutex::new(state),
            changed: Condvar::new(),
            files: RwLock::new(()),
        })
    }

    /// Appends one record, blocks until it is durable (written and `sync_data`), and returns
    /// its index.
    pub fn append(&self, payload: &[u8]) -> Result<u64> {
        self.append_batch(&[payload])
    }

    /// Appends several records atomically, in order, in one group-commit write (so with
    /// consecutive indices), blocks until they are durable, and returns the first index.
    pub fn append_batch(&self, payloads: &[&[u8]]) -> Result<u64> {
        let frames = encode_frames(payloads)?;
        let count = payloads.len() as u64;
        let outcome = Arc::new(OnceLock::new());
        let mut st = self.lock_state();
        while st.poisoned.is_none()
            && (st.exclusive || (st.queue_bytes > 0 && st.queue_bytes + frames.len() > self.opts.queue_bytes_max))
        {
            st = self.wait(st);
        }
        if let Some(reason) = &st.poisoned {
            return Err(Error::Poisoned(reason.clone()));
        }
        let first_index = st.next_index;
        st.next_index =
            first_index.checked_add(count).ok_or_else(|| Error::Invalid("the log ran out of indices".into()))?;
        st.queue_bytes += frames.len();
        let waiter = std::thread::current();
        st.queue.push_back(Entry { first_index, count, frames, outcome: outcome.clone(), waiter });
        loop {
            if let Some(settled) = outcome.get() {
                settled.wake_children();
                return match &settled.result {
                    Ok(()) => Ok(first_index),
                    Err(error) => Err(clone_error(error)),
                };
            }
            if !st.flushing && !st.queue.is_empty() {
                st = self.flush(st);
            } else {
                // Parked, not waiting on the condvar: a flusher wakes exactly the appenders
                // it settled, and hands the next flush to the appender at the queue's front.
                // (An unpark that comes before the park makes the park return at once.)
                drop(st);
                std::thread::park();
                st = self.lock_state();
            }
        }
    }

    /// The index of the oldest record still stored (equal to [`Wal::next_index`] if none).
    pub fn first_index(&self) -> u64 {
        self.lock_state().segments[0].first_index
    }

    /// The index the next append gets.
    pub fn next_index(&self) -> u64 {
        self.lock_state().next_index
    }

    /// The index of the newest durable record (`next_index - 1` when no append is in
    /// flight; `first_index - 1` if the log is empty).
    pub fn last_durable_index(&self) -> u64 {
        self.lock_state().durable_next - 1
    }

    /// The durable records with index `from` and up, in order, stopping before the payloads
    /// would add up to more than `max_bytes` (but always at least one record if any exists).
    /// Empty if `from` is past the last durable record; [`Error::Invalid`] if `from` is
    /// below [`Wal::first_index`]. Every frame's checksum is verified.
    pub fn read(&self, from: u64, max_bytes: usize) -> Result<Vec<(u64, Vec<u8>)>> {
        let _files = self.files.read().unwrap_or_else(PoisonError::into_inner);
        let chunks = {
            let st = self.lock_state();
            let first = st.segments[0].first_index;
            if from < first {
                return Err(Error::Invalid(format!("read from index {from}, but the log starts at {first}")));
            }
            plan_read(&st.segments, from, max_bytes)
        };
        let mut records = Vec::new();
        for chunk in chunks {
            read_chunk(&chunk, &mut records)?;
        }
        Ok(records)
    }

    /// Removes every record with an index above `index` (Raft conflict resolution), durably
    /// before returning; the next append gets `index + 1`. Waits for appends in flight.
    /// [`Error::Invalid`] if `index < first_index - 1`.
    pub fn truncate_after(&self, index: u64) -> Result<()> {
        let _files = self.files.write().unwrap_or_else(PoisonError::into_inner);
        let mut st = self.lock_state();
        st.exclusive = true;
        while st.flushing || !st.queue.is_empty() {
            st = self.wait(st);
        }
        let result = self.truncate_idle(&mut st, index);
        st.exclusive = false;
        self.notify_changed(&st);
        result
    }

    /// Deletes the segment files all of whose records have indices below `index`; never
    /// the newest segment. [`Wal::first_index`] moves to the first index of the oldest
    /// segment left.
    pub fn purge_before(&self, index: u64) -> Result<()> {
        let _files = self.files.write().unwrap_or_else(PoisonError::into_inner);
        let victims: Vec<String> = {
            let st = self.lock_state();
            if let Some(reason) = &st.poisoned {
                return Err(Error::Poisoned(reason.clone()));
            }
            let segs = &st.segments;
            let n = (0..segs.len() - 1).take_while(|&i| segs[i + 1].first_index <= index).count();
            segs[..n].iter().map(|s| s.name.clone()).collect()
        };
        if victims.is_empty() {
            return Ok(());
        }
        let mut removed = 0;
        let mut result = Ok(());
        for name in &victims {
            // Oldest first: a crash keeps a prefix of the removals, so what is left has no gap.
            if let Err(e) = self.vfs.remove(&self.dir.join(name)) {
                result = Err(Error::io(format!("removing {name}"), e));
                break;
            }
            removed += 1;
        }
        self.lock_state().segments.drain(..removed);
        result?;
        self.vfs.sync_dir(&self.dir).map_err(|e| Error::io("sync_dir after purging segments", e))
    }

    /// The bytes held by all segment files (their durable lengths).
    pub fn size_bytes(&self) -> u64 {
        self.lock_state().segments.iter().map(|s| s.len).sum()
    }

    /// The counters since the log was opened.
    pub fn stats(&self) -> WalStats {
        self.lock_state().stats
    }

    /// Why the log refuses writes, if an fsync (or a rollback after a failed write) failed.
    pub fn poisoned(&self) -> Option<String> {
        self.lock_state().poisoned.clone()
    }

    fn lock_state(&self) -> MutexGuard<'_, State> {
        self.state.lock().expect("a thread panicked holding the WAL mutex")
    }

    fn wait<'a>(&self, mut guard: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
        guard.waiting += 1;
        let mut guard = self.changed.wait(guard).expect("a thread panicked holding the WAL mutex");
        guard.waiting -= 1;
        guard
    }

    /// Wakes the threads waiting on `changed`, if any; called with the state locked.
    fn notify_changed(&self, st: &State) {
        if st.waiting > 0 {
            self.changed.notify_all();
        }
    }

    /// Takes a batch from the queue, writes and syncs it without the mutex, then settles
    /// the outcome of every append in it (and, on failure, of every append queued behind).
    fn flush<'a>(&'a self, mut st: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
        assert!(!st.flushing && !st.queue.is_empty());
        let mut entries = Vec::new();
        let mut bytes = 0usize;
        while let Some(entry) = st.queue.front() {
            if !entries.is_empty() && bytes + entry.frames.len() > self.opts.batch_bytes_max {
                break;
            }
            bytes += entry.frames.len();
            entries.push(st.queue.pop_front().expect("front exists"));
        }
        st.queue_bytes -= bytes;
        st.flushing = true;
        let active = st.segments.last().expect("at least one segment");
        assert_eq!(active.next_index(), entries[0].first_index, "queue order is index order");
        let target = if !active.offsets.is_empty() && active.len + bytes as u64 > self.opts.segment_bytes_max {
            Target::NewSegment
        } else {
            Target::Active {
                file: active.file.clone(),
                name: active.name.clone(),
                offset: active.len,
                allocated: active.allocated,
            }
        };
        self.notify_changed(&st); // The queue has room again.
        drop(st);

        let io = panic::catch_unwind(AssertUnwindSafe(|| self.write_batch(&entries, bytes, target)));
        let mut st = self.lock_state();
        st.flushing = false;
        self.notify_changed(&st);
        match io {
            Ok(flushed) => {
                // The next flusher first: it can start its write while the rest wake up.
                let next = st.queue.front().map(|e| e.waiter.clone());
                let first = settle_flush(&mut st, entries, flushed);
                drop(st);
                let me = std::thread::current().id();
                for thread in next.iter().chain(first.iter()).filter(|t| t.id() != me) {
                    thread.unpark();
                }
                self.lock_state()
            }
            Err(panic) => {
                let reason = "the WAL flusher panicked".to_string();
                st.poisoned.get_or_insert(reason.clone());
                let first = fail_all(&mut st, entries, Error::Poisoned(reason));
                drop(st);
                first.iter().for_each(Thread::unpark);
                panic::resume_unwind(panic)
            }
        }
    }

    /// The flusher's I/O: start a new segment if asked, then one `write_at` (the frames,
    /// and up to [`WalOptions::preallocate_bytes`] of zeros after them if they end past the
    /// zeroed part of the file) and one `sync_data`. A failed write is rolled back with `set_len`; a failed
    /// sync poisons.
    fn write_batch(&self, entries: &[Entry], bytes: usize, target: Target) -> Flushed {
        let mut syncs = SyncTiming::default();
        let mut new_segment = None;
        let (file, name, offset, allocated) = match target {
            Target::Active { file, name, offset, allocated } => (file, name, offset, allocated),
            Target::NewSegment => match create_segment(&*self.vfs, &self.dir, entries[0].first_index, &mut syncs) {
                Ok(seg) => {
                    let parts = (seg.file.clone(), seg.name.clone(), seg.len, seg.allocated);
                    new_segment = Some(seg);
                    parts
                }
                Err(failure) => {
                    let result = Err(failure);
                    return Flushed { new_segment: None, syncs, bytes_written: 0, result };
                }
            },
        };
        let mut bytes_written = if new_segment.is_some() { WAL_SEGMENT_HEADER_BYTES as u64 } else { 0 };
        let (mut buf, offsets) = seal_batch(entries, bytes, offset);
        let end = offset + buf.len() as u64;
        let zeros = if end > allocated {
            (end + self.opts.preallocate_bytes).min(self.opts.segment_bytes_max).saturating_sub(end)
        } else {
            0
        };
        buf.resize(buf.len() + zeros as usize, 0);
        let mut allocated = allocated.max(end + zeros);
        let mut written = file.write_at(&buf, offset);
        if zeros > 0 && written.as_ref().is_err_and(crate::error::is_disk_full) && file.set_len(offset).is_ok() {
            // The zeros are best effort: the disk may have room for the records alone.
            buf.truncate(buf.len() - zeros as usize);
            allocated = end;
            written = file.write_at(&buf, offset);
        }
        let result = match written {
            Err(e) => {
                let error = Error::io(format!("writing {} bytes to {name} at offset {offset}", buf.len()), e);
                // Sync the rollback too: should the next write go to a new segment, junk
                // left past this one's end would read as corruption after a crash.
                Err(match file.set_len(offset).and_then(|()| syncs.sync(&*file)) {
                    Ok(()) => Failure::plain(error),
                    Err(e) => Failure::poisoned(format!(
                        "rolling {name} back to {offset} bytes after a failed write ({error}) failed: {e}"
                    )),
                })
            }
            Ok(()) => {
                bytes_written += buf.len() as u64;
                match syncs.sync(&*file) {
                    Ok(()) => Ok((offsets, end, allocated)),
                    Err(e) => Err(Failure::poisoned(format!("fsync of {name} failed: {e}"))),
                }
            }
        };
        Flushed { new_segment, syncs, bytes_written, result }
    }

    /// `truncate_after` once no append is in flight; the caller holds both locks.
    fn truncate_idle(&self, st: &mut State, index: u64) -> Result<()> {
        if let Some(reason) = &st.poisoned {
            return Err(Error::Poisoned(reason.clone()));
        }
        let first = st.segments[0].first_index;
        if index.saturating_add(1) < first {
            return Err(Error::Invalid(format!("truncate after index {index}, but the log starts at {first}")));
        }
        if index >= st.durable_next - 1 {
            return Ok(());
        }
        // Whole later segments go first, newest first: a crash keeps a prefix of the
        // removals, so the segments left never have a gap.
        let mut removed = false;
        while st.segments.last().expect("segments").first_index > index + 1 {
            let seg = st.segments.last().expect("segments");
            let name = seg.name.clone();
            self.vfs.remove(&self.dir.join(&name)).map_err(|e| Error::io(format!("removing {name}"), e))?;
            st.segments.pop();
            let next = st.segments.last().expect("the oldest segment stays").next_index();
            st.next_index = next;
            st.durable_next = next;
            removed = true;
        }
        if removed {
            self.vfs.sync_dir(&self.dir).map_err(|e| Error::io("sync_dir after truncating the log", e))?;
        }
        let seg = st.segments.last_mut().expect("segments");
        let keep = (index + 1 - seg.first_index) as usize;
        if keep < seg.offsets.len() {
            let end = seg.offsets[keep];
            seg.file.set_len(end).map_err(|e| Error::io(format!("truncating {} to {end} bytes", seg.name), e))?;
            seg.offsets.truncate(keep);
            seg.len = end;
            seg.allocated = end;
            let mut syncs = SyncTiming::default();
            let synced = syncs.sync(&*seg.file);
            let name = seg.name.clone();
            st.next_index = index + 1;
            st.durable_next = index + 1;
            add_syncs(&mut st.stats, &syncs);
            if let Err(e) = synced {
                let reason = format!("fsync of {name} after truncating it failed: {e}");
                st.poisoned = Some(reason.clone());
                return Err(Error::Poisoned(reason));
            }
        }
        Ok(())
    }
}

/// Records what a flusher's I/O did and settles every append it took.
/// Returns the first thread of the settled group, to wake.
fn settle_flush(st: &mut State, entries: Vec<Entry>, flushed: Flushed) -> Option<Thread> {
    add_syncs(&mut st.stats, &flushed.syncs);
    st.stats.bytes_written += flushed.bytes_written;
    if let Some(seg) = flushed.new_segment {
        assert_eq!(seg.first_index, st.durable_next);
        st.segments.push(seg);
    }
    match flushed.result {
        Ok((offsets, end, allocated)) => {
            let seg = st.segments.last_mut().expect("segments");
            assert_eq!(seg.next_index(), entries[0].first_index);
            assert!(end > seg.len && offsets.first() == Some(&seg.len));
            seg.offsets.extend(offsets);
            seg.len = end;
            seg.allocated = allocated;
            st.durable_next = seg.next_index();
            let last = entries.last().expect("a batch is never empty");
            assert_eq!(last.first_index + last.count, st.durable_next);
            st.stats.appends += entries.iter().map(|e| e.count).sum::<u64>();
            st.stats.batches += 1;
            settle_group(entries, || Ok(()))
        }
        Err(failure) => {
            if let Some(reason) = failure.poison {
                st.poisoned.get_or_insert(reason);
            }
            // The rollback cut the file back to its durable length.
            let seg = st.segments.last_mut().expect("segments");
            seg.allocated = seg.len;
            fail_all(st, entries, failure.error)
        }
    }
}

/// Fails `entries` and every append still queued (they have later indices), and takes the
/// next index back to one past the last durable record.
/// Returns the first thread of the failed group, to wake.
fn fail_all(st: &mut State, entries: Vec<Entry>, error: Error) -> Option<Thread> {
    let error = Arc::new(error);
    let queued: Vec<Entry> = st.queue.drain(..).collect();
    st.queue_bytes = 0;
    st.next_index = st.durable_next;
    let all: Vec<Entry> = entries.into_iter().chain(queued).collect();
    settle_group(all, || Err(error.clone()))
}

fn add_syncs(stats: &mut WalStats, syncs: &SyncTiming) {
    stats.fsyncs += syncs.count;
    stats.fsync_nanos_total = stats.fsync_nanos_total.saturating_add(syncs.nanos_total);
    stats.fsync_nanos_max = stats.fsync_nanos_max.max(syncs.nanos_max);
}

/// A copy of `error` for another waiter of the same failed batch.
fn clone_error(error: &Error) -> Error {
    match error {
        Error::DiskFull(s) => Error::DiskFull(s.clone()),
        Error::Io { context, source } => {
            Error::Io { context: context.clone(), source: io::Error::new(source.kind(), source.to_string()) }
        }
        Error::Corrupted { file, detail } => Error::corrupted(file.clone(), detail.clone()),
        Error::Poisoned(s) => Error::Poisoned(s.clone()),
        Error::Invalid(s) => Error::Invalid(s.clone()),
    }
}

// ---- Frames ----

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"))
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"))
}

/// Encodes `payloads` as frames, with the payload's CRC in the `crc` field and `index` and
/// `batch_first` left zero for the flusher (see [`seal_batch`]).
fn encode_frames(payloads: &[&[u8]]) -> Result<Vec<u8>> {
    if payloads.is_empty() {
        return Err(Error::Invalid("append_batch of no records".into()));
    }
    let mut bytes = 0usize;
    for payload in payloads {
        if payload.len() > WAL_RECORD_BYTES_MAX {
            return Err(Error::Invalid(format!(
                "a record of {} bytes exceeds WAL_RECORD_BYTES_MAX ({WAL_RECORD_BYTES_MAX})",
                payload.len()
            )));
        }
        bytes += WAL_FRAME_HEADER_BYTES + payload.len();
        if bytes > WAL_APPEND_BATCH_BYTES_MAX {
            return Err(Error::Invalid(format!(
                "an append_batch exceeds WAL_APPEND_BATCH_BYTES_MAX ({WAL_APPEND_BATCH_BYTES_MAX})"
            )));
        }
    }
    let mut frames = Vec::with_capacity(bytes);
    for payload in payloads {
        frames.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        frames.extend_from_slice(&crc32c::crc32c(payload).to_le_bytes());
        frames.extend_from_slice(&[0u8; 16]);
        frames.extend_from_slice(payload);
    }
    Ok(frames)
}

/// The frame checksum: CRC-32C of payload ‖ header bytes 0..4 ‖ header bytes 8..24, from
/// the payload's own CRC and the frame header.
fn frame_crc(payload_crc: u32, header: &[u8]) -> u32 {
    let crc = crc32c::crc32c_append(payload_crc, &header[0..4]);
    crc32c::crc32c_append(crc, &header[8..WAL_FRAME_HEADER_BYTES])
}

/// Joins the batch's frames into one buffer to be written at `offset`, stamping each with
/// its index, the batch's first index and the final checksum. Returns the buffer and each
/// frame's offset in the segment.
fn seal_batch(entries: &[Entry], bytes: usize, offset: u64) -> (Vec<u8>, Vec<u64>) {
    let batch_first = entries[0].first_index;
    let mut buf = Vec::with_capacity(bytes);
    let mut offsets = Vec::new();
    for entry in entries {
        let mut pos = buf.len();
        buf.extend_from_slice(&entry.frames);
        let mut index = entry.first_index;
        while pos < buf.len() {
            offsets.push(offset + pos as u64);
            let frame = &mut buf[pos..];
            let len = u32_at(frame, 0) as usize;
            let payload_crc = u32_at(frame, 4);
            frame[8..16].copy_from_slice(&index.to_le_bytes());
            frame[16..24].copy_from_slice(&batch_first.to_le_bytes());
            let crc = frame_crc(payload_crc, frame);
            frame[4..8].copy_from_slice(&crc.to_le_bytes());
            pos += WAL_FRAME_HEADER_BYTES + len;
            index += 1;
        }
        assert_eq!(pos, buf.len());
        assert_eq!(index, entry.first_index + entry.count);
    }
    assert_eq!(buf.len(), bytes);
    (buf, offsets)
}

/// A frame that passed the checks that need no context.
struct Frame {
    index: u64,
    batch_first: u64,
    /// Header plus payload, in bytes.
    size: usize,
}

/// Checks the frame at the start of `bytes`: length bound, fits in `bytes`, checksum.
fn decode_frame(bytes: &[u8]) -> std::result::Result<Frame, String> {
    if bytes.len() < WAL_FRAME_HEADER_BYTES {
        return Err(format!("frame header cut short ({} of {WAL_FRAME_HEADER_BYTES} bytes)", bytes.len()));
    }
    let len = u32_at(bytes, 0) as usize;
    if len > WAL_RECORD_BYTES_MAX {
        return Err(format!("payload length {len} exceeds WAL_RECORD_BYTES_MAX"));
    }
    let size = WAL_FRAME_HEADER_BYTES + len;
    if bytes.len() < size {
        return Err(format!("frame of {size} bytes runs past the end ({} bytes left)", bytes.len()));
    }
    let payload_crc = crc32c::crc32c(&bytes[WAL_FRAME_HEADER_BYTES..size]);
    let (stored, computed) = (u32_at(bytes, 4), frame_crc(payload_crc, bytes));
    if stored != computed {
        return Err(format!("checksum mismatch (stored {stored:#010x}, computed {computed:#010x})"));
    }
    Ok(Frame { index: u64_at(bytes, 8), batch_first: u64_at(bytes, 16), size })
}

// ---- Segment headers ----

fn encode_header(first_index: u64) -> [u8; WAL_SEGMENT_HEADER_BYTES] {
    let mut h = [0u8; WAL_SEGMENT_HEADER_BYTES];
    h[0..8].copy_from_slice(&WAL_MAGIC);
    h[8..12].copy_from_slice(&WAL_FORMAT_VERSION.to_le_bytes());
    h[16..24].copy_from_slice(&first_index.to_le_bytes());
    let crc = crc32c::crc32c(&h[..28]);
    h[28..32].copy_from_slice(&crc.to_le_bytes());
    h
}

/// The first index a segment header records, or what is wrong with it.
fn decode_header(bytes: &[u8]) -> std::result::Result<u64, String> {
    if bytes.len() < WAL_SEGMENT_HEADER_BYTES {
        return Err(format!("cut short ({} of {WAL_SEGMENT_HEADER_BYTES} bytes)", bytes.len()));
    }
    if bytes[0..8] != WAL_MAGIC {
        return Err("bad magic".into());
    }
    if u32_at(bytes, 28) != crc32c::crc32c(&bytes[..28]) {
        return Err("checksum mismatch".into());
    }
    let version = u32_at(bytes, 8);
    if version != WAL_FORMAT_VERSION {
        return Err(format!("unsupported format version {version}"));
    }
    Ok(u64_at(bytes, 16))
}

/// The index in a segment file name (`{index:020}.wal`), if it is one.
fn parse_segment_name(name: &str) -> Option<u64> {
    let stem = name.strip_suffix(".wal")?;
    if stem.len() != 20 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    stem.parse().ok()
}

/// Creates segment `first_index` durably: header, `sync_data`, `sync_dir`. If the header
/// cannot be written the file is removed again (durably), so that no stray segment is left
/// to collide with later ones; a failed sync, or a failed removal, poisons.
fn create_segment(
    vfs: &dyn Vfs,
    dir: &Path,
    first_index: u64,
    syncs: &mut SyncTiming,
) -> std::result::Result<Segment, Failure> {
    let name = segment_file_name(first_index);
    let path = dir.join(&name);
    let file = vfs.open(&path, true).map_err(|e| Failure::plain(Error::io(format!("creating {name}"), e)))?;
    if let Err(e) = file.write_at(&encode_header(first_index), 0) {
        let error = Error::io(format!("writing the header of {name}"), e);
        return Err(match vfs.remove(&path).and_then(|()| vfs.sync_dir(dir)) {
            Ok(()) => Failure::plain(error),
            Err(e) => Failure::poisoned(format!("removing {name} after a failed header write failed: {e}")),
        });
    }
    if let Err(e) = syncs.sync(&*file) {
        return Err(Failure::poisoned(format!("fsync of {name} failed: {e}")));
    }
    if let Err(e) = vfs.sync_dir(dir) {
        return Err(Failure::poisoned(format!("sync_dir after creating {name} failed: {e}")));
    }
    let len = WAL_SEGMENT_HEADER_BYTES as u64;
    Ok(Segment { first_index, name, file, offsets: Vec::new(), len, allocated: len })
}

// ---- Recovery ----

/// Opens and checks every segment in `dir`, cutting a torn tail off the newest; creates
/// the first segment of an empty log at `first_index`.
fn recover(vfs: &dyn Vfs, dir: &Path, first_index: u64) -> Result<Vec<Segment>> {
    let dir_name = dir.display();
    vfs.create_dir_all(dir).map_err(|e| Error::io(format!("creating the log directory {dir_name}"), e))?;
    let mut found = Vec::new();
    for name in vfs.list(dir).map_err(|e| Error::io(format!("listing {dir_name}"), e))? {
        if name.ends_with(".wal") {
            let index = parse_segment_name(&name)
                .ok_or_else(|| Error::corrupted(&name, "segment file name is not a 20-digit index"))?;
            found.push((index, name));
        }
    }
    found.sort();
    let count = found.len();
    let mut segments: Vec<Segment> = Vec::new();
    for (i, (index, name)) in found.into_iter().enumerate() {
        if let Some(prev) = segments.last() {
            if index != prev.next_index() {
                return Err(Error::corrupted(
                    &name,
                    format!(
                        "segment starts at index {index}, but {} ends before index {}: the segments {}",
                        prev.name,
                        prev.next_index(),
                        if index < prev.next_index() { "overlap" } else { "leave a gap" }
                    ),
                ));
            }
        }
        segments.push(recover_segment(vfs, dir, index, name, i + 1 == count)?);
    }
    let empty = segments.iter().all(|s| s.offsets.is_empty());
    if empty && (segments.len() != 1 || segments[0].first_index != first_index) {
        // No record at all: restart the log at the caller's index. Remove, and make the
        // removal durable, before creating, so a crash never leaves two empty segments.
        for seg in segments.drain(..).rev() {
            vfs.remove(&dir.join(&seg.name)).map_err(|e| Error::io(format!("removing {}", seg.name), e))?;
        }
        vfs.sync_dir(dir).map_err(|e| Error::io(format!("sync_dir {dir_name}"), e))?;
        let seg = create_segment(vfs, dir, first_index, &mut SyncTiming::default()).map_err(|f| f.error)?;
        segments.push(seg);
    }
    // The entries recovered from may not have been durable yet (a crash during creation).
    vfs.sync_dir(dir).map_err(|e| Error::io(format!("sync_dir {dir_name}"), e))?;
    Ok(segments)
}

/// Checks one segment and builds its offset index. A bad frame in the newest segment
/// (`last`) is either cut off as a torn tail or reported as corruption (see module doc).
fn recover_segment(vfs: &dyn Vfs, dir: &Path, first_index: u64, name: String, last: bool) -> Result<Segment> {
    let io_err = |what: &str, e| Error::io(format!("{what} {name}"), e);
    let file = vfs.open(&dir.join(&name), false).map_err(|e| io_err("opening", e))?;
    let file_len = file.len().map_err(|e| io_err("reading the length of", e))?;
    let mut bytes = vec![0u8; usize::try_from(file_len).expect("a segment fits in memory")];
    file.read_exact_at(&mut bytes, 0).map_err(|e| io_err("reading", e))?;
    let header_end = WAL_SEGMENT_HEADER_BYTES.min(bytes.len());
    match decode_header(&bytes) {
        Ok(index) if index == first_index => {}
        Ok(index) => {
            return Err(Error::corrupted(&name, format!("byte offset 16: header says first index {index}")));
        }
        Err(_) if last && bytes[header_end..].iter().all(|&b| b == 0) => {
            // A crash while creating the newest segment: nothing was written after the
            // header, because records go in only once the header is durable.
            file.write_at(&encode_header(first_index), 0).map_err(|e| io_err("rewriting the header of", e))?;
            file.set_len(WAL_SEGMENT_HEADER_BYTES as u64).map_err(|e| io_err("truncating", e))?;
            file.sync_data().map_err(|e| io_err("syncing", e))?;
            let len = WAL_SEGMENT_HEADER_BYTES as u64;
            return Ok(Segment { first_index, name, file, offsets: Vec::new(), len, allocated: len });
        }
        Err(why) => return Err(Error::corrupted(&name, format!("byte offset 0: segment header {why}"))),
    }
    let mut offsets = Vec::new();
    let mut pos = WAL_SEGMENT_HEADER_BYTES;
    let mut batch_first = None;
    while pos < bytes.len() {
        let expected = first_index + offsets.len() as u64;
        match check_frame(&bytes[pos..], expected, batch_first) {
            Ok(frame) => {
                offsets.push(pos as u64);
                batch_first = Some(frame.batch_first);
                pos += frame.size;
            }
            Err(_) if bytes[pos..].iter().all(|&b| b == 0) => {
                // The zeroed space past the last write (see WAL_PREALLOCATE_BYTES): the end
                // of the records. In an older segment, a zeroed-out record would leave a
                // gap before the next segment, which `recover` reports.
                break;
            }
            Err(why) => {
                let at = format!("byte offset {pos}: record {expected}: {why}");
                if !last {
                    return Err(Error::corrupted(&name, at));
                }
                if let Some(later) = find_later_batch(&bytes, pos + 1, expected) {
                    return Err(Error::corrupted(
                        &name,
                        format!("{at}; a later write follows at byte offset {later}, so this one was durable"),
                    ));
                }
                // The torn tail of the final, never acknowledged, group-commit write.
                file.set_len(pos as u64).map_err(|e| io_err("cutting the torn tail of", e))?;
                file.sync_data().map_err(|e| io_err("syncing", e))?;
                return Ok(Segment { first_index, name, file, offsets, len: pos as u64, allocated: pos as u64 });
            }
        }
    }
    Ok(Segment { first_index, name, file, offsets, len: pos as u64, allocated: file_len })
}

/// [`decode_frame`] plus the checks that need context: the index is `expected`, and the
/// frame starts a write or continues the write of the frame before it.
fn check_frame(bytes: &[u8], expected: u64, prev_batch_first: Option<u64>) -> std::result::Result<Frame, String> {
    let frame = decode_frame(bytes)?;
    if frame.index != expected {
        return Err(format!("index {} where {expected} was expected", frame.index));
    }
    if frame.batch_first != frame.index && Some(frame.batch_first) != prev_batch_first {
        return Err(format!("batch_first {} neither starts a write nor continues one", frame.batch_first));
    }
    Ok(frame)
}

/// The offset of a valid frame at or after `from` that belongs to a write later than the
/// one holding record `expected` (its `batch_first` is above `expected`), if any.
fn find_later_batch(bytes: &[u8], from: usize, expected: u64) -> Option<usize> {
    let last_start = bytes.len().checked_sub(WAL_FRAME_HEADER_BYTES)?;
    (from..=last_start).find(|&y| {
        let len = u32_at(bytes, y) as usize;
        let index = u64_at(bytes, y + 8);
        let batch_first = u64_at(bytes, y + 16);
        len <= WAL_RECORD_BYTES_MAX
            && y + WAL_FRAME_HEADER_BYTES + len <= bytes.len()
            && index >= expected
            && index - expected < TORN_TAIL_INDEX_WINDOW
            && batch_first > expected
            && batch_first <= index
            && decode_frame(&bytes[y..]).is_ok()
    })
}

// ---- Reads ----

/// Which durable records a read returns, segment by segment: from `from`, until the next
/// payload would take the total past `max_bytes` (at least one record).
fn plan_read(segments: &[Segment], from: u64, max_bytes: usize) -> Vec<ReadChunk> {
    let mut chunks = Vec::new();
    let mut total = 0usize;
    let mut taken = 0usize;
    let start = segments.partition_point(|s| s.first_index <= from).saturating_sub(1);
    let mut index = from;
    for seg in &segments[start..] {
        if index >= seg.next_index() {
            continue;
        }
        let first = (index - seg.first_index) as usize;
        let mut k = first;
        while k < seg.offsets.len() {
            let payload = (seg.frame_end(k) - seg.offsets[k]) as usize - WAL_FRAME_HEADER_BYTES;
            if taken > 0 && total + payload > max_bytes {
                break;
            }
            total += payload;
            taken += 1;
            k += 1;
        }
        if k > first {
            chunks.push(ReadChunk {
                file: seg.file.clone(),
                name: seg.name.clone(),
                first_index: index,
                offsets: seg.offsets[first..k].to_vec(),
                end: seg.frame_end(k - 1),
            });
            index += (k - first) as u64;
        }
        if k < seg.offsets.len() {
            break;
        }
    }
    chunks
}

/// Reads a chunk's frames with one read and checks each before returning its payload.
fn read_chunk(chunk: &ReadChunk, records: &mut Vec<(u64, Vec<u8>)>) -> Result<()> {
    let start = chunk.offsets[0];
    let mut buf = vec![0u8; (chunk.end - start) as usize];
    chunk
        .file
        .read_exact_at(&mut buf, start)
        .map_err(|e| Error::io(format!("reading {} at offset {start}", chunk.name), e))?;
    for (i, &offset) in chunk.offsets.iter().enumerate() {
        let index = chunk.first_index + i as u64;
        let end = chunk.offsets.get(i + 1).copied().unwrap_or(chunk.end);
        let bytes = &buf[(offset - start) as usize..(end - start) as usize];
        let corrupted =
            |why: String| Error::corrupted(&chunk.name, format!("byte offset {offset}: record {index}: {why}"));
        let frame = decode_frame(bytes).map_err(corrupted)?;
        if frame.index != index || frame.size != bytes.len() {
            return Err(corrupted(format!(
                "frame holds index {} and {} bytes, expected {index} and {}",
                frame.index,
                frame.size,
                bytes.len()
            )));
        }
        records.push((index, bytes[WAL_FRAME_HEADER_BYTES..].to_vec()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vfs::{RealVfs, SimOp, SimVfs};
    use std::collections::BTreeMap;
    use std::time::Duration;

    fn dir() -> PathBuf {
        PathBuf::from("/wal")
    }

    fn small_segments() -> WalOptions {
        WalOptions { segment_bytes_max: 512, ..WalOptions::default() }
    }

    /// `opts` without zeroing ahead: each file ends where its last record ends.
    fn unpreallocated(opts: WalOptions) -> WalOptions {
        WalOptions { preallocate_bytes: 0, ..opts }
    }

    /// The length of the file at `path` without the zeros at its end: where its last
    /// record ends, if that record's payload does not end in zeros.
    fn written_len(vfs: &SimVfs, path: &Path) -> u64 {
        let file = vfs.open(path, false).unwrap();
        let mut bytes = vec![0u8; file.len().unwrap() as usize];
        file.read_exact_at(&mut bytes, 0).unwrap();
        bytes.iter().rposition(|&b| b != 0).map_or(0, |i| i as u64 + 1)
    }

    fn open(vfs: &SimVfs, opts: WalOptions) -> Wal {
        Wal::open(Arc::new(vfs.clone()), &dir(), 1, opts).unwrap()
    }

    /// A payload of varied length (0 to 99 bytes) that names its record.
    fn payload(i: u64) -> Vec<u8> {
        (0..i * 37 % 100).map(|j| (i * 7 + j) as u8).collect()
    }

    fn read_all(wal: &Wal) -> Vec<(u64, Vec<u8>)> {
        wal.read(wal.first_index(), usize::MAX).unwrap()
    }

    fn expected(range: std::ops::RangeInclusive<u64>) -> Vec<(u64, Vec<u8>)> {
        range.map(|i| (i, payload(i))).collect()
    }

    fn segment_names(vfs: &SimVfs) -> Vec<String> {
        vfs.list(&dir()).unwrap()
    }

    #[test]
    fn round_trip_rotation_and_reopen() {
        let vfs = SimVfs::new(1);
        let wal = open(&vfs, small_segments());
        assert_eq!((wal.first_index(), wal.next_index(), wal.last_durable_index()), (1, 1, 0));
        for i in 1..=80 {
            assert_eq!(wal.append(&payload(i)).unwrap(), i);
        }
        let batch: Vec<Vec<u8>> = (81..=90).map(payload).collect();
        let refs: Vec<&[u8]> = batch.iter().map(|p| p.as_slice()).collect();
        assert_eq!(wal.append_batch(&refs).unwrap(), 81);
        assert_eq!(read_all(&wal), expected(1..=90));
        assert!(segment_names(&vfs).len() >= 5, "small segments rotate: {:?}", segment_names(&vfs));
        assert_eq!(wal.last_durable_index(), 90);
        assert_eq!(wal.stats().appends, 90);
        assert_eq!(wal.size_bytes(), segment_names(&vfs).iter().map(|n| written_len(&vfs, &dir().join(n))).sum());

        // max_bytes bounds the payload, but a read returns at least one record.
        assert_eq!(wal.read(40, 0).unwrap(), expected(40..=40));
        let two = payload(40).len() + payload(41).len();
        assert_eq!(wal.read(40, two).unwrap(), expected(40..=41));
        assert_eq!(wal.read(90, usize::MAX).unwrap(), expected(90..=90));
        assert!(wal.read(91, usize::MAX).unwrap().is_empty());

        drop(wal);
        let wal = Wal::open(Arc::new(vfs.clone()), &dir(), 999, small_segments()).unwrap();
        assert_eq!((wal.first_index(), wal.next_index()), (1, 91), "a log with records ignores first_index");
        assert_eq!(read_all(&wal), expected(1..=90));
        assert_eq!(wal.append(&payload(91)).unwrap(), 91);
        assert_eq!(read_all(&wal), expected(1..=91));
    }

    #[test]
    fn real_vfs_round_trip() {
        let dir = std::env::temp_dir().join(format!("bulwark-wal-test-{}-real", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let vfs: Arc<dyn Vfs> = Arc::new(RealVfs);
        let wal = Wal::open(vfs.clone(), &dir, 1, small_segments()).unwrap();
        for i in 1..=40 {
            assert_eq!(wal.append(&payload(i)).unwrap(), i);
        }
        drop(wal);
        let wal = Wal::open(vfs, &dir, 1, small_segments()).unwrap();
        assert_eq!(read_all(&wal), expected(1..=40));
        wal.truncate_after(30).unwrap();
        wal.purge_before(20).unwrap();
        assert_eq!(wal.append(&payload(31)).unwrap(), 31);
        assert_eq!(wal.read(wal.first_index(), usize::MAX).unwrap(), expected(wal.first_index()..=31));
        drop(wal);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn empty_log_starts_at_the_callers_index() {
        let vfs = SimVfs::new(2);
        drop(open(&vfs, WalOptions::default()));
        let wal = Wal::open(Arc::new(vfs.clone()), &dir(), 50, WalOptions::default()).unwrap();
        assert_eq!((wal.first_index(), wal.next_index(), wal.last_durable_index()), (50, 50, 49));
        assert_eq!(wal.append(b"x").unwrap(), 50);
        assert_eq!(segment_names(&vfs), vec![segment_file_name(50)]);
    }

    #[test]
    fn invalid_requests_are_refused() {
        let vfs = SimVfs::new(3);
        let arc: Arc<dyn Vfs> = Arc::new(vfs.clone());
        let bad = WalOptions { segment_bytes_max: 32, ..WalOptions::default() };
        assert!(matches!(Wal::open(arc.clone(), &dir(), 1, bad), Err(Error::Invalid(_))));
        assert!(matches!(Wal::open(arc.clone(), &dir(), 0, WalOptions::default()), Err(Error::Invalid(_))));
        let wal = open(&vfs, WalOptions::default());
        let huge = vec![0u8; WAL_RECORD_BYTES_MAX + 1];
        assert!(matches!(wal.append(&huge), Err(Error::Invalid(_))));
        assert!(matches!(wal.append_batch(&[]), Err(Error::Invalid(_))));
        assert_eq!(wal.append(&[]).unwrap(), 1, "an empty payload is a record");
        assert!(matches!(wal.read(0, 10), Err(Error::Invalid(_))));
        assert_eq!(wal.read(1, 10).unwrap(), vec![(1, vec![])]);
    }

    #[test]
    fn group_commit_shares_fsyncs_between_threads() {
        let vfs = SimVfs::new(4);
        vfs.update_faults(|f| f.latency = Some(Duration::from_micros(20)));
        let wal = open(&vfs, WalOptions { segment_bytes_max: 16 << 10, ..WalOptions::default() });
        let got: Vec<Vec<(u64, Vec<u8>)>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..16)
                .map(|t| {
                    let wal = &wal;
                    s.spawn(move || {
                        (0..200)
                            .map(|i| {
                                let p = format!("thread {t} append {i}").into_bytes();
                                (wal.append(&p).unwrap(), p)
                            })
                            .collect()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let acked: BTreeMap<u64, Vec<u8>> = got.into_iter().flatten().collect();
        assert_eq!(acked.len(), 3200, "every index returned exactly once");
        assert_eq!(acked.keys().copied().collect::<Vec<_>>(), (1..=3200).collect::<Vec<_>>());
        let stats = wal.stats();
        assert_eq!(stats.appends, 3200);
        assert!(stats.batches < 3200 && stats.fsyncs < 3200, "appends shared fsyncs: {stats:?}");
        assert!(stats.fsync_nanos_max > 0 && stats.fsync_nanos_total >= stats.fsync_nanos_max);
        assert_eq!(read_all(&wal), acked.into_iter().collect::<Vec<_>>());
    }

    #[test]
    fn a_small_queue_holds_appenders_back() {
        let vfs = SimVfs::new(5);
        let opts =
            WalOptions { segment_bytes_max: 2048, batch_bytes_max: 100, queue_bytes_max: 150, ..WalOptions::default() };
        let wal = open(&vfs, opts);
        let acked: BTreeMap<u64, Vec<u8>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8u64)
                .map(|t| {
                    let wal = &wal;
                    s.spawn(move || {
                        (0..50).map(|i| payload(t * 50 + i)).map(|p| (wal.append(&p).unwrap(), p)).collect::<Vec<_>>()
                    })
                })
                .collect();
            handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(acked.len(), 400);
        assert_eq!(read_all(&wal), acked.into_iter().collect::<Vec<_>>());
    }

    #[test]
    fn truncate_after_across_segments_survives_reopen() {
        let vfs = SimVfs::new(6);
        let wal = open(&vfs, small_segments());
        for i in 1..=60 {
            wal.append(&payload(i)).unwrap();
        }
        let before = segment_names(&vfs).len();
        wal.truncate_after(20).unwrap();
        assert!(segment_names(&vfs).len() < before, "later segments are deleted");
        assert_eq!((wal.next_index(), wal.last_durable_index()), (21, 20));
        assert_eq!(read_all(&wal), expected(1..=20));
        wal.truncate_after(100).unwrap(); // Nothing after 100: no-op.
        assert_eq!(wal.next_index(), 21);
        for i in 21..=50 {
            assert_eq!(wal.append(&payload(i)).unwrap(), i);
        }
        drop(wal);
        let wal = open(&vfs, small_segments());
        assert_eq!(read_all(&wal), expected(1..=50));
        // Cutting exactly at a segment's first record leaves that segment empty.
        let second = parse_segment_name(&segment_names(&vfs)[1]).unwrap();
        wal.truncate_after(second - 1).unwrap();
        assert_eq!(read_all(&wal), expected(1..=second - 1));
        assert_eq!(wal.append(&payload(second)).unwrap(), second);
        // Truncating everything empties the log; indices restart at its first index.
        wal.truncate_after(0).unwrap();
        assert_eq!((wal.first_index(), wal.next_index()), (1, 1));
        assert!(read_all(&wal).is_empty());
        assert_eq!(wal.append(&payload(1)).unwrap(), 1);
        drop(wal);
        let wal = open(&vfs, small_segments());
        assert_eq!(read_all(&wal), expected(1..=1));
    }

    #[test]
    fn purge_before_deletes_old_segments() {
        let vfs = SimVfs::new(7);
        let wal = open(&vfs, unpreallocated(small_segments()));
        for i in 1..=100 {
            wal.append(&payload(i)).unwrap();
        }
        let names = segment_names(&vfs);
        wal.purge_before(50).unwrap();
        let first = wal.first_index();
        assert!(first > 1 && first <= 50, "first index {first}");
        let left = segment_names(&vfs);
        assert_eq!(left[0], segment_file_name(first));
        assert!(left.len() < names.len());
        assert!(matches!(wal.read(first - 1, 10), Err(Error::Invalid(_))));
        assert_eq!(read_all(&wal), expected(first..=100));
        assert_eq!(wal.size_bytes(), left.iter().map(|n| vfs.file_len(&dir().join(n)).unwrap()).sum());
        drop(wal);
        let wal = open(&vfs, unpreallocated(small_segments()));
        assert_eq!(wal.first_index(), first);
        assert_eq!(read_all(&wal), expected(first..=100));
        assert!(matches!(wal.truncate_after(first - 2), Err(Error::Invalid(_))));
        // Purging past the end keeps the newest segment.
        wal.purge_before(u64::MAX).unwrap();
        assert_eq!(segment_names(&vfs).len(), 1);
        let kept = wal.first_index();
        assert_eq!(read_all(&wal), expected(kept..=100));
        assert_eq!(wal.append(&payload(101)).unwrap(), 101);
    }

    #[test]
    fn fsync_failure_poisons_the_log() {
        let vfs = SimVfs::new(8);
        let wal = open(&vfs, WalOptions::default());
        for i in 1..=3 {
            wal.append(&payload(i)).unwrap();
        }
        vfs.update_faults(|f| f.fsync_fail_next = 1);
        let Err(Error::Poisoned(reason)) = wal.append(b"lost") else { panic!("expected Poisoned") };
        assert!(reason.contains(&segment_file_name(1)) && reason.contains("fsync"), "{reason}");
        assert!(reason.contains("EIO"), "names the OS error: {reason}");
        vfs.clear_faults();
        match wal.append(b"later") {
            Err(Error::Poisoned(later)) => assert_eq!(later, reason),
            other => panic!("expected Poisoned, got {other:?}"),
        }
        assert!(matches!(wal.truncate_after(1), Err(Error::Poisoned(_))));
        assert!(matches!(wal.purge_before(1), Err(Error::Poisoned(_))));
        assert_eq!(wal.poisoned(), Some(reason));
        assert_eq!(read_all(&wal), expected(1..=3), "durable records stay readable");
        assert_eq!(wal.last_durable_index(), 3);
        drop(wal);
        let wal = open(&vfs, WalOptions::default());
        assert!(wal.poisoned().is_none());
        let next = wal.append(b"after restart").unwrap();
        assert!(next == 4 || next == 5, "the unsynced record may or may not have reached the disk");
    }

    #[test]
    fn disk_full_rolls_back_and_recovers() {
        let vfs = SimVfs::new(9);
        let wal = open(&vfs, unpreallocated(WalOptions::default()));
        for i in 1..=10 {
            wal.append(&payload(i)).unwrap();
        }
        let used = vfs.used_bytes();
        vfs.update_faults(|f| f.disk_bytes_max = Some(used + 30));
        assert!(matches!(wal.append(&[1u8; 200]), Err(Error::DiskFull(_))));
        assert!(matches!(wal.append(&[1u8; 200]), Err(Error::DiskFull(_))));
        assert_eq!((wal.next_index(), wal.last_durable_index()), (11, 10));
        assert!(wal.poisoned().is_none());
        assert_eq!(read_all(&wal), expected(1..=10));
        assert_eq!(vfs.used_bytes(), used, "the failed write left nothing behind");
        vfs.clear_faults();
        assert_eq!(wal.append(&payload(11)).unwrap(), 11);
        drop(wal);
        let wal = open(&vfs, WalOptions::default());
        assert_eq!(read_all(&wal), expected(1..=11));
    }

    #[test]
    fn write_error_fails_the_batch_without_poisoning() {
        let vfs = SimVfs::new(15);
        let wal = open(&vfs, unpreallocated(WalOptions::default()));
        wal.append(&payload(1)).unwrap();
        vfs.update_faults(|f| f.eio_on = Some((SimOp::Write, 1)));
        assert!(matches!(wal.append(&payload(2)), Err(Error::Io { .. })));
        assert!(wal.poisoned().is_none());
        assert_eq!(wal.append(&payload(2)).unwrap(), 2);
        vfs.update_faults(|f| f.eio_on = Some((SimOp::SetLen, 1)));
        vfs.update_faults(|f| f.disk_bytes_max = Some(0));
        let Err(Error::Poisoned(reason)) = wal.append(&payload(3)) else { panic!("a failed rollback poisons") };
        assert!(reason.contains("rolling") && reason.contains("No space"), "{reason}");
    }

    #[test]
    fn disk_full_while_starting_a_segment_leaves_no_stray_file() {
        let vfs = SimVfs::new(10);
        let wal = open(&vfs, unpreallocated(small_segments()));
        let mut i = 1;
        while segment_names(&vfs).len() < 2 {
            wal.append(&payload(i)).unwrap();
            i += 1;
        }
        // Fill the active segment until a 200-byte record no longer fits in it.
        let frame = (WAL_FRAME_HEADER_BYTES + 200) as u64;
        let active = |vfs: &SimVfs| dir().join(segment_names(vfs).last().unwrap());
        while vfs.file_len(&active(&vfs)).unwrap() + frame <= 512 {
            assert_eq!(wal.append(&[7u8; 200]).unwrap(), i);
            i += 1;
        }
        let names = segment_names(&vfs);
        // Too little room for the new segment's 32-byte header.
        let used = vfs.used_bytes();
        vfs.update_faults(|f| f.disk_bytes_max = Some(used + 10));
        let err = wal.append(&[7u8; 200]).unwrap_err();
        assert!(matches!(&err, Error::DiskFull(m) if m.contains("header")), "{err:?}");
        assert_eq!(segment_names(&vfs), names);
        vfs.clear_faults();
        let n = wal.append(b"room again").unwrap();
        assert_eq!(n, i);
        drop(wal);
        let wal = open(&vfs, unpreallocated(small_segments()));
        assert_eq!(wal.next_index(), i + 1);
    }

    #[test]
    fn disk_full_under_concurrency_keeps_indices_gapless() {
        for seed in 0..10 {
            let vfs = SimVfs::new(seed);
            let wal = open(&vfs, small_segments());
            vfs.update_faults(|f| f.disk_bytes_max = Some(3000 + seed * 200));
            let acked: BTreeMap<u64, Vec<u8>> = std::thread::scope(|s| {
                let handles: Vec<_> = (0..8u64)
                    .map(|t| {
                        let wal = &wal;
                        s.spawn(move || {
                            let mut mine = Vec::new();
                            for i in 0..20 {
                                let p = payload(t * 20 + i);
                                match wal.append(&p) {
                                    Ok(n) => mine.push((n, p)),
                                    Err(Error::DiskFull(_)) => {}
                                    Err(e) => panic!("unexpected {e:?}"),
                                }
                            }
                            mine
                        })
                    })
                    .collect();
                handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
            });
            vfs.clear_faults();
            let after = wal.append(b"after").unwrap();
            drop(wal);
            let wal = open(&vfs, small_segments());
            let mut want: Vec<(u64, Vec<u8>)> = acked.into_iter().collect();
            want.push((after, b"after".to_vec()));
            assert_eq!(read_all(&wal), want, "seed {seed}: the log holds exactly the acknowledged records");
            assert_eq!(want.last().unwrap().0, want.len() as u64, "seed {seed}: no gaps");
        }
    }

    #[test]
    fn crash_keeps_every_acknowledged_record() {
        for seed in 0..200u64 {
            let vfs = SimVfs::new(seed);
            let wal = open(&vfs, WalOptions { segment_bytes_max: 2048, ..WalOptions::default() });
            vfs.update_faults(|f| f.power_cut_after_ops = Some(3 + seed % 90));
            let acked: Vec<(u64, Vec<u8>)> = std::thread::scope(|s| {
                let handles: Vec<_> = (0..4u64)
                    .map(|t| {
                        let wal = &wal;
                        s.spawn(move || {
                            let mut mine = Vec::new();
                            for i in 0..25u64 {
                                let p: Vec<u8> = vec![(t * 25 + i) as u8; ((t * 31 + i * 97) % 700) as usize];
                                if t == 0 && i % 5 == 0 {
                                    let Ok(n) = wal.append_batch(&[&p, b"second", &p]) else {
                                        break;
                                    };
                                    mine.extend([(n, p.clone()), (n + 1, b"second".to_vec()), (n + 2, p)]);
                                } else {
                                    let Ok(n) = wal.append(&p) else { break };
                                    mine.push((n, p));
                                }
                            }
                            mine
                        })
                    })
                    .collect();
                handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
            });
            drop(wal);
            vfs.crash();
            let wal = Wal::open(Arc::new(vfs.clone()), &dir(), 1, WalOptions::default())
                .unwrap_or_else(|e| panic!("seed {seed}: recovery failed: {e}"));
            let records: BTreeMap<u64, Vec<u8>> = read_all(&wal).into_iter().collect();
            let keys: Vec<u64> = records.keys().copied().collect();
            assert_eq!(keys, (1..wal.next_index()).collect::<Vec<_>>(), "seed {seed}: gapless from 1");
            for (index, p) in &acked {
                assert_eq!(records.get(index), Some(p), "seed {seed}: acknowledged record {index} lost");
            }
            let next = wal.next_index();
            assert_eq!(wal.append(b"after the crash").unwrap(), next);
        }
    }

    /// Appends records 1..=3, each in its own group-commit write.
    fn three_writes(vfs: &SimVfs) {
        let wal = open(vfs, WalOptions::default());
        for i in 1..=3 {
            wal.append(&payload(i + 10)).unwrap();
        }
    }

    #[test]
    fn bit_flip_followed_by_a_later_write_is_corruption() {
        let vfs = SimVfs::new(11);
        three_writes(&vfs);
        let name = segment_file_name(1);
        // Record 1 starts right after the header; flip a bit of its payload.
        assert!(vfs.flip_bit(&dir().join(&name), 32 + 24 + 3, 5));
        match Wal::open(Arc::new(vfs.clone()), &dir(), 1, WalOptions::default()) {
            Err(Error::Corrupted { file, detail }) => {
                assert_eq!(file, name);
                assert!(detail.contains("byte offset 32:"), "{detail}");
            }
            other => panic!("expected Corrupted, got {:?}", other.err()),
        }
    }

    #[test]
    fn bit_flip_in_the_final_write_reads_as_a_torn_tail() {
        // The documented limit of the rule: nothing follows the damaged write, so it cannot
        // be told from a crash in the middle of it.
        let vfs = SimVfs::new(12);
        three_writes(&vfs);
        let len = written_len(&vfs, &dir().join(segment_file_name(1)));
        assert!(vfs.flip_bit(&dir().join(segment_file_name(1)), len - 1, 0));
        let wal = open(&vfs, WalOptions::default());
        assert_eq!(read_all(&wal), (1..=2).map(|i| (i, payload(i + 10))).collect::<Vec<_>>());
        assert_eq!(wal.append(b"x").unwrap(), 3);
    }

    #[test]
    fn damage_in_an_older_segment_is_corruption() {
        let vfs = SimVfs::new(13);
        let wal = open(&vfs, small_segments());
        for i in 1..=30 {
            wal.append(&payload(i)).unwrap();
        }
        drop(wal);
        let names = segment_names(&vfs);
        let first = dir().join(&names[0]);
        let len = vfs.file_len(&first).unwrap();
        // The last byte of the first segment belongs to its last record.
        assert!(vfs.flip_bit(&first, len - 1, 1));
        match Wal::open(Arc::new(vfs.clone()), &dir(), 1, WalOptions::default()) {
            Err(Error::Corrupted { file, detail }) => {
                assert_eq!(file, names[0]);
                assert!(detail.contains("byte offset"), "{detail}");
            }
            other => panic!("expected Corrupted, got {:?}", other.err()),
        }
        vfs.flip_bit(&first, len - 1, 1);
        // A damaged header in an older segment is corruption too.
        assert!(vfs.flip_bit(&first, 20, 0));
        let err = Wal::open(Arc::new(vfs.clone()), &dir(), 1, WalOptions::default()).err().unwrap();
        assert!(err.is_corruption() && err.to_string().contains("byte offset 0"), "{err}");
    }

    #[test]
    fn a_missing_segment_is_corruption() {
        let vfs = SimVfs::new(14);
        let wal = open(&vfs, small_segments());
        for i in 1..=40 {
            wal.append(&payload(i)).unwrap();
        }
        drop(wal);
        let names = segment_names(&vfs);
        assert!(names.len() >= 3);
        vfs.remove(&dir().join(&names[1])).unwrap();
        match Wal::open(Arc::new(vfs.clone()), &dir(), 1, WalOptions::default()) {
            Err(Error::Corrupted { file, detail }) => {
                assert_eq!(file, names[2]);
                assert!(detail.contains(&names[0]) && detail.contains("gap"), "{detail}");
            }
            other => panic!("expected Corrupted, got {:?}", other.err()),
        }
    }

    #[test]
    fn frame_checksum_covers_payload_then_header() {
        let frames = encode_frames(&[b"abc"]).unwrap();
        let entry = Entry {
            first_index: 7,
            count: 1,
            frames,
            outcome: Arc::new(OnceLock::new()),
            waiter: std::thread::current(),
        };
        let (buf, offsets) = seal_batch(std::slice::from_ref(&entry), 27, 32);
        assert_eq!(offsets, vec![32]);
        let mut covered = b"abc".to_vec();
        covered.extend_from_slice(&buf[0..4]);
        covered.extend_from_slice(&buf[8..24]);
        assert_eq!(u32_at(&buf, 4), crc32c::crc32c(&covered));
        assert_eq!((u32_at(&buf, 0), u64_at(&buf, 8), u64_at(&buf, 16)), (3, 7, 7));
        let header = encode_header(7);
        assert_eq!(&header[..8], b"BLWKWAL\0");
        assert_eq!(decode_header(&header), Ok(7));
    }

    #[test]
    fn preallocated_space_reads_as_the_end_and_is_reused() {
        let vfs = SimVfs::new(21);
        let path = dir().join(segment_file_name(1));
        let wal = open(&vfs, WalOptions::default());
        wal.append(&payload(1)).unwrap();
        let zeroed = vfs.file_len(&path).unwrap();
        let end = WAL_SEGMENT_HEADER_BYTES as u64 + (WAL_FRAME_HEADER_BYTES + payload(1).len()) as u64;
        assert_eq!(zeroed, end + WAL_PREALLOCATE_BYTES, "the first write zeroes ahead");
        for i in 2..=50 {
            wal.append(&payload(i)).unwrap();
        }
        assert_eq!(vfs.file_len(&path), Some(zeroed), "writes inside the zeroed part do not grow the file");
        drop(wal);
        let wal = open(&vfs, WalOptions::default());
        assert_eq!(read_all(&wal), expected(1..=50));
        assert_eq!(vfs.file_len(&path), Some(zeroed), "recovery keeps the zeroed part");
        assert_eq!(wal.append(&payload(51)).unwrap(), 51);
        // A write past the zeroed part zeroes ahead again.
        let big = vec![9u8; WAL_PREALLOCATE_BYTES as usize];
        assert_eq!(wal.append(&big).unwrap(), 52);
        assert_eq!(vfs.file_len(&path), Some(wal.size_bytes() + WAL_PREALLOCATE_BYTES));
        drop(wal);
        let wal = open(&vfs, WalOptions::default());
        assert_eq!(wal.read(52, usize::MAX).unwrap(), vec![(52, big)]);
        assert_eq!(wal.next_index(), 53);

        // Never past segment_bytes_max: small segments stay small.
        let vfs = SimVfs::new(22);
        let wal = open(&vfs, small_segments());
        for i in 1..=60 {
            wal.append(&payload(i)).unwrap();
        }
        for name in segment_names(&vfs) {
            assert!(vfs.file_len(&dir().join(&name)).unwrap() <= 512, "{name}");
        }
        drop(wal);
        assert_eq!(read_all(&open(&vfs, small_segments())), expected(1..=60));
    }

    #[test]
    fn a_torn_write_in_the_zeroed_part_is_cut_and_a_zeroed_record_is_a_gap() {
        let vfs = SimVfs::new(23);
        let path = dir().join(segment_file_name(1));
        let wal = open(&vfs, WalOptions::default());
        for i in 1..=5 {
            wal.append(&payload(i)).unwrap();
        }
        let end = wal.size_bytes();
        drop(wal);
        // Half a frame of a write whose fsync never returned, then the zeros.
        let file = vfs.open(&path, false).unwrap();
        file.write_at(&[0xAB; 20], end).unwrap();
        file.sync_data().unwrap();
        let wal = open(&vfs, WalOptions::default());
        assert_eq!(read_all(&wal), expected(1..=5));
        assert_eq!(vfs.file_len(&path), Some(end), "the torn write is cut off");
        assert_eq!(wal.append(&payload(6)).unwrap(), 6);
        drop(wal);
        assert_eq!(read_all(&open(&vfs, WalOptions::default())), expected(1..=6));

        // In an older segment, a record read back as zeros is not the zeroed tail: the
        // next segment no longer follows on.
        let vfs = SimVfs::new(24);
        let wal = open(&vfs, small_segments());
        for i in 1..=30 {
            wal.append(&payload(i)).unwrap();
        }
        let first = wal.lock_state().segments[0].offsets.clone();
        drop(wal);
        let last = *first.last().unwrap();
        let file = vfs.open(&dir().join(segment_file_name(1)), false).unwrap();
        let len = file.len().unwrap();
        file.write_at(&vec![0u8; (len - last) as usize], last).unwrap();
        file.sync_data().unwrap();
        let err = Wal::open(Arc::new(vfs.clone()), &dir(), 1, small_segments()).err().expect("refused");
        assert!(matches!(&err, Error::Corrupted { detail, .. } if detail.contains("gap")), "{err:?}");
    }

    #[test]
    fn a_full_disk_still_takes_records_into_the_zeroed_part() {
        let vfs = SimVfs::new(25);
        let wal = open(&vfs, WalOptions::default());
        wal.append(&payload(1)).unwrap();
        // No byte left on the disk: records still go into the zeroed part.
        let used = vfs.used_bytes();
        vfs.update_faults(|f| f.disk_bytes_max = Some(used));
        for i in 2..=20 {
            assert_eq!(wal.append(&payload(i)).unwrap(), i);
        }
        // A record past it does not fit.
        let big = vec![5u8; WAL_PREALLOCATE_BYTES as usize];
        assert!(matches!(wal.append(&big), Err(Error::DiskFull(_))));
        assert!(wal.poisoned().is_none());
        // Room for the record but not for zeros after it: the record is written alone.
        let used = vfs.used_bytes();
        vfs.update_faults(|f| f.disk_bytes_max = Some(used + WAL_PREALLOCATE_BYTES));
        assert_eq!(wal.append(&big[..WAL_PREALLOCATE_BYTES as usize / 2]).unwrap(), 21);
        vfs.clear_faults();
        assert_eq!(wal.append(&payload(22)).unwrap(), 22);
        drop(wal);
        let wal = open(&vfs, WalOptions::default());
        assert_eq!(wal.next_index(), 23);
        assert_eq!(wal.read(21, usize::MAX).unwrap()[0].1.len(), WAL_PREALLOCATE_BYTES as usize / 2);
    }
}
