//! Row locks: shared and exclusive, waits bounded by `lock_timeout`, deadlock detection.
//!
//! ```text
//!   acquire(txn, key, mode) ── compatible? ── yes ──► granted (held until commit/rollback)
//!                               │ no
//!                               ├─ NOWAIT ─────────► 55P03
//!                               ├─ SKIP LOCKED ────► Skipped
//!                               └─ wait (edge txn ─► holders in the wait-for graph)
//!                                    ├─ granted when the holders release
//!                                    ├─ after deadlock_timeout (again after each change of
//!                                    │  holder): look for a cycle through txn;
//!                                    │  if there is one, txn is the victim ─► 40P01
//!                                    └─ after lock_timeout ─► 55P03
//! ```
//!
//! As in PostgreSQL, the waiter that finds the cycle aborts itself; it stops waiting at once
//! (its wait-for edges go), and its transaction, now aborted, releases its locks at once, so
//! the others in the cycle find no cycle when they look and carry on. Exactly one
//! transaction per cycle is chosen.
//!
//! Shared locks (FOR SHARE) are compatible with each other; an exclusive lock (writes,
//! FOR UPDATE) with nothing but the holder's own locks: a transaction that holds the only
//! shared lock on a row may upgrade it.
//!
//! The table is bounded: at most `lock_entries_max` locked rows at once.

use crate::error::{Error, Result};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// A transaction's number.
pub type TxnId = u64;

/// The strength of a row lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockMode {
    /// FOR SHARE: compatible with other shared locks.
    Shared,
    /// FOR UPDATE, UPDATE, DELETE, INSERT: excludes every other lock.
    Exclusive,
}

/// What to do when a lock is held by someone else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitPolicy {
    /// Wait (bounded by lock_timeout, checked for deadlocks after deadlock_timeout).
    Wait,
    /// Fail at once with 55P03.
    NoWait,
    /// Skip the row.
    SkipLocked,
}

/// The outcome of [`LockTable::acquire`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acquired {
    /// The lock is held.
    Granted,
    /// SKIP LOCKED: someone else holds it.
    Skipped,
}

/// Lock settings.
#[derive(Debug, Clone, Copy)]
pub struct LockSettings {
    /// Give up waiting after this long (None: wait forever, as PostgreSQL's default 0).
    pub lock_timeout: Option<Duration>,
    /// Look for a deadlock after waiting this long.
    pub deadlock_timeout: Duration,
}

impl Default for LockSettings {
    fn default() -> Self {
        LockSettings { lock_timeout: None, deadlock_timeout: Duration::from_secs(1) }
    }
}

#[derive(Default)]
struct RowLock {
    exclusive: Option<TxnId>,
    shared: BTreeSet<TxnId>,
}

impl RowLock {
    /// The other transactions that block `txn` from taking `mode`.
    fn blockers(&self, txn: TxnId, mode: LockMode) -> BTreeSet<TxnId> {
        let mut b = BTreeSet::new();
        if let Some(x) = self.exclusive.filter(|&x| x != txn) {
            b.insert(x);
        }
        if mode == LockMode::Exclusive {
            b.extend(self.shared.iter().copied().filter(|&s| s != txn));
        }
        b
    }

    fn is_free(&self) -> bool {
        self.exclusive.is_none() && self.shared.is_empty()
    }
}

#[derive(Default)]
struct Table {
    rows: BTreeMap<Vec<u8>, RowLock>,
    held: BTreeMap<TxnId, BTreeSet<Vec<u8>>>,
    waits_for: BTreeMap<TxnId, BTreeSet<TxnId>>,
    /// Who waits for each row, each on a condition variable of its own: a release wakes the
    /// waiters of the rows it frees, not every waiter (with many clients contending on a
    /// few rows, waking them all on every commit cost more than the waits).
    waiters: BTreeMap<Vec<u8>, Vec<(TxnId, Arc<Condvar>)>>,
}

