//! The copy-on-write B-tree: an ordered map from byte keys to byte values.
//!
//! ```text
//!                 root (branch)
//!               /      |       \
//!          branch    branch    branch        keys[i] separates children[i] | children[i+1]
//!          / | \      / \       / | \
//!        leaf leaf  leaf leaf  leaf leaf     sorted (key, value) entries
//!                                └─► overflow run (values > 480 bytes)
//! ```
//!
//! # Copy-on-write and epochs
//!
//! The tree is built in *epochs*: epoch `F` is everything that checkpoint `F` will write.
//! A page created in the current epoch is *dirty*: it lives only in memory (the `dirty` map),
//! no checkpoint references it, and it may be changed in place. Any other page is referenced
//! by a durable checkpoint, or by the one being written, and is never overwritten: changing
//! it copies it to a fresh page number, and the parent is changed to point at the copy (so
//! the whole path to the root is copied once per epoch, then changed in place).
//!
//! A page number that is given up goes to one of two places:
//!
//! - a dirty page was never written for any checkpoint, so its number is reusable at once;
//! - any other page is still referenced by the last durable checkpoint (or the one being
//!   written), so it goes on the `pending` list tagged with the epoch that freed it. Pages
//!   freed in epoch `F` are not in checkpoint `F`'s tree; once checkpoint `F` is durable, no
//!   checkpoint that recovery could choose references them, and they become reusable.
//!
//! The free list (reusable and pending pages) is written by every checkpoint into a chain of
//! free-list pages, so that recovery knows which pages are free.
//!
//! # What it leaves out
//!
//! Deletes do not merge underfull siblings: an empty leaf is removed, and a branch left
//! with one child is replaced by that child, so leaves may sit at different depths. Search
//! stays correct (it follows separators, not depth); space is reclaimed page by page.

use crate::error::{Error, Result};
use crate::page::{
    self, branch_entry_len, leaf_entry_len, overflow_pages, Page, PageId, PageMap, PageSet, PageType, Val,
    FREELIST_ENTRIES_PER_PAGE, KEY_BYTES_MAX, OVERFLOW_DATA_BYTES, PAGE_BYTES, VALUE_BYTES_MAX, VALUE_INLINE_BYTES_MAX,
};
use crate::pool::BufferPool;
use crate::vfs::VfsFile;
use std::collections::BTreeSet;
use std::ops::Bound;
use std::sync::Arc;

/// The name of the data file, relative to the data directory.
pub const DATA_FILE: &str = "data.db";
/// The first page number the tree may use (0 and 1 are the meta slots).
pub const FIRST_TREE_PAGE: PageId = 2;
/// The deepest tree walked before a cycle of child pointers is assumed (a tree of 4 KiB
/// pages with 7 keys per branch at least is far shallower than this for any file size).
pub const TREE_DEPTH_MAX: usize = 64;

fn too_deep(id: PageId) -> Error {
    Error::corrupted(
        DATA_FILE,
        format!("page {id}: tree deeper than {TREE_DEPTH_MAX} levels (a cycle of child pointers?)"),
    )
}

/// The longest run of consecutive free pages searched for an overflow value before
/// growing the file instead.
const RUN_SEARCH_PAGES_MAX: usize = 4096;

/// Reads pages from the data file through the buffer pool.
pub struct Pager {
    /// The data file.
    pub file: Arc<dyn VfsFile>,
    /// The cache of clean pages.
    pub pool: BufferPool,
    /// The newest checkpoint epoch a page on disk may carry: a page written by a later
    /// (never completed, or abandoned) checkpoint is not part of the tree in force.
    pub epoch_max: std::sync::atomic::AtomicU64,
}

