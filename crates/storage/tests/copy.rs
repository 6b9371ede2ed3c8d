//! A copy of the data file for a replica ([`Store::copy_checkpoint`]) holds checkpoints off
//! while it runs, but nothing else: statistics, commits and applies over the dirty-page
//! budget go on meanwhile.

use std::path::Path;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use storage::vfs::{SimVfs, Vfs};
use storage::{Store, StoreOptions, WriteBatch};

/// How long the test waits for something that must not wait for the copy. Far above the
/// milliseconds it takes; reached only if it does wait.
const MUST_NOT_WAIT: Duration = Duration::from_secs(30);

#[test]
fn a_copy_holds_off_checkpoints_but_not_stats_or_commits() {
    let vfs: Arc<dyn Vfs> = Arc::new(SimVfs::new(3));
    let opts = StoreOptions {
        // Every commit is over the dirty budget, so each would write a checkpoint.
        dirty_bytes_max: 0,
        checkpoint_log_bytes: None,
        checkpoint_interval: None,
        ..StoreOptions::default()
    };
    let store = Arc::new(Store::open(vfs, Path::new("/db"), opts).unwrap());
    for i in 0..50u32 {
        store.commit(WriteBatch::new().put(format!("k{i:03}"), vec![7u8; 300])).unwrap();
    }
    let at_copy = store.stats().checkpoint_applied_index;
    assert!(at_copy > 0, "commits over the budget wrote checkpoints");

    // A copy that stops before its first piece until the gate opens.
    let (started_tx, started) = mpsc::channel();
    let (gate, gate_rx) = mpsc::channel::<()>();
    let copier = {
        let store = store.clone();
        std::thread::spawn(move || {
            let mut copied = Vec::new();
            let result = store.copy_checkpoint(
                &mut |applied, len| {
                    started_tx.send((applied, len)).unwrap();
                    Ok(())
                },
                &mut |piece| {
                    let _ = gate_rx.recv();
                    copied.extend_from_slice(piece);
                    Ok(())
                },
            );
            (result.unwrap(), copied)
        })
    };
    let (applied, len) = started.recv_timeout(MUST_NOT_WAIT).expect("the copy started");
    assert_eq!(applied, at_copy);

    // Statistics and commits (each over the dirty budget) do not wait for the copy.
    let (done_tx, done) = mpsc::channel();
    {
        let store = store.clone();
        std::thread::spawn(move || {
            let before = store.stats().checkpoint_applied_index;
            for i in 50..60u32 {
                store.commit(WriteBatch::new().put(format!("k{i:03}"), vec![8u8; 300])).unwrap();
            }
            done_tx.send((before, store.stats().checkpoint_applied_index)).unwrap();
        });
    }
    let (before, after) = done.recv_timeout(MUST_NOT_WAIT).expect("stats and commits went on during the copy");
    assert_eq!((before, after), (at_copy, at_copy), "no checkpoint was written during the copy");

    // A checkpoint waits for the copy.
    let (checkpointed_tx, checkpointed) = mpsc::channel();
    {
        let store = store.clone();
        std::thread::spawn(move || checkpointed_tx.send(store.checkpoint().unwrap()).unwrap());
    }
    assert!(checkpointed.try_recv().is_err(), "a checkpoint was written while the copy held them off");

    drop(gate);
    let ((copy_applied, copy_len), copied) = copier.join().unwrap();
    assert_eq!((copy_applied, copy_len), (applied, len));
    assert_eq!(copied.len() as u64, len);
    assert!(checkpointed.recv_timeout(MUST_NOT_WAIT).expect("the checkpoint ran after the copy"));
    assert!(store.stats().checkpoint_applied_index > at_copy);
}
