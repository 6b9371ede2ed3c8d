//! `bulwark bench storage`: the storage engine's benchmark. A program that prints a table,
//! never a timed test. Everything runs on the real file system in `--dir`, so the fdatasync
//! rate it prints is that of the same disk the log uses.

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use storage::vfs::{RealVfs, SimRng};
use storage::wal::{Wal, WalOptions};
use storage::{Store, StoreOptions, WriteBatch};

/// Options of `bulwark bench storage`.
#[derive(clap::Args)]
pub struct StorageArgs {
    /// Scratch directory (created, and emptied before each part).
    #[arg(long, default_value = "./bench-data")]
    dir: PathBuf,
    /// Seconds per measured run.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Rows in the point-read stores.
    #[arg(long, default_value_t = 500_000)]
    rows: u64,
    /// Megabytes of log written for the recovery measurement.
    #[arg(long, default_value_t = 512)]
    recovery_mb: u64,
    /// Which parts to run (comma-separated): appends, reads, checkpoint, recovery.
    #[arg(long, default_value = "appends,reads,checkpoint,recovery", value_delimiter = ',')]
    parts: Vec<String>,
    /// Value sizes for the recovery measurement.
    #[arg(long, default_value = "100,1000", value_delimiter = ',')]
    recovery_values: Vec<usize>,
    /// Keep the scratch directory afterwards (to inspect or profile it).
    #[arg(long)]
    keep: bool,
}

type BenchResult<T> = Result<T, Box<dyn std::error::Error>>;

struct Table(Vec<[String; 3]>);

impl Table {
    fn row(&mut self, what: impl Into<String>, value: impl Into<String>, note: impl Into<String>) {
        let row = [what.into(), value.into(), note.into()];
        println!("| {} | {} | {} |", row[0], row[1], row[2]);
        self.0.push(row);
    }
}

fn fresh(dir: &Path, name: &str) -> BenchResult<PathBuf> {
    let d = dir.join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d)?;
    Ok(d)
}

/// Runs every part and prints the table.
pub fn storage(args: &StorageArgs) -> BenchResult<()> {
    std::fs::create_dir_all(&args.dir)?;
    let secs = Duration::from_secs(args.seconds);
    println!("Bulwark storage benchmark: dir {}, {} s per run", args.dir.display(), args.seconds);
    println!();
    println!("| measurement | result | notes |");
    println!("|---|---|---|");
    let mut t = Table(Vec::new());

    let part = |name: &str| args.parts.iter().any(|p| p == name);
    if part("appends") {
        appends_part(args, secs, &mut t)?;
    }
    if part("reads") {
        for (label, pool) in [("fits in the buffer pool", 1usize << 30), ("4x larger than the buffer pool", 0)] {
            let (rate, ratio, pool_mb) = point_reads(&args.dir, args.rows, pool, secs)?;
            t.row(
                format!("point reads, {} rows, {label}", args.rows),
                format!("{rate:.0} /s"),
                format!("1 thread; pool {pool_mb} MiB; hit ratio {:.3}", ratio),
            );
        }
    }
    if part("checkpoint") {
        let (ckpt_ms, pause_us, reader_max_us, pages) = checkpoint_pause(&fresh(&args.dir, "ckpt")?, args.rows)?;
        t.row("checkpoint duration", format!("{ckpt_ms:.0} ms"), format!("{pages} dirty pages written and fsynced"));
        t.row(
            "longest reader pause during that checkpoint",
            format!("{pause_us} µs (lock held)"),
            format!("slowest concurrent point read: {reader_max_us} µs"),
        );
    }
    if part("recovery") {
        for &value_bytes in &args.recovery_values {
            let (replay_mbps, open_mbps, mb, secs) =
                recovery(&fresh(&args.dir, "recovery")?, args.recovery_mb, value_bytes)?;
            t.row(
                format!("recovery replay, {value_bytes}-byte values"),
                format!("{replay_mbps:.0} MB/s"),
                format!(
                    "{mb:.0} MB of log; whole open {secs:.2} s = {open_mbps:.0} MB/s (includes the log's checksum scan)"
                ),
            );
        }
    }
    if !args.keep {
        let _ = std::fs::remove_dir_all(&args.dir);
    }
    Ok(())
}