impl Pager {
    /// Reads page `id` (clean, from the pool or the disk), checking its checksum.
    pub fn read(&self, id: PageId) -> Result<Arc<Page>> {
        if let Some(page) = self.pool.get(id) {
            return Ok(page);
        }
        let mut buf = Box::new([0u8; PAGE_BYTES]);
        self.file.read_exact_at(&mut buf[..], id * PAGE_BYTES as u64).map_err(|e| match e.kind() {
            std::io::ErrorKind::UnexpectedEof => {
                Error::corrupted(DATA_FILE, format!("page {id}: past the end of the file"))
            }
            _ => Error::io(format!("reading {DATA_FILE} page {id}"), e),
        })?;
        let page = Arc::new(Page::decode(&buf, id, DATA_FILE)?);
        let epoch = page::sealed_epoch(&buf);
        let max = self.epoch_max.load(std::sync::atomic::Ordering::Relaxed);
        if epoch > max {
            return Err(Error::corrupted(
                DATA_FILE,
                format!("page {id}: written by checkpoint {epoch}, newer than the checkpoint in force ({max})"),
            ));
        }
        self.pool.insert(id, page.clone());
        Ok(page)
    }

    /// Reads a free-list page: its next pointer and its (page, freed_in epoch) entries.
    pub fn read_freelist(&self, id: PageId) -> Result<(PageId, Vec<(PageId, u64)>)> {
        let mut buf = Box::new([0u8; PAGE_BYTES]);
        self.file
            .read_exact_at(&mut buf[..], id * PAGE_BYTES as u64)
            .map_err(|e| Error::io(format!("reading {DATA_FILE} free-list page {id}"), e))?;
        let (ty, count, body) = page::open_sealed(&buf, id, DATA_FILE)?;
        let bad = || Error::corrupted(DATA_FILE, format!("page {id}: malformed free-list page"));
        if ty != PageType::FreeList {
            return Err(Error::corrupted(DATA_FILE, format!("page {id}: expected a free-list page, found {ty:?}")));
        }
        let mut r = page::Reader { buf: body };
        let next = r.u64().ok_or_else(bad)?;
        let mut entries = Vec::with_capacity(count as usize);
        for _ in 0..count {
            entries.push((r.u64().ok_or_else(bad)?, r.u64().ok_or_else(bad)?));
        }
        Ok((next, entries))
    }
}

/// Encodes a free-list page.
pub fn encode_freelist(id: PageId, epoch: u64, next: PageId, entries: &[(PageId, u64)]) -> Box<[u8; PAGE_BYTES]> {
    assert!(entries.len() <= FREELIST_ENTRIES_PER_PAGE);
    let mut body = Vec::with_capacity(8 + entries.len() * 16);
    body.extend_from_slice(&next.to_le_bytes());
    for (p, e) in entries {
        body.extend_from_slice(&p.to_le_bytes());
        body.extend_from_slice(&e.to_le_bytes());
    }
    page::seal(PageType::FreeList, id, epoch, entries.len() as u16, &body)
}

/// The in-memory state of the tree: its root, the pages changed since the last checkpoint,
/// and the page allocator.
#[derive(Default)]
pub struct Tree {
    /// The root page, or 0 for an empty tree.
    pub root: PageId,
    /// The epoch being built: the number the next checkpoint will carry.
    pub epoch: u64,
    /// The log index of the last write batch applied.
    pub applied_index: u64,
    /// Pages in the file (the next page number at the end of the file).
    pub page_count: u64,
    /// Pages created in this epoch, not yet handed to a checkpoint.
    pub dirty: PageMap<Arc<Page>>,
    /// Pages handed to the checkpoint in flight, until it is durable.
    pub writing: Arc<PageMap<Arc<Page>>>,
    /// Pages of `writing` given up while the checkpoint was in flight.
    pub freed_in_flight: PageSet,
    /// Page numbers free for reuse now.
    pub reusable: BTreeSet<PageId>,
    /// Page numbers freed in an epoch whose checkpoint is not yet durable: (epoch, page).
    pub pending: Vec<(u64, PageId)>,
    /// The free-list pages of the last durable checkpoint.
    pub freelist_pages: Vec<PageId>,
}

