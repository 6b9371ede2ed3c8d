//! A simulated disk: durable bytes kept apart from unsynced ones, seeded crashes and faults.
//!
//! ```text
//!   write_at ──► current bytes ──(pending op list)──► sync_data ──► durable bytes
//!                                                     crash(): durable + a seeded choice
//!                                                     of pending writes, torn per sector
//! ```
//!
//! Every file has `current` bytes (what reads see) and `durable` bytes (what survives a
//! crash), and the list of writes and truncations made since its last `sync_data`. A crash
//! rebuilds each file from its durable bytes plus, for every pending write and every 512-byte
//! sector it touches, a seeded coin flip; so a crash tears unsynced writes the way a real disk
//! can, and never touches synced ones.
//!
//! Directory entries work the same way: creates, renames and removes are pending until
//! `sync_dir`, and a crash keeps a seeded prefix of the pending ones (file systems with
//! ordered metadata journals, such as ext4, keep them in order).
//!
//! Faults ([`SimFaults`]) are set at any time and apply to later calls:
//! bit flips on read or write at a seeded rate, EIO on the n-th call of a kind, ENOSPC past a
//! byte budget, fsync failure, added latency, and a power cut after n mutating calls (every
//! call fails until [`SimVfs::crash`]).
//!
//! A failed fsync behaves as on Linux: the pending writes are settled (a seeded part of them
//! reaches the disk, the rest is lost) and forgotten, while reads still show them. Retrying
//! the fsync then succeeds and proves nothing; that is why the log refuses to.
//!
//! Handles opened before a crash fail afterwards: the process that held them is gone.

use super::{Vfs, VfsFile};
use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// The sector size at which a crash tears unsynced writes.
pub const SECTOR_BYTES: usize = 512;

/// A small, fast, seeded random number generator (SplitMix64). Deterministic across
/// platforms, so a seed replays a run exactly.
#[derive(Debug, Clone)]
pub struct SimRng(u64);

impl SimRng {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> SimRng {
        SimRng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        assert!(n > 0);
        self.next_u64() % n
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
}

/// The kinds of call a fault can target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimOp {
    /// `open`
    Open,
    /// `read_at`
    Read,
    /// `write_at`
    Write,
    /// `sync_data`
    Sync,
    /// `set_len`
    SetLen,
    /// `sync_dir`
    SyncDir,
    /// `rename` and `remove`
    Namespace,
}

/// The faults a [`SimVfs`] injects. Change them with [`SimVfs::set_faults`] or the helpers.
#[derive(Debug, Clone, Default)]
pub struct SimFaults {
    /// Probability that a read returns one flipped bit.
    pub bitflip_read_rate: f64,
    /// Probability that a write stores one flipped bit.
    pub bitflip_write_rate: f64,
    /// Probability that any call fails with EIO.
    pub eio_rate: f64,
    /// Fail the n-th next call of this kind (1 = the next one) with EIO.
    pub eio_on: Option<(SimOp, u64)>,
    /// Total bytes all files may hold; a write or extension past it fails with ENOSPC.
    pub disk_bytes_max: Option<u64>,
    /// Probability that `sync_data` fails.
    pub fsync_fail_rate: f64,
    /// Fail the next `sync_data` calls, this many of them.
    pub fsync_fail_next: u64,
    /// Sleep this long in every call.
    pub latency: Option<Duration>,
    /// Lose power after this many more mutating calls: that call and every later one fail
    /// until [`SimVfs::crash`].
    pub power_cut_after_ops: Option<u64>,
}

#[derive(Debug, Clone)]
enum Pending {
    Write { offset: u64, data: Vec<u8> },
    SetLen(u64),
}

#[derive(Debug, Default)]
struct FileData {
    current: Vec<u8>,
    durable: Vec<u8>,
    pending: Vec<Pending>,
}

#[derive(Debug, Clone)]
enum NsOp {
    Link(PathBuf, u64),
    Unlink(PathBuf),
}

