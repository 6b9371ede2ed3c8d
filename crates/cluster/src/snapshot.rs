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
//!   magic "BWCKPT01" | applied_index u64 | record_len u32 | record
//!   | data_len u64 | data (the data file) | crc32c u32 of everything before it
//! ```
//!
//! All integers little-endian.

use std::path::Path;
use std::sync::Arc;

use storage::vfs::Vfs;
use storage::wal::{Wal, WalOptions};

/// The first bytes of a checkpoint image.
pub const MAGIC: &[u8; 8] = b"BWCKPT01";
/// A received image waiting to be installed at the next open.
pub const INCOMING_FILE: &str = "checkpoint-incoming";
/// The largest image a node builds or accepts: it is held in memory while it is sent or
/// received (openraft 0.9 hands snapshot data around as one buffer here).
pub const IMAGE_BYTES_MAX: u64 = 8 << 30;
/// Bytes of the image header before the record.
const HEADER_BYTES: usize = 8 + 8 + 4;

/// A decoded, checked image.
pub struct Image<'a> {
    /// The store's applied index in the image (a log record index).
    pub applied_index: u64,
    /// The log record at `applied_index`, as the log stores it.
    pub record: &'a [u8],
    /// The data file.
    pub data: &'a [u8],
}

/// Encodes an image.
pub fn encode(applied_index: u64, record: &[u8], data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_BYTES + record.len() + 8 + data.len() + 4);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&applied_index.to_le_bytes());
    out.extend_from_slice(&(record.len() as u32).to_le_bytes());
    out.extend_from_slice(record);
    out.extend_from_slice(&(data.len() as u64).to_le_bytes());
    out.extend_from_slice(data);
    let crc = crc32c::crc32c(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// Decodes and checks an image: checksum, lengths, and that the data file's newest meta
/// slot is at the image's applied index.
pub fn decode(bytes: &[u8]) -> Result<Image<'_>, String> {
    if bytes.len() < HEADER_BYTES + 8 + 4 {
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
    let applied_index = u64::from_le_bytes(body[8..16].try_into().expect("8 bytes"));
    let record_len = u32::from_le_bytes(body[16..20].try_into().expect("4 bytes")) as usize;
    let record = body.get(HEADER_BYTES..HEADER_BYTES + record_len).ok_or("checkpoint image: record truncated")?;
    let at = HEADER_BYTES + record_len;
    let data_len = body
        .get(at..at + 8)
        .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
        .ok_or("checkpoint image: data length truncated")?;
    let data = &body[at + 8..];
    if data.len() as u64 != data_len {
        return Err(format!("checkpoint image: data is {} bytes, header says {data_len}", data.len()));
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

/// Saves a received image for [`finish_install`]: written under a temporary name,
/// fsynced, renamed into place, directory fsynced.
pub fn save_incoming(vfs: &dyn Vfs, dir: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = dir.join(format!("{INCOMING_FILE}.new"));
    let file = vfs.open(&tmp, true)?;
    file.set_len(0)?;
    for (i, chunk) in bytes.chunks(1 << 20).enumerate() {
        file.write_at(chunk, (i << 20) as u64)?;
    }
    file.sync_data()?;
    vfs.rename(&tmp, &dir.join(INCOMING_FILE))?;
    vfs.sync_dir(dir)
}

/// Installs a saved image before the store opens, if there is one: returns its applied
/// index. Every step can be redone, so a crash part way leaves the image to install again:
///
/// 1. If the data file is already at or past the image, the image is dropped.
/// 2. If the log already holds the image's last record (same bytes), the log is kept, as
///    Raft requires (its later entries may count towards a commit). Else every segment is
///    removed and the log restarts at the image's applied index, holding that one record.
/// 3. The data file is replaced (written as `data.db.new`, fsynced, renamed).
/// 4. The image file is removed.
///
/// A damaged image stops the node with the reason: it is never half installed.
pub fn finish_install(vfs: &Arc<dyn Vfs>, dir: &Path, wal_opts: &WalOptions) -> std::io::Result<Option<u64>> {
    let path = dir.join(INCOMING_FILE);
    let tmp = dir.join(format!("{INCOMING_FILE}.new"));
    if vfs.exists(&tmp) {
        vfs.remove(&tmp)?;
    }
    if !vfs.exists(&path) {
        return Ok(None);
    }
    let bytes = read_all(vfs.as_ref(), &path)?;
    let image = decode(&bytes)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{INCOMING_FILE}: {e}")))?;
    let a = image.applied_index;
    let data_path = dir.join(storage::btree::DATA_FILE);
    if vfs.exists(&data_path) {
        let file = vfs.open(&data_path, false)?;
        let len = file.len()?;
        let mut meta = vec![0u8; (2 * storage::page::PAGE_BYTES).min(len as usize)];
        file.read_exact_at(&mut meta, 0)?;
        if storage::image_applied_index(&meta, len).is_ok_and(|current| current >= a) {
            tracing::info!(image = a, "the data file is already past the received checkpoint; dropping it");
            vfs.remove(&path)?;
            return vfs.sync_dir(dir).map(|()| None);
        }
    }
    let wal_dir = dir.join(storage::store::WAL_DIR);
    vfs.create_dir_all(&wal_dir)?;
    let keeps = {
        let wal = Wal::open(vfs.clone(), &wal_dir, a, wal_opts.clone()).map_err(std::io::Error::other)?;
        let held = wal.read(a, image.record.len() + 64).map_err(std::io::Error::other)?;
        held.first().is_some_and(|(i, r)| *i == a && r.as_slice() == image.record)
    };
    if !keeps {
        for name in vfs.list(&wal_dir)? {
            vfs.remove(&wal_dir.join(name))?;
        }
        vfs.sync_dir(&wal_dir)?;
        let wal = Wal::open(vfs.clone(), &wal_dir, a, wal_opts.clone()).map_err(std::io::Error::other)?;
        let at = wal.append(image.record).map_err(std::io::Error::other)?;
        if at != a {
            return Err(std::io::Error::other(format!("the fresh log wrote record {at}, expected {a}")));
        }
    }
    let new = dir.join(format!("{}.new", storage::btree::DATA_FILE));
    let file = vfs.open(&new, true)?;
    file.set_len(0)?;
    for (i, chunk) in image.data.chunks(1 << 20).enumerate() {
        file.write_at(chunk, (i << 20) as u64)?;
    }
    file.sync_data()?;
    drop(file);
    vfs.rename(&new, &data_path)?;
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
