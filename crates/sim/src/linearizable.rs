//! A linearizability checker for key-value registers, for the cluster's simulated and
//! real-process tests: clients read, write and compare-and-set keys, each call is recorded
//! with the time it was invoked and the time its reply arrived, and [`check`] decides
//! whether some order of the calls, one that respects real time, explains every reply.
//!
//! # How it works
//!
//! Registers are independent, so the history is split by key and each key is checked on
//! its own (linearizability is compositional: Herlihy and Wing, 1990). For one key the
//! search is the Wing–Gong algorithm with Lowe's memoisation ("Testing for linearizability",
//! 2017):
//!
//! ```text
//!   state: (calls linearized so far, register value)
//!   next:  any call not yet linearized that was invoked before every other pending
//!          call completed (so real time allows it to go first); apply it to the value;
//!          a read must see the value, a compare-and-set must succeed or fail as replied
//!   done:  every call that got a reply is linearized
//! ```
//!
//! States already explored are remembered, so each (set, value) pair is searched once.
//!
//! A call without a reply (the client timed out, or its node crashed) may have taken
//! effect at any time after it was invoked, or never: it is linearized or left out, as the
//! search needs. A read without a reply constrains nothing and is dropped. Each unknown
//! write doubles the orders to try, so a key is first searched without the unknown writes
//! whose value no reply showed (taking them as never having happened is one of the
//! allowed choices, so an order found that way is an answer); only if that finds none does
//! the full search run.
//!
//! # Bounds
//!
//! The search is exponential in the worst case. [`KEY_CALLS_MAX`] bounds the calls on one
//! key and [`SEARCH_STATES_MAX`] the states explored per key; past either the verdict is
//! [`Verdict::Unknown`], never a guess. Tests keep histories per key small (many keys,
//! few calls each), as Jepsen's independent-key workloads do.
//!
//! # Determinism
//!
//! No clock, no I/O, no randomness: times are whatever the caller recorded (a simulator's
//! ticks or a real clock's nanoseconds), keys are visited in order, and calls in the order
//! given, so the same history always gives the same verdict and the same explanation.

use std::collections::{BTreeMap, HashSet};

/// The most calls on one key [`check`] searches.
pub const KEY_CALLS_MAX: usize = 256;
/// The most search states [`check`] explores for one key before answering Unknown.
pub const SEARCH_STATES_MAX: usize = 1_000_000;

/// A register's value; None before the first write.
pub type Value = Option<i64>;

/// What a call asked and, if it has a reply, what the reply said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// A read that returned this value.
    Read(Value),
    /// A write of this value.
    Write(i64),
    /// Compare-and-set from `expect` to `new`; `ok` says whether it replied success.
    Cas {
        /// The value it required.
        expect: i64,
        /// The value it set.
        new: i64,
        /// Whether the reply said it succeeded (ignored for a call without a reply, which
        /// may have succeeded or not).
        ok: bool,
    },
}

/// One client call on one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Call {
    /// The register.
    pub key: u64,
    /// What it did.
    pub op: Op,
    /// When the client sent it.
    pub invoked: u64,
    /// When the client got the reply; None if it never did (outcome unknown).
    pub completed: Option<u64>,
}

/// What [`check`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Some real-time-respecting order explains every reply.
    Linearizable,
    /// No order explains the replies on `key`.
    NotLinearizable {
        /// The first key (in key order) that failed.
        key: u64,
        /// The longest order the search could build, as indexes into the history.
        longest_prefix: Vec<usize>,
        /// The calls that could go next after that prefix in real time, none of which the
        /// register's value allowed (indexes into the history).
        stuck_at: Vec<usize>,
    },
    /// The search for `key` passed a bound before deciding.
    Unknown {
        /// The key.
        key: u64,
        /// Which bound.
        reason: String,
    },
}

/// Checks `history` (calls in any order) for linearizability, key by key.
pub fn check(history: &[Call]) -> Verdict {
    let mut by_key: BTreeMap<u64, Vec<usize>> = BTreeMap::new();
    for (i, call) in history.iter().enumerate() {
        if let Some(done) = call.completed {
            assert!(done >= call.invoked, "call {i} completed at {done}, before it was invoked at {}", call.invoked);
        }
        // A read without a reply tells nothing.
        if matches!(call.op, Op::Read(_)) && call.completed.is_none() {
            continue;
        }
        by_key.entry(call.key).or_default().push(i);
    }
    for (key, calls) in by_key {
        if calls.len() > KEY_CALLS_MAX {
            return Verdict::Unknown {
                key,
                reason: format!("{} calls on the key, more than KEY_CALLS_MAX ({KEY_CALLS_MAX})", calls.len()),
            };
        }
        // First without the calls of unknown outcome whose value no reply ever showed: each
        // may be taken as never having happened, so an order found without them explains
        // the history. Many such calls make the full search explode; if the short one finds
        // no order, the full search decides.
        let shown = without_unseen_unknowns(history, &calls);
        if shown.len() < calls.len() && Search::new(history, key, shown).run() == Verdict::Linearizable {
            continue;
        }
        let verdict = Search::new(history, key, calls).run();
        if verdict != Verdict::Linearizable {
            return verdict;
        }
    }
    Verdict::Linearizable
}

