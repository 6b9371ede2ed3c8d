//! Pages: the fixed-size, checksummed blocks of the data file, and their encodings.
//!
//! The data file (`data.db`) is an array of [`PAGE_BYTES`]-byte pages. Page 0 and page 1 are
//! the two meta slots; every other page belongs to the B-tree (branches, leaves, overflow
//! runs for large values) or to the free-page list. Every page starts with the same 32-byte
//! header:
//!
//! ```text
//! offset size field
//!      0    4 crc32c    CRC32C of bytes 4..4096 (the rest of the page, header included)
//!      4    1 type      1 meta, 2 leaf, 3 branch, 4 overflow, 5 free list
//!      5    1 reserved  0
//!      6    2 count     entries in the body (u16 LE)
//!      8    8 page_id   this page's own number (u64 LE): catches misdirected writes
//!     16    8 epoch     the checkpoint that wrote the page (u64 LE)
//!     24    4 body_len  bytes of body used (u32 LE)
//!     28    4 reserved  0
//!     32 4064 body      type-specific, see docs/format.md
//! ```
//!
//! The checksum is checked on every read from disk, together with the page id and type; a
//! page that fails is reported as [`Error::Corrupted`] naming the file and page and is never
//! decoded or served. Pages are encoded and checked again right before they are written.
//!
//! 4 KiB is the page size of the operating system's page cache and the block size of the
//! common Linux file systems, so one page is one block write; it keeps the fan-out of the
//! B-tree high enough (7 to 200 entries per page for keys up to 512 bytes) while point reads
//! touch little memory.

use crate::error::{Error, Result};
use crate::sorted::Sorted;

/// A page number: the page's byte offset in the data file divided by [`PAGE_BYTES`].
pub type PageId = u64;

/// A hash map keyed by page number, with a cheap multiplicative hash (page numbers are
/// not attacker-controlled, and the default SipHash shows up in profiles of the write path).
pub type PageMap<V> = std::collections::HashMap<PageId, V, std::hash::BuildHasherDefault<PageIdHasher>>;
/// A hash set of page numbers (see [`PageMap`]).
pub type PageSet = std::collections::HashSet<PageId, std::hash::BuildHasherDefault<PageIdHasher>>;

/// The hasher of [`PageMap`]: one 128-bit multiply, folded.
#[derive(Default, Clone, Copy)]
pub struct PageIdHasher(u64);

impl std::hash::Hasher for PageIdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(b as u64);
        }
    }
    fn write_u64(&mut self, x: u64) {
        let m = ((self.0 ^ x) as u128).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        self.0 = (m as u64) ^ ((m >> 64) as u64);
    }
}

/// The size of every page.
pub const PAGE_BYTES: usize = 4096;
/// The size of the common page header.
pub const PAGE_HEADER_BYTES: usize = 32;
/// Bytes available to a page's body.
pub const PAGE_BODY_BYTES: usize = PAGE_BYTES - PAGE_HEADER_BYTES;
/// The longest key the B-tree stores. With values inline up to [`VALUE_INLINE_BYTES_MAX`],
/// every leaf entry fits in a quarter page, so a split always yields two pages that fit.
pub const KEY_BYTES_MAX: usize = 512;
/// Values up to this size live in the leaf; longer ones in an overflow run.
pub const VALUE_INLINE_BYTES_MAX: usize = 480;
/// The longest value the B-tree stores.
pub const VALUE_BYTES_MAX: usize = 8 << 20;
/// Data bytes in one overflow page.
pub const OVERFLOW_DATA_BYTES: usize = PAGE_BODY_BYTES;
/// Free-list entries in one free-list page (after its 8-byte next pointer).
pub const FREELIST_ENTRIES_PER_PAGE: usize = (PAGE_BODY_BYTES - 8) / 16;

/// Page types, as stored in the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum PageType {
    /// One of the two meta slots.
    Meta = 1,
    /// A B-tree leaf.
    Leaf = 2,
    /// A B-tree branch (interior node).
    Branch = 3,
    /// Part of a large value.
    Overflow = 4,
    /// Part of the persisted free-page list.
    FreeList = 5,
}

