//! Checkpoint images: how a node that has fallen behind the leader's purged log (or a new
//! node) gets the state it cannot replay.
//!
//! The leader copies its data file as of a durable checkpoint
//! ([`storage::Store::copy_checkpoint`]), together with the log record at the checkpoint's
//! applied index (Raft's last entry in the image, which the receiver keeps as the first
//! record of its log), and checksums the whole. openraft sends it in chunks over the peer
//! network. The receiver checks it, saves it as [`INCOMING_FILE`] (fsynced, then renamed
//! into place), and restarts: the data file of a running store is never swapped. On the
//! next open, [`finish_install`] puts the image in place before the store opens.
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
/// The largest image a node builds or accepts: it is held in memory while it is sent or
/// received (openraft 0.9 hands snapshot data around as one buffer here).
pub const IMAGE_BYTES_MAX: u64 = 8 << 30;
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

/// Builds an image in one buffer: `copy` appends the data file to the buffer it is given
/// and returns the applied index; `record` returns the log record at that index. The data
/// file is copied once, straight into place.
pub fn build(
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

/// Encodes an image from its parts (tests; nodes use [`build`]).
pub fn encode(applied_index: u64, record: &[u8], data: &[u8]) -> Vec<u8> {
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

/// Decodes and checks an image: checksum, lengths, and that the data file's newest meta
/// slot is at the image's applied index.
pub fn decode(bytes: &[u8]) -> Result<Image<'_>, String> {
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
    let mut header = Vec::with_capacity(40 + image.record.len());
    header.extend_from_slice(SAVED_MAGIC);
    header.extend_from_slice(&image.applied_index.to_le_bytes());
    header.extend_from_slice(&(image.record.len() as u32).to_le_bytes());
    header.extend_from_slice(image.record);
    header.extend_from_slice(&(image.data.len() as u64).to_le_bytes());
    header.extend_from_slice(&crc32c::crc32c(image.data).to_le_bytes());
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
