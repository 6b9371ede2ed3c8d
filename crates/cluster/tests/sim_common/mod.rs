//! What the seeded simulations share: the runtime that makes a run replay exactly.

#[cfg(not(tokio_unstable))]
compile_error!(
    "the seeded simulations need tokio's seeded scheduler: build with --cfg tokio_unstable, as .cargo/config.toml sets"
);

/// A simulation's runtime: one thread, tokio's clock paused (it stands still while a task
/// can run and jumps to the next timer when none can), and tokio's own random choices
/// (which ready branch of a `select!` runs first) drawn from `seed`.
pub fn sim_runtime(seed: u64) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .rng_seed(tokio::runtime::RngSeed::from_bytes(&seed.to_le_bytes()))
        .build()
        .expect("a one-thread runtime")
}
