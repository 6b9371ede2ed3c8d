//! A node that is behind the leader's purged log catches up from a checkpoint image:
//! three nodes over loopback TCP on real files; one is stopped while the others commit and
//! purge their logs past it; when it comes back the leader sends it a checkpoint image,
//! the node saves it and asks to be restarted, and after the restart it holds every
//! commit and follows the log again.
//!
//! Every wait polls with a deadline; no sleep stands in for an assertion.

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::ops::Bound;
use std::path::PathBuf;
use std::sync::Arc;

use cluster::node::{Node, NodeOptions, PeerOptions};
use cluster::snapshot::OUTGOING_PREFIX;
use common::{free_addr, leader_of, wait_for};
use storage::vfs::{RealVfs, Vfs};
use txn::{EngineOptions, TxnOptions};

fn options(id: u64, listen: SocketAddr, init: &BTreeMap<u64, String>) -> NodeOptions {
    let store = storage::StoreOptions {
        checkpoint_log_bytes: None,
        checkpoint_interval: None,
        wal: storage::wal::WalOptions { segment_bytes_max: 32 << 10, ..Default::default() },
        ..Default::default()
    };
    let mut opts = NodeOptions {
        id,
        engine: EngineOptions { store, vacuum_interval: None, ..Default::default() },
        peers: Some(PeerOptions { listen, init: init.clone(), ..PeerOptions::new(listen) }),
        ..Default::default()
    };
    opts.raft.heartbeat_interval = 50;
    opts.raft.election_timeout_min = 150;
    opts.raft.election_timeout_max = 300;
    opts.raft.max_in_snapshot_log_to_keep = 10;
    opts
}

struct Cluster {
    dirs: Vec<PathBuf>,
    addrs: Vec<SocketAddr>,
    init: BTreeMap<u64, String>,
}

impl Cluster {
    /// Three nodes with directories under `base` (emptied first) and free loopback ports.
    fn new(base: &std::path::Path) -> Cluster {
        let _ = std::fs::remove_dir_all(base);
        let addrs: Vec<SocketAddr> = (0..3).map(|_| free_addr()).collect();
        Cluster {
            dirs: (1..=3).map(|i| base.join(format!("n{i}"))).collect(),
            init: (1..=3u64).map(|i| (i, addrs[(i - 1) as usize].to_string())).collect(),
            addrs,
        }
    }

    fn open(&self, id: u64) -> Node {
        self.open_on(id, Arc::new(RealVfs))
    }

    fn open_on(&self, id: u64, vfs: Arc<dyn Vfs>) -> Node {
        let i = (id - 1) as usize;
        Node::open(vfs, &self.dirs[i], options(id, self.addrs[i], &self.init)).expect("open a node")
    }
}

/// Real files, but the disk is full for the next checkpoint images a node builds to send:
/// the next `fail_open` cannot even be created, the next `fail` after those are created
/// but every write to them fails (ENOSPC both).
struct FullForImages {
    fail_open: Arc<std::sync::atomic::AtomicUsize>,
    fail: Arc<std::sync::atomic::AtomicUsize>,
}

/// Takes one from `n` if it is not 0; whether it did.
fn take_one(n: &std::sync::atomic::AtomicUsize) -> bool {
    let seq = std::sync::atomic::Ordering::SeqCst;
    n.fetch_update(seq, seq, |n| n.checked_sub(1)).is_ok()
}

impl Vfs for FullForImages {
    fn open(&self, path: &std::path::Path, create: bool) -> std::io::Result<Arc<dyn storage::vfs::VfsFile>> {
        let image = path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with(OUTGOING_PREFIX));
        if image && take_one(&self.fail_open) {
            return Err(std::io::Error::from_raw_os_error(28));
        }
        let file = RealVfs.open(path, create)?;
        if image && take_one(&self.fail) {
            return Ok(Arc::new(NoSpace(file)));
        }
        Ok(file)
    }
    fn rename(&self, from: &std::path::Path, to: &std::path::Path) -> std::io::Result<()> {
        RealVfs.rename(from, to)
    }
    fn remove(&self, path: &std::path::Path) -> std::io::Result<()> {
        RealVfs.remove(path)
    }
    fn list(&self, dir: &std::path::Path) -> std::io::Result<Vec<String>> {
        RealVfs.list(dir)
    }
    fn sync_dir(&self, dir: &std::path::Path) -> std::io::Result<()> {
        RealVfs.sync_dir(dir)
    }
    fn create_dir_all(&self, dir: &std::path::Path) -> std::io::Result<()> {
        RealVfs.create_dir_all(dir)
    }
    fn exists(&self, path: &std::path::Path) -> bool {
        RealVfs.exists(path)
    }
}

