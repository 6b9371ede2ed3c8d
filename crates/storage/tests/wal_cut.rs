//! Cuts a log's newest segment at every byte length and checks that recovery keeps exactly
//! the records whose frames were whole, never fails to open, and appends after the cut.
//!
//! A cut is what a crash in the middle of the final group-commit write leaves behind, so it
//! must always read as a torn tail, never as corruption. Each cut is tried twice: with the
//! file ending at the cut, and with zeros after it (a file zeroed ahead of its records, see
//! `WAL_PREALLOCATE_BYTES`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use storage::vfs::{SimVfs, Vfs};
use storage::wal::*;

fn dir() -> PathBuf {
    PathBuf::from("/log")
}

/// A log's files and the records it holds.
struct Log {
    /// (file name, bytes), in index order.
    files: Vec<(String, Vec<u8>)>,
    records: Vec<(u64, Vec<u8>)>,
}

/// Writes 30 records of varied sizes in 10 group-commit writes of varied counts, into files
/// that end where their last record ends.
fn write_log(segment_bytes_max: u64) -> Log {
    let vfs = SimVfs::new(7);
    let opts = WalOptions { segment_bytes_max, preallocate_bytes: 0, ..WalOptions::default() };
    let wal = Wal::open(Arc::new(vfs.clone()), &dir(), 1, opts).unwrap();
    let mut records = Vec::new();
    let mut i = 0u64;
    for count in [1, 3, 1, 5, 2, 4, 1, 6, 3, 4] {
        let payloads: Vec<Vec<u8>> = (i..i + count).map(|j| vec![j as u8 ^ 0x5a; (j * 53 % 120) as usize]).collect();
        let refs: Vec<&[u8]> = payloads.iter().map(|p| p.as_slice()).collect();
        let first = wal.append_batch(&refs).unwrap();
        assert_eq!(first, i + 1);
        records.extend((first..).zip(payloads));
        i += count;
    }
    assert_eq!(records.len(), 30);
    drop(wal);
    let files = vfs.list(&dir()).unwrap().into_iter().map(|name| (name.clone(), read_file(&vfs, &name))).collect();
    Log { files, records }
}

fn read_file(vfs: &SimVfs, name: &str) -> Vec<u8> {
    let file = vfs.open(&dir().join(name), false).unwrap();
    let mut bytes = vec![0u8; file.len().unwrap() as usize];
    file.read_exact_at(&mut bytes, 0).unwrap();
    bytes
}

/// A fresh disk holding exactly `files`, durably.
fn disk_with(files: &[(String, Vec<u8>)]) -> SimVfs {
    let vfs = SimVfs::new(1);
    vfs.create_dir_all(&dir()).unwrap();
    for (name, bytes) in files {
        let file = vfs.open(&dir().join(name), true).unwrap();
        file.write_at(bytes, 0).unwrap();
        file.sync_data().unwrap();
    }
    vfs.sync_dir(&dir()).unwrap();
    vfs
}

fn first_index_of(name: &str) -> u64 {
    Path::new(name).file_stem().unwrap().to_str().unwrap().parse().unwrap()
}

/// The records that survive cutting the last segment to `len` bytes and adding `zeros`
/// zero bytes: all those of earlier segments, and those of the last whose frames end at or
/// before `len`, or whose bytes past `len` were zeros anyway (the zeros complete them).
fn surviving(log: &Log, len: usize, zeros: usize) -> Vec<(u64, Vec<u8>)> {
    let (last_name, last_bytes) = log.files.last().unwrap();
    let last_first = first_index_of(last_name);
    let mut end = WAL_SEGMENT_HEADER_BYTES;
    let mut kept = Vec::new();
    for (index, payload) in &log.records {
        if *index >= last_first {
            end += WAL_FRAME_HEADER_BYTES + payload.len();
            let completed = end <= len + zeros && last_bytes[len.min(end)..end].iter().all(|&b| b == 0);
            if end > len && !completed {
                break;
            }
        }
        kept.push((*index, payload.clone()));
    }
    kept
}

/// The options the cut logs are reopened with: zeroing ahead on, by a few KiB so that the
/// thousands of reopens stay quick.
fn reopen_options() -> WalOptions {
    WalOptions { preallocate_bytes: 4096, ..WalOptions::default() }
}

/// Cuts the last segment at every length and checks the recovered log.
fn cut_at_every_byte(log: &Log) {
    let (last_name, last_bytes) = log.files.last().unwrap();
    let whole = surviving(log, last_bytes.len(), 0);
    assert_eq!(whole, log.records, "the frame layout the test assumes matches the file");
    for (len, zeros) in (0..=last_bytes.len()).flat_map(|len| [(len, 0), (len, 300)]) {
        let mut files = log.files.clone();
        let last = &mut files.last_mut().unwrap().1;
        last.truncate(len);
        last.resize(len + zeros, 0);
        let vfs = disk_with(&files);
        let wal = Wal::open(Arc::new(vfs.clone()), &dir(), 1, reopen_options())
            .unwrap_or_else(|e| panic!("cut at {len} (+{zeros} zeros) of {last_name}: open failed: {e}"));
        let want = surviving(log, len, zeros);
        let got = wal.read(wal.first_index(), usize::MAX).unwrap();
        assert_eq!(got, want, "cut at {len} (+{zeros} zeros) of {last_name}");
        let next = want.last().map_or(1, |r| r.0 + 1);
        assert_eq!(wal.next_index(), next, "cut at {len}");
        assert_eq!(wal.append(b"after the cut").unwrap(), next, "cut at {len}");
        drop(wal);
        let wal = Wal::open(Arc::new(vfs), &dir(), 1, reopen_options()).unwrap();
        let got = wal.read(wal.first_index(), usize::MAX).unwrap();
        assert_eq!(got.len(), want.len() + 1, "cut at {len}: reopened after the append");
        assert_eq!(got.last().unwrap(), &(next, b"after the cut".to_vec()));
    }
}

#[test]
fn wal_cut_newest_of_several_segments_at_every_byte() {
    let log = write_log(1024);
    assert!(log.files.len() >= 2, "the log spans segments: {}", log.files.len());
    cut_at_every_byte(&log);
}

#[test]
fn wal_cut_only_segment_at_every_byte() {
    let log = write_log(64 << 20);
    assert_eq!(log.files.len(), 1);
    cut_at_every_byte(&log);
}
