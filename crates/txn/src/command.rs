//! Commands: what a transaction hands to the log at commit, and how every replica applies
//! them, deterministically.
//!
//! A command is one log record. Applying it reads only the state as of the record before it
//! (through [`KvRead`]) and the command itself, so every replica, and recovery, decides the
//! same way: either every write is installed as a version stamped with the record's index,
//! or the whole command is rejected.
//!
//! # Version keys
//!
//! ```text
//!   store key = 'v' | keycode Bytes(user key) | !commit_index (8 bytes, big-endian)
//!   value     = 0x00 (tombstone)  |  0x01 value bytes
//! ```
//!
//! The escaped user key keeps user keys in order and never lets one key's versions mix with
//! another's; the inverted index sorts the versions of a key newest first, so the version a
//! snapshot sees is the first one at or after `'v' | key | !snapshot`.

use crate::error::{Error, Result};
use std::ops::Bound;
use storage::keycode;
use storage::{KvRead, WriteBatch};

/// The first byte of every version key.
pub const VERSION_PREFIX: u8 = b'v';
/// Version keys scanned per read of the store during validation and vacuum.
pub const SCAN_BATCH: usize = 1024;

/// The isolation levels, as PostgreSQL defines them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum IsolationLevel {
    /// A new snapshot per statement; no validation at commit.
    ReadCommitted,
    /// Snapshot isolation: one snapshot; a write to a row changed since it fails (40001).
    RepeatableRead,
    /// Also validates every key and range read: no anomaly at all.
    Serializable,
}

impl IsolationLevel {
    fn to_u8(self) -> u8 {
        match self {
            IsolationLevel::ReadCommitted => 1,
            IsolationLevel::RepeatableRead => 2,
            IsolationLevel::Serializable => 3,
        }
    }
    fn from_u8(b: u8) -> Option<IsolationLevel> {
        Some(match b {
            1 => IsolationLevel::ReadCommitted,
            2 => IsolationLevel::RepeatableRead,
            3 => IsolationLevel::Serializable,
            _ => return None,
        })
    }
}

/// A key range read by a SERIALIZABLE transaction.
pub type KeyRange = (Bound<Vec<u8>>, Bound<Vec<u8>>);

/// What the commands already placed in one log entry write and read, so that a further
/// command joins the entry only if the order among them cannot matter: it writes nothing
/// they wrote or read, and reads nothing they wrote. Commands in one entry are then decided
/// against the same state (the entry before) and installed at the same commit index, which
/// is equivalent to applying them one after another in any order.
#[derive(Debug, Default)]
pub struct Footprint {
    writes: std::collections::BTreeSet<Vec<u8>>,
    reads: std::collections::BTreeSet<Vec<u8>>,
    ranges: Vec<KeyRange>,
    commands: usize,
}

fn in_range(key: &[u8], (lo, hi): &KeyRange) -> bool {
    let above = match lo {
        Bound::Included(l) => key >= l.as_slice(),
        Bound::Excluded(l) => key > l.as_slice(),
        Bound::Unbounded => true,
    };
    let below = match hi {
        Bound::Included(h) => key <= h.as_slice(),
        Bound::Excluded(h) => key < h.as_slice(),
        Bound::Unbounded => true,
    };
    above && below
}

impl Footprint {
    /// Whether `cmd` may join the commands added so far (see the type's docs). A vacuum
    /// command never shares an entry.
    pub fn admits(&self, cmd: &Command) -> bool {
        match cmd {
            Command::Vacuum { .. } => self.commands == 0,
            Command::Commit { writes, reads, ranges, .. } => {
                if self.commands > 0 && self.writes.is_empty() && self.reads.is_empty() && self.ranges.is_empty() {
                    return false; // the entry holds a vacuum
                }
                let written = |k: &Vec<u8>| self.writes.contains(k);
                let write_hits = writes
                    .iter()
                    .any(|(k, _)| written(k) || self.reads.contains(k) || self.ranges.iter().any(|r| in_range(k, r)));
                let read_hits = reads.iter().any(written)
                    || ranges
                        .iter()
                        .any(|r| self.writes.range::<Vec<u8>, _>((r.0.clone(), r.1.clone())).next().is_some());
                !write_hits && !read_hits
            }
        }
    }