#[derive(Debug)]
struct State {
    files: BTreeMap<u64, FileData>,
    names: BTreeMap<PathBuf, u64>,
    durable_names: BTreeMap<PathBuf, u64>,
    pending_names: Vec<NsOp>,
    dirs: BTreeSet<PathBuf>,
    next_file_id: u64,
    generation: u64,
    rng: SimRng,
    faults: SimFaults,
    powered_off: bool,
    crashes: u64,
}

/// An in-memory, fault-injecting file system. Cloning gives another handle to the same disk.
#[derive(Clone)]
pub struct SimVfs {
    state: Arc<Mutex<State>>,
}

impl SimVfs {
    /// An empty disk whose crashes and faults are drawn from `seed`.
    pub fn new(seed: u64) -> SimVfs {
        let state = State {
            files: BTreeMap::new(),
            names: BTreeMap::new(),
            durable_names: BTreeMap::new(),
            pending_names: Vec::new(),
            dirs: BTreeSet::new(),
            next_file_id: 1,
            generation: 0,
            rng: SimRng::new(seed),
            faults: SimFaults::default(),
            powered_off: false,
            crashes: 0,
        };
        SimVfs { state: Arc::new(Mutex::new(state)) }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Replaces the fault settings.
    pub fn set_faults(&self, faults: SimFaults) {
        self.lock().faults = faults;
    }

    /// Changes the fault settings in place.
    pub fn update_faults(&self, f: impl FnOnce(&mut SimFaults)) {
        f(&mut self.lock().faults);
    }

    /// Removes every fault.
    pub fn clear_faults(&self) {
        self.set_faults(SimFaults::default());
    }

    /// Total bytes held by all files (what the disk budget counts).
    pub fn used_bytes(&self) -> u64 {
        let st = self.lock();
        st.names.values().map(|id| st.files[id].current.len() as u64).sum()
    }

    /// How many crashes this disk has been through.
    pub fn crashes(&self) -> u64 {
        self.lock().crashes
    }

    /// True if a power cut fault has fired and no crash has happened since.
    pub fn is_powered_off(&self) -> bool {
        self.lock().powered_off
    }

    /// Simulates losing power and restarting: every file keeps its durable bytes plus a
    /// seeded choice of its unsynced writes, torn per 512-byte sector; unsynced directory
    /// changes keep a seeded prefix. Handles opened before fail afterwards. Faults are
    /// cleared.
    pub fn crash(&self) {
        let mut guard = self.lock();
        let st = &mut *guard;
        for file in st.files.values_mut() {
            let mut bytes = std::mem::take(&mut file.durable);
            for op in std::mem::take(&mut file.pending) {
                settle(&mut bytes, &op, &mut st.rng);
            }
            file.current = bytes.clone();
            file.durable = bytes;
        }
        let keep = st.rng.below(st.pending_names.len() as u64 + 1) as usize;
        for op in st.pending_names.drain(..).take(keep) {
            apply_ns(&mut st.durable_names, op);
        }
        st.names = st.durable_names.clone();
        let live: BTreeSet<u64> = st.names.values().copied().collect();
        st.files.retain(|id, _| live.contains(id));
        st.generation += 1;
        st.powered_off = false;
        st.faults = SimFaults::default();
        st.crashes += 1;
    }

    /// Flips bit `bit` of byte `offset` of `path`, in both its current and durable bytes (as
    /// decay of the medium would). Returns false if the file is shorter.
    pub fn flip_bit(&self, path: &Path, offset: u64, bit: u8) -> bool {
        let mut st = self.lock();
        let Some(&id) = st.names.get(path) else { return false };
        let file = st.files.get_mut(&id).expect("named file exists");
        let i = offset as usize;
        if i >= file.current.len() {
            return false;
        }
        file.current[i] ^= 1 << (bit % 8);
        if i < file.durable.len() {
            file.durable[i] ^= 1 << (bit % 8);
        }
        true
    }

    /// The length of `path`'s current bytes, if it exists.
    pub fn file_len(&self, path: &Path) -> Option<u64> {
        let st = self.lock();
        st.names.get(path).map(|id| st.files[id].current.len() as u64)
    }
}

/// Applies a pending operation to `bytes`, tearing writes at sector granularity.
fn settle(bytes: &mut Vec<u8>, op: &Pending, rng: &mut SimRng) {
    match op {
        Pending::SetLen(len) => {
            if rng.chance(0.5) {
                bytes.resize(*len as usize, 0);
            }
        }
        Pending::Write { offset, data } => {
            let start = *offset as usize;
            let end = start + data.len();
            let mut sector_start = start - start % SECTOR_BYTES;
            while sector_start < end {
                let lo = sector_start.max(start);
                let hi = (sector_start + SECTOR_BYTES).min(end);
                if rng.chance(0.5) {
                    if bytes.len() < hi {
                        bytes.resize(hi, 0);
                    }
                    bytes[lo..hi].copy_from_slice(&data[lo - start..hi - start]);
                }
                sector_start += SECTOR_BYTES;
            }
        }
    }
}

fn apply_ns(names: &mut BTreeMap<PathBuf, u64>, op: NsOp) {
    match op {
        NsOp::Link(path, id) => {
            names.insert(path, id);
        }
        NsOp::Unlink(path) => {
            names.remove(&path);
        }
    }
}

fn eio(what: &str) -> io::Error {
    io::Error::other(format!("simulated EIO on {what}"))
}

impl State {
    /// Runs the fault checks every call goes through.
    fn check(&mut self, op: SimOp) -> io::Result<()> {
        if let Some(latency) = self.faults.latency {
            std::thread::sleep(latency);
        }
        if self.powered_off {
            return Err(io::Error::other("simulated power loss"));
        }
        let mutating = !matches!(op, SimOp::Read | SimOp::Open);
        if mutating {
            if let Some(n) = self.faults.power_cut_after_ops.as_mut() {
                if *n <= 1 {
                    self.powered_off = true;
                    return Err(io::Error::other("simulated power loss"));
                }
                *n -= 1;
            }
        }
        if let Some((kind, n)) = self.faults.eio_on.as_mut() {
            if *kind == op {
                if *n <= 1 {
                    self.faults.eio_on = None;
                    return Err(eio(&format!("{op:?}")));
                }
                *n -= 1;
            }
        }
        if self.rng.chance(self.faults.eio_rate) {
            return Err(eio(&format!("{op:?}")));
        }
        Ok(())
    }