/// The result of a tree descent on the insert path: the (possibly copied) page number, and a
/// separator plus new right sibling if the page split.
type Grown = (PageId, Option<(Vec<u8>, PageId)>);

impl Tree {
    // ---- page access -------------------------------------------------------------------

    /// Loads a page: dirty, in flight, pooled, or from disk.
    pub fn load(&self, pager: &Pager, id: PageId) -> Result<Arc<Page>> {
        if let Some(p) = self.dirty.get(&id).or_else(|| self.writing.get(&id)) {
            pager.pool.count_hit();
            return Ok(p.clone());
        }
        if id < FIRST_TREE_PAGE || id >= self.page_count {
            return Err(Error::corrupted(DATA_FILE, format!("page {id}: referenced but outside the tree")));
        }
        pager.read(id)
    }

    fn alloc(&mut self) -> PageId {
        match self.reusable.pop_first() {
            Some(id) => id,
            None => {
                self.page_count += 1;
                self.page_count - 1
            }
        }
    }

    /// Allocates `n` consecutive pages: a free run if a short search finds one, else at the
    /// end of the file.
    fn alloc_run(&mut self, n: u64) -> PageId {
        if n == 1 {
            return self.alloc();
        }
        let (mut start, mut len) = (0, 0);
        for &id in self.reusable.iter().take(RUN_SEARCH_PAGES_MAX) {
            if len > 0 && id == start + len {
                len += 1;
            } else {
                (start, len) = (id, 1);
            }
            if len == n {
                for p in start..start + n {
                    self.reusable.remove(&p);
                }
                return start;
            }
        }
        self.page_count += n;
        self.page_count - n
    }

    /// Gives up a page number (see the module docs for where it goes).
    fn free(&mut self, pager: &Pager, id: PageId) {
        if self.dirty.remove(&id).is_some() {
            self.reusable.insert(id);
            return;
        }
        if self.writing.contains_key(&id) {
            self.freed_in_flight.insert(id);
        }
        pager.pool.remove(id);
        self.pending.push((self.epoch, id));
    }

    /// Takes page `id` for changing: in place if dirty, else as a copy at a new number.
    fn writable(&mut self, pager: &Pager, id: PageId) -> Result<(PageId, Page)> {
        if let Some(arc) = self.dirty.remove(&id) {
            return Ok((id, Arc::try_unwrap(arc).unwrap_or_else(|a| (*a).clone())));
        }
        let page = (*self.load(pager, id)?).clone();
        self.free(pager, id);
        Ok((self.alloc(), page))
    }

    fn put_dirty(&mut self, id: PageId, page: Page) {
        debug_assert!(page.fits(), "page {id} does not fit");
        self.dirty.insert(id, Arc::new(page));
    }

    // ---- values ---------------------------------------------------------------------

    fn store_value(&mut self, value: Vec<u8>) -> Val {
        if value.len() <= VALUE_INLINE_BYTES_MAX {
            return Val::Inline(value);
        }
        let n = overflow_pages(value.len());
        let first = self.alloc_run(n);
        for (i, chunk) in value.chunks(OVERFLOW_DATA_BYTES).enumerate() {
            self.put_dirty(first + i as u64, Page::Overflow(chunk.to_vec()));
        }
        Val::Overflow { len: value.len() as u32, first }
    }

    fn free_value(&mut self, pager: &Pager, val: &Val) {
        if let Val::Overflow { len, first } = val {
            for id in *first..first.saturating_add(overflow_pages(*len as usize)) {
                self.free(pager, id);
            }
        }
    }

