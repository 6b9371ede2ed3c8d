//! Checkpoint images: how a node that has fallen behind the leader's purged log (or a new
//! node) gets the state it cannot replay.
//!
//! The leader copies its data file as of a durable checkpoint
//! ([`storage::Store::copy_checkpoint`]) into a file of the image's own
//! ([`build_outgoing`], `checkpoint-outgoing-N`), with the log record at the checkpoint's
//! applied index (Raft's last entry in the image, which the receiver keeps as the first
//! record of its log) and a checksum of the whole in memory. openraft reads it in chunks
//! and sends them over the peer network. The receiver writes the chunks' data-file bytes
//! straight into a file of the receive's own ([`Incoming`]), checks the whole when the
//! last arrives, saves it (fsynced, renamed into place, then the [`INCOMING_FILE`] header)
//! and restarts: the data file of a running store is never swapped. On the next open,
//! [`finish_install`] puts the image in place before the store opens. Neither end holds
//! the data file in memory, so an image is bounded by the disks.
//!
//! # Image format (docs/format.md, "Checkpoint image")
//!
//! ```text
//!   magic "BWCKPT02" | data_len u64 | data (the data file)
//!   | applied_index u64 | record_len u32 | record | crc32c u32 of everything before it
//! ```
//!
//! All integers little-endian.

use std::path::Path;
use std::sync::Arc;

use storage::vfs::Vfs;
use storage::wal::{Wal, WalOptions};

/// The first bytes of a checkpoint image.
pub const MAGIC: &[u8; 8] = b"BWCKPT02";
/// A received image waiting to be installed at the next open.
pub const INCOMING_FILE: &str = "checkpoint-incoming";
/// Bytes of the image before the data file: magic and data length.
const HEADER_BYTES: usize = 8 + 8;

/// A decoded, checked image.
pub struct Image<'a> {
    /// The store's applied index in the image (a log record index).
    pub applied_index: u64,
    /// The log record at `applied_index`, as the log stores it.
    pub record: &'a [u8],
    /// The data file.
    pub data: &'a [u8],
}

/// Builds an image in one buffer (tests: nodes stream images through files, see
/// [`build_outgoing`] and [`Incoming`]): `copy` appends the data file to the buffer it is
/// given and returns the applied index; `record` returns the log record at that index.
#[cfg(test)]
fn build(
    copy: impl FnOnce(&mut Vec<u8>) -> std::io::Result<u64>,
    record: impl FnOnce(u64) -> std::io::Result<Vec<u8>>,
) -> std::io::Result<(u64, Vec<u8>)> {
    let mut out = Vec::new();
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&0u64.to_le_bytes());
    let applied_index = copy(&mut out)?;
    let data_len = (out.len() - HEADER_BYTES) as u64;
    out[8..16].copy_from_slice(&data_len.to_le_bytes());
    let record = record(applied_index)?;
    out.extend_from_slice(&applied_index.to_le_bytes());
    out.extend_from_slice(&(record.len() as u32).to_le_bytes());
    out.extend_from_slice(&record);
    let crc = crc32c::crc32c(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    Ok((applied_index, out))
}

/// Encodes an image from its parts (tests).
#[cfg(test)]
fn encode(applied_index: u64, record: &[u8], data: &[u8]) -> Vec<u8> {
    build(
        |out| {
            out.extend_from_slice(data);
            Ok(applied_index)
        },
        |_| Ok(record.to_vec()),
    )
    .expect("encoding from memory cannot fail")
    .1
}

/// Decodes and checks an image in one buffer (tests; a node checks the image it receives
/// as it saves it, [`Incoming::save`]): checksum, lengths, and that the data file's newest
/// meta slot is at the image's applied index.
#[cfg(test)]
fn decode(bytes: &[u8]) -> Result<Image<'_>, String> {
    if bytes.len() < HEADER_BYTES + 8 + 4 + 4 {
        return Err(format!("checkpoint image of {} bytes is too short", bytes.len()));
    }
    let (body, crc) = bytes.split_at(bytes.len() - 4);
    let want = u32::from_le_bytes(crc.try_into().expect("4 bytes"));
    let got = crc32c::crc32c(body);
    if want != got {
        return Err(format!("checkpoint image checksum mismatch (stored {want:#010x}, computed {got:#010x})"));
    }
    if &body[..8] != MAGIC {
        return Err("not a checkpoint image (bad magic)".into());
    }
    let data_len = u64::from_le_bytes(body[8..16].try_into().expect("8 bytes"));
    let data = usize::try_from(data_len)
        .ok()
        .and_then(|n| body.get(HEADER_BYTES..HEADER_BYTES.checked_add(n)?))
        .ok_or("checkpoint image: data truncated")?;
    let rest = &body[HEADER_BYTES + data.len()..];
    if rest.len() < 12 {
        return Err("checkpoint image: trailer truncated".into());
    }
    let applied_index = u64::from_le_bytes(rest[..8].try_into().expect("8 bytes"));
    let record_len = u32::from_le_bytes(rest[8..12].try_into().expect("4 bytes")) as usize;
    let record = &rest[12..];
    if record.len() != record_len {
        return Err(format!("checkpoint image: record is {} bytes, header says {record_len}", record.len()));
    }
    let meta_index = storage::image_applied_index(data, data.len() as u64).map_err(|e| e.to_string())?;
    if meta_index != applied_index {
        return Err(format!("checkpoint image: header says applied index {applied_index}, data file {meta_index}"));
    }
    Ok(Image { applied_index, record, data })
}

fn read_all(vfs: &dyn Vfs, path: &Path) -> std::io::Result<Vec<u8>> {
    let file = vfs.open(path, false)?;
    let len = file.len()?;
    let mut buf = vec![0u8; len as usize];
    file.read_exact_at(&mut buf, 0)?;
    Ok(buf)
}

/// The data file of a saved image (see [`save_incoming`]).
pub const INCOMING_DATA_FILE: &str = "checkpoint-incoming.db";
/// The first bytes of a saved image's header file.
const SAVED_MAGIC: &[u8; 8] = b"BWCKPTIN";
/// Bytes read at a time when a saved data file is checked.
const CHECK_CHUNK_BYTES: usize = 8 << 20;

fn invalid(what: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, what)
}