/// `calls` less the writes and compare-and-sets without a reply whose new value no replied
/// call shows: no read returned it and no compare-and-set expecting it succeeded.
fn without_unseen_unknowns(history: &[Call], calls: &[usize]) -> Vec<usize> {
    let shown: HashSet<i64> = calls
        .iter()
        .filter(|&&i| history[i].completed.is_some())
        .filter_map(|&i| match history[i].op {
            Op::Read(v) => v,
            Op::Cas { expect, ok: true, .. } => Some(expect),
            _ => None,
        })
        .collect();
    calls
        .iter()
        .copied()
        .filter(|&i| {
            let call = &history[i];
            match call.op {
                _ if call.completed.is_some() => true,
                Op::Write(v) | Op::Cas { new: v, .. } => shown.contains(&v),
                Op::Read(_) => true,
            }
        })
        .collect()
}

/// The search over one key's calls.
struct Search<'h> {
    history: &'h [Call],
    key: u64,
    /// Indexes into `history`.
    calls: Vec<usize>,
    /// (linearized set as bit words, value) pairs already explored.
    seen: HashSet<(Vec<u64>, Value)>,
    /// The longest prefix found, and the calls that were possible after it.
    longest: (Vec<usize>, Vec<usize>),
}

impl<'h> Search<'h> {
    fn new(history: &'h [Call], key: u64, calls: Vec<usize>) -> Search<'h> {
        Search { history, key, calls, seen: HashSet::new(), longest: (Vec::new(), Vec::new()) }
    }

    fn run(mut self) -> Verdict {
        let mut done = vec![0u64; self.calls.len().div_ceil(64)];
        let mut order = Vec::new();
        match self.explore(&mut done, None, &mut order) {
            Some(true) => Verdict::Linearizable,
            Some(false) => {
                Verdict::NotLinearizable { key: self.key, longest_prefix: self.longest.0, stuck_at: self.longest.1 }
            }
            None => Verdict::Unknown {
                key: self.key,
                reason: format!("explored more than SEARCH_STATES_MAX ({SEARCH_STATES_MAX}) states"),
            },
        }
    }

    /// Depth-first search from the state (`done`, `value`); Some(true) when every completed
    /// call can be linearized from here, None when the state budget ran out.
    fn explore(&mut self, done: &mut Vec<u64>, value: Value, order: &mut Vec<usize>) -> Option<bool> {
        if !self.seen.insert((done.clone(), value)) {
            return Some(false);
        }
        if self.seen.len() > SEARCH_STATES_MAX {
            return None;
        }
        let pending: Vec<usize> = (0..self.calls.len()).filter(|&j| done[j / 64] & (1 << (j % 64)) == 0).collect();
        if pending.iter().all(|&j| self.call(j).completed.is_none()) {
            return Some(true);
        }
        // Real time: a call may go next only if no pending call completed before it began.
        let first_completion = pending.iter().filter_map(|&j| self.call(j).completed).min().unwrap_or(u64::MAX);
        let candidates: Vec<usize> =
            pending.into_iter().filter(|&j| self.call(j).invoked <= first_completion).collect();
        if order.len() >= self.longest.0.len() {
            self.longest =
                (order.iter().map(|&j| self.calls[j]).collect(), candidates.iter().map(|&j| self.calls[j]).collect());
        }
        for j in candidates {
            let call = *self.call(j);
            for next in outcomes(&call, value) {
                done[j / 64] |= 1 << (j % 64);
                order.push(j);
                let found = self.explore(done, next, order);
                order.pop();
                done[j / 64] &= !(1 << (j % 64));
                match found {
                    Some(false) => {}
                    other => return other,
                }
            }
        }
        Some(false)
    }

    fn call(&self, j: usize) -> &Call {
        &self.history[self.calls[j]]
    }
}

/// The register values `call` may leave when applied to `value`: none if its reply
/// contradicts `value`; for a call without a reply, every outcome it could have had.
fn outcomes(call: &Call, value: Value) -> Vec<Value> {
    let replied = call.completed.is_some();
    match call.op {
        Op::Read(seen) => {
            if seen == value {
                vec![value]
            } else {
                vec![]
            }
        }
        Op::Write(v) => vec![Some(v)],
        Op::Cas { expect, new, ok } => {
            let matches = value == Some(expect);
            match (replied, ok, matches) {
                (true, true, true) => vec![Some(new)],
                (true, false, false) => vec![value],
                (true, _, _) => vec![],
                // No reply: it succeeded if it could; failing is the same as leaving it out.
                (false, _, true) => vec![Some(new)],
                (false, _, false) => vec![],
            }
        }
    }
}

#[cfg(test)]
mod tests;