    /// Adds `cmd` (which [`Footprint::admits`] accepted).
    pub fn add(&mut self, cmd: &Command) {
        self.commands += 1;
        if let Command::Commit { writes, reads, ranges, .. } = cmd {
            self.writes.extend(writes.iter().map(|(k, _)| k.clone()));
            self.reads.extend(reads.iter().cloned());
            self.ranges.extend(ranges.iter().cloned());
        }
    }

    /// Commands added.
    pub fn len(&self) -> usize {
        self.commands
    }

    /// True before any command was added.
    pub fn is_empty(&self) -> bool {
        self.commands == 0
    }
}

/// One log record of the transaction layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// A transaction's commit.
    Commit {
        /// The applied index its reads saw.
        snapshot: u64,
        /// Its isolation level (decides what is validated).
        isolation: IsolationLevel,
        /// Its writes: value, or None for a delete.
        writes: Vec<(Vec<u8>, Option<Vec<u8>>)>,
        /// SERIALIZABLE only: the keys it read.
        reads: Vec<Vec<u8>>,
        /// SERIALIZABLE only: the ranges it scanned.
        ranges: Vec<KeyRange>,
    },
    /// Vacuum: remove these version keys (versions no snapshot can see).
    Vacuum {
        /// Store keys of dead versions.
        deletes: Vec<Vec<u8>>,
    },
}

/// How applying a command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Installed at this index.
    Committed(u64),
    /// Rejected: nothing installed; the reason names the conflict.
    Rejected(String),
}

/// The store key prefix of every version of `key`.
pub fn version_prefix(key: &[u8]) -> Vec<u8> {
    // Room for the prefix byte, the tag, every byte escaped, the terminator and the
    // version suffix `version_key` appends: one allocation, never grown.
    let mut out = Vec::with_capacity(2 * key.len() + 12);
    out.push(VERSION_PREFIX);
    keycode::encode_bytes(&mut out, key);
    out
}

/// The store key of `key`'s version committed at `ts`.
pub fn version_key(key: &[u8], ts: u64) -> Vec<u8> {
    let mut out = version_prefix(key);
    keycode::encode_u64_desc(&mut out, ts);
    out
}

/// Splits a version key into its user key and commit index.
pub fn parse_version_key(store_key: &[u8]) -> Result<(Vec<u8>, u64)> {
    let bad = || Error::Storage(storage::Error::corrupted("data.db", "malformed version key"));
    if store_key.len() < 9 || store_key[0] != VERSION_PREFIX {
        return Err(bad());
    }
    let (mut head, mut tail) = store_key[1..].split_at(store_key.len() - 9);
    let key = match keycode::decode_part(&mut head).map_err(|_| bad())? {
        keycode::KeyPart::Bytes(k) if head.is_empty() => k,
        _ => return Err(bad()),
    };
    let ts = keycode::decode_u64_desc(&mut tail).map_err(|_| bad())?;
    Ok((key, ts))
}

/// Encodes a version's value.
pub fn encode_value(value: Option<&[u8]>) -> Vec<u8> {
    match value {
        None => vec![0],
        Some(v) => {
            let mut out = Vec::with_capacity(v.len() + 1);
            out.push(1);
            out.extend_from_slice(v);
            out
        }
    }
}

/// Decodes a version's value (None: a tombstone).
pub fn decode_value(bytes: &[u8]) -> Result<Option<Vec<u8>>> {
    match bytes.first() {
        Some(0) if bytes.len() == 1 => Ok(None),
        Some(1) => Ok(Some(bytes[1..].to_vec())),
        _ => Err(Error::Storage(storage::Error::corrupted("data.db", "malformed version value"))),
    }
}

