//! Real crashes: a child process commits and acknowledges records from several threads on
//! the real file system while this test kills it with SIGKILL at random moments (during
//! group commits, checkpoints and log purges). After every kill the store is reopened and
//! every acknowledged record must be there, with its value, and every commit whole.
//!
//! `BULWARK_CRASH_KILLS` sets the number of kills (default 50).

use std::io::{BufRead, BufReader};
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use storage::store::check_tree;
use storage::vfs::{RealVfs, SimRng};
use storage::{Store, StoreOptions};

fn value_for(key: &str) -> Vec<u8> {
    let n = 1 + key.bytes().map(|b| b as usize).sum::<usize>() % 1200;
    key.bytes().cycle().take(n).collect()
}

fn temp_dir() -> PathBuf {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();
    let dir = std::env::temp_dir().join(format!("bulwark-real-crash-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn acknowledged_commits_survive_sigkill() {
    let kills: u32 = std::env::var("BULWARK_CRASH_KILLS").ok().and_then(|v| v.parse().ok()).unwrap_or(50);
    let seed = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64;
    eprintln!("real crash test: {kills} kills, seed {seed}");
    let mut rng = SimRng::new(seed);
    let dir = temp_dir();
    let mut acked: Vec<String> = Vec::new();
    for run in 0..kills {
        let mut child = Command::new(env!("CARGO_BIN_EXE_storage-crash-child"))
            .args([dir.to_str().unwrap(), &format!("{run:04}"), "4"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the child");
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut lines = Vec::new();
            for line in BufReader::new(stdout).lines() {
                match line {
                    Ok(l) => lines.push(l),
                    Err(_) => break,
                }
            }
            lines
        });
        std::thread::sleep(Duration::from_millis(20 + rng.below(200)));
        child.kill().expect("SIGKILL"); // std sends SIGKILL on Unix
        let status = child.wait().unwrap();
        assert!(!status.success(), "the child was killed, not finished");
        let lines = reader.join().unwrap();
        assert!(lines.first().is_some_and(|l| l == "ready") || lines.is_empty(), "{lines:?}");
        acked.extend(lines.iter().filter_map(|l| l.strip_prefix("ack ")).map(str::to_string));

        let store = Store::open(
            Arc::new(RealVfs),
            Path::new(&dir),
            StoreOptions { checkpoint_interval: None, checkpoint_log_bytes: None, ..StoreOptions::default() },
        )
        .unwrap_or_else(|e| panic!("run {run}: reopen after SIGKILL failed: {e}"));
        for key in &acked {
            let got = store.get(key.as_bytes()).unwrap();
            assert_eq!(got.as_deref(), Some(value_for(key).as_slice()), "run {run}: acknowledged {key} lost");
        }
        // Every commit is whole: a key is present exactly when its mirror is.
        let mut keys = 0;
        for entry in store.scan(Bound::Included(b"r".to_vec()), Bound::Excluded(b"s".to_vec()), false) {
            let (k, v) = entry.unwrap();
            let k = String::from_utf8(k).unwrap();
            assert_eq!(v, value_for(&k), "value of {k}");
            assert!(store.get(format!("mirror/{k}").as_bytes()).unwrap().is_some(), "half a commit: {k}");
            keys += 1;
        }
        let mirrors =
            store.scan(Bound::Included(b"mirror/".to_vec()), Bound::Excluded(b"mirror0".to_vec()), false).count();
        assert_eq!(keys, mirrors, "run {run}: every mirror has its key");
        check_tree(&store).unwrap();
    }
    assert!(acked.len() as u32 > kills, "the children acknowledged commits: {}", acked.len());
    eprintln!("real crash test: {} acknowledged commits checked after {kills} kills", acked.len());
    let _ = std::fs::remove_dir_all(&dir);
}