fn write_file(vfs: &dyn Vfs, dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = dir.join(format!("{name}.new"));
    let file = vfs.open(&tmp, true)?;
    file.set_len(0)?;
    for (i, chunk) in bytes.chunks(1 << 20).enumerate() {
        file.write_at(chunk, (i << 20) as u64)?;
    }
    file.sync_data()?;
    vfs.rename(&tmp, &dir.join(name))
}

/// Saves a checked image for [`finish_install`] as two files, each written under a
/// temporary name, fsynced and renamed: the data file as [`INCOMING_DATA_FILE`] (so that
/// installing it is a rename), then the header as [`INCOMING_FILE`], whose presence says
/// the image is complete:
///
/// ```text
///   magic "BWCKPTIN" | applied_index u64 | record_len u32 | record
///   | data_len u64 | crc32c of the data file u32 | crc32c of everything before it u32
/// ```
pub fn save_incoming(vfs: &dyn Vfs, dir: &Path, image: &Image<'_>) -> std::io::Result<()> {
    write_file(vfs, dir, INCOMING_DATA_FILE, image.data)?;
    let (len, crc) = (image.data.len() as u64, crc32c::crc32c(image.data));
    save_incoming_header(vfs, dir, image.applied_index, image.record, len, crc)
}

/// Writes the header file of a saved image whose data file is in place (see
/// [`save_incoming`]).
fn save_incoming_header(
    vfs: &dyn Vfs,
    dir: &Path,
    applied_index: u64,
    record: &[u8],
    data_len: u64,
    data_crc: u32,
) -> std::io::Result<()> {
    let mut header = Vec::with_capacity(40 + record.len());
    header.extend_from_slice(SAVED_MAGIC);
    header.extend_from_slice(&applied_index.to_le_bytes());
    header.extend_from_slice(&(record.len() as u32).to_le_bytes());
    header.extend_from_slice(record);
    header.extend_from_slice(&data_len.to_le_bytes());
    header.extend_from_slice(&data_crc.to_le_bytes());
    let crc = crc32c::crc32c(&header);
    header.extend_from_slice(&crc.to_le_bytes());
    write_file(vfs, dir, INCOMING_FILE, &header)?;
    vfs.sync_dir(dir)
}

/// A saved image's header: (applied index, record, data length, data CRC).
fn decode_saved(bytes: &[u8]) -> Result<(u64, &[u8], u64, u32), String> {
    if bytes.len() < 8 + 8 + 4 + 8 + 4 + 4 {
        return Err(format!("{} bytes is too short", bytes.len()));
    }
    let (body, crc) = bytes.split_at(bytes.len() - 4);
    let (want, got) = (u32::from_le_bytes(crc.try_into().expect("4 bytes")), crc32c::crc32c(body));
    if want != got {
        return Err(format!("checksum mismatch (stored {want:#010x}, computed {got:#010x})"));
    }
    if &body[..8] != SAVED_MAGIC {
        return Err("bad magic".into());
    }
    let applied = u64::from_le_bytes(body[8..16].try_into().expect("8 bytes"));
    let record_len = u32::from_le_bytes(body[16..20].try_into().expect("4 bytes")) as usize;
    if body.len() != 20 + record_len + 12 {
        return Err(format!("{} bytes do not hold a record of {record_len}", body.len()));
    }
    let record = &body[20..20 + record_len];
    let rest = &body[20 + record_len..];
    let data_len = u64::from_le_bytes(rest[..8].try_into().expect("8 bytes"));
    let data_crc = u32::from_le_bytes(rest[8..12].try_into().expect("4 bytes"));
    Ok((applied, record, data_len, data_crc))
}

/// Installs a saved image before the store opens, if there is one: returns its applied
/// index. Every step can be redone, so a crash part way leaves the image to install again:
///
/// 1. If the data file is already at or past the image, the image is dropped (this is
///    also how a crash after step 4 ends).
/// 2. The saved data file is checked: its length, its CRC32C, its meta slot.
/// 3. If the log already holds the image's last record (same bytes), the log is kept, as
///    Raft requires (its later entries may count towards a commit). Else every segment is
///    removed and the log restarts at the image's applied index, holding that one record.
/// 4. The saved data file is renamed over `data.db`.
/// 5. The header is removed.
///
/// A damaged image stops the node with the reason: it is never half installed.
pub fn finish_install(vfs: &Arc<dyn Vfs>, dir: &Path, wal_opts: &WalOptions) -> std::io::Result<Option<u64>> {
    remove_stale_transfers(vfs.as_ref(), dir)?;
    let path = dir.join(INCOMING_FILE);
    let data_in = dir.join(INCOMING_DATA_FILE);
    for stale in [format!("{INCOMING_FILE}.new"), format!("{INCOMING_DATA_FILE}.new")] {
        if vfs.exists(&dir.join(&stale)) {
            vfs.remove(&dir.join(stale))?;
        }
    }
    if !vfs.exists(&path) {
        // A save cut short before its header: nothing to install.
        if vfs.exists(&data_in) {
            vfs.remove(&data_in)?;
        }
        return Ok(None);
    }
    let header = read_all(vfs.as_ref(), &path)?;
    let (a, record, data_len, data_crc) =
        decode_saved(&header).map_err(|e| invalid(format!("{INCOMING_FILE}: {e}")))?;
    let data_path = dir.join(storage::btree::DATA_FILE);
    if vfs.exists(&data_path) {
        let file = vfs.open(&data_path, false)?;
        let len = file.len()?;
        let mut meta = vec![0u8; (2 * storage::page::PAGE_BYTES).min(len as usize)];
        file.read_exact_at(&mut meta, 0)?;
        if storage::image_applied_index(&meta, len).is_ok_and(|current| current >= a) {
            tracing::info!(image = a, "the data file is already at or past the received checkpoint");
            if vfs.exists(&data_in) {
                vfs.remove(&data_in)?;
            }
            vfs.remove(&path)?;
            return vfs.sync_dir(dir).map(|()| None);
        }
    }
    if !vfs.exists(&data_in) {
        return Err(invalid(format!("{INCOMING_FILE} names a checkpoint at {a} but {INCOMING_DATA_FILE} is missing")));
    }
    {
        let file = vfs.open(&data_in, false)?;
        let len = file.len()?;
        if len != data_len {
            return Err(invalid(format!("{INCOMING_DATA_FILE} is {len} bytes, its header says {data_len}")));
        }
        let mut crc = 0u32;
        let mut buf = vec![0u8; CHECK_CHUNK_BYTES];
        let mut at = 0u64;
        let mut meta = Vec::new();
        while at < len {
            let n = (len - at).min(CHECK_CHUNK_BYTES as u64) as usize;
            file.read_exact_at(&mut buf[..n], at)?;
            crc = crc32c::crc32c_append(crc, &buf[..n]);
            if at == 0 {
                meta.extend_from_slice(&buf[..n.min(2 * storage::page::PAGE_BYTES)]);
            }
            at += n as u64;
        }
        if crc != data_crc {
            return Err(invalid(format!("{INCOMING_DATA_FILE}: checksum mismatch")));
        }
        let meta_index = storage::image_applied_index(&meta, len).map_err(|e| invalid(e.to_string()))?;
        if meta_index != a {
            return Err(invalid(format!("{INCOMING_DATA_FILE} is at {meta_index}, its header says {a}")));
        }
    }
    let wal_dir = dir.join(storage::store::WAL_DIR);
    vfs.create_dir_all(&wal_dir)?;
    let keeps = {
        let wal = Wal::open(vfs.clone(), &wal_dir, a, wal_opts.clone()).map_err(std::io::Error::other)?;
        let held = wal.read(a, record.len() + 64).map_err(std::io::Error::other)?;
        held.first().is_some_and(|(i, r)| *i == a && r.as_slice() == record)
    };
    if !keeps {
        for name in vfs.list(&wal_dir)? {
            vfs.remove(&wal_dir.join(name))?;
        }
        vfs.sync_dir(&wal_dir)?;
        let wal = Wal::open(vfs.clone(), &wal_dir, a, wal_opts.clone()).map_err(std::io::Error::other)?;
        let at = wal.append(record).map_err(std::io::Error::other)?;
        if at != a {
            return Err(std::io::Error::other(format!("the fresh log wrote record {at}, expected {a}")));
        }
    }
    vfs.rename(&data_in, &data_path)?;
    vfs.sync_dir(dir)?;
    vfs.remove(&path)?;
    vfs.sync_dir(dir)?;
    tracing::info!(applied_index = a, kept_log = keeps, "installed a checkpoint received from the leader");
    Ok(Some(a))
}