impl PageType {
    fn from_u8(b: u8) -> Option<PageType> {
        Some(match b {
            1 => PageType::Meta,
            2 => PageType::Leaf,
            3 => PageType::Branch,
            4 => PageType::Overflow,
            5 => PageType::FreeList,
            _ => return None,
        })
    }
}

/// A value stored in a leaf.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Val {
    /// Short values live in the leaf itself.
    Inline(Vec<u8>),
    /// Long values live in `pages` consecutive overflow pages starting at `first`.
    Overflow {
        /// The value's length in bytes.
        len: u32,
        /// The first page of the run.
        first: PageId,
    },
}

impl Val {
    fn encoded_len(&self) -> usize {
        match self {
            Val::Inline(v) => 1 + 2 + v.len(),
            Val::Overflow { .. } => 1 + 4 + 8,
        }
    }
}

/// The number of overflow pages a value of `len` bytes needs.
pub fn overflow_pages(len: usize) -> u64 {
    len.div_ceil(OVERFLOW_DATA_BYTES) as u64
}

/// A decoded page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Page {
    /// A leaf: sorted, distinct keys with their values.
    Leaf(Sorted<(Vec<u8>, Val)>),
    /// A branch: `children.len() == keys.len() + 1`; every key in `children[i + 1]` is
    /// `>= keys[i]`, every key in `children[i]` is `< keys[i]`.
    Branch {
        /// Separator keys.
        keys: Sorted<Vec<u8>>,
        /// Child pages.
        children: Vec<PageId>,
    },
    /// A slice of a large value.
    Overflow(Vec<u8>),
}

/// Encoded body size of a leaf entry.
pub fn leaf_entry_len(key: &[u8], val: &Val) -> usize {
    2 + key.len() + val.encoded_len()
}

/// Encoded body size of a branch entry (separator and right child).
pub fn branch_entry_len(key: &[u8]) -> usize {
    2 + key.len() + 8
}

impl Page {
    /// The page's type.
    pub fn page_type(&self) -> PageType {
        match self {
            Page::Leaf(_) => PageType::Leaf,
            Page::Branch { .. } => PageType::Branch,
            Page::Overflow(_) => PageType::Overflow,
        }
    }

    /// The size of the encoded body.
    pub fn body_len(&self) -> usize {
        match self {
            Page::Leaf(entries) => entries.iter().map(|(k, v)| leaf_entry_len(k, v)).sum(),
            Page::Branch { keys, .. } => 8 + keys.iter().map(|k| branch_entry_len(k)).sum::<usize>(),
            Page::Overflow(data) => data.len(),
        }
    }

    /// True if the page's body fits in one page.
    pub fn fits(&self) -> bool {
        self.body_len() <= PAGE_BODY_BYTES
    }

    /// Encodes the page as page `id` written by checkpoint `epoch`.
    pub fn encode(&self, id: PageId, epoch: u64) -> Box<[u8; PAGE_BYTES]> {
        let mut body = Vec::with_capacity(PAGE_BODY_BYTES);
        let count = match self {
            Page::Leaf(entries) => {
                for (k, v) in entries {
                    put_u16(&mut body, k.len() as u16);
                    body.extend_from_slice(k);
                    match v {
                        Val::Inline(v) => {
                            body.push(0);
                            put_u16(&mut body, v.len() as u16);
                            body.extend_from_slice(v);
                        }
                        Val::Overflow { len, first } => {
                            body.push(1);
                            body.extend_from_slice(&len.to_le_bytes());
                            body.extend_from_slice(&first.to_le_bytes());
                        }
                    }
                }
                entries.len()
            }
            Page::Branch { keys, children } => {
                assert_eq!(children.len(), keys.len() + 1, "branch shape");
                body.extend_from_slice(&children[0].to_le_bytes());
                for (k, c) in keys.iter().zip(&children[1..]) {
                    put_u16(&mut body, k.len() as u16);
                    body.extend_from_slice(k);
                    body.extend_from_slice(&c.to_le_bytes());
                }
                keys.len()
            }
            Page::Overflow(data) => {
                body.extend_from_slice(data);
                1
            }
        };
        seal(self.page_type(), id, epoch, count as u16, &body)
    }

