//! The buffer pool: a byte-bounded cache of clean, decoded pages.
//!
//! Pages read from disk are checked, decoded and kept here, up to a byte budget (counted as
//! [`PAGE_BYTES`] per page). When the pool is full, a CLOCK sweep evicts a page that has not
//! been used since the sweep last passed it. Only clean pages live here: pages changed since
//! the last checkpoint are held by the tree until a checkpoint has written them, so eviction
//! never needs I/O. Hits and misses are counted for the cache hit ratio.

use crate::page::{Page, PageId, PageMap, PAGE_BYTES};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// A byte-bounded cache of clean pages.
pub struct BufferPool {
    pages_max: usize,
    inner: Mutex<Inner>,
    hits: AtomicU64,
    misses: AtomicU64,
    evictions: AtomicU64,
}

struct Inner {
    map: PageMap<(Arc<Page>, bool)>,
    clock: VecDeque<PageId>,
}

/// Counters of a [`BufferPool`].
#[derive(Debug, Clone, Copy, Default)]
pub struct PoolStats {
    /// Lookups served from memory.
    pub hits: u64,
    /// Lookups that read the disk.
    pub misses: u64,
    /// Pages evicted.
    pub evictions: u64,
    /// Pages held now.
    pub pages: u64,
    /// The budget, in pages.
    pub pages_max: u64,
}

impl PoolStats {
    /// hits / (hits + misses), or 1.0 before any lookup.
    pub fn hit_ratio(&self) -> f64 {
        let total = self.hits + self.misses;
        if total == 0 {
            1.0
        } else {
            self.hits as f64 / total as f64
        }
    }
}

impl BufferPool {
    /// A pool holding at most `bytes_max` bytes of pages (at least 16 pages).
    pub fn new(bytes_max: usize) -> BufferPool {
        BufferPool {
            pages_max: (bytes_max / PAGE_BYTES).max(16),
            inner: Mutex::new(Inner { map: PageMap::default(), clock: VecDeque::new() }),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            evictions: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The cached page, counting a hit; None (and a miss) if absent.
    pub fn get(&self, id: PageId) -> Option<Arc<Page>> {
        let mut inner = self.lock();
        match inner.map.get_mut(&id) {
            Some((page, used)) => {
                *used = true;
                self.hits.fetch_add(1, Ordering::Relaxed);
                Some(page.clone())
            }
            None => {
                self.misses.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }

    /// Counts a hit served from outside the pool (a page changed since the last checkpoint).
    pub fn count_hit(&self) {
        self.hits.fetch_add(1, Ordering::Relaxed);
    }

    /// Caches a clean page, evicting others if the pool is full.
    pub fn insert(&self, id: PageId, page: Arc<Page>) {
        let mut inner = self.lock();
        if inner.map.insert(id, (page, true)).is_none() {
            inner.clock.push_back(id);
        }
        while inner.map.len() > self.pages_max {
            let Some(victim) = inner.clock.pop_front() else { break };
            match inner.map.get_mut(&victim) {
                Some((_, used)) if *used => {
                    *used = false;
                    inner.clock.push_back(victim);
                }
                Some(_) => {
                    inner.map.remove(&victim);
                    self.evictions.fetch_add(1, Ordering::Relaxed);
                }
                None => {} // removed earlier; its clock slot is stale
            }
        }
        // Stale clock slots (from `remove`) are bounded: rebuild when they dominate.
        if inner.clock.len() > 2 * inner.map.len() + 64 {
            let ids: VecDeque<PageId> = inner.map.keys().copied().collect();
            inner.clock = ids;
        }
    }

    /// Drops a page (it was freed; its number may be reused for other content).
    pub fn remove(&self, id: PageId) {
        self.lock().map.remove(&id);
    }

    /// The counters.
    pub fn stats(&self) -> PoolStats {
        PoolStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            evictions: self.evictions.load(Ordering::Relaxed),
            pages: self.lock().map.len() as u64,
            pages_max: self.pages_max as u64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_to_the_budget_and_counts() {
        let pool = BufferPool::new(16 * PAGE_BYTES);
        for id in 0..100 {
            pool.insert(id, Arc::new(Page::Overflow(vec![id as u8])));
            assert!(pool.get(id).is_some());
        }
        let s = pool.stats();
        assert_eq!(s.pages, 16);
        assert_eq!(s.evictions, 84);
        assert!(pool.get(0).is_none());
        assert_eq!(pool.stats().misses, 1);
        assert!(pool.stats().hit_ratio() > 0.9);
    }
}