/// The prefix of the files an image being sent is built in (one per image; removed when
/// the image is dropped, and at the next open if the process died first).
pub const OUTGOING_PREFIX: &str = "checkpoint-outgoing-";
/// The most bytes an image may carry after its data file (applied index, record length,
/// record, checksum): one log record and its framing.
pub const TAIL_BYTES_MAX: usize = 12 + (64 << 20) + 4;

/// Snapshot data as openraft handles it (`TypeConfig::SnapshotData`): a checkpoint image
/// streamed from a file on the leader ([`Outgoing`]) and into one on the receiver
/// ([`Incoming`]), so that an image's size is bounded by the disks, not by memory; or
/// bytes in memory (the register state machine of the in-process tests, and the empty
/// data of a snapshot that only names a checkpoint).
///
/// The files are read and written synchronously inside the poll methods, on Raft's task,
/// as the data file itself is.
pub enum ImageData {
    /// Bytes in memory.
    Memory(std::io::Cursor<Vec<u8>>),
    /// An image being sent.
    Outgoing(Outgoing),
    /// An image being received.
    Incoming(Incoming),
    /// An image that could not be built, and why: its first read fails with that, which
    /// [`send_in_chunks`] answers as the target being unreachable (openraft 0.9 would stop
    /// a leader whose state machine failed to hand over an image at all).
    Failed(String),
}

impl ImageData {
    /// Empty bytes in memory.
    pub fn empty() -> ImageData {
        ImageData::Memory(std::io::Cursor::new(Vec::new()))
    }

    /// The bytes of [`ImageData::Memory`]; an error for an image in a file.
    pub fn into_memory(self) -> Result<Vec<u8>, String> {
        match self {
            ImageData::Memory(c) => Ok(c.into_inner()),
            _ => Err("snapshot data in a file where bytes in memory were expected".into()),
        }
    }
}

fn unsupported(what: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::Unsupported, what.to_string())
}

/// A checkpoint image read for sending: its header and trailer in memory, its data file
/// copied into a file of its own (the data file itself changes at the next checkpoint).
/// The copy may still be under way on a thread of its own ([`start_outgoing`]): reads of
/// bytes not yet copied wait for them.
pub struct Outgoing {
    head: [u8; HEADER_BYTES],
    data: Arc<dyn storage::vfs::VfsFile>,
    data_len: u64,
    applied_index: u64,
    /// The trailer; empty until a background copy is done.
    tail: Vec<u8>,
    tail_len: u64,
    pos: u64,
    vfs: Arc<dyn Vfs>,
    path: std::path::PathBuf,
    /// The background copy's progress, while it may still run.
    progress: Option<Arc<Progress>>,
}

/// How far the background copy of an image's data file has got ([`start_outgoing`]).
#[derive(Default)]
struct Progress {
    state: std::sync::Mutex<ProgressState>,
}

#[derive(Default)]
struct ProgressState {
    /// Bytes of the data file copied so far.
    copied: u64,
    /// The trailer once the copy is done, or why it failed.
    done: Option<Result<Vec<u8>, String>>,
    /// The reader waiting for more.
    waker: Option<std::task::Waker>,
    /// Set when the image is dropped: the copy stops at its next piece.
    dropped: bool,
}

impl Progress {
    fn lock(&self) -> std::sync::MutexGuard<'_, ProgressState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records that `copied` bytes are copied; an error if the image was dropped.
    fn copied(&self, copied: u64) -> std::io::Result<()> {
        let mut s = self.lock();
        if s.dropped {
            return Err(std::io::Error::other("the image was dropped while it was copied"));
        }
        s.copied = copied;
        if let Some(w) = s.waker.take() {
            w.wake();
        }
        Ok(())
    }

    fn finish(&self, done: Result<Vec<u8>, String>) {
        let mut s = self.lock();
        s.done = Some(done);
        if let Some(w) = s.waker.take() {
            w.wake();
        }
    }
}

