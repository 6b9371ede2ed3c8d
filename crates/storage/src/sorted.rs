//! The sorted keys of a B-tree node, with a search index built on first read.
//!
//! A decoded node holds each key in an allocation of its own, so a binary search over a
//! node's keys follows a pointer per probe, and on a tree larger than the CPU's caches each
//! probe is a cache miss or two. A point read walks three or four nodes of a million-row
//! table with seven or so probes each: the key comparisons were the largest part of an
//! embedded point read's time (a third of its samples in `memcmp`).
//!
//! [`Sorted`] keeps beside the keys an index: the prefix every key of the node shares, and
//! for each key the 8 bytes after that prefix as a big-endian `u64` (its *head*, zero
//! padded). A search compares heads, which sit side by side in one array, and reads a
//! whole key only when its head ties with the searched key's.
//!
//! Why heads order like keys: two keys with the same prefix that differ inside their next
//! 8 bytes differ first at a byte both have (and their heads order as those bytes do), or
//! at a byte only the longer key has (the shorter one is padded with a zero there, which
//! is not greater than any byte, and the shorter key sorts first). So a head that is less
//! or greater decides; equal heads send the search to the full keys.
//!
//! The index is built on the [`INDEX_AFTER_SEARCHES`]th search after the keys last changed
//! ([`DerefMut`] drops it), and only for nodes of [`INDEX_KEYS_MIN`] keys or more. The write
//! path searches the plain keys, so a leaf that changes on every insert does not rebuild its
//! index each time, and a leaf read once between writes (an UPDATE reads its row, then its
//! commit writes the leaf) is searched plainly; a branch's index survives changes to its
//! child pointers, which are not keys.

use crate::page::Val;
use std::cmp::Ordering;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU8, Ordering as AtomicOrdering};
use std::sync::OnceLock;

/// Nodes with fewer keys are searched without an index: a short binary search costs less
/// than building one.
pub const INDEX_KEYS_MIN: usize = 8;

/// A node's index is built on this search since its keys last changed; the searches before
/// it run plainly. Building costs a pass over every key: under pgbench's tpcb-like, an
/// UPDATE reads its row twice (to find it, then to lock its newest version) before its
/// commit writes the leaf; building on the first search spent more on indexes than the
/// searches saved (1.4% of the connection threads' samples), and on the second still 1.3%.
pub const INDEX_AFTER_SEARCHES: u8 = 3;

/// Something stored in key order in a node.
pub trait Keyed {
    /// The key the node is ordered by.
    fn key(&self) -> &[u8];
}

impl Keyed for Vec<u8> {
    fn key(&self) -> &[u8] {
        self
    }
}

impl Keyed for (Vec<u8>, Val) {
    fn key(&self) -> &[u8] {
        &self.0
    }
}

/// Items in ascending key order, with a search index (see the module docs). Reads go
/// through [`Deref`] to the `Vec`; any change through [`DerefMut`] drops the index.
#[derive(Default)]
pub struct Sorted<T> {
    items: Vec<T>,
    index: OnceLock<Index>,
    /// Searches since the keys last changed, while there is no index.
    searches: AtomicU8,
}

impl<T: Clone> Clone for Sorted<T> {
    fn clone(&self) -> Self {
        Sorted {
            items: self.items.clone(),
            index: self.index.clone(),
            searches: AtomicU8::new(self.searches.load(AtomicOrdering::Relaxed)),
        }
    }
}

/// The shared prefix of a node's keys and each key's next 8 bytes.
#[derive(Clone)]
struct Index {
    prefix: Box<[u8]>,
    heads: Box<[u64]>,
}

/// The first 8 bytes of `b` as a big-endian number, zero padded.
fn head(b: &[u8]) -> u64 {
    let mut buf = [0u8; 8];
    let n = b.len().min(8);
    buf[..n].copy_from_slice(&b[..n]);
    u64::from_be_bytes(buf)
}