/// [`decode_value`] of a value the caller owns: the tag byte is taken off in place, with
/// no second allocation.
fn decode_value_owned(mut bytes: Vec<u8>) -> Result<Option<Vec<u8>>> {
    match bytes.first() {
        Some(0) if bytes.len() == 1 => Ok(None),
        Some(1) => {
            bytes.remove(0);
            Ok(Some(bytes))
        }
        _ => Err(Error::Storage(storage::Error::corrupted("data.db", "malformed version value"))),
    }
}

/// The store range holding every version of every user key in `(lo, hi)`.
pub fn store_range(lo: &Bound<Vec<u8>>, hi: &Bound<Vec<u8>>) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
    let lo = match lo {
        Bound::Included(k) => Bound::Included(version_prefix(k)),
        // Every version of k sorts before the next key's versions: skip past k's prefix.
        Bound::Excluded(k) => match keycode::prefix_end(&version_prefix(k)) {
            Some(end) => Bound::Included(end),
            None => Bound::Excluded(version_prefix(k)),
        },
        Bound::Unbounded => Bound::Included(vec![VERSION_PREFIX]),
    };
    let hi = match hi {
        Bound::Included(k) => match keycode::prefix_end(&version_prefix(k)) {
            Some(end) => Bound::Excluded(end),
            None => Bound::Unbounded,
        },
        Bound::Excluded(k) => Bound::Excluded(version_prefix(k)),
        Bound::Unbounded => Bound::Excluded(vec![VERSION_PREFIX + 1]),
    };
    (lo, hi)
}

fn as_ref(b: &Bound<Vec<u8>>) -> Bound<&[u8]> {
    match b {
        Bound::Included(v) => Bound::Included(v),
        Bound::Excluded(v) => Bound::Excluded(v),
        Bound::Unbounded => Bound::Unbounded,
    }
}

/// Visits every version in the store range, in order, in bounded reads.
pub fn for_each_version(
    kv: &dyn KvRead,
    lo: Bound<Vec<u8>>,
    hi: Bound<Vec<u8>>,
    mut f: impl FnMut(&[u8], &[u8]) -> Result<bool>,
) -> Result<()> {
    let mut lo = lo;
    loop {
        let chunk = kv.scan_range(as_ref(&lo), as_ref(&hi), false, SCAN_BATCH)?;
        for (k, v) in &chunk {
            if !f(k, v)? {
                return Ok(());
            }
        }
        match chunk.last() {
            Some((k, _)) if chunk.len() == SCAN_BATCH => lo = Bound::Excluded(k.clone()),
            _ => return Ok(()),
        }
    }
}

/// The commit index of the newest version of `key`, if any.
pub fn newest_version(kv: &dyn KvRead, key: &[u8]) -> Result<Option<u64>> {
    let prefix = version_prefix(key);
    let hi = keycode::prefix_end(&prefix).map_or(Bound::Unbounded, Bound::Excluded);
    let first = kv.scan_range(Bound::Included(&prefix), as_ref(&hi), false, 1)?;
    first.first().map(|(k, _)| parse_version_key(k).map(|(_, ts)| ts)).transpose()
}

/// The longest version prefix whose end bound [`read_at`] builds on the stack.
const READ_BOUND_STACK_BYTES: usize = 128;

/// The value of `key` as of snapshot `ts` (None if absent or deleted).
pub fn read_at(kv: &dyn KvRead, key: &[u8], ts: u64) -> Result<Option<Vec<u8>>> {
    let mut lo = version_prefix(key);
    // The end of the key's versions: the prefix with its last byte, the encoding's
    // terminator (never 0xFF), one higher. Built on the stack for the usual short key.
    let mut stack = [0u8; READ_BOUND_STACK_BYTES];
    let mut heap = Vec::new();
    let hi: &mut [u8] = if lo.len() <= stack.len() {
        stack[..lo.len()].copy_from_slice(&lo);
        &mut stack[..lo.len()]
    } else {
        heap.extend_from_slice(&lo);
        &mut heap
    };
    let last = hi.last_mut().expect("a version prefix is never empty");
    debug_assert_ne!(*last, 0xFF);
    *last += 1;
    keycode::encode_u64_desc(&mut lo, ts); // version_key(key, ts), the prefix encoded once
    match kv.first_value(&lo, Bound::Excluded(hi))? {
        Some(v) => decode_value_owned(v),
        None => Ok(None),
    }
}

