//! Bulwark's transactions: MVCC over the storage engine, with the isolation levels
//! PostgreSQL documents, row locks, deadlock detection and vacuum.
//!
//! # How a transaction runs
//!
//! ```text
//!  first statement ──► snapshot = applied index   (READ COMMITTED: a new one per statement)
//!  get/scan ──► own writes, else the newest version with commit index <= snapshot
//!  put/delete/lock_row ──► row lock (wait, NOWAIT or SKIP LOCKED; deadlock detection);
//!                          REPEATABLE READ / SERIALIZABLE: row changed since snapshot ─► 40001
//!  commit ──► one Command {snapshot, isolation, writes, reads, ranges} ──► Propose
//!             ──► log (group commit) ──► apply in log order: validate, install at index
//!                 or reject the whole command (40001, naming the conflict)
//! ```
//!
//! # Isolation levels
//!
//! - **READ COMMITTED**: each statement reads a fresh snapshot; a locked row is read at its
//!   newest committed version (as PostgreSQL re-reads the row after waiting); nothing is
//!   validated at commit. Prevents G0, G1a, G1b, G1c and OTV.
//! - **REPEATABLE READ** (snapshot isolation): one snapshot for the whole transaction;
//!   locking or writing a row that changed since the snapshot fails with 40001, and commit
//!   checks write-write conflicts again (first committer wins). Also prevents PMP, P4 and
//!   G-single; allows write skew (G2-item, G2), as PostgreSQL does.
//! - **SERIALIZABLE**: also records every key and range read; commit fails with 40001 if any
//!   of them changed after the snapshot (backward validation, as in optimistic concurrency
//!   control). Every committed writer is serialized at its commit index and read the state
//!   as of that point, so histories are serializable: no anomaly, including write skew and
//!   anti-dependency cycles through predicates. Read-only transactions are serialized at
//!   their snapshot and never abort.
//!
//! Any error aborts the transaction, as in PostgreSQL: it releases its locks and snapshot at
//! once, and every later operation fails with 25P02 until it is rolled back. With a
//! savepoint open (`Txn::savepoint`), an error only marks it failed, keeping locks and
//! snapshot, and `Txn::rollback_to` undoes the writes made since the savepoint and lets
//! the transaction go on (see [`Txn`] for what a rollback to a savepoint keeps).
//!
//! # Pessimistic and optimistic
//!
//! Both modes work together. Writes and `SELECT ... FOR UPDATE/SHARE` are pessimistic: they
//! lock rows and wait (bounded by lock_timeout, checked for deadlocks after
//! deadlock_timeout). Reads take no locks; at REPEATABLE READ and SERIALIZABLE, what they
//! read is validated optimistically at commit. Use locks where conflicts are expected (hot
//! rows, queues with SKIP LOCKED); rely on validation where they are rare.
//!
//! # What it leaves out
//!
//! - SERIALIZABLE validation is coarser than PostgreSQL's SSI: any change to something read
//!   aborts, even without a dangerous structure, so it aborts more often under contention.
//! - Locks live in memory on the node that runs the transaction (the leader).

pub mod command;
pub mod engine;
pub mod error;
pub mod lock;

pub use command::IsolationLevel;
pub use engine::{Engine, EngineOptions, EngineStats, Propose, SavepointId, Txn, TxnOptions};
pub use error::{Error, Result};
pub use lock::{LockMode, LockSettings, WaitPolicy};
