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
pub struct Outgoing {
    head: [u8; HEADER_BYTES],
    data: Arc<dyn storage::vfs::VfsFile>,
    data_len: u64,
    tail: Vec<u8>,
    pos: u64,
    vfs: Arc<dyn Vfs>,
    path: std::path::PathBuf,
}

impl Outgoing {
    /// The image's length in bytes.
    pub fn len(&self) -> u64 {
        HEADER_BYTES as u64 + self.data_len + self.tail.len() as u64
    }

    /// Never empty: an image has at least its header and trailer.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The applied index the image carries.
    pub fn applied_index(&self) -> u64 {
        u64::from_le_bytes(self.tail[..8].try_into().expect("a trailer holds the applied index"))
    }

    fn read_at(&self, buf: &mut [u8], at: u64) -> std::io::Result<usize> {
        let head = HEADER_BYTES as u64;
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

/// Builds an image to send, in a file of its own in `dir`: `copy` hands the data file as
/// of a durable checkpoint to the sink it is given, in order, and returns the checkpoint's
/// applied index and the file's length; `record` returns the log record at that index.
pub fn build_outgoing(
    vfs: &Arc<dyn Vfs>,
    dir: &Path,
    copy: impl FnOnce(&mut dyn FnMut(&[u8]) -> std::io::Result<()>) -> std::io::Result<(u64, u64)>,
    record: impl FnOnce(u64) -> std::io::Result<Vec<u8>>,
) -> std::io::Result<Outgoing> {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = dir.join(format!("{OUTGOING_PREFIX}{n}"));
    let data = vfs.open(&path, true)?;
    data.set_len(0)?;
    let mut out = Outgoing {
        head: [0; HEADER_BYTES],
        data: data.clone(),
        data_len: 0,
        tail: Vec::new(),
        pos: 0,
        vfs: vfs.clone(),
        path,
    };
    let (mut at, mut data_crc) = (0u64, 0u32);
    let (applied_index, data_len) = copy(&mut |chunk: &[u8]| {
        data.write_at(chunk, at)?;
        data_crc = crc32c::crc32c_append(data_crc, chunk);
        at += chunk.len() as u64;
        Ok(())
    })?;
    if at != data_len {
        return Err(invalid(format!("the data file copy is {at} bytes, its length was {data_len}")));
    }
    out.head[..8].copy_from_slice(MAGIC);
    out.head[8..].copy_from_slice(&data_len.to_le_bytes());
    out.data_len = data_len;
    let record = record(applied_index)?;
    out.tail.extend_from_slice(&applied_index.to_le_bytes());
    out.tail.extend_from_slice(&(record.len() as u32).to_le_bytes());
    out.tail.extend_from_slice(&record);
    let crc = crc32c::crc32c_combine(crc32c::crc32c(&out.head), data_crc, data_len as usize);
    let crc = crc32c::crc32c_append(crc, &out.tail);
    out.tail.extend_from_slice(&crc.to_le_bytes());
    Ok(out)
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
                let n = o.read_at(buf.initialize_unfilled(), o.pos)?;
                buf.advance(n);
                o.pos += n as u64;
                std::task::Poll::Ready(Ok(()))
            }
            ImageData::Incoming(_) => std::task::Poll::Ready(Err(unsupported("reading an image being received"))),
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
            ImageData::Outgoing(_) => std::task::Poll::Ready(Err(unsupported("writing an image being sent"))),
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
}