/// Decides the commands of one log record, all at commit index `index`: each against the
/// state before the record (`kv`); one whose [`Footprint`] overlaps an earlier one's in the
/// record is rejected. Returns the combined batch and one outcome per command.
pub fn decide_batch(kv: &dyn KvRead, index: u64, cmds: &[Command]) -> Result<(WriteBatch, Vec<Outcome>)> {
    let mut batch = WriteBatch::new();
    let mut outcomes = Vec::with_capacity(cmds.len());
    let mut footprint = Footprint::default();
    for cmd in cmds {
        if !footprint.admits(cmd) {
            outcomes.push(Outcome::Rejected("conflict with a transaction committed in the same log entry".to_string()));
            continue;
        }
        footprint.add(cmd);
        let (b, outcome) = decide(kv, index, cmd)?;
        batch.extend(b);
        outcomes.push(outcome);
    }
    Ok((batch, outcomes))
}

/// Decides a command at `index`: the batch to apply and the outcome. Deterministic: it
/// reads only `kv` (the state as of `index - 1`) and the command.
pub fn decide(kv: &dyn KvRead, index: u64, cmd: &Command) -> Result<(WriteBatch, Outcome)> {
    let mut batch = WriteBatch::new();
    match cmd {
        Command::Vacuum { deletes } => {
            for k in deletes {
                batch.delete(k.clone());
            }
            Ok((batch, Outcome::Committed(index)))
        }
        Command::Commit { snapshot, isolation, writes, reads, ranges } => {
            if let Some(reason) = conflict(kv, *snapshot, *isolation, writes, reads, ranges)? {
                return Ok((batch, Outcome::Rejected(reason)));
            }
            for (k, v) in writes {
                batch.put(version_key(k, index), encode_value(v.as_deref()));
            }
            Ok((batch, Outcome::Committed(index)))
        }
    }
}

fn conflict(
    kv: &dyn KvRead,
    snapshot: u64,
    isolation: IsolationLevel,
    writes: &[(Vec<u8>, Option<Vec<u8>>)],
    reads: &[Vec<u8>],
    ranges: &[KeyRange],
) -> Result<Option<String>> {
    if isolation == IsolationLevel::ReadCommitted {
        return Ok(None);
    }
    for (k, _) in writes {
        if let Some(ts) = newest_version(kv, k)?.filter(|&ts| ts > snapshot) {
            return Ok(Some(format!(
                "write-write conflict: key {} was changed by a transaction that committed at {ts}, after this one's snapshot {snapshot}",
                show(k)
            )));
        }
    }
    if isolation == IsolationLevel::RepeatableRead {
        return Ok(None);
    }
    for k in reads {
        if let Some(ts) = newest_version(kv, k)?.filter(|&ts| ts > snapshot) {
            return Ok(Some(format!(
                "read-write conflict: key {} that this transaction read was changed by a transaction that committed at {ts}",
                show(k)
            )));
        }
    }
    for (lo, hi) in ranges {
        let (slo, shi) = store_range(lo, hi);
        let mut found = None;
        for_each_version(kv, slo, shi, |k, _| {
            let (key, ts) = parse_version_key(k)?;
            if ts > snapshot {
                found = Some((key, ts));
                return Ok(false);
            }
            Ok(true)
        })?;
        if let Some((key, ts)) = found {
            return Ok(Some(format!(
                "read-write conflict on a predicate: a range this transaction scanned gained or lost key {} in a transaction that committed at {ts}",
                show(&key)
            )));
        }
    }
    Ok(None)
}

/// A key for messages: text if printable, else hex.
pub fn show(key: &[u8]) -> String {
    match std::str::from_utf8(key) {
        Ok(s) if s.chars().all(|c| !c.is_control()) => format!("'{s}'"),
        _ => format!("0x{}", key.iter().map(|b| format!("{b:02x}")).collect::<String>()),
    }
}

