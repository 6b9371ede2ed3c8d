//! Files and directories behind a trait.
//!
//! Every byte Bulwark reads or writes goes through [`Vfs`] and [`VfsFile`]. There are two
//! implementations:
//!
//! - [`RealVfs`]: the operating system's files (`pread`, `pwrite`, `fdatasync`).
//! - [`SimVfs`]: an in-memory disk for tests and the simulator. It keeps the bytes that were
//!   written but not yet synced apart from the durable bytes, so that a simulated crash can
//!   keep the durable bytes plus a seeded choice of the unsynced writes, torn at 512-byte
//!   sector granularity. It can also inject faults: bit flips, EIO, ENOSPC, fsync failure,
//!   latency, and a power cut after a chosen number of operations.
//!
//! Paths are plain [`Path`]s. Directory entries (creating, renaming and removing files) are
//! durable only after [`Vfs::sync_dir`] on the parent directory, as on Linux.

mod real;
mod sim;

pub use real::RealVfs;
pub use sim::{SimFaults, SimOp, SimRng, SimVfs, SECTOR_BYTES};

use std::io;
use std::path::Path;
use std::sync::Arc;

/// A file system: opens files and changes directories.
pub trait Vfs: Send + Sync + 'static {
    /// Opens `path` for reading and writing, creating it (empty) when `create` is set.
    fn open(&self, path: &Path, create: bool) -> io::Result<Arc<dyn VfsFile>>;
    /// Renames `from` to `to`, replacing `to`. Durable after `sync_dir`.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Removes a file. Durable after `sync_dir`.
    fn remove(&self, path: &Path) -> io::Result<()>;
    /// The names of the files in `dir`, sorted.
    fn list(&self, dir: &Path) -> io::Result<Vec<String>>;
    /// Makes the directory entries of `dir` durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
    /// Creates `dir` and its parents.
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;
    /// True if `path` names an existing file.
    fn exists(&self, path: &Path) -> bool;
}

/// An open file. All positions are absolute byte offsets; there is no cursor, so one file
/// can be shared by many threads.
pub trait VfsFile: Send + Sync {
    /// Reads up to `buf.len()` bytes at `offset`; returns how many were read (0 at the end).
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize>;
    /// Writes all of `buf` at `offset`, extending the file if needed.
    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()>;
    /// Makes the file's written bytes durable (fdatasync).
    fn sync_data(&self) -> io::Result<()>;
    /// Truncates or extends the file.
    fn set_len(&self, len: u64) -> io::Result<()>;
    /// The file's current length.
    fn len(&self) -> io::Result<u64>;

    /// True if the file is empty.
    fn is_empty(&self) -> io::Result<bool> {
        Ok(self.len()? == 0)
    }

    /// Reads exactly `buf.len()` bytes at `offset`, failing with `UnexpectedEof` if the file
    /// is shorter.
    fn read_exact_at(&self, mut buf: &mut [u8], mut offset: u64) -> io::Result<()> {
        while !buf.is_empty() {
            let n = self.read_at(buf, offset)?;
            if n == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "short read"));
            }
            buf = &mut buf[n..];
            offset += n as u64;
        }
        Ok(())
    }
}
