//! Advisory locks: locks on 64-bit keys that mean whatever the application says
//! (`pg_advisory_lock` and its siblings), as migration tools use them to run one at a time.
//!
//! A lock is exclusive and re-entrant: the session holding it may take it again, and holds
//! it until it has unlocked it as many times. Session-level locks last until unlocked or the
//! session ends; transaction-level ones (`pg_advisory_xact_lock`) until its transaction
//! ends. They live in the node's memory: on a cluster, sessions on different nodes do not
//! see each other's advisory locks.
//!
//! A wait is bounded: it ends at lock_timeout (55P03), statement_timeout or a cancel
//! (57014), checked every [`WAIT_SLICE`]. Deadlocks between advisory locks are not
//! detected; the timeouts end them.

use crate::error::{codes, Error, Result};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

/// How long a waiter sleeps before it checks its deadlines and cancel flag again.
pub const WAIT_SLICE: Duration = Duration::from_millis(50);

/// The most advisory locks held at once on a node (53200 beyond): the table is in memory.
pub const ADVISORY_LOCKS_MAX: usize = 1 << 20;

/// The node's advisory locks: key -> (holding session, times taken).
#[derive(Default)]
pub struct AdvisoryLocks {
    held: Mutex<HashMap<i64, (u64, u64)>>,
    released: Condvar,
}

impl AdvisoryLocks {
    /// Takes `key` for `session` if it is free or already the session's; false otherwise.
    pub fn try_lock(&self, session: u64, key: i64) -> Result<bool> {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        Self::take(&mut held, session, key)
    }

    fn take(held: &mut HashMap<i64, (u64, u64)>, session: u64, key: i64) -> Result<bool> {
        let full = held.len() >= ADVISORY_LOCKS_MAX;
        match held.get_mut(&key) {
            Some((owner, count)) if *owner == session => {
                *count += 1;
                Ok(true)
            }
            Some(_) => Ok(false),
            None if full => Err(Error::new(
                codes::OUT_OF_MEMORY,
                format!("out of shared memory: more than {ADVISORY_LOCKS_MAX} advisory locks are held"),
            )),
            None => {
                held.insert(key, (session, 1));
                Ok(true)
            }
        }
    }

    /// Takes `key` for `session`, waiting while another session holds it: until
    /// `lock_deadline` (lock_timeout, 55P03), `statement_deadline` or `cancel` (57014).
    pub fn lock(
        &self,
        session: u64,
        key: i64,
        lock_deadline: Option<Instant>,
        statement_deadline: Option<Instant>,
        cancel: &AtomicBool,
    ) -> Result<()> {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if Self::take(&mut held, session, key)? {
                return Ok(());
            }
            let now = Instant::now();
            if lock_deadline.is_some_and(|d| now >= d) {
                return Err(Error::new(codes::LOCK_NOT_AVAILABLE, "canceling statement due to lock timeout"));
            }
            if statement_deadline.is_some_and(|d| now >= d) {
                return Err(Error::new(codes::QUERY_CANCELED, "canceling statement due to statement timeout"));
            }
            if cancel.swap(false, Ordering::Relaxed) {
                return Err(Error::new(codes::QUERY_CANCELED, "canceling statement due to user request"));
            }
            held = self.released.wait_timeout(held, WAIT_SLICE).unwrap_or_else(|e| e.into_inner()).0;
        }
    }

    /// Releases one hold of `key` by `session`; false if the session does not hold it.
    pub fn unlock(&self, session: u64, key: i64) -> bool {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        match held.get_mut(&key) {
            Some((owner, count)) if *owner == session => {
                *count -= 1;
                if *count == 0 {
                    held.remove(&key);
                    self.released.notify_all();
                }
                true
            }
            _ => false,
        }
    }

    /// Releases every hold of the session's.
    pub fn unlock_all(&self, session: u64) {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        let before = held.len();
        held.retain(|_, (owner, _)| *owner != session);
        if held.len() != before {
            self.released.notify_all();
        }
    }
}

/// The key of the two-argument forms: `(a, b)` as one 64-bit key, as PostgreSQL combines them.
pub fn pair_key(a: i32, b: i32) -> i64 {
    (i64::from(a) << 32) | i64::from(b as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_are_exclusive_reentrant_and_released_in_count() {
        let locks = AdvisoryLocks::default();
        assert!(locks.try_lock(1, 7).unwrap());
        assert!(locks.try_lock(1, 7).unwrap());
        assert!(!locks.try_lock(2, 7).unwrap());
        assert!(locks.unlock(1, 7));
        assert!(!locks.try_lock(2, 7).unwrap(), "still held once");
        assert!(locks.unlock(1, 7));
        assert!(!locks.unlock(1, 7), "no longer held");
        assert!(locks.try_lock(2, 7).unwrap());
        locks.unlock_all(2);
        assert!(locks.try_lock(3, 7).unwrap());
    }

    #[test]
    fn a_wait_ends_at_lock_timeout_or_cancel_and_when_the_holder_lets_go() {
        let locks = std::sync::Arc::new(AdvisoryLocks::default());
        let cancel = AtomicBool::new(false);
        assert!(locks.try_lock(1, 1).unwrap());
        let soon = Some(Instant::now() + Duration::from_millis(20));
        assert_eq!(locks.lock(2, 1, soon, None, &cancel).unwrap_err().code, codes::LOCK_NOT_AVAILABLE);
        cancel.store(true, Ordering::Relaxed);
        assert_eq!(locks.lock(2, 1, None, None, &cancel).unwrap_err().code, codes::QUERY_CANCELED);
        let holder = locks.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(30));
            holder.unlock_all(1);
        });
        locks.lock(2, 1, None, None, &cancel).unwrap();
        t.join().unwrap();
        assert!(!locks.try_lock(1, 1).unwrap());
    }

    #[test]
    fn pair_keys_put_the_first_int_high() {
        assert_eq!(pair_key(1, 2), (1 << 32) | 2);
        assert_eq!(pair_key(0, -1), 0xffff_ffff);
    }
}