impl Outgoing {
    /// The image's length in bytes.
    pub fn len(&self) -> u64 {
        HEADER_BYTES as u64 + self.data_len + self.tail_len
    }

    /// Never empty: an image has at least its header and trailer.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The applied index the image carries.
    pub fn applied_index(&self) -> u64 {
        self.applied_index
    }

    /// Whether bytes from `at` can be read now: how many (at least one, unless `at` is
    /// the end), or Pending (`cx` is woken when more are copied), or why the copy failed.
    fn poll_readable(&mut self, cx: &mut std::task::Context<'_>, at: u64) -> std::task::Poll<std::io::Result<u64>> {
        let head = HEADER_BYTES as u64;
        let tail_at = head + self.data_len;
        let Some(progress) = &self.progress else { return std::task::Poll::Ready(Ok(self.len().saturating_sub(at))) };
        if at < head {
            return std::task::Poll::Ready(Ok(head - at));
        }
        let mut s = progress.lock();
        if at < tail_at && s.copied > at - head {
            return std::task::Poll::Ready(Ok(s.copied - (at - head)));
        }
        match &s.done {
            Some(Ok(tail)) => {
                self.tail = tail.clone();
                drop(s);
                self.progress = None;
                std::task::Poll::Ready(Ok(self.len().saturating_sub(at)))
            }
            Some(Err(e)) => std::task::Poll::Ready(Err(std::io::Error::other(format!(
                "the copy of the data file for this image failed: {e}"
            )))),
            None => {
                s.waker = Some(cx.waker().clone());
                std::task::Poll::Pending
            }
        }
    }

    /// Reads at most `max` bytes at `at` (see [`Outgoing::poll_readable`]).
    fn read_at(&self, buf: &mut [u8], at: u64, max: u64) -> std::io::Result<usize> {
        let head = HEADER_BYTES as u64;
        let buf_len = buf.len().min(usize::try_from(max).unwrap_or(usize::MAX));
        let buf = &mut buf[..buf_len];
        if at < head {
            let from = &self.head[at as usize..];
            let n = from.len().min(buf.len());
            buf[..n].copy_from_slice(&from[..n]);
            Ok(n)
        } else if at < head + self.data_len {
            let n = ((head + self.data_len - at) as usize).min(buf.len());
            self.data.read_exact_at(&mut buf[..n], at - head)?;
            Ok(n)
        } else {
            let from = self.tail.get((at - head - self.data_len) as usize..).unwrap_or(&[]);
            let n = from.len().min(buf.len());
            buf[..n].copy_from_slice(&from[..n]);
            Ok(n)
        }
    }
}

impl Drop for Outgoing {
    fn drop(&mut self) {
        if let Some(p) = &self.progress {
            p.lock().dropped = true;
        }
        remove_off_task(&self.vfs, &self.path, self.data_len);
    }
}

/// Files up to this size are removed on the task that drops them; bigger ones on a thread
/// of their own, since unlinking a file of hundreds of megabytes (its extents and cached
/// pages) takes long enough to make a Raft reply miss its timeout.
pub const INLINE_REMOVE_BYTES_MAX: u64 = 8 << 20;

/// Removes `path` (`len` bytes): inline if it is small, else on a thread of its own.
fn remove_off_task(vfs: &Arc<dyn Vfs>, path: &Path, len: u64) {
    if len > INLINE_REMOVE_BYTES_MAX {
        let (vfs, path) = (vfs.clone(), path.to_path_buf());
        let spawned = std::thread::Builder::new().name("bulwark-remove".into()).spawn({
            let (vfs, path) = (vfs.clone(), path.clone());
            move || {
                let _ = vfs.remove(&path);
            }
        });
        if spawned.is_err() {
            let _ = vfs.remove(&path);
        }
    } else {
        let _ = vfs.remove(path);
    }
}