// ---- encoding ----------------------------------------------------------------------

const COMMAND_FORMAT: u8 = 1;

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_le_bytes());
    out.extend_from_slice(b);
}

fn put_bound(out: &mut Vec<u8>, b: &Bound<Vec<u8>>) {
    match b {
        Bound::Included(k) => {
            out.push(1);
            put_bytes(out, k);
        }
        Bound::Excluded(k) => {
            out.push(2);
            put_bytes(out, k);
        }
        Bound::Unbounded => out.push(0),
    }
}

impl Command {
    /// The log record.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![COMMAND_FORMAT];
        match self {
            Command::Commit { snapshot, isolation, writes, reads, ranges } => {
                out.push(1);
                out.extend_from_slice(&snapshot.to_le_bytes());
                out.push(isolation.to_u8());
                out.extend_from_slice(&(writes.len() as u32).to_le_bytes());
                for (k, v) in writes {
                    put_bytes(&mut out, k);
                    match v {
                        Some(v) => {
                            out.push(1);
                            put_bytes(&mut out, v);
                        }
                        None => out.push(0),
                    }
                }
                out.extend_from_slice(&(reads.len() as u32).to_le_bytes());
                for k in reads {
                    put_bytes(&mut out, k);
                }
                out.extend_from_slice(&(ranges.len() as u32).to_le_bytes());
                for (lo, hi) in ranges {
                    put_bound(&mut out, lo);
                    put_bound(&mut out, hi);
                }
            }
            Command::Vacuum { deletes } => {
                out.push(2);
                out.extend_from_slice(&(deletes.len() as u32).to_le_bytes());
                for k in deletes {
                    put_bytes(&mut out, k);
                }
            }
        }
        out
    }

    /// Decodes the log record at `index`.
    pub fn decode(bytes: &[u8], index: u64) -> storage::Result<Command> {
        let bad = || storage::Error::corrupted("wal", format!("log record {index}: malformed command"));
        let mut r = Reader(bytes);
        if r.u8() != Some(COMMAND_FORMAT) {
            return Err(bad());
        }
        let cmd = match r.u8() {
            Some(1) => {
                let snapshot = r.u64().ok_or_else(bad)?;
                let isolation = r.u8().and_then(IsolationLevel::from_u8).ok_or_else(bad)?;
                let n = r.u32().ok_or_else(bad)?;
                let mut writes = Vec::new();
                for _ in 0..n {
                    let k = r.bytes().ok_or_else(bad)?;
                    let v = match r.u8() {
                        Some(1) => Some(r.bytes().ok_or_else(bad)?),
                        Some(0) => None,
                        _ => return Err(bad()),
                    };
                    writes.push((k, v));
                }
                let n = r.u32().ok_or_else(bad)?;
                let mut reads = Vec::new();
                for _ in 0..n {
                    reads.push(r.bytes().ok_or_else(bad)?);
                }
                let n = r.u32().ok_or_else(bad)?;
                let mut ranges = Vec::new();
                for _ in 0..n {
                    ranges.push((r.bound().ok_or_else(bad)?, r.bound().ok_or_else(bad)?));
                }
                Command::Commit { snapshot, isolation, writes, reads, ranges }
            }
            Some(2) => {
                let n = r.u32().ok_or_else(bad)?;
                let mut deletes = Vec::new();
                for _ in 0..n {
                    deletes.push(r.bytes().ok_or_else(bad)?);
                }
                Command::Vacuum { deletes }
            }
            _ => return Err(bad()),
        };
        if !r.0.is_empty() {
            return Err(bad());
        }
        Ok(cmd)
    }
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        if self.0.len() < n {
            return None;
        }
        let (h, t) = self.0.split_at(n);
        self.0 = t;
        Some(h)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u32(&mut self) -> Option<u32> {
        self.take(4).map(|b| u32::from_le_bytes(b.try_into().expect("4")))
    }
    fn u64(&mut self) -> Option<u64> {
        self.take(8).map(|b| u64::from_le_bytes(b.try_into().expect("8")))
    }
    fn bytes(&mut self) -> Option<Vec<u8>> {
        let n = self.u32()? as usize;
        self.take(n).map(<[u8]>::to_vec)
    }
    fn bound(&mut self) -> Option<Bound<Vec<u8>>> {
        match self.u8()? {
            0 => Some(Bound::Unbounded),
            1 => self.bytes().map(Bound::Included),
            2 => self.bytes().map(Bound::Excluded),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_round_trip() {
        let cmd = Command::Commit {
            snapshot: 7,
            isolation: IsolationLevel::Serializable,
            writes: vec![(b"a".to_vec(), Some(b"1".to_vec())), (b"b".to_vec(), None)],
            reads: vec![b"c".to_vec()],
            ranges: vec![(Bound::Included(b"d".to_vec()), Bound::Unbounded)],
        };
        assert_eq!(Command::decode(&cmd.encode(), 1).unwrap(), cmd);
        let v = Command::Vacuum { deletes: vec![version_key(b"x", 3)] };
        assert_eq!(Command::decode(&v.encode(), 1).unwrap(), v);
        assert!(Command::decode(&[1, 9], 1).is_err());
    }

    #[test]
    fn version_keys_sort_by_key_then_newest_first() {
        let mut keys = [version_key(b"a", 1), version_key(b"a", 5), version_key(b"a\0", 2), version_key(b"b", 3)];
        keys.sort();
        let parsed: Vec<_> = keys.iter().map(|k| parse_version_key(k).unwrap()).collect();
        assert_eq!(parsed, vec![(b"a".to_vec(), 5), (b"a".to_vec(), 1), (b"a\0".to_vec(), 2), (b"b".to_vec(), 3)]);
        let (lo, hi) = store_range(&Bound::Excluded(b"a".to_vec()), &Bound::Included(b"a\0".to_vec()));
        use std::ops::RangeBounds;
        let inside = |k: &Vec<u8>| (lo.clone(), hi.clone()).contains(k);
        assert_eq!(keys.iter().filter(|k| inside(k)).count(), 1);
    }
}

#[cfg(test)]
mod footprint_tests {
    use super::*;

    fn commit(writes: &[&str], reads: &[&str], ranges: &[(&str, &str)]) -> Command {
        Command::Commit {
            snapshot: 0,
            isolation: IsolationLevel::Serializable,
            writes: writes.iter().map(|k| (k.as_bytes().to_vec(), Some(b"v".to_vec()))).collect(),
            reads: reads.iter().map(|k| k.as_bytes().to_vec()).collect(),
            ranges: ranges
                .iter()
                .map(|(lo, hi)| (Bound::Included(lo.as_bytes().to_vec()), Bound::Excluded(hi.as_bytes().to_vec())))
                .collect(),
        }
    }

    #[test]
    fn a_command_joins_only_if_order_cannot_matter() {
        let mut f = Footprint::default();
        let a = commit(&["a"], &["r"], &[("m", "p")]);
        assert!(f.admits(&a));
        f.add(&a);
        assert!(f.admits(&commit(&["b"], &["c"], &[])), "disjoint");
        assert!(!f.admits(&commit(&["a"], &[], &[])), "writes what it wrote");
        assert!(!f.admits(&commit(&["r"], &[], &[])), "writes what it read");
        assert!(!f.admits(&commit(&["n"], &[], &[])), "writes into a range it scanned");
        assert!(f.admits(&commit(&["p"], &[], &[])), "the range's end is excluded");
        assert!(!f.admits(&commit(&[], &["a"], &[])), "reads what it wrote");
        assert!(!f.admits(&commit(&[], &[], &[("0", "b")])), "scans what it wrote");
        assert!(!f.admits(&Command::Vacuum { deletes: vec![b"z".to_vec()] }), "a vacuum goes alone");
        let mut v = Footprint::default();
        v.add(&Command::Vacuum { deletes: vec![b"z".to_vec()] });
        assert!(!v.admits(&commit(&["q"], &[], &[])), "nothing joins a vacuum");
    }
}
