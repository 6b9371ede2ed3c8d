//! Bulwark's simulation tools: what a seeded simulator, a chaos lab or a concurrency test
//! uses to decide whether what the database did was allowed.
//!
//! Two checkers so far. [`history`] is a checker for list-append histories in the style
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
//! [`linearizable`] checks a history of reads, writes and compare-and-sets on key-value
//! registers, each call with its invocation and completion times, for linearizability
//! (Wing–Gong search with Lowe's memoisation, key by key); calls whose reply never came may
//! or may not have taken effect. It is the register checker of the cluster tests.
//!
//! The checkers do no I/O and keep no clock: each is a pure function of the history, so the
//! same history always gives the same report, and a seed that produced a history replays
//! the verdict.
//!
//! # What it leaves out
//!
//! - Real-time order in list-append histories (strict serializability): they carry no
//!   invocation and completion times; registers checked by [`linearizable`] do.
//! - Other data types (sets, counters).

pub mod history;
pub mod linearizable;

pub use history::{check, Anomaly, AnomalyKind, CheckResult, Edge, EdgeKind, Op, Txn};
