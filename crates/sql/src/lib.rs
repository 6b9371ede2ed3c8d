//! Bulwark's SQL layer: PostgreSQL's dialect over MVCC transactions.
//!
//! # The life of a query
//!
//! 1. `parser`: `sqlparser` (PostgreSQL dialect, pinned) parses the text; its tree is
//!    translated at once into Bulwark's own [`ast`], so a parser upgrade touches one module.
//! 2. `session` runs the statement in the session's transaction (an explicit block, or an
//!    implicit one per statement), mapping every error to a PostgreSQL SQLSTATE.
//! 3. `catalog` resolves names; `exec` plans and runs the statement over `txn`.
//!    System tables (`pg_catalog`, `information_schema`) are made from the catalog by
//!    `system` and scanned like any table.
//! 4. `eval` computes expressions with PostgreSQL's semantics: three-valued logic, casts,
//!    overflow (22003), bad input (22P02), division by zero (22012).

pub mod advisory;
pub mod analyze;
pub mod ast;
pub mod bind;
pub mod catalog;
pub mod check;
pub mod copy;
pub mod display;
pub mod dml;
pub mod error;
pub mod eval;
pub mod exec;
pub mod explain;
pub mod parser;
pub mod plan;
pub mod roles;
pub mod session;
pub mod system;
pub mod types;

pub use error::{Error, Result};
pub use session::{Database, QueryResult, ResultColumn, Session, TxnStatus};
pub use types::{DataType, Value};