/// A file on a full disk: reads work, writes fail.
struct NoSpace(Arc<dyn storage::vfs::VfsFile>);

impl storage::vfs::VfsFile for NoSpace {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
        self.0.read_at(buf, offset)
    }
    fn write_at(&self, _: &[u8], _: u64) -> std::io::Result<()> {
        Err(std::io::Error::from_raw_os_error(28))
    }
    fn sync_data(&self) -> std::io::Result<()> {
        self.0.sync_data()
    }
    fn set_len(&self, len: u64) -> std::io::Result<()> {
        self.0.set_len(len)
    }
    fn len(&self) -> std::io::Result<u64> {
        self.0.len()
    }
}

fn commit_rows(node: &Node, from: u64, to: u64) {
    for i in from..to {
        let mut t = node.engine().begin(TxnOptions::default()).unwrap();
        t.put(format!("row{i:05}").as_bytes(), format!("value {i} {}", "x".repeat(300)).as_bytes()).unwrap();
        t.commit().expect("commit on the leader");
    }
}

fn rows(node: &Node) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut t = node.engine().begin(TxnOptions::default()).unwrap();
    let out = t.scan(Bound::Included(b"row".to_vec()), Bound::Excluded(b"rox".to_vec()), false, usize::MAX).unwrap();
    t.rollback();
    out
}

/// Commits rows `from..to` on `leader`, snapshots both `nodes`, and waits until the
/// leader's log starts past log record `behind + 1`, which it purges once no replication
/// is using the entries (a stopped node's attempts fail and are retried). Returns the
/// leader's first log record.
fn purge_past(leader: &Node, nodes: [&Node; 2], from: u64, to: u64, behind: u64) -> u64 {
    commit_rows(leader, from, to);
    for n in nodes {
        n.snapshot_now().expect("snapshot");
    }
    wait_for("the leader purges its log past node 3", || {
        let first = leader.engine().store().log().first_index();
        (first > behind + 1).then_some(first)
    })
}

#[test]
fn a_node_behind_the_purged_log_catches_up_from_a_checkpoint_image() {
    let base = std::env::temp_dir().join(format!("bulwark-catch-up-{}", std::process::id()));
    let cluster = Cluster::new(&base);
    let n1 = cluster.open(1);
    let n2 = cluster.open(2);
    let mut n3 = cluster.open(3);
    let leader = [&n1, &n2, &n3][leader_of(&[&n1, &n2, &n3])].status().id;
    // Node 3 must be the one that falls behind; if it leads, the test restarts it so
    // another takes over.
    if leader == 3 {
        drop(n3);
        n3 = cluster.open(3);
    }
    commit_rows([&n1, &n2][leader_of(&[&n1, &n2])], 0, 50);
    wait_for("node 3 has the first rows", || (rows(&n3).len() == 50).then_some(()));
    let behind = n3.engine().applied_index();
    drop(n3);

    // The two left commit on, and purge their logs well past node 3.
    let l = [&n1, &n2][leader_of(&[&n1, &n2])];
    let first = purge_past(l, [&n1, &n2], 50, 600, behind);
    eprintln!("the leader's log starts at record {first}; node 3 had applied {behind}");

    // Node 3 comes back: it gets an image, saves it, and asks for a restart.
    let n3 = cluster.open(3);
    let reason = wait_for("node 3 receives a checkpoint image", || n3.restart_required());
    assert!(reason.contains("is saved"), "{reason}");
    drop(n3);
    // The restart installs it; node 3 then follows the log.
    let n3 = cluster.open(3);
    assert!(n3.engine().applied_index() > behind, "the image moved node 3 forward");
    let l = [&n1, &n2][leader_of(&[&n1, &n2])];
    commit_rows(l, 600, 650);
    let want = rows(l);
    assert_eq!(want.len(), 650);
    wait_for("node 3 holds every row", || (rows(&n3) == want).then_some(()));
    assert!(n3.restart_required().is_none());
    drop((n1, n2, n3));
    let _ = std::fs::remove_dir_all(&base);
}