    fn used_bytes(&self) -> u64 {
        self.names.values().map(|id| self.files[id].current.len() as u64).sum()
    }

    /// ENOSPC if growing some file by `grow` bytes would pass the budget.
    fn check_space(&self, grow: u64) -> io::Result<()> {
        if let Some(max) = self.faults.disk_bytes_max {
            if grow > 0 && self.used_bytes() + grow > max {
                return Err(io::Error::from_raw_os_error(28));
            }
        }
        Ok(())
    }
}

impl Vfs for SimVfs {
    fn open(&self, path: &Path, create: bool) -> io::Result<Arc<dyn VfsFile>> {
        let mut st = self.lock();
        st.check(SimOp::Open)?;
        let id = match st.names.get(path) {
            Some(&id) => id,
            None if create => {
                let parent = path.parent().unwrap_or(Path::new("")).to_path_buf();
                if !st.dirs.contains(&parent) {
                    return Err(io::Error::new(io::ErrorKind::NotFound, "no such directory"));
                }
                let id = st.next_file_id;
                st.next_file_id += 1;
                st.files.insert(id, FileData::default());
                st.names.insert(path.to_path_buf(), id);
                st.pending_names.push(NsOp::Link(path.to_path_buf(), id));
                id
            }
            None => return Err(io::Error::new(io::ErrorKind::NotFound, "no such file")),
        };
        let generation = st.generation;
        Ok(Arc::new(SimFile { vfs: self.clone(), id, generation }))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut st = self.lock();
        st.check(SimOp::Namespace)?;
        let id = st.names.remove(from).ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        st.names.insert(to.to_path_buf(), id);
        st.pending_names.push(NsOp::Unlink(from.to_path_buf()));
        st.pending_names.push(NsOp::Link(to.to_path_buf(), id));
        Ok(())
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        let mut st = self.lock();
        st.check(SimOp::Namespace)?;
        st.names.remove(path).ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        st.pending_names.push(NsOp::Unlink(path.to_path_buf()));
        Ok(())
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let st = self.lock();
        if !st.dirs.contains(dir) {
            return Err(io::Error::new(io::ErrorKind::NotFound, "no such directory"));
        }
        Ok(st
            .names
            .keys()
            .filter(|p| p.parent() == Some(dir))
            .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .collect())
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let mut guard = self.lock();
        let st = &mut *guard;
        st.check(SimOp::SyncDir)?;
        // Entries of this directory become durable; others stay pending, in order.
        let mut rest = Vec::new();
        for op in std::mem::take(&mut st.pending_names) {
            let in_dir = match &op {
                NsOp::Link(p, _) | NsOp::Unlink(p) => p.parent() == Some(dir),
            };
            if in_dir {
                apply_ns(&mut st.durable_names, op);
            } else {
                rest.push(op);
            }
        }
        st.pending_names = rest;
        Ok(())
    }

    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        let mut st = self.lock();
        let mut p = Some(dir);
        while let Some(d) = p {
            st.dirs.insert(d.to_path_buf());
            p = d.parent();
        }
        Ok(())
    }