    /// Decodes a page read from disk as page `id`, checking its checksum, id and type.
    pub fn decode(buf: &[u8; PAGE_BYTES], id: PageId, file: &str) -> Result<Page> {
        let (ty, count, body) = open_sealed(buf, id, file)?;
        let bad = |what: &str| Error::corrupted(file, format!("page {id}: {what}"));
        let mut r = Reader { buf: body };
        let page = match ty {
            PageType::Leaf => {
                let mut entries = Vec::with_capacity(count as usize);
                for _ in 0..count {
                    let klen = r.u16().ok_or_else(|| bad("truncated leaf"))? as usize;
                    if klen > KEY_BYTES_MAX {
                        return Err(bad("key longer than the limit"));
                    }
                    let key = r.bytes(klen).ok_or_else(|| bad("truncated leaf key"))?.to_vec();
                    let val = match r.u8() {
                        Some(0) => {
                            let vlen = r.u16().ok_or_else(|| bad("truncated leaf"))? as usize;
                            if vlen > VALUE_INLINE_BYTES_MAX {
                                return Err(bad("inline value longer than the limit"));
                            }
                            Val::Inline(r.bytes(vlen).ok_or_else(|| bad("truncated value"))?.to_vec())
                        }
                        Some(1) => {
                            let len = r.u32().ok_or_else(|| bad("truncated leaf"))?;
                            let first = r.u64().ok_or_else(|| bad("truncated leaf"))?;
                            if (len as usize) <= VALUE_INLINE_BYTES_MAX || len as usize > VALUE_BYTES_MAX {
                                return Err(bad("overflow value length out of range"));
                            }
                            Val::Overflow { len, first }
                        }
                        _ => return Err(bad("bad value tag")),
                    };
                    if entries.last().is_some_and(|(prev, _): &(Vec<u8>, Val)| *prev >= key) {
                        return Err(bad("leaf keys out of order"));
                    }
                    entries.push((key, val));
                }
                Page::Leaf(entries.into())
            }
            PageType::Branch => {
                if count == 0 {
                    return Err(bad("branch without keys"));
                }
                let mut children = vec![r.u64().ok_or_else(|| bad("truncated branch"))?];
                let mut keys = Vec::with_capacity(count as usize);
                for _ in 0..count {
                    let klen = r.u16().ok_or_else(|| bad("truncated branch"))? as usize;
                    if klen > KEY_BYTES_MAX {
                        return Err(bad("separator longer than the limit"));
                    }
                    keys.push(r.bytes(klen).ok_or_else(|| bad("truncated branch key"))?.to_vec());
                    children.push(r.u64().ok_or_else(|| bad("truncated branch"))?);
                }
                Page::Branch { keys: keys.into(), children }
            }
            PageType::Overflow => Page::Overflow(r.bytes(body.len()).expect("whole body").to_vec()),
            other => return Err(bad(&format!("unexpected page type {other:?}"))),
        };
        if !r.buf.is_empty() {
            return Err(bad("trailing bytes in body"));
        }
        Ok(page)
    }
}

/// Builds a page: header with checksum, then `body`. Asserts the body fits.
pub fn seal(ty: PageType, id: PageId, epoch: u64, count: u16, body: &[u8]) -> Box<[u8; PAGE_BYTES]> {
    assert!(body.len() <= PAGE_BODY_BYTES, "page body of {} bytes does not fit", body.len());
    let mut buf = Box::new([0u8; PAGE_BYTES]);
    buf[4] = ty as u8;
    buf[6..8].copy_from_slice(&count.to_le_bytes());
    buf[8..16].copy_from_slice(&id.to_le_bytes());
    buf[16..24].copy_from_slice(&epoch.to_le_bytes());
    buf[24..28].copy_from_slice(&(body.len() as u32).to_le_bytes());
    buf[PAGE_HEADER_BYTES..PAGE_HEADER_BYTES + body.len()].copy_from_slice(body);
    let crc = crc32c::crc32c(&buf[4..]);
    buf[0..4].copy_from_slice(&crc.to_le_bytes());
    buf
}

