//! Bulwark's storage engine: the bottom layer, which keeps data safe when machines crash,
//! disks lie and fsync fails.
//!
//! ```text
//!   Store ─── commit(batch) ──► Wal (segmented, CRC32C-framed, group commit)
//!     │                          │
//!     │ apply in log order       │ recovery replays after the checkpoint
//!     ▼                          ▼
//!   Tree (copy-on-write B-tree) ──► Pager + BufferPool ──► data.db (checksummed 4 KiB pages,
//!                                                          two alternating meta slots)
//!   everything through Vfs: RealVfs (the OS) or SimVfs (seeded crashes and faults)
//! ```
//!
//! Modules, bottom up:
//!
//! - [`vfs`]: files behind a trait; the simulated disk for tests.
//! - [`wal`]: the write-ahead log.
//! - [`page`]: the page format; [`pool`]: the buffer pool.
//! - [`btree`]: the copy-on-write B-tree and the page allocator.
//! - [`store`]: log + tree, checkpoints, recovery: the API the transaction layer uses.
//! - [`keycode`]: the order-preserving encoding of composite keys.
//!
//! The byte-level formats are in `docs/format.md`.

pub mod btree;
pub mod error;
pub mod keycode;
pub mod page;
pub mod pool;
pub mod sorted;
pub mod store;
pub mod vfs;
pub mod wal;

pub use error::{Error, Result};
pub use store::{image_applied_index, KvRead, Store, StoreOptions, StoreStats, WriteBatch, WriteOp};