impl<T: Keyed> Sorted<T> {
    /// The number of items whose key is less than `key`, or, if `inclusive`, less than or
    /// equal to it: `partition_point(|t| t.key() < key)` (or `<=`).
    pub fn rank(&self, key: &[u8], inclusive: bool) -> usize {
        let before = |k: &[u8]| if inclusive { k <= key } else { k < key };
        if self.items.len() < INDEX_KEYS_MIN {
            return self.items.partition_point(|t| before(t.key()));
        }
        let ix = match self.index.get() {
            Some(ix) => ix,
            None if self.searches.load(AtomicOrdering::Relaxed) + 1 < INDEX_AFTER_SEARCHES => {
                self.searches.fetch_add(1, AtomicOrdering::Relaxed);
                return self.items.partition_point(|t| before(t.key()));
            }
            None => self.index.get_or_init(|| self.build()),
        };
        let p = ix.prefix.len();
        let shared = &key[..key.len().min(p)];
        match shared.cmp(&ix.prefix[..shared.len()]) {
            Ordering::Less => return 0,
            Ordering::Greater => return self.items.len(),
            // A key that is a proper prefix of the shared prefix sorts before every key here.
            Ordering::Equal if key.len() < p => return 0,
            Ordering::Equal => {}
        }
        let h = head(&key[p..]);
        let (mut lo, mut hi) = (0, self.items.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let goes_before = match ix.heads[mid].cmp(&h) {
                Ordering::Less => true,
                Ordering::Greater => false,
                Ordering::Equal => before(self.items[mid].key()),
            };
            if goes_before {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }

    /// Where `key` is: `Ok(position)` if present, else `Err(insertion point)`, like
    /// `binary_search`.
    pub fn search(&self, key: &[u8]) -> Result<usize, usize> {
        let i = self.rank(key, false);
        match self.items.get(i) {
            Some(t) if t.key() == key => Ok(i),
            _ => Err(i),
        }
    }

    fn build(&self) -> Index {
        let first = self.items.first().map(|t| t.key()).unwrap_or_default();
        let last = self.items.last().map(|t| t.key()).unwrap_or_default();
        // Keys are sorted, so what the first and last share, every key between shares.
        let p = first.iter().zip(last).take_while(|(a, b)| a == b).count();
        Index { prefix: first[..p].into(), heads: self.items.iter().map(|t| head(&t.key()[p..])).collect() }
    }
}

impl<T> Sorted<T> {
    /// Takes the items out.
    pub fn into_vec(self) -> Vec<T> {
        self.items
    }
}

impl<T> From<Vec<T>> for Sorted<T> {
    fn from(items: Vec<T>) -> Self {
        Sorted { items, index: OnceLock::new(), searches: AtomicU8::new(0) }
    }
}

impl<T> Deref for Sorted<T> {
    type Target = Vec<T>;
    fn deref(&self) -> &Vec<T> {
        &self.items
    }
}

impl<T> DerefMut for Sorted<T> {
    fn deref_mut(&mut self) -> &mut Vec<T> {
        self.index = OnceLock::new();
        *self.searches.get_mut() = 0;
        &mut self.items
    }
}

impl<'a, T> IntoIterator for &'a Sorted<T> {
    type Item = &'a T;
    type IntoIter = std::slice::Iter<'a, T>;
    fn into_iter(self) -> Self::IntoIter {
        self.items.iter()
    }
}

impl<T: PartialEq> PartialEq for Sorted<T> {
    fn eq(&self, other: &Self) -> bool {
        self.items == other.items
    }
}

impl<T: Eq> Eq for Sorted<T> {}

impl<T: std::fmt::Debug> std::fmt::Debug for Sorted<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.items.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn keys(raw: Vec<Vec<u8>>) -> Sorted<Vec<u8>> {
        let mut raw = raw;
        raw.sort();
        raw.dedup();
        raw.into()
    }

    /// Keys drawn from a small alphabet with long shared prefixes, so heads tie, keys end
    /// inside the 8 head bytes, and zero bytes meet the zero padding.
    fn key() -> impl Strategy<Value = Vec<u8>> {
        (0usize..3, prop::collection::vec(prop::sample::select(vec![0u8, 1, 2, 0xff]), 0..14)).prop_map(
            |(shared, tail)| {
                let mut k = b"t\x00\x01row/".repeat(shared);
                k.extend(tail);
                k
            },
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn rank_and_search_agree_with_a_plain_binary_search(
            raw in prop::collection::vec(key(), 0..40),
            probes in prop::collection::vec(key(), 1..20),
        ) {
            let sorted = keys(raw);
            let plain: &Vec<Vec<u8>> = &sorted;
            for probe in probes.iter().chain(plain.iter()) {
                prop_assert_eq!(sorted.rank(probe, false), plain.partition_point(|k| k < probe));
                prop_assert_eq!(sorted.rank(probe, true), plain.partition_point(|k| k <= probe));
                prop_assert_eq!(sorted.search(probe), plain.binary_search(probe));
            }
        }
    }

    #[test]
    fn a_change_drops_the_index() {
        let mut sorted = keys((0u8..20).map(|i| vec![7, 7, i * 2]).collect());
        for _ in 1..INDEX_AFTER_SEARCHES {
            assert_eq!(sorted.search(&[7, 7, 6]), Ok(3));
            assert!(sorted.index.get().is_none(), "the searches before the last run plainly");
        }
        assert_eq!(sorted.search(&[7, 7, 6]), Ok(3));
        assert!(sorted.index.get().is_some(), "the search built the index");
        sorted.insert(3, vec![7, 7, 5]);
        assert!(sorted.index.get().is_none(), "the insert dropped it");
        for _ in 1..INDEX_AFTER_SEARCHES {
            assert_eq!(sorted.search(&[7, 7, 5]), Ok(3), "a plain search");
        }
        assert_eq!(sorted.search(&[7, 7, 6]), Ok(4), "a search that builds the index again");
        assert!(sorted.index.get().is_some());
        // A key outside the node's shared prefix, on either side.
        assert_eq!(sorted.rank(&[7, 6, 0xff], true), 0);
        assert_eq!(sorted.rank(&[7, 8], false), sorted.len());
        assert_eq!(sorted.rank(&[7], true), 0);
    }
}
