//! openraft's runtime: tokio, with Raft's random draws under a seed.
//!
//! openraft 0.9 draws one random number per node start: the node's election timeout, from
//! `election_timeout_min..election_timeout_max`, inside `Raft::new` on the thread that
//! calls it. [`BulwarkRuntime`] is tokio for everything else, and takes that draw from
//! [`RaftRng`]: a generator of the calling thread, seeded by [`with_raft_seed`] around
//! `Raft::new`. A seeded simulation (`PeerOptions::rng_seed`) thus gets the same election
//! timeouts for the same seed; a node started without a seed draws from the OS's generator,
//! as before. Its timers run on tokio's clock: the real one for a node, a paused one in the
//! register simulation, which therefore replays a seed exactly.

use openraft::async_runtime::{AsyncRuntime, TokioOneShotSender};
use openraft::{OptionalSend, TokioRuntime};
use rand::RngCore;
use std::cell::Cell;
use std::future::Future;
use std::time::Duration;

/// tokio, with Raft's random draws from [`RaftRng`].
#[derive(Debug, Default, PartialEq, Eq, Clone, Copy)]
pub struct BulwarkRuntime;

thread_local! {
    /// The state of this thread's seeded generator; None: draw from the OS's.
    static SEEDED: Cell<Option<u64>> = const { Cell::new(None) };
}

/// Runs `f` with this thread's Raft draws seeded by `seed` (None: from the OS), then
/// forgets the seed.
pub fn with_raft_seed<T>(seed: Option<u64>, f: impl FnOnce() -> T) -> T {
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            SEEDED.with(|s| s.set(None));
        }
    }
    SEEDED.with(|s| s.set(seed));
    let _reset = Reset;
    f()
}

/// Raft's random numbers: the calling thread's seeded generator (splitmix64) while
/// [`with_raft_seed`] runs with a seed, else the OS-seeded thread generator.
#[derive(Debug, Clone, Copy)]
pub struct RaftRng;

impl RngCore for RaftRng {
    fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }

    fn next_u64(&mut self) -> u64 {
        let seeded = SEEDED.with(|s| {
            s.get().map(|state| {
                let state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
                s.set(Some(state));
                let mut z = state;
                z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
                z ^ (z >> 31)
            })
        });
        seeded.unwrap_or_else(|| rand::thread_rng().next_u64())
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for chunk in dest.chunks_mut(8) {
            let bytes = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

type Tokio = TokioRuntime;

impl AsyncRuntime for BulwarkRuntime {
    type JoinError = <Tokio as AsyncRuntime>::JoinError;
    type JoinHandle<T: OptionalSend + 'static> = <Tokio as AsyncRuntime>::JoinHandle<T>;
    type Sleep = <Tokio as AsyncRuntime>::Sleep;
    type Instant = <Tokio as AsyncRuntime>::Instant;
    type TimeoutError = <Tokio as AsyncRuntime>::TimeoutError;
    type Timeout<R, T: Future<Output = R> + OptionalSend> = <Tokio as AsyncRuntime>::Timeout<R, T>;
    type ThreadLocalRng = RaftRng;
    type OneshotSender<T: OptionalSend> = TokioOneShotSender<T>;
    type OneshotReceiverError = <Tokio as AsyncRuntime>::OneshotReceiverError;
    type OneshotReceiver<T: OptionalSend> = <Tokio as AsyncRuntime>::OneshotReceiver<T>;

    fn spawn<T>(future: T) -> Self::JoinHandle<T::Output>
    where
        T: Future + OptionalSend + 'static,
        T::Output: OptionalSend + 'static,
    {
        Tokio::spawn(future)
    }

    fn sleep(duration: Duration) -> Self::Sleep {
        Tokio::sleep(duration)
    }

    fn sleep_until(deadline: Self::Instant) -> Self::Sleep {
        Tokio::sleep_until(deadline)
    }

    fn timeout<R, F: Future<Output = R> + OptionalSend>(duration: Duration, future: F) -> Self::Timeout<R, F> {
        Tokio::timeout(duration, future)
    }

    fn timeout_at<R, F: Future<Output = R> + OptionalSend>(deadline: Self::Instant, future: F) -> Self::Timeout<R, F> {
        Tokio::timeout_at(deadline, future)
    }

    fn is_panic(join_error: &Self::JoinError) -> bool {
        Tokio::is_panic(join_error)
    }

    fn thread_rng() -> Self::ThreadLocalRng {
        RaftRng
    }

    fn oneshot<T>() -> (Self::OneshotSender<T>, Self::OneshotReceiver<T>)
    where
        T: OptionalSend,
    {
        Tokio::oneshot()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timeouts(seed: Option<u64>, n: usize) -> Vec<u64> {
        let config = openraft::Config { election_timeout_min: 150, election_timeout_max: 300, ..Default::default() };
        with_raft_seed(seed, || (0..n).map(|_| config.new_rand_election_timeout::<BulwarkRuntime>()).collect())
    }

    #[test]
    fn a_seed_fixes_the_election_timeouts_and_is_forgotten_after() {
        let a = timeouts(Some(42), 50);
        assert_eq!(a, timeouts(Some(42), 50), "the same seed draws the same timeouts");
        assert_ne!(a, timeouts(Some(43), 50), "another seed draws others");
        assert!(a.iter().all(|t| (150..300).contains(t)), "{a:?}");
        let distinct: std::collections::BTreeSet<_> = a.iter().collect();
        assert!(distinct.len() > 20, "the draws spread over the range: {a:?}");
        assert_eq!(SEEDED.with(|s| s.get()), None, "the seed is forgotten");
        // Unseeded: the OS's generator, so two runs of 50 draws differ.
        assert_ne!(timeouts(None, 50), timeouts(None, 50));
    }
}
