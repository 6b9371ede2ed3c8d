//! The `bulwark` command.
//!
//! Today it offers the engine's tools: `bulwark bench storage` and `bulwark bench txn`
//! (benchmarks that print a table) and `bulwark check` (an offline integrity check of a
//! data directory). The SQL server (`bulwark start`) and the shell (`bulwark sql`) come with the
//! layers above.

mod bench;
mod bench_txn;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Parser)]
#[command(name = "bulwark", version, about = "A PostgreSQL-compatible database that treats failure as the normal case")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a benchmark and print a table.
    Bench {
        #[command(subcommand)]
        what: BenchWhat,
    },
    /// Check a data directory offline: meta pages, log records, every page checksum and the
    /// B-tree's order. Exits non-zero and names each problem.
    Check {
        /// The data directory.
        #[arg(long, default_value = "./bulwark-data")]
        data_dir: PathBuf,
    },
}

#[derive(Subcommand)]
enum BenchWhat {
    /// The storage engine: durable appends, point reads, checkpoints, recovery.
    Storage(bench::StorageArgs),
    /// Transactions: transfers at three thread counts and two contention levels, vacuum.
    Txn(bench_txn::TxnArgs),
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Bench { what: BenchWhat::Storage(args) } => match bench::storage(&args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("bench failed: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Bench { what: BenchWhat::Txn(args) } => match bench_txn::run(&args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("bench failed: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Check { data_dir } => check(&data_dir),
    }
}

fn check(dir: &std::path::Path) -> ExitCode {
    if !dir.join(storage::btree::DATA_FILE).is_file() {
        eprintln!("{}: no Bulwark data directory here (no {})", dir.display(), storage::btree::DATA_FILE);
        return ExitCode::FAILURE;
    }
    let opts = storage::StoreOptions { checkpoint_interval: None, checkpoint_log_bytes: None, ..Default::default() };
    let store = match storage::Store::open(Arc::new(storage::vfs::RealVfs), dir, opts) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("problem: {e}");
            return ExitCode::FAILURE;
        }
    };
    match storage::store::check_tree(&store) {
        Ok(pages) => {
            let s = store.stats();
            println!(
                "ok: {pages} tree pages checked, applied index {}, {} pages in file; recovery replayed {} log records ({:.1} MB) in {:.1} ms",
                s.applied_index,
                s.page_count,
                s.replayed_records,
                s.replayed_bytes as f64 / 1e6,
                s.replay_micros as f64 / 1000.0
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("problem: {e}");
            ExitCode::FAILURE
        }
    }
}