fn appends_part(args: &StorageArgs, secs: Duration, t: &mut Table) -> BenchResult<()> {
    let fsync_rate = fdatasync_rate(&fresh(&args.dir, "fsync")?, secs)?;
    t.row("fdatasync rate of this disk (128 B append + fdatasync)", format!("{fsync_rate:.0} /s"), "one thread");

    let mut single = 0.0;
    for threads in [1usize, 8, 64] {
        let (rate, fsyncs, p99, fsync_us) = appends(&fresh(&args.dir, "wal")?, threads, secs)?;
        if threads == 1 {
            single = rate;
        }
        t.row(
            format!("durable appends, {threads} appenders"),
            format!("{rate:.0} /s"),
            format!(
                "{:.1}x one appender; {:.1} records per fdatasync; fdatasync {fsync_us:.0} µs avg; p99 append {p99:.2} ms",
                rate / single,
                rate / fsyncs
            ),
        );
    }

    Ok(())
}

fn fdatasync_rate(dir: &Path, secs: Duration) -> BenchResult<f64> {
    let file = OpenOptions::new().create(true).truncate(true).read(true).write(true).open(dir.join("probe"))?;
    let buf = [7u8; 128];
    let (start, mut n, mut off) = (Instant::now(), 0u64, 0u64);
    while start.elapsed() < secs {
        file.write_all_at(&buf, off)?;
        file.sync_data()?;
        off += buf.len() as u64;
        n += 1;
    }
    Ok(n as f64 / start.elapsed().as_secs_f64())
}

/// Appends 128-byte records from `threads` threads for `secs`; returns appends/s, fsyncs/s
/// the p99 append latency in ms and the mean fdatasync time in µs.
fn appends(dir: &Path, threads: usize, secs: Duration) -> BenchResult<(f64, f64, f64, f64)> {
    let wal = Arc::new(Wal::open(Arc::new(RealVfs), dir, 1, WalOptions::default())?);
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (wal, stop) = (wal.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut lat = Vec::new();
                let payload = [42u8; 128];
                while !stop.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    wal.append(&payload).expect("append");
                    lat.push(t.elapsed().as_micros() as u64);
                }
                lat
            })
        })
        .collect();
    std::thread::sleep(secs);
    stop.store(true, Ordering::Relaxed);
    let mut lat: Vec<u64> = handles.into_iter().flat_map(|h| h.join().expect("appender")).collect();
    let elapsed = start.elapsed().as_secs_f64();
    lat.sort_unstable();
    let p99 = lat.get(lat.len() * 99 / 100).copied().unwrap_or(0) as f64 / 1000.0;
    let stats = wal.stats();
    let fsync_us = stats.fsync_nanos_total as f64 / stats.fsyncs.max(1) as f64 / 1000.0;
    Ok((stats.appends as f64 / elapsed, stats.fsyncs as f64 / elapsed, p99, fsync_us))
}

fn row_key(i: u64) -> Vec<u8> {
    format!("row{i:010}").into_bytes()
}

fn load_rows(dir: &Path, rows: u64, value_bytes: usize) -> BenchResult<()> {
    let opts = StoreOptions { checkpoint_interval: None, ..StoreOptions::default() };
    let store = Store::open(Arc::new(RealVfs), dir, opts)?;
    let value = vec![b'v'; value_bytes];
    for chunk in (0..rows).collect::<Vec<_>>().chunks(1000) {
        let mut b = WriteBatch::new();
        for &i in chunk {
            b.put(row_key(i), value.clone());
        }
        store.commit(&b)?;
    }
    store.close()?;
    Ok(())
}