    /// The bytes of a stored value (reading its overflow run if it has one).
    pub fn read_value(&self, pager: &Pager, val: &Val) -> Result<Vec<u8>> {
        match val {
            Val::Inline(v) => Ok(v.clone()),
            Val::Overflow { len, first } => {
                let mut out = Vec::with_capacity(*len as usize);
                for id in *first..first.saturating_add(overflow_pages(*len as usize)) {
                    match &*self.load(pager, id)? {
                        Page::Overflow(data) => out.extend_from_slice(data),
                        other => {
                            return Err(Error::corrupted(
                                DATA_FILE,
                                format!("page {id}: expected overflow, found {:?}", other.page_type()),
                            ))
                        }
                    }
                }
                if out.len() != *len as usize {
                    return Err(Error::corrupted(
                        DATA_FILE,
                        format!("overflow run at page {first}: {} bytes, expected {len}", out.len()),
                    ));
                }
                Ok(out)
            }
        }
    }

    // ---- reads ----------------------------------------------------------------------

    /// The value stored under `key`.
    pub fn get(&self, pager: &Pager, key: &[u8]) -> Result<Option<Vec<u8>>> {
        match self.find(pager, key)? {
            Some(val) => Ok(Some(self.read_value(pager, &val)?)),
            None => Ok(None),
        }
    }

    fn find(&self, pager: &Pager, key: &[u8]) -> Result<Option<Val>> {
        let Some(leaf) = self.leaf_for(pager, key)? else { return Ok(None) };
        let Page::Leaf(entries) = &*leaf else { unreachable!("leaf_for returns leaves") };
        Ok(entries.search(key).ok().map(|i| entries[i].1.clone()))
    }

    /// The leaf where `key` belongs (None for an empty tree).
    fn leaf_for(&self, pager: &Pager, key: &[u8]) -> Result<Option<Arc<Page>>> {
        let mut id = self.root;
        if id == 0 {
            return Ok(None);
        }
        for _ in 0..=TREE_DEPTH_MAX {
            let page = self.load(pager, id)?;
            match &*page {
                Page::Branch { keys, children } => id = children[keys.rank(key, true)],
                Page::Leaf(_) => return Ok(Some(page)),
                Page::Overflow(_) => {
                    return Err(Error::corrupted(DATA_FILE, format!("page {id}: overflow page where a node belongs")))
                }
            }
        }
        Err(too_deep(id))
    }

    /// Up to `limit` entries with keys in `(lo, hi)`, ascending, or descending if `reverse`.
    pub fn scan(
        &self,
        pager: &Pager,
        lo: Bound<&[u8]>,
        hi: Bound<&[u8]>,
        reverse: bool,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let mut raw = Vec::new();
        if self.root != 0 && limit > 0 {
            self.scan_node(pager, self.root, lo, hi, reverse, limit, &mut raw, 0)?;
        }
        // An inline value is already a copy of its own: hand it over rather than copy again.
        raw.into_iter()
            .map(|(k, v)| match v {
                Val::Inline(v) => Ok((k, v)),
                v => Ok((k, self.read_value(pager, &v)?)),
            })
            .collect()
    }