    fn exists(&self, path: &Path) -> bool {
        self.lock().names.contains_key(path)
    }
}

struct SimFile {
    vfs: SimVfs,
    id: u64,
    generation: u64,
}

impl SimFile {
    /// Locks the disk and checks this handle is still valid.
    fn state(&self) -> io::Result<MutexGuard<'_, State>> {
        let st = self.vfs.lock();
        if st.generation != self.generation {
            return Err(io::Error::other("file handle from before a simulated crash"));
        }
        if !st.files.contains_key(&self.id) {
            return Err(io::Error::new(io::ErrorKind::NotFound, "file was removed"));
        }
        Ok(st)
    }
}

impl VfsFile for SimFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let mut guard = self.state()?;
        let st = &mut *guard;
        st.check(SimOp::Read)?;
        let data = &st.files[&self.id].current;
        let start = (offset as usize).min(data.len());
        let n = buf.len().min(data.len() - start);
        buf[..n].copy_from_slice(&data[start..start + n]);
        if n > 0 && st.rng.chance(st.faults.bitflip_read_rate) {
            let bit = st.rng.below(n as u64 * 8);
            buf[(bit / 8) as usize] ^= 1 << (bit % 8);
        }
        Ok(n)
    }

    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        let mut guard = self.state()?;
        let st = &mut *guard;
        st.check(SimOp::Write)?;
        let end = offset as usize + buf.len();
        let len = st.files[&self.id].current.len();
        st.check_space(end.saturating_sub(len) as u64)?;
        let mut data = buf.to_vec();
        if !data.is_empty() && st.rng.chance(st.faults.bitflip_write_rate) {
            let bit = st.rng.below(data.len() as u64 * 8);
            data[(bit / 8) as usize] ^= 1 << (bit % 8);
        }
        let file = st.files.get_mut(&self.id).expect("checked above");
        if file.current.len() < end {
            file.current.resize(end, 0);
        }
        file.current[offset as usize..end].copy_from_slice(&data);
        file.pending.push(Pending::Write { offset, data });
        Ok(())
    }

    fn sync_data(&self) -> io::Result<()> {
        let mut guard = self.state()?;
        let st = &mut *guard;
        st.check(SimOp::Sync)?;
        let fail = if st.faults.fsync_fail_next > 0 {
            st.faults.fsync_fail_next -= 1;
            true
        } else {
            st.rng.chance(st.faults.fsync_fail_rate)
        };
        let file = st.files.get_mut(&self.id).expect("checked above");
        if fail {
            // As on Linux: part of the dirty data may have reached the disk, the rest is
            // dropped, and the pages are marked clean so a retry "succeeds".
            let mut bytes = std::mem::take(&mut file.durable);
            for op in std::mem::take(&mut file.pending) {
                settle(&mut bytes, &op, &mut st.rng);
            }
            file.durable = bytes;
            return Err(eio("fsync"));
        }
        file.durable = file.current.clone();
        file.pending.clear();
        Ok(())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        let mut guard = self.state()?;
        let st = &mut *guard;
        st.check(SimOp::SetLen)?;
        let cur = st.files[&self.id].current.len() as u64;
        st.check_space(len.saturating_sub(cur))?;
        let file = st.files.get_mut(&self.id).expect("checked above");
        file.current.resize(len as usize, 0);
        file.pending.push(Pending::SetLen(len));
        Ok(())
    }

    fn len(&self) -> io::Result<u64> {
        Ok(self.state()?.files[&self.id].current.len() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir() -> PathBuf {
        PathBuf::from("/d")
    }

    fn setup(seed: u64) -> (SimVfs, Arc<dyn VfsFile>) {
        let vfs = SimVfs::new(seed);
        vfs.create_dir_all(&dir()).unwrap();
        let f = vfs.open(&dir().join("f"), true).unwrap();
        vfs.sync_dir(&dir()).unwrap();
        (vfs, f)
    }

    #[test]
    fn synced_bytes_survive_a_crash() {
        for seed in 0..50 {
            let (vfs, f) = setup(seed);
            f.write_at(&[7u8; 2048], 0).unwrap();
            f.sync_data().unwrap();
            vfs.crash();
            let f = vfs.open(&dir().join("f"), false).unwrap();
            let mut buf = [0u8; 2048];
            f.read_exact_at(&mut buf, 0).unwrap();
            assert_eq!(buf, [7u8; 2048]);
        }
    }

    #[test]
    fn unsynced_writes_are_torn_per_sector() {
        let mut saw_partial = false;
        for seed in 0..100 {
            let (vfs, f) = setup(seed);
            f.write_at(&[0u8; 4096], 0).unwrap();
            f.sync_data().unwrap();
            f.write_at(&[1u8; 4096], 0).unwrap();
            vfs.crash();
            let f = vfs.open(&dir().join("f"), false).unwrap();
            let mut buf = [0u8; 4096];
            f.read_exact_at(&mut buf, 0).unwrap();
            let kept: Vec<u8> = buf.chunks(SECTOR_BYTES).map(|s| s[0]).collect();
            for (s, k) in buf.chunks(SECTOR_BYTES).zip(&kept) {
                assert!(s.iter().all(|b| b == k), "a sector is torn inside itself");
            }
            saw_partial |= kept.contains(&0) && kept.contains(&1);
        }
        assert!(saw_partial, "some crash kept part of an unsynced write");
    }

    #[test]
    fn unsynced_create_can_vanish_and_old_handles_fail() {
        let mut vanished = 0;
        for seed in 0..40 {
            let vfs = SimVfs::new(seed);
            vfs.create_dir_all(&dir()).unwrap();
            let f = vfs.open(&dir().join("g"), true).unwrap();
            vfs.crash();
            assert!(f.len().is_err());
            vanished += !vfs.exists(&dir().join("g")) as u32;
        }
        assert!(vanished > 0 && vanished < 40);
    }

    #[test]
    fn faults_fire() {
        let (vfs, f) = setup(1);
        vfs.update_faults(|x| x.disk_bytes_max = Some(100));
        let err = f.write_at(&[0u8; 200], 0).unwrap_err();
        assert!(crate::error::is_disk_full(&err));
        vfs.update_faults(|x| x.disk_bytes_max = None);
        f.write_at(&[0u8; 200], 0).unwrap();
        vfs.update_faults(|x| x.fsync_fail_next = 1);
        assert!(f.sync_data().is_err());
        assert!(f.sync_data().is_ok(), "a retried fsync succeeds, proving nothing");
        vfs.update_faults(|x| x.eio_on = Some((SimOp::Read, 2)));
        let mut b = [0u8; 4];
        f.read_at(&mut b, 0).unwrap();
        assert!(f.read_at(&mut b, 0).is_err());
        f.read_at(&mut b, 0).unwrap();
        vfs.update_faults(|x| x.power_cut_after_ops = Some(2));
        f.write_at(&[1], 0).unwrap();
        assert!(f.write_at(&[1], 0).is_err());
        assert!(f.read_at(&mut b, 0).is_err());
        vfs.crash();
    }
}