/// Removes the files of images being sent or received that a previous process left behind.
pub fn remove_stale_transfers(vfs: &dyn Vfs, dir: &Path) -> std::io::Result<()> {
    let names = match vfs.list(dir) {
        Ok(names) => names,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for name in names {
        if name.starts_with(OUTGOING_PREFIX) || name.starts_with(RECEIVING_PREFIX) {
            vfs.remove(&dir.join(name))?;
        }
    }
    Ok(())
}

/// How [`build_outgoing`] and [`start_outgoing`] copy a data file: hand the first
/// function the checkpoint's applied index and the file's length before the first byte,
/// then the second the file, in order, in pieces; return the applied index and length
/// ([`storage::Store::copy_checkpoint`]).
pub type CopyStart<'a> = &'a mut dyn FnMut(u64, u64) -> std::io::Result<()>;
/// See [`CopyStart`].
pub type CopySink<'a> = &'a mut dyn FnMut(&[u8]) -> std::io::Result<()>;

fn header(data_len: u64) -> [u8; HEADER_BYTES] {
    let mut head = [0u8; HEADER_BYTES];
    head[..8].copy_from_slice(MAGIC);
    head[8..].copy_from_slice(&data_len.to_le_bytes());
    head
}

/// The length of an image's trailer around a log record of `record_len` bytes.
fn tail_len(record_len: usize) -> u64 {
    (8 + 4 + record_len + 4) as u64
}

fn new_outgoing_path(dir: &Path) -> std::path::PathBuf {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    dir.join(format!("{OUTGOING_PREFIX}{n}"))
}

/// What [`copy_image`] tells when the copy starts: applied index, data length, record.
type CopyStarted<'a> = &'a mut dyn FnMut(u64, u64, &[u8]) -> std::io::Result<()>;

/// Copies a data file into `file` (see [`CopyStart`]) and returns the image's trailer.
/// `started` is told the applied index, the data length and the log record at that
/// index (from `record`) before the first byte is copied; `copied` how many bytes are
/// copied after each piece. An error of either ends the copy.
fn copy_image(
    file: &dyn storage::vfs::VfsFile,
    copy: impl FnOnce(CopyStart<'_>, CopySink<'_>) -> std::io::Result<(u64, u64)>,
    record: impl FnOnce(u64) -> std::io::Result<Vec<u8>>,
    started: CopyStarted<'_>,
    copied: &mut dyn FnMut(u64) -> std::io::Result<()>,
) -> std::io::Result<Vec<u8>> {
    file.set_len(0)?;
    let mut record = Some(record);
    let mut held = None;
    let (mut at, mut data_crc) = (0u64, 0u32);
    let (applied_index, data_len) = copy(
        &mut |a, len| {
            let r = record.take().ok_or_else(|| std::io::Error::other("the copy started twice"))?(a)?;
            started(a, len, &r)?;
            held = Some((a, len, r));
            Ok(())
        },
        &mut |chunk: &[u8]| {
            file.write_at(chunk, at)?;
            data_crc = crc32c::crc32c_append(data_crc, chunk);
            at += chunk.len() as u64;
            copied(at)
        },
    )?;
    let Some((a, len, record)) = held else { return Err(std::io::Error::other("the copy never said where it starts")) };
    if (a, len) != (applied_index, data_len) || at != data_len {
        return Err(invalid(format!(
            "the data file copy is {at} bytes at applied index {applied_index}, it started as {len} bytes at {a}"
        )));
    }
    let mut tail = Vec::with_capacity(tail_len(record.len()) as usize);
    tail.extend_from_slice(&applied_index.to_le_bytes());
    tail.extend_from_slice(&(record.len() as u32).to_le_bytes());
    tail.extend_from_slice(&record);
    let crc = crc32c::crc32c_combine(crc32c::crc32c(&header(data_len)), data_crc, data_len as usize);
    let crc = crc32c::crc32c_append(crc, &tail);
    tail.extend_from_slice(&crc.to_le_bytes());
    Ok(tail)
}

/// Builds an image to send, in a file of its own in `dir`, on the calling thread: `copy`
/// copies the data file as of a durable checkpoint (see [`CopyStart`]); `record` returns
/// the log record at its applied index.
pub fn build_outgoing(
    vfs: &Arc<dyn Vfs>,
    dir: &Path,
    copy: impl FnOnce(CopyStart<'_>, CopySink<'_>) -> std::io::Result<(u64, u64)>,
    record: impl FnOnce(u64) -> std::io::Result<Vec<u8>>,
) -> std::io::Result<Outgoing> {
    let path = new_outgoing_path(dir);
    let data = vfs.open(&path, true)?;
    // Removes the file if the copy fails.
    let mut out = Outgoing {
        head: header(0),
        data: data.clone(),
        data_len: 0,
        applied_index: 0,
        tail: Vec::new(),
        tail_len: 0,
        pos: 0,
        vfs: vfs.clone(),
        path,
        progress: None,
    };
    let mut started = |a, len, _: &[u8]| {
        (out.applied_index, out.data_len) = (a, len);
        Ok(())
    };
    let tail = copy_image(&*data, copy, record, &mut started, &mut |_| Ok(()))?;
    out.head = header(out.data_len);
    out.tail_len = tail.len() as u64;
    out.tail = tail;
    Ok(out)
}

/// Builds an image to send, in a file of its own in `dir`, on a thread of its own, and
/// answers with it as soon as its applied index and length are known: openraft sends its
/// first chunks while the rest is copied, and Raft's own tasks never wait for the copy.
/// `copy` and `record` are as for [`build_outgoing`]; `check` is given the applied index
/// before the first byte is copied, and answers whether to go on (`Some`, whose value
/// comes with the image) or not (`None`: the answer is `None`, the copy stops). A copy
/// that fails after the answer fails the image's next read.
pub fn start_outgoing<T: Send + 'static>(
    vfs: &Arc<dyn Vfs>,
    dir: &Path,
    copy: impl FnOnce(CopyStart<'_>, CopySink<'_>) -> std::io::Result<(u64, u64)> + Send + 'static,
    record: impl FnOnce(u64) -> std::io::Result<Vec<u8>> + Send + 'static,
    check: impl FnOnce(u64) -> std::io::Result<Option<T>> + Send + 'static,
) -> tokio::sync::oneshot::Receiver<std::io::Result<Option<(Outgoing, T)>>> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let (vfs, path) = (vfs.clone(), new_outgoing_path(dir));
    let body = move || {
        let data = match vfs.open(&path, true) {
            Ok(data) => data,
            Err(e) => {
                let _ = tx.send(Err(e));
                return;
            }
        };
        let progress = Arc::new(Progress::default());
        let (mut tx, mut check, mut handed, mut declined) = (Some(tx), Some(check), false, false);
        let mut started = |a, len, record: &[u8]| {
            let Some(check) = check.take() else { return Err(std::io::Error::other("the copy started twice")) };
            let Some(value) = check(a)? else {
                declined = true;
                return Err(std::io::Error::other("the image is not wanted"));
            };
            let Some(tx) = tx.take() else { return Err(std::io::Error::other("the copy started twice")) };
            let out = Outgoing {
                head: header(len),
                data: data.clone(),
                data_len: len,
                applied_index: a,
                tail: Vec::new(),
                tail_len: tail_len(record.len()),
                pos: 0,
                vfs: vfs.clone(),
                path: path.clone(),
                progress: Some(progress.clone()),
            };
            // A receiver that is gone drops the image, which removes the file and stops
            // the copy.
            handed = true;
            tx.send(Ok(Some((out, value)))).map_err(|_| std::io::Error::other("nobody waits for the image"))?;
            Ok(())
        };
        let result = copy_image(&*data, copy, record, &mut started, &mut |n| progress.copied(n));
        match result {
            Ok(tail) => progress.finish(Ok(tail)),
            Err(e) if handed => {
                tracing::warn!(error = %e, "the copy for a checkpoint image failed");
                progress.finish(Err(e.to_string()));
            }
            // Failed or declined before the image was handed over: nothing owns the file,
            // which is gone before the answer.
            Err(e) => {
                let _ = vfs.remove(&path);
                if let Some(tx) = tx {
                    let _ = tx.send(if declined { Ok(None) } else { Err(e) });
                }
            }
        }
    };
    if let Err(e) = std::thread::Builder::new().name("bulwark-image".into()).spawn(body) {
        tracing::warn!(error = %e, "could not start a thread to copy a checkpoint image");
    }
    rx
}