    /// The value of the first entry at or after `lo` and inside `hi` (see
    /// [`crate::KvRead::first_value`]): one walk down to the leaf where `lo` belongs; only
    /// when `lo` is past that leaf's last key does it fall back to a scan, which crosses
    /// into the next leaf.
    pub fn first_value(&self, pager: &Pager, lo: &[u8], hi: Bound<&[u8]>) -> Result<Option<Vec<u8>>> {
        let Some(leaf) = self.leaf_for(pager, lo)? else { return Ok(None) };
        let Page::Leaf(entries) = &*leaf else { unreachable!("leaf_for returns leaves") };
        match entries.get(entries.rank(lo, false)) {
            Some((k, v)) if in_bounds(k, Bound::Included(lo), hi) => Ok(Some(self.read_value(pager, v)?)),
            Some(_) => Ok(None),
            // Past this leaf's last key: the next leaf, if any, holds the answer.
            None => Ok(self.scan(pager, Bound::Included(lo), hi, false, 1)?.pop().map(|(_, v)| v)),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn scan_node(
        &self,
        pager: &Pager,
        id: PageId,
        lo: Bound<&[u8]>,
        hi: Bound<&[u8]>,
        reverse: bool,
        limit: usize,
        out: &mut Vec<(Vec<u8>, Val)>,
        depth: usize,
    ) -> Result<()> {
        if depth > TREE_DEPTH_MAX {
            return Err(too_deep(id));
        }
        let page = self.load(pager, id)?;
        match &*page {
            Page::Branch { keys, children } => {
                let first = match lo {
                    Bound::Included(k) | Bound::Excluded(k) => keys.rank(k, true),
                    Bound::Unbounded => 0,
                };
                let last = match hi {
                    Bound::Included(k) => keys.rank(k, true),
                    Bound::Excluded(k) => keys.rank(k, false),
                    Bound::Unbounded => keys.len(),
                };
                let last = last.max(first);
                for step in 0..=last - first {
                    if out.len() >= limit {
                        break;
                    }
                    let i = if reverse { last - step } else { first + step };
                    self.scan_node(pager, children[i], lo, hi, reverse, limit, out, depth + 1)?;
                }
            }
            Page::Leaf(entries) => {
                // Entries are sorted: binary-search both ends instead of testing every key.
                let from = match lo {
                    Bound::Included(l) => entries.rank(l, false),
                    Bound::Excluded(l) => entries.rank(l, true),
                    Bound::Unbounded => 0,
                };
                let to = match hi {
                    Bound::Included(h) => entries.rank(h, true),
                    Bound::Excluded(h) => entries.rank(h, false),
                    Bound::Unbounded => entries.len(),
                };
                let inside = &entries[from..to.max(from)];
                debug_assert!(inside.iter().all(|(k, _)| in_bounds(k, lo, hi)));
                let take = limit - out.len();
                if reverse {
                    out.extend(inside.iter().rev().take(take).cloned());
                } else {
                    out.extend(inside.iter().take(take).cloned());
                }
            }
            Page::Overflow(_) => {
                return Err(Error::corrupted(DATA_FILE, format!("page {id}: overflow page where a node belongs")))
            }
        }
        Ok(())
    }

    // ---- writes ---------------------------------------------------------------------

    /// Stores `value` under `key`, replacing any earlier value.
    pub fn put(&mut self, pager: &Pager, key: &[u8], value: &[u8]) -> Result<()> {
        self.put_owned(pager, key.to_vec(), value.to_vec())
    }

    /// [`Tree::put`] taking ownership of the key and value (saves copies on replay).
    pub fn put_owned(&mut self, pager: &Pager, key: Vec<u8>, value: Vec<u8>) -> Result<()> {
        check_sizes(&key, Some(&value))?;
        let val = self.store_value(value);
        if self.root == 0 {
            let id = self.alloc();
            self.put_dirty(id, Page::Leaf(vec![(key, val)].into()));
            self.root = id;
            return Ok(());
        }
        let (root, split) = self.insert(pager, self.root, key, val, 0)?;
        self.root = match split {
            None => root,
            Some((sep, right)) => {
                let id = self.alloc();
                self.put_dirty(id, Page::Branch { keys: vec![sep].into(), children: vec![root, right] });
                id
            }
        };
        Ok(())
    }

    fn insert(&mut self, pager: &Pager, id: PageId, key: Vec<u8>, val: Val, depth: usize) -> Result<Grown> {
        if depth > TREE_DEPTH_MAX {
            return Err(too_deep(id));
        }
        let (id, mut page) = self.writable(pager, id)?;
        // Whether this insert added the node's last entry (an append, as ascending keys do).
        let mut appended = false;
        match &mut page {
            Page::Leaf(entries) => match entries.binary_search_by(|(k, _)| k.as_slice().cmp(&key)) {
                Ok(i) => {
                    let old = std::mem::replace(&mut entries[i].1, val);
                    self.free_value(pager, &old);
                }
                Err(i) => {
                    appended = i == entries.len();
                    entries.insert(i, (key, val));
                }
            },
            Page::Branch { keys, children } => {
                let i = child_index(keys, &key);
                let (child, split) = self.insert(pager, children[i], key, val, depth + 1)?;
                children[i] = child;
                if let Some((sep, right)) = split {
                    appended = i == keys.len();
                    keys.insert(i, sep);
                    children.insert(i + 1, right);
                }
            }
            Page::Overflow(_) => {
                return Err(Error::corrupted(DATA_FILE, format!("page {id}: overflow page where a node belongs")))
            }
        }
        let split = if page.fits() {
            None
        } else {
            let (sep, right) = split(&mut page, appended);
            let right_id = self.alloc();
            self.put_dirty(right_id, right);
            Some((sep, right_id))
        };
        self.put_dirty(id, page);
        Ok((id, split))
    }

    /// Removes `key`; returns whether it was present.
    pub fn delete(&mut self, pager: &Pager, key: &[u8]) -> Result<bool> {
        check_sizes(key, None)?;
        if self.find(pager, key)?.is_none() {
            return Ok(false);
        }
        self.root = self.remove(pager, self.root, key)?.unwrap_or(0);
        Ok(true)
    }

    /// Removes `key` (known present) below `id`. Returns the page that now stands for `id`,
    /// or None if the subtree became empty.
    fn remove(&mut self, pager: &Pager, id: PageId, key: &[u8]) -> Result<Option<PageId>> {
        let (id, mut page) = self.writable(pager, id)?;
        match &mut page {
            Page::Leaf(entries) => {
                if let Ok(i) = entries.binary_search_by(|(k, _)| k.as_slice().cmp(key)) {
                    let (_, old) = entries.remove(i);
                    self.free_value(pager, &old);
                }
                if entries.is_empty() {
                    self.reusable.insert(id); // a writable page is dirty: never written
                    return Ok(None);
                }
            }
            Page::Branch { keys, children } => {
                let i = child_index(keys, key);
                match self.remove(pager, children[i], key)? {
                    Some(child) => children[i] = child,
                    None => {
                        children.remove(i);
                        keys.remove(i.saturating_sub(1));
                    }
                }
                if children.len() == 1 {
                    let only = children[0];
                    self.reusable.insert(id);
                    return Ok(Some(only));
                }
            }
            Page::Overflow(_) => {
                return Err(Error::corrupted(DATA_FILE, format!("page {id}: overflow page where a node belongs")))
            }
        }
        self.put_dirty(id, page);
        Ok(Some(id))
    }

    // ---- checkpoint support -----------------------------------------------------------

    /// Starts checkpoint `self.epoch`: hands the dirty pages over, lays out the free list,
    /// and opens the next epoch. Runs under the tree's write lock; cheap (no I/O).
    pub fn begin_checkpoint(&mut self) -> CheckpointPlan {
        let epoch = self.epoch;
        // The free list this checkpoint records: everything reusable, everything pending,
        // and the previous free-list chain (which this checkpoint no longer references).
        let mut entries: Vec<(PageId, u64)> = Vec::new();
        let chain_len = |n: usize| n.div_ceil(FREELIST_ENTRIES_PER_PAGE);
        let total = self.reusable.len() + self.pending.len() + self.freelist_pages.len();
        let mut chain = Vec::with_capacity(chain_len(total));
        while chain.len() < chain_len(total) {
            chain.push(match self.reusable.pop_first() {
                Some(id) => id,
                None => {
                    self.page_count += 1;
                    self.page_count - 1
                }
            });
        }
        entries.extend(self.reusable.iter().map(|&p| (p, 0)));
        entries.extend(self.pending.iter().map(|&(e, p)| (p, e)));
        entries.extend(self.freelist_pages.iter().map(|&p| (p, epoch)));
        let pages = Arc::new(std::mem::take(&mut self.dirty));
        self.writing = pages.clone();
        self.freed_in_flight.clear();
        self.epoch += 1;
        CheckpointPlan {
            meta: Meta {
                epoch,
                applied_index: self.applied_index,
                root: self.root,
                page_count: self.page_count,
                freelist_head: chain.first().copied().unwrap_or(0),
                freelist_len: entries.len() as u64,
            },
            pages,
            chain,
            freelist: entries,
        }
    }

    /// Ends the checkpoint in flight. On success the pages it freed become reusable (the
    /// caller has already put its pages in the buffer pool); on failure its pages return to
    /// the dirty set so the next checkpoint writes them.
    pub fn finish_checkpoint(&mut self, plan: &CheckpointPlan, durable: bool) {
        let writing = std::mem::take(&mut self.writing);
        let freed = std::mem::take(&mut self.freed_in_flight);
        if durable {
            let epoch = plan.meta.epoch;
            let (done, rest): (Vec<_>, Vec<_>) = self.pending.drain(..).partition(|&(e, _)| e <= epoch);
            self.pending = rest;
            self.reusable.extend(done.into_iter().map(|(_, p)| p));
            self.reusable.extend(std::mem::replace(&mut self.freelist_pages, plan.chain.clone()));
            // The written pages are already in the buffer pool (see `Store::checkpoint`).
        } else {
            for (id, page) in writing.iter() {
                if !freed.contains(id) {
                    self.dirty.insert(*id, page.clone());
                }
            }
            self.reusable.extend(plan.chain.iter().copied());
        }
    }
}

/// What a checkpoint writes.
pub struct CheckpointPlan {
    /// The meta record it ends with.
    pub meta: Meta,
    /// The tree pages to write.
    pub pages: Arc<PageMap<Arc<Page>>>,
    /// The free-list chain pages.
    pub chain: Vec<PageId>,
    /// The free-list entries: (page, epoch that freed it; 0 = free before).
    pub freelist: Vec<(PageId, u64)>,
}

/// The contents of a meta slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Meta {
    /// The checkpoint's number; the newer valid slot wins.
    pub epoch: u64,
    /// Every log record up to here is in the tree.
    pub applied_index: u64,
    /// The tree's root, 0 if empty.
    pub root: PageId,
    /// Pages in the file.
    pub page_count: u64,
    /// The first free-list page, 0 if none.
    pub freelist_head: PageId,
    /// Free-list entries.
    pub freelist_len: u64,
}

/// The magic bytes at the start of a meta page's body.
pub const META_MAGIC: &[u8; 8] = b"BLWKMETA";
/// The data file's format version.
pub const FORMAT_VERSION: u32 = 1;

impl Meta {
    /// Encodes the meta record as slot `slot`'s page.
    pub fn encode(&self, slot: PageId) -> Box<[u8; PAGE_BYTES]> {
        let mut body = Vec::with_capacity(64);
        body.extend_from_slice(META_MAGIC);
        body.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        body.extend_from_slice(&(PAGE_BYTES as u32).to_le_bytes());
        for v in [self.epoch, self.applied_index, self.root, self.page_count, self.freelist_head, self.freelist_len] {
            body.extend_from_slice(&v.to_le_bytes());
        }
        page::seal(PageType::Meta, slot, self.epoch, 0, &body)
    }