/// Checks a page's checksum and header; returns its type, entry count and body.
pub fn open_sealed<'a>(buf: &'a [u8; PAGE_BYTES], id: PageId, file: &str) -> Result<(PageType, u16, &'a [u8])> {
    let stored = u32::from_le_bytes(buf[0..4].try_into().expect("4 bytes"));
    let computed = crc32c::crc32c(&buf[4..]);
    if stored != computed {
        return Err(Error::corrupted(
            file,
            format!("page {id}: checksum mismatch (stored {stored:08x}, computed {computed:08x})"),
        ));
    }
    let stored_id = u64::from_le_bytes(buf[8..16].try_into().expect("8 bytes"));
    if stored_id != id {
        return Err(Error::corrupted(file, format!("page {id}: header says page {stored_id} (misdirected write)")));
    }
    let ty = PageType::from_u8(buf[4])
        .ok_or_else(|| Error::corrupted(file, format!("page {id}: unknown page type {}", buf[4])))?;
    let count = u16::from_le_bytes(buf[6..8].try_into().expect("2 bytes"));
    let body_len = u32::from_le_bytes(buf[24..28].try_into().expect("4 bytes")) as usize;
    if body_len > PAGE_BODY_BYTES {
        return Err(Error::corrupted(file, format!("page {id}: body length {body_len} too large")));
    }
    Ok((ty, count, &buf[PAGE_HEADER_BYTES..PAGE_HEADER_BYTES + body_len]))
}

/// The epoch field of a sealed page (meaningful only after [`open_sealed`] succeeded).
pub fn sealed_epoch(buf: &[u8; PAGE_BYTES]) -> u64 {
    u64::from_le_bytes(buf[16..24].try_into().expect("8 bytes"))
}

fn put_u16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_le_bytes());
}

/// A bounds-checked little-endian reader over a byte slice.
pub struct Reader<'a> {
    /// The bytes not yet read.
    pub buf: &'a [u8],
}

impl<'a> Reader<'a> {
    /// The next `n` bytes, or None if fewer remain.
    pub fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.buf.len() < n {
            return None;
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Some(head)
    }
    /// The next byte.
    pub fn u8(&mut self) -> Option<u8> {
        self.bytes(1).map(|b| b[0])
    }
    /// The next u16 (LE).
    pub fn u16(&mut self) -> Option<u16> {
        self.bytes(2).map(|b| u16::from_le_bytes(b.try_into().expect("2")))
    }
    /// The next u32 (LE).
    pub fn u32(&mut self) -> Option<u32> {
        self.bytes(4).map(|b| u32::from_le_bytes(b.try_into().expect("4")))
    }
    /// The next u64 (LE).
    pub fn u64(&mut self) -> Option<u64> {
        self.bytes(8).map(|b| u64::from_le_bytes(b.try_into().expect("8")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_round_trip_and_catch_every_bit_flip() {
        let leaf = Page::Leaf(
            vec![
                (b"a".to_vec(), Val::Inline(b"one".to_vec())),
                (b"b".to_vec(), Val::Overflow { len: 9000, first: 77 }),
            ]
            .into(),
        );
        let branch = Page::Branch { keys: vec![b"m".to_vec()].into(), children: vec![3, 4] };
        for page in [leaf, branch, Page::Overflow(vec![9; 100])] {
            let buf = page.encode(12, 3);
            assert_eq!(Page::decode(&buf, 12, "data.db").unwrap(), page);
            assert!(Page::decode(&buf, 13, "data.db").unwrap_err().is_corruption());
            for bit in (0..PAGE_BYTES * 8).step_by(97) {
                let mut bad = buf.clone();
                bad[bit / 8] ^= 1 << (bit % 8);
                let err = Page::decode(&bad, 12, "data.db").unwrap_err();
                assert!(err.to_string().contains("data.db") && err.to_string().contains("page 12"), "{err}");
            }
        }
    }
}