/// Sends `snapshot` in openraft's chunks ([`Chunked`](openraft::network::snapshot_transport::Chunked)),
/// but answers a failure to read the image as the target being unreachable: openraft
/// 0.9 stops a leader on a storage error in replication, where the right answer to an
/// image whose copy failed (a full disk, say) is to back off and build another.
pub async fn send_in_chunks<N: openraft::RaftNetwork<crate::types::TypeConfig> + ?Sized>(
    net: &mut N,
    vote: openraft::Vote<crate::types::NodeId>,
    snapshot: openraft::Snapshot<crate::types::TypeConfig>,
    cancel: impl std::future::Future<Output = openraft::error::ReplicationClosed> + Send + 'static,
    option: openraft::network::RPCOption,
) -> Result<
    openraft::raft::SnapshotResponse<crate::types::NodeId>,
    openraft::error::StreamingError<crate::types::TypeConfig, openraft::error::Fatal<crate::types::NodeId>>,
> {
    use openraft::network::snapshot_transport::{Chunked, SnapshotTransport};
    match Chunked::send_snapshot(net, vote, snapshot, cancel, option).await {
        Err(openraft::error::StreamingError::StorageError(e)) => {
            tracing::warn!(error = %e, "a checkpoint image could not be read for sending; another is built after a pause");
            Err(openraft::error::StreamingError::Unreachable(openraft::error::Unreachable::new(&e)))
        }
        other => other,
    }
}

/// The prefix of the files images being received are written to: each receive has its own
/// (`checkpoint-incoming.db.new.N`), so that a receive openraft abandons for a newer one
/// removes only its own file.
pub const RECEIVING_PREFIX: &str = "checkpoint-incoming.db.new.";

/// A checkpoint image being received: its header and trailer are kept in memory (the
/// trailer at most [`TAIL_BYTES_MAX`]), its data file goes straight into a file of its own
/// ([`RECEIVING_PREFIX`]); [`Incoming::save`] checks the whole and saves it for
/// [`finish_install`]. Dropped unsaved, the partial data file is removed.
pub struct Incoming {
    vfs: Arc<dyn Vfs>,
    dir: std::path::PathBuf,
    path: std::path::PathBuf,
    data: Arc<dyn storage::vfs::VfsFile>,
    head: Vec<u8>,
    tail: Vec<u8>,
    pos: u64,
    saved: bool,
}

impl Incoming {
    /// Starts receiving an image into `dir`.
    pub fn start(vfs: &Arc<dyn Vfs>, dir: &Path) -> std::io::Result<Incoming> {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = dir.join(format!("{RECEIVING_PREFIX}{n}"));
        let data = vfs.open(&path, true)?;
        data.set_len(0)?;
        Ok(Incoming {
            vfs: vfs.clone(),
            dir: dir.to_path_buf(),
            path,
            data,
            head: Vec::new(),
            tail: Vec::new(),
            pos: 0,
            saved: false,
        })
    }

    fn data_len(&self) -> Option<u64> {
        (self.head.len() == HEADER_BYTES).then(|| u64::from_le_bytes(self.head[8..16].try_into().expect("8 bytes")))
    }

    fn write_at(&mut self, mut buf: &[u8], mut at: u64) -> std::io::Result<()> {
        while !buf.is_empty() {
            let head = HEADER_BYTES as u64;
            if at < head {
                let n = ((head - at) as usize).min(buf.len());
                let end = at as usize + n;
                if self.head.len() < end {
                    self.head.resize(end, 0);
                }
                self.head[at as usize..end].copy_from_slice(&buf[..n]);
                (buf, at) = (&buf[n..], at + n as u64);
                continue;
            }
            let data_len = self.data_len().ok_or_else(|| invalid("image bytes arrived before its header".into()))?;
            if at < head + data_len {
                let n = ((head + data_len - at) as usize).min(buf.len());
                self.data.write_at(&buf[..n], at - head)?;
                (buf, at) = (&buf[n..], at + n as u64);
                continue;
            }
            let from = (at - head - data_len) as usize;
            let end = from + buf.len();
            if end > TAIL_BYTES_MAX {
                return Err(invalid(format!("the image's trailer is over {TAIL_BYTES_MAX} bytes")));
            }
            if self.tail.len() < end {
                self.tail.resize(end, 0);
            }
            self.tail[from..end].copy_from_slice(buf);
            return Ok(());
        }
        Ok(())
    }

    /// Checks the received image (the checksum over all of it, the lengths, that the data
    /// file's newest meta slot is at the image's applied index, and `expect(applied index,
    /// record)`) and saves it for [`finish_install`]: the data file fsynced and renamed to
    /// [`INCOMING_DATA_FILE`], then the header file. Returns the applied index and the
    /// image's length.
    pub fn save(mut self, expect: impl FnOnce(u64, &[u8]) -> Result<(), String>) -> Result<(u64, u64), String> {
        let data_len = self.data_len().ok_or("the image ended inside its header")?;
        if &self.head[..8] != MAGIC {
            return Err("not a checkpoint image (bad magic)".into());
        }
        let len = self.data.len().map_err(|e| format!("sizing the received data file: {e}"))?;
        if len != data_len {
            return Err(format!("the image's data file is {len} bytes, its header says {data_len}"));
        }
        if self.tail.len() < 16 {
            return Err("the image ended inside its trailer".into());
        }
        let (body, stored) = self.tail.split_at(self.tail.len() - 4);
        let (mut data_crc, mut meta, mut buf, mut at) = (0u32, Vec::new(), vec![0u8; CHECK_CHUNK_BYTES], 0u64);
        while at < len {
            let n = (len - at).min(CHECK_CHUNK_BYTES as u64) as usize;
            self.data.read_exact_at(&mut buf[..n], at).map_err(|e| format!("reading the received data file: {e}"))?;
            data_crc = crc32c::crc32c_append(data_crc, &buf[..n]);
            if meta.len() < 2 * storage::page::PAGE_BYTES {
                let want = (2 * storage::page::PAGE_BYTES - meta.len()).min(n);
                meta.extend_from_slice(&buf[..want]);
            }
            at += n as u64;
        }
        let crc = crc32c::crc32c_combine(crc32c::crc32c(&self.head), data_crc, len as usize);
        let crc = crc32c::crc32c_append(crc, body);
        let want = u32::from_le_bytes(stored.try_into().expect("4 bytes"));
        if crc != want {
            return Err(format!("checkpoint image checksum mismatch (stored {want:#010x}, computed {crc:#010x})"));
        }
        let applied_index = u64::from_le_bytes(body[..8].try_into().expect("8 bytes"));
        let record_len = u32::from_le_bytes(body[8..12].try_into().expect("4 bytes")) as usize;
        let record = &body[12..];
        if record.len() != record_len {
            return Err(format!("checkpoint image: record is {} bytes, header says {record_len}", record.len()));
        }
        let meta_index = storage::image_applied_index(&meta, len).map_err(|e| e.to_string())?;
        if meta_index != applied_index {
            return Err(format!("checkpoint image: header says applied index {applied_index}, data file {meta_index}"));
        }
        expect(applied_index, record)?;
        let io = |e: std::io::Error| format!("saving it: {e}");
        self.data.sync_data().map_err(io)?;
        self.vfs.rename(&self.path, &self.dir.join(INCOMING_DATA_FILE)).map_err(io)?;
        self.saved = true;
        save_incoming_header(self.vfs.as_ref(), &self.dir, applied_index, record, len, data_crc).map_err(io)?;
        Ok((applied_index, HEADER_BYTES as u64 + len + self.tail.len() as u64))
    }
}

