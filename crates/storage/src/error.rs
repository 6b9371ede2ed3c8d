//! The storage layer's one error type.
//!
//! Each variant tells the caller what it can do about it:
//!
//! | variant      | what happened                               | what to do                       |
//! |--------------|---------------------------------------------|----------------------------------|
//! | `DiskFull`   | the device is out of space (ENOSPC)         | free space, then retry the write |
//! | `Io`         | an I/O call failed (EIO and friends)        | retry later or stop              |
//! | `Corrupted`  | a checksum or structure check failed        | stop; repair from a replica/backup |
//! | `Poisoned`   | an earlier fsync failed; writes are refused | restart the process (recovery)   |
//! | `Invalid`    | the caller passed something out of bounds   | fix the input                    |

use std::io;

/// A storage result.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong below the transaction layer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The device has no space left. Nothing was half written: the write that failed is
    /// rolled back, earlier data stays readable, and writes work again once space returns.
    #[error("disk full: {0}")]
    DiskFull(String),
    /// An I/O call failed.
    #[error("I/O error: {context}: {source}")]
    Io {
        /// What Bulwark was doing.
        context: String,
        /// The operating system's error.
        source: io::Error,
    },
    /// Stored bytes failed a checksum or a structural check. The bytes are never served.
    #[error("data corrupted in {file}: {detail}")]
    Corrupted {
        /// The file, relative to the data directory.
        file: String,
        /// Where in the file (page number or byte offset) and what check failed.
        detail: String,
    },
    /// An fsync failed earlier. The kernel may have dropped the dirty pages, so nothing
    /// written since the last good fsync can be trusted to be durable; every later write is
    /// refused with the original reason. Restarting runs recovery from what is durable.
    #[error("storage is fenced after an earlier failure, refusing writes: {0}")]
    Poisoned(String),
    /// The caller asked for something outside the engine's limits.
    #[error("invalid request: {0}")]
    Invalid(String),
}

impl Error {
    /// Wraps an I/O error, turning ENOSPC into [`Error::DiskFull`].
    pub fn io(context: impl Into<String>, source: io::Error) -> Error {
        let context = context.into();
        if is_disk_full(&source) {
            Error::DiskFull(format!("{context}: {source}"))
        } else {
            Error::Io { context, source }
        }
    }

    /// A corruption error for `file`.
    pub fn corrupted(file: impl Into<String>, detail: impl Into<String>) -> Error {
        Error::Corrupted { file: file.into(), detail: detail.into() }
    }

    /// True for errors that mean stored data is damaged.
    pub fn is_corruption(&self) -> bool {
        matches!(self, Error::Corrupted { .. })
    }
}

/// True if `err` is the operating system's "no space left on device".
pub fn is_disk_full(err: &io::Error) -> bool {
    err.kind() == io::ErrorKind::StorageFull || err.raw_os_error() == Some(28)
}
