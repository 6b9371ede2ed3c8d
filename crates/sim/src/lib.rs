//! Bulwark's simulation tools: what a seeded simulator, a chaos lab or a concurrency test
//! uses to decide whether what the database did was allowed.
//!
//! Today it holds one tool, [`history`]: a checker for list-append histories in the style
//! of Elle (Kingsbury and Alvaro, "Elle: Inferring Isolation Anomalies from Experimental
//! Observations", VLDB 2020). A test records what each transaction did and saw, hands the
//! history to [`history::check`], and gets back the anomalies it contains, each named by
//! the Adya class it belongs to (G0, G1a, G1b, G1c, G-single, G2) with the cycle of
//! transactions that proves it.
//!
//! ```text
//!   workload threads ──► Txn { ops: appends and the lists reads saw, committed }
//!                                         │
//!                                         ▼
//!   history::check ──► version orders ──► dependency graph ──► cycles ──► CheckResult
//! ```
//!
//! The checker does no I/O and keeps no clock: it is a pure function of the history, so the
//! same history always gives the same report, and a seed that produced a history replays
//! the verdict.
//!
//! # What it leaves out
//!
//! - Real-time order (strict serializability): the history carries no invocation and
//!   completion times, so it finds no anomaly that only real time reveals.
//! - Other data types (registers, sets, counters): lists are what make versions
//!   recoverable from reads, so they come first.

pub mod history;

pub use history::{check, Anomaly, AnomalyKind, CheckResult, Edge, EdgeKind, Op, Txn};