/// Point reads by random key from one thread; `pool_bytes` 0 means a quarter of the data.
fn point_reads(base: &Path, rows: u64, pool_bytes: usize, secs: Duration) -> BenchResult<(f64, f64, u64)> {
    let dir = base.join("reads");
    if !dir.join(storage::btree::DATA_FILE).exists() {
        fresh(base, "reads")?;
        load_rows(&dir, rows, 100)?;
    }
    let data_bytes = std::fs::metadata(dir.join(storage::btree::DATA_FILE))?.len() as usize;
    let pool = if pool_bytes == 0 { data_bytes / 4 } else { pool_bytes };
    let opts = StoreOptions { pool_bytes: pool, checkpoint_interval: None, ..StoreOptions::default() };
    let store = Store::open(Arc::new(RealVfs), &dir, opts)?;
    let mut rng = SimRng::new(1);
    // Warm up: one pass of random reads.
    for _ in 0..rows.min(200_000) {
        store.get(&row_key(rng.below(rows)))?;
    }
    let before = store.stats().pool;
    let (start, mut n) = (Instant::now(), 0u64);
    while start.elapsed() < secs {
        for _ in 0..1000 {
            let v = store.get(&row_key(rng.below(rows)))?;
            assert!(v.is_some());
        }
        n += 1000;
    }
    let rate = n as f64 / start.elapsed().as_secs_f64();
    let after = store.stats().pool;
    let (h, m) = (after.hits - before.hits, after.misses - before.misses);
    Ok((rate, h as f64 / (h + m).max(1) as f64, (pool >> 20) as u64))
}

/// Dirties many pages, then checkpoints while a reader runs; returns the checkpoint's
/// duration (ms), the longest write-lock hold (µs), the slowest read seen during it (µs),
/// and the pages written.
fn checkpoint_pause(dir: &Path, rows: u64) -> BenchResult<(f64, u64, u64, u64)> {
    let opts = StoreOptions {
        checkpoint_interval: None,
        checkpoint_log_bytes: None,
        dirty_bytes_max: usize::MAX,
        ..StoreOptions::default()
    };
    let store = Arc::new(Store::open(Arc::new(RealVfs), dir, opts)?);
    let value = vec![b'c'; 100];
    for chunk in (0..rows).collect::<Vec<_>>().chunks(1000) {
        let mut b = WriteBatch::new();
        for &i in chunk {
            b.put(row_key(i), value.clone());
        }
        store.commit(&b)?;
    }
    let dirty = store.stats().dirty_pages;
    let stop = Arc::new(AtomicBool::new(false));
    let slowest = Arc::new(AtomicU64::new(0));
    let reader = {
        let (store, stop, slowest) = (store.clone(), stop.clone(), slowest.clone());
        std::thread::spawn(move || {
            let mut rng = SimRng::new(2);
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                store.get(&row_key(rng.below(rows))).expect("read");
                slowest.fetch_max(t.elapsed().as_micros() as u64, Ordering::Relaxed);
            }
        })
    };
    std::thread::sleep(Duration::from_millis(100));
    slowest.store(0, Ordering::Relaxed);
    let start = Instant::now();
    store.checkpoint()?;
    let ms = start.elapsed().as_secs_f64() * 1000.0;
    stop.store(true, Ordering::Relaxed);
    reader.join().expect("reader");
    let s = store.stats();
    Ok((ms, s.checkpoint_pause_max_micros, slowest.load(Ordering::Relaxed), dirty))
}

/// Writes `mb` of log (batches of 16 puts over a fixed key space, no checkpoint), then
/// reopens and measures the replay.
/// Returns the replay rate (MB/s of log applied), the whole open's rate, the MB replayed
/// and the open's duration in seconds.
fn recovery(dir: &Path, mb: u64, value_bytes: usize) -> BenchResult<(f64, f64, f64, f64)> {
    let opts = || StoreOptions {
        checkpoint_interval: None,
        checkpoint_log_bytes: None,
        dirty_bytes_max: usize::MAX,
        ..StoreOptions::default()
    };
    {
        let store = Store::open(Arc::new(RealVfs), dir, opts())?;
        let value = vec![b'r'; value_bytes];
        let keys = 50_000u64;
        let mut i = 0u64;
        while store.stats().wal_bytes < mb << 20 {
            let mut b = WriteBatch::new();
            for _ in 0..16 {
                b.put(row_key(i % keys), value.clone());
                i += 1;
            }
            store.commit(&b)?;
        }
        // Dropped without a checkpoint: everything is in the log only.
    }
    let start = Instant::now();
    let store = Store::open(Arc::new(RealVfs), dir, opts())?;
    let open_secs = start.elapsed().as_secs_f64();
    let s = store.stats();
    let mb = s.replayed_bytes as f64 / 1e6;
    let replay_secs = s.replay_micros as f64 / 1e6;
    Ok((mb / replay_secs, mb / open_secs, mb, open_secs))
}