/// The leader's disk is full when it copies the first image for a node behind its purged
/// log (and, the second time, when it creates the image's file): openraft 0.9 would stop a
/// leader on either storage error; instead the leader backs off, keeps committing, and
/// sends the node the next image it builds.
#[test]
fn a_leader_whose_image_copy_fails_stays_up_and_sends_another() {
    let base = std::env::temp_dir().join(format!("bulwark-image-full-{}", std::process::id()));
    let cluster = Cluster::new(&base);
    let fail = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let fail_open = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let vfs = || Arc::new(FullForImages { fail_open: fail_open.clone(), fail: fail.clone() }) as Arc<dyn Vfs>;
    let n1 = cluster.open_on(1, vfs());
    let n2 = cluster.open_on(2, vfs());
    let mut n3 = cluster.open(3);
    if [&n1, &n2, &n3][leader_of(&[&n1, &n2, &n3])].status().id == 3 {
        drop(n3);
        n3 = cluster.open(3);
    }
    commit_rows([&n1, &n2][leader_of(&[&n1, &n2])], 0, 50);
    wait_for("node 3 has the first rows", || (rows(&n3).len() == 50).then_some(()));
    let behind = n3.engine().applied_index();
    drop(n3);
    let l = [&n1, &n2][leader_of(&[&n1, &n2])];
    purge_past(l, [&n1, &n2], 50, 400, behind);

    // The next image's copy finds the disk full.
    fail.store(1, std::sync::atomic::Ordering::SeqCst);
    let n3 = cluster.open(3);
    wait_for("the leader's first image copy fails", || {
        (fail.load(std::sync::atomic::Ordering::SeqCst) == 0).then_some(())
    });
    // The leader still leads and commits meanwhile.
    commit_rows(l, 400, 410);
    let reason = wait_for("node 3 receives a second image", || n3.restart_required());
    assert!(reason.contains("is saved"), "{reason}");
    assert!(l.status().images_sent >= 2, "the leader built another image: {:?}", l.status().images_sent);
    drop(n3);
    let n3 = cluster.open(3);
    let l = [&n1, &n2][leader_of(&[&n1, &n2])];
    commit_rows(l, 410, 420);
    let want = rows(l);
    assert_eq!(want.len(), 420);
    wait_for("node 3 holds every row", || (rows(&n3) == want).then_some(()));

    // Again, with the image's file not even created the first time.
    let behind = n3.engine().applied_index();
    drop(n3);
    purge_past(l, [&n1, &n2], 420, 700, behind);
    let sent = l.status().images_sent;
    fail_open.store(1, std::sync::atomic::Ordering::SeqCst);
    let n3 = cluster.open(3);
    wait_for("the leader fails to create an image", || {
        (fail_open.load(std::sync::atomic::Ordering::SeqCst) == 0).then_some(())
    });
    commit_rows(l, 700, 710);
    let reason = wait_for("node 3 receives an image", || n3.restart_required());
    assert!(reason.contains("is saved"), "{reason}");
    assert_eq!(l.status().images_sent, sent + 1, "the image that could not be built is not counted as sent");
    drop(n3);
    let n3 = cluster.open(3);
    let l = [&n1, &n2][leader_of(&[&n1, &n2])];
    let want = rows(l);
    assert_eq!(want.len(), 710);
    wait_for("node 3 holds every row", || (rows(&n3) == want).then_some(()));
    drop((n1, n2, n3));
    let _ = std::fs::remove_dir_all(&base);
}