impl Drop for Incoming {
    fn drop(&mut self) {
        if !self.saved {
            let len = self.data.len().unwrap_or(u64::MAX);
            remove_off_task(&self.vfs, &self.path, len);
        }
    }
}

impl tokio::io::AsyncRead for ImageData {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            ImageData::Memory(c) => std::pin::Pin::new(c).poll_read(cx, buf),
            ImageData::Outgoing(o) => {
                let readable = match o.poll_readable(cx, o.pos) {
                    std::task::Poll::Ready(r) => r?,
                    std::task::Poll::Pending => return std::task::Poll::Pending,
                };
                let n = o.read_at(buf.initialize_unfilled(), o.pos, readable)?;
                buf.advance(n);
                o.pos += n as u64;
                std::task::Poll::Ready(Ok(()))
            }
            ImageData::Incoming(_) => std::task::Poll::Ready(Err(unsupported("reading an image being received"))),
            ImageData::Failed(why) => std::task::Poll::Ready(Err(std::io::Error::other(why.clone()))),
        }
    }
}

impl tokio::io::AsyncWrite for ImageData {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        match self.get_mut() {
            ImageData::Memory(c) => std::pin::Pin::new(c).poll_write(cx, buf),
            ImageData::Incoming(i) => {
                i.write_at(buf, i.pos)?;
                i.pos += buf.len() as u64;
                std::task::Poll::Ready(Ok(buf.len()))
            }
            ImageData::Outgoing(_) | ImageData::Failed(_) => {
                std::task::Poll::Ready(Err(unsupported("writing an image being sent")))
            }
        }
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

impl tokio::io::AsyncSeek for ImageData {
    fn start_seek(self: std::pin::Pin<&mut Self>, to: std::io::SeekFrom) -> std::io::Result<()> {
        let (pos, len) = match self.get_mut() {
            ImageData::Memory(c) => return std::pin::Pin::new(c).start_seek(to),
            ImageData::Outgoing(o) => {
                let len = o.len();
                (&mut o.pos, len)
            }
            ImageData::Incoming(i) => {
                let len = HEADER_BYTES as u64 + i.data_len().unwrap_or(0) + i.tail.len() as u64;
                (&mut i.pos, len)
            }
            ImageData::Failed(_) => return Ok(()),
        };
        let target = match to {
            std::io::SeekFrom::Start(n) => Some(n),
            std::io::SeekFrom::Current(d) => pos.checked_add_signed(d),
            std::io::SeekFrom::End(d) => len.checked_add_signed(d),
        };
        *pos = target.ok_or_else(|| invalid(format!("seek to {to:?} goes before the start")))?;
        Ok(())
    }