/// Counters of the lock table.
#[derive(Debug, Clone, Copy, Default)]
pub struct LockStats {
    /// Lock requests that had to wait.
    pub waits: u64,
    /// Deadlocks found (one victim each).
    pub deadlocks: u64,
    /// Waits that ended by lock_timeout or NOWAIT.
    pub timeouts: u64,
    /// Times a waiter was woken by a release of the row it waits for.
    pub wakeups: u64,
    /// Rows locked now.
    pub locked_rows: u64,
}

/// The lock table of one node.
pub struct LockTable {
    entries_max: usize,
    table: Mutex<Table>,
    stats: Mutex<LockStats>,
}

impl LockTable {
    /// A table holding at most `entries_max` locked rows.
    pub fn new(entries_max: usize) -> LockTable {
        LockTable { entries_max, table: Mutex::new(Table::default()), stats: Mutex::new(LockStats::default()) }
    }

    fn lock(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn count(&self, f: impl FnOnce(&mut LockStats)) {
        f(&mut self.stats.lock().unwrap_or_else(|e| e.into_inner()));
    }

    /// Takes a `mode` lock on `key` for `txn`.
    pub fn acquire(
        &self,
        txn: TxnId,
        key: &[u8],
        mode: LockMode,
        policy: WaitPolicy,
        settings: LockSettings,
    ) -> Result<Acquired> {
        let start = Instant::now();
        // Look for a cycle deadlock_timeout after the wait starts, and again
        // deadlock_timeout after each change of whom it waits for: a row's holder changes
        // while a waiter sleeps, and the cycle that change closes may have no other member
        // left to look (each already looked, too early). The transaction that closes a
        // cycle still looks first, so it is the one chosen, as before.
        let mut next_deadlock_check = Some(start + settings.deadlock_timeout);
        let mut waiting_for: Option<BTreeSet<TxnId>> = None;
        let mut t = self.lock();
        // Set once this transaction waits: its entry in `waiters[key]`.
        let mut parked: Option<Arc<Condvar>> = None;
        let outcome = loop {
            let blockers = t.rows.get(key).map(|r| r.blockers(txn, mode)).unwrap_or_default();
            if blockers.is_empty() {
                if !t.rows.contains_key(key) && t.rows.len() >= self.entries_max {
                    t.waits_for.remove(&txn);
                    break Err(Error::Resources(format!(
                        "out of lock table space: {} rows are locked (the limit is {})",
                        t.rows.len(),
                        self.entries_max
                    )));
                }
                let row = t.rows.entry(key.to_vec()).or_default();
                match mode {
                    LockMode::Exclusive => {
                        row.shared.remove(&txn);
                        row.exclusive = Some(txn);
                    }
                    LockMode::Shared => {
                        if row.exclusive != Some(txn) {
                            row.shared.insert(txn);
                        }
                    }
                }
                t.held.entry(txn).or_default().insert(key.to_vec());
                t.waits_for.remove(&txn);
                break Ok(Acquired::Granted);
            }
            match policy {
                WaitPolicy::SkipLocked => break Ok(Acquired::Skipped),
                WaitPolicy::NoWait => {
                    self.count(|s| s.timeouts += 1);
                    break Err(Error::LockNotAvailable(format!(
                        "the row is locked by transaction {} (NOWAIT)",
                        blockers.iter().next().expect("blocked")
                    )));
                }
                WaitPolicy::Wait => {}
            }
            if !t.waits_for.contains_key(&txn) {
                self.count(|s| s.waits += 1);
            }
            if waiting_for.as_ref().is_some_and(|w| *w != blockers) {
                next_deadlock_check = Some(Instant::now() + settings.deadlock_timeout);
            }
            waiting_for = Some(blockers.clone());
            t.waits_for.insert(txn, blockers);
            let waited = start.elapsed();
            if next_deadlock_check.is_some_and(|at| Instant::now() >= at) {
                next_deadlock_check = None;
                if let Some(cycle) = find_cycle(&t.waits_for, txn) {
                    t.waits_for.remove(&txn);
                    self.count(|s| s.deadlocks += 1);
                    let path: Vec<String> = cycle.iter().map(|x| format!("transaction {x}")).collect();
                    break Err(Error::Deadlock(format!("{} waits for {}", path.join(" waits for "), cycle[0])));
                }
            }
            if let Some(limit) = settings.lock_timeout {
                if waited >= limit {
                    t.waits_for.remove(&txn);
                    self.count(|s| s.timeouts += 1);
                    break Err(Error::LockNotAvailable(format!(
                        "canceling statement due to lock timeout ({} ms)",
                        limit.as_millis()
                    )));
                }
            }
            let wake_at = match (settings.lock_timeout.map(|l| start + l), next_deadlock_check) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let cv = match &parked {
                Some(cv) => cv.clone(),
                None => {
                    let cv = Arc::new(Condvar::new());
                    t.waiters.entry(key.to_vec()).or_default().push((txn, cv.clone()));
                    parked = Some(cv.clone());
                    cv
                }
            };
            t = match wake_at {
                Some(at) => {
                    let dur = at.saturating_duration_since(Instant::now()).max(Duration::from_millis(1));
                    let (t, waited) = cv.wait_timeout(t, dur).unwrap_or_else(|e| e.into_inner());
                    if !waited.timed_out() {
                        self.count(|s| s.wakeups += 1);
                    }
                    t
                }
                None => {
                    let t = cv.wait(t).unwrap_or_else(|e| e.into_inner());
                    self.count(|s| s.wakeups += 1);
                    t
                }
            };
        };
        if parked.is_some() {
            if let Some(ws) = t.waiters.get_mut(key) {
                ws.retain(|(w, _)| *w != txn);
                if ws.is_empty() {
                    t.waiters.remove(key);
                }
            }
        }
        outcome
    }

    /// Releases every lock `txn` holds and wakes the waiters.
    pub fn release_all(&self, txn: TxnId) {
        let mut t = self.lock();
        t.waits_for.remove(&txn);
        let mut wake = Vec::new();
        if let Some(keys) = t.held.remove(&txn) {
            for key in keys {
                if let Some(row) = t.rows.get_mut(&key) {
                    if row.exclusive == Some(txn) {
                        row.exclusive = None;
                    }
                    row.shared.remove(&txn);
                    if row.is_free() {
                        t.rows.remove(&key);
                    }
                }
                if let Some(ws) = t.waiters.get(&key) {
                    wake.extend(ws.iter().map(|(_, cv)| cv.clone()));
                }
            }
        }
        drop(t);
        for cv in wake {
            cv.notify_one();
        }
    }

    /// True if `txn` holds a lock on `key` at least as strong as `mode`.
    pub fn holds(&self, txn: TxnId, key: &[u8], mode: LockMode) -> bool {
        let t = self.lock();
        t.rows.get(key).is_some_and(|r| match mode {
            LockMode::Exclusive => r.exclusive == Some(txn),
            LockMode::Shared => r.exclusive == Some(txn) || r.shared.contains(&txn),
        })
    }

    /// The counters.
    pub fn stats(&self) -> LockStats {
        let locked = self.lock().rows.len() as u64;
        let mut s = *self.stats.lock().unwrap_or_else(|e| e.into_inner());
        s.locked_rows = locked;
        s
    }
}

/// A cycle in the wait-for graph through `start`, as the list of transactions on it.
fn find_cycle(graph: &BTreeMap<TxnId, BTreeSet<TxnId>>, start: TxnId) -> Option<Vec<TxnId>> {
    fn dfs(
        graph: &BTreeMap<TxnId, BTreeSet<TxnId>>,
        node: TxnId,
        start: TxnId,
        path: &mut Vec<TxnId>,
        seen: &mut BTreeSet<TxnId>,
    ) -> bool {
        for &next in graph.get(&node).into_iter().flatten() {
            if next == start {
                return true;
            }
            if seen.insert(next) {
                path.push(next);
                if dfs(graph, next, start, path, seen) {
                    return true;
                }
                path.pop();
            }
        }
        false
    }
    let mut path = vec![start];
    let mut seen = BTreeSet::from([start]);
    dfs(graph, start, start, &mut path, &mut seen).then_some(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn fast() -> LockSettings {
        LockSettings { lock_timeout: Some(Duration::from_secs(5)), deadlock_timeout: Duration::from_millis(50) }
    }

    #[test]
    fn shared_locks_share_and_exclusive_excludes() {
        let t = LockTable::new(100);
        let w = WaitPolicy::NoWait;
        assert_eq!(t.acquire(1, b"a", LockMode::Shared, w, fast()).unwrap(), Acquired::Granted);
        assert_eq!(t.acquire(2, b"a", LockMode::Shared, w, fast()).unwrap(), Acquired::Granted);
        let e = t.acquire(3, b"a", LockMode::Exclusive, w, fast()).unwrap_err();
        assert_eq!(e.sqlstate(), "55P03");
        assert_eq!(t.acquire(3, b"a", LockMode::Exclusive, WaitPolicy::SkipLocked, fast()).unwrap(), Acquired::Skipped);
        t.release_all(2);
        assert_eq!(t.acquire(1, b"a", LockMode::Exclusive, w, fast()).unwrap(), Acquired::Granted, "upgrade");
        t.release_all(1);
        assert_eq!(t.stats().locked_rows, 0);
    }

    /// A release wakes the waiters of the rows it frees and no others.
    #[test]
    fn a_release_wakes_only_the_waiters_of_its_rows() {
        let slow =
            LockSettings { lock_timeout: Some(Duration::from_secs(20)), deadlock_timeout: Duration::from_secs(20) };
        let t = Arc::new(LockTable::new(100));
        t.acquire(1, b"a", LockMode::Exclusive, WaitPolicy::Wait, slow).unwrap();
        t.acquire(2, b"b", LockMode::Exclusive, WaitPolicy::Wait, slow).unwrap();
        let wait = |txn: TxnId, key: &'static [u8]| {
            let t = t.clone();
            std::thread::spawn(move || t.acquire(txn, key, LockMode::Exclusive, WaitPolicy::Wait, slow))
        };
        let on_a = wait(3, b"a");
        let on_b = wait(4, b"b");
        let deadline = Instant::now() + Duration::from_secs(10);
        while t.stats().waits < 2 {
            assert!(Instant::now() < deadline, "the waiters never waited");
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(20)); // both asleep on their rows
        t.release_all(2);
        assert_eq!(on_b.join().unwrap().unwrap(), Acquired::Granted);
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(t.stats().wakeups, 1, "releasing b woke only b's waiter");
        assert!(!on_a.is_finished());
        t.release_all(1);
        assert_eq!(on_a.join().unwrap().unwrap(), Acquired::Granted);
        assert_eq!(t.stats().wakeups, 2);
    }

    #[test]
    fn lock_timeout_ends_the_wait() {
        let t = LockTable::new(100);
        t.acquire(1, b"a", LockMode::Exclusive, WaitPolicy::Wait, fast()).unwrap();
        let s =
            LockSettings { lock_timeout: Some(Duration::from_millis(30)), deadlock_timeout: Duration::from_secs(1) };
        let e = t.acquire(2, b"a", LockMode::Exclusive, WaitPolicy::Wait, s).unwrap_err();
        assert!(e.to_string().contains("lock timeout"), "{e}");
    }

    #[test]
    fn a_two_way_deadlock_has_exactly_one_victim() {
        let t = Arc::new(LockTable::new(100));
        t.acquire(1, b"a", LockMode::Exclusive, WaitPolicy::Wait, fast()).unwrap();
        t.acquire(2, b"b", LockMode::Exclusive, WaitPolicy::Wait, fast()).unwrap();
        let t2 = t.clone();
        let h = std::thread::spawn(move || {
            let r = t2.acquire(2, b"a", LockMode::Exclusive, WaitPolicy::Wait, fast());
            if r.is_err() {
                t2.release_all(2);
            }
            r
        });
        let r1 = t.acquire(1, b"b", LockMode::Exclusive, WaitPolicy::Wait, fast());
        if r1.is_err() {
            t.release_all(1);
        }
        let r2 = h.join().unwrap();
        assert!(r1.is_err() != r2.is_err(), "exactly one victim: {r1:?} {r2:?}");
        let err = r1.err().or(r2.err()).unwrap();
        assert_eq!(err.sqlstate(), "40P01");
        assert!(err.to_string().contains("waits for"), "{err}");
        assert_eq!(t.stats().deadlocks, 1);
    }
}