#[test]
fn a_damaged_image_is_never_installed() {
    let base = std::env::temp_dir().join(format!("bulwark-bad-image-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let (donor, dir) = (base.join("donor"), base.join("node"));
    let vfs: Arc<dyn Vfs> = Arc::new(RealVfs);
    // A node with a little data, and a data file further on from another node.
    {
        let node = Node::open_single(vfs.clone(), &dir, NodeOptions::default()).unwrap();
        commit_rows(&node, 0, 3);
    }
    {
        let node = Node::open_single(vfs.clone(), &donor, NodeOptions::default()).unwrap();
        commit_rows(&node, 0, 30);
        node.engine().store().checkpoint().unwrap();
    }
    let data = std::fs::read(donor.join(storage::btree::DATA_FILE)).unwrap();
    let applied_index = storage::image_applied_index(&data, data.len() as u64).unwrap();
    let image = cluster::snapshot::Image { applied_index, record: b"record", data: &data };
    cluster::snapshot::save_incoming(&RealVfs, &dir, &image).unwrap();
    // One flipped byte in the saved data file: the open stops and names it.
    let saved = dir.join(cluster::snapshot::INCOMING_DATA_FILE);
    let mut bytes = std::fs::read(&saved).unwrap();
    let n = bytes.len();
    bytes[n / 2] ^= 1;
    std::fs::write(&saved, &bytes).unwrap();
    let err =
        Node::open_single(vfs.clone(), &dir, NodeOptions::default()).err().expect("a damaged image stops the open");
    assert!(err.to_string().contains("checkpoint-incoming.db: checksum mismatch"), "{err}");
    // A damaged header is caught too.
    let header = dir.join(cluster::snapshot::INCOMING_FILE);
    let mut bytes = std::fs::read(&header).unwrap();
    bytes[9] ^= 1;
    std::fs::write(&header, &bytes).unwrap();
    let err =
        Node::open_single(vfs.clone(), &dir, NodeOptions::default()).err().expect("a damaged header stops the open");
    assert!(err.to_string().contains("checksum"), "{err}");
    // Removing the image (the runbook's step) brings the node back with its own data.
    std::fs::remove_file(&header).unwrap();
    let node = Node::open_single(vfs, &dir, NodeOptions::default()).unwrap();
    assert_eq!(rows(&node).len(), 3);
    assert!(!saved.exists(), "the orphaned data file of an image is removed");
    drop(node);
    let _ = std::fs::remove_dir_all(&base);
}

/// A cluster lost two of its three nodes for good: the survivor is forced into a new
/// cluster of one (`bulwark cluster force-new`). It elects itself, serves every row it had,
/// and commits again; its membership names only itself.
#[test]
fn a_survivor_forced_into_a_new_cluster_of_one_serves_what_it_had() {
    let base = std::env::temp_dir().join(format!("bulwark-force-new-{}", std::process::id()));
    let cluster = Cluster::new(&base);
    let nodes = [cluster.open(1), cluster.open(2), cluster.open(3)];
    let all: Vec<&Node> = nodes.iter().collect();
    commit_rows(all[leader_of(&all)], 0, 40);
    wait_for("node 2 has every row", || (rows(&nodes[1]).len() == 40).then_some(()));
    drop(nodes);

    let said = cluster::node::force_new_cluster(
        Arc::new(RealVfs),
        &cluster.dirs[1],
        2,
        &cluster.addrs[1].to_string(),
        storage::wal::WalOptions::default(),
    )
    .expect("force a new cluster");
    assert!(said.contains("only voter") && said.contains("lost"), "{said}");
    let survivor = cluster.open(2);
    leader_of(&[&survivor]);
    assert_eq!(rows(&survivor).len(), 40);
    commit_rows(&survivor, 40, 45);
    assert_eq!(rows(&survivor).len(), 45);
    let members: Vec<u64> = survivor.status().members.iter().map(|(id, _, _)| *id).collect();
    assert_eq!(members, vec![2]);
    drop(survivor);
    let _ = std::fs::remove_dir_all(&base);
}

/// An image streams from a file on the sender into a file on the receiver, through
/// openraft's interface (read in chunks, seek, write at offsets), without the data file in
/// memory: what arrives and is saved is the sender's data file byte for byte; a byte
/// damaged on the way is refused and leaves no file behind; an image is removed once sent.
#[test]
fn an_image_streams_file_to_file_and_a_damaged_one_leaves_nothing() {
    use cluster::snapshot::{
        build_outgoing, start_outgoing, CopySink, CopyStart, ImageData, Incoming, INCOMING_DATA_FILE, INCOMING_FILE,
        OUTGOING_PREFIX,
    };
    use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

    let base = std::env::temp_dir().join(format!("bulwark-image-stream-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let (sender, receiver) = (base.join("sender"), base.join("receiver"));
    std::fs::create_dir_all(&receiver).unwrap();
    let vfs: Arc<dyn Vfs> = Arc::new(RealVfs);
    let node = Node::open_single(vfs.clone(), &sender, NodeOptions::default()).unwrap();
    commit_rows(&node, 0, 300);
    node.engine().store().checkpoint().unwrap();
    let data = std::fs::read(sender.join(storage::btree::DATA_FILE)).unwrap();
    assert!(data.len() > 100 << 10, "a data file of several chunks: {} bytes", data.len());
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();

    // Streams one image from the sender to a fresh receiving end, CHUNK bytes at a time,
    // each chunk written at its offset after a seek (as openraft does), with `damage`
    // applied to the bytes on the way. Returns what saving it said.
    const CHUNK: usize = 7_919;
    // The image is built in place, or on a thread of its own while it is read
    // (`background`).
    let send = |background: bool, damage: &dyn Fn(u64, &mut [u8])| -> Result<(u64, u64), String> {
        let engine = node.engine().clone();
        let copy = move |start: CopyStart<'_>, sink: CopySink<'_>| {
            engine.store().copy_checkpoint(start, sink).map_err(|e| std::io::Error::other(e.to_string()))
        };
        let record = |_| Ok(b"the record at the checkpoint".to_vec());
        let image = if background {
            let started = runtime.block_on(start_outgoing(&vfs, &sender, copy, record, |_| Ok(Some(()))));
            started.unwrap().unwrap().expect("the check said go on").0
        } else {
            build_outgoing(&vfs, &sender, copy, record).unwrap()
        };
        let names = || std::fs::read_dir(&sender).unwrap().filter_map(|e| e.ok()?.file_name().into_string().ok());
        assert_eq!(names().filter(|n| n.starts_with(OUTGOING_PREFIX)).count(), 1, "the image has its file");
        let mut from = ImageData::Outgoing(image);
        let mut to = ImageData::Incoming(Incoming::start(&vfs, &receiver).unwrap());
        let written = runtime.block_on(async {
            let mut offset = 0u64;
            let mut buf = vec![0u8; CHUNK];
            loop {
                from.seek(std::io::SeekFrom::Start(offset)).await.unwrap();
                let mut n = 0;
                while n < CHUNK {
                    let got = from.read(&mut buf[n..]).await.unwrap();
                    if got == 0 {
                        break;
                    }
                    n += got;
                }
                if n == 0 {
                    break;
                }
                damage(offset, &mut buf[..n]);
                to.seek(std::io::SeekFrom::Start(offset)).await.unwrap();
                // A damaged length can make the receiving end refuse a chunk.
                to.write_all(&buf[..n]).await.map_err(|e| format!("chunk at {offset} refused: {e}"))?;
                offset += n as u64;
            }
            to.shutdown().await.map_err(|e| e.to_string())
        });
        drop(from);
        assert_eq!(names().filter(|n| n.starts_with(OUTGOING_PREFIX)).count(), 0, "a sent image's file is removed");
        written?;
        match to {
            ImageData::Incoming(incoming) => incoming.save(|_, record| {
                assert_eq!(record, b"the record at the checkpoint");
                Ok(())
            }),
            _ => unreachable!(),
        }
    };

    for background in [false, true] {
        let (applied, len) = send(background, &|_, _| {}).expect("an intact image is saved");
        assert_eq!(applied, node.engine().store().stats().checkpoint_applied_index);
        assert!(len > data.len() as u64);
        let saved = std::fs::read(receiver.join(INCOMING_DATA_FILE)).unwrap();
        assert_eq!(saved, data, "the saved data file is the sender's (background: {background})");
        assert!(receiver.join(INCOMING_FILE).exists());
        for f in [INCOMING_FILE, INCOMING_DATA_FILE] {
            std::fs::remove_file(receiver.join(f)).unwrap();
        }
    }

    // One flipped bit anywhere (header, data, trailer) is refused, and nothing is left.
    for (i, at) in [3u64, 12, 20_000, data.len() as u64 / 2, data.len() as u64 + 20].into_iter().enumerate() {
        let err = send(i % 2 == 1, &|offset, chunk| {
            if (offset..offset + chunk.len() as u64).contains(&at) {
                chunk[(at - offset) as usize] ^= 0x10;
            }
        })
        .expect_err("a damaged image is refused");
        let left: Vec<String> =
            std::fs::read_dir(&receiver).unwrap().filter_map(|e| e.ok()?.file_name().into_string().ok()).collect();
        assert!(left.is_empty(), "flip at {at} ({err}) left {left:?}");
    }
    drop(node);
    let _ = std::fs::remove_dir_all(&base);
}
