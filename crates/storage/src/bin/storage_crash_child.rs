//! The process that the real-crash test kills: it commits pairs of keys from several threads
//! into a store on the real file system and prints `ack <key>` on stdout after each commit
//! returns, until it is killed with SIGKILL.
//!
//! Usage: `storage-crash-child DIR RUN_ID THREADS`

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use storage::vfs::RealVfs;
use storage::wal::WalOptions;
use storage::{Store, StoreOptions, WriteBatch};

/// The value stored under `key`: derived from the key, so the checker can recompute it.
pub fn value_for(key: &str) -> Vec<u8> {
    let n = 1 + key.bytes().map(|b| b as usize).sum::<usize>() % 1200;
    key.bytes().cycle().take(n).collect()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (dir, run, threads) = (&args[1], &args[2], args[3].parse::<usize>().expect("threads"));
    let opts = StoreOptions {
        checkpoint_log_bytes: Some(256 << 10),
        checkpoint_interval: Some(Duration::from_millis(30)),
        pool_bytes: 1 << 20,
        wal: WalOptions { segment_bytes_max: 128 << 10, ..WalOptions::default() },
        purge_log_at_checkpoint: true,
        ..StoreOptions::default()
    };
    let store = Arc::new(Store::open(Arc::new(RealVfs), Path::new(dir), opts).expect("open"));
    println!("ready");
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let store = store.clone();
            let run = run.clone();
            std::thread::spawn(move || {
                for seq in 0u64.. {
                    let key = format!("r{run}-t{t}-{seq:08}");
                    let mut batch = WriteBatch::new();
                    batch.put(key.as_bytes().to_vec(), value_for(&key));
                    batch.put(format!("mirror/{key}").into_bytes(), b"m".to_vec());
                    store.commit(&batch).expect("commit");
                    let mut out = std::io::stdout().lock();
                    writeln!(out, "ack {key}").expect("stdout");
                    out.flush().expect("stdout");
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("writer thread");
    }
}