    fn poll_complete(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<u64>> {
        match self.get_mut() {
            ImageData::Memory(c) => std::pin::Pin::new(c).poll_complete(cx),
            ImageData::Outgoing(o) => std::task::Poll::Ready(Ok(o.pos)),
            ImageData::Incoming(i) => std::task::Poll::Ready(Ok(i.pos)),
            ImageData::Failed(_) => std::task::Poll::Ready(Ok(0)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn damaged_images_are_refused() {
        let mut data = vec![0u8; 2 * storage::page::PAGE_BYTES];
        data[0] = 1;
        let bytes = encode(7, b"record", &data);
        // Every single flipped byte is caught (by the checksum, or the meta check).
        for at in [0, 9, 17, 21, bytes.len() / 2, bytes.len() - 5, bytes.len() - 1] {
            let mut bad = bytes.clone();
            bad[at] ^= 0x40;
            assert!(decode(&bad).is_err(), "flip at {at} accepted");
        }
        assert!(decode(&bytes[..bytes.len() - 1]).is_err());
        // An image whose data file has no valid meta page is refused even with a good CRC.
        let err = decode(&bytes).err().expect("no valid meta");
        assert!(err.contains("meta"), "{err}");
    }

    const PIECE: usize = 1000;

    /// Starts a background image of three pieces of `PIECE` bytes at applied index 9, each
    /// piece handed over when the test sends on the gate; the copy fails instead of the
    /// last piece if `fail_last`. Returns the gate and what the copy itself returned.
    #[allow(clippy::type_complexity)]
    fn gated_image<T: Send + 'static>(
        vfs: &Arc<dyn Vfs>,
        check: impl FnOnce(u64) -> std::io::Result<Option<T>> + Send + 'static,
        fail_last: bool,
    ) -> (
        tokio::sync::oneshot::Receiver<std::io::Result<Option<(Outgoing, T)>>>,
        std::sync::mpsc::Sender<()>,
        std::sync::mpsc::Receiver<std::io::Result<()>>,
    ) {
        let (gate, gate_rx) = std::sync::mpsc::channel::<()>();
        let (ended, ended_rx) = std::sync::mpsc::channel();
        let copy = move |start: CopyStart<'_>, sink: CopySink<'_>| {
            let result = (|| {
                start(9, 3 * PIECE as u64)?;
                for i in 0..3u8 {
                    let _ = gate_rx.recv();
                    if fail_last && i == 2 {
                        return Err(std::io::Error::other("disk full"));
                    }
                    sink(&[i + 1; PIECE])?;
                }
                Ok((9, 3 * PIECE as u64))
            })();
            let _ = ended.send(result.as_ref().map(|_| ()).map_err(|e| std::io::Error::other(e.to_string())));
            result
        };
        let rx = start_outgoing(vfs, Path::new(DIR), copy, |a| Ok(format!("record {a}").into_bytes()), check);
        (rx, gate, ended_rx)
    }

    const DIR: &str = "/node";

    fn sim_vfs(seed: u64) -> Arc<dyn Vfs> {
        let vfs: Arc<dyn Vfs> = Arc::new(storage::vfs::SimVfs::new(seed));
        vfs.create_dir_all(Path::new(DIR)).unwrap();
        vfs
    }

    fn outgoing_files(vfs: &Arc<dyn Vfs>) -> usize {
        vfs.list(Path::new(DIR)).unwrap().iter().filter(|n| n.starts_with(OUTGOING_PREFIX)).count()
    }

    #[test]
    fn a_background_image_is_read_as_it_is_copied() {
        use tokio::io::{AsyncRead, AsyncReadExt, AsyncSeekExt};
        let vfs = sim_vfs(7);
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let (rx, gate, ended) = gated_image(&vfs, |a| Ok(Some(a * 10)), false);
        let (image, value) = runtime.block_on(rx).unwrap().unwrap().expect("the check said go on");
        assert_eq!(value, 90, "the check's value comes with the image");
        assert_eq!(image.applied_index(), 9);
        let tail_len = 8 + 4 + "record 9".len() + 4;
        assert_eq!(image.len(), (HEADER_BYTES + 3 * PIECE + tail_len) as u64, "the length is known before the copy");
        let mut image = ImageData::Outgoing(image);
        let poll_read = |image: &mut ImageData, at: u64| {
            runtime.block_on(image.seek(std::io::SeekFrom::Start(at))).unwrap();
            let mut buf = [0u8; 64];
            let mut read = tokio::io::ReadBuf::new(&mut buf);
            let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
            match std::pin::Pin::new(image).poll_read(&mut cx, &mut read) {
                std::task::Poll::Ready(r) => Some(r.map(|()| read.filled().to_vec())),
                std::task::Poll::Pending => None,
            }
        };
        // The header is there at once; the data file's bytes wait for their piece.
        assert_eq!(poll_read(&mut image, 0).unwrap().unwrap(), header(3 * PIECE as u64).to_vec());
        assert!(poll_read(&mut image, HEADER_BYTES as u64).is_none(), "nothing is copied yet");
        gate.send(()).unwrap();
        let mut first = vec![0u8; PIECE];
        runtime.block_on(async {
            image.seek(std::io::SeekFrom::Start(HEADER_BYTES as u64)).await.unwrap();
            image.read_exact(&mut first).await.unwrap();
        });
        assert_eq!(first, vec![1u8; PIECE]);
        assert!(poll_read(&mut image, (HEADER_BYTES + PIECE) as u64).is_none(), "the second piece is not copied");
        let trailer_at = (HEADER_BYTES + 3 * PIECE) as u64;
        assert!(poll_read(&mut image, trailer_at).is_none(), "the trailer waits for the end of the copy");
        gate.send(()).unwrap();
        gate.send(()).unwrap();
        let mut all = Vec::new();
        runtime.block_on(async {
            image.seek(std::io::SeekFrom::Start(0)).await.unwrap();
            image.read_to_end(&mut all).await.unwrap();
        });
        assert!(ended.recv().unwrap().is_ok());
        assert_eq!(all.len(), HEADER_BYTES + 3 * PIECE + tail_len);
        assert_eq!(&all[HEADER_BYTES..HEADER_BYTES + 3 * PIECE], [[1u8; PIECE], [2; PIECE], [3; PIECE]].concat());
        let (body, crc) = all.split_at(all.len() - 4);
        assert_eq!(crc32c::crc32c(body).to_le_bytes(), crc, "the trailer's checksum covers the whole image");
        assert_eq!(outgoing_files(&vfs), 1);
        drop(image);
        assert_eq!(outgoing_files(&vfs), 0, "a dropped image removes its file");
    }

    #[test]
    fn a_background_copy_that_fails_fails_the_read_and_a_dropped_image_stops_its_copy() {
        use tokio::io::{AsyncReadExt, AsyncSeekExt};
        let vfs = sim_vfs(8);
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();

        // A copy that fails after the image was handed over fails its reader.
        let (rx, gate, ended) = gated_image(&vfs, |_| Ok(Some(())), true);
        let mut image = ImageData::Outgoing(runtime.block_on(rx).unwrap().unwrap().unwrap().0);
        for _ in 0..3 {
            gate.send(()).unwrap();
        }
        let mut all = Vec::new();
        let err = runtime
            .block_on(async {
                image.seek(std::io::SeekFrom::Start(0)).await.unwrap();
                image.read_to_end(&mut all).await
            })
            .expect_err("the copy failed");
        assert!(err.to_string().contains("disk full"), "{err}");
        assert!(ended.recv().unwrap().is_err());
        drop(image);
        assert_eq!(outgoing_files(&vfs), 0);

        // An image dropped while it is copied stops the copy at its next piece.
        let (rx, gate, ended) = gated_image(&vfs, |_| Ok(Some(())), false);
        let image = runtime.block_on(rx).unwrap().unwrap().unwrap().0;
        gate.send(()).unwrap();
        drop(image);
        assert_eq!(outgoing_files(&vfs), 0, "a dropped image removes its file");
        // The copy may already have stopped, and with it the gate's other end.
        let _ = gate.send(());
        let _ = gate.send(());
        let err = ended.recv().unwrap().expect_err("the copy stopped");
        assert!(err.to_string().contains("dropped"), "{err}");

        // A check that declines stops the copy before its first byte; nothing is left.
        let (rx, _gate, ended) = gated_image(&vfs, |_| Ok(None::<()>), false);
        assert!(runtime.block_on(rx).unwrap().unwrap().is_none());
        assert!(ended.recv().unwrap().is_err());
        assert_eq!(outgoing_files(&vfs), 0);

        // A check that fails is the answer.
        let (rx, _gate, _ended) = gated_image(&vfs, |_| Err::<Option<()>, _>(std::io::Error::other("no meta")), false);
        let err = runtime.block_on(rx).unwrap().err().expect("the check failed");
        assert!(err.to_string().contains("no meta"), "{err}");
    }
}
