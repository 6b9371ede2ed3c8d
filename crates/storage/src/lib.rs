//! Bulwark's storage engine.
pub mod error;
pub mod keycode;
pub mod vfs;
pub mod wal;

pub use error::{Error, Result};
