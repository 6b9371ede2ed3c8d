//! The transaction layer's error type, each variant with its PostgreSQL SQLSTATE.

/// A transaction result.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong in a transaction. [`Error::sqlstate`] gives the code PostgreSQL uses.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A concurrent transaction changed what this one read or wrote (40001): retry the
    /// whole transaction.
    #[error("could not serialize access: {0}")]
    Serialization(String),
    /// This transaction was chosen as the victim of a deadlock (40P01): retry it.
    #[error("deadlock detected: {0}")]
    Deadlock(String),
    /// A row lock was not granted: NOWAIT, or lock_timeout passed (55P03).
    #[error("could not obtain lock on row: {0}")]
    LockNotAvailable(String),
    /// A write in a READ ONLY transaction (25006).
    #[error("cannot execute {0} in a read-only transaction")]
    ReadOnly(String),
    /// A bound was reached: open transactions, lock table entries (53000/53200).
    #[error("{0}")]
    Resources(String),
    /// The write set outgrew its bound (54000).
    #[error("{0}")]
    TooLarge(String),
    /// The transaction is no longer usable (25P02 after an error, or already ended).
    #[error("{0}")]
    Aborted(String),
    /// This node cannot commit now: it is not the leader, or it cannot reach a quorum
    /// (57P03, the transaction was not committed; retry, perhaps on another node).
    #[error("cannot commit now: {0}")]
    Unavailable(String),
    /// The commit was handed to replication but its outcome is not known: leadership was
    /// lost or the wait ran out before a quorum answered (08007). It may or may not have
    /// committed; check before retrying a non-idempotent change.
    #[error("transaction resolution unknown: {0}")]
    CommitUnknown(String),
    /// The storage engine failed (disk full 53100, corruption XX001, I/O 58030).
    #[error(transparent)]
    Storage(#[from] storage::Error),
}

impl Error {
    /// The PostgreSQL SQLSTATE of this error.
    pub fn sqlstate(&self) -> &'static str {
        match self {
            Error::Serialization(_) => "40001",
            Error::Deadlock(_) => "40P01",
            Error::LockNotAvailable(_) => "55P03",
            Error::ReadOnly(_) => "25006",
            Error::Resources(_) => "53000",
            Error::TooLarge(_) => "54000",
            Error::Aborted(_) => "25P02",
            Error::Unavailable(_) => "57P03",
            Error::CommitUnknown(_) => "08007",
            Error::Storage(e) => match e {
                storage::Error::DiskFull(_) => "53100",
                storage::Error::Corrupted { .. } => "XX001",
                storage::Error::Invalid(_) => "54000",
                storage::Error::Io { .. } | storage::Error::Poisoned(_) => "58030",
            },
        }
    }

    /// True if retrying the whole transaction may succeed (40001, 40P01).
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::Serialization(_) | Error::Deadlock(_))
    }
}