    /// Decodes meta slot `slot`.
    pub fn decode(buf: &[u8; PAGE_BYTES], slot: PageId) -> Result<Meta> {
        let (ty, _, body) = page::open_sealed(buf, slot, DATA_FILE)?;
        let bad = |what: &str| Error::corrupted(DATA_FILE, format!("meta page {slot}: {what}"));
        if ty != PageType::Meta {
            return Err(bad("not a meta page"));
        }
        let mut r = page::Reader { buf: body };
        if r.bytes(8) != Some(META_MAGIC) {
            return Err(bad("bad magic"));
        }
        if r.u32() != Some(FORMAT_VERSION) {
            return Err(bad("unsupported format version"));
        }
        if r.u32() != Some(PAGE_BYTES as u32) {
            return Err(bad("page size differs"));
        }
        let mut v = [0u64; 6];
        for x in &mut v {
            *x = r.u64().ok_or_else(|| bad("truncated"))?;
        }
        let meta = Meta {
            epoch: v[0],
            applied_index: v[1],
            root: v[2],
            page_count: v[3],
            freelist_head: v[4],
            freelist_len: v[5],
        };
        if meta.page_count < FIRST_TREE_PAGE || (meta.root != 0 && meta.root >= meta.page_count) {
            return Err(bad("root or page count out of range"));
        }
        Ok(meta)
    }
}

/// Which child of a branch holds `key`: the number of separators `<= key`.
fn child_index(keys: &[Vec<u8>], key: &[u8]) -> usize {
    keys.partition_point(|s| s.as_slice() <= key)
}

fn in_bounds(k: &[u8], lo: Bound<&[u8]>, hi: Bound<&[u8]>) -> bool {
    let above = match lo {
        Bound::Included(l) => k >= l,
        Bound::Excluded(l) => k > l,
        Bound::Unbounded => true,
    };
    let below = match hi {
        Bound::Included(h) => k <= h,
        Bound::Excluded(h) => k < h,
        Bound::Unbounded => true,
    };
    above && below
}

/// Checks a key (and value) against the engine's limits.
pub fn check_sizes(key: &[u8], value: Option<&[u8]>) -> Result<()> {
    if key.len() > KEY_BYTES_MAX {
        return Err(Error::Invalid(format!("key of {} bytes exceeds the limit of {KEY_BYTES_MAX}", key.len())));
    }
    if let Some(v) = value {
        if v.len() > VALUE_BYTES_MAX {
            return Err(Error::Invalid(format!("value of {} bytes exceeds the limit of {VALUE_BYTES_MAX}", v.len())));
        }
    }
    Ok(())
}

/// Splits an overfull node in two; returns the separator and the right half. Entries are at
/// most a quarter page, so both halves fit.
///
/// A node that overflowed because an entry was appended at its end (ascending keys: a
/// bulk load, a serial key) keeps everything but that entry, so such a tree fills its pages
/// rather than leaving each half empty behind the load; any other split is by size, in
/// the middle.
fn split(page: &mut Page, appended: bool) -> (Vec<u8>, Page) {
    let (sep, right) = match page {
        Page::Leaf(entries) => {
            let at = if appended {
                entries.len() - 1
            } else {
                let sizes: Vec<usize> = entries.iter().map(|(k, v)| leaf_entry_len(k, v)).collect();
                midpoint(&sizes).clamp(1, entries.len() - 1)
            };
            let right = entries.split_off(at);
            (right[0].0.clone(), Page::Leaf(right.into()))
        }
        Page::Branch { keys, children } => {
            // Appended: the right half keeps the last key and the two children beside it.
            let m = if appended {
                keys.len() - 2
            } else {
                let sizes: Vec<usize> = keys.iter().map(|k| branch_entry_len(k)).collect();
                midpoint(&sizes).clamp(1, keys.len() - 2)
            };
            let right_keys = keys.split_off(m + 1);
            let right_children = children.split_off(m + 1);
            let sep = keys.pop().expect("m >= 1");
            (sep, Page::Branch { keys: right_keys.into(), children: right_children })
        }
        Page::Overflow(_) => unreachable!("overflow pages never split"),
    };
    assert!(page.fits() && right.fits(), "split halves must fit");
    (sep, right)
}

/// The first position where the running size reaches half the total.
fn midpoint(sizes: &[usize]) -> usize {
    let total: usize = sizes.iter().sum();
    let mut acc = 0;
    for (i, s) in sizes.iter().enumerate() {
        acc += s;
        if acc * 2 >= total {
            return i + 1;
        }
    }
    sizes.len()
}
